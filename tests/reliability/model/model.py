"""A pure-Python reference model of omniq's queue semantics (no Redis, no I/O).

Written from ``/work/shared/PROTOCOL.md`` (the OmniQ v1 data layout) and ``docs/protocol.md``
(what omniq changes on purpose), not from the Lua text. ``test_model.py`` drives the real
scripts and this model with the same operations and the same explicit clock, and compares
every reply and the whole keyspace after every step.

The model holds exactly what Redis holds: every key of every queue, rendered by
:meth:`Model.keyspace` in the shape of ``keydump.dump_keyspace`` (type, value, expiry).
Lease tokens are the SHA1 hex of ``"<id>:<now_ms>:<seq>"`` (PROTOCOL.md §2), so the model
knows the token the real system must hand out.

Conventions kept from the scripts' data model: all stored values are strings; an empty
container is no key at all; a zset is ``member -> score`` ordered by (score, member).

Events (docs/events.md): every transition appends one entry to ``{q}:events`` in the same
call, so the model keeps the ordered list of entries (their fields) each operation must
produce; the stream ids are the server's and are not modelled. ``ms`` is the script's
clock (the explicit ``now_ms``), except for pause / resume, which take the server clock
(``"*"`` in the model). Deletions by retention (count or age) write no event.

Retention by age: a job published with ``keep_completed_ms`` / ``keep_failed_ms`` > 0 gets
``expire_ms`` = finish time + that when it completes / fails for good, and an entry in the
zset ``{q}:expire``; it is deleted by the first ack, promote or reap call (one that does
work) at or after that time, at most MAX_EXPIRE_TRIM per call.

Rate limits (docs/control.md): ``{q}:rate_limits`` holds them (``queue``, ``g:<gid>``:
``"max per"``, ``groups``: how many group limits); a reservation slides the windows (the
zsets ``{q}:rate_log`` and ``{q}:g:<gid>:rate_log``, member = lease token, score = the
reservation time, entries at or before ``now - per`` dropped, ``PEXPIRE per`` on every
add), leases only what they allow, parks a group whose window is full in
``{q}:groups:limited`` (scored by when it may run) and moves due ones back first; when it
leases nothing because of a limit it answers ``LIMITED retry_after scope``.

Backoff strategies and strict group order (docs/control.md): a retry waits backoff_ms, or
backoff_ms * 2^(attempt-1) with ``backoff='exp'`` (exponent at most 53), capped by
backoff_max_ms and 2^53-1, and with ``backoff_jitter`` drawn from [d - d//2, d] by the
SHA1 of ``"<id>:<attempt>:<now>"``. A strict job's failed attempt holds its group
(``g:<gid>:held``), its terminal failure with on_failure='block' blocks it
(``g:<gid>:blocked``); reserve starts nothing in a group held by a job still in that
state, and drops a hold whose job moved on.

Schedules (docs/schedules.md, protocol.md 2.10, the schedule_* script headers): the hash
``{q}:schedule:<name>`` (definition, job template, state) and the zset ``{q}:schedules``
(next fire time, ``+inf`` while paused or ended). The model has the five scripts
(schedule_set with its created / replaced / unchanged / CHANGED, the reads, schedule_fire
with its compare-and-set statuses and plan checks, pause / resume, remove) and, to know
what the client sends, its own planner of the documented rules (:func:`first_fire`,
:func:`plan_fire`, :func:`resume_next`: interval arithmetic here; cron occurrences from
omniq._timing, i.e. cronsim, walked forward). A fire writes each occurrence's job with the
derived id (omniq._protocol.schedules.schedule_job_id) like enqueue does, plus the fields
``schedule`` and ``occurrence_ms``; a lease of it gives both (the reply carries the
schedule, the client reads the occurrence from the id, a ULID of it).

Dependencies and flows (docs/workflows.md, the deps_* script headers): enqueue's extras
``depends_on`` / ``dep_policy`` / ``dependents`` write a job in state ``waiting_deps``
(zset ``{q}:waiting_deps``; fields ``depends_on``, ``deps_left``, ``dep:<ref>``,
``dep_policy``) and pre-register dependents (hash ``{q}:job:<id>:dependents``, field
``dependents``, zset ``{q}:deps:src``). A job that ends (ack, final failure, cancel,
remove, expiry, trim, reap) with dependents settles them in the same call: those of its
queue at once (:meth:`QueueModel.dep_settle`, the policy table), the others through the
outbox (``{q}:deps:out``, ``{q}:deps:outdata``: ``R`` ops; enqueue writes ``L`` ops for
dependencies on other queues). The four scripts deps_link, deps_resolve, deps_pending
(with its repair scan) and deps_ack are modelled, and :meth:`Model.resolve_dependencies`
is the client's delivery of one queue's outbox built on them.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import Any

from omniq._protocol.schedules import schedule_job_id
from omniq._timing import Timing

DEFAULT_TIMEOUT_MS = 60_000  # a lease of a job whose timeout_ms is <= 0
MAX_GROUP_POPS = 10
MAX_ORPHAN_SKIPS = 100
MAX_UNPARK = 100  # parked (rate-limited) groups one reservation moves back at most
MAX_EXPIRED_PER_CALL = 100  # jobs past expires_ms one reservation call fails at most
MAX_ERR_BYTES = 4096
MAX_BATCH = 100
MAX_FAILED_TRIM = 1000  # failed jobs one call trims at most (keep_failed)
MAX_EXPIRE_TRIM = 1000  # finished jobs one call deletes at most (keep_*_ms)
MAX_INT = 2**53 - 1
SERVER_CLOCK = "*"  # the ms of an event stamped with the server's clock (pause / resume)
FINISHED_TTL_MS = 86_400_000  # {cc:K}:finished marker
LANE_STATE = {"wait": "wait", "gwait": "wait", "delayed": "delayed", "failed": "failed",
              "completed": "completed", "waiting_deps": "waiting_deps"}
LANE_INDEX = {"wait": "wait", "gwait": "wait", "delayed": "delayed", "failed": "failed",
              "completed": "completed"}
# dependencies (lib.lua "Dependencies and flows", omniq/_limits.py)
DEPS_RETRY_MS = 5000  # a taken outbox op is due again this long after, unless done
DEPS_ORPHAN_MS = 600_000  # the client drops an op whose dependent never appeared after this
DEPS_REPAIR_MS = 60_000  # the repair scan looks at a job with dependents again after this
DEPS_FAILED_REPAIR_MS = 10 * DEPS_REPAIR_MS  # ... at a failed one kept for its retry
MAX_DEPS_OPS = 1000
MAX_DEPS_REPAIR = 100
MAX_DEPENDENTS = 10_000  # most dependents a publish may give one job (DEP_LIMIT)
CASCADE_QUEUES = 100  # most queues one client delivery follows (client._CASCADE_QUEUES)
# schedules (docs/schedules.md, the schedule_* script headers)
INF = float("inf")  # the score of a paused or ended schedule
MAX_SCHEDULE_CATCHUP = 100  # occurrences one fire of a misfire='all' schedule publishes at most
MAX_SCHEDULES_DUE = 100  # schedules one fire call takes at most
SCHED_DEF = ("cron", "every_ms", "tz", "start_ms", "end_ms", "misfire", "misfire_grace_ms",
             "jitter_ms", "payload", "max_attempts", "timeout_ms", "backoff_ms", "gid",
             "group_limit", "keep_completed_ms", "keep_failed_ms", "extras")
SCHED_TIMING = SCHED_DEF[:5]
SCHED_STATE = ("rev", "next_ms", "paused", "anchor_ms", "last_ms", "last_job_id", "fired_ms",
               "fires", "misfired_ms", "created_ms", "updated_ms")
STAT_COUNTERS = ("waiting", "group_waiting", "waiting_total", "active", "delayed", "failed",
                 "completed_kept", "groups_ready")

Reply = tuple[Any, ...]
Hash = dict[str, str]


def number(v: Any) -> float | None:
    """Lua ``tonumber``: None for missing, empty or non-numeric text."""
    if v is None:
        return None
    if isinstance(v, int | float):
        return v
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return None


def fmt(n: float) -> str:
    return str(int(n))


def token_for(job_id: str, now: int, seq: int) -> str:
    return hashlib.sha1(f"{job_id}:{now}:{seq}".encode()).hexdigest()


def valid_id(v: str | None) -> bool:
    """Job ids and gids the scripts accept on publish/admin: 1-256 bytes, no control chars."""
    if v is None or v == "":
        return False
    b = v.encode()
    return len(b) <= 256 and not any(c < 32 or c == 127 for c in b)


def cut_utf8(text: str) -> str:
    """At most MAX_ERR_BYTES bytes, never splitting a character (D8)."""
    return text.encode()[:MAX_ERR_BYTES].decode("utf-8", "ignore")


def cjson_strings(items: list[str]) -> str:
    """Lua cjson.encode of an array of strings: compact, UTF-8 as is, '/' escaped."""
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")


def control_fields(c: dict[str, Any], now: int) -> Hash:
    """The job hash fields of publish's job-control options (``c``: their keyword
    arguments): only those that differ from the default are stored."""
    h: Hash = {}
    if c.get("dedup_key") is not None:
        h["dedup_key"] = c["dedup_key"]
    for name in ("dedup_ttl_ms", "expires_ms", "run_timeout_ms", "backoff_max_ms"):
        if c.get(name, 0) > 0:
            h[name] = fmt(c[name])
    if c.get("expire_in_ms", 0) > 0:
        h["expires_ms"] = fmt(now + c["expire_in_ms"])
    if c.get("backoff") == "exp":
        h["backoff"] = "exp"
    if c.get("backoff_jitter"):
        h["backoff_jitter"] = "1"
    if c.get("group_order") == "strict":
        h["group_order"] = "strict"
    if c.get("on_failure") == "block":
        h["on_failure"] = "block"
    return h


def backoff_delay(job_id: str, attempt: float, now: int, h: Hash) -> float:
    """The delay before the retry of ``attempt`` (the job's stored backoff fields)."""
    d = max(number(h.get("backoff_ms")) or 0, 0)
    if not (h.get("backoff") or h.get("backoff_max_ms") or h.get("backoff_jitter")):
        return d
    if h.get("backoff") == "exp" and d > 0:
        d = d * 2.0 ** min(max(attempt - 1, 0), 53)
    cap = number(h.get("backoff_max_ms")) or 0
    if cap > 0 and d > cap:
        d = cap
    d = min(d, MAX_INT)
    if h.get("backoff_jitter") == "1" and d > 1:
        half = d // 2
        digest = hashlib.sha1(f"{job_id}:{fmt(attempt)}:{now}".encode()).hexdigest()
        r = int(digest[:13], 16) / 2**52
        d = d - half + min(int(r * (half + 1)), half)
    return d


# -- schedules: when a definition fires (the planner the brief describes) ------------------

def opt_int(v: str | None) -> int | None:
    """A stored optional integer field ('' or missing: None)."""
    return int(v) if v else None


class Occurrences:
    """The occurrence times of a schedule definition (SCHED_DEF fields as stored, plus
    ``anchor_ms``). An interval schedule fires at ``anchor + k * every_ms`` (k >= 0; the
    anchor is start_ms when given); a cron one at the matches of its expression in its
    time zone (evaluated by omniq._timing, i.e. cronsim: the model checks the scripts,
    not the cron parser). Both stay within [start_ms, end_ms]."""

    def __init__(self, d: dict[str, str]) -> None:
        self.start = opt_int(d.get("start_ms"))
        self.end = opt_int(d.get("end_ms"))
        self.every = opt_int(d.get("every_ms"))
        self.anchor = self.start if self.start is not None else int(d.get("anchor_ms") or 0)
        self.cron = None
        if not self.every:
            self.cron = Timing(cron=d["cron"], every_ms=None, tz=d["tz"] or "UTC",
                               start_ms=self.start, end_ms=self.end)

    def after(self, t: int) -> int | None:
        """The first occurrence later than ``t`` (None: none left)."""
        if self.cron is not None:
            return self.cron.after(t)
        assert self.every
        if t < self.anchor:
            found = self.anchor
        else:
            found = self.anchor + ((t - self.anchor) // self.every + 1) * self.every
        return None if self.end is not None and found > self.end else found

    def latest(self, lo: int, hi: int, n: int) -> list[int]:
        """Up to ``n`` occurrences in [lo, hi], the latest first."""
        if self.end is not None:
            hi = min(hi, self.end)
        if self.every:
            lo = max(lo, self.anchor)
            if hi < lo:
                return []
            t = self.anchor + (hi - self.anchor) // self.every * self.every
            out = []
            while t >= lo and len(out) < n:
                out.append(t)
                t -= self.every
            return out
        # cron: walk forward from lo (a short range in these tests)
        found: deque[int] = deque(maxlen=n)
        t = self.after(lo - 1)
        steps = 0
        while t is not None and t <= hi:
            found.append(t)
            steps += 1
            assert steps < 20_000, "cron range too long for the model's forward walk"
            t = self.after(t)
        return list(reversed(found))


def first_fire(d: dict[str, str], stored: Hash | None,
               now: int) -> tuple[int | None, int] | None:
    """The next fire time and anchor a schedule() call stores (brief, "Creation"): an
    unchanged timing keeps both; else with start_ms the first occurrence at or after it,
    without it the first after now (an interval anchored at now); never at or before the
    stored last_ms. None: a new timing without an occurrence left (the call is refused)."""
    if stored is not None and all(stored.get(f, "") == d[f] for f in SCHED_TIMING):
        return opt_int(stored.get("next_ms")), int(stored.get("anchor_ms") or 0)
    start = opt_int(d["start_ms"])
    anchor = now if start is None else start
    after = now if start is None else start - 1
    last = opt_int(stored.get("last_ms")) if stored is not None else None
    if last is not None:
        after = max(after, last)
    nxt = Occurrences({**d, "anchor_ms": fmt(anchor)}).after(after)
    return None if nxt is None else (nxt, anchor)


def resume_next(h: Hash, now: int) -> int | None:
    """A resumed schedule's next fire time: the first occurrence after max(now, last_ms)."""
    last = opt_int(h.get("last_ms"))
    return Occurrences(h).after(now if last is None else max(now, last))


FirePlanT = tuple[list[int], tuple[int, int] | None, int | None]  # times, skipped, new next


def plan_fire(h: Hash, now: int) -> FirePlanT | None:
    """What a fire at ``now`` does with a stored schedule (None: not due). The due
    occurrences are those in [next_ms, now]: 'once' publishes the latest and skips the
    older ones; 'skip' publishes the latest only when it is the only one due and at most
    misfire_grace_ms late, else skips all; 'all' publishes all, at most the
    MAX_SCHEDULE_CATCHUP latest (older ones skipped). The new next fire time is the first
    occurrence after now."""
    nxt = opt_int(h.get("next_ms"))
    if h.get("paused") == "1" or nxt is None or nxt > now:
        return None
    occ = Occurrences(h)
    misfire = h["misfire"]
    due = occ.latest(nxt, now, MAX_SCHEDULE_CATCHUP + 1 if misfire == "all" else 2)
    new_next = occ.after(now)
    if not due:
        return [], None, new_next
    if misfire == "all":
        times, skip_to = sorted(due[:MAX_SCHEDULE_CATCHUP]), (
            due[MAX_SCHEDULE_CATCHUP] if len(due) > MAX_SCHEDULE_CATCHUP else None)
    elif misfire == "once" or (len(due) == 1
                               and now - due[0] <= int(h.get("misfire_grace_ms") or 0)):
        times, skip_to = [due[0]], due[1] if len(due) > 1 else None
    else:
        times, skip_to = [], due[0]
    if skip_to is None:
        return times, None, new_next
    first = occ.after(nxt - 1)  # the first skipped occurrence
    assert first is not None
    return times, (first, skip_to), new_next


def sched_jitter(name: str, at: int, jitter: int) -> int:
    """How long after its occurrence the job is due: the first 13 hex digits of
    SHA1("<name>:<at>") as an integer, modulo jitter + 1."""
    if jitter <= 0:
        return 0
    return int(hashlib.sha1(f"{name}:{at}".encode()).hexdigest()[:13], 16) % (jitter + 1)


class ZSet(dict[str, int]):
    """member -> score; ordered by (score, member) like a Redis sorted set."""

    def add_nx(self, member: str, score: int) -> None:
        if member not in self:
            self[member] = score

    def popmin(self) -> str:
        m = min(self, key=lambda k: (self[k], k.encode()))
        del self[m]
        return m

    def due(self, max_score: int, limit: int) -> list[str]:
        ordered = sorted(self.items(), key=lambda kv: (kv[1], kv[0].encode()))
        return [m for m, s in ordered if s <= max_score][:limit]


def list_remove(lst: list[str], item: str) -> bool:
    """LREM key 1 item."""
    try:
        lst.remove(item)
    except ValueError:
        return False
    return True


class QueueModel:
    """Every key of one queue ``{name}``."""

    def __init__(self, name: str, events_maxlen: int = 10_000) -> None:
        self.name = name
        self.events_maxlen = events_maxlen  # 0: the scripts write no events
        self.events: list[Hash] = []  # the fields of every entry of {q}:events, in order
        self.expire = ZSet()  # {q}:expire: finished job -> time it may be deleted
        self.jobs: dict[str, Hash] = {}
        self.wait: list[str] = []
        self.gwait: dict[str, list[str]] = {}
        self.delayed = ZSet()
        self.active = ZSet()
        self.ready = ZSet()
        self.completed: list[str] = []  # newest first
        self.failed: list[str] = []  # newest first
        self.idx = {lane: ZSet() for lane in ("wait", "active", "delayed", "completed", "failed")}
        self.inflight: dict[str, int] = {}
        self.limit: dict[str, str] = {}
        self.leases: dict[str, str] = {}  # omniq extension: job id -> gid of grouped leases
        self.held: dict[str, str] = {}  # g:<gid>:held: gid -> strict job waiting out a backoff
        self.blocked: dict[str, str] = {}  # g:<gid>:blocked: gid -> strict job failed for good
        # dedup:<key>: key -> [holder id, 'until' ms (None while the holder is live),
        # dedup_ttl_ms (the PEXPIRE, None while live)]
        self.dedup: dict[str, list[Any]] = {}
        self._expired_n = 0  # jobs the current reservation call expired
        self.paused = False
        self.rr: str | None = None
        self.seq = 0
        self.has_groups = False
        self.stats: Hash = {}
        self._served: deque[str] = deque()
        # rate limits: the limits hash, the window logs (with the ms of their last PEXPIRE)
        # and the parked groups; per reservation: group limits on?, limits read, window
        self.rate: Hash = {}
        self.rate_log = ZSet()
        self.rate_log_ttl = 0
        self.grate_log: dict[str, ZSet] = {}
        self.grate_ttl: dict[str, int] = {}
        self.limited = ZSet()
        self._rate_groups = False
        self._rate_cache: dict[str, tuple[int, int] | None] = {}
        self._queue_per: int | None = None
        # schedules: {q}:schedule:<name> hashes and the {q}:schedules zset (name -> next
        # fire time, INF while paused or ended)
        self.schedules: dict[str, Hash] = {}
        self.sched_z = ZSet()
        # dependencies: the waiting_deps lane, the dependents hashes ({q}:job:<id>:dependents,
        # ref -> policy, kept apart from the job hashes: they may outlive them), the repair
        # list, the outbox (op -> when due) and its data (op -> "<created>\t<result>"); per
        # call: the jobs that ended with dependents and how many outbox ops were written
        self.waiting_deps = ZSet()
        self.dependents: dict[str, dict[str, str]] = {}
        self.deps_src = ZSet()
        self.deps_out = ZSet()
        self.deps_outdata: Hash = {}
        self._dep_work: list[tuple[str, str, str | None]] = []
        self._deps_out_n = 0
        self.vanished: set[str] = set()  # ids whose hash vanished (their lane entries stay)

    # -- shared rules ------------------------------------------------------------------

    def emit(self, kind: str, job_id: str, gid: str | None, now: int | str,
             **extra: str) -> None:
        """One event: type, id, ms, gid (only when there is one), the type's own fields."""
        if self.events_maxlen == 0:
            return
        entry: Hash = {"type": kind, "id": job_id,
                       "ms": now if isinstance(now, str) else fmt(now)}
        if gid:
            entry["gid"] = gid
        entry.update(extra)
        self.events.append(entry)

    def expire_later(self, job_id: str, h: Hash, now: int, ms: int) -> None:
        h["expire_ms"] = fmt(now + ms)
        self.expire[job_id] = now + ms

    def expire_finished(self, now: int) -> int:
        """Delete the finished jobs whose keep_*_ms time is over (an entry whose job no
        longer carries the same expire_ms, or is not finished, is only dropped)."""
        deleted = 0
        for job_id in self.expire.due(now, MAX_EXPIRE_TRIM):
            at = self.expire.pop(job_id)
            h = self.jobs.get(job_id)
            if h is None or number(h.get("expire_ms")) != at:
                continue
            lane = {"completed": self.completed, "failed": self.failed}.get(h.get("state", ""))
            if lane is None:
                continue
            if "dependents" in h:  # (on a completed job: another client completed it)
                self._dep_work.append((job_id, "completed", h.get("result") or "")
                                      if h["state"] == "completed" else (job_id, "gone", None))
            if job_id in lane:  # LREM -1: the occurrence nearest the tail (the oldest)
                del lane[len(lane) - 1 - lane[::-1].index(job_id)]
            self.idx[h["state"]].pop(job_id, None)
            del self.jobs[job_id]
            if h["state"] == "failed" and h.get("on_failure") == "block" and h.get("gid"):
                self.release_hold(h["gid"], self.blocked, job_id, now)
            deleted += 1
        return deleted

    def finish(self, now: int) -> None:
        """The stats counters are recomputed from the containers (docs/protocol.md 2.3)."""
        w = len(self.wait)
        total = max(len(self.idx["wait"]), w)
        self.stats.update(
            waiting=fmt(w), group_waiting=fmt(total - w), waiting_total=fmt(total),
            active=fmt(len(self.active)), delayed=fmt(len(self.delayed)),
            failed=fmt(len(self.failed)), completed_kept=fmt(len(self.completed)),
            groups_ready=fmt(len(self.ready)), last_activity_ms=fmt(now),
        )

    def group_limit(self, gid: str) -> float:
        n = number(self.limit.get(gid))
        return 1 if n is None or n <= 0 else n

    def maybe_ready(self, gid: str, inflight: int, now: int) -> None:
        if inflight < self.group_limit(gid) and self.gwait.get(gid):
            self.ready.add_nx(gid, now)

    def forget_idle_group(self, gid: str) -> None:
        """A group with nothing waiting and nothing leased has no limit key (D5)."""
        if self.inflight.get(gid, 0) <= 0 and not self.gwait.get(gid):
            self.limit.pop(gid, None)

    def release_group(self, gid: str, now: int) -> None:
        n = self.inflight.get(gid, 0) - 1
        if n <= 0:
            self.inflight.pop(gid, None)
            n = 0
        else:
            self.inflight[gid] = n
        self.maybe_ready(gid, n, now)
        self.forget_idle_group(gid)

    def push_ready(self, job_id: str, gid: str, now: int, limit: Any) -> None:
        """Tail of its lane; a grouped job brings its group_limit (first writer wins)."""
        self.idx["wait"][job_id] = now
        if gid:
            gl = number(limit)
            if gl is not None and gl > 0:
                self.limit.setdefault(gid, fmt(gl))
            self.gwait.setdefault(gid, []).append(job_id)
            self.maybe_ready(gid, self.inflight.get(gid, 0), now)
        else:
            self.wait.append(job_id)

    def push_head(self, job_id: str, gid: str, now: int, limit: Any) -> None:
        """Head of its group (a strict retry, or the admin retry of a blocking job)."""
        self.idx["wait"][job_id] = now
        gl = number(limit)
        if gl is not None and gl > 0:
            self.limit.setdefault(gid, fmt(gl))
        self.gwait.setdefault(gid, []).insert(0, job_id)

    def release_hold(self, gid: str, holds: dict[str, str], job_id: str, now: int) -> bool:
        if holds.get(gid) != job_id:
            return False
        del holds[gid]
        self.maybe_ready(gid, self.inflight.get(gid, 0), now)
        return True

    def group_held(self, gid: str) -> bool:
        """Whether a hold of the group is live; stale ones are dropped."""
        for holds, state in ((self.held, "delayed"), (self.blocked, "failed")):
            job_id = holds.get(gid)
            if job_id is None:
                continue
            h = self.jobs.get(job_id, {})
            if h.get("state") == state and h.get("gid") == gid:
                return True
            del holds[gid]
        return False

    # -- enqueue -----------------------------------------------------------------------

    # -- deduplication and expiry --------------------------------------------------------

    def dedup_holder(self, key: str, now: int) -> str | None:
        d = self.dedup.get(key)
        if d is None:
            return None
        if d[1] is not None:
            return d[0] if d[1] > now else None
        state = self.jobs.get(d[0], {}).get("state")
        return d[0] if state in ("wait", "delayed", "active", "waiting_deps") else None

    def dedup_release(self, job_id: str, h: Hash, now: int, ttl: int | None = None) -> None:
        key = h.get("dedup_key")
        d = self.dedup.get(key) if key else None
        if d is None or d[0] != job_id:
            return
        ms = number(h.get("dedup_ttl_ms")) or 0 if ttl is None else ttl
        if ms > 0:
            d[1], d[2] = now + int(ms), int(ms)
        else:
            del self.dedup[key]  # type: ignore[arg-type]

    def to_failed_lane(self, job_id: str, h: Hash, gid: str | None, now: int, attempt: str,
                       text: str) -> None:
        """The job ends failed for good (lane, keep_failed_ms, dedup key, event)."""
        h.update(state="failed", failed_ms=fmt(now), updated_ms=fmt(now), lease_token="",
                 lock_until_ms="")
        self.failed.insert(0, job_id)
        self.idx["failed"][job_id] = now
        ttl = number(h.get("keep_failed_ms")) or 0
        if ttl > 0:
            self.expire_later(job_id, h, now, int(ttl))
        self.dedup_release(job_id, h, now)
        self.emit("failed", job_id, gid, now, attempt=attempt, error=text)
        if "dependents" in h:
            self._dep_work.append((job_id, "failed", None))

    def fail_unstarted(self, job_id: str, h: Hash, gid: str, now: int, reason: str) -> None:
        h.update(last_error=reason, last_error_ms=fmt(now))
        self.to_failed_lane(job_id, h, gid, now, h.get("attempt") or "0", reason)

    def expire_job(self, job_id: str, h: Hash, gid: str, now: int, lane: str) -> None:
        self.idx[lane].pop(job_id, None)
        self.fail_unstarted(job_id, h, gid, now, "expired")
        self.emit("expired", job_id, gid, now, state=lane)
        self.stats["last_finish_ms"] = fmt(now)
        self._expired_n += 1

    @staticmethod
    def expired(h: Hash, now: int) -> bool:
        e = number(h.get("expires_ms")) or 0
        return 0 < e <= now

    def enqueue(self, now: int, jobs: list[dict[str, Any]]) -> Reply:
        """``jobs``: dicts with id, payload (text), max_attempts, timeout_ms, backoff_ms,
        due_ms, delay_ms, gid, group_limit, and optionally keep_completed_ms,
        keep_failed_ms and control (the job-control options, with the dependency extras
        ``depends_on`` ([queue, id] or [queue, id, 1] lists), ``dep_policy`` and
        ``dependents`` ([queue, id, policy] lists)). All or nothing."""
        self._begin()
        seen: set[str] = set()
        batch_keys: dict[str, str] = {}
        holders: list[str | None] = []
        keyed = False
        added: dict[str, int] = {}  # dependents a dependency of this queue has once written
        deduped: dict[str, str] = {}  # a job of the call not written -> its key's holder
        depends: list[list[list[Any]]] = []  # per job: its dependencies, deduped ones mapped
        for j in jobs:
            if j["id"] in seen:
                return ("ERR", "DUPLICATE", j["id"])
            mine: set[str] = set()
            depends.append([])
            for r in j.get("control", {}).get("depends_on") or ():
                r = list(r)
                depends[-1].append(r)
                if r[0] != self.name:
                    continue
                # on this queue: stored, or earlier in the call (one that a live job's
                # dedup key stood for: that job, and given twice so it is refused)
                if r[1] == j["id"]:
                    return ("ERR", "DEP_CYCLE", j["id"])
                r[1] = deduped.get(r[1], r[1])
                if r[1] in mine:
                    return ("ERR", "BAD_ARGS", "depends_on")
                mine.add(r[1])
                if r[1] not in seen and r[1] not in self.jobs:
                    return ("ERR", "DEP_NOT_FOUND", f"{self.name}:{r[1]}")
                n = added.get(r[1], len(self.dependents.get(r[1], {}))) + 1
                if n > MAX_DEPENDENTS:
                    return ("ERR", "DEP_LIMIT", f"{self.name}:{r[1]}")
                added[r[1]] = n
            seen.add(j["id"])
            key = j.get("control", {}).get("dedup_key")
            holder = None
            if key is not None:
                keyed = True
                holder = batch_keys.get(key) or self.dedup_holder(key, now)
                if holder is None:
                    batch_keys[key] = j["id"]
                else:
                    deduped[j["id"]] = holder
            if holder is None and j["id"] in self.jobs:
                return ("ERR", "DUPLICATE", j["id"])
            holders.append(holder)
        written = replaced = False
        for j, holder, dep in zip(jobs, holders, depends, strict=True):
            due = j["delay_ms"] + now if j["delay_ms"] > 0 else j["due_ms"]
            control = j.get("control", {})
            if holder is not None:
                if control.get("dedup") == "replace":
                    replaced = self._replace_into(holder, j["payload"], due, now) or replaced
                continue
            written = True
            if dep:
                j = {**j, "control": {**control, "depends_on": dep}}
            self.write_job(j, due, now)
            if dep:
                self.link_deps(j["id"], dep, control.get("dep_policy") or "fail", now)
        if written or replaced:
            self.stats["last_enqueue_ms"] = fmt(now)
            self.settle_dependents(now)  # (a job failed at once by a failed dependency)
            self.finish(now)
        if keyed:
            return ("OK", len(jobs), *[h or j["id"] for j, h in zip(jobs, holders, strict=True)])
        return ("OK", len(jobs))

    def write_job(self, j: dict[str, Any], due: int, now: int,
                  more: Hash | None = None) -> None:
        """Write one validated job (``j``: an enqueue job dict) due at ``due``: its hash
        (``more``: extra fields), its dedup key, its lane and its event."""
        jid, gid = j["id"], j["gid"]
        control = j.get("control", {})
        if control.get("dedup_key") is not None:
            self.dedup[control["dedup_key"]] = [jid, None, None]
        sn = fmt(now)
        h: Hash = {
            "id": jid, "payload": j["payload"], "state": "wait", "attempt": "0",
            "max_attempts": fmt(j["max_attempts"]), "timeout_ms": fmt(j["timeout_ms"]),
            "backoff_ms": fmt(j["backoff_ms"]), "created_ms": sn, "updated_ms": sn,
            "queued_ms": sn, "first_started_ms": "", "last_started_ms": "",
            "completed_ms": "", "failed_ms": "",
        }
        self.jobs[jid] = h
        if gid:
            h["gid"] = gid
            self.has_groups = True
            if j["group_limit"] > 0:
                h["group_limit"] = fmt(j["group_limit"])
        for field in ("keep_completed_ms", "keep_failed_ms"):  # stored only when set
            if j.get(field, 0) > 0:
                h[field] = fmt(j[field])
        h.update(control_fields(control, now))
        if more:
            h.update(more)
        if control.get("dependents"):  # a flow child: its parent is its dependent already
            mine = self.dependents.setdefault(jid, {})
            for q, i, policy in control["dependents"]:
                mine[f"{q}:{i}"] = policy
            self.deps_src[jid] = now + DEPS_REPAIR_MS
            h["dependents"] = "1"
        if control.get("depends_on"):  # every dependency pending: linked by the caller
            refs = [f"{r[0]}:{r[1]}" for r in control["depends_on"]]
            for ref in refs:
                h["dep:" + ref] = "pending"
            h["depends_on"] = cjson_strings(refs)
            h["deps_left"] = fmt(len(refs))
            if control.get("dep_policy", "fail") != "fail":
                h["dep_policy"] = control["dep_policy"]
            if due > now:
                h["due_ms"] = fmt(due)
            h["state"] = "waiting_deps"
            self.waiting_deps[jid] = now
            self.emit("waiting_deps", jid, gid, now)
            return
        if due > now:
            h["state"] = "delayed"
            h["due_ms"] = fmt(due)
            self.delayed[jid] = due
            self.idx["delayed"][jid] = now
            self.emit("delayed", jid, gid, now, due=fmt(due))
        else:
            self.push_ready(jid, gid, now, j["group_limit"])
            self.emit("enqueued", jid, gid, now)

    def _replace_into(self, holder: str, payload: str, due: int, now: int) -> bool:
        """dedup='replace': a holder still waiting or delayed takes the new payload (a
        delayed one also a later due time)."""
        h = self.jobs.get(holder, {})  # (a finished holder may be deleted already)
        if h.get("state") not in ("wait", "delayed", "waiting_deps"):
            return False
        h.update(payload=payload, updated_ms=fmt(now))
        if h["state"] == "delayed" and due > (number(h.get("due_ms")) or 0):
            h["due_ms"] = fmt(due)
            self.delayed[holder] = due
        return True

    # -- dependencies and flows ----------------------------------------------------------

    def _begin(self) -> None:
        """A script call starts: no ended job to settle yet, no outbox op written."""
        self._dep_work = []
        self._deps_out_n = 0

    def deps_out_add(self, op: str, result: str | None, now: int) -> None:
        """An op for another queue, due now; its first write keeps its time and result."""
        self.deps_out[op] = now
        self.deps_outdata.setdefault(op, f"{now}\t{result or ''}")
        self._deps_out_n += 1

    def dep_register(self, bid: str, ref: str, policy: str, now: int, failed: bool) -> None:
        """Job ``bid`` (it exists) gets dependent ``ref`` with ``policy``; the repair scan
        looks at it in a minute, or in ten when it has failed already."""
        self.dependents.setdefault(bid, {})[ref] = policy
        self.jobs[bid]["dependents"] = "1"
        self.deps_src.add_nx(bid, now + (DEPS_FAILED_REPAIR_MS if failed else DEPS_REPAIR_MS))

    def deps_ready(self, job_id: str, h: Hash, gid: str, now: int) -> None:
        """Every dependency resolved: the job enters its lane (delayed while its own due
        time is later)."""
        self.waiting_deps.pop(job_id, None)
        due = number(h.get("due_ms")) or 0
        sn = fmt(now)
        if due > now:
            h.update(state="delayed", updated_ms=sn)
            self.delayed[job_id] = int(due)
            self.idx["delayed"][job_id] = now
            self.emit("delayed", job_id, gid, now, due=fmt(due))
        else:
            h.update(state="wait", updated_ms=sn, queued_ms=sn)
            self.push_ready(job_id, gid, now, h.get("group_limit"))
            self.emit("enqueued", job_id, gid, now)

    def dep_settle(self, job_id: str, ref: str, outcome: str, result: str | None,
                   now: int) -> str:
        """Dependency ``ref`` of job ``job_id`` ended with ``outcome``: the policy table
        (docs/workflows.md "Model"). Counts once (field dep:<ref>); a job no longer
        waiting_deps is left alone. 'NO_JOB' when there is no such job, else 'OK'."""
        h = self.jobs.get(job_id)
        if h is None or "state" not in h:
            return "NO_JOB"
        f = "dep:" + ref
        cur = h.get(f)
        if h["state"] != "waiting_deps" or cur not in ("pending", "failed"):
            return "OK"
        policy = h.get("dep_policy") or "fail"
        gid = h.get("gid") or ""
        if outcome == "completed" or policy == "ignore":
            if outcome != "completed":
                h[f] = "ignored"
            elif result:
                h[f] = "completed"
                h["dres:" + ref] = result
            else:
                h[f] = "completed"
            left = int(number(h.get("deps_left")) or 0) - 1
            h["deps_left"] = fmt(left)
            if left <= 0:
                self.deps_ready(job_id, h, gid, now)
        elif policy == "wait" and outcome == "failed":
            if cur != "failed":  # it waits for a retry of the dependency
                h.update({f: "failed", "updated_ms": fmt(now)})
                self.emit("dependency_failed", job_id, gid, now, dependency=ref)
        else:
            h[f] = outcome
            self.waiting_deps.pop(job_id, None)
            why = "dependency removed: " if outcome == "gone" else "dependency failed: "
            self.fail_unstarted(job_id, h, gid, now, why + ref)
        return "OK"

    def settle_dependents(self, now: int) -> None:
        """Settle the dependents of the jobs that ended in this call (a worklist: a
        dependent that fails adds its own): those of this queue at once, the others by an
        'R' op. A failed job keeps its dependents with policy 'wait'."""
        i = 0
        while i < len(self._dep_work):
            job_id, outcome, result = self._dep_work[i]
            i += 1
            mine = self.dependents.get(job_id, {})
            kept = 0
            for ref, policy in list(mine.items()):
                if outcome == "failed" and policy == "wait":
                    kept += 1
                elif outcome == "failed":
                    del mine[ref]
                q, sep, did = ref.partition(":")
                if not sep:
                    continue
                if q == self.name:
                    self.dep_settle(did, f"{self.name}:{job_id}", outcome, result, now)
                else:
                    self.deps_out_add(f"R\t{outcome}\t{job_id}\t{q}\t{did}", result, now)
            if kept == 0:
                self.dependents.pop(job_id, None)
                h = self.jobs.get(job_id)
                if h is not None:
                    h.pop("dependents", None)
                self.deps_src.pop(job_id, None)
            else:  # retry_failed re-arms the scan; the scan itself looks again rarely
                self.deps_src[job_id] = now + DEPS_FAILED_REPAIR_MS
        self._dep_work = []

    def link_deps(self, job_id: str, deps: list[list[Any]], policy: str, now: int) -> None:
        """Job ``job_id``, just written waiting_deps: a dependency of this queue is looked
        at now (an ended one settles at once, else it gets the job as a dependent); one of
        another queue gets an 'L' op unless linked (a flow child registered the job)."""
        me = f"{self.name}:{job_id}"
        for r in deps:
            if r[0] == self.name:
                bid = r[1]
                ref = f"{self.name}:{bid}"
                b = self.jobs.get(bid)
                state = b.get("state") if b is not None else None
                if state == "completed":
                    self.dep_settle(job_id, ref, "completed", (b or {}).get("result"), now)
                elif state is None:
                    self.dep_settle(job_id, ref, "gone", None, now)
                else:
                    if state != "failed" or policy == "wait":
                        self.dep_register(bid, me, policy, now, state == "failed")
                    if state == "failed":
                        self.dep_settle(job_id, ref, "failed", None, now)
            elif len(r) < 3 or r[2] != 1:
                self.deps_out_add(f"L\t{policy}\t{job_id}\t{r[0]}\t{r[1]}", None, now)

    # the four scripts

    def deps_link(self, now: int, links: list[tuple[str, str, str]]) -> Reply:
        """deps_link.lua: (job id of this queue, dependent ref, policy) each; per link
        'pending' (registered), 'queued' (the job has ended: its outcome is an 'R' op of
        this outbox; a failed one also registers a 'wait' dependent) or 'gone'."""
        self._begin()
        out: list[str] = ["OK", fmt(len(links))]
        for job_id, ref, policy in links:
            h = self.jobs.get(job_id)
            state = h.get("state") if h is not None else None
            if state is None:
                out.append("gone")
            elif state in ("completed", "failed"):
                if state == "failed" and policy == "wait":
                    self.dep_register(job_id, ref, policy, now, True)
                q, _, did = ref.partition(":")
                self.deps_out_add(f"R\t{state}\t{job_id}\t{q}\t{did}",
                                  (h or {}).get("result") or "" if state == "completed"
                                  else None, now)
                out.append("queued")
            else:
                self.dep_register(job_id, ref, policy, now, False)
                out.append("pending")
        return tuple(out)

    def deps_resolve(self, now: int, items: list[tuple[str, str, str, str]]) -> Reply:
        """deps_resolve.lua: (dependent id, dependency ref, outcome, result) each."""
        self._begin()
        out = ["OK", fmt(len(items))]
        for job_id, ref, outcome, result in items:
            out.append(self.dep_settle(job_id, ref, outcome, result, now))
        self.settle_dependents(now)
        self.finish(now)
        if self._deps_out_n:  # a dependent that failed left work in this outbox
            out.append("DEPS")
        return tuple(out)

    def deps_repair(self, now: int) -> int:
        ids = self.deps_src.due(now, MAX_DEPS_REPAIR)
        for job_id in ids:
            h = self.jobs.get(job_id)
            state = h.get("state") if h is not None else None
            if state == "completed":
                self._dep_work.append((job_id, "completed", (h or {}).get("result") or ""))
            elif state == "failed":
                self._dep_work.append((job_id, "failed", None))
            elif state is None:  # deleted by another client: taken as completed
                self._dep_work.append((job_id, "completed", ""))
            else:
                self.deps_src[job_id] = now + DEPS_REPAIR_MS
        self.settle_dependents(now)
        return len(ids)

    def deps_pending(self, now: int, limit: int, mode: str) -> Reply:
        """deps_pending.lua: mode '1' the repair scan, then up to ``limit`` due ops (op,
        created_ms, result), each due again DEPS_RETRY_MS later; '0' no scan; 'all' every
        op, due or not."""
        self._begin()
        if mode == "1" and self.deps_repair(now) > 0:
            self.finish(now)
        out: list[str] = ["OK"]
        ops = self.deps_out.due(INF if mode == "all" else now, limit)  # type: ignore[arg-type]
        out.append(fmt(len(ops)))
        for op in ops:
            self.deps_out[op] = now + DEPS_RETRY_MS
            created, sep, result = self.deps_outdata.get(op, "").partition("\t")
            out += [op, created if sep else fmt(now), result if sep else ""]
        return tuple(out)

    def deps_ack(self, now: int, items: list[tuple[str, str]]) -> Reply:
        """deps_ack.lua: (op, 'done' | 'retry') each: a done op is deleted, a retried one
        due again DEPS_RETRY_MS later, or deleted too ('dropped') once DEPS_ORPHAN_MS
        old. Reply: ('OK', removed, dropped)."""
        removed = dropped = 0
        for op, action in items:
            drop = action == "done"
            if not drop:
                created = self.deps_outdata.get(op, "").partition("\t")
                if created[1] and created[0].isdigit() and int(created[0]) + DEPS_ORPHAN_MS <= now:
                    drop = True
                    dropped += 1
            if drop:
                removed += self.deps_out.pop(op, None) is not None
                self.deps_outdata.pop(op, None)
            elif op in self.deps_out:
                self.deps_out[op] = now + DEPS_RETRY_MS
        return ("OK", fmt(removed), fmt(dropped))

    # -- reserve -----------------------------------------------------------------------

    def _lease(self, job_id: str, gid: str, now: int) -> tuple[Any, ...] | None:
        h = self.jobs.get(job_id)
        if h is None or "state" not in h:  # orphan id: dropped (D11)
            self.idx["wait"].pop(job_id, None)
            return None
        if h["state"] != "wait":  # stale duplicate entry
            return None
        if self.expired(h, now):
            self.expire_job(job_id, h, gid, now, "wait")
            return None
        timeout = number(h.get("timeout_ms")) or 0
        if timeout <= 0:
            timeout = DEFAULT_TIMEOUT_MS
        attempt = (number(h.get("attempt")) or 0) + 1
        lock = now + timeout
        self.seq += 1
        token = token_for(job_id, now, self.seq)
        if not h.get("first_started_ms"):
            h["first_started_ms"] = fmt(now)
        h.update(state="active", attempt=fmt(attempt), lock_until_ms=fmt(lock),
                 lease_token=token, updated_ms=fmt(now), last_started_ms=fmt(now))
        self.active[job_id] = int(lock)
        self.idx["wait"].pop(job_id, None)
        self.idx["active"][job_id] = now
        if gid:
            self.leases[job_id] = gid
        self.emit("reserved", job_id, gid, now, attempt=fmt(attempt))
        return (job_id, h.get("payload", ""), int(lock), int(attempt),
                int(h.get("max_attempts") or 0), gid, token, int(timeout),
                int(h.get("run_timeout_ms") or 0), h.get("schedule", ""),
                int(h.get("occurrence_ms") or 0))

    def _pop_ungrouped(self, now: int) -> tuple[Any, ...] | None:
        for _ in range(MAX_ORPHAN_SKIPS):
            if not self.wait or self._expired_n >= MAX_EXPIRED_PER_CALL:
                return None
            job = self._lease(self.wait.pop(0), "", now)
            if job:
                return job
        return None

    def _next_group(self) -> str | None:
        """groups:ready first (oldest score, then gid), then the groups this call served."""
        if self.ready:
            return self.ready.popmin()
        if self._served:
            return self._served.popleft()
        return None

    # -- rate limits -------------------------------------------------------------------

    @staticmethod
    def _window(log: ZSet, max_jobs: int, per: int, now: int) -> int:
        """Slide a window log to ``now``: 0 when one more reservation fits, else in how
        many ms one will."""
        for m in [m for m, sc in log.items() if sc <= now - per]:
            del log[m]
        n = len(log)
        if n < max_jobs:
            return 0
        ordered = sorted(log.items(), key=lambda kv: (kv[1], kv[0].encode()))
        return max(ordered[n - max_jobs][1] + per - now, 1)

    @staticmethod
    def _limit_of(v: str | None) -> tuple[int, int] | None:
        if v is None:
            return None
        m, p = v.split(" ")
        return int(m), int(p)

    def _rate_begin(self, count: int, now: int) -> tuple[int, int]:
        self._rate_groups, self._rate_cache, self._queue_per = False, {}, None
        if "queue" not in self.rate and "groups" not in self.rate:
            return count, 0
        self._rate_groups = (number(self.rate.get("groups")) or 0) > 0
        if self._rate_groups:
            for gid in self.limited.due(now, MAX_UNPARK):
                del self.limited[gid]
                self.maybe_ready(gid, self.inflight.get(gid, 0), now)
        q = self._limit_of(self.rate.get("queue"))
        if q is None:
            return count, 0
        self._queue_per = q[1]
        wait = self._window(self.rate_log, q[0], q[1], now)
        if wait:
            return 0, wait
        return min(count, q[0] - len(self.rate_log)), 0

    def _group_rate_ok(self, gid: str, now: int) -> bool:
        if gid not in self._rate_cache:
            self._rate_cache[gid] = self._limit_of(self.rate.get("g:" + gid))
        c = self._rate_cache[gid]
        if c is None:
            return True
        log = self.grate_log.setdefault(gid, ZSet())
        wait = self._window(log, c[0], c[1], now)
        if not log:
            del self.grate_log[gid]
            self.grate_ttl.pop(gid, None)
        if not wait:
            return True
        self.limited[gid] = now + wait
        return False

    def _group_rate_note(self, gid: str, token: str, now: int) -> None:
        c = self._rate_cache.get(gid)
        if c is not None:
            self.grate_log.setdefault(gid, ZSet())[token] = now
            self.grate_ttl[gid] = c[1]

    def _unpark(self, gid: str, now: int) -> None:
        if self.limited.pop(gid, None) is not None:
            self.maybe_ready(gid, self.inflight.get(gid, 0), now)

    def set_rate_limit(self, gid: str, max_jobs: int, per: int, now: int) -> Reply:
        field = "g:" + gid if gid else "queue"
        new = field not in self.rate
        self.rate[field] = f"{max_jobs} {per}"
        if gid:
            if new:
                self.rate["groups"] = fmt((number(self.rate.get("groups")) or 0) + 1)
            self._unpark(gid, now)
        return ("OK", "1" if new else "0")

    def clear_rate_limit(self, gid: str, now: int) -> Reply:
        field = "g:" + gid if gid else "queue"
        removed = self.rate.pop(field, None) is not None
        if not gid:
            self.rate_log = ZSet()
        else:
            if removed:
                n = (number(self.rate.get("groups")) or 0) - 1
                if n <= 0:
                    self.rate.pop("groups", None)
                else:
                    self.rate["groups"] = fmt(n)
            self.grate_log.pop(gid, None)
            self.grate_ttl.pop(gid, None)
            self._unpark(gid, now)
        return ("OK", "1" if removed else "0")

    def get_rate_limit(self, gid: str | None, now: int) -> list[tuple[str, int, int, int]]:
        """(gid, max_jobs, per_ms, in_window): gid '' = queue-wide, None = every limit."""
        groups = sorted((f for f in self.rate if f.startswith("g:")), key=lambda f: f[2:].encode())
        fields = ["queue"] if gid == "" else ["g:" + gid] if gid else ["queue", *groups]
        out = []
        for f in fields:
            c = self._limit_of(self.rate.get(f))
            if c is None:
                continue
            g = f[2:] if f.startswith("g:") else ""
            log = self.grate_log.get(g, ZSet()) if g else self.rate_log
            out.append((g, c[0], c[1], sum(1 for sc in log.values() if sc > now - c[1])))
        return out

    def _pop_grouped(self, now: int) -> tuple[Any, ...] | None:
        for _ in range(MAX_GROUP_POPS + MAX_ORPHAN_SKIPS):
            if self._expired_n >= MAX_EXPIRED_PER_CALL:
                return None
            gid = self._next_group()
            if gid is None:
                return None
            inflight = self.inflight.get(gid, 0)
            limit = self.group_limit(gid)
            if (gid in self.held or gid in self.blocked) and self.group_held(gid):
                limit = 0  # held by a strict job: no new start
            # else: at capacity, out of line until a release; rate-limited: parked
            if inflight < limit and (not self._rate_groups or self._group_rate_ok(gid, now)):
                lst = self.gwait.get(gid)
                if lst:
                    job = self._lease(lst.pop(0), gid, now)
                    if job:
                        if self._rate_groups:
                            self._group_rate_note(gid, job[6], now)
                        inflight = self.inflight.get(gid, 0) + 1
                        self.inflight[gid] = inflight
                        if inflight < limit and self.gwait.get(gid):
                            self._served.append(gid)
                        return job
                    self.maybe_ready(gid, inflight, now)
                self.forget_idle_group(gid)
        return None

    def _reserve_one(self, now: int) -> tuple[Any, ...] | None:
        grouped_first = self.rr != "1"
        if grouped_first:
            job = self._pop_grouped(now) or self._pop_ungrouped(now)
        else:
            job = self._pop_ungrouped(now) or self._pop_grouped(now)
        if job:
            self.rr = "1" if grouped_first else "0"
        return job

    def reserve_into(self, count: int, now: int) -> tuple[Reply, int]:
        """One reservation; the count it returns includes the jobs it expired (the
        caller writes the stats when either is non-zero; the wake-up is not modelled)."""
        self._expired_n = 0
        reply, n = self._reserve_into(count, now)
        return reply, n + self._expired_n

    def _reserve_into(self, count: int, now: int) -> tuple[Reply, int]:
        if self.paused:
            return ("PAUSED",), 0
        count, wait = self._rate_begin(count, now)
        if count == 0:
            return ("LIMITED", wait, "queue"), 0
        jobs = []
        self._served = deque()
        for _ in range(count):
            job = self._reserve_one(now)
            if not job:
                break
            jobs.append(job)
        for gid in self._served:
            self.ready.add_nx(gid, now)
        self._served = deque()
        if self._queue_per is not None and jobs:
            for job in jobs:
                self.rate_log[job[6]] = now
            self.rate_log_ttl = self._queue_per
        if not jobs:
            if self._rate_groups and self.limited:
                first = min(self.limited.values())
                return ("LIMITED", max(first - now, 1), "group"), 0
            if self._expired_n >= MAX_EXPIRED_PER_CALL:  # the budget ran out: call again
                return ("EMPTY", "MORE"), 0
            return ("EMPTY",), 0
        self.stats["last_reserve_ms"] = fmt(now)
        return ("JOB", jobs), len(jobs)

    def reserve(self, now: int, count: int) -> Reply:
        self._begin()
        reply, n = self.reserve_into(count, now)
        if n:
            self.settle_dependents(now)  # (an expired job's dependents)
            self.finish(now)
        return reply

    # -- leases ------------------------------------------------------------------------

    def check_lease(self, job_id: str, token: str) -> str | None:
        if not token:
            return "TOKEN_REQUIRED"
        if self.jobs.get(job_id, {}).get("lease_token") != token:
            return "TOKEN_MISMATCH"
        if job_id not in self.active:
            return "NOT_ACTIVE"
        return None

    def heartbeat(self, now: int, leases: list[tuple[str, str]]) -> list[Reply]:
        out: list[Reply] = []
        for job_id, token in leases:
            code = "BAD_JOB_ID" if not job_id else self.check_lease(job_id, token)
            if code:
                out.append(("ERR", code))
                continue
            h = self.jobs[job_id]
            timeout = number(h.get("timeout_ms")) or 0
            if timeout <= 0:
                timeout = DEFAULT_TIMEOUT_MS
            lock = int(now + timeout)  # never cumulative (D1)
            self.active[job_id] = lock
            h.update(lock_until_ms=fmt(lock), updated_ms=fmt(now))
            out.append(("CANCEL" if "cancel_requested_ms" in h else "OK", lock))
        return out

    def end_lease(self, job_id: str, gid: str | None, now: int) -> None:
        mapped = self.leases.pop(job_id, None)
        if not gid and mapped and job_id not in self.jobs:
            gid = mapped  # the hash vanished: the lease map still knows the group (D4)
        if gid:
            self.release_group(gid, now)

    def _ack_success_one(self, job_id: str, token: str, now: int, result: str,
                         keep: int) -> str | None:
        code = self.check_lease(job_id, token)
        if code:
            return code
        del self.active[job_id]
        h = self.jobs[job_id]
        gid = h.get("gid")
        if "dependents" in h:
            self._dep_work.append((job_id, "completed", result))
        self.dedup_release(job_id, h, now)
        h.update(state="completed", completed_ms=fmt(now), updated_ms=fmt(now),
                 lease_token="", lock_until_ms="")
        if result:
            h["result"] = result
        self.idx["active"].pop(job_id, None)
        self.idx["completed"][job_id] = now
        self.end_lease(job_id, gid, now)
        ttl = number(h.get("keep_completed_ms")) or 0
        if ttl > 0:
            self.expire_later(job_id, h, now, int(ttl))
        self.emit("completed", job_id, gid, now, attempt=h.get("attempt") or "0")
        self.completed.insert(0, job_id)
        while len(self.completed) > keep:
            old = self.completed.pop()
            self.idx["completed"].pop(old, None)
            h = self.jobs.get(old, {})
            if h.get("state") == "completed":  # never a live reuse (D9)
                # (its dependents were settled by its ack; one an official client acked
                # is settled by the repair scan, which finds its record gone)
                del self.jobs[old]
                self.expire.pop(old, None)
        return None

    def _trim_failed(self, keep: int, now: int) -> None:
        budget = MAX_FAILED_TRIM
        while len(self.failed) > keep and budget > 0:
            old = self.failed.pop()
            budget -= 1
            self.idx["failed"].pop(old, None)
            h = self.jobs.get(old, {})
            if h.get("state") == "failed":
                if "dependents" in h:
                    self._dep_work.append((old, "gone", None))
                del self.jobs[old]
                self.expire.pop(old, None)
                if h.get("on_failure") == "block" and h.get("gid"):
                    self.release_hold(h["gid"], self.blocked, old, now)

    def _fail_or_retry(self, job_id: str, h: Hash, now: int, final: bool,
                       keep_failed: int | None, text: str) -> Reply:
        attempt = number(h.get("attempt")) or 0
        max_attempts = number(h.get("max_attempts"))
        if max_attempts is None or max_attempts < 1:
            max_attempts = 1
        if "cancel_requested_ms" in h:  # cancel requested: final, error 'cancelled'
            final = True
            if text != "cancelled":
                h.update(last_error="cancelled", last_error_ms=fmt(now))
            text = "cancelled"
        self.idx["active"].pop(job_id, None)
        if final or attempt >= max_attempts:
            self.to_failed_lane(job_id, h, h.get("gid"), now, fmt(attempt), text)
            gid = h.get("gid")
            if h.get("on_failure") == "block" and gid and "cancel_requested_ms" not in h:
                self.blocked[gid] = job_id
                self.ready.pop(gid, None)
            if keep_failed is not None:
                self._trim_failed(keep_failed, now)
            return ("FAILED",)
        due = int(min(now + backoff_delay(job_id, attempt, now, h), MAX_INT))
        gid = h.get("gid")
        if h.get("group_order") == "strict" and gid:
            self.held.setdefault(gid, job_id)
            self.ready.pop(gid, None)
        h.update(state="delayed", due_ms=fmt(due), updated_ms=fmt(now), lease_token="",
                 lock_until_ms="")
        self.delayed[job_id] = due
        self.idx["delayed"][job_id] = now
        self.emit("retry_scheduled", job_id, h.get("gid"), now, attempt=fmt(attempt),
                  due=fmt(due), error=text)
        return ("RETRY", due)

    def _ack_fail_one(self, job_id: str, token: str, now: int, text: str, final: bool,
                      keep_failed: int | None) -> Reply:
        code = self.check_lease(job_id, token)
        if code:
            return ("ERR", code)
        del self.active[job_id]
        h = self.jobs[job_id]
        text = cut_utf8(text)
        if text:
            h["last_error"] = text
            h["last_error_ms"] = fmt(now)
        self.end_lease(job_id, h.get("gid"), now)
        return self._fail_or_retry(job_id, h, now, final, keep_failed, text)

    def _after_ack(self, now: int) -> bool:
        """The end of a single ack that wrote: dependents settled, then the finished jobs
        whose time is over deleted (and theirs settled). True when the ack's own settling
        wrote outbox ops (the reply says DEPS: the client delivers them at once)."""
        self.stats["last_finish_ms"] = fmt(now)
        self.settle_dependents(now)
        deps = self._deps_out_n > 0
        self.expire_finished(now)
        self.settle_dependents(now)
        self.finish(now)
        return deps

    def ack_success(self, now: int, job_id: str, token: str, result: str, keep: int) -> Reply:
        """('OK',) or ('OK', 'DEPS') (work left in the outbox), or the error."""
        self._begin()
        code = self._ack_success_one(job_id, token, now, result, keep)
        if code:
            return ("ERR", code)
        return ("OK", "DEPS") if self._after_ack(now) else ("OK",)

    def ack_fail(self, now: int, job_id: str, token: str, text: str, final: bool,
                 keep_failed: int | None) -> Reply:
        """('RETRY', due), ('FAILED',) or ('FAILED', 'DEPS'), or the error."""
        self._begin()
        out = self._ack_fail_one(job_id, token, now, text, final, keep_failed)
        if out[0] != "ERR" and self._after_ack(now) and out[0] == "FAILED":
            return ("FAILED", "DEPS")
        return out

    def ack_reserve(self, now: int, keep: int, acks: list[tuple[str, str, str, str]],
                    count: int, keep_failed: int | None) -> tuple[list[Reply], Reply | None]:
        """acks: (job_id, token, kind S|F|X, text). An ack whose settling wrote outbox
        ops has 'DEPS' as its value: ('OK', 'DEPS'), ('FAILED', 'DEPS')."""
        self._begin()
        outcomes: list[Reply] = []
        for job_id, token, kind, text in acks:
            before = self._deps_out_n
            if kind == "S":
                code = self._ack_success_one(job_id, token, now, text, keep)
                out: Reply = ("ERR", code) if code else ("OK",)
            else:
                out = self._ack_fail_one(job_id, token, now, text, kind == "X", keep_failed)
            if self._dep_work:
                self.settle_dependents(now)
                if self._deps_out_n > before:
                    out = (out[0], "DEPS")
            outcomes.append(out)
        # like the single acks, a refused ack writes nothing (not even the stats)
        wrote = any(o[0] != "ERR" for o in outcomes)
        if wrote:
            self.stats["last_finish_ms"] = fmt(now)
            self.expire_finished(now)
            self.settle_dependents(now)
        res = None
        if count > 0:
            res, n = self.reserve_into(count, now)
            if n > 0:  # (the dependents of jobs the reservation expired)
                wrote = True
                self.settle_dependents(now)
        if wrote:
            self.finish(now)
        return outcomes, res

    # -- maintenance -------------------------------------------------------------------

    def promote(self, now: int, max_promote: int) -> Reply:
        self._begin()
        expired = self.expire_finished(now)
        ids = self.delayed.due(now, max_promote)
        moved = 0
        for job_id in ids:
            del self.delayed[job_id]
            self.idx["delayed"].pop(job_id, None)
            h = self.jobs.get(job_id)
            if h is not None and "state" in h and self.expired(h, now):
                gid = h.get("gid") or ""
                self.expire_job(job_id, h, gid, now, "delayed")
                if gid:  # a strict retry frees the group it held
                    self.release_hold(gid, self.held, job_id, now)
            elif h is not None and "state" in h:  # a vanished hash is dropped (D11)
                h.update(state="wait", updated_ms=fmt(now))
                gid = h.get("gid") or ""
                if (h.get("group_order") == "strict" and gid
                        and (number(h.get("attempt")) or 0) > 0):
                    self.push_head(job_id, gid, now, h.get("group_limit"))
                    if not self.release_hold(gid, self.held, job_id, now):
                        self.maybe_ready(gid, self.inflight.get(gid, 0), now)
                else:
                    self.push_ready(job_id, gid, now, h.get("group_limit"))
                self.emit("promoted", job_id, h.get("gid"), now)
                moved += 1
        if ids or expired:
            self.settle_dependents(now)
            self.finish(now)
        return ("OK", moved)

    def reap(self, now: int, max_reap: int, keep_failed: int | None) -> Reply:
        self._begin()
        ids = self.active.due(now, max_reap)
        for job_id in ids:
            del self.active[job_id]
            h = self.jobs.get(job_id)
            self.end_lease(job_id, h.get("gid") if h else None, now)
            if h is None or "state" not in h:
                self.idx["active"].pop(job_id, None)
            else:
                text = "LeaseExpired: lease expired at " + h.get("lock_until_ms", "?")
                h["last_error"] = text
                h["last_error_ms"] = fmt(now)
                self.emit("lease_expired", job_id, h.get("gid"), now,
                          attempt=h.get("attempt") or "0", error=text)
                self._fail_or_retry(job_id, h, now, False, keep_failed, text)
        if len(self.leases) > len(self.active):  # entries of leases ended by other clients
            for job_id in [j for j in self.leases if j not in self.active]:
                del self.leases[job_id]
        if ids:
            self.expire_finished(now)
            self.settle_dependents(now)
            self.finish(now)
        return ("OK", len(ids))

    def pause(self) -> Reply:
        if not self.paused:
            self.emit("paused", "", None, SERVER_CLOCK)
        self.paused = True
        return ("OK",)

    def resume(self) -> Reply:
        was, self.paused = self.paused, False
        if was:
            self.emit("resumed", "", None, SERVER_CLOCK)
        return ("OK", was)

    def progress(self, now: int, job_id: str, token: str, value: str) -> Reply:
        """Store the latest progress of a held lease (no stats write)."""
        code = "BAD_JOB_ID" if not job_id else self.check_lease(job_id, token)
        if code:
            return ("ERR", code)
        h = self.jobs[job_id]
        h.update(progress=value, progress_ms=fmt(now))
        self.emit("progress", job_id, h.get("gid"), now, attempt=h.get("attempt") or "0",
                  progress=value)
        return ("OK",)

    # -- admin -------------------------------------------------------------------------

    def _retry_one(self, job_id: str, now: int) -> str | None:
        if not valid_id(job_id):
            return "BAD_JOB_ID"
        h = self.jobs.get(job_id)
        if h is None or "state" not in h:
            return "NO_JOB"
        if h["state"] != "failed":
            return "NOT_FAILED"
        if "dependents" in h:  # waiting for this retry: the repair scan at its usual pace
            self.deps_src[job_id] = now + DEPS_REPAIR_MS
        list_remove(self.failed, job_id)
        self.idx["failed"].pop(job_id, None)
        self.delayed.pop(job_id, None)
        self.idx["delayed"].pop(job_id, None)
        self.expire.pop(job_id, None)
        h.update(state="wait", attempt="0", lease_token="", lock_until_ms="", due_ms="",
                 failed_ms="", expire_ms="", updated_ms=fmt(now))
        h.pop("cancel_requested_ms", None)
        key = h.get("dedup_key")
        if key and self.dedup_holder(key, now) in (None, job_id):
            self.dedup[key] = [job_id, None, None]
        gid = h.get("gid") or ""
        if h.get("group_order") == "strict" and gid and self.blocked.get(gid) == job_id:
            self.push_head(job_id, gid, now, h.get("group_limit"))
            self.release_hold(gid, self.blocked, job_id, now)
        else:
            self.push_ready(job_id, gid, now, h.get("group_limit"))
        self.emit("retried", job_id, h.get("gid"), now)
        return None

    def retry_failed(self, now: int, job_id: str) -> Reply:
        code = self._retry_one(job_id, now)
        if code:
            return ("ERR", code)
        self.finish(now)
        return ("OK",)

    def retry_failed_batch(self, now: int, ids: list[str]) -> list[Reply]:
        out: list[Reply] = []
        for job_id in ids:
            code = self._retry_one(job_id, now)
            out.append((job_id, "ERR", code) if code else (job_id, "OK", None))
        if any(r[1] == "OK" for r in out):
            self.finish(now)
        return out

    def _remove_one(self, job_id: str, lane: str, now: int) -> str | None:
        """Checks first, writes after: a refusal changes nothing (D17)."""
        if not valid_id(job_id):
            return "BAD_JOB_ID"
        h = self.jobs.get(job_id)
        if h is None or "state" not in h:
            return "NO_JOB"
        if job_id in self.active:
            return "ACTIVE"
        want = LANE_STATE.get(lane)
        gid = h.get("gid") or ""
        if want is None or h["state"] != want or (lane == "gwait" and not gid):
            return "LANE_MISMATCH"
        if lane == "wait":
            if gid:
                return "NOT_IN_LANE"
            removed = list_remove(self.wait, job_id)
        elif lane == "gwait":
            lst = self.gwait.get(gid, [])
            removed = list_remove(lst, job_id)
            if removed and not lst:
                self.ready.pop(gid, None)
        elif lane == "delayed":
            removed = self.delayed.pop(job_id, None) is not None
        elif lane == "failed":
            removed = list_remove(self.failed, job_id)
        elif lane == "waiting_deps":
            removed = self.waiting_deps.pop(job_id, None) is not None
        else:
            removed = list_remove(self.completed, job_id)
        if not removed:
            return "NOT_IN_LANE"
        if "dependents" in h:  # (a completed one: another client completed it)
            self._dep_work.append((job_id, "completed", h.get("result") or "")
                                  if h["state"] == "completed" else (job_id, "gone", None))
        del self.jobs[job_id]
        self.dedup_release(job_id, h, now, ttl=0)
        if lane in ("failed", "completed"):
            self.expire.pop(job_id, None)
        if lane in LANE_INDEX:
            self.idx[LANE_INDEX[lane]].pop(job_id, None)
        if lane == "gwait":
            self.forget_idle_group(gid)
        if h.get("group_order") == "strict" and gid:
            if lane == "delayed":
                self.release_hold(gid, self.held, job_id, now)
            elif lane == "failed":
                self.release_hold(gid, self.blocked, job_id, now)
        self.emit("removed", job_id, gid, now, lane=lane)
        return None

    def remove_job(self, now: int, job_id: str, lane: str) -> Reply:
        self._begin()
        code = self._remove_one(job_id, lane, now)
        if code:
            return ("ERR", code)
        self.settle_dependents(now)
        self.finish(now)
        return ("OK",)

    def remove_jobs_batch(self, now: int, lane: str, ids: list[str]) -> list[Reply]:
        self._begin()
        out: list[Reply] = []
        for job_id in ids:
            code = self._remove_one(job_id, lane, now)
            out.append((job_id, "ERR", code) if code else (job_id, "OK", None))
        if any(r[1] == "OK" for r in out):
            self.settle_dependents(now)
            self.finish(now)
        return out

    def cancel(self, now: int, job_id: str, keep_failed: int | None) -> Reply:
        """cancel.lua: a waiting or delayed job ends failed ('cancelled') at once; an active
        one is flagged (heartbeat CANCEL, its next fail or reap is final). A cancel of an
        active job writes no stats (its wake message is not modelled)."""
        if not valid_id(job_id):
            return ("ERR", "BAD_JOB_ID")
        self._begin()
        h = self.jobs.get(job_id)
        if h is None or "state" not in h:
            return ("OK", "not_found", "")
        state = h["state"]
        gid = h.get("gid") or ""
        if state == "active":
            if "cancel_requested_ms" not in h:
                h.update(cancel_requested_ms=fmt(now), updated_ms=fmt(now))
                self.emit("cancelled", job_id, gid, now, state="active")
            return ("OK", "cancelling", state)
        if state == "wait":
            self.idx["wait"].pop(job_id, None)
            if gid:
                lst = self.gwait.get(gid, [])
                list_remove(lst, job_id)
                if not lst:
                    self.gwait.pop(gid, None)
                    self.ready.pop(gid, None)
                self.forget_idle_group(gid)
            else:
                list_remove(self.wait, job_id)
        elif state == "delayed":
            self.delayed.pop(job_id, None)
            self.idx["delayed"].pop(job_id, None)
            if gid:  # a strict job waiting out its backoff frees its group
                self.release_hold(gid, self.held, job_id, now)
        elif state == "waiting_deps":
            self.waiting_deps.pop(job_id, None)
        else:  # completed, failed (or a state this client does not know)
            return ("OK", "finished", state)
        self.fail_unstarted(job_id, h, gid, now, "cancelled")
        self.emit("cancelled", job_id, gid, now, state=state)
        if keep_failed is not None:
            self._trim_failed(keep_failed, now)
        self.stats["last_finish_ms"] = fmt(now)
        self.expire_finished(now)
        self.settle_dependents(now)
        self.finish(now)
        return ("OK", "cancelled", state)

    def vanish(self, job_id: str) -> None:
        """The job hash disappears behind the scripts' back (eviction, TTL, manual DEL)."""
        self.jobs.pop(job_id, None)
        self.vanished.add(job_id)

    # -- schedules (schedule_set / _read / _fire / _pause / _remove) --------------------

    def schedule_set(self, now: int, name: str, expected_rev: int, values: list[str],
                     next_ms: int | None, anchor_ms: int) -> Reply:
        """Create or replace schedule ``name`` (``values``: the SCHED_DEF fields), only if
        its rev is ``expected_rev`` (0: it must not exist), else CHANGED. An equal
        definition writes nothing ('unchanged'); a replacement keeps the state (paused,
        counters, last occurrence) and takes the given next_ms and anchor_ms."""
        h = self.schedules.get(name)
        rev = int(h["rev"]) if h is not None else 0
        if rev != expected_rev:
            return ("ERR", "CHANGED", fmt(rev))
        d = dict(zip(SCHED_DEF, values, strict=True))
        if h is not None and all(h.get(f, "") == d[f] for f in SCHED_DEF):
            return ("OK", "unchanged", fmt(rev))
        status = "replaced" if h is not None else "created"
        if h is None:
            h = self.schedules[name] = {"created_ms": fmt(now), "paused": "0", "fires": "0"}
        h.update(d, name=name, rev=fmt(rev + 1), anchor_ms=fmt(anchor_ms), updated_ms=fmt(now),
                 next_ms="" if next_ms is None else fmt(next_ms))
        self.sched_z[name] = INF if h["paused"] == "1" or next_ms is None else next_ms
        return ("OK", status, fmt(rev + 1))

    def schedule_record(self, name: str) -> dict[str, str] | None:
        """What schedule_read returns of one schedule (SCHED_READ field -> value)."""
        h = self.schedules.get(name)
        if h is None:
            return None
        return {f: h.get(f, "") for f in ("name", *SCHED_DEF, *SCHED_STATE)}

    def schedules_due(self, now: int) -> tuple[list[str], int | None]:
        """schedule_read 'due': the schedules due at ``now`` (by time, then name; at most
        MAX_SCHEDULES_DUE names of the zset, those without a hash left out) and the next
        fire time after them (None: none)."""
        ordered = sorted(self.sched_z.items(), key=lambda kv: (kv[1], kv[0].encode()))
        names = [m for m, sc in ordered if sc <= now][:MAX_SCHEDULES_DUE]
        rest = ordered[len(names):]
        tail = rest[0][1] if rest and rest[0][1] != INF else None
        return [m for m in names if m in self.schedules], tail

    def schedule_pause(self, now: int, name: str, paused: bool, expected_rev: int = 0,
                       next_ms: int | None = None) -> Reply:
        """Pause (score INF) or resume (from ``next_ms``, if the rev is still
        ``expected_rev``) schedule ``name``; ('OK', '0') when it is in that state already."""
        h = self.schedules.get(name)
        if h is None:
            return ("ERR", "NO_SCHEDULE")
        end = opt_int(h.get("end_ms"))
        if next_ms is not None and end is not None and next_ms > end:
            return ("ERR", "BAD_ARGS", "next_ms")
        want = "1" if paused else "0"
        if h.get("paused") == want:
            return ("OK", "0")
        if paused:
            h.update(paused="1", updated_ms=fmt(now))
            self.sched_z[name] = INF
            return ("OK", "1")
        if int(h["rev"]) != expected_rev:
            return ("ERR", "CHANGED", h["rev"])
        h.update(paused="0", updated_ms=fmt(now), next_ms="" if next_ms is None else fmt(next_ms))
        self.sched_z[name] = INF if next_ms is None else next_ms
        return ("OK", "1")

    def schedule_remove(self, name: str) -> Reply:
        existed = self.schedules.pop(name, None) is not None
        self.sched_z.pop(name, None)
        return ("OK", "1" if existed else "0")

    def _sched_job(self, name: str, h: Hash, t: int) -> dict[str, Any]:
        """The job of occurrence ``t``: the schedule's template as an enqueue job dict."""
        return {"id": schedule_job_id(self.name, name, t), "payload": h["payload"],
                "max_attempts": int(h["max_attempts"]), "timeout_ms": int(h["timeout_ms"]),
                "backoff_ms": int(h["backoff_ms"]), "gid": h.get("gid", ""),
                "group_limit": int(h.get("group_limit") or 0),
                "keep_completed_ms": int(h.get("keep_completed_ms") or 0),
                "keep_failed_ms": int(h.get("keep_failed_ms") or 0),
                "control": json.loads(h["extras"]) if h.get("extras") else {}}

    @staticmethod
    def _plan_shape(expected: int, plan: FirePlanT, now: int) -> str | None:
        """The schedule_fire header's checks that need no stored state (they hold for a
        STALE or GONE plan too)."""
        times, skipped, new_next = plan
        first = skipped[0] if skipped else times[0] if times else expected
        last = times[-1] if times else skipped[1] if skipped else -1
        if first < expected or last > now:
            return "plan"
        if new_next is not None and new_next <= last:
            return "new_next"
        return None

    @staticmethod
    def _plan_ok(h: Hash, plan: FirePlanT) -> str | None:
        """The header's checks of a plan against the stored schedule it matches."""
        times, skipped, new_next = plan
        end = opt_int(h.get("end_ms"))
        last = times[-1] if times else skipped[1] if skipped else -1
        if (end is not None and last > end) or (len(times) > 1 and h["misfire"] != "all"):
            return "plan"
        if new_next is not None and end is not None and new_next > end:
            return "new_next"
        return None

    def schedule_fire(self, now: int,
                      items: list[tuple[str, int, int, FirePlanT]]) -> Reply:
        """Apply the plans (name, rev, expected next_ms, plan; a name at most once) whose
        schedule still has that rev and next_ms (else STALE, PAUSED, GONE). Each occurrence
        t becomes the job schedule_job_id(queue, name, t) due at t + its jitter, with the
        fields schedule and occurrence_ms, unless that id exists or a live job holds its
        dedup key (dedup='replace': the holder takes the payload); events 'fired' (before
        the job's own) per job written, then 'misfired' for a skipped range. The stats are
        synced when a plan applied (last_enqueue_ms when a job was published). Reply:
        ('OK', [(status, published), ...])."""
        if len({it[0] for it in items}) < len(items):
            return ("ERR", "BAD_ARGS", "name twice")
        statuses = []
        for name, rev, expected, plan in items:
            bad = self._plan_shape(expected, plan, now)
            if bad:
                return ("ERR", "BAD_ARGS", f"{bad} of {name}")
            h = self.schedules.get(name)
            if h is None:
                statuses.append("GONE")
            elif h.get("paused") == "1":
                statuses.append("PAUSED")
            elif int(h["rev"]) != rev or opt_int(h.get("next_ms")) != expected:
                statuses.append("STALE")
            else:
                bad = self._plan_ok(h, plan)
                if bad:
                    return ("ERR", "BAD_ARGS", f"{bad} of {name}")
                statuses.append("FIRED")
        out = []
        for (name, _, _, (times, skipped, new_next)), status in zip(items, statuses,
                                                                     strict=True):
            published = 0
            if status == "FIRED":
                h = self.schedules[name]
                gid = h.get("gid", "")
                last_id = None  # the last job this fire wrote
                for t in times:
                    j = self._sched_job(name, h, t)
                    if j["id"] in self.jobs:
                        continue
                    due = t + sched_jitter(name, t, int(h.get("jitter_ms") or 0))
                    key = j["control"].get("dedup_key")
                    holder = self.dedup_holder(key, now) if key else None
                    if holder is not None:
                        if j["control"].get("dedup") == "replace":
                            self._replace_into(holder, h["payload"], due, now)
                        continue
                    self.emit("fired", j["id"], gid, now, schedule=name, occurrence=fmt(t))
                    self.write_job(j, due, now, {"schedule": name, "occurrence_ms": fmt(t)})
                    published += 1
                    last_id = j["id"]
                h["next_ms"] = "" if new_next is None else fmt(new_next)
                if times:  # the latest occurrence fired, written or not
                    h.update(last_ms=fmt(times[-1]), fired_ms=fmt(now))
                if last_id is not None:
                    h.update(last_job_id=last_id,
                             fires=fmt(int(h.get("fires") or 0) + published))
                if skipped:
                    h["misfired_ms"] = fmt(skipped[1])
                    self.emit("misfired", "", gid, now, schedule=name, occurrence=fmt(skipped[1]),
                              **{"from": fmt(skipped[0])})
                self.sched_z[name] = INF if new_next is None else new_next
            out.append((status, published))
        if "FIRED" in statuses:  # (last_enqueue_ms only when a job was published)
            if any(n for _, n in out):
                self.stats["last_enqueue_ms"] = fmt(now)
            self.finish(now)
        return ("OK", out)

    def fire_due(self, now: int) -> tuple[int, int | None]:
        """fire_schedules at ``now``: plan every due schedule, apply the plans; returns
        (jobs published, ms until the next schedule is due or None)."""
        names, tail = self.schedules_due(now)
        items = []
        for name in names:
            h = self.schedules[name]
            plan = plan_fire(h, now)
            if plan is not None:
                items.append((name, int(h["rev"]), int(h["next_ms"]), plan))
        waits = [] if tail is None else [max(tail - now, 0)]
        waits += [max(p[2] - now, 0) for _, _, _, p in items if p[2] is not None]
        published = 0
        if items:
            reply = self.schedule_fire(now, items)
            assert reply[0] == "OK", reply  # a plan of the model itself is never refused
            published = sum(n for _, n in reply[1])
        return published, min(waits) if waits else None

    def vanish_schedule(self, name: str) -> None:
        """A schedule hash disappears behind the scripts' back (its zset entry stays)."""
        self.schedules.pop(name, None)

    # -- invariants omniq promises beyond v1 (checked on the model, equal to Redis) ----

    def check_invariants(self) -> None:
        for gid in self.limit:  # a limit lives only while its group has work (D5)
            assert self.gwait.get(gid) or self.inflight.get(gid, 0) > 0, ("idle limit", gid)
        for gid, n in self.inflight.items():
            assert n > 0, ("inflight kept at 0", gid)
        for job_id in self.leases:  # lease map entries end with their lease
            assert job_id in self.active, ("stale lease entry", job_id)
        for gid in self.ready:
            assert self.gwait.get(gid), ("empty group ready", gid)
        for gid, lst in self.gwait.items():  # no group with work and room is left out
            if gid in self.held or gid in self.blocked:  # a strict hold keeps it out
                continue
            if lst and self.inflight.get(gid, 0) < self.group_limit(gid):
                assert gid in self.ready or gid in self.limited, ("group not ready", gid)
        for gid in self.limited:  # only a group with a rate limit is parked
            assert "g:" + gid in self.rate, ("parked without a limit", gid)
        for name, h in self.schedules.items():  # the zset scores the hash's next fire
            score = INF if h.get("paused") == "1" or not h.get("next_ms") else int(h["next_ms"])
            assert self.sched_z.get(name) == score, ("schedule score", name)
        for job_id in self.waiting_deps:  # the lane holds waiting_deps jobs (or vanished)
            assert job_id in self.vanished or self.jobs.get(job_id, {}).get(
                "state", "waiting_deps") == "waiting_deps", ("waiting_deps lane", job_id)
        for job_id, h in self.jobs.items():
            if h.get("state") == "waiting_deps":  # in its lane, counting what is unresolved
                assert job_id in self.waiting_deps, ("not in waiting_deps", job_id)
                left = sum(1 for f, v in h.items()
                           if f.startswith("dep:") and v in ("pending", "failed"))
                assert h.get("deps_left") == fmt(left), ("deps_left", job_id, left)
            if "dependents" in h:  # the repair scan knows every job with dependents
                assert job_id in self.deps_src, ("dependents not in deps:src", job_id)
        assert set(self.deps_out) == set(self.deps_outdata), "outbox ops without their data"

    # -- rendering ---------------------------------------------------------------------

    def keyspace(self) -> dict[str, tuple[str, Any, int | None]]:
        """key -> (type, value, max expiry ms or None for no expiry)."""
        b = "{" + self.name + "}"
        out: dict[str, tuple[str, Any, int | None]] = {}
        for job_id, h in self.jobs.items():
            out[f"{b}:job:{job_id}"] = ("hash", dict(h), None)
        lists = {"wait": self.wait, "completed": self.completed, "failed": self.failed}
        for suffix, lst in lists.items():
            if lst:
                out[f"{b}:{suffix}"] = ("list", list(lst), None)
        for gid, lst in self.gwait.items():
            if lst:
                out[f"{b}:g:{gid}:wait"] = ("list", list(lst), None)
        for gid, n in self.inflight.items():
            out[f"{b}:g:{gid}:inflight"] = ("string", fmt(n), None)
        for gid, v in self.limit.items():
            out[f"{b}:g:{gid}:limit"] = ("string", v, None)
        for gid, v in self.held.items():
            out[f"{b}:g:{gid}:held"] = ("string", v, None)
        for gid, v in self.blocked.items():
            out[f"{b}:g:{gid}:blocked"] = ("string", v, None)
        for key, (holder, until, ttl) in self.dedup.items():
            fields = {"id": holder} if until is None else {"id": holder, "until": fmt(until)}
            out[f"{b}:dedup:{key}"] = ("hash", fields, ttl)
        zsets = {"delayed": self.delayed, "active": self.active, "groups:ready": self.ready,
                 "expire": self.expire}
        zsets.update({f"idx:{lane}": z for lane, z in self.idx.items()})
        for suffix, z in zsets.items():
            if z:
                out[f"{b}:{suffix}"] = ("zset", dict(z), None)
        if self.leases:
            out[f"{b}:leases"] = ("hash", dict(self.leases), None)
        if self.rate:
            out[f"{b}:rate_limits"] = ("hash", dict(self.rate), None)
        if self.rate_log:
            out[f"{b}:rate_log"] = ("zset", dict(self.rate_log), self.rate_log_ttl)
        for gid, z in self.grate_log.items():
            if z:
                out[f"{b}:g:{gid}:rate_log"] = ("zset", dict(z), self.grate_ttl[gid])
        if self.limited:
            out[f"{b}:groups:limited"] = ("zset", dict(self.limited), None)
        if self.paused:
            out[f"{b}:paused"] = ("string", "1", None)
        if self.has_groups:
            out[f"{b}:has_groups"] = ("string", "1", None)
        if self.rr is not None:
            out[f"{b}:lane:rr"] = ("string", self.rr, None)
        if self.seq:
            out[f"{b}:lease:seq"] = ("string", fmt(self.seq), None)
        if self.stats:
            out[f"{b}:stats"] = ("hash", dict(self.stats), None)
        for name, h in self.schedules.items():
            out[f"{b}:schedule:{name}"] = ("hash", dict(h), None)
        if self.sched_z:
            out[f"{b}:schedules"] = ("zset", dict(self.sched_z), None)
        if self.events:  # value: the fields of each entry, oldest first
            out[f"{b}:events"] = ("stream", [dict(e) for e in self.events], None)
        for job_id, refs in self.dependents.items():
            if refs:
                out[f"{b}:job:{job_id}:dependents"] = ("hash", dict(refs), None)
        zsets = {"waiting_deps": self.waiting_deps, "deps:src": self.deps_src,
                 "deps:out": self.deps_out}
        for suffix, z in zsets.items():
            if z:
                out[f"{b}:{suffix}"] = ("zset", dict(z), None)
        if self.deps_outdata:
            out[f"{b}:deps:outdata"] = ("hash", dict(self.deps_outdata), None)
        return out


class CounterModel:
    """A parent/child completion counter ``{cc:K}`` (count, done set, finished marker)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.count: int | None = None
        self.ttl: int | None = None  # expiry of count (and of done), None = never
        self.done: set[str] = set()
        self.done_ttl: int | None = None
        self.finished = False

    def init(self, expected: int, ttl_ms: int) -> Reply:
        if self.count is not None:
            return ("ERR", "ALREADY_INIT")
        self.count = expected
        self.ttl = ttl_ms or None
        self.done = set()
        self.done_ttl = None
        self.finished = False
        return ("OK",)

    def ack(self, child: str) -> Reply:
        if self.count is None:
            return ("OK", 0) if self.finished else ("ERR", "NO_COUNTER")
        if child in self.done:
            return ("OK", self.count)
        self.done.add(child)
        if self.ttl:
            self.done_ttl = self.ttl
        self.count -= 1
        if self.count <= 0:
            self.count = None
            self.ttl = None
            self.done = set()
            self.done_ttl = None
            self.finished = True
            return ("OK", 0)
        return ("OK", self.count)

    def keyspace(self) -> dict[str, tuple[str, Any, int | None]]:
        c = "{cc:" + self.key + "}"
        out: dict[str, tuple[str, Any, int | None]] = {}
        if self.count is not None:
            out[c + ":count"] = ("string", fmt(self.count), self.ttl)
        if self.done:
            out[c + ":done"] = ("set", sorted(self.done), self.done_ttl)
        if self.finished:
            out[c + ":finished"] = ("string", "1", FINISHED_TTL_MS)
        return out


class Model:
    """Several queues and counters on one database."""

    def __init__(self, events_maxlen: int = 10_000) -> None:
        self.queues: dict[str, QueueModel] = {}
        self.counters: dict[str, CounterModel] = {}
        self.events_maxlen = events_maxlen

    def queue(self, name: str) -> QueueModel:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueModel(name, self.events_maxlen)
        return q

    def counter(self, key: str) -> CounterModel:
        c = self.counters.get(key)
        if c is None:
            c = self.counters[key] = CounterModel(key)
        return c

    def keyspace(self) -> dict[str, tuple[str, Any, int | None]]:
        out: dict[str, tuple[str, Any, int | None]] = {}
        for q in self.queues.values():
            out.update(q.keyspace())
        for c in self.counters.values():
            out.update(c.keyspace())
        return out

    def check_invariants(self) -> None:
        for q in self.queues.values():
            q.check_invariants()

    def resolve_dependencies(self, parts: list[str] | tuple[str, ...], now: int, repair: bool,
                             every: bool = False) -> int:
        """The client's delivery of the outboxes of physical queues ``parts``
        (AsyncOmniq._deliver_dependencies): each outbox in turn (``every``: a first batch of
        every op, due or not, then only the due ones), then the outboxes of the queues the
        delivery left work in (a cascade: at most CASCADE_QUEUES queues). Returns the ops
        done."""
        done = 0
        todo = list(dict.fromkeys(parts))
        seen = set(todo)
        first = set(todo) if every else set()
        while todo:
            part = todo.pop(0)
            while True:
                n, more, follow = self._deliver_once(part, repair, now, part in first)
                first.discard(part)
                done += n
                for q in follow:
                    if q not in seen and len(seen) < CASCADE_QUEUES:
                        seen.add(q)
                        todo.append(q)
                if not more:
                    break
        return done

    def _deliver_once(self, part: str, repair: bool, now: int,
                      every: bool) -> tuple[int, bool, list[str]]:
        """One batch of ``part``'s outbox (AsyncOmniq._deliver_once): deps_pending; 'L' ops
        linked on their dependency's queue (deps_link, one call per queue; 'gone': the
        outcome is settled here, 'queued': that queue's outbox has it now); 'R' ops (and
        those 'gone' links) given to deps_resolve, one call per queue in the order met
        (its 'DEPS': that queue's outbox got work); then deps_ack ('done' for what was
        delivered or linked, else 'retry'). Returns (ops done, a full batch?, queues the
        batch left work in)."""
        mode = "all" if every else "1" if repair else "0"
        reply = self.queue(part).deps_pending(now, MAX_DEPS_OPS, mode)
        n = int(reply[1])
        ops = [tuple(reply[2 + 3 * k: 5 + 3 * k]) for k in range(n)]
        follow: list[str] = []
        if not ops:
            return 0, False, follow
        links: dict[str, list[list[str]]] = {}
        outcomes: dict[str, list[tuple[str, tuple[str, str, str, str]]]] = {}
        acks: list[tuple[str, str]] = []
        for op, _, result in ops:
            f = op.split("\t")
            if len(f) == 5 and f[0] == "R":
                outcomes.setdefault(f[3], []).append(
                    (op, (f[4], f"{part}:{f[2]}", f[1], result)))
            elif len(f) == 5 and f[0] == "L":
                links.setdefault(f[3], []).append(f)
        for q, fs in links.items():
            got = self.queue(q).deps_link(now, [(f[4], f"{part}:{f[2]}", f[1]) for f in fs])
            for f, outcome in zip(fs, got[2:], strict=True):
                op = "\t".join(f)
                if outcome == "gone":
                    outcomes.setdefault(part, []).append((op, (f[2], f"{q}:{f[4]}", "gone", "")))
                    continue
                if outcome == "queued" and q not in follow:
                    follow.append(q)
                acks.append((op, "done"))
        for q, items in outcomes.items():
            got = self.queue(q).deps_resolve(now, [o for _, o in items])
            if got[-1] == "DEPS" and q not in follow:
                follow.append(q)
            for (op, _), status in zip(items, got[2:2 + len(items)], strict=True):
                acks.append((op, "done" if status == "OK" else "retry"))
        if acks:
            self.queue(part).deps_ack(now, acks)
        return sum(1 for _, a in acks if a == "done"), len(ops) == MAX_DEPS_OPS, follow
