"""A handler for the ``omniq worker`` command (and a script that shows it at work).

    omniq worker examples.cli_handler:handler -q emails      # from the repository root
    omniq worker examples.cli_handler:routes                  # one worker per queue

``handler`` is an ordinary ``async def`` taking the job context; ``routes`` maps queue names
to handlers, so one ``omniq worker`` process serves each queue with its own handler.

Run as a script, it publishes three jobs and drains them with the same handler:

    python examples/cli_handler.py

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


async def handler(ctx):
    """Send an email (printed here); the return value is stored as the job's result."""
    print(f"sending email to {ctx.payload['to']} (attempt {ctx.attempt})", flush=True)
    return {"sent": True}


def report(ctx):
    """A plain ``def`` handler: the worker runs it in a thread."""
    print(f"building report {ctx.payload['name']}", flush=True)
    return {"pages": 3}


routes = {"emails": handler, "reports": report}


async def main(url: str) -> None:
    async with AsyncOmniq(url=url) as omniq:
        for to in ["ada@example.com", "alan@example.com"]:
            await omniq.publish("emails", {"to": to})
        await omniq.publish("reports", {"name": "weekly"})
        emails = await omniq.consume("emails", handler, drain=True)
        reports = await omniq.consume("reports", report, drain=True)
        print(f"done: {emails.stats.completed + reports.stats.completed} jobs completed")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL") or stack.enter_context(EmbeddedServer()).url
        asyncio.run(main(url))
