"""The ``enqueue`` script: publish one or many jobs into one physical queue, all or nothing.

ARGV: ``now_ms, count``, then ``ENQUEUE_FIELDS`` fields per job (:func:`job_fields`), then
``events_maxlen``.
Reply: ``{'OK', n}`` or ``{'ERR', code, detail}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omniq._keys import validate_gid
from omniq._limits import ENQUEUE_FIELDS, PUBLISH_CHUNK
from omniq._protocol.common import check_non_negative, check_positive, parse_ok
from omniq._scripts import scripts
from omniq.errors import InvalidArgument

__all__ = ["ENQUEUE", "JobOptions", "args", "chunks", "job_fields", "parse"]

(ENQUEUE,) = scripts("enqueue")


class JobOptions:
    """Validated per-job options, shared by ``publish`` and ``publish_many``."""

    __slots__ = ("backoff_ms", "delay_ms", "due_ms", "gid", "group_limit", "keep_completed_ms",
                 "keep_failed_ms", "max_attempts", "timeout_ms")

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


def parse(reply: Any, job_id: str | None = None) -> int:
    """The number of jobs written; raises the refusal (``DUPLICATE``, ``PARTITIONED`` ...)."""
    return int(parse_ok("enqueue", reply, job_id)[1])
