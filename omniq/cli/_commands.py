"""The inspection and admin commands: each one a few public client calls plus output."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from omniq.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from omniq.cli._output import (
    Progress,
    age,
    confirm,
    print_json,
    relative,
    stdin_is_tty,
    table,
)
from omniq.cli._parser import job_options, load_settings, split_targets

if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq
    from omniq.types import BatchResult, JobInfo, JobSpec

BATCH = 100  # ids per retry_failed_batch / remove_jobs_batch call (the scripts' maximum)
PAGE = 1000  # jobs per jobs() page when a command collects a whole lane
PUBLISH_CALL = 1000  # jobs per publish_many call (one all-or-nothing chunk each)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[AsyncOmniq]:
    from omniq.aio.client import AsyncOmniq

    client = AsyncOmniq.from_settings(load_settings(args))
    try:
        yield client
    finally:
        await client.aclose()


# -- stats ---------------------------------------------------------------------------


_STATS_HEADERS = ("QUEUE", "PAUSED", "WAITING", "GROUP_WAITING", "WAITING_DEPS", "ACTIVE",
                  "DELAYED", "FAILED", "COMPLETED_KEPT", "GROUPS_READY", "LAST_ACTIVITY")


def cmd_stats(args: argparse.Namespace) -> int:
    return _run(_stats(args))


async def _stats(args: argparse.Namespace) -> int:
    import msgspec

    async with _client(args) as client:
        while True:
            names = list(args.queues) or await client.queues()
            rows = list(await asyncio.gather(*(client.stats(q) for q in names)))
            if args.watch is not None and not args.json:
                sys.stdout.write("\x1b[H\x1b[2J")  # clear the screen, cursor home
            if args.json:
                print_json([msgspec.to_builtins(s) for s in rows])
            else:
                table(_STATS_HEADERS, [
                    (s.queue, s.paused, s.waiting, s.group_waiting, s.waiting_deps, s.active,
                     s.delayed, s.failed, s.completed_kept, s.groups_ready,
                     age(s.last_activity_ms) if s.last_activity_ms else "-")
                    for s in rows])
                if not rows:
                    print("(no queues on the server)")
            sys.stdout.flush()
            if args.watch is None:
                return EXIT_OK
            try:
                await asyncio.sleep(args.watch)  # the refresh period, not a synchronization
            except asyncio.CancelledError:
                return EXIT_OK


# -- jobs / job ----------------------------------------------------------------------


def _job_json(info: JobInfo) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(info)
    out["payload"] = info.payload
    out["result"] = info.result
    if info.dependency_results_raw:
        from omniq.codec import decode_payload

        out["dependency_results"] = {ref: decode_payload(raw)
                                     for ref, raw in info.dependency_results_raw.items()}
    return out


def cmd_jobs(args: argparse.Namespace) -> int:
    return _run(_jobs(args))


async def _jobs(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        page = await client.jobs(args.queue, args.lane, limit=args.limit, cursor=args.cursor)
    if args.json:
        print_json({"queue": args.queue, "lane": args.lane,
                    "jobs": [_job_json(j) for j in page.jobs], "cursor": page.cursor})
        return EXIT_OK
    table(("ID", "STATE", "ATTEMPTS", "AGE", "GID", "LAST_ERROR"), [
        (j.job_id, j.state, f"{j.attempt}/{j.max_attempts}",
         age(j.created_ms or j.id_time_ms), j.gid or None, j.last_error_line)
        for j in page.jobs])
    if page.cursor is not None:
        print(f"next page: --cursor {page.cursor}")
    return EXIT_OK


def cmd_job(args: argparse.Namespace) -> int:
    return _run(_job(args))


async def _job(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        info = await client.get_job(args.queue, args.job_id)
    if info is None:
        raise CliError(f"no job {args.job_id} in {args.queue}", EXIT_FAILED)
    if args.json:
        print_json(_job_json(info))
        return EXIT_OK
    for name in ("queue", "job_id", "state", "gid", "attempt", "max_attempts", "timeout_ms",
                 "backoff_ms", "created_ms", "updated_ms", "queued_ms", "first_started_ms",
                 "last_started_ms", "completed_ms", "failed_ms", "due_ms", "lock_until_ms",
                 "last_error_ms"):
        value = getattr(info, name)
        if name.endswith("_ms") and name not in ("timeout_ms", "backoff_ms") and value:
            value = f"{value} ({relative(value)})"
        print(f"{name + ':':<18} {'-' if value in (None, '') else value}")
    # job controls appear only when the job has them (most jobs have none)
    for name in _CONTROL_FIELDS:
        value = getattr(info, name)
        if value in (None, "", False):
            continue
        if name in ("expires_ms", "cancel_requested_ms"):
            value = f"{value} ({relative(value)})"
        print(f"{name + ':':<18} {value}")
    _print_dependencies(info)
    print("payload:")
    print(_indent(json.dumps(info.payload, indent=2, ensure_ascii=False, default=str)))
    if info.result_raw is not None:
        print("result:")
        print(_indent(json.dumps(info.result, indent=2, ensure_ascii=False, default=str)))
    if info.last_error:
        print("last_error:")
        print(_indent(info.last_error))
    return EXIT_OK


def _print_dependencies(info: JobInfo) -> None:
    """The jobs it waits on (each one's state as this job records it) and the jobs waiting
    on it, when there are any."""
    if info.depends_on or info.dependencies:
        print(f"{'deps_left:':<18} {'-' if info.deps_left is None else info.deps_left}")
        print(f"{'dep_policy:':<18} {info.dep_policy}")
        states = dict.fromkeys([f"{q}:{j}" for q, j in info.depends_on], "-")
        states.update(info.dependencies)
        width = max(len(ref) for ref in states)
        print("dependencies:")
        for ref, state in states.items():
            print(f"  {ref:<{width}}  {state}")
    if info.dependents:
        print("dependents:")
        for q, j in info.dependents:
            print(f"  {q}:{j}")


_CONTROL_FIELDS = ("dedup_key", "dedup_ttl_ms", "expires_ms", "run_timeout_ms", "backoff",
                   "backoff_max_ms", "backoff_jitter", "group_order", "on_failure",
                   "cancel_requested_ms")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# -- retry / remove ------------------------------------------------------------------


def _check_selection(args: argparse.Namespace, all_flag: str, everything: bool) -> None:
    split_targets(args)
    if everything and args.job_ids:
        raise CliError(f"give job ids or {all_flag}, not both", EXIT_USAGE)
    if not everything and not args.job_ids:
        raise CliError(f"give job ids or {all_flag}", EXIT_USAGE)
    if everything and not args.yes and not stdin_is_tty():
        raise CliError(f"{all_flag} needs --yes when standard input is not a terminal",
                       EXIT_USAGE)


async def _lane_ids(client: AsyncOmniq, queue: str, lane: str) -> list[str]:
    """Every job id of the lane, paged through with ``jobs()``."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await client.jobs(queue, lane, limit=PAGE, cursor=cursor)
        ids += [j.job_id for j in page.jobs]
        cursor = page.cursor
        if cursor is None:
            return ids


async def _batches(
    ids: Sequence[str], label: str,
    call: Callable[[list[str]], Coroutine[Any, Any, list[BatchResult]]],
) -> list[BatchResult]:
    progress = Progress(label, len(ids))
    out: list[BatchResult] = []
    try:
        for start in range(0, len(ids), BATCH):
            chunk = list(ids[start:start + BATCH])
            out += await call(chunk)
            progress.advance(len(chunk))
    finally:
        progress.close()
    return out


def _summary(verb: str, queue: str, results: list[BatchResult], as_json: bool) -> int:
    ok = [r.job_id for r in results if r.status == "OK"]
    refused: dict[str, list[str]] = {}
    for r in results:
        if r.status != "OK":
            refused.setdefault(r.reason or r.status, []).append(r.job_id)
    if as_json:
        print_json({"queue": queue, verb: len(ok), "refused": refused})
    else:
        print(f"{verb} {len(ok)} of {len(results)} jobs of {queue}")
        for reason, jids in sorted(refused.items()):
            shown = " ".join(jids[:5]) + (" ..." if len(jids) > 5 else "")
            print(f"refused {len(jids)}: {reason}: {shown}")
    return EXIT_FAILED if refused else EXIT_OK


def _dedupe(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def cmd_retry(args: argparse.Namespace) -> int:
    _check_selection(args, "--all-failed", args.all_failed)
    return _run(_bulk(
        args, everything=args.all_failed, lane="failed", done="retried", doing="retrying",
        question=f"retry {{n}} failed jobs of {args.queue}?",
        call=lambda client, chunk: client.retry_failed_batch(args.queue, chunk)))


def cmd_remove(args: argparse.Namespace) -> int:
    _check_selection(args, "--all", args.all)
    return _run(_bulk(
        args, everything=args.all, lane=args.lane, done="removed", doing="removing",
        question=f"remove {{n}} jobs of lane {args.lane} of {args.queue}?",
        call=lambda client, chunk: client.remove_jobs_batch(args.queue, args.lane, chunk)))


async def _bulk(
    args: argparse.Namespace, *, everything: bool, lane: str, done: str, doing: str,
    question: str, call: Callable[[Any, list[str]], Coroutine[Any, Any, list[BatchResult]]],
) -> int:
    """retry / remove: the given ids, or (``everything``) every id of ``lane`` after a
    confirmation, in batches of 100; a summary of the per-job outcomes."""
    async with _client(args) as client:
        if everything:
            ids = await _lane_ids(client, args.queue, lane)
            if not ids:
                return _summary(done, args.queue, [], args.json)
            if not args.yes and not confirm(question.format(n=len(ids))):
                raise CliError(f"cancelled, nothing {done}", EXIT_FAILED)
        else:
            ids = _dedupe(args.job_ids)
        results = await _batches(ids, doing, lambda chunk: call(client, chunk))
    return _summary(done, args.queue, results, args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    """One line per job: ``ID: cancelled | cancelling | finished | not_found``; exit 1 when
    any job was not found."""
    async def go() -> int:
        results: dict[str, str] = {}
        async with _client(args) as client:
            for jid in _dedupe(args.job_ids):
                results[jid] = await client.cancel(args.queue, jid)
        if args.json:
            print_json({"queue": args.queue, "results": results})
        else:
            for jid, result in results.items():
                print(f"{jid}: {result}")
        return EXIT_FAILED if "not_found" in results.values() else EXIT_OK

    return _run(go())


# -- pause / resume ------------------------------------------------------------------


def cmd_pause(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with _client(args) as client:
            await client.pause(args.queue)
        print(f"paused {args.queue}")
        return EXIT_OK

    return _run(go())


def cmd_resume(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with _client(args) as client:
            was = await client.resume(args.queue)
        print(f"resumed {args.queue}" if was else f"{args.queue} was not paused")
        return EXIT_OK

    return _run(go())


# -- publish -------------------------------------------------------------------------

_SPEC_KEYS = ("payload", "job_id", "gid", "group_limit", "max_attempts", "timeout_ms",
              "backoff_ms", "due_ms", "delay_ms", "dedup_key", "dedup_ttl_ms", "dedup",
              "expires_ms", "expire_in_ms", "run_timeout_ms", "backoff", "backoff_max_ms",
              "backoff_jitter", "group_order", "on_failure")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise CliError(f"{where}: bad JSON: {exc}", EXIT_USAGE) from None


def parse_payload(text: str, where: str) -> Any:
    """A payload given on the command line: a JSON object or array (else exit 2)."""
    value = _parse_json(text, where)
    if not isinstance(value, dict | list):
        raise CliError(f"{where}: a payload must be a JSON object or array", EXIT_USAGE)
    return value


def _spec(value: Any, where: str) -> JobSpec:
    """One line of a JSONL file as a JobSpec (the payload itself, or an object with a
    ``payload`` key and job options)."""
    import msgspec

    from omniq.types import JobSpec

    if isinstance(value, dict) and "payload" in value:
        unknown = sorted(set(value) - set(_SPEC_KEYS))
        if unknown:
            raise CliError(f"{where}: unknown job option(s) {', '.join(unknown)} (allowed: "
                           f"{', '.join(_SPEC_KEYS[1:])})", EXIT_USAGE)
        try:
            return msgspec.convert(value, JobSpec)
        except msgspec.ValidationError as exc:
            raise CliError(f"{where}: {exc}", EXIT_USAGE) from None
    if not isinstance(value, dict | list):
        raise CliError(f"{where}: a payload must be a JSON object or array, not "
                       f"{type(value).__name__}", EXIT_USAGE)
    return JobSpec(payload=value)


def _validate(specs: list[tuple[str, JobSpec]], defaults: dict[str, Any]) -> None:
    """Check every job with the client's own validators before anything is sent, so a bad
    line anywhere leaves the queue untouched."""
    from omniq._keys import validate_job_id
    from omniq._limits import DEFAULT_BACKOFF_MS, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS
    from omniq._protocol.enqueue import batch_job_options, check_dedup_options
    from omniq.codec import encode_payload
    from omniq.errors import InvalidArgument

    base = {"max_attempts": DEFAULT_MAX_ATTEMPTS, "timeout_ms": DEFAULT_TIMEOUT_MS,
            "backoff_ms": DEFAULT_BACKOFF_MS, **defaults}
    seen: dict[str, str] = {}
    for where, spec in specs:
        try:
            encode_payload(spec.payload)
            given = {k: getattr(spec, k) for k in _SPEC_KEYS[2:] if getattr(spec, k) is not None}
            check_dedup_options(base.get("dedup", "keep"), base.get("dedup_ttl_ms", 0))
            batch_job_options(base, given)
            if spec.job_id is not None:
                validate_job_id(spec.job_id)
                if spec.job_id in seen:
                    raise InvalidArgument(f"job id {spec.job_id} repeats {seen[spec.job_id]}")
                seen[spec.job_id] = where
        except InvalidArgument as exc:
            raise CliError(f"{where}: {exc}", EXIT_USAGE) from None


def _read_lines(path: str) -> list[tuple[str, str]]:
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {path}: {exc}", EXIT_USAGE) from None
    return [(f"line {n}", line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def cmd_publish(args: argparse.Namespace) -> int:
    if (args.payload is None) == (args.file is None):
        raise CliError("give a JSON payload or --file, not both and not neither", EXIT_USAGE)
    if args.file is not None and args.job_id is not None:
        raise CliError("--job-id is for one job; in a file give each line a job_id",
                       EXIT_USAGE)
    if args.file is not None and args.dedup_key is not None:
        raise CliError("--dedup-key is for one job; in a file give each line a dedup_key",
                       EXIT_USAGE)
    defaults = job_options(args, "delay_ms")
    if args.payload is not None:
        return _run(_publish_one(args, parse_payload(args.payload, "JSON argument"), defaults))
    specs = [(where, _spec(_parse_json(line, where), where))
             for where, line in _read_lines(args.file)]
    _validate(specs, defaults)
    return _run(_publish_file(args, [s for _, s in specs], defaults))


async def _publish_one(args: argparse.Namespace, payload: Any, defaults: dict[str, Any]) -> int:
    async with _client(args) as client:
        jid = await client.publish(args.queue, payload, job_id=args.job_id, **defaults)
    if args.json:
        print_json({"queue": args.queue, "published": 1, "ids": [jid]})
    else:
        print(jid)
    return EXIT_OK


async def _publish_file(args: argparse.Namespace, specs: list[JobSpec],
                        defaults: dict[str, Any]) -> int:
    from omniq.errors import OmniqError

    ids: list[str] = []
    progress = Progress("publishing", len(specs), min_total=PUBLISH_CALL)
    async with _client(args) as client:
        try:
            for start in range(0, len(specs), PUBLISH_CALL):
                chunk = specs[start:start + PUBLISH_CALL]
                ids += await client.publish_many(args.queue, chunk, **defaults)
                progress.advance(len(chunk))
        except OmniqError as exc:
            if not ids:
                raise
            raise CliError(f"published the first {len(ids)} of {len(specs)} jobs, then: "
                           f"{exc}", EXIT_FAILED) from exc
        finally:
            progress.close()
    if args.json:
        print_json({"queue": args.queue, "published": len(ids), "ids": ids})
    else:
        print(f"published {len(ids)} jobs to {args.queue}")
    return EXIT_OK
