"""Plain reads done outside scripts (stats, job records, probes, layouts): the commands to
send for one physical queue and the parsing of their replies. Pure.

Commands are tuples for ``pipeline.execute_command(*command)``; each ``*_commands``
function has a ``*_READS`` constant saying how many commands it gives, so the replies of
several queues read in one pipeline can be split back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from omniq._keys import QueueKeys, validate_queue_name
from omniq._limits import MAX_PAGE, MAX_PARTITIONS
from omniq.errors import InvalidArgument, ProtocolError
from omniq.types import FlowInfo, GroupState, JobInfo, QueueStats

__all__ = [
    "FLOW_READS",
    "FlowWalk",
    "GROUP_READS",
    "INDEX_LANES",
    "JOB_READS",
    "PROBE_READS",
    "STATS_READS",
    "build_flow",
    "check_index_lane",
    "check_page_limit",
    "combine_group_states",
    "combine_stats",
    "decode_cursor",
    "dep_state_commands",
    "encode_cursor",
    "flow_node_commands",
    "group_state_commands",
    "index_page_commands",
    "index_score_commands",
    "parse_score",
    "merge_index_pages",
    "parse_group_state",
    "parse_scored",
    "ready_groups_commands",
    "job_commands",
    "job_info",
    "opt_int",
    "parse_dep_states",
    "parse_depends_on",
    "parse_flow_node",
    "parse_layout",
    "parse_probe",
    "parse_ref",
    "probe_commands",
    "queue_stats_from",
    "stats_commands",
]

Command = tuple[Any, ...]

STATS_READS = 10


def stats_commands(k: QueueKeys) -> list[Command]:
    """The reads of one queue's :class:`QueueStats` (``STATS_READS`` commands)."""
    return [
        ("EXISTS", k.paused),
        ("LLEN", k.wait),
        ("ZCARD", k.idx_wait),
        ("ZCARD", k.active),
        ("ZCARD", k.delayed),
        ("LLEN", k.failed),
        ("LLEN", k.completed),
        ("ZCARD", k.groups_ready),
        ("HMGET", k.stats, "last_activity_ms", "last_enqueue_ms", "last_reserve_ms",
         "last_finish_ms"),
        ("ZCARD", k.waiting_deps),
    ]


def queue_stats_from(queue: str, results: Sequence[Any]) -> QueueStats:
    """Build :class:`QueueStats` from the replies of :func:`stats_commands`."""
    paused, wait, idx_wait, active, delayed, failed, completed, ready, times, deps = results
    total = max(int(idx_wait), int(wait))
    t = [opt_int(v) for v in times]
    return QueueStats(
        queue=queue, paused=bool(paused), waiting=int(wait), group_waiting=total - int(wait),
        waiting_total=total, active=int(active), delayed=int(delayed), failed=int(failed),
        completed_kept=int(completed), groups_ready=int(ready), last_activity_ms=t[0],
        last_enqueue_ms=t[1], last_reserve_ms=t[2], last_finish_ms=t[3],
        waiting_deps=int(deps),
    )


def combine_stats(queue: str, each: Sequence[QueueStats]) -> QueueStats:
    """The stats of a logical queue from its partitions': counts summed, ``last_*`` times
    the latest, ``paused`` when any partition is."""
    if len(each) == 1 and each[0].queue == queue:
        return each[0]

    def last(name: str) -> int | None:
        values = [getattr(s, name) for s in each if getattr(s, name) is not None]
        return max(values) if values else None

    return QueueStats(
        queue=queue, paused=any(s.paused for s in each),
        waiting=sum(s.waiting for s in each),
        group_waiting=sum(s.group_waiting for s in each),
        waiting_total=sum(s.waiting_total for s in each),
        active=sum(s.active for s in each), delayed=sum(s.delayed for s in each),
        failed=sum(s.failed for s in each),
        completed_kept=sum(s.completed_kept for s in each),
        groups_ready=sum(s.groups_ready for s in each),
        last_activity_ms=last("last_activity_ms"), last_enqueue_ms=last("last_enqueue_ms"),
        last_reserve_ms=last("last_reserve_ms"), last_finish_ms=last("last_finish_ms"),
        waiting_deps=sum(s.waiting_deps for s in each),
    )


PROBE_READS = 3


def probe_commands(k: QueueKeys) -> list[Command]:
    """Cheap reads telling whether a queue is paused or looks reservable (groups parked
    by a rate limit count: the reservation answers when they may run)."""
    return [("EXISTS", k.paused), ("LLEN", k.wait), ("ZCARD", k.groups_ready),
            ("ZCARD", k.base + ":groups:limited")]


