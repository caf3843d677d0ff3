"""Schedules (docs/schedules.md): created, replaced, paused, removed and fired by the scripts.

Every call gives the clock (``now_ms``), which the scripts use as "now" exactly as they would
use the server's: so occurrences, misfires and DST transitions are computed at controlled
server-side times, without waiting. Races between fires are real concurrent calls.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from core_util import T0, dump_db
from shared_util import qk

from omniq import (
    AsyncOmniq,
    FireResult,
    InvalidArgument,
    PartitionError,
    ScheduleNotFound,
)
from omniq._limits import MAX_SCHEDULE_CATCHUP
from omniq._protocol import schedules as proto
from omniq._protocol.common import parse_ok

MIN = 60_000


async def _take(omniq: AsyncOmniq, queue: str, n: int):
    """The first ``n`` events of the queue."""
    got = 0
    async for e in omniq.events(queue, since="0"):
        yield e
        got += 1
        if got == n:
            return


def _types(raw, queue: str) -> list[tuple[str, str, str]]:
    return [(f["type"], f["id"], f.get("schedule", ""))
            for _, f in raw.xrange(qk(queue, "events"))]


async def _fire(omniq: AsyncOmniq, queue: str, now: int) -> int:
    return (await omniq.fire_schedules(queue, now_ms=now)).published


async def _plan(omniq: AsyncOmniq, now: int) -> proto.FireItem:
    """What a worker reading queue ``q`` at ``now`` plans for its one due schedule."""
    rd = proto.parse_read(await omniq.routing.call(
        proto.SCHEDULE_READ, "q", proto.read_args(now, "due", 10)))
    rec = rd.records[0]
    plan = proto.plan_for(rec, rd.now)
    assert plan is not None
    return proto.FireItem(rec["name"], int(rec["rev"]), int(rec["next_ms"]), plan)


async def _apply(omniq: AsyncOmniq, item: proto.FireItem, now: int) -> list[tuple[str, int]]:
    """Send a planned fire (later than it was planned); its per-schedule outcome."""
    reply = await omniq.routing.call(proto.SCHEDULE_FIRE, "q", proto.fire_args(now, 100, [item]))
    return proto.parse_fire(reply, 1)


async def _occurrences(omniq: AsyncOmniq, queue: str) -> list[int]:
    """The occurrence times of the queue's jobs published by schedules, in order."""
    page = await omniq.jobs(queue, "wait", limit=1000)
    delayed = await omniq.jobs(queue, "delayed", limit=1000)
    out = []
    for j in [*page.jobs, *delayed.jobs]:
        info = await omniq.get_job(queue, j.job_id)
        assert info is not None
        if info.occurrence_ms is not None:
            out.append(info.occurrence_ms)
    return sorted(out)


# -- create, read, replace ---------------------------------------------------------------


async def test_interval_schedule_fires_each_occurrence_once(omniq, raw):
    info = await omniq.schedule("q", "tick", every_ms=MIN, payload={"n": 1}, now_ms=T0)
    assert (info.every_ms, info.next_fire_ms, info.fires, info.rev) == (MIN, T0 + MIN, 0, 1)
    assert await omniq.fire_schedules("q", now_ms=T0 + MIN - 1) == FireResult(0, 1)
    assert await _fire(omniq, "q", T0 + MIN) == 1
    assert await _fire(omniq, "q", T0 + MIN + 500) == 0  # the same occurrence: once
    assert await _fire(omniq, "q", T0 + 2 * MIN + 10) == 1
    job = await omniq.reserve("q", now_ms=T0 + 2 * MIN + 20)
    assert job is not None
    assert (job.schedule, job.occurrence_ms, job.payload) == ("tick", T0 + MIN, {"n": 1})
    assert job.job_id == proto.schedule_job_id("q", "tick", T0 + MIN)
    stored = await omniq.get_job("q", job.job_id)
    assert stored is not None
    assert (stored.schedule, stored.occurrence_ms, stored.id_time_ms) == (
        "tick", T0 + MIN, T0 + MIN)
    info = await omniq.get_schedule("q", "tick")
    assert info is not None
    assert (info.fires, info.last_fire_ms, info.next_fire_ms, info.fired_ms) == (
        2, T0 + 2 * MIN, T0 + 3 * MIN, T0 + 2 * MIN + 10)
    assert info.last_job_id == proto.schedule_job_id("q", "tick", T0 + 2 * MIN)
    # each fire: 'fired' (with the schedule's name) before the job's own 'enqueued'
    second = proto.schedule_job_id("q", "tick", T0 + 2 * MIN)
    assert _types(raw, "q")[:4] == [("fired", job.job_id, "tick"), ("enqueued", job.job_id, ""),
                                    ("fired", second, "tick"), ("enqueued", second, "")]
    events = [e async for e in _take(omniq, "q", 2)]
    assert (events[0].type, events[0].schedule, events[0].occurrence_ms) == (
        "fired", "tick", T0 + MIN)
    assert (await omniq.stats("q")).waiting == 1


