"""The exceptions omniq raises.

Every exception of ours derives from :class:`OmniqError`; bad arguments also derive from
:class:`ValueError` so ordinary ``except ValueError`` code keeps working::

    OmniqError
    ├── InvalidArgument (ValueError)      bad queue name, gid, job id, option, batch size ...
    │   ├── InvalidPayload                payload is not a JSON object/array, NaN, too large ...
    │   └── SettingsError                 a bad setting or unknown key (names key and source)
    ├── ScriptError                       a script replied with an error code (``.code``)
    │   ├── LeaseLost                     TOKEN_MISMATCH / NOT_ACTIVE / TOKEN_REQUIRED
    │   ├── JobNotFound                   NO_JOB
    │   ├── DuplicateJobError             the job id already exists (publish never overwrites)
    │   ├── LaneMismatch                  LANE_MISMATCH / NOT_IN_LANE / NOT_FAILED / ACTIVE
    │   ├── CounterError                  parent/child counter errors (NO_COUNTER, ALREADY_INIT ...)
    │   ├── PartitionError                partition layout refused (PARTITION_CONFLICT ...)
    │   ├── ScheduleNotFound              no schedule of that name (NO_SCHEDULE)
    │   └── DependencyError               a dependency refused (docs/workflows.md)
    │       ├── DependencyNotFound        a dependency does not exist (DEP_NOT_FOUND)
    │       └── DependencyCycle           jobs would wait for each other (DEP_CYCLE)
    │       (DependencyError itself: DEP_LIMIT, a job with too many dependents)
    ├── JobCancelled                      ctx.exec / ctx.progress once the attempt was stopped
    ├── PartialPublishError               publish_many over partitions: some written, some refused
    ├── ConnectionFailed (ConnectionError) the server could not be reached or the link broke
    ├── PermissionDenied                  the server refused the credentials or an ACL denied it
    ├── ServerError                       any other error reply of the server (OOM, BUSY, ...)
    ├── ProtocolError                     a reply of a shape the client does not understand
    ├── SyncClientError (RuntimeError)    the blocking client used where it cannot work
    ├── ServerNotFound                    no server binary for the embedded server
    └── ServerStartError                  the embedded server did not start

Script codes are the OmniQ v1 codes (see ``docs/protocol.md``); ``ScriptError.code`` keeps
the raw code so callers can branch on it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConnectionFailed",
    "CounterError",
    "DependencyCycle",
    "DependencyError",
    "DependencyNotFound",
    "DuplicateJobError",
    "InvalidArgument",
    "InvalidPayload",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "LaneMismatch",
    "LeaseLost",
    "OmniqError",
    "PartialPublishError",
    "PartitionError",
    "PermissionDenied",
    "ProtocolError",
    "ScheduleNotFound",
    "ScriptError",
    "ServerError",
    "ServerNotFound",
    "ServerStartError",
    "SettingsError",
    "SyncClientError",
    "error_for_code",
]


class OmniqError(Exception):
    """Root of every omniq exception."""


class InvalidArgument(OmniqError, ValueError):
    """An argument was rejected before anything was sent to the server."""


class InvalidPayload(InvalidArgument):
    """The payload cannot be stored as an OmniQ job payload."""


class SettingsError(InvalidArgument):
    """A setting was rejected (:mod:`omniq.settings`): a bad value, an unknown key, an
    unreadable file. The message names the key and its source (a file, the environment
    variable, the keyword arguments)."""


class ScriptError(OmniqError):
    """A queue script refused the operation; ``code`` is the OmniQ error code."""

    def __init__(self, op: str, code: str, detail: str | None = None, job_id: str | None = None):
        self.op = op
        self.code = code
        self.detail = detail
        self.job_id = job_id
        msg = f"{op.upper()} failed: {code}"
        if detail:
            msg += f" ({detail})"
        if job_id:
            msg += f" [job {job_id}]"
        super().__init__(msg)


class LeaseLost(ScriptError):
    """The lease is no longer held: the job was acked, reaped or re-leased elsewhere."""


class JobNotFound(ScriptError):
    """No job with that id exists in the queue."""


class DuplicateJobError(ScriptError):
    """A job with that id already exists; publish never overwrites or re-queues it."""


class LaneMismatch(ScriptError):
    """The job is not in the lane or state the operation requires."""


class CounterError(ScriptError):
    """A parent/child completion counter operation was refused."""


class PartitionError(ScriptError):
    """A partition layout was refused: ``PARTITION_CONFLICT`` (the queue already has another
    partition count; ``detail`` is the stored one), ``QUEUE_NOT_EMPTY`` (the unpartitioned
    queue holds jobs) or ``PARTITIONED`` (a plain publish reached a partitioned queue)."""


class ScheduleNotFound(ScriptError):
    """No schedule of that name exists on the queue (``pause_schedule``,
    ``resume_schedule``)."""


class DependencyError(ScriptError):
    """A dependency was refused at publish time (docs/workflows.md); ``detail`` names it
    (``"<queue>:<id>"``). Nothing was written."""


class DependencyNotFound(DependencyError):
    """A dependency does not exist (never published, removed, or its record deleted)."""


class DependencyCycle(DependencyError):
    """The jobs would wait for each other (a job depending on itself, or a cycle among the
    jobs of one flow or batch)."""


class JobFailed(OmniqError):
    """``wait()``: the job ended failed. ``error`` is its last error text (first line
    ``"Type: message"``, then the traceback), ``attempts`` how many times it ran."""

    def __init__(self, queue: str, job_id: str, error: str | None, attempts: int) -> None:
        self.queue = queue
        self.job_id = job_id
        self.error = error
        self.attempts = attempts
        first = (error or "no error text").split("\n", 1)[0]
        super().__init__(f"job {job_id} of queue {queue!r} failed after {attempts} "
                         f"attempt{'s' if attempts != 1 else ''}: {first}")

    def __reduce__(self) -> Any:
        return (type(self), (self.queue, self.job_id, self.error, self.attempts))


class JobCancelled(OmniqError):
    """The attempt of the job being handled was stopped by the worker (the job was
    cancelled, or ran past its run timeout): raised by ``ctx.exec`` calls and
    ``ctx.progress`` once ``ctx.cancelled`` is True. Let it propagate (or return): the
    attempt fails with ``cancelled`` / ``timed out`` whatever the handler does next."""


class PartialPublishError(OmniqError):
    """``publish_many`` on a partitioned queue: some partitions refused their jobs while
    others wrote theirs (partitions cannot be written atomically together).

    ``published_ids`` lists the ids that were written, ``errors`` the refusals (the first
    one is also the ``__cause__``). When no partition wrote anything, ``publish_many``
    raises the first refusal itself instead.
    """

    def __init__(self, published_ids: list[str], errors: list[OmniqError]) -> None:
        self.published_ids = published_ids
        self.errors = errors
        super().__init__(
            f"publish_many wrote {len(published_ids)} jobs, then {len(errors)} partition "
            f"call(s) failed; first: {errors[0]}"
        )


class ConnectionFailed(OmniqError, ConnectionError):
    """The Redis server could not be reached, or the connection broke mid-command.

    For a write (publish, ack) the outcome is unknown: the command may or may not have run.
    """


class PermissionDenied(OmniqError):
    """The server refused the credentials (WRONGPASS, NOAUTH) or its ACL denied a command,
    key or channel to this user (NOPERM). The server's message is kept in the text.

    Nothing ran; retrying with the same user does not help.
    """


class ServerError(OmniqError):
    """The server answered with an error of its own (not a queue script refusal): out of
    memory, a busy script, a read-only replica, an unknown command... The server's message
    is kept in the text."""


class ProtocolError(OmniqError):
    """A reply had a shape the client does not understand (a script of another version on
    the server, or a corrupt value such as a partition layout)."""


class SyncClientError(OmniqError, RuntimeError):
    """The blocking client was used where it cannot work: inside a running event loop,
    after :meth:`~omniq.sync.client.OmniqClient.close`, or in a forked child when it
    wraps a caller's ``AsyncOmniq``."""


