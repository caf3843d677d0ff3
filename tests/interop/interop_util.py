"""Helpers of the interop suite (imported by module name: tests/interop is on sys.path).

* :func:`ensure_official_venv` builds (once, under a file lock) the virtual environment of the
  official client, PyPI ``omniq==4.0.0``, which has the same import name as this package.
* :class:`Official` runs ``official_driver.py`` with that environment's interpreter, isolated
  from this repository (``-I``, no ``PYTHONPATH``, working directory outside the repo).
* :class:`LedgerHandler` is the omniq side of the external ledger that both sides' handlers
  write to Redis (the official side is in ``official_driver.py``; same key contract).
* :func:`check_monitors` compares the official monitor, ``AsyncOmniq.stats`` and the job
  indexes with the real containers of a queue.

Synchronisation: waits on another process poll Redis with a bounded deadline; nothing sleeps
to let something happen.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from omniq import InvalidArgument

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DRIVER = HERE / "official_driver.py"
FLEET_WORKER = HERE / "omniq_fleet_worker.py"
OFFICIAL_VERSION = "4.0.0"
RESULT_MARK = "OMNIQ-DRIVER-RESULT "
_MARKER = ".omniq-interop-ready"
_VENV_ENV = "OMNIQ_OFFICIAL_VENV"

LANES = ("wait", "active", "delayed", "failed", "completed")
COUNTERS = ("waiting", "group_waiting", "waiting_total", "active", "delayed", "failed",
            "completed_kept", "groups_ready")


# --------------------------------------------------------------------------- the official venv


def official_venv_dir() -> Path:
    """``$OMNIQ_OFFICIAL_VENV`` or ``<repo>/.venvs/official-omniq-<version>`` (gitignored)."""
    env = os.environ.get(_VENV_ENV)
    if env:
        return Path(env).resolve()
    return ROOT / ".venvs" / f"official-omniq-{OFFICIAL_VERSION}"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus everything that could put this repository on sys.path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                        "PYTHONUSERBASE", "PYTHONSAFEPATH")}
    env.update(extra)
    return env


_PROBE = (
    "import importlib.metadata as m, os, sys, omniq; "
    "f = os.path.realpath(omniq.__file__); p = os.path.realpath(sys.prefix); "
    "assert f.startswith(p + os.sep), (f, p); print(m.version('omniq'))"
)


def _probe(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not (venv / _MARKER).is_file() or not python.exists():
        return False
    try:
        out = subprocess.run([str(python), "-I", "-c", _PROBE], capture_output=True, text=True,
                             cwd=venv, env=clean_env(), timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == OFFICIAL_VERSION


def ensure_official_venv() -> Path:
    """Return the official venv's python, creating the venv first if needed.

    A venv counts as ready when its marker file exists (written last) and its interpreter
    imports ``omniq`` at the pinned version from its own site-packages. Creation runs under an
    exclusive lock on ``<venv>.lock``, so parallel test runs wait for one another and then
    reuse the result.
    """
    venv = official_venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _probe(venv):
            shutil.rmtree(venv, ignore_errors=True)
            steps = [
                [sys.executable, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                 "--disable-pip-version-check", "--no-input", f"omniq=={OFFICIAL_VERSION}"],
            ]
            for cmd in steps:
                out = subprocess.run(cmd, capture_output=True, text=True, cwd=venv.parent,
                                     env=clean_env(), timeout=600)
                if out.returncode != 0:
                    raise RuntimeError(
                        f"creating the official OmniQ venv failed: {' '.join(cmd)}\n"
                        f"{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
                    )
            (venv / _MARKER).write_text(OFFICIAL_VERSION + "\n")
            if not _probe(venv):
                raise RuntimeError(f"the official OmniQ venv at {venv} does not import omniq")
    return venv / "bin" / "python"


class Official:
    """Runs official_driver.py commands against one Redis URL."""

    def __init__(self, python: Path, url: str, cwd: Path) -> None:
        self.python = python
        self.url = url
        self.cwd = cwd

    def argv(self) -> list[str]:
        return [str(self.python), "-I", str(DRIVER)]

    def _with_url(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if "commands" in cmd:
            return {"commands": [self._with_url(c) for c in cmd["commands"]]}
        return {"url": self.url, **cmd}

    def run(self, cmd: dict[str, Any], timeout: float = 60) -> Any:
        """Run one command (or ``{"commands": [...]}``) and return its result(s)."""
        out = subprocess.run(self.argv(), input=json.dumps(self._with_url(cmd)),
                             capture_output=True, text=True, cwd=self.cwd, env=clean_env(),
                             timeout=timeout)
        return parse_result(out.returncode, out.stdout, out.stderr)

    async def arun(self, cmd: dict[str, Any], limit_s: float = 60) -> Any:
        """:meth:`run` without blocking the event loop."""
        return await asyncio.to_thread(self.run, cmd, limit_s)

    async def spawn(self, cmd: dict[str, Any]) -> asyncio.subprocess.Process:
        """Start a command in the background; finish with :func:`finish`."""
        proc = await asyncio.create_subprocess_exec(
            *self.argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=self.cwd, env=clean_env(),
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(self._with_url(cmd)).encode())
        await proc.stdin.drain()
        proc.stdin.close()
        return proc


def parse_result(code: int | None, stdout: str, stderr: str) -> Any:
    lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if code != 0 or not lines:
        raise AssertionError(f"driver failed (exit {code}):\n{stdout[-4000:]}\n{stderr[-6000:]}")
    return json.loads(lines[-1][len(RESULT_MARK):])


async def finish(proc: asyncio.subprocess.Process, limit_s: float) -> Any:
    """Wait for a spawned process (killing it after ``limit_s``) and parse its result."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"process did not finish in {limit_s}s:\n{out.decode()[-3000:]}\n"
            f"{err.decode()[-3000:]}"
        ) from None
    return parse_result(proc.returncode, out.decode(), err.decode())


