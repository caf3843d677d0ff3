"""Dependencies and flows (docs/workflows.md): the ``deps_*`` scripts' contracts, the
dependency fields of ``enqueue``'s extras, and the pure planning of a flow.

A dependency ref inside the scripts is ``"<physical queue>:<job id>"`` (queue names have no
``:``). The dependency outbox of a queue holds ops for other queues, tab-separated:

* ``R <outcome> <id> <queue> <dependent id>``: job ``id`` of this queue ended with
  ``outcome`` (``completed`` / ``failed`` / ``gone``); its dependent on ``queue`` is told
  with ``deps_resolve`` there.
* ``L <policy> <id> <queue> <dependency id>``: job ``id`` of this queue depends on a job of
  ``queue``; ``deps_link`` there registers it (or answers the dependency's outcome).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from omniq._keys import validate_job_id, validate_queue_name
from omniq._limits import MAX_DEPENDENCIES, MAX_DEPS_OPS
from omniq._protocol.common import parse_ok
from omniq._scripts import scripts
from omniq.codec import decode_payload
from omniq.errors import InvalidArgument, ProtocolError

__all__ = [
    "DEPS_ACK",
    "DEPS_LINK",
    "DEPS_PENDING",
    "DEPS_RESOLVE",
    "Op",
    "ack_args",
    "check_dependency_count",
    "check_policy",
    "check_ref_parts",
    "dependency_results",
    "link_args",
    "outcome_chunks",
    "parse_ack",
    "parse_link",
    "parse_pending",
    "parse_resolve",
    "pending_args",
    "ref",
    "resolve_args",
    "split_ref",
    "with_dependencies",
]

DEPS_LINK, DEPS_RESOLVE, DEPS_PENDING, DEPS_ACK = scripts(
    "deps_link", "deps_resolve", "deps_pending", "deps_ack")

_POLICIES = ("fail", "ignore", "wait")
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def check_policy(value: object) -> str:
    """``on_dependency_failure``: ``fail``, ``ignore`` or ``wait``."""
    if not isinstance(value, str) or value not in _POLICIES:
        raise InvalidArgument(
            f"on_dependency_failure must be 'fail', 'ignore' or 'wait', not {value!r}")
    return value


def ref(queue: str, job_id: str) -> str:
    """``"<queue>:<id>"``: a job as the dependency scripts name it."""
    return f"{queue}:{job_id}"


def split_ref(text: str) -> tuple[str, str]:
    """``"<queue>:<id>"`` -> ``(queue, id)``."""
    queue, sep, job_id = text.partition(":")
    if not sep:
        raise ProtocolError(f"not a dependency ref: {text!r}")
    return queue, job_id


def check_dependency_count(n: int) -> None:
    if n > MAX_DEPENDENCIES:
        raise InvalidArgument(f"a job has at most {MAX_DEPENDENCIES} dependencies, not {n}")


def with_dependencies(
    extras: bytes, depends_on: Sequence[tuple[str, str, bool]], policy: str,
    dependents: Sequence[tuple[str, str, str]] = (),
) -> bytes:
    """``enqueue``'s extras with the dependency options added: ``depends_on`` as
    (physical queue, id, linked), ``linked`` meaning that dependency registered this job
    itself (a flow child), and ``dependents`` (physical queue, id, policy) that the job
    gets from the start (a flow child's parent on another queue)."""
    check_dependency_count(len(depends_on))
    check_dependency_count(len(dependents))
    x: dict[str, Any] = _decode(extras) if extras else {}
    if depends_on:
        x["depends_on"] = [[q, i, 1] if linked else [q, i] for q, i, linked in depends_on]
        if policy != "fail":
            x["dep_policy"] = policy
    if dependents:
        x["dependents"] = [[q, i, p] for q, i, p in dependents]
    return _encode(x) if x else b""


# -- the outbox ------------------------------------------------------------------------


class Op(NamedTuple):
    """One op of a queue's dependency outbox (see the module docstring)."""

    raw: str
    kind: str  # 'R' | 'L'
    word: str  # R: the outcome; L: the policy
    job_id: str  # the job of the outbox's queue
    other_queue: str
    other_id: str
    created_ms: int
    result: str


def pending_args(
    now: int, limit: int, repair: bool, events_maxlen: int, *, every: bool = False
) -> list[Any]:
    """ARGV of deps_pending.lua (``every``: every op, due or not, and no repair scan)."""
    if not 1 <= limit <= MAX_DEPS_OPS:
        raise InvalidArgument(f"limit must be 1..{MAX_DEPS_OPS}")
    return [now, limit, "all" if every else "1" if repair else "0", events_maxlen]


def parse_pending(reply: Any) -> list[Op]:
    """The ops deps_pending handed out (an op of a shape this client does not know is
    returned with kind ``"?"``: the caller leaves it to its writer's version)."""
    r = parse_ok("deps_pending", reply)
    n = int(r[1])
    ops: list[Op] = []
    for k in range(n):
        raw, created, result = (_text(v) for v in r[2 + 3 * k : 5 + 3 * k])
        parts = raw.split("\t")
        if len(parts) != 5 or parts[0] not in ("R", "L"):
            ops.append(Op(raw, "?", "", "", "", "", int(created), result))
            continue
        ops.append(Op(raw, parts[0], parts[1], parts[2], parts[3], parts[4], int(created),
                      result))
    return ops


def link_args(now: int, links: Sequence[tuple[str, str, str]]) -> list[Any]:
    """ARGV of deps_link.lua: (job id of the called queue, dependent ref, policy)."""
    args: list[Any] = [now, len(links)]
    for job_id, dependent, policy in links:
        args += (job_id, dependent, policy)
    return args


def parse_link(reply: Any) -> list[str]:
    """Per link: ``pending`` (registered), ``queued`` (the dependency had ended: its
    outcome is an op of its queue's outbox now) or ``gone`` (no such job)."""
    r = parse_ok("deps_link", reply)
    return r[2 : 2 + int(r[1])]


# most bytes of results one deps_resolve call carries (a server's query buffer is 1 GiB
# by default; many large results go in several calls)
_RESOLVE_BYTES = 8 << 20


def outcome_chunks(items: Sequence[tuple[Any, tuple[str, str, str, str]]]
                   ) -> list[Sequence[tuple[Any, tuple[str, str, str, str]]]]:
    """``items`` (anything, deps_resolve outcome) cut into calls of at most MAX_DEPS_OPS
    outcomes and about ``_RESOLVE_BYTES`` of results."""
    chunks: list[Sequence[tuple[Any, tuple[str, str, str, str]]]] = []
    start, size = 0, 0
    for k, (_, outcome) in enumerate(items):
        n = len(outcome[3])
        if k > start and (k - start >= MAX_DEPS_OPS or size + n > _RESOLVE_BYTES):
            chunks.append(items[start:k])
            start, size = k, 0
        size += n
    if start < len(items):
        chunks.append(items[start:])
    return chunks


def resolve_args(
    now: int, outcomes: Sequence[tuple[str, str, str, str]], events_maxlen: int
) -> list[Any]:
    """ARGV of deps_resolve.lua: (dependent id, dependency ref, outcome, result)."""
    args: list[Any] = [now, len(outcomes)]
    for item in outcomes:
        args += item
    args.append(events_maxlen)
    return args


def parse_resolve(reply: Any) -> tuple[list[str], bool]:
    """Per outcome: ``OK``, or ``NO_JOB`` when the dependent does not exist; and whether
    the call left work in the queue's own outbox (a dependent failed in turn)."""
    r = parse_ok("deps_resolve", reply)
    n = int(r[1])
    return [_text(v) for v in r[2 : 2 + n]], len(r) > 2 + n and r[2 + n] == "DEPS"


def ack_args(now: int, done: Sequence[tuple[str, str]]) -> list[Any]:
    """ARGV of deps_ack.lua: (op, ``done`` | ``retry``)."""
    args: list[Any] = [now, len(done)]
    for op, action in done:
        args += (op, action)
    return args


def parse_ack(reply: Any) -> int:
    """deps_ack's reply: how many ``retry`` ops it dropped as too old."""
    r = parse_ok("deps_ack", reply)
    return int(r[2]) if len(r) > 2 else 0


def dependency_results(raw: Any) -> dict[str, Any]:
    """From a job's HGETALL reply: each completed dependency's decoded result (None when
    it had none), by dependency job id, in ``depends_on`` order."""
    h = {_text(k): _text(v) for k, v in raw.items()}
    order = _decode(h["depends_on"]) if h.get("depends_on") else []
    out: dict[str, Any] = {}
    for r in order:
        if h.get("dep:" + r) == "completed":
            res = h.get("dres:" + r)
            out[split_ref(r)[1]] = None if not res else decode_payload(res)
    return out


def check_ref_parts(queue: object, job_id: object) -> tuple[str, str]:
    return validate_queue_name(queue), validate_job_id(job_id)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
