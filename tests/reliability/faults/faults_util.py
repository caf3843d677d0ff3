"""Helpers of the fault-injection suite (imported by module name: this folder is on sys.path).

* :class:`FaultProxy` -- a loopback TCP proxy (asyncio, on its own thread and loop) between
  a client and a server that can delay, black-hole or cut connections, refuse new ones, or
  drop one reply and cut (a command that ran but whose reply was lost).
* :class:`WorkerProc` -- a ``chaos_worker.py`` subprocess.
* :func:`poll_until` -- bounded polling of Redis state written by other processes.
* :func:`figure` -- record a measured figure (printed with ``-s``; appended to the file named
  by ``$OMNIQ_FAULTS_FIGURES`` when set, for docs/reliability.md).

Keys, ``within`` and the subprocess runner come from tests/shared_util.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import shared_util
from shared_util import ScriptProc, jk, qk, within

__all__ = ["FaultProxy", "WorkerProc", "env_int", "figure", "jk", "poll_until", "qk", "within"]

HERE = Path(__file__).resolve().parent
WORKER_SCRIPT = HERE / "chaos_worker.py"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def figure(name: str, **values: Any) -> None:
    """Record a measured figure of a fault test."""
    line = json.dumps({"test": name, **values}, sort_keys=True)
    print(f"\n[faults] {line}", flush=True)
    path = os.environ.get("OMNIQ_FAULTS_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


async def poll_until(
    check: Callable[[], Awaitable[bool]], seconds: float, what: str, interval: float = 0.05
) -> float:
    """:func:`shared_util.poll_until` polling every 50 ms by default (the resolution of the
    recorded figures); returns the seconds it took."""
    return await shared_util.poll_until(check, seconds, what, interval)


# --------------------------------------------------------------------------- worker process


class WorkerProc(ScriptProc):
    """A ``chaos_worker.py`` process whose output goes to a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        super().__init__(WORKER_SCRIPT, args, log_path)


# --------------------------------------------------------------------------- TCP proxy


class _Link:
    """One proxied connection: the client side and the upstream side."""

    def __init__(self, cw: asyncio.StreamWriter, uw: asyncio.StreamWriter) -> None:
        self.cw = cw
        self.uw = uw
        self.frozen = False  # black-holed for good: nothing is forwarded any more
        self.dead = asyncio.Event()

    def abort(self) -> None:
        self.dead.set()
        for w in (self.cw, self.uw):
            transport = w.transport
            if not transport.is_closing():
                transport.abort()  # RST, like a dropped route or a crashed middlebox


class FaultProxy:
    """A loopback TCP proxy with fault injection, running on its own thread and loop.

    Modes (switched at any time from the test's thread):

    * ``delay(seconds)`` -- every chunk, both directions, is held that long before it is
      forwarded (order kept).
    * ``blackhole()`` -- every existing and new connection stops forwarding, for good: its
      bytes are never delivered, its sockets stay open (a peer that vanished without a FIN
      or RST). ``heal()`` lets *new* connections through again; the frozen ones stay frozen.
    * ``refuse()`` -- every connection is cut (RST) and new ones are cut as soon as they
      are accepted, until ``heal()``.
    * ``cut()`` -- cut every connection now (new ones are still accepted).
    * ``drop_next_reply()`` -- the next server-to-client chunk is discarded and its
      connection cut: the command ran, the client never hears about it.
    * ``drop_next_request()`` -- the next client-to-server chunk is discarded and its
      connection cut: the command never ran.
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.accepted = 0
        self._delay = 0.0
        self._refusing = False
        self._blackhole = False
        self._drop_reply = False
        self._drop_request = False
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fault-proxy")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._run(self._start())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    # -- controls (thread-safe) --------------------------------------------------------

    def delay(self, seconds: float) -> None:
        self._run(self._set(delay=seconds))

    def blackhole(self) -> None:
        self._run(self._set(blackhole=True))

    def refuse(self) -> None:
        self._run(self._set(refusing=True))

    def heal(self) -> None:
        self._run(self._set(blackhole=False, refusing=False, delay=0.0))

    def cut(self) -> None:
        self._run(self._cut_all())

    def drop_next_reply(self) -> None:
        self._run(self._set(drop_reply=True))

    def drop_next_request(self) -> None:
        self._run(self._set(drop_request=True))

    @property
    def open_links(self) -> int:
        return len(self._links)

    # -- internals ---------------------------------------------------------------------

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_all()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _set(self, **changes: Any) -> None:
        if "delay" in changes:
            self._delay = changes["delay"]
        if changes.get("blackhole"):
            for link in self._links:
                link.frozen = True
        if "blackhole" in changes:
            self._blackhole = changes["blackhole"]
        if changes.get("refusing"):
            await self._cut_all()
        if "refusing" in changes:
            self._refusing = changes["refusing"]
        if "drop_reply" in changes:
            self._drop_reply = changes["drop_reply"]
        if "drop_request" in changes:
            self._drop_request = changes["drop_request"]

    async def _cut_all(self) -> None:
        for link in list(self._links):
            link.abort()
        self._links.clear()

    async def _accept(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing:
            cw.transport.abort()
            return
        try:
            ur, uw = await asyncio.open_connection(*self.upstream)
        except OSError:
            cw.transport.abort()  # the server is down: the client sees its link reset
            return
        link = _Link(cw, uw)
        link.frozen = self._blackhole
        self._links.add(link)
        try:
            await asyncio.gather(self._pump(link, cr, uw, up=True),
                                 self._pump(link, ur, cw, up=False))
        except asyncio.CancelledError:
            pass  # the proxy is closing
        finally:
            link.abort()
            self._links.discard(link)

    async def _pump(self, link: _Link, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    *, up: bool) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                if self._delay:
                    await asyncio.sleep(self._delay)
                if link.frozen:
                    await link.dead.wait()  # never delivered; ends when the link is cut
                    break
                if up and self._drop_request:
                    self._drop_request = False
                    break
                if not up and self._drop_reply:
                    self._drop_reply = False
                    break
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            link.abort()


# --------------------------------------------------------------------------- event replay

# the state a job is in after each event type (docs/events.md)
_STATE_AFTER = {"enqueued": "wait", "delayed": "delayed", "promoted": "wait",
                "reserved": "active", "completed": "completed", "failed": "failed",
                "retry_scheduled": "delayed", "retried": "wait", "removed": "removed"}


def replay(entries: list[tuple[str, dict[str, str]]]) -> dict[str, tuple[str, int]]:
    """Each job's (state, attempt) from its events alone (XRANGE entries, oldest first):
    the state of the last transition, the attempt of the last reserved (0 after retried)."""
    out: dict[str, tuple[str, int]] = {}
    for _, f in entries:
        job, kind = f["id"], f["type"]
        if not job:  # paused / resumed
            continue
        state, attempt = out.get(job, ("", 0))
        if kind == "reserved":
            attempt = int(f["attempt"])
        elif kind == "retried":
            attempt = 0
        out[job] = (_STATE_AFTER.get(kind, state), attempt)
    return out
