"""What every script contract shares: argument checks, reply decoding, error mapping, ids.

Everything here is pure: no I/O, no asyncio.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from omniq._keys import LANES, validate_job_id
from omniq._limits import MAX_BATCH, MAX_CONCURRENCY, MAX_INT
from omniq.errors import InvalidArgument, ProtocolError, error_for_code

__all__ = [
    "check_batch",
    "check_concurrency",
    "check_lane",
    "check_non_negative",
    "check_now",
    "check_positive",
    "lease_id",
    "new_job_id",
    "parse_count",
    "parse_ok",
    "raise_if_error",
    "texts",
    "ulid_time_ms",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024)]  # 10 bits -> 2 chars


def new_job_id(
    _ns: Callable[[], int] = time.time_ns,
    _rand: Callable[[int], bytes] = os.urandom,
    _p: list[str] = _PAIRS,
) -> str:
    """A new ULID: 26 characters of uppercase Crockford base32, sortable by time.

    48 bits of Unix time in milliseconds and 80 random bits from ``os.urandom``, encoded
    as the ULID spec (and ulid-py's ``str(ulid.new())``) does: the 128-bit value in
    big-endian 5-bit groups, the first character carrying the top 3 bits. Not monotonic
    within a millisecond (neither is ``ulid.new()``). About 1 us, against 3-5 us for
    ulid-py, on the path of every publish.
    """
    v = (_ns() // 1_000_000) << 80 | int.from_bytes(_rand(10), "big")
    return (
        _p[v >> 120] + _p[v >> 110 & 1023] + _p[v >> 100 & 1023] + _p[v >> 90 & 1023]
        + _p[v >> 80 & 1023] + _p[v >> 70 & 1023] + _p[v >> 60 & 1023] + _p[v >> 50 & 1023]
        + _p[v >> 40 & 1023] + _p[v >> 30 & 1023] + _p[v >> 20 & 1023] + _p[v >> 10 & 1023]
        + _p[v & 1023]
    )


_DIGIT = {c: i for i, c in enumerate(_CROCKFORD)}


def ulid_time_ms(job_id: str) -> int:
    """The time (epoch ms) in the first 10 characters of an uppercase ULID, such as the id
    of a job a schedule published (its occurrence); 0 when they are not Crockford base32."""
    t = 0
    for c in job_id[:10]:
        d = _DIGIT.get(c)
        if d is None:
            return 0
        t = t * 32 + d
    return t


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an int, not {type(value).__name__}")
    if value > MAX_INT:
        raise InvalidArgument(f"{name} must be at most {MAX_INT}, got {value}")
    return value


def check_positive(value: object, name: str) -> int:
    """An int >= 1."""
    v = _int(value, name)
    if v < 1:
        raise InvalidArgument(f"{name} must be at least 1, got {v}")
    return v


def check_non_negative(value: object, name: str) -> int:
    """An int >= 0."""
    v = _int(value, name)
    if v < 0:
        raise InvalidArgument(f"{name} must not be negative, got {v}")
    return v


def check_up_to(value: object, name: str, most: int) -> int:
    """An int from 1 to ``most``."""
    v = check_positive(value, name)
    if v > most:
        raise InvalidArgument(f"{name} must be at most {most}, got {v}")
    return v


def check_concurrency(value: object) -> int:
    """A worker's ``concurrency``: an int from 1 to ``MAX_CONCURRENCY``."""
    return check_up_to(value, "concurrency", MAX_CONCURRENCY)


def check_now(now_ms: object) -> int:
    """``now_ms`` override: 0 means the server clock."""
    return check_non_negative(now_ms, "now_ms")


def pick_now(now_ms: object, now_ms_override: object) -> int:
    """``now_ms`` or the official SDK's name for it, ``now_ms_override`` (0: unset); giving
    both with different values is an :class:`InvalidArgument`."""
    a, b = check_now(now_ms), check_non_negative(now_ms_override, "now_ms_override")
    if a and b and a != b:
        raise InvalidArgument(f"now_ms={a} and now_ms_override={b} differ: give one")
    return a or b


def check_lane(lane: object) -> str:
    """One of ``wait``, ``delayed``, ``failed``, ``completed``, ``gwait``, ``waiting_deps``."""
    if lane not in LANES:
        raise InvalidArgument(f"unknown lane {lane!r}: use one of {', '.join(sorted(LANES))}")
    return str(lane)


def check_batch(job_ids: Sequence[str]) -> list[str]:
    """Validate a batch of job ids for the admin batch scripts (at most ``MAX_BATCH``)."""
    if isinstance(job_ids, str | bytes):
        raise InvalidArgument("job_ids must be a list of ids, not a single string")
    ids = list(job_ids)
    if len(ids) > MAX_BATCH:
        raise InvalidArgument(f"a batch holds at most {MAX_BATCH} job ids, got {len(ids)}")
    return [validate_job_id(i) for i in ids]


def lease_id(job_id: object) -> str:
    """A job id as ``reserve`` returned it: any non-empty str. Other clients (the official
    ones) create ids without our publish rules, and their jobs must still heartbeat and ack."""
    if not isinstance(job_id, str) or not job_id:
        raise InvalidArgument("job id must be a non-empty str")
    return job_id


def texts(reply: Any) -> list[str]:
    """A script reply as a list of str, whatever the client's decode setting."""
    if not isinstance(reply, list):
        raise ProtocolError(f"unexpected script reply: {reply!r}")
    return [x if type(x) is str else _text(x) for x in reply]


def _text(x: Any) -> str:
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return str(x)


def raise_if_error(op: str, r: list[str], job_id: str | None = None) -> None:
    """Raise the typed exception for an ``ERR`` reply."""
    if r and r[0] == "ERR":
        code = r[1] if len(r) > 1 else "UNKNOWN"
        detail = r[2] if len(r) > 2 else None
        if code.startswith("BAD_") or code == "BATCH_TOO_LARGE":
            raise InvalidArgument(f"{op.upper()} refused by the script: {code} {detail or ''}")
        raise error_for_code(op, code, detail, job_id)


def parse_ok(op: str, reply: Any, job_id: str | None = None) -> list[str]:
    """Check an ``OK`` reply (raising on ``ERR``) and return it as text."""
    r = texts(reply)
    raise_if_error(op, r, job_id)
    if not r or r[0] != "OK":
        raise ProtocolError(f"{op}: unexpected reply {r!r}")
    return r


def parse_count(op: str, reply: Any) -> int:
    """``{'OK', n}`` -> n."""
    return int(parse_ok(op, reply)[1])
