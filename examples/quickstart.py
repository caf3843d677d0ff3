"""Quickstart: publish a few jobs and process them with the asyncio API.

    python examples/quickstart.py

Publishes three jobs, runs a worker until the queue is empty and exits.

Install (from a clone): ``pip install -e '.[embedded]'``.

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the script starts a private embedded server and stops it
at exit (``redis-server`` or ``valkey-server`` from PATH, else the Valkey of the ``embedded``
extra).
"""

import asyncio
import contextlib
import os

from omniq import AsyncOmniq
from omniq.testing.embedded import EmbeddedServer


async def send_email(ctx):
    """The handler: ctx.payload is the job's JSON, the return value is stored as result."""
    print(f"sending email to {ctx.payload['to']} (attempt {ctx.attempt})")
    return {"sent": True}


async def main(url: str) -> None:
    async with AsyncOmniq(url=url) as omniq:
        for to in ["ada@example.com", "alan@example.com", "grace@example.com"]:
            job_id = await omniq.publish("emails", {"to": to})
            print("published", job_id)

        # drain=True: stop once nothing is left to do (without it, run until Ctrl-C)
        worker = await omniq.consume("emails", send_email, drain=True)
        print(f"done: {worker.stats.completed} jobs completed")
        print("result of the last job:", await omniq.result("emails", job_id))


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL") or stack.enter_context(EmbeddedServer()).url
        asyncio.run(main(url))
