"""Dependencies and flows (docs/workflows.md): jobs that wait in state
``waiting_deps`` for other jobs, on their queue or on others, and flows built on them.

Everything runs against the real scripts. Precise steps use ``reserve`` / ``ack_success``
directly (with ``now_ms`` where the time matters), whole runs a real worker with
``drain=True``; work another queue owes is delivered by the acking client or by
``resolve_dependencies`` (whose ``now_ms`` moves the deliverer past the retry and repair
times instead of sleeping).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from core_util import T0, dump_db, jk, qk, real_stats, stored_stats
from deps_util import (
    drain,
    fail,
    far_future,
    job,
    job_event_types,
    job_events,
    lease,
    lua_constant,
    official_ack,
    official_fail,
    outbox,
    run,
    state,
    tagged,
    waiting_deps,
)
from shared_util import within

from omniq import (
    Ack,
    AsyncOmniq,
    ConnectionFailed,
    DependencyCycle,
    DependencyError,
    DependencyNotFound,
    DuplicateJobError,
    FlowJob,
    FlowNode,
    InvalidArgument,
    JobFailed,
    JobSpec,
    LaneMismatch,
    OmniqClient,
)
from omniq._limits import (
    DEPS_ORPHAN_MS,
    DEPS_RETRY_MS,
    ENQUEUE_FIELDS,
    MAX_DEPENDENCIES,
    MAX_DEPENDENTS,
    MAX_DEPS_OPS,
)
from omniq._protocol import deps, enqueue, leases

DEPS_REPAIR_MS = lua_constant("DEPS_REPAIR_MS")  # the repair scan's re-check period


def dres(info: Any) -> dict[str, Any]:
    """JobInfo.dependency_results_raw, decoded."""
    return {k: json.loads(v) for k, v in info.dependency_results_raw.items()}


def quiet_dump(raw: Any) -> Any:
    """dump_db without the stats' last_activity_ms stamps."""
    out = dump_db(raw)
    for k, (kind, value, ttl) in list(out.items()):
        if k.endswith(":stats"):
            out[k] = (kind, {f: v for f, v in value.items() if f != "last_activity_ms"}, ttl)
    return out


def consistent(raw: Any, *queues: str) -> None:
    for q in queues:
        assert stored_stats(raw, q) == real_stats(raw, q), q


def _recorder() -> tuple[list[tuple[str, str, dict[str, Any]]], Any]:
    """An async handler that records (queue, job id, children results) per run and returns
    ``{"id": job id}``."""
    runs: list[tuple[str, str, dict[str, Any]]] = []

    async def handler(ctx: Any) -> dict[str, str]:
        runs.append((ctx.queue, ctx.job_id, await ctx.children_results()))
        return {"id": ctx.job_id}

    return runs, handler


# -- one queue: chains and diamonds ------------------------------------------------------


async def test_chain_on_one_queue_is_released_by_the_ack_itself(omniq, raw):
    assert await omniq.publish("q", {"n": "a"}, job_id="A", now_ms=T0) == "A"
    assert await omniq.publish("q", {"n": "b"}, job_id="B", depends_on=["A"],
                               now_ms=T0 + 1) == "B"
    assert await omniq.publish("q", {"n": "c"}, job_id="C", depends_on=[("q", "B")],
                               now_ms=T0 + 2) == "C"
    assert [await state(omniq, "q", i) for i in "ABC"] == ["wait", "waiting_deps", "waiting_deps"]
    assert waiting_deps(raw, "q") == ["B", "C"]
    assert raw.zscore(qk("q", "waiting_deps"), "C") == T0 + 2
    stats = await omniq.stats("q")
    assert (stats.waiting, stats.waiting_total, stats.waiting_deps) == (1, 1, 2)
    page = await omniq.jobs("q", "waiting_deps")
    assert ([j.job_id for j in page.jobs], page.index_ms) == (["B", "C"], [T0 + 1, T0 + 2])
    b = await job(omniq, "q", "B")
    assert (b.depends_on, b.dependencies, b.deps_left, b.dep_policy) == (
        [("q", "A")], {"q:A": "pending"}, 1, "fail")
    assert "dep_policy" not in b.fields  # (only written when it is not 'fail')
    assert (await job(omniq, "q", "A")).dependents == [("q", "B")]
    assert (await job(omniq, "q", "B")).dependents == [("q", "C")]

    a = await lease(omniq, "q", "A", now_ms=T0 + 10)
    assert await omniq.reserve("q", now_ms=T0 + 11) is None  # B and C are not ready
    await omniq.ack_success("q", "A", a.lease_token, result={"a": 1}, now_ms=T0 + 20)
    # no other call in between: the ack itself released B (C still waits for B)
    b = await job(omniq, "q", "B")
    assert (b.state, b.queued_ms, b.deps_left, b.dependencies) == (
        "wait", T0 + 20, 0, {"q:A": "completed"})
    assert dres(b) == {"q:A": {"a": 1}}
    assert await state(omniq, "q", "C") == "waiting_deps"
    assert waiting_deps(raw, "q") == ["C"]
    stats = await omniq.stats("q")
    assert (stats.waiting, stats.waiting_deps, stats.completed_kept) == (1, 1, 1)
    a_info = await job(omniq, "q", "A")
    assert a_info.dependents == []
    assert "dependents" not in a_info.fields
    assert not raw.exists(jk("q", "A") + ":dependents")
    assert raw.zscore(qk("q", "deps:src"), "A") is None
    assert job_event_types(raw, "q", "B") == ["waiting_deps", "enqueued"]
    assert outbox(raw, "q") == []

    await run(omniq, "q", "B", result={"b": 2}, now_ms=T0 + 30)
    c = await job(omniq, "q", "C")
    assert (c.state, c.queued_ms) == ("wait", T0 + 31)
    await run(omniq, "q", "C", now_ms=T0 + 40)
    assert await omniq.dependency_results("q", "C") == {"B": {"b": 2}}
    assert await omniq.dependency_results("q", "B") == {"A": {"a": 1}}
    assert await omniq.dependency_results("q", "A") == {}
    assert waiting_deps(raw, "q") == []
    assert raw.zcard(qk("q", "deps:src")) == 0
    consistent(raw, "q")


async def test_chain_on_one_queue_drained_by_a_worker_runs_in_order(omniq, raw):
    a = await omniq.publish("q", {"n": 1})
    b = await omniq.publish("q", {"n": 2}, depends_on=[a])
    c = await omniq.publish("q", {"n": 3}, depends_on=[b])
    runs, handler = _recorder()
    await drain(omniq, "q", handler, concurrency=3)  # free slots do not start B early
    assert [(i, r) for _, i, r in runs] == [(a, {}), (b, {a: {"id": a}}), (c, {b: {"id": b}})]
    assert await omniq.wait("q", c, timeout=5) == {"id": c}
    assert waiting_deps(raw, "q") == []
    assert (await omniq.stats("q")).completed_kept == 3


async def test_diamond_on_one_queue_runs_the_join_once_after_both(omniq, raw):
    a = await omniq.publish("q", {"n": "a"})
    b = await omniq.publish("q", {"n": "b"}, depends_on=[a])
    c = await omniq.publish("q", {"n": "c"}, depends_on=[a])
    d = await omniq.publish("q", {"n": "d"}, depends_on=[b, c])
    assert sorted((await job(omniq, "q", a)).dependents) == sorted([("q", b), ("q", c)])
    assert (await job(omniq, "q", d)).deps_left == 2
    runs, handler = _recorder()
    await drain(omniq, "q", handler, concurrency=4)
    order = [i for _, i, _ in runs]
    assert sorted(order) == sorted([a, b, c, d])  # each once
    assert order[0] == a
    assert order[-1] == d
    assert runs[-1][2] == {b: {"id": b}, c: {"id": c}}
    assert await omniq.dependency_results("q", d) == {b: {"id": b}, c: {"id": c}}
    assert list(await omniq.dependency_results("q", d)) == [b, c]  # in depends_on order
    assert await omniq.wait("q", d, timeout=5) == {"id": d}
    assert job_event_types(raw, "q", d).count("reserved") == 1


async def test_diamond_across_queues_runs_the_join_once_after_both(omniq, raw):
    a = await omniq.publish("a", {"n": "a"})
    b = await omniq.publish("b", {"n": "b"}, depends_on=[("a", a)])
    c = await omniq.publish("c", {"n": "c"}, depends_on=[("a", a)])
    d = await omniq.publish("d", {"n": "d"}, depends_on=[("b", b), ("c", c)])
    # the links were delivered by the publishes themselves
    assert sorted((await job(omniq, "a", a)).dependents) == [("b", b), ("c", c)]
    assert sorted((await job(omniq, "b", b)).dependents) == [("d", d)]
    assert all(outbox(raw, q) == [] for q in "abcd")
    runs, handler = _recorder()
    await drain(omniq, ["d", "c", "b", "a"], handler, concurrency=4)
    order = [(q, i) for q, i, _ in runs]
    assert sorted(order) == sorted([("a", a), ("b", b), ("c", c), ("d", d)])
    assert order[0] == ("a", a)
    assert order[-1] == ("d", d)
    assert runs[-1][2] == {b: {"id": b}, c: {"id": c}}
    assert await omniq.dependency_results("d", d) == {b: {"id": b}, c: {"id": c}}
    assert (await job(omniq, "d", d)).dependencies == {f"b:{b}": "completed",
                                                       f"c:{c}": "completed"}
    assert job_event_types(raw, "d", d).count("reserved") == 1
    assert all(outbox(raw, q) == [] and raw.zcard(qk(q, "deps:outdata")) == 0 for q in "abcd")
    consistent(raw, "a", "b", "c", "d")


# -- across queues: delivery ---------------------------------------------------------


async def test_cross_queue_dependency_is_delivered_by_ack_success(omniq, raw):
    b = await omniq.publish("y", {"n": "b"})
    d = await omniq.publish("x", {"n": "d"}, depends_on=[("y", b)])
    info = await job(omniq, "x", d)
    assert (info.state, info.depends_on, info.dependencies) == (
        "waiting_deps", [("y", b)], {f"y:{b}": "pending"})
    assert (await job(omniq, "y", b)).dependents == [("x", d)]  # linked by the publish
    assert outbox(raw, "x") == []
    assert outbox(raw, "y") == []
    await run(omniq, "y", b, result=[1, 2])
    info = await job(omniq, "x", d)
    assert (info.state, info.deps_left, dres(info)) == ("wait", 0, {f"y:{b}": [1, 2]})
    assert outbox(raw, "y") == []
    assert raw.hlen(qk("y", "deps:outdata")) == 0
    assert waiting_deps(raw, "x") == []
    assert job_event_types(raw, "x", d) == ["waiting_deps", "enqueued"]
    await run(omniq, "x", d)
    assert await omniq.dependency_results("x", d) == {b: [1, 2]}
    consistent(raw, "x", "y")


async def test_cross_queue_dependency_acked_elsewhere_is_delivered_by_resolve(omniq, raw):
    b = await omniq.publish("y", {"n": "b"})
    d = await omniq.publish("x", {"n": "d"}, depends_on=[("y", b)])
    # the script's reply says there is work for another queue ...
    got = await lease(omniq, "y", b)
    reply = await omniq.routing.call(leases.ACK_SUCCESS, "y", leases.ack_success_args(
        b, 0, got.lease_token, b'"r"', 100, omniq.events_maxlen))
    assert leases.parse_ack_success(reply, b) is True
    # ... which only the outbox holds until someone delivers it
    assert await state(omniq, "x", d) == "waiting_deps"
    assert outbox(raw, "y") == [f"R\tcompleted\t{b}\tx\t{d}"]
    assert await omniq.resolve_dependencies("y") == 1
    info = await job(omniq, "x", d)
    assert (info.state, dres(info)) == ("wait", {f"y:{b}": "r"})
    assert outbox(raw, "y") == []
    assert raw.hlen(qk("y", "deps:outdata")) == 0
    # idempotent: nothing left to deliver, and a repeated delivery changes nothing (but the
    # queue's last_activity_ms: every script call that finishes stamps it)
    before = quiet_dump(raw)
    assert await omniq.resolve_dependencies("y") == 0
    reply = await omniq.routing.call(deps.DEPS_RESOLVE, "x", deps.resolve_args(
        0, [(d, f"y:{b}", "completed", '"r"')], omniq.events_maxlen))
    assert deps.parse_resolve(reply) == (["OK"], False)
    assert await omniq.resolve_dependencies("x") == 0
    assert quiet_dump(raw) == before


