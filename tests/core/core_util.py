"""Helpers shared by the core suite (imported by module name: tests/core is on sys.path).

The key helpers and :func:`real_stats` come from tests/shared_util.py.
"""

from __future__ import annotations

from typing import Any

import redis
from shared_util import gk, jk, qk, real_stats

from omniq.types import ReservedJob

__all__ = [
    "T0",
    "Dump",
    "dump_db",
    "gk",
    "jk",
    "leased",
    "qk",
    "raw_field",
    "real_stats",
    "run_script",
    "stored_stats",
]

T0 = 1_000_000  # a fixed "now" for tests, far from the real clock on purpose

Dump = dict[str, tuple[str, Any, int]]


def dump_db(r: redis.Redis) -> Dump:
    """Every key of the database with its type, full value and PTTL (-1 = no expiry)."""
    out: Dump = {}
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        value: Any
        if kind == "string":
            value = r.get(key)
        elif kind == "hash":
            value = r.hgetall(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(r.smembers(key))
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        else:  # pragma: no cover - nothing of ours uses other types
            value = r.dump(key)
        out[key] = (kind, value, r.pttl(key))
    return out


async def leased(omniq: Any, queue: str = "q", **opts: Any) -> ReservedJob:
    """Publish one job at ``T0`` (``opts`` are publish options) and lease it at ``T0 + 10``."""
    jid = await omniq.publish(queue, {}, now_ms=T0, **opts)
    job = await omniq.reserve(queue, now_ms=T0 + 10)
    assert job is not None
    assert job.job_id == jid
    return job


def stored_stats(r: redis.Redis, queue: str) -> dict[str, int]:
    """The counter fields of ``{queue}:stats`` as ints."""
    h = r.hgetall(qk(queue, "stats"))
    return {k: int(h[k]) for k in real_stats(r, queue) if k in h}


def run_script(r: redis.Redis, name: str, key: str, *args: Any) -> Any:
    """Call one of our scripts directly with EVAL (bypassing every client-side check)."""
    from omniq._scripts import SCRIPTS

    return r.eval(SCRIPTS[name].source, 1, key, *args)


def raw_field(r: redis.Redis, key: str, field: str) -> bytes | None:
    """HGET without decoding, to check the exact stored bytes."""
    value = r.execute_command("HGET", key, field, NEVER_DECODE=True)
    assert value is None or isinstance(value, bytes)
    return value
