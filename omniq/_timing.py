"""When a schedule fires: the occurrences of a cron expression or an interval, and which
of the due ones a fire publishes (pure: no I/O, no clock of its own).

Times are epoch milliseconds on the server's clock; the caller passes "now" (read from
the server by ``schedule_read.lua``), so the clocks of the workers never matter.

* **Interval** schedules fire at ``anchor + k * every_ms`` (k = 0, 1, ...), the anchor
  being ``start_ms`` when given, else the time the schedule was created.
* **Cron** schedules fire at the matches of a cron expression in the time zone ``tz``,
  evaluated by `cronsim <https://pypi.org/project/cronsim/>`_ (the ``cron`` extra): 5
  fields, or 6 with seconds first, ranges, lists, steps, names, ``L``, ``LW``, ``5L``,
  ``MON#2``, plus the ``@hourly`` family of aliases. Across daylight-saving changes it
  follows Debian's cron: a job at a specific time that falls in the skipped hour runs
  right after the change, one in the repeated hour runs once (the first time); jobs
  that run every hour or more often run on real time (no hour skipped or doubled).

Both honour ``start_ms`` (no occurrence before it) and ``end_ms`` (none after it).
:func:`plan_fire` applies the misfire policy to the occurrences that are due.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from omniq._limits import MAX_SCHEDULE_CATCHUP
from omniq.errors import InvalidArgument

__all__ = ["CRON_HINT", "MISFIRE_POLICIES", "FirePlan", "Timing", "check_tz", "plan_fire"]

CRON_HINT = "cron schedules need cronsim: pip install 'omniq-aio[cron]'"

MISFIRE_POLICIES = ("once", "skip", "all")

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_LATEST = 253_402_300_799_000  # 9999-12-31T23:59:59Z: the last time datetime holds


def _cronsim() -> Any:
    try:
        import cronsim
    except ImportError:
        raise ImportError(CRON_HINT) from None
    return cronsim


def check_tz(tz: object) -> tzinfo:
    """The time zone of an IANA name (``"Europe/Paris"``, ``"UTC"``).

    :raises InvalidArgument: not a str, or no such zone on this machine."""
    if not isinstance(tz, str) or not tz or len(tz) > 64:
        raise InvalidArgument(f"tz must be an IANA time zone name, not {tz!r}")
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone {tz!r} (an IANA name, such as "
                              f"'Europe/Paris' or 'UTC')") from None


def _to_dt(ms: int, zone: tzinfo) -> datetime:
    return (_EPOCH + ms * _MS).astimezone(zone)


def _to_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // _MS


class Timing:
    """The occurrence times of one schedule (see the module docstring).

    :raises InvalidArgument: a bad cron expression or time zone, both or neither of
        ``cron`` and ``every_ms``. :raises ImportError: a cron expression without cronsim.
    """

    __slots__ = ("_expr", "_zone", "anchor_ms", "cron", "end_ms", "every_ms", "start_ms", "tz")

    def __init__(
        self, *, cron: str | None, every_ms: int | None, tz: str = "UTC",
        start_ms: int | None = None, end_ms: int | None = None, anchor_ms: int = 0,
    ) -> None:
        if (cron is None) == (every_ms is None):
            raise InvalidArgument("give either cron= or every_ms=, not both or neither")
        self.cron = cron
        self.every_ms = every_ms
        self.tz = tz
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.anchor_ms = start_ms if start_ms is not None else anchor_ms
        self._zone = check_tz(tz)
        self._expr = ""
        if cron is not None:
            if not isinstance(cron, str) or not cron.strip():
                raise InvalidArgument(f"cron must be a cron expression, not {cron!r}")
            expr = " ".join(cron.split())
            expr = _ALIASES.get(expr.lower(), expr)
            if expr.startswith("@"):
                raise InvalidArgument(
                    f"unknown cron alias {cron!r}: use one of {', '.join(_ALIASES)}")
            cronsim = _cronsim()
            try:
                cronsim.CronSim(expr, _to_dt(0, self._zone))
            except cronsim.CronSimError as exc:
                raise InvalidArgument(f"bad cron expression {cron!r}: {exc}") from None
            self._expr = expr

    # -- one step --------------------------------------------------------------------

    def _cron_after(self, t: int) -> int | None:
        cronsim = _cronsim()
        try:
            return _to_ms(next(cronsim.CronSim(self._expr, _to_dt(t, self._zone))))
        except StopIteration:  # no match in the 50 years after t
            return None

    def after(self, t: int) -> int | None:
        """The first occurrence later than ``t`` (None: there is none, end_ms passed)."""
        if self.start_ms is not None and t < self.start_ms:
            t = self.start_ms - 1
        if self.every_ms is not None:
            k = (t - self.anchor_ms) // self.every_ms + 1 if t >= self.anchor_ms else 0
            found: int | None = self.anchor_ms + k * self.every_ms
        else:
            found = self._cron_after(t) if t < _LATEST else None
        if found is None or (self.end_ms is not None and found > self.end_ms):
            return None
        return found

    def at_or_after(self, t: int) -> int | None:
        """The first occurrence at ``t`` or later."""
        return self.after(t - 1)

    def recent(self, now: int, floor: int, limit: int) -> list[int]:
        """Up to ``limit`` occurrences in ``[floor, now]``, the latest first."""
        low = floor if self.start_ms is None else max(floor, self.start_ms)
        high = now if self.end_ms is None else min(now, self.end_ms)
        if high < low or limit < 1:
            return []
        if self.every_ms is not None:
            if high < self.anchor_ms:
                return []
            last = self.anchor_ms + (high - self.anchor_ms) // self.every_ms * self.every_ms
            out: list[int] = []
            t = last
            while t >= low and len(out) < limit:
                out.append(t)
                t -= self.every_ms
            return out
        return self._cron_recent(low, high, limit)

    def _cron_recent(self, low: int, high: int, limit: int) -> list[int]:
        # Forward iteration only: cronsim's reverse iteration can disagree with its
        # forward series around a daylight-saving change. The window before `high` grows
        # until it holds `limit` occurrences (or reaches `low`), so a long outage costs a
        # few short iterations, not one step per missed occurrence.
        cronsim = _cronsim()
        window = 60_000 * (limit + 1)
        while True:
            start = max(low - 1, high - window)
            found: list[int] = []
            try:
                for dt in cronsim.CronSim(self._expr, _to_dt(start, self._zone)):
                    t = _to_ms(dt)
                    if t > high:
                        break
                    found.append(t)
            except StopIteration:  # (no match in 50 years)
                pass
            if len(found) >= limit or start == low - 1:
                return found[::-1][:limit]
            window *= 4


class FirePlan(NamedTuple):
    """What one fire of a schedule does: publish the occurrences ``times`` (ascending),
    drop the occurrences from ``skipped[0]`` to ``skipped[1]`` (None: none dropped), and
    store ``next_ms`` as the next fire time (None: the pattern has no occurrence left)."""

    times: list[int]
    skipped: tuple[int, int] | None
    next_ms: int | None


def plan_fire(
    timing: Timing, misfire: str, grace_ms: int, next_ms: int, now: int,
    cap: int = MAX_SCHEDULE_CATCHUP,
) -> FirePlan | None:
    """The fire of a schedule whose stored next fire time is ``next_ms``, at ``now`` (None:
    nothing is due). The due occurrences are those in ``[next_ms, now]``:

    * ``"once"``: the latest is published, the older ones (if any) are skipped;
    * ``"skip"``: the latest is published only when it is the only one due and at most
      ``grace_ms`` late; otherwise every due occurrence is skipped;
    * ``"all"``: every due occurrence is published, at most ``cap`` of them (the latest;
      older ones are skipped).
    """
    if next_ms > now:
        return None
    due = timing.recent(now, next_ms, cap + 1 if misfire == "all" else 2)
    new_next = timing.after(now)
    if not due:  # the stored time is not an occurrence of this timing: move on
        return FirePlan([], None, new_next)
    if misfire == "all":
        times = sorted(due[:cap])
        skipped_to = due[cap] if len(due) > cap else None
    elif misfire == "once" or (len(due) == 1 and now - due[0] <= grace_ms):
        times = [due[0]]
        skipped_to = due[1] if len(due) > 1 else None
    else:  # skip
        times = []
        skipped_to = due[0]
    skipped = None if skipped_to is None else (min(next_ms, skipped_to), skipped_to)
    return FirePlan(times, skipped, new_next)
