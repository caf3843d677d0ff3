"""omniq.eventlog against a real server and real databases (SQLite file, PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from eventlog_util import NAMES, PG_DSN, Backend, need_postgres, pending, stream_rows
from shared_util import ROOT, within

from omniq import AsyncOmniq, InvalidArgument
from omniq._protocol.events import events_key
from omniq.aio.context import JobContext
from omniq.eventlog import Batch, EventLog, PostgresSink, SQLiteSink


async def mixed_run(omniq: AsyncOmniq, q: str) -> dict[str, str]:
    """Successes, retries, terminal failures, progress, delayed, grouped, a reaped lease,
    a removed job, an admin retry, pause/resume. Returns {job_id: final state}."""
    await omniq.pause(q)
    await omniq.resume(q)
    # a lease that expires: reserved here, reaped "later" (its last attempt: failed)
    reaped = await omniq.publish(q, {"kind": "ok"}, max_attempts=1, timeout_ms=1000)
    lease = await omniq.reserve(q)
    assert lease is not None
    assert await omniq.reap_expired(q, now_ms=lease.lock_until_ms + 1) == 1
    assert lease.job_id == reaped
    ok = await omniq.publish_many(q, [{"kind": "ok", "n": i} for i in range(20)])
    flaky = await omniq.publish_many(q, [{"kind": "flaky"} for _ in range(5)],
                                     max_attempts=3, backoff_ms=0)
    doomed = await omniq.publish_many(q, [{"kind": "doomed"} for _ in range(4)],
                                      max_attempts=2, backoff_ms=0)
    grouped = [await omniq.publish(q, {"kind": "ok"}, gid=f"g{i % 2}") for i in range(6)]
    delayed = [await omniq.publish(q, {"kind": "ok"}, delay_ms=1) for _ in range(3)]
    gone = await omniq.publish(q, {"kind": "ok"}, delay_ms=3_600_000)
    await omniq.remove_job(q, gone, "delayed")

    async def handler(ctx: JobContext) -> Any:
        kind = ctx.payload["kind"]
        await ctx.progress({"step": 1})
        if kind == "doomed" or (kind == "flaky" and ctx.attempt == 1):
            raise RuntimeError(f"{kind} attempt {ctx.attempt}")
        return {"done": ctx.job_id}

    async def drain() -> None:
        # a retry (backoff 0) goes through the delayed lane: run until nothing is left
        while True:
            await omniq.promote_delayed(q)
            s = await omniq.stats(q)
            if not (s.delayed or s.waiting or s.group_waiting):
                return
            await omniq.consume(q, handler, concurrency=8, drain=True, handle_signals=False)

    await asyncio.sleep(0.005)  # the 1 ms delays are due (promote_delayed reads the clock)
    await drain()
    assert [r.status for r in await omniq.retry_failed_batch(q, doomed[:1])] == ["OK"]
    await drain()
    states = {}
    for jid in [*ok, *flaky, *doomed, *grouped, *delayed, reaped]:
        info = await omniq.get_job(q, jid)
        assert info is not None
        states[jid] = info.state
    return states


async def test_mixed_run_copies_exactly_the_stream(
        backend: Backend, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    q = "el-mixed"
    states = await mixed_run(omniq, q)
    assert sorted(set(states.values())) == ["completed", "failed"]
    async with EventLog(omniq, q, backend.sink(), batch=37) as log:
        written = await log.run_once()
    expected = stream_rows(raw, {q: q})
    types = {r[5] for r in expected}
    assert {"enqueued", "delayed", "promoted", "reserved", "progress", "completed", "failed",
            "retry_scheduled", "lease_expired", "removed", "retried", "paused",
            "resumed"} <= types
    got = backend.rows()
    assert written == len(expected) == len(got)
    assert sorted(got) == sorted(expected)
    assert log.stats.duplicates == 0
    assert log.stats.batches > 1
    assert pending(raw, q) == 0

    # the documented queries: a job's history, failures, durations
    flaky_id = next(j for j, s in states.items()
                    if s == "completed" and backend.query(
                        "SELECT count(*) FROM {t} WHERE job_id = ? AND type = 'retry_scheduled'",
                        (j,))[0][0] == 1)
    history = backend.query(
        "SELECT type, attempt, error FROM {t} WHERE job_id = ? "
        "ORDER BY stream_ms, stream_seq", (flaky_id,))
    assert [h[0] for h in history] == [
        "enqueued", "reserved", "progress", "retry_scheduled", "promoted", "reserved",
        "progress", "completed"]
    assert history[3][1] == 1
    assert history[3][2].startswith("RuntimeError: flaky attempt 1")
    failed = backend.query("SELECT count(*) FROM {t} WHERE type = 'failed'")[0][0]
    assert failed == sum(1 for s in states.values() if s == "failed") + 1  # + the retried
    durations = backend.query(DURATIONS)
    completed = [j for j, s in states.items() if s == "completed"]
    assert sorted(d[0] for d in durations) == sorted(completed)
    assert all(d[2] is not None and d[2] >= 0 for d in durations)


# the durations query of docs/eventlog.md (the latest reserved of the same attempt)
DURATIONS = """
SELECT c.job_id, c.attempt,
       c.ms - (SELECT r.ms FROM {t} r
               WHERE r.queue = c.queue AND r.job_id = c.job_id
                 AND r.type = 'reserved' AND r.attempt = c.attempt
                 AND (r.stream_ms, r.stream_seq) < (c.stream_ms, c.stream_seq)
               ORDER BY r.stream_ms DESC, r.stream_seq DESC LIMIT 1) AS duration_ms
