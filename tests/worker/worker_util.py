"""Helpers of the worker suite (imported by module name: tests/worker is on sys.path).

Synchronisation rules of this suite: in-process waits use asyncio events (``within``) or
:class:`Spy` (an event-driven record of calls to a client method); only waits on another
process poll, and always with a bounded deadline (``poll_until``) or block on a Redis list
(BLPOP) used as a ledger.

Keys, the bounded waits and the subprocess runner come from tests/shared_util.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared_util import ScriptProc, jk, poll_until, qk, within

__all__ = ["AckLog", "Proc", "Spy", "jk", "now_ms", "numsub", "poll_until", "qk",
           "run_until_done", "within"]

HERE = Path(__file__).resolve().parent
PROC_SCRIPT = HERE / "worker_proc.py"


def now_ms() -> int:
    return int(time.time() * 1000)


class Spy:
    """Record every call of an async client method (the real method still runs).

    ``calls`` holds ``(t_monotonic, args, kwargs, result)``; ``until(pred)`` waits, driven by
    the calls themselves, until ``pred()`` is true.
    """

    def __init__(
        self, client: Any, name: str, on_call: Callable[[Spy, Any], None] | None = None
    ) -> None:
        self.calls: list[tuple[float, tuple[Any, ...], dict[str, Any], Any]] = []
        self._changed = asyncio.Event()
        real = getattr(client, name)
        self.real = real

        async def spy(*args: Any, **kwargs: Any) -> Any:
            t = time.monotonic()
            result = await real(*args, **kwargs)
            self.calls.append((t, args, kwargs, result))
            if on_call is not None:
                on_call(self, result)
            self._changed.set()
            return result

        setattr(client, name, spy)

    async def until(self, pred: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not pred():
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {seconds}s waiting for {what}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                if not pred():
                    raise AssertionError(
                        f"timed out after {seconds}s waiting for {what}"
                    ) from None


class AckLog(Spy):
    """Spy on the worker's reservations (``client.routing.reserve``, which carries the acks
    of finished jobs): every ack the worker sent, per job id."""

    def __init__(self, client: Any) -> None:
        super().__init__(client.routing, "reserve")

    def sent(self) -> list[tuple[str, str, str, bool, bool]]:
        """``(queue, job_id, lease_token, ok, final)`` of every ack sent, in order."""
        out = []
        for _t, args, _kw, _res in self.calls:
            acks_by_queue = args[2]
            for queue, acks in acks_by_queue.items():
                out += [(queue, a.job_id, a.lease_token, a.ok, a.final) for a in acks]
        return out

    def ids(self) -> list[str]:
        return [sent[1] for sent in self.sent()]


class Proc(ScriptProc):
    """A worker subprocess (``worker_proc.py``) whose output goes to a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        super().__init__(PROC_SCRIPT, args, log_path)


async def numsub(redis: Any, *channels: str) -> dict[str, int]:
    """Subscribers per channel (``PUBSUB NUMSUB``), summed over the masters of a cluster:
    each cluster node counts only its own clients' subscriptions."""
    from redis.asyncio.cluster import RedisCluster

    if not isinstance(redis, RedisCluster):
        return {str(c): int(n) for c, n in await redis.pubsub_numsub(*channels)}
    import redis.asyncio as aredis

    await redis.initialize()
    total = dict.fromkeys(channels, 0)
    for node in redis.get_primaries():
        # each node on a plain connection (redis-py 8.2's cluster reply parser for PUBSUB
        # NUMSUB expects pairs where a node sends a flat list)
        plain = aredis.Redis(host=node.host, port=node.port, decode_responses=True)
        try:
            reply = await plain.execute_command("PUBSUB", "NUMSUB", *channels)
        finally:
            await plain.aclose()
        pairs = reply if reply and isinstance(reply[0], list | tuple) else zip(
            reply[::2], reply[1::2], strict=True)
        for c, n in pairs:
            total[c] += int(n)
    return total


async def run_until_done(omniq: Any, procs: list[Any], n_jobs: int) -> None:
    """Drive worker_proc.py processes through their ledgers: wait until each reported
    ``t:ready``, let them all go, wait until ``t:done`` holds ``n_jobs`` entries, stop them
    and require a clean exit. The processes are closed whatever happens."""
    try:
        for _ in procs:
            item = await omniq.redis.blpop(["t:ready"], timeout=30)
            assert item is not None, "the worker processes did not start"
        for tag in range(len(procs)):
            await omniq.redis.rpush(f"t:go:{tag}", "1")

        async def all_done() -> bool:
            return int(await omniq.redis.llen("t:done")) >= n_jobs

        await poll_until(all_done, 30, "every job to be handled", interval=0.05)
        for tag in range(len(procs)):
            await omniq.redis.rpush(f"t:stop:{tag}", "1")
        for p in procs:
            assert await p.wait(20) == 0, p.output()
    finally:
        for p in procs:
            p.close()
