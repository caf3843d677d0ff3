"""Output helpers of the ``omniq`` command: tables, ages, JSON, a progress bar, prompts.

Standard library only (the command must start fast and add no dependency).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["Progress", "age", "confirm", "print_json", "relative", "stdin_is_tty", "table"]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          out: TextIO | None = None) -> None:
    """Print ``rows`` under ``headers`` in left-aligned columns (numbers right-aligned)."""
    out = out or sys.stdout
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w)
                 for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    print(line(list(headers)), file=out)
    for row in cells:
        print(line(row), file=out)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def age(ms: int | None, now_ms: int | None = None) -> str:
    """``12s``, ``5m``, ``3h``, ``2d`` since the epoch time ``ms`` (``-`` when None)."""
    if ms is None:
        return "-"
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return _span(max(now - ms, 0))


def relative(ms: int, now_ms: int | None = None) -> str:
    """``5s ago`` or ``in 3m``: the epoch time ``ms`` relative to now."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return f"in {_span(ms - now)}" if ms > now else f"{_span(now - ms)} ago"


def _span(ms: int) -> str:
    s = ms // 1000
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def print_json(value: Any, out: TextIO | None = None) -> None:
    """``value`` as indented JSON on standard output."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=out or sys.stdout)


class Progress:
    """A one-line progress bar on standard error, drawn only when it is a terminal and the
    work is larger than ``min_total`` items."""

    def __init__(self, label: str, total: int, *, min_total: int = 100,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = total > min_total and _isatty(self.stream)
        self._draw()

    def advance(self, n: int) -> None:
        self.done += n
        self._draw()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.enabled = False

    def _draw(self) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def stdin_is_tty() -> bool:
    return _isatty(sys.stdin)


def confirm(question: str) -> bool:
    """Ask ``question [y/N]`` on the terminal; True only for y/yes."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        return False
    return answer.strip().lower() in ("y", "yes")
