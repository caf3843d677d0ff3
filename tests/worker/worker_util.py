"""Helpers of the worker suite (imported by module name: tests/worker is on sys.path).

Synchronisation rules of this suite: in-process waits use asyncio events (``within``) or
:class:`Spy` (an event-driven record of calls to a client method); only waits on another
process poll, and always with a bounded deadline (``poll_until``) or block on a Redis list
(BLPOP) used as a ledger.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PROC_SCRIPT = HERE / "worker_proc.py"


def jk(queue: str, job_id: str) -> str:
    """Key of a job hash."""
    return "{" + queue + "}:job:" + job_id


def qk(queue: str, suffix: str) -> str:
    """Key ``{queue}:suffix``."""
    return "{" + queue + "}:" + suffix


def now_ms() -> int:
    return int(time.time() * 1000)


async def within(aw: Awaitable[T], seconds: float, what: str) -> T:
    """Await ``aw`` for at most ``seconds``; running out of time fails the test clearly."""
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds}s waiting for {what}") from None


async def poll_until(
    check: Callable[[], Awaitable[bool]], seconds: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``check`` (a Redis read of another process's ledger) until true or deadline."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(interval)


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


class Proc:
    """A worker subprocess (``worker_proc.py``) whose output goes to a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        self.popen = subprocess.Popen(
            [sys.executable, str(PROC_SCRIPT), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait(self, seconds: float) -> int:
        """Wait for the process to exit (bounded); returns its exit code."""
        try:
            return await asyncio.to_thread(self.popen.wait, seconds)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker process {self.pid} still running after {seconds}s; output:\n"
                + self.output()
            ) from None

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)
        self._log.close()


async def numsub(redis: Any, *channels: str) -> dict[str, int]:
    """Subscribers per channel (``PUBSUB NUMSUB``), summed over the masters of a cluster:
    each cluster node counts only its own clients' subscriptions."""
    from redis.asyncio.cluster import RedisCluster

    if not isinstance(redis, RedisCluster):
        return {str(c): int(n) for c, n in await redis.pubsub_numsub(*channels)}
    await redis.initialize()
    total = dict.fromkeys(channels, 0)
    for node in redis.get_primaries():
        reply = await redis.execute_command("PUBSUB", "NUMSUB", *channels, target_nodes=node)
        for c, n in zip(reply[::2], reply[1::2], strict=True):
            total[c if isinstance(c, str) else c.decode()] += int(n)
    return total
