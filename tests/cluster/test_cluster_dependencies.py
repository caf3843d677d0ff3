"""Dependencies and flows on a real local Redis Cluster (docs/workflows.md): the job and
the jobs it depends on live on different masters, so every outcome crosses nodes through
the dependency outbox (``{q}:deps:out``), delivered by the acking worker or by maintenance.
At the end of each test no outbox op, no repair entry and no waiting job is left.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from test_cluster import owner

from omniq import AsyncOmniq, FlowJob, JobFailed
from omniq.aio.worker import Worker

LEFTOVERS = ("deps:out", "deps:outres", "deps:src", "waiting_deps", "active")


def on_distinct_nodes(nodes: list[redis.Redis], prefix: str, k: int) -> list[str]:
    """``k`` queue names whose slots are served by ``k`` different masters."""
    found: dict[int, str] = {}
    for i in range(200):
        q = f"{prefix}{i}"
        found.setdefault(owner(nodes, q), q)
        if len(found) == k:
            break
    names = list(found.values())
    assert len({owner(nodes, q) for q in names}) == k == len(names)
    return names


async def leftovers(omniq: AsyncOmniq, queues: list[str]) -> dict[str, int]:
    """What is left in each queue's dependency keys (and lanes a finished run empties)."""
    r = omniq.redis
    out = {}
    for q in queues:
        for key in LEFTOVERS:
            k = "{" + q + "}:" + key
            kind = await r.type(k)
            n = await (r.hlen(k) if kind == "hash" else r.zcard(k))
            if n:
                out[k] = n
    return out


def result_of(ctx: Any, results: dict[str, Any]) -> dict[str, Any]:
    return {"q": ctx.queue, "id": ctx.job_id, "payload": ctx.payload, "seen": results}


async def test_a_chain_and_a_flow_between_two_masters(omniq, nodes):
    a, b = on_distinct_nodes(nodes, "dep", 2)
    runs: list[tuple[str, str, int]] = []

    async def handler(ctx):
        results = await ctx.children_results()
        runs.append((ctx.queue, ctx.job_id, len(results)))
        return result_of(ctx, results)

    # a chain that goes back and forth between the masters
    chain = await omniq.chain(*(FlowJob(queue=(a, b)[k % 2], payload={"step": k})
                                for k in range(6)))
    # a flow: the parent on a, children on both masters, one of them with children on a
    nested = FlowJob(queue=b, payload={"n": "nested"},
                     children=[FlowJob(queue=a, payload={"leaf": k}) for k in range(3)])
    flow = await omniq.publish_flow(FlowJob(
        queue=a, payload={"n": "root"},
        children=[*(FlowJob(queue=b, payload={"b": k}) for k in range(5)),
                  *(FlowJob(queue=a, payload={"a": k}) for k in range(5)), nested]))
    # a job published with depends_on on the other master: linked through b's outbox
    dep = await omniq.publish(a, {"n": "dep"})
    linked = await omniq.publish(b, {"n": "linked"}, depends_on=[(a, dep)])
    assert (await omniq.get_job(b, linked)).state == "waiting_deps"

    async with Worker(omniq, [a, b], handler, concurrency=4, maintenance_interval_s=0.2):
        last = await omniq.wait((a, b)[5 % 2], chain[-1], timeout=20)
        root = await omniq.wait_all([flow], timeout=20)
        got_linked = await omniq.wait(b, linked, timeout=20)

    # the chain ran in order, each step after the one before and with its result
    steps = [i for _, i, _ in runs if i in chain]
    assert steps == chain
    prev: dict[str, Any] | None = None
    for k, jid in enumerate(chain):
        q = (a, b)[k % 2]
        info = await omniq.get_job(q, jid)
        assert info.state == "completed"
        res = info.result
        assert res["payload"] == {"step": k}
        if k:
            assert res["seen"] == {chain[k - 1]: prev}
            before = await omniq.get_job((a, b)[(k - 1) % 2], chain[k - 1])
            assert info.first_started_ms >= before.completed_ms
        else:
            assert res["seen"] == {}
        prev = res
    assert last == prev

    # the flow: the root saw its eleven children's results, the nested child its three
    (root,) = root
    assert root["q"] == a
    kids = {c.job_id: c for c in flow.children}
    assert set(root["seen"]) == set(kids)
    for jid, seen in root["seen"].items():
        assert (seen["q"], seen["id"]) == (kids[jid].queue, jid)
    nested_node = flow.children[-1]
    assert nested_node.queue == b
    assert {r["payload"]["leaf"] for r in root["seen"][nested_node.job_id]["seen"].values()} == {
        0, 1, 2}
    assert got_linked["seen"] == {dep: {"q": a, "id": dep, "payload": {"n": "dep"}, "seen": {}}}
    assert await leftovers(omniq, [a, b]) == {}


