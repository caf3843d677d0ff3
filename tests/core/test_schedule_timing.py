"""When schedules fire: omniq._timing (occurrences, misfire plans) and the schedule ids,
pure functions (no server)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omniq import InvalidArgument
from omniq._protocol.schedules import schedule_jitter, schedule_job_id
from omniq._timing import FirePlan, Timing, plan_fire
from omniq.ids import id_time_ms

MIN = 60_000
T = 1_800_000_000_000  # 2027-01-15T08:00:00Z


def every(ms: int = MIN, **kw: int | None) -> Timing:
    return Timing(cron=None, every_ms=ms, **kw)  # type: ignore[arg-type]


def test_interval_occurrences():
    t = every(anchor_ms=T)
    assert (t.after(T - 1), t.after(T), t.after(T + 1)) == (T, T + MIN, T + MIN)
    assert t.recent(T + 3 * MIN + 5, T, 10) == [T + 3 * MIN, T + 2 * MIN, T + MIN, T]
    assert t.recent(T + 3 * MIN, T + MIN, 2) == [T + 3 * MIN, T + 2 * MIN]
    bounded = every(start_ms=T + MIN, end_ms=T + 3 * MIN, anchor_ms=0)
    assert bounded.after(0) == T + MIN  # the start anchors the interval
    assert bounded.after(T + 3 * MIN) is None
    assert bounded.recent(T + 10 * MIN, 0, 10) == [T + 3 * MIN, T + 2 * MIN, T + MIN]


def test_cron_aliases_and_errors():
    assert Timing(cron="@daily", every_ms=None).after(T) == T + 16 * 3_600_000
    assert Timing(cron="0  0 * *  *", every_ms=None).after(T) == T + 16 * 3_600_000
    with pytest.raises(InvalidArgument, match="alias"):
        Timing(cron="@reboot", every_ms=None)
    with pytest.raises(InvalidArgument, match="bad cron"):
        Timing(cron="* * * * * * *", every_ms=None)
    with pytest.raises(InvalidArgument, match="time zone"):
        Timing(cron="* * * * *", every_ms=None, tz="Nowhere/Land")
    with pytest.raises(InvalidArgument, match="not both"):
        Timing(cron="* * * * *", every_ms=MIN)


@pytest.mark.parametrize(("misfire", "now", "plan"), [
    # one due, on time: every policy publishes it
    ("once", T + 10, FirePlan([T], None, T + MIN)),
    ("skip", T + 10, FirePlan([T], None, T + MIN)),
    ("all", T + 10, FirePlan([T], None, T + MIN)),
    # one due, later than the grace (1 s here)
    ("once", T + 5_000, FirePlan([T], None, T + MIN)),
    ("skip", T + 5_000, FirePlan([], (T, T), T + MIN)),
    # four due
    ("once", T + 3 * MIN + 1, FirePlan([T + 3 * MIN], (T, T + 2 * MIN), T + 4 * MIN)),
    ("skip", T + 3 * MIN + 1, FirePlan([], (T, T + 3 * MIN), T + 4 * MIN)),
    ("all", T + 3 * MIN + 1, FirePlan([T, T + MIN, T + 2 * MIN, T + 3 * MIN], None,
                                      T + 4 * MIN)),
])
def test_misfire_policies(misfire: str, now: int, plan: FirePlan):
    assert plan_fire(every(anchor_ms=T), misfire, 1_000, T, now) == plan


def test_all_is_capped_and_not_due_is_none():
    t = every(anchor_ms=T)
    p = plan_fire(t, "all", 0, T, T + 1_000 * MIN, cap=3)
    assert p == FirePlan([T + 998 * MIN, T + 999 * MIN, T + 1000 * MIN], (T, T + 997 * MIN),
                         T + 1001 * MIN)
    assert plan_fire(t, "once", 0, T + MIN, T + MIN - 1) is None


ZONES = ["UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kolkata"]
EXPRESSIONS = ["0 * * * *", "30 2 * * *", "30 1 * * *", "*/20 * * * *", "0 */2 * * *",
               "15 1-3 * * *", "0 9 L * *", "0 0 * * SUN#1", "30 */7 * * * *", "0 0 29 2 *"]


def _forward(t: Timing, low: int, high: int) -> list[int]:
    out = []
    x = t.after(low - 1)
    while x is not None and x <= high:
        out.append(x)
        x = t.after(x)
    return out


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(EXPRESSIONS), st.sampled_from(ZONES),
       st.integers(1_700_000_000_000, 1_900_000_000_000), st.sampled_from([1, 2, 5, 101]))
def test_recent_agrees_with_the_forward_series(expr, zone, now, limit):
    """The due occurrences a plan uses are exactly the last ones of the forward series
    (checked over two days before `now`, DST changes included)."""
    t = Timing(cron=expr, every_ms=None, tz=zone)
    low = now - 2 * 86_400_000
    assert t.recent(now, low, limit) == _forward(t, low, now)[::-1][:limit]


def test_dst_rules_in_new_york():
    ny = ZoneInfo("America/New_York")

    def ms(*parts: int, fold: int = 0) -> int:
        return int(datetime(*parts, tzinfo=ny, fold=fold).timestamp() * 1000)

    daily = Timing(cron="30 2 * * *", every_ms=None, tz="America/New_York")
    assert daily.after(ms(2026, 3, 8, 0)) == ms(2026, 3, 8, 3, 0)  # the gap: right after
    once = Timing(cron="30 1 * * *", every_ms=None, tz="America/New_York")
    assert once.after(ms(2026, 11, 1, 1, 30)) == ms(2026, 11, 2, 1, 30)  # the overlap: once
    hourly = Timing(cron="0 * * * *", every_ms=None, tz="America/New_York")
    assert _forward(hourly, ms(2026, 11, 1, 0, 30), ms(2026, 11, 1, 2, 30)) == [
        ms(2026, 11, 1, 1), ms(2026, 11, 1, 1, fold=1), ms(2026, 11, 1, 2)]


def test_schedule_ids_and_jitter():
    a = schedule_job_id("q", "nightly", T)
    assert len(a) == 26
    assert id_time_ms(a) == T  # a ULID of the occurrence
    assert a[10:] == schedule_job_id("q", "nightly", T + MIN)[10:]  # one schedule, one suffix
    assert a != schedule_job_id("other", "nightly", T)  # queues never share an id
    assert a != schedule_job_id("q", "hourly", T)
    assert schedule_jitter("s", T, 0) == 0
    spread = {schedule_jitter("s", T + k * MIN, 5_000) for k in range(50)}
    assert min(spread) >= 0
    assert max(spread) <= 5_000
    assert len(spread) > 40
