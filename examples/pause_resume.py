"""Pause and resume from inside handlers: an email job that hits a provider rate limit
pauses its queue; a job on a control queue resumes it later.

Pausing stops new reservations only: running jobs finish, waiting jobs stay where they are.

    python examples/pause_resume.py

Install (from a clone): ``pip install -e '.[embedded]'``.

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the script starts a private embedded server and stops it
at exit (``redis-server`` or ``valkey-server`` from PATH, else the Valkey of the ``embedded``
extra).
"""

import contextlib
import os

from omniq.client import OmniqClient
from omniq.testing.embedded import EmbeddedServer


def send_email(ctx):
    print(f"sent email {ctx.payload['n']}")
    if ctx.payload["n"] == 1:
        ctx.exec.pause("emails")
        print("rate limited: emails paused")


def control(ctx):
    if ctx.payload["cmd"] == "resume":
        was_paused = ctx.exec.resume("emails")
        print(f"emails resumed (was paused: {was_paused})")


def main(url: str) -> None:
    with OmniqClient(redis_url=url) as uq:
        for n in range(1, 5):
            uq.publish(queue="emails", payload={"n": n})
        uq.consume(queue="emails", handler=send_email, drain=True)  # returns: queue paused
        print(f"paused: {uq.is_paused('emails')}, waiting: {uq.stats('emails').waiting}")

        uq.publish(queue="control", payload={"cmd": "resume"})
        uq.consume(queue="control", handler=control, drain=True)
        uq.consume(queue="emails", handler=send_email, drain=True)
        print(f"paused: {uq.is_paused('emails')}, waiting: {uq.stats('emails').waiting}")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL") or stack.enter_context(EmbeddedServer()).url
        main(url)