async def test_cross_queue_dependency_acked_by_ack_reserve(omniq, raw):
    """The worker's route: ack_reserve notes the queue in routing.deps_due (the worker then
    delivers); a plain client call leaves the work to resolve_dependencies."""
    b = await omniq.publish("y", {"n": "b"})
    d = await omniq.publish("x", {"n": "d"}, depends_on=[("y", b)])
    got = await lease(omniq, "y", b)
    outcomes, _ = await omniq.ack_reserve("y", [Ack(b, got.lease_token, True, b'{"k":1}')], 0)
    assert outcomes == [None]
    assert "y" in omniq.routing.deps_due
    assert await state(omniq, "x", d) == "waiting_deps"
    assert await omniq.resolve_dependencies("y") == 1
    assert await state(omniq, "x", d) == "wait"
    assert await omniq.resolve_dependencies("y") == 0
    assert outbox(raw, "y") == []
    assert await omniq.dependency_results("x", d) == {b: {"k": 1}}


async def test_cross_queue_chain_is_delivered_hop_by_hop(omniq, raw):
    a = await omniq.publish("q1", {})
    b = await omniq.publish("q2", {}, depends_on=[("q1", a)])
    c = await omniq.publish("q3", {}, depends_on=[("q2", b)])
    await run(omniq, "q1", a, result="a")
    assert [await state(omniq, "q2", b), await state(omniq, "q3", c)] == ["wait", "waiting_deps"]
    await run(omniq, "q2", b, result="b")
    assert await state(omniq, "q3", c) == "wait"
    assert await omniq.dependency_results("q3", c) == {b: "b"}


# -- policies ---------------------------------------------------------------------------


async def test_policy_fail_fails_the_dependent_and_cascades_down_a_chain(omniq, raw):
    await omniq.publish("q", {}, job_id="A", now_ms=T0)
    await omniq.publish("q", {}, job_id="B", depends_on=["A"], now_ms=T0)
    await omniq.publish("q", {}, job_id="C", depends_on=["B"], now_ms=T0)
    await omniq.publish("q", {}, job_id="E", depends_on=["C"], on_dependency_failure="ignore",
                        now_ms=T0)
    await fail(omniq, "q", "A", error="bad input", now_ms=T0 + 10)
    b, c, e = [await job(omniq, "q", i) for i in "BCE"]
    assert (b.state, b.last_error, b.dependencies, b.attempt) == (
        "failed", "dependency failed: q:A", {"q:A": "failed"}, 0)
    assert (c.state, c.last_error, c.dependencies) == (
        "failed", "dependency failed: q:B", {"q:B": "failed"})
    assert (e.state, e.dependencies) == ("wait", {"q:C": "ignored"})  # the chain's end ignores
    assert waiting_deps(raw, "q") == []
    assert raw.lrange(qk("q", "failed"), 0, -1) == ["C", "B", "A"]
    for i, why in (("B", "dependency failed: q:A"), ("C", "dependency failed: q:B")):
        evs = job_events(raw, "q", i)
        assert [t for t, _ in evs] == ["waiting_deps", "failed"]
        assert evs[1][1]["error"] == why
    assert (await omniq.stats("q")).failed == 3
    assert raw.zcard(qk("q", "deps:src")) == 0
    with pytest.raises(JobFailed) as err:
        await omniq.wait("q", "C", timeout=5)
    assert err.value.error == "dependency failed: q:B"
    consistent(raw, "q")


async def test_policy_fail_cascades_across_queues(omniq, raw):
    a = await omniq.publish("q1", {})
    b = await omniq.publish("q2", {}, depends_on=[("q1", a)])
    c = await omniq.publish("q3", {}, depends_on=[("q2", b)])
    await fail(omniq, "q1", a)  # its ack delivers to q2, whose failure owes q3 an outcome
    b_info = await job(omniq, "q2", b)
    assert (b_info.state, b_info.last_error) == ("failed", f"dependency failed: q1:{a}")
    await omniq.resolve_dependencies("q2")  # (what the maintenance of q2's workers does)
    c_info = await job(omniq, "q3", c)
    assert (c_info.state, c_info.last_error) == ("failed", f"dependency failed: q2:{b}")
    assert all(outbox(raw, q) == [] for q in ("q1", "q2", "q3"))


async def test_policy_ignore_runs_the_dependent_anyway(omniq, raw):
    a = await omniq.publish("q", {"n": "a"})
    ok = await omniq.publish("q", {"n": "ok"})
    x = await omniq.publish("x", {"n": "x"})
    d = await omniq.publish("q", {"n": "d"}, depends_on=[a, ok, ("x", x)],
                            on_dependency_failure="ignore")
    info = await job(omniq, "q", d)
    assert (info.dep_policy, info.fields["dep_policy"]) == ("ignore", "ignore")
    await fail(omniq, "q", a)
    await fail(omniq, "x", x)
    assert await state(omniq, "q", d) == "waiting_deps"  # ok has not run yet
    await run(omniq, "q", ok, result="fine")
    info = await job(omniq, "q", d)
    assert (info.state, info.dependencies) == (
        "wait", {f"q:{a}": "ignored", f"q:{ok}": "completed", f"x:{x}": "ignored"})
    runs, handler = _recorder()
    await drain(omniq, "q", handler)
    assert runs == [("q", d, {ok: "fine"})]
    assert await omniq.dependency_results("q", d) == {ok: "fine"}


@pytest.mark.parametrize("cross", [False, True], ids=["same-queue", "cross-queue"])
async def test_policy_wait_keeps_the_dependent_until_a_retry_completes(omniq, raw, cross):
    bq = "y" if cross else "x"
    b = await omniq.publish(bq, {"n": "b"})
    d = await omniq.publish("x", {"n": "d"}, depends_on=[(bq, b)], on_dependency_failure="wait")
    ref = f"{bq}:{b}"
    await fail(omniq, bq, b, error="flaky")
    info = await job(omniq, "x", d)
    assert (info.state, info.fields[f"dep:{ref}"], info.deps_left, info.dep_policy) == (
        "waiting_deps", "failed", 1, "wait")
    evs = job_events(raw, "x", d)
    assert [t for t, _ in evs] == ["waiting_deps", "dependency_failed"]
    assert evs[1][1]["dependency"] == ref
    # B keeps its waiting dependent, for the retry
    assert (await job(omniq, bq, b)).dependents == [("x", d)]
    assert raw.zscore(qk(bq, "deps:src"), b) is not None
    assert waiting_deps(raw, "x") == [d]
    await omniq.retry_failed(bq, b)
    assert await state(omniq, "x", d) == "waiting_deps"
    await run(omniq, bq, b, result={"second": True})
    info = await job(omniq, "x", d)
    assert (info.state, info.dependencies, info.deps_left) == ("wait", {ref: "completed"}, 0)
    assert await omniq.dependency_results("x", d) == {b: {"second": True}}
    assert job_event_types(raw, "x", d) == ["waiting_deps", "dependency_failed", "enqueued"]
    assert (await job(omniq, bq, b)).dependents == []
    assert raw.zcard(qk(bq, "deps:src")) == 0
    assert outbox(raw, bq) == []


# -- at publish time --------------------------------------------------------------------


@pytest.mark.parametrize("cross", [False, True], ids=["same-queue", "cross-queue"])
async def test_depending_on_a_completed_job_resolves_at_once(omniq, raw, cross):
    bq = "y" if cross else "x"
    b = await omniq.publish(bq, {})
    await run(omniq, bq, b, result={"done": 1})
    d = await omniq.publish("x", {}, depends_on=[(bq, b)])
    info = await job(omniq, "x", d)
    assert (info.state, info.deps_left, dres(info)) == ("wait", 0, {f"{bq}:{b}": {"done": 1}})
    assert job_event_types(raw, "x", d) == ["waiting_deps", "enqueued"]
    assert waiting_deps(raw, "x") == []
    assert (await job(omniq, bq, b)).dependents == []  # nothing registered for an ended job
    assert outbox(raw, "x") == []


@pytest.mark.parametrize("cross", [False, True], ids=["same-queue", "cross-queue"])
async def test_depending_on_a_failed_job_applies_the_policy_at_once(omniq, raw, cross):
    bq = "y" if cross else "x"
    b = await omniq.publish(bq, {})
    await fail(omniq, bq, b)
    ref = f"{bq}:{b}"
    d_fail = await omniq.publish("x", {}, depends_on=[(bq, b)])
    d_ignore = await omniq.publish("x", {}, depends_on=[(bq, b)], on_dependency_failure="ignore")
    d_wait = await omniq.publish("x", {}, depends_on=[(bq, b)], on_dependency_failure="wait")
    f = await job(omniq, "x", d_fail)
    assert (f.state, f.last_error, f.dependencies) == (
        "failed", f"dependency failed: {ref}", {ref: "failed"})
    i = await job(omniq, "x", d_ignore)
    assert (i.state, i.dependencies) == ("wait", {ref: "ignored"})
    w = await job(omniq, "x", d_wait)
    assert (w.state, w.dependencies) == ("waiting_deps", {ref: "failed"})
    assert job_event_types(raw, "x", d_wait) == ["waiting_deps", "dependency_failed"]
    assert (await job(omniq, bq, b)).dependents == [("x", d_wait)]  # only 'wait' stays
    # the retry of the dependency releases the one that waits
    await omniq.remove_job("x", d_ignore, "wait")  # (out of the way of the reserve below)
    await omniq.retry_failed(bq, b)
    await run(omniq, bq, b, result=7)
    assert await state(omniq, "x", d_wait) == "wait"
    assert await state(omniq, "x", d_fail) == "failed"
    consistent(raw, "x", bq)


async def test_unknown_dependency_is_refused_and_nothing_is_written(omniq, raw):
    a = await omniq.publish("q", {})
    await omniq.publish("y", {})
    before = dump_db(raw)
    for refs in (["nope"], [a, "nope"], [("y", "nope")], [("empty", "nope")]):
        with pytest.raises(DependencyNotFound) as err:
            await omniq.publish("q", {}, job_id="D", depends_on=refs)
        assert err.value.code == "DEP_NOT_FOUND"
        assert err.value.detail in ("q:nope", "y:nope", "empty:nope")
    assert dump_db(raw) == before
    # the script checks too: a same-queue dependency that vanished after the client's look
    opts = enqueue.JobOptions(max_attempts=1, timeout_ms=1000, backoff_ms=0)
    opts.extras = deps.with_dependencies(b"", [("q", "ghost", False)], "fail")
    reply = await omniq.routing.call(enqueue.ENQUEUE, "q", enqueue.args(
        0, enqueue.job_fields("D", b"{}", opts), omniq.events_maxlen))
    with pytest.raises(DependencyNotFound) as err:
        enqueue.parse(reply, "D")
    assert err.value.detail == "q:ghost"
    assert dump_db(raw) == before


