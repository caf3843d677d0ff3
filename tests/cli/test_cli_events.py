"""``omniq events``, ``omniq wait`` and ``omniq eventlog``, run as subprocesses against the
test server (and a real SQLite file / the machine's PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from shared_util import poll_until
from test_cli import ROOT, Lines, cli, finish, one_line_error, popen

from omniq import AsyncOmniq
from omniq.aio.context import JobContext

pytestmark = pytest.mark.single_node

PG_DSN = os.environ.get("OMNIQ_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def run_jobs(omniq: AsyncOmniq, q: str) -> None:
    async def handler(ctx: JobContext) -> Any:
        if ctx.payload.get("fail"):
            raise RuntimeError("it broke")
        await ctx.progress({"pct": 50})
        return {"echo": ctx.payload}

    await omniq.consume(q, handler, drain=True, handle_signals=False)


# -- events -----------------------------------------------------------------------------


async def test_events_since_0_types_and_json(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    ok = await omniq.publish("ev", {"n": 1}, gid="g1")
    bad = await omniq.publish("ev", {"fail": True}, max_attempts=1)
    await run_jobs(omniq, "ev")
    proc = cli("events", "ev", "--since", "0", "--count", "7", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sorted(x.split()[2:4] for x in lines) == sorted([
        ["enqueued", ok], ["enqueued", bad], ["reserved", ok], ["progress", ok],
        ["completed", ok], ["reserved", bad], ["failed", bad]])
    assert all(x.split()[1] == "ev" for x in lines)
    failed = next(x for x in lines if " failed " in x)
    assert failed.endswith('attempt=1  error="RuntimeError: it broke"')
    assert "gid=g1" in next(x for x in lines if " completed " in x)
    assert 'progress={"pct":50}' in proc.stdout

    proc = cli("events", "ev", "--since", "0", "--types", "completed,failed", "--count", "2",
               "--json", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(x) for x in proc.stdout.splitlines()]
    assert sorted((e["type"], e["job_id"]) for e in events) == sorted(
        [("completed", ok), ("failed", bad)])
    assert all(e["queue"] == "ev" and e["id"] for e in events)


async def test_events_tail_until_ctrl_c(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    since = str(int(time.time() * 1000) - 1)  # from now: the tail misses nothing we publish
    proc = popen("events", "tail", "--since", since, url=omniq_redis_url)
    out = Lines(proc.stdout)
    try:
        jid = await omniq.publish("tail", {"n": 1})
        out.wait_for(lambda seen: any(jid in x for x in seen))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        stderr = finish(proc, out)
    assert "Traceback" not in stderr
    assert out.seen[0].split()[1:4] == ["tail", "enqueued", jid]


@pytest.mark.parametrize(("extra", "pattern"), [
    (["--types", "completed,nope"], r"unknown event type 'nope'"),
    (["--since", "yesterday"], r"since 'yesterday' is not a stream id"),
    (["--count", "0"], r"--count: must be at least 1"),
])
def test_events_bad_input(omniq_redis_url: str, extra: list[str], pattern: str) -> None:
    one_line_error(cli("events", "q", *extra, url=omniq_redis_url), 2, pattern)


# -- wait -------------------------------------------------------------------------------


async def test_wait_prints_the_result_or_the_failure(
        omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    ok = await omniq.publish("w", {"n": 7})
    bad = await omniq.publish("w", {"fail": True}, max_attempts=1)
    await run_jobs(omniq, "w")
    proc = cli("wait", "w", ok, url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"echo": {"n": 7}}
    proc = cli("wait", "w", ok, "--json", url=omniq_redis_url)
    assert json.loads(proc.stdout) == {"queue": "w", "job_id": ok, "state": "completed",
                                       "result": {"echo": {"n": 7}}}

    proc = cli("wait", "w", bad, url=omniq_redis_url)
    one_line_error(proc, 1, rf"^omniq wait: error: job {bad} of queue 'w' failed after 1 "
                            r"attempt: RuntimeError: it broke$")
    proc = cli("wait", "w", bad, "--json", url=omniq_redis_url)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert (out["state"], out["attempts"]) == ("failed", 1)
    assert out["error"].startswith("RuntimeError: it broke\n")


async def test_wait_blocks_until_the_job_finishes(
        omniq: AsyncOmniq, omniq_redis_url: str, raw: redis.Redis) -> None:
    jid = await omniq.publish("wl", {"n": 1})
    proc = popen("wait", "wl", jid, "--timeout", "60", url=omniq_redis_url)
    try:
        # the waiter blocks in XREAD on the queue's events before the job runs
        await poll_until(lambda: any(c.get("cmd") == "xread" for c in raw.client_list()), 20,
                         "the waiter to block on the event stream")
        assert proc.poll() is None
        await run_jobs(omniq, "wl")
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == 0, stderr
    assert json.loads(stdout) == {"echo": {"n": 1}}


async def test_wait_timeout_and_not_found(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    jid = await omniq.publish("wt", {"n": 1})
    start = time.monotonic()
    proc = cli("wait", "wt", jid, "--timeout", "0.3", url=omniq_redis_url)
    one_line_error(proc, 124, rf"^omniq wait: error: job {jid} of wt did not finish within "
                              r"0.3 s$")
    assert time.monotonic() - start < 20
    proc = cli("wait", "wt", "01J9Z6V4Q3R8T5X2M7N1K0PABC", url=omniq_redis_url)
    one_line_error(proc, 1, r"^omniq wait: error: .*no such job")
    one_line_error(cli("wait", "wt", jid, "--timeout", "-1", url=omniq_redis_url), 2,
                   r"--timeout: must be a positive number")
    one_line_error(cli("wait", "wt", jid, url="redis://127.0.0.1:1/0"), 3, r"connect")


# -- eventlog ---------------------------------------------------------------------------


def sqlite_rows(path: Path, table: str = "omniq_events") -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f'SELECT queue, type, job_id FROM "{table}" '
                            "ORDER BY stream_ms, stream_seq").fetchall()
    finally:
        conn.close()


async def test_eventlog_once_into_sqlite(omniq: AsyncOmniq, omniq_redis_url: str,
                                         tmp_path: Path) -> None:
    a = await omniq.publish("ea", {"n": 1})
    b = await omniq.publish("eb", {"n": 2})
    db = tmp_path / "events.db"
    proc = cli("eventlog", "ea", "eb", "--sqlite", str(db), "--once", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"copied 2 events of ea, eb into SQLite {db} table omniq_events"
    assert sorted(sqlite_rows(db)) == [("ea", "enqueued", a), ("eb", "enqueued", b)]
    proc = cli("eventlog", "ea", "eb", "--sqlite", str(db), "--once", url=omniq_redis_url)
    assert proc.stdout.startswith("copied 0 events")  # acknowledged: not copied again


async def test_eventlog_runs_until_sigint(omniq: AsyncOmniq, omniq_redis_url: str,
                                          tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    proc = popen("eventlog", "live", "--sqlite", str(db), "--table", "audit", "--batch", "10",
                 url=omniq_redis_url)
    out = Lines(proc.stdout)
    try:
        ids = await omniq.publish_many("live", [{"n": i} for i in range(25)])

        def copied() -> bool:
            try:
                return len(sqlite_rows(db, "audit")) == 25
            except sqlite3.OperationalError:  # the table is not made yet
                return False

        await poll_until(copied, 30, "the 25 events in the table")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        stderr = finish(proc, out)
    assert [r[2] for r in sqlite_rows(db, "audit")] == ids
    assert "omniq eventlog: copying the events of live into SQLite" in stderr
    assert "stopped (25 rows written, 0 already there, 0 trimmed" in stderr
    assert "Traceback" not in stderr


async def test_eventlog_into_postgres(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_DSN, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_DSN} is not reachable in CI: {exc}")
        pytest.skip(f"PostgreSQL at {PG_DSN} is not reachable: {exc}")
    table = "cli_" + uuid.uuid4().hex[:12]
    jid = await omniq.publish("pg", {"n": 1})
    try:
        proc = cli("eventlog", "pg", "--postgres", PG_DSN, "--table", table, "--once",
                   url=omniq_redis_url)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("copied 1 events of pg into PostgreSQL")
        with psycopg.connect(PG_DSN) as conn:
            assert conn.execute(f"SELECT type, job_id FROM {table}").fetchall() == [
                ("enqueued", jid)]
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize(("extra", "code", "pattern"), [
    ([], 2, r"one of the arguments --sqlite --postgres is required"),
    (["--sqlite", "a.db", "--postgres", "x"], 2, r"not allowed with argument"),
    (["--sqlite", "a.db", "--table", "Bad-Name"], 2, r"invalid table name 'Bad-Name'"),
    (["--sqlite", "a.db", "--batch", "0"], 2, r"--batch: must be at least 1"),
    (["--postgres", "host=x nonsense"], 2, r"bad PostgreSQL DSN"),
    (["--sqlite", "/nonexistent/dir/a.db"], 1, r"cannot open the SQLite .* table"),
])
def test_eventlog_bad_input(omniq_redis_url: str, tmp_path: Path, extra: list[str], code: int,
                            pattern: str) -> None:
    proc = cli("eventlog", "q", *extra, "--once", url=omniq_redis_url, cwd=tmp_path)
    one_line_error(proc, code, pattern)


def test_eventlog_cannot_connect_exits_3(tmp_path: Path) -> None:
    proc = cli("eventlog", "q", "--sqlite", str(tmp_path / "a.db"), "--url",
               "redis://127.0.0.1:1/0", url=None)
    one_line_error(proc, 3, r"^omniq eventlog: error: .*connect")


def test_eventlog_without_psycopg_names_the_extra(omniq_redis_url: str) -> None:
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from omniq.cli import main\n"
            f"sys.exit(main(['eventlog', 'q', '--postgres', 'dbname=test', '--url', "
            f"{omniq_redis_url!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    one_line_error(proc, 2, r"^omniq eventlog: error: PostgresSink needs psycopg 3: "
                            r"pip install 'omniq-aio\[postgres\]'$")
