"""Handlers: the context they get, sync and typed handlers, outcomes and results."""

import asyncio
import dataclasses
import json
import threading
from typing import Any

import msgspec
import pytest
from worker_util import jk

from omniq.aio.context import Exec, JobContext, SyncExec
from omniq.aio.worker import Fail, Worker


class Order(msgspec.Struct):
    sku: str
    qty: int


@dataclasses.dataclass
class OrderDC:
    sku: str
    qty: int


async def drain(omniq: Any, queue: str, handler: Any, **options: Any) -> Worker:
    """Run a draining worker to completion (bounded)."""
    worker = Worker(omniq, queue, handler, drain=True, **options)
    await asyncio.wait_for(worker.run(), 15)
    return worker


async def test_async_handler_context_fields(omniq, raw):
    seen: dict[str, Any] = {}

    async def handler(ctx: JobContext) -> None:
        stored = await omniq.redis.hgetall(jk("q", ctx.job_id))
        child = await ctx.exec.publish("children", {"parent": ctx.job_id})
        seen.update(
            queue=ctx.queue, job_id=ctx.job_id, payload=ctx.payload,
            payload_raw=ctx.payload_raw, attempt=ctx.attempt,
            max_attempts=ctx.max_attempts, lock_until_ms=ctx.lock_until_ms,
            lease_token=ctx.lease_token, gid=ctx.gid, exec=ctx.exec, stored=stored,
            child=child, lease_lost=ctx.lease_lost, thread=threading.get_ident(),
        )

    payload = {"a": 1, "text": "héllo", "items": [1, 2, {"b": None}]}
    jid = await omniq.publish("q", payload, gid="g1", max_attempts=4, timeout_ms=30_000)
    await drain(omniq, "q", handler)

    stored = seen["stored"]
    assert seen["queue"] == "q"
    assert seen["job_id"] == jid
    assert seen["payload"] == payload
    assert seen["payload_raw"] == stored["payload"]
    assert json.loads(seen["payload_raw"]) == payload
    assert seen["attempt"] == 1
    assert seen["max_attempts"] == 4
    assert stored["state"] == "active"
    assert seen["lock_until_ms"] == int(stored["lock_until_ms"])
    assert seen["lease_token"] == stored["lease_token"]
    assert len(seen["lease_token"]) == 40
    assert seen["gid"] == "g1"
    assert seen["lease_lost"] is False
    assert isinstance(seen["exec"], Exec)
    assert seen["thread"] == threading.get_ident()  # async handlers run on the loop
    child = raw.hgetall(jk("children", seen["child"]))
    assert child["state"] == "wait"
    assert json.loads(child["payload"]) == {"parent": jid}
    assert raw.hget(jk("q", jid), "state") == "completed"


async def test_ungrouped_job_has_empty_gid(omniq):
    gids: list[str] = []

    async def handler(ctx: JobContext) -> None:
        gids.append(ctx.gid)

    await omniq.publish("q", {"x": 1})
    await drain(omniq, "q", handler)
    assert gids == [""]


async def test_sync_handler_runs_in_a_thread_with_blocking_exec(omniq, raw):
    seen: dict[str, Any] = {}

    def handler(ctx: JobContext) -> dict[str, Any]:
        seen["thread"] = threading.get_ident()
        seen["exec"] = ctx.exec
        seen["child"] = ctx.exec.publish("children", {"parent": ctx.job_id})
        seen["paused"] = ctx.exec.is_paused("q")
        info = ctx.exec.get_job("q", ctx.job_id)
        seen["state"] = info.state if info is not None else None
        return {"from": "thread"}

    jid = await omniq.publish("q", {"x": 1})
    await drain(omniq, "q", handler)

    assert seen["thread"] != threading.get_ident()
    assert isinstance(seen["exec"], SyncExec)
    assert seen["paused"] is False
    assert seen["state"] == "active"
    child = raw.hgetall(jk("children", seen["child"]))
    assert child["state"] == "wait"
    assert json.loads(child["payload"]) == {"parent": jid}
    assert raw.hget(jk("q", jid), "state") == "completed"
    assert await omniq.result("q", jid) == {"from": "thread"}


async def test_typed_payload_msgspec_struct(omniq, raw):
    got: list[Any] = []

    async def handler(ctx: JobContext, order: Order) -> None:
        got.append(order)

    jid = await omniq.publish("q", {"sku": "A-1", "qty": 3})
    await drain(omniq, "q", handler)
    assert got == [Order(sku="A-1", qty=3)]
    assert type(got[0]) is Order
    assert raw.hget(jk("q", jid), "state") == "completed"


async def test_typed_payload_dataclass_sync_handler(omniq, raw):
    got: list[Any] = []

    def handler(ctx: JobContext, order: OrderDC) -> None:
        got.append(order)

    jid = await omniq.publish("q", {"sku": "B-2", "qty": 7})
    await drain(omniq, "q", handler)
    assert got == [OrderDC(sku="B-2", qty=7)]
    assert type(got[0]) is OrderDC
    assert raw.hget(jk("q", jid), "state") == "completed"