async def test_self_duplicate_and_too_many_dependencies_are_refused(omniq, raw):
    a = await omniq.publish("q", {})
    before = dump_db(raw)
    for refs in (["S"], [a, ("q", "S")]):
        with pytest.raises(DependencyCycle) as cyc:
            await omniq.publish("q", {}, job_id="S", depends_on=refs)
        assert cyc.value.code == "DEP_CYCLE"
    with pytest.raises(InvalidArgument, match="twice"):
        await omniq.publish("q", {}, depends_on=[a, a])
    with pytest.raises(InvalidArgument, match="twice"):
        await omniq.publish("q", {}, depends_on=[a, ("q", a)])
    many = [f"J{k}" for k in range(MAX_DEPENDENCIES + 1)]
    with pytest.raises(InvalidArgument, match="at most 1000"):
        await omniq.publish("q", {}, depends_on=many)
    for bad in ([("q",)], [("q", a, "x")], [42], [("bad:name", a)]):
        with pytest.raises(InvalidArgument):
            await omniq.publish("q", {}, depends_on=bad)
    with pytest.raises(InvalidArgument, match="on_dependency_failure"):
        await omniq.publish("q", {}, depends_on=[a], on_dependency_failure="retry")
    assert dump_db(raw) == before
    # the script refuses a self-dependency on its own as well
    opts = enqueue.JobOptions(max_attempts=1, timeout_ms=1000, backoff_ms=0)
    opts.extras = deps.with_dependencies(b"", [("q", "S", False)], "fail")
    reply = await omniq.routing.call(enqueue.ENQUEUE, "q", enqueue.args(
        0, enqueue.job_fields("S", b"{}", opts), omniq.events_maxlen))
    with pytest.raises(DependencyCycle):
        enqueue.parse(reply, "S")
    assert dump_db(raw) == before
    plain = await omniq.publish("q", {}, depends_on=[])  # no dependency: a plain job
    info = await job(omniq, "q", plain)
    assert (info.state, info.depends_on, info.deps_left) == ("wait", [], None)


async def test_exactly_1000_dependencies_are_accepted(omniq, raw):
    ids = await omniq.publish_many("q", [{"k": k} for k in range(MAX_DEPENDENCIES)])
    d = await omniq.publish("q", {}, depends_on=ids)
    info = await job(omniq, "q", d)
    assert (info.state, info.deps_left, len(info.depends_on)) == (
        "waiting_deps", MAX_DEPENDENCIES, MAX_DEPENDENCIES)
    assert info.depends_on == [("q", i) for i in ids]


async def test_publish_many_depending_on_an_earlier_job_of_the_batch(omniq, raw):
    y = await omniq.publish("y", {})
    ids = await omniq.publish_many("q", [
        JobSpec(payload={"n": 1}, job_id="A"),
        JobSpec(payload={"n": 2}, job_id="B", depends_on=["A", ("y", y)]),
        JobSpec(payload={"n": 3}, depends_on=["B"], on_dependency_failure="wait"),
        {"plain": True},
    ])
    assert ids[:2] == ["A", "B"]
    assert [await state(omniq, "q", i) for i in ids] == ["wait", "waiting_deps",
                                                         "waiting_deps", "wait"]
    assert (await job(omniq, "q", ids[2])).dep_policy == "wait"
    assert (await job(omniq, "y", y)).dependents == [("q", "B")]  # linked at once
    assert outbox(raw, "q") == []
    _runs, handler = _recorder()
    await drain(omniq, ["q", "y"], handler)
    assert await state(omniq, "q", ids[2]) == "completed"
    assert await omniq.dependency_results("q", "B") == {"A": {"id": "A"}, y: {"id": y}}


async def test_publish_many_depending_on_a_later_job_is_a_cycle(omniq, raw):
    await omniq.publish("q", {}, job_id="old")
    before = dump_db(raw)
    with pytest.raises(DependencyCycle):
        await omniq.publish_many("q", [
            JobSpec(payload={}, job_id="A", depends_on=["old", "B"]),
            JobSpec(payload={}, job_id="B"),
        ])
    with pytest.raises(DependencyCycle):
        await omniq.publish_many("q", [
            JobSpec(payload={}, job_id="A", depends_on=[("q", "B")]),
            JobSpec(payload={}, job_id="B", depends_on=["A"]),
        ])
    with pytest.raises(DependencyNotFound):
        await omniq.publish_many("q", [JobSpec(payload={}, depends_on=["nope"]), {"x": 1}])
    assert dump_db(raw) == before


# -- cancel, remove, retry ---------------------------------------------------------------

POLICY_OUTCOME = {  # policy -> (state, dependency state) of the dependent
    "fail": ("failed", "failed"),
    "ignore": ("wait", "ignored"),
    "wait": ("waiting_deps", "failed"),
}


@pytest.mark.parametrize("policy", ["fail", "ignore", "wait"])
async def test_cancel_of_a_dependency_applies_each_policy(omniq, raw, policy):
    a = await omniq.publish("q", {})
    y = await omniq.publish("y", {})
    d = await omniq.publish("q", {}, depends_on=[a], on_dependency_failure=policy)
    e = await omniq.publish("x", {}, depends_on=[("y", y)], on_dependency_failure=policy)
    assert await omniq.cancel("q", a) == "cancelled"
    assert await omniq.cancel("y", y) == "cancelled"
    assert (await job(omniq, "q", a)).last_error == "cancelled"
    await omniq.resolve_dependencies("y")  # (the cancel leaves the other queue's share)
    want_state, want_dep = POLICY_OUTCOME[policy]
    for q, jid, ref in (("q", d, f"q:{a}"), ("x", e, f"y:{y}")):
        info = await job(omniq, q, jid)
        assert (info.state, info.dependencies) == (want_state, {ref: want_dep}), q
        if policy == "fail":
            assert info.last_error == f"dependency failed: {ref}"
        if policy == "wait":
            assert job_event_types(raw, q, jid)[-1] == "dependency_failed"
    assert outbox(raw, "y") == []
    consistent(raw, "q", "x", "y")


@pytest.mark.parametrize("policy", ["fail", "ignore", "wait"])
async def test_remove_of_a_dependency_applies_each_policy(omniq, raw, policy):
    a = await omniq.publish("q", {})
    y = await omniq.publish("y", {})
    d = await omniq.publish("q", {}, depends_on=[a], on_dependency_failure=policy)
    e = await omniq.publish("x", {}, depends_on=[("y", y)], on_dependency_failure=policy)
    await omniq.remove_job("q", a, "wait")
    await omniq.remove_job("y", y, "wait")
    await omniq.resolve_dependencies("y")
    assert not raw.exists(jk("q", a) + ":dependents")
    assert not raw.exists(jk("y", y) + ":dependents")
    for q, jid, ref in (("q", d, f"q:{a}"), ("x", e, f"y:{y}")):
        info = await job(omniq, q, jid)
        if policy == "ignore":
            assert (info.state, info.dependencies) == ("wait", {ref: "ignored"}), q
        else:  # gone fails the dependent under 'wait' too: no retry can bring it back
            assert (info.state, info.dependencies, info.last_error) == (
                "failed", {ref: "gone"}, f"dependency removed: {ref}"), q
    assert waiting_deps(raw, "q") == []
    assert waiting_deps(raw, "x") == []
    assert raw.zcard(qk("q", "deps:src")) == 0
    assert raw.zcard(qk("y", "deps:src")) == 0
    consistent(raw, "q", "x", "y")


async def test_remove_of_a_finished_dependency_with_waiting_dependents(omniq, raw):
    """A completed dependency settles its dependents when it completes; a failed one keeps
    those that wait for its retry: removing it fails them ('gone')."""
    a = await omniq.publish("q", {})
    d = await omniq.publish("q", {}, depends_on=[a], on_dependency_failure="wait")
    await fail(omniq, "q", a)
    assert await state(omniq, "q", d) == "waiting_deps"
    await omniq.remove_job("q", a, "failed")
    info = await job(omniq, "q", d)
    assert (info.state, info.last_error) == ("failed", f"dependency removed: q:{a}")


@pytest.mark.parametrize("cross", [False, True], ids=["same-queue", "cross-queue"])
async def test_cancel_of_a_waiting_deps_job(omniq, raw, cross):
    bq = "y" if cross else "x"
    b = await omniq.publish(bq, {})
    d = await omniq.publish("x", {}, depends_on=[(bq, b)])
    assert await omniq.cancel("x", d) == "cancelled"
    info = await job(omniq, "x", d)
    assert (info.state, info.last_error) == ("failed", "cancelled")
    assert waiting_deps(raw, "x") == []
    evs = job_events(raw, "x", d)
    assert [t for t, _ in evs] == ["waiting_deps", "failed", "cancelled"]
    assert evs[-1][1]["state"] == "waiting_deps"
    assert await omniq.cancel("x", d) == "finished"
    # the dependency completing later leaves it alone
    await run(omniq, bq, b, result=1)
    await omniq.resolve_dependencies(bq)
    info = await job(omniq, "x", d)
    assert (info.state, info.dependencies) == ("failed", {f"{bq}:{b}": "pending"})
    assert outbox(raw, bq) == []
    assert await omniq.reserve("x") is None
    consistent(raw, "x", bq)


@pytest.mark.parametrize("cross", [False, True], ids=["same-queue", "cross-queue"])
async def test_remove_of_a_waiting_deps_job(omniq, raw, cross):
    bq = "y" if cross else "x"
    b = await omniq.publish(bq, {})
    d = await omniq.publish("x", {}, depends_on=[(bq, b)])
    await omniq.remove_job("x", d, "waiting_deps")
    assert await omniq.get_job("x", d) is None
    assert waiting_deps(raw, "x") == []
    assert job_events(raw, "x", d)[-1] == ("removed", {"lane": "waiting_deps"})
    await run(omniq, bq, b)
    assert await omniq.get_job("x", d) is None
    if cross:  # an outcome for a job that does not exist is kept a while (a flow's parent
        # may appear later), then dropped
        assert outbox(raw, "y") == [f"R\tcompleted\t{b}\tx\t{d}"]
        assert await omniq.resolve_dependencies("y", now_ms=far_future(DEPS_RETRY_MS)) == 0
        # (dropped by the server's clock: not counted as delivered)
        assert await omniq.resolve_dependencies(
            "y", now_ms=far_future(DEPS_ORPHAN_MS + 2 * DEPS_RETRY_MS)) == 0
    assert outbox(raw, bq) == []
    assert raw.hlen(qk(bq, "deps:outdata")) == 0
    assert await omniq.get_job("x", d) is None


async def test_remove_job_refuses_the_wrong_lane_for_a_waiting_deps_job(omniq, raw):
    b = await omniq.publish("q", {})
    d = await omniq.publish("q", {}, depends_on=[b])
    with pytest.raises(LaneMismatch):
        await omniq.remove_job("q", d, "wait")
    with pytest.raises(LaneMismatch):
        await omniq.remove_job("q", b, "waiting_deps")
    assert await state(omniq, "q", d) == "waiting_deps"


async def test_retry_failed_of_a_dependent_failed_by_its_dependency_runs_it(omniq, raw):
    a = await omniq.publish("q", {})
    d = await omniq.publish("q", {"n": "d"}, depends_on=[a])
    await fail(omniq, "q", a)
    assert await state(omniq, "q", d) == "failed"
    await omniq.retry_failed("q", d)
    assert await state(omniq, "q", d) == "wait"
    runs, handler = _recorder()
    await drain(omniq, "q", handler)
    assert runs == [("q", d, {})]  # the operator's decision: it runs without A's result
    assert await state(omniq, "q", d) == "completed"
    assert await state(omniq, "q", a) == "failed"


# -- flows ------------------------------------------------------------------------------


