"""The Lua scripts, read once from package data with their SHA1 computed locally.

Each queue script is ``lib.lua`` followed by the operation file; the parent/child scripts
stand alone. The source is sent with EVAL/SCRIPT LOAD only after a NOSCRIPT reply.
"""

from __future__ import annotations

import hashlib
from importlib import resources

__all__ = ["SCRIPTS", "Script"]

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


def _load_all() -> dict[str, Script]:
    lib = _read("lib")
    scripts = {name: Script(name, lib + "\n" + _read(name)) for name in _QUEUE_SCRIPTS}
    scripts.update({name: Script(name, _read(name)) for name in _STANDALONE_SCRIPTS})
    return scripts


SCRIPTS: dict[str, Script] = _load_all()
