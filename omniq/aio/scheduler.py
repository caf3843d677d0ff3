"""The scheduler loop: fire the due schedules of some queues (docs/schedules.md).

Every :class:`~omniq.Worker` runs one for the queues it consumes; a standalone
:class:`Scheduler` (or ``omniq scheduler``) does the same for queues whose consumers are
other clients (the official ones know nothing of schedules). Each pass is one
``fire_schedules`` call per queue; between passes it sleeps until the next occurrence is
due by the server's clock (at most ``interval_s``), so jobs are published on time without
polling faster. Any number of schedulers and workers may run at once: the fire script
publishes each occurrence once.

With ``dependencies=True`` (``omniq scheduler``) each pass also delivers the queues'
dependency work (``resolve_dependencies``, docs/workflows.md): the official consumers'
acks do not settle the dependents of the jobs they complete, and a worker of ours does it
only for the queues it consumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

from omniq._keys import validate_queue_name
from omniq.errors import InvalidArgument, OmniqError

if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq

__all__ = ["Scheduler"]

logger = logging.getLogger("omniq")

_ERROR_WAIT_MAX_S = 5.0  # cap of the backoff after a failed pass


class Scheduler:
    """Fire the schedules of ``queues`` until stopped.

    ``await scheduler.run()`` runs in the current task; ``async with Scheduler(...)`` (or
    ``start()`` / ``stop()``) runs it in the background. ``interval_s`` is the longest
    wait between two passes (a schedule created meanwhile is seen by the next pass).
    ``published`` counts the jobs it published. ``dependencies``: also settle dependents
    and deliver dependency work on each pass (see the module docstring).
    """

    def __init__(
        self, client: AsyncOmniq, queues: str | Sequence[str], *, interval_s: float = 1.0,
        dependencies: bool = False,
    ) -> None:
        names = [queues] if isinstance(queues, str) else list(queues)
        if not names:
            raise InvalidArgument("a scheduler needs at least one queue")
        self.queues = [validate_queue_name(q) for q in names]
        if isinstance(interval_s, bool) or not isinstance(interval_s, int | float) \
                or not interval_s > 0:
            raise InvalidArgument("interval_s must be a positive number of seconds")
        self.client = client
        self.interval_s = float(interval_s)
        self.dependencies = bool(dependencies)
        self.published = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Run in a background task."""
        if self._task is not None:
            raise OmniqError("scheduler already started")
        self._task = asyncio.get_running_loop().create_task(self.run(), name="omniq-scheduler")

    async def stop(self) -> None:
        """Stop after the pass in progress (if any)."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def request_stop(self) -> None:
        """Ask the loop to stop (non-blocking; safe from a signal handler)."""
        self._stop.set()

    async def run_once(self) -> float:
        """One pass over the queues: returns how long to wait before the next one."""
        wait = self.interval_s
        published = 0
        for queue in self.queues:
            res = await self.client.fire_schedules(queue)
            published += res.published
            if self.dependencies:
                await self.client.resolve_dependencies(queue)
            if res.next_in_ms is not None:
                # +1 ms: wake when the occurrence is due, not a hair before
                wait = min(wait, (res.next_in_ms + 1) / 1000)
        self.published += published
        if published == 0 and wait <= 0.001:
            # due, yet nothing published by us (another client's, or one we cannot
            # evaluate): no reason to look again at once
            wait = self.interval_s
        return wait

    async def run(self) -> None:
        """Fire due schedules until :meth:`stop`."""
        error_wait = 0.0
        self._stop.clear()
        while not self._stop.is_set():
            try:
                wait = await self.run_once()
                error_wait = 0.0
            except Exception as exc:  # the loop goes on: a worker's schedules must not stop
                error_wait = min(max(error_wait * 2, 0.1), _ERROR_WAIT_MAX_S)
                expected = isinstance(exc, OmniqError)  # (a server or network trouble)
                logger.log(logging.WARNING if expected else logging.ERROR,
                           "omniq: firing schedules failed (%s); retrying in %.1fs", exc,
                           error_wait, exc_info=None if expected else exc)
                wait = error_wait
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)