async def test_publish_flow_nested_on_three_queues(omniq, raw):
    flow = FlowJob(queue="r", payload={"n": "root"}, job_id="root", children=[
        FlowJob(queue="a", payload={"n": "a1"}, children=[
            FlowJob(queue="c", payload={"n": "c1"}),
            FlowJob(queue="a", payload={"n": "a2"}),
        ]),
        FlowJob(queue="b", payload={"n": "b1"}, children=[FlowJob(queue="c", payload={"n": "c2"})]),
        FlowJob(queue="r", payload={"n": "r1"}),
    ])
    node = await omniq.publish_flow(flow)
    assert isinstance(node, FlowNode)
    assert (node.queue, node.job_id) == ("r", "root")
    assert [c.queue for c in node.children] == ["a", "b", "r"]
    assert [g.queue for g in node.children[0].children] == ["c", "a"]
    assert [g.queue for g in node.children[1].children] == ["c"]

    def walk(n: FlowNode) -> list[FlowNode]:
        return [n, *(x for c in n.children for x in walk(c))]

    nodes = walk(node)
    assert len({(n.queue, n.job_id) for n in nodes}) == 7
    for n in nodes:  # every node exists right after the call
        info = await job(omniq, n.queue, n.job_id)
        assert info.state == ("waiting_deps" if n.children else "wait"), n
        assert info.depends_on == [(c.queue, c.job_id) for c in n.children]
        assert info.payload["n"]  # the payload given
    a1 = node.children[0]
    assert (await job(omniq, "c", a1.children[0].job_id)).dependents == [("a", a1.job_id)]
    assert all(outbox(raw, q) == [] for q in "abcr")
    runs, handler = _recorder()
    await drain(omniq, ["r", "a", "b", "c"], handler, concurrency=4)
    assert len(runs) == 7
    assert runs[-1][:2] == ("r", "root")
    assert runs[-1][2] == {c.job_id: {"id": c.job_id} for c in node.children}
    got = {i: r for _, i, r in runs}
    assert got[a1.job_id] == {c.job_id: {"id": c.job_id} for c in a1.children}
    flow_info = await omniq.get_flow("r", "root")
    assert flow_info is not None
    assert flow_info.state == "completed"
    assert [c.dependency_state for c in flow_info.children] == ["completed"] * 3


async def test_flow_on_one_queue_is_written_in_one_call(omniq, raw, monkeypatch):
    rounds: list[list[str]] = []
    call_all = omniq.routing.call_all

    async def spy(calls: Any) -> Any:
        rounds.append([q for s, q, _ in calls if s is enqueue.ENQUEUE])
        return await call_all(calls)

    monkeypatch.setattr(omniq.routing, "call_all", spy)
    node = await omniq.publish_flow(FlowJob(queue="q", payload={}, children=[
        FlowJob(queue="q", payload={"k": k}, children=[FlowJob(queue="q", payload={})])
        for k in range(3)]))
    assert rounds == [["q"]]
    monkeypatch.undo()
    ids = [node.job_id] + [c.job_id for c in node.children] + [
        g.job_id for c in node.children for g in c.children]
    assert [await state(omniq, "q", i) for i in ids] == ["waiting_deps"] * 4 + ["wait"] * 3
    assert set(waiting_deps(raw, "q")) == set(ids[:4])
    assert outbox(raw, "q") == []


async def test_a_child_completing_before_its_cross_queue_parent_exists_releases_it(omniq, raw):
    """publish_flow's two steps by hand, with the child's run in between: the child on 'y'
    written with its parent pre-registered, then the parent on 'x' linked to it."""
    maxlen = omniq.events_maxlen

    def fields(jid: str, extras: bytes) -> list[Any]:
        opts = enqueue.JobOptions(max_attempts=1, timeout_ms=30_000, backoff_ms=0)
        opts.extras = extras
        return enqueue.job_fields(jid, b"{}", opts)

    child = deps.with_dependencies(b"", [], "fail", [("x", "P", "fail")])
    enqueue.parse(await omniq.routing.call(enqueue.ENQUEUE, "y",
                                           enqueue.args(0, fields("K", child), maxlen)))
    assert (await job(omniq, "y", "K")).dependents == [("x", "P")]
    await run(omniq, "y", "K", result={"k": 1})  # its delivery finds no parent yet
    assert outbox(raw, "y") == ["R\tcompleted\tK\tx\tP"]
    parent = deps.with_dependencies(b"", [("y", "K", True)], "fail")
    enqueue.parse(await omniq.routing.call(enqueue.ENQUEUE, "x",
                                           enqueue.args(0, fields("P", parent), maxlen)))
    assert await state(omniq, "x", "P") == "waiting_deps"
    assert outbox(raw, "x") == []  # linked by the child: no link op
    # the retry of the outcome (due DEPS_RETRY_MS after the failed delivery) releases it
    assert await omniq.resolve_dependencies("y", now_ms=far_future(DEPS_RETRY_MS + 1000)) == 1
    info = await job(omniq, "x", "P")
    assert (info.state, dres(info)) == ("wait", {"y:K": {"k": 1}})
    assert outbox(raw, "y") == []


async def test_publish_flow_releases_a_parent_whose_child_finished_during_the_publish(
        omniq, raw, monkeypatch):
    """A worker completes the child on 'y' between publish_flow's two rounds (children,
    then the parent on 'x'); publish_flow then kicks the child queue's delivery, which
    should release the parent at once (docs/workflows.md "Publish")."""
    call_all = omniq.routing.call_all
    rounds = 0

    async def spy(calls: Any) -> Any:
        nonlocal rounds
        if any(s is enqueue.ENQUEUE for s, _, _ in calls):
            rounds += 1
            if rounds == 2:  # the parent's round: its child has run already
                await run(omniq, "y", result="early")
        return await call_all(calls)

    monkeypatch.setattr(omniq.routing, "call_all", spy)
    node = await omniq.publish_flow(FlowJob(queue="x", payload={}, children=[
        FlowJob(queue="y", payload={})]))
    monkeypatch.undo()
    assert rounds == 2
    kid = node.children[0].job_id
    assert await state(omniq, "y", kid) == "completed"
    op = f"R\tcompleted\t{kid}\tx\t{node.job_id}"
    # (where it stands: the op waits for its retry time, DEPS_RETRY_MS after the failed try)
    assert outbox(raw, "y") in ([], [op])
    info = await job(omniq, "x", node.job_id)
    assert (info.state, dres(info)) == ("wait", {f"y:{node.children[0].job_id}": "early"})


async def test_chain_and_group_with_wait_all(omniq, raw):
    ids = await omniq.chain(FlowJob(queue="q", payload={"step": 1}),
                            FlowJob(queue="o", payload={"step": 2}),
                            FlowJob(queue="q", payload={"step": 3}))
    assert [await state(omniq, q, i) for q, i in zip("qoq", ids, strict=True)] == [
        "wait", "waiting_deps", "waiting_deps"]
    assert (await job(omniq, "q", ids[2])).depends_on == [("o", ids[1])]
    nodes = await omniq.group([FlowJob(queue="q", payload={"g": 1}),
                               FlowJob(queue="o", payload={"g": 2}, children=[
                                   FlowJob(queue="q", payload={"g": 3})])])
    assert [n.queue for n in nodes] == ["q", "o"]
    assert await state(omniq, "q", nodes[0].job_id) == "wait"
    assert await state(omniq, "o", nodes[1].job_id) == "waiting_deps"

    async def handler(ctx: Any) -> Any:
        return {"payload": ctx.payload, "seen": sorted(await ctx.children_results())}

    waiting = asyncio.ensure_future(omniq.wait_all(
        [("q", ids[0]), ("o", ids[1]), ("q", ids[2]), *nodes], timeout=30))
    await drain(omniq, ["q", "o"], handler, concurrency=3)
    got = await within(waiting, 30, "wait_all")
    assert got == [
        {"payload": {"step": 1}, "seen": []},
        {"payload": {"step": 2}, "seen": [ids[0]]},
        {"payload": {"step": 3}, "seen": [ids[1]]},
        {"payload": {"g": 1}, "seen": []},
        {"payload": {"g": 2}, "seen": [nodes[1].children[0].job_id]},
    ]
    with pytest.raises(InvalidArgument):
        await omniq.chain()
    assert await omniq.group([]) == []


async def test_wait_all_raises_for_a_flow_whose_child_failed(omniq, raw):
    node = await omniq.publish_flow(FlowJob(queue="q", payload={}, children=[
        FlowJob(queue="q", payload={"bad": True}, max_attempts=1)]))

    async def handler(ctx: Any) -> None:
        if ctx.payload.get("bad"):
            raise ValueError("nope")

    await drain(omniq, "q", handler)
    with pytest.raises(JobFailed) as err:
        await omniq.wait_all([node], timeout=10)
    assert err.value.error == f"dependency failed: q:{node.children[0].job_id}"


def test_sync_facade_twins(omniq_sync: OmniqClient) -> None:
    c = omniq_sync
    a = c.publish("q", {"n": "a"})
    b = c.publish("q", {"n": "b"}, depends_on=[a, ], on_dependency_failure="ignore")
    node = c.publish_flow(FlowJob(queue="q", payload={"n": "p"}, children=[
        FlowJob(queue="r", payload={"n": "k"})]))
    chained = c.chain(FlowJob(queue="r", payload={"n": "s1"}), FlowJob(queue="q", payload={
        "n": "s2"}))
    nodes = c.group([FlowJob(queue="q", payload={"n": "g1"}), FlowJob(queue="r", payload={
        "n": "g2"})])
    info = c.get_job("q", b)
    assert info is not None
    assert (info.state, info.dep_policy) == ("waiting_deps", "ignore")
    c.consume(["q", "r"], lambda ctx: ctx.payload["n"], drain=True, handle_signals=False,
              concurrency=2)
    assert c.wait_all([("q", b), node, ("q", chained[1]), *nodes], timeout=10) == [
        "b", "p", "s2", "g1", "g2"]
    assert c.dependency_results("q", b) == {a: "a"}
    assert c.dependency_results("q", node.job_id) == {node.children[0].job_id: "k"}
    assert c.dependency_results("q", chained[1]) == {chained[0]: "s1"}
    assert c.resolve_dependencies("q") == 0


# -- fan-in --------------------------------------------------------------------------------


async def test_fan_in_of_1000_children_on_one_queue(omniq, raw):
    node = await omniq.publish_flow(FlowJob(queue="fan", payload={"root": True}, children=[
        FlowJob(queue="fan", payload={"i": i}) for i in range(1000)]))
    assert (await job(omniq, "fan", node.job_id)).deps_left == 1000
    seen: list[dict[str, Any]] = []

    async def handler(ctx: Any) -> Any:
        if ctx.payload.get("root"):
            seen.append(await ctx.children_results())
            return "root"
        return ctx.payload["i"]

    await drain(omniq, "fan", handler, concurrency=50)
    assert len(seen) == 1
    assert seen[0] == {c.job_id: i for i, c in enumerate(node.children)}
    assert await omniq.wait("fan", node.job_id, timeout=5) == "root"
    assert waiting_deps(raw, "fan") == []
    assert raw.zcard(qk("fan", "deps:src")) == 0


async def test_fan_in_of_200_children_on_another_queue(omniq, raw):
    node = await omniq.publish_flow(FlowJob(queue="fan", payload={"root": True}, children=[
        FlowJob(queue="kids", payload={"i": i}) for i in range(200)]))
    assert {c.queue for c in node.children} == {"kids"}
    seen: list[dict[str, Any]] = []

    async def handler(ctx: Any) -> Any:
        if ctx.payload.get("root"):
            seen.append(await ctx.children_results())
            return "root"
        return ctx.payload["i"]

    await drain(omniq, ["fan", "kids"], handler, concurrency=50)
    assert len(seen) == 1
    assert seen[0] == {c.job_id: i for i, c in enumerate(node.children)}
    assert outbox(raw, "kids") == []
    assert raw.zcard(qk("kids", "deps:src")) == 0


