"""Helpers of the event log suite (imported by module name: tests/eventlog is on sys.path).

* :class:`Backend` -- a real database for one test: an SQLite file in ``tmp_path`` or a
  fresh table in the machine's PostgreSQL (dropped after the test).
* :func:`stream_rows` -- the rows the streams say the table must hold (XRANGE).
* :class:`Exporter` -- ``exporter_proc.py`` in a subprocess, its output lines awaited.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from shared_util import ROOT

from omniq._protocol.events import events_key, parse_entry
from omniq.eventlog import PostgresSink, Sink, SQLiteSink
from omniq.eventlog._schema import COLUMNS, row

HERE = Path(__file__).resolve().parent
PG_DSN = os.environ.get("OMNIQ_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
NAMES = ", ".join(name for name, _ in COLUMNS)


_pg_problem: list[str] = []


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    if not _pg_problem:
        try:
            import psycopg

            psycopg.connect(PG_DSN, connect_timeout=5).close()
            _pg_problem.append("")
        except Exception as exc:
            _pg_problem.append(f"PostgreSQL at {PG_DSN} is not reachable: {exc}")
    return _pg_problem[0] or None


def need_postgres() -> None:
    problem = _postgres_reachable()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (CI must run the PostgreSQL tests)")
    pytest.skip(problem)


class Backend:
    """One test's database: ``kind`` is ``sqlite`` or ``postgres``."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.path = str(tmp_path / "events.db")
            self.table = "omniq_events"
        else:
            self.table = "el_" + uuid.uuid4().hex[:16]

    def sink(self, **options: Any) -> Sink:
        if self.kind == "sqlite":
            return SQLiteSink(self.path, table=self.table, **options)
        return PostgresSink(PG_DSN, table=self.table, **options)

    def target_args(self) -> list[str]:
        """The exporter's (and the CLI's) options for this database."""
        if self.kind == "sqlite":
            return ["--sqlite", self.path, "--table", self.table]
        return ["--postgres", PG_DSN, "--table", self.table]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """``sql`` (``{t}`` = the table, ``?`` placeholders) on a fresh connection."""
        sql = sql.replace("{t}", self.table)
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.path)
            try:
                return [tuple(r) for r in conn.execute(sql, params).fetchall()]
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def rows(self) -> list[tuple[Any, ...]]:
        return self.query(f"SELECT {NAMES} FROM {{t}}")

    def drop(self) -> None:
        if self.kind == "postgres":
            self.query("DROP TABLE IF EXISTS {t}")


def stream_rows(raw: redis.Redis, parts: dict[str, str]) -> list[tuple[Any, ...]]:
    """Every entry of the streams of ``parts`` ({physical: logical}) as a table row."""
    out = []
    for part, logical in parts.items():
        for entry_id, fields in raw.xrange(events_key(part)):
            out.append(row(parse_entry(part, logical, entry_id, fields)))
    return out


def pending(raw: redis.Redis, part: str, group: str = "omniq-eventlog") -> int:
    return int(raw.xpending(events_key(part), group)["pending"])


class Exporter:
    """``python exporter_proc.py ARGS`` with its stdout lines read in a thread."""

    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", ""))
                                            if p)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "exporter_proc.py"), *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Until a line starting with ``text`` (fails at the deadline or at exit)."""
        deadline = time.monotonic() + timeout
        while not any(x.startswith(text) for x in self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} line; output: {self.seen} {self.stderr()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"exporter ended ({self.proc.wait()}) before {text!r}: "
                                     f"{self.seen} {self.stderr()}")
            self.seen.append(line)

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def kill(self) -> None:
        """SIGKILL, and reap."""
        self.proc.kill()
        self.proc.wait(10)

    def finish(self, timeout: float = 120.0) -> int:
        code = self.proc.wait(timeout)
        self._thread.join(10)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self._thread.join(10)
