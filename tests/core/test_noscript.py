"""Reloading: every call path loads the scripts again after SCRIPT FLUSH and the function
library after FUNCTION FLUSH (a restarted server without persistence has neither)."""

from __future__ import annotations

import redis
from core_util import T0, qk

from omniq import Lease
from omniq._scripts import LIBRARY_NAME, SCRIPTS


def _library_loaded(raw) -> bool:
    return bool(raw.function_list(library=LIBRARY_NAME))


def _flush(raw) -> None:
    raw.script_flush()
    assert not any(raw.script_exists(*[s.sha for s in SCRIPTS.values()]))
    if not isinstance(raw, redis.RedisCluster):  # (a cluster client calls no functions)
        raw.function_flush()
        assert not _library_loaded(raw)


def _loaded(raw, name: str) -> bool:
    """Whether the script ``name`` is on the server in the form the client calls: the
    library (FCALL), on a cluster the script (EVALSHA)."""
    if isinstance(raw, redis.RedisCluster) or SCRIPTS[name].function is None:
        return raw.script_exists(SCRIPTS[name].sha) == [True]
    return _library_loaded(raw)


async def test_single_calls_recover(omniq, raw):
    _flush(raw)
    jid = await omniq.publish("q", {}, now_ms=T0)
    _flush(raw)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == jid
    _flush(raw)
    assert await omniq.heartbeat("q", jid, job.lease_token, now_ms=T0 + 2) > T0
    _flush(raw)
    await omniq.ack_success("q", jid, job.lease_token, now_ms=T0 + 3)
    assert _loaded(raw, "ack_success")


async def test_heartbeat_many_pipelined_recovers(omniq, raw):
    a = await omniq.publish("qa", {}, now_ms=T0)
    b = await omniq.publish("qb", {}, now_ms=T0)
    ja = await omniq.reserve("qa", now_ms=T0 + 1)
    jb = await omniq.reserve("qb", now_ms=T0 + 1)
    _flush(raw)
    res = await omniq.heartbeat_many(
        [Lease("qa", a, ja.lease_token), Lease("qb", b, jb.lease_token)], now_ms=T0 + 10
    )
    assert res == [T0 + 10 + 30_000, T0 + 10 + 30_000]
    assert _loaded(raw, "heartbeat")


async def test_publish_many_multi_chunk_recovers(omniq, raw):
    _flush(raw)
    ids = await omniq.publish_many("q", [{"i": i} for i in range(2100)], now_ms=T0)
    assert raw.llen(qk("q", "wait")) == 2100
    assert raw.lrange(qk("q", "wait"), 0, -1) == ids  # every chunk ran exactly once


async def test_admin_and_children_recover(omniq, raw):
    _flush(raw)
    await omniq.pause("q")
    _flush(raw)
    assert await omniq.resume("q") is True
    _flush(raw)
    await omniq.childs_init("k", 1)
    _flush(raw)
    assert await omniq.child_ack("k", "c") == 0
    assert _loaded(raw, "child_ack")
    _flush(raw)
    assert await omniq.promote_delayed("q", now_ms=T0) == 0
    _flush(raw)
    assert await omniq.reap_expired("q", now_ms=T0) == 0
    assert _loaded(raw, "reap_expired")
