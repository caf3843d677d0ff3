"""The ``enqueue`` script: publish one or many jobs into one physical queue, all or nothing.

ARGV: ``now_ms, count``, then ``ENQUEUE_FIELDS`` fields per job (:func:`job_fields`), then
``events_maxlen``.
Reply: ``{'OK', n}``, or ``{'OK', n, id_1 .. id_n}`` when a job of the call has a dedup key
(each job's id now: its own, or that of the live job holding its key), or
``{'ERR', code, detail}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from omniq._keys import validate_dedup_key, validate_gid
from omniq._limits import ENQUEUE_FIELDS, PUBLISH_CHUNK
from omniq._protocol.common import check_non_negative, check_positive, parse_ok
from omniq._scripts import scripts
from omniq.errors import InvalidArgument

__all__ = ["ENQUEUE", "JobOptions", "args", "batch_job_options", "check_dedup_options",
           "chunks", "job_fields", "parse"]

(ENQUEUE,) = scripts("enqueue")


class JobOptions:
    """Validated per-job options, shared by ``publish`` and ``publish_many``."""

    __slots__ = ("backoff_ms", "dedup_key", "delay_ms", "due_ms", "extras", "gid",
                 "group_limit", "keep_completed_ms", "keep_failed_ms", "max_attempts",
                 "timeout_ms")

    def __init__(
        self,
        *,
        max_attempts: int,
        timeout_ms: int,
        backoff_ms: int,
        due_ms: int = 0,
        delay_ms: int = 0,
        gid: str | None = None,
        group_limit: int = 0,
        keep_completed_ms: int = 0,
        keep_failed_ms: int = 0,
        dedup_key: str | None = None,
        dedup_ttl_ms: int = 0,
        dedup: str = "keep",
        expires_ms: int = 0,
        expire_in_ms: int = 0,
        run_timeout_ms: int = 0,
        backoff: str = "fixed",
        backoff_max_ms: int = 0,
        backoff_jitter: bool = False,
        group_order: str = "fifo",
        on_failure: str = "release",
    ) -> None:
        self.max_attempts = check_positive(max_attempts, "max_attempts")
        self.timeout_ms = check_positive(timeout_ms, "timeout_ms")
        self.backoff_ms = check_non_negative(backoff_ms, "backoff_ms")
        self.due_ms = check_non_negative(due_ms, "due_ms")
        self.delay_ms = check_non_negative(delay_ms, "delay_ms")
        if self.due_ms and self.delay_ms:
            raise InvalidArgument("give either due_ms (absolute) or delay_ms (relative), not both")
        self.gid = validate_gid(gid)
        self.group_limit = check_non_negative(group_limit, "group_limit")
        self.keep_completed_ms = check_non_negative(keep_completed_ms, "keep_completed_ms")
        self.keep_failed_ms = check_non_negative(keep_failed_ms, "keep_failed_ms")
        self.dedup_key = None if dedup_key is None else validate_dedup_key(dedup_key)
        controls = (dedup_key, dedup_ttl_ms, dedup, expires_ms, expire_in_ms, run_timeout_ms,
                    backoff, backoff_max_ms, backoff_jitter, group_order, on_failure)
        if controls == _NO_CONTROLS and tuple(map(type, controls)) == _NO_CONTROL_TYPES:
            self.extras = b""  # the common case, on the publish hot path: nothing to check
            return
        self.extras = _extras(
            self.gid, dedup_key=dedup_key, dedup_ttl_ms=dedup_ttl_ms, dedup=dedup,
            expires_ms=expires_ms, expire_in_ms=expire_in_ms, run_timeout_ms=run_timeout_ms,
            backoff=backoff, backoff_max_ms=backoff_max_ms, backoff_jitter=backoff_jitter,
            group_order=group_order, on_failure=on_failure,
        )


_CHOICES = {
    "dedup": ("keep", "replace"),
    "backoff": ("fixed", "exp"),
    "group_order": ("fifo", "strict"),
    "on_failure": ("release", "block"),
}
_encode_extras = msgspec.json.Encoder().encode
# the job-control arguments of JobOptions at their defaults (the types too: False is not 0)
_NO_CONTROLS = (None, 0, "keep", 0, 0, 0, "fixed", 0, False, "fifo", "release")
_NO_CONTROL_TYPES = tuple(map(type, _NO_CONTROLS))


# A time a JobSpec gives in one form replaces the batch's time in the other form.
_TIME_PAIRS = (("due_ms", "delay_ms"), ("expires_ms", "expire_in_ms"))


def batch_job_options(batch: dict[str, Any], given: dict[str, Any]) -> JobOptions:
    """The options of one job of a ``publish_many`` batch: the batch's keyword arguments
    (``batch``) overridden by those its JobSpec sets (``given``). A JobSpec time replaces
    the batch's time in the other form (``due_ms`` the batch's ``delay_ms``, ``expires_ms``
    its ``expire_in_ms``, and back); the batch's ``dedup`` and ``dedup_ttl_ms`` apply only
    to jobs with a ``dedup_key``."""
    out = {**batch, **given}
    for a, b in _TIME_PAIRS:
        if given.get(a) and b not in given:
            out.pop(b, None)
        elif given.get(b) and a not in given:
            out.pop(a, None)
    if out.get("dedup_key") is None:
        for k in ("dedup", "dedup_ttl_ms"):
            if k not in given:
                out.pop(k, None)
    return JobOptions(**out)


def check_dedup_options(dedup: object, dedup_ttl_ms: object) -> None:
    """Validate ``dedup=`` and ``dedup_ttl_ms`` on their own (``publish_many``'s batch
    values, which apply to the jobs that have a ``dedup_key``)."""
    _choice(dedup, "dedup")
    check_non_negative(dedup_ttl_ms, "dedup_ttl_ms")


def _choice(value: object, name: str) -> str:
    if not isinstance(value, str) or value not in _CHOICES[name]:
        allowed = " or ".join(repr(c) for c in _CHOICES[name])
        raise InvalidArgument(f"{name} must be {allowed}, not {value!r}")
    return value


def _extras(
    gid: str, *, dedup_key: str | None, dedup_ttl_ms: int, dedup: str, expires_ms: int,
    expire_in_ms: int, run_timeout_ms: int, backoff: str, backoff_max_ms: int,
    backoff_jitter: bool, group_order: str, on_failure: str,
) -> bytes:
    """The ``extras`` ARGV field: the job-control options that differ from their defaults,
    as a JSON object (``b""`` when there are none, so a plain job costs one empty field)."""
    x: dict[str, Any] = {}
    if dedup_key is not None:
        x["dedup_key"] = validate_dedup_key(dedup_key)
    if check_non_negative(dedup_ttl_ms, "dedup_ttl_ms"):
        x["dedup_ttl_ms"] = dedup_ttl_ms
    if _choice(dedup, "dedup") != "keep":
        x["dedup"] = dedup
    if ("dedup_ttl_ms" in x or "dedup" in x) and "dedup_key" not in x:
        raise InvalidArgument("dedup_ttl_ms and dedup= need a dedup_key")
    if check_non_negative(expires_ms, "expires_ms"):
        x["expires_ms"] = expires_ms
    if check_non_negative(expire_in_ms, "expire_in_ms"):
        if "expires_ms" in x:
            raise InvalidArgument(
                "give either expires_ms (absolute) or expire_in_ms (relative), not both")
        x["expire_in_ms"] = expire_in_ms
    if check_non_negative(run_timeout_ms, "run_timeout_ms"):
        x["run_timeout_ms"] = run_timeout_ms
    if _choice(backoff, "backoff") != "fixed":
        x["backoff"] = backoff
    if check_non_negative(backoff_max_ms, "backoff_max_ms"):
        x["backoff_max_ms"] = backoff_max_ms
    if not isinstance(backoff_jitter, bool):
        raise InvalidArgument(f"backoff_jitter must be a bool, not {type(backoff_jitter).__name__}")
    if backoff_jitter:
        x["backoff_jitter"] = True
    if _choice(group_order, "group_order") != "fifo":
        if not gid:
            raise InvalidArgument("group_order='strict' needs a gid")
        x["group_order"] = group_order
    if _choice(on_failure, "on_failure") != "release":
        if x.get("group_order") != "strict":
            raise InvalidArgument("on_failure='block' needs group_order='strict'")
        x["on_failure"] = on_failure
    return _encode_extras(x) if x else b""


def job_fields(job_id: str, payload: bytes, o: JobOptions) -> list[Any]:
    """The ``ENQUEUE_FIELDS`` ARGV fields of one job."""
    return [
        job_id,
        payload,
        o.max_attempts,
        o.timeout_ms,
        o.backoff_ms,
        o.due_ms,
        o.delay_ms,
        o.gid,
        o.group_limit,
        o.keep_completed_ms,
        o.keep_failed_ms,
        o.extras,
    ]


def args(now: int, fields: Sequence[Any], events_maxlen: int) -> list[Any]:
    """The ARGV of one call for the jobs whose :func:`job_fields` are ``fields``."""
    return [now, len(fields) // ENQUEUE_FIELDS, *fields, events_maxlen]


def chunks(
    now: int, fields: Sequence[Any], events_maxlen: int, chunk: int = PUBLISH_CHUNK
) -> list[list[Any]]:
    """The ARGV of each call for many jobs: ``chunk`` jobs per call."""
    step = chunk * ENQUEUE_FIELDS
    return [args(now, fields[i : i + step], events_maxlen)
            for i in range(0, len(fields), step)]


def parse(reply: Any, job_id: str | None = None) -> list[str] | None:
    """The id each job of the call has now (``None`` when no job had a dedup key: then
    every job was written under its own id); raises the refusal (``DUPLICATE``,
    ``PARTITIONED`` ...)."""
    ok = parse_ok("enqueue", reply, job_id)
    if len(ok) <= 2:
        return None
    return [_text(v) for v in ok[2:]]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
