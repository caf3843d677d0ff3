"""Grouped jobs: FIFO within a group, at most ``group_limit`` running per group, groups in
parallel (for example one group per tenant).

    python examples/grouped_jobs.py

Install (from a clone): ``pip install -e '.[embedded]'``.

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the script starts a private embedded server and stops it
at exit (``redis-server`` or ``valkey-server`` from PATH, else the Valkey of the ``embedded``
extra).
"""

import contextlib
import os
import threading
import time

from omniq.client import OmniqClient
from omniq.testing.embedded import EmbeddedServer

lock = threading.Lock()
running: dict[str, int] = {}
peak: dict[str, int] = {}


def build_report(ctx):
    with lock:
        running[ctx.gid] = running.get(ctx.gid, 0) + 1
        peak[ctx.gid] = max(peak.get(ctx.gid, 0), running[ctx.gid])
        print(f"{ctx.gid}: report {ctx.payload['n']}")
    time.sleep(0.05)  # the work
    with lock:
        running[ctx.gid] -= 1


def main(url: str) -> None:
    with OmniqClient(redis_url=url) as uq:
        for n in range(3):
            for tenant in ("acme", "globex"):
                uq.publish(
                    queue="reports", payload={"n": n}, gid=f"tenant:{tenant}", group_limit=1
                )
        # 4 slots, but group_limit=1: never two reports of one tenant at once
        uq.consume(queue="reports", handler=build_report, concurrency=4, drain=True)
        print("most reports running at once per tenant:", dict(sorted(peak.items())))


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL") or stack.enter_context(EmbeddedServer()).url
        main(url)
