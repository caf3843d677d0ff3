"""SIGKILL of the exporter process mid-batch, then a restart: no row lost, none repeated.

The exporter (``exporter_proc.py``) works through a backlog in batches of 100. It is killed
(a) right after a commit, before that batch's XACK (``--pause-after``: it blocks there and
says so), (b) while its write waits for a lock the test holds on the database (PostgreSQL:
inside the open transaction; SQLite: waiting for the write lock), and (c) at whatever point
it has reached a few batches into a run. Each time, a restart copies the rest, and the table
then holds exactly the stream's entries (XRANGE), once each, with nothing left pending.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import redis
from eventlog_util import PG_DSN, Backend, Exporter, pending, stream_rows
from shared_util import poll_until

from omniq import AsyncOmniq

BACKLOG = 3000
Q = "el-crash"


async def backlog(omniq: AsyncOmniq) -> None:
    for start in range(0, BACKLOG, 1000):
        await omniq.publish_many(Q, [{"n": i} for i in range(start, start + 1000)])


def exporter(url: str, backend: Backend, *extra: str) -> Exporter:
    return Exporter([url, Q, *backend.target_args(), "--batch", "100", *extra])


def restart_and_check(url: str, backend: Backend, raw: redis.Redis) -> int:
    """Run the exporter once to the end; the table must then be exactly the stream."""
    proc = exporter(url, backend, "--once")
    try:
        proc.wait_for("done ")
        assert proc.finish() == 0, proc.stderr()
    finally:
        proc.close()
    got = backend.rows()
    expected = stream_rows(raw, {Q: Q})
    assert len(expected) == BACKLOG
    assert len(got) == len({(r[0], r[1]) for r in got})  # no duplicates
    assert sorted(got) == sorted(expected)  # none lost, none changed
    assert pending(raw, Q) == 0
    return int(next(x for x in proc.seen if x.startswith("done ")).split()[1])


async def test_sigkill_between_commit_and_ack(
        backend: Backend, omniq: AsyncOmniq, omniq_redis_url: str, raw: redis.Redis) -> None:
    await backlog(omniq)
    proc = exporter(omniq_redis_url, backend, "--pause-after", "5")
    try:
        proc.wait_for("paused")
        # five batches committed; the fifth is not acknowledged
        assert len(backend.rows()) == 500
        assert pending(raw, Q) == 100
        proc.kill()
    finally:
        proc.close()
    assert restart_and_check(omniq_redis_url, backend, raw) == BACKLOG - 500


async def test_sigkill_while_the_write_waits(
        backend: Backend, omniq: AsyncOmniq, omniq_redis_url: str, raw: redis.Redis) -> None:
    await backlog(omniq)
    proc = exporter(omniq_redis_url, backend)
    lock: Any = None
    try:
        proc.wait_for("batch 3 ")
        if backend.kind == "postgres":
            import psycopg

            lock = psycopg.connect(PG_DSN)
            lock.execute(f'LOCK TABLE "{backend.table}" IN EXCLUSIVE MODE')  # blocks INSERT

            def insert_waits() -> bool:
                with psycopg.connect(PG_DSN, autocommit=True) as c:
                    row = c.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE %s", (f'INSERT INTO "{backend.table}"%',)).fetchone()
                return bool(row and row[0])

            await poll_until(insert_waits, 30, "the exporter's INSERT to wait for the lock")
        else:
            lock = sqlite3.connect(backend.path, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # the write lock: the exporter cannot commit
            await poll_until(lambda: pending(raw, Q) > 0, 30, "a batch read, not acknowledged")
        before = len(backend.rows()) if backend.kind == "postgres" else None
        proc.kill()
    finally:
        if lock is not None:
            lock.rollback() if backend.kind == "postgres" else lock.execute("ROLLBACK")
            lock.close()
        proc.close()
    assert pending(raw, Q) > 0  # the batch in flight stayed pending
    if before is not None:  # its transaction never committed
        assert len(backend.rows()) == before
    restart_and_check(omniq_redis_url, backend, raw)


async def test_sigkill_wherever_it_is(
        backend: Backend, omniq: AsyncOmniq, omniq_redis_url: str, raw: redis.Redis) -> None:
    await backlog(omniq)
    for after in (2, 4, 7):  # each run: kill a few batches in, at whatever point it is
        proc = exporter(omniq_redis_url, backend)
        try:
            proc.wait_for(f"batch {after} ")
            proc.kill()
        finally:
            proc.close()
    assert 0 < len(backend.rows()) < BACKLOG
    restart_and_check(omniq_redis_url, backend, raw)