async def test_the_same_call_twice_changes_nothing(omniq, raw):
    first = await omniq.schedule("q", "s", cron="*/5 * * * *", payload={"a": 1}, now_ms=T0)
    before = dump_db(raw)
    again = await omniq.schedule("q", "s", cron="*/5  * * * *", payload={"a": 1},
                                 now_ms=T0 + 7 * MIN)
    assert again == first  # (the expression is stored with single spaces)
    assert dump_db(raw) == before


async def test_replacing_the_payload_keeps_the_next_fire_time(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, payload={"v": 1}, now_ms=T0)
    info = await omniq.schedule("q", "s", every_ms=MIN, payload={"v": 2}, max_attempts=7,
                                now_ms=T0 + 30_000)
    assert (info.rev, info.next_fire_ms, info.payload) == (2, T0 + MIN, {"v": 2})
    assert info.options["max_attempts"] == 7
    assert await _fire(omniq, "q", T0 + MIN) == 1
    job = await omniq.reserve("q", now_ms=T0 + MIN + 1)
    assert job is not None
    assert (job.payload, job.max_attempts) == ({"v": 2}, 7)


async def test_a_new_timing_starts_from_now_and_never_repeats_the_last(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, now_ms=T0)
    assert await _fire(omniq, "q", T0 + MIN) == 1
    info = await omniq.schedule("q", "s", every_ms=2 * MIN, now_ms=T0 + MIN + 100)
    assert info.next_fire_ms == T0 + 3 * MIN + 100  # anchored at the change
    assert (info.fires, info.last_fire_ms) == (1, T0 + MIN)  # the state is kept


async def test_schedule_replaced_while_due_fires_once_with_the_new_definition(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, payload={"v": "old"}, now_ms=T0)
    # a worker read it while due and planned its fire ...
    item = await _plan(omniq, T0 + MIN)
    # ... when the schedule was replaced (same timing: still due now)
    await omniq.schedule("q", "s", every_ms=MIN, payload={"v": "new"}, now_ms=T0 + MIN)
    assert await _apply(omniq, item, T0 + MIN) == [("STALE", 0)]  # the old plan writes nothing
    assert (await omniq.stats("q")).waiting == 0
    assert await _fire(omniq, "q", T0 + MIN + 5) == 1
    job = await omniq.reserve("q", now_ms=T0 + MIN + 6)
    assert job is not None
    assert (job.payload, job.occurrence_ms) == ({"v": "new"}, T0 + MIN)


async def test_racing_fires_publish_each_occurrence_once(omniq_redis_url):
    clients = [AsyncOmniq(url=omniq_redis_url) for _ in range(6)]
    try:
        await clients[0].schedule("q", "s", every_ms=MIN, now_ms=T0)
        await clients[0].schedule("q", "t", every_ms=3 * MIN, misfire="all", now_ms=T0)
        total = 0
        for step in range(1, 7):
            now = T0 + step * MIN
            got = await asyncio.gather(*(c.fire_schedules("q", now_ms=now) for c in clients))
            total += sum(r.published for r in got)
        assert total == 6 + 2  # s: six minutes; t: two 3-minute occurrences
        assert await _occurrences(clients[0], "q") == sorted(
            [T0 + k * MIN for k in range(1, 7)] + [T0 + 3 * MIN, T0 + 6 * MIN])
    finally:
        for c in clients:
            await c.aclose()


