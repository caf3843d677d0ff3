"""omniq: asyncio-native client and worker for OmniQ, the Redis + Lua job queue.

``AsyncOmniq`` is the asyncio client and ``Worker`` runs handlers; ``OmniqClient`` is the
blocking facade over the same core.
"""

from typing import TYPE_CHECKING, Any

# The names below are imported on first use (PEP 562), so that ``import omniq`` and the
# ``omniq`` command (``omniq --help``) start without loading redis, anyio and the client.
if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq
    from omniq.aio.context import JobContext
    from omniq.aio.scheduler import Scheduler
    from omniq.aio.worker import Fail, Worker, WorkerStats
    from omniq.errors import (
        ConnectionFailed,
        CounterError,
        DependencyCycle,
        DependencyError,
        DependencyNotFound,
        DuplicateJobError,
        InvalidArgument,
        InvalidPayload,
        JobCancelled,
        JobFailed,
        JobNotFound,
        LaneMismatch,
        LeaseLost,
        OmniqError,
        PartialPublishError,
        PartitionError,
        PermissionDenied,
        ProtocolError,
        ScheduleNotFound,
        ScriptError,
        ServerError,
        SettingsError,
        SyncClientError,
    )
    from omniq.sync.client import OmniqClient
    from omniq.types import (
        Ack,
        BatchResult,
        CancelRequested,
        CancelResult,
        FailOutcome,
        FireResult,
        FlowInfo,
        FlowJob,
        FlowNode,
        JobEvent,
        JobInfo,
        JobSpec,
        Lease,
        QueueStats,
        RateLimit,
        ReservedJob,
        ReserveResult,
        ScheduleInfo,
    )
    from omniq.types import PayloadT as PayloadT

    JobCtx = JobContext

    from omniq.consumer import consume
    from omniq.monitor import QueueMonitor
    from omniq.settings import Settings

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "AsyncOmniq": "omniq.aio.client",
    "JobContext": "omniq.aio.context",
    "Scheduler": "omniq.aio.scheduler",
    "Fail": "omniq.aio.worker",
    "Worker": "omniq.aio.worker",
    "WorkerStats": "omniq.aio.worker",
    "OmniqClient": "omniq.sync.client",
    "consume": "omniq.consumer",
    "QueueMonitor": "omniq.monitor",
    "Settings": "omniq.settings",
    "PayloadT": "omniq.types",
    **{name: "omniq.errors" for name in (
        "ConnectionFailed", "CounterError", "DependencyCycle", "DependencyError",
        "DependencyNotFound", "DuplicateJobError", "InvalidArgument",
        "InvalidPayload", "JobCancelled", "JobFailed", "JobNotFound", "LaneMismatch",
        "LeaseLost", "OmniqError",
        "PartialPublishError", "PartitionError", "PermissionDenied", "ProtocolError",
        "ScheduleNotFound", "ScriptError", "ServerError", "SettingsError",
        "SyncClientError")},
    **{name: "omniq.types" for name in (
        "Ack", "BatchResult", "CancelRequested", "CancelResult", "FailOutcome", "FireResult",
        "FlowInfo", "FlowJob", "FlowNode", "JobEvent", "JobInfo", "JobSpec", "Lease",
        "QueueStats", "RateLimit", "ReservedJob", "ReserveResult", "ScheduleInfo")},
}


def __getattr__(name: str) -> Any:
    if name == "JobCtx":
        name = "JobContext"  # the official SDK's name of the handler context
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'omniq' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Ack",
    "AsyncOmniq",
    "BatchResult",
    "CancelRequested",
    "CancelResult",
    "ConnectionFailed",
    "CounterError",
    "DependencyCycle",
    "DependencyError",
    "DependencyNotFound",
    "DuplicateJobError",
    "Fail",
    "FailOutcome",
    "FireResult",
    "FlowInfo",
    "FlowJob",
    "FlowNode",
    "InvalidArgument",
    "InvalidPayload",
    "JobContext",
    "JobCtx",
    "JobCancelled",
    "JobEvent",
    "JobFailed",
    "JobInfo",
    "JobNotFound",
    "JobSpec",
    "LaneMismatch",
    "Lease",
    "LeaseLost",
    "OmniqClient",
    "OmniqError",
    "PayloadT",
    "PartialPublishError",
    "PartitionError",
    "PermissionDenied",
    "ProtocolError",
    "QueueMonitor",
    "QueueStats",
    "RateLimit",
    "ReserveResult",
    "ReservedJob",
    "ScheduleInfo",
    "ScheduleNotFound",
    "Scheduler",
    "ScriptError",
    "ServerError",
    "Settings",
    "SettingsError",
    "SyncClientError",
    "Worker",
    "WorkerStats",
    "__version__",
    "consume",
]