async def test_failures_cross_masters_by_each_policy(omniq, nodes):
    a, b = on_distinct_nodes(nodes, "pol", 2)
    ran: list[str] = []

    async def handler(ctx):
        ran.append(ctx.job_id)
        if ctx.payload.get("fail"):
            raise RuntimeError("planned")
        return await ctx.children_results()

    bad = await omniq.publish(a, {"fail": True}, max_attempts=1)
    good = await omniq.publish(a, {})
    failing = await omniq.publish(b, {"n": "fail"}, depends_on=[(a, bad), (a, good)])
    ignoring = await omniq.publish(b, {"n": "ignore"}, depends_on=[(a, bad), (a, good)],
                                   on_dependency_failure="ignore")
    # a flow whose child on the other master fails for good: the parent fails, and its own
    # parent (back on the first master) fails in turn
    flow = await omniq.publish_flow(FlowJob(queue=a, payload={"n": "top"}, children=[
        FlowJob(queue=b, payload={"n": "mid"}, children=[
            FlowJob(queue=a, payload={"fail": True}, max_attempts=1)])]))

    async with Worker(omniq, [a, b], handler, concurrency=4, maintenance_interval_s=0.2):
        assert await omniq.wait(b, ignoring, timeout=20) == {good: {}}
        with pytest.raises(JobFailed) as failed:
            await omniq.wait(b, failing, timeout=20)
        assert failed.value.error == f"dependency failed: {a}:{bad}"
        with pytest.raises(JobFailed) as top:
            await omniq.wait(a, flow.job_id, timeout=20)
        mid = flow.children[0]
        assert top.value.error == f"dependency failed: {b}:{mid.job_id}"
    mid_info = await omniq.get_job(b, mid.job_id)
    assert (mid_info.state, mid_info.last_error) == (
        "failed", f"dependency failed: {a}:{mid.children[0].job_id}")
    assert not {failing, mid.job_id, flow.job_id} & set(ran)
    assert await leftovers(omniq, [a, b]) == {}


async def test_a_thousand_children_on_three_masters_fan_in(omniq, nodes):
    queues = on_distinct_nodes(nodes, "fan", 3)
    n = 1000

    async def handler(ctx):
        if ctx.job_id == parent.job_id:
            results = await ctx.children_results()
            return {"seen": len(results),
                    "sum": sum(r["k"] for r in results.values()),
                    "queues": sorted({r["q"] for r in results.values()})}
        return {"k": ctx.payload["k"], "q": ctx.queue}

    t0 = time.monotonic()
    parent = await omniq.publish_flow(FlowJob(
        queue=queues[0], payload={"n": "parent"},
        children=[FlowJob(queue=queues[k % 3], payload={"k": k}) for k in range(n)]))
    published_s = time.monotonic() - t0
    assert len(parent.children) == n
    async with Worker(omniq, queues, handler, concurrency=50, maintenance_interval_s=0.2):
        got = await omniq.wait(queues[0], parent.job_id, timeout=60)
    total_s = time.monotonic() - t0
    assert got == {"seen": n, "sum": n * (n - 1) // 2, "queues": sorted(queues)}
    # the children's results outlived their records (keep_completed trims them)
    results = await omniq.dependency_results(queues[0], parent.job_id)
    assert results == {c.job_id: {"k": k, "q": queues[k % 3]}
                       for k, c in enumerate(parent.children)}
    for q in queues:
        s = await omniq.stats(q)
        assert (s.waiting_total, s.active, s.delayed, s.failed) == (0, 0, 0, 0), s
    assert await leftovers(omniq, queues) == {}
    print(f"\n[cluster] fan-in of {n} children over 3 masters: publish {published_s:.2f}s, "
          f"total {total_s:.2f}s")
