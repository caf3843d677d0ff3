"""publish / publish_json / publish_many."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from core_util import T0, jk, qk

from omniq import DuplicateJobError, InvalidArgument, JobSpec, OmniqError

ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


async def test_publish_returns_ulid_and_stores_options(omniq, raw):
    jid = await omniq.publish(
        "q", {"a": 1, "s": "é"}, max_attempts=7, timeout_ms=1234, backoff_ms=55, now_ms=T0
    )
    assert ULID_RE.fullmatch(jid)
    h = raw.hgetall(jk("q", jid))
    assert json.loads(h["payload"]) == {"a": 1, "s": "é"}
    assert h["id"] == jid
    assert h["state"] == "wait"
    assert h["attempt"] == "0"
    assert h["max_attempts"] == "7"
    assert h["timeout_ms"] == "1234"
    assert h["backoff_ms"] == "55"
    assert h["created_ms"] == h["updated_ms"] == h["queued_ms"] == str(T0)
    assert "gid" not in h
    assert raw.lrange(qk("q", "wait"), 0, -1) == [jid]


async def test_publish_ids_are_unique_and_sortable(omniq):
    ids = [await omniq.publish("q", [i]) for i in range(20)]
    assert len(set(ids)) == 20
    assert all(ULID_RE.fullmatch(i) for i in ids)


async def test_publish_defaults(omniq, raw):
    jid = await omniq.publish("q", [], now_ms=T0)
    h = raw.hgetall(jk("q", jid))
    assert (h["max_attempts"], h["timeout_ms"], h["backoff_ms"]) == ("3", "30000", "5000")
    assert h["payload"] == "[]"


async def test_publish_custom_id_and_gid(omniq, raw):
    jid = await omniq.publish("q", {"x": 1}, job_id="my-job", gid="  g1 ", now_ms=T0)
    assert jid == "my-job"
    assert raw.hget(jk("q", "my-job"), "gid") == "g1"  # trimmed like the official clients
    assert raw.lrange(qk("q", "g:g1:wait"), 0, -1) == ["my-job"]
    assert raw.exists(qk("q", "wait")) == 0


async def test_publish_server_clock_when_now_is_zero(omniq, raw):
    jid = await omniq.publish("q", {})
    sec, usec = raw.time()
    server_now = sec * 1000 + usec // 1000
    created = int(raw.hget(jk("q", jid), "created_ms"))
    assert server_now - 5_000 <= created <= server_now


async def test_publish_json_dataclass(omniq, raw):
    @dataclasses.dataclass
    class Mail:
        to: str
        n: int

    jid = await omniq.publish_json("q", Mail("a@b", 2), now_ms=T0)
    assert json.loads(raw.hget(jk("q", jid), "payload")) == {"to": "a@b", "n": 2}


async def test_duplicate_id_leaves_old_job_untouched(omniq, raw, dump):
    await omniq.publish("q", {"v": 1}, job_id="dup", now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    before = dump()
    with pytest.raises(DuplicateJobError) as ei:
        await omniq.publish("q", {"v": 2}, job_id="dup", now_ms=T0 + 2)
    assert ei.value.code == "DUPLICATE"
    assert dump() == before
    assert raw.hget(jk("q", "dup"), "lease_token") == job.lease_token


async def test_publish_many_payloads_and_specs(omniq, raw):
    ids = await omniq.publish_many(
        "q",
        [
            {"n": 1},
            JobSpec(payload={"n": 2}, job_id="spec", gid="g", group_limit=2, max_attempts=9),
            JobSpec(payload=[3], delay_ms=500, timeout_ms=777),
            [4],
        ],
        backoff_ms=11,
        now_ms=T0,
    )
    assert len(ids) == 4
    assert ids[1] == "spec"
    assert ULID_RE.fullmatch(ids[0])
    assert ULID_RE.fullmatch(ids[2])
    assert raw.lrange(qk("q", "wait"), 0, -1) == [ids[0], ids[3]]
    assert raw.lrange(qk("q", "g:g:wait"), 0, -1) == ["spec"]
    assert raw.get(qk("q", "g:g:limit")) == "2"
    spec = raw.hgetall(jk("q", "spec"))
    assert (spec["max_attempts"], spec["backoff_ms"], spec["gid"]) == ("9", "11", "g")
    delayed = raw.hgetall(jk("q", ids[2]))
    assert delayed["state"] == "delayed"
    assert delayed["due_ms"] == str(T0 + 500)
    assert delayed["timeout_ms"] == "777"
    assert raw.zscore(qk("q", "delayed"), ids[2]) == T0 + 500


async def test_publish_many_empty(omniq, raw):
    assert await omniq.publish_many("q", []) == []
    assert raw.dbsize() == 0


async def test_publish_many_2500_spans_chunks(omniq, raw):
    ids = await omniq.publish_many("q", [{"i": i} for i in range(2500)], now_ms=T0)
    assert len(ids) == len(set(ids)) == 2500
    assert raw.lrange(qk("q", "wait"), 0, -1) == ids  # order kept across chunks
    assert raw.zcard(qk("q", "idx:wait")) == 2500
    assert raw.hget(qk("q", "stats"), "waiting") == "2500"
    assert json.loads(raw.hget(jk("q", ids[2499]), "payload")) == {"i": 2499}


async def test_publish_many_repeated_id_writes_nothing(omniq, raw):
    with pytest.raises(DuplicateJobError):
        await omniq.publish_many(
            "q", [JobSpec(payload={}, job_id="a"), JobSpec(payload={}, job_id="a")], now_ms=T0
        )
    assert raw.dbsize() == 0


async def test_publish_many_existing_id_writes_nothing_of_its_chunk(omniq, raw, dump):
    await omniq.publish("q", {}, job_id="old", now_ms=T0)
    before = dump()
    with pytest.raises(DuplicateJobError):
        await omniq.publish_many(
            "q", [{"a": 1}, JobSpec(payload={"b": 2}, job_id="old"), {"c": 3}], now_ms=T0 + 1
        )
    assert dump() == before


async def test_publish_many_bad_item_sends_nothing(omniq, raw):
    with pytest.raises(InvalidArgument):
        await omniq.publish_many("q", [{"a": 1}] * 1500 + ["not an object"], now_ms=T0)
    assert raw.dbsize() == 0


async def test_publish_due_and_delay(omniq, raw):
    a = await omniq.publish("q", {}, due_ms=T0 + 100, now_ms=T0)
    b = await omniq.publish("q", {}, delay_ms=100, now_ms=T0)
    c = await omniq.publish("q", {}, due_ms=T0 - 5, now_ms=T0)  # due in the past: ready now
    # equal scores sort by member: ids made in the same millisecond are in random order
    assert raw.zrange(qk("q", "delayed"), 0, -1, withscores=True) == sorted([
        (a, T0 + 100.0),
        (b, T0 + 100.0),
    ])
    assert raw.lrange(qk("q", "wait"), 0, -1) == [c]
    assert "due_ms" not in raw.hgetall(jk("q", c))
    with pytest.raises(InvalidArgument):
        await omniq.publish("q", {}, due_ms=T0 + 1, delay_ms=1, now_ms=T0)


@pytest.mark.parametrize("n", [10, 2500], ids=["one-chunk", "pipelined-chunks"])
async def test_publish_many_server_error_is_omniq_error(omniq, raw, n):
    raw.set(qk("q", "wait"), "not a list")  # every RPUSH now fails with WRONGTYPE
    with pytest.raises(OmniqError) as ei:
        await omniq.publish_many("q", [{"i": i} for i in range(n)], now_ms=T0)
    assert "WRONGTYPE" in str(ei.value)


async def test_publish_wakes_waiting_consumers(omniq, raw):
    chan = qk("q", "wake")
    sub = raw.pubsub()
    sub.subscribe(chan)
    try:
        assert sub.get_message(timeout=2.0)["type"] == "subscribe"
        await omniq.publish("q", {}, now_ms=T0)
        msg = sub.get_message(timeout=2.0)
        assert msg is not None
        assert (msg["channel"], msg["type"]) == (chan, "message")
        await omniq.publish("q", {}, delay_ms=10, now_ms=T0)  # not ready: no wake-up
        raw.publish(chan, "sentinel")  # channel order: a wake-up would arrive first
        assert sub.get_message(timeout=2.0)["data"] == "sentinel"
    finally:
        sub.close()