# -- repair of official-client acks -----------------------------------------------------


@pytest.mark.parametrize("cross", [False, True], ids=["same-queue", "cross-queue"])
async def test_official_ack_is_repaired_by_the_scan(omniq, raw, cross):
    bq = "y" if cross else "x"
    b = await omniq.publish(bq, {})
    d = await omniq.publish("x", {}, depends_on=[(bq, b)])
    f = await omniq.publish(bq, {})
    e = await omniq.publish("x", {}, depends_on=[(bq, f)])
    official_ack(raw, bq, await lease(omniq, bq, b), far_future())
    official_fail(raw, bq, await lease(omniq, bq, f), far_future())
    # nothing knows yet: the scan looks at a job again only DEPS_REPAIR_MS after its last look
    await omniq.resolve_dependencies(bq)
    assert await state(omniq, "x", d) == "waiting_deps"
    assert await state(omniq, "x", e) == "waiting_deps"
    await omniq.resolve_dependencies(bq, now_ms=far_future(DEPS_REPAIR_MS + 5_000))
    info = await job(omniq, "x", d)
    assert (info.state, info.dependencies) == ("wait", {f"{bq}:{b}": "completed"})
    assert await omniq.dependency_results("x", d) == {b: None}  # no result: an official ack
    info = await job(omniq, "x", e)
    assert (info.state, info.last_error) == ("failed", f"dependency failed: {bq}:{f}")
    assert raw.zcard(qk(bq, "deps:src")) == 0
    assert outbox(raw, bq) == []


async def test_repair_scan_looks_again_at_jobs_still_running(omniq, raw):
    b = await omniq.publish("y", {})
    d = await omniq.publish("x", {}, depends_on=[("y", b)])
    got = await lease(omniq, "y", b)
    later = far_future(DEPS_REPAIR_MS + 5_000)
    await omniq.resolve_dependencies("y", now_ms=later)  # still active: checked again later
    assert raw.zscore(qk("y", "deps:src"), b) == later + DEPS_REPAIR_MS
    official_ack(raw, "y", got, later)
    await omniq.resolve_dependencies("y", now_ms=later + DEPS_REPAIR_MS)
    assert await state(omniq, "x", d) == "wait"


# -- partitioned queues -----------------------------------------------------------------


async def test_dependency_on_a_job_of_a_partitioned_queue(omniq, raw):
    await omniq.partition_queue("p", 3)
    a = await omniq.publish("p", {"n": "a"})
    a_part = (await job(omniq, "p", a)).queue
    assert a_part.startswith("p.p")
    d = await omniq.publish("x", {}, depends_on=[("p", a)])
    # the same logical queue: some land in A's partition, some in others
    same = [await omniq.publish("p", {"n": k}, depends_on=[a]) for k in range(3)]
    info = await job(omniq, "x", d)
    assert info.depends_on == [(a_part, a)]
    parts = {(await job(omniq, "p", s)).queue for s in same}
    assert len(parts) > 1
    for s in same:
        assert (await job(omniq, "p", s)).depends_on == [(a_part, a)]
    assert sorted((await job(omniq, "p", a)).dependents) == sorted(
        [("x", d)] + [((await job(omniq, "p", s)).queue, s) for s in same])
    got = await lease(omniq, "p", a)
    assert got.queue == a_part
    await omniq.ack_success(got.queue, a, got.lease_token, result="A")
    assert await state(omniq, "x", d) == "wait"
    assert [await state(omniq, "p", s) for s in same] == ["wait"] * 3
    assert await omniq.dependency_results("p", same[0]) == {a: "A"}
    with pytest.raises(DependencyNotFound):
        await omniq.publish("x", {}, depends_on=[("p", "nope")])


async def test_flow_with_children_on_several_partitions(omniq, raw):
    await omniq.partition_queue("p", 3)
    node = await omniq.publish_flow(FlowJob(queue="x", payload={"root": 1}, children=[
        FlowJob(queue="p", payload={"i": i}) for i in range(6)]))
    inner = await omniq.publish_flow(FlowJob(queue="p", payload={"root": 2}, children=[
        FlowJob(queue="p", payload={"i": i}) for i in range(6, 9)]))
    assert {c.queue for c in node.children} == {"p.p0", "p.p1", "p.p2"}
    assert inner.queue.startswith("p.p")
    seen: dict[str, dict[str, Any]] = {}

    async def handler(ctx: Any) -> Any:
        if "root" in ctx.payload:
            seen[ctx.job_id] = await ctx.children_results()
            return "root"
        return ctx.payload["i"]

    await drain(omniq, ["x", "p"], handler, concurrency=4)
    assert seen == {node.job_id: {c.job_id: i for i, c in enumerate(node.children)},
                    inner.job_id: {c.job_id: 6 + i for i, c in enumerate(inner.children)}}
    assert await omniq.wait_all([node, inner, *node.children], timeout=10) == [
        "root", "root", *range(6)]
    for part in ("p.p0", "p.p1", "p.p2"):
        assert outbox(raw, part) == []


# -- events ------------------------------------------------------------------------------


async def test_dependency_events_read_by_the_events_reader(omniq, raw):
    a = await omniq.publish("q", {})
    d = await omniq.publish("q", {}, depends_on=[a], on_dependency_failure="wait")
    await fail(omniq, "q", a)
    await omniq.retry_failed("q", a)
    await run(omniq, "q", a)
    mine = []

    async def collect() -> None:
        async for ev in omniq.events("q", since="0"):
            if ev.job_id == d:
                mine.append(ev)
                if ev.type == "enqueued":
                    return

    await within(collect(), 10, "the dependent's events")
    assert [e.type for e in mine] == ["waiting_deps", "dependency_failed", "enqueued"]
    assert mine[1].dependency == f"q:{a}"
    assert mine[0].dependency is None
    assert mine[2].dependency is None
    typed = [e async for e in _first(omniq.events("q", since="0", types=["waiting_deps"]), 1)]
    assert [(e.type, e.job_id) for e in typed] == [("waiting_deps", d)]


async def _first(stream: Any, n: int) -> Any:
    got = 0
    async for e in stream:
        yield e
        got += 1
        if got == n:
            return


async def test_tagged_keys_of_a_refused_publish(omniq, raw):
    """(the nothing-written check of a refusal, per hash tag, on every server kind)"""
    await omniq.publish("q", {}, job_id="A")
    before = tagged(raw, "q")
    with pytest.raises(DependencyNotFound):
        await omniq.publish("q", {}, depends_on=["A", ("other", "B")])
    assert tagged(raw, "q") == before
    assert tagged(raw, "other") == {}


async def test_clients_agree(omniq_redis_url):
    """Two clients: one publishes the dependents, the other runs the dependencies."""
    async with AsyncOmniq(url=omniq_redis_url) as one, AsyncOmniq(url=omniq_redis_url) as two:
        b = await one.publish("y", {})
        d = await one.publish("x", {}, depends_on=[("y", b)])
        await run(two, "y", b, result="two")
        assert await one.dependency_results("x", d) == {b: "two"}


# -- with the other features ---------------------------------------------------------


async def test_a_released_dependent_waits_for_its_own_due_time(omniq, raw):
    await omniq.publish("q", {}, job_id="A", now_ms=T0)
    await omniq.publish("q", {}, job_id="D", depends_on=["A"], delay_ms=60_000, now_ms=T0)
    info = await job(omniq, "q", "D")
    assert (info.state, info.due_ms) == ("waiting_deps", T0 + 60_000)
    assert raw.zscore(qk("q", "delayed"), "D") is None
    await run(omniq, "q", "A", now_ms=T0 + 10)
    info = await job(omniq, "q", "D")
    assert (info.state, info.due_ms) == ("delayed", T0 + 60_000)
    assert raw.zscore(qk("q", "delayed"), "D") == T0 + 60_000
    assert job_event_types(raw, "q", "D") == ["waiting_deps", "delayed"]
    assert await omniq.promote_delayed("q", now_ms=T0 + 59_999) == 0
    assert await omniq.promote_delayed("q", now_ms=T0 + 60_000) == 1
    assert await state(omniq, "q", "D") == "wait"
    # released after its due time: straight to its lane
    await omniq.publish("q", {}, job_id="F", now_ms=T0)
    await omniq.publish("q", {}, job_id="E", depends_on=["F"], delay_ms=100, now_ms=T0)
    await lease(omniq, "q", "D", now_ms=T0 + 60_001)
    await run(omniq, "q", "F", now_ms=T0 + 60_002)
    assert await state(omniq, "q", "E") == "wait"
    consistent(raw, "q")


async def test_a_released_dependent_enters_its_group(omniq, raw):
    a = await omniq.publish("q", {}, now_ms=T0)
    first = await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    d1 = await omniq.publish("q", {}, gid="g", depends_on=[a], now_ms=T0)
    d2 = await omniq.publish("q", {}, gid="g", depends_on=[a], now_ms=T0)
    assert (await omniq.stats("q")).group_waiting == 1
    g = await lease(omniq, "q", first, now_ms=T0 + 5)  # (groups and plain jobs alternate)
    await run(omniq, "q", a, now_ms=T0 + 10)
    assert [await state(omniq, "q", i) for i in (d1, d2)] == ["wait", "wait"]
    assert (await omniq.stats("q")).group_waiting == 2
    gs = (await omniq.group_states("q", ["g"]))[0]
    assert (gs.waiting, gs.inflight, gs.limit) == (2, 1, 1)
    assert await omniq.reserve("q", now_ms=T0 + 20) is None  # the group's limit: 1
    await omniq.ack_success("q", first, g.lease_token, now_ms=T0 + 30)
    assert (await lease(omniq, "q", now_ms=T0 + 40)).job_id == d1  # FIFO in its group
    consistent(raw, "q")


async def test_a_dependency_that_retries_keeps_its_dependents_waiting(omniq, raw):
    a = await omniq.publish("q", {}, max_attempts=2, backoff_ms=1000, now_ms=T0)
    d = await omniq.publish("q", {}, depends_on=[a], now_ms=T0)
    got = await lease(omniq, "q", a, now_ms=T0 + 10)
    outcome = await omniq.ack_fail("q", a, got.lease_token, "transient", now_ms=T0 + 20)
    assert outcome.status == "RETRY"
    info = await job(omniq, "q", d)
    assert (info.state, info.dependencies) == ("waiting_deps", {f"q:{a}": "pending"})
    assert await omniq.promote_delayed("q", now_ms=T0 + 1020) == 1
    await run(omniq, "q", a, result="second", now_ms=T0 + 1030)
    assert await state(omniq, "q", d) == "wait"
    assert await omniq.dependency_results("q", d) == {a: "second"}


async def test_a_dependency_failed_by_its_lease_expiry(omniq, raw):
    a = await omniq.publish("q", {}, max_attempts=1, timeout_ms=1000, now_ms=T0)
    e = await omniq.publish("q", {}, depends_on=[a], now_ms=T0)
    d = await omniq.publish("x", {}, depends_on=[("q", a)], now_ms=T0)
    await lease(omniq, "q", a, now_ms=T0 + 10)
    assert await omniq.reap_expired("q", now_ms=T0 + 2000) == 1
    assert (await job(omniq, "q", e)).last_error == f"dependency failed: q:{a}"
    await omniq.resolve_dependencies("q")  # (a worker's maintenance does it after its reap)
    assert (await job(omniq, "x", d)).last_error == f"dependency failed: q:{a}"
    assert outbox(raw, "q") == []


