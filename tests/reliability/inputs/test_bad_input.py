"""Bad-input matrix: every case is refused with a typed error (or gives its documented
result), and nothing is partially written: the whole keyspace of a populated database is
compared before and after. The table of cases is in docs/reliability.md, "Bad input".
The schedule scripts' cases (raw_cases.SCHEDULE_CASES) run on a database that also holds
schedules (inputs_util.populate_schedules), the dependency scripts' and enqueue's
dependency extras (raw_cases.DEPS_CASES) on one that also holds dependencies
(inputs_util.populate_deps)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import redis
from inputs_util import T0, Q, World
from raw_cases import (
    CASES,
    DEPS_CASES,
    DEPS_WRITES,
    SCHEDULE_CASES,
    SCHEDULE_WRITES,
    WRITES_BEFORE_EVENTS_MAXLEN,
)

from omniq import (
    AsyncOmniq,
    CounterError,
    DependencyCycle,
    DependencyError,
    DependencyNotFound,
    DuplicateJobError,
    InvalidArgument,
    InvalidPayload,
    JobNotFound,
    JobSpec,
    LaneMismatch,
    LeaseLost,
    ScheduleNotFound,
)
from omniq._protocol.enqueue import JobOptions
from omniq._protocol.schedules import ScheduleSpec
from omniq.aio.worker import Fail, Worker
from omniq.types import Ack

NOW = T0 + 100


async def refused(world: World, exc: type[Exception], call: Any, code: str | None = None) -> None:
    """``call`` (a coroutine) raises ``exc`` (with ``code``) and changes no key."""
    before = world.snap()
    with pytest.raises(exc) as ei:
        await call
    if code is not None:
        assert getattr(ei.value, "code", None) == code
    world.unchanged(before)


def _nested(depth: int) -> list[Any]:
    v: list[Any] = []
    for _ in range(depth - 1):
        v = [v]
    return v


# -- payloads ------------------------------------------------------------------------------


async def test_payload_string(world):
    await refused(world, InvalidPayload, world.client.publish(Q, "text"))


async def test_payload_number(world):
    await refused(world, InvalidPayload, world.client.publish(Q, 42))


async def test_payload_null(world):
    await refused(world, InvalidPayload, world.client.publish(Q, None))


async def test_payload_nan(world):
    await refused(world, InvalidPayload, world.client.publish(Q, {"x": math.nan}))


async def test_payload_infinity(world):
    await refused(world, InvalidPayload, world.client.publish(Q, [1, -math.inf]))


async def test_payload_non_utf8_bytes(world):
    await refused(world, InvalidPayload, world.client.publish(Q, {"b": b"\xff\xfe"}))


async def test_payload_text_that_is_not_utf8(world):
    # a lone surrogate cannot be encoded as UTF-8
    await refused(world, InvalidPayload, world.client.publish(Q, {"s": "\ud800"}))


async def test_payload_nested_65_levels(world):
    await refused(world, InvalidPayload, world.client.publish(Q, _nested(65)))


async def test_payload_over_size_limit(world, omniq_redis_url):
    async with AsyncOmniq(url=omniq_redis_url, max_payload_bytes=64) as small:
        await refused(world, InvalidPayload, small.publish(Q, {"s": "x" * 64}))


async def test_publish_many_with_one_bad_payload_writes_none(world):
    await refused(world, InvalidPayload,
                  world.client.publish_many(Q, [{"ok": 1}, {"ok": 2}, {"bad": math.nan}]))


# -- queue names ---------------------------------------------------------------------------


async def test_queue_name_empty(world):
    await refused(world, InvalidArgument, world.client.publish("", {}))


async def test_queue_name_too_long(world):
    await refused(world, InvalidArgument, world.client.publish("q" * 129, {}))


async def test_queue_name_with_braces(world):
    await refused(world, InvalidArgument, world.client.publish("{q}", {}))


async def test_queue_name_with_space(world):
    await refused(world, InvalidArgument, world.client.reserve("my queue"))


async def test_queue_name_with_control_character(world):
    await refused(world, InvalidArgument, world.client.pause("q\n"))


# -- gids ----------------------------------------------------------------------------------


async def test_gid_too_long(world):
    await refused(world, InvalidArgument, world.client.publish(Q, {}, gid="g" * 257))


async def test_gid_with_control_character(world):
    await refused(world, InvalidArgument,
                  world.client.publish_many(Q, [JobSpec(payload={}, gid="g\x01")]))


async def test_gid_blank_means_ungrouped(world):
    # documented: a gid of only whitespace is trimmed to "" (ungrouped)
    jid = await world.client.publish(Q, {}, job_id="blank", gid="   ", now_ms=NOW)
    assert "gid" not in world.raw.hgetall("{q}:job:" + jid)
    assert world.raw.lrange("{q}:wait", -1, -1) == [jid]


async def test_gid_with_braces_stays_in_the_queue_slot(world):
    # documented (D21): braces in a gid are data; every key still starts with "{q}"
    before = set(world.snap())
    await world.client.publish(Q, {}, job_id="br", gid="x}{y", now_ms=NOW)
    new = set(world.snap()) - before
    assert new == {"{q}:job:br", "{q}:g:x}{y:wait"}
    assert world.raw.hget("{q}:job:br", "gid") == "x}{y"


async def test_ids_with_inner_spaces_are_data(world):
    # documented: only surrounding whitespace is refused; inner spaces are part of the id
    before = set(world.snap())
    await world.client.publish(Q, {}, job_id="a b", gid="team one", now_ms=NOW)
    assert set(world.snap()) - before == {"{q}:job:a b", "{q}:g:team one:wait"}


# -- job ids -------------------------------------------------------------------------------


async def test_job_id_empty(world):
    await refused(world, InvalidArgument, world.client.publish(Q, {}, job_id=""))


async def test_job_id_too_long(world):
    await refused(world, InvalidArgument, world.client.retry_failed(Q, "j" * 257))


async def test_job_id_with_control_character(world):
    await refused(world, InvalidArgument, world.client.remove_job(Q, "w\x001", "wait"))


async def test_job_id_with_surrounding_whitespace(world):
    await refused(world, InvalidArgument, world.client.publish(Q, {}, job_id=" w1"))


async def test_job_id_that_exists(world):
    await refused(world, DuplicateJobError, world.client.publish(Q, {"new": 1}, job_id="c1"),
                  "DUPLICATE")


async def test_job_id_repeated_in_one_batch(world):
    jobs = [JobSpec(payload={}, job_id="n1"), JobSpec(payload={}, job_id="n1")]
    await refused(world, DuplicateJobError, world.client.publish_many(Q, jobs), "DUPLICATE")


# -- numeric options -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts",
    [
        pytest.param({"timeout_ms": 0}, id="timeout-zero"),
        pytest.param({"timeout_ms": -1}, id="timeout-negative"),
        pytest.param({"max_attempts": 0}, id="attempts-zero"),
        pytest.param({"max_attempts": -3}, id="attempts-negative"),
        pytest.param({"backoff_ms": -1}, id="backoff-negative"),
        pytest.param({"delay_ms": -1}, id="delay-negative"),
        pytest.param({"due_ms": -1}, id="due-negative"),
        pytest.param({"due_ms": NOW + 5, "delay_ms": 5}, id="due-and-delay"),
        pytest.param({"group_limit": -1, "gid": "g"}, id="group-limit-negative"),
        pytest.param({"now_ms": -1}, id="now-negative"),
        pytest.param({"due_ms": 10**20}, id="due-beyond-2^53"),
        pytest.param({"timeout_ms": 2**53}, id="timeout-beyond-2^53"),
        pytest.param({"timeout_ms": 1.5}, id="timeout-float"),
        pytest.param({"max_attempts": "3"}, id="attempts-text"),
        pytest.param({"backoff_ms": True}, id="backoff-bool"),
        pytest.param({"keep_completed_ms": -1}, id="keep-completed-ms-negative"),
        pytest.param({"keep_failed_ms": -1}, id="keep-failed-ms-negative"),
        pytest.param({"keep_completed_ms": 1.5}, id="keep-completed-ms-float"),
        pytest.param({"keep_failed_ms": "60000"}, id="keep-failed-ms-text"),
        pytest.param({"keep_completed_ms": True}, id="keep-completed-ms-bool"),
        pytest.param({"keep_failed_ms": 2**53}, id="keep-failed-ms-beyond-2^53"),
        pytest.param({"dedup_key": ""}, id="dedup-key-empty"),
        pytest.param({"dedup_key": " k"}, id="dedup-key-padded"),
        pytest.param({"dedup_key": "é" * 129}, id="dedup-key-258-bytes"),
        pytest.param({"dedup_key": 7}, id="dedup-key-int"),
        pytest.param({"dedup_ttl_ms": 5}, id="dedup-ttl-without-key"),
        pytest.param({"dedup_key": "k", "dedup_ttl_ms": -1}, id="dedup-ttl-negative"),
        pytest.param({"dedup_key": "k", "dedup": "merge"}, id="dedup-mode-unknown"),
        pytest.param({"dedup": "replace"}, id="dedup-replace-without-key"),
        pytest.param({"expires_ms": -1}, id="expires-negative"),
        pytest.param({"expires_ms": 2**53}, id="expires-beyond-2^53"),
        pytest.param({"expire_in_ms": 1.5}, id="expire-in-float"),
        pytest.param({"expires_ms": NOW + 5, "expire_in_ms": 5}, id="expires-and-expire-in"),
        pytest.param({"run_timeout_ms": -1}, id="run-timeout-negative"),
        pytest.param({"run_timeout_ms": "5"}, id="run-timeout-text"),
        pytest.param({"backoff": "linear"}, id="backoff-unknown"),
        pytest.param({"backoff_max_ms": -1}, id="backoff-max-negative"),
        pytest.param({"backoff_jitter": 1}, id="backoff-jitter-int"),
        pytest.param({"group_order": "strict"}, id="strict-without-gid"),
        pytest.param({"group_order": "lifo", "gid": "g"}, id="group-order-unknown"),
        pytest.param({"on_failure": "block", "gid": "g"}, id="block-without-strict"),
        pytest.param({"on_failure": "retry", "gid": "g", "group_order": "strict"},
                     id="on-failure-unknown"),
    ],
)
async def test_publish_option(world, opts):
    await refused(world, InvalidArgument, world.client.publish(Q, {}, **opts))


@pytest.mark.parametrize(
    "opts",
    [
        pytest.param({"keep_completed": -1}, id="keep-completed-negative"),
        pytest.param({"keep_failed": -1}, id="keep-failed-negative"),
        pytest.param({"keep_failed": 1.0}, id="keep-failed-float"),
        pytest.param({"child_ttl_ms": -1}, id="child-ttl-negative"),
        pytest.param({"max_payload_bytes": 0}, id="max-payload-zero"),
        pytest.param({"events_maxlen": -1}, id="events-maxlen-negative"),
        pytest.param({"events_maxlen": 1.5}, id="events-maxlen-float"),
        pytest.param({"events_maxlen": "10"}, id="events-maxlen-text"),
        pytest.param({"events_maxlen": True}, id="events-maxlen-bool"),
        pytest.param({"events_maxlen": None}, id="events-maxlen-none"),
        pytest.param({"events_maxlen": 2**53}, id="events-maxlen-beyond-2^53"),
        pytest.param({"keep_completed_ms": -1}, id="keep-completed-ms-negative"),
        pytest.param({"keep_failed_ms": -1}, id="keep-failed-ms-negative"),
        pytest.param({"keep_failed_ms": 0.5}, id="keep-failed-ms-float"),
    ],
)
def test_client_option(omniq_redis_url, raw, opts):
    with pytest.raises(InvalidArgument):
        AsyncOmniq(url=omniq_redis_url, **opts)
    assert raw.dbsize() == 0


async def test_worker_concurrency_zero(world):
    with pytest.raises(InvalidArgument):
        Worker(world.client, Q, lambda ctx: None, concurrency=0)


async def test_reserve_count_zero_and_1001(world):
    await refused(world, InvalidArgument, world.client.reserve_many(Q, 0))
    await refused(world, InvalidArgument, world.client.reserve_many(Q, 1001))


async def test_maintenance_batch_zero(world):
    await refused(world, InvalidArgument, world.client.promote_delayed(Q, max_promote=0))
    await refused(world, InvalidArgument, world.client.reap_expired(Q, max_reap=-1))


# -- batches -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts",
    [
        pytest.param({"keep_completed_ms": -1}, id="keep-completed-ms-negative"),
        pytest.param({"keep_failed_ms": -5}, id="keep-failed-ms-negative"),
        pytest.param({"keep_failed_ms": 1.0}, id="keep-failed-ms-float"),
        pytest.param({"run_timeout_ms": -1}, id="run-timeout-negative"),
        pytest.param({"backoff": "exp2"}, id="backoff-unknown"),
        # (a valid batch dedup_ttl_ms / dedup= applies to the jobs with a dedup_key)
        pytest.param({"dedup_ttl_ms": -5}, id="dedup-ttl-negative"),
        pytest.param({"dedup_ttl_ms": 1.5}, id="dedup-ttl-float"),
        pytest.param({"dedup": "merge"}, id="dedup-mode-unknown"),
        pytest.param({"group_order": "strict"}, id="strict-without-gid"),
    ],
)
async def test_publish_many_option(world, opts):
    await refused(world, InvalidArgument,
                  world.client.publish_many(Q, [{"n": 1}, {"n": 2}], **opts))


async def test_publish_many_with_one_bad_keep_ms_writes_none(world):
    jobs = [JobSpec(payload={}, job_id="k1", keep_completed_ms=10),
            JobSpec(payload={}, job_id="k2", keep_failed_ms=-1)]
    await refused(world, InvalidArgument, world.client.publish_many(Q, jobs))


async def test_publish_many_with_one_bad_control_option_writes_none(world):
    jobs = [JobSpec(payload={}, job_id="k1", dedup_key="a"),
            JobSpec(payload={}, job_id="k2", dedup_key="b", dedup="merge")]  # type: ignore[arg-type]
    await refused(world, InvalidArgument, world.client.publish_many(Q, jobs))


async def test_publish_many_of_0(world):
    before = world.snap()
    assert await world.client.publish_many(Q, []) == []
    world.unchanged(before)


async def test_retry_batch_of_0(world):
    before = world.snap()
    assert await world.client.retry_failed_batch(Q, [], now_ms=NOW) == []
    world.unchanged(before)


async def test_retry_batch_of_100_refused_items(world):
    # documented: a full batch is accepted; each id gets its own refusal, nothing changes
    ids = ["w1", "c1", "a1", *[f"x{i}" for i in range(97)]]
    before = world.snap()
    res = await world.client.retry_failed_batch(Q, ids, now_ms=NOW)
    world.unchanged(before)
    assert [(r.job_id, r.status, r.reason) for r in res[:4]] == [
        ("w1", "ERR", "NOT_FAILED"), ("c1", "ERR", "NOT_FAILED"), ("a1", "ERR", "NOT_FAILED"),
        ("x0", "ERR", "NO_JOB")]
    assert len(res) == 100
    assert {r.reason for r in res[3:]} == {"NO_JOB"}


async def test_retry_batch_of_101(world):
    await refused(world, InvalidArgument,
                  world.client.retry_failed_batch(Q, ["f1"] + [f"x{i}" for i in range(100)]))


async def test_remove_batch_of_0(world):
    before = world.snap()
    assert await world.client.remove_jobs_batch(Q, "wait", [], now_ms=NOW) == []
    world.unchanged(before)


async def test_remove_batch_of_100_refused_items(world):
    ids = ["a1", "d1", "g1", *[f"x{i}" for i in range(97)]]
    before = world.snap()
    res = await world.client.remove_jobs_batch(Q, "wait", ids, now_ms=NOW)
    world.unchanged(before)
    assert [(r.job_id, r.reason) for r in res[:3]] == [
        ("a1", "ACTIVE"), ("d1", "LANE_MISMATCH"), ("g1", "NOT_IN_LANE")]
    assert len(res) == 100
    assert {r.reason for r in res[3:]} == {"NO_JOB"}


async def test_remove_batch_of_101(world):
    await refused(world, InvalidArgument,
                  world.client.remove_jobs_batch(Q, "wait", [f"x{i}" for i in range(101)]))


async def test_batch_given_as_a_string(world):
    await refused(world, InvalidArgument, world.client.retry_failed_batch(Q, "f1"))


# -- lanes ---------------------------------------------------------------------------------


async def test_remove_from_unknown_lane(world):
    await refused(world, InvalidArgument, world.client.remove_job(Q, "w1", "active"))


async def test_remove_batch_from_unknown_lane(world):
    await refused(world, InvalidArgument, world.client.remove_jobs_batch(Q, "WAIT", ["w1"]))


async def test_remove_from_the_wrong_lane(world):
    await refused(world, LaneMismatch, world.client.remove_job(Q, "w1", "delayed", now_ms=NOW),
                  "LANE_MISMATCH")


async def test_remove_grouped_job_from_wait(world):
    await refused(world, LaneMismatch, world.client.remove_job(Q, "g1", "wait", now_ms=NOW),
                  "NOT_IN_LANE")


async def test_remove_active_job(world):
    await refused(world, LaneMismatch, world.client.remove_job(Q, "a1", "wait", now_ms=NOW),
                  "ACTIVE")


async def test_retry_a_job_that_did_not_fail(world):
    await refused(world, LaneMismatch, world.client.retry_failed(Q, "c1", now_ms=NOW),
                  "NOT_FAILED")


# -- leases --------------------------------------------------------------------------------


async def test_ack_with_a_stale_token(world):
    a1 = world.leases["a1"]
    await world.client.reap_expired(Q, now_ms=a1.lock_until_ms)  # a1 retries later
    await world.client.promote_delayed(Q, now_ms=a1.lock_until_ms + 10_000)
    res = await world.client.reserve_many(Q, 10, now_ms=a1.lock_until_ms + 10_001)
    again = next(j for j in res.jobs if j.job_id == "a1")
    assert again.lease_token != a1.lease_token
    await refused(world, LeaseLost,
                  world.client.ack_success(Q, "a1", a1.lease_token, now_ms=NOW), "TOKEN_MISMATCH")


async def test_ack_with_an_empty_token(world):
    await refused(world, LeaseLost, world.client.ack_fail(Q, "a1", "", "x", now_ms=NOW),
                  "TOKEN_REQUIRED")


async def test_ack_with_a_foreign_token(world):
    token = world.leases["a2"].lease_token
    await refused(world, LeaseLost, world.client.ack_success(Q, "a1", token, now_ms=NOW),
                  "TOKEN_MISMATCH")


async def test_ack_twice(world):
    a1 = world.leases["a1"]
    await world.client.ack_success(Q, "a1", a1.lease_token, now_ms=NOW)
    await refused(world, LeaseLost,
                  world.client.ack_success(Q, "a1", a1.lease_token, now_ms=NOW + 1),
                  "TOKEN_MISMATCH")
    await refused(world, LeaseLost,
                  world.client.ack_fail(Q, "a1", a1.lease_token, "late", now_ms=NOW + 2),
                  "TOKEN_MISMATCH")


async def test_heartbeat_a_completed_job(world):
    c1 = world.leases["c1"]
    await refused(world, LeaseLost,
                  world.client.heartbeat(Q, "c1", c1.lease_token, now_ms=NOW), "TOKEN_MISMATCH")


async def test_heartbeat_an_unknown_job(world):
    await refused(world, LeaseLost, world.client.heartbeat(Q, "ghost", "f" * 40, now_ms=NOW),
                  "TOKEN_MISMATCH")


async def test_lease_calls_with_an_empty_job_id(world):
    await refused(world, InvalidArgument, world.client.ack_success(Q, "", "t"))
    await refused(world, InvalidArgument, world.client.heartbeat(Q, "", "t"))


async def test_fused_ack_with_refused_acks_writes_nothing(world):
    # the worker's ack_reserve path: refused acks leave every key alone (stats included)
    c1, a2 = world.leases["c1"], world.leases["a2"]
    acks = [Ack("c1", c1.lease_token, True, ""), Ack("a1", a2.lease_token, False, "x"),
            Ack("a1", "", True, "")]
    before = world.snap()
    outcomes, res = await world.client.ack_reserve(Q, acks, 0, now_ms=NOW)
    world.unchanged(before)
    assert res is None
    assert [type(o) for o in outcomes] == [LeaseLost] * 3
    assert [o.code for o in outcomes] == ["TOKEN_MISMATCH", "TOKEN_MISMATCH", "TOKEN_REQUIRED"]


async def test_ack_with_an_unserialisable_result(world):
    a1 = world.leases["a1"]
    await refused(world, InvalidPayload,
                  world.client.ack_success(Q, "a1", a1.lease_token, result=object()))


# -- parent / child ------------------------------------------------------------------------


async def test_child_ack_on_unknown_key(world):
    # not an error by contract (-1, as ctx.exec and the official clients), and no write
    before = world.snap()
    assert await world.client.child_ack("nobody", "c1") == -1
    world.unchanged(before)


async def test_childs_init_expected_zero(world):
    await refused(world, InvalidArgument, world.client.childs_init("new", 0))


async def test_childs_init_negative_ttl(world):
    await refused(world, InvalidArgument, world.client.childs_init("new", 2, ttl_ms=-5))


async def test_childs_init_twice(world):
    await refused(world, CounterError, world.client.childs_init("parent", 5), "ALREADY_INIT")


async def test_child_key_with_braces(world):
    await refused(world, InvalidArgument, world.client.child_ack("a}b", "c1"))


# -- handlers ------------------------------------------------------------------------------


async def _run_one(world: World, handler: Any) -> dict[str, str]:
    c = world.client
    jid = await c.publish("h", {"n": 1}, max_attempts=3)
    await Worker(c, "h", handler, drain=True).run()
    return world.raw.hgetall("{h}:job:" + jid)


async def test_handler_returns_an_unserialisable_value(world):
    h = await _run_one(world, lambda ctx: object())
    assert (h["state"], h["attempt"], h["max_attempts"]) == ("failed", "1", "3")  # no retry
    assert h["last_error"].startswith("InvalidPayload: cannot convert object to JSON")
    assert "result" not in h


async def test_handler_returns_nan(world):
    async def handler(ctx: Any) -> float:
        return math.nan

    h = await _run_one(world, handler)
    assert (h["state"], h["attempt"]) == ("failed", "1")
    assert h["last_error"] == (
        "InvalidPayload: payload contains NaN or Infinity, which JSON cannot carry")


async def test_handler_raises_fail_with_huge_message(world):
    # documented: the error is cut to 4096 bytes on a character boundary
    def handler(ctx: Any) -> None:
        raise Fail("é" * 5000)

    h = await _run_one(world, handler)
    assert h["state"] == "failed"
    assert len(h["last_error"].encode()) <= 4096
    assert h["last_error"].startswith("Fail: éé")


# -- the scripts themselves, called with bad ARGV ------------------------------------------


@pytest.mark.parametrize(("script", "key", "args", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
async def test_script_with_bad_argv(world, script, key, args, expected):
    """An ERR reply (never a Lua runtime error), and no key written."""
    args = [world.leases[a[1:]].lease_token if a.startswith("@") else a for a in args]
    before = world.snap()
    try:
        reply = world.script(script, key, *args)
    except redis.ResponseError as exc:  # pragma: no cover - the failure this test looks for
        pytest.fail(f"Lua runtime error: {exc}")
    assert reply == expected
    world.unchanged(before)


# -- events, progress ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"since": "bogus"}, id="since-text"),
        pytest.param({"since": -5}, id="since-negative"),
        pytest.param({"since": 1.5}, id="since-float"),
        pytest.param({"since": True}, id="since-bool"),
        pytest.param({"since": None}, id="since-none"),
        pytest.param({"since": "1-2-3"}, id="since-three-parts"),
        pytest.param({"since": "01-0"}, id="since-leading-zero"),
        pytest.param({"since": "18446744073709551616-0"}, id="since-beyond-u64"),
        pytest.param({"since": 2**53}, id="since-ms-beyond-2^53"),
        pytest.param({"since": {"q": "bogus"}}, id="cursor-bad-id"),
        pytest.param({"since": {"q": 5}}, id="cursor-int-id"),
        pytest.param({"types": ["nope"]}, id="types-unknown"),
        pytest.param({"types": ["completed", "Completed"]}, id="types-one-unknown"),
        pytest.param({"types": "nope"}, id="types-unknown-string"),
        pytest.param({"types": []}, id="types-empty"),
    ],
)
async def test_events_argument(world, kwargs):
    before = world.snap()
    with pytest.raises(InvalidArgument):
        world.client.events(Q, **kwargs)  # refused when called, before any read
    world.unchanged(before)


@pytest.mark.parametrize("queue", ["", "{q}", "my queue", ["q", ""], []])
async def test_events_queue_name(world, queue):
    before = world.snap()
    with pytest.raises(InvalidArgument):
        world.client.events(queue)
    world.unchanged(before)


async def test_events_cursor_of_another_queue(world):
    stream = world.client.events(Q, since={"other": "0-0"})
    before = world.snap()
    with pytest.raises(InvalidArgument):
        await stream.__anext__()
    await stream.aclose()
    world.unchanged(before)


@pytest.mark.parametrize(
    "bad", [pytest.param(-1, id="negative"), pytest.param("5", id="text"),
                pytest.param(True, id="bool")])
async def test_wait_timeout(world, bad):
    await refused(world, InvalidArgument, world.client.wait(Q, "w1", timeout=bad))


async def test_wait_bad_job_id(world):
    await refused(world, InvalidArgument, world.client.wait(Q, "w\x001"))


async def test_wait_unknown_job(world):
    await refused(world, JobNotFound, world.client.wait(Q, "ghost", timeout=5), "NO_JOB")


def _progress(world: World, value: Any, job_id: str = "a1") -> Any:
    return world.client.progress(Q, job_id, world.leases[job_id].lease_token, value,
                                 now_ms=NOW)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(object(), id="object"),
        pytest.param(lambda: 1, id="function"),
        pytest.param({"nested": object()}, id="nested-object"),
        pytest.param("x" * 65_535, id="string-over-64KiB"),  # 65,537 bytes quoted
        pytest.param(list(range(20_000)), id="array-over-64KiB"),
    ],
)
async def test_progress_value(world, value):
    await refused(world, InvalidArgument, _progress(world, value))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({1, 2}, id="set"),
        pytest.param({"done": frozenset({1})}, id="frozenset"),
        pytest.param(math.nan, id="nan"),
        pytest.param({"pct": math.inf}, id="infinity"),
        pytest.param(b"\x00\x01", id="bytes"),
        pytest.param({1: "a"}, id="int-key"),
    ],
)
async def test_progress_value_that_is_not_json(world, value):
    await refused(world, InvalidArgument, _progress(world, value))


async def test_progress_of_64KiB_exactly_is_accepted(world):
    # the boundary of the oversized case above: 65,536 bytes of JSON are stored as given
    value = "x" * 65_534
    await _progress(world, value)
    assert len(world.raw.hget("{q}:job:a1", "progress").encode()) == 65_536


async def test_progress_with_a_stale_token(world):
    await refused(world, LeaseLost,
                  world.client.progress(Q, "c1", world.leases["c1"].lease_token, 1, now_ms=NOW),
                  "TOKEN_MISMATCH")


async def test_progress_with_an_empty_token(world):
    await refused(world, LeaseLost, world.client.progress(Q, "a1", "", 1, now_ms=NOW),
                  "TOKEN_REQUIRED")


async def test_progress_of_a_job_no_longer_active(world):
    # the hash still holds the token but the lease is gone from the active set (a lease
    # ended behind the scripts' back): NOT_ACTIVE, and no event
    world.raw.zrem("{q}:active", "a2")
    await refused(world, LeaseLost,
                  world.client.progress(Q, "a2", world.leases["a2"].lease_token, 1, now_ms=NOW),
                  "NOT_ACTIVE")


async def test_progress_bad_arguments(world):
    token = world.leases["a1"].lease_token
    await refused(world, InvalidArgument, world.client.progress(Q, "", token, 1))
    await refused(world, InvalidArgument, world.client.progress(Q, "a1", token, 1, now_ms=-1))
    await refused(world, InvalidArgument, world.client.progress("{q}", "a1", token, 1))


async def test_cancel_bad_arguments(world):
    c = world.client
    await refused(world, InvalidArgument, c.cancel(Q, ""))
    await refused(world, InvalidArgument, c.cancel(Q, "w" * 257))
    await refused(world, InvalidArgument, c.cancel(Q, "w\x001"))
    await refused(world, InvalidArgument, c.cancel(Q, "w1", now_ms=-1))
    await refused(world, InvalidArgument, c.cancel("{q}", "w1"))
    await refused(world, InvalidArgument, c.cancel("", "w1"))


async def test_cancel_of_finished_or_unknown_job_writes_nothing(world):
    before = world.snap()
    assert await world.client.cancel(Q, "c1") == "finished"
    assert await world.client.cancel(Q, "f1") == "finished"
    assert await world.client.cancel(Q, "ghost") == "not_found"
    world.unchanged(before)


@pytest.mark.parametrize("script", sorted(WRITES_BEFORE_EVENTS_MAXLEN))
async def test_events_maxlen_cases_would_write(world, script):
    """The control of the events_maxlen rows: the same call with a good events_maxlen
    writes, and appends events to the stream."""
    if script == "resume":
        world.script("pause", "{q}:meta")
    args = [world.leases[a[1:]].lease_token if a.startswith("@") else a
            for a in WRITES_BEFORE_EVENTS_MAXLEN[script]]
    n = world.raw.xlen("{q}:events")
    before = world.snap()
    reply = world.script(script, "{q}:meta", *args, "10")
    assert reply[0] != "ERR", reply
    assert world.raw.xlen("{q}:events") > n, reply
    assert world.snap() != before


# -- rate limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(("max_jobs", "per_ms"), [
    pytest.param(0, 1000, id="max-zero"), pytest.param(-1, 1000, id="max-negative"),
    pytest.param(100_001, 1000, id="max-over-100000"), pytest.param(1.5, 1000, id="max-float"),
    pytest.param("5", 1000, id="max-text"), pytest.param(True, 1000, id="max-bool"),
    pytest.param(5, 0, id="per-zero"), pytest.param(5, -10, id="per-negative"),
    pytest.param(5, 2**53, id="per-beyond-2^53"), pytest.param(5, None, id="per-none"),
])
async def test_set_rate_limit_bad_numbers(world, max_jobs, per_ms):
    await refused(world, InvalidArgument, world.client.set_rate_limit(Q, max_jobs, per_ms))
    await refused(world, InvalidArgument,
                  world.client.set_rate_limit(Q, max_jobs, per_ms, gid="grp"))


@pytest.mark.parametrize("gid", [
    pytest.param("", id="empty"), pytest.param("  ", id="blank"), pytest.param(5, id="int"),
    pytest.param("a\nb", id="control"), pytest.param("g" * 257, id="too-long"),
])
async def test_rate_limit_bad_gid(world, gid):
    await refused(world, InvalidArgument, world.client.set_rate_limit(Q, 5, 1000, gid=gid))
    await refused(world, InvalidArgument, world.client.clear_rate_limit(Q, gid=gid))
    await refused(world, InvalidArgument, world.client.get_rate_limit(Q, gid=gid))


async def test_rate_limit_bad_queue_and_clock(world):
    await refused(world, InvalidArgument, world.client.set_rate_limit("q\n", 5, 1000))
    await refused(world, InvalidArgument, world.client.clear_rate_limit("{q}"))
    await refused(world, InvalidArgument, world.client.get_rate_limit(Q, now_ms=-1))
    await refused(world, InvalidArgument, world.client.set_rate_limit(Q, 5, 100, now_ms=-1))
    await refused(world, InvalidArgument, world.client.clear_rate_limit(Q, now_ms=1.5))
    await refused(world, InvalidArgument, world.client.rate_limits(Q, now_ms=-1))


async def test_queue_rate_limit_below_the_partition_count(world):
    await world.client.partition_queue("rlp", 4)
    await refused(world, InvalidArgument, world.client.set_rate_limit("rlp", 3, 1000))


@pytest.mark.parametrize("script", ["set_rate_limit", "clear_rate_limit"])
async def test_rate_limit_cases_would_write(world, script):
    """The control of the rate-limit rows: the same calls with good arguments write."""
    before = world.snap()
    args = ["0", "grp", "5", "1000"]
    if script == "clear_rate_limit":
        world.script("set_rate_limit", "{q}:meta", *args)
        before = world.snap()
        args = ["0", "grp"]
    assert world.script(script, "{q}:meta", *args) == ["OK", "1"]
    assert world.snap() != before


# -- schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "key", "args", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in SCHEDULE_CASES])
async def test_schedule_script_with_bad_argv(sworld, script, key, args, expected):
    """The schedule scripts, called directly on a database with schedules: the typed
    refusal (or, for a call that finds nothing to do, its reply), and no key written."""
    before = sworld.snap()
    try:
        reply = sworld.script(script, key, *args)
    except redis.ResponseError as exc:  # pragma: no cover - the failure this test looks for
        pytest.fail(f"Lua runtime error: {exc}")
    assert reply == expected
    sworld.unchanged(before)


@pytest.mark.parametrize(("script", "args"),
                         [pytest.param(*c[1:], id=c[0]) for c in SCHEDULE_WRITES])
async def test_schedule_cases_would_write(sworld, script, args):
    """The controls of the schedule rows: the same calls with good arguments write."""
    before = sworld.snap()
    reply = sworld.script(script, "{q}:meta", *args)
    assert reply[0] == "OK", reply
    assert sworld.snap() != before


# -- schedules through the client: refused before anything is written -----------------------

MIN = 60_000


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"cron": "61 * * * *"}, id="cron-minute-61"),
        pytest.param({"cron": "* * * *"}, id="cron-four-fields"),
        pytest.param({"cron": "* * * * * * *"}, id="cron-seven-fields"),
        pytest.param({"cron": "60 * * * * *"}, id="cron-second-60"),
        pytest.param({"cron": "@reboot"}, id="cron-unknown-alias"),
        pytest.param({"cron": ""}, id="cron-empty"),
        pytest.param({"cron": "   "}, id="cron-blank"),
        pytest.param({"cron": 5}, id="cron-int"),
        pytest.param({"cron": "0 9 * * MON", "tz": "Mars/Olympus"}, id="tz-unknown"),
        pytest.param({"cron": "0 9 * * MON", "tz": "Europe/ Paris"}, id="tz-with-space"),
        pytest.param({"cron": "0 9 * * MON", "tz": ""}, id="tz-empty"),
        pytest.param({"cron": "0 9 * * MON", "tz": None}, id="tz-none"),
        pytest.param({"cron": "0 9 * * MON", "tz": "Z" * 65}, id="tz-65"),
        pytest.param({"cron": "0 * * * *", "every_ms": MIN}, id="cron-and-every"),
        pytest.param({}, id="neither-cron-nor-every"),
        pytest.param({"every_ms": 999}, id="every-999"),
        pytest.param({"every_ms": 0}, id="every-zero"),
        pytest.param({"every_ms": -MIN}, id="every-negative"),
        pytest.param({"every_ms": 1500.5}, id="every-float"),
        pytest.param({"every_ms": True}, id="every-bool"),
        pytest.param({"every_ms": "60000"}, id="every-text"),
        pytest.param({"every_ms": 2**53}, id="every-beyond-2^53"),
        pytest.param({"every_ms": MIN, "tz": "Europe/Paris"}, id="tz-with-every"),
        pytest.param({"every_ms": MIN, "start_ms": -1}, id="start-negative"),
        pytest.param({"every_ms": MIN, "end_ms": -1}, id="end-negative"),
        pytest.param({"every_ms": MIN, "start_ms": NOW + 10, "end_ms": NOW + 5},
                     id="end-before-start"),
        pytest.param({"every_ms": MIN, "end_ms": NOW - 1}, id="no-occurrence-left"),
        pytest.param({"cron": "0 0 30 2 *"}, id="cron-never-matches"),
        pytest.param({"every_ms": MIN, "misfire": "twice"}, id="misfire-unknown"),
        pytest.param({"every_ms": MIN, "misfire": "ONCE"}, id="misfire-upper-case"),
        pytest.param({"every_ms": MIN, "misfire": None}, id="misfire-none"),
        pytest.param({"every_ms": MIN, "misfire_grace_ms": -1}, id="grace-negative"),
        pytest.param({"every_ms": MIN, "jitter_ms": -1}, id="jitter-negative"),
        pytest.param({"every_ms": MIN, "jitter_ms": 0.5}, id="jitter-float"),
        pytest.param({"every_ms": MIN, "payload": "text"}, id="payload-string"),
        pytest.param({"every_ms": MIN, "payload": {"x": math.nan}}, id="payload-nan"),
        pytest.param({"every_ms": MIN, "max_attempts": 0}, id="max-attempts-zero"),
        pytest.param({"every_ms": MIN, "timeout_ms": 0}, id="timeout-zero"),
        pytest.param({"every_ms": MIN, "gid": "g\x01"}, id="gid-control-char"),
        pytest.param({"every_ms": MIN, "group_order": "strict"}, id="strict-without-gid"),
        pytest.param({"every_ms": MIN, "dedup": "replace"}, id="dedup-without-key"),
        pytest.param({"every_ms": MIN, "dedup_key": ""}, id="dedup-key-empty"),
        pytest.param({"every_ms": MIN, "expire_in_ms": -1}, id="expire-in-negative"),
        pytest.param({"every_ms": MIN, "backoff": "linear"}, id="backoff-unknown"),
        pytest.param({"every_ms": MIN, "now_ms": -1}, id="now-negative"),
    ],
)
async def test_schedule_definition(world, kwargs):
    await refused(world, InvalidArgument, world.client.schedule(Q, "s", **kwargs))


@pytest.mark.parametrize("kwargs", [
    pytest.param({"due_ms": NOW + MIN}, id="due-ms"),
    pytest.param({"delay_ms": MIN}, id="delay-ms"),
    pytest.param({"expires_ms": NOW + MIN}, id="expires-ms"),
])
async def test_schedule_takes_no_absolute_job_times(world, kwargs):
    """A schedule's jobs are due at their occurrence and expire relative to the fire:
    ``schedule()`` has no ``due_ms``, ``delay_ms`` or ``expires_ms`` (a TypeError, as any
    unknown keyword), and the definition refuses them when given as job options."""
    async def call() -> Any:
        return await world.client.schedule(Q, "s", every_ms=MIN, **kwargs)

    await refused(world, TypeError, call())
    options = JobOptions(max_attempts=3, timeout_ms=30_000, backoff_ms=0, **kwargs)
    with pytest.raises(InvalidArgument):
        ScheduleSpec("s", cron=None, every_ms=MIN, tz="UTC", start_ms=None, end_ms=None,
                     misfire="once", misfire_grace_ms=0, jitter_ms=0, payload=b"{}",
                     options=options)


@pytest.mark.parametrize("name", [
    pytest.param("", id="empty"), pytest.param("a\nb", id="newline"),
    pytest.param("a\x7fb", id="del"), pytest.param("s" * 257, id="257-chars"),
    pytest.param("é" * 129, id="258-bytes"), pytest.param(5, id="int"),
    pytest.param(None, id="none"), pytest.param("   ", id="blank"),
])
async def test_schedule_bad_name(sworld, name):
    c = sworld.client
    await refused(sworld, InvalidArgument, c.schedule(Q, name, every_ms=MIN))
    await refused(sworld, InvalidArgument, c.unschedule(Q, name))
    await refused(sworld, InvalidArgument, c.pause_schedule(Q, name))
    await refused(sworld, InvalidArgument, c.resume_schedule(Q, name))
    await refused(sworld, InvalidArgument, c.get_schedule(Q, name))


async def test_schedule_bad_queue(sworld):
    c = sworld.client
    await refused(sworld, InvalidArgument, c.schedule("{q}", "s", every_ms=MIN))
    await refused(sworld, InvalidArgument, c.schedule("q\n", "s", every_ms=MIN))
    await refused(sworld, InvalidArgument, c.fire_schedules(""))
    await refused(sworld, InvalidArgument, c.schedules("my queue"))
    await refused(sworld, InvalidArgument, c.fire_schedules(Q, now_ms=-1))
    await refused(sworld, InvalidArgument, c.pause_schedule(Q, "s1", now_ms=1.5))
    await refused(sworld, InvalidArgument, c.resume_schedule(Q, "sp", now_ms=-1))


async def test_schedule_replacement_without_occurrences_keeps_the_stored_one(sworld):
    # s1 exists; a new timing that has no occurrence left is refused and changes nothing
    await refused(sworld, InvalidArgument,
                  sworld.client.schedule(Q, "s1", every_ms=MIN, end_ms=NOW - 1, now_ms=NOW))


async def test_pause_and_resume_of_an_unknown_schedule(sworld):
    await refused(sworld, ScheduleNotFound, sworld.client.pause_schedule(Q, "ghost"),
                  "NO_SCHEDULE")
    await refused(sworld, ScheduleNotFound, sworld.client.resume_schedule(Q, "ghost"),
                  "NO_SCHEDULE")


async def test_schedule_calls_that_change_nothing(sworld):
    """Documented no-ops: the same definition again, a pause of a paused schedule, a resume
    of a running one, removing a name that does not exist: no key written."""
    c = sworld.client
    before = sworld.snap()
    info = await c.schedule(Q, "s1", every_ms=60_000, now_ms=NOW)
    assert info.rev == 1
    assert await c.pause_schedule(Q, "sp", now_ms=NOW) is False
    assert await c.resume_schedule(Q, "s1", now_ms=NOW) is False
    assert await c.unschedule(Q, "ghost") is False
    sworld.unchanged(before)


async def test_schedule_name_with_surrounding_whitespace_is_one_name(sworld):
    # documented: the rule of gids, so surrounding whitespace is trimmed by every call
    c = sworld.client
    info = await c.schedule(Q, " n1 ", every_ms=MIN, now_ms=NOW)
    assert info.name == "n1"
    assert await c.get_schedule(Q, " n1 ") is not None
    assert await c.pause_schedule(Q, " n1 ", now_ms=NOW) is True
    assert await c.unschedule(Q, " n1 ") is True


# -- dependencies -----------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "key", "args", "expected"),
                         [pytest.param(*c[1:], id=c[0]) for c in DEPS_CASES])
async def test_deps_script_with_bad_argv(dworld, script, key, args, expected):
    """deps_link, deps_resolve, deps_pending, deps_ack and enqueue's dependency extras,
    called directly on a database holding dependencies and outbox ops: the typed refusal,
    and no key written."""
    before = dworld.snap()
    try:
        reply = dworld.script(script, key, *args)
    except redis.ResponseError as exc:  # pragma: no cover - the failure this test looks for
        pytest.fail(f"Lua runtime error: {exc}")
    assert reply == expected
    dworld.unchanged(before)


@pytest.mark.parametrize(("script", "args"),
                         [pytest.param(*c[1:], id=c[0]) for c in DEPS_WRITES])
async def test_deps_cases_would_write(dworld, script, args):
    """The controls of the dependency rows: the same calls with good arguments write."""
    before = dworld.snap()
    reply = dworld.script(script, "{q}:meta", *args)
    assert reply[0] == "OK", reply
    assert dworld.snap() != before


async def test_dep_limit(dworld):
    """A dependency on this queue with MAX_DEPENDENTS (10,000) dependents takes no more:
    DEP_LIMIT names it and nothing is written, also when the call itself would add the
    10,001st (two jobs of one call); the 10,000th is accepted."""
    from raw_cases import T, j11

    fields = [x for i in range(9_998) for x in (f"q2:d{i}", "fail")]
    dworld.raw.hset("{q}:job:b1:dependents", mapping=dict(zip(fields[::2], fields[1::2],
                                                               strict=True)))
    assert dworld.raw.hlen("{q}:job:b1:dependents") == 10_000
    before = dworld.snap()
    reply = dworld.script("enqueue", "{q}:meta", T, "1",
                          *j11(id="n1", x='{"depends_on":[["q","b1"]]}'))
    assert reply == ["ERR", "DEP_LIMIT", "q:b1"]
    dworld.unchanged(before)
    dworld.raw.hdel("{q}:job:b1:dependents", "q2:d0")
    before = dworld.snap()
    reply = dworld.script("enqueue", "{q}:meta", T, "2",
                          *j11(id="n1", x='{"depends_on":[["q","b1"]]}'),
                          *j11(id="n2", x='{"depends_on":[["q","b1"]]}'))
    assert reply == ["ERR", "DEP_LIMIT", "q:b1"]
    dworld.unchanged(before)
    assert dworld.script("enqueue", "{q}:meta", T, "1",
                         *j11(id="n1", x='{"depends_on":[["q","b1"]]}')) == ["OK", "1"]
    assert dworld.raw.hlen("{q}:job:b1:dependents") == 10_000


@pytest.mark.parametrize(("kwargs", "exc", "code"), [
    # a bare string is not a list of ids (it was read as ["b", "1"])
    pytest.param({"depends_on": "b1"}, InvalidArgument, None, id="a-string"),
    pytest.param({"depends_on": [("q",)]}, InvalidArgument, None, id="a-1-tuple"),
    pytest.param({"depends_on": [("q", "b1", 1)]}, InvalidArgument, None, id="a-3-tuple"),
    pytest.param({"depends_on": [5]}, InvalidArgument, None, id="a-number"),
    pytest.param({"depends_on": [""]}, InvalidArgument, None, id="id-empty"),
    pytest.param({"depends_on": ["b\n1"]}, InvalidArgument, None, id="id-control"),
    pytest.param({"depends_on": [("my q", "b1")]}, InvalidArgument, None, id="queue-bad"),
    pytest.param({"depends_on": [("{q}", "b1")]}, InvalidArgument, None, id="queue-braces"),
    pytest.param({"depends_on": ["b1", ("q", "b1")]}, InvalidArgument, None, id="twice"),
    pytest.param({"depends_on": [("q2", f"x{i}") for i in range(1001)]}, InvalidArgument, None,
                 id="1001"),
    pytest.param({"depends_on": ["b1"], "on_dependency_failure": "retry"}, InvalidArgument,
                 None, id="policy-unknown"),
    pytest.param({"on_dependency_failure": "sometimes"}, InvalidArgument, None,
                 id="policy-without-dependencies"),
    pytest.param({"depends_on": ["nj"], "job_id": "nj"}, DependencyCycle, "DEP_CYCLE",
                 id="itself"),
    pytest.param({"depends_on": ["ghost"]}, DependencyNotFound, "DEP_NOT_FOUND",
                 id="not-found"),
    pytest.param({"depends_on": [("q2", "ghost")]}, DependencyNotFound, "DEP_NOT_FOUND",
                 id="not-found-elsewhere"),
    pytest.param({"depends_on": ["b1", ("q2", "x1"), ("q2", "ghost")]}, DependencyNotFound,
                 "DEP_NOT_FOUND", id="one-not-found"),
])
async def test_publish_bad_dependencies(dworld, kwargs, exc, code):
    """publish refuses bad dependencies before anything is written (a dependency that
    does not exist on another queue included: it is checked by a read)."""
    await refused(dworld, exc, dworld.client.publish(Q, {}, **kwargs), code)


async def test_publish_many_bad_dependencies(dworld):
    c = dworld.client
    later = [JobSpec(payload={}, job_id="n1", depends_on=["n2"]), JobSpec(payload={}, job_id="n2")]
    await refused(dworld, DependencyCycle, c.publish_many(Q, later), "DEP_CYCLE")
    missing = [JobSpec(payload={}, job_id="n1"),
               JobSpec(payload={}, job_id="n2", depends_on=["n1", "ghost"])]
    await refused(dworld, DependencyNotFound, c.publish_many(Q, missing), "DEP_NOT_FOUND")
    policy = [JobSpec(payload={}, job_id="n1", depends_on=["b1"], on_dependency_failure="x")]
    await refused(dworld, InvalidArgument, c.publish_many(Q, policy))
    assert issubclass(DependencyNotFound, DependencyError)
