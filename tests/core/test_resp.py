"""The lean RESP2 connection (omniq.aio._resp) against real servers: pipelining, errors in
place, decoding parity with redis-py, cancellation, broken and paused servers, connection
set-up, fork, and which clients use it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
import warnings

import pytest
import redis
import redis.asyncio as aredis
from redis import exceptions as rexc

from omniq import AsyncOmniq
from omniq.aio._connect import ConnectionSettings
from omniq.aio._resp import RespClient
from omniq.errors import ConnectionFailed, OmniqError, PermissionDenied, ServerError

# The lean connection is the single-node transport (a cluster keeps redis-py).
pytestmark = pytest.mark.single_node


def _client(url: str, **options: object) -> RespClient:
    lean = ConnectionSettings.from_options(url=url, **options).lean()  # type: ignore[arg-type]
    assert lean is not None
    return lean


@pytest.fixture
async def lean(omniq_redis_url):
    client = _client(omniq_redis_url)
    yield client
    await client.aclose()


async def test_pipelines_and_concurrent_callers_get_their_own_replies_in_order(lean):
    n = 500
    replies = await lean.execute_many([("INCR", "c") for _ in range(n)])
    assert replies == list(range(1, n + 1))
    # many concurrent callers share the one connection
    got = await asyncio.gather(*[lean.execute("ECHO", f"v{i}") for i in range(n)])
    assert got == [f"v{i}" for i in range(n)]
    mixed = await asyncio.gather(
        lean.execute_many([("SET", "a", "1"), ("GET", "a")]),
        lean.execute("INCR", "c"),
        lean.execute_many([("GET", "nope"), ("RPUSH", "l", "x", "y"), ("LRANGE", "l", 0, -1)]),
    )
    assert mixed == [["OK", "1"], n + 1, [None, 2, ["x", "y"]]]
    assert await lean.execute_many([]) == []


async def test_error_replies_are_redis_py_exceptions_in_place(lean):
    await lean.execute("SET", "s", "text")
    replies = await lean.execute_many(
        [("INCR", "s"), ("GET", "s"), ("EVALSHA", "0" * 40, 0), ("NOSUCHCOMMAND",), ("PING",)]
    )
    assert isinstance(replies[0], rexc.ResponseError)
    assert "not an integer" in str(replies[0])
    assert replies[1] == "text"
    assert isinstance(replies[2], rexc.NoScriptError)
    assert isinstance(replies[3], rexc.ResponseError)
    assert replies[4] == "PONG"
    with pytest.raises(rexc.ResponseError, match="not an integer"):
        await lean.execute("INCR", "s")
    assert await lean.execute("GET", "s") == "text"  # the stream is still in step


async def test_replies_decode_as_redis_py_with_decode_responses(lean, omniq_redis_url):
    script = (
        "redis.call('SET', KEYS[1], ARGV[1]); "
        "return {redis.call('GET', KEYS[1]), 42, {'a', {7}}, redis.status_reply('FINE'), "
        "ARGV[2], -1}"
    )
    args = ("EVAL", script, 1, "k", b"\xff\xfebad\xc3", "\u00e9\u4e2d")
    ours = await lean.execute(*args)
    r = aredis.Redis.from_url(omniq_redis_url, decode_responses=True, encoding_errors="replace")
    try:
        theirs = await r.execute_command(*args)
        assert ours == theirs
        assert await lean.execute("GET", "missing") is None
        assert await lean.execute("HGETALL", "missing") == []
        ours_err = await lean.execute_many([("EVAL", "return redis.error_reply('BOOM x')", 0)])
        with pytest.raises(rexc.ResponseError) as theirs_err:
            await r.execute_command("EVAL", "return redis.error_reply('BOOM x')", 0)
        assert type(ours_err[0]) is type(theirs_err.value)
        assert str(ours_err[0]) == str(theirs_err.value)
    finally:
        await r.aclose()


async def _sent(lean: RespClient, count: int) -> None:
    """Let the started callers run up to their await: their commands are then written."""
    for _ in range(10):
        conn = lean._conn
        if conn is not None and len(conn.waiters) >= count:
            return
        await asyncio.sleep(0)  # one loop iteration, not a timing wait
    raise AssertionError("the commands were not sent")


async def test_a_cancelled_caller_keeps_the_stream_in_step(lean, raw):
    await lean.execute("PING")  # connected
    blocked = asyncio.create_task(lean.execute("BLPOP", "list", 10))
    after = asyncio.create_task(lean.execute("ECHO", "mine"))
    await _sent(lean, 2)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    raw.rpush("list", "for-the-cancelled-caller")
    # the BLPOP reply is read and dropped; the next reply goes to the next caller
    assert await after == "mine"
    assert await lean.execute("ECHO", "next") == "next"
    assert raw.llen("list") == 0  # the cancelled command did run (it was sent)

    # a cancelled pipeline too
    pipe = asyncio.create_task(lean.execute_many([("BLPOP", "list", 10), ("ECHO", "p")]))
    await _sent(lean, 2)
    pipe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pipe
    raw.rpush("list", "x")
    assert await lean.execute_many([("ECHO", "a"), ("ECHO", "b")]) == ["a", "b"]


async def test_server_killed_mid_call_fails_it_and_the_next_call_reconnects(
    omniq_server_factory,
):
    server = omniq_server_factory()
    lean = _client(server.url)
    try:
        await lean.execute("SET", "k", "v")
        first = lean._conn
        blocked = asyncio.create_task(lean.execute("BLPOP", "list", 30))
        pending = asyncio.create_task(lean.execute_many([("PING",), ("PING",)]))
        await _sent(lean, 3)
        server.kill()
        with pytest.raises(ConnectionFailed, match="Redis connection failed"):
            await blocked
        with pytest.raises(ConnectionFailed):
            await pending
        assert not lean.connected
        with pytest.raises(ConnectionFailed):  # the server is down: connecting fails
            await lean.execute("PING")
        server.restart()
        assert await lean.execute("PING") == "PONG"  # lazily reconnected
        assert lean._conn is not first
    finally:
        await lean.aclose()


async def test_a_broken_connection_never_resends_a_command(omniq_server_factory):
    server = omniq_server_factory()
    lean = _client(server.url)
    watcher = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        await lean.execute("PING")
        batch = asyncio.create_task(lean.execute_many([("INCR", "runs"), ("BLPOP", "l", 30)]))
        await _sent(lean, 2)
        deadline = time.monotonic() + 5
        while not any(c["cmd"] == "blpop" for c in watcher.client_list()):  # server state:
            assert time.monotonic() < deadline, "the BLPOP never blocked"  # polled, bounded
            await asyncio.sleep(0.01)
        watcher.client_kill_filter(_type="normal", skipme=True)  # cut the lean connection
        with pytest.raises(ConnectionFailed):  # its outcome is unknown to the caller
            await batch
        assert await lean.execute("GET", "runs") == "1"  # ran once, never re-sent
        assert not any(c["cmd"] == "blpop" for c in watcher.client_list())
    finally:
        watcher.close()
        await lean.aclose()


async def test_socket_timeout_on_a_paused_server_fails_and_drops_the_connection(
    omniq_server_factory,
):
    server = omniq_server_factory()
    lean = _client(server.url, socket_timeout=0.3)
    try:
        await lean.execute("PING")
        stuck = lean._conn
        os.kill(server.pid, signal.SIGSTOP)
        try:
            calls = asyncio.gather(
                lean.execute("SET", "k", "1"), lean.execute_many([("GET", "k")]),
                return_exceptions=True,
            )
            for result in await asyncio.wait_for(calls, 5):
                assert isinstance(result, ConnectionFailed)
                assert "Timeout reading from" in str(result)
            assert not lean.connected
        finally:
            os.kill(server.pid, signal.SIGCONT)
        # the late replies of the dropped connection never reach the new one
        assert await lean.execute("ECHO", "fresh") == "fresh"
        assert lean._conn is not stuck
        assert await lean.execute("GET", "k") == "1"  # it ran (sent before the pause)
    finally:
        await lean.aclose()


async def test_connection_setup_auth_select_and_name(omniq_server_factory):
    server = omniq_server_factory()
    with redis.Redis.from_url(server.url) as admin:
        admin.acl_setuser("carol", enabled=True, passwords=["+pw-carol"], keys=["*"],
                          channels=["*"], commands=["+@all"])
        admin.config_set("requirepass", "pw-default")
    base = server.url.replace("redis://", "")
    lean = _client(f"redis://carol:pw-carol@{base.rsplit('/', 1)[0]}/5", client_name="lean-1")
    try:
        info = await lean.execute("CLIENT", "INFO")
        assert " name=lean-1 " in info
        assert " db=5 " in info
        assert " user=carol " in info
        assert "resp=2" in info
    finally:
        await lean.aclose()
    only_password = _client(f"redis://:pw-default@{base}")
    try:
        assert " user=default " in await only_password.execute("CLIENT", "INFO")
    finally:
        await only_password.aclose()
    wrong = _client(f"redis://carol:nope@{base}")
    try:
        with pytest.raises(rexc.AuthenticationError):
            await wrong.execute("PING")
        assert not wrong.connected
    finally:
        await wrong.aclose()
    # through the client: the same mapping as redis-py's path
    async with AsyncOmniq(url=f"redis://carol:nope@{base}") as client:
        with pytest.raises(PermissionDenied):
            await client.publish("q", {"x": 1})


async def test_close_fails_waiters_and_a_later_call_reconnects(lean):
    await lean.execute("PING")
    blocked = asyncio.create_task(lean.execute("BLPOP", "list", 30))
    await _sent(lean, 1)
    await lean.aclose()
    with pytest.raises(ConnectionFailed):
        await blocked
    assert await lean.execute("PING") == "PONG"


async def test_a_child_after_fork_never_uses_the_parents_connection(lean):
    parent_id = await lean.execute("CLIENT", "ID")
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            # a thread of its own: the forked thread still looks like it runs the loop
            result: list[int] = []
            t = threading.Thread(
                target=lambda: result.append(asyncio.run(lean.execute("CLIENT", "ID"))))
            t.start()
            t.join(10)
            os.write(write_end, str(result[0]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    child_id = int(os.read(read_end, 100) or b"0")
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_id not in (0, parent_id)
    # the parent's connection is intact
    assert await lean.execute("CLIENT", "ID") == parent_id


async def test_which_clients_use_the_lean_connection(omniq_redis_url, tmp_path):
    async with AsyncOmniq(url=omniq_redis_url) as c:
        assert c._runner.lean is not None
        await c.publish("q", {"x": 1})
        assert c._runner.lean.connected
        # the socket is set up as redis-py's are (keepalive, no Nagle)
        pooled = c.redis.connection_pool.make_connection()
        assert c._runner.lean.socket_keepalive == bool(pooled.socket_keepalive)
        assert c._runner.lean.socket_keepalive_options == pooled.socket_keepalive_options
        sock = c._runner.lean._conn.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == int(
            bool(pooled.socket_keepalive))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    host, port = omniq_redis_url.split("//")[1].split("/")[0].split(":")
    async with AsyncOmniq(host=host, port=int(port)) as c:
        assert c._runner.lean is not None
    async with AsyncOmniq(url=omniq_redis_url, lean_transport=False) as c:
        assert c._runner.lean is None
        await c.publish("q", {"x": 2})
    shared = aredis.Redis.from_url(omniq_redis_url, decode_responses=True)
    try:
        async with AsyncOmniq(redis=shared) as c:
            assert c._runner.lean is None
            assert (await c.stats("q")).waiting == 2
    finally:
        await shared.aclose()
    async with AsyncOmniq(url=f"unix://{tmp_path}/no.sock") as c:
        assert c._runner.lean is None  # other connection kinds keep redis-py
    # a cluster keeps redis-py
    assert ConnectionSettings.from_options(url="redis+cluster://127.0.0.1:1").lean() is None
    assert ConnectionSettings.from_options(port=1, cluster=True).lean() is None


async def test_script_errors_map_as_on_the_redis_py_path(omniq_redis_url, raw):
    raw.set("{q}:wait", "not a list")
    for lean_transport in (True, False):
        async with AsyncOmniq(url=omniq_redis_url, lean_transport=lean_transport) as c:
            with pytest.raises(OmniqError, match=r"Redis error: .*WRONGTYPE") as err:
                await c.publish("q", {"x": 1})
            assert type(err.value) is ServerError


def _redis_py_error_replies() -> list[str]:
    """One error reply per code (and per special ERR message) redis-py's parser knows."""
    from redis._parsers.base import BaseParser  # private: only to compare with ours

    replies = ["WHATEVER unknown code", "ERR plain error", "NOSCRIPT", "single"]
    for code, classes in BaseParser.EXCEPTION_CLASSES.items():
        if isinstance(classes, dict):
            replies += [f"{code} {message}" for message in classes]
            replies.append(f"{code} some other message")
        elif code in ("MOVED", "ASK"):
            replies.append(f"{code} 3999 127.0.0.1:6381")
        else:
            replies.append(f"{code} a message")
    return replies


