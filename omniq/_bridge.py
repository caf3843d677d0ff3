"""The one way from a thread to an event loop: run a coroutine there and wait for it.

Used by the blocking facade (:mod:`omniq.sync`, calls from any thread to its private loop)
and by :class:`~omniq.aio.context.SyncExec` (calls from a plain handler's thread to the
worker's loop). Waiting on the loop's own thread would wait for ourselves, so it is refused
with :class:`SyncClientError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from omniq.errors import SyncClientError

__all__ = ["call", "submit", "wait"]

T = TypeVar("T")


def submit(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]
) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on ``loop`` from another thread.

    :raises SyncClientError: called on ``loop``'s own thread (waiting would deadlock), or
        ``loop`` is closed.
    """
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise SyncClientError(
            "a blocking omniq call was made on its own event loop's thread, where it would "
            "wait for itself; await the async method instead"
        )
    if loop.is_closed():
        coro.close()
        raise SyncClientError("the event loop of this blocking omniq call is closed")
    return asyncio.run_coroutine_threadsafe(coro, loop)


def wait(fut: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """The result of ``fut``; on timeout or KeyboardInterrupt the call on the loop is
    cancelled before the exception propagates."""
    try:
        return fut.result(timeout)
    except BaseException:
        fut.cancel()
        raise


def call(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], timeout: float | None = None
) -> T:
    """Run ``coro`` on ``loop`` from another thread and return its result (see :func:`submit`
    and :func:`wait`)."""
    return wait(submit(loop, coro), timeout)
