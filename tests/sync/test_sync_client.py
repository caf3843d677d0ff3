"""OmniqClient behaviour: parity with AsyncOmniq, threads, consume, signals, fork, closing."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis
from shared_util import without_slow_steps

from omniq import Ack, AsyncOmniq, InvalidArgument, JobSpec, Lease, OmniqClient, OmniqError
from omniq._keys import QueueKeys
from omniq.aio.worker import Worker
from omniq.sync import SyncClientError

T0 = 1_700_000_000_000


class Point(msgspec.Struct):
    x: int
    y: int


# --------------------------------------------------------------------------- parity


class AsyncAdapter:
    """Drive an AsyncOmniq from this thread with its own event loop (test helper)."""

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()

        async def make() -> AsyncOmniq:
            return AsyncOmniq(url=url)

        self.client = self._runner.run(make())

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        return lambda *a, **kw: self._runner.run(method(*a, **kw))

    def close(self) -> None:
        self._runner.run(self.client.aclose())
        self._runner.close()


def scenario(c: Any) -> list[Any]:
    """Every operation once, with fixed ids and clocks; returns what each call gave."""
    q = "parity"
    out: list[Any] = []

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except OmniqError as exc:
            return (type(exc).__name__, str(exc))

    out.append(c.ping())
    out.append(c.publish(q, {"a": 1}, job_id="j1", now_ms=T0))
    out.append(c.publish_json(q, Point(x=1, y=2), job_id="j2", max_attempts=1, now_ms=T0))
    out.append(c.publish_many(q, [
        JobSpec(payload={"b": 1}, job_id="j3"),
        JobSpec(payload=[1, 2], job_id="j4", gid="g1", group_limit=1),
    ], now_ms=T0))
    out.append(c.publish(q, {"d": 1}, job_id="j5", delay_ms=1000, now_ms=T0))
    out.append(attempt(lambda: c.publish(q, {"dup": 1}, job_id="j1", now_ms=T0)))
    out.append(attempt(lambda: c.publish(q, "not a dict", now_ms=T0)))
    out.append(c.stats(q))
    c.pause(q)
    out.append((c.is_paused(q), c.reserve(q, now_ms=T0 + 1), c.resume(q), c.resume(q)))
    job = c.reserve(q, now_ms=T0 + 1)
    out.append(job)
    out.append(c.heartbeat(q, job.job_id, job.lease_token, now_ms=T0 + 2))
    out.append(c.heartbeat_many(
        [Lease(q, job.job_id, job.lease_token), (q, "j3", "bad-token")], now_ms=T0 + 3
    ))
    out.append(attempt(lambda: c.heartbeat(q, job.job_id, "bad-token", now_ms=T0 + 3)))
    out.append(c.ack_success(q, job.job_id, job.lease_token, result={"ok": 1}, now_ms=T0 + 4))
    out.append(c.result(q, job.job_id))
    res = c.reserve_many(q, 2, now_ms=T0 + 5)
    out.append(res)
    j2 = next(j for j in res.jobs if j.job_id == "j2")
    other = next(j for j in res.jobs if j.job_id != "j2")
    out.append(c.ack_fail(q, j2.job_id, j2.lease_token, "boom", now_ms=T0 + 6))
    out.append(c.ack_fail(q, other.job_id, other.lease_token, "again", now_ms=T0 + 6))
    nxt = c.reserve(q, now_ms=T0 + 7)
    out.append(nxt)
    out.append(c.ack_reserve(q, [Ack(nxt.job_id, nxt.lease_token, True, "")], 5, now_ms=T0 + 8))
    out.append(c.promote_delayed(q, now_ms=T0 + 60_000))
    out.append(c.reap_expired(q, now_ms=T0 + 10**8))
    out.append(c.stats(q))
    out.append(c.retry_failed(q, "j2", now_ms=T0 + 10**8))
    out.append(attempt(lambda: c.retry_failed(q, "j2", now_ms=T0 + 10**8)))
    out.append(attempt(lambda: c.retry_failed(q, "nope", now_ms=T0 + 10**8)))
    out.append(c.retry_failed_batch(q, ["j2", "j1", "nope"], now_ms=T0 + 10**8))
    out.append(c.get_job(q, "j1"))
    out.append(attempt(lambda: c.remove_job(q, "j1", "completed", now_ms=T0 + 10**8)))
    out.append(attempt(lambda: c.remove_job(q, "j2", "failed", now_ms=T0 + 10**8)))
    out.append(c.remove_jobs_batch(q, "wait", ["j2", "j3", "nope"], now_ms=T0 + 10**8))
    out.append(c.childs_init("parent-1", 2))
    out.append(attempt(lambda: c.childs_init("parent-1", 2)))
    out.append([c.child_ack("parent-1", "c1"), c.child_ack("parent-1", "c1"),
                c.child_ack("parent-1", "c2"), c.child_ack("parent-1", "c2")])
    out.append(attempt(lambda: c.child_ack("parent-2", "c1")))
    out.append(c.get_job(q, "j2"))
    out.append(c.get_job(q, "missing"))
    out.append(c.queues())
    out.append(c.stats(q))
    out.append(attempt(lambda: c.reserve_many(q, 0)))
    return out


def normalize(values: list[Any]) -> Any:
    tokens: dict[str, str] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        if isinstance(v, str) and v in tokens:
            return tokens[v]
        return v

    def hook(obj: Any) -> Any:
        if isinstance(obj, Exception):
            return [type(obj).__name__, str(obj)]
        raise NotImplementedError

    plain = msgspec.to_builtins(values, enc_hook=hook)

    def collect(v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "lease_token" and isinstance(x, str) and x:
                    tokens.setdefault(x, f"<token{len(tokens)}>")
                collect(x)
        elif isinstance(v, list | tuple):
            for x in v:
                collect(x)

    collect(plain)
    return walk(plain)


def test_sync_and_async_give_the_same_results(omniq_redis_url: str, raw: redis.Redis) -> None:
    with OmniqClient(redis_url=omniq_redis_url) as sync_client:
        from_sync = normalize(scenario(sync_client))
    raw.flushdb()
    adapter = AsyncAdapter(omniq_redis_url)
    try:
        from_async = normalize(scenario(adapter))
    finally:
        adapter.close()
    assert len(from_sync) == len(from_async)
    for i, (s, a) in enumerate(zip(from_sync, from_async, strict=True)):
        assert s == a, f"step {i} differs"


# --------------------------------------------------------------------------- threads


def test_eight_threads_publish_ten_thousand_jobs(
    omniq_sync: OmniqClient, raw: redis.Redis
) -> None:
    threads, per_thread = 8, 1250
    barrier = threading.Barrier(threads)
    ids: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def publisher(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                ids[n].append(omniq_sync.publish("mt", {"t": n, "i": i}))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=publisher, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    all_ids = [j for chunk in ids for j in chunk]
    assert len(set(all_ids)) == 10_000
    assert raw.llen(QueueKeys("mt").wait) == 10_000
    assert omniq_sync.stats("mt").waiting == 10_000


# --------------------------------------------------------------------------- consume


def test_consume_drain(omniq_sync: OmniqClient) -> None:
    omniq_sync.publish_many("work", [{"n": i} for i in range(50)])
    done: list[int] = []
    lock = threading.Lock()

    def handler(ctx: Any) -> int:
        with lock:
            done.append(ctx.payload["n"])
        return int(ctx.payload["n"]) * 2

    worker = omniq_sync.consume(queue="work", handler=handler, concurrency=4, drain=True)
    assert isinstance(worker, Worker)
    assert sorted(done) == list(range(50))
    assert worker.stats.completed == 50
    stats = omniq_sync.stats("work")
    assert (stats.waiting_total, stats.active) == (0, 0)


def test_consume_async_and_typed_handlers(omniq_sync: OmniqClient) -> None:
    omniq_sync.publish_json("points", Point(x=2, y=3))
    omniq_sync.publish("points", {"x": "bad"})
    seen: list[Point] = []

    async def handler(ctx: Any, point: Point) -> int:
        seen.append(point)
        await ctx.exec.publish("sums", {"sum": point.x + point.y})
        return point.x * point.y

    worker = omniq_sync.consume(queue="points", handler=handler, drain=True)
    assert seen == [Point(x=2, y=3)]
    assert (worker.stats.completed, worker.stats.failed) == (1, 1)
    sums = omniq_sync.reserve("sums")
    assert sums is not None
    assert sums.payload == {"sum": 5}


def test_plain_handler_uses_the_sync_client_and_ctx_exec(omniq_sync: OmniqClient) -> None:
    omniq_sync.publish("in", {"n": 1})

    def handler(ctx: Any) -> None:
        omniq_sync.publish("out", {"from": ctx.job_id})  # the facade, from a handler thread
        ctx.exec.pause("out")
        assert ctx.exec.is_paused("out") is True
        ctx.exec.resume("out")

    omniq_sync.consume(queue="in", handler=handler, drain=True)
    assert omniq_sync.stats("out").waiting == 1
    assert omniq_sync.is_paused("out") is False


def test_heartbeats_keep_a_blocking_handler_leased(omniq_sync: OmniqClient) -> None:
    """timeout_ms=300, the handler blocks ~1 s: heartbeats (on the loop thread) keep the
    lease while an aggressive reaper runs; the job completes on its first attempt."""
    job_id = omniq_sync.publish("slow", {"work": 1}, timeout_ms=300, max_attempts=3)
    work = threading.Event()  # never set: the wait *is* the simulated work
    attempts: list[int] = []

    def handler(ctx: Any) -> str:
        attempts.append(ctx.attempt)
        work.wait(1.0)
        return "done"

    worker = omniq_sync.consume(
        queue="slow", handler=handler, drain=True, maintenance_interval_s=0.05
    )
    assert attempts == [1]
    assert (worker.stats.completed, worker.stats.retried, worker.stats.lost) == (1, 0, 0)
    job = omniq_sync.get_job("slow", job_id)
    assert job is not None
    assert (job.state, job.attempt) == ("completed", 1)
    assert omniq_sync.result("slow", job_id) == "done"


def _main_thread_signal(sig: int) -> None:
    signal.pthread_kill(threading.main_thread().ident or 0, sig)


@pytest.fixture
def stop_requested(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set each time a worker is asked to stop (Worker.request_stop)."""
    requested = threading.Event()
    original = Worker.request_stop

    def request_stop(self: Worker, grace_period_s: float | None = None) -> None:
        original(self, grace_period_s)
        requested.set()

    monkeypatch.setattr(Worker, "request_stop", request_stop)
    return requested