# -- misfires -------------------------------------------------------------------------------


async def test_misfire_once_publishes_the_latest_and_follows_the_pattern(omniq, raw):
    await omniq.schedule("q", "s", every_ms=MIN, now_ms=T0)
    down = T0 + 10 * MIN + 30_000  # nothing fired for ten occurrences
    assert await _fire(omniq, "q", down) == 1
    assert await _occurrences(omniq, "q") == [T0 + 10 * MIN]
    info = await omniq.get_schedule("q", "s")
    assert info is not None
    assert (info.next_fire_ms, info.misfired_ms) == (T0 + 11 * MIN, T0 + 9 * MIN)
    missed = [f for _, f in raw.xrange(qk("q", "events")) if f["type"] == "misfired"]
    assert missed == [{"type": "misfired", "id": "", "ms": str(down), "schedule": "s",
                       "from": str(T0 + MIN), "occurrence": str(T0 + 9 * MIN)}]
    assert await _fire(omniq, "q", T0 + 11 * MIN) == 1


async def test_misfire_skip_publishes_none_of_the_missed(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, misfire="skip", misfire_grace_ms=5_000,
                         now_ms=T0)
    # one occurrence due, a little late (within the grace): it runs
    assert await _fire(omniq, "q", T0 + MIN + 4_000) == 1
    # one due, later than the grace: skipped
    assert await _fire(omniq, "q", T0 + 2 * MIN + 6_000) == 0
    # several due (downtime): none
    assert await _fire(omniq, "q", T0 + 7 * MIN + 1) == 0
    assert await _occurrences(omniq, "q") == [T0 + MIN]
    info = await omniq.get_schedule("q", "s")
    assert info is not None
    assert (info.next_fire_ms, info.misfired_ms, info.fires) == (T0 + 8 * MIN, T0 + 7 * MIN, 1)
    assert await _fire(omniq, "q", T0 + 8 * MIN) == 1  # back on the pattern


async def test_misfire_all_publishes_the_missed_up_to_the_cap(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, misfire="all", now_ms=T0)
    assert await _fire(omniq, "q", T0 + 5 * MIN) == 5
    assert await _occurrences(omniq, "q") == [T0 + k * MIN for k in range(1, 6)]
    # a long outage: only the latest MAX_SCHEDULE_CATCHUP, never a burst of thousands
    assert await _fire(omniq, "q", T0 + 5_000 * MIN) == MAX_SCHEDULE_CATCHUP
    got = await _occurrences(omniq, "q")
    assert got[5:] == [T0 + k * MIN for k in range(5_000 - MAX_SCHEDULE_CATCHUP + 1, 5_001)]
    info = await omniq.get_schedule("q", "s")
    assert info is not None
    assert info.misfired_ms == T0 + (5_000 - MAX_SCHEDULE_CATCHUP) * MIN


async def test_a_start_in_the_past_is_due_at_once_and_the_policy_decides(omniq):
    await omniq.schedule("q", "once", every_ms=MIN, start_ms=T0 - 10 * MIN, now_ms=T0 + 1)
    await omniq.schedule("q", "all", every_ms=MIN, start_ms=T0 - 2 * MIN, misfire="all",
                         now_ms=T0 + 1)
    await omniq.schedule("q", "later", every_ms=MIN, start_ms=T0 + 5 * MIN, now_ms=T0 + 1)
    assert await _fire(omniq, "q", T0 + 2) == 1 + 3
    later = await omniq.get_schedule("q", "later")
    assert later is not None
    assert later.next_fire_ms == T0 + 5 * MIN


async def test_end_ms_ends_the_schedule(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, start_ms=T0, end_ms=T0 + 2 * MIN,
                         now_ms=T0 - 1)
    assert await _fire(omniq, "q", T0 + 5 * MIN) == 1  # once: the latest of 3 (end included)
    info = await omniq.get_schedule("q", "s")
    assert info is not None
    assert (info.next_fire_ms, info.ended, info.last_fire_ms) == (None, True, T0 + 2 * MIN)
    assert await omniq.fire_schedules("q", now_ms=T0 + 10 * MIN) == FireResult(0, None)
    with pytest.raises(InvalidArgument, match="no occurrence"):
        await omniq.schedule("q", "late", cron="0 0 1 1 *", end_ms=T0, now_ms=T0 + 2 * MIN)


