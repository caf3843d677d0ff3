"""Flows whose children the official OmniQ client (PyPI omniq 4.0.0) runs (docs/workflows.md).

The official scripts know nothing of dependencies: their ``reserve`` takes jobs from the
wait lists only, so a job in ``waiting_deps`` is invisible to them, and their
``ack_success`` ends a child without settling its dependents (and stores no result). Our
repair scan (``resolve_dependencies(queue)``, which every omniq worker's maintenance runs)
settles such children once their re-check time (``DEPS_REPAIR_MS``, 60 s after they got
their dependents) has come: the tests pass an explicit ``now_ms`` past it rather than wait.
"""

from __future__ import annotations

from typing import Any

import interop_util as interop
import pytest
import redis

from omniq import AsyncOmniq, FlowJob

pytestmark = pytest.mark.interop

DEPS_REPAIR_MS = 60_000  # lua/lib.lua: when the repair scan looks at a dependency again


def server_ms(raw: redis.Redis) -> int:
    sec, usec = raw.time()
    return int(sec) * 1000 + int(usec) // 1000


def state(raw: redis.Redis, queue: str, job_id: str) -> str | None:
    return raw.hget(interop.qk(queue, "job:" + job_id), "state")


def children(queue: str, n: int, tag: str) -> list[FlowJob]:
    return [FlowJob(queue=queue, payload={"n": k, "tag": tag}, job_id=f"{tag}-{k}")
            for k in range(n)]


class ParentHandler:
    """Our handler of the parents: records what each saw."""

    def __init__(self) -> None:
        self.seen: dict[str, list[dict[str, Any]]] = {}

    async def __call__(self, ctx: Any) -> dict[str, int]:
        results = await ctx.children_results()
        self.seen.setdefault(f"{ctx.queue}:{ctx.job_id}", []).append(results)
        return {"seen": len(results)}


