"""Benchmark runner: omniq against its peers, side by side.

    python -m benchmarks                 # everything, 3 interleaved rounds (~15 min)
    python -m benchmarks --quick         # ours only (async, sync facade, floor), < 1 min
    python -m benchmarks --only arq,p1   # a selection (implementations and/or scenarios)
    python -m benchmarks --setup-only    # build the peers' environments and stop

Every measurement gets a fresh embedded Redis 7 (``EmbeddedServer(kind="redis")``) on
loopback and runs the implementation's scenario module in its own process (peers with their
own virtual environment under ``benchmarks/.venvs/``, see ``_envs.py``), which prints a JSON
result. Rounds are interleaved (round 1: every implementation in each scenario, then round
2, ...) and the order of implementations rotates between rounds. A full run writes
``benchmarks/RESULTS.md`` and ``benchmarks/results.json``; other runs print the tables and
write only with ``--out DIR``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (python benchmarks/run.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from benchmarks import _envs
from omniq.testing.embedded import EmbeddedServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "peers"

TASK_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 90.0

# --------------------------------------------------------------------------- scenarios

SCENARIOS: dict[str, str] = {  # in the order of a round (floors first: E1 is judged by them)
    "floor": "Client floor (redis-py EVALSHA of `return 1`)",
    "ceiling": "Server ceiling (redis-benchmark EVALSHA of `return 1`)",
    "e1": "E1 enqueue sequential",
    "e2": "E2 enqueue bulk",
    "p1": "P1 process serial (concurrency 1)",
    "p2": "P2 process concurrent (concurrency 50)",
    "l1": "L1 latency, publish to handler start",
    "h1": "H1 heartbeats, 200 in-flight jobs",
    "h1k": "H1 heartbeats, 1,000 in-flight jobs (ours only)",
    "m1": "M1 memory per waiting job",
    "ev": "EV events cost: E1 and P2 with events on vs off (ours)",
    "jc": "JC job-control cost: E1 with dedup keys, P2 with a rate limit, vs without (ours)",
    "sc": "SC schedules cost: P2 on a queue with 1,000 active schedules vs without (ours)",
    "w1": "W1 wait() latency, ack to the waiter waking",
    "fi": "FI fan-in flow: one parent waiting for 1,000 children",
}
EV_SCENARIOS = ("e1", "p2")  # the hot paths whose events cost is measured
JC_SCENARIOS = ("dedup-e1", "rate-p2")  # job controls in use vs not (same measurement as EV)
SC_SCENARIOS = ("fire-p2", "idle-p2")  # 1,000 schedules firing / none due, vs no schedules
W1_WARMUP = 20  # W1: unmeasured publish-and-wait rounds first
W1_POLLED = ("arq/result", "saq/apply")  # waits that poll every 0.5 s: fewer warm-up jobs
W1_POLLED_WARMUP = 3
FI_METRICS = ("publish_ms", "flow_ms", "flows_per_s", "jobs_per_s", "script_us_per_job",
              "server_us_per_job", "server_cpu_us_per_job")


@dataclass
class Config:
    n: int = 10_000
    l1_n: int = 500
    l1_interval_s: float = 0.005
    h1_jobs: int = 200
    h1k_jobs: int = 1000
    h1_timeout_ms: int = 3000
    h1_settle_s: float = 1.5
    h1_window_s: float = 6.0
    m1_n: int = 100_000
    floor_pipelined_n: int = 100_000
    floor_batch: int = 1000
    bench_n: int = 100_000
    bench_c1_n: int = 20_000
    ev_e1_blocks: int = 8  # EV: blocks per state (on off off on ...), N jobs per state
    ev_p2_blocks: int = 2
    ev_repeats: int = 3  # EV measurements per round and scenario (JC and SC too)
    sc_schedules: int = 1000  # SC: active schedules on the measured queue
    w1_n: int = 500
    fi_children: int = 1000  # FI: children of the flow's parent
    fi_flows: int = 7  # FI: measured flows per measurement, one after the other
    fi_warmup: int = 3  # FI: unmeasured flows first (Node's JIT settles after about 3)
    fi_concurrency: int = 50


# --------------------------------------------------------------------------- implementations


@dataclass
class Impl:
    name: str
    label: str
    kind: str  # "ours", "peer", "floor", "ceiling"
    scenarios: tuple[str, ...]
    env: str | None = None  # peer venv name; "node" for Node
    module: str | None = None  # ours: python -m module; peers: script path
    n: dict[str, int] = field(default_factory=dict)  # per-scenario N overrides
    notes: dict[str, str] = field(default_factory=dict)
    w1_modes: tuple[str, ...] = ()  # W1: the ways this implementation waits for a result

    def command(self) -> tuple[list[str], Path, dict[str, str]]:
        if self.env is None:  # ours / floor: this interpreter, this repository
            return [sys.executable, "-m", str(self.module)], ROOT, _envs.clean_env()
        if self.env == "node":
            return ["node", str(_envs.NODE_DIR / "bench.mjs")], _envs.NODE_DIR, _envs.clean_env()
        python = _envs.venv_python(self.env)
        return [str(python), "-I", str(PEERS / str(self.module))], PEERS, _envs.clean_env()


IMPLS: list[Impl] = [
    Impl("omniq-async", "omniq (async API)", "ours",
         ("e1", "e2", "p1", "p2", "l1", "h1", "h1k", "m1", "ev", "jc", "sc", "w1", "fi"),
         module="benchmarks.peers.omniq_async", w1_modes=("wait",),
         notes={"w1/wait": "AsyncOmniq.wait: woken by the completed event (XREAD BLOCK)",
                "fi": "publish_flow; AsyncOmniq.wait on the parent; the parent reads "
                "ctx.children_results()"}),
    Impl("omniq-sync", "omniq (sync facade)", "ours", ("e1", "e2", "p1", "p2", "l1", "w1"),
         module="benchmarks.peers.omniq_sync", w1_modes=("wait",),
         notes={"w1/wait": "OmniqClient.wait (the async wait on the facade's loop thread); "
                "worker: consume with a def handler"}),
    Impl("official", "official omniq 4.0.0", "peer", ("e1", "e2", "p1", "p2", "l1", "h1", "m1"),
         env="official", module="peer_official.py", n={"p1": 5000, "p2": 5000},
         notes={"p2": "50 consume loops in 50 threads (no concurrency option)",
                "h1": "200 consume loops in 200 threads, a heartbeat thread per job"}),
    Impl("arq", "arq", "peer", ("e1", "e2", "p1", "p2", "l1", "w1"), env="arq",
         module="peer_arq.py", n={"p1": 500, "w1": 100}, w1_modes=("result",),
         notes={"p1": "poll_delay 10 ms; with max_jobs=1 arq starts one job per poll",
                "p2": "poll_delay 10 ms", "l1": "default poll_delay 0.5 s",
                "e2": "no bulk API: asyncio.gather by 1,000",
                "w1/result": "job.result() polls: default poll_delay 0.5 s (worker: defaults, "
                "0.5 s poll)"}),
    Impl("saq", "saq", "peer", ("e1", "e2", "p1", "p2", "l1", "w1"), env="saq",
         module="peer_saq.py", n={"p1": 5000, "w1/apply": 50}, w1_modes=("apply", "refresh"),
         notes={"e2": "no bulk API: asyncio.gather by 1,000",
                "w1/apply": "Queue.apply polls: default poll_interval 0.5 s, and sleeps one "
                "more interval after it has seen the result (the loop of saq 0.26.4's map)",
                "w1/refresh": "enqueue, then Job.refresh(until_complete=5): pub/sub on the "
                "job's channel; a notification that comes between refresh's read and its "
                "subscription is missed, and refresh then waits out the 5 s"}),
    Impl("taskiq", "taskiq + taskiq-redis", "peer", ("e1", "e2", "p1", "p2", "l1"),
         env="taskiq", module="peer_taskiq.py",
         notes={"e2": "no bulk API: asyncio.gather by 1,000",
                "p1": "RedisStreamBroker (acks)", "p2": "RedisStreamBroker (acks)"}),
    Impl("rq", "rq (SimpleWorker)", "peer", ("e1", "e2", "p1", "p2", "l1"), env="rq",
         module="peer_rq.py", n={"p1": 2000},
         notes={"e2": "enqueue_many (pipeline)"}),
    Impl("bullmq-py", "BullMQ (Python)", "peer", ("e1", "e2", "p1", "p2", "l1", "fi"),
         env="bullmq", module="peer_bullmq.py",
         notes={"e2": "addBulk",
                "fi": "FlowProducer.add; the parent's completed event from QueueEvents; "
                "the parent reads job.getChildrenValues()"}),
    Impl("bullmq-node", "BullMQ (Node)", "peer", ("e1", "e2", "p1", "p2", "l1", "fi"),
         env="node",
         notes={"e2": "addBulk",
                "fi": "FlowProducer.add; job.waitUntilFinished(QueueEvents) on the parent; "
                "the parent reads job.getChildrenValues()"}),
    Impl("floor", "redis-py EVALSHA floor", "floor", ("floor",),
         module="benchmarks.peers.floor"),
    Impl("redis-benchmark", "redis-benchmark", "ceiling", ("ceiling",)),
]
IMPL_BY_NAME = {i.name: i for i in IMPLS}
QUICK_IMPLS = ("omniq-async", "omniq-sync", "floor")

# --------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def fresh_server() -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(kind="redis")
    server.start()
    try:
        with redis.Redis.from_url(server.url) as r:
            r.flushall()
            r.script_flush()
        yield server
    finally:
        server.stop()


def _result_line(text: str, prefix: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        if line.startswith(prefix):
            parsed: dict[str, Any] = json.loads(line[len(prefix):])
            return parsed
    return None


def _server_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_process(impl: Impl, params: dict[str, Any], timeout: float = TASK_TIMEOUT_S,
                ) -> dict[str, Any]:
    cmd, cwd, env = impl.command()
    cpu0 = _children_cpu()
    try:
        proc = subprocess.run([*cmd, json.dumps(params)], cwd=cwd, env=env, timeout=timeout,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    result = _result_line(proc.stdout, "BENCH-RESULT ")
    if result is None:
        tail = (proc.stderr or proc.stdout)[-1500:]
        return {"error": f"no result (exit {proc.returncode}): {tail}"}
    if "error" in result:
        result["stderr"] = proc.stderr[-1500:]
    result["client_cpu_s"] = _children_cpu() - cpu0
    return result


class Child:
    """A scenario process we talk to: reads its stdout lines in a thread."""

    def __init__(self, impl: Impl, params: dict[str, Any]) -> None:
        cmd, cwd, env = impl.command()
        self.proc = subprocess.Popen([*cmd, json.dumps(params)], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: list[str] = []
        self.err: list[str] = []
        self.stdout_closed = False
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream: Any, sink: list[str]) -> None:
        for line in stream:
            with self._cond:
                sink.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            if sink is self.lines:
                self.stdout_closed = True
            self._cond.notify_all()

    def wait_line(self, prefix: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        parsed: dict[str, Any] = json.loads(line[len(prefix):])
                        return parsed
                left = deadline - time.monotonic()
                if left <= 0 or self.stdout_closed:
                    return None
                self._cond.wait(min(left, 0.2))

    def send(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(text)
            self.proc.stdin.flush()

    def finish(self, timeout: float = 15.0) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for t in self._readers:  # at EOF once the process is gone
            t.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def stderr_tail(self) -> str:
        return "\n".join(self.err[-20:])


# --------------------------------------------------------------------------- measurements


def measure_simple(impl: Impl, scenario: str, cfg: Config, n: int | None = None,
                   **extra: Any) -> dict[str, Any]:
    n = n or impl.n.get(scenario, cfg.n)
    with fresh_server() as srv, redis.Redis.from_url(srv.url) as r:
        cpu = _server_cpu(r)
        result = run_process(impl, {"scenario": scenario, "url": srv.url, "n": n, **extra})
        result["server_cpu_s"] = _server_cpu(r) - cpu
    return result


def measure_ev(impl: Impl, sub: str, cfg: Config) -> dict[str, Any]:
    """Events on vs off in one process on one server, alternating blocks (ev_e1, ev_p2).
    E1: N publishes per state in ``ev_e1_blocks`` blocks; P2: ``ev_p2_blocks`` drains per
    state of N jobs each (each drain a whole P2: smaller drains measured a larger and less
    steady cost)."""
    if sub == "e1":
        return measure_simple(impl, "ev_e1", cfg, blocks=cfg.ev_e1_blocks)
    return measure_simple(impl, "ev_p2", cfg, n=cfg.n * cfg.ev_p2_blocks,
                          blocks=cfg.ev_p2_blocks)


def measure_jc(impl: Impl, sub: str, cfg: Config) -> dict[str, Any]:
    """A job control in use vs not, as ``measure_ev``: E1 with a dedup key per job; P2 on a
    queue with an active rate limit that never binds."""
    if sub == "dedup-e1":
        return measure_simple(impl, "jc_dedup_e1", cfg, blocks=cfg.ev_e1_blocks)
    return measure_simple(impl, "jc_rate_p2", cfg, n=cfg.n * cfg.ev_p2_blocks,
                          blocks=cfg.ev_p2_blocks)


def measure_sc(impl: Impl, sub: str, cfg: Config) -> dict[str, Any]:
    """P2 on a queue with ``cfg.sc_schedules`` active schedules vs on one without, as
    ``measure_jc`` (a default, running worker in both: a draining one does not run its
    scheduler): "fire-p2" one schedule due every 60 ms during the runs, "idle-p2" none."""
    return measure_simple(impl, "sc_p2", cfg, n=cfg.n * cfg.ev_p2_blocks,
                          blocks=cfg.ev_p2_blocks, variant=sub.split("-")[0],
                          schedules=cfg.sc_schedules)


def measure_w1(impl: Impl, mode: str, cfg: Config) -> dict[str, Any]:
    """W1: an idle worker process; a second process publishes a job and waits for its
    result, n times one after the other (after 20 unmeasured warm-up jobs)."""
    n = impl.n.get(f"w1/{mode}", impl.n.get("w1", cfg.w1_n))
    warmup = W1_POLLED_WARMUP if f"{impl.name}/{mode}" in W1_POLLED else W1_WARMUP
    with fresh_server() as srv:
        worker = Child(impl, {"scenario": "w1_worker", "url": srv.url})
        try:
            info = worker.wait_line("BENCH-READY ", READY_TIMEOUT_S)
            if info is None:
                return {"error": f"worker not ready: {worker.stderr_tail()}"}
            result = run_process(impl, {"scenario": "w1_wait", "url": srv.url, "n": n,
                                        "mode": mode, "warmup": warmup})
            worker.send("stop\n")
            done = worker.wait_line("BENCH-RESULT ", 30.0)
            result["worker"] = done if done is not None else {"error": worker.stderr_tail()}
            return result
        finally:
            worker.finish()


def measure_fi(impl: Impl, cfg: Config) -> dict[str, Any]:
    """FI: an idle worker process (concurrency 50) on the flow queue; a second process
    publishes one flow (a parent and N children) and waits for the parent, ``fi_flows``
    times one after the other (after ``fi_warmup`` unmeasured flows)."""
    n = impl.n.get("fi", cfg.fi_children)
    with fresh_server() as srv:
        worker = Child(impl, {"scenario": "fi_worker", "url": srv.url, "n": n,
                              "concurrency": cfg.fi_concurrency})
        try:
            info = worker.wait_line("BENCH-READY ", READY_TIMEOUT_S)
            if info is None:
                return {"error": f"worker not ready: {worker.stderr_tail()}"}
            result = run_process(impl, {"scenario": "fi_publish", "url": srv.url, "n": n,
                                        "flows": cfg.fi_flows, "warmup": cfg.fi_warmup})
            worker.send("stop\n")
            done = worker.wait_line("BENCH-RESULT ", 30.0)
            result["worker"] = done if done is not None else {"error": worker.stderr_tail()}
            return result
        finally:
            worker.finish()


def measure_l1(impl: Impl, cfg: Config) -> dict[str, Any]:
    with fresh_server() as srv:
        worker = Child(impl, {"scenario": "l1_worker", "url": srv.url, "n": cfg.l1_n})
        try:
            info = worker.wait_line("BENCH-READY ", READY_TIMEOUT_S)
            if info is None:
                return {"error": f"worker not ready: {worker.stderr_tail()}"}
            pub = run_process(impl, {"scenario": "l1_publish", "url": srv.url, "n": cfg.l1_n,
                                     "interval_s": cfg.l1_interval_s})
            if "error" in pub:
                return {"error": f"publisher: {pub['error']}"}
            result = worker.wait_line("BENCH-RESULT ", 90.0)
            if result is None:
                return {"error": f"no worker result: {worker.stderr_tail()}"}
            result["publisher"] = pub
            result.update({k: v for k, v in info.items() if k not in result})
            return result
        finally:
            worker.finish()


def _monitor(url: str, shas: set[str], stop: threading.Event, out: dict[str, Any]) -> None:
    """Record client commands with MONITOR: (server time, is a heartbeat call, leases).

    Commands a script runs show up as client "lua" and are not client commands. The
    runner's own INFO probes are left out. The caller wakes this thread with a PING after
    setting ``stop`` and keeps only the commands inside its window."""
    r = redis.Redis.from_url(url)
    seen: list[tuple[float, bool, int]] = []
    out["seen"] = seen
    try:
        with r.monitor() as m:
            out["started"] = True
            while not stop.is_set():
                cmd = m.next_command()
                if cmd is None or cmd.get("client_type") == "lua":
                    continue
                parts = str(cmd.get("command", "")).split(" ")
                name = parts[0].upper() if parts else ""
                if name in ("INFO", "MONITOR"):
                    continue
                if name in ("EVALSHA", "FCALL") and len(parts) > 1 and parts[1] in shas:
                    # ours: FCALL function 1 key now count (id token)*count (EVALSHA sha ...
                    # on a cluster); official: EVALSHA, one lease
                    count = parts[5] if len(parts) > 5 else ""
                    many = count.isdigit() and len(parts) == 6 + 2 * int(count)
                    seen.append((float(cmd["time"]), True, int(count) if many else 1))
                else:
                    seen.append((float(cmd["time"]), False, 0))
    except Exception as exc:  # report, do not crash the run
        out["error"] = f"monitor: {exc}"
    finally:
        with contextlib.suppress(Exception):
            r.close()


def _commandstats(r: redis.Redis) -> dict[str, int]:
    raw = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in raw.items()}


def measure_h1(impl: Impl, cfg: Config, jobs: int) -> dict[str, Any]:
    """In-flight jobs whose handlers block: what do their heartbeats cost per tick?

    A tick is the time in which every in-flight lease is extended once, measured as
    (leases extended in the window) / (jobs in flight), so the implementations' different
    intervals and phases do not matter."""
    with fresh_server() as srv, redis.Redis.from_url(srv.url) as r:
        child = Child(impl, {"scenario": "h1", "url": srv.url, "jobs": jobs,
                             "timeout_ms": cfg.h1_timeout_ms})
        try:
            info = child.wait_line("BENCH-READY ", READY_TIMEOUT_S)
            if info is None:
                return {"error": f"not ready: {child.stderr_tail()}"}
            time.sleep(cfg.h1_settle_s)
            stop = threading.Event()
            mon: dict[str, Any] = {}
            thread = threading.Thread(target=_monitor,
                                      args=(srv.url, set(info["hb_shas"]), stop, mon))
            thread.start()
            deadline = time.monotonic() + 5
            while "started" not in mon and "error" not in mon and time.monotonic() < deadline:
                time.sleep(0.01)
            before = _commandstats(r)
            w0 = time.time()
            time.sleep(cfg.h1_window_s)
            w1 = time.time()
            after = _commandstats(r)
            window = w1 - w0
            stop.set()
            r.ping()  # wakes the MONITOR reader
            thread.join(10)
            child.send("stop\n")
            child.wait_line("BENCH-RESULT ", 30.0)
        finally:
            child.finish()
    if "error" in mon:
        return {"error": mon["error"]}
    seen = [x for x in mon.get("seen", []) if w0 <= x[0] <= w1]
    mon["hb_calls"] = sum(1 for x in seen if x[1])
    mon["hb_leases"] = sum(x[2] for x in seen if x[1])
    mon["client_cmds"] = len(seen)
    deltas = {k: after.get(k, 0) - before.get(k, 0) for k in after if k not in ("info",)}
    deltas = {k: v for k, v in deltas.items() if v}
    in_flight = int(info.get("in_flight") or jobs)
    ticks = mon["hb_leases"] / in_flight if in_flight else 0.0
    if ticks <= 0 or not mon["hb_calls"]:
        return {"error": "no heartbeat seen in the window"}
    return {
        "jobs": jobs,
        "in_flight": in_flight,
        "window_s": window,
        "hb_interval_s": info["hb_interval_s"],
        "observed_interval_s": window / ticks,
        "ticks": ticks,
        "hb_calls": mon["hb_calls"],
        "hb_calls_per_tick": mon["hb_calls"] / ticks,
        "hb_leases_per_call": mon["hb_leases"] / mon["hb_calls"],
        "client_commands_per_tick": mon["client_cmds"] / ticks,
        # script calls (EVALSHA, and FCALL: ours calls the queue scripts as functions)
        "evalsha_per_tick": (deltas.get("evalsha", 0) + deltas.get("fcall", 0)) / ticks,
        "commandstats_per_tick": sum(deltas.values()) / ticks,
        "commandstats": deltas,
    }


def _used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def measure_m1(impl: Impl, cfg: Config) -> dict[str, Any]:
    """used_memory before and after publishing; then FLUSHALL + SCRIPT FLUSH shows what part
    of the growth is not the jobs (script cache, buffers kept after large calls)."""
    with fresh_server() as srv, redis.Redis.from_url(srv.url) as r:
        r.ping()
        before = _used_memory(r)
        result = run_process(impl, {"scenario": "m1", "url": srv.url, "n": cfg.m1_n})
        if "error" in result:
            return result
        time.sleep(0.2)  # let the server free the publishers' client buffers
        after = _used_memory(r)
        keys = int(r.dbsize())
        r.script_flush()
        r.flushall()
        time.sleep(0.2)
        left = _used_memory(r) - before
        result.update(used_memory_before=before, used_memory_after=after, keys=keys,
                      bytes_per_job=(after - before) / cfg.m1_n, not_keyspace_bytes=left,
                      keyspace_bytes_per_job=(after - before - left) / cfg.m1_n)
    return result


def measure_floor(impl: Impl, variant: str, cfg: Config) -> dict[str, Any]:
    n = cfg.floor_pipelined_n if variant == "pipelined" else cfg.n
    params: dict[str, Any] = {"scenario": variant, "n": n}
    if variant == "pipelined":
        params["batch"] = cfg.floor_batch
    with fresh_server() as srv:
        params["url"] = srv.url
        return run_process(impl, params)


def measure_ceiling(variant: str, cfg: Config) -> dict[str, Any]:
    pipeline, clients = {"P1": (1, 50), "P16": (16, 50), "P1-c1": (1, 1)}[variant]
    n = cfg.bench_c1_n if clients == 1 else cfg.bench_n
    with fresh_server() as srv, redis.Redis.from_url(srv.url) as r:
        sha = r.script_load("return 1")
        cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(srv.port), "-n", str(n),
               "-c", str(clients), "-P", str(pipeline), "--csv", "evalsha", sha, "0"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TASK_TIMEOUT_S)
    rows = [line for line in proc.stdout.splitlines() if line.startswith('"evalsha')]
    if not rows:
        return {"error": f"redis-benchmark: {proc.stdout[-500:]} {proc.stderr[-500:]}"}
    cols = [c.strip('"') for c in rows[-1].split('","')]
    return {"n": n, "clients": clients, "pipeline": pipeline, "ops": float(cols[1]),
            "p50_ms": float(cols[4]), "p99_ms": float(cols[6]),
            "command": " ".join([*cmd[:-3], "evalsha", "<sha>", "0"])}


FLOOR_VARIANTS = ("seq", "pipelined", "seq_sync")
CEILING_VARIANTS = ("P1", "P16", "P1-c1")


def plan_round(impls: list[Impl], scenarios: list[str], round_no: int,
               cfg: Config) -> list[tuple[str, str, str, Callable[[], dict[str, Any]]]]:
    """(impl, scenario, variant, thunk) for one round, scenario-major, rotated impl order."""
    tasks: list[tuple[str, str, str, Callable[[], dict[str, Any]]]] = []
    k = round_no % max(1, len(impls))
    order = impls[k:] + impls[:k]
    for scenario in scenarios:
        for impl in order:
            if scenario not in impl.scenarios:
                continue
            if scenario in ("e1", "e2", "p1", "p2"):
                tasks.append((impl.name, scenario, "",
                              lambda i=impl, s=scenario: measure_simple(i, s, cfg)))
            elif scenario == "l1":
                tasks.append((impl.name, scenario, "", lambda i=impl: measure_l1(i, cfg)))
            elif scenario == "h1":
                tasks.append((impl.name, scenario, "",
                              lambda i=impl: measure_h1(i, cfg, cfg.h1_jobs)))
            elif scenario == "h1k":
                tasks.append((impl.name, scenario, "",
                              lambda i=impl: measure_h1(i, cfg, cfg.h1k_jobs)))
            elif scenario == "m1":
                tasks.append((impl.name, scenario, "", lambda i=impl: measure_m1(i, cfg)))
            elif scenario == "ev":
                for _ in range(cfg.ev_repeats):
                    for sub in EV_SCENARIOS:
                        tasks.append((impl.name, scenario, sub,
                                      lambda i=impl, v=sub: measure_ev(i, v, cfg)))
            elif scenario == "jc":
                for _ in range(cfg.ev_repeats):
                    for sub in JC_SCENARIOS:
                        tasks.append((impl.name, scenario, sub,
                                      lambda i=impl, v=sub: measure_jc(i, v, cfg)))
            elif scenario == "sc":
                for _ in range(cfg.ev_repeats):
                    for sub in SC_SCENARIOS:
                        tasks.append((impl.name, scenario, sub,
                                      lambda i=impl, v=sub: measure_sc(i, v, cfg)))
            elif scenario == "w1":
                for mode in impl.w1_modes:
                    tasks.append((impl.name, scenario, mode,
                                  lambda i=impl, m=mode: measure_w1(i, m, cfg)))
            elif scenario == "fi":
                tasks.append((impl.name, scenario, "", lambda i=impl: measure_fi(i, cfg)))
            elif scenario == "floor":
                for v in FLOOR_VARIANTS:
                    tasks.append((impl.name, scenario, v,
                                  lambda i=impl, v=v: measure_floor(i, v, cfg)))
            elif scenario == "ceiling":
                for v in CEILING_VARIANTS:
                    tasks.append((impl.name, scenario, v,
                                  lambda v=v: measure_ceiling(v, cfg)))
    return tasks


# --------------------------------------------------------------------------- aggregation


def primary(scenario: str, result: dict[str, Any]) -> dict[str, float]:
    """The numbers that get medians, by scenario."""
    if "error" in result or "na" in result:
        return {}
    if scenario == "l1":
        return {"p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"]}
    if scenario in ("ev", "jc", "sc"):
        sc = ("scheduled_per_s", "script_calls_on", "script_calls_off")
        extra = sc if scenario == "sc" else ()
        return {k: result[k] for k in (
            "ratio", "on_ops", "off_ops", "script_us_per_job_on", "script_us_per_job_off",
            "xadd_us_per_job_on", "client_us_per_job_on", "client_us_per_job_off", *extra)}
    if scenario == "w1":
        return {k: result[k] for k in ("p50_ms", "p99_ms", "rt_p50_ms", "rt_p99_ms",
                                       "missed_wakeups") if k in result}
    if scenario in ("h1", "h1k"):
        return {k: result[k] for k in ("hb_calls_per_tick", "client_commands_per_tick",
                                       "commandstats_per_tick", "observed_interval_s")}
    if scenario == "m1":
        return {k: result[k] for k in ("bytes_per_job", "keyspace_bytes_per_job",
                                       "not_keyspace_bytes")}
    if scenario == "fi":
        return {k: result[k] for k in FI_METRICS if result.get(k) is not None}
    if scenario == "floor" and "p50_ms" in result:
        return {"ops": result["ops"], "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"]}
    return {"ops": result["ops"]}


def summarize(raw: list[dict[str, Any]]) -> dict[str, Any]:
    """{key: {metric: {median, min, max, values}}}, key = impl/scenario[/variant]."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in raw:
        key = "/".join(x for x in (rec["impl"], rec["scenario"], rec["variant"]) if x)
        groups.setdefault(key, []).append(rec)
    out: dict[str, Any] = {}
    for key, recs in groups.items():
        metrics: dict[str, list[float]] = {}
        notes = set()
        for rec in recs:
            res = rec["result"]
            if "na" in res:
                notes.add("n/a: " + _cell(res["na"]))
            if "error" in res:
                notes.add("error: " + _cell(str(res["error"])[-300:]))
            for m, v in primary(rec["scenario"], res).items():
                metrics.setdefault(m, []).append(float(v))
        out[key] = {
            "n": next((r["result"].get("n") for r in recs if "n" in r["result"]), None),
            "rounds": len(recs),
            "metrics": {m: {"median": statistics.median(v), "min": min(v), "max": max(v),
                            "values": v} for m, v in metrics.items()},
            "notes": sorted(notes),
        }
    return out


