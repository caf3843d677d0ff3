"""Events through faults: a server restart under a running reader and a running wait(), and
a worker SIGKILLed mid-job.

* ``AsyncOmniq.events(queue, since=...)`` keeps reading across a crash and restart of the
  server (``appendonly yes``, ``appendfsync always``, same port and data dir) by itself:
  the events it yields are exactly XRANGE of the stream, no gap, no repeat, events
  produced before and after the restart;
* a ``wait()`` started before the restart returns the result of a job completed after it;
* a worker killed with SIGKILL mid-job: its lease is reaped, the stream shows
  ``reserved``, ``lease_expired``, then ``retry_scheduled`` or ``failed`` for the job, and
  replaying the stream gives every job's final state and attempt count.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
import redis.asyncio as aredis
from faults_util import WorkerProc, jk, poll_until, qk, replay, within

from omniq import AsyncOmniq
from omniq.aio.worker import Worker
from omniq.errors import ConnectionFailed, DuplicateJobError

QUEUE = "ev"
OUTAGE_S = 2.5  # longer than wait()'s 2 s backstop read, so one falls into the outage


def aof_server(factory: Any, tmp_path: Any) -> Any:
    return factory(appendonly=True, appendfsync="always", data_dir=tmp_path / "data")


async def publish_retrying(client: AsyncOmniq, job_id: str, **opts: Any) -> None:
    """Publish with a fixed id; a ConnectionFailed (unknown outcome) is retried, and
    DuplicateJobError on a retry means the first attempt had landed."""
    retried = False
    while True:
        try:
            await client.publish(QUEUE, {"id": job_id}, job_id=job_id, **opts)
            return
        except ConnectionFailed:
            retried = True
            await asyncio.sleep(0.05)  # the publisher's own retry pacing
        except DuplicateJobError:
            assert retried, f"{job_id} duplicate on its first publish"
            return


async def crash_and_restart(server: Any, outage_s: float) -> None:
    await asyncio.to_thread(server.kill)  # SIGKILL: no shutdown save, the AOF has it all
    await asyncio.sleep(outage_s)  # the outage (fault duration, not synchronisation)
    await asyncio.to_thread(server.restart)  # same port and data dir, AOF replayed


async def xread_blocked(r: aredis.Redis, n: int) -> bool:
    """At least n connections are blocked in XREAD (the reader is in place)."""
    clients = await r.client_list()
    return sum(1 for c in clients if c.get("cmd") == "xread") >= n


async def test_events_reader_resumes_across_a_server_restart_without_gaps(
    omniq_server_factory, tmp_path
):
    server = aof_server(omniq_server_factory, tmp_path)
    producer = AsyncOmniq(url=server.url, socket_timeout=2)
    reader = AsyncOmniq(url=server.url, socket_timeout=2)
    before, after = 40, 40
    # the reader starts after the first event: since= an id, not just "0"
    await producer.publish(QUEUE, {"id": "first"}, job_id="first")
    [(first_id, _)] = await producer.redis.xrange(qk(QUEUE, "events"))
    stream = reader.events(QUEUE, since=first_id)
    seen: list[Any] = []
    last_job = f"job-{before + after - 1:03d}"

    async def read() -> None:
        async for event in stream:
            seen.append(event)
            if event.job_id == last_job and event.type == "completed":
                return

    async def publish(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            await publish_retrying(producer, f"job-{i:03d}", backoff_ms=0)

    try:
        reading = asyncio.create_task(read())
        async with aredis.Redis.from_url(server.url) as probe:
            await poll_until(lambda: xread_blocked(probe, 1), 10, "the reader's XREAD")
        publishing = asyncio.create_task(publish(0, before + after // 2))
        await poll_until(lambda: asyncio.sleep(0, len(seen) >= before), 20,
                         "the events before the restart")
        await crash_and_restart(server, 1.0)  # while the producer is still publishing
        await within(publishing, 30, "the producer, across the restart")
        await publish(before + after // 2, before + after)
        # then every job runs (reserved, completed): the last event is last_job's completed
        done = AsyncOmniq(url=server.url)
        for _ in range(before + after + 1):
            job = await done.reserve(QUEUE)
            assert job is not None
            await done.ack_success(QUEUE, job.job_id, job.lease_token, result={"ok": 1})
        await done.aclose()
        try:
            await within(reading, 30, "the reader to see the last event after the restart")
        except AssertionError:
            xlen = await producer.redis.xlen(qk(QUEUE, "events"))
            raise AssertionError(f"reader saw {len(seen)} events, the stream has {xlen}; "
                                 f"last seen {seen[-1:]}") from None
    finally:
        await stream.aclose()
        await reader.aclose()
    await producer.aclose()
    # a new connection: the producer's pooled one (its first XRANGE) died with the server
    async with aredis.Redis.from_url(server.url, decode_responses=True) as probe:
        entries = await probe.xrange(qk(QUEUE, "events"))
    want = [(eid, f) for eid, f in entries if eid != first_id]
    assert [e.id for e in seen] == [eid for eid, _ in want]  # no gap, no repeat
    assert [(e.type, e.job_id, e.attempt) for e in seen] == [
        (f["type"], f["id"], int(f["attempt"]) if "attempt" in f else None) for _, f in want]
    assert {e.type for e in seen} == {"enqueued", "reserved", "completed"}
    assert len({e.job_id for e in seen}) == before + after + 1  # and "first"
    assert stream.cursor == {QUEUE: want[-1][0]}


@pytest.mark.parametrize("restart", ["crash", "graceful"])
async def test_wait_started_before_a_restart_returns_a_result_completed_after_it(
    omniq_server_factory, tmp_path, restart
):
    """crash: SIGKILL and an outage longer than wait()'s 2 s backstop read, so one read
    falls into it. graceful: SIGTERM and a restart shorter than the backstop period, so
    the completed event wakes the wait, whose read of the job must not fail either."""
    server = aof_server(omniq_server_factory, tmp_path)
    client = AsyncOmniq(url=server.url, socket_timeout=2)
    waiter = AsyncOmniq(url=server.url, socket_timeout=2)
    try:
        jid = await client.publish(QUEUE, {"n": 7}, job_id="later")
        waiting = asyncio.create_task(waiter.wait(QUEUE, jid, timeout=60))
        async with aredis.Redis.from_url(server.url) as probe:
            await poll_until(lambda: xread_blocked(probe, 1), 10, "the waiter's XREAD")
        if restart == "crash":
            await crash_and_restart(server, OUTAGE_S)
        else:
            await asyncio.to_thread(server.restart)  # SIGTERM, AOF kept, same port
        assert not waiting.done()
        # a fresh client for the worker's side (the old one's connections died with the
        # server; the first command on them fails, as any command that met a restart)
        async with AsyncOmniq(url=server.url, socket_timeout=2) as after:
            job = await after.reserve(QUEUE)
            assert job is not None
            assert job.job_id == jid
            await after.ack_success(QUEUE, jid, job.lease_token, result={"sum": 7})
        assert await within(waiting, 30, "wait() to return after the restart") == {"sum": 7}
    finally:
        if not waiting.done():
            waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)  # its error is the report
        await waiter.aclose()
        await client.aclose()


# --------------------------------------------------------------------------- worker crash


async def test_worker_sigkilled_mid_job_leaves_reaped_lease_events(
    omniq_server_factory, tmp_path
):
    server = omniq_server_factory()
    client = AsyncOmniq(url=server.url)
    r = client.redis
    # "again" may retry once, "once" has one attempt: the reap retries one, fails the other
    await client.publish(QUEUE, {"n": 1}, job_id="again", max_attempts=2, timeout_ms=800,
                         backoff_ms=0)
    await client.publish(QUEUE, {"n": 2}, job_id="once", max_attempts=1, timeout_ms=800)
    proc = WorkerProc([server.url, QUEUE, "2", "600000", "100"], tmp_path / "victim.log")
    try:
        async def both_started() -> bool:  # the handlers run (the chaos worker's ledger)
            return bool(await r.exists("t:att:again")) and bool(await r.exists("t:att:once"))

        await poll_until(both_started, 20, "the victim to start both jobs")
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.popen.wait, 10)

        async def handler(ctx: Any) -> dict[str, int]:
            return {"attempt": ctx.attempt}

        survivor = Worker(client, QUEUE, handler, concurrency=2, maintenance_interval_s=0.1)
        await survivor.start()
        try:
            async def settled() -> bool:
                states = [await r.hget(jk(QUEUE, j), "state") for j in ("again", "once")]
                return states == ["completed", "failed"]

            await poll_until(settled, 30, "the reap to retry one job and fail the other")
        finally:
            await survivor.stop(grace_period_s=5)
    finally:
        proc.close()
    entries = await r.xrange(qk(QUEUE, "events"))
    by_job: dict[str, list[tuple[str, str | None]]] = {}
    for _, f in entries:
        by_job.setdefault(f["id"], []).append((f["type"], f.get("attempt")))
    assert by_job["again"] == [
        ("enqueued", None), ("reserved", "1"), ("lease_expired", "1"),
        ("retry_scheduled", "1"), ("promoted", None), ("reserved", "2"), ("completed", "2")]
    assert by_job["once"] == [
        ("enqueued", None), ("reserved", "1"), ("lease_expired", "1"), ("failed", "1")]
    errors = {f["type"]: f["error"] for _, f in entries if f["id"] == "once" and "error" in f}
    assert errors["lease_expired"].startswith("LeaseExpired: lease expired at ")
    assert errors["failed"] == errors["lease_expired"]
    # the stream alone tells each job's final state and attempt count
    for jid, (state, attempt) in replay(entries).items():
        h = await r.hmget(jk(QUEUE, jid), "state", "attempt")
        assert (state, attempt) == (h[0], int(h[1])), jid
    assert await client.result(QUEUE, "again") == {"attempt": 2}
    await client.aclose()


# --------------------------------------------------------------------------- resume by cursor

@pytest.mark.parametrize("types", [
    pytest.param(None, id="all-types"),
    pytest.param(["completed"], id="filtered"),
])
async def test_cursor_taken_after_each_event_resumes_without_gap_or_repeat(omniq, types):
    """Stop after every event, resume a new reader from ``cursor``: together the readers
    yield exactly what one reader yields (two queues read at once, several events of each
    in one XREAD, the last entry of a queue of a type that is filtered out)."""
    for q, ids in (("a", ["a1", "a2"]), ("b", ["b1", "b2"])):
        for jid in ids:
            await omniq.publish(q, {}, job_id=jid)
            job = await omniq.reserve(q)
            assert job is not None
            await omniq.ack_success(q, job.job_id, job.lease_token)
    await omniq.publish("b", {}, job_id="b3")  # an "enqueued" last
    entries = {q: await omniq.redis.xrange(qk(q, "events")) for q in ("a", "b")}
    want = {(q, eid) for q, es in entries.items() for eid, f in es
            if types is None or f["type"] in types}
    got: list[tuple[str, str]] = []
    since: Any = "0"
    for _ in range(len(want)):
        stream = omniq.events(["a", "b"], since=since, types=types)
        event = await within(stream.__anext__(), 2, "the next event after the cursor")
        got.append((event.queue, event.id))
        since = stream.cursor
        await stream.aclose()
    assert len(got) == len(set(got))  # no repeat
    assert set(got) == want  # no gap
