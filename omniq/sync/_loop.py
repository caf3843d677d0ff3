"""The private event loop behind :class:`~omniq.sync.client.OmniqClient`.

One :class:`LoopThread` is an ``asyncio.Runner`` on a daemon thread that owns one
:class:`~omniq.aio.client.AsyncOmniq`, created *on that loop* (``redis.asyncio`` clients are
bound to the loop they first run on). Other threads hand it coroutines with
:meth:`LoopThread.submit` (:func:`omniq._bridge.submit`) and block on the returned
``concurrent.futures.Future``.

Closing is two-phase: running workers are asked to stop and awaited while the client still
accepts calls (their handlers may publish), then new calls are refused, in-flight calls are
awaited, the client is closed on its own loop and ``asyncio.Runner`` cancels leftovers, shuts
down async generators and the default executor and closes the loop.

After ``fork()`` the child has the loop object but not its thread: :func:`abandon` parks the
inherited state for good (:func:`omniq._fork.park`; closing it would deregister the
*parent's* sockets from the epoll instance both processes share) and the client builds a
fresh one on first use. Calls cross from threads to the loop through :mod:`omniq._bridge`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from omniq import _bridge, _fork
from omniq.errors import SyncClientError

if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq
    from omniq.aio.worker import Worker

__all__ = ["LoopThread", "abandon"]

T = TypeVar("T")


class LoopThread:
    """An asyncio loop on a daemon thread, owning the ``AsyncOmniq`` built by ``make_client``."""

    def __init__(self, make_client: Callable[[], AsyncOmniq]) -> None:
        self.pid = os.getpid()
        self._make_client = make_client
        self._lock = threading.RLock()  # re-entrant: a GC finalizer may close mid-call
        self._accepting = True
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._consumes: dict[concurrent.futures.Future[Any], Worker] = {}
        self._asked: weakref.WeakSet[Worker] = weakref.WeakSet()  # loop thread only
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client: AsyncOmniq | None = None
        self._stop: asyncio.Event | None = None
        self._closer: asyncio.Future[None] | None = None
        self.thread = threading.Thread(target=self._main, name="omniq-loop", daemon=True)
        self.thread.start()
        self._ready.wait()
        if self._error is not None:
            err, self._error = self._error, None
            self.thread.join()
            raise err

    # -- the loop thread ---------------------------------------------------------------

    def _main(self) -> None:
        with asyncio.Runner() as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.client = self._make_client()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        with self._lock:
            workers = list(self._consumes.values())
            pending = list(self._pending)
        for worker in workers:
            self.soft_stop(worker)
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending])
        with contextlib.suppress(Exception):
            await self.client.aclose()

    def _close_later(self) -> None:
        """On the loop: stop workers now, then wind down once they have returned."""
        with self._lock:
            consumes = dict(self._consumes)
        for worker in consumes.values():
            self.soft_stop(worker)

        async def close() -> None:
            if consumes:
                await asyncio.wait([asyncio.wrap_future(f) for f in consumes])
            with self._lock:
                self._accepting = False
            if self._stop is not None:
                self._stop.set()

        self._closer = asyncio.ensure_future(close())

    def soft_stop(self, worker: Worker) -> None:
        """Ask ``worker`` for a graceful stop once (a second request would be a hard stop)."""
        if worker not in self._asked:
            self._asked.add(worker)
            worker.request_stop()

    # -- any thread --------------------------------------------------------------------

    def on_loop_thread(self) -> bool:
        """Whether the caller is this loop's own thread."""
        return threading.get_ident() == self.thread.ident

    def on_handler_thread(self) -> bool:
        """Whether the caller is one of the threads running this loop's plain handlers."""
        return getattr(threading.current_thread(), "loop", None) is self.loop

    def submit(
        self, coro: Coroutine[Any, Any, T], worker: Worker | None = None
    ) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; ``worker`` marks a consume run (stopped on close)."""
        with self._lock:
            if not self._accepting or self.loop is None:
                coro.close()
                raise SyncClientError("this OmniqClient is closed")
            fut = _bridge.submit(self.loop, coro)
            self._pending.add(fut)
            if worker is not None:
                self._consumes[fut] = worker
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(fut)
            self._consumes.pop(fut, None)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop (ignored once the loop is closed)."""
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(fn, *args)

    def close(self, timeout: float | None = None) -> None:
        """Stop workers, finish in-flight calls, close the client and the loop; join."""
        if self.loop is None or self._stop is None:
            return
        if self.on_loop_thread():  # waiting here would wait for ourselves
            self._close_later()
            return
        if self.on_handler_thread():  # likewise (the worker waits for this handler)
            self.call_soon(self._close_later)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            consumes = dict(self._consumes)
        for worker in consumes.values():
            self.call_soon(self.soft_stop, worker)
        concurrent.futures.wait(list(consumes), timeout=_left(deadline))
        with self._lock:
            self._accepting = False
        self.call_soon(self._stop.set)
        self.thread.join(_left(deadline))
        # AnyIO's handler threads are told to stop when the loop's main task ends.
        loop = self.loop
        for t in threading.enumerate():
            if getattr(t, "loop", None) is loop and t is not threading.current_thread():
                t.join(1.0)


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def abandon(state: LoopThread) -> None:
    """In a forked child: park ``state`` for good without touching the parent's resources.

    The loop's epoll fd is replaced by /dev/null, so that if anything inherited is ever
    finalized its deregistration fails harmlessly instead of editing the epoll instance
    the parent still uses.
    """
    _fork.park(state)
    selector = getattr(state.loop, "_selector", None)
    fileno = getattr(selector, "fileno", None)
    if fileno is None:
        return
    with contextlib.suppress(Exception):
        fd = fileno()
        if fd >= 0:
            null = os.open(os.devnull, os.O_RDONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
