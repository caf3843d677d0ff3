"""``from omniq.consumer import consume`` (also ``omniq.consume``): the official SDK's
function form of :meth:`OmniqClient.consume`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omniq.aio.worker import Worker
from omniq.sync.client import OmniqClient

__all__ = ["consume"]


def consume(
    client: OmniqClient,
    *,
    queue: str,
    handler: Callable[..., Any],
    poll_interval_s: float | None = None,
    promote_interval_s: float | None = None,
    promote_batch: int | None = None,
    reap_interval_s: float | None = None,
    reap_batch: int | None = None,
    heartbeat_interval_s: float | None = None,
    verbose: bool = False,
    logger: Callable[[str], None] | None = None,
    stop_on_ctrl_c: bool = True,
    drain: bool = False,
    **worker_options: Any,
) -> Worker:
    """``client.consume(...)``; ``stop_on_ctrl_c`` is its ``handle_signals``. The client is
    left open (the official function closes it on return; see docs/sync.md)."""
    return client.consume(
        queue, handler, drain=drain, verbose=verbose, handle_signals=stop_on_ctrl_c,
        logger=logger, poll_interval_s=poll_interval_s, promote_interval_s=promote_interval_s,
        promote_batch=promote_batch, reap_interval_s=reap_interval_s, reap_batch=reap_batch,
        heartbeat_interval_s=heartbeat_interval_s, **worker_options,
    )
