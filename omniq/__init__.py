"""omniq: asyncio-native client and worker for OmniQ, the Redis + Lua job queue.

``AsyncOmniq`` is the asyncio client; ``OmniqClient`` the blocking facade over it.
"""

from omniq.aio.client import AsyncOmniq
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
    PartitionError,
    PermissionDenied,
    ScriptError,
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

__version__ = "0.1.0"

__all__ = [
    "Ack",
    "AsyncOmniq",
    "BatchResult",
    "ConnectionFailed",
    "CounterError",
    "DuplicateJobError",
    "FailOutcome",
    "InvalidArgument",
    "InvalidPayload",
    "JobInfo",
    "JobNotFound",
    "JobSpec",
    "LaneMismatch",
    "Lease",
    "LeaseLost",
    "OmniqClient",
    "OmniqError",
    "PartitionError",
    "PermissionDenied",
    "QueueStats",
    "ReserveResult",
    "ReservedJob",
    "ScriptError",
    "__version__",
]
