"""Job ids: ``new_ulid`` (the official SDK's id helper) and ``id_time_ms``, the creation
time a ULID job id carries."""

from __future__ import annotations

from omniq._protocol.common import new_job_id, ulid_time_ms

__all__ = ["id_time_ms", "new_ulid"]

_CROCKFORD = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def new_ulid() -> str:
    """A new ULID: 26 characters of uppercase Crockford base32 (the ids ``publish`` makes)."""
    return new_job_id()


def id_time_ms(job_id: str) -> int | None:
    """The epoch milliseconds encoded in a ULID job id, or None when ``job_id`` is not a
    ULID (any id given by the publisher, such as ``order-42``).

    Ids made by omniq and by the official clients are ULIDs, so this is when the publisher
    made the id (its clock), which is when the job was published. Lowercase is accepted,
    as in the ULID spec.
    """
    if not isinstance(job_id, str) or len(job_id) != 26:
        return None
    text = job_id.upper()
    if not set(text) <= _CROCKFORD or text[0] > "7":  # > 7: beyond the 48-bit time range
        return None
    return ulid_time_ms(text)
