"""Reading dependencies and flows: ``JobInfo``'s dependency fields, ``get_job``'s
dependents, ``get_flow`` (levels, shared dependencies, cycles, ``max_nodes``, missing
jobs, partitions) and its pure parts in ``_protocol.reads``.

The job hashes carry the dependency fields the scripts write (``depends_on``, ``dep:<ref>``,
``dres:<ref>``, ``deps_left``, ``dep_policy``, the ``:dependents`` hash); here they are
written onto published jobs with HSET (tests/flow_util.py), so the reads are tested on
their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import redis
from flow_util import Ref, depend, ref, set_state
from shared_util import poll_until

from omniq import AsyncOmniq, FlowInfo, InvalidArgument, OmniqClient
from omniq._keys import QueueKeys
from omniq._protocol import reads
from omniq._protocol.reads import Command


def node(flow: FlowInfo) -> tuple[Any, ...]:
    return (flow.queue, flow.job_id, flow.state, flow.dependency_state, flow.truncated)


def shape(flow: FlowInfo) -> Any:
    """The tree as nested ``(node, [children])``."""
    return (node(flow), [shape(c) for c in flow.children])


# -- pure: job_info ---------------------------------------------------------------------


def test_job_info_dependency_fields() -> None:
    raw = {
        b"id": b"D", b"state": b"waiting_deps", b"payload": b"{}",
        b"depends_on": json.dumps(["q:B1", "other:id:with:colons", "q:B0"]).encode(),
        b"dep:q:B0": b"completed", b"dep:q:B1": b"pending",
        b"dep:other:id:with:colons": b"ignored",
        b"dres:q:B0": b'{"n": 1}', b"deps_left": b"1", b"dep_policy": b"ignore",
    }
    info = reads.job_info("q", "D", raw, {b"z:X": b"fail", b"a:Y:1": b"wait"})
    assert info.depends_on == [("q", "B1"), ("other", "id:with:colons"), ("q", "B0")]
    assert list(info.dependencies.items()) == [
        ("q:B1", "pending"), ("other:id:with:colons", "ignored"), ("q:B0", "completed")]
    assert info.deps_left == 1
    assert info.dep_policy == "ignore"
    assert info.dependency_results_raw == {"q:B0": '{"n": 1}'}
    assert info.dependents == [("a", "Y:1"), ("z", "X")]
    # every field of the hash stays in ``fields``, the dependency ones included
    assert info.fields["dep:q:B0"] == "completed"
    assert info.fields["dres:q:B0"] == '{"n": 1}'


def test_job_info_without_dependencies_and_corrupt_fields() -> None:
    plain = reads.job_info("q", "J", {"id": "J", "state": "wait", "payload": "{}"})
    assert (plain.depends_on, plain.dependencies, plain.deps_left, plain.dep_policy,
            plain.dependents, plain.dependency_results_raw) == ([], {}, None, "fail", [], {})
    assert reads.job_info("q", "J", {"state": "wait"}, {}).dependents == []
    for bad in ("not json", "{}", '"q:A"', "[1, null]", '["noref", "q:", ":A", "b{ad:A"]'):
        assert reads.parse_depends_on(bad) == [], bad
    assert reads.parse_depends_on('["q:A", 3, "q:B"]') == [("q", "A"), ("q", "B")]
    # a dep: field outside depends_on is kept (after the listed ones, sorted)
    info = reads.job_info("q", "J", {"state": "wait", "depends_on": '["q:B"]',
                                     "dep:q:Z": "completed", "dep:q:B": "pending",
                                     "dep:q:A": "gone"})
    assert list(info.dependencies) == ["q:B", "q:A", "q:Z"]


# -- pure: build_flow and FlowWalk -----------------------------------------------------


def test_build_flow_shared_dependency_cycle_and_missing() -> None:
    A, B, C, D, M = ("q", "A"), ("q", "B"), ("o", "C"), ("q", "D"), ("q", "M")
    nodes = {D: ("waiting_deps", [A, B, M]), A: ("completed", [C]), B: ("active", [C, D]),
             C: ("completed", []), M: ("missing", [])}
    seen = {(D, A): "completed", (D, B): "pending", (D, M): "gone", (A, C): "completed",
            (B, C): "completed"}
    tree = reads.build_flow(D, nodes, seen, 100)
    assert shape(tree) == (("q", "D", "waiting_deps", None, False), [
        (("q", "A", "completed", "completed", False), [
            (("o", "C", "completed", "completed", False), [])]),
        (("q", "B", "active", "pending", False), [
            (("o", "C", "completed", "completed", False), []),  # shown again: no deps
            (("q", "D", "waiting_deps", None, True), [])]),  # the cycle back to the root
        (("q", "M", "missing", "gone", False), [])])


def test_build_flow_max_nodes_and_unread_dependencies() -> None:
    root = ("q", "R")
    kids = [("q", str(i)) for i in range(5)]
    nodes = {root: ("waiting_deps", kids), **{k: ("wait", []) for k in kids[:4]}}
    tree = reads.build_flow(root, nodes, {}, 100)  # kids[4] was not read
    assert [c.job_id for c in tree.children] == ["0", "1", "2", "3"]
    assert tree.truncated
    tree = reads.build_flow(root, nodes, {}, 3)
    assert [c.job_id for c in tree.children] == ["0", "1"]
    assert tree.truncated
    assert not any(c.truncated for c in tree.children)
    assert reads.build_flow(root, nodes, {}, 1) == FlowInfo(
        queue="q", job_id="R", state="waiting_deps", truncated=True)


def test_build_flow_of_a_long_chain_does_not_recurse() -> None:
    n = 20_000
    chain = [("q", str(i)) for i in range(n)]
    nodes = {r: ("waiting_deps", [chain[i + 1]]) for i, r in enumerate(chain[:-1])}
    nodes[chain[-1]] = ("completed", [])
    tree = reads.build_flow(chain[0], nodes, {}, n)
    depth = 0
    while tree.children:
        tree = tree.children[0]
        depth += 1
    assert (depth, tree.job_id) == (n - 1, str(n - 1))


def fake_reads(hashes: dict[str, dict[str, str]]) -> tuple[
        Callable[[Sequence[str], Callable[[QueueKeys], list[Command]]], list[list[Any]]],
        list[list[str]]]:
    """A ``read_each`` over a dict of hashes (HMGET only), and the names of each call."""
    calls: list[list[str]] = []

    def read_each(names: Sequence[str],
                  commands: Callable[[QueueKeys], list[Command]]) -> list[list[Any]]:
        calls.append(list(names))
        out = []
        for name in names:
            row = []
            for cmd in commands(QueueKeys(name)):
                assert cmd[0] == "HMGET"
                assert cmd[1].startswith("{" + name + "}:")
                assert cmd[2:]
                h = hashes.get(cmd[1], {})
                row.append([h.get(f) for f in cmd[2:]])
            out.append(row)
        return out

    return read_each, calls


def walk(hashes: dict[str, dict[str, str]], root: Ref, max_nodes: int = 10_000
         ) -> tuple[FlowInfo, list[list[str]]]:
    read_each, calls = fake_reads(hashes)
    state, deps = reads.parse_flow_node(
        read_each([root[0]], lambda k: reads.flow_node_commands(k, root[1]))[0][0])
    assert state is not None
    w = reads.FlowWalk(root, state, deps, max_nodes)
    while names := w.next_level():
        w.take(names, read_each(names, w.commands))
    return w.tree(), calls[1:]


def hashes_of(jobs: dict[Ref, tuple[str, list[Ref], list[str]]]) -> dict[str, dict[str, str]]:
    out = {}
    for (q, j), (state, deps, seen) in jobs.items():
        h = {"state": state}
        if deps:
            h["depends_on"] = json.dumps([ref(d) for d in deps])
            h.update(("dep:" + ref(d), s) for d, s in zip(deps, seen, strict=True))
        out[QueueKeys(q).job(j)] = h
    return out


def test_flow_walk_reads_one_level_per_round_trip() -> None:
    R, A, B, C, E = ("r", "R"), ("a", "A"), ("b", "B"), ("a", "C"), ("b", "E")
    hashes = hashes_of({
        R: ("waiting_deps", [A, B], ["completed", "pending"]),
        A: ("completed", [C], ["completed"]),
        B: ("waiting_deps", [C, E, ("gone", "X")], ["completed", "pending", "gone"]),
        C: ("completed", [], []),
        E: ("active", [], []),
    })
    tree, calls = walk(hashes, R)
    # level 1: A, B (queues a, b) and R's records (queue r); level 2: C, E, X and A's and
    # B's records; level 3: nothing left
    assert [sorted(c) for c in calls] == [["a", "b", "r"], ["a", "b", "gone"]]
    assert shape(tree) == (("r", "R", "waiting_deps", None, False), [
        (("a", "A", "completed", "completed", False), [
            (("a", "C", "completed", "completed", False), [])]),
        (("b", "B", "waiting_deps", "pending", False), [
            (("a", "C", "completed", "completed", False), []),
            (("b", "E", "active", "pending", False), []),
            (("gone", "X", "missing", "gone", False), [])])])


def test_flow_walk_stops_on_a_cycle_and_at_max_nodes() -> None:
    A, B = ("q", "A"), ("q", "B")
    hashes = hashes_of({A: ("waiting_deps", [B], ["pending"]),
                        B: ("waiting_deps", [A], ["pending"])})
    tree, calls = walk(hashes, A)
    assert len(calls) == 2  # B, then B's record of A
    assert shape(tree) == (("q", "A", "waiting_deps", None, False), [
        (("q", "B", "waiting_deps", "pending", False), [
            (("q", "A", "waiting_deps", "pending", True), [])])])
    kids = [("q", f"k{i}") for i in range(10)]
    hashes = hashes_of({("q", "R"): ("waiting_deps", kids, ["pending"] * 10),
                        **{k: ("wait", [], []) for k in kids}})
    tree, calls = walk(hashes, ("q", "R"), max_nodes=4)
    assert [c.job_id for c in tree.children] == ["k0", "k1", "k2"]
    assert tree.truncated
    tree, calls = walk(hashes, ("q", "R"), max_nodes=1)
    assert (tree.children, tree.truncated, calls) == ([], True, [])


# -- against the server -----------------------------------------------------------------


async def test_get_job_reads_dependencies_and_dependents(
    omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    b1 = await omniq.publish("q", {"n": 1})
    b2 = await omniq.publish("other", {"n": 2})
    d = await omniq.publish("q", {"n": 3})
    depend(raw, ("q", d), [("q", b1), ("other", b2)], ["completed", "pending"],
           policy="wait", results={("q", b1): '{"ok": true}'})
    info = await omniq.get_job("q", d)
    assert info is not None
    assert info.depends_on == [("q", b1), ("other", b2)]
    assert info.dependencies == {f"q:{b1}": "completed", f"other:{b2}": "pending"}
    assert (info.deps_left, info.dep_policy, info.dependents) == (1, "wait", [])
    assert info.dependency_results_raw == {f"q:{b1}": '{"ok": true}'}
    b1_info = await omniq.get_job("q", b1)
    assert b1_info is not None
    assert b1_info.dependents == [("q", d)]
    assert b1_info.depends_on == []
    assert b1_info.deps_left is None
    plain = await omniq.get_job("q", await omniq.publish("q", {}))
    assert plain is not None
    assert plain.dependents == []
    assert plain.dep_policy == "fail"


async def test_get_flow_across_queues_and_partitions(
    omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    await omniq.partition_queue("parts", 4)
    leaf = await omniq.publish("parts", {"leaf": 1})
    leaf_part = next(p for p in (f"parts.p{i}" for i in range(4))
                     if raw.exists(QueueKeys(p).job(leaf)))
    c1 = await omniq.publish("steps", {"c": 1})
    c2 = await omniq.publish("steps", {"c": 2})
    top = await omniq.publish("reports", {"top": 1})
    depend(raw, ("steps", c1), [(leaf_part, leaf)], ["completed"])
    depend(raw, ("reports", top), [("steps", c1), ("steps", c2), ("steps", "gone")],
           ["completed", "pending", "pending"])
    raw.delete(QueueKeys("steps").job("gone"), QueueKeys("steps").dependents("gone"))
    set_state(raw, (leaf_part, leaf), "completed")
    set_state(raw, ("steps", c1), "completed")
    set_state(raw, ("reports", top), "waiting_deps")

    flow = await omniq.get_flow("reports", top)
    assert flow is not None
    assert shape(flow) == (("reports", top, "waiting_deps", None, False), [
        (("steps", c1, "completed", "completed", False), [
            ((leaf_part, leaf, "completed", "completed", False), [])]),
        (("steps", c2, "wait", "pending", False), []),
        (("steps", "gone", "missing", "pending", False), [])])
    # a partitioned logical queue finds the partition holding the root
    sub = await omniq.get_flow("parts", leaf)
    assert sub == FlowInfo(queue=leaf_part, job_id=leaf, state="completed")
    assert await omniq.get_flow("reports", "nope") is None
    assert await omniq.get_flow("parts", "nope") is None
    small = await omniq.get_flow("reports", top, max_nodes=2)
    assert small is not None
    assert small.truncated
    assert len(small.children) == 1
    with pytest.raises(InvalidArgument):
        await omniq.get_flow("reports", top, max_nodes=0)


async def test_get_flow_one_round_trip_per_level_and_cycles(
    omniq: AsyncOmniq, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [await omniq.publish("q", {"n": i}) for i in range(3)]
    a, b, c = (("q", j) for j in ids)
    depend(raw, a, [b], ["pending"])
    depend(raw, b, [c], ["pending"])
    depend(raw, c, [a], ["pending"])  # a cycle (the scripts refuse one; reads survive it)
    calls = 0
    read_each = omniq.routing.read_each

    async def counting(*args: Any) -> list[list[Any]]:
        nonlocal calls
        calls += 1
        return await read_each(*args)

    monkeypatch.setattr(omniq.routing, "read_each", counting)
    flow = await omniq.get_flow("q", a[1])
    assert flow is not None
    assert [n.job_id for n in (flow, flow.children[0], flow.children[0].children[0],
                               flow.children[0].children[0].children[0])] == [*ids, ids[0]]
    assert flow.children[0].children[0].children[0].truncated
    assert calls == 4  # the root, then b, c, and c's record of a


def test_get_flow_sync_twin(omniq_sync: OmniqClient, raw: redis.Redis) -> None:
    b = omniq_sync.publish("q", {"n": 1})
    d = omniq_sync.publish("q", {"n": 2})
    depend(raw, ("q", d), [("q", b)], ["pending"])
    flow = omniq_sync.get_flow("q", d, max_nodes=5)
    assert flow is not None
    assert shape(flow) == (("q", d, "wait", None, False), [
        (("q", b, "wait", "pending", False), [])])
    assert omniq_sync.get_flow("q", "nope") is None


async def test_get_flow_of_published_dependencies(omniq: AsyncOmniq) -> None:
    """The fields the scripts write, read back through a real run."""
    b = await omniq.publish("a", {"n": "b"})
    c = await omniq.publish("q", {"n": "c"})
    d = await omniq.publish("q", {"n": "d"}, depends_on=[c, ("a", b)])
    e = await omniq.publish("r", {"n": "e"}, depends_on=[("q", d)],
                            on_dependency_failure="ignore")
    flow = await omniq.get_flow("r", e)
    assert flow is not None
    assert shape(flow) == (("r", e, "waiting_deps", None, False), [
        (("q", d, "waiting_deps", "pending", False), [
            (("q", c, "wait", "pending", False), []),
            (("a", b, "wait", "pending", False), [])])])
    info = await omniq.get_job("r", e)
    assert info is not None
    assert (info.depends_on, info.dependencies, info.deps_left, info.dep_policy) == (
        [("q", d)], {f"q:{d}": "pending"}, 1, "ignore")
    c_info = await omniq.get_job("q", c)
    assert c_info is not None
    assert c_info.dependents == [("q", d)]  # same queue: registered by the publish itself

    async def finished() -> bool:
        await omniq.consume(["q", "a", "r"], lambda ctx: {"done": ctx.job_id}, drain=True,
                            handle_signals=False)
        info = await omniq.get_job("r", e)
        return info is not None and info.state == "completed"

    await poll_until(finished, 20, "the jobs and their dependents to complete")
    flow = await omniq.get_flow("r", e)
    assert flow is not None
    assert shape(flow) == (("r", e, "completed", None, False), [
        (("q", d, "completed", "completed", False), [
            (("q", c, "completed", "completed", False), []),
            (("a", b, "completed", "completed", False), [])])])
    d_info = await omniq.get_job("q", d)
    assert d_info is not None
    assert d_info.deps_left == 0
    assert {k: json.loads(v) for k, v in d_info.dependency_results_raw.items()} == {
        f"q:{c}": {"done": c}, f"a:{b}": {"done": b}}
