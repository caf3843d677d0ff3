"""Network faults between client and server, through a loopback proxy owned by the test.

* a cut connection makes a publish raise :class:`ConnectionFailed`, never lose it silently:
  either the call raised or the job exists; a retry with the same ``job_id`` is safe
  (:class:`DuplicateJobError` when the first attempt had landed);
* a worker survives a 5 s outage (every connection cut and refused) and a 5 s black hole
  (nothing delivered, nothing closed) and resumes within about a second of recovery;
* a command cancelled in flight (an asyncio timeout) never corrupts a pooled connection:
  later commands on the same client get their own replies (the redis-py CVE-2023-28858/9
  scenario).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import pytest
import redis.asyncio as aredis
from faults_util import FaultProxy, figure, jk, poll_until, within

from omniq import AsyncOmniq
from omniq.aio.worker import Worker
from omniq.errors import ConnectionFailed, DuplicateJobError

OUTAGE_S = 5.0


@pytest.fixture
def proxy(omniq_server_factory):
    server = omniq_server_factory()
    with FaultProxy(server.port) as p:
        p.server = server
        yield p


@pytest.fixture
async def direct(proxy):
    """A client straight to the server (not through the proxy), for checking state."""
    client = AsyncOmniq(url=proxy.server.url, keep_completed=10_000)
    yield client
    await client.aclose()


@pytest.fixture(params=["url", "host"])
def connect(request, proxy):
    """A client through the proxy, made from a URL or from host/port (both code paths)."""

    def make(**options: Any) -> AsyncOmniq:
        if request.param == "url":
            return AsyncOmniq(url=proxy.url, **options)
        return AsyncOmniq(host="127.0.0.1", port=proxy.port, **options)

    return make


async def job_count(client: AsyncOmniq, queue: str) -> int:
    return (await client.stats(queue)).waiting_total


# --------------------------------------------------------------------------- publish


async def test_cut_before_the_request_raises_and_writes_nothing(proxy, direct, connect):
    async with connect(socket_timeout=2) as client:
        await client.publish("warm", {"x": 0})
        proxy.drop_next_request()
        with pytest.raises(ConnectionFailed):
            await client.publish("n", {"x": 1}, job_id="lost-request")
        assert await direct.get_job("n", "lost-request") is None
        # the client reconnects by itself for the next call
        assert await client.publish("n", {"x": 1}, job_id="lost-request") == "lost-request"
        assert (await direct.get_job("n", "lost-request")).state == "wait"


async def test_lost_reply_raises_and_a_retry_with_the_same_id_is_idempotent(proxy, direct, connect):
    async with connect(socket_timeout=2) as client:
        await client.publish("warm", {"x": 0})  # scripts loaded: the next call runs at once
        proxy.drop_next_reply()  # the enqueue runs on the server, its reply is lost
        with pytest.raises(ConnectionFailed):
            await client.publish("n", {"x": 1}, job_id="lost-reply")
        landed = await direct.get_job("n", "lost-reply")
        assert landed is not None
        assert landed.state == "wait"
        # the contract: ConnectionFailed = unknown outcome; retry with the same id
        with pytest.raises(DuplicateJobError) as err:
            await client.publish("n", {"x": 2}, job_id="lost-reply")
        assert err.value.job_id == "lost-reply"
        after = await direct.get_job("n", "lost-reply")
        assert after.payload_raw == landed.payload_raw
        assert after.state == "wait"
        assert await job_count(direct, "n") == 1

        # a generated id: the caller never saw it, the job exists exactly once
        proxy.drop_next_reply()
        with pytest.raises(ConnectionFailed):
            await client.publish("n", {"x": 3})
        assert await job_count(direct, "n") == 2


async def test_random_cuts_never_lose_a_publish_silently(proxy, direct, connect):
    async with connect(socket_timeout=2) as client:
        rng = random.Random(7)
        returned: list[str] = []
        raised: list[str] = []
        for i in range(300):
            jid = f"p{i:04d}"
            fault = rng.random()
            if fault < 0.1:
                proxy.drop_next_reply()
            elif fault < 0.2:
                proxy.drop_next_request()
            try:
                returned.append(await client.publish("n", {"i": i}, job_id=jid))
            except ConnectionFailed:
                raised.append(jid)
        assert raised, "the faults must have hit some publishes"
        pipe = direct.redis.pipeline(transaction=False)
        for jid in returned + raised:
            pipe.exists(jk("n", jid))
        exists = await pipe.execute()
        assert all(exists[: len(returned)]), "a publish that returned is missing"
        landed_anyway = sum(exists[len(returned):])
        assert await job_count(direct, "n") == len(returned) + landed_anyway
        figure("network_publish_cuts", publishes=300, returned=len(returned),
               raised=len(raised), raised_but_landed=landed_anyway)


# --------------------------------------------------------------------------- worker


class Recorder:
    """The handler of the worker tests: records when each job finished, wakes the test."""

    def __init__(self) -> None:
        self.done: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def __call__(self, ctx: Any) -> None:
        self.done[ctx.job_id] = time.monotonic()
        self.changed.set()

    async def wait_for(self, ids: list[str], seconds: float, what: str) -> float:
        """Wait until every id is done; returns when the last one finished."""
        deadline = time.monotonic() + seconds
        while not all(j in self.done for j in ids):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [j for j in ids if j not in self.done]
                raise AssertionError(f"timed out after {seconds}s waiting for {what}: "
                                     f"{len(missing)} not done")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return max(self.done[j] for j in ids)


async def run_outage(proxy: FaultProxy, direct: AsyncOmniq, fault: str) -> dict[str, float]:
    rec = Recorder()
    client = AsyncOmniq(url=proxy.url, socket_timeout=1)
    worker = Worker(client, "w", rec, concurrency=4, maintenance_interval_s=0.2)
    try:
        await worker.start()
        before = [await direct.publish("w", {"i": i}, timeout_ms=30_000) for i in range(20)]
        await rec.wait_for(before, 10, "the jobs before the outage")

        async def acked(k: int) -> bool:
            return (await direct.stats("w")).completed_kept == k

        await poll_until(lambda: acked(20), 10, "the acks of the jobs before the outage",
                         0.02)

        getattr(proxy, fault)()  # refuse: cut + refuse everything; blackhole: freeze it all
        t_fault = time.monotonic()
        # a poll in flight when the link died may lease one of these in a reply that is
        # lost: that lease expires after 3 s and the job is retried at once (backoff 0)
        during = [await direct.publish("w", {"i": i}, timeout_ms=3_000, backoff_ms=0)
                  for i in range(20)]
        await asyncio.sleep(OUTAGE_S)  # the outage (fault duration, not synchronisation)
        assert not any(j in rec.done for j in during), "processed through a dead link?"
        proxy.heal()
        t_heal = time.monotonic()
        t_during = await rec.wait_for(during, 10, "the jobs published during the outage")
        # a job published after the recovery is processed promptly too
        t_pub = time.monotonic()
        after = [await direct.publish("w", {"i": i}) for i in range(5)]
        t_after = await rec.wait_for(after, 5, "the jobs published after the recovery")
        await poll_until(lambda: acked(45), 10, "every job to be acked", 0.02)
        await within(worker.stop(grace_period_s=5), 15, "the worker to stop")
    finally:
        await worker.stop(grace_period_s=1)
        await client.aclose()
    stats = await direct.stats("w")
    assert (stats.completed_kept, stats.active, stats.waiting_total, stats.delayed) == (
        45, 0, 0, 0)
    return {"outage_s": round(t_heal - t_fault, 2),
            "resume_after_heal_s": round(t_during - t_heal, 2),
            "after_recovery_latency_s": round(t_after - t_pub, 2),
            # acks re-sent after a lost reply are refused: the first one had landed
            "acks_refused_as_already_done": worker.stats.lost}


async def test_worker_survives_a_5s_outage_and_resumes_within_a_second(proxy, direct):
    timings = await run_outage(proxy, direct, "refuse")
    figure("network_outage", **timings)
    assert timings["resume_after_heal_s"] < 2.0, timings  # backoff capped at 1 s
    assert timings["after_recovery_latency_s"] < 1.5, timings


async def test_worker_survives_a_5s_black_hole_with_a_socket_timeout(proxy, direct):
    timings = await run_outage(proxy, direct, "blackhole")
    figure("network_blackhole", **timings)
    assert timings["resume_after_heal_s"] < 2.5, timings  # socket_timeout 1 s + backoff
    assert timings["after_recovery_latency_s"] < 1.5, timings


async def test_black_hole_needs_a_socket_timeout_to_surface(proxy):
    async with AsyncOmniq(url=proxy.url) as hangs, \
            AsyncOmniq(url=proxy.url, socket_timeout=0.5) as bounded:
        await hangs.ping()
        await bounded.ping()
        proxy.blackhole()
        # without socket_timeout a command on a vanished peer waits (until TCP gives up)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(hangs.publish("b", {"x": 1}), 1.5)
        t = time.monotonic()
        with pytest.raises(ConnectionFailed, match="Timeout"):
            await bounded.publish("b", {"x": 1})
        assert time.monotonic() - t < 1.5


# --------------------------------------------------------------------------- cancellation


async def test_cancelled_commands_never_corrupt_pooled_connections(proxy, direct):
    rng = random.Random(11)
    async with AsyncOmniq(url=proxy.url, max_connections=2) as client:
        r = client.redis
        ids = [await client.publish("c", {"i": i}) for i in range(10)]
        cancelled = 0
        for round_ in range(30):
            proxy.delay(rng.choice([0.05, 0.1, 0.2]))
            ops = [
                client.publish("c", {"round": round_}),
                client.get_job("c", ids[round_ % 10]),
                r.set(f"k:{round_}", f"v{round_}"),
                client.heartbeat_many([("c", "0" * 26, "tok"), ("d", "0" * 26, "tok")]),
            ]
            try:
                await asyncio.wait_for(ops[round_ % 4], rng.uniform(0.001, 0.15))
            except TimeoutError:
                cancelled += 1
            for op in ops:  # coroutines that were not awaited
                if hasattr(op, "close"):
                    op.close()
            proxy.delay(0)
            # every later command gets its own reply
            for i in range(5):
                key = f"check:{round_}:{i}"
                await r.set(key, key)
                assert await r.get(key) == key
                info = await client.get_job("c", ids[i])
                assert info is not None
                assert info.job_id == ids[i]
                assert info.payload == {"i": i}
            assert await client.ping() is True
        assert cancelled >= 5, "the test must have cancelled commands in flight"
        figure("network_cancel", rounds=30, cancelled_in_flight=cancelled)


async def test_raw_client_reply_order_after_cancel(proxy):
    """The same scenario on the plain redis-py client that AsyncOmniq wraps."""
    async with aredis.Redis.from_url(proxy.url, decode_responses=True,
                                     max_connections=1) as r:
        await r.set("a", "1")
        await r.set("b", "2")
        proxy.delay(0.2)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(r.get("a"), 0.05)
        proxy.delay(0)
        assert await r.get("b") == "2"