def parse_probe(results: Sequence[Any]) -> bool | None:
    """None when paused, else whether the queue has reservable-looking work."""
    paused, wait, ready, limited = results
    return None if paused else bool(int(wait) or int(ready) or int(limited))


def parse_layout(queue: str, value: Any) -> int:
    """The partition count stored in ``{queue}:partitions`` (0: none stored)."""
    if value is None:
        return 0
    text = value.decode() if isinstance(value, bytes) else str(value)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PARTITIONS:
        raise ProtocolError(f"corrupt partition layout of queue {queue!r}: {text!r}")
    return int(text)


def opt_int(v: Any) -> int | None:
    """A stored integer field, or None when empty or not an integer."""
    if v is None or v == "" or v == b"":
        return None
    try:
        return int(v)
    except ValueError:
        return None


_COUNTS = ("attempt", "max_attempts", "timeout_ms", "backoff_ms")  # int, 0 when unset
_TIMES = ("created_ms", "updated_ms", "queued_ms", "first_started_ms", "last_started_ms",
          "completed_ms", "failed_ms", "due_ms", "lock_until_ms", "last_error_ms",
          "progress_ms", "keep_completed_ms", "keep_failed_ms", "expire_ms",
          "dedup_ttl_ms", "expires_ms", "run_timeout_ms", "backoff_max_ms",
          "cancel_requested_ms", "occurrence_ms")
# str, None when unset
_TEXTS = ("gid", "lease_token", "last_error", "dedup_key", "backoff", "group_order",
          "on_failure", "schedule")


JOB_READS = 2


def job_commands(k: QueueKeys, job_id: str) -> list[Command]:
    """The reads of one job's :class:`JobInfo` (``JOB_READS`` commands): its hash and its
    dependents hash (pass both replies to :func:`job_info`)."""
    return [("HGETALL", k.job(job_id)), ("HGETALL", k.dependents(job_id))]


def _decoded(raw: Mapping[Any, Any] | None) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (raw or {}).items()}


def parse_ref(ref: object) -> tuple[str, str] | None:
    """A dependency ref ``"<queue>:<id>"`` as ``(physical queue, job id)``, split at the
    first ':' (queue names have none); None when it is not one."""
    if not isinstance(ref, str):
        return None
    queue, sep, jid = ref.partition(":")
    if not sep or not jid:
        return None
    try:
        validate_queue_name(queue)
    except InvalidArgument:
        return None
    return queue, jid


def parse_depends_on(value: Any) -> list[tuple[str, str]]:
    """The ``depends_on`` field of a job hash (a JSON array of refs, in order) as
    ``(queue, job id)`` pairs; empty when the field is absent or not such an array."""
    if value is None or value in ("", b""):
        return []
    try:
        items = json.loads(_text(value))
    except ValueError:
        return []
    if not isinstance(items, list):  # also Lua's cjson ``{}`` for an empty table
        return []
    return [r for r in map(parse_ref, items) if r is not None]


def _by_ref(f: Mapping[str, str], prefix: str, order: Sequence[str]) -> dict[str, str]:
    """The fields ``<prefix><ref>`` by ref: those of ``order`` first, in that order."""
    found = {name[len(prefix):]: v for name, v in f.items() if name.startswith(prefix)}
    out = {ref: found.pop(ref) for ref in order if ref in found}
    out.update(sorted(found.items()))
    return out


def job_info(queue: str, job_id: str, raw: Mapping[Any, Any],
             dependents: Mapping[Any, Any] | None = None) -> JobInfo:
    """Build a :class:`JobInfo` from an HGETALL reply (str or bytes, any field missing)
    and, when read (:func:`job_commands`), the HGETALL reply of its dependents hash.
    ``fields`` keeps every field of the hash as it is (``dep:<ref>`` and ``dres:<ref>``
    included)."""
    f = _decoded(raw)
    values: dict[str, Any] = {name: opt_int(f.get(name)) or 0 for name in _COUNTS}
    values.update((name, opt_int(f.get(name))) for name in _TIMES)
    values.update((name, f.get(name) or None) for name in _TEXTS)
    depends_on = parse_depends_on(f.get("depends_on"))
    refs = [q + ":" + j for q, j in depends_on]
    return JobInfo(
        queue=queue,
        job_id=f.get("id") or job_id,
        state=f.get("state", ""),
        payload_raw=f.get("payload", ""),
        result_raw=f.get("result") or None,
        progress_raw=f.get("progress") or None,
        backoff_jitter=f.get("backoff_jitter") == "1",
        fields=f,
        depends_on=depends_on,
        dependencies=_by_ref(f, "dep:", refs),
        deps_left=opt_int(f.get("deps_left")),
        dep_policy=f.get("dep_policy") or "fail",
        dependents=sorted(r for r in map(parse_ref, _decoded(dependents)) if r is not None),
        dependency_results_raw=_by_ref(f, "dres:", refs),
        **values,
    )