def test_ctrl_c_stops_gracefully(omniq_sync: OmniqClient, stop_requested: threading.Event) -> None:
    first = omniq_sync.publish("cc", {"n": 1})
    second = omniq_sync.publish("cc", {"n": 2})
    handled: list[str] = []

    def handler(ctx: Any) -> None:
        handled.append(ctx.job_id)
        _main_thread_signal(signal.SIGINT)  # Ctrl-C while this job runs
        assert stop_requested.wait(10)

    worker = omniq_sync.consume(queue="cc", handler=handler)
    assert handled == [first]  # the in-flight job finished, no new one was taken
    assert worker.stats.completed == 1
    job = omniq_sync.get_job("cc", second)
    assert job is not None
    assert job.state == "wait"


def test_second_ctrl_c_stops_at_once(
    omniq_sync: OmniqClient, stop_requested: threading.Event
) -> None:
    job_id = omniq_sync.publish("cc", {"n": 1}, timeout_ms=60_000)
    release = threading.Event()

    def handler(ctx: Any) -> None:
        _main_thread_signal(signal.SIGINT)
        assert stop_requested.wait(10)  # the first Ctrl-C was handled: graceful stop
        _main_thread_signal(signal.SIGINT)
        release.wait(30)  # abandoned by the hard stop; released at the end of the test

    try:
        worker = omniq_sync.consume(queue="cc", handler=handler, grace_period_s=30)
    finally:
        release.set()
    assert worker.stats.completed == 0
    job = omniq_sync.get_job("cc", job_id)
    assert job is not None
    assert job.state == "active"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_propagates_without_signal_handling(omniq_sync: OmniqClient) -> None:
    omniq_sync.publish("cc", {"n": 1})
    before = signal.getsignal(signal.SIGTERM)

    def handler(ctx: Any) -> None:
        assert signal.getsignal(signal.SIGTERM) == before
        _main_thread_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        omniq_sync.consume(queue="cc", handler=handler, handle_signals=False)


