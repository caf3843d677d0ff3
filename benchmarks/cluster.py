"""Scale-out: the same load on one Redis node and on a local 3-master Redis Cluster.

``python -m benchmarks.cluster`` measures, on each topology (a fresh embedded server or a
fresh :class:`~omniq.testing.embedded.EmbeddedCluster` per measurement):

* **publish**: ``--procs`` processes publish ``--jobs`` jobs in total with ``publish_many``
  (batches of 1,000), spread over the layout's queues;
* **process**: ``--procs`` worker processes (concurrency 50 each) drain those jobs.

Layouts: ``queues8`` (eight queues ``c0`` ... ``c7``, every worker consuming all eight) and
``partitioned8`` (one logical queue with ``partitions=8``, when the library has
partitioned queues). Rounds are interleaved (single, cluster, single, ...); the report is
the median jobs/s per cell and the cluster / single ratio. Results go to
``benchmarks/CLUSTER.md`` and ``benchmarks/cluster.json`` (``--out DIR`` to change).

On a machine with few cores the client processes, not the servers, are the bottleneck, and
three server processes compete with them for the same cores: the throughput ratio then says
how much the cluster costs, not how far it scales. So the report also gives each server
process's CPU per job (``INFO cpu``): the busiest master's share of a single node's work is
the scale-out of a server-bound load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from omniq import AsyncOmniq
from omniq.aio.worker import Worker
from omniq.testing.embedded import EmbeddedCluster, EmbeddedServer

HERE = Path(__file__).resolve().parent
QUEUES8 = [f"c{i}" for i in range(8)]
PARTITIONED = "cpart"
BATCH = 1000


def _has_partitions() -> bool:
    return hasattr(AsyncOmniq, "partition_queue")


LAYOUTS = ("queues8", "partitioned8")


# --------------------------------------------------------------------------- child processes


async def _publisher(url: str, layout: str, jobs: int, index: int) -> None:
    async with AsyncOmniq(url=url) as client:
        queues = QUEUES8 if layout == "queues8" else [PARTITIONED]
        await client.publish("warm", {"i": 0})
        made = 0
        k = index
        while made < jobs:
            n = min(BATCH, jobs - made)
            queue = queues[k % len(queues)]
            await client.publish_many(queue, [{"i": made + i} for i in range(n)])
            made += n
            k += 1


async def _worker(url: str, layout: str, total: int, counter: Any) -> None:
    queues = QUEUES8 if layout == "queues8" else [PARTITIONED]
    async with AsyncOmniq(url=url) as client:

        async def handler(ctx: Any) -> None:
            return None

        worker = Worker(client, queues, handler, concurrency=50, drain=True)
        await worker.run()
        with counter.get_lock():
            counter.value += worker.stats.completed


def _child(role: str, url: str, layout: str, n: int, index: int, start: Any, counter: Any,
           ready: Any) -> None:
    ready.release()
    start.wait()
    if role == "publish":
        asyncio.run(_publisher(url, layout, n, index))
    else:
        asyncio.run(_worker(url, layout, n, counter))


def _run_children(role: str, url: str, layout: str, jobs: int, procs: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    ready = ctx.Semaphore(0)
    counter = ctx.Value("q", 0)
    share = [jobs // procs + (1 if i < jobs % procs else 0) for i in range(procs)]
    children = [
        ctx.Process(target=_child, args=(role, url, layout, share[i], i, start, counter, ready))
        for i in range(procs)
    ]
    for c in children:
        c.start()
    for _ in children:
        ready.acquire()
    time.sleep(0.5)  # let the interpreters finish importing before the clock starts
    t0 = time.perf_counter()
    start.set()
    for c in children:
        c.join(600)
        if c.exitcode != 0:
            raise RuntimeError(f"{role} process failed with exit code {c.exitcode}")
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- measurements


@contextlib.contextmanager
def topology(kind: str) -> Iterator[tuple[str, list[int]]]:
    """(client URL, ports of the server processes)."""
    if kind == "single":
        with EmbeddedServer(kind="redis") as server:
            yield server.url, [server.port]
    else:
        with EmbeddedCluster(masters=3, kind="redis") as cluster:
            yield cluster.url, [n.port for n in cluster.nodes]


def server_cpu(ports: list[int]) -> list[float]:
    """CPU seconds (user + system) each server process has used so far."""
    out = []
    for port in ports:
        with redis.Redis(host="127.0.0.1", port=port) as r:
            info = r.info("cpu")
        out.append(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))
    return out


async def _prepare(url: str, layout: str) -> None:
    async with AsyncOmniq(url=url) as client:
        if layout == "partitioned8":
            await client.partition_queue(PARTITIONED, 8)  # type: ignore[attr-defined]


async def _count(url: str, layout: str) -> tuple[int, int]:
    async with AsyncOmniq(url=url, keep_completed=0) as client:
        queues = QUEUES8 if layout == "queues8" else [PARTITIONED]
        waiting = active = 0
        for q in queues:
            s = await client.stats(q)
            waiting += s.waiting_total
            active += s.active
        return waiting, active


def measure(kind: str, layout: str, jobs: int, procs: int) -> dict[str, Any]:
    with topology(kind) as (url, ports):
        asyncio.run(_prepare(url, layout))
        cpu0 = server_cpu(ports)
        t_pub = _run_children("publish", url, layout, jobs, procs)
        cpu1 = server_cpu(ports)
        waiting, _ = asyncio.run(_count(url, layout))
        if waiting != jobs:
            raise RuntimeError(f"{kind}/{layout}: {waiting} jobs waiting after publishing {jobs}")
        cpu2 = server_cpu(ports)
        t_proc = _run_children("process", url, layout, jobs, procs)
        cpu3 = server_cpu(ports)
        waiting, active = asyncio.run(_count(url, layout))
        if waiting or active:
            raise RuntimeError(f"{kind}/{layout}: {waiting} waiting, {active} active after drain")
    # the busiest server process bounds a server-bound run: its CPU per job
    pub_cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    proc_cpu = [b - a for a, b in zip(cpu2, cpu3, strict=True)]
    return {"topology": kind, "layout": layout, "jobs": jobs, "procs": procs,
            "publish_per_s": jobs / t_pub, "process_per_s": jobs / t_proc,
            "publish_busiest_cpu_us": 1e6 * max(pub_cpu) / jobs,
            "process_busiest_cpu_us": 1e6 * max(proc_cpu) / jobs,
            "publish_cpu_split": pub_cpu, "process_cpu_split": proc_cpu}


# --------------------------------------------------------------------------- report


def summarize(raw: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for layout in sorted({r["layout"] for r in raw}):
        out[layout] = {}
        for kind in ("single", "cluster"):
            rows = [r for r in raw if r["layout"] == layout and r["topology"] == kind]
            if rows:
                out[layout][kind] = {
                    m: statistics.median(r[m] for r in rows)
                    for m in ("publish_per_s", "process_per_s", "publish_busiest_cpu_us",
                              "process_busiest_cpu_us")
                }
    return out


def render(doc: dict[str, Any]) -> str:
    lines = [
        "# omniq on one node vs a 3-master Redis Cluster",
        "",
        f"Generated {doc['generated']} by `python -m benchmarks.cluster "
        f"--jobs {doc['jobs']} --procs {doc['procs']} --rounds {doc['rounds']}` "
        f"({doc['rounds']} interleaved rounds, medians). Machine: {doc['cores']} cores, "
        f"{doc['server']}.",
        "",
        "| layout | metric | one node (jobs/s) | cluster (jobs/s) | cluster / one node |",
        "|---|---|---:|---:|---:|",
    ]
    for layout, cells in doc["summary"].items():
        for metric, label in (("publish_per_s", "publish"), ("process_per_s", "process")):
            single = cells.get("single", {}).get(metric)
            cluster = cells.get("cluster", {}).get(metric)
            ratio = f"{cluster / single:.2f}x" if single and cluster else "n/a"
            lines.append(
                f"| {layout} | {label} | {single or 0:,.0f} | {cluster or 0:,.0f} | {ratio} |"
            )
    lines += [
        "",
        "**Server capacity** (what bounds a run once the clients are not the bottleneck): "
        "server CPU per job of the busiest server process, one node vs the busiest master, "
        "and their ratio, the throughput a server-bound load could reach on the cluster "
        "relative to one node.",
        "",
        "| layout | phase | one node (CPU us/job) | busiest master (CPU us/job) "
        "| capacity ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for layout, cells in doc["summary"].items():
        for metric, label in (("publish_busiest_cpu_us", "publish"),
                              ("process_busiest_cpu_us", "process")):
            single = cells.get("single", {}).get(metric)
            cluster = cells.get("cluster", {}).get(metric)
            ratio = f"{single / cluster:.2f}x" if single and cluster else "n/a"
            lines.append(
                f"| {layout} | {label} | {single or 0:.1f} | {cluster or 0:.1f} | {ratio} |"
            )
    lines += ["", doc["note"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=40_000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(HERE), help="directory for CLUSTER.md / .json")
    args = parser.parse_args(argv)
    layouts = [lay for lay in LAYOUTS if lay == "queues8" or _has_partitions()]
    raw: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        for layout in layouts:
            order = ("single", "cluster") if rnd % 2 == 0 else ("cluster", "single")
            for kind in order:
                r = measure(kind, layout, args.jobs, args.procs)
                r["round"] = rnd + 1
                raw.append(r)
                print(f"round {rnd + 1} {layout:13} {kind:8} publish {r['publish_per_s']:9,.0f}/s"
                      f"  process {r['process_per_s']:9,.0f}/s", file=sys.stderr, flush=True)
    cores = os.cpu_count() or 1
    with EmbeddedServer(kind="redis") as s:
        server = f"Redis {s.version}"
    doc = {
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "jobs": args.jobs, "procs": args.procs, "rounds": args.rounds, "cores": cores,
        "server": server, "raw": raw, "summary": summarize(raw),
        "note": (
            f"Each measurement uses {args.procs} publisher processes, then {args.procs} worker "
            "processes (concurrency 50, every worker consuming every queue of the layout), "
            "on a fresh server or cluster. With "
            f"{cores} cores for the {args.procs} client processes and the server processes, "
            "the throughput ratio shows the cost or gain of spreading the queues over three "
            "masters on this machine, where clients and servers share the cores; the capacity "
            "ratio shows how the server work itself is split (the busiest master does that "
            "share of a single node's work per job), the scale-out a load bounded by the "
            "servers gets on machines with a core per node. Eight hash tags over three masters "
            "split unevenly (the busiest master holds three or four of them), so the capacity "
            "ratio stays below 3x."
        ),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cluster.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "CLUSTER.md").write_text(render(doc))
    print(render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
