"""Drive the official OmniQ Python client (PyPI ``omniq``) for the interop suite.

Run ONLY with the official client's own virtual environment, isolated from this repository::

    <official-venv>/bin/python -I tests/interop/official_driver.py < command.json

``-I`` keeps the script's directory, the working directory, ``PYTHONPATH`` and the user site
out of ``sys.path``, so ``import omniq`` is the official package (the driver checks that, and
never imports anything from this repository). It calls the official client; it contains none
of its code.

Input (stdin): one JSON command, or ``{"commands": [command, ...]}``. Output: the last stdout line
is ``OMNIQ-DRIVER-RESULT <json>`` (a list of results for ``commands``). Every command carries
``url`` (``redis://host:port/db``); queue commands carry ``queue``.

Commands (``op``):

``version``         where the package was imported from, and its version.
``publish``         ``jobs``: list of {payload, job_id?, gid?, group_limit?, max_attempts?,
                    timeout_ms?, backoff_ms?, delay_ms? (relative; sent as an absolute due_ms)}.
``consume``         the official ``consume`` loop with the ledger handler (below). It never
                    returns on an empty queue (its ``drain`` flag only changes how SIGINT
                    stops it), so a watcher thread sends this process SIGTERM, the official
                    graceful stop, when ``drain`` is true and the queue has nothing waiting,
                    delayed or active, or when the ledger's done counter reaches
                    ``until_done``, or after ``max_seconds``.
``reserve``         one ``reserve`` call: {status: JOB|EMPTY|PAUSED, ...job fields}.
``reserve_ack``     reserve / heartbeat / ledger handler / ack_success or ack_fail, until
                    EMPTY (with ``promote``: promote_delayed first, and wait for delayed jobs
                    until ``max_seconds``), PAUSED or ``max_jobs``.
``monitor``         ``QueueMonitor``: stats, scan_queues, groups_ready_with_scores,
                    group_status(``gids``), every page of lane_page for the five lanes, and
                    get_job for ``job_ids``.
``retry_failed``    ``job_ids``; ``batch`` true uses retry_failed_batch.
``remove``          ``lane``, ``job_ids``; ``batch`` true uses remove_jobs_batch.
``reap`` / ``promote``   reap_expired / promote_delayed.
``ack``             ack_success, or ack_fail when ``error`` is given, with a caller's token.
``heartbeat``       heartbeat with a caller's token.
``pause`` / ``resume`` / ``is_paused``
``childs_init``     ``key``, ``expected``.
``child_ack``       ``key``, ``child_ids``: the return value of each ack, in order.

Ledger handler (the same contract as ``interop_util.LedgerHandler`` on the omniq side; keys
under ``ledger:<name>``): HINCRBY ``runs`` job_id; RPUSH ``log`` an entry; for a grouped job
INCR ``inflight:<gid>``, ZADD GT ``maxinflight`` and, on the job's first run, RPUSH
``order:<gid>`` its ``n``; sleep ``work_ms`` (``hang_ms`` on the first run); fail with
``RuntimeError(error_text or "planned failure ...")`` while runs <= payload ``fail``; on
success ``child_of`` acks that counter (RPUSH ``child:<key>`` the reply), then HINCRBY ``ok``,
HSET ``by`` (which side), INCR ``done``; finally DECR the group's inflight.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict
from typing import Any
from urllib.parse import urlparse

RESULT_MARK = "OMNIQ-DRIVER-RESULT "
SIDE = "official"


def _import_official() -> Any:
    import importlib.metadata

    import omniq

    origin = os.path.realpath(omniq.__file__)
    prefix = os.path.realpath(sys.prefix)
    if not origin.startswith(prefix + os.sep):
        raise SystemExit(f"omniq imported from {origin}, not from the official venv {prefix}")
    return omniq, origin, importlib.metadata.version("omniq")


OMNIQ, OMNIQ_FILE, OMNIQ_VERSION = _import_official()

import redis  # noqa: E402  (after the import check: pulled in by the official package)

from omniq import OmniqClient, QueueMonitor  # noqa: E402


def now_ms() -> int:
    return int(time.time() * 1000)


def client_for(url: str) -> Any:
    u = urlparse(url)
    db = int((u.path or "/0").strip("/") or 0)
    return OmniqClient(host=u.hostname or "127.0.0.1", port=u.port or 6379, db=db,
                       password=u.password, username=u.username or None)


def raw_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def base(queue: str) -> str:
    return "{" + queue + "}"


# --------------------------------------------------------------------------- ledger


class Ledger:
    def __init__(self, r: redis.Redis, name: str) -> None:
        self.r = r
        self.p = "ledger:" + name

    def run(self, ctx: Any, exec_child_ack: Any) -> None:
        """The ledger handler body; raises to fail the job."""
        p, r = self.p, self.r
        payload = ctx.payload if isinstance(ctx.payload, dict) else {}
        runs = r.hincrby(p + ":runs", ctx.job_id, 1)
        entry = {
            "side": SIDE, "job_id": ctx.job_id, "gid": ctx.gid, "attempt": ctx.attempt,
            "max_attempts": ctx.max_attempts, "run": runs, "payload": ctx.payload,
            "payload_raw": ctx.payload_raw,
        }
        r.rpush(p + ":log", json.dumps(entry, ensure_ascii=False))
        gid = ctx.gid or ""
        if gid:
            v = r.incr(p + ":inflight:" + gid)
            r.zadd(p + ":maxinflight", {gid: v}, gt=True)
            if runs == 1:
                r.rpush(p + ":order:" + gid, str(payload.get("n", -1)))
        try:
            work_ms = payload.get("work_ms", 0)
            if runs == 1 and payload.get("hang_ms"):
                work_ms = payload["hang_ms"]  # a stuck first run (the test kills us)
            if work_ms:
                time.sleep(work_ms / 1000.0)
            if runs <= int(payload.get("fail", 0)):
                raise RuntimeError(payload.get("error_text")
                                   or f"planned failure n={payload.get('n')} run={runs}")
            key = payload.get("child_of")
            if key:
                remaining = exec_child_ack(key)
                r.rpush(p + ":child:" + key, str(remaining))
            pipe = r.pipeline(transaction=True)
            pipe.hincrby(p + ":ok", ctx.job_id, 1)
            pipe.hset(p + ":by", ctx.job_id, SIDE)
            pipe.incr(p + ":done")
            pipe.execute()
        finally:
            if gid:
                r.decr(p + ":inflight:" + gid)


class _Ctx:
    """A handler context for the reserve_ack loop (built from a ReserveJob)."""

    def __init__(self, queue: str, job: Any) -> None:
        self.queue = queue
        self.job_id = job.job_id
        self.payload_raw = job.payload
        try:
            self.payload = json.loads(job.payload)
        except ValueError:
            self.payload = job.payload
        self.attempt = job.attempt
        self.max_attempts = job.max_attempts
        self.gid = job.gid
        self.lease_token = job.lease_token
        self.lock_until_ms = job.lock_until_ms


# --------------------------------------------------------------------------- commands


def op_version(cmd: dict[str, Any]) -> Any:
    return {"file": OMNIQ_FILE, "version": OMNIQ_VERSION, "prefix": os.path.realpath(sys.prefix),
            "base_prefix": os.path.realpath(sys.base_prefix),
            "sys_path": [os.path.realpath(p) if p else p for p in sys.path]}


def op_publish(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    ids = []
    try:
        for job in cmd["jobs"]:
            kw: dict[str, Any] = {"queue": cmd["queue"], "payload": job["payload"]}
            for k in ("job_id", "gid", "group_limit", "max_attempts", "timeout_ms", "backoff_ms",
                      "due_ms"):
                if job.get(k) is not None:
                    kw[k] = job[k]
            if job.get("delay_ms"):
                kw["due_ms"] = now_ms() + int(job["delay_ms"])
            ids.append(c.publish(**kw))
    finally:
        c.close()
    return {"ids": ids}


def _queue_drained(r: redis.Redis, queue: str) -> bool:
    b = base(queue)
    pipe = r.pipeline(transaction=True)  # one atomic snapshot
    pipe.llen(b + ":wait")
    pipe.zcard(b + ":idx:wait")
    pipe.zcard(b + ":delayed")
    pipe.zcard(b + ":active")
    return not any(pipe.execute())


def op_consume(cmd: dict[str, Any]) -> Any:
    url, queue = cmd["url"], cmd["queue"]
    r = raw_for(url)
    ledger = Ledger(r, cmd["ledger"])
    c = client_for(url)
    handled = {"jobs": 0}
    drain = bool(cmd.get("drain", True))
    until_done = cmd.get("until_done")
    max_seconds = float(cmd.get("max_seconds", 30))
    state = {"timed_out": False, "reason": ""}

    def handler(ctx: Any) -> None:
        handled["jobs"] += 1
        ledger.run(ctx, lambda key: ctx.exec.child_ack(key))

    def placeholder(signum: int, frame: Any) -> None:  # until consume installs its own
        pass

    signal.signal(signal.SIGTERM, placeholder)
    stop_watch = threading.Event()

    def watcher() -> None:
        wr = raw_for(url)
        deadline = time.monotonic() + max_seconds
        while not stop_watch.wait(0.02):
            if signal.getsignal(signal.SIGTERM) is placeholder:
                continue  # consume has not installed its SIGTERM handler yet (or is done)
            if time.monotonic() > deadline:
                state["timed_out"], state["reason"] = True, "max_seconds"
            elif until_done is not None and int(wr.get(ledger.p + ":done") or 0) >= until_done:
                state["reason"] = "until_done"
            elif drain and until_done is None and _queue_drained(wr, queue):
                state["reason"] = "drained"
            else:
                continue
            os.kill(os.getpid(), signal.SIGTERM)  # the official graceful stop
            return

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    t0 = time.monotonic()
    try:
        c.consume(queue=queue, handler=handler, drain=drain, poll_interval_s=0.01,
                  promote_interval_s=float(cmd.get("promote_interval_s", 1.0)),
                  reap_interval_s=float(cmd.get("reap_interval_s", 1.0)))
    finally:
        stop_watch.set()
        t.join(5)
    return {"handled": handled["jobs"], "seconds": time.monotonic() - t0, **state}


def _reserve_dict(res: Any) -> dict[str, Any]:
    if res is None:
        return {"status": "EMPTY"}
    if res.status == "PAUSED":
        return {"status": "PAUSED"}
    return asdict(res)


def op_reserve(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        return _reserve_dict(c.reserve(queue=cmd["queue"]))
    finally:
        c.close()


def op_reserve_ack(cmd: dict[str, Any]) -> Any:
    url, queue = cmd["url"], cmd["queue"]
    r = raw_for(url)
    ledger = Ledger(r, cmd["ledger"])
    c = client_for(url)
    max_jobs = int(cmd.get("max_jobs", 10_000))
    promote = bool(cmd.get("promote", False))
    deadline = time.monotonic() + float(cmd.get("max_seconds", 20))
    out: list[dict[str, Any]] = []
    status = "EMPTY"
    try:
        while len(out) < max_jobs:
            if promote:
                c.promote_delayed(queue=queue)
            res = c.reserve(queue=queue)
            if res is None:
                status = "EMPTY"
                if promote and r.zcard(base(queue) + ":delayed") and time.monotonic() < deadline:
                    time.sleep(0.02)  # bounded wait for a delayed job to come due
                    continue
                break
            if res.status == "PAUSED":
                status = "PAUSED"
                break
            item = asdict(res)
            item["heartbeat_lock_until_ms"] = c.heartbeat(
                queue=queue, job_id=res.job_id, lease_token=res.lease_token)
            ctx = _Ctx(queue, res)
            try:
                ledger.run(ctx, lambda key, jid=res.job_id: c.child_ack(key=key, child_id=jid))
            except Exception as exc:
                err = f"{type(exc).__name__}: {exc}"
                outcome = c.ack_fail(queue=queue, job_id=res.job_id, lease_token=res.lease_token,
                                     error=err)
                item["outcome"], item["due_ms"] = outcome[0], outcome[1]
            else:
                c.ack_success(queue=queue, job_id=res.job_id, lease_token=res.lease_token)
                item["outcome"] = "OK"
            out.append(item)
    finally:
        c.close()
    return {"jobs": out, "status": status}


def op_reap(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        return {"reaped": c.reap_expired(queue=cmd["queue"])}
    finally:
        c.close()


def op_promote(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        return {"promoted": c.promote_delayed(queue=cmd["queue"])}
    finally:
        c.close()


def op_ack(cmd: dict[str, Any]) -> Any:
    """ack_success (``error`` absent) or ack_fail of a lease held by a token."""
    c = client_for(cmd["url"])
    kw = {"queue": cmd["queue"], "job_id": cmd["job_id"], "lease_token": cmd["lease_token"]}
    try:
        if cmd.get("error") is None:
            c.ack_success(**kw)
            return {"status": "OK"}
        return {"status": list(c.ack_fail(error=cmd["error"], **kw))}
    except RuntimeError as exc:
        return {"status": "ERR", "error": str(exc)}
    finally:
        c.close()


def op_heartbeat(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        return {"lock_until_ms": c.heartbeat(queue=cmd["queue"], job_id=cmd["job_id"],
                                             lease_token=cmd["lease_token"])}
    except RuntimeError as exc:
        return {"status": "ERR", "error": str(exc)}
    finally:
        c.close()


def op_monitor(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    queue = cmd["queue"]
    try:
        m = QueueMonitor(c)
        lanes: dict[str, list[dict[str, Any]]] = {}
        for lane in ("wait", "active", "delayed", "failed", "completed"):
            rows: list[dict[str, Any]] = []
            offset = 0
            while True:
                page = m.lane_page(queue, lane, offset=offset, limit=25)
                rows += [asdict(x) for x in page]
                if len(page) < 25:
                    break
                offset += 25
            lanes[lane] = rows
        jobs = {}
        for jid in cmd.get("job_ids", []):
            info = m.get_job(queue, jid)
            jobs[jid] = None if info is None else asdict(info)
        return {
            "stats": asdict(m.stats(queue)),
            "queues": m.scan_queues(),
            "groups_ready": [asdict(g) for g in m.groups_ready_with_scores(queue, limit=500)],
            "group_status": [asdict(g) for g in m.group_status(queue, list(cmd.get("gids", [])))],
            "lanes": lanes,
            "jobs": jobs,
        }
    finally:
        c.close()


def _items(res: Any) -> list[dict[str, Any]]:
    return [asdict(x) for x in res]


def op_retry_failed(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        if cmd.get("batch"):
            return {"items": _items(c.retry_failed_batch(queue=cmd["queue"],
                                                         job_ids=cmd["job_ids"]))}
        out = []
        for jid in cmd["job_ids"]:
            try:
                c.retry_failed(queue=cmd["queue"], job_id=jid)
                out.append({"job_id": jid, "status": "OK", "reason": None})
            except RuntimeError as exc:
                out.append({"job_id": jid, "status": "ERR", "reason": str(exc)})
        return {"items": out}
    finally:
        c.close()


def op_remove(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        if cmd.get("batch"):
            return {"items": _items(c.remove_jobs_batch(queue=cmd["queue"], lane=cmd["lane"],
                                                        job_ids=cmd["job_ids"]))}
        out = []
        for jid in cmd["job_ids"]:
            try:
                c.remove_job(queue=cmd["queue"], job_id=jid, lane=cmd["lane"])
                out.append({"job_id": jid, "status": "OK", "reason": None})
            except RuntimeError as exc:
                out.append({"job_id": jid, "status": "ERR", "reason": str(exc)})
        return {"items": out}
    finally:
        c.close()


def op_pause(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        return {"reply": c.pause(queue=cmd["queue"])}
    finally:
        c.close()


def op_resume(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        return {"reply": c.resume(queue=cmd["queue"])}
    finally:
        c.close()


def op_is_paused(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        return {"paused": c.is_paused(queue=cmd["queue"])}
    finally:
        c.close()


def op_childs_init(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        c.childs_init(key=cmd["key"], expected=int(cmd["expected"]))
        return {"status": "OK"}
    except RuntimeError as exc:
        return {"status": "ERR", "error": str(exc)}
    finally:
        c.close()


def op_child_ack(cmd: dict[str, Any]) -> Any:
    c = client_for(cmd["url"])
    try:
        return {"remaining": [c.child_ack(key=cmd["key"], child_id=cid)
                              for cid in cmd["child_ids"]]}
    finally:
        c.close()


OPS = {name[3:]: fn for name, fn in dict(globals()).items() if name.startswith("op_")}


def main() -> int:
    cmd = json.loads(sys.stdin.read())
    try:
        if "commands" in cmd:
            result: Any = [OPS[c["op"]](c) for c in cmd["commands"]]
        else:
            result = OPS[cmd["op"]](cmd)
    except Exception:
        traceback.print_exc()
        return 1
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
