"""The event log in its own process, for the crash tests (tests/eventlog).

``python exporter_proc.py URL (--sqlite PATH | --postgres DSN) --table T [--batch N]
[--pause-after K] [--once] QUEUE...``

Prints ``batch N written W`` after each commit (before its XACK). With ``--pause-after K``
it prints ``paused`` after the K-th commit and blocks there, before the XACK, so that the
test can SIGKILL it at exactly that point. ``--once`` copies what is there and prints
``done W``.
"""

from __future__ import annotations

import argparse
import asyncio

from omniq import AsyncOmniq
from omniq.eventlog import Batch, EventLog, PostgresSink, Sink, SQLiteSink


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("queues", nargs="+")
    p.add_argument("--sqlite")
    p.add_argument("--postgres")
    p.add_argument("--table", required=True)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--pause-after", type=int, default=0)
    p.add_argument("--once", action="store_true")
    args = p.parse_args()
    sink: Sink = (SQLiteSink(args.sqlite, table=args.table) if args.sqlite
                  else PostgresSink(args.postgres, table=args.table))
    count = 0

    async def on_batch(batch: Batch) -> None:
        nonlocal count
        count += 1
        print(f"batch {count} written {batch.written}", flush=True)
        if count == args.pause_after:
            print("paused", flush=True)
            await asyncio.Event().wait()  # committed, not acknowledged: SIGKILL comes here

    async with AsyncOmniq(url=args.url) as client, EventLog(
            client, args.queues, sink, consumer="exporter", batch=args.batch,
            on_batch=on_batch) as log:
        print("started", flush=True)
        if args.once:
            print(f"done {await log.run_once()}", flush=True)
        else:
            await log.run()


if __name__ == "__main__":
    asyncio.run(main())
