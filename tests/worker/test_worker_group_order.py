"""Strict order within a group through a real worker (docs/control.md "Strict order within
a group"): payments of one account, group_limit 1, one fails once: with
group_order="strict" they complete in publish order; with the v1 default they do not."""

from __future__ import annotations

import asyncio

import pytest
from worker_util import within

from omniq import JobSpec
from omniq.aio.context import JobContext
from omniq.aio.worker import Worker


@pytest.mark.parametrize("order", ["strict", "fifo"])
async def test_payments_complete_in_publish_order(omniq, order):
    n = 6
    completed: list[int] = []
    attempts: dict[int, int] = {}
    done = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        i = ctx.payload["i"]
        attempts[i] = attempts.get(i, 0) + 1
        if i == 2 and ctx.attempt == 1:
            raise RuntimeError("card declined, try again")
        completed.append(i)
        if len(completed) == n:
            done.set()

    await omniq.publish_many("q", [
        JobSpec(payload={"i": i}, gid="account-7", max_attempts=3, backoff_ms=200,
                group_order=order) for i in range(n)])  # type: ignore[arg-type]
    worker = Worker(omniq, "q", handler, concurrency=4, maintenance_interval_s=0.05)
    await worker.start()
    try:
        await within(done.wait(), 20, "every payment to complete")
    finally:
        await worker.stop()
    assert attempts[2] == 2
    assert sum(attempts.values()) == n + 1
    if order == "strict":
        assert completed == list(range(n))
    else:  # v1: the retry re-enters the group at its tail, the others overtake it
        assert completed == [0, 1, 3, 4, 5, 2]