# -- pause, resume, remove ---------------------------------------------------------------


async def test_pause_stops_at_once_and_resume_continues_from_the_next(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, now_ms=T0)
    item = await _plan(omniq, T0 + MIN)
    assert await omniq.pause_schedule("q", "s") is True
    assert await omniq.pause_schedule("q", "s") is False
    assert await _apply(omniq, item, T0 + MIN) == [("PAUSED", 0)]  # planned before the pause
    assert await _fire(omniq, "q", T0 + 5 * MIN) == 0
    info = await omniq.get_schedule("q", "s")
    assert info is not None
    assert (info.paused, info.next_fire_ms) == (True, None)
    assert await omniq.resume_schedule("q", "s", now_ms=T0 + 5 * MIN + 10) is True
    assert await omniq.resume_schedule("q", "s") is False
    info = await omniq.get_schedule("q", "s")
    assert info is not None
    assert (info.paused, info.next_fire_ms) == (False, T0 + 6 * MIN)  # nothing caught up
    assert await _fire(omniq, "q", T0 + 5 * MIN + 20) == 0
    assert await _fire(omniq, "q", T0 + 6 * MIN) == 1
    for call in (omniq.pause_schedule, omniq.resume_schedule):
        with pytest.raises(ScheduleNotFound):
            await call("q", "nope")


async def test_removing_a_schedule_a_worker_holds_publishes_nothing(omniq, raw):
    await omniq.schedule("q", "s", every_ms=MIN, now_ms=T0)
    item = await _plan(omniq, T0 + MIN)
    assert await omniq.unschedule("q", "s") is True
    assert await omniq.unschedule("q", "s") is False
    assert await _apply(omniq, item, T0 + MIN) == [("GONE", 0)]
    assert raw.exists(qk("q", "schedules"), qk("q", "schedule:s")) == 0
    assert (await omniq.stats("q")).waiting_total == 0
    assert await omniq.get_schedule("q", "s") is None


async def test_schedules_lists_by_name(omniq):
    for name in ("b", "a", "c"):
        await omniq.schedule("q", name, every_ms=MIN * (1 + ord(name) - 97), now_ms=T0)
    await omniq.pause_schedule("q", "a")
    listed = await omniq.schedules("q")
    assert [s.name for s in listed] == ["a", "b", "c"]
    assert [s.next_fire_ms for s in listed] == [None, T0 + 2 * MIN, T0 + 3 * MIN]
    assert await omniq.schedules("other") == []


# -- job options, jitter, dedup, groups -------------------------------------------------------


async def test_jobs_carry_the_template_options(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, gid="g1", group_limit=2, max_attempts=5,
                         timeout_ms=9_000, backoff="exp", keep_completed_ms=1_000,
                         now_ms=T0)
    await _fire(omniq, "q", T0 + MIN)
    job = await omniq.get_job("q", proto.schedule_job_id("q", "s", T0 + MIN))
    assert job is not None
    assert (job.gid, job.max_attempts, job.timeout_ms, job.backoff, job.keep_completed_ms) == (
        "g1", 5, 9_000, "exp", 1_000)
    assert (await omniq.stats("q")).group_waiting == 1


async def test_jitter_delays_each_job_by_a_stable_amount(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, jitter_ms=20_000, misfire="all", now_ms=T0)
    assert await _fire(omniq, "q", T0 + 3 * MIN) == 3
    now = T0 + 3 * MIN
    delays = []
    for k in (1, 2, 3):
        t = T0 + k * MIN
        job = await omniq.get_job("q", proto.schedule_job_id("q", "s", t))
        assert job is not None
        delay = proto.schedule_jitter("s", t, 20_000)
        assert 0 <= delay <= 20_000
        delays.append(delay)
        if t + delay > now:
            assert (job.state, job.due_ms) == ("delayed", t + delay)
        else:
            assert (job.state, job.due_ms) == ("wait", None)
    assert delays[2] > 0  # the latest is delayed: ready only at its own time
    assert len(set(delays)) == 3  # spread, not one shared delay


