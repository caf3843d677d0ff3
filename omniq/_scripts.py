"""The Lua scripts, read once from package data with their SHA1 computed locally.

Each queue script is ``lib.lua`` followed by the operation file; the parent/child scripts
get only lib's numeric constants and helper functions, not its queue key set-up. Only the
library functions and top-level definitions (a key name, a table, a state variable) an
operation uses, directly or through other library code, are included: Redis runs the whole
chunk on every call, so each ``local function`` costs a closure (and each of its upvalues
a walk of the open-upvalue list) and each definition its string or table, per call. The
source is sent with SCRIPT LOAD only after a NOSCRIPT reply.

The same code also forms one Redis Functions library (:data:`LIBRARY`, Redis and Valkey
7+): every queue script becomes a registered function whose library code ran once, at
FUNCTION LOAD, so a call creates no closures. What depends on the call (the key names
derived from KEYS[1], the per-call state such as ``stamps``) is declared once and assigned
at the start of every call, by a ``begin`` function per script that sets exactly the names
the script uses, in library order. :mod:`omniq.aio._transport` decides which form it calls.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

__all__ = ["LIBRARY", "LIBRARY_NAME", "SCRIPTS", "Script", "library", "scripts"]

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
    "schedule_set",
    "schedule_read",
    "schedule_fire",
    "schedule_pause",
    "schedule_remove",
    "deps_link",
    "deps_resolve",
    "deps_pending",
    "deps_ack",
)
_STANDALONE_SCRIPTS = ("childs_init", "child_ack")


class Script:
    """One script: its name, full source and SHA1 digest, and the name of the same script
    as a function of :data:`LIBRARY` (None for the scripts not in it)."""

    __slots__ = ("function", "name", "sha", "source")

    def __init__(self, name: str, source: str, function: str | None = None) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.function = function

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


def _needed(other: list[str], functions: dict[str, str], body: str) -> set[str]:
    """The function and definition names ``body`` uses, directly or through library code
    (statements that define no name, such as the ``:meta`` suffix check, always count)."""
    defined = _definitions(other)
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
    return needed


def _definitions(other: list[str]) -> dict[str, str]:
    """Statements defining one name (not the numeric constants), by that name."""
    defined: dict[str, str] = {}
    for stmt in other:
        m = _DEFINITION.match(stmt)
        if m is not None and not _CONSTANT.match(stmt):
            defined[m.group(1)] = stmt
    return defined


def link(lib: str, body: str, *, queue: bool = True) -> str:
    """The library lines an operation needs, in library order, followed by the body.

    ``queue=False`` (the parent/child scripts) leaves out the queue key set-up and links
    only the numeric constants and the helper functions the body uses.
    """
    other, functions = split_library(lib)
    if not queue:
        other = [line for line in other if _CONSTANT.match(line)]
    needed = _needed(other, functions, body)
    kept_other = [stmt for stmt in other
                  if (m := _DEFINITION.match(stmt)) is None or _CONSTANT.match(stmt)
                  or m.group(1) in needed]
    kept = [src for name, src in functions.items() if name in needed]
    return "\n".join([*kept_other, *kept, body])


_LOCALS = re.compile(r"^local ([\w, ]+?) = ")


def _per_call(other: list[str]) -> list[str]:
    """The top-level statements that must run on every call of a function: those that
    read KEYS or ARGV or a name such a statement defines, those that define a lower-case
    name (per-call state) and those that define no name. The rest (numeric constants,
    upper-case tables of fixed values) runs once, at FUNCTION LOAD."""
    per_call: list[str] = []
    call_names = {"KEYS", "ARGV"}
    for stmt in other:
        code = _COMMENT.sub("", stmt)
        if not code.strip() or _CONSTANT.match(stmt):
            continue
        m = _LOCALS.match(stmt)
        names = [] if m is None else [n.strip() for n in m.group(1).split(",")]
        words = set(_WORD.findall(code[m.end():] if m else code))
        if m is None or words & call_names or any(not n.isupper() for n in names):
            per_call.append(stmt)
            call_names.update(names)
    return per_call


def library(lib: str, bodies: dict[str, str]) -> tuple[str, dict[str, str]]:
    """One Redis Functions library holding ``bodies`` (operation name -> body) on top of
    ``lib``, and each operation's function name. The library is named by a digest of its
    code, so versions of omniq sharing a server each call their own functions."""
    other, functions = split_library(lib)
    per_call = _per_call(other)
    call_names: list[str] = []
    for stmt in per_call:
        m = _LOCALS.match(stmt)
        if m is not None:
            call_names += [n.strip() for n in m.group(1).split(",")]
    once = [stmt for stmt in other if stmt not in per_call]
    parts = ["local KEYS, ARGV", *once]
    # declared here, assigned by each call's begin_<op> (at most 60 upvalues a function
    # in Lua 5.1: the declaration lists are split only for line length)
    for i in range(0, len(call_names), 12):
        parts.append("local " + ", ".join(call_names[i:i + 12]))
    parts += functions.values()
    digest = hashlib.sha1("\n".join([*parts, *bodies.values()]).encode()).hexdigest()[:16]
    names: dict[str, str] = {}
    for op, body in bodies.items():
        needed = _needed(other, functions, body)
        begin = ["  KEYS, ARGV = keys, argv"]
        for stmt in per_call:
            one = _DEFINITION.match(stmt)  # (the others are linked into every script)
            if one is None or one.group(1) in needed:
                m = _LOCALS.match(stmt)
                begin.append("  " + (stmt[len("local "):] if m else stmt).replace("\n", "\n  "))
        fn = names[op] = f"omniq_{digest}_{op}"
        parts.append(f"local function begin_{op}(keys, argv)\n" + "\n".join(begin) + "\nend")
        parts.append(f"redis.register_function('{fn}', function(keys, argv)\n"
                     f"begin_{op}(keys, argv)\n{body}\nend)")
    return f"#!lua name=omniq_{digest}\n" + "\n".join(parts) + "\n", names


def _load_all() -> tuple[dict[str, Script], str]:
    lib = _read("lib")
    bodies = {name: _read(name) for name in _QUEUE_SCRIPTS}
    source, functions = library(lib, bodies)
    scripts = {name: Script(name, link(lib, body), functions[name])
               for name, body in bodies.items()}
    scripts.update(
        {name: Script(name, link(lib, _read(name), queue=False)) for name in _STANDALONE_SCRIPTS}
    )
    return scripts, source


SCRIPTS, LIBRARY = _load_all()
"""Every script by name, and the Redis Functions library of the queue scripts (its
source, for FUNCTION LOAD)."""
LIBRARY_NAME = LIBRARY.split("\n", 1)[0].removeprefix("#!lua name=")


def scripts(*names: str) -> tuple[Script, ...]:
    """The scripts of these names, for the protocol modules that own their contracts."""
    return tuple(SCRIPTS[name] for name in names)
