"""Keeps the benchmark harness from rotting: runs our own E1/P1 scenario functions with a tiny
N on the test server and renders a report from their results. Creates no virtual
environment and starts no peer (see benchmarks/run.py for the real thing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# `pytest` (unlike `python -m pytest`) does not put the repository root on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import run
from benchmarks.peers import omniq_async

N = 200


async def test_our_e1_scenario_runs(omniq_redis_url: str) -> None:
    e1 = await omniq_async.e1(omniq_redis_url, N)
    assert e1["n"] == N
    assert e1["ops"] > 0


async def test_our_p1_scenario_runs(omniq_redis_url: str) -> None:
    p1 = await omniq_async.p1(omniq_redis_url, N)
    assert p1["n"] == N
    assert p1["ops"] > 0


async def test_our_events_cost_scenarios_run(omniq_redis_url: str) -> None:
    # each asserts inside that the events-on queues have a stream and the off ones none
    e1 = await omniq_async.ev_e1(omniq_redis_url, N, blocks=2)
    assert e1["n"] == N
    assert e1["on_ops"] > 0
    assert e1["off_ops"] > 0
    assert e1["xadd_us_per_job_on"] > 0  # the events-on blocks ran XADDs
    p2 = await omniq_async.ev_p2(omniq_redis_url, N, blocks=2)
    assert p2["n"] == N
    assert p2["ratio"] > 0
    assert p2["script_calls_on"] > 0


async def test_our_job_control_cost_scenarios_run(omniq_redis_url: str) -> None:
    # each asserts inside that the controlled queues hold their jobs / keep their limit
    e1 = await omniq_async.jc_dedup_e1(omniq_redis_url, N, blocks=2)
    assert e1["n"] == N
    assert e1["on_ops"] > 0
    p2 = await omniq_async.jc_rate_p2(omniq_redis_url, N, blocks=2)
    assert p2["n"] == N
    assert p2["ratio"] > 0


async def test_our_schedules_cost_scenarios_run(omniq_redis_url: str) -> None:
    # 50 schedules (one due every 60 ms, as the 1,000 of the real run); sc_p2 asserts inside
    # that the "idle" schedules fired nothing and that every state ran its queued jobs
    fire = await omniq_async.sc_p2(omniq_redis_url, N, blocks=2, variant="fire", schedules=50)
    assert fire["n"] == N
    assert fire["ratio"] > 0
    assert fire["fires"] >= 1  # the first occurrence is due at each worker's start
    assert fire["script_calls_on"] > fire["script_calls_off"]  # the scheduler's fires
    idle = await omniq_async.sc_p2(omniq_redis_url, N, blocks=2, variant="idle", schedules=50)
    assert idle["n"] == N
    assert idle["ratio"] > 0
    assert idle["fires"] == 0


def test_w1_measurement_runs() -> None:
    # the runner's own W1 flow: a worker process, a waiter process, a fresh server
    result = run.measure_w1(run.IMPL_BY_NAME["omniq-async"], "wait", run.Config(w1_n=30))
    assert "error" not in result, result
    assert result["n"] == 30
    assert 0 < result["p50_ms"] <= result["p99_ms"] < 30_000
    assert result["worker"]["completed"] == 30 + run.W1_WARMUP


def test_report_renders_from_results() -> None:
    results: dict[str, dict[str, Any]] = {
        "e1": {"n": N, "seconds": 0.1, "ops": 2000.0},
        "p1": {"n": N, "seconds": 0.2, "ops": 1000.0},
    }
    raw = [
        {"round": r, "impl": "omniq-async", "scenario": s, "variant": "", "result": res}
        for r in (1, 2) for s, res in results.items()
    ]
    raw.append({"round": 1, "impl": "floor", "scenario": "floor", "variant": "seq",
                "result": {"n": N, "seconds": 0.1, "ops": 2500.0, "p50_ms": 0.1,
                           "p99_ms": 0.2}})
    for sub, on in (("e1", 1900.0), ("p2", 800.0)):
        raw.append({"round": 1, "impl": "omniq-async", "scenario": "ev", "variant": sub,
                    "result": {"n": N, "on_ops": on, "off_ops": 2000.0, "ratio": on / 2000.0,
                               "script_us_per_job_on": 30.0, "script_us_per_job_off": 27.0,
                               "xadd_us_per_job_on": 1.5, "client_us_per_job_on": 40.0,
                               "client_us_per_job_off": 40.0}})
    for sub, on in (("fire-p2", 950.0), ("idle-p2", 1000.0)):
        raw.append({"round": 1, "impl": "omniq-async", "scenario": "sc", "variant": sub,
                    "result": {"n": N, "on_ops": on, "off_ops": 1000.0, "ratio": on / 1000.0,
                               "script_us_per_job_on": 30.0, "script_us_per_job_off": 27.0,
                               "xadd_us_per_job_on": 1.5, "client_us_per_job_on": 40.0,
                               "client_us_per_job_off": 40.0, "schedules": 1000,
                               "scheduled_per_s": 17.0 if on < 1000 else 0.0,
                               "script_calls_on": 140.0 if on < 1000 else 100.0,
                               "script_calls_off": 100.0}})
    raw.append({"round": 1, "impl": "omniq-async", "scenario": "w1", "variant": "wait",
                "result": {"n": N, "p50_ms": 0.4, "p99_ms": 0.9, "rt_p50_ms": 1.0,
                           "rt_p99_ms": 2.0}})
    summary = run.summarize(raw)
    assert summary["omniq-async/e1"]["metrics"]["ops"]["median"] == 2000.0
    impls = [run.IMPL_BY_NAME["omniq-async"], run.IMPL_BY_NAME["floor"]]
    doc = {
        "command": "python -m benchmarks --quick", "finished": "now", "duration_s": 1.0,
        "rounds": 2, "impls": [i.name for i in impls], "config": run.Config().__dict__,
        "machine": {"nproc": 2, "cpu": "cpu", "kernel": "k", "python": "3", "redis_server": "7",
                    "redis_benchmark": "7", "omniq_commit": "x", "versions": {}},
        "loadavg_start": (0.0, 0.0, 0.0), "loadavg_end": (0.0, 0.0, 0.0),
        "targets": run.evaluate_targets(summary, impls, raw), "summary": summary, "raw": raw,
    }
    text = run.render(doc)
    assert "E1: enqueue sequentially" in text
    assert "0.80x (seq)" in text  # 2,000/s against the 2,500/s floor
    assert "| E1 | 200 | 1,900 (1,900 - 1,900) | 2,000 (2,000 - 2,000) |" in text
    target = next(t for t in doc["targets"] if t["target"].startswith("Events cost"))
    assert target["pass"] is False  # P2 on at 800/s against 2,000/s off: 60% cost
    assert "E1 5.0%" in target["detail"]
    assert "P2 60.0%" in target["detail"]
    assert "| omniq (async API) | wait | 200 | 0.400 (0.400 - 0.400) | 0.900" in text
    assert "| fire | 1,000, one due every 60 ms (each every 60 s) | 200 | 950 " in text
    assert "| 0.950 | +5.0% | 17.0 | +40 |" in text
    assert "| idle | 1,000, none due (the first an hour away) | 200 | 1,000 " in text


def test_cluster_scale_out_benchmark_runs(tmp_path: Path) -> None:
    from benchmarks import cluster

    cluster.main(["--jobs", "300", "--procs", "1", "--rounds", "1", "--out", str(tmp_path)])
    text = (tmp_path / "CLUSTER.md").read_text()
    assert "| queues8 | publish |" in text
    assert "| queues8 | process |" in text
    raw = json.loads((tmp_path / "cluster.json").read_text())["raw"]
    assert {(r["topology"], r["layout"]) for r in raw} >= {("single", "queues8"),
                                                           ("cluster", "queues8")}
    assert all(r["publish_per_s"] > 0 and r["process_per_s"] > 0 for r in raw)
