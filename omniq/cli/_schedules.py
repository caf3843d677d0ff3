"""``omniq schedules``, ``omniq schedule ACTION`` and ``omniq scheduler``: the schedules of
a queue from a shell (docs/cli.md).

Each is public calls only: ``AsyncOmniq.schedules``, ``get_schedule``, ``schedule``,
``unschedule``, ``pause_schedule``, ``resume_schedule``, ``events``, and an
:class:`omniq.Scheduler`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from omniq.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from omniq.cli._commands import _client, _indent, parse_payload
from omniq.cli._events import _iso
from omniq.cli._output import print_json, relative, table
from omniq.cli._parser import job_options, load_settings
from omniq.cli._worker import on_stop_signals

if TYPE_CHECKING:
    from omniq.aio._events import EventStream
    from omniq.aio.client import AsyncOmniq
    from omniq.aio.scheduler import Scheduler
    from omniq.settings import Settings
    from omniq.types import ScheduleInfo

# the options of ``schedule add`` that are passed only when given (the client's defaults)
_SCHEDULE_OPTIONS = ("tz", "start_ms", "end_ms", "misfire", "misfire_grace_ms", "jitter_ms")


@contextlib.contextmanager
def _cron_hint() -> Iterator[None]:
    """A cron schedule evaluated without cronsim: the client's one-line install hint, exit
    2 (as ``--loop uvloop`` without uvloop)."""
    try:
        yield
    except ImportError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _run(args: argparse.Namespace,
         go: Callable[[AsyncOmniq], Coroutine[Any, Any, int]]) -> int:
    async def main() -> int:
        async with _client(args) as client:
            with _cron_hint():
                return await go(client)

    return asyncio.run(main())


# -- output --------------------------------------------------------------------------


def pattern(s: ScheduleInfo) -> str:
    """``0 8 * * 1-5 (Europe/Paris)`` or ``every 60000 ms``."""
    return f"{s.cron} ({s.tz})" if s.cron is not None else f"every {s.every_ms} ms"


def next_fire(s: ScheduleInfo) -> str:
    """The next fire time (ISO-8601, UTC), or ``paused`` / ``ended``."""
    if s.paused:
        return "paused"
    if s.next_fire_ms is None:
        return "ended"
    return _iso(s.next_fire_ms)


def schedule_json(s: ScheduleInfo) -> dict[str, Any]:
    """Every field of the schedule, with ``payload`` decoded and ``ended``."""
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(s)
    out["payload"] = s.payload
    out["ended"] = s.ended
    return out


def _when(ms: int | None) -> str:
    return "-" if ms is None else f"{ms} ({_iso(ms)}, {relative(ms)})"


def _what(queue: str, name: str) -> str:
    return f"schedule {name} of {queue}"


# -- schedules QUEUE -----------------------------------------------------------------


def cmd_schedules(args: argparse.Namespace) -> int:
    async def go(client: AsyncOmniq) -> int:
        found = await client.schedules(args.queue)
        if args.json:
            print_json({"queue": args.queue, "schedules": [schedule_json(s) for s in found]})
        elif not found:
            print(f"{args.queue} has no schedules")
        else:
            table(("NAME", "PATTERN", "NEXT", "LAST", "FIRES", "MISFIRE"), [
                (s.name, pattern(s), next_fire(s),
                 None if s.last_fire_ms is None else _iso(s.last_fire_ms), s.fires,
                 s.misfire)
                for s in found])
        return EXIT_OK

    return _run(args, go)


# -- schedule add / show / pause / resume / rm ---------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    payload = None if args.payload is None else parse_payload(args.payload, "--payload")
    options = {k: getattr(args, k) for k in _SCHEDULE_OPTIONS if getattr(args, k) is not None}
    options.update(job_options(args))

    async def go(client: AsyncOmniq) -> int:
        info = await client.schedule(args.queue, args.name, cron=args.cron,
                                     every_ms=args.every_ms, payload=payload, **options)
        if args.json:
            print_json(schedule_json(info))
        else:
            when = next_fire(info)
            if info.next_fire_ms is not None and not info.paused:
                when += f" ({relative(info.next_fire_ms)})"
            print(f"{_what(args.queue, args.name)}: {pattern(info)}, next {when}")
        return EXIT_OK

    return _run(args, go)


def cmd_show(args: argparse.Namespace) -> int:
    async def go(client: AsyncOmniq) -> int:
        s = await client.get_schedule(args.queue, args.name)
        if s is None:
            raise _not_found(args)
        if args.json:
            print_json(schedule_json(s))
            return EXIT_OK
        state = "paused" if s.paused else "ended" if s.ended else "active"
        rows: list[tuple[str, object]] = [
            ("name", s.name), ("queue", s.queue), ("pattern", pattern(s)), ("state", state),
            ("next_fire_ms", _when(s.next_fire_ms)), ("start_ms", _when(s.start_ms)),
            ("end_ms", _when(s.end_ms)), ("misfire", s.misfire),
            ("misfire_grace_ms", s.misfire_grace_ms), ("jitter_ms", s.jitter_ms),
            ("fires", s.fires), ("last_fire_ms", _when(s.last_fire_ms)),
            ("last_job_id", s.last_job_id), ("fired_ms", _when(s.fired_ms)),
            ("misfired_ms", _when(s.misfired_ms)), ("created_ms", _when(s.created_ms)),
            ("updated_ms", _when(s.updated_ms)), ("rev", s.rev),
        ]
        for key, value in rows:
            print(f"{key + ':':<18} {'-' if value in (None, '') else value}")
        for key, value in s.options.items():  # the jobs' publish options not at defaults
            print(f"{key + ':':<18} {value}")
        print("payload:")
        print(_indent(json.dumps(s.payload, indent=2, ensure_ascii=False, default=str)))
        return EXIT_OK

    return _run(args, go)


def _not_found(args: argparse.Namespace) -> CliError:
    return CliError(f"{args.queue} has no schedule {args.name}", EXIT_FAILED)


def cmd_pause(args: argparse.Namespace) -> int:
    async def go(client: AsyncOmniq) -> int:
        from omniq.errors import ScheduleNotFound

        try:
            was_running = await client.pause_schedule(args.queue, args.name)
        except ScheduleNotFound:
            raise _not_found(args) from None
        if args.json:
            print_json({"queue": args.queue, "name": args.name, "paused": was_running})
        else:
            print(f"paused {_what(args.queue, args.name)}" if was_running
                  else f"{_what(args.queue, args.name)} was already paused")
        return EXIT_OK

    return _run(args, go)


def cmd_resume(args: argparse.Namespace) -> int:
    async def go(client: AsyncOmniq) -> int:
        from omniq.errors import ScheduleNotFound

        try:
            was_paused = await client.resume_schedule(args.queue, args.name)
        except ScheduleNotFound:
            raise _not_found(args) from None
        info = await client.get_schedule(args.queue, args.name)
        if args.json:
            print_json({"queue": args.queue, "name": args.name, "resumed": was_paused,
                        "next_fire_ms": None if info is None else info.next_fire_ms})
        elif not was_paused:
            print(f"{_what(args.queue, args.name)} was not paused")
        else:
            when = "-" if info is None else next_fire(info)
            print(f"resumed {_what(args.queue, args.name)}, next {when}")
        return EXIT_OK

    return _run(args, go)


def cmd_rm(args: argparse.Namespace) -> int:
    async def go(client: AsyncOmniq) -> int:
        had = await client.unschedule(args.queue, args.name)
        if args.json:
            print_json({"queue": args.queue, "name": args.name, "removed": had})
        else:
            print(f"removed {_what(args.queue, args.name)}" if had
                  else f"{args.queue} had no schedule {args.name}")
        return EXIT_OK

    return _run(args, go)


# -- scheduler -----------------------------------------------------------------------


def cmd_scheduler(args: argparse.Namespace) -> int:
    from omniq import __version__
    from omniq.cli._worker import _configure_logging, hide_password

    settings = load_settings(args, queues=list(args.queues) or None)
    queues = list(settings.queues)
    if not queues:
        raise CliError("give at least one -q QUEUE", EXIT_USAGE)
    _configure_logging()
    logging.getLogger("omniq").info(
        "omniq %s scheduler: %s, queues %s, interval %gs", __version__,
        hide_password(settings.url), ", ".join(queues), args.interval_s)
    with asyncio.Runner() as runner:
        return runner.run(_run_scheduler(settings, queues, args.interval_s))


async def _run_scheduler(settings: Settings, queues: list[str], interval_s: float) -> int:
    from omniq.aio.client import AsyncOmniq
    from omniq.aio.scheduler import Scheduler

    log = logging.getLogger("omniq")
    client = AsyncOmniq.from_settings(settings)
    try:
        await client.ping()
        # (it also settles what the official consumers' acks leave: docs/workflows.md)
        scheduler = Scheduler(client, queues, interval_s=interval_s, dependencies=True)
        # the reader's position is fixed before the first pass: no fire goes unlogged
        async with client.events(queues, types=["fired"]) as stream:
            tail = asyncio.create_task(_log_fires(stream), name="omniq-scheduler-log")
            run = asyncio.create_task(scheduler.run(), name="omniq-scheduler")
            remove = _install_signals(scheduler, run)
            try:
                with contextlib.suppress(asyncio.CancelledError):  # a second signal
                    await run
            finally:
                remove()
                run.cancel()
                tail.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tail
        log.info("omniq scheduler: stopped (jobs published: %d)", scheduler.published)
    finally:
        await client.aclose()
    return EXIT_OK


async def _log_fires(stream: EventStream) -> None:
    """A line per job the queues' schedules publish (by this scheduler or any other)."""
    from omniq.errors import OmniqError

    log = logging.getLogger("omniq")
    try:
        async for ev in stream:
            occurrence = "-" if ev.occurrence_ms is None else _iso(ev.occurrence_ms)
            log.info("omniq scheduler: %s: schedule %s fired job %s (occurrence %s)",
                     ev.logical_queue, ev.schedule, ev.job_id, occurrence)
    except OmniqError as exc:  # the scheduler goes on; only its log lines stop
        log.warning("omniq scheduler: cannot follow the fired events any more: %s", exc)


def _install_signals(scheduler: Scheduler, run: asyncio.Task[None]) -> Callable[[], None]:
    """SIGINT/SIGTERM: stop after the pass in progress; a second one: stop now."""
    log = logging.getLogger("omniq")
    seen = [0]

    def on_signal(sig: signal.Signals) -> None:
        seen[0] += 1
        if seen[0] > 1:
            log.info("omniq scheduler: %s received, stopping now", sig.name)
            run.cancel()
            return
        log.info("omniq scheduler: %s received, stopping after the pass in progress",
                 sig.name)
        scheduler.request_stop()

    return on_stop_signals(on_signal)