async def test_a_dedup_key_keeps_one_occurrence_live_at_a_time(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, dedup_key="report", now_ms=T0)
    assert await _fire(omniq, "q", T0 + MIN) == 1
    assert await _fire(omniq, "q", T0 + 2 * MIN) == 0  # the first still waits
    job = await omniq.reserve("q", now_ms=T0 + 2 * MIN + 1)
    assert job is not None
    await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 2 * MIN + 2)
    assert await _fire(omniq, "q", T0 + 3 * MIN) == 1
    info = await omniq.get_schedule("q", "s")
    assert info is not None
    assert info.fires == 2


# -- cron and time zones -----------------------------------------------------------------


def _ms(tz: str, *parts: int, fold: int = 0) -> int:
    return int(datetime(*parts, tzinfo=ZoneInfo(tz), fold=fold).timestamp() * 1000)


async def _run_through(omniq: AsyncOmniq, start: int, end: int, step: int) -> list[int]:
    """Fire every ``step`` ms from ``start`` to ``end``; the occurrences published."""
    now = start
    while now <= end:
        await omniq.fire_schedules("q", now_ms=now)
        now += step
    return await _occurrences(omniq, "q")


async def test_cron_across_spring_forward_runs_the_skipped_time_right_after(omniq):
    ny = "America/New_York"  # 2026-03-08 02:00 EST -> 03:00 EDT
    await omniq.schedule("q", "daily", cron="30 2 * * *", tz=ny, now_ms=_ms(ny, 2026, 3, 6, 12))
    got = await _run_through(omniq, _ms(ny, 2026, 3, 7, 0), _ms(ny, 2026, 3, 10, 0), 15 * MIN)
    assert got == [_ms(ny, 2026, 3, 7, 2, 30), _ms(ny, 2026, 3, 8, 3, 0),
                   _ms(ny, 2026, 3, 9, 2, 30)]


async def test_cron_across_fall_back_runs_the_repeated_time_once(omniq):
    ny = "America/New_York"  # 2026-11-01 02:00 EDT -> 01:00 EST
    await omniq.schedule("q", "daily", cron="30 1 * * *", tz=ny,
                         now_ms=_ms(ny, 2026, 10, 30, 12))
    got = await _run_through(omniq, _ms(ny, 2026, 10, 31, 0), _ms(ny, 2026, 11, 2, 3),
                             10 * MIN)
    assert got == [_ms(ny, 2026, 10, 31, 1, 30), _ms(ny, 2026, 11, 1, 1, 30),
                   _ms(ny, 2026, 11, 2, 1, 30)]


async def test_hourly_cron_runs_every_real_hour_across_both_changes(omniq):
    ny = "America/New_York"
    await omniq.schedule("q", "hourly", cron="@hourly", tz=ny, misfire="all",
                         now_ms=_ms(ny, 2026, 10, 31, 23, 30))
    got = await _run_through(omniq, _ms(ny, 2026, 11, 1, 0), _ms(ny, 2026, 11, 1, 4),
                             20 * MIN)
    # 01:00 EDT and 01:00 EST are an hour apart: both run, none is doubled or skipped
    assert [b - a for a, b in itertools.pairwise(got)] == [3_600_000] * 5
    assert got[0] == _ms(ny, 2026, 11, 1, 0)
    assert got[1:3] == [_ms(ny, 2026, 11, 1, 1), _ms(ny, 2026, 11, 1, 1, fold=1)]