async def test_official_consumer_runs_the_children_and_the_repair_releases_the_parents(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    cq, pq = "ichild", "iparent"
    # across queues: the parent on a queue of ours, 25 children on the official one
    cross = await omniq.publish_flow(FlowJob(queue=pq, payload={"n": "cross"},
                                             children=children(cq, 25, "x")))
    # on one queue: the parent waits among the children the official consumer runs
    same = await omniq.publish_flow(FlowJob(queue=cq, payload={"n": "same"},
                                            children=children(cq, 5, "s")))
    kids = [c.job_id for c in (*cross.children, *same.children)]
    assert state(raw, cq, same.job_id) == state(raw, pq, cross.job_id) == "waiting_deps"

    res = await official.arun({"op": "consume", "queue": cq, "ledger": cq, "drain": True,
                               "max_seconds": 30})
    assert res["reason"] == "drained", res
    assert res["handled"] == len(kids)
    ledger = interop.Ledger(raw, cq)
    assert ledger.runs() == dict.fromkeys(kids, 1)  # the parent never ran there
    assert ledger.by() == dict.fromkeys(kids, "official")
    assert all(state(raw, cq, k) == "completed" for k in kids)
    # the official acks settled nothing: both parents still wait, no result was stored
    assert state(raw, cq, same.job_id) == "waiting_deps"
    assert state(raw, pq, cross.job_id) == "waiting_deps"
    assert not any(raw.hexists(interop.qk(cq, "job:" + k), "result") for k in kids)
    assert raw.zcard(interop.qk(cq, "deps:src")) == len(kids)
    await interop.check_monitors(official, omniq, raw, cq,
                                 job_ids=[*kids, same.job_id])

    # before the re-check time nothing moves ...
    assert await omniq.resolve_dependencies(cq) == 0
    assert state(raw, cq, same.job_id) == "waiting_deps"
    # ... after it, the repair settles every child: the same-queue parent inside the call,
    # the other one through the outbox (25 ops delivered)
    later = server_ms(raw) + DEPS_REPAIR_MS + 1_000
    assert await omniq.resolve_dependencies(cq, now_ms=later) == 25
    assert state(raw, cq, same.job_id) == "wait"
    assert state(raw, pq, cross.job_id) == "wait"
    for key in ("deps:out", "deps:outres", "deps:src"):
        assert not raw.exists(interop.qk(cq, key)), key

    handler = ParentHandler()
    await omniq.consume([pq, cq], handler, concurrency=4, drain=True, handle_signals=False)
    assert await omniq.wait(pq, cross.job_id, timeout=10) == {"seen": 25}
    assert await omniq.wait(cq, same.job_id, timeout=10) == {"seen": 5}
    # each ran once, after its children, and saw every child completed; the official ack
    # stores no result, so each child's result is None
    assert handler.seen == {
        f"{pq}:{cross.job_id}": [{c.job_id: None for c in cross.children}],
        f"{cq}:{same.job_id}": [{c.job_id: None for c in same.children}],
    }
    for q, parent in ((pq, cross), (cq, same)):
        info = await omniq.get_job(q, parent.job_id)
        assert info.state == "completed"
        assert info.deps_left == 0
        assert set(info.dependencies.values()) == {"completed"}
        assert info.dependency_results_raw == {}
        done = [(await omniq.get_job(cq, c.job_id)).completed_ms for c in parent.children]
        assert info.first_started_ms >= max(done)
    for q in (cq, pq):
        assert not raw.exists(interop.qk(q, "waiting_deps"))


async def test_official_clients_never_run_a_job_waiting_for_dependencies(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    q, blocker_q = "iwait", "iblock"  # the dependency sits on a queue nobody consumes
    blocker = await omniq.publish(blocker_q, {"n": "blocker"})
    plain = await omniq.publish(q, {"n": "plain"})
    waiting = await omniq.publish(q, {"n": "waiting"}, depends_on=[(blocker_q, blocker)])
    local = await omniq.publish(q, {"n": "local"}, depends_on=[plain, waiting])
    assert state(raw, q, waiting) == state(raw, q, local) == "waiting_deps"

    # the official reserve/ack loop (with promote) and the consume loop (with its promote
    # and reap passes) take only the ready job
    res = await official.arun({"op": "reserve_ack", "queue": q, "ledger": q, "promote": True,
                               "max_seconds": 2})
    assert res["status"] == "EMPTY"
    assert [j["job_id"] for j in res["jobs"]] == [plain]
    res = await official.arun({"commands": [
        {"op": "reap", "queue": q}, {"op": "promote", "queue": q}, {"op": "reserve", "queue": q},
    ]})
    assert (res[0]["reaped"], res[1]["promoted"]) == (0, 0)
    assert res[2] == {"status": "EMPTY"}
    res = await official.arun({"op": "consume", "queue": q, "ledger": q, "drain": True,
                               "reap_interval_s": 0.05, "promote_interval_s": 0.05,
                               "max_seconds": 30})
    assert (res["reason"], res["handled"]) == ("drained", 0), res
    # nor does the official remove: the job is in none of its lanes
    removed = await official.arun({"op": "remove", "queue": q, "lane": "wait",
                                   "job_ids": [waiting]})
    assert removed["items"][0]["status"] == "ERR"
    assert interop.Ledger(raw, q).runs() == {plain: 1}
    # `local` depended on `plain` and `waiting`: the official ack of `plain` settled
    # nothing, so both dependencies are pending for the repair scan
    assert state(raw, q, waiting) == state(raw, q, local) == "waiting_deps"
    info = await omniq.get_job(q, local)
    assert info.deps_left == 2
    await interop.check_monitors(official, omniq, raw, q, job_ids=[plain, waiting, local])

    # once the blocker completes (our client) and the repair has run, both run on ours
    job = await omniq.reserve(blocker_q)
    assert job is not None
    assert job.job_id == blocker
    await omniq.ack_success(blocker_q, blocker, job.lease_token, result={"ok": 1})
    assert state(raw, q, waiting) == "wait"  # the ack delivered the outcome at once
    assert await omniq.resolve_dependencies(q, now_ms=server_ms(raw) + DEPS_REPAIR_MS + 1000
                                            ) == 0  # (same queue: settled inside the repair)
    handler = ParentHandler()
    await omniq.consume(q, handler, concurrency=2, drain=True, handle_signals=False)
    assert handler.seen == {f"{q}:{waiting}": [{blocker: {"ok": 1}}],
                            f"{q}:{local}": [{plain: None, waiting: {"seen": 1}}]}


async def test_children_the_official_client_failed_meet_each_policy(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    """A child the official consumer fails for good reaches its parent through the repair
    scan like one it completed; under ``wait`` an official ``retry_failed`` of the child
    and its completion release the parent at the next re-check."""
    cq, pq = "ifchild", "ifparent"

    def child(tag: str, fail: int = 0) -> FlowJob:
        return FlowJob(queue=cq, job_id=tag, payload={"n": tag, "fail": fail}, max_attempts=1)

    failing = await omniq.publish_flow(FlowJob(queue=pq, payload={}, children=[
        child("ok1"), child("bad1", fail=1)]))
    ignoring = await omniq.publish_flow(FlowJob(queue=pq, payload={}, children=[
        child("ok2"), child("bad2", fail=1)], on_dependency_failure="ignore"))
    waiting = await omniq.publish_flow(FlowJob(queue=pq, payload={}, children=[
        child("bad3", fail=1)], on_dependency_failure="wait"))

    res = await official.arun({"op": "consume", "queue": cq, "ledger": cq, "drain": True,
                               "max_seconds": 30})
    assert (res["reason"], res["handled"]) == ("drained", 5), res
    assert [state(raw, cq, j) for j in ("ok1", "bad1", "ok2", "bad2", "bad3")] == [
        "completed", "failed", "completed", "failed", "failed"]
    later = server_ms(raw) + DEPS_REPAIR_MS + 1_000
    assert await omniq.resolve_dependencies(cq, now_ms=later) == 5
    fail_info = await omniq.get_job(pq, failing.job_id)
    assert (fail_info.state, fail_info.last_error) == ("failed", f"dependency failed: {cq}:bad1")
    assert state(raw, pq, ignoring.job_id) == "wait"
    wait_info = await omniq.get_job(pq, waiting.job_id)
    assert wait_info.state == "waiting_deps"
    assert wait_info.dependencies == {f"{cq}:bad3": "failed"}

    # the official client retries the child, its consumer completes it
    retried = await official.arun({"op": "retry_failed", "queue": cq, "job_ids": ["bad3"]})
    assert retried["items"][0]["status"] == "OK", retried
    res = await official.arun({"op": "consume", "queue": cq, "ledger": cq, "drain": True,
                               "max_seconds": 30})
    assert res["handled"] == 1, res
    assert state(raw, cq, "bad3") == "completed"
    assert await omniq.resolve_dependencies(cq, now_ms=later) == 0  # its next look: later
    assert state(raw, pq, waiting.job_id) == "waiting_deps"
    # (a failed job keeping 'wait' dependents is looked at every 10 DEPS_REPAIR_MS:
    # only another client's retry can end it without our scripts seeing it)
    assert await omniq.resolve_dependencies(cq, now_ms=later + DEPS_REPAIR_MS + 1_000) == 0
    assert await omniq.resolve_dependencies(
        cq, now_ms=later + 10 * DEPS_REPAIR_MS + 1_000) == 1

    handler = ParentHandler()
    await omniq.consume(pq, handler, concurrency=2, drain=True, handle_signals=False)
    assert handler.seen == {f"{pq}:{ignoring.job_id}": [{"ok2": None}],
                            f"{pq}:{waiting.job_id}": [{"bad3": None}]}
    for key in ("deps:out", "deps:outres", "deps:src"):
        assert not raw.exists(interop.qk(cq, key)), key
    assert not raw.exists(interop.qk(pq, "waiting_deps"))


async def test_more_than_a_hundred_children_acked_by_the_official_client(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    cq, pq = "ibig", "ibigp"
    n = 120
    flow = await omniq.publish_flow(FlowJob(queue=pq, payload={"n": "big"},
                                            children=children(cq, n, "b")))
    res = await official.arun({"op": "consume", "queue": cq, "ledger": cq, "drain": True,
                               "max_seconds": 30})
    assert res["handled"] == n, res
    # the official ack trims its completed list to 100 and deletes the trimmed records:
    # the repair scan counts a child whose record vanished as completed, without a result
    assert raw.llen(interop.qk(cq, "completed")) == 100
    later = server_ms(raw) + DEPS_REPAIR_MS + 1_000
    delivered = 0
    while got := await omniq.resolve_dependencies(cq, now_ms=later):  # 100 per repair scan
        delivered += got
    assert delivered == n
    handler = ParentHandler()
    await omniq.consume(pq, handler, concurrency=2, drain=True, handle_signals=False)
    info = await omniq.get_job(pq, flow.job_id)
    assert (info.state, info.last_error) == ("completed", None)
    assert handler.seen == {f"{pq}:{flow.job_id}": [{c.job_id: None for c in flow.children}]}