# --------------------------------------------------------------------------- report


def _cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return " ".join(text.replace("|", "/").split())


def fmt_num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def _get(summary: dict[str, Any], key: str, metric: str) -> float | None:
    entry = summary.get(key)
    if not entry or metric not in entry["metrics"]:
        return None
    value: float = entry["metrics"][metric]["median"]
    return value


def best_peer(summary: dict[str, Any], scenario: str, metric: str, higher: bool,
              impls: list[Impl]) -> tuple[str | None, float | None]:
    best: tuple[str | None, float | None] = (None, None)
    for impl in impls:
        if impl.kind != "peer":
            continue
        v = _get(summary, f"{impl.name}/{scenario}", metric)
        if v is None:
            continue
        if best[1] is None or (v > best[1] if higher else v < best[1]):
            best = (impl.name, v)
    return best


def floor_of(summary: dict[str, Any], scenario: str, impl: Impl) -> tuple[str, float | None]:
    """The floor a scenario's row is compared with."""
    if scenario == "e2":
        return "pipelined", _get(summary, "floor/floor/pipelined", "ops")
    if impl.name == "omniq-sync" and scenario == "e1":
        return "seq_sync", _get(summary, "floor/floor/seq_sync", "ops")
    return "seq", _get(summary, "floor/floor/seq", "ops")


