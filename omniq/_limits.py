"""Limits and defaults, one owner each (I/O-free, imports nothing of omniq).

The constants marked *shared* are also written in the constants block at the top of
``omniq/lua/lib.lua``; ``tests/core/test_limits.py`` checks that both sides agree.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BACKOFF_MS",
    "DEFAULT_CHILD_TTL_MS",
    "DEFAULT_EVENTS_MAXLEN",
    "DEFAULT_KEEP_COMPLETED",
    "DEFAULT_MAINTENANCE_BATCH",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_MISFIRE_GRACE_MS",
    "DEFAULT_TIMEOUT_MS",
    "DEFAULT_URL",
    "DEPS_ORPHAN_MS",
    "DEPS_RETRY_MS",
    "ENQUEUE_FIELDS",
    "EVENTLOG_BATCH",
    "EVENTLOG_CLAIM_IDLE_MS",
    "EVENTLOG_MAX_BATCH",
    "FALLBACK_LEASE_MS",
    "LUA_SHARED",
    "MAX_ACKS",
    "MAX_BATCH",
    "MAX_CONCURRENCY",
    "MAX_DEPENDENCIES",
    "MAX_DEPENDENTS",
    "MAX_DEPS_OPS",
    "MAX_DEPS_REPAIR",
    "MAX_DEPTH",
    "MAX_ERROR_BYTES",
    "MAX_EXPIRE_TRIM",
    "MAX_FAILED_TRIM",
    "MAX_ID_LENGTH",
    "MAX_INT",
    "MAX_LEASES",
    "MAX_NAME_LENGTH",
    "MAX_PAGE",
    "MAX_PARTITIONS",
    "MAX_PROGRESS_BYTES",
    "MAX_RATE_JOBS",
    "MAX_RESERVE",
    "MAX_SCHEDULES_DUE",
    "MAX_SCHEDULE_CATCHUP",
    "MIN_EVERY_MS",
    "PUBLISH_CHUNK",
    "RESERVE_FIELDS",
]

# -- shared with lib.lua ---------------------------------------------------------------

MAX_INT = 2**53 - 1
"""Largest integer argument: a Lua number (like a JavaScript one) holds it exactly."""
MAX_ID_LENGTH = 256
"""Longest job id or gid, in bytes (UTF-8) on the Lua side, in characters here."""
MAX_BATCH = 100
"""Most job ids in one admin batch (``retry_failed_batch``, ``remove_jobs_batch``)."""
MAX_ERROR_BYTES = 4096
"""Longest stored error text; both sides cut on a UTF-8 character boundary (D8)."""
MAX_RESERVE = 1000
"""Most jobs one reserve call leases."""
MAX_LEASES = 10_000
"""Most leases one heartbeat call extends."""
MAX_ACKS = 10_000
"""Most acks one ack_reserve call settles."""
MAX_PARTITIONS = 1024
"""Most partitions of a logical queue."""
MAX_FAILED_TRIM = 1000
"""Most failed jobs one call trims (``keep_failed``): a backlog shrinks over several calls."""
FALLBACK_LEASE_MS = 60_000
"""Lease length for a job whose stored ``timeout_ms`` is missing or <= 0 (OmniQ v1 rule,
for jobs written by other clients). Not the publish default (:data:`DEFAULT_TIMEOUT_MS`)."""
DEFAULT_MAINTENANCE_BATCH = 1000
"""Most jobs one ``promote_delayed`` or ``reap_expired`` call moves, by default."""
DEFAULT_KEEP_COMPLETED = 100
"""Completed jobs kept per queue (v1's fixed value; ``ack_success``'s default argument)."""
ENQUEUE_FIELDS = 12
"""ARGV fields per job of enqueue.lua."""
MAX_EXPIRE_TRIM = 1000
"""Most finished jobs one call deletes because their ``keep_*_ms`` time is over."""
MAX_PROGRESS_BYTES = 65_536
"""Longest progress value (its JSON text) a job keeps."""
MAX_RATE_JOBS = 100_000
"""Largest ``max_jobs`` of a rate limit (the window's log holds at most that many entries;
for more, use a shorter window)."""
MAX_SCHEDULE_CATCHUP = 100
"""Most occurrences one fire publishes for one schedule (``misfire="all"`` after downtime:
older missed occurrences are skipped)."""
MIN_EVERY_MS = 1000
"""Shortest interval of an interval schedule."""
MAX_SCHEDULES_DUE = 100
"""Most due schedules one read (and one fire call) handles; more are fired by the next."""
MAX_PAGE = 1000
"""Most jobs (or groups, or schedules) one page of ``jobs`` / ``ready_groups`` /
``schedules`` returns."""
RESERVE_FIELDS = 10
"""Reply fields per job of a reservation (the shape of ``lease()`` in lib.lua)."""
MAX_NAME_LENGTH = 128
"""Longest queue name or completion key (the official clients' rule)."""
MAX_DEPENDENCIES = 1000
"""Most dependencies of one job (and most children of one flow node): docs/workflows.md."""
MAX_DEPENDENTS = 10_000
"""Most dependents a publish may give one job (checked before the write; a job's end
settles all its dependents on its queue in one script call, about 30 µs each)."""
DEPS_RETRY_MS = 5000
"""A dependency outbox op handed to a deliverer is due again this long after, unless done."""
DEPS_ORPHAN_MS = 600_000
"""An outbox op whose target job does not exist is dropped once it is this old (a flow's
parent is published right after its children, so its children's outcomes may come first)."""
MAX_DEPS_OPS = 1000
"""Most outbox ops (or links, or outcomes) one dependency script call takes."""
MAX_DEPS_REPAIR = 100
"""Most jobs with dependents one repair scan looks at."""

LUA_SHARED = {
    "MAX_INT": MAX_INT,
    "MAX_ID_LENGTH": MAX_ID_LENGTH,
    "MAX_BATCH": MAX_BATCH,
    "MAX_ERROR_BYTES": MAX_ERROR_BYTES,
    "MAX_RESERVE": MAX_RESERVE,
    "MAX_LEASES": MAX_LEASES,
    "MAX_ACKS": MAX_ACKS,
    "MAX_PARTITIONS": MAX_PARTITIONS,
    "MAX_FAILED_TRIM": MAX_FAILED_TRIM,
    "FALLBACK_LEASE_MS": FALLBACK_LEASE_MS,
    "DEFAULT_MAINTENANCE_BATCH": DEFAULT_MAINTENANCE_BATCH,
    "DEFAULT_KEEP_COMPLETED": DEFAULT_KEEP_COMPLETED,
    "ENQUEUE_FIELDS": ENQUEUE_FIELDS,
    "MAX_EXPIRE_TRIM": MAX_EXPIRE_TRIM,
    "MAX_PROGRESS_BYTES": MAX_PROGRESS_BYTES,
    "MAX_RATE_JOBS": MAX_RATE_JOBS,
    "MAX_SCHEDULE_CATCHUP": MAX_SCHEDULE_CATCHUP,
    "MIN_EVERY_MS": MIN_EVERY_MS,
    "MAX_SCHEDULES_DUE": MAX_SCHEDULES_DUE,
    "MAX_PAGE": MAX_PAGE,
    "MAX_DEPENDENCIES": MAX_DEPENDENCIES,
    "MAX_DEPENDENTS": MAX_DEPENDENTS,
    "MAX_NAME_LENGTH": MAX_NAME_LENGTH,
    "DEPS_RETRY_MS": DEPS_RETRY_MS,
    "DEPS_ORPHAN_MS": DEPS_ORPHAN_MS,
    "MAX_DEPS_OPS": MAX_DEPS_OPS,
    "MAX_DEPS_REPAIR": MAX_DEPS_REPAIR,
}
"""Every shared constant by its Lua name (the test compares lib.lua against this)."""

# -- client side only ------------------------------------------------------------------

DEFAULT_EVENTS_MAXLEN = 10_000
"""Events kept per physical queue (``XTRIM MAXLEN ~``); 0 turns events off."""
EVENTLOG_BATCH = 500
"""Events one event-log batch reads and commits in one transaction, by default."""
EVENTLOG_MAX_BATCH = 10_000
"""Largest event-log batch."""
EVENTLOG_CLAIM_IDLE_MS = 60_000
"""An event-log consumer idle this long has its pending events claimed by another."""

DEFAULT_URL = "redis://127.0.0.1:6379/0"
"""The server of a client, a worker or the ``omniq`` command given no URL."""
DEFAULT_MAX_ATTEMPTS = 3
"""``publish`` default, as the official clients."""
DEFAULT_TIMEOUT_MS = 30_000
"""``publish`` default lease length, as the official clients."""
DEFAULT_BACKOFF_MS = 5_000
"""``publish`` default delay before a retry, as the official clients."""
DEFAULT_CHILD_TTL_MS = 7 * 24 * 3600 * 1000
"""Expiry of a parent/child counter started without ``ttl_ms`` (7 days)."""
DEFAULT_MISFIRE_GRACE_MS = 60_000
"""``schedule(misfire="skip")``: how late the lone due occurrence may be and still run."""
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
"""Largest encoded payload or result accepted by default."""
MAX_CONCURRENCY = 1000
"""Most jobs one worker runs at once (``concurrency``)."""
MAX_DEPTH = 64
"""Deepest nesting of a payload."""
PUBLISH_CHUNK = 1000
"""Jobs per enqueue call of ``publish_many`` (each chunk is all-or-nothing)."""
