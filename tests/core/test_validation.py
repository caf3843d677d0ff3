"""Client-side validation: bad input raises before anything is written."""

from __future__ import annotations

import math

import pytest
from core_util import T0, run_script

from omniq import AsyncOmniq, InvalidArgument, InvalidPayload, JobSpec, Lease

BAD_QUEUES = ["", "q" * 129, "{q}", "a{b", "a}b", "a b", " q", "q ", "q\n", "q\x00", "q\x7f",
              "q:x", "é", None, 5]


def _nested(depth: int):
    v: list = []
    for _ in range(depth - 1):
        v = [v]
    return v


@pytest.mark.parametrize("queue", BAD_QUEUES)
async def test_bad_queue_names(omniq, raw, queue):
    with pytest.raises(InvalidArgument):
        await omniq.publish(queue, {})
    with pytest.raises(InvalidArgument):
        await omniq.reserve(queue)
    with pytest.raises(InvalidArgument):
        await omniq.pause(queue)
    with pytest.raises(InvalidArgument):
        await omniq.is_paused(queue)
    with pytest.raises(InvalidArgument):
        await omniq.stats(queue)
    with pytest.raises(InvalidArgument):
        await omniq.heartbeat_many([Lease(queue, "j", "t")])
    assert raw.dbsize() == 0


async def test_good_queue_names(omniq):
    for name in ("q" * 128, "a.b-c_D9", "-", "."):
        await omniq.publish(name, {}, now_ms=T0)
    assert len(await omniq.queues()) == 4


@pytest.mark.parametrize(
    "job_id", ["", " x", "x ", "a\nb", "a\x00", "a\tb", "j" * 257, 12, b"x"]
)
async def test_bad_job_ids(omniq, raw, job_id):
    with pytest.raises(InvalidArgument):
        await omniq.publish("q", {}, job_id=job_id)
    with pytest.raises(InvalidArgument):
        await omniq.publish_many("q", [JobSpec(payload={}, job_id=job_id)])
    with pytest.raises(InvalidArgument):
        await omniq.retry_failed("q", job_id)
    with pytest.raises(InvalidArgument):
        await omniq.remove_job("q", job_id, "wait")
    with pytest.raises(InvalidArgument):
        await omniq.get_job("q", job_id)
    assert raw.dbsize() == 0


async def test_job_id_limits_accepted(omniq, raw):
    await omniq.publish("q", {}, job_id="j" * 256, now_ms=T0)
    await omniq.publish("q", {}, job_id="a b{c}:d", now_ms=T0)
    assert raw.exists("{q}:job:a b{c}:d") == 1


@pytest.mark.parametrize("gid", ["a\nb", "g\x01", "g" * 257, 7, ["g"]])
async def test_bad_gids(omniq, raw, gid):
    with pytest.raises(InvalidArgument):
        await omniq.publish("q", {}, gid=gid)
    with pytest.raises(InvalidArgument):
        await omniq.publish_many("q", [{}], gid=gid)
    with pytest.raises(InvalidArgument):
        await omniq.publish_many("q", [JobSpec(payload={}, gid=gid)])
    assert raw.dbsize() == 0


async def test_blank_gid_means_ungrouped(omniq, raw):
    jid = await omniq.publish("q", {}, gid="   ", now_ms=T0)
    assert "gid" not in raw.hgetall("{q}:job:" + jid)


@pytest.mark.parametrize(
    "payload",
    [
        "text",
        5,
        1.5,
        None,
        True,
        b"{}",
        {"x": math.nan},
        {"x": math.inf},
        [-math.inf],
        {1: "int key"},
        {"s": {1, 2}},
        _nested(65),
        {"deep": _nested(64)},
    ],
    ids=repr,
)
async def test_bad_payloads(omniq, raw, payload):
    with pytest.raises(InvalidPayload):
        await omniq.publish("q", payload)
    with pytest.raises(InvalidPayload):
        await omniq.publish_many("q", [{"ok": 1}, payload])
    assert raw.dbsize() == 0


async def test_depth_limit_is_64(omniq):
    await omniq.publish("q", _nested(64), now_ms=T0)


async def test_max_payload_bytes(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, max_payload_bytes=100) as c:
        await c.publish("q", {"s": "x" * 92}, now_ms=T0)  # exactly 100 bytes: accepted
        raw.flushdb()
        with pytest.raises(InvalidPayload):
            await c.publish("q", {"s": "x" * 93})  # 101 bytes
        with pytest.raises(InvalidPayload):
            await c.publish_many("q", [{}, {"s": "é" * 50}])  # 106 bytes of UTF-8
        with pytest.raises(InvalidPayload):
            await c.ack_success("q", "j", "t" * 40, result="x" * 200)
    assert raw.dbsize() == 0


@pytest.mark.parametrize(
    "opts",
    [
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"timeout_ms": 0},
        {"backoff_ms": -1},
        {"due_ms": -5},
        {"delay_ms": -5},
        {"group_limit": -1},
        {"max_attempts": 1.5},
        {"max_attempts": True},
        {"timeout_ms": "100"},
        {"now_ms": -1},
        {"due_ms": 10, "delay_ms": 10},
    ],
    ids=repr,
)
async def test_bad_options(omniq, raw, opts):
    with pytest.raises(InvalidArgument):
        await omniq.publish("q", {}, **opts)
    assert raw.dbsize() == 0


