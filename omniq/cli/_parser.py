"""The argument parser of the ``omniq`` command (standard library argparse)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from omniq._limits import DEFAULT_URL

if TYPE_CHECKING:
    from omniq.settings import Settings

__all__ = ["DEFAULT_URL", "build_parser"]

_URL_ENV = "OMNIQ_REDIS_URL"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error on one line (exit 2), pointing at ``--help``."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """A command's function, imported when it runs (not at ``--help``)."""

    def run(args: argparse.Namespace) -> int:
        module = importlib.import_module(f"omniq.cli._{name.split('.')[0]}")
        fn: Callable[[argparse.Namespace], int] = getattr(module, name.split(".")[1])
        return fn(args)

    return run


def _number_type(
    parse: Callable[[str], float], ok: Callable[[float], bool], rule: str
) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses with ``parse`` and refuses values failing ``ok``."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            kind = "an integer" if parse is int else "a number"
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}: {text!r}")
        return value

    return convert


_positive_int = _number_type(int, lambda v: v >= 1, "must be at least 1")
_non_negative_int = _number_type(int, lambda v: v >= 0, "must not be negative")
_positive_float = _number_type(
    float, lambda v: 0 < v < float("inf"), "must be a positive number")


def _connection_options(p: argparse.ArgumentParser, default: Any) -> None:
    """``--url`` and ``--debug``, accepted before and after the command name (the
    command's copies default to SUPPRESS so they never hide a value given before it)."""
    group = p.add_argument_group("connection and output")
    group.add_argument(
        "--url", default=default,
        help=f"server URL (default: ${_URL_ENV}, else {DEFAULT_URL}); "
        "redis+cluster://host:port for a Redis Cluster")
    group.add_argument("--config", default=default, metavar="FILE",
                       help="a settings file (.toml, .yaml): connection and worker options; "
                       "a flag given here wins over OMNIQ_* variables, which win over it")
    group.add_argument("--debug", action="store_true", default=default,
                       help="show the traceback of an error")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)
    return common


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add(sub: Any, name: str, common: argparse.ArgumentParser, help_text: str,
         example: str, run: str, usage: str | None = None) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name, parents=[common], help=help_text, description=help_text, usage=usage,
        epilog=f"example:\n{example}", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=_command(run), command=name)
    return p


def _queue_and_ids(p: argparse.ArgumentParser) -> None:
    # one positional list: argparse cannot give ``QUEUE`` and ``ID*`` their values when an
    # option sits between them (``remove q --lane failed ID``); split_targets() splits it
    p.add_argument("targets", nargs="+", metavar="QUEUE [ID ...]",
                   help="the queue, then the job ids")


JOB_OPTIONS = ("gid", "group_limit", "max_attempts", "timeout_ms", "backoff_ms", "dedup_key",
               "dedup_ttl_ms", "dedup", "expire_in_ms", "run_timeout_ms")
"""The publish options that ``_job_options`` adds as flags, by their keyword names."""


def _job_options(p: argparse.ArgumentParser, dedup_key_help: str) -> None:
    """The flags of a job's publish options (``omniq publish``, ``omniq schedule add``);
    ``job_options(args)`` collects the given ones."""
    p.add_argument("--gid", default=None, help="group id")
    p.add_argument("--group-limit", type=_non_negative_int, default=None, metavar="N",
                   help="jobs of the group running at once")
    p.add_argument("--max-attempts", type=_positive_int, default=None, metavar="N")
    p.add_argument("--timeout-ms", type=_positive_int, default=None, metavar="N")
    p.add_argument("--backoff-ms", type=_non_negative_int, default=None, metavar="N")
    p.add_argument("--dedup-key", default=None, metavar="KEY", help=dedup_key_help)
    p.add_argument("--dedup-ttl-ms", type=_non_negative_int, default=None, metavar="N",
                   help="keep the key N ms after that job finished")
    p.add_argument("--replace", dest="dedup", action="store_const", const="replace",
                   default=None, help="a job holding the key that still waits takes this "
                   "payload (debounce)")
    p.add_argument("--expire-in-ms", type=_non_negative_int, default=None, metavar="N",
                   help="fail the job (error 'expired') if no worker started it within N ms")
    p.add_argument("--run-timeout-ms", type=_non_negative_int, default=None, metavar="N",
                   help="fail an attempt that runs longer than N ms (retried as usual)")