# -- flows (get_flow: one round trip per level of the tree) ------------------------------

FLOW_READS = 1

Ref = tuple[str, str]
"""A job as ``(physical queue, job id)``."""


def flow_node_commands(k: QueueKeys, job_id: str) -> list[Command]:
    """A job's state and dependencies (``FLOW_READS`` commands)."""
    return [("HMGET", k.job(job_id), "state", "depends_on")]


def parse_flow_node(reply: Sequence[Any]) -> tuple[str | None, list[Ref]]:
    """The reply of :func:`flow_node_commands`: the state (None when the job does not
    exist) and the dependencies in order."""
    state, depends_on = reply
    if state is None:
        return None, []
    return _text(state), parse_depends_on(depends_on)


def dep_state_commands(k: QueueKeys, job_id: str, deps: Sequence[Ref]) -> list[Command]:
    """The state a job records for each of ``deps`` (one ``HMGET`` of its ``dep:<ref>``
    fields)."""
    return [("HMGET", k.job(job_id), *("dep:" + q + ":" + j for q, j in deps))]


def parse_dep_states(deps: Sequence[Ref], reply: Sequence[Any]) -> dict[Ref, str | None]:
    """The reply of :func:`dep_state_commands` by dependency (None: not recorded)."""
    return {d: None if v is None else _text(v) for d, v in zip(deps, reply, strict=True)}


class FlowWalk:
    """The reads of ``get_flow``, one level of the tree at a time (pure)::

        walk = FlowWalk(root, state, deps, max_nodes)
        while names := walk.next_level():
            walk.take(names, await routing.read_each(names, walk.commands))
        return walk.tree()

    Each level reads the state and dependencies of the jobs first reached at that level
    (at most ``max_nodes`` jobs in all, each once: a cycle ends) and the state their
    parents record for each dependency read, grouped by physical queue.
    """

    def __init__(self, root: Ref, state: str, deps: list[Ref], max_nodes: int) -> None:
        self.root = root
        self.max_nodes = max_nodes
        self.nodes: dict[Ref, tuple[str, list[Ref]]] = {root: (state, deps)}
        self.dep_states: dict[tuple[Ref, Ref], str | None] = {}
        self._level = [root]
        self._new: dict[str, list[str]] = {}  # physical queue -> ids to read
        self._asks: dict[str, list[Ref]] = {}  # physical queue -> parents to ask
        self._wanted: dict[Ref, list[Ref]] = {}  # parent -> dependencies to ask about

    def next_level(self) -> list[str]:
        """The physical queues to read for the next level (empty: the walk is over)."""
        self._new, self._asks, self._wanted = {}, {}, {}
        parents = [r for r in self._level if self.nodes[r][1]]
        for ref in parents:
            for dep in self.nodes[ref][1]:
                if dep not in self.nodes and len(self.nodes) < self.max_nodes:
                    self.nodes[dep] = ("missing", [])  # until read
                    self._new.setdefault(dep[0], []).append(dep[1])
        for ref in parents:
            wanted = [d for d in self.nodes[ref][1] if d in self.nodes]
            if wanted:
                self._wanted[ref] = wanted
                self._asks.setdefault(ref[0], []).append(ref)
        self._level = [(q, j) for q, ids in self._new.items() for j in ids]
        return list(dict.fromkeys([*self._new, *self._asks]))

    def commands(self, k: QueueKeys) -> list[Command]:
        """The reads of one physical queue of the level."""
        return [*(c for j in self._new.get(k.name, ()) for c in flow_node_commands(k, j)),
                *(c for r in self._asks.get(k.name, ())
                  for c in dep_state_commands(k, r[1], self._wanted[r]))]

    def take(self, names: Sequence[str], replies: Sequence[Sequence[Any]]) -> None:
        """The replies of :meth:`commands` for each of ``names``."""
        for name, got in zip(names, replies, strict=True):
            ids = self._new.get(name, [])
            for j, reply in zip(ids, got[:len(ids)], strict=True):
                state, deps = parse_flow_node(reply)
                self.nodes[(name, j)] = (state or "missing", deps)
            for r, reply in zip(self._asks.get(name, []), got[len(ids):], strict=True):
                for dep, seen in parse_dep_states(self._wanted[r], reply).items():
                    self.dep_states[(r, dep)] = seen

    def tree(self) -> FlowInfo:
        """The tree read so far (:func:`build_flow`)."""
        return build_flow(self.root, self.nodes, self.dep_states, self.max_nodes)


