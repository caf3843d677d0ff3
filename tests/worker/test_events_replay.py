"""A mixed run through the real worker: replaying the event stream alone gives every job's
final state and attempt count (plain and partitioned queues)."""

from __future__ import annotations

from typing import Any

import pytest
from shared_util import within

from omniq import AsyncOmniq, Fail, JobEvent

# what each event leaves a job as: (state, attempt) from the previous (state, attempt)
_STATE = {
    "enqueued": "wait", "delayed": "delayed", "promoted": "wait", "reserved": "active",
    "completed": "completed", "failed": "failed", "retry_scheduled": "delayed",
    "retried": "wait",
}


def replay(events: list[JobEvent]) -> dict[str, tuple[str, int] | None]:
    """Each job's (state, attempt) from its events alone (None: removed)."""
    jobs: dict[str, tuple[str, int] | None] = {}
    for e in events:
        if not e.job_id:
            continue  # paused / resumed
        state, attempt = jobs.get(e.job_id) or ("", 0)
        if e.type == "removed":
            jobs[e.job_id] = None
            continue
        if e.type in ("progress", "lease_expired"):
            jobs[e.job_id] = (state, e.attempt or attempt)
            continue
        if e.type == "retried":
            attempt = 0
        elif e.attempt is not None:
            attempt = e.attempt
        jobs[e.job_id] = (_STATE[e.type], attempt)
    return jobs


async def handler(ctx: Any) -> Any:
    kind = ctx.payload["kind"]
    await ctx.progress({"attempt": ctx.attempt})
    if kind == "flaky" and ctx.attempt < 2:
        raise RuntimeError("flaky")
    if kind == "bad":
        raise ValueError("always")
    if kind == "fatal":
        raise Fail("no retry")
    return kind


@pytest.mark.parametrize("partitions", [0, 3])
async def test_replaying_the_stream_gives_each_jobs_final_state(omniq: AsyncOmniq, partitions):
    q = "mix"
    if partitions:
        await omniq.partition_queue(q, partitions)
    async with omniq.events(q, since="$") as stream:
        ids: dict[str, str] = {}
        for kind in ("ok", "flaky", "bad", "fatal"):
            for i in range(3):
                ids[f"{kind}{i}"] = await omniq.publish(q, {"kind": kind}, max_attempts=3,
                                                        backoff_ms=0)
        for i in range(3):
            ids[f"g{i}"] = await omniq.publish(q, {"kind": "ok"}, gid=f"grp{i % 2}")
        ids["later"] = await omniq.publish(q, {"kind": "ok"}, delay_ms=60_000)  # stays delayed
        await omniq.consume(q, handler, concurrency=4, drain=True, handle_signals=False)
        # a lease that expires: reserve by hand, never ack, reap in the future
        ids["reaped"] = await omniq.publish(q, {"kind": "ok"}, max_attempts=2, backoff_ms=0)
        res = await omniq.reserve_many(q, 1)
        (held,) = res.jobs
        assert held.job_id == ids["reaped"]
        assert await omniq.reap_expired(q, now_ms=held.lock_until_ms + 1) == 1
        # admin: retry a failed job, remove another
        await omniq.retry_failed(q, ids["bad0"])
        await omniq.remove_job(q, ids["bad1"], "failed")
        await omniq.pause(q)
        await omniq.resume(q)

        expected = {}
        for jid in ids.values():
            info = await omniq.get_job(q, jid)
            expected[jid] = None if info is None else (info.state, info.attempt)
        assert expected[ids["ok0"]] == ("completed", 1)
        assert expected[ids["flaky0"]] == ("completed", 2)
        assert expected[ids["bad2"]] == ("failed", 3)
        assert expected[ids["fatal0"]] == ("failed", 1)
        assert expected[ids["bad0"]] == ("wait", 0)
        assert expected[ids["bad1"]] is None
        assert expected[ids["later"]] == ("delayed", 0)
        assert expected[ids["reaped"]] == ("delayed", 1)

        # read until every stream's entries are in (their lengths say how many)
        parts = await omniq.queue_partitions(q)
        total = sum([await omniq.redis.xlen("{" + p + "}:events") for p in parts])
        got: list[JobEvent] = []

        async def read_all() -> None:
            async for e in stream:
                got.append(e)
                if len(got) == total:
                    return

        await within(read_all(), 20, f"{total} events")
    assert replay(got) == expected
    # the events say why: the reaped lease, the failures' errors, the progress values
    reaped = [e.type for e in got if e.job_id == ids["reaped"]]
    assert reaped == ["enqueued", "reserved", "lease_expired", "retry_scheduled"]
    fatal = [e for e in got if e.job_id == ids["fatal0"] and e.type == "failed"]
    assert fatal[0].error is not None
    assert "no retry" in fatal[0].error
    assert [e.progress for e in got if e.job_id == ids["flaky0"] and e.type == "progress"] == [
        {"attempt": 1}, {"attempt": 2}]
    queue_events = sorted(e.type for e in got if not e.job_id)  # one pair per physical queue
    assert queue_events == ["paused"] * max(1, partitions) + ["resumed"] * max(1, partitions)
