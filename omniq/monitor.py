"""``from omniq.monitor import QueueMonitor``: the official SDK's read-only monitor.

Each method has the official name, parameters and result type
(:mod:`omniq.monitor_models`), and is built on the public reads of :class:`OmniqClient`
(``stats``, ``queues``, ``get_job``, ``jobs``, ``index_times``, ``ready_groups``,
``group_states``), so it works on partitioned queues and on Redis Cluster too. Differences,
all on the side of exactness: counters come from the real containers (the official monitor
reads the stats hash); ``scan_queues`` lists a partitioned queue once, under its logical
name; ``get_job`` returns None for an id outside omniq's rules (see docs/sync.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from omniq import types as t
from omniq.errors import InvalidArgument
from omniq.monitor_models import (
    GroupReady,
    GroupStatus,
    JobInfo,
    LaneJob,
    LaneName,
    QueueOverview,
    QueueStats,
)
from omniq.sync.client import OmniqClient

__all__ = ["QueueMonitor"]

MAX_LIST_LIMIT = 25
"""Most rows of one ``lane_page`` (the official clamp)."""
MAX_GROUP_LIMIT = 500
"""Most groups of one ``groups_ready`` or ``group_status`` call (the official clamp)."""


def _n(v: int | None) -> int:
    return v or 0


def _stats(s: t.QueueStats) -> QueueStats:
    return QueueStats(
        queue=s.queue, paused=s.paused, waiting=s.waiting, group_waiting=s.group_waiting,
        waiting_total=s.waiting_total, active=s.active, delayed=s.delayed, failed=s.failed,
        completed_kept=s.completed_kept, groups_ready=s.groups_ready,
        last_activity_ms=_n(s.last_activity_ms), last_enqueue_ms=_n(s.last_enqueue_ms),
        last_reserve_ms=_n(s.last_reserve_ms), last_finish_ms=_n(s.last_finish_ms),
    )


def _lane_job(lane: LaneName, j: t.JobInfo, score: int) -> LaneJob:
    return LaneJob(
        lane=lane, job_id=j.job_id, idx_score_ms=score, state=j.state, gid=j.gid or "",
        attempt=j.attempt, max_attempts=j.max_attempts, due_ms=_n(j.due_ms),
        lock_until_ms=_n(j.lock_until_ms), queued_ms=_n(j.queued_ms),
        first_started_ms=_n(j.first_started_ms), last_started_ms=_n(j.last_started_ms),
        completed_ms=_n(j.completed_ms), failed_ms=_n(j.failed_ms),
        updated_ms=_n(j.updated_ms), last_error=j.last_error or "",
    )


def _job(j: t.JobInfo) -> JobInfo:
    return JobInfo(
        job_id=j.job_id, state=j.state, gid=j.gid or "", attempt=j.attempt,
        max_attempts=j.max_attempts, timeout_ms=j.timeout_ms, backoff_ms=j.backoff_ms,
        lease_token=j.lease_token or "", lock_until_ms=_n(j.lock_until_ms),
        due_ms=_n(j.due_ms), payload=j.payload_raw, last_error=j.last_error or "",
        last_error_ms=_n(j.last_error_ms), created_ms=_n(j.created_ms),
        updated_ms=_n(j.updated_ms), queued_ms=_n(j.queued_ms),
        first_started_ms=_n(j.first_started_ms), last_started_ms=_n(j.last_started_ms),
        completed_ms=_n(j.completed_ms), failed_ms=_n(j.failed_ms),
    )


class QueueMonitor:
    """Read-only views of queues for dashboards and scripts: ``QueueMonitor(client)``."""

    def __init__(self, uq: OmniqClient) -> None:
        if not isinstance(uq, OmniqClient):
            raise InvalidArgument("QueueMonitor needs an omniq OmniqClient")
        self._uq = uq

    def scan_queues(self) -> list[str]:
        """Every queue that has stats, sorted."""
        return sorted(self._uq.queues())

    def stats(self, queue: str) -> QueueStats:
        """The queue's counters and last-activity times (0 when never set)."""
        return _stats(self._uq.stats(queue))

    def stats_many(self, queues: Iterable[str] | None = None) -> list[QueueStats]:
        """:meth:`stats` of each queue (default: every queue :meth:`scan_queues` finds)."""
        return [self.stats(q) for q in (self.scan_queues() if queues is None else queues)]

    def groups_ready(self, queue: str, offset: int = 0, limit: int = 200) -> list[str]:
        """The gids of :meth:`groups_ready_with_scores`."""
        return [g.gid for g in self.groups_ready_with_scores(queue, offset, limit)]

    def groups_ready_with_scores(
        self, queue: str, offset: int = 0, limit: int = 200
    ) -> list[GroupReady]:
        """Groups offered to reserve, oldest first (``limit`` clamped to 1..500)."""
        rows = self._uq.ready_groups(queue, offset=max(0, int(offset)),
                                     limit=max(1, min(int(limit), MAX_GROUP_LIMIT)))
        return [GroupReady(gid=g, score_ms=s) for g, s in rows if g]

    def group_status(
        self, queue: str, gids: list[str], default_limit: int = 1
    ) -> list[GroupStatus]:
        """Running and waiting jobs of each group (at most 500), its limit
        (``default_limit`` when none is stored) and whether it is ready."""
        default = max(1, int(default_limit))
        names = [str(g) for g in gids if g is not None and str(g)][:MAX_GROUP_LIMIT]
        return [GroupStatus(gid=s.gid, inflight=s.inflight, limit=s.limit or default,
                            ready=s.ready, waiting_count=s.waiting)
                for s in self._uq.group_states(queue, names)]

    def lane_page(
        self, queue: str, lane: LaneName, offset: int = 0, limit: int = 25,
        reverse: bool = False,
    ) -> list[LaneJob]:
        """Rows ``offset`` to ``offset + limit`` (limit clamped to 1..25) of a lane's index,
        oldest first (``reverse``: newest first)."""
        offset, limit = max(0, int(offset)), max(1, min(int(limit), MAX_LIST_LIMIT))
        page = self._uq.jobs(queue, lane, limit=offset + limit if offset else limit,
                             reverse=reverse) if offset + limit <= 1000 else None
        if page is None:  # deep pages: walk the cursor
            skipped, cursor = 0, None
            while True:
                page = self._uq.jobs(queue, lane, limit=1000, cursor=cursor,
                                     reverse=reverse)
                if skipped + len(page.jobs) > offset or page.cursor is None:
                    break
                skipped += len(page.jobs)
                cursor = page.cursor
            offset -= skipped
        rows = list(zip(page.jobs, page.index_ms, strict=True))[offset:offset + limit]
        return [_lane_job(lane, j, s) for j, s in rows]

    def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """The job's stored record, or None."""
        info = self._record(queue, job_id) if job_id else None
        return None if info is None else _job(info)

    def find_jobs(self, queue: str, lane: LaneName, job_ids: Iterable[str]) -> list[LaneJob]:
        """The rows of the given jobs that are in ``lane``, in the order given."""
        ids = [str(j) for j in job_ids if j]
        if not ids:
            return []
        out: list[LaneJob] = []
        for jid, score in zip(ids, self._uq.index_times(queue, lane, ids), strict=True):
            info = None if score is None else self._record(queue, jid)
            if info is not None and score is not None:
                out.append(_lane_job(lane, info, score))
        return out

    def _record(self, queue: str, job_id: str) -> t.JobInfo | None:
        try:
            return self._uq.get_job(queue, job_id)
        except InvalidArgument:  # an id omniq never publishes (see docs/sync.md)
            return None

    def overview(self, queue: str, samples_per_lane: int = 10) -> QueueOverview:
        """Stats, ready groups and the first rows of the active, delayed, failed and
        completed lanes (``samples_per_lane`` clamped to 1..25)."""
        n = max(1, min(int(samples_per_lane), MAX_LIST_LIMIT))
        return QueueOverview(
            stats=self.stats(queue),
            ready_groups=self.groups_ready_with_scores(queue, limit=n),
            active=self.lane_page(queue, "active", limit=n),
            delayed=self.lane_page(queue, "delayed", limit=n),
            failed=self.lane_page(queue, "failed", limit=n),
            completed=self.lane_page(queue, "completed", limit=n),
        )
