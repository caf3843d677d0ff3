"""Helpers shared by every test suite (imported by module name: tests/ is on sys.path, put
there by pytest for tests/conftest.py; a helper script run as a subprocess adds it itself).

The per-suite ``*_util`` modules re-export what they use from here, so test files keep
importing from their own suite's module.

* :func:`jk`, :func:`qk`, :func:`gk` -- key names of the OmniQ v1 layout.
* :func:`real_stats` -- the queue counters computed from the real containers.
* :func:`within`, :func:`poll_until` -- bounded waits that fail the test with a clear message.
* :class:`ScriptProc` -- a helper script of a suite run as a subprocess, output to a log file.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import redis

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- keys


def jk(queue: str, job_id: str) -> str:
    """Key of a job hash."""
    return "{" + queue + "}:job:" + job_id


def qk(queue: str, suffix: str) -> str:
    """Key ``{queue}:suffix``."""
    return "{" + queue + "}:" + suffix


def gk(queue: str, gid: str, suffix: str) -> str:
    """Key ``{queue}:g:<gid>:suffix``."""
    return "{" + queue + "}:g:" + gid + ":" + suffix


def real_stats(r: redis.Redis, queue: str) -> dict[str, int]:
    """Counter values computed from the real containers (what ``{queue}:stats`` and the
    monitors must say)."""
    w = r.llen(qk(queue, "wait"))
    gw = sum(r.llen(k) for k in r.scan_iter(match=qk(queue, "g:*:wait")))
    return {
        "waiting": w,
        "group_waiting": gw,
        "waiting_total": w + gw,
        "active": r.zcard(qk(queue, "active")),
        "delayed": r.zcard(qk(queue, "delayed")),
        "failed": r.llen(qk(queue, "failed")),
        "completed_kept": r.llen(qk(queue, "completed")),
        "groups_ready": r.zcard(qk(queue, "groups:ready")),
    }


# --------------------------------------------------------------------------- bounded waits


async def within(aw: Awaitable[T], seconds: float, what: str) -> T:
    """Await ``aw`` for at most ``seconds``; running out of time fails the test clearly."""
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds}s waiting for {what}") from None


async def poll_until(
    check: Callable[[], bool | Awaitable[bool]],
    seconds: float,
    what: str,
    interval: float = 0.02,
) -> float:
    """Poll ``check`` (a read of state another process writes; plain or async) until true.

    Returns the seconds it took; fails the test at the deadline.
    """
    start = time.monotonic()
    deadline = start + seconds
    while True:
        ok = check()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            return time.monotonic() - start
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------- subprocesses


class ScriptProc:
    """``python <script> <args>`` with this checkout on ``PYTHONPATH``, unbuffered, its
    stdout and stderr in ``log_path``."""

    def __init__(self, script: Path, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        self.popen = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

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
        """Kill the process if it still runs, reap it and close the log."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)
        self._log.close()


_SLOW_STEP = re.compile(r"(?m)^Executing <.*> took \d+\.\d+ seconds\n")


def without_slow_steps(stderr: str) -> str:
    """``stderr`` of a ``python -X dev`` run without asyncio's "Executing <...> took 0.1xx
    seconds" lines: on a busy two-core machine any event-loop step can be slow, which is
    load, not a fault of the program under test."""
    return _SLOW_STEP.sub("", stderr)