async def test_cancel_of_a_running_dependency(omniq, raw):
    a = await omniq.publish("q", {})
    d = await omniq.publish("q", {}, depends_on=[a])
    got = await lease(omniq, "q", a)
    assert await omniq.cancel("q", a) == "cancelling"
    assert await state(omniq, "q", d) == "waiting_deps"
    outcome = await omniq.ack_fail("q", a, got.lease_token, "cancelled")  # its worker's ack
    assert outcome.status == "FAILED"
    info = await job(omniq, "q", d)
    assert (info.state, info.last_error) == ("failed", f"dependency failed: q:{a}")


async def test_trimming_a_failed_dependency_fails_its_waiting_dependents(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_failed=1) as c:
        a = await c.publish("q", {})
        other = await c.publish("q", {})
        d = await c.publish("q", {}, depends_on=[a], on_dependency_failure="wait")
        await fail(c, "q", a)
        assert await state(c, "q", d) == "waiting_deps"
        await fail(c, "q", other)  # keep_failed=1: A's record is trimmed
        assert await c.get_job("q", a) is None
        info = await job(c, "q", d)
        assert (info.state, info.last_error) == ("failed", f"dependency removed: q:{a}")
        assert not raw.exists(jk("q", a) + ":dependents")
        assert raw.zcard(qk("q", "deps:src")) == 0


async def test_keep_failed_ms_expiry_of_a_failed_dependency(omniq, raw):
    a = await omniq.publish("q", {}, keep_failed_ms=1000, now_ms=T0)
    d = await omniq.publish("x", {}, depends_on=[("q", a)], on_dependency_failure="wait",
                            now_ms=T0)
    await fail(omniq, "q", a, now_ms=T0 + 10)
    assert await state(omniq, "x", d) == "waiting_deps"
    await omniq.promote_delayed("q", now_ms=T0 + 1011)  # (a call that deletes expired jobs)
    assert await omniq.get_job("q", a) is None
    await omniq.resolve_dependencies("q")
    info = await job(omniq, "x", d)
    assert (info.state, info.last_error) == ("failed", f"dependency removed: q:{a}")


async def test_results_outlive_the_trimmed_dependency(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_completed=1) as c:
        b = await c.publish("q", {})
        d = await c.publish("x", {}, depends_on=[("q", b)])
        await run(c, "q", b, result={"big": "x" * 1000})
        await c.publish("q", {})
        await run(c, "q")  # keep_completed=1: B's record is trimmed
        assert await c.get_job("q", b) is None
        assert await c.dependency_results("x", d) == {b: {"big": "x" * 1000}}
        assert await state(c, "x", d) == "wait"


async def test_dedup_key_held_while_waiting_for_dependencies(omniq, raw):
    a = await omniq.publish("q", {})
    d = await omniq.publish("q", {"v": 1}, depends_on=[a], dedup_key="k")
    assert await omniq.publish("q", {"v": 2}, dedup_key="k") == d  # held: not written
    assert await omniq.publish("q", {"v": 3}, dedup_key="k", dedup="replace") == d
    info = await job(omniq, "q", d)
    assert (info.state, info.payload) == ("waiting_deps", {"v": 3})
    await fail(omniq, "q", a)
    assert await state(omniq, "q", d) == "failed"
    assert await omniq.publish("q", {"v": 4}, dedup_key="k") != d  # released by the failure


@pytest.mark.parametrize("policy", ["fail", "ignore"])
async def test_link_to_a_dependency_that_vanished_after_the_check(omniq, raw, policy):
    """The client checked the dependency on 'y' exists; it was removed before the link op
    was delivered: deps_link answers 'gone'."""
    opts = enqueue.JobOptions(max_attempts=1, timeout_ms=1000, backoff_ms=0)
    opts.extras = deps.with_dependencies(b"", [("y", "ghost", False)], policy)
    enqueue.parse(await omniq.routing.call(enqueue.ENQUEUE, "x", enqueue.args(
        0, enqueue.job_fields("D", b"{}", opts), omniq.events_maxlen)))
    assert outbox(raw, "x") == [f"L\t{policy}\tD\ty\tghost"]
    assert await state(omniq, "x", "D") == "waiting_deps"
    assert await omniq.resolve_dependencies("x") == 1
    info = await job(omniq, "x", "D")
    if policy == "fail":
        assert (info.state, info.last_error) == ("failed", "dependency removed: y:ghost")
    else:
        assert (info.state, info.dependencies) == ("wait", {"y:ghost": "ignored"})
    assert outbox(raw, "x") == []
    assert not raw.exists(jk("y", "ghost") + ":dependents")


async def test_a_failure_cascades_down_a_1000_long_chain_in_one_call(omniq, raw):
    n = 1000
    await omniq.publish_many("q", [JobSpec(payload={}, job_id="c0")] + [
        JobSpec(payload={}, job_id=f"c{k}", depends_on=[f"c{k - 1}"]) for k in range(1, n)])
    assert raw.zcard(qk("q", "waiting_deps")) == n - 1
    await fail(omniq, "q", "c0")  # one ack_fail call fails the whole chain
    assert raw.zcard(qk("q", "waiting_deps")) == 0
    assert raw.llen(qk("q", "failed")) == n
    for k in (1, 500, n - 1):
        assert (await job(omniq, "q", f"c{k}")).last_error == f"dependency failed: q:c{k - 1}"
    assert raw.zcard(qk("q", "deps:src")) == 0
    consistent(raw, "q")


async def test_publish_many_on_a_partitioned_queue_depending_inside_the_batch(omniq, raw):
    await omniq.partition_queue("p", 3)
    ids = await omniq.publish_many("p", [JobSpec(payload={"n": 0}, job_id="A")] + [
        JobSpec(payload={"n": k}, job_id=f"D{k}", depends_on=["A"]) for k in range(1, 7)])
    a_part = (await job(omniq, "p", "A")).queue
    parts = {(await job(omniq, "p", i)).queue for i in ids[1:]}
    assert parts - {a_part}, "some dependents should be on other partitions"
    assert all([await state(omniq, "p", i) == "waiting_deps" for i in ids[1:]])
    got = await lease(omniq, "p", "A")
    await omniq.ack_success(got.queue, "A", got.lease_token, result=0)
    assert [await state(omniq, "p", i) for i in ids[1:]] == ["wait"] * 6
    assert all(outbox(raw, p) == [] for p in ("p.p0", "p.p1", "p.p2"))


async def test_batch_removal_and_retry_of_dependents(omniq, raw):
    a = await omniq.publish("q", {})
    d1 = await omniq.publish("q", {}, depends_on=[a])
    d2 = await omniq.publish("q", {}, depends_on=[a])
    res = await omniq.remove_jobs_batch("q", "waiting_deps", [d1, a])
    assert [(r[0], r[1]) for r in res] == [(d1, "OK"), (a, "ERR")]
    assert await omniq.get_job("q", d1) is None
    await fail(omniq, "q", a)
    assert await state(omniq, "q", d2) == "failed"
    res = await omniq.retry_failed_batch("q", [d2])
    assert [(r[0], r[1]) for r in res] == [(d2, "OK")]
    assert await state(omniq, "q", d2) == "wait"


@pytest.mark.parametrize("policy", ["ignore", "wait"])
async def test_flow_parent_policy_on_a_failed_child(omniq, raw, policy):
    node = await omniq.publish_flow(FlowJob(
        queue="p", payload={"root": 1}, on_dependency_failure=policy, children=[
            FlowJob(queue="k", payload={"n": "ok"}),
            FlowJob(queue="k", payload={"n": "bad"}, max_attempts=1),
        ]))
    ok, bad = (c.job_id for c in node.children)
    tries: list[str] = []
    seen: list[dict[str, Any]] = []

    async def handler(ctx: Any) -> Any:
        if "root" in ctx.payload:
            seen.append(await ctx.children_results())
            return "root"
        tries.append(ctx.payload["n"])
        if ctx.payload["n"] == "bad" and tries.count("bad") == 1:
            raise RuntimeError("first try fails")
        return ctx.payload["n"]

    await drain(omniq, ["p", "k"], handler, concurrency=2)
    if policy == "ignore":
        assert seen == [{ok: "ok"}]
        return
    info = await job(omniq, "p", node.job_id)
    assert (info.state, info.dependencies) == (
        "waiting_deps", {f"k:{ok}": "completed", f"k:{bad}": "failed"})
    assert seen == []
    await omniq.retry_failed("k", bad)
    await drain(omniq, ["p", "k"], handler, concurrency=2)
    assert seen == [{ok: "ok", bad: "bad"}]


# -- refusals, batches, handlers, known defects ------------------------------------------


async def test_publish_flow_with_an_existing_id_writes_nothing(omniq, raw):
    """An explicit id that exists already: refused before anything is written."""
    await omniq.publish("x", {"mine": True}, job_id="P")
    before = dump_db(raw)
    with pytest.raises(DuplicateJobError):
        await omniq.publish_flow(FlowJob(queue="x", payload={}, job_id="P", children=[
            FlowJob(queue="x", payload={}, job_id="K1"),
            FlowJob(queue="y", payload={}, job_id="K2")]))
    assert dump_db(raw) == before
    p = await job(omniq, "x", "P")
    assert (p.state, p.payload, p.depends_on) == ("wait", {"mine": True}, [])


async def test_official_ack_then_trim_before_the_repair_scan(omniq_redis_url, raw):
    """An official ack, then the record trimmed by the completed-count limit before the
    scan looked: the scan counts a vanished record as completed (without a result)."""
    async with AsyncOmniq(url=omniq_redis_url, keep_completed=1) as c:
        b = await c.publish("q", {})
        d = await c.publish("q", {}, depends_on=[b])
        other = await c.publish("q", {})
        official_ack(raw, "q", await lease(c, "q", b), far_future())
        await run(c, "q", other)  # keep_completed=1 trims B's record
        assert await c.get_job("q", b) is None
        await c.resolve_dependencies("q", now_ms=far_future(DEPS_REPAIR_MS + 5_000))
        info = await job(c, "q", d)
        assert (info.state, info.dependencies) == ("wait", {f"q:{b}": "completed"})
        assert await c.dependency_results("q", d) == {b: None}
        assert not raw.exists(jk("q", b) + ":dependents")
        assert raw.zcard(qk("q", "deps:src")) == 0


async def test_drain_waits_for_the_delivery_its_acks_started(omniq, raw, monkeypatch):
    """A slow cross-queue delivery (its deps_resolve call held back 0.5 s, as on a loaded
    server): the drain that acked the dependency should still run the dependent."""
    b = await omniq.publish("y", {})
    d = await omniq.publish("x", {}, depends_on=[("y", b)])
    call_all_results = omniq.routing.call_all_results

    async def slow(calls: Any) -> Any:
        if any(s is deps.DEPS_RESOLVE for s, _, _ in calls):
            await asyncio.sleep(0.5)
        return await call_all_results(calls)

    monkeypatch.setattr(omniq.routing, "call_all_results", slow)
    ran: list[str] = []
    await drain(omniq, ["x", "y"], lambda ctx: ran.append(ctx.job_id))
    monkeypatch.undo()
    assert await state(omniq, "y", b) == "completed"
    assert ran == [b, d]


async def test_1001_dependents_on_another_queue_are_delivered_in_batches(omniq, raw):
    """More outbox ops than one delivery takes (MAX_DEPS_OPS): the links at publish and
    the outcomes at the ack both go in two batches."""
    b = await omniq.publish("y", {})
    ids = await omniq.publish_many("x", [JobSpec(payload={"k": k}, depends_on=[("y", b)])
                                         for k in range(MAX_DEPS_OPS + 1)])
    assert outbox(raw, "x") == []
    assert raw.hlen(jk("y", b) + ":dependents") == MAX_DEPS_OPS + 1
    await run(omniq, "y", b, result="B")
    assert outbox(raw, "y") == []
    assert raw.zcard(qk("x", "waiting_deps")) == 0
    assert (await omniq.stats("x")).waiting == MAX_DEPS_OPS + 1
    assert await omniq.dependency_results("x", ids[-1]) == {b: "B"}


