"""Dependency fields written onto job hashes as the scripts write them (``depends_on``,
``dep:<ref>``, ``dres:<ref>``, ``deps_left``, ``dep_policy``, the ``:dependents`` hash), for
the tests of the reads (tests/core/test_flow_reads.py, tests/cli/test_cli_flow.py).
Imported by module name: tests/ is on sys.path (see tests/shared_util.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from omniq._keys import QueueKeys

Ref = tuple[str, str]
"""A job as ``(physical queue, job id)``."""


def ref(r: Ref) -> str:
    return f"{r[0]}:{r[1]}"


def depend(raw: redis.Redis, job: Ref, deps: Sequence[Ref], states: Sequence[str],
           *, policy: str | None = None, results: dict[Ref, str] | None = None,
           dependents: bool = True) -> None:
    """Give ``job`` the fields the scripts write for its dependencies, and register it in
    each dependency's dependents hash."""
    fields: dict[Any, Any] = {"depends_on": json.dumps([ref(d) for d in deps]),
                              "deps_left": str(sum(s in ("pending", "failed") for s in states))}
    if policy is not None:
        fields["dep_policy"] = policy
    for d, s in zip(deps, states, strict=True):
        fields["dep:" + ref(d)] = s
    for d, text in (results or {}).items():
        fields["dres:" + ref(d)] = text
    raw.hset(QueueKeys(job[0]).job(job[1]), mapping=fields)
    if dependents:
        for d in deps:
            raw.hset(QueueKeys(d[0]).dependents(d[1]), ref(job), policy or "fail")
            raw.hset(QueueKeys(d[0]).job(d[1]), "dependents", "1")


def set_state(raw: redis.Redis, job: Ref, state: str) -> None:
    raw.hset(QueueKeys(job[0]).job(job[1]), "state", state)
