"""``omniq limit``: show, set or clear the rate limits of a queue (client calls only)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from omniq.cli import EXIT_OK, EXIT_USAGE, CliError
from omniq.cli._commands import _client, _run
from omniq.cli._output import print_json, table

if TYPE_CHECKING:
    from omniq.types import RateLimit


def _positive(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CliError(f"{name} is not an integer: {text!r}", EXIT_USAGE) from None
    if value < 1:
        raise CliError(f"{name} must be at least 1: {text!r}", EXIT_USAGE)
    return value


def _as_json(limit: RateLimit) -> dict[str, Any]:
    return {"gid": limit.gid, "max_jobs": limit.max_jobs, "per_ms": limit.per_ms,
            "in_window": limit.in_window}


def cmd_limit(args: argparse.Namespace) -> int:
    queue, rest = args.targets[0], args.targets[1:]
    if args.clear and rest:
        raise CliError("give MAX PER_MS or --clear, not both", EXIT_USAGE)
    if rest and len(rest) != 2:
        raise CliError("give both MAX and PER_MS (or neither, to show the limits)",
                       EXIT_USAGE)
    rate = (_positive(rest[0], "MAX"), _positive(rest[1], "PER_MS")) if rest else None
    what = f"group {args.gid} of {queue}" if args.gid is not None else queue

    async def go() -> int:
        async with _client(args) as client:
            if args.clear:
                had = await client.clear_rate_limit(queue, gid=args.gid)
                if args.json:
                    print_json({"queue": queue, "gid": args.gid, "cleared": had})
                else:
                    print(f"cleared the rate limit of {what}" if had
                          else f"{what} had no rate limit")
                return EXIT_OK
            if rate is not None:
                await client.set_rate_limit(queue, rate[0], rate[1], gid=args.gid)
                if args.json:
                    print_json({"queue": queue, "gid": args.gid, "max_jobs": rate[0],
                                "per_ms": rate[1]})
                else:
                    print(f"{what}: at most {rate[0]} jobs per {rate[1]} ms")
                return EXIT_OK
            if args.gid is not None:
                one = await client.get_rate_limit(queue, gid=args.gid)
                limits = [one] if one is not None else []
            else:
                limits = await client.rate_limits(queue)
        if args.json:
            print_json({"queue": queue, "limits": [_as_json(x) for x in limits]})
        elif not limits:
            print(f"{what} has no rate limit")
        else:
            table(("GROUP", "MAX_JOBS", "PER_MS", "IN_WINDOW"),
                  [("(queue)" if x.gid is None else x.gid, x.max_jobs, x.per_ms, x.in_window)
                   for x in limits])
        return EXIT_OK

    return _run(go())
