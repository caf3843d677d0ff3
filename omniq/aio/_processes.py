"""The worker's process pool for CPU-bound ``def`` handlers (``Worker(processes=N)``).

One spawned process per slot, each fed over its own pipe. Unlike
``concurrent.futures.ProcessPoolExecutor``, whose whole pool is broken for good once one
process dies, a slot whose process dies (``os._exit``, a signal, the OOM killer) fails only
the call that was running there (:class:`ProcessDied`) and gets a fresh process; a call that
is cancelled (run timeout, cancel, hard stop) kills its process, which is then replaced. Each
slot has a shared flag the parent sets to tell the handler its job was cancelled
(``ctx.cancelled`` in the child).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.sharedctypes
import signal
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["ProcessDied", "ProcessPool", "RemoteTraceback"]

_STOP = None  # sent to a child to make it exit


class ProcessDied(Exception):
    """The process running a call died before it answered."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a pool process (its ``__cause__``)."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _child_main(conn: multiprocessing.connection.Connection, flag: Any) -> None:
    """A pool process: run calls until told to stop or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent worker decides about stopping
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is _STOP:
            return
        fn, args = msg
        if args:
            with contextlib.suppress(AttributeError):  # a JobContext: ctx.cancelled reads it
                args[0]._cancel_flag = flag
        try:
            reply: tuple[Any, ...] = ("ok", fn(*args))
        except BaseException as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            reply = ("err", exc, tb)
        try:
            conn.send(reply)
        except Exception as exc:
            conn.send(("err", RuntimeError(f"{reply[0]} value not picklable: {exc!r}"),
                       reply[2] if reply[0] == "err" else ""))


class _Slot:
    def __init__(self, mp: Any) -> None:
        self.mp = mp
        self.flag: Any = mp.Value("b", 0, lock=False)
        parent, child = mp.Pipe(duplex=True)
        self.conn: multiprocessing.connection.Connection = parent
        self.process = mp.Process(target=_child_main, args=(child, self.flag), daemon=True,
                                  name="omniq-handler")
        self.process.start()
        child.close()  # only the child holds its end: its death is EOF here

    def exit_text(self) -> str:
        self.process.join(1.0)
        code = self.process.exitcode
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"signal {signal.Signals(-code).name}"
            except ValueError:
                return f"signal {-code}"
        return f"exit code {code}"

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        self.process.join(5.0)
        with contextlib.suppress(Exception):
            self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(_STOP)
        self.process.join(2.0)
        if self.process.is_alive():
            self.kill()
        with contextlib.suppress(Exception):
            self.conn.close()


class ProcessPool:
    """``size`` spawned processes; ``await pool.run(fn, args, cancelled)`` runs one call.

    ``cancelled`` (a callable) is polled when the slot is taken: the shared flag is then
    kept in step by :meth:`flag_cancelled`.
    """

    def __init__(self, size: int) -> None:
        self._mp = multiprocessing.get_context("spawn")
        self._free: asyncio.Queue[_Slot] = asyncio.Queue()
        self._slots: list[_Slot] = []
        # one thread per slot waits for its process's answer (recv blocks)
        self._threads = concurrent.futures.ThreadPoolExecutor(size, "omniq-proc")
        for _ in range(size):
            slot = _Slot(self._mp)
            self._slots.append(slot)
            self._free.put_nowait(slot)
        self._closed = False

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  on_slot: Callable[[Any], None] | None = None) -> Any:
        """Run ``fn(*args)`` in a free process and return its value (or raise what it
        raised, with the child's traceback as ``__cause__``).

        ``on_slot`` receives the slot's shared cancel flag (``flag.value = 1`` tells the
        handler). Raises :class:`ProcessDied` when the process dies meanwhile; a cancelled
        call kills its process. Either way the slot gets a fresh process.
        """
        slot = await self._free.get()
        replace = False
        try:
            slot.flag.value = 0
            if on_slot is not None:
                on_slot(slot.flag)
            try:
                slot.conn.send((fn, args))
            except Exception as exc:  # the handler or its arguments do not pickle
                raise TypeError(f"cannot send the job to a handler process: {exc}") from exc
            loop = asyncio.get_running_loop()
            try:
                reply = await loop.run_in_executor(self._threads, slot.conn.recv)
            except (EOFError, OSError) as exc:
                replace = True
                raise ProcessDied(f"worker process died: {slot.exit_text()}") from exc
            except BaseException:  # cancelled: the call is abandoned, its process killed
                replace = True
                raise
        finally:
            if replace:
                slot.kill()
                self._slots.remove(slot)
                if not self._closed:
                    slot = _Slot(self._mp)
                    self._slots.append(slot)
            if not self._closed:
                self._free.put_nowait(slot)
        if reply[0] == "ok":
            return reply[1]
        error = reply[1]
        if isinstance(error, BaseException):
            raise error from RemoteTraceback(reply[2])
        raise RuntimeError(str(error))

    def close(self) -> None:
        """Stop every process (a call still running is killed)."""
        self._closed = True
        for slot in self._slots:
            slot.stop()
        self._slots.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)