async def test_handlers_publish_flows_and_read_results_from_threads(omniq, raw):
    """A thread handler reads ``ctx.children_results()`` (blocking); an async handler
    publishes a flow with ``ctx.exec.publish_flow`` and a chain with ``ctx.exec.chain``."""
    seen: dict[str, Any] = {}

    async def starter(ctx: Any) -> Any:
        node = await ctx.exec.publish_flow(FlowJob(queue="t", payload={"n": "parent"}, children=[
            FlowJob(queue="t", payload={"n": "c1"}), FlowJob(queue="u", payload={"n": "c2"})]))
        chained = await ctx.exec.chain(FlowJob(queue="u", payload={"n": "s1"}),
                                       FlowJob(queue="t", payload={"n": "s2"}))
        return {"flow": node.job_id, "chain": chained}

    def worker(ctx: Any) -> Any:  # a plain function: runs in a thread
        if "start" in ctx.payload:
            raise AssertionError("the starter is an async handler")
        seen[ctx.payload["n"]] = ctx.children_results()
        return ctx.payload["n"]

    start = await omniq.publish("s", {"start": True})
    await drain(omniq, "s", starter)
    made = await omniq.wait("s", start, timeout=5)
    await drain(omniq, ["t", "u"], worker, concurrency=3)
    flow = await job(omniq, "t", made["flow"])
    assert flow.state == "completed"
    kids = {c[1]: c[0] for c in flow.depends_on}
    assert seen["parent"] == {k: ("c1" if q == "t" else "c2") for k, q in kids.items()}
    assert seen["s2"] == {made["chain"][0]: "s1"}
    assert (seen["c1"], seen["c2"], seen["s1"]) == ({}, {}, {})


async def test_a_flow_repeating_a_job_id_is_refused_before_anything_is_written(omniq, raw):
    before = dump_db(raw)
    with pytest.raises(DuplicateJobError) as err:  # (not InvalidArgument, as documented)
        await omniq.publish_flow(FlowJob(queue="x", payload={}, children=[
            FlowJob(queue="y", payload={}, job_id="K"),
            FlowJob(queue="x", payload={}, children=[FlowJob(queue="y", payload={},
                                                             job_id="K")])]))
    assert err.value.job_id == "K"
    with pytest.raises(InvalidArgument):
        await omniq.publish_flow(FlowJob(queue="x", payload={}, children=["not a job"]))
    with pytest.raises(InvalidArgument):
        await omniq.publish_flow(FlowJob(queue="x", payload={}, on_dependency_failure="nope",
                                         children=[FlowJob(queue="y", payload={})]))
    assert dump_db(raw) == before


async def test_wait_all_stops_the_other_waits_after_a_failure(omniq, raw):
    a = await omniq.publish("q", {}, max_attempts=1)
    b = await omniq.publish("q", {})
    await fail(omniq, "q", a)
    before = set(asyncio.all_tasks())
    with pytest.raises(JobFailed):
        await omniq.wait_all([("q", a), ("q", b)])
    for _ in range(3):  # (a cancelled task ends on the loop's next iterations)
        await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before
            if not t.done() and t.get_coro().__qualname__ == "AsyncOmniq.wait"]
    assert left == []


async def test_a_released_dependent_that_expired_fails_its_own_dependents(omniq, raw):
    await omniq.publish("q", {}, job_id="A", now_ms=T0)
    await omniq.publish("q", {}, job_id="D", depends_on=["A"], expire_in_ms=1000, now_ms=T0)
    await omniq.publish("q", {}, job_id="E", depends_on=["D"], now_ms=T0)
    await run(omniq, "q", "A", now_ms=T0 + 2000)
    assert await state(omniq, "q", "D") == "wait"
    assert await omniq.reserve("q", now_ms=T0 + 2010) is None  # D expired: it never runs
    d = await job(omniq, "q", "D")
    assert (d.state, d.last_error) == ("failed", "expired")
    e = await job(omniq, "q", "E")
    assert (e.state, e.last_error) == ("failed", "dependency failed: q:D")
    consistent(raw, "q")


# -- regressions of the review fixes -----------------------------------------------------


def _job_fields(jid: str, extras: bytes) -> list[Any]:
    """enqueue ARGV fields of one plain job with these extras (raw script calls)."""
    opts = enqueue.JobOptions(max_attempts=1, timeout_ms=30_000, backoff_ms=0)
    opts.extras = extras
    return enqueue.job_fields(jid, b"{}", opts)


async def test_publish_flow_takes_a_full_outbox_of_undeliverable_ops_once(omniq, raw):
    """More ops than one delivery takes (MAX_DEPS_OPS + 1 outcomes for parents that never
    appear) in a flow child's queue: publish_flow's delivery of every op takes a first
    batch, then only the due ones; it used to take the same full batch again and again."""
    maxlen = omniq.events_maxlen
    ghosts = [("p", f"ghost{n}", "fail") for n in range(MAX_DEPS_OPS + 1)]
    enqueue.parse(await omniq.routing.call(enqueue.ENQUEUE, "k", enqueue.args(0, [
        *_job_fields("G1", deps.with_dependencies(b"", [], "fail", ghosts[:MAX_DEPS_OPS])),
        *_job_fields("G2", deps.with_dependencies(b"", [], "fail", ghosts[MAX_DEPS_OPS:])),
    ], maxlen)))
    for jid in ("G1", "G2"):  # bare script acks: no client delivers their outcomes
        got = await lease(omniq, "k", jid)
        reply = await omniq.routing.call(leases.ACK_SUCCESS, "k", leases.ack_success_args(
            jid, 0, got.lease_token, b"", 100, maxlen))
        assert leases.parse_ack_success(reply, jid) is True
    assert len(outbox(raw, "k")) == MAX_DEPS_OPS + 1
    node = await within(omniq.publish_flow(FlowJob(queue="p", payload={}, children=[
        FlowJob(queue="k", payload={})])), 60, "publish_flow (asyncio.wait_for)")
    kid = node.children[0].job_id
    assert await state(omniq, "p", node.job_id) == "waiting_deps"
    assert len(outbox(raw, "k")) == MAX_DEPS_OPS + 1  # tried and put off, not dropped
    await run(omniq, "k", kid, result="kid")
    info = await job(omniq, "p", node.job_id)
    assert (info.state, dres(info)) == ("wait", {f"k:{kid}": "kid"})
    assert len(outbox(raw, "k")) == MAX_DEPS_OPS + 1


async def test_a_cross_queue_dependency_is_linked_before_the_dependent_is_written(
        omniq, raw, monkeypatch):
    """publish registers D (on 'x') with B (on 'y') by deps_link first, then writes D
    linked (no 'L' op): B acked by a bare script call and trimmed at once still owes D its
    outcome, with its result. deps_link on an ended job queues its outcome; on a missing
    job it writes nothing."""
    b = await omniq.publish("y", {})
    sent: list[tuple[str, str, list[Any]]] = []
    call = omniq.routing.call

    async def spy(script: Any, queue: str, args: Any) -> Any:
        sent.append((script.name, queue, list(args)))
        return await call(script, queue, args)

    monkeypatch.setattr(omniq.routing, "call", spy)
    d = await omniq.publish("x", {}, depends_on=[("y", b)])
    monkeypatch.undo()
    names = [(name, q) for name, q, _ in sent]
    assert names.index(("deps_link", "y")) < names.index(("enqueue", "x")), names
    (written,) = [a for name, _, a in sent if name == "enqueue"]
    assert json.loads(written[1 + ENQUEUE_FIELDS])["depends_on"] == [["y", b, 1]]  # extras
    assert ("deps_pending", "x") not in names
    assert outbox(raw, "x") == []
    assert (await job(omniq, "y", b)).dependents == [("x", d)]

    got = await lease(omniq, "y", b)
    reply = await omniq.routing.call(leases.ACK_SUCCESS, "y", leases.ack_success_args(
        b, 0, got.lease_token, b'{"b":1}', 0, omniq.events_maxlen))  # keep_completed=0
    assert leases.parse_ack_success(reply, b) is True
    assert await omniq.get_job("y", b) is None  # trimmed by its own ack
    assert await state(omniq, "x", d) == "waiting_deps"
    assert await omniq.resolve_dependencies("y") == 1
    info = await job(omniq, "x", d)
    assert (info.state, info.dependencies) == ("wait", {f"y:{b}": "completed"})
    assert await omniq.dependency_results("x", d) == {b: {"b": 1}}

    # the same within one publish: B2 ends and is trimmed between D2's link and its write
    b2 = await omniq.publish("y", {})
    got = await lease(omniq, "y", b2)

    async def ack_first(script: Any, queue: str, args: Any) -> Any:
        if script is enqueue.ENQUEUE:
            await call(leases.ACK_SUCCESS, "y", leases.ack_success_args(
                b2, 0, got.lease_token, b'{"b":2}', 0, omniq.events_maxlen))
        return await call(script, queue, args)

    monkeypatch.setattr(omniq.routing, "call", ack_first)
    d2 = await omniq.publish("x", {}, depends_on=[("y", b2)])
    monkeypatch.undo()
    assert await omniq.get_job("y", b2) is None
    info = await job(omniq, "x", d2)  # (delivered by the publish itself)
    assert (info.state, info.dependencies) == ("wait", {f"y:{b2}": "completed"})
    assert await omniq.dependency_results("x", d2) == {b2: {"b": 2}}
    assert outbox(raw, "y") == []

    c = await omniq.publish("y", {})
    await run(omniq, "y", c, result="c")
    reply = await omniq.routing.call(deps.DEPS_LINK, "y", deps.link_args(0, [(c, "x:E", "fail")]))
    assert deps.parse_link(reply) == ["queued"]
    op = f"R\tcompleted\t{c}\tx\tE"
    assert outbox(raw, "y") == [op]
    assert raw.hget(qk("y", "deps:outdata"), op).endswith('\t"c"')  # created_ms, result
    assert (await job(omniq, "y", c)).dependents == []  # an ended job registers nothing
    before = dump_db(raw)
    reply = await omniq.routing.call(deps.DEPS_LINK, "y", deps.link_args(
        0, [("nope", "x:E", "fail")]))
    assert deps.parse_link(reply) == ["gone"]
    assert dump_db(raw) == before


async def test_a_mixed_queue_flow_writes_a_same_queue_child_with_its_parent(
        omniq, raw, monkeypatch):
    """P on 'a' with c1 on 'a' and c2 on 'b': c2 first, then c1 and P in one call (c1 used
    to go alone in the first round, P alone in the second)."""
    rounds: list[list[tuple[str, list[str]]]] = []
    call_all = omniq.routing.call_all

    async def spy(calls: Any) -> Any:
        rounds.append([(q, [a[2 + k * ENQUEUE_FIELDS] for k in range(int(a[1]))])
                       for s, q, a in calls if s is enqueue.ENQUEUE])
        return await call_all(calls)

    monkeypatch.setattr(omniq.routing, "call_all", spy)
    node = await omniq.publish_flow(FlowJob(queue="a", payload={}, job_id="P", children=[
        FlowJob(queue="a", payload={}, job_id="c1"),
        FlowJob(queue="b", payload={}, job_id="c2")]))
    monkeypatch.undo()
    assert rounds == [[("b", ["c2"])], [("a", ["c1", "P"])]]
    assert [(c.queue, c.job_id) for c in node.children] == [("a", "c1"), ("b", "c2")]
    assert (await job(omniq, "a", "c1")).dependents == [("a", "P")]
    assert (await job(omniq, "b", "c2")).dependents == [("a", "P")]
    runs, handler = _recorder()
    await drain(omniq, ["a", "b"], handler, concurrency=2)
    assert runs[-1] == ("a", "P", {"c1": {"id": "c1"}, "c2": {"id": "c2"}})


