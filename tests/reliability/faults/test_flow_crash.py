"""Flows survive workers SIGKILLed in the middle (docs/workflows.md).

Published before any worker runs:

* 20 cross-queue flows: a parent on ``fb`` with 25 children on ``fa`` (outcomes go through
  ``fa``'s dependency outbox to the parents' queue);
* one same-queue flow on ``fs``, two levels: a root with 4 children, each with 10 children
  (everything is settled inside the acks).

Three worker processes (``flow_worker.py``) consume ``fa``, ``fb`` and ``fs``; every handler
writes an external ledger (see the script). All of them are SIGKILLed once while children
run (one of them has taken ops from ``fa``'s outbox and stopped before acknowledging
them, so some parents can only be released by the redelivery of those ops), and again once
parents run; after each kill three new ones start. Jobs have a 1 s lease
so the leases of killed workers expire quickly; the workers' maintenance (every 0.2 s) reaps
them and delivers the outbox ops a killed worker had claimed (due again after
DEPS_RETRY_MS). Then, once every root completed (``wait_all``):

* every job completed, and was acknowledged exactly once (each completed list holds it once);
* each parent started after every child completed (server clock: its ``first_started_ms``
  against the children's ``completed_ms``), and every execution of it saw all its children
  completed and all their results: no execution before the last child finished;
* a job ran more than once only when an earlier attempt was started by a killed process;
* nothing is left waiting for dependencies, in an outbox or in a repair index.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from faults_util import figure, jk, poll_until, qk, within
from shared_util import ScriptProc

from omniq import AsyncOmniq, FlowJob, FlowNode

WORKER_SCRIPT = Path(__file__).resolve().parent / "flow_worker.py"
CHILD_Q, PARENT_Q, SAME_Q = "fa", "fb", "fs"
QUEUES = (CHILD_Q, PARENT_Q, SAME_Q)
PARENTS, CHILDREN = 20, 25
MIDS, LEAVES = 4, 10
WORKERS, CONCURRENCY = 3, 4
CHILD_MS, PARENT_MS = 40, 300  # the handlers' "work"
TIMEOUT_MS = 1000  # the lease of a killed worker expires after 1 s
KEEP = 10_000  # every completed job stays in its completed list, to be checked

OPTIONS: dict[str, Any] = {"timeout_ms": TIMEOUT_MS, "max_attempts": 50, "backoff_ms": 0}


def node(queue: str, job_id: str, work_ms: int, children: Sequence[FlowJob] = ()) -> FlowJob:
    kids = [[c.queue, c.job_id] for c in children]
    return FlowJob(queue=queue, job_id=job_id, children=list(children),
                   payload={"work_ms": work_ms, "children": kids}, **OPTIONS)


def flows() -> list[FlowJob]:
    cross = [node(PARENT_Q, f"p{p}", PARENT_MS,
                  [node(CHILD_Q, f"c{p}-{k}", CHILD_MS) for k in range(CHILDREN)])
             for p in range(PARENTS)]
    same = node(SAME_Q, "root", PARENT_MS, [
        node(SAME_Q, f"m{m}", PARENT_MS,
             [node(SAME_Q, f"l{m}-{k}", CHILD_MS) for k in range(LEAVES)])
        for m in range(MIDS)])
    return [*cross, same]


def walk(n: FlowNode, parent: str | None, out: dict[str, tuple[str | None, list[str]]]
         ) -> None:
    """ref -> (its parent's ref, its children's refs)."""
    ref = f"{n.queue}:{n.job_id}"
    out[ref] = (parent, [f"{c.queue}:{c.job_id}" for c in n.children])
    for c in n.children:
        walk(c, ref, out)


class FlowWorker(ScriptProc):
    def __init__(self, url: str, log: Path, *, stall: bool = False) -> None:
        super().__init__(WORKER_SCRIPT, [url, ",".join(QUEUES), str(CONCURRENCY), str(KEEP),
                                         *(["stall"] if stall else [])], log)


@pytest.mark.kinds("redis", "cluster")
async def test_sigkill_of_every_worker_while_flows_run(omniq_redis_url, tmp_path):
    client = AsyncOmniq(url=omniq_redis_url, keep_completed=KEEP)
    r = client.redis
    procs: list[FlowWorker] = []
    killed: set[int] = set()
    ready_seen = 0

    async def start_workers(*, stall: bool = False) -> list[FlowWorker]:
        nonlocal ready_seen
        new = [FlowWorker(omniq_redis_url, tmp_path / f"worker-{len(procs) + i}.log",
                          stall=stall and i == 0)
               for i in range(WORKERS)]
        procs.extend(new)
        ready_seen += WORKERS

        async def ready() -> bool:
            return int(await r.llen("{t}:ready")) >= ready_seen

        await poll_until(ready, 30, "the worker processes to start")
        return new

    claimed: list[int] = []  # per kill: outbox ops a killed worker had taken, not acked
    held: dict[str, int] = {}  # such an op's dependent (a parent) -> when the op is due again

    async def kill(live: list[FlowWorker]) -> None:
        for p in live:
            p.popen.send_signal(signal.SIGKILL)
        for p in live:
            await p.wait(10)
            killed.add(p.pid)
        now = int((await r.time())[0]) * 1000  # (deps_pending re-dues a taken op 5 s on)
        ops = await r.zrange(qk(CHILD_Q, "deps:out"), 0, -1, withscores=True)
        taken = [(op, int(due)) for op, due in ops if due > now + 1000]
        claimed.append(len(taken))
        for op, due in taken:  # R <outcome> <child id> <parent queue> <parent id>
            kind, _, _, dq, did = op.split("\t")
            assert kind == "R", op
            held[f"{dq}:{did}"] = max(held.get(f"{dq}:{did}", 0), due)

    async def done_count(prefix: str) -> int:
        return sum(1 for ref in await r.smembers("{t}:done") if ref.startswith(prefix))

    try:
        roots = await client.group(flows())
        tree: dict[str, tuple[str | None, list[str]]] = {}
        for root in roots:
            walk(root, None, tree)
        parents = {ref for ref, (_, kids) in tree.items() if kids}
        n_children = sum(len(kids) for _, kids in tree.values())
        assert len(tree) == PARENTS * (CHILDREN + 1) + 1 + MIDS * (LEAVES + 1)
        t0 = time.monotonic()

        # -- kill 1: every worker, while children run --------------------------------
        # one of them stops for good in the middle of a delivery of the children's
        # outcomes (it took ops from fa's outbox and never acknowledges them)
        live = await start_workers(stall=True)

        async def some_children_done() -> bool:
            return (await done_count(CHILD_Q + ":") >= PARENTS * CHILDREN // 4
                    and bool(await r.llen("{t}:stalled")))

        await poll_until(some_children_done, 30, "a quarter of the children to run")
        children_at_kill1 = await done_count(CHILD_Q + ":")
        await kill(live)
        assert children_at_kill1 < PARENTS * CHILDREN  # the kill landed in the middle
        assert claimed[0] > 0  # taken by the killed worker: due again after DEPS_RETRY_MS

        # -- kill 2: every worker, while parents run ----------------------------------
        live = await start_workers()

        async def parents_started() -> bool:
            return int(await r.llen("{t}:parents")) >= 3

        # parents "work" 300 ms: those running now are killed mid-run
        await poll_until(parents_started, 30, "parents to start")
        parents_done_at_kill2 = sum(1 for ref in await r.smembers("{t}:done") if ref in parents)
        await kill(live)
        assert parents_done_at_kill2 < len(parents)

        # -- the survivors finish everything -------------------------------------------
        live = await start_workers()
        await within(client.wait_all(roots, timeout=30), 40, "every root of the flows")
        total_s = time.monotonic() - t0

        # the outbox ops a killed worker had claimed come due again after DEPS_RETRY_MS
        async def settled() -> bool:
            pipe = r.pipeline(transaction=False)
            for q in QUEUES:
                pipe.zcard(qk(q, "deps:out"))
                pipe.zcard(qk(q, "deps:src"))
                pipe.zcard(qk(q, "waiting_deps"))
                pipe.zcard(qk(q, "active"))
            return not any(await pipe.execute())

        try:
            settle_s = await poll_until(settled, 15, "the outboxes to empty")
        except AssertionError:
            pipe = r.pipeline(transaction=False)
            for q in QUEUES:
                for k in ("deps:out", "deps:src", "waiting_deps", "active"):
                    pipe.zrange(qk(q, k), 0, -1, withscores=True)
            raise AssertionError(f"left behind: {await pipe.execute()}") from None
        for p in live:  # graceful stop: SIGTERM, exit 0
            p.popen.send_signal(signal.SIGTERM)
        for p in live:
            assert await p.wait(30) == 0, p.output()
        survivors = {p.pid for p in live}

        # -- the ledger -----------------------------------------------------------------
        for q in QUEUES:
            stats = await client.stats(q)
            assert (stats.active, stats.waiting_total, stats.delayed, stats.failed) == (
                0, 0, 0, 0), stats
            completed = await r.lrange(qk(q, "completed"), 0, -1)
            mine = [ref.split(":", 1)[1] for ref in tree if ref.startswith(q + ":")]
            assert sorted(completed) == sorted(mine), q  # each exactly once
        assert await r.smembers("{t}:done") == set(tree)  # every handler ran to the end
        runs = {k: int(v) for k, v in (await r.hgetall("{t}:runs")).items()}

        refs = sorted(tree)
        pipe = r.pipeline(transaction=False)
        for ref in refs:
            q, j = ref.split(":", 1)
            pipe.hmget(jk(q, j), "state", "attempt", "first_started_ms", "completed_ms")
            pipe.hgetall("{t}:att:" + ref)
        out = await pipe.execute()
        jobs = dict(zip(refs, out[0::2], strict=True))
        starts = dict(zip(refs, out[1::2], strict=True))

        ours = killed | survivors
        reexecuted = extra_starts = unacked_runs = 0
        for ref in refs:
            state, attempt, _first, _done = jobs[ref]
            assert state == "completed", (ref, state)
            final = int(attempt)
            started = {int(a): int(pid) for a, pid in starts[ref].items()}
            assert set(started.values()) <= ours, (ref, started)
            # the attempt that completed the job ran its handler; none came after it
            assert final in started, (ref, final, started)
            assert max(started) == final, (ref, final, started)
            for a, pid in started.items():
                if a != final:  # a re-execution: the earlier attempt's process was killed
                    assert pid in killed, (ref, a, pid, started)
            assert 1 <= runs[ref] <= len(started), (ref, runs[ref], started)
            if len(started) > 1:
                reexecuted += 1
                extra_starts += len(started) - 1
            unacked_runs += runs[ref] - 1

        # parents: after every child, with every child's result, every time they ran
        executions: dict[str, list[dict[str, Any]]] = {}
        for line in await r.lrange("{t}:parents", 0, -1):
            e = json.loads(line)
            executions.setdefault(e["ref"], []).append(e)
        assert set(executions) == parents
        parent_reruns = 0
        for ref in parents:
            kids = tree[ref][1]
            for e in executions[ref]:
                assert e["done"] == len(kids), e  # no execution before the children ended
                assert e["seen"] == len(kids), e
                assert e["results_ok"], e
            # (an attempt killed before it read its children has no entry)
            assert 1 <= len(executions[ref]) <= len(starts[ref]), (ref, executions[ref])
            parent_reruns += len(executions[ref]) - 1
            first_started = int(jobs[ref][2])
            assert first_started >= max(int(jobs[k][3]) for k in kids), ref
            # a parent one of whose children's outcomes the killed worker had taken from
            # the outbox was released by the redelivery of that op, no earlier
            assert first_started >= held.get(ref, 0), (ref, first_started, held.get(ref))
            assert await client.dependency_results(*ref.split(":", 1)) == {
                k.split(":", 1)[1]: {"ref": k} for k in kids}

        figure(
            "flow_crash", jobs=len(tree), children=n_children, parents=len(parents),
            workers=WORKERS, concurrency=CONCURRENCY, kills=2 * WORKERS,
            children_done_at_kill1=children_at_kill1,
            parents_done_at_kill2=parents_done_at_kill2, claimed_ops_at_kills=claimed,
            total_s=round(total_s, 1),
            settle_s=round(settle_s, 1), jobs_reexecuted=reexecuted,
            extra_starts=extra_starts, parent_reexecutions=parent_reruns,
            finished_but_unacked=unacked_runs, lease_timeout_ms=TIMEOUT_MS,
        )
    finally:
        for p in procs:
            p.close()
        await client.aclose()
