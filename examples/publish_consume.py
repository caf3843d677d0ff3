"""The blocking API: publish jobs and consume them with plain functions.

    python examples/publish_consume.py

``OmniqClient`` accepts the official OmniQ Python client's calls unchanged.

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


def handler(ctx):
    # plain functions run in worker threads; the lease is kept alive meanwhile
    print(f"processing {ctx.payload} (job {ctx.job_id}, attempt {ctx.attempt})")
    ctx.exec.heartbeat()  # extend the lease by hand during long work (optional)


def main(url: str) -> None:
    with OmniqClient(redis_url=url) as uq:
        for n in range(3):
            job_id = uq.publish(queue="demo", payload={"n": n}, timeout_ms=30_000)
            print("published", job_id)

        # drain=True returns once the queue is empty; without it, consume runs until Ctrl-C
        worker = uq.consume(queue="demo", handler=handler, drain=True)
        print(f"completed {worker.stats.completed} jobs")
        print("waiting now:", uq.stats("demo").waiting)


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL") or stack.enter_context(EmbeddedServer()).url
        main(url)
