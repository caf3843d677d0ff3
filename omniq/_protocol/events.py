"""Lifecycle events: the ``{queue}:events`` stream the scripts write, and ``progress.lua``.

Every script that changes a job's state appends one entry in the same call (docs/events.md):
``type``, ``id`` (the job id, ``''`` for queue events), ``ms`` only when the caller set the
clock (else the entry id's time is the transition's), ``gid`` when the job has one, and the
fields of its type: ``attempt``, ``due``, ``error``, ``lane``, ``progress``. The stream is
capped with ``XTRIM MAXLEN ~ events_maxlen`` once per call; every script takes
``events_maxlen`` as its last, optional argument (missing or 0: no events).

Everything here is pure: the readers live in :mod:`omniq.aio._events`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omniq._keys import queue_base
from omniq._limits import MAX_INT, MAX_PROGRESS_BYTES
from omniq._protocol.common import parse_ok
from omniq._scripts import scripts
from omniq.codec import encode_json_value
from omniq.errors import InvalidArgument
from omniq.types import JobEvent

__all__ = [
    "EVENT_TYPES",
    "FINAL_TYPES",
    "PROGRESS",
    "Since",
    "check_events_maxlen",
    "check_since",
    "check_types",
    "encode_progress",
    "events_key",
    "parse_entry",
    "parse_progress",
    "progress_args",
    "start_ids",
    "starts",
]

(PROGRESS,) = scripts("progress")

EVENT_TYPES = (
    "enqueued",
    "delayed",
    "promoted",
    "reserved",
    "progress",
    "completed",
    "failed",
    "retry_scheduled",
    "lease_expired",
    "removed",
    "cancelled",
    "expired",
    "retried",
    "paused",
    "resumed",
    "fired",
    "misfired",
    "waiting_deps",
    "dependency_failed",
)
"""Every event type, in the order of a job's life."""

FINAL_TYPES = frozenset({"completed", "failed", "removed"})
"""Events after which a job does not run again unless an admin retries it."""

Since = str | int | Mapping[str, str]
"""Where an event reader starts: ``"$"`` (new events only), ``"0"`` (everything kept), a
stream id (``"1733100000000-0"``: the events after it), epoch milliseconds (``int``: events
at or after that time), or a cursor ``{physical queue: stream id}`` from a reader."""

_STREAM_ID = re.compile(r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})")
_U64 = 2**64 - 1


def events_key(queue: str) -> str:
    """``{queue}:events``: the event stream of a physical queue."""
    return queue_base(queue) + ":events"


def check_events_maxlen(value: object) -> int:
    """An ``events_maxlen``: 0 (no events) or a positive int."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise InvalidArgument("events_maxlen must be an int >= 0 (0 turns events off)")
    return value


def check_types(types: Iterable[str] | None) -> frozenset[str] | None:
    """The event types to keep (None: all). :raises InvalidArgument: an unknown type."""
    if types is None:
        return None
    if isinstance(types, str):
        types = (types,)
    out = set()
    for t in types:
        if t not in EVENT_TYPES:
            raise InvalidArgument(
                f"unknown event type {t!r}: use one of {', '.join(EVENT_TYPES)}")
        out.add(t)
    if not out:
        raise InvalidArgument("types must name at least one event type (None: all)")
    return frozenset(out)


def _check_stream_id(value: str, what: str) -> str:
    m = _STREAM_ID.fullmatch(value)
    if m is None or int(m.group(1)) > _U64 or int(m.group(2)) > _U64:
        raise InvalidArgument(
            f"{what} {value!r} is not a stream id ('<ms>-<seq>'), '$', '0' or epoch ms")
    return value


def check_since(since: object) -> Since:
    """Validate ``since`` (see :data:`Since`) before anything is read.

    :raises InvalidArgument: not ``"$"``, ``"0"``, a stream id, a non-negative int or a
        mapping of physical queues to stream ids.
    """
    if isinstance(since, Mapping):
        for part, value in since.items():
            if not isinstance(part, str) or not isinstance(value, str):
                raise InvalidArgument("a cursor maps physical queue names to stream ids (str)")
            _check_stream_id(value, f"cursor value for {part!r}")
        return since
    if isinstance(since, bool) or not isinstance(since, int | str):
        raise InvalidArgument("since must be '$', '0', a stream id, epoch ms or a cursor")
    if isinstance(since, int):
        if not 0 <= since <= MAX_INT:
            raise InvalidArgument("since (epoch ms) must be >= 0")
        return since
    if since not in ("$", "0"):
        _check_stream_id(since, "since")
    return since


def starts(since: Since, parts: Sequence[str]) -> dict[str, str | None]:
    """Each physical queue's start for a validated ``since``: an exclusive stream id, or
    None for "its newest entry now" (the reader resolves it with one read).

    :raises InvalidArgument: a cursor names a queue that is not read.
    """
    if isinstance(since, Mapping):
        unknown = set(since) - set(parts)
        if unknown:
            raise InvalidArgument(
                f"cursor names queues that are not read here: {', '.join(sorted(unknown))}")
        # a queue the cursor does not name was never read from: everything it keeps is new
        return {part: since.get(part, "0-0") for part in parts}
    if isinstance(since, int):
        # entries at or after `since` ms: XREAD returns the ids greater than the one given
        return dict.fromkeys(parts, "0-0" if since == 0 else f"{since - 1}-{_U64}")
    if since == "$":
        return dict.fromkeys(parts)
    if since == "0":
        return dict.fromkeys(parts, "0-0")
    return dict.fromkeys(parts, since)


def start_ids(last: Sequence[Any]) -> str:
    """The stream id of an ``XREVRANGE key + - COUNT 1`` reply ("0-0" for an empty stream)."""
    return str(last[0][0]) if last else "0-0"


def _opt_int(v: str | None) -> int | None:
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        return None


def parse_entry(
    queue: str, logical_queue: str, entry_id: str, fields: Mapping[str, str]
) -> JobEvent:
    """One stream entry as a :class:`JobEvent` (fields it does not know are ignored)."""
    return JobEvent(
        id=entry_id,
        queue=queue,
        logical_queue=logical_queue,
        type=fields.get("type", ""),
        job_id=fields.get("id", ""),
        ms=_opt_int(fields.get("ms")) or int(entry_id.split("-", 1)[0]),
        gid=fields.get("gid") or None,
        attempt=_opt_int(fields.get("attempt")),
        due_ms=_opt_int(fields.get("due")),
        error=fields.get("error") or None,
        lane=fields.get("lane") or None,
        progress_raw=fields.get("progress"),
        state=fields.get("state") or None,
        schedule=fields.get("schedule") or None,
        occurrence_ms=_opt_int(fields.get("occurrence")),
        skipped_from_ms=_opt_int(fields.get("from")),
        dependency=fields.get("dependency") or None,
    )


# -- progress --------------------------------------------------------------------------

def encode_progress(value: object) -> bytes:
    """The JSON text of a progress value: plain JSON only (a set, bytes, a non-str key,
    NaN or an object is refused, nothing is converted).

    :raises InvalidPayload: not a JSON value, or longer than ``MAX_PROGRESS_BYTES``."""
    return encode_json_value(value, MAX_PROGRESS_BYTES, "progress")


def progress_args(
    job_id: str, token: str, value: bytes, now: int, events_maxlen: int
) -> tuple[Any, ...]:
    """ARGV of progress.lua."""
    return (job_id, token, value, now, events_maxlen)


def parse_progress(reply: Any, job_id: str) -> None:
    """``{'OK'}``; raises LeaseLost when the lease is no longer held."""
    parse_ok("progress", reply, job_id)
