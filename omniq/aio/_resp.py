"""A lean RESP2 client on one multiplexed connection, for the script hot path.

redis-py spends most of a sequential EVALSHA round trip in its own layers (pool checkout
and release, command encoding, response parsing); this client is an ``asyncio.Protocol``
with a ``hiredis.Reader`` and nothing else:

* every request is written at once, in order, with ``hiredis.pack_command``; each waiting
  caller holds a future in a FIFO that the replies resolve, so any number of concurrent
  callers share the one connection (pipelining for free) and :meth:`RespClient.execute_many`
  writes N commands in one ``transport.write`` and gets N replies;
* replies are decoded as redis-py does with ``decode_responses=True,
  encoding_errors="replace"`` (str, int, list, None), and error replies become the same
  redis-py exception objects (:func:`error_reply` maps the error code as redis-py's parser
  does; a test compares the two), so callers map them exactly as they map redis-py's;
* a command whose connection breaks is never re-sent (scripts are not idempotent): every
  waiter of that connection gets :class:`~omniq.errors.ConnectionFailed` (outcome unknown)
  and the next call connects again;
* ``socket_timeout``: a command without a reply in time fails with ConnectionFailed and the
  connection is dropped (a later reply would be given to the wrong caller);
* a waiting caller that is cancelled leaves its future in the FIFO: its reply is still
  read, and dropped, so the stream stays in step;
* after ``os.fork()`` the child never touches the parent's connection: it is parked
  (:mod:`omniq._fork`), and the child connects on its first call;
* any transport the loop gives (asyncio's, uvloop's) is used through the methods every
  ``asyncio.Transport`` has, and no failure surfaces as anything but an exception of
  omniq or redis-py.

Connection set-up (AUTH, SELECT, CLIENT SETNAME, TLS) comes from the
:class:`~omniq.aio._connect.ConnectionSettings` that also build the redis-py client, so a
URL or option means the same thing on both connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import hiredis
from redis import exceptions as rexc

from omniq import _fork
from omniq.errors import ConnectionFailed

__all__ = ["RespClient", "error_reply"]

_pack = hiredis.pack_command
_running_loop = asyncio.get_running_loop
_CLOSE_TIMEOUT_S = 5.0


def _exception_classes(names: Mapping[str, str]) -> dict[str, type[Exception]]:
    # the first class of "A|B" this redis-py release has; none: left out (its replies stay
    # ResponseError)
    classes = {key: next((c for n in name.split("|") if (c := getattr(rexc, n, None))), None)
               for key, name in names.items()}
    return {key: cls for key, cls in classes.items() if cls is not None}


# The exception class of an error reply by its code (the first word), as redis-py's parser
# maps them; tests/core/test_resp.py checks this against the installed redis-py.
_ERROR_CLASSES = _exception_classes({
    "OOM": "OutOfMemoryError",
    "WRONGPASS": "AuthenticationError",
    "EXECABORT": "ExecAbortError",
    "LOADING": "BusyLoadingError",
    "NOSCRIPT": "NoScriptError",
    "READONLY": "ReadOnlyError",
    "NOAUTH": "AuthenticationError",
    "NOPERM": "NoPermissionError",
    "ASK": "AskError",
    "TRYAGAIN": "TryAgainError",
    "MOVED": "MovedError",
    "CLUSTERDOWN": "ClusterDownError",
    "CROSSSLOT": "ClusterCrossSlotError",
    "MASTERDOWN": "MasterDownError",
})
# ERR replies: the class by the exact rest of the message (others are ResponseError)
_ERR_CLASSES = _exception_classes({
    "max number of clients reached": "MaxClientsReachedError|ConnectionError",  # (8.2)
    "invalid password": "AuthenticationError",
    "wrong number of arguments for 'auth' command": "AuthenticationWrongNumberOfArgsError",
    "wrong number of arguments for 'AUTH' command": "AuthenticationWrongNumberOfArgsError",
    "Error loading the extension. Please check the server logs.": "ModuleError",
    "Error unloading module: the module exports one or more module-side data types, "
    "can't unload": "ModuleError",
    "Error unloading module: no such module with that name": "ModuleError",
    "Error unloading module: operation not possible.": "ModuleError",
    "AUTH <password> called without any password configured for the default user. Are you "
    "sure your configuration is correct?": "AuthenticationError",
    "Client sent AUTH, but no password is set": "AuthenticationError",
    "problem with LDAP service": "ExternalAuthProviderError",
    "no such fieldset": "NoSuchFieldsetError",
})


_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")  # an error code, as redis-py's parser sees one


def error_reply(message: str) -> Exception:
    """The redis-py exception for an error reply (hiredis' ``replyError`` callback).

    As redis-py: a known code is stripped from the message (``NOSCRIPT No matching
    script`` -> ``NoScriptError("No matching script")``); anything else is a
    ``ResponseError`` with the whole message.
    """
    code = message.split(" ")[0]
    if code == "ERR":
        rest = message[4:]
        cls = _ERR_CLASSES.get(rest, rexc.ResponseError)
    elif code in _ERROR_CLASSES:
        rest = message[len(code) + 1:]
        cls = _ERROR_CLASSES[code]
    else:
        # redis-py >= 8.2 keeps a code-shaped first word as the status code
        if _CODE.fullmatch(code):
            with contextlib.suppress(TypeError):  # an older redis-py: no status_code
                return rexc.ResponseError(message, status_code=code)  # type: ignore[call-arg, unused-ignore]
        return rexc.ResponseError(message)
    try:
        try:
            return cls(rest, status_code=code)  # type: ignore[call-arg]  # redis-py >= 6
        except TypeError:  # an older redis-py: no status_code
            return cls(rest)
    except Exception:  # a malformed MOVED/ASK: keep the reply rather than break the stream
        return rexc.ResponseError(message)


class _Batch:
    """The waiter of a pipeline: N replies, then one future resolved with their list."""

    __slots__ = ("fut", "n", "replies")

    def __init__(self, fut: asyncio.Future[list[Any]], n: int) -> None:
        self.fut = fut
        self.n = n
        self.replies: list[Any] = []


class _Connection(asyncio.Protocol):
    """One connection: writes requests, resolves the FIFO of waiters with the replies."""

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str) -> None:
        self.loop = loop
        self.where = where
        # asyncio.Transport or any transport with its methods (uvloop's is not a subclass)
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader(encoding="utf-8", errors="replace", replyError=error_reply)
        self.waiters: deque[asyncio.Future[Any] | _Batch] = deque()
        self.error: str | None = None  # set once the connection is unusable
        self.closed: asyncio.Future[None] = loop.create_future()
        self.paused = False
        self._drain: list[asyncio.Future[None]] = []

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # see __init__

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiters = self.waiters
        try:
            reply = reader.gets()
            while reply is not False:
                w = waiters.popleft()
                if w.__class__ is _Batch:
                    replies = w.replies
                    replies.append(reply)
                    if len(replies) == w.n and not w.fut.done():
                        w.fut.set_result(replies)
                elif not w.done():  # type: ignore[union-attr]
                    w.set_result(reply)  # type: ignore[union-attr]
                reply = reader.gets()
        except hiredis.ProtocolError as exc:
            self.fail(f"protocol error: {exc}")
        except IndexError:
            self.fail("a reply arrived that no command was waiting for")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None:
            self.error = str(exc) if exc is not None else "connection closed by the server"
        self.transport = None
        self._fail_waiters()
        self._wake_drain()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()

    # -- use ---------------------------------------------------------------------------

    def send(self, data: bytes, waiter: asyncio.Future[Any] | _Batch, n: int) -> None:
        """Write ``n`` commands whose replies go to ``waiter`` (one future, or a batch)."""
        transport = self.transport
        if transport is None:  # not expected (a live connection has one): fail, not assert
            raise ConnectionFailed(f"Redis connection failed: {self.error or 'not connected'}")
        transport.write(data)
        if n == 1:
            self.waiters.append(waiter)
        else:
            self.waiters.extend([waiter] * n)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self.paused and self.error is None:
            fut = self.loop.create_future()
            self._drain.append(fut)
            await fut

    def fail(self, reason: str) -> None:
        """Make the connection unusable: fail every waiter and drop it (its stream can no
        longer be trusted)."""
        if self.error is None:
            self.error = reason
        self._fail_waiters()
        if self.transport is not None:
            self.transport.abort()

    def abandon(self, reason: str) -> None:
        """Drop a connection whose waiters are gone (a set-up that failed or was
        cancelled): their futures are cancelled, not failed, as nobody awaits them."""
        if self.error is None:
            self.error = reason
        while self.waiters:
            w = self.waiters.popleft()
            (w.fut if isinstance(w, _Batch) else w).cancel()
        if self.transport is not None:
            self.transport.abort()

    def timed_out(self, fut: asyncio.Future[Any], timeout: float) -> None:
        if not fut.done():
            self.fail(f"Timeout reading from {self.where} (no reply within "
                      f"socket_timeout={timeout}s; the connection is dropped)")

    def _fail_waiters(self) -> None:
        waiters = self.waiters
        while waiters:
            w = waiters.popleft()
            fut = w.fut if isinstance(w, _Batch) else w
            if not fut.done():
                fut.set_exception(ConnectionFailed(f"Redis connection failed: {self.error}"))

    def _wake_drain(self) -> None:
        drain, self._drain = self._drain, []
        for fut in drain:
            if not fut.done():
                fut.set_result(None)


class RespClient:
    """A lazily connected, single-connection RESP2 client (see the module docstring).

    Commands are sequences of str, bytes, int or float. :meth:`execute` raises an error
    reply as the redis-py exception (``redis.exceptions.ResponseError`` and subclasses);
    :meth:`execute_many` returns them in place. Transport failures raise
    :class:`~omniq.errors.ConnectionFailed`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        client_name: str | None = None,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ssl_context_factory: Callable[[], ssl.SSLContext] | None = None,
        socket_keepalive: bool = False,
        socket_keepalive_options: Mapping[int, int] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.db = db
        self.username = username
        self.password = password
        self.client_name = client_name
        self.socket_timeout = socket_timeout or None
        self.socket_connect_timeout = socket_connect_timeout or socket_timeout or None
        self._ssl_context = ssl_context
        self._ssl_factory = ssl_context_factory  # a callable building the context, lazily
        self.socket_keepalive = socket_keepalive
        self.socket_keepalive_options = dict(socket_keepalive_options or {})
        self._conn: _Connection | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        _fork.on_fork_in_child(self, RespClient._forget)

    # -- commands ----------------------------------------------------------------------

    # execute and execute_many are plain functions returning the coroutine of _round_trip:
    # the hot path (one call per job) costs one coroutine, not two.

    def execute(self, *args: Any) -> Coroutine[Any, Any, Any]:
        """Send one command; the awaitable returns its reply (an error reply is raised)."""
        return self._round_trip(_pack(args), 0)

    def execute_many(self, commands: Sequence[Sequence[Any]]) -> Coroutine[Any, Any, list[Any]]:
        """Send the commands in one write; the awaitable returns their replies in order,
        error replies in place as exception objects."""
        if not commands:
            return _no_replies()
        return self._round_trip(b"".join([_pack(tuple(c)) for c in commands]), len(commands))

    async def _round_trip(self, data: bytes, n: int) -> Any:
        """Write ``data`` and wait for its replies: ``n`` of them as a list, or with ``n=0``
        the one reply of a single command (raised if it is an error)."""
        conn = self._conn
        loop = _running_loop()
        if conn is None or conn.error is not None or conn.loop is not loop:
            conn = await self._connect()
        fut: asyncio.Future[Any] = loop.create_future()
        if n:
            conn.send(data, _Batch(fut, n), n)
        else:
            conn.send(data, fut, 1)
        if conn.paused:
            await _drain(conn, fut)
        timeout = self.socket_timeout
        if timeout is None:
            reply = await fut
        else:
            handle = loop.call_later(timeout, conn.timed_out, fut, timeout)
            try:
                reply = await fut
            finally:
                handle.cancel()
        if not n and isinstance(reply, Exception):
            raise reply
        return reply

    # -- connection --------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and conn.error is None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        async with self._lock:
            conn = self._conn
            if conn is not None and conn.error is None:
                if conn.loop is loop:
                    return conn
                # made on another event loop: not usable here, and not ours to close from
                # this one; it is left to that loop (the client is meant for one loop)
                _fork.park(conn)
            conn = _Connection(loop, f"{self.host}:{self.port}")
            try:
                async with asyncio.timeout(self.socket_connect_timeout):
                    await self._open(loop, conn)
            except BaseException as exc:
                conn.abandon("connection set-up failed")
                if isinstance(exc, ConnectionFailed):
                    raise
                if isinstance(exc, TimeoutError):
                    raise ConnectionFailed(
                        f"Redis connection failed: timed out connecting to "
                        f"{self.host}:{self.port}"
                    ) from exc
                if isinstance(exc, OSError):
                    raise ConnectionFailed(f"Redis connection failed: {exc}") from exc
                raise
            self._conn = conn
            return conn

    async def _open(self, loop: asyncio.AbstractEventLoop, conn: _Connection) -> None:
        ctx = self._ssl_context
        if ctx is None and self._ssl_factory is not None:
            ctx = self._ssl_context = self._ssl_factory()
        transport, _ = await loop.create_connection(
            lambda: conn, self.host, self.port, ssl=ctx,
            server_hostname=self.host if ctx is not None else None,
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:  # as redis-py sets its sockets up
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.socket_keepalive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                for option, value in self.socket_keepalive_options.items():
                    sock.setsockopt(socket.SOL_TCP, option, value)
        setup: list[tuple[Any, ...]] = []
        if self.username or self.password:  # as redis-py: AUTH [username] password
            if self.username:
                setup.append(("AUTH", self.username, self.password or ""))
            else:
                setup.append(("AUTH", self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        if self.client_name:
            setup.append(("CLIENT", "SETNAME", self.client_name))
        if not setup:
            return
        batch = _Batch(loop.create_future(), len(setup))
        conn.send(b"".join([_pack(c) for c in setup]), batch, len(setup))
        for reply in await batch.fut:
            if isinstance(reply, Exception):
                raise reply

    async def aclose(self) -> None:
        """Close the connection (waiting callers get ConnectionFailed)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.error is None:
            conn.error = "the client was closed"
        if conn.transport is not None:
            conn.transport.close()
        if conn.loop is not asyncio.get_running_loop():
            return
        try:
            await asyncio.wait_for(asyncio.shield(conn.closed), _CLOSE_TIMEOUT_S)
        except TimeoutError:
            if conn.transport is not None:
                conn.transport.abort()
                await asyncio.shield(conn.closed)

    def _forget(self) -> None:
        """In a forked child: park the parent's connection for good, never touching it."""
        if self._conn is not None:
            _fork.park(self._conn)
        self._conn = None
        self._lock = None
        self._lock_loop = None


async def _drain(conn: _Connection, fut: asyncio.Future[Any]) -> None:
    """Wait for the write buffer to drain; a caller cancelled meanwhile drops its reply."""
    try:
        await conn.drain()
    except BaseException:
        fut.cancel()
        raise


async def _no_replies() -> list[Any]:
    return []
