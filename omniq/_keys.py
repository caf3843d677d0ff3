"""Queue names, key layout and identifier rules of OmniQ v1 (I/O-free).

Every key of a queue starts with its base ``{name}`` (a Redis Cluster hash tag), so a
queue lives in one slot. Scripts receive the anchor ``{name}:meta`` as their only key.
"""

from __future__ import annotations

import re
import zlib

from omniq._limits import MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_PARTITIONS
from omniq.errors import InvalidArgument

__all__ = [
    "LANES",
    "PARTITION_SEP",
    "QueueKeys",
    "child_anchor",
    "layout_key",
    "partition_index",
    "partition_name",
    "queue_anchor",
    "queue_base",
    "split_partition",
    "validate_child_key",
    "validate_gid",
    "validate_job_id",
    "validate_queue_name",
]

LANES = frozenset({"wait", "delayed", "failed", "completed", "gwait", "waiting_deps"})
PARTITION_SEP = ".p"

_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
# partition i of a logical queue: "name.pI", I a decimal without leading zeros. The name is
# an ordinary queue name (the official clients accept only [A-Za-z0-9._-]), so whether a
# name is a partition is known only from its logical queue's layout, never from the text.
_PHYSICAL_RE = re.compile(r"([A-Za-z0-9._-]+)\.p(0|[1-9][0-9]{0,3})")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def validate_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid OmniQ queue name, else raise InvalidArgument."""
    if not isinstance(name, str):
        raise InvalidArgument(f"queue name must be a str, not {type(name).__name__}")
    if not name:
        raise InvalidArgument("queue name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"queue name is longer than {MAX_NAME_LENGTH} characters")
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidArgument(
            f"invalid queue name {name!r}: use only letters, digits, '.', '_' and '-'"
        )
    return name


def split_partition(name: str) -> tuple[str, int | None]:
    """``"orders.p3"`` -> ``("orders", 3)`` when the name has the form of a partition name,
    else ``(name, None)``. Only the logical queue's layout says whether it is one."""
    m = _PHYSICAL_RE.fullmatch(name)
    if m is None or int(m.group(2)) >= MAX_PARTITIONS:
        return name, None
    return m.group(1), int(m.group(2))


def partition_name(queue: str, index: int) -> str:
    """``orders``, 3 -> ``orders.p3``: the physical queue of one partition."""
    name = queue + PARTITION_SEP + str(index)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"queue name {queue!r} is too long to be partitioned: its partition names "
            f"would exceed {MAX_NAME_LENGTH} characters"
        )
    return name


def partition_index(key: str, partitions: int) -> int:
    """The partition of a gid (or explicit job id): CRC-32 of its UTF-8 bytes mod N.

    Every client must compute the same value: this is ``zlib.crc32`` (IEEE 802.3, the
    checksum of gzip and PNG), unsigned, modulo the partition count.
    """
    return zlib.crc32(key.encode("utf-8")) % partitions


def queue_base(name: str) -> str:
    """``{name}``: the hash-tagged prefix of every key of the queue."""
    return "{" + validate_queue_name(name) + "}"


def queue_anchor(name: str) -> str:
    """``{name}:meta``: the single key every queue script is called with."""
    return queue_base(name) + ":meta"


def layout_key(name: str) -> str:
    """``{name}:partitions``: the partition count of a logical queue (absent: unpartitioned)."""
    return queue_base(name) + ":partitions"


def _validate_identifier(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if _CONTROL_RE.search(value):
        raise InvalidArgument(f"{what} must not contain control characters")
    if value != value.strip():
        raise InvalidArgument(f"{what} must not start or end with whitespace")
    return value


def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` if usable as a job id (1-256 chars, no control characters)."""
    return _validate_identifier(job_id, "job id")


def validate_dedup_key(key: object) -> str:
    """Return ``key`` if usable as a deduplication key (1-256 bytes of UTF-8, no control
    characters, no surrounding whitespace)."""
    key = _validate_identifier(key, "dedup_key")
    if len(key.encode()) > MAX_ID_LENGTH:
        raise InvalidArgument(f"dedup_key is longer than {MAX_ID_LENGTH} bytes (UTF-8)")
    return key


def validate_gid(gid: object) -> str:
    """Return the trimmed group id; an empty or None gid means "ungrouped" and gives ''."""
    if gid is None:
        return ""
    if not isinstance(gid, str):
        raise InvalidArgument(f"gid must be a str, not {type(gid).__name__}")
    gid = gid.strip()
    if not gid:
        return ""
    return _validate_identifier(gid, "gid")


def validate_child_key(key: object) -> str:
    """Validate a parent/child completion key (official rule: 1-128 chars, no braces)."""
    if not isinstance(key, str):
        raise InvalidArgument(f"completion key must be a str, not {type(key).__name__}")
    key = key.strip()
    if not key:
        raise InvalidArgument("completion key must not be empty")
    if len(key) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"completion key is longer than {MAX_NAME_LENGTH} characters")
    if "{" in key or "}" in key:
        raise InvalidArgument("completion key must not contain '{' or '}'")
    if _CONTROL_RE.search(key):
        raise InvalidArgument("completion key must not contain control characters")
    return key


def child_anchor(key: str) -> str:
    """``{cc:key}:meta``: the anchor of a parent/child counter."""
    return "{cc:" + validate_child_key(key) + "}:meta"


class QueueKeys:
    """Names of the keys of one queue, for the plain reads done outside scripts."""

    __slots__ = (
        "active",
        "anchor",
        "base",
        "completed",
        "delayed",
        "failed",
        "groups_ready",
        "idx_wait",
        "name",
        "paused",
        "stats",
        "wait",
        "wake",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        b = queue_base(name)
        self.base = b
        self.anchor = b + ":meta"
        self.wait = b + ":wait"
        self.delayed = b + ":delayed"
        self.active = b + ":active"
        self.completed = b + ":completed"
        self.failed = b + ":failed"
        self.paused = b + ":paused"
        self.groups_ready = b + ":groups:ready"
        self.stats = b + ":stats"
        self.idx_wait = b + ":idx:wait"
        self.wake = b + ":wake"

    def job(self, job_id: str) -> str:
        """Key of a job hash."""
        return self.base + ":job:" + job_id

    def dependents(self, job_id: str) -> str:
        """Key of a job's dependents hash: ref ``"<queue>:<id>"`` of each job waiting on
        it -> that job's dependency policy."""
        return self.base + ":job:" + job_id + ":dependents"

    @property
    def waiting_deps(self) -> str:
        """The ``waiting_deps`` lane: id -> ms the job started waiting for its
        dependencies."""
        return self.base + ":waiting_deps"

    def group(self, gid: str, suffix: str) -> str:
        """Key of a per-group value: suffix is ``wait``, ``inflight``, ``limit``, ``held`` or
        ``blocked``."""
        return self.base + ":g:" + gid + ":" + suffix
