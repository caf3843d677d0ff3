"""omniq: asyncio-native client and worker for OmniQ, the Redis + Lua job queue.

``AsyncOmniq`` is the asyncio client and ``Worker`` runs handlers; ``OmniqClient`` is the
blocking facade over the same core.
"""

from omniq.aio.client import AsyncOmniq
from omniq.aio.context import JobContext
from omniq.aio.worker import Fail, Worker, WorkerStats
from omniq.errors import (
    ConnectionFailed,
    CounterError,
    DuplicateJobError,
    InvalidArgument,
    InvalidPayload,
    JobNotFound,
    LaneMismatch,
    LeaseLost,
    OmniqError,
    PartialPublishError,
    PartitionError,
    PermissionDenied,
    ProtocolError,
    ScriptError,
    ServerError,
    SettingsError,
    SyncClientError,
)
from omniq.sync.client import OmniqClient
from omniq.types import (
    Ack,
    BatchResult,
    FailOutcome,
    JobInfo,
    JobSpec,
    Lease,
    QueueStats,
    ReservedJob,
    ReserveResult,
)
from omniq.types import PayloadT as PayloadT

JobCtx = JobContext
"""The official SDK's name of the handler context."""

from omniq.consumer import consume  # noqa: E402  (needs OmniqClient above)
from omniq.monitor import QueueMonitor  # noqa: E402
from omniq.settings import Settings  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Ack",
    "AsyncOmniq",
    "BatchResult",
    "ConnectionFailed",
    "CounterError",
    "DuplicateJobError",
    "Fail",
    "FailOutcome",
    "InvalidArgument",
    "InvalidPayload",
    "JobContext",
    "JobCtx",
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
    "ReserveResult",
    "ReservedJob",
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
