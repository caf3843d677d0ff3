"""``omniq worker MODULE:HANDLER``: import a handler and run :class:`omniq.Worker` on it."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from omniq.cli import EXIT_OK, EXIT_USAGE, CliError
from omniq.cli._parser import load_settings

if TYPE_CHECKING:
    from omniq.aio.worker import Worker
    from omniq.settings import Settings

Routes = list[tuple[list[str], Callable[..., Any]]]


def load_handler(spec: str) -> Any:
    """The object named by ``module:attr`` (``attr`` may be dotted), with the current
    directory first on ``sys.path``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"handler must be MODULE:ATTRIBUTE, not {spec!r}", EXIT_USAGE)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise CliError(f"cannot import {module_name}: no module named {exc.name!r}",
                           EXIT_USAGE) from exc
        raise CliError(f"importing {module_name} failed: {type(exc).__name__}: {exc}",
                       EXIT_USAGE) from exc
    except Exception as exc:
        raise CliError(f"importing {module_name} failed: {type(exc).__name__}: {exc}",
                       EXIT_USAGE) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"module {module_name} has no attribute {attr!r}",
                           EXIT_USAGE) from None
    return obj


def routes_of(obj: Any, spec: str, queues: list[str]) -> Routes:
    """``[(queues, handler)]``: one route for a callable, one per queue for a mapping."""
    if isinstance(obj, Mapping):
        if not obj:
            raise CliError(f"{spec} is an empty mapping: no queue to consume", EXIT_USAGE)
        for queue, fn in obj.items():
            if not isinstance(queue, str) or not callable(fn):
                raise CliError(f"{spec} must map queue names to callables; {queue!r} maps "
                               f"to {type(fn).__name__}", EXIT_USAGE)
        selected = queues or list(obj)
        unknown = [q for q in selected if q not in obj]
        if unknown:
            raise CliError(f"{spec} has no handler for queue(s) {', '.join(unknown)}",
                           EXIT_USAGE)
        return [([q], obj[q]) for q in selected]
    if not callable(obj):
        raise CliError(f"{spec} is not callable (a {type(obj).__name__}): give a function "
                       "or a dict {queue: handler}", EXIT_USAGE)
    if not queues:
        raise CliError("give at least one -q QUEUE (or a dict {queue: handler})", EXIT_USAGE)
    return [(queues, obj)]


def hide_password(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _loop_factory(choice: str) -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    if choice == "asyncio":
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise CliError("--loop uvloop: uvloop is not installed (pip install uvloop)",
                           EXIT_USAGE) from None
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


def _configure_logging() -> None:
    log = logging.getLogger("omniq")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)  # the worker logs per-job lines only when verbose
    log.propagate = False


def cmd_worker(args: argparse.Namespace) -> int:
    from omniq import __version__

    settings = load_settings(
        args, queues=list(args.queues) or None, concurrency=args.concurrency,
        threads=args.threads, processes=args.processes, grace_period_s=args.grace_period,
        run_timeout_ms=args.run_timeout_ms, schedules=args.schedules,
        drain=True if args.drain else None, verbose=True if args.verbose else None)
    routes = routes_of(load_handler(args.handler), args.handler, list(settings.queues))
    factory, loop_name = _loop_factory(args.loop)
    _configure_logging()
    queues = [q for qs, _ in routes for q in qs]
    logging.getLogger("omniq").info(
        "omniq %s worker: %s on %s, queues %s, concurrency %d%s, loop %s%s",
        __version__, args.handler, hide_password(settings.url), ", ".join(queues),
        settings.concurrency, " per queue" if len(routes) > 1 else "", loop_name,
        "" if settings.schedules else ", schedules off")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_run_workers(settings, routes))


async def _run_workers(settings: Settings, routes: Routes) -> int:
    from omniq.aio.client import AsyncOmniq
    from omniq.aio.worker import Worker

    client = AsyncOmniq.from_settings(settings)
    try:
        await client.ping()
        workers = [Worker.from_settings(client, fn, settings, queues=qs) for qs, fn in routes]
        remove = _install_signals(workers)
        try:
            async with asyncio.TaskGroup() as tg:
                for w in workers:
                    tg.create_task(w.run())
        finally:
            remove()
        _log_summary(workers)
    finally:
        await client.aclose()
    return EXIT_OK


def _install_signals(workers: list[Worker]) -> Callable[[], None]:
    """SIGINT/SIGTERM: finish in-flight jobs (up to the grace period); a second: stop now."""
    log = logging.getLogger("omniq")
    seen = [0]

    def on_signal(sig: signal.Signals) -> None:
        seen[0] += 1
        log.info("omniq worker: %s received, %s", sig.name,
                 "stopping now" if seen[0] > 1 else "finishing in-flight jobs")
        for w in workers:
            w.request_stop()

    return on_stop_signals(on_signal)


def on_stop_signals(on_signal: Callable[[signal.Signals], None]) -> Callable[[], None]:
    """Call ``on_signal`` on SIGINT and SIGTERM (on the running loop); returns the function
    that removes the handlers."""
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGINT, signal.SIGTERM)
    for sig in sigs:
        loop.add_signal_handler(sig, on_signal, sig)

    def remove() -> None:
        for sig in sigs:
            loop.remove_signal_handler(sig)

    return remove


def _log_summary(workers: list[Worker]) -> None:
    total = {"completed": 0, "retried": 0, "failed": 0, "lost": 0}
    for w in workers:
        for k in total:
            total[k] += getattr(w.stats, k)
    logging.getLogger("omniq").info(
        "omniq worker: stopped (%s)", ", ".join(f"{v} {k}" for k, v in total.items()))