def test_outcome_chunks_split_by_count_and_by_result_bytes() -> None:
    limit = 8 << 20  # about 8 MiB of results per deps_resolve call
    assert limit == deps._RESOLVE_BYTES

    def items(sizes: list[int]) -> list[tuple[int, tuple[str, str, str, str]]]:
        blob = "x" * max(sizes, default=0)
        return [(k, (f"D{k}", f"q:B{k}", "completed", blob[:n])) for k, n in enumerate(sizes)]

    def shape(got: list[Any], given: list[Any]) -> list[int]:
        assert all(got), "an empty chunk"
        assert [x for c in got for x in c] == given  # every item, in order
        return [len(c) for c in got]

    assert deps.outcome_chunks([]) == []
    for sizes, want in (
        ([0] * MAX_DEPS_OPS, [MAX_DEPS_OPS]),
        ([0] * (2 * MAX_DEPS_OPS + 1), [MAX_DEPS_OPS, MAX_DEPS_OPS, 1]),
        ([3 << 20] * 5, [2, 2, 1]),
        ([limit // 2, limit // 2], [2]),
        ([limit // 2, limit // 2, 1], [2, 1]),
        ([limit + 1], [1]),
        ([1, limit + 1, 1], [1, 1, 1]),
        ([limit + 1, 0, 0], [1, 2]),
        ([1] * (MAX_DEPS_OPS - 1) + [limit], [MAX_DEPS_OPS - 1, 1]),
    ):
        given = items(sizes)
        assert shape(deps.outcome_chunks(given), given) == want, sizes


async def test_a_failed_delivery_after_a_committed_write_is_logged(
        omniq, raw, monkeypatch, caplog):
    """The delivery after publish / publish_flow / ack_success fails (connection lost):
    the call returns, its write stands, a warning says so, and a later
    resolve_dependencies delivers."""
    b = await omniq.publish("y", {})
    await run(omniq, "y", b, result="B")

    async def broken(self: AsyncOmniq, *args: Any, **kwargs: Any) -> int:
        raise ConnectionFailed("connection lost")

    monkeypatch.setattr(AsyncOmniq, "_deliver_dependencies", broken)
    caplog.set_level(logging.WARNING, logger="omniq")
    d = await omniq.publish("x", {}, depends_on=[("y", b)])  # B's outcome: an op of 'y'
    assert await state(omniq, "x", d) == "waiting_deps"
    assert outbox(raw, "y") == [f"R\tcompleted\t{b}\tx\t{d}"]
    node = await omniq.publish_flow(FlowJob(queue="x", payload={}, children=[
        FlowJob(queue="y", payload={})]))
    kid = node.children[0].job_id
    assert await state(omniq, "x", node.job_id) == "waiting_deps"
    await run(omniq, "y", kid, result="K")  # ack_success, with a dependent on 'x'
    assert await state(omniq, "y", kid) == "completed"
    warned = [r for r in caplog.records if r.name == "omniq"
              and "delivering dependency work of y failed" in r.getMessage()]
    assert len(warned) == 3
    assert all(r.levelno == logging.WARNING for r in warned)
    monkeypatch.undo()
    assert await state(omniq, "x", node.job_id) == "waiting_deps"
    assert await omniq.resolve_dependencies("y") == 2
    assert [await state(omniq, "x", i) for i in (d, node.job_id)] == ["wait", "wait"]
    assert await omniq.dependency_results("x", d) == {b: "B"}
    assert await omniq.dependency_results("x", node.job_id) == {kid: "K"}
    assert outbox(raw, "y") == []


async def test_a_chain_of_2000_jobs_on_one_queue(omniq, raw):
    n = 2000
    ids = await omniq.chain(*[FlowJob(queue="q", payload={"n": k}) for k in range(n)])
    assert len(set(ids)) == n
    assert await state(omniq, "q", ids[0]) == "wait"
    assert raw.zcard(qk("q", "waiting_deps")) == n - 1
    for k in (1, n // 2, n - 1):
        assert (await job(omniq, "q", ids[k])).depends_on == [("q", ids[k - 1])]
    order: list[tuple[int, str]] = []

    async def handler(ctx: Any) -> None:
        order.append((ctx.payload["n"], ctx.job_id))

    await drain(omniq, "q", handler, concurrency=4, seconds=120)
    assert order == list(enumerate(ids))
    assert raw.zcard(qk("q", "waiting_deps")) == 0


async def test_a_job_with_10000_dependents_refuses_another(omniq, raw):
    a = await omniq.publish("q", {})
    dk = jk("q", a) + ":dependents"
    raw.hset(dk, mapping={f"z:f{k}": "fail" for k in range(MAX_DEPENDENTS)})
    raw.hset(jk("q", a), "dependents", "1")
    before = dump_db(raw)
    for q in ("q", "x"):  # the client's check, before the link (x) or the write (q)
        with pytest.raises(DependencyError) as err:
            await omniq.publish(q, {}, job_id="D", depends_on=[("q", a)])
        assert (type(err.value), err.value.code, err.value.detail) == (
            DependencyError, "DEP_LIMIT", f"q:{a}"), q
    # the script's own check on the dependency's queue
    reply = await omniq.routing.call(enqueue.ENQUEUE, "q", enqueue.args(0, _job_fields(
        "D", deps.with_dependencies(b"", [("q", a, False)], "fail")), omniq.events_maxlen))
    with pytest.raises(DependencyError) as err:
        enqueue.parse(reply, "D")
    assert (err.value.code, err.value.detail) == ("DEP_LIMIT", f"q:{a}")
    assert dump_db(raw) == before
    raw.hdel(dk, "z:f0")  # 9,999
    d = await omniq.publish("q", {}, depends_on=[a])
    assert await state(omniq, "q", d) == "waiting_deps"
    assert raw.hlen(dk) == MAX_DEPENDENTS
    with pytest.raises(DependencyError):
        await omniq.publish("x", {}, depends_on=[("q", a)])
    raw.hdel(dk, "z:f1")  # 9,999
    e = await omniq.publish("x", {}, depends_on=[("q", a)])
    assert await state(omniq, "x", e) == "waiting_deps"
    assert raw.hget(dk, f"x:{e}") == "fail"
    assert raw.hget(dk, f"q:{d}") == "fail"


async def test_a_batch_counts_the_dependents_it_adds(omniq, raw):
    """publish_many: the limit counts the dependents the batch itself gives a job (the
    client's check for every queue, the script's on the dependency's own queue)."""
    a = await omniq.publish("q", {})
    dk = jk("q", a) + ":dependents"
    raw.hset(dk, mapping={f"z:f{k}": "fail" for k in range(MAX_DEPENDENTS - 2)})
    raw.hset(jk("q", a), "dependents", "1")
    before = dump_db(raw)
    for q, ref in (("q", a), ("x", ("q", a))):
        with pytest.raises(DependencyError) as err:
            await omniq.publish_many(q, [JobSpec(payload={}, depends_on=[ref])
                                         for _ in range(3)])
        assert (err.value.code, err.value.detail) == ("DEP_LIMIT", f"q:{a}"), q
    # the script alone (three jobs of one call)
    fields = [x for k in range(3) for x in _job_fields(
        f"D{k}", deps.with_dependencies(b"", [("q", a, False)], "fail"))]
    reply = await omniq.routing.call(enqueue.ENQUEUE, "q",
                                     enqueue.args(0, fields, omniq.events_maxlen))
    with pytest.raises(DependencyError) as err:
        enqueue.parse(reply, "D0")
    assert (err.value.code, err.value.detail) == ("DEP_LIMIT", f"q:{a}")
    assert dump_db(raw) == before
    ids = await omniq.publish_many("q", [JobSpec(payload={}, depends_on=[a])
                                         for _ in range(2)])
    assert [await state(omniq, "q", i) for i in ids] == ["waiting_deps"] * 2
    assert raw.hlen(dk) == MAX_DEPENDENTS


async def test_remove_of_a_completed_dependency_another_client_acked(omniq, raw):
    """Its dependents are still registered (the other client's ack knew nothing of them):
    remove_job settles them as completed, with the stored result, not as removed."""
    b = await omniq.publish("q", {})
    d = await omniq.publish("q", {}, depends_on=[b])
    e = await omniq.publish("x", {}, depends_on=[("q", b)])
    official_ack(raw, "q", await lease(omniq, "q", b), far_future())
    raw.hset(jk("q", b), "result", '{"r":1}')  # (a client that stores results)
    assert await state(omniq, "q", d) == "waiting_deps"
    await omniq.remove_job("q", b, "completed")
    assert await omniq.get_job("q", b) is None
    info = await job(omniq, "q", d)
    assert (info.state, info.dependencies, info.last_error) == (
        "wait", {f"q:{b}": "completed"}, None)
    assert await omniq.dependency_results("q", d) == {b: {"r": 1}}
    assert outbox(raw, "q") == [f"R\tcompleted\t{b}\tx\t{e}"]
    assert await omniq.resolve_dependencies("q", repair=False) == 1
    info = await job(omniq, "x", e)
    assert (info.state, info.dependencies) == ("wait", {f"q:{b}": "completed"})
    assert await omniq.dependency_results("x", e) == {b: {"r": 1}}
    assert not raw.exists(jk("q", b) + ":dependents")
    assert raw.zcard(qk("q", "deps:src")) == 0
    consistent(raw, "q", "x")


async def test_a_failed_dependency_kept_for_a_retry_is_scanned_rarely(omniq, raw):
    """A failed job keeping a 'wait' dependent: the repair scan looks at it every
    10 * DEPS_REPAIR_MS (each look sends its outcome again), not every DEPS_REPAIR_MS;
    our retry_failed brings the look back to DEPS_REPAIR_MS after it (an official worker
    may complete the retried job)."""
    every = DEPS_REPAIR_MS
    b = await omniq.publish("y", {}, now_ms=T0)
    d = await omniq.publish("x", {}, depends_on=[("y", b)], on_dependency_failure="wait",
                            now_ms=T0)
    await fail(omniq, "y", b, now_ms=T0)  # acked at T0 + 1; its delivery tells D
    failed_at = T0 + 1
    info = await job(omniq, "x", d)
    assert (info.state, info.dependencies) == ("waiting_deps", {f"y:{b}": "failed"})
    assert outbox(raw, "y") == []
    for k in (1, 2, 9):  # (the count: ops the scan put in the outbox, delivered at once)
        assert await omniq.resolve_dependencies("y", now_ms=failed_at + k * every) == 0, k
        assert outbox(raw, "y") == []
    assert raw.zscore(qk("y", "deps:src"), b) == failed_at + 10 * every
    assert await omniq.resolve_dependencies("y", now_ms=failed_at + 10 * every) == 1
    assert raw.zscore(qk("y", "deps:src"), b) == failed_at + 20 * every
    assert job_event_types(raw, "x", d).count("dependency_failed") == 1  # (told again: a no-op)

    retried_at = failed_at + 10 * every + 1000
    await omniq.retry_failed("y", b, now_ms=retried_at)
    assert raw.zscore(qk("y", "deps:src"), b) == retried_at + every
    official_ack(raw, "y", await lease(omniq, "y", b, now_ms=retried_at + 10), retried_at + 20)
    assert await omniq.resolve_dependencies("y", now_ms=retried_at + every - 1) == 0
    assert await omniq.resolve_dependencies("y", now_ms=retried_at + every) == 1
    info = await job(omniq, "x", d)
    assert (info.state, info.dependencies) == ("wait", {f"y:{b}": "completed"})
    assert raw.zcard(qk("y", "deps:src")) == 0
