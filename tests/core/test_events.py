"""Lifecycle events: one entry per transition, written by the script that makes it, read
back through ``AsyncOmniq.events`` (plain and partitioned queues, several queues, cursors)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from core_util import T0, leased, run_script
from shared_util import qk, within

from omniq import (
    AsyncOmniq,
    DuplicateJobError,
    InvalidArgument,
    JobEvent,
    LaneMismatch,
    LeaseLost,
)
from omniq._protocol.events import EVENT_TYPES


def _stream(raw: redis.Redis, queue: str) -> list[tuple[str, dict[str, str]]]:
    return [(i, f) for i, f in raw.xrange(qk(queue, "events"))]


def _types(raw: redis.Redis, queue: str) -> list[tuple[str, str]]:
    return [(f["type"], f["id"]) for _, f in _stream(raw, queue)]


async def _take(stream: Any, n: int, seconds: float = 10.0) -> list[JobEvent]:
    async def take() -> list[JobEvent]:
        out = []
        async for event in stream:
            out.append(event)
            if len(out) == n:
                break
        return out

    return await within(take(), seconds, f"{n} events")


# -- written by the scripts -----------------------------------------------------------


async def test_every_transition_writes_exactly_its_event(omniq, raw):
    a = await omniq.publish("q", {}, job_id="a", max_attempts=2, backoff_ms=50, now_ms=T0)
    b = await omniq.publish("q", {}, job_id="b", delay_ms=100, gid="g", now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == a
    await omniq.progress("q", a, job.lease_token, {"pct": 10}, now_ms=T0 + 2)
    outcome = await omniq.ack_fail("q", a, job.lease_token, "E: one", now_ms=T0 + 3)
    assert outcome.status == "RETRY"
    assert await omniq.promote_delayed("q", now_ms=T0 + 100) == 2  # a (due T0+53) and b
    first = await omniq.reserve("q", now_ms=T0 + 101)
    second = await omniq.reserve("q", now_ms=T0 + 101)
    assert first is not None
    assert second is not None
    by_id = {first.job_id: first, second.job_id: second}
    await omniq.ack_fail("q", a, by_id[a].lease_token, "E: two", now_ms=T0 + 102)  # terminal
    await omniq.ack_success("q", b, by_id[b].lease_token, result=1, now_ms=T0 + 103)
    await omniq.retry_failed("q", a, now_ms=T0 + 104)
    await omniq.remove_job("q", a, "wait", now_ms=T0 + 105)
    await omniq.pause("q")
    await omniq.pause("q")  # already paused: no second event
    assert await omniq.resume("q")
    assert not await omniq.resume("q")  # not paused: no event
    entries = _stream(raw, "q")
    assert [(f["type"], f["id"]) for _, f in entries] == [
        ("enqueued", a), ("delayed", b), ("reserved", a), ("progress", a),
        ("retry_scheduled", a), ("promoted", a), ("promoted", b),
        ("reserved", first.job_id), ("reserved", second.job_id),
        ("failed", a), ("completed", b), ("retried", a), ("removed", a),
        ("paused", ""), ("resumed", ""),
    ]
    f = [fields for _, fields in entries]
    assert f[0] == {"type": "enqueued", "id": a, "ms": str(T0)}
    assert f[1] == {"type": "delayed", "id": b, "ms": str(T0), "gid": "g", "due": str(T0 + 100)}
    assert f[2]["attempt"] == "1"
    assert f[3]["progress"] == '{"pct":10}'
    assert f[3]["attempt"] == "1"
    assert f[4] == {"type": "retry_scheduled", "id": a, "ms": str(T0 + 3), "attempt": "1",
                    "due": str(T0 + 53), "error": "E: one"}
    assert f[9] == {"type": "failed", "id": a, "ms": str(T0 + 102), "attempt": "2",
                    "error": "E: two"}
    assert f[10] == {"type": "completed", "id": b, "ms": str(T0 + 103), "gid": "g",
                     "attempt": "1"}
    assert f[12]["lane"] == "wait"


async def test_a_reaped_lease_writes_lease_expired_then_its_outcome(omniq, raw):
    job = await leased(omniq, timeout_ms=100, max_attempts=1)
    assert await omniq.reap_expired("q", now_ms=T0 + 200) == 1
    tail = [f for _, f in _stream(raw, "q")][-2:]
    assert [x["type"] for x in tail] == ["lease_expired", "failed"]
    assert tail[0]["attempt"] == tail[1]["attempt"] == "1"
    assert tail[0]["error"].startswith("LeaseExpired: lease expired at ")
    assert tail[1]["id"] == job.job_id


async def test_refused_calls_write_no_event(omniq, raw):
    job = await leased(omniq)
    before = _types(raw, "q")
    with pytest.raises(LeaseLost):
        await omniq.ack_success("q", job.job_id, "not-the-token", now_ms=T0 + 20)
    with pytest.raises(LaneMismatch):
        await omniq.retry_failed("q", job.job_id, now_ms=T0 + 20)  # not failed
    with pytest.raises(DuplicateJobError):
        await omniq.publish("q", {}, job_id=job.job_id, now_ms=T0 + 20)
    with pytest.raises(LeaseLost):
        await omniq.progress("q", job.job_id, "bad", 1, now_ms=T0 + 20)
    assert await omniq.reserve("q", now_ms=T0 + 20) is None  # nothing to lease: no event
    assert _types(raw, "q") == before


async def test_events_maxlen_zero_writes_no_stream(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, events_maxlen=0) as quiet:
        job = await leased(quiet)
        await quiet.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 20)
        await quiet.pause("q")
    assert raw.exists(qk("q", "events")) == 0


async def test_the_stream_is_capped_near_events_maxlen(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, events_maxlen=50) as small:
        await small.publish_many("q", [{} for _ in range(1000)])
    n = raw.xlen(qk("q", "events"))
    assert 50 <= n < 300  # MAXLEN ~ trims whole stream nodes (100 entries each by default)


# -- read back ------------------------------------------------------------------------


async def test_since_dollar_reads_only_new_events(omniq):
    await omniq.publish("q", {}, job_id="old")
    async with omniq.events("q") as stream:  # entering fixes "$": the stream's end now
        await omniq.publish("q", {}, job_id="new")
        (event,) = await _take(stream, 1)
    assert (event.type, event.job_id, event.queue, event.logical_queue) == (
        "enqueued", "new", "q", "q")


async def test_since_zero_id_and_ms(omniq):
    for i in range(3):
        await omniq.publish("q", {}, job_id=f"j{i}", now_ms=T0 + i)
    everything = await _take(omniq.events("q", since="0"), 3)
    assert [e.job_id for e in everything] == ["j0", "j1", "j2"]
    after_first = await _take(omniq.events("q", since=everything[0].id), 2)
    assert [e.id for e in after_first] == [e.id for e in everything[1:]]
    # epoch ms: entries at or after that stream time (the id's ms part)
    ms = int(everything[1].id.split("-")[0])
    from_ms = await _take(omniq.events("q", since=ms), 1)
    assert from_ms[0].id == next(e.id for e in everything if int(e.id.split("-")[0]) >= ms)


async def test_types_filter_and_several_queues(omniq):
    await omniq.publish("a", {}, job_id="a1")
    await omniq.publish("b", {}, job_id="b1")
    job = await omniq.reserve("a")
    assert job is not None
    await omniq.ack_success("a", "a1", job.lease_token, result={"ok": True})
    got = await _take(omniq.events(["a", "b"], since="0", types=["enqueued", "completed"]), 3)
    assert sorted((e.queue, e.type, e.job_id) for e in got) == [
        ("a", "completed", "a1"), ("a", "enqueued", "a1"), ("b", "enqueued", "b1")]


async def test_a_partitioned_queue_is_read_in_every_partition(omniq):
    await omniq.partition_queue("pq", 4)
    ids = await omniq.publish_many("pq", [{} for _ in range(12)])
    got = await _take(omniq.events("pq", since="0"), 12)
    assert sorted(e.job_id for e in got) == sorted(ids)
    assert {e.queue for e in got} == {f"pq.p{i}" for i in range(4)}
    assert {e.logical_queue for e in got} == {"pq"}


async def test_a_cursor_resumes_without_gaps_or_repeats(omniq):
    await omniq.partition_queue("pq", 3)
    first_ids = await omniq.publish_many("pq", [{} for _ in range(9)])
    stream = omniq.events(["pq", "plain"], since="0")
    seen = await _take(stream, 5)
    cursor = stream.cursor
    await stream.aclose()
    second_ids = await omniq.publish_many("pq", [{} for _ in range(3)])
    await omniq.publish("plain", {}, job_id="p1")
    rest = await _take(omniq.events(["pq", "plain"], since=cursor), 4 + 3 + 1)
    got = [e.job_id for e in seen + rest]
    assert sorted(got) == sorted([*first_ids, *second_ids, "p1"])  # each exactly once
    assert len({e.id + e.queue for e in seen + rest}) == len(got)


async def test_bad_reader_arguments_are_typed_errors(omniq):
    for since in ("bogus", "12-", "-1", -5, 1.5, True, {"q": 5}):
        with pytest.raises(InvalidArgument):
            omniq.events("q", since=since)
    with pytest.raises(InvalidArgument, match="unknown event type 'nope'"):
        omniq.events("q", types=["completed", "nope"])
    with pytest.raises(InvalidArgument):
        omniq.events("q", types=[])
    with pytest.raises(InvalidArgument):
        omniq.events("bad name")
    with pytest.raises(InvalidArgument):
        omniq.events([])
    stream = omniq.events("q", since={"other": "1-0"})  # names a queue it does not read
    with pytest.raises(InvalidArgument, match="not read here"):
        await stream.__anext__()
    assert set(EVENT_TYPES) >= {"enqueued", "completed", "failed", "progress", "paused"}


async def test_bad_client_options_are_typed_errors(omniq_redis_url):
    with pytest.raises(InvalidArgument):
        AsyncOmniq(url=omniq_redis_url, events_maxlen=-1)
    with pytest.raises(InvalidArgument):
        AsyncOmniq(url=omniq_redis_url, keep_completed_ms=-1)


async def test_bad_progress_values_write_nothing(omniq, raw):
    job = await leased(omniq)
    before = _types(raw, "q")
    for value in (object(), 1j, "x" * 70_000, float("nan"), {"a": [float("inf")]}):
        with pytest.raises(InvalidArgument):
            await omniq.progress("q", job.job_id, job.lease_token, value, now_ms=T0 + 20)
    assert _types(raw, "q") == before
    assert raw.hget(qk("q", f"job:{job.job_id}"), "progress") is None


def test_progress_script_refuses_bad_arguments(omniq_redis_url, raw):
    meta = "{q}:meta"
    assert run_script(raw, "progress", meta, "", "t", "1", str(T0)) == ["ERR", "BAD_JOB_ID"]
    assert run_script(raw, "progress", meta, "j", "t", "", str(T0)) == [
        "ERR", "BAD_ARGS", "progress"]
    assert run_script(raw, "progress", meta, "j", "t", "1" * 65_537, str(T0)) == [
        "ERR", "BAD_ARGS", "progress"]
    assert run_script(raw, "progress", meta, "j", "t", "1", str(T0)) == ["ERR", "TOKEN_MISMATCH"]
    assert run_script(raw, "progress", meta, "j", "t", "1", "soon") == ["ERR", "BAD_ARGS", "now_ms"]
    assert raw.dbsize() == 0
