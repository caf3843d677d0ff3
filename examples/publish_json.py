"""Structured payloads: publish a dataclass or a msgspec Struct, receive a validated Struct.

    python examples/publish_json.py

Install (from a clone): ``pip install -e '.[embedded]'``.

Server: set ``OMNIQ_REDIS_URL`` (for example ``redis://localhost:6379/0``) to use your own
Redis or Valkey. When it is unset, the script starts a private embedded server and stops it
at exit (``redis-server`` or ``valkey-server`` from PATH, else the Valkey of the ``embedded``
extra).
"""

import contextlib
import os
from dataclasses import dataclass

import msgspec

from omniq.client import OmniqClient
from omniq.testing.embedded import EmbeddedServer


@dataclass
class OrderCreated:  # a producer may use plain dataclasses ...
    order_id: str
    amount: int
    currency: str
    tags: list[str] | None = None


class Order(msgspec.Struct):  # ... the consumer declares what it accepts
    order_id: str
    amount: int
    currency: str
    tags: list[str] | None = None


def handle(ctx, order: Order):
    """A typed second parameter receives the payload decoded and validated as that type."""
    print(f"{order.order_id}: {order.amount / 100:.2f} {order.currency} tags={order.tags}")


def main(url: str) -> None:
    with OmniqClient(redis_url=url) as uq:
        uq.publish_json(queue="orders", payload=OrderCreated("ORD-1", 1000, "USD", ["priority"]))
        uq.publish_json(queue="orders", payload=Order(order_id="ORD-2", amount=250, currency="EUR"))
        bad = uq.publish(queue="orders", payload={"order_id": "ORD-3", "amount": "a lot"})

        worker = uq.consume(queue="orders", handler=handle, drain=True)
        print(f"completed {worker.stats.completed}, failed {worker.stats.failed}")
        job = uq.get_job("orders", bad)  # an invalid payload fails for good, no retries
        print(f"ORD-3 {job.state}: {job.last_error}")


if __name__ == "__main__":
    with contextlib.ExitStack() as stack:
        url = os.environ.get("OMNIQ_REDIS_URL") or stack.enter_context(EmbeddedServer()).url
        main(url)
