"""NOSCRIPT recovery: every call path reloads scripts after SCRIPT FLUSH."""

from __future__ import annotations

from core_util import T0, qk

from omniq import Lease
from omniq._scripts import SCRIPTS


def _flush(raw) -> None:
    raw.script_flush()
    assert not any(raw.script_exists(*[s.sha for s in SCRIPTS.values()]))


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
    assert raw.script_exists(SCRIPTS["ack_success"].sha) == [True]


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
    _flush(raw)
    assert await omniq.promote_delayed("q", now_ms=T0) == 0
    _flush(raw)
    assert await omniq.reap_expired("q", now_ms=T0) == 0
