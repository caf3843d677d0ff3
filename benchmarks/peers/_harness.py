"""The measuring side of every Python peer module (standard library only: it is imported by
the peers' own virtual environments, which have nothing of this repository).

A peer module is run as ``python -I peer_x.py '<json params>'`` (ours as
``python -m benchmarks.peers.omniq_async '<json params>'``). ``params["scenario"]`` picks the
function; the other params are its keyword arguments. The module prints, on stdout:

* ``BENCH-READY <json>`` when a long-running scenario (``l1_worker``, ``h1``) is ready for the
  runner's next step (start the publisher, open the measuring window);
* ``BENCH-RESULT <json>`` with the result, last.

Results are plain dicts: ``{"n", "seconds", "ops"}`` for throughput scenarios,
``{"n", "p50_ms", "p99_ms", ...}`` for latency, ``{"na": "reason"}`` when a peer has no way to
run a scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

RESULT = "BENCH-RESULT "
READY = "BENCH-READY "

QUEUE = "bench"
L1_WARMUP = 20
L1_DEADLINE_S = 60.0
W1_WARMUP = 20
W1_DEADLINE_S = 300.0


def emit(obj: dict[str, Any]) -> None:
    """Print the result line."""
    sys.stdout.write(RESULT + json.dumps(obj) + "\n")
    sys.stdout.flush()


def ready(info: dict[str, Any] | None = None) -> None:
    """Tell the runner this process is ready for the next step."""
    sys.stdout.write(READY + json.dumps(info or {}) + "\n")
    sys.stdout.flush()


def throughput(n: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"n": n, "seconds": seconds, "ops": n / seconds if seconds > 0 else 0.0, **extra}


def na(reason: str) -> dict[str, Any]:
    return {"na": reason}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def url_host_port(url: str) -> tuple[str, int]:
    """``redis://127.0.0.1:PORT/0`` -> (host, port)."""
    rest = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return host or "127.0.0.1", int(port or 6379)


class Latencies:
    """Collects publish-to-handler-start latencies from payloads ``{"i", "t", "w"?}``.

    ``t`` is the publisher's ``time.time()`` right before its publish call; warm-up jobs
    (``w`` set) are not counted. ``done`` is set when ``n`` measured jobs have started.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.values: list[float] = []
        self.done_at: float | None = None

    def record(self, payload: Any) -> bool:
        """Record one handler start (call first thing in the handler); True when done."""
        now = time.time()
        if not isinstance(payload, dict) or payload.get("w"):
            return False
        self.values.append((now - float(payload["t"])) * 1000.0)
        if len(self.values) >= self.n and self.done_at is None:
            self.done_at = now
            return True
        return False

    def result(self) -> dict[str, Any]:
        v = self.values
        return {
            "n": len(v),
            "p50_ms": percentile(v, 50),
            "p90_ms": percentile(v, 90),
            "p99_ms": percentile(v, 99),
            "max_ms": max(v) if v else math.nan,
            "mean_ms": sum(v) / len(v) if v else math.nan,
        }


def paced(n: int, interval_s: float, warmup: int = L1_WARMUP) -> list[tuple[float, dict[str, Any]]]:
    """The L1 schedule: (offset in seconds, payload template) for warm-up then measured jobs.

    Warm-up jobs go 10 ms apart, then a 200 ms pause, then one job every ``interval_s``.
    """
    plan: list[tuple[float, dict[str, Any]]] = []
    for i in range(warmup):
        plan.append((i * 0.01, {"i": -1 - i, "w": 1}))
    start = warmup * 0.01 + 0.2
    for i in range(n):
        plan.append((start + i * interval_s, {"i": i}))
    return plan


def publish_paced_sync(publish: Callable[[dict[str, Any]], Any], n: int,
                       interval_s: float) -> dict[str, Any]:
    """Publish the L1 schedule with a blocking publish function; ``t`` is set just before."""
    t0 = time.perf_counter()
    late = 0
    for offset, payload in paced(n, interval_s):
        delay = t0 + offset - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -interval_s:
            late += 1
        payload["t"] = time.time()
        publish(payload)
    return {"published": n, "late": late}


async def publish_paced_async(publish: Callable[[dict[str, Any]], Any], n: int,
                              interval_s: float) -> dict[str, Any]:
    """The same with an async publish function."""
    t0 = time.perf_counter()
    late = 0
    for offset, payload in paced(n, interval_s):
        delay = t0 + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -interval_s:
            late += 1
        payload["t"] = time.time()
        await publish(payload)
    return {"published": n, "late": late}


class WaitLatencies:
    """W1: per job, ``ack_to_wake`` = the waiter's ``time.time()`` right after its wait
    returned minus the handler's ``time.time()`` taken just before it returned (the job's
    result), and ``round_trip`` = publish call to wait return (``perf_counter``)."""

    def __init__(self) -> None:
        self.ack_to_wake: list[float] = []
        self.round_trip: list[float] = []

    def record(self, t_start: float, handler_done: Any) -> None:
        """Call right after the wait returned; ``t_start`` is ``perf_counter()`` before the
        publish, ``handler_done`` the result (the handler's ``time.time()``)."""
        now, rt = time.time(), time.perf_counter() - t_start
        self.ack_to_wake.append((now - float(handler_done)) * 1000.0)
        self.round_trip.append(rt * 1000.0)

    def result(self, **extra: Any) -> dict[str, Any]:
        a, r = self.ack_to_wake, self.round_trip
        return {
            "n": len(a),
            "p50_ms": percentile(a, 50),
            "p90_ms": percentile(a, 90),
            "p99_ms": percentile(a, 99),
            "max_ms": max(a) if a else math.nan,
            "mean_ms": sum(a) / len(a) if a else math.nan,
            "rt_p50_ms": percentile(r, 50),
            "rt_p99_ms": percentile(r, 99),
            **extra,
        }


async def until_stop(deadline_s: float = W1_DEADLINE_S) -> None:
    """Return when the runner writes a line on stdin ("stop") or after ``deadline_s``."""
    loop = asyncio.get_running_loop()
    reader = loop.run_in_executor(None, sys.stdin.readline)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reader), deadline_s)


def main(scenarios: dict[str, Callable[..., Any]]) -> None:
    """Run the scenario named in ``sys.argv[1]`` (JSON params) and print its result."""
    params: dict[str, Any] = json.loads(sys.argv[1])
    name = params.pop("scenario")
    fn = scenarios.get(name)
    try:
        if fn is None:
            result: Any = na(f"scenario {name!r} not implemented by this peer")
        elif inspect.iscoroutinefunction(fn):
            result = asyncio.run(fn(**params))
        else:
            result = fn(**params)
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    emit(result)
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown: some peers' background threads hang it
