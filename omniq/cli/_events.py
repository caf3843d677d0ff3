"""``omniq events``, ``omniq wait`` and ``omniq eventlog``: the event streams from a shell.

Each is public calls only: ``AsyncOmniq.events``, ``AsyncOmniq.wait`` and
:class:`omniq.eventlog.EventLog`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omniq.cli import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, CliError
from omniq.cli._commands import _client
from omniq.cli._output import print_json

if TYPE_CHECKING:
    from omniq.eventlog import Sink
    from omniq.types import JobEvent


def _on_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` on SIGINT/SIGTERM (from the loop); returns the undo."""
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    for sig in sigs:
        loop.add_signal_handler(sig, callback)

    def remove() -> None:
        for sig in sigs:
            loop.remove_signal_handler(sig)

    return remove


# -- events --------------------------------------------------------------------------


def _since(text: str) -> str | int:
    """``--since``: digits other than "0" are epoch milliseconds, the rest a stream id
    (``$``, ``0``, ``<ms>-<seq>``), checked by the client."""
    return int(text) if text.isdigit() and text != "0" else text


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def event_line(ev: JobEvent) -> str:
    """One event on one line: time, queue, type, job id, then its fields."""
    parts = [_iso(ev.ms), ev.queue, ev.type, ev.job_id or "-"]
    for name in ("attempt", "gid", "due_ms", "lane", "state"):
        value = getattr(ev, name)
        if value is not None:
            parts.append(f"{name}={value}")
    if ev.progress_raw is not None:
        parts.append(f"progress={ev.progress_raw}")
    if ev.error is not None:
        parts.append("error=" + json.dumps(ev.error.split("\n", 1)[0], ensure_ascii=False))
    return "  ".join(parts)


def event_json(ev: JobEvent) -> str:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(ev)
    out["progress"] = ev.progress
    return json.dumps(out, ensure_ascii=False, default=str)


def cmd_events(args: argparse.Namespace) -> int:
    types = None if args.types is None else [t.strip() for t in args.types.split(",")
                                             if t.strip()]
    return asyncio.run(_events(args, _since(args.since), types))


async def _events(args: argparse.Namespace, since: str | int, types: list[str] | None) -> int:
    task = asyncio.current_task()
    assert task is not None
    async with _client(args) as client:
        stream = client.events(list(args.queues), since=since, types=types)

        def on_signal() -> None:
            task.cancel()

        remove = _on_signals(on_signal)
        seen = 0
        try:
            async with stream:
                async for ev in stream:
                    print(event_json(ev) if args.json else event_line(ev), flush=True)
                    seen += 1
                    if args.count is not None and seen >= args.count:
                        break
        except asyncio.CancelledError:  # Ctrl-C / SIGTERM: the tail ends normally
            task.uncancel()
        finally:
            remove()
    return EXIT_OK


# -- wait ----------------------------------------------------------------------------


def cmd_wait(args: argparse.Namespace) -> int:
    return asyncio.run(_wait(args))


async def _wait(args: argparse.Namespace) -> int:
    from omniq.errors import JobFailed

    async with _client(args) as client:
        try:
            result = await client.wait(args.queue, args.job_id, timeout=args.timeout)
        except JobFailed as exc:
            if args.json:
                print_json({"queue": args.queue, "job_id": args.job_id, "state": "failed",
                            "error": exc.error, "attempts": exc.attempts})
            raise CliError(str(exc), EXIT_FAILED) from None
        except TimeoutError:
            raise CliError(f"job {args.job_id} of {args.queue} did not finish within "
                           f"{args.timeout:g} s", EXIT_TIMEOUT) from None
    if args.json:
        print_json({"queue": args.queue, "job_id": args.job_id, "state": "completed",
                    "result": result})
    else:
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return EXIT_OK


# -- eventlog ------------------------------------------------------------------------


def _sink(args: argparse.Namespace) -> tuple[Sink, str]:
    from omniq.eventlog import PostgresSink, SQLiteSink

    if args.sqlite is not None:
        return SQLiteSink(args.sqlite, table=args.table), f"SQLite {args.sqlite}"
    try:
        return PostgresSink(args.postgres, table=args.table), "PostgreSQL"
    except ImportError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def cmd_eventlog(args: argparse.Namespace) -> int:
    sink, where = _sink(args)
    log = logging.getLogger("omniq")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return asyncio.run(_eventlog(args, sink, where))


async def _eventlog(args: argparse.Namespace, sink: Sink, where: str) -> int:
    from omniq.eventlog import EventLog

    log = logging.getLogger("omniq")
    async with _client(args) as client:
        await client.ping()  # a server that is not there: exit 3 now, not retries
        exporter = EventLog(client, list(args.queues), sink, group=args.group,
                            consumer=args.consumer, batch=args.batch)
        async with exporter:
            try:
                await sink.open()
            except Exception as exc:
                if not _database_error(exc):
                    raise
                raise CliError(f"cannot open the {where} table {args.table}: "
                               f"{str(exc).strip() or type(exc).__name__}",
                               EXIT_FAILED) from None
            if args.once:
                n = await exporter.run_once()
                print(f"copied {n} events of {', '.join(args.queues)} into {where} "
                      f"table {args.table}")
                return EXIT_OK
            log.info("omniq eventlog: copying the events of %s into %s table %s (group %s, "
                     "consumer %s); Ctrl-C stops", ", ".join(args.queues), where, args.table,
                     exporter.group, exporter.consumer)
            task = asyncio.current_task()
            assert task is not None
            signals = [0]

            def on_signal() -> None:
                signals[0] += 1
                if signals[0] > 1:
                    task.cancel()  # a second signal: stop now (the batch stays pending)
                exporter.stop()

            remove = _on_signals(on_signal)
            try:
                await exporter.run()
            except asyncio.CancelledError:
                task.uncancel()
            finally:
                remove()
            s = exporter.stats
            log.info("omniq eventlog: stopped (%d rows written, %d already there, %d trimmed "
                     "before they were copied)", s.written, s.duplicates, s.trimmed)
    return EXIT_OK


def _database_error(exc: BaseException) -> bool:
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return True
    with contextlib.suppress(ImportError):
        import psycopg

        return isinstance(exc, psycopg.Error)
    return False