class ServerNotFound(OmniqError):
    """No Redis or Valkey server binary was found for the embedded server."""


class ServerStartError(OmniqError):
    """The embedded server process did not start or did not answer in time."""


_CODE_CLASSES: dict[str, type[ScriptError]] = {
    "TOKEN_MISMATCH": LeaseLost,
    "NOT_ACTIVE": LeaseLost,
    "TOKEN_REQUIRED": LeaseLost,
    "NO_JOB": JobNotFound,
    "DUPLICATE": DuplicateJobError,
    "LANE_MISMATCH": LaneMismatch,
    "NOT_IN_LANE": LaneMismatch,
    "NOT_FAILED": LaneMismatch,
    "ACTIVE": LaneMismatch,
    "NO_COUNTER": CounterError,
    "ALREADY_INIT": CounterError,
    "BAD_EXPECTED": CounterError,
    "NO_EXPECTED": CounterError,
    "CHILD_REQUIRED": CounterError,
    "PARTITION_CONFLICT": PartitionError,
    "QUEUE_NOT_EMPTY": PartitionError,
    "PARTITIONED": PartitionError,
    "NO_SCHEDULE": ScheduleNotFound,
    "DEP_NOT_FOUND": DependencyNotFound,
    "DEP_CYCLE": DependencyCycle,
    "DEP_LIMIT": DependencyError,
}


def error_for_code(
    op: str, code: str, detail: str | None = None, job_id: str | None = None
) -> ScriptError:
    """Build the exception that matches a script error code."""
    cls = _CODE_CLASSES.get(code, ScriptError)
    return cls(op, code, detail, job_id)