async def test_bad_client_options(omniq_redis_url):
    with pytest.raises(InvalidArgument):
        AsyncOmniq(url=omniq_redis_url, max_payload_bytes=0)
    with pytest.raises(InvalidArgument):
        AsyncOmniq(url=omniq_redis_url, keep_completed=-1)


# -- the scripts validate too (for callers that bypass the client) -------------------------


def _job(job_id="j", payload="{}", gid="", max_attempts="3", timeout_ms="100", keep_c="0",
         keep_f="0", extras=""):
    return [job_id, payload, max_attempts, timeout_ms, "0", "0", "0", gid, "0", keep_c, keep_f,
            extras]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([str(T0), "1", *_job(payload="5")], ["ERR", "BAD_PAYLOAD", "j"]),
        ([str(T0), "1", *_job(payload='"s"')], ["ERR", "BAD_PAYLOAD", "j"]),
        ([str(T0), "1", *_job(job_id="")], ["ERR", "BAD_JOB_ID", "0"]),
        ([str(T0), "1", *_job(job_id="a\nb")], ["ERR", "BAD_JOB_ID", "0"]),
        ([str(T0), "1", *_job(gid="g\x01")], ["ERR", "BAD_GID", "j"]),
        ([str(T0), "1", *_job(max_attempts="x")], ["ERR", "BAD_ARGS", "max_attempts"]),
        ([str(T0), "1", *_job(timeout_ms="1.5")], ["ERR", "BAD_ARGS", "timeout_ms"]),
        ([str(T0), "2", *_job()], ["ERR", "BAD_ARGS", "argument count"]),
        ([str(T0), "1", *_job(keep_c="-1")], ["ERR", "BAD_ARGS", "keep_completed_ms"]),
        ([str(T0), "1", *_job(keep_f="1e3")], ["ERR", "BAD_ARGS", "keep_failed_ms"]),
        ([str(T0), "1", *_job(), "-5"], ["ERR", "BAD_ARGS", "events_maxlen"]),
        ([str(T0), "1", *_job(), "many"], ["ERR", "BAD_ARGS", "events_maxlen"]),
        (["-1", "1", *_job()], ["ERR", "BAD_ARGS", "now_ms"]),
        # the second job is bad: the first is not written either
        ([str(T0), "2", *_job("a"), *_job("b", payload="null")], ["ERR", "BAD_PAYLOAD", "b"]),
    ],
)
def test_enqueue_script_refuses(raw, args, expected):
    assert run_script(raw, "enqueue", "{q}:meta", *args) == expected
    assert raw.dbsize() == 0


def test_other_scripts_refuse_bad_arguments(raw):
    meta = "{q}:meta"
    assert run_script(raw, "reserve", meta, str(T0), "0") == ["ERR", "BAD_ARGS", "count"]
    assert run_script(raw, "reserve", meta, "abc", "1") == ["ERR", "BAD_ARGS", "now_ms"]
    assert run_script(raw, "heartbeat", meta, str(T0), "2", "j", "t") == [
        "ERR", "BAD_ARGS", "argument count"
    ]
    ids = [f"j{i}" for i in range(101)]
    assert run_script(raw, "retry_failed_batch", meta, str(T0), "101", *ids) == [
        "ERR", "BATCH_TOO_LARGE", "100"
    ]
    assert run_script(raw, "remove_jobs_batch", meta, "wait", "101", *ids, str(T0)) == [
        "ERR", "BATCH_TOO_LARGE", "100"
    ]
    assert run_script(raw, "remove_jobs_batch", meta, "active", "1", "j", str(T0)) == [
        "ERR", "BAD_LANE", "active"
    ]
    assert run_script(raw, "remove_job", meta, "j", "nope", str(T0)) == ["ERR", "NO_JOB"]
    assert run_script(raw, "ack_success", meta, "", str(T0), "t") == ["ERR", "BAD_JOB_ID"]
    assert run_script(raw, "promote_delayed", meta, str(T0), "0") == [
        "ERR", "BAD_ARGS", "max_promote"
    ]
    assert raw.dbsize() == 0


# every script that writes events takes events_maxlen last: a malformed one is refused
# before anything is written
_EVENTS_ARG_CALLS = [
    ("reserve", [str(T0), "1"]),
    ("ack_success", ["j", str(T0), "t", "", "100"]),
    ("ack_fail", ["j", str(T0), "t", "e", "0", ""]),
    ("ack_reserve", [str(T0), "100", "0", "1", ""]),
    ("promote_delayed", [str(T0), "10"]),
    ("reap_expired", [str(T0), "10", ""]),
    ("pause", []),
    ("resume", []),
    ("retry_failed", ["j", str(T0)]),
    ("retry_failed_batch", [str(T0), "1", "j"]),
    ("remove_job", ["j", "wait", str(T0)]),
    ("remove_jobs_batch", ["wait", "1", "j", str(T0)]),
    ("progress", ["j", "t", "{}", str(T0)]),
]


@pytest.mark.parametrize(("script", "args"), _EVENTS_ARG_CALLS,
                         ids=[c[0] for c in _EVENTS_ARG_CALLS])
@pytest.mark.parametrize("bad", ["-1", "1.5", "ten", "9007199254740992"])
def test_scripts_refuse_a_bad_events_maxlen(raw, script, args, bad):
    assert run_script(raw, script, "{q}:meta", *args, bad) == ["ERR", "BAD_ARGS", "events_maxlen"]
    assert raw.dbsize() == 0
