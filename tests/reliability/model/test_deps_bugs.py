"""Bugs of the dependency scripts found while extending the reference model and the
bad-input matrix: each a minimal reproduction of what docs/workflows.md (and
docs/workflows.md) say. A bug still open is marked ``xfail(strict=True)`` (the suite keeps
running; the test turns into a failure once the Lua is fixed: then drop the mark, and the
model's reproduction of the bug); the others stay as regression tests.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from omniq._scripts import SCRIPTS

T = 1_000_000


def call(raw: redis.Redis, script: str, queue: str, *args: Any) -> Any:
    """One script by EVAL, bypassing the client."""
    return raw.eval(SCRIPTS[script].source, 1, "{" + queue + "}:meta", *args)


def job(job_id: str, extras: dict[str, Any] | None = None) -> list[str]:
    """enqueue's 12 fields of a plain job (3 attempts, 1 s lease)."""
    return [job_id, "{}", "3", "1000", "0", "0", "0", "", "0", "0", "0",
            json.dumps(extras) if extras else ""]


def test_ack_reserve_settles_the_dependents_of_the_jobs_it_expires(raw: redis.Redis) -> None:
    """docs/workflows.md "How outcomes travel": every script that ends a job (an expiry
    included) settles its dependents on the same queue in that call. The fused ack_reserve,
    whose reservation fails B ('expired') as reserve does, did not: D stayed in
    waiting_deps until the repair scan (DEPS_REPAIR_MS later, as if an official client had
    ended B), and a dependent on another queue got no R op (fixed in ack_reserve.lua)."""
    call(raw, "enqueue", "q", T, 1, *job("B", {"expire_in_ms": 100}))
    call(raw, "enqueue", "q", T, 2, *job("D", {"depends_on": [["q", "B"]]}),
         *job("E", {"depends_on": [["q", "B"]], "dep_policy": "ignore"}))
    # no acks, reserve 1 at T + 200: B is past its expires_ms and fails
    assert call(raw, "ack_reserve", "q", T + 200, "100", "0", "1", "", "0") == ["0", "EMPTY"]
    assert raw.hget("{q}:job:B", "last_error") == "expired"
    # as reserve.lua leaves it: D failed, E released
    assert raw.hmget("{q}:job:D", "state", "last_error") == ["failed", "dependency failed: q:B"]
    assert raw.hget("{q}:job:E", "state") == "wait"
    assert not raw.exists("{q}:waiting_deps", "{q}:job:B:dependents")


def test_reserve_settles_the_dependents_of_the_jobs_it_expires(raw: redis.Redis) -> None:
    """The control of the test above: reserve.lua does it."""
    call(raw, "enqueue", "q", T, 1, *job("B", {"expire_in_ms": 100}))
    call(raw, "enqueue", "q", T, 2, *job("D", {"depends_on": [["q", "B"]]}),
         *job("E", {"depends_on": [["q", "B"]], "dep_policy": "ignore"}))
    assert call(raw, "reserve", "q", T + 200, "1") == ["EMPTY"]
    assert raw.hget("{q}:job:B", "last_error") == "expired"
    assert raw.hmget("{q}:job:D", "state", "last_error") == ["failed", "dependency failed: q:B"]
    assert raw.hget("{q}:job:E", "state") == "wait"
    assert not raw.exists("{q}:waiting_deps", "{q}:job:B:dependents")


def test_a_dependency_deduplicated_in_the_same_call(raw: redis.Redis) -> None:
    """enqueue.lua takes a same-queue dependency that comes earlier in the call as
    existing (no DEP_NOT_FOUND), but when that earlier job was not written because a live
    job held its dedup key (the reply gives the holder's id for it), the dependent was
    written and failed in the same call: 'dependency removed: q:B', though the logical
    job B stands for (A) was live and nothing was removed (publish_many of
    [JobSpec(job_id='B', dedup_key='k'), JobSpec(job_id='D', depends_on=['B'])] did
    this). Now D depends on the holder A; naming both B and A is a dependency given
    twice (fixed in enqueue.lua)."""
    call(raw, "enqueue", "q", T, 1, *job("A", {"dedup_key": "k"}))
    reply = call(raw, "enqueue", "q", T, 2, *job("B", {"dedup_key": "k"}),
                 *job("D", {"depends_on": [["q", "B"]]}))
    assert reply == ["OK", "2", "A", "D"]
    assert raw.hmget("{q}:job:D", "state", "depends_on") == ["waiting_deps", '["q:A"]']
    assert raw.hget("{q}:job:A:dependents", "q:D") == "fail"
    reply = call(raw, "enqueue", "q", T, 2, *job("B2", {"dedup_key": "k"}),
                 *job("D2", {"depends_on": [["q", "B2"], ["q", "A"]]}))
    assert reply == ["ERR", "BAD_ARGS", "depends_on"]
    assert not raw.exists("{q}:job:D2")