def test_close_stops_a_consume_in_another_thread(omniq_redis_url: str) -> None:
    client = OmniqClient(redis_url=omniq_redis_url)
    job_id = client.publish("bg", {"n": 1})
    started = threading.Event()
    results: list[Worker] = []

    def handler(ctx: Any) -> None:
        started.set()

    def consumer() -> None:
        results.append(client.consume(queue="bg", handler=handler))

    t = threading.Thread(target=consumer)
    t.start()
    assert started.wait(10)
    client.close()
    t.join(10)
    assert not t.is_alive()
    assert results[0].stats.completed == 1
    with OmniqClient(redis_url=omniq_redis_url) as check:
        job = check.get_job("bg", job_id)
        assert job is not None
        assert job.state == "completed"


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_close_from_inside_a_handler(omniq_redis_url: str, kind: str) -> None:
    """close() from a handler cannot wait for itself: the loop winds down after it."""
    client = OmniqClient(redis_url=omniq_redis_url)
    client.publish_many("h", [{"n": 1}, {"n": 2}])
    state = client._holder.state
    assert state is not None
    handled: list[int] = []

    def plain(ctx: Any) -> None:
        handled.append(ctx.payload["n"])
        client.close()
        with pytest.raises(SyncClientError, match="closed"):
            client.ping()

    async def coro(ctx: Any) -> None:
        handled.append(ctx.payload["n"])
        client.close()

    worker = client.consume(queue="h", handler=plain if kind == "plain" else coro)
    assert handled == [1]  # stopped gracefully: the second job was not taken
    assert worker.stats.completed == 1
    assert client.closed
    state.thread.join(10)
    assert not state.thread.is_alive()


