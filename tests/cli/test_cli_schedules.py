"""``omniq schedules``, ``omniq schedule ACTION``, ``omniq scheduler`` and ``omniq worker
--no-schedules``, run as subprocesses against the test server.

Independent invocations run side by side (``cli_all``): each one imports the client anew.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import redis
from test_cli import HERE, Lines, cli, one_line_error, popen

from omniq import AsyncOmniq

# the command holds no queue logic (it calls the client, which the core suite runs on
# every kind): one server kind is enough for its parsing and output
pytestmark = [pytest.mark.single_node, pytest.mark.kinds("redis")]

SECOND = 1000
HOUR = 3600 * SECOND
DAY = 24 * HOUR


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


def cli_all(*calls: tuple[str, ...], url: str) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at once (a client command takes most of a second to start)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda args: cli(*args, url=url), calls))


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == ""
    return proc.stdout


def without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def test_help_has_examples() -> None:
    for name in ("schedules", "schedule", "schedule add", "schedule show", "schedule pause",
                 "schedule resume", "schedule rm", "scheduler"):
        out = ok(cli(*name.split(), "--help", url=None))
        assert "example:\n  omniq " + name.split()[0] in out, name
    assert "--no-schedules" in ok(cli("worker", "--help", url=None))
    top = ok(cli("--help", url=None))
    assert all(f"\n    {name} " in top for name in ("schedules", "schedule", "scheduler"))


async def test_add_list_and_show(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    start = now_ms() + HOUR
    end = start + 30 * DAY
    tick_start = now_ms() - 90 * SECOND
    empty, nightly, tick = cli_all(
        ("schedules", "other"),
        ("schedule", "add", "q", "nightly", "--cron", "0 3 * * *", "--tz", "Europe/Paris",
         "--payload", '{"report": "daily"}', "--start-ms", str(start), "--end-ms", str(end),
         "--misfire", "skip", "--misfire-grace-ms", "5000", "--jitter-ms", "500",
         "--max-attempts", "5", "--timeout-ms", "60000", "--backoff-ms", "100", "--gid", "acme",
         "--group-limit", "2", "--dedup-key", "nightly", "--dedup-ttl-ms", "1000",
         "--replace", "--expire-in-ms", "600000", "--run-timeout-ms", "30000"),
        ("schedule", "add", "q", "tick", "--every-ms", "60000", "--start-ms", str(tick_start),
         "--json"),
        url=omniq_redis_url)
    assert ok(empty) == "other has no schedules\n"

    # what the command stored is what the same client call stores
    got = await omniq.get_schedule("q", "nightly")
    assert got is not None
    same = await omniq.schedule(
        "q", "same", cron="0 3 * * *", tz="Europe/Paris", payload={"report": "daily"},
        start_ms=start, end_ms=end, misfire="skip", misfire_grace_ms=5000, jitter_ms=500,
        max_attempts=5, timeout_ms=60000, backoff_ms=100, gid="acme", group_limit=2,
        dedup_key="nightly", dedup_ttl_ms=1000, dedup="replace", expire_in_ms=600000,
        run_timeout_ms=30000)
    ignore = ("name", "created_ms", "updated_ms")
    assert without(msgspec.to_builtins(got), *ignore) == \
        without(msgspec.to_builtins(same), *ignore)
    assert got.options["gid"] == "acme"
    assert got.options["dedup"] == "replace"
    assert got.next_fire_ms is not None
    assert start <= got.next_fire_ms < start + DAY
    paris = datetime.fromtimestamp(got.next_fire_ms / 1000, ZoneInfo("Europe/Paris"))
    assert (paris.hour, paris.minute, paris.second) == (3, 0, 0)
    assert re.fullmatch(rf"schedule nightly of q: 0 3 \* \* \* \(Europe/Paris\), next "
                        rf"{re.escape(iso(got.next_fire_ms))} \(in \d+[smh]\)\n", ok(nightly))

    # --json prints the stored schedule; the first occurrence at/after --start-ms is due
    info = await omniq.get_schedule("q", "tick")
    assert info is not None
    shown = json.loads(ok(tick))
    assert shown == {**msgspec.to_builtins(info), "payload": {}, "ended": False}
    assert (info.every_ms, info.start_ms, info.next_fire_ms) == (60000, tick_start, tick_start)
    await omniq.unschedule("q", "same")

    table, as_json, show, show_json = cli_all(
        ("schedules", "q"), ("schedules", "q", "--json"), ("schedule", "show", "q", "nightly"),
        ("schedule", "show", "q", "nightly", "--json"), url=omniq_redis_url)
    lines = ok(table).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["NAME", "PATTERN", "NEXT", "LAST", "FIRES",
                                             "MISFIRE"]
    assert [re.split(r"\s{2,}", ln) for ln in lines[1:]] == [
        ["nightly", "0 3 * * * (Europe/Paris)", iso(got.next_fire_ms), "-", "0", "skip"],
        ["tick", "every 60000 ms", iso(tick_start), "-", "0", "once"],
    ]
    listed = json.loads(ok(as_json))
    assert listed["queue"] == "q"
    assert [s["name"] for s in listed["schedules"]] == ["nightly", "tick"]
    assert listed["schedules"][0] == {**msgspec.to_builtins(got), "payload": {"report": "daily"},
                                      "ended": False}
    assert set(listed["schedules"][1]) >= set(msgspec.structs.asdict(info))
    text = ok(show)
    assert "pattern:           0 3 * * * (Europe/Paris)\n" in text
    assert "state:             active\n" in text
    assert f"next_fire_ms:      {got.next_fire_ms} ({iso(got.next_fire_ms)}, in " in text
    assert f"end_ms:            {end} ({iso(end)}, in 30d)\n" in text
    assert "gid:               acme\n" in text
    assert text.endswith('payload:\n  {\n    "report": "daily"\n  }\n')
    assert json.loads(ok(show_json)) == listed["schedules"][0]


async def test_pause_resume_and_remove(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    url = omniq_redis_url
    start = now_ms() + HOUR
    await omniq.schedule("q", "tick", every_ms=60 * SECOND, start_ms=start)
    await omniq.schedule("q", "idle", every_ms=60 * SECOND, start_ms=start)
    paused, not_paused, pause_none, resume_none, rm_none = cli_all(
        ("schedule", "pause", "q", "tick"), ("schedule", "resume", "q", "idle", "--json"),
        ("schedule", "pause", "q", "nope"), ("schedule", "resume", "q", "nope"),
        ("schedule", "rm", "q", "nope"), url=url)
    assert ok(paused) == "paused schedule tick of q\n"
    info = await omniq.get_schedule("q", "tick")
    assert info is not None
    assert info.paused
    assert info.next_fire_ms is None
    assert json.loads(ok(not_paused)) == {"queue": "q", "name": "idle", "resumed": False,
                                          "next_fire_ms": start}
    one_line_error(pause_none, 1, r"^omniq schedule pause: error: q has no schedule nope$")
    one_line_error(resume_none, 1, r"^omniq schedule resume: error: q has no schedule nope$")
    assert ok(rm_none) == "q had no schedule nope\n"  # as `omniq limit --clear`

    again, listed = cli_all(("schedule", "pause", "q", "tick"), ("schedules", "q"), url=url)
    assert ok(again) == "schedule tick of q was already paused\n"
    assert [ln.split() for ln in ok(listed).splitlines()[1:]] == [
        ["idle", "every", "60000", "ms", iso(start), "-", "0", "once"],
        ["tick", "every", "60000", "ms", "paused", "-", "0", "once"]]

    # resumed: the first occurrence after now, which is still --start-ms
    resumed = ok(cli("schedule", "resume", "q", "tick", url=url))
    assert resumed == f"resumed schedule tick of q, next {iso(start)}\n"
    info = await omniq.get_schedule("q", "tick")
    assert info is not None
    assert not info.paused
    assert info.next_fire_ms == start

    removed = cli("schedule", "rm", "q", "tick", "--json", url=url)
    assert json.loads(ok(removed)) == {"queue": "q", "name": "tick", "removed": True}
    assert await omniq.get_schedule("q", "tick") is None
    assert [s.name for s in await omniq.schedules("q")] == ["idle"]


@pytest.mark.parametrize("no_cronsim", [False, True])
def test_bad_input_exits_2_and_writes_nothing(
    omniq_redis_url: str, raw: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    no_cronsim: bool,
) -> None:
    add = ("schedule", "add", "q", "s")
    if no_cronsim:
        # cronsim cannot be imported: the client's install hint; intervals need nothing
        (tmp_path / "cronsim.py").write_text("raise ImportError('no cronsim here')\n")
        monkeypatch.setenv("PYTHONPATH", str(tmp_path))
        proc = cli(*add, "--cron", "0 3 * * *", url=omniq_redis_url)
        one_line_error(proc, 2, r"^omniq schedule add: error: cron schedules need cronsim: "
                       r"pip install 'omniq-aio\[cron\]'$")
        assert raw.dbsize() == 0
        return
    start = str(now_ms())
    cases = [
        (("--cron", "61 * * * *"), r"bad cron expression '61 \* \* \* \*'"),
        (("--cron", "0 3 * * *", "--tz", "Mars/Olympus"), r"unknown time zone 'Mars/Olympus'"),
        (("--every-ms", "999"), r"every_ms must be at least 1000"),
        (("--every-ms", "1000", "--tz", "Europe/Paris"), r"tz applies to cron schedules only"),
        (("--every-ms", "1000", "--start-ms", start, "--end-ms", "1"),
         r"end_ms must not be before start_ms"),
        (("--cron", "0 3 * * *", "--every-ms", "1000"),
         r"argument --every-ms: not allowed with argument --cron"),
        ((), r"one of the arguments --cron --every-ms is required"),
        (("--every-ms", "1000", "--payload", "{nope"), r"--payload: bad JSON"),
        (("--every-ms", "1000", "--payload", '"text"'), r"--payload: a payload must be a JSON"),
        (("--every-ms", "1000", "--misfire", "never"), r"argument --misfire: invalid choice"),
        (("--every-ms", "1000", "--max-attempts", "0"),
         r"argument --max-attempts: must be at least 1"),
    ]
    procs = cli_all(*((*add, *extra) for extra, _ in cases), url=omniq_redis_url)
    for (_, pattern), proc in zip(cases, procs, strict=True):
        one_line_error(proc, 2, r"^omniq schedule add: error: " + pattern)
    assert raw.dbsize() == 0


async def test_worker_no_schedules_then_scheduler_fires(
    omniq: AsyncOmniq, omniq_redis_url: str
) -> None:
    q = "cli-sched"
    start = now_ms() - 10 * SECOND  # due at once; misfire once publishes that occurrence
    await omniq.schedule(q, "tick", every_ms=HOUR, start_ms=start, payload={"n": 7},
                         misfire="once")

    # a draining worker looks for due schedules once, unless --no-schedules
    proc = cli("worker", "cli_handlers:slow", "-q", q, "--drain", "--no-schedules",
               url=omniq_redis_url, cwd=HERE)
    assert proc.returncode == 0, proc.stderr
    assert "schedules off" in proc.stderr
    info = await omniq.get_schedule(q, "tick")
    assert info is not None
    assert (info.fires, info.next_fire_ms) == (0, start)
    assert (await omniq.stats(q)).waiting == 0

    sched = popen("scheduler", "-q", q, "--interval-s", "0.2", url=omniq_redis_url)
    err = Lines(sched.stderr)
    try:
        seen = err.wait_for(lambda s: any("fired job" in x for x in s))
        deadline = time.monotonic() + 10
        while info.fires < 1:  # the fire and its event are one script call: no wait here
            assert time.monotonic() < deadline, info
            info = await omniq.get_schedule(q, "tick")
            assert info is not None
        assert info.fires == 1
        assert info.last_fire_ms == start
        assert info.next_fire_ms == start + HOUR
        assert info.last_job_id is not None
        job = await omniq.get_job(q, info.last_job_id)
        assert job is not None
        assert (job.state, job.payload, job.schedule, job.occurrence_ms) == (
            "wait", {"n": 7}, "tick", start)
        assert any(f"{q}: schedule tick fired job {info.last_job_id} (occurrence "
                   f"{iso(start)})" in x for x in seen), seen
        assert re.search(rf"omniq \S+ scheduler: {re.escape(omniq_redis_url)}, queues {q}, "
                         r"interval 0\.2s", seen[0]), seen
        sched.send_signal(signal.SIGINT)
        assert sched.wait(timeout=20) == 0
        err.wait_for(lambda s: any("stopped (jobs published: 1)" in x for x in s))
    finally:
        if sched.poll() is None:
            sched.kill()
        sched.wait()
        err.thread.join(10)
        assert sched.stdout is not None
        with sched.stdout:
            assert sched.stdout.read() == ""
    assert any("SIGINT received, stopping after the pass in progress" in x for x in err.seen)
    assert (await omniq.stats(q)).waiting == 1
