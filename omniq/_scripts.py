"""The Lua scripts, read once from package data with their SHA1 computed locally.

Each queue script is ``lib.lua`` followed by the operation file; the parent/child scripts
get only lib's numeric constants and helper functions, not its queue key set-up. Only the
library functions and top-level definitions (a key name, a table, a state variable) an
operation uses, directly or through other library code, are included: Redis runs the whole
chunk on every call, so each ``local function`` costs a closure and each definition its
string or table, per call. The source is sent with SCRIPT LOAD only after a NOSCRIPT reply.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

__all__ = ["SCRIPTS", "Script", "scripts"]

_QUEUE_SCRIPTS = (
    "enqueue",
    "reserve",
    "heartbeat",
    "ack_success",
    "ack_fail",
    "ack_reserve",
    "promote_delayed",
    "reap_expired",
    "pause",
    "resume",
    "retry_failed",
    "retry_failed_batch",
    "remove_job",
    "remove_jobs_batch",
    "partition",
    "progress",
    "set_rate_limit",
    "clear_rate_limit",
    "get_rate_limit",
    "cancel",
)
_STANDALONE_SCRIPTS = ("childs_init", "child_ack")


class Script:
    """One script: its name, full source and SHA1 digest."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.name!r}, sha={self.sha[:10]})"


def _read(name: str) -> str:
    return (resources.files("omniq") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


_FUNCTION_START = re.compile(r"^local function (\w+)\(")
_CONSTANT = re.compile(r"^local [A-Z][A-Z0-9_]* = -?\d+$")  # the shared limits
_DEFINITION = re.compile(r"^local (\w+) = ")  # one name: linked only when used
_WORD = re.compile(r"[A-Za-z_]\w*")
_COMMENT = re.compile(r"--[^\n]*|'[^'\n]*'|\"[^\"\n]*\"")  # comments and strings


def split_library(lib: str) -> tuple[list[str], dict[str, str]]:
    """Split lib.lua into its other top-level statements and its ``local function`` blocks.

    A block runs from ``local function NAME(`` at column 0 to the next line ``end`` (or is
    that one line when it ends with ``end`` itself). Other statements are one line each,
    except a ``local NAME = {`` table, which runs until its braces balance.
    """
    other: list[str] = []
    functions: dict[str, str] = {}
    lines = lib.splitlines()
    i = 0
    while i < len(lines):
        m = _FUNCTION_START.match(lines[i])
        if m is None:
            start = i
            if _DEFINITION.match(lines[i]):
                depth = 0
                while True:
                    code = _COMMENT.sub("", lines[i])
                    depth += code.count("{") - code.count("}")
                    if depth <= 0 or i + 1 == len(lines):
                        break
                    i += 1
            other.append("\n".join(lines[start : i + 1]))
            i += 1
            continue
        start = i
        while lines[i] != "end" and not (i == start and lines[i].endswith(" end")):
            i += 1
        functions[m.group(1)] = "\n".join(lines[start : i + 1])
        i += 1
    return other, functions


def link(lib: str, body: str, *, queue: bool = True) -> str:
    """The library lines an operation needs, in library order, followed by the body.

    ``queue=False`` (the parent/child scripts) leaves out the queue key set-up and links
    only the numeric constants and the helper functions the body uses.
    """
    other, functions = split_library(lib)
    if not queue:
        other = [line for line in other if _CONSTANT.match(line)]
    # statements defining one name (not the numeric constants) are linked like functions
    defined: dict[str, str] = {}
    for stmt in other:
        m = _DEFINITION.match(stmt)
        if m is not None and not _CONSTANT.match(stmt):
            defined[m.group(1)] = stmt
    needed: set[str] = set()
    todo = [body, *(stmt for stmt in other if stmt not in defined.values())]
    while todo:
        code = _COMMENT.sub("", todo.pop())
        for word in _WORD.findall(code):
            if word in needed:
                continue
            if word in functions:
                needed.add(word)
                todo.append(functions[word])
            elif word in defined:
                needed.add(word)
                todo.append(defined[word])
    kept_other = [stmt for stmt in other
                  if (m := _DEFINITION.match(stmt)) is None or _CONSTANT.match(stmt)
                  or m.group(1) in needed]
    kept = [src for name, src in functions.items() if name in needed]
    return "\n".join([*kept_other, *kept, body])


def _load_all() -> dict[str, Script]:
    lib = _read("lib")
    scripts = {name: Script(name, link(lib, _read(name))) for name in _QUEUE_SCRIPTS}
    scripts.update(
        {name: Script(name, link(lib, _read(name), queue=False)) for name in _STANDALONE_SCRIPTS}
    )
    return scripts


SCRIPTS: dict[str, Script] = _load_all()


def scripts(*names: str) -> tuple[Script, ...]:
    """The scripts of these names, for the protocol modules that own their contracts."""
    return tuple(SCRIPTS[name] for name in names)