# --------------------------------------------------------------------------- misuse


async def test_calling_from_a_running_loop_is_refused(omniq_sync: OmniqClient) -> None:
    with pytest.raises(SyncClientError, match="AsyncOmniq") as info:
        omniq_sync.publish("q", {"a": 1})
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(SyncClientError, match="AsyncOmniq"):
        omniq_sync.consume(queue="q", handler=lambda ctx: None, drain=True)


def test_calling_from_the_clients_own_loop_is_refused(omniq_sync: OmniqClient) -> None:
    omniq_sync.publish("q", {"a": 1})
    errors: list[BaseException] = []

    async def handler(ctx: Any) -> None:
        try:
            omniq_sync.publish("q2", {"b": 1})
        except SyncClientError as exc:
            errors.append(exc)

    omniq_sync.consume(queue="q", handler=handler, drain=True)
    assert len(errors) == 1
    assert "own event loop thread" in str(errors[0])
    assert omniq_sync.stats("q2").waiting == 0


def test_bad_constructor_arguments(omniq_redis_url: str) -> None:
    before = set(threading.enumerate())
    with pytest.raises(TypeError):
        OmniqClient(redis_url=omniq_redis_url, no_such_option=1)
    with pytest.raises(InvalidArgument):
        OmniqClient(redis_url=omniq_redis_url, max_payload_bytes=0)
    with pytest.raises(TypeError):
        OmniqClient(client=AsyncOmniq(url=omniq_redis_url), keep_completed=5)
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]