def throughput_table(summary: dict[str, Any], scenario: str, impls: list[Impl]) -> list[str]:
    bname, bval = best_peer(summary, scenario, "ops", True, impls)
    lines = [
        "| implementation | N | ops/s (median) | min - max | vs best peer | vs floor | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for impl in impls:
        if scenario not in impl.scenarios:
            continue
        entry = summary.get(f"{impl.name}/{scenario}")
        if entry is None:
            continue
        m = entry["metrics"].get("ops")
        notes = [impl.notes.get(scenario, "")] + entry["notes"]
        note = "; ".join(x for x in notes if x)
        if m is None:
            lines.append(f"| {impl.label} | {fmt_num(entry['n'])} | n/a | | | | {note} |")
            continue
        fname, fval = floor_of(summary, scenario, impl)
        vs_best = f"{m['median'] / bval:.2f}x" if bval else "-"
        vs_floor = f"{m['median'] / fval:.2f}x ({fname})" if fval else "-"
        best_mark = " **best peer**" if impl.name == bname else ""
        lines.append(
            f"| {impl.label}{best_mark} | {fmt_num(entry['n'])} | {fmt_num(m['median'])} | "
            f"{fmt_num(m['min'])} - {fmt_num(m['max'])} | {vs_best} | {vs_floor} | {note} |"
        )
    return lines


def latency_table(summary: dict[str, Any], impls: list[Impl]) -> list[str]:
    _, b50 = best_peer(summary, "l1", "p50_ms", False, impls)
    floor50 = _get(summary, "floor/floor/seq", "p50_ms")
    floor99 = _get(summary, "floor/floor/seq", "p99_ms")
    lines = [
        "| implementation | p50 ms (median) | p50 min - max | p99 ms (median) | p99 min - max "
        "| p50 vs best peer | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for impl in impls:
        entry = summary.get(f"{impl.name}/l1")
        if entry is None:
            continue
        m50 = entry["metrics"].get("p50_ms")
        m99 = entry["metrics"].get("p99_ms")
        notes = [impl.notes.get("l1", "")] + entry["notes"]
        note = "; ".join(x for x in notes if x)
        if m50 is None or m99 is None:
            lines.append(f"| {impl.label} | n/a | | | | | {note} |")
            continue
        vs = f"{m50['median'] / b50:.2f}x" if b50 else "-"
        lines.append(
            f"| {impl.label} | {m50['median']:.3f} | {m50['min']:.3f} - {m50['max']:.3f} | "
            f"{m99['median']:.3f} | {m99['min']:.3f} - {m99['max']:.3f} | {vs} | {note} |"
        )
    if floor50 is not None and floor99 is not None:
        lines.append(f"| floor: one redis.asyncio EVALSHA round trip | {floor50:.3f} | | "
                     f"{floor99:.3f} | | | per-call latency in the sequential floor loop |")
    return lines


def h1_table(summary: dict[str, Any], raw: list[dict[str, Any]], impls: list[Impl]) -> list[str]:
    lines = [
        "| implementation | in-flight jobs | heartbeat interval (configured / observed) "
        "| heartbeat round trips per tick (median, min - max) | leases per heartbeat command "
        "| client commands per tick | commandstats calls per tick (incl. inside scripts) "
        "| notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scenario in ("h1", "h1k"):
        for impl in impls:
            entry = summary.get(f"{impl.name}/{scenario}")
            if entry is None:
                continue
            recs = [r["result"] for r in raw
                    if r["impl"] == impl.name and r["scenario"] == scenario
                    and "error" not in r["result"]]
            met = entry["metrics"]
            notes = [impl.notes.get(scenario, ""), *entry["notes"]]
            if not recs or "hb_calls_per_tick" not in met:
                lines.append(f"| {impl.label} | | | error | | | | {'; '.join(notes)} |")
                continue
            last = recs[-1]
            hb = met["hb_calls_per_tick"]
            cmds = ", ".join(f"{k} {v}" for k, v in sorted(last["commandstats"].items()))
            notes.append(f"commandstats of the last window: {cmds}")
            lines.append(
                f"| {impl.label} | {last['jobs']} | {last['hb_interval_s']:.2f} s / "
                f"{met['observed_interval_s']['median']:.2f} s | "
                f"{hb['median']:.2f} ({hb['min']:.2f} - {hb['max']:.2f}) | "
                f"{last['hb_leases_per_call']:.0f} | "
                f"{met['client_commands_per_tick']['median']:.2f} | "
                f"{met['commandstats_per_tick']['median']:.0f} | "
                f"{'; '.join(x for x in notes if x)} |"
            )
    return lines


def m1_table(summary: dict[str, Any], raw: list[dict[str, Any]], impls: list[Impl]) -> list[str]:
    lines = [
        "| implementation | waiting jobs | used_memory growth per job (median, min - max) "
        "| of which the jobs themselves, per job | growth that is not the keyspace | keys |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for impl in impls:
        entry = summary.get(f"{impl.name}/m1")
        if entry is None:
            continue
        met = entry["metrics"]
        recs = [r["result"] for r in raw if r["impl"] == impl.name and r["scenario"] == "m1"
                and "keys" in r["result"]]
        keys = fmt_num(recs[-1]["keys"]) if recs else "-"
        if "bytes_per_job" not in met:
            lines.append(f"| {impl.label} | | error | | | {'; '.join(entry['notes'])} |")
            continue
        m, k, o = met["bytes_per_job"], met["keyspace_bytes_per_job"], met["not_keyspace_bytes"]
        lines.append(f"| {impl.label} | {fmt_num(entry['n'])} | {m['median']:.1f} "
                     f"({m['min']:.1f} - {m['max']:.1f}) | {k['median']:.1f} "
                     f"({k['min']:.1f} - {k['max']:.1f}) | {o['median'] / 1024:.0f} KiB | "
                     f"{keys} |")
    return lines


def floor_tables(summary: dict[str, Any], raw: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| measurement | N | ops/s (median) | min - max | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "floor/floor/seq": "redis.asyncio EVALSHA, sequential (awaited one at a time)",
        "floor/floor/pipelined": "redis.asyncio EVALSHA, pipelines of 1,000",
        "floor/floor/seq_sync": "redis-py (blocking) EVALSHA, sequential",
        "redis-benchmark/ceiling/P1": "redis-benchmark -c 50 -P 1",
        "redis-benchmark/ceiling/P16": "redis-benchmark -c 50 -P 16",
        "redis-benchmark/ceiling/P1-c1": "redis-benchmark -c 1 -P 1 (one connection)",
    }
    for key, label in labels.items():
        entry = summary.get(key)
        if entry is None or "ops" not in entry["metrics"]:
            continue
        m = entry["metrics"]["ops"]
        p50 = entry["metrics"].get("p50_ms", {}).get("median")
        p99 = entry["metrics"].get("p99_ms", {}).get("median")
        if p50 is None:
            recs = [r["result"] for r in raw
                    if "/".join(x for x in (r["impl"], r["scenario"], r["variant"]) if x) == key
                    and "p50_ms" in r["result"]]
            p50 = statistics.median([x["p50_ms"] for x in recs]) if recs else None
            p99 = statistics.median([x["p99_ms"] for x in recs]) if recs else None
        lines.append(f"| {label} | {fmt_num(entry['n'])} | {fmt_num(m['median'])} | "
                     f"{fmt_num(m['min'])} - {fmt_num(m['max'])} | "
                     f"{'-' if p50 is None else f'{p50:.3f}'} | "
                     f"{'-' if p99 is None else f'{p99:.3f}'} |")
    return lines


def ev_cost(summary: dict[str, Any], sub: str, family: str = "ev") -> dict[str, Any] | None:
    """On vs off for one scenario of EV (events), JC (job controls) or SC (schedules): the
    median over the measurements of on/off."""
    entry = summary.get(f"omniq-async/{family}/{sub}")
    if entry is None or "ratio" not in entry["metrics"]:
        return None
    met = entry["metrics"]
    ratio = met["ratio"]["median"]
    return {"n": entry["n"], "count": len(met["ratio"]["values"]),
            "ratios": met["ratio"]["values"], "ratio": ratio, "cost": 1.0 - ratio,
            "time_cost": 1.0 / ratio - 1.0, "on": met["on_ops"], "off": met["off_ops"],
            **{k: met[k]["median"] for k in (
                "script_us_per_job_on", "script_us_per_job_off", "xadd_us_per_job_on",
                "client_us_per_job_on", "client_us_per_job_off", "scheduled_per_s",
                "script_calls_on", "script_calls_off") if k in met}}


def ev_table(summary: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | N per state | events on, ops/s (median, min - max) "
        "| events off (median, min - max) | on/off per measurement | on/off (median) "
        "| throughput cost | time per job | server: script us/job on / off (XADD) "
        "| client CPU us/job on / off |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for sub in EV_SCENARIOS:
        c = ev_cost(summary, sub)
        if c is None:
            continue
        on, off = c["on"], c["off"]
        per = ", ".join(f"{x:.3f}" for x in c["ratios"])
        lines.append(
            f"| {sub.upper()} | {fmt_num(c['n'])} | {fmt_num(on['median'])} "
            f"({fmt_num(on['min'])} - {fmt_num(on['max'])}) | {fmt_num(off['median'])} "
            f"({fmt_num(off['min'])} - {fmt_num(off['max'])}) | {per} | {c['ratio']:.3f} | "
            f"{c['cost'] * 100:+.1f}% | {c['time_cost'] * 100:+.1f}% | "
            f"{c.get('script_us_per_job_on', 0):.1f} / {c.get('script_us_per_job_off', 0):.1f} "
            f"({c.get('xadd_us_per_job_on', 0):.1f}) | {c.get('client_us_per_job_on', 0):.1f} / "
            f"{c.get('client_us_per_job_off', 0):.1f} |")
    return lines


def jc_table(summary: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | control in use | N per state | with it, ops/s (median, min - max) "
        "| without (median, min - max) | with/without per measurement | (median) "
        "| throughput cost | server: script us/job with / without "
        "| client CPU us/job with / without |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    what = {"dedup-e1": "E1, a distinct `dedup_key` per job",
            "rate-p2": "P2, a queue-wide rate limit of 10^6 jobs/s (never binding)"}
    for sub in JC_SCENARIOS:
        c = ev_cost(summary, sub, "jc")
        if c is None:
            continue
        on, off = c["on"], c["off"]
        per = ", ".join(f"{x:.3f}" for x in c["ratios"])
        lines.append(
            f"| {sub.split('-')[1].upper()} | {what[sub]} | {fmt_num(c['n'])} | "
            f"{fmt_num(on['median'])} ({fmt_num(on['min'])} - {fmt_num(on['max'])}) | "
            f"{fmt_num(off['median'])} ({fmt_num(off['min'])} - {fmt_num(off['max'])}) | "
            f"{per} | {c['ratio']:.3f} | {c['cost'] * 100:+.1f}% | "
            f"{c.get('script_us_per_job_on', 0):.1f} / {c.get('script_us_per_job_off', 0):.1f} | "
            f"{c.get('client_us_per_job_on', 0):.1f} / {c.get('client_us_per_job_off', 0):.1f} |")
    return lines


def sc_table(summary: dict[str, Any], raw: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | the queue's schedules | N per state | with them, ops/s (median, "
        "min - max) | without (median, min - max) | with/without per measurement "
        "| (median) | throughput cost | scheduled jobs run per s (with) "
        "| scheduler script calls (with - without) "
        "| server: script us/job with / without | client CPU us/job with / without |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for sub in SC_SCENARIOS:
        c = ev_cost(summary, sub, "sc")
        if c is None:
            continue
        recs = [r["result"] for r in raw if r["impl"] == "omniq-async"
                and r["scenario"] == "sc" and r["variant"] == sub and "ratio" in r["result"]]
        count = recs[-1].get("schedules", 1000) if recs else 1000
        what = (f"{count:,}, one due every 60 ms (each every {count * 60 / 1000:.0f} s)"
                if sub.startswith("fire") else f"{count:,}, none due (the first an hour away)")
        on, off = c["on"], c["off"]
        per = ", ".join(f"{x:.3f}" for x in c["ratios"])
        calls = c.get("script_calls_on", 0) - c.get("script_calls_off", 0)
        lines.append(
            f"| {sub.split('-')[0]} | {what} | {fmt_num(c['n'])} | "
            f"{fmt_num(on['median'])} ({fmt_num(on['min'])} - {fmt_num(on['max'])}) | "
            f"{fmt_num(off['median'])} ({fmt_num(off['min'])} - {fmt_num(off['max'])}) | "
            f"{per} | {c['ratio']:.3f} | {c['cost'] * 100:+.1f}% | "
            f"{c.get('scheduled_per_s', 0):.1f} | {calls:+.0f} | "
            f"{c.get('script_us_per_job_on', 0):.1f} / {c.get('script_us_per_job_off', 0):.1f} | "
            f"{c.get('client_us_per_job_on', 0):.1f} / {c.get('client_us_per_job_off', 0):.1f} |")
    return lines


def w1_table(summary: dict[str, Any], impls: list[Impl]) -> list[str]:
    lines = [
        "| implementation | wait | N | ack to wake p50 ms (median, min - max) "
        "| p99 ms (median, min - max) | publish to result p50 ms | p99 ms | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for impl in impls:
        for mode in impl.w1_modes:
            entry = summary.get(f"{impl.name}/w1/{mode}")
            if entry is None:
                continue
            met = entry["metrics"]
            notes = [impl.notes.get(f"w1/{mode}", "")] + entry["notes"]
            if "missed_wakeups" in met:
                vals = ", ".join(f"{x:.0f}" for x in met["missed_wakeups"]["values"])
                notes.append(f"missed wake-ups per round: {vals} of {fmt_num(entry['n'])}")
            note = "; ".join(x for x in notes if x)
            if "p50_ms" not in met:
                lines.append(f"| {impl.label} | {mode} | | error | | | | {note} |")
                continue
            p50, p99 = met["p50_ms"], met["p99_ms"]
            lines.append(
                f"| {impl.label} | {mode} | {fmt_num(entry['n'])} | {p50['median']:.3f} "
                f"({p50['min']:.3f} - {p50['max']:.3f}) | {p99['median']:.3f} "
                f"({p99['min']:.3f} - {p99['max']:.3f}) | {met['rt_p50_ms']['median']:.3f} | "
                f"{met['rt_p99_ms']['median']:.3f} | {note} |")
    return lines


def fi_table(summary: dict[str, Any], impls: list[Impl]) -> list[str]:
    _, best = best_peer(summary, "fi", "flow_ms", False, impls)
    lines = [
        "| implementation | children | publish ms (median, min - max) "
        "| flow ms: publish to parent completed (median, min - max) | flows/s | jobs/s "
        "| flow time vs best peer | server: script us/job | all commands us/job "
        "| server CPU us/job | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for impl in impls:
        entry = summary.get(f"{impl.name}/fi")
        if entry is None:
            continue
        met = entry["metrics"]
        note = "; ".join(x for x in [impl.notes.get("fi", ""), *entry["notes"]] if x)
        if "flow_ms" not in met:
            lines.append(f"| {impl.label} | {fmt_num(entry['n'])} | error | | | | | | | | "
                         f"{note} |")
            continue
        pub, flow = met["publish_ms"], met["flow_ms"]
        vs = f"{flow['median'] / best:.2f}x" if best else "-"

        def med(key: str, digits: int = 1, met: dict[str, Any] = met) -> str:
            return fmt_num(met[key]["median"], digits) if key in met else "-"

        lines.append(
            f"| {impl.label} | {fmt_num(entry['n'])} | {pub['median']:.1f} "
            f"({pub['min']:.1f} - {pub['max']:.1f}) | {flow['median']:.1f} "
            f"({flow['min']:.1f} - {flow['max']:.1f}) | {med('flows_per_s', 2)} | "
            f"{med('jobs_per_s', 0)} | {vs} | {med('script_us_per_job')} | "
            f"{med('server_us_per_job')} | {med('server_cpu_us_per_job')} | {note} |")
    return lines


def per_round(raw: list[dict[str, Any]], impl: str, scenario: str, variant: str = "",
              metric: str = "ops") -> dict[int, float]:
    return {r["round"]: float(r["result"][metric]) for r in raw
            if r["impl"] == impl and r["scenario"] == scenario and r["variant"] == variant
            and metric in r["result"]}


def round_ratios(raw: list[dict[str, Any]], impls: list[Impl], scenario: str,
                 ref: str) -> tuple[list[float], list[str]]:
    """ours/reference in each round (the machine's speed drifts between rounds, so each
    round is compared with itself); ref is "floor-seq", "floor-pipelined" or "best-peer"."""
    ours = per_round(raw, "omniq-async", scenario)
    out: list[float] = []
    names: list[str] = []
    for rnd, value in sorted(ours.items()):
        if ref.startswith("floor-"):
            other = per_round(raw, "floor", "floor", ref.removeprefix("floor-")).get(rnd)
            name = ref
        else:
            cands = {i.name: per_round(raw, i.name, scenario).get(rnd) for i in impls
                     if i.kind == "peer"}
            cands = {k: v for k, v in cands.items() if v}
            if not cands:
                continue
            name = max(cands, key=lambda k: cands[k])
            other = cands[name]
        if other:
            out.append(value / other)
            names.append(name)
    return out, names


def _ratios_text(ratios: list[float], names: list[str] | None = None) -> str:
    parts = [f"{r:.2f}x" + (f" ({n})" if names else "")
             for r, n in zip(ratios, names or [""] * len(ratios), strict=True)]
    return "per round " + ", ".join(parts)


def evaluate_targets(summary: dict[str, Any], impls: list[Impl],
                     raw: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Pass/fail of the issue's targets, for the async API (the sync facade is reported).

    Throughput targets are judged on the median over rounds of the per-round ratio (each
    round against the floor / best peer measured in that same round); the ratio of the
    medians is shown too."""
    raw = raw or []
    targets: list[dict[str, Any]] = []

    def add(name: str, ok: bool | None, detail: str) -> None:
        targets.append({"target": name, "pass": ok, "detail": detail})

    ours = "omniq-async"
    e1 = _get(summary, f"{ours}/e1", "ops")
    floor_seq = _get(summary, "floor/floor/seq", "ops")
    bname, bval = best_peer(summary, "e1", "ops", True, impls)
    label = "E1 >= 0.9x sequential EVALSHA floor and ahead of every peer"
    if e1 is not None and floor_seq is not None and bval is not None:
        fr, _ = round_ratios(raw, impls, "e1", "floor-seq")
        pr, pn = round_ratios(raw, impls, "e1", "best-peer")
        f_ratio = statistics.median(fr) if fr else e1 / floor_seq
        p_ratio = statistics.median(pr) if pr else e1 / bval
        add(label, f_ratio >= 0.9 and p_ratio > 1.0,
            f"{f_ratio:.2f}x the floor ({_ratios_text(fr)}; medians {e1:,.0f}/s vs "
            f"{floor_seq:,.0f}/s); {p_ratio:.2f}x the best peer ({_ratios_text(pr, pn)}; "
            f"medians: {e1 / bval:.2f}x {bname})")
    elif e1 is not None and floor_seq is not None:
        fr, _ = round_ratios(raw, impls, "e1", "floor-seq")
        f_ratio = statistics.median(fr) if fr else e1 / floor_seq
        add(label, None, f"{f_ratio:.2f}x the floor ({_ratios_text(fr)}); peers not measured")
    else:
        add(label, None, "not measured")
    for scen, factor in (("e2", 3.0), ("p1", 1.5), ("p2", 1.3)):
        v = _get(summary, f"{ours}/{scen}", "ops")
        bname, bval = best_peer(summary, scen, "ops", True, impls)
        label = {"e2": "E2 >= 3x the best peer", "p1": "P1 >= 1.5x the best peer",
                 "p2": "P2 >= 1.3x the best peer (incl. Node BullMQ)"}[scen]
        if v is None or bval is None:
            add(label, None, "not measured")
            continue
        pr, pn = round_ratios(raw, impls, scen, "best-peer")
        ratio = statistics.median(pr) if pr else v / bval
        add(label, ratio >= factor,
            f"{ratio:.2f}x the best peer ({_ratios_text(pr, pn)}); medians {v:,.0f}/s vs "
            f"{bname} {bval:,.0f}/s ({v / bval:.2f}x)")
    p50 = _get(summary, f"{ours}/l1", "p50_ms")
    p99 = _get(summary, f"{ours}/l1", "p99_ms")
    if p50 is None or p99 is None:
        add("L1 p50 <= 1 ms and p99 <= 2 ms", None, "not measured")
    else:
        add("L1 p50 <= 1 ms and p99 <= 2 ms", p50 <= 1.0 and p99 <= 2.0,
            f"p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    costs = {sub: ev_cost(summary, sub) for sub in EV_SCENARIOS}
    label = "Events cost on E1 and P2 <= 10% (events on vs off, same run)"
    if any(c is None for c in costs.values()):
        add(label, None, "not measured")
    else:
        parts = [f"{sub.upper()} {c['cost'] * 100:.1f}% (on/off {c['ratio']:.3f}, median of "
                 f"{c['count']}: {', '.join(f'{x:.3f}' for x in c['ratios'])}; "
                 f"{c['on']['median']:,.0f}/s on vs {c['off']['median']:,.0f}/s off)"
                 for sub, c in costs.items() if c is not None]
        add(label, all(c is not None and c["cost"] <= 0.10 for c in costs.values()),
            "; ".join(parts))
    hb = _get(summary, f"{ours}/h1", "hb_calls_per_tick")
    hbk = _get(summary, f"{ours}/h1k", "hb_calls_per_tick")
    off = _get(summary, "official/h1", "hb_calls_per_tick")
    if hb is None:
        add("H1 one round trip per tick regardless of in-flight jobs", None, "not measured")
    else:
        values = [x for x in (hb, hbk) if x is not None]
        ok = all(0.5 <= x <= 1.1 for x in values)
        detail = f"{hb:.2f} heartbeat commands per tick with 200 jobs"
        if hbk is not None:
            detail += f", {hbk:.2f} with 1,000"
        if off is not None:
            detail += f" (official: {off:.1f} per tick with 200)"
        add("H1 one round trip per tick regardless of in-flight jobs", ok, detail)
    mo = _get(summary, f"{ours}/m1", "keyspace_bytes_per_job")
    mf = _get(summary, "official/m1", "keyspace_bytes_per_job")
    ro = _get(summary, f"{ours}/m1", "bytes_per_job")
    rf = _get(summary, "official/m1", "bytes_per_job")
    if mo is None or mf is None or ro is None or rf is None:
        add("M1 no more memory per waiting job than the official client", None, "not measured")
    else:
        add("M1 no more memory per waiting job than the official client", mo <= mf,
            f"jobs' own memory {mo:.1f} B/job vs official {mf:.1f} B/job ({mo / mf:.4f}x); "
            f"raw used_memory growth {ro:.1f} vs {rf:.1f} B/job ({ro / rf:.4f}x), the "
            "difference being memory that FLUSHALL leaves (not per job)")
    return targets


def machine_info(versions: dict[str, Any]) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                   text=True).stdout.strip()
    bench_version = subprocess.run(["redis-benchmark", "--version"], capture_output=True,
                                   text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "omniq"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "redis_server": redis_version,
        "redis_benchmark": bench_version,
        "omniq_commit": commit + (" (omniq/ has uncommitted changes)" if dirty else ""),
        "versions": versions,
    }


def render(doc: dict[str, Any]) -> str:
    impls = [IMPL_BY_NAME[n] for n in doc["impls"]]
    summary, raw = doc["summary"], doc["raw"]
    cfg = doc["config"]
    mi = doc["machine"]
    out: list[str] = ["# omniq benchmarks", ""]
    out.append(f"Generated {doc['finished']} by `{doc['command']}` "
               f"({doc['rounds']} interleaved round(s), {doc['duration_s'] / 60:.1f} min).")
    out.append("")
    for m in doc.get("merged", []):
        la0, la1 = m["loadavg_start"], m["loadavg_end"]
        out.append(f"Scenarios {', '.join(m['scenarios'])} ({', '.join(m['impls'])}) were "
                   f"measured later, on {m['finished']} by `{m['command']}` "
                   f"({m['rounds']} round(s), {m['duration_s'] / 60:.1f} min, omniq at commit "
                   f"{m['omniq_commit']}, load average {la0[0]:.2f} at the start, "
                   f"{la1[0]:.2f} at the end), and merged into this report in place of "
                   "earlier measurements of the same implementation and scenario.")
        out.append("")
    if doc.get("merged"):
        out.append("Every other number is from the run named first.")
        out.append("")
    out.append("Every number is the median over the rounds, with the spread (min - max) beside "
               "it. Each measurement ran on a fresh embedded Redis on loopback, in its own "
               "process; see `benchmarks/README.md` for what each scenario does and how each "
               "peer is driven.")
    out.append("")
    out.append("## Targets")
    out.append("")
    out.append("| target | result | detail |")
    out.append("|---|---|---|")
    for t in doc["targets"]:
        mark = {True: "PASS", False: "FAIL", None: "not measured"}[t["pass"]]
        out.append(f"| {t['target']} | {mark} | {t['detail']} |")
    out.append("")
    out.append("## Machine")
    out.append("")
    la0, la1 = doc["loadavg_start"], doc["loadavg_end"]
    out += [
        f"- {mi['nproc']} cores, {mi['cpu']}, Linux {mi['kernel']}",
        f"- Python {mi['python']} (all Python implementations), {mi['redis_server']}",
        f"- {mi['redis_benchmark']}; omniq at commit {mi['omniq_commit']}",
        f"- load average at start {la0[0]:.2f} / {la0[1]:.2f} / {la0[2]:.2f}, "
        f"at end {la1[0]:.2f} / {la1[1]:.2f} / {la1[2]:.2f}",
        "",
        "Versions:",
        "",
    ]
    for name, vers in mi["versions"].items():
        text = ", ".join(f"{k} {v}" for k, v in vers.items() if v)
        out.append(f"- {name}: {text}")
    out.append("")
    if doc.get("caveats"):
        out.append("**Caveats.** " + " ".join(doc["caveats"]))
        out.append("")
    sections = [
        ("e1", f"E1: enqueue sequentially, one awaited publish at a time (N={cfg['n']:,})"),
        ("e2", f"E2: enqueue in bulk (N={cfg['n']:,})"),
        ("p1", "P1: drain queued no-op jobs, one worker, concurrency 1"),
        ("p2", "P2: drain queued no-op jobs, one worker, concurrency 50"),
    ]
    for scen, title in sections:
        if not any(k.endswith(f"/{scen}") for k in summary):
            continue
        out += [f"## {title}", ""]
        out += throughput_table(summary, scen, impls)
        out.append("")
    if any(k.endswith("/l1") for k in summary):
        out += [f"## L1: publish-to-handler-start latency ({cfg['l1_n']} jobs, one every "
                f"{cfg['l1_interval_s'] * 1000:.0f} ms, idle worker)", ""]
        out += latency_table(summary, impls)
        out.append("")
    if any("/ev/" in k for k in summary):
        out += ["## EV: the cost of events on the hot path (ours, async API)", ""]
        out.append("E1 and P2 with events on (the default `events_maxlen=10_000`: one XADD "
                   "per transition inside the scripts, so enqueued + reserved + completed = "
                   "3 per job) and off (`AsyncOmniq(events_maxlen=0)`). One measurement: two "
                   "clients in one process on one fresh server, in alternating "
                   f"blocks (on, off, off, on, ...; E1 {cfg.get('ev_e1_blocks', 8)} blocks of "
                   f"N/{cfg.get('ev_e1_blocks', 8)} publishes per state, P2 "
                   f"{cfg.get('ev_p2_blocks', 2)} drains of N = {cfg.get('n', 10_000):,} jobs "
                   "per state, each block its own queue), "
                   "so drift of the machine hits both alike. Throughput cost = 1 - on/off "
                   "(the median over the measurements); time per job = off/on - 1. Server: "
                   "the time Redis spent in our scripts per job (INFO commandstats FCALL "
                   "and EVALSHA usec, read before and after each block; it includes the "
                   "commands the scripts run) and, in brackets, the part in XADD itself; "
                   "client: this process's CPU time per job.")
        out.append("")
        out += ev_table(summary)
        out.append("")
    if any("/jc/" in k for k in summary):
        out += ["## JC: the cost of job controls when used (ours, async API)", ""]
        out.append("Measured as EV (alternating blocks in one process on one fresh server), "
                   "with the control in use vs not: E1 publishing with a distinct dedup key "
                   "per job (one more key written and read per job), P2 draining a queue that "
                   "has an active queue-wide rate limit that never binds (the sliding-window "
                   "log is written per reservation). A queue without controls pays nothing "
                   "for their code on a call: the queue scripts run as Redis Functions, "
                   "whose library code ran once at load (docs/architecture.md, 'Script "
                   "set-up cost'); their fields cost a little per job (a read of "
                   "run_timeout_ms, expires_ms and dedup_key).")
        out.append("")
        out += jc_table(summary)
        out.append("")
    if any("/sc/" in k for k in summary):
        out += ["## SC: the cost of active schedules on a worker (ours, async API)", ""]
        out.append("Measured as JC (alternating blocks in one process on one fresh server): "
                   f"P2 ({cfg.get('ev_p2_blocks', 2)} runs of N = {cfg.get('n', 10_000):,} "
                   "queued no-op jobs per state, concurrency 50) on a queue that has "
                   f"{cfg.get('sc_schedules', 1000):,} interval schedules vs on a queue without "
                   "any. Both states run the default worker (`Worker(schedules=True)`), not "
                   "draining: a draining worker does not run its scheduler (it fires the due "
                   "schedules only at its last look); each run is timed from the worker's "
                   "start to the acknowledgement of its last queued job, then the worker "
                   "stops. Fire: the schedules are staggered so that one is due every 60 ms "
                   "(about 17 a second) from the start of the run on; the worker fires them "
                   "into the same queue and runs their jobs too, but only the queued jobs are "
                   "counted (the scheduled jobs are extra work, shown per second). Idle: the "
                   "same schedules with the first occurrence an hour away, so nothing is "
                   "fired: the cost of having them (the scheduler's read of the due ones, "
                   "once a second). Script calls: the difference in FCALLs over all the runs "
                   "of a state (the scheduler's reads and fires); server and client time are "
                   "per queued job and include the scheduled jobs' work.")
        out.append("")
        out += sc_table(summary, raw)
        out.append("")
    if any("/w1/" in k for k in summary):
        out += ["## W1: waiting for a result, from the ack to the waiter waking", ""]
        out.append("An idle worker process (concurrency 10 where configurable) whose handler "
                   "returns `time.time()` taken just before it returns; a second process "
                   f"publishes one job and waits for its result, {cfg.get('w1_n', 500)} times "
                   "one after the other (fewer for the 0.5 s pollers; 20 warm-up jobs first, "
                   "3 for the pollers, not counted). Ack to wake = the waiter's "
                   "`time.time()` right after its wait returned minus the handler's "
                   "timestamp: it includes the worker's acknowledgement (the completion "
                   "written to Redis), the notification or poll, and reading the result. "
                   "Publish to result is the whole publish-and-wait round trip.")
        out.append("")
        out += w1_table(summary, impls)
        out.append("")
    if any(k.endswith("/fi") for k in summary):
        out += [f"## FI: a fan-in flow, one parent and {cfg.get('fi_children', 1000):,} "
                "children", ""]
        out.append("An idle worker process (concurrency "
                   f"{cfg.get('fi_concurrency', 50)}) on the flow's queue; a second process "
                   f"publishes one flow (a parent and {cfg.get('fi_children', 1000):,} children "
                   "`{\"i\": n}`, all on one queue) and waits for the parent to complete, "
                   f"{cfg.get('fi_flows', 7)} times one after the other (after "
                   f"{cfg.get('fi_warmup', 3)} unmeasured ones). Children return `{{\"n\": "
                   "i}`; the parent's handler reads all its children's results and fails "
                   "unless it sees every one. Publish: the flow publish call; flow: from the "
                   "start of the publish until the waiter learns that the parent completed. "
                   "Each number is the median of a measurement's flows (then the median over "
                   "the rounds); jobs/s counts the parent too. Server: per job, INFO "
                   "commandstats usec of the script calls (EVALSHA / FCALL, including the "
                   "commands they run) and of all commands, and the server's CPU time, read "
                   "around each flow (the worker's calls included).")
        out.append("")
        out += fi_table(summary, impls)
        out.append("")
    if any(k.endswith("/h1") or k.endswith("/h1k") for k in summary):
        out += [f"## H1: heartbeats of blocked in-flight jobs (timeout {cfg['h1_timeout_ms']} ms, "
                f"{cfg['h1_window_s']:.0f} s window)", ""]
        out.append("A tick is the time in which every in-flight lease is extended once "
                   "(leases extended in the window / jobs in flight; configured intervals: "
                   "ours timeout/3, official max(1 s, timeout/2)). Heartbeat commands and "
                   "client commands are counted with MONITOR (FCALL or EVALSHA of the "
                   "heartbeat script; commands a script runs are not client commands); the "
                   "last column is the INFO commandstats delta over the window, which also "
                   "counts the commands run inside scripts (server work).")
        out.append("")
        out += h1_table(summary, raw, impls)
        out.append("")
    if any(k.endswith("/m1") for k in summary):
        out += [f"## M1: Redis used_memory per waiting job ({cfg['m1_n']:,} jobs)", ""]
        out.append("used_memory before publishing and after (publisher gone); then SCRIPT "
                   "FLUSH + FLUSHALL: what is still allocated is growth that is not the jobs "
                   "(constant, not per job), and the rest divided by N is the jobs' own "
                   "memory.")
        out.append("")
        out += m1_table(summary, raw, impls)
        out.append("")
    if any(k.startswith("floor/") or k.startswith("redis-benchmark/") for k in summary):
        out += ["## Floor and ceiling (EVALSHA of `return 1`)", ""]
        out += floor_tables(summary, raw)
        out.append("")
    if doc.get("analysis"):
        out += ["## Analysis", "", doc["analysis"].strip(), ""]
    errors = [r for r in raw if "error" in r["result"]]
    if errors:
        out += ["## Errors", ""]
        for r in errors:
            out.append(f"- round {r['round']} {r['impl']} {r['scenario']} {r['variant']}: "
                       f"`{_cell(str(r['result']['error'])[-400:])}`")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def setup(impls: list[Impl]) -> dict[str, Any]:
    versions: dict[str, Any] = {}
    envs = sorted({i.env for i in impls if i.env and i.env != "node"})
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = {name: pool.submit(_envs.ensure_venv, name) for name in envs}
        node = pool.submit(_envs.ensure_node) if any(i.env == "node" for i in impls) else None
        for name, fut in futures.items():
            fut.result()
            versions[name] = _envs.venv_versions(name)
        if node is not None and node.result() is not None:
            versions["node"] = _envs.node_versions()
    import importlib.metadata as md

    versions["omniq (ours)"] = {
        "omniq-aio": md.version("omniq-aio"), "redis": md.version("redis"),
        "hiredis": md.version("hiredis"), "msgspec": md.version("msgspec"),
    }
    return versions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="ours only (async, sync facade, floor), one round, smaller N")
    ap.add_argument("--only", default="",
                    help="comma-separated implementations and/or scenarios: "
                    + ", ".join(IMPL_BY_NAME) + "; " + ", ".join(SCENARIOS))
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 1)")
    ap.add_argument("--out", default=None,
                    help="directory for RESULTS.md and results.json (default: benchmarks/ "
                    "for a full run, none otherwise)")
    ap.add_argument("--setup-only", action="store_true", help="build the environments only")
    ap.add_argument("--analysis", default=None,
                    help="a Markdown file whose text is added to RESULTS.md as 'Analysis'")
    ap.add_argument("--merge-into", metavar="RESULTS_JSON", default=None,
                    help="add this run's measurements to an earlier results.json (replacing "
                    "its measurements of the same implementation and scenario) and write "
                    "RESULTS.md and results.json next to it")
    ap.add_argument("--render-only", metavar="RESULTS_JSON", default=None,
                    help="write RESULTS.md again from a results.json (e.g. with --analysis), "
                    "measuring nothing")
    return ap.parse_args(argv)


def select(args: argparse.Namespace) -> tuple[list[Impl], list[str]]:
    impls = [i for i in IMPLS if not args.quick or i.name in QUICK_IMPLS]
    scenarios = list(SCENARIOS)
    names = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in names if x not in IMPL_BY_NAME and x not in SCENARIOS]
    if unknown:
        raise SystemExit(f"--only: unknown name(s) {unknown}; known: "
                         f"{list(IMPL_BY_NAME)} {list(SCENARIOS)}")
    chosen_impls = [x for x in names if x in IMPL_BY_NAME]
    chosen_scen = [x for x in names if x in SCENARIOS]
    if chosen_impls:
        impls = [i for i in impls if i.name in chosen_impls]
    if chosen_scen:
        scenarios = [s for s in scenarios if s in chosen_scen]
    return impls, scenarios


def rerender(args: argparse.Namespace) -> int:
    src = Path(args.render_only)
    doc: dict[str, Any] = json.loads(src.read_text())
    doc["targets"] = evaluate_targets(doc["summary"], [IMPL_BY_NAME[n] for n in doc["impls"]],
                                      doc["raw"])
    if args.analysis:
        doc["analysis"] = Path(args.analysis).read_text()
    out_dir = Path(args.out) if args.out else src.parent
    (out_dir / "RESULTS.md").write_text(render(doc) + "\n")
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    log(f"wrote {out_dir / 'RESULTS.md'} from {src}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        return rerender(args)
    impls, scenarios = select(args)
    cfg = Config()
    if args.quick:
        cfg = Config(n=5000, l1_n=300, h1_window_s=3.0, h1_settle_s=1.2, m1_n=20_000,
                     floor_pipelined_n=50_000, bench_n=50_000, bench_c1_n=10_000,
                     ev_repeats=3, w1_n=200)
        # H1k is left out; SC (about 45 s) and FI, not the hot path, unless --only names them
        named = {x.strip() for x in args.only.split(",")}
        scenarios = [s for s in scenarios
                     if s != "h1k" and (s not in ("sc", "fi") or s in named)]
    rounds = args.rounds or (1 if args.quick else 3)
    full = not args.quick and not args.only
    out_dir = Path(args.out) if args.out else (HERE if full else None)

    t_start = time.time()
    load0 = os.getloadavg()
    log(f"setup: {', '.join(i.name for i in impls)}")
    versions = setup(impls)
    if args.setup_only:
        print(json.dumps(versions, indent=2))
        return 0
    log(f"setup done in {time.time() - t_start:.0f}s")
    t_run = time.time()
    raw: list[dict[str, Any]] = []
    for rnd in range(rounds):
        tasks = plan_round(impls, scenarios, rnd, cfg)
        log(f"round {rnd + 1}/{rounds}: {len(tasks)} measurements")
        for impl_name, scenario, variant, thunk in tasks:
            t0 = time.time()
            try:
                result = thunk()
            except Exception as exc:  # a broken measurement must not end the run
                result = {"error": f"{type(exc).__name__}: {exc}"}
            raw.append({"round": rnd + 1, "impl": impl_name, "scenario": scenario,
                        "variant": variant, "result": result, "wall_s": time.time() - t0})
            log(f"  {impl_name:16s} {scenario:7s} {variant:9s} {_short(scenario, result)} "
                f"({time.time() - t0:.1f}s)")
    summary = summarize(raw)
    targets = evaluate_targets(summary, impls, raw)
    doc: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks", *map(shlex.quote, argv or sys.argv[1:])]),
        "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": time.time() - t_run,
        "setup_s": t_run - t_start,
        "rounds": rounds,
        "impls": [i.name for i in impls],
        "scenarios": scenarios,
        "config": cfg.__dict__,
        "machine": machine_info(versions),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "caveats": [],
        "targets": targets,
        "summary": summary,
        "raw": raw,
    }
    if load0[0] > 0.5 or doc["loadavg_end"][0] > 0.5:
        doc["caveats"].append(
            f"The load average was above 0.5 (start {load0[0]:.2f}, end "
            f"{doc['loadavg_end'][0]:.2f}; the benchmark's own processes count too), so "
            "absolute numbers may be noisy; the interleaved rounds and the spread columns "
            "show how much."
        )
    if args.merge_into:
        doc = merge(Path(args.merge_into), doc)
        out_dir = Path(args.out) if args.out else Path(args.merge_into).parent
    if args.analysis:
        doc["analysis"] = Path(args.analysis).read_text()
    text = render(doc)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "RESULTS.md").write_text(text + "\n")
        (out_dir / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
        log(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'results.json'}")
    print(text)
    log(f"done in {(time.time() - t_start) / 60:.1f} min")
    return 0


def merge(path: Path, new: dict[str, Any]) -> dict[str, Any]:
    """An earlier full run with this run's measurements added (those of the same
    implementation and scenario replaced); the merge is recorded in ``merged``."""
    old: dict[str, Any] = json.loads(path.read_text())
    redone = {(r["impl"], r["scenario"]) for r in new["raw"]}
    raw = [r for r in old["raw"] if (r["impl"], r["scenario"]) not in redone] + new["raw"]
    impls = [i.name for i in IMPLS if i.name in set(old["impls"]) | set(new["impls"])]
    doc = dict(old, raw=raw, impls=impls,
               scenarios=[s for s in SCENARIOS if s in set(old["scenarios"])
                          | set(new["scenarios"])])
    doc["config"] = {**new["config"], **{k: v for k, v in old["config"].items()
                                          if k in ("n", "l1_n", "m1_n")}}
    doc["summary"] = summarize(raw)
    doc["targets"] = evaluate_targets(doc["summary"], [IMPL_BY_NAME[n] for n in impls], raw)
    doc["merged"] = [*old.get("merged", []), {
        "scenarios": sorted({s for _, s in redone}), "impls": new["impls"],
        "command": new["command"], "finished": new["finished"], "rounds": new["rounds"],
        "omniq_commit": new["machine"]["omniq_commit"], "duration_s": new["duration_s"],
        "loadavg_start": new["loadavg_start"], "loadavg_end": new["loadavg_end"]}]
    for name, vers in new["machine"]["versions"].items():
        doc["machine"]["versions"].setdefault(name, vers)
    return doc


def _short(scenario: str, result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR " + str(result["error"])[:200].replace("\n", " ")
    if "na" in result:
        return "n/a"
    p = primary(scenario, result)
    return " ".join(f"{k}={v:,.3f}" if v < 100 else f"{k}={v:,.0f}" for k, v in p.items())


if __name__ == "__main__":
    raise SystemExit(main())
