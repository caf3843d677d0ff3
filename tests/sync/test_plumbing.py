"""The plumbing under the blocking facade: URL validation through OmniqClient, the one
thread-to-loop bridge (omniq._bridge), the one fork registry (omniq._fork), and the facade
under ``uvloop.install()``."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Iterator

import pytest

from omniq import AsyncOmniq, OmniqClient, _bridge, _fork
from omniq.aio.worker import Worker
from omniq.errors import InvalidArgument
from omniq.sync import SyncClientError

SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")


def test_omniq_client_with_a_url_without_scheme_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as err:
        OmniqClient(redis_url="localhost:6379")
    for scheme in SCHEMES:
        assert scheme in str(err.value)


# --------------------------------------------------------------------------- the bridge


@pytest.fixture
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_bridge_runs_on_the_loop_and_returns_or_raises(
    loop_thread: asyncio.AbstractEventLoop,
) -> None:
    async def where() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def boom() -> None:
        raise KeyError("x")

    assert _bridge.call(loop_thread, where()) is loop_thread
    with pytest.raises(KeyError):
        _bridge.call(loop_thread, boom())


def test_bridge_timeout_cancels_the_call_on_the_loop(
    loop_thread: asyncio.AbstractEventLoop,
) -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        _bridge.call(loop_thread, forever(), timeout=0.05)
    assert cancelled.wait(5)


async def test_bridge_refuses_the_loops_own_thread() -> None:
    async def never() -> None:  # pragma: no cover - closed, never run
        raise AssertionError

    with pytest.raises(SyncClientError, match="own event loop"):
        _bridge.call(asyncio.get_running_loop(), never())


def test_bridge_refuses_a_closed_loop() -> None:
    loop = asyncio.new_event_loop()
    loop.close()

    async def never() -> None:  # pragma: no cover - closed, never run
        raise AssertionError

    with pytest.raises(SyncClientError, match="closed"):
        _bridge.call(loop, never())


async def test_sync_exec_works_from_any_thread_of_a_plain_handler(omniq: AsyncOmniq) -> None:
    """ctx.exec knows its loop: a thread the handler starts itself may use it too (anyio's
    from_thread only worked on the worker's own handler threads)."""
    seen: list[str] = []

    def handler(ctx):  # type: ignore[no-untyped-def]
        def publish() -> None:
            seen.append(ctx.exec.publish("child", {"of": ctx.job_id}))

        t = threading.Thread(target=publish)
        t.start()
        t.join(10)

    await omniq.publish("parent", {"n": 1})
    worker = Worker(omniq, "parent", handler, drain=True)
    await worker.run()
    assert worker.stats.completed == 1
    assert len(seen) == 1
    assert (await omniq.stats("child")).waiting == 1


# --------------------------------------------------------------------------- fork


class _Owner:
    def __init__(self) -> None:
        self.forked = False


def test_fork_registry_calls_back_in_the_child_and_holds_objects_weakly() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork() here")
    owner = _Owner()
    _fork.on_fork_in_child(owner, lambda o: setattr(o, "forked", True))
    gone = _Owner()
    _fork.on_fork_in_child(gone, lambda o: setattr(o, "forked", True))
    del gone
    gc.collect()
    assert sum(isinstance(o, _Owner) for o in _fork._callbacks) == 1  # held weakly
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, b"1" if owner.forked else b"0")
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    assert os.read(read_end, 1) == b"1"
    os.close(read_end)
    assert not owner.forked  # only in the child


# --------------------------------------------------------------------------- uvloop


def test_the_facade_works_after_uvloop_install(omniq_redis_url: str) -> None:
    pytest.importorskip("uvloop")
    code = """
        import sys, warnings
        import uvloop
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # install() is deprecated
            uvloop.install()
        from omniq import OmniqClient

        def handler(ctx):
            ctx.exec.publish("done", {"of": ctx.job_id})

        with OmniqClient(redis_url=sys.argv[1]) as uq:
            uq.publish("uv", {"n": 1})
            worker = uq.consume("uv", handler, drain=True)
            loop = type(uq._holder.state.loop)
            print(worker.stats.completed, uq.stats("done").waiting,
                  loop.__module__.split(".")[0])
    """
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code), omniq_redis_url],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    # the private loop follows the installed policy (asyncio.Runner's default): uvloop
    assert proc.stdout.split() == ["1", "1", "uvloop"]