@pytest.mark.parametrize("reply", _redis_py_error_replies())
def test_error_replies_map_to_the_classes_redis_py_maps_them_to(reply):
    from redis._parsers.base import BaseParser

    from omniq.aio._resp import error_reply

    ours = error_reply(reply)
    theirs = BaseParser.parse_error(reply)
    assert type(ours) is type(theirs)
    assert ours.args == theirs.args
    assert getattr(ours, "status_code", None) == getattr(theirs, "status_code", None)


def test_a_malformed_redirection_reply_is_a_response_error():
    from omniq.aio._resp import error_reply

    err = error_reply("MOVED nonsense")
    assert type(err) is rexc.ResponseError
    assert str(err) == "MOVED nonsense"


def test_the_lean_connection_works_on_uvloop(omniq_redis_url):
    uvloop = pytest.importorskip("uvloop")

    async def main() -> tuple[object, list[object]]:
        async with AsyncOmniq(url=omniq_redis_url) as c:
            assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
            job_id = await c.publish("uv", {"x": 1})
            job = await c.reserve("uv")
            assert job is not None
            assert job.job_id == job_id
            await c.ack_success("uv", job.job_id, job.lease_token)
            lean = c._runner.lean
            assert lean is not None
            transport = lean._conn.transport
            replies = await lean.execute_many([("PING",), ("EVALSHA", "0" * 40, 0)])
            return transport, replies

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        transport, replies = runner.run(main())
    # the case this covers: uvloop's transport is not an asyncio.Transport subclass
    assert not isinstance(transport, asyncio.Transport)
    assert replies[0] == "PONG"
    assert isinstance(replies[1], rexc.NoScriptError)