@pytest.mark.parametrize("kind", ["struct", "dataclass"])
async def test_invalid_typed_payload_fails_for_good(omniq, raw, kind):
    calls: list[Any] = []

    async def h_struct(ctx: JobContext, order: Order) -> None:
        calls.append(order)

    async def h_dc(ctx: JobContext, order: OrderDC) -> None:
        calls.append(order)

    jid = await omniq.publish("q", {"sku": "A-1", "qty": "many"}, max_attempts=3, backoff_ms=0)
    worker = await drain(omniq, "q", h_struct if kind == "struct" else h_dc)

    h = raw.hgetall(jk("q", jid))
    assert calls == []
    assert h["state"] == "failed"
    assert h["attempt"] == "1"
    assert h["max_attempts"] == "3"
    assert "InvalidPayload" in h["last_error"]
    assert "qty" in h["last_error"]
    assert worker.stats.failed == 1
    assert worker.stats.retried == 0


async def test_fail_exception_fails_for_good(omniq, raw):
    calls: list[int] = []

    async def handler(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        raise Fail("x")

    jid = await omniq.publish("q", {}, max_attempts=3, backoff_ms=0)
    worker = await drain(omniq, "q", handler)
    h = raw.hgetall(jk("q", jid))
    assert calls == [1]
    assert h["state"] == "failed"
    assert h["attempt"] == "1"
    assert h["last_error"].split("\n")[0] == "Fail: x"
    assert raw.lrange("{q}:failed", 0, -1) == [jid]
    assert (worker.stats.failed, worker.stats.retried) == (1, 0)


@pytest.mark.parametrize("sync", [False, True], ids=["async", "thread"])
async def test_exception_retries_then_fails(omniq, raw, sync):
    calls: list[int] = []
    due_seen: list[str] = []

    async def ahandler(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        if ctx.attempt > 1:
            # the retry went through the delayed lane with its backoff
            due_seen.append(await omniq.redis.hget(jk("q", ctx.job_id), "due_ms"))
        raise ValueError("boom")

    def shandler(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        raise ValueError("boom")

    jid = await omniq.publish("q", {}, max_attempts=3, backoff_ms=0)
    worker = await drain(omniq, "q", shandler if sync else ahandler)
    h = raw.hgetall(jk("q", jid))
    assert calls == [1, 2, 3]
    assert h["state"] == "failed"
    assert h["attempt"] == "3"
    first, _, tb = h["last_error"].partition("\n")
    assert first == "ValueError: boom"
    assert tb.startswith("Traceback (most recent call last):")
    assert 'raise ValueError("boom")' in tb  # the handler's own frame
    assert h["due_ms"] != ""
    if not sync:
        assert len(due_seen) == 2
        assert all(due_seen)
    assert (worker.stats.retried, worker.stats.failed, worker.stats.completed) == (2, 1, 0)


async def test_return_value_is_stored_as_result(omniq, raw):
    async def handler(ctx: JobContext) -> Any:
        if ctx.payload["kind"] == "dict":
            return {"total": 42, "items": [1, 2], "name": "é"}
        if ctx.payload["kind"] == "struct":
            return Order(sku="Z", qty=1)
        return None

    a = await omniq.publish("q", {"kind": "dict"})
    b = await omniq.publish("q", {"kind": "struct"})
    c = await omniq.publish("q", {"kind": "none"})
    await drain(omniq, "q", handler)
    assert await omniq.result("q", a) == {"total": 42, "items": [1, 2], "name": "é"}
    assert await omniq.result("q", b) == {"sku": "Z", "qty": 1}
    assert await omniq.result("q", c) is None
    for jid in (a, b, c):
        assert raw.hget(jk("q", jid), "state") == "completed"


@pytest.mark.parametrize("sync", [False, True], ids=["async", "thread"])
async def test_unserialisable_result_fails_without_retry(omniq, raw, sync):
    calls: list[int] = []

    async def ahandler(ctx: JobContext) -> Any:
        calls.append(ctx.attempt)
        return object()

    def shandler(ctx: JobContext) -> Any:
        calls.append(ctx.attempt)
        return object()

    jid = await omniq.publish("q", {}, max_attempts=3, backoff_ms=0)
    worker = await drain(omniq, "q", shandler if sync else ahandler)
    h = raw.hgetall(jk("q", jid))
    assert calls == [1]
    assert h["state"] == "failed"
    assert h["attempt"] == "1"
    assert "result" not in h
    assert "InvalidPayload" in h["last_error"]
    assert "object" in h["last_error"]
    assert (worker.stats.failed, worker.stats.retried, worker.stats.completed) == (1, 0, 0)