async def test_cron_with_seconds_and_extensions(omniq):
    now = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    info = await omniq.schedule("q", "s", cron="*/15 * * * * *", now_ms=now)
    assert info.next_fire_ms == now + 15_000
    info = await omniq.schedule("q", "last", cron="0 9 L * *", tz="Europe/Paris", now_ms=now)
    assert info.next_fire_ms == _ms("Europe/Paris", 2026, 1, 31, 9)
    info = await omniq.schedule("q", "tue", cron="0 9 * * TUE#2", now_ms=now)
    assert info.next_fire_ms == _ms("UTC", 2026, 1, 13, 9)


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"cron": "61 * * * *"}, "bad cron expression"),
    ({"cron": "* * * *"}, "bad cron expression"),
    ({"cron": "@reboot"}, "unknown cron alias"),
    ({"cron": "0 * * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
    ({"cron": "0 * * * *", "every_ms": 60_000}, "not both"),
    ({}, "not both or neither"),
    ({"every_ms": 999}, "at least 1000"),
    ({"every_ms": 60_000, "tz": "Europe/Paris"}, "cron schedules only"),
    ({"every_ms": 60_000, "start_ms": 10, "end_ms": 5}, "end_ms"),
    ({"every_ms": 60_000, "misfire": "twice"}, "misfire"),
    ({"every_ms": 60_000, "jitter_ms": -1}, "jitter_ms"),
    ({"every_ms": 60_000, "payload": "text"}, "JSON object or array"),
    ({"every_ms": 60_000, "group_order": "strict"}, "needs a gid"),
])
async def test_bad_definitions_are_refused_before_anything_is_written(omniq, raw, kwargs,
                                                                      pattern):
    with pytest.raises(InvalidArgument, match=pattern):
        await omniq.schedule("q", "s", now_ms=T0, **kwargs)
    assert dump_db(raw) == {}


async def test_a_schedule_name_is_checked(omniq, raw):
    for name in ("", "a\nb", "x" * 257):
        with pytest.raises(InvalidArgument):
            await omniq.schedule("q", name, every_ms=MIN)
    assert dump_db(raw) == {}


# -- partitioned queues --------------------------------------------------------------------


async def test_partitioned_queue_keeps_a_schedule_where_its_jobs_go(omniq):
    await omniq.partition_queue("pq", 4)
    grouped = await omniq.schedule("pq", "g", every_ms=MIN, gid="tenant-7", now_ms=T0)
    plain = await omniq.schedule("pq", "p", every_ms=MIN, now_ms=T0)
    target = omniq.routing.publish_target("pq", "tenant-7", None)
    assert grouped.queue == target
    assert plain.queue == omniq.routing.publish_target("pq", "", "p")
    assert [s.name for s in await omniq.schedules("pq")] == ["g", "p"]
    assert await _fire(omniq, "pq", T0 + MIN) == 2
    job = await omniq.get_job("pq", proto.schedule_job_id(target, "g", T0 + MIN))
    assert job is not None
    assert (job.queue, job.gid) == (target, "tenant-7")
    # a new gid moves it: the old copy is gone, the new one fires once
    moved = await omniq.schedule("pq", "g", every_ms=MIN, gid="tenant-8", now_ms=T0 + MIN + 1)
    assert moved.queue == omniq.routing.publish_target("pq", "tenant-8", None)
    assert [s.queue for s in await omniq.schedules("pq") if s.name == "g"] == [moved.queue]
    assert await omniq.pause_schedule("pq", "p") is True
    assert await _fire(omniq, "pq", T0 + 2 * MIN + 2) == 1
    assert await omniq.unschedule("pq", "g") is True
    assert [s.name for s in await omniq.schedules("pq")] == ["p"]


async def test_partitioning_a_queue_with_schedules_is_refused(omniq):
    await omniq.schedule("q", "s", every_ms=MIN, now_ms=T0)
    with pytest.raises(PartitionError, match="schedules"):
        await omniq.partition_queue("q", 2)
    assert await omniq.unschedule("q", "s")
    assert await omniq.partition_queue("q", 2)


async def test_a_stale_logical_anchor_refuses_the_write(omniq, raw):
    await omniq.partition_queue("pq", 2)
    reply = await omniq.routing.runner.call(proto.SCHEDULE_SET, "{pq}:meta", [
        T0, "s", 0, "", 60_000, "UTC", "", "", "once", 0, 0, b"{}", 3, 30_000, 5_000, "", 0,
        0, 0, b"", T0 + MIN, T0])
    with pytest.raises(PartitionError):
        parse_ok("schedule_set", reply)
    assert not raw.exists(qk("pq", "schedules"))