def job_options(args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """The publish options given as flags (``JOB_OPTIONS`` and ``extra``), by keyword."""
    return {k: getattr(args, k) for k in (*JOB_OPTIONS, *extra) if getattr(args, k) is not None}


def split_targets(args: argparse.Namespace) -> None:
    """``args.targets`` -> ``args.queue`` and ``args.job_ids``."""
    args.queue, args.job_ids = args.targets[0], list(args.targets[1:])


def load_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The settings of a command: its flags (``--url`` and ``overrides``; None: not given)
    > ``OMNIQ_*`` environment (``$OMNIQ_REDIS_URL`` included) > ``--config FILE`` >
    defaults."""
    from omniq.settings import Settings

    return Settings.load(file=getattr(args, "config", None),
                         overrides={"url": getattr(args, "url", None), **overrides})


def build_parser() -> argparse.ArgumentParser:
    from omniq import __version__

    parser = _Parser(
        prog="omniq",
        description="Run workers and inspect or administer OmniQ queues.",
        epilog="example:\n  omniq server &\n  omniq worker examples.cli_handler:handler -q emails"
        "\n  omniq stats\n\nRun `omniq COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"omniq {__version__}")
    _connection_options(parser, None)
    parser.set_defaults(run=None, command="")
    common = _common()
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    p = _add(sub, "worker", common, "run a worker with a handler until SIGTERM/SIGINT",
             "  omniq worker examples.cli_handler:handler -q emails --concurrency 10",
             "worker.cmd_worker")
    p.add_argument("handler", metavar="MODULE:HANDLER",
                   help="the handler (async def or def), or a dict {queue: handler}; the "
                   "module is imported with the current directory on sys.path")
    p.add_argument("-q", "--queue", dest="queues", action="append", default=[],
                   metavar="QUEUE", help="a queue to consume (repeat: priority order)")
    p.add_argument("--concurrency", type=_positive_int, default=None,
                   help="jobs in flight at once (default 1)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="threads for a def handler (default: the concurrency)")
    p.add_argument("--processes", type=_positive_int, default=None,
                   help="run a def handler in this many processes")
    p.add_argument("--drain", action="store_true",
                   help="exit once nothing is ready and nothing is in flight")
    p.add_argument("--verbose", action="store_true", help="log every job on stderr")
    p.add_argument("--grace-period", type=_positive_float, default=None, metavar="S",
                   help="seconds in-flight jobs get to finish on SIGTERM (default 30)")
    p.add_argument("--run-timeout-ms", type=_positive_int, default=None, metavar="MS",
                   help="stop a handler running longer than this (default: none; a job's "
                   "own run_timeout_ms wins)")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                   help="event loop (auto: uvloop when installed)")
    p.add_argument("--no-schedules", dest="schedules", action="store_false", default=None,
                   help="do not fire the schedules of the queues (leave them to other "
                   "workers or `omniq scheduler`)")

    p = _add(sub, "stats", common, "show the lanes of every queue (or the given ones)",
             "  omniq stats\n  omniq stats emails --watch 2", "commands.cmd_stats")
    p.add_argument("queues", nargs="*", metavar="QUEUE",
                   help="queues to show (default: every queue on the server)")
    p.add_argument("--watch", type=_positive_float, default=None, metavar="S",
                   help="refresh every S seconds until Ctrl-C")
    _json_flag(p)

    p = _add(sub, "jobs", common, "list one page of a lane of a queue",
             "  omniq jobs emails --lane failed --limit 50", "commands.cmd_jobs")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--lane", default="wait",
                   help="wait, active, delayed, failed, completed or waiting_deps (default wait)")
    p.add_argument("--limit", type=_positive_int, default=25, help="page size (default 25)")
    p.add_argument("--cursor", default=None, help="the cursor printed by the previous page")
    _json_flag(p)

    p = _add(sub, "job", common, "show one job's whole record, payload and result",
             "  omniq job emails 01J9Z6V4Q3R8T5X2M7N1K0PABC", "commands.cmd_job")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("job_id", metavar="ID")
    _json_flag(p)

    p = _add(sub, "flow", common, "show a job and the jobs it depends on, recursively, as "
             "a tree", "  omniq flow reports 01J9Z6V4Q3R8T5X2M7N1K0PABC\n"
             "  omniq flow reports 01J9Z6V4Q3R8T5X2M7N1K0PABC --json", "flow.cmd_flow")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--max-nodes", type=_positive_int, default=10_000, metavar="N",
                   help="show at most N jobs (default 10000)")
    _json_flag(p)

    p = _add(sub, "retry", common, "move failed jobs back to their lane",
             "  omniq retry emails 01J9Z6V4Q3R8T5X2M7N1K0PABC\n"
             "  omniq retry emails --all-failed --yes", "commands.cmd_retry",
             usage="omniq retry [options] QUEUE (ID ... | --all-failed)")
    _queue_and_ids(p)
    p.add_argument("--all-failed", action="store_true", help="every failed job of the queue")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _json_flag(p)

    p = _add(sub, "remove", common, "delete jobs of a lane (never active ones)",
             "  omniq remove emails --lane failed 01J9Z6V4Q3R8T5X2M7N1K0PABC\n"
             "  omniq remove emails --lane completed --all --yes", "commands.cmd_remove",
             usage="omniq remove [options] QUEUE --lane LANE (ID ... | --all)")
    _queue_and_ids(p)
    p.add_argument("--lane", required=True,
                   help="wait, delayed, failed, completed, waiting_deps or gwait "
                        "(--all: not gwait)")
    p.add_argument("--all", action="store_true", help="every job of the lane")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _json_flag(p)

    p = _add(sub, "cancel", common, "cancel jobs: waiting or delayed ones never run, running "
             "ones are stopped by their worker", "  omniq cancel emails 01J9Z6V4Q3R8T5X2M7N1K0PABC",
             "commands.cmd_cancel", usage="omniq cancel [options] QUEUE ID [ID ...]")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("job_ids", nargs="+", metavar="ID")
    _json_flag(p)

    p = _add(sub, "pause", common, "stop new reservations on a queue",
             "  omniq pause emails", "commands.cmd_pause")
    p.add_argument("queue", metavar="QUEUE")
    p = _add(sub, "resume", common, "allow reservations on a paused queue again",
             "  omniq resume emails", "commands.cmd_resume")
    p.add_argument("queue", metavar="QUEUE")

    p = _add(sub, "publish", common, "publish one job, or one job per line of a JSONL file",
             "  omniq publish emails '{\"to\": \"a@example.com\"}' --delay-ms 5000\n"
             "  omniq publish emails --file jobs.jsonl\n"
             "  cat jobs.jsonl | omniq publish emails --file -", "commands.cmd_publish")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("payload", nargs="?", metavar="JSON",
                   help="the payload: a JSON object or array")
    p.add_argument("--file", default=None, metavar="F",
                   help="a JSONL file ('-': standard input): one payload per line, or an "
                   'object with a "payload" key and job options')
    p.add_argument("--delay-ms", type=_non_negative_int, default=None, metavar="N")
    p.add_argument("--job-id", default=None, metavar="ID",
                   help="the job's id (one job only; default: a new ULID)")
    _job_options(p, "publish once: while a job with this key is waiting, delayed or "
                 "running, print its id instead (one job only)")
    _json_flag(p)

    p = _add(sub, "events", common, "print the lifecycle events of queues as they happen",
             "  omniq events emails\n  omniq events emails orders --since 0 --types failed,"
             "retry_scheduled --json", "events.cmd_events")
    p.add_argument("queues", nargs="+", metavar="QUEUE",
                   help="queues to follow (a partitioned queue: every partition)")
    p.add_argument("--since", default="$", metavar="ID|MS|0|$",
                   help="$ (default): new events only; 0: every event kept; a stream id: "
                   "the events after it; epoch milliseconds: events at or after then")
    p.add_argument("--types", default=None, metavar="T,T",
                   help="only these event types (comma-separated: completed,failed ...)")
    p.add_argument("--count", type=_positive_int, default=None, metavar="N",
                   help="exit after N events (default: until Ctrl-C)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = _add(sub, "wait", common, "wait for a job to finish and print its result",
             "  omniq wait emails 01J9Z6V4Q3R8T5X2M7N1K0PABC --timeout 30",
             "events.cmd_wait")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--timeout", type=_positive_float, default=None, metavar="S",
                   help="give up after S seconds (exit 124; default: wait for ever)")
    _json_flag(p)

    p = _add(sub, "eventlog", common,
             "copy the events of queues into an SQLite or PostgreSQL table until Ctrl-C",
             "  omniq eventlog emails orders --sqlite events.db\n"
             "  omniq eventlog emails --postgres postgresql://app@db.internal/app",
             "events.cmd_eventlog",
             usage="omniq eventlog [options] QUEUE ... (--sqlite PATH | --postgres DSN)")
    p.add_argument("queues", nargs="+", metavar="QUEUE",
                   help="queues to copy (a partitioned queue: every partition)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--sqlite", default=None, metavar="PATH", help="an SQLite file")
    target.add_argument("--postgres", default=None, metavar="DSN",
                        help="a PostgreSQL database (needs omniq-aio[postgres])")
    p.add_argument("--table", default="omniq_events",
                   help="the table (default omniq_events; PostgreSQL: schema.table too)")
    p.add_argument("--group", default="omniq-eventlog",
                   help="the Redis consumer group (default omniq-eventlog)")
    p.add_argument("--consumer", default=None,
                   help="this reader's name in the group (default: the host name)")
    p.add_argument("--batch", type=_positive_int, default=500,
                   help="entries per read and transaction (default 500)")
    p.add_argument("--once", action="store_true",
                   help="copy what the streams hold now, then exit")

    p = _add(sub, "limit", common, "show, set or clear the rate limits of a queue",
             "  omniq limit emails 100 60000       (100 jobs per minute, the whole queue)\n"
             "  omniq limit emails --gid acme 5 1000\n"
             "  omniq limit emails --gid acme --clear\n"
             "  omniq limit emails                 (every limit of the queue)",
             "limit.cmd_limit",
             usage="omniq limit [options] QUEUE [--gid G] [MAX PER_MS | --clear]")
    # one positional list, as for retry/remove: QUEUE then MAX PER_MS around --gid
    p.add_argument("targets", nargs="+", metavar="QUEUE [MAX PER_MS]",
                   help="the queue, then at most MAX reservations per PER_MS milliseconds "
                   "(a sliding window; omit both to show the limits)")
    p.add_argument("--gid", default=None, help="the limit of this group (default: the "
                   "queue-wide limit)")
    p.add_argument("--clear", action="store_true", help="remove the limit")
    _json_flag(p)

    _schedule_commands(sub, common)

    p = _add(sub, "server", common, "run an embedded Redis/Valkey server in the foreground",
             "  omniq server --port 6379 --dir ./data --appendonly yes", "server.cmd_server")
    p.add_argument("--port", type=_positive_int, default=None,
                   help="port (default: a free one)")
    p.add_argument("--dir", default=None, help="data directory (default: a temporary one)")
    p.add_argument("--appendonly", choices=("yes", "no"), default="no",
                   help="AOF persistence (default no)")
    p.add_argument("--kind", choices=("redis", "valkey"), default=None,
                   help="server binary to use (default: the first found)")
    return parser


def _schedule_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """``omniq schedules``, ``omniq schedule ACTION`` and ``omniq scheduler``."""
    p = _add(sub, "schedules", common, "list the schedules of a queue",
             "  omniq schedules emails\n  omniq schedules emails --json",
             "schedules.cmd_schedules")
    p.add_argument("queue", metavar="QUEUE")
    _json_flag(p)

    help_text = "create, replace, show, pause, resume or remove a schedule of a queue"
    group: argparse.ArgumentParser = sub.add_parser(
        "schedule", help=help_text, description=help_text,
        epilog="example:\n  omniq schedule add emails digest --cron '0 8 * * 1-5' "
        "--tz Europe/Paris --payload '{\"kind\": \"digest\"}'\n"
        "  omniq schedule pause emails digest\n\n"
        "Run `omniq schedule ACTION --help` for an action's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    group.set_defaults(run=None, command="schedule")
    actions = group.add_subparsers(title="actions", metavar="ACTION", parser_class=_Parser,
                                   required=True)

    def action(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        p = _add(actions, name, common, help_text, example, f"schedules.cmd_{name}")
        p.set_defaults(command=f"schedule {name}")
        p.add_argument("queue", metavar="QUEUE")
        p.add_argument("name", metavar="NAME", help="the schedule's name")
        return p

    p = action("add", "create or replace a schedule: a job published at every occurrence "
               "of a cron expression or interval",
               "  omniq schedule add emails digest --cron '0 8 * * 1-5' --tz Europe/Paris "
               "--payload '{\"kind\": \"digest\"}'\n"
               "  omniq schedule add reports refresh --every-ms 300000 --misfire skip")
    timing = p.add_mutually_exclusive_group(required=True)
    timing.add_argument("--cron", default=None, metavar="EXPR",
                        help="a cron expression (5 fields, or @hourly, @daily ...); needs "
                        "cronsim (pip install 'omniq-aio[cron]')")
    timing.add_argument("--every-ms", type=_non_negative_int, default=None, metavar="N",
                        help="every N milliseconds (at least 1000)")
    p.add_argument("--tz", default=None, metavar="ZONE",
                   help="the time zone of --cron (an IANA name; default UTC)")
    p.add_argument("--payload", default=None, metavar="JSON",
                   help="the payload of every job: a JSON object or array (default {})")
    p.add_argument("--start-ms", type=_non_negative_int, default=None, metavar="MS",
                   help="no occurrence before this epoch time (in the past: the "
                   "occurrences since then are due at once, --misfire decides)")
    p.add_argument("--end-ms", type=_non_negative_int, default=None, metavar="MS",
                   help="no occurrence after this epoch time")
    p.add_argument("--misfire", choices=("once", "skip", "all"), default=None,
                   help="occurrences missed while nothing fired: publish the latest (once, "
                   "the default), none (skip) or all, at most 100")
    p.add_argument("--misfire-grace-ms", type=_non_negative_int, default=None, metavar="N",
                   help="--misfire skip still publishes a lone occurrence at most N ms late "
                   "(default 60000)")
    p.add_argument("--jitter-ms", type=_non_negative_int, default=None, metavar="N",
                   help="delay each job by 0..N ms (fixed per occurrence)")
    _job_options(p, "each job: not published while a job with this key is waiting, "
                 "delayed or running")
    _json_flag(p)

    p = action("show", "show a schedule's definition and state",
               "  omniq schedule show emails digest")
    _json_flag(p)
    p = action("pause", "stop a schedule from firing",
               "  omniq schedule pause emails digest")
    _json_flag(p)
    p = action("resume", "let a paused schedule fire again, from its next occurrence",
               "  omniq schedule resume emails digest")
    _json_flag(p)
    p = action("rm", "remove a schedule (the jobs it published stay)",
               "  omniq schedule rm emails digest")
    _json_flag(p)

    p = _add(sub, "scheduler", common,
             "fire the schedules of queues until SIGTERM/SIGINT (for queues whose "
             "consumers do not)",
             "  omniq scheduler -q emails -q reports", "schedules.cmd_scheduler")
    p.add_argument("-q", "--queue", dest="queues", action="append", default=[],
                   metavar="QUEUE", help="a queue whose schedules to fire (repeat)")
    p.add_argument("--interval-s", type=_positive_float, default=1.0, metavar="S",
                   help="the longest wait between two passes (default 1)")
