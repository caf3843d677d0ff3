"""Where does our side's time go? Runs one of our scenarios under cProfile on a fresh
embedded Redis and prints the top functions, plus the server's time per script call (INFO
commandstats) so client and server cost can be told apart.

    python -m benchmarks.profile_ours e1 [--n 10000] [--sync] [--top 25]
    python -m benchmarks.profile_ours p1|p2|e2 ...
    python -m benchmarks.profile_ours p2 --events-off   # AsyncOmniq(events_maxlen=0)

For a sampling profile of the same run, use py-spy from benchmarks/.venvs/tools:
``benchmarks/.venvs/tools/bin/py-spy record -o out.svg -- python -m benchmarks.peers.omniq_async
'{"scenario": "e1", "url": "redis://127.0.0.1:PORT/0", "n": 10000}'``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time
from typing import Any

import redis

from benchmarks.peers import omniq_async, omniq_sync
from omniq.testing.embedded import EmbeddedServer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile_ours")
    ap.add_argument("scenario", choices=["e1", "e2", "p1", "p2"])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--sync", action="store_true", help="the blocking facade instead")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--events-off", action="store_true",
                    help="the async API with events_maxlen=0 (no event stream)")
    args = ap.parse_args(argv)
    if args.events_off and args.sync:
        ap.error("--events-off is for the async API")
    module: Any = omniq_sync if args.sync else omniq_async
    fn = getattr(module, args.scenario)
    kwargs: dict[str, Any] = {"events_maxlen": 0} if args.events_off else {}
    with EmbeddedServer(kind="redis") as srv, redis.Redis.from_url(srv.url) as r:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        if asyncio.iscoroutinefunction(fn):
            result = asyncio.run(fn(srv.url, args.n, **kwargs))
        else:
            result = fn(srv.url, args.n)
        prof.disable()
        wall = time.perf_counter() - t0
        stats = r.info("commandstats")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())
    print(f"result: {result}  (wall {wall:.2f}s, includes set-up, under cProfile)")
    for name, v in sorted(stats.items(), key=lambda kv: -float(kv[1]["usec"])):
        if name in ("cmdstat_evalsha", "cmdstat_fcall", "cmdstat_eval", "cmdstat_script|load",
                    "cmdstat_function|load", "cmdstat_xadd"):
            print(f"server {name.removeprefix('cmdstat_')}: {v['calls']} calls, "
                  f"{float(v['usec_per_call']):.1f} us per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