# --------------------------------------------------------------------------- lifecycle


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before]


def test_close_leaves_no_thread(omniq_redis_url: str) -> None:
    before = set(threading.enumerate())
    client = OmniqClient(redis_url=omniq_redis_url)
    client.publish_many("q", [{"n": i} for i in range(8)])
    client.consume(queue="q", handler=lambda ctx: None, concurrency=4, drain=True)
    assert [t.name for t in _new_threads(before)].count("omniq-loop") == 1
    client.close()
    assert _new_threads(before) == []
    client.close()  # idempotent
    assert client.closed
    with pytest.raises(SyncClientError, match="closed"):
        client.ping()


def test_context_manager(omniq_redis_url: str) -> None:
    before = set(threading.enumerate())
    with OmniqClient(redis_url=omniq_redis_url) as client:
        assert client.ping() is True
    assert client.closed
    assert _new_threads(before) == []


def test_wrapping_an_async_client(omniq_redis_url: str) -> None:
    client = OmniqClient(client=AsyncOmniq(url=omniq_redis_url))
    try:
        job_id = client.publish("w", {"a": 1})
        assert client.get_job("w", job_id) is not None
    finally:
        client.close()


def test_forgotten_client_is_closed_by_gc(omniq_redis_url: str) -> None:
    client = OmniqClient(redis_url=omniq_redis_url)
    client.ping()
    state = client._holder.state
    assert state is not None
    thread = state.thread
    del client, state
    gc.collect()
    assert not thread.is_alive()


def _run_script(code: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", textwrap.dedent(code), url],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_exit_without_close_is_clean(omniq_redis_url: str) -> None:
    proc = _run_script(
        """
        import sys, threading
        from omniq import OmniqClient
        uq = OmniqClient(redis_url=sys.argv[1])
        uq.publish("exit", {"a": 1})
        started = threading.Event()
        # a consumer still running at exit, in a daemon thread
        threading.Thread(
            target=uq.consume, args=("exit", lambda ctx: started.set()), daemon=True
        ).start()
        started.wait(10)
        print("bye")
        """,
        omniq_redis_url,
    )
    assert (proc.returncode, proc.stdout, without_slow_steps(proc.stderr)) == (0, "bye\n", "")


# --------------------------------------------------------------------------- fork


def _fork(child: Callable[[], int]) -> int:
    """Run ``child`` in a forked process; return its exit code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            code = child()
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def forking() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork() here")
    return


def test_use_after_fork(forking: None, omniq_sync: OmniqClient) -> None:
    omniq_sync.publish("fork", {"who": "parent-before"})
    parent_thread = omniq_sync._holder.state.thread  # type: ignore[union-attr]

    def child() -> int:
        job_id = omniq_sync.publish("fork", {"who": "child"}, job_id="from-child")
        new_thread = omniq_sync._holder.state.thread  # type: ignore[union-attr]
        ok = job_id == "from-child" and new_thread is not parent_thread
        omniq_sync.close()
        return 0 if ok else 3

    assert _fork(child) == 0
    job = omniq_sync.get_job("fork", "from-child")
    assert job is not None
    assert job.payload == {"who": "child"}
    # the parent's own connections and loop are unaffected
    omniq_sync.publish("fork", {"who": "parent-after"})
    assert omniq_sync.stats("fork").waiting == 3
    assert omniq_sync._holder.state.thread is parent_thread  # type: ignore[union-attr]


def test_wrapped_client_refuses_use_after_fork(forking: None, omniq_redis_url: str) -> None:
    client = OmniqClient(client=AsyncOmniq(url=omniq_redis_url))
    try:
        client.ping()

        def child() -> int:
            try:
                client.ping()
            except SyncClientError as exc:
                return 0 if "fork" in str(exc) else 4
            return 5

        assert _fork(child) == 0
        assert client.ping() is True
    finally:
        client.close()
