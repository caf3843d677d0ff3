"""The blocking facade's schedule twins (each runs the async client's method)."""

from __future__ import annotations

import pytest

from omniq import FireResult, OmniqClient, ScheduleNotFound
from omniq._protocol.schedules import schedule_job_id

T0 = 1_000_000
MIN = 60_000


def test_sync_schedule_round_trip(omniq_sync: OmniqClient) -> None:
    c = omniq_sync
    info = c.schedule("q", "s", every_ms=MIN, payload={"n": 1}, gid="g", now_ms=T0)
    assert (info.name, info.next_fire_ms, info.options["gid"]) == ("s", T0 + MIN, "g")
    assert c.schedule("q", "s", every_ms=MIN, payload={"n": 1}, gid="g", now_ms=T0) == info
    assert c.fire_schedules("q", now_ms=T0 + MIN) == FireResult(1, MIN)
    job = c.reserve("q", now_ms=T0 + MIN + 1)
    assert job is not None
    assert (job.job_id, job.schedule, job.occurrence_ms) == (
        schedule_job_id("q", "s", T0 + MIN), "s", T0 + MIN)
    assert c.pause_schedule("q", "s") is True
    assert c.fire_schedules("q", now_ms=T0 + 5 * MIN) == FireResult(0, None)
    assert c.resume_schedule("q", "s", now_ms=T0 + 5 * MIN) is True
    got = c.get_schedule("q", "s")
    assert got is not None
    assert (got.paused, got.next_fire_ms, got.fires) == (False, T0 + 6 * MIN, 1)
    assert [s.name for s in c.schedules("q")] == ["s"]
    assert c.unschedule("q", "s") is True
    assert c.get_schedule("q", "s") is None
    with pytest.raises(ScheduleNotFound):
        c.pause_schedule("q", "s")