class _Frame:
    __slots__ = ("children", "dependency_state", "deps", "next", "ref", "truncated")

    def __init__(self, ref: Ref, dependency_state: str | None, deps: list[Ref]) -> None:
        self.ref = ref
        self.dependency_state = dependency_state
        self.deps = deps
        self.next = 0
        self.children: list[FlowInfo] = []
        self.truncated = False


def build_flow(root: Ref, nodes: Mapping[Ref, tuple[str, list[Ref]]],
               dep_states: Mapping[tuple[Ref, Ref], str | None], max_nodes: int) -> FlowInfo:
    """The tree of ``root`` from the jobs read: ``nodes`` (state, or ``"missing"``, and
    dependencies of each job read) and ``dep_states`` (the state a parent records for a
    dependency, by ``(parent, dependency)``).

    Depth first, without recursion (a chain may be thousands of jobs long): a job reached
    again (a shared dependency, a cycle) is a leaf, ``truncated`` when it has dependencies;
    dependencies not read, or past ``max_nodes`` nodes, are left out and their parent is
    ``truncated``."""
    count = 1
    expanded = {root}
    stack = [_Frame(root, None, nodes[root][1])]
    while True:
        top = stack[-1]
        if top.next < len(top.deps):
            child = top.deps[top.next]
            top.next += 1
            if child not in nodes or count >= max_nodes:
                top.truncated = True
                continue
            count += 1
            seen = dep_states.get((top.ref, child))
            if child in expanded:
                state, deps = nodes[child]
                top.children.append(FlowInfo(queue=child[0], job_id=child[1], state=state,
                                             dependency_state=seen, truncated=bool(deps)))
            else:
                expanded.add(child)
                stack.append(_Frame(child, seen, nodes[child][1]))
            continue
        stack.pop()
        info = FlowInfo(queue=top.ref[0], job_id=top.ref[1], state=nodes[top.ref][0],
                        dependency_state=top.dependency_state, children=top.children,
                        truncated=top.truncated)
        if not stack:
            return info
        stack[-1].children.append(info)


# -- lane pages and groups (the monitor's reads) -----------------------------------------

INDEX_LANES = ("wait", "active", "delayed", "failed", "completed", "waiting_deps")
"""The lanes with an index (score: the lane's time, member: job id): ``B:idx:<lane>``, and
``B:waiting_deps`` (jobs waiting for their dependencies, by the time they entered it)."""


def _index_key(k: QueueKeys, lane: str) -> str:
    return k.waiting_deps if lane == "waiting_deps" else k.base + ":idx:" + lane


def check_index_lane(lane: object) -> str:
    """One of :data:`INDEX_LANES`."""
    if lane not in INDEX_LANES:
        raise InvalidArgument(f"unknown lane {lane!r}: use one of {', '.join(INDEX_LANES)}")
    return str(lane)


def check_page_limit(limit: object) -> int:
    """A page size, 1 to ``MAX_PAGE``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be an int from 1 to {MAX_PAGE}")
    return limit


def index_page_commands(k: QueueKeys, lane: str, offset: int, count: int,
                        reverse: bool) -> list[Command]:
    """``count`` members of a lane's index from ``offset``, with scores."""
    rev = ("REV",) if reverse else ()
    return [("ZRANGE", _index_key(k, lane), offset, offset + count - 1, *rev, "WITHSCORES")]


def index_score_commands(k: QueueKeys, lane: str, job_ids: Sequence[str]) -> list[Command]:
    """The index score of each job in a lane (one ``ZSCORE`` per id)."""
    return [("ZSCORE", _index_key(k, lane), j) for j in job_ids]


def parse_score(v: Any) -> int | None:
    """A ``ZSCORE`` reply: the score, None for a member that is not there."""
    return None if v is None else _score(v)


