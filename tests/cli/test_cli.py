"""The ``omniq`` command, run as a subprocess (``python -m omniq``) against the test server."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from omniq import AsyncOmniq

pytestmark = pytest.mark.single_node

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def cli(*args: str, url: str | None, stdin: str | None = None, cwd: Path = ROOT,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMNIQ_REDIS_URL", "OMNIQ_URL")}
    if url is not None:
        env["OMNIQ_REDIS_URL"] = url
    return subprocess.run([sys.executable, "-m", "omniq", *args], capture_output=True,
                          text=True, input=stdin if stdin is not None else "", env=env,
                          cwd=cwd, timeout=timeout, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, pattern: str) -> None:
    """A user's mistake: the exit code, one line on stderr, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(pattern, lines[0]), lines[0]


class Lines:
    """The output lines of a child process, read in a thread, awaited with a deadline."""

    def __init__(self, stream: Any) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        with stream:
            for line in stream:
                self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while not predicate(self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; output so far: {self.seen}")
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the process ended; output: {self.seen}")
            self.seen.append(line)
        return self.seen


def finish(proc: subprocess.Popen[str], out: Lines | None) -> str:
    """Kill the child if it still runs; its standard error; every pipe closed."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    err = ""
    if proc.stderr is not None:
        with proc.stderr:
            err = proc.stderr.read()
    if out is not None:
        out.thread.join(10)
    return err


def popen(*args: str, url: str | None, cwd: Path = ROOT) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMNIQ_REDIS_URL", "OMNIQ_URL")}
    if url is not None:
        env["OMNIQ_REDIS_URL"] = url
    return subprocess.Popen([sys.executable, "-m", "omniq", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)


async def make_failed(omniq: AsyncOmniq, q: str, n: int) -> list[str]:
    """``n`` failed jobs: published with max_attempts=1 and failed once in-process."""
    from tests.cli.cli_handlers import fail

    ids = await omniq.publish_many(q, [{"n": i} for i in range(n)], max_attempts=1)
    await omniq.consume(q, fail, concurrency=50, drain=True, handle_signals=False)
    assert (await omniq.stats(q)).failed == n
    return ids


# -- help and startup -------------------------------------------------------------------


def test_help_is_fast_and_every_command_has_an_example() -> None:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        proc = cli("--help", url=None)
        best = min(best, time.perf_counter() - start)
        assert proc.returncode == 0
    assert best < 0.5, f"omniq --help took {best:.2f} s"
    commands = ["worker", "stats", "jobs", "job", "retry", "remove", "cancel", "pause", "resume",
                "publish", "events", "wait", "eventlog", "server"]
    for name in commands:
        assert name in proc.stdout
    for name in commands:
        sub = cli(name, "--help", url=None)
        assert sub.returncode == 0, sub.stderr
        assert "example:\n  omniq " + name in sub.stdout
        if name != "server":
            assert "--url" in sub.stdout


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("omniq")
    if not exe.exists():
        pytest.skip("the omniq script is not installed next to this interpreter")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("omniq ")


# -- worker -----------------------------------------------------------------------------


async def test_worker_stops_gracefully_on_sigterm_with_jobs_in_flight(
    omniq: AsyncOmniq, omniq_redis_url: str
) -> None:
    q = "cli-work"
    ids = await omniq.publish_many(q, [{"n": i, "seconds": 1.0} for i in range(30)])
    proc = popen("worker", "cli_handlers:slow", "-q", q, "--concurrency", "5",
                 url=omniq_redis_url, cwd=HERE)
    out = Lines(proc.stdout)
    try:
        out.wait_for(lambda seen: sum(x.startswith("started ") for x in seen) >= 5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        stderr = finish(proc, out)
    started = {x.split()[1] for x in out.seen if x.startswith("started ")}
    assert re.search(rf"omniq \S+ worker: cli_handlers:slow on {re.escape(omniq_redis_url)}, "
                     rf"queues {q}, concurrency 5", stderr), stderr
    assert "SIGTERM received, finishing in-flight jobs" in stderr
    s = await omniq.stats(q)
    assert s.active == 0  # none stuck
    assert s.completed_kept + s.waiting == len(ids)  # none lost
    for jid in started:  # every job in flight at the signal finished
        info = await omniq.get_job(q, jid)
        assert info is not None
        assert info.state == "completed", info


async def test_worker_routes_one_worker_per_queue_and_drain(
    omniq: AsyncOmniq, omniq_redis_url: str
) -> None:
    await omniq.publish("emails", {"to": "ada@example.com"})
    await omniq.publish("reports", {"name": "weekly"})
    proc = cli("worker", "examples.cli_handler:routes", "--drain", "--loop", "asyncio",
               url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    assert "sending email to ada@example.com (attempt 1)" in proc.stdout
    assert "building report weekly" in proc.stdout
    assert "queues emails, reports" in proc.stderr
    assert "loop asyncio" in proc.stderr
    for q in ("emails", "reports"):
        assert (await omniq.stats(q)).completed_kept == 1


@pytest.mark.parametrize(("spec", "extra", "pattern"), [
    ("nope_module:handler", ["-q", "a"], r"cannot import nope_module"),
    ("cli_handlers:missing", ["-q", "a"], r"has no attribute 'missing'"),
    ("cli_handlers:not_callable", ["-q", "a"], r"is not callable"),
    ("cli_handlers:routes_bad", [], r"must map queue names to callables"),
    ("cli_handlers", ["-q", "a"], r"MODULE:ATTRIBUTE"),
    ("cli_handlers:slow", [], r"at least one -q QUEUE"),
    ("cli_handlers:slow", ["-q", "a", "--concurrency", "0"], r"--concurrency: must be at"),
    ("cli_handlers:slow", ["-q", "a", "--grace-period", "x"], r"--grace-period: not a"),
])
def test_worker_bad_handler_or_option(omniq_redis_url: str, raw: redis.Redis, spec: str,
                                      extra: list[str], pattern: str) -> None:
    one_line_error(cli("worker", spec, *extra, url=omniq_redis_url, cwd=HERE), 2, pattern)
    assert raw.dbsize() == 0


# -- stats / jobs / job -----------------------------------------------------------------


async def test_stats_table_and_json(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    await omniq.publish_many("alpha", [{"n": 1}, {"n": 2}])
    await omniq.publish("alpha", {"n": 3}, gid="g")
    await omniq.publish("beta", {"n": 1}, delay_ms=60_000)
    await omniq.pause("beta")
    proc = cli("stats", "--json", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    rows = {r["queue"]: r for r in json.loads(proc.stdout)}
    assert sorted(rows) == ["alpha", "beta"]
    assert rows["alpha"]["waiting"] == 2
    assert rows["alpha"]["group_waiting"] == 1
    assert rows["alpha"]["groups_ready"] == 1
    assert rows["alpha"]["paused"] is False
    assert rows["beta"]["delayed"] == 1
    assert rows["beta"]["paused"] is True

    proc = cli("stats", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["QUEUE", "PAUSED", "WAITING", "GROUP_WAITING", "WAITING_DEPS",
                                "ACTIVE", "DELAYED", "FAILED", "COMPLETED_KEPT",
                                "GROUPS_READY", "LAST_ACTIVITY"]
    assert lines[1].split()[:10] == ["alpha", "no", "2", "1", "0", "0", "0", "0", "0", "1"]
    assert lines[2].split()[:10] == ["beta", "yes", "0", "0", "0", "0", "1", "0", "0", "0"]
    assert re.fullmatch(r"\d+s", lines[1].split()[10])


def test_stats_of_an_unknown_queue_is_empty(omniq_redis_url: str, raw: redis.Redis) -> None:
    proc = cli("stats", "nowhere", "--json", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["queue"] == "nowhere"
    assert row["waiting"] == row["failed"] == row["active"] == 0
    assert row["last_activity_ms"] is None
    proc = cli("stats", url=omniq_redis_url)
    assert proc.stdout.splitlines()[-1] == "(no queues on the server)"
    assert raw.dbsize() == 0


def test_stats_watch_redraws_until_ctrl_c(omniq_redis_url: str) -> None:
    proc = popen("stats", "q", "--watch", "0.2", url=omniq_redis_url)
    out = Lines(proc.stdout)
    try:
        out.wait_for(lambda s: sum("\x1b[H\x1b[2JQUEUE" in x for x in s) >= 2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        stderr = finish(proc, out)
    assert "Traceback" not in stderr


async def test_jobs_pages_table_and_json(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    ids = await omniq.publish_many("q", [{"n": i} for i in range(5)])
    proc = cli("jobs", "q", "--limit", "3", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATE", "ATTEMPTS", "AGE", "GID", "LAST_ERROR"]
    first = [x.split()[0] for x in lines[1:4]]
    assert lines[1].split()[1:3] == ["wait", "0/3"]
    cursor = lines[4].removeprefix("next page: --cursor ")
    proc = cli("jobs", "q", "--limit", "3", "--cursor", cursor, "--json", url=omniq_redis_url)
    page = json.loads(proc.stdout)
    second = [j["job_id"] for j in page["jobs"]]
    assert sorted(first + second) == sorted(ids)  # index order: (time, id)
    assert page["cursor"] is None
    assert page["jobs"][0]["payload"] == {"n": ids.index(second[0])}


async def test_jobs_failed_lane_shows_the_first_error_line(
    omniq: AsyncOmniq, omniq_redis_url: str
) -> None:
    [jid] = await make_failed(omniq, "q", 1)
    proc = cli("jobs", "q", "--lane", "failed", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    row = proc.stdout.splitlines()[1]
    assert row.startswith(jid)
    assert row.endswith("RuntimeError: boom 0")


async def test_job_record_and_json(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    jid = await omniq.publish("q", {"to": "ada", "tags": [1, 2]}, gid="tenant")
    await omniq.consume("q", lambda ctx: {"ok": ctx.payload["to"]}, drain=True,
                        handle_signals=False)
    proc = cli("job", "q", jid, url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    assert f"job_id:            {jid}" in proc.stdout
    assert "state:             completed" in proc.stdout
    assert 'payload:\n  {\n    "to": "ada",' in proc.stdout
    assert 'result:\n  {\n    "ok": "ada"\n  }' in proc.stdout
    record = json.loads(cli("job", "q", jid, "--json", url=omniq_redis_url).stdout)
    assert record["payload"] == {"to": "ada", "tags": [1, 2]}
    assert record["result"] == {"ok": "ada"}
    assert record["gid"] == "tenant"
    assert record["state"] == "completed"
    one_line_error(cli("job", "q", "01J9Z6V4Q3R8T5X2M7N1K0PABC", url=omniq_redis_url), 1,
                   r"^omniq job: error: no job 01J9Z6V4Q3R8T5X2M7N1K0PABC in q$")


async def test_job_shows_its_controls_only_when_set(
    omniq: AsyncOmniq, omniq_redis_url: str
) -> None:
    plain = await omniq.publish("q", {"n": 1})
    controlled = await omniq.publish("q", {"n": 2}, dedup_key="invoice-7", run_timeout_ms=250,
                                     expire_in_ms=60_000, backoff="exp", backoff_max_ms=800)
    out = cli("job", "q", controlled, url=omniq_redis_url).stdout
    assert "dedup_key:         invoice-7" in out
    assert "run_timeout_ms:    250" in out
    assert "backoff:           exp" in out
    assert "backoff_max_ms:    800" in out
    assert re.search(r"^expires_ms: +\d+ \(in ", out, re.M), out
    assert "dedup_key" not in cli("job", "q", plain, url=omniq_redis_url).stdout
    record = json.loads(cli("job", "q", controlled, "--json", url=omniq_redis_url).stdout)
    assert record["dedup_key"] == "invoice-7"
    assert record["run_timeout_ms"] == 250


# -- retry / remove ---------------------------------------------------------------------


async def test_bulk_retry_and_remove_of_1000_failed_jobs(
    omniq: AsyncOmniq, omniq_redis_url: str, raw: redis.Redis
) -> None:
    q = "bulk"
    ids = await make_failed(omniq, q, 1000)
    # no terminal and no --yes: refused, nothing changes
    one_line_error(cli("retry", q, "--all-failed", url=omniq_redis_url), 2, r"needs --yes")
    assert (await omniq.stats(q)).failed == 1000

    proc = cli("retry", q, "--all-failed", "--yes", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"retried 1000 of 1000 jobs of {q}"]
    s = await omniq.stats(q)
    assert (s.failed, s.waiting) == (0, 1000)

    await omniq.consume(q, __import__("tests.cli.cli_handlers").cli.cli_handlers.fail,
                        concurrency=50, drain=True, handle_signals=False)
    assert (await omniq.stats(q)).failed == 1000
    proc = cli("remove", q, "--lane", "failed", "--all", "--yes", "--json", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"queue": q, "removed": 1000, "refused": {}}
    assert (await omniq.stats(q)).failed == 0
    assert not any(raw.exists(f"{{{q}}}:job:{jid}") for jid in ids[:20])
    assert await omniq.get_job(q, ids[-1]) is None


async def test_retry_and_remove_by_id_report_refusals(
    omniq: AsyncOmniq, omniq_redis_url: str
) -> None:
    failed = await make_failed(omniq, "q", 2)
    waiting = await omniq.publish("q", {"n": 9})
    missing = "01J9Z6V4Q3R8T5X2M7N1K0PABC"
    proc = cli("retry", "q", failed[0], waiting, missing, url=omniq_redis_url)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "retried 1 of 3 jobs of q"
    assert sorted(lines[1:]) == sorted([f"refused 1: NO_JOB: {missing}",
                                        f"refused 1: NOT_FAILED: {waiting}"]), lines
    proc = cli("remove", "q", "--lane", "failed", failed[1], "--json", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["removed"] == 1
    one_line_error(cli("remove", "q", "--lane", "bogus", failed[0], url=omniq_redis_url),
                   2, r"unknown lane 'bogus'")
    one_line_error(cli("remove", "q", "--lane", "wait", url=omniq_redis_url), 2,
                   r"give job ids or --all")


async def test_cancel_prints_each_result(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    running = await omniq.publish("q", {"n": 1})
    job = await omniq.reserve("q")
    assert job is not None
    assert job.job_id == running
    waiting = await omniq.publish("q", {"n": 2})
    missing = "01J9Z6V4Q3R8T5X2M7N1K0PABC"
    proc = cli("cancel", "q", waiting, running, url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{waiting}: cancelled", f"{running}: cancelling"]
    proc = cli("cancel", "q", waiting, missing, "--json", url=omniq_redis_url)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout) == {"queue": "q", "results": {
        waiting: "finished", missing: "not_found"}}
    info = await omniq.get_job("q", waiting)
    assert info is not None
    assert info.state == "failed"
    one_line_error(cli("cancel", "q", url=omniq_redis_url), 2, r"ID")


def cli_on_a_terminal(*args: str, url: str, answer: str) -> subprocess.CompletedProcess[str]:
    """Run with standard input on a pseudo-terminal that holds ``answer``."""
    import pty

    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        env = {**os.environ, "OMNIQ_REDIS_URL": url}
        return subprocess.run([sys.executable, "-m", "omniq", *args], stdin=slave,
                              capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=60, check=False)
    finally:
        os.close(slave)
        os.close(master)


async def test_all_asks_for_confirmation_on_a_terminal(
    omniq: AsyncOmniq, omniq_redis_url: str
) -> None:
    await make_failed(omniq, "q", 3)
    proc = cli_on_a_terminal("retry", "q", "--all-failed", url=omniq_redis_url, answer="n\n")
    assert proc.returncode == 1, proc.stderr
    assert "retry 3 failed jobs of q? [y/N]" in proc.stderr
    assert "cancelled, nothing retried" in proc.stderr
    assert (await omniq.stats("q")).failed == 3
    proc = cli_on_a_terminal("remove", "q", "--lane", "failed", "--all", url=omniq_redis_url,
                             answer="y\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "removed 3 of 3 jobs of q\n"
    assert (await omniq.stats("q")).failed == 0


def test_output_helpers() -> None:
    import io

    from omniq.cli._output import Progress, age, relative, table

    assert [age(None), age(1_000, 6_500), age(0, 600_000), age(0, 3 * 86_400_000)] == [
        "-", "5s", "10m", "3d"]
    assert relative(10_000, 4_000) == "in 6s"
    assert relative(4_000, 10_000) == "6s ago"
    out = io.StringIO()
    table(("NAME", "N"), [("a", 1), ("long-name", 22)], out)
    assert out.getvalue().splitlines() == ["NAME        N", "a           1", "long-name  22"]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    bar = Progress("removing", 300, stream=term)
    bar.advance(150)
    bar.close()
    assert "removing [###############---------------] 150/300" in term.getvalue()
    assert term.getvalue().endswith("\r\x1b[2K")
    quiet = Terminal()
    Progress("removing", 100, stream=quiet).advance(100)  # not "many": no bar
    assert quiet.getvalue() == ""
    piped = io.StringIO()
    Progress("removing", 5000, stream=piped).advance(5000)  # not a terminal: no bar
    assert piped.getvalue() == ""


# -- pause / resume ---------------------------------------------------------------------


async def test_pause_and_resume(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    proc = cli("pause", "q", url=omniq_redis_url)
    assert (proc.returncode, proc.stdout) == (0, "paused q\n")
    assert await omniq.is_paused("q")
    proc = cli("resume", "q", url=omniq_redis_url)
    assert (proc.returncode, proc.stdout) == (0, "resumed q\n")
    assert not await omniq.is_paused("q")
    assert cli("resume", "q", url=omniq_redis_url).stdout == "q was not paused\n"


# -- publish ----------------------------------------------------------------------------


async def test_publish_one_with_options(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    proc = cli("publish", "q", '{"to": "ada"}', "--gid", "g1", "--max-attempts", "7",
               "--timeout-ms", "1234", "--backoff-ms", "10", "--delay-ms", "60000",
               "--job-id", "my-job", url=omniq_redis_url)
    assert (proc.returncode, proc.stdout) == (0, "my-job\n"), proc.stderr
    info = await omniq.get_job("q", "my-job")
    assert info is not None
    assert (info.payload, info.gid, info.max_attempts, info.timeout_ms, info.backoff_ms,
            info.state) == ({"to": "ada"}, "g1", 7, 1234, 10, "delayed")


async def test_publish_with_job_controls(omniq: AsyncOmniq, omniq_redis_url: str,
                                         tmp_path: Path) -> None:
    first = cli("publish", "q", '{"v": 1}', "--dedup-key", "nightly", "--dedup-ttl-ms",
                "60000", "--expire-in-ms", "90000", "--run-timeout-ms", "5000",
                url=omniq_redis_url)
    assert first.returncode == 0, first.stderr
    again = cli("publish", "q", '{"v": 2}', "--dedup-key", "nightly", "--replace",
                url=omniq_redis_url)
    assert (again.returncode, again.stdout) == (0, first.stdout), again.stderr
    info = await omniq.get_job("q", first.stdout.strip())
    assert info is not None
    assert (info.payload, info.dedup_key, info.dedup_ttl_ms, info.run_timeout_ms) == (
        {"v": 2}, "nightly", 60000, 5000)
    assert info.expires_ms is not None
    assert info.created_ms is not None
    assert info.expires_ms > info.created_ms
    f = tmp_path / "jobs.jsonl"
    f.write_text(json.dumps({"payload": {}, "dedup_key": "nightly"}) + "\n"
                 + json.dumps({"payload": {}, "expire_in_ms": 10}) + "\n")
    proc = cli("publish", "q", "--file", str(f), "--json", url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    ids = json.loads(proc.stdout)["ids"]
    assert ids[0] == first.stdout.strip()
    assert (await omniq.stats("q")).waiting == 2


async def test_publish_file_and_stdin(omniq: AsyncOmniq, omniq_redis_url: str,
                                      tmp_path: Path) -> None:
    lines = [json.dumps({"n": i}) for i in range(2500)]
    lines.insert(10, "")  # blank lines are skipped
    lines.append(json.dumps({"payload": {"n": "spec"}, "gid": "g", "max_attempts": 1,
                             "job_id": "spec-1"}))
    lines.append("[1, 2]")
    f = tmp_path / "jobs.jsonl"
    f.write_text("\n".join(lines) + "\n")
    proc = cli("publish", "q", "--file", str(f), "--max-attempts", "4", "--json",
               url=omniq_redis_url)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["published"] == 2502
    assert out["ids"][-2] == "spec-1"
    spec = await omniq.get_job("q", "spec-1")
    assert spec is not None
    assert (spec.payload, spec.gid, spec.max_attempts) == ({"n": "spec"}, "g", 1)
    first = await omniq.get_job("q", out["ids"][0])
    assert first is not None
    assert (first.payload, first.max_attempts) == ({"n": 0}, 4)
    proc = cli("publish", "r", "--file", "-", stdin='{"a": 1}\n{"a": 2}\n', url=omniq_redis_url)
    assert (proc.returncode, proc.stdout) == (0, "published 2 jobs to r\n"), proc.stderr
    assert (await omniq.stats("r")).waiting == 2


@pytest.mark.parametrize(("args", "stdin", "pattern"), [
    (["q", "{bad"], "", r"JSON argument: bad JSON"),
    (["q", "42"], "", r"must be a JSON object or array"),
    (["q", "--file", "-"], '{"a": 1}\n{"a": 2}\n{"a": \n', r"line 3: bad JSON"),
    (["q", "--file", "-"], '{"a": 1}\n"text"\n', r"line 2: a payload must be a JSON object"),
    (["q", "--file", "-"], '{"a": 1}\n{"a": NaN}\n', r"line 2: bad JSON: NaN"),
    (["q", "--file", "-"], '{"a": 1}\n{"payload": {}, "max_attempts": 0}\n',
     r"line 2: max_attempts"),
    (["q", "--file", "-"], '{"payload": {}, "colour": 1}\n', r"line 1: unknown job option"),
    (["q", "--file", "-"], '{"payload": {}, "job_id": "x"}\n{"payload": {}, "job_id": "x"}\n',
     r"line 2: job id x repeats line 1"),
    (["q", "--file", "/nonexistent/jobs.jsonl"], "", r"cannot read /nonexistent"),
    (["q", "{}", "--max-attempts", "0"], "", r"--max-attempts: must be at least 1"),
    (["q", "{}", "--delay-ms", "soon"], "", r"--delay-ms: not an integer"),
    (["q"], "", r"give a JSON payload or --file"),
    (["bad name{", "{}"], "", r"queue"),
])
def test_publish_bad_input_writes_nothing(omniq_redis_url: str, raw: redis.Redis,
                                          args: list[str], stdin: str, pattern: str) -> None:
    one_line_error(cli("publish", *args, stdin=stdin, url=omniq_redis_url), 2, pattern)
    assert raw.dbsize() == 0


# -- errors -----------------------------------------------------------------------------


def test_cannot_connect_exits_3(raw: redis.Redis) -> None:
    proc = cli("--url", "redis://127.0.0.1:1/0", "stats", url=None)
    one_line_error(proc, 3, r"^omniq stats: error: .*connect")
    proc = cli("worker", "cli_handlers:slow", "-q", "a", "--url", "redis://127.0.0.1:1/0",
               url=None, cwd=HERE)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("omniq worker: error: ")
    assert "Traceback" not in proc.stderr
    proc = cli("stats", "--url", "redis://127.0.0.1:1/0", "--debug", url=None)
    assert proc.returncode == 3
    assert "Traceback" in proc.stderr


def test_bad_values(omniq_redis_url: str) -> None:
    one_line_error(cli("jobs", "q", "--lane", "bogus", url=omniq_redis_url), 2,
                   r"unknown lane 'bogus'")
    one_line_error(cli("jobs", "q", "--limit", "0", url=omniq_redis_url), 2,
                   r"--limit: must be at least 1")
    one_line_error(cli("jobs", "q", "--cursor", "zzz", url=omniq_redis_url), 2, r"cursor")
    one_line_error(cli("stats", "--watch", "-1", url=omniq_redis_url), 2, r"--watch")
    one_line_error(cli("frobnicate", url=omniq_redis_url), 2, r"invalid choice")


# -- server -----------------------------------------------------------------------------


def test_server_runs_in_the_foreground_until_sigterm() -> None:
    proc = popen("server", url=None)
    out = Lines(proc.stdout)
    try:
        seen = out.wait_for(lambda s: any(x.startswith("export OMNIQ_REDIS_URL=") for x in s))
        url = next(x for x in seen if x.startswith("export ")).split("=", 1)[1]
        assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", url)
        assert cli("publish", "q", "{}", url=url).returncode == 0
        stats = cli("stats", "--json", url=url)
        assert json.loads(stats.stdout)[0]["waiting"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        out.wait_for(lambda s: "server stopped" in s)
    finally:
        finish(proc, out)
    assert cli("stats", url=url).returncode == 3  # it is gone


# -- --config ---------------------------------------------------------------------------


async def test_config_file_gives_connection_and_worker_options(
    omniq: AsyncOmniq, omniq_redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "omniq.toml"
    config.write_text(f'url = "{omniq_redis_url}"\nqueues = ["emails"]\nconcurrency = 3\n'
                      "drain = true\n")
    await omniq.publish("emails", {"to": "ada@example.com"})
    await omniq.publish("other", {"to": "alan@example.com"})
    proc = cli("worker", "examples.cli_handler:handler", "--config", str(config), url=None)
    assert proc.returncode == 0, proc.stderr
    assert f"on {omniq_redis_url}, queues emails, concurrency 3," in proc.stderr
    assert (await omniq.stats("emails")).completed_kept == 1
    # a flag wins over the file
    proc = cli("worker", "examples.cli_handler:handler", "--config", str(config), "-q", "other",
               "--concurrency", "2", url=None)
    assert proc.returncode == 0, proc.stderr
    assert "queues other, concurrency 2," in proc.stderr
    assert (await omniq.stats("other")).completed_kept == 1
    stats = cli("stats", "--json", "--config", str(config), url=None)
    assert stats.returncode == 0, stats.stderr
    assert sorted(r["queue"] for r in json.loads(stats.stdout)) == ["emails", "other"]
    bad = tmp_path / "bad.toml"
    bad.write_text("concurency = 3\n")
    one_line_error(cli("worker", "examples.cli_handler:handler", "-q", "a", "--config",
                       str(bad), url=omniq_redis_url), 2, r"concurency")
    over = tmp_path / "over.toml"
    over.write_text('url = "redis://127.0.0.1:1/0"\n')
    proc = cli("stats", "--config", str(over), url=omniq_redis_url)  # OMNIQ_REDIS_URL wins
    assert proc.returncode == 0, proc.stderr
