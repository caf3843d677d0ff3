"""The ``omniq`` command (``python -m omniq``): argument parsing and output only.

Every action is a public client call (:class:`omniq.AsyncOmniq`); nothing here knows the
queue's keys or scripts. The client, redis and the worker are imported inside the commands,
so ``omniq --help`` starts fast. See docs/cli.md.

Exit codes: 0 ok, 1 the operation failed or was partly refused, 2 usage error or bad input,
3 cannot connect (or the server refused the credentials), 124 ``omniq wait`` timed out,
130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from omniq.cli._parser import build_parser

__all__ = [
    "EXIT_CONNECT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "CliError",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_TIMEOUT = 124  # as timeout(1)
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report on one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _classify(exc: BaseException) -> int | None:
    """The exit code of an error that is the user's or the server's, None for a bug."""
    if isinstance(exc, CliError):
        return exc.code
    from omniq import errors

    if isinstance(exc, errors.InvalidArgument):
        return EXIT_USAGE
    if isinstance(exc, errors.ConnectionFailed | errors.PermissionDenied):
        return EXIT_CONNECT
    if isinstance(exc, errors.OmniqError):
        return EXIT_FAILED
    if isinstance(exc, OSError):  # a file that cannot be read, a port in use ...
        return EXIT_USAGE
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``omniq`` command with ``argv`` (default: ``sys.argv[1:]``); returns the
    exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # ``remove q --lane failed ID ...``: argparse leaves the positionals after an
        # option unparsed; the commands that take job ids collect them here
        if getattr(args, "targets", None) is not None and not any(
                x.startswith("-") for x in extra):
            args.targets += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args) or EXIT_OK)
    except KeyboardInterrupt:
        print(f"omniq {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = _classify(exc)
        if code is None or args.debug:
            import traceback

            traceback.print_exc()
        if code is None:
            return EXIT_FAILED
        if args.debug:
            return code
        text = str(exc).strip().splitlines()
        message = text[0] if text else type(exc).__name__
        print(f"omniq {args.command}: error: {message}", file=sys.stderr)
        return code
