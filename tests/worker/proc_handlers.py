"""Module-level handlers for the process-pool tests (importable by spawned children)."""

from __future__ import annotations

import os
from typing import Any


def cpu_handler(ctx: Any) -> dict[str, Any]:
    total = sum(i * i for i in range(ctx.payload["n"]))
    return {"pid": os.getpid(), "total": total, "exec": ctx.exec is None, "job": ctx.job_id}


def failing_handler(ctx: Any) -> None:
    raise ValueError(f"bad input {ctx.payload['n']}")


def crash_or_work(ctx: Any) -> dict[str, Any]:
    """Kills its own process (no cleanup, as a segfault would) when the payload says so."""
    if ctx.payload.get("crash"):
        os._exit(1)
    return {"pid": os.getpid(), "n": ctx.payload["n"]}


def report_pid_then_hang(ctx: Any) -> None:
    """Pushes its pid to the Redis list the payload names, then blocks (until killed)."""
    import time

    import redis

    url: str = ctx.payload["url"]
    if url.startswith("redis+cluster://"):  # omniq's scheme for a cluster
        from redis.cluster import RedisCluster

        RedisCluster.from_url("redis://" + url.removeprefix("redis+cluster://")).rpush(
            ctx.payload["ledger"], os.getpid())
    else:
        redis.Redis.from_url(url).rpush(ctx.payload["ledger"], os.getpid())
    time.sleep(3600)


def hang_unless_retried(ctx: Any) -> dict[str, Any]:
    """The first attempt blocks (past any run timeout); later attempts return at once."""
    import time

    if ctx.attempt == 1:
        time.sleep(3600)
    return {"attempt": ctx.attempt, "pid": os.getpid()}

