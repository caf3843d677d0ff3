"""The schedule scripts: ``schedule_set``, ``schedule_read``, ``schedule_fire``,
``schedule_pause`` and ``schedule_remove`` (docs/schedules.md).

A schedule lives beside its queue: the hash ``{q}:schedule:<name>`` (definition, job
template, state) and the zset ``{q}:schedules`` (name -> next fire time). Firing is two
calls: ``schedule_read`` gives the due schedules and the server clock; the client computes
each one's plan (:func:`plan_for`: the occurrences, from a cron parser or the interval,
and the misfire policy); ``schedule_fire`` applies the plans that still match what is
stored (rev and next fire time), so one occurrence is published once however many
clients race.

Everything here is pure: the client methods are in :mod:`omniq.aio.client`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from omniq._keys import queue_base, validate_gid
from omniq._limits import MAX_SCHEDULE_CATCHUP, MIN_EVERY_MS
from omniq._protocol.common import check_non_negative, parse_ok, texts
from omniq._protocol.enqueue import JobOptions
from omniq._scripts import scripts
from omniq._timing import MISFIRE_POLICIES, FirePlan, Timing, plan_fire
from omniq.errors import InvalidArgument, ProtocolError, ScheduleNotFound
from omniq.types import ScheduleInfo

__all__ = [
    "SCHEDULE_FIRE",
    "SCHEDULE_PAUSE",
    "SCHEDULE_READ",
    "SCHEDULE_REMOVE",
    "SCHEDULE_SET",
    "SCHED_DEF",
    "SCHED_READ",
    "FireItem",
    "ScheduleRead",
    "ScheduleSpec",
    "check_schedule_name",
    "fire_args",
    "first_fire",
    "info",
    "not_found",
    "parse_fire",
    "parse_pause",
    "parse_read",
    "parse_remove",
    "parse_set",
    "pause_args",
    "plan_for",
    "read_args",
    "remove_args",
    "schedule_jitter",
    "schedule_job_id",
    "set_args",
    "timing_of",
]

SCHEDULE_SET, SCHEDULE_READ, SCHEDULE_FIRE, SCHEDULE_PAUSE, SCHEDULE_REMOVE = scripts(
    "schedule_set", "schedule_read", "schedule_fire", "schedule_pause", "schedule_remove")

SCHED_DEF = ("cron", "every_ms", "tz", "start_ms", "end_ms", "misfire", "misfire_grace_ms",
             "jitter_ms", "payload", "max_attempts", "timeout_ms", "backoff_ms", "gid",
             "group_limit", "keep_completed_ms", "keep_failed_ms", "extras")
"""A schedule's definition fields, in schedule_set's ARGV order (lib.lua's SCHED_DEF)."""
SCHED_READ = ("name", *SCHED_DEF, "rev", "next_ms", "paused", "anchor_ms", "last_ms",
              "last_job_id", "fired_ms", "fires", "misfired_ms", "created_ms", "updated_ms")
"""What schedule_read returns per schedule (lib.lua's SCHED_READ)."""
_TIMING = ("cron", "every_ms", "tz", "start_ms", "end_ms")


def check_schedule_name(name: object) -> str:
    """A schedule name: 1-256 characters, no control characters (the rule of gids)."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"schedule name must be a non-empty str, not {name!r}")
    return validate_gid(name)


def _opt_time(value: object, name: str) -> int | None:
    return None if value is None else check_non_negative(value, name)


class ScheduleSpec:
    """A validated schedule definition: its timing, misfire policy and job template.

    :raises InvalidArgument: a bad value (nothing is written); :raises ImportError: a cron
        expression without the ``cron`` extra.
    """

    __slots__ = ("cron", "end_ms", "every_ms", "jitter_ms", "misfire", "misfire_grace_ms",
                 "name", "options", "payload", "start_ms", "tz")

    def __init__(
        self, name: str, *, cron: str | None, every_ms: int | None, tz: str,
        start_ms: int | None, end_ms: int | None, misfire: str, misfire_grace_ms: int,
        jitter_ms: int, payload: bytes, options: JobOptions,
    ) -> None:
        self.name = check_schedule_name(name)
        if every_ms is not None:
            every_ms = check_non_negative(every_ms, "every_ms")
            if every_ms < MIN_EVERY_MS:
                raise InvalidArgument(
                    f"every_ms must be at least {MIN_EVERY_MS} (one second), got {every_ms}")
            if tz != "UTC":
                raise InvalidArgument("tz applies to cron schedules only (every_ms counts "
                                      "real milliseconds)")
        self.start_ms = _opt_time(start_ms, "start_ms")
        self.end_ms = _opt_time(end_ms, "end_ms")
        if self.start_ms is not None and self.end_ms is not None and self.end_ms < self.start_ms:
            raise InvalidArgument("end_ms must not be before start_ms")
        if misfire not in MISFIRE_POLICIES:
            raise InvalidArgument(
                f"misfire must be one of {', '.join(map(repr, MISFIRE_POLICIES))}, "
                f"not {misfire!r}")
        self.misfire = misfire
        self.misfire_grace_ms = check_non_negative(misfire_grace_ms, "misfire_grace_ms")
        self.jitter_ms = check_non_negative(jitter_ms, "jitter_ms")
        # validates cron and tz (and both or neither of cron / every_ms)
        Timing(cron=cron, every_ms=every_ms, tz=tz, start_ms=self.start_ms,
               end_ms=self.end_ms)
        self.cron = cron if cron is None else " ".join(cron.split())
        self.every_ms = every_ms
        self.tz = tz
        if options.due_ms or options.delay_ms:
            raise InvalidArgument("a schedule's jobs are due at their occurrence: use "
                                  "jitter_ms to spread them, not due_ms / delay_ms")
        if b'"expires_ms"' in options.extras:
            raise InvalidArgument("an absolute expires_ms would expire every later "
                                  "occurrence: give expire_in_ms")
        self.options = options
        self.payload = payload

    def values(self) -> list[Any]:
        """The SCHED_DEF fields, as schedule_set takes (and stores) them."""
        o = self.options
        return [
            self.cron or "", "" if self.every_ms is None else self.every_ms, self.tz,
            _blank(self.start_ms), _blank(self.end_ms), self.misfire, self.misfire_grace_ms,
            self.jitter_ms, self.payload, o.max_attempts, o.timeout_ms, o.backoff_ms, o.gid,
            o.group_limit, o.keep_completed_ms, o.keep_failed_ms, o.extras,
        ]

    def timing(self, anchor_ms: int) -> Timing:
        """The occurrences of this definition (``anchor_ms``: interval schedules without
        ``start_ms`` count from it)."""
        return Timing(cron=self.cron, every_ms=self.every_ms, tz=self.tz,
                      start_ms=self.start_ms, end_ms=self.end_ms, anchor_ms=anchor_ms)


def _blank(v: int | None) -> Any:
    return "" if v is None else v


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode()
    return str(v)


def first_fire(spec: ScheduleSpec, stored: dict[str, str] | None,
               now: int) -> tuple[int | None, int]:
    """The next fire time and anchor to store for ``spec`` (docs/schedules.md "When a
    schedule fires"): a schedule whose timing is unchanged keeps both; otherwise, with
    ``start_ms``, the first occurrence at or after it (one in the past is due at once and
    the misfire policy decides); without it, the first occurrence after ``now``. Never an
    occurrence at or before the one fired last.

    :raises InvalidArgument: the pattern has no occurrence left (end_ms has passed, or a
        cron expression matches nothing in the next 50 years)."""
    new = [_text(v) for v in spec.values()[: len(_TIMING)]]
    if stored is not None and [stored[f] for f in _TIMING] == new:
        return (_int_or_none(stored["next_ms"]), int(stored["anchor_ms"] or 0))
    anchor = now if spec.start_ms is None else spec.start_ms
    timing = spec.timing(anchor)
    last = _int_or_none(stored["last_ms"]) if stored is not None else None
    after = now if spec.start_ms is None else spec.start_ms - 1
    if last is not None:
        after = max(after, last)
    nxt = timing.after(after)
    if nxt is None:
        raise InvalidArgument(f"schedule {spec.name!r} has no occurrence after "
                              f"{'its last one' if last is not None else 'now'}"
                              + (" (end_ms has passed)" if spec.end_ms is not None else ""))
    return nxt, anchor


def _int_or_none(v: str | None) -> int | None:
    return int(v) if v else None


# -- schedule_set ------------------------------------------------------------------------

def set_args(now: int, spec: ScheduleSpec, expected_rev: int, next_ms: int | None,
             anchor_ms: int) -> list[Any]:
    """ARGV of schedule_set.lua."""
    return [now, spec.name, expected_rev, *spec.values(), _blank(next_ms), anchor_ms]


def parse_set(reply: Any) -> tuple[str, int]:
    """``('created' | 'replaced' | 'unchanged', rev)``; raises the refusal (``CHANGED``: a
    concurrent change, read again and retry)."""
    r = parse_ok("schedule_set", reply)
    return r[1], int(r[2])


# -- schedule_read -----------------------------------------------------------------------

def read_args(now: int, mode: str, *rest: Any) -> list[Any]:
    """ARGV of schedule_read.lua: ``('one', name)``, ``('page', offset, limit)`` or
    ``('due', limit)``."""
    return [now, mode, *rest]


class ScheduleRead(NamedTuple):
    """A schedule_read reply: the script's clock, the schedules (SCHED_READ field ->
    value), and ``tail``: the next fire time after the due ones ('due'; None: none), or
    the number of schedules of the queue ('one', 'page')."""

    now: int
    records: list[dict[str, str]]
    tail: int | None


def parse_read(reply: Any) -> ScheduleRead:
    r = parse_ok("schedule_read", reply)
    n = int(r[2])
    k = len(SCHED_READ)
    if len(r) != 4 + n * k:
        raise ProtocolError(f"schedule_read: unexpected reply length {len(r)}")
    records = [dict(zip(SCHED_READ, r[3 + i * k : 3 + (i + 1) * k], strict=True))
               for i in range(n)]
    return ScheduleRead(int(r[1]), records, _int_or_none(r[-1]))


def timing_of(rec: dict[str, str]) -> Timing:
    """The timing of a stored schedule."""
    return Timing(cron=rec["cron"] or None,
                  every_ms=_int_or_none(rec["every_ms"]), tz=rec["tz"] or "UTC",
                  start_ms=_int_or_none(rec["start_ms"]), end_ms=_int_or_none(rec["end_ms"]),
                  anchor_ms=int(rec["anchor_ms"] or 0))


def plan_for(rec: dict[str, str], now: int) -> FirePlan | None:
    """The fire of a stored schedule at ``now`` (None: not due).

    :raises InvalidArgument: a stored definition this client cannot evaluate;
        :raises ImportError: a cron schedule without the ``cron`` extra."""
    next_ms = _int_or_none(rec["next_ms"])
    if next_ms is None or rec["paused"] == "1":
        return None
    return plan_fire(timing_of(rec), rec["misfire"], int(rec["misfire_grace_ms"] or 0),
                     next_ms, now, MAX_SCHEDULE_CATCHUP)


def info(queue: str, logical_queue: str, rec: dict[str, str]) -> ScheduleInfo:
    """A :class:`ScheduleInfo` from one schedule_read record."""
    paused = rec["paused"] == "1"
    options: dict[str, Any] = {
        "max_attempts": int(rec["max_attempts"] or 0),
        "timeout_ms": int(rec["timeout_ms"] or 0),
        "backoff_ms": int(rec["backoff_ms"] or 0),
    }
    if rec["gid"]:
        options["gid"] = rec["gid"]
    for name in ("group_limit", "keep_completed_ms", "keep_failed_ms"):
        if int(rec[name] or 0):
            options[name] = int(rec[name])
    if rec["extras"]:
        options.update(msgspec.json.decode(rec["extras"]))
    return ScheduleInfo(
        queue=queue,
        logical_queue=logical_queue,
        name=rec["name"],
        cron=rec["cron"] or None,
        every_ms=_int_or_none(rec["every_ms"]),
        tz=rec["tz"] or "UTC",
        start_ms=_int_or_none(rec["start_ms"]),
        end_ms=_int_or_none(rec["end_ms"]),
        misfire=rec["misfire"],
        misfire_grace_ms=int(rec["misfire_grace_ms"] or 0),
        jitter_ms=int(rec["jitter_ms"] or 0),
        payload_raw=rec["payload"],
        options=options,
        paused=paused,
        next_fire_ms=None if paused else _int_or_none(rec["next_ms"]),
        last_fire_ms=_int_or_none(rec["last_ms"]),
        last_job_id=rec["last_job_id"] or None,
        fired_ms=_int_or_none(rec["fired_ms"]),
        fires=int(rec["fires"] or 0),
        misfired_ms=_int_or_none(rec["misfired_ms"]),
        created_ms=_int_or_none(rec["created_ms"]),
        updated_ms=_int_or_none(rec["updated_ms"]),
        rev=int(rec["rev"] or 0),
    )


# -- schedule_fire -----------------------------------------------------------------------

class FireItem(NamedTuple):
    """One schedule's part of a schedule_fire call: the rev and next fire time it was
    planned from, and the plan."""

    name: str
    rev: int
    expected_next: int
    plan: FirePlan


def fire_args(now: int, events_maxlen: int, items: Sequence[FireItem]) -> list[Any]:
    """ARGV of schedule_fire.lua."""
    out: list[Any] = [now, events_maxlen, len(items)]
    for it in items:
        p = it.plan
        out += [it.name, it.rev, it.expected_next, _blank(p.next_ms),
                *((p.skipped[0], p.skipped[1]) if p.skipped else ("", "")),
                len(p.times), *p.times]
    return out


def parse_fire(reply: Any, n: int) -> list[tuple[str, int]]:
    """Per schedule: ``(FIRED | STALE | PAUSED | GONE, jobs published)``."""
    r = parse_ok("schedule_fire", reply)
    if len(r) != 1 + 2 * n:
        raise ProtocolError(f"schedule_fire: unexpected reply {r!r}")
    return [(r[1 + 2 * i], int(r[2 + 2 * i])) for i in range(n)]


# -- schedule_pause / schedule_remove ----------------------------------------------------

def pause_args(now: int, name: str, paused: bool, expected_rev: int = 0,
               next_ms: int | None = None) -> list[Any]:
    """ARGV of schedule_pause.lua (resume: the rev read and the next fire time)."""
    if paused:
        return [now, name, "1", "", ""]
    return [now, name, "0", expected_rev, _blank(next_ms)]


def parse_pause(reply: Any, name: str) -> bool:
    """Whether the state changed; raises ScheduleNotFound, or ``CHANGED`` (resume)."""
    r = texts(reply)
    if r[:2] == ["ERR", "NO_SCHEDULE"]:
        raise not_found(name)
    return parse_ok("schedule_pause", r)[1] == "1"


def not_found(name: str) -> ScheduleNotFound:
    """The error for a schedule that does not exist."""
    return ScheduleNotFound("schedule_pause", "NO_SCHEDULE", f"no schedule {name!r}")


def remove_args(name: str) -> list[Any]:
    """ARGV of schedule_remove.lua."""
    return [name]


def parse_remove(reply: Any) -> bool:
    """Whether the schedule existed."""
    return parse_ok("schedule_remove", reply)[1] == "1"


# -- job ids -----------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def schedule_job_id(queue: str, name: str, at: int) -> str:
    """The id of the job that schedule ``name`` of the physical queue ``queue`` publishes
    for its occurrence at ``at`` (epoch ms): a ULID with that time and the first 80 bits
    of SHA1("{queue}:name") (the same as ``sched_job_id`` in lib.lua)."""
    if not 0 <= at <= 2**48 - 1:
        raise InvalidArgument(f"occurrence time out of range: {at}")
    seed = f"{queue_base(queue)}:{name}".encode()
    v = at << 80 | int(hashlib.sha1(seed).hexdigest()[:20], 16)
    return "".join(_CROCKFORD[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


def schedule_jitter(name: str, at: int, jitter_ms: int) -> int:
    """How long after its occurrence ``at`` the job of schedule ``name`` is due: 0 to
    ``jitter_ms``, from SHA1("<name>:<at>") (the same as ``sched_jitter`` in lib.lua)."""
    if jitter_ms <= 0:
        return 0
    return int(hashlib.sha1(f"{name}:{at}".encode()).hexdigest()[:13], 16) % (jitter_ms + 1)