FROM {t} c
WHERE c.type = 'completed'
"""


async def test_documented_schema_is_the_table(tmp_path: Path, omniq: AsyncOmniq) -> None:
    doc = (ROOT / "docs" / "eventlog.md").read_text()
    async with EventLog(omniq, "q", SQLiteSink(tmp_path / "e.db")) as log:
        await log.run_once()
    conn = sqlite3.connect(tmp_path / "e.db")
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(omniq_events)")]
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(omniq_events)")}
    finally:
        conn.close()
    assert ", ".join(cols) == NAMES
    for col in cols:
        assert f"| `{col}` |" in doc, col
    for name in ("omniq_events_job_idx", "omniq_events_type_ms_idx", "omniq_events_ms_idx"):
        assert name in indexes
        assert name in doc
    assert DURATIONS.strip().replace("{t}", "omniq_events") in doc


async def test_partitioned_queue_copies_every_partition(
        backend: Backend, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    assert await omniq.partition_queue("orders", 4)
    await omniq.publish_many("orders", [{"n": i} for i in range(40)])
    await omniq.publish("plain", {"n": 0})
    async with EventLog(omniq, ["orders", "plain"], backend.sink()) as log:
        assert await log.run_once() == 41
    parts = {f"orders.p{i}": "orders" for i in range(4)}
    expected = stream_rows(raw, {**parts, "plain": "plain"})
    assert sorted(backend.rows()) == sorted(expected)
    assert {r[0] for r in backend.rows()} == {*parts, "plain"}
    assert {r[4] for r in backend.rows()} == {"orders", "plain"}


async def test_run_is_woken_by_new_events_and_stop_returns(
        backend: Backend, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    seen = asyncio.Queue[Batch]()
    log = EventLog(omniq, "live", backend.sink(), on_batch=seen.put_nowait)
    task = asyncio.create_task(log.run())
    try:
        await asyncio.sleep(0)  # run() starts (a new group starts at "0": nothing is missed)
        jid = await omniq.publish("live", {"n": 1})
        batch = await within(seen.get(), 10, "the batch of the new event")
        assert [(e.type, e.job_id) for e in batch.events] == [("enqueued", jid)]
        assert backend.query("SELECT job_id, type FROM {t}") == [(jid, "enqueued")]
        log.stop()
        await within(task, 5, "run() to return after stop()")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await log.aclose()
    assert pending(raw, "live") == 0


async def test_crash_between_commit_and_ack_repeats_nothing(
        backend: Backend, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    await omniq.publish_many("c", [{"n": i} for i in range(25)])

    def crash(batch: Batch) -> None:
        raise RuntimeError("crash after the commit")

    async with EventLog(omniq, "c", backend.sink(), batch=10, on_batch=crash) as log:
        with pytest.raises(RuntimeError, match="crash after the commit"):
            await log.run_once()
    assert len(backend.rows()) == 10
    assert pending(raw, "c") == 10  # committed, not acknowledged
    async with EventLog(omniq, "c", backend.sink(), batch=10) as again:
        assert await again.run_once() == 15
    assert again.stats.duplicates == 10  # the pending ones, already in the table
    assert sorted(backend.rows()) == sorted(stream_rows(raw, {"c": "c"}))
    assert pending(raw, "c") == 0


async def test_entries_of_a_dead_consumer_are_claimed(
        backend: Backend, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    await omniq.publish_many("d", [{"n": i} for i in range(7)])
    key = events_key("d")
    raw.xgroup_create(key, "omniq-eventlog", id="0")
    raw.xreadgroup("omniq-eventlog", "dead-host", {key: ">"}, count=4)  # never acked
    async with EventLog(omniq, "d", backend.sink(), consumer="alive",
                        claim_idle_ms=0) as log:
        assert await log.run_once() == 7
    assert log.stats.claimed == 4
    assert sorted(backend.rows()) == sorted(stream_rows(raw, {"d": "d"}))
    assert pending(raw, "d") == 0


async def test_pending_entries_trimmed_from_the_stream_are_counted_lost(
        backend: Backend, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    await omniq.publish_many("t", [{"n": i} for i in range(6)])
    key = events_key("t")
    raw.xgroup_create(key, "omniq-eventlog", id="0")
    got = raw.xreadgroup("omniq-eventlog", "me", {key: ">"}, count=2)
    raw.xdel(key, *[i for i, _ in got[0][1]])  # as MAXLEN trimming does
    async with EventLog(omniq, "t", backend.sink(), consumer="me") as log:
        assert await log.run_once() == 4
    assert log.stats.trimmed == 2
    assert pending(raw, "t") == 0
    assert sorted(backend.rows()) == sorted(stream_rows(raw, {"t": "t"}))


async def test_a_deleted_stream_gets_its_group_again(
        backend: Backend, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    seen = asyncio.Queue[Batch]()
    log = EventLog(omniq, "n", backend.sink(), on_batch=seen.put_nowait)
    await omniq.publish("n", {"n": 1})
    task = asyncio.create_task(log.run())
    try:
        await within(seen.get(), 10, "the first batch")
        raw.delete(events_key("n"))  # the group goes with it (NOGROUP on the next read)
        jid = await omniq.publish("n", {"n": 2})
        while True:
            batch = await within(seen.get(), 20, "a batch after the stream was deleted")
            if any(e.job_id == jid for e in batch.events):
                break
        log.stop()
        await within(task, 5, "run() to return")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await log.aclose()
    assert (jid, "enqueued") in backend.query("SELECT job_id, type FROM {t}")


async def test_postgres_text_without_nul(tmp_path: Path, omniq: AsyncOmniq) -> None:
    need_postgres()
    b = Backend("postgres", tmp_path)
    try:
        await omniq.publish("z", {}, max_attempts=1)

        def handler(ctx: JobContext) -> None:
            raise RuntimeError("bad\x00byte")

        await omniq.consume("z", handler, drain=True, handle_signals=False)
        async with EventLog(omniq, "z", b.sink()) as log:
            await log.run_once()
        errors = b.query("SELECT error FROM {t} WHERE type = 'failed'")
        assert errors == [("RuntimeError: bad\ufffdbyte",)] or \
            errors[0][0].startswith("RuntimeError: bad\ufffdbyte")
    finally:
        b.drop()


async def test_custom_table_name_and_keyword_names(tmp_path: Path, omniq: AsyncOmniq) -> None:
    await omniq.publish("k", {})
    for table in ("order", "my_events_2"):
        async with EventLog(omniq, "k", SQLiteSink(tmp_path / "k.db", table=table),
                            group=f"g-{table}") as log:
            assert await log.run_once() == 1
    conn = sqlite3.connect(tmp_path / "k.db")
    try:
        assert conn.execute('SELECT type FROM "order"').fetchall() == [("enqueued",)]
        assert conn.execute("SELECT type FROM my_events_2").fetchall() == [("enqueued",)]
    finally:
        conn.close()


@pytest.mark.parametrize("table", ["", "Events", "1abc", "a-b", "a;drop", "x" * 49, "a.b.c",
                                   "s.t"])
def test_bad_sqlite_table_names(tmp_path: Path, table: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid table name"):
        SQLiteSink(tmp_path / "x.db", table=table)


def test_postgres_schema_table_and_bad_input() -> None:
    pytest.importorskip("psycopg")
    assert str(PostgresSink(PG_DSN, table="audit.events").table) == "audit.events"
    with pytest.raises(InvalidArgument, match="invalid table name"):
        PostgresSink(PG_DSN, table="a.b.c")
    with pytest.raises(InvalidArgument, match="bad PostgreSQL DSN"):
        PostgresSink("host=x nonsense")


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"queues": []}, "at least one queue"),
    ({"queues": "bad name"}, "invalid queue name"),
    ({"batch": 0}, "batch must be at least 1"),
    ({"batch": 10_001}, "batch must be at most 10000"),
    ({"group": ""}, "group must be"),
    ({"consumer": ""}, "consumer must be"),
    ({"start": "1"}, "start must be"),
    ({"claim_idle_ms": -1}, "claim_idle_ms must not be negative"),
    ({"sink": "events.db"}, "sink must be a Sink"),
])
async def test_bad_arguments(tmp_path: Path, omniq: AsyncOmniq, kwargs: dict[str, Any],
                             pattern: str) -> None:
    args: dict[str, Any] = {"queues": "q", "sink": SQLiteSink(tmp_path / "x.db"), **kwargs}
    with pytest.raises(InvalidArgument, match=pattern):
        EventLog(omniq, args.pop("queues"), args.pop("sink"), **args)


def test_missing_psycopg_names_the_extra() -> None:
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from omniq.eventlog import PostgresSink\n"
            "try:\n    PostgresSink('dbname=test')\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == ("PostgresSink needs psycopg 3: "
                                  "pip install 'omniq-aio[postgres]'")


def test_run_blocking_once(tmp_path: Path, omniq_redis_url: str, raw: redis.Redis) -> None:
    from omniq.eventlog import run_blocking
    from omniq.sync.client import OmniqClient

    with OmniqClient(redis_url=omniq_redis_url) as client:
        client.publish("b", {"n": 1})
    assert run_blocking(omniq_redis_url, "b", SQLiteSink(tmp_path / "b.db"), once=True) == 1
    conn = sqlite3.connect(tmp_path / "b.db")
    try:
        assert conn.execute("SELECT type FROM omniq_events").fetchall() == [("enqueued",)]
    finally:
        conn.close()


async def test_run_takes_over_entries_of_a_consumer_that_died_meanwhile(
        backend: Backend, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    ids = await omniq.publish_many("m", [{"n": i} for i in range(5)])
    key = events_key("m")
    raw.xgroup_create(key, "omniq-eventlog", id="0")
    raw.xreadgroup("omniq-eventlog", "dead-host", {key: ">"}, count=2)  # not idle long yet
    seen = asyncio.Queue[Batch]()
    log = EventLog(omniq, "m", backend.sink(), consumer="alive", claim_idle_ms=2000,
                   on_batch=seen.put_nowait)
    task = asyncio.create_task(log.run())
    try:
        first = await within(seen.get(), 10, "the entries nobody had")
        assert [e.job_id for e in first.events] == ids[2:]
        # a few seconds later the dead consumer's entries are idle enough: taken over
        later = await within(seen.get(), 20, "the dead consumer's entries")
        assert [e.job_id for e in later.events] == ids[:2]
        log.stop()
        await within(task, 5, "run() to return")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await log.aclose()
    assert log.stats.claimed == 2
    assert pending(raw, "m") == 0
    assert sorted(backend.rows()) == sorted(stream_rows(raw, {"m": "m"}))


async def test_run_survives_a_lost_database_connection(
        tmp_path: Path, omniq: AsyncOmniq, raw: redis.Redis) -> None:
    need_postgres()
    import psycopg

    b = Backend("postgres", tmp_path)
    seen = asyncio.Queue[Batch]()
    log = EventLog(omniq, "lost", b.sink(), on_batch=seen.put_nowait)
    first = await omniq.publish("lost", {"n": 1})
    task = asyncio.create_task(log.run())
    try:
        await within(seen.get(), 10, "the first batch")
        with psycopg.connect(PG_DSN, autocommit=True) as c:  # the exporter's connection dies
            killed = c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'omniq-eventlog'").fetchall()
        assert killed == [(True,)]
        second = await omniq.publish("lost", {"n": 2})
        batch = await within(seen.get(), 20, "the batch after the reconnect")
        assert [e.job_id for e in batch.events] == [second]
        log.stop()
        await within(task, 5, "run() to return")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await log.aclose()
        b.drop()
    assert log.stats.retries >= 1
    assert pending(raw, "lost") == 0
    assert first != second
