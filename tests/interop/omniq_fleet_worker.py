"""The omniq side of the mixed-fleet test: one worker process with the ledger handler.

Usage: ``python omniq_fleet_worker.py URL QUEUE LEDGER TOTAL CONCURRENCY MAX_SECONDS``

Runs a :class:`~omniq.aio.worker.Worker` in the background until the ledger's done counter
(written by both fleets' handlers) reaches TOTAL, then stops it gracefully (in-flight jobs
finish and are acked). Prints ``OMNIQ-DRIVER-RESULT {json}`` with the worker's counters.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

# run as a script: its own folder is on sys.path, tests/ (interop_util's shared_util) is not
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interop_util import RESULT_MARK, LedgerHandler

from omniq import AsyncOmniq
from omniq.aio.worker import Worker


async def main(url: str, queue: str, ledger: str, total: int, concurrency: int,
               max_seconds: float) -> dict[str, object]:
    handler = LedgerHandler(url, ledger)
    t0 = time.monotonic()
    timed_out = False
    try:
        async with AsyncOmniq(url=url) as client:
            worker = Worker(client, queue, handler, concurrency=concurrency)
            await worker.start()
            # bounded polling of the shared ledger (the other fleet writes it too)
            while int(await handler.r.get(handler.p + ":done") or 0) < total:
                if time.monotonic() - t0 > max_seconds:
                    timed_out = True
                    break
                await asyncio.sleep(0.02)
            await worker.stop(grace_period_s=10)
            stats = worker.stats
    finally:
        await handler.aclose()
    return {"reserved": stats.reserved, "completed": stats.completed, "retried": stats.retried,
            "failed": stats.failed, "lost": stats.lost, "timed_out": timed_out,
            "seconds": time.monotonic() - t0}


if __name__ == "__main__":
    url, queue, ledger, total, concurrency, max_seconds = sys.argv[1:7]
    result = asyncio.run(main(url, queue, ledger, int(total), int(concurrency),
                              float(max_seconds)))
    print(RESULT_MARK + json.dumps(result), flush=True)