def ready_groups_commands(k: QueueKeys, offset: int, count: int) -> list[Command]:
    """``count`` gids of ``groups:ready`` from ``offset``, with scores."""
    return [("ZRANGE", k.groups_ready, offset, offset + count - 1, "WITHSCORES")]


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _score(v: Any) -> int:
    try:
        return int(float(_text(v)))
    except ValueError:
        raise ProtocolError(f"not a sorted-set score: {v!r}") from None


def parse_scored(reply: Any) -> list[tuple[str, int]]:
    """A ``ZRANGE ... WITHSCORES`` reply (flat RESP2 list or RESP3 pairs) as
    ``(member, score)`` pairs."""
    items = list(reply or [])
    if items and isinstance(items[0], list | tuple):
        return [(_text(m), _score(sc)) for m, sc in items]
    return [(_text(items[i]), _score(items[i + 1])) for i in range(0, len(items), 2)]


def encode_cursor(offsets: Sequence[int]) -> str:
    """The cursor of a page position: the offset reached in each partition's index."""
    return ",".join(str(o) for o in offsets)


def decode_cursor(cursor: str | None, parts: int) -> list[int]:
    """The per-partition offsets of a cursor (None: the start)."""
    if cursor is None:
        return [0] * parts
    pieces = cursor.split(",") if isinstance(cursor, str) else []
    if len(pieces) != parts or not all(p.isdigit() for p in pieces):
        raise InvalidArgument(f"not a cursor of this queue ({parts} partition(s)): {cursor!r}")
    return [int(p) for p in pieces]


def merge_index_pages(rows: Sequence[Sequence[tuple[str, int]]], offsets: Sequence[int],
                      limit: int, reverse: bool
                      ) -> tuple[list[tuple[int, str, int]], str | None]:
    """Merge one page read from each partition (``limit`` rows from its offset) by
    (score, id), ascending or descending; returns the first ``limit`` as
    ``(partition, job_id, score)`` and the next cursor (None when every partition is
    exhausted)."""
    cands = [(score, jid, i) for i, part in enumerate(rows) for jid, score in part]
    cands.sort(key=lambda c: (c[0], c[1]), reverse=reverse)
    picked = cands[:limit]
    taken = [0] * len(rows)
    for _, _, i in picked:
        taken[i] += 1
    more = any(taken[i] < len(part) or len(part) == limit for i, part in enumerate(rows))
    nxt = encode_cursor([o + t for o, t in zip(offsets, taken, strict=True)]) if more else None
    return [(i, jid, score) for score, jid, i in picked], nxt


GROUP_READS = 6


def group_state_commands(k: QueueKeys, gid: str) -> list[Command]:
    """The reads of one group's :class:`GroupState` (``GROUP_READS`` commands)."""
    return [("GET", k.group(gid, "inflight")), ("GET", k.group(gid, "limit")),
            ("LLEN", k.group(gid, "wait")), ("ZSCORE", k.groups_ready, gid),
            ("GET", k.group(gid, "held")), ("GET", k.group(gid, "blocked"))]


def parse_group_state(gid: str, results: Sequence[Any]) -> GroupState:
    """Build a :class:`GroupState` from the replies of :func:`group_state_commands`."""
    inflight, limit, waiting, score, held, blocked = results
    lim = opt_int(limit)
    return GroupState(gid=gid, inflight=opt_int(inflight) or 0,
                      limit=lim if lim and lim > 0 else None, ready=score is not None,
                      ready_ms=None if score is None else _score(score),
                      waiting=int(waiting or 0), held_by=None if held is None else _text(held),
                      blocked_by=None if blocked is None else _text(blocked))


def combine_group_states(gid: str, each: Sequence[GroupState]) -> GroupState:
    """A group of a partitioned queue lives in one partition: the state that has any data
    (counts summed, in case an old layout left some elsewhere)."""
    if len(each) == 1:
        return each[0]
    limits = [s.limit for s in each if s.limit is not None]
    scores = [s.ready_ms for s in each if s.ready_ms is not None]
    return GroupState(gid=gid, inflight=sum(s.inflight for s in each),
                      limit=max(limits) if limits else None, ready=any(s.ready for s in each),
                      ready_ms=min(scores) if scores else None,
                      waiting=sum(s.waiting for s in each),
                      held_by=next((s.held_by for s in each if s.held_by), None),
                      blocked_by=next((s.blocked_by for s in each if s.blocked_by), None))