async def spawn_fleet_worker(url: str, queue: str, ledger: str, total: int,
                             concurrency: int, max_seconds: float
                             ) -> asyncio.subprocess.Process:
    """Start ``omniq_fleet_worker.py`` (this package's interpreter) on ``queue``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, str(FLEET_WORKER), url, queue, ledger, str(total), str(concurrency),
        str(max_seconds), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )


# --------------------------------------------------------------------------- keys and time


def qk(queue: str, suffix: str) -> str:
    """Key ``{queue}:suffix``."""
    return "{" + queue + "}:" + suffix


def server_ms(r: redis.Redis) -> int:
    sec, usec = r.time()
    return int(sec) * 1000 + int(usec) // 1000


async def poll_until(check: Callable[[], bool | Awaitable[bool]], seconds: float, what: str,
                     interval: float = 0.02) -> None:
    """Poll ``check`` (a Redis read of state another process writes) until true."""
    deadline = time.monotonic() + seconds
    while True:
        ok = check()
        if not isinstance(ok, bool):
            ok = await ok
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------- the job mix


def job_mix(tag: str, *, delay_ms: int = 300) -> list[dict[str, Any]]:
    """Ungrouped, grouped (two groups, limit 1), delayed, retried and failing jobs.

    Each item: ``job_id``, ``payload`` (``n`` = publish order, ``fail`` = failing runs) and
    options. Expected outcome: ``expect`` (completed | failed) and ``runs``.
    """
    jobs: list[dict[str, Any]] = []

    def add(name: str, *, gid: str | None = None, fail: int = 0, max_attempts: int = 3,
            delay: int = 0, expect: str = "completed", runs: int = 1) -> None:
        n = len(jobs)
        payload = {"n": n, "name": name, "fail": fail, "text": "héllo ✓ 日本", "list": [1, 2.5]}
        job: dict[str, Any] = {
            "job_id": f"{tag}-{name}", "payload": payload, "max_attempts": max_attempts,
            "timeout_ms": 30_000, "backoff_ms": 0, "expect": expect, "runs": runs,
        }
        if gid is not None:
            job["gid"], job["group_limit"] = gid, 1
        if delay:
            job["delay_ms"] = delay
        jobs.append(job)

    for i in range(3):
        add(f"u{i}")
    for i in range(4):
        add(f"ga{i}", gid="ga")
        add(f"gb{i}", gid="gb")
    add("gb-retry", gid="gb", fail=1, runs=2)            # retried inside its group
    add("u-retry", fail=1, runs=2)                        # fails once, then succeeds
    add("u-failed", fail=99, max_attempts=2, expect="failed", runs=2)
    add("ga-failed", gid="ga", fail=99, max_attempts=1, expect="failed", runs=1)
    add("u-delayed", delay=delay_ms)
    add("ga-delayed", gid="ga", delay=delay_ms)           # promoted to the group's tail
    return jobs


def driver_jobs(jobs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("job_id", "payload", "gid", "group_limit", "max_attempts", "timeout_ms",
            "backoff_ms", "delay_ms")
    return [{k: j[k] for k in keep if k in j} for j in jobs]


def job_specs(jobs: Iterable[dict[str, Any]]) -> list[Any]:
    from omniq import JobSpec

    keep = ("job_id", "gid", "group_limit", "max_attempts", "timeout_ms", "backoff_ms",
            "delay_ms")
    return [JobSpec(payload=j["payload"], **{k: j[k] for k in keep if k in j}) for j in jobs]


# --------------------------------------------------------------------------- the ledger


class LedgerHandler:
    """The omniq side of the ledger contract described in ``official_driver.py``."""

    side = "omniq"

    def __init__(self, url: str, name: str) -> None:
        self.r = redis.asyncio.Redis.from_url(url, decode_responses=True)
        self.p = "ledger:" + name

    async def aclose(self) -> None:
        await self.r.aclose()

    async def __call__(self, ctx: Any) -> None:
        p, r = self.p, self.r
        payload = ctx.payload if isinstance(ctx.payload, dict) else {}
        runs = await r.hincrby(p + ":runs", ctx.job_id, 1)
        entry = {
            "side": self.side, "job_id": ctx.job_id, "gid": ctx.gid, "attempt": ctx.attempt,
            "max_attempts": ctx.max_attempts, "run": runs, "payload": ctx.payload,
            "payload_raw": ctx.payload_raw,
        }
        await r.rpush(p + ":log", json.dumps(entry, ensure_ascii=False))
        gid = ctx.gid or ""
        if gid:
            v = await r.incr(p + ":inflight:" + gid)
            await r.zadd(p + ":maxinflight", {gid: v}, gt=True)
            if runs == 1:
                await r.rpush(p + ":order:" + gid, str(payload.get("n", -1)))
        try:
            work_ms = payload.get("work_ms", 0)
            if runs == 1 and payload.get("hang_ms"):
                work_ms = payload["hang_ms"]  # a stuck first run
            if work_ms:
                await asyncio.sleep(work_ms / 1000.0)  # simulated work, not synchronisation
            if runs <= int(payload.get("fail", 0)):
                raise RuntimeError(payload.get("error_text")
                                   or f"planned failure n={payload.get('n')} run={runs}")
            key = payload.get("child_of")
            if key:
                remaining = await ctx.exec.child_ack(key)
                await r.rpush(p + ":child:" + key, str(remaining))
            async with r.pipeline(transaction=True) as pipe:
                pipe.hincrby(p + ":ok", ctx.job_id, 1)
                pipe.hset(p + ":by", ctx.job_id, self.side)
                pipe.incr(p + ":done")
                await pipe.execute()
        finally:
            if gid:
                await r.decr(p + ":inflight:" + gid)


class Ledger:
    """Read side of the ledger (sync, for assertions)."""

    def __init__(self, raw: redis.Redis, name: str) -> None:
        self.r = raw
        self.p = "ledger:" + name

    def runs(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(self.p + ":runs").items()}

    def ok(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(self.p + ":ok").items()}

    def by(self) -> dict[str, str]:
        return self.r.hgetall(self.p + ":by")

    def done(self) -> int:
        return int(self.r.get(self.p + ":done") or 0)

    def log(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.r.lrange(self.p + ":log", 0, -1)]

    def order(self, gid: str) -> list[int]:
        return [int(x) for x in self.r.lrange(self.p + ":order:" + gid, 0, -1)]

    def max_inflight(self) -> dict[str, int]:
        return {g: int(s) for g, s in self.r.zrange(self.p + ":maxinflight", 0, -1,
                                                     withscores=True)}

    def child_replies(self, key: str) -> list[int]:
        return [int(x) for x in self.r.lrange(self.p + ":child:" + key, 0, -1)]

    def check_jobs(self, jobs: Sequence[dict[str, Any]], *, side: str | None) -> None:
        """Every job ran as planned, completed at most once, by ``side`` when given; the
        payload, attempt, max_attempts and gid every handler saw match what was published;
        groups ran FIFO (first runs) and never above their limit."""
        runs, ok, by, log = self.runs(), self.ok(), self.by(), self.log()
        for job in jobs:
            jid = job["job_id"]
            assert runs.get(jid) == job["runs"], (jid, runs.get(jid), job["runs"])
            want_ok = 1 if job["expect"] == "completed" else 0
            assert ok.get(jid, 0) == want_ok, (jid, ok.get(jid))
            if want_ok and side is not None:
                assert by[jid] == side, (jid, by[jid])
            seen = [e for e in log if e["job_id"] == jid]
            assert [e["run"] for e in seen] == list(range(1, job["runs"] + 1)), seen
            for e in seen:
                assert e["payload"] == job["payload"], e
                assert json.loads(e["payload_raw"]) == job["payload"], e
                assert e["max_attempts"] == job["max_attempts"], e
                assert e["gid"] == (job.get("gid") or ""), e
                if not job.get("admin_retried"):
                    assert e["attempt"] == e["run"], e
                if side is not None:
                    assert e["side"] == side, e
        assert len(runs) == len(jobs), sorted(set(runs) - {j["job_id"] for j in jobs})
        self.check_groups(jobs)

    def check_groups(self, jobs: Sequence[dict[str, Any]]) -> None:
        limits: dict[str, int] = {}
        ns: dict[str, list[int]] = {}
        for job in jobs:
            if job.get("gid"):
                limits[job["gid"]] = max(job.get("group_limit") or 1, 1)
                ns.setdefault(job["gid"], []).append(job["payload"]["n"])
        maxes = self.max_inflight()
        for gid, limit in limits.items():
            assert 1 <= maxes.get(gid, 0) <= limit, (gid, maxes.get(gid), limit)
            assert int(self.r.get(self.p + ":inflight:" + gid) or 0) == 0, gid
            if limit == 1:
                order = self.order(gid)
                assert sorted(order) == sorted(ns[gid]), (gid, order)
                # FIFO of first runs (a retry goes to the group's tail: D10)
                published = sorted(ns[gid])
                # delayed jobs, and jobs leased outside the ledger first, are not in line
                delayed = [j["payload"]["n"] for j in jobs
                           if j.get("gid") == gid and (j.get("delay_ms")
                                                       or j.get("admin_retried"))]
                immediate = [n for n in published if n not in delayed]
                assert [n for n in order if n in immediate] == immediate, (gid, order)


# --------------------------------------------------------------------------- real containers


def group_ids(raw: redis.Redis, queue: str) -> list[str]:
    """Every gid that has a wait list, inflight counter or limit key."""
    prefix = qk(queue, "g:")
    gids = set()
    for key in raw.scan_iter(match=prefix + "*", count=1000):
        rest = key[len(prefix):]
        for suffix in (":wait", ":inflight", ":limit"):
            if rest.endswith(suffix):
                gids.add(rest[: -len(suffix)])
    return sorted(gids)


def real_counts(raw: redis.Redis, queue: str) -> dict[str, int]:
    """The monitor counters computed from the real containers."""
    w = raw.llen(qk(queue, "wait"))
    gw = sum(raw.llen(qk(queue, f"g:{g}:wait")) for g in group_ids(raw, queue))
    return {
        "waiting": w,
        "group_waiting": gw,
        "waiting_total": w + gw,
        "active": raw.zcard(qk(queue, "active")),
        "delayed": raw.zcard(qk(queue, "delayed")),
        "failed": raw.llen(qk(queue, "failed")),
        "completed_kept": raw.llen(qk(queue, "completed")),
        "groups_ready": raw.zcard(qk(queue, "groups:ready")),
    }


def lane_members(raw: redis.Redis, queue: str) -> dict[str, list[str]]:
    """Ids in each lane's real container (wait = ungrouped + every group's list)."""
    wait = list(raw.lrange(qk(queue, "wait"), 0, -1))
    for g in group_ids(raw, queue):
        wait += raw.lrange(qk(queue, f"g:{g}:wait"), 0, -1)
    return {
        "wait": wait,
        "active": raw.zrange(qk(queue, "active"), 0, -1),
        "delayed": raw.zrange(qk(queue, "delayed"), 0, -1),
        "failed": raw.lrange(qk(queue, "failed"), 0, -1),
        "completed": raw.lrange(qk(queue, "completed"), 0, -1),
    }


async def check_monitors(official: Official, omniq: Any, raw: redis.Redis, queue: str,
                         job_ids: Sequence[str] = (), listed_as: str | None = None
                         ) -> dict[str, Any]:
    """The official monitor and ``AsyncOmniq.stats`` report exactly the real containers.

    Checks: every stats counter and the paused flag (official ``QueueMonitor.stats``, ours,
    and the raw stats hash); every lane's index (official ``lane_page``, all pages) lists
    exactly the ids of the real container, each in the matching state; ``groups_ready`` and
    ``group_status`` (inflight = active jobs of the group, waiting count, ready flag, limit);
    ``scan_queues`` finds the queue; ``get_job`` agrees field by field with our ``get_job``.
    Returns the official monitor result.
    """
    real = real_counts(raw, queue)
    members = lane_members(raw, queue)
    paused = bool(raw.exists(qk(queue, "paused")))
    gids = group_ids(raw, queue)
    ids = list(job_ids) or [i for lane in LANES for i in members[lane]]
    mon = await official.arun({"op": "monitor", "queue": queue, "gids": gids, "job_ids": ids})

    official_stats = mon["stats"]
    assert {k: official_stats[k] for k in COUNTERS} == real, (official_stats, real)
    assert official_stats["paused"] is paused
    ours = await omniq.stats(queue)
    assert {k: getattr(ours, k) for k in COUNTERS} == real, (ours, real)
    assert ours.paused is paused
    assert queue in mon["queues"]
    assert (listed_as or queue) in await omniq.queues()  # a partition: its logical queue

    for lane in LANES:
        rows = mon["lanes"][lane]
        assert sorted(r["job_id"] for r in rows) == sorted(members[lane]), (lane, rows, members)
        assert raw.zcard(qk(queue, "idx:" + lane)) == len(members[lane]), lane
        for r in rows:
            assert r["state"] == lane, r

    ready = {g["gid"] for g in mon["groups_ready"]}
    assert ready == set(raw.zrange(qk(queue, "groups:ready"), 0, -1))
    active_by_gid: dict[str, int] = {}
    for jid in members["active"]:
        g = raw.hget(qk(queue, "job:" + jid), "gid") or ""
        if g:
            active_by_gid[g] = active_by_gid.get(g, 0) + 1
    for st in mon["group_status"]:
        g = st["gid"]
        assert st["inflight"] == active_by_gid.get(g, 0), st
        assert st["waiting_count"] == raw.llen(qk(queue, f"g:{g}:wait")), st
        assert st["ready"] is (g in ready), st
        assert st["limit"] == max(int(raw.get(qk(queue, f"g:{g}:limit")) or 1), 1), st
        # a group with capacity and work is always offered (nothing is stranded)
        if st["waiting_count"] and st["inflight"] < st["limit"]:
            assert st["ready"], st

    for jid in ids:
        theirs = mon["jobs"][jid]
        try:
            info = await omniq.get_job(queue, jid)
        except InvalidArgument:  # an official id outside our publish rules: read it raw
            from omniq._protocol.reads import job_info

            fields = raw.hgetall(qk(queue, "job:" + jid))
            info = job_info(queue, jid, fields) if fields else None
        if info is None:
            assert theirs is None, jid
            continue
        assert theirs is not None, jid
        assert_same_job(theirs, info)
    return mon


_INT_FIELDS = ("attempt", "max_attempts", "timeout_ms", "backoff_ms", "lock_until_ms", "due_ms",
               "last_error_ms", "created_ms", "updated_ms", "queued_ms", "first_started_ms",
               "last_started_ms", "completed_ms", "failed_ms")


def assert_same_job(theirs: dict[str, Any], info: Any) -> None:
    """The official monitor's JobInfo equals ours (None / "" map to the official 0 / "")."""
    assert theirs["job_id"] == info.job_id
    assert theirs["state"] == info.state
    assert theirs["gid"] == (info.gid or "")
    assert theirs["payload"] == info.payload_raw
    assert theirs["lease_token"] == (info.lease_token or "")
    assert theirs["last_error"] == (info.last_error or "")
    for f in _INT_FIELDS:
        assert theirs[f] == (getattr(info, f) or 0), (f, theirs[f], getattr(info, f))


async def consume_until_settled(omniq: Any, queue: str, handler: Any, raw: redis.Redis,
                                job_ids: Sequence[str], *, concurrency: int = 4,
                                seconds: float = 30) -> int:
    """Run our ``consume(drain=True)`` until every job is completed or failed.

    ``drain`` returns once nothing is ready; delayed jobs that are not due yet are waited
    for by polling their due time against the server clock. Returns how many runs it took.
    """
    deadline = time.monotonic() + seconds
    rounds = 0

    def settled() -> bool:
        states = [raw.hget(qk(queue, "job:" + j), "state") for j in job_ids]
        return all(s in ("completed", "failed") for s in states)

    def next_due() -> bool:
        due = raw.zrange(qk(queue, "delayed"), 0, 0, withscores=True)
        return not due or due[0][1] <= server_ms(raw)

    while True:
        rounds += 1
        await omniq.consume(queue, handler, concurrency=concurrency, drain=True,
                            handle_signals=False)
        if settled():
            return rounds
        await poll_until(next_due, max(deadline - time.monotonic(), 0.1),
                         "a delayed job to come due")
