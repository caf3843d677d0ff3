"""Model-based test: the real scripts (through AsyncOmniq) against model.py.

A hypothesis state machine applies the same random operations, with the same explicit
clock (``now_ms``), to a real database and to the reference model, and after every step
compares the reply and the whole keyspace: every key, its type, its full value (job hashes
field by field, lists in order, zset scores, stats counters) and whether it expires. The
event stream ``{q}:events`` is part of it: XRANGE of the real stream, entry by entry, must
equal the events the model says the operations so far produced (ids strictly increasing).

Schedules take part like any other operation: interval (1 s, 3 s) and cron schedules
(6-field every few seconds, one in a DST zone, minutely in a half-hour zone, hourly) with
every misfire policy, jitter, start / end bounds, gids and dedup keys; created, replaced
(or unchanged) through schedule() or schedule_set directly (a stale rev: CHANGED), paused,
resumed, removed, read, fired at the machine's clock (which also jumps to the next fire
time), and fired with plans made before another call changed the schedule (STALE, PAUSED,
GONE). Their jobs then meet every other rule (leases carry schedule and occurrence_ms).

Dependencies (docs/workflows.md) too: jobs published with ``depends_on``
on the same queue and on the other queue (or partition), with each
``on_dependency_failure`` policy: through publish and publish_many (a chain in one batch)
for dependencies on their own queue; for the others, publish's sequence (deps_link first,
then enqueue naming them linked, then the delivery) run by the machine on its clock
(publish runs its links and delivery on the server's clock); and by enqueue directly
(linked refs or not, self-dependencies, dependencies that do not exist). Flows of two or
three levels over both queues, written bottom up with pre-registered parents the way
publish_flow writes them. Outboxes delivered by calling deps_pending, deps_link,
deps_resolve and deps_ack directly (ops in any order, grouped or one by one, some twice,
some never acknowledged, old ones delivered again, orphans dropped), by
resolve_dependencies (the client's delivery and its cascade), and by the repair scan once
its time comes. The client delivers an outbox itself after an ack that answers DEPS, on
the server's clock: the machine records that request instead (and checks it happens
exactly when the model says DEPS) and delivers on its own clock.

``OMNIQ_MODEL_EXAMPLES`` sets the number of examples (default 200; e.g. 5000 for a long
run), ``OMNIQ_MODEL_STEPS`` the steps per example (default 30).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

import msgspec
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from keydump import dump_keyspace
from model import (
    INF,
    SCHED_DEF,
    SERVER_CLOCK,
    FirePlanT,
    Model,
    QueueModel,
    cut_utf8,
    first_fire,
    plan_fire,
    resume_next,
)

from omniq import (
    AsyncOmniq,
    CancelRequested,
    FireResult,
    InvalidArgument,
    JobSpec,
    Lease,
    ScriptError,
)
from omniq._limits import (
    DEFAULT_BACKOFF_MS,
    DEFAULT_EVENTS_MAXLEN,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MISFIRE_GRACE_MS,
    DEFAULT_TIMEOUT_MS,
)
from omniq._protocol import admin, deps
from omniq._protocol import enqueue as enq
from omniq._protocol import schedules as sched
from omniq._protocol.enqueue import JobOptions
from omniq._timing import FirePlan
from omniq.aio._connect import is_cluster_url, plain_url
from omniq.types import Ack, ReserveResult, ScheduleInfo

T0 = 1_000_000
QUEUES = ("q1", "q2")
GIDS = (None, "a", "b", "c")
JOB_IDS = tuple(f"j{i}" for i in range(10))
LANES = ("wait", "gwait", "delayed", "failed", "completed", "waiting_deps")
DEP_POLICIES = ("fail", "ignore", "wait")
FLOW_IDS = ("f1", "f2", "f3", "f4", "f5", "f6")
# the job-control options a flow node takes (FlowJob): the others are left out of its spec
FLOW_CONTROLS = ("expire_in_ms", "run_timeout_ms", "backoff", "backoff_max_ms",
                 "backoff_jitter")
PARENTS = ("p1", "p2")
CHILDREN = ("c1", "c2", "c3")
WEEK_MS = 7 * 86_400_000
LONG_ERROR = "é" * 2100  # 4200 bytes: cut on a character boundary at 4096 bytes

EXAMPLES = int(os.environ.get("OMNIQ_MODEL_EXAMPLES", "200"))
STEPS = int(os.environ.get("OMNIQ_MODEL_STEPS", "30"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_enc = msgspec.json.Encoder()


def encoded(value: Any) -> str:
    return _enc.encode(value).decode()


def reserve_tuple(res: ReserveResult | None) -> tuple[Any, ...] | None:
    if res is None:
        return None
    if res.status == "LIMITED":
        return ("LIMITED", res.retry_after_ms, res.limited_by)
    if res.more:
        return ("EMPTY", "MORE")
    if res.status != "JOB":
        return (res.status,)
    return ("JOB", [(j.job_id, j.payload_raw, j.lock_until_ms, j.attempt, j.max_attempts, j.gid,
                     j.lease_token, j.timeout_ms, j.run_timeout_ms, j.schedule, j.occurrence_ms)
                    for j in res.jobs])


def outcome_tuple(o: Any) -> tuple[Any, ...]:
    if o is None:
        return ("OK",)
    if isinstance(o, ScriptError):
        return ("ERR", o.code)
    return ("RETRY", o.due_ms) if o.status == "RETRY" else ("FAILED",)


job_specs = st.fixed_dictionaries({
    "id": st.sampled_from(JOB_IDS),
    "gid": st.sampled_from(GIDS),
    "group_limit": st.sampled_from([0, 0, 1, 2, 3]),
    "max_attempts": st.sampled_from([1, 2, 3]),
    "timeout_ms": st.sampled_from([100, 1000, 5000]),
    "backoff_ms": st.sampled_from([0, 50, 1000]),
    "when": st.sampled_from([("now", 0), ("now", 0), ("delay", 200), ("delay", 3000),
                             ("due", -100), ("due", 0), ("due", 150)]),
    "payload": st.sampled_from([{}, {"n": 1}, [1, "é"], {"deep": {"x": [None, True]}}]),
    # per-publish keep_completed_ms / keep_failed_ms (None: the client's)
    "keep_ms": st.sampled_from([(None, None), (None, None), (10, None), (None, 10),
                                (0, 0), (100, 1000)]),
    # job-control options (publish keyword arguments; the model reads the same names)
    "control": st.sampled_from([
        {}, {}, {}, {"run_timeout_ms": 500}, {"backoff_max_ms": 100},
        {"backoff": "exp"}, {"backoff": "exp", "backoff_max_ms": 2000},
        {"backoff": "exp", "backoff_jitter": True}, {"backoff_jitter": True},
        {"group_order": "strict"}, {"group_order": "strict", "on_failure": "block"},
        {"group_order": "strict", "backoff": "exp", "backoff_jitter": True},
        # dedup TTLs far longer than a run: the server's PEXPIRE (real clock) never fires
        # while the model's 'until' (the test's clock) may pass
        {"dedup_key": "d1"}, {"dedup_key": "d1", "dedup_ttl_ms": 600_000},
        {"dedup_key": "d2", "dedup": "replace"},
        {"dedup_key": "d2", "dedup": "replace", "dedup_ttl_ms": 900_000},
        {"expire_in_ms": 100}, {"expire_in_ms": 5000}, {"expires_ms": T0 + 300},
        {"dedup_key": "d1", "expire_in_ms": 100}]),
}).map(lambda s: {**s, "gid": s["gid"] or "a"} if s["control"].get("group_order") else s)
KEEP_MS = st.sampled_from([0, 0, 1, 10, 1000])  # the client's keep_completed_ms / keep_failed_ms


def flow_spec(s: dict[str, Any], job_id: str) -> dict[str, Any]:
    """A job spec as a flow node: its id, and only the job controls a FlowJob takes."""
    control = {k: v for k, v in s["control"].items() if k in FLOW_CONTROLS}
    return {**s, "id": job_id, "control": control}


PROGRESS_VALUES = st.sampled_from([0, 50.5, "half", {"pct": 50, "step": "é"}, [1, None]])

SCHEDULE_NAMES = ("s1", "s2", "s3")
# every_ms, or (cron, tz): 1 s and 3 s intervals; a 6-field cron every 5 s, one every 3 s in
# a zone with DST, one every minute in a half-hour zone, one hourly (reached by reach_fire)
SCHEDULE_TIMINGS = (1000, 3000, 1000, ("*/5 * * * * *", "UTC"),
                    ("*/3 * * * * *", "America/New_York"), ("* * * * *", "Asia/Kolkata"),
                    ("0 * * * *", "UTC"))
schedule_specs = st.fixed_dictionaries({
    "name": st.sampled_from(SCHEDULE_NAMES),
    "timing": st.sampled_from(SCHEDULE_TIMINGS),
    "misfire": st.sampled_from(["once", "skip", "all"]),
    "grace": st.sampled_from([None, None, 0, 2000]),  # None: the default (60 s)
    "jitter": st.sampled_from([0, 0, 500]),
    # start_ms / end_ms relative to the clock (None: not given; "epoch": 0, so every
    # occurrence since 1970 is due at once: the catch-up cap and the misfire policies)
    "start": st.sampled_from([None, None, None, -4000, 2000, "epoch"]),
    "end": st.sampled_from([None, None, None, 8000, -1]),
    "payload": st.sampled_from([None, {"n": 1}, [1, "é"]]),
    "opts": st.sampled_from([
        {}, {}, {}, {"gid": "a"}, {"gid": "b", "group_limit": 2}, {"dedup_key": "d1"},
        {"dedup_key": "d3", "dedup": "replace"}, {"dedup_key": "d3", "dedup_ttl_ms": 600_000},
        {"expire_in_ms": 100}, {"max_attempts": 1, "timeout_ms": 100, "backoff_ms": 0},
        {"keep_completed_ms": 10, "keep_failed_ms": 0},
        {"gid": "a", "group_order": "strict", "backoff": "exp"}, {"run_timeout_ms": 500}]),
})


class QueueMachine(RuleBasedStateMachine):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        if is_cluster_url(url):
            self.r = redis.RedisCluster.from_url(plain_url(url), decode_responses=True)
            self.r.flushdb(target_nodes=redis.RedisCluster.PRIMARIES)
        else:
            self.r = redis.Redis.from_url(url, decode_responses=True)
            self.r.flushdb()
        self.loop = asyncio.new_event_loop()
        self.client: AsyncOmniq | None = None
        self.model = Model()
        self.now = T0
        self.queues: tuple[str, ...] = ("q1",)
        self.issued: dict[tuple[str, str], list[str]] = {}  # (queue, job id) -> tokens
        self.keep_completed = 100
        self.keep_failed: int | None = None
        self.keep_ms = (0, 0)  # the client's keep_completed_ms, keep_failed_ms
        self.child_ttl = WEEK_MS
        self.sched_given: dict[tuple[str, str], dict[str, Any]] = {}  # last schedule() kwargs
        # the client's own deliveries of dependency outboxes (after an ack answering DEPS,
        # after a publish with dependencies elsewhere): recorded, not run (see
        # _record_deliveries); and every outbox op handed out so far, to deliver again
        self.auto_deliveries: list[list[str]] = []
        self.op_log: list[tuple[str, tuple[str, str, str]]] = []

    # -- plumbing ----------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def attempt(self, coro: Coroutine[Any, Any, Any]) -> tuple[Any, str | None]:
        """(result, None) or (None, error code)."""
        try:
            return self.run(coro), None
        except ScriptError as exc:
            return None, exc.code

    @property
    def c(self) -> AsyncOmniq:
        assert self.client is not None
        return self.client

    def teardown(self) -> None:
        if self.client is not None:
            self.run(self.client.aclose())
        self.loop.close()
        self.r.close()

    def q(self, data: st.DataObject, prefer: Any = None) -> tuple[str, QueueModel]:
        """A queue; with ``prefer`` (a QueueModel predicate) mostly one where it holds."""
        names = list(self.queues)
        if prefer is not None:
            good = [n for n in names if prefer(self.model.queue(n))]
            if good and data.draw(st.sampled_from([True] * 3 + [False]), label="prefer"):
                names = good
        name = data.draw(st.sampled_from(names), label="queue")
        return name, self.model.queue(name)

    def lane_for(self, data: st.DataObject, qm: QueueModel, job_id: str) -> str:
        """Mostly the lane the job is in, sometimes any lane."""
        h = qm.jobs.get(job_id, {})
        state = h.get("state", "")
        lane = "gwait" if state == "wait" and h.get("gid") else state
        if lane in LANES and data.draw(st.sampled_from([True] * 3 + [False]), label="match"):
            return lane
        return data.draw(st.sampled_from(LANES), label="lane")

    def record(self, queue: str, res: tuple[Any, ...] | None) -> None:
        if res and res[0] == "JOB":
            for job in res[1]:
                self.issued.setdefault((queue, job[0]), []).append(job[6])

    def _record_deliveries(self) -> None:
        """The client delivers a queue's dependency outbox by itself after an ack that
        answered DEPS and after a publish with dependencies on other queues, on the
        server's clock (``now=0``). The machine keeps the clock: it records those requests
        (checked against the model) and delivers explicitly (deliver, resolve_deps ...);
        a delivery given a clock (resolve_dependencies(now_ms=...)) runs."""
        client = self.c
        original = client._deliver_dependencies

        async def deliver(parts: Any, *, repair: bool = False, now: int = 0,
                          every: bool = False) -> int:
            if now == 0:
                self.auto_deliveries.append(list(parts))
                return 0
            return await original(parts, repair=repair, now=now, every=every)

        client._deliver_dependencies = deliver  # type: ignore[method-assign]

    def take_auto(self) -> list[list[str]]:
        out, self.auto_deliveries = self.auto_deliveries, []
        return out

    def check_ack(self, queue: str, got: tuple[Any, ...], want: tuple[Any, ...]) -> None:
        """An ack's outcome; the model's ('OK' | 'FAILED', 'DEPS') is the plain outcome
        plus the client's delivery of ``queue``'s outbox."""
        deps_left = want[1:] == ("DEPS",) and want[0] in ("OK", "FAILED")
        assert got == (want[:1] if deps_left else want), want
        assert self.take_auto() == ([[queue]] if deps_left else []), want

    def lease(self, data: st.DataObject) -> tuple[str, str, str]:
        """A (queue, job id, token) to heartbeat or ack: mostly a held lease, sometimes a
        stale, foreign, empty or made-up token, or a job that holds no lease at all."""
        pick = data.draw(st.sampled_from(["held"] * 7 + ["any"]), label="pick")
        busy = [n for n in self.queues if self.model.queue(n).active]
        if pick == "held" and busy:
            queue = data.draw(st.sampled_from(busy), label="queue")
            qm = self.model.queue(queue)
        else:
            queue, qm = self.q(data)
        held = sorted(qm.active)
        known = sorted({j for (qn, j) in self.issued if qn == queue} | set(qm.jobs))
        pool = held if held and pick == "held" else known
        job_id = data.draw(st.sampled_from(pool or list(JOB_IDS)), label="job")
        mine = self.issued.get((queue, job_id), [])
        others = [t for (qn, j), ts in self.issued.items() if (qn, j) != (queue, job_id)
                  for t in ts]
        kind = data.draw(st.sampled_from(
            ["current"] * 5 + ["stale", "foreign", "empty", "bogus"]), label="token")
        current = qm.jobs.get(job_id, {}).get("lease_token") or (mine[-1] if mine else "")
        if kind == "current" and current:
            token = current
        elif kind == "stale" and mine:
            token = data.draw(st.sampled_from(mine), label="stale")
        elif kind == "foreign" and others:
            token = data.draw(st.sampled_from(others), label="foreign")
        elif kind == "empty":
            token = ""
        else:
            token = "f" * 40
        return queue, job_id, token

    # -- setup ---------------------------------------------------------------------------

    def ids(self, data: st.DataObject, qm: QueueModel, first: Any = ()) -> list[str]:
        """Mostly jobs that exist (``first`` if any), sometimes any id (NO_JOB ...)."""
        known = sorted(first) or sorted(qm.jobs)
        which = data.draw(st.sampled_from(["known"] * 4 + ["any"]), label="existing?")
        pool = known if known and which == "known" else JOB_IDS
        return data.draw(st.lists(st.sampled_from(pool), max_size=4), label="ids")

    @initialize(
        keep_completed=st.sampled_from([0, 1, 3, 100]),
        keep_failed=st.sampled_from([None, None, 0, 2]),
        child_ttl=st.sampled_from([0, WEEK_MS]),
        two_queues=st.booleans(),
        seed=st.lists(job_specs, max_size=8, unique_by=lambda s: s["id"]),
        keep_completed_ms=KEEP_MS,
        keep_failed_ms=KEEP_MS,
        events_maxlen=st.sampled_from([DEFAULT_EVENTS_MAXLEN] * 3 + [0]),
        sched_seed=st.lists(schedule_specs, max_size=2, unique_by=lambda s: s["name"]),
    )
    def setup(self, keep_completed: int, keep_failed: int | None, child_ttl: int,
              two_queues: bool, seed: list[dict[str, Any]], keep_completed_ms: int = 0,
              keep_failed_ms: int = 0, events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
              sched_seed: list[dict[str, Any]] | None = None) -> None:
        self.keep_completed, self.keep_failed, self.child_ttl = (
            keep_completed, keep_failed, child_ttl)
        self.keep_ms = (keep_completed_ms, keep_failed_ms)
        self.model.events_maxlen = events_maxlen
        self.client = AsyncOmniq(url=self.url, keep_completed=keep_completed,
                                 keep_failed=keep_failed, child_ttl_ms=child_ttl,
                                 keep_completed_ms=keep_completed_ms,
                                 keep_failed_ms=keep_failed_ms, events_maxlen=events_maxlen)
        self._record_deliveries()
        self.queues = QUEUES if two_queues else QUEUES[:1]
        if seed:
            self._publish_many(self.queues[-1], seed)
        for spec in sched_seed or ():
            self._schedule(None, self.queues[0], spec)

    # -- clock ---------------------------------------------------------------------------

    @rule(ms=st.sampled_from([1, 10, 100, 1000, 5000]))
    def tick(self, ms: int) -> None:
        self.now += ms

    # -- publishing ----------------------------------------------------------------------

    def _model_job(self, s: dict[str, Any]) -> dict[str, Any]:
        kind, value = s["when"]
        kc, kf = s["keep_ms"]
        return {
            "id": s["id"], "payload": encoded(s["payload"]), "max_attempts": s["max_attempts"],
            "timeout_ms": s["timeout_ms"], "backoff_ms": s["backoff_ms"],
            "due_ms": self.now + value if kind == "due" else 0,
            "delay_ms": value if kind == "delay" else 0,
            "gid": s["gid"] or "", "group_limit": s["group_limit"],
            "keep_completed_ms": self.keep_ms[0] if kc is None else kc,
            "keep_failed_ms": self.keep_ms[1] if kf is None else kf,
            "control": s["control"],
        }

    @rule(data=st.data(), spec=job_specs)
    def publish(self, data: st.DataObject, spec: dict[str, Any]) -> None:
        queue, qm = self.q(data)
        mj = self._model_job(spec)
        got, code = self.attempt(self.c.publish(
            queue, spec["payload"], job_id=spec["id"], max_attempts=spec["max_attempts"],
            timeout_ms=spec["timeout_ms"], backoff_ms=spec["backoff_ms"], due_ms=mj["due_ms"],
            delay_ms=mj["delay_ms"], gid=spec["gid"], group_limit=spec["group_limit"],
            keep_completed_ms=spec["keep_ms"][0], keep_failed_ms=spec["keep_ms"][1],
            **spec["control"], now_ms=self.now))
        want = qm.enqueue(self.now, [mj])
        assert (("OK", 1) if code is None else ("ERR", code)) == want[:2], want
        assert code is not None or got == (want[2] if len(want) > 2 else spec["id"])

    @rule(data=st.data(), specs=st.lists(job_specs, min_size=1, max_size=3))
    def publish_many(self, data: st.DataObject, specs: list[dict[str, Any]]) -> None:
        self._publish_many(self.q(data)[0], specs)

    @staticmethod
    def _job_specs(specs: list[dict[str, Any]], models: list[dict[str, Any]]) -> list[JobSpec]:
        return [
            JobSpec(payload=s["payload"], job_id=s["id"], gid=s["gid"],
                    group_limit=s["group_limit"], max_attempts=s["max_attempts"],
                    timeout_ms=s["timeout_ms"], backoff_ms=s["backoff_ms"],
                    due_ms=m["due_ms"], delay_ms=m["delay_ms"],
                    keep_completed_ms=s["keep_ms"][0], keep_failed_ms=s["keep_ms"][1],
                    **s["control"])
            for s, m in zip(specs, models, strict=True)
        ]

    def _publish_many(self, queue: str, specs: list[dict[str, Any]]) -> None:
        qm = self.model.queue(queue)
        models = [self._model_job(s) for s in specs]
        jobs = self._job_specs(specs, models)
        got, code = self.attempt(self.c.publish_many(queue, jobs, now_ms=self.now))
        want = qm.enqueue(self.now, models)
        assert (("OK", len(specs)) if code is None else ("ERR", code)) == want[:2], want
        assert code is not None or got == (list(want[2:]) if len(want) > 2
                                           else [s["id"] for s in specs])

    # -- leasing -------------------------------------------------------------------------

    @rule(data=st.data(), count=st.integers(1, 3))
    def reserve(self, data: st.DataObject, count: int) -> None:
        self._reserve(data, count)

    @precondition(lambda self: any(q.wait or q.ready for q in self.model.queues.values()))
    @rule(data=st.data(), count=st.integers(1, 3))
    def reserve_ready(self, data: st.DataObject, count: int) -> None:
        self._reserve(data, count)

    def _reserve(self, data: st.DataObject, count: int, queue: str | None = None) -> None:
        if queue is None:
            queue = self.q(data)[0]
        qm = self.model.queue(queue)
        got = reserve_tuple(self.run(self.c.reserve_many(queue, count, now_ms=self.now)))
        want = qm.reserve(self.now, count)
        assert got == want
        self.record(queue, got)

    def held(self) -> bool:
        return any(q.active for q in self.model.queues.values())

    @precondition(held)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        queue, job_id, token = self.lease(data)
        got, code = self.attempt(self.c.heartbeat(queue, job_id, token, now_ms=self.now))
        want = self.model.queue(queue).heartbeat(self.now, [(job_id, token)])[0]
        status = "CANCEL" if isinstance(got, CancelRequested) else "OK"
        assert ((status, got) if code is None else ("ERR", code)) == want

    @rule(data=st.data(), n=st.integers(1, 3))
    def heartbeat_many(self, data: st.DataObject, n: int) -> None:
        leases = [self.lease(data) for _ in range(n)]
        got = self.run(self.c.heartbeat_many([Lease(*x) for x in leases], now_ms=self.now))
        want = [self.model.queue(q).heartbeat(self.now, [(j, t)])[0] for q, j, t in leases]
        assert [("ERR", g.code) if isinstance(g, ScriptError)
                else ("CANCEL" if isinstance(g, CancelRequested) else "OK", g)
                for g in got] == want

    @precondition(held)
    @rule(data=st.data(), result=st.sampled_from([None, {"r": 1}, "text", [1, 2], 0]))
    def ack_success(self, data: st.DataObject, result: Any) -> None:
        queue, job_id, token = self.lease(data)
        _, code = self.attempt(self.c.ack_success(queue, job_id, token, result=result,
                                                  now_ms=self.now))
        want = self.model.queue(queue).ack_success(
            self.now, job_id, token, "" if result is None else encoded(result),
            self.keep_completed)
        self.check_ack(queue, ("OK",) if code is None else ("ERR", code), want)

    @precondition(held)
    @rule(data=st.data(), error=st.sampled_from([None, "boom", "", LONG_ERROR]),
          final=st.booleans())
    def ack_fail(self, data: st.DataObject, error: str | None, final: bool) -> None:
        queue, job_id, token = self.lease(data)
        got, code = self.attempt(self.c.ack_fail(queue, job_id, token, error, final=final,
                                                 now_ms=self.now))
        want = self.model.queue(queue).ack_fail(
            self.now, job_id, token, cut_utf8(error or ""), final, self.keep_failed)
        self.check_ack(queue, outcome_tuple(got) if code is None else ("ERR", code), want)

    @precondition(lambda self: any(
        q.jobs[j].get("group_order") == "strict" and "lease_token" in q.jobs[j]
        for q in self.model.queues.values() for j in q.active if j in q.jobs))
    @rule(data=st.data(), wait=st.booleans(), push=st.booleans())
    def strict_retry(self, data: st.DataObject, wait: bool, push: bool) -> None:
        """Fail the attempt of a running strict job, (``push``) publish one more job into
        its group (which offers the held group to reserve again), reserve during its
        backoff, and (``wait``) move the clock to its due time and promote it."""
        # (a leased strict job: one whose record holds its lease; a model record can lack
        # it when the job id was trimmed and reused while leased, D9)
        def leased_strict(qm: Any, j: str) -> bool:
            rec = qm.jobs.get(j, {})
            return rec.get("group_order") == "strict" and "lease_token" in rec

        queue = data.draw(st.sampled_from([n for n in self.queues if any(
            leased_strict(self.model.queue(n), j)
            for j in self.model.queue(n).active)]), label="queue")
        qm = self.model.queue(queue)
        job_id = data.draw(st.sampled_from(sorted(
            j for j in qm.active if leased_strict(qm, j))), label="job")
        token, gid = qm.jobs[job_id]["lease_token"], qm.jobs[job_id]["gid"]
        got, code = self.attempt(self.c.ack_fail(queue, job_id, token, "boom",
                                                 now_ms=self.now))
        want = qm.ack_fail(self.now, job_id, token, "boom", False, self.keep_failed)
        self.check_ack(queue, outcome_tuple(got) if code is None else ("ERR", code), want)
        if push:  # (the failed job itself may be gone: keep_failed trims)
            new_id = f"s{len(qm.jobs)}{len(qm.events)}"  # usually new
            _, code = self.attempt(self.c.publish(queue, {}, job_id=new_id, gid=gid,
                                                  max_attempts=1, now_ms=self.now))
            mj = {"id": new_id, "payload": "{}", "max_attempts": 1, "timeout_ms": 30_000,
                  "backoff_ms": 5000, "due_ms": 0, "delay_ms": 0, "gid": gid,
                  "group_limit": 0, "keep_completed_ms": self.keep_ms[0],
                  "keep_failed_ms": self.keep_ms[1]}
            assert (("OK", 1) if code is None else ("ERR", code)) == qm.enqueue(
                self.now, [mj])[:2]
        self._reserve(data, 3, queue)
        if wait and want[0] == "RETRY":
            self.now = max(self.now, want[1])
            got = self.run(self.c.promote_delayed(queue, now_ms=self.now))
            assert ("OK", got) == qm.promote(self.now, 1000)

    @rule(data=st.data(), n=st.integers(0, 3), count=st.integers(0, 3))
    def ack_reserve(self, data: st.DataObject, n: int, count: int) -> None:
        queue, qm = self.q(data)
        acks: list[tuple[str, str, str, str]] = []
        for _ in range(n):
            q2, job_id, token = self.lease(data)
            if q2 != queue:
                continue
            kind = data.draw(st.sampled_from("SFX"), label="outcome")
            text = data.draw(st.sampled_from(
                ["", '{"ok":1}'] if kind == "S" else ["", "err", LONG_ERROR]), label="text")
            acks.append((job_id, token, kind, text))
        self.c.routing.deps_due.clear()
        outcomes, res = self.run(self.c.ack_reserve(
            queue, [Ack(j, t, k == "S", x, final=k == "X") for j, t, k, x in acks], count,
            now_ms=self.now))
        got = ([outcome_tuple(o) for o in outcomes], reserve_tuple(res))
        want_acks, want_res = qm.ack_reserve(self.now, self.keep_completed, acks, count,
                                             self.keep_failed)
        assert got == ([o[:1] if o[1:] == ("DEPS",) else o for o in want_acks], want_res)
        # an ack whose settling wrote outbox ops answers DEPS: the worker delivers them
        assert (queue in self.c.routing.deps_due) == any(o[1:] == ("DEPS",) for o in want_acks)
        self.record(queue, got[1])

    @precondition(held)
    @rule(data=st.data(), value=PROGRESS_VALUES)
    def progress(self, data: st.DataObject, value: Any) -> None:
        queue, job_id, token = self.lease(data)
        _, code = self.attempt(self.c.progress(queue, job_id, token, value, now_ms=self.now))
        want = self.model.queue(queue).progress(self.now, job_id, token, encoded(value))
        assert (("OK",) if code is None else ("ERR", code)) == want

    # -- maintenance ---------------------------------------------------------------------

    @rule(data=st.data(), most=st.sampled_from([1, 2, 1000]))
    def promote(self, data: st.DataObject, most: int) -> None:
        queue, qm = self.q(data)
        got = self.run(self.c.promote_delayed(queue, max_promote=most, now_ms=self.now))
        assert ("OK", got) == qm.promote(self.now, most)

    @precondition(lambda self: any(q.wait or q.ready for q in self.model.queues.values()))
    @rule(data=st.data(), ok=st.booleans())
    def run_one(self, data: st.DataObject, ok: bool) -> None:
        """Reserve one job and finish it at once: completed, or failed for good."""
        queue, qm = self.q(data, prefer=lambda m: m.wait or m.ready)
        got = reserve_tuple(self.run(self.c.reserve_many(queue, 1, now_ms=self.now)))
        assert got == qm.reserve(self.now, 1)
        self.record(queue, got)
        if got is None or got[0] != "JOB":
            return
        job_id, token = got[1][0][0], got[1][0][6]
        if ok:
            _, code = self.attempt(self.c.ack_success(queue, job_id, token, result=[job_id],
                                                      now_ms=self.now))
            want = qm.ack_success(self.now, job_id, token, encoded([job_id]),
                                  self.keep_completed)
            self.check_ack(queue, ("OK",) if code is None else ("ERR", code), want)
        else:
            res = self.run(self.c.ack_fail(queue, job_id, token, "x", final=True,
                                           now_ms=self.now))
            self.check_ack(queue, outcome_tuple(res), qm.ack_fail(
                self.now, job_id, token, "x", True, self.keep_failed))

    @precondition(lambda self: any(q.expire for q in self.model.queues.values()))
    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 0, 1]),
          call=st.sampled_from(["promote", "reap", "ack_success"]))
    def reach_expiry(self, data: st.DataObject, offset: int, call: str) -> None:
        """Move the clock to the next keep_*_ms deadline (one ms before, at, or after it)
        and make one call that deletes what is due: promote, reap or an ack."""
        queue, qm = self.q(data, prefer=lambda m: m.expire)
        if qm.expire:
            self.now = max(self.now, min(qm.expire.values()) + offset)
        if call == "promote":
            got = self.run(self.c.promote_delayed(queue, now_ms=self.now))
            assert ("OK", got) == qm.promote(self.now, 1000)
        elif call == "reap":
            got = self.run(self.c.reap_expired(queue, now_ms=self.now))
            assert ("OK", got) == qm.reap(self.now, 1000, self.keep_failed)
        elif qm.active:  # an ack of a held lease (of this queue)
            job_id = min(qm.active)
            token = qm.jobs.get(job_id, {}).get("lease_token", "")
            _, code = self.attempt(self.c.ack_success(queue, job_id, token, now_ms=self.now))
            want = qm.ack_success(self.now, job_id, token, "", self.keep_completed)
            self.check_ack(queue, ("OK",) if code is None else ("ERR", code), want)

    @rule(data=st.data(), most=st.sampled_from([1, 2, 1000]))
    def reap(self, data: st.DataObject, most: int) -> None:
        queue, qm = self.q(data)
        got = self.run(self.c.reap_expired(queue, max_reap=most, now_ms=self.now))
        assert ("OK", got) == qm.reap(self.now, most, self.keep_failed)

    @rule(data=st.data(), stay=st.sampled_from([False, False, False, True]))
    def pause(self, data: st.DataObject, stay: bool) -> None:
        """Pause; reserve and ack_reserve see PAUSED; usually resume at once (a paused
        queue reserves nothing, so long pauses would starve the rest of the run)."""
        queue, qm = self.q(data)
        self.run(self.c.pause(queue))
        qm.pause()
        assert self.run(self.c.is_paused(queue)) is True
        self._reserve(data, 1, queue)
        if not stay:
            self.resume(data, queue)

    @rule(data=st.data())
    def resume(self, data: st.DataObject, queue: str | None = None) -> None:
        if queue is None:
            queue = self.q(data)[0]
        qm = self.model.queue(queue)
        assert ("OK", self.run(self.c.resume(queue))) == qm.resume()

    # -- admin ---------------------------------------------------------------------------

    # -- rate limits ---------------------------------------------------------------------
    # windows of 10 s and more: the window logs also expire on the server's own clock

    @rule(data=st.data(), gid=st.sampled_from(GIDS), max_jobs=st.sampled_from([1, 1, 2, 3]),
          per_ms=st.sampled_from([10_000, 60_000]))
    def set_rate_limit(self, data: st.DataObject, gid: str | None, max_jobs: int,
                       per_ms: int) -> None:
        queue, qm = self.q(data)
        self.run(self.c.set_rate_limit(queue, max_jobs, per_ms, gid=gid, now_ms=self.now))
        qm.set_rate_limit(gid or "", max_jobs, per_ms, self.now)

    @precondition(lambda self: any(q.rate for q in self.model.queues.values()))
    @rule(data=st.data())
    def reserve_under_limits(self, data: st.DataObject) -> None:
        """Reserve until the limits stop it (LIMITED by the queue or by parked groups)."""
        queue, _ = self.q(data, prefer=lambda m: m.rate)
        for _ in range(4):
            self._reserve(data, 3, queue)

    @rule(data=st.data(), gid=st.sampled_from(GIDS))
    def clear_rate_limit(self, data: st.DataObject, gid: str | None) -> None:
        queue, qm = self.q(data, prefer=lambda m: m.rate)
        got = self.run(self.c.clear_rate_limit(queue, gid=gid, now_ms=self.now))
        assert ("OK", "1" if got else "0") == qm.clear_rate_limit(gid or "", self.now)

    @rule(data=st.data(), gid=st.sampled_from((*GIDS, "*")))
    def get_rate_limit(self, data: st.DataObject, gid: str | None) -> None:
        queue, qm = self.q(data, prefer=lambda m: m.rate)
        if gid == "*":
            got = self.run(self.c.rate_limits(queue, now_ms=self.now))
            want = qm.get_rate_limit(None, self.now)
        else:
            one = self.run(self.c.get_rate_limit(queue, gid=gid, now_ms=self.now))
            got = [one] if one is not None else []
            want = qm.get_rate_limit(gid or "", self.now)
        assert [(x.gid or "", x.max_jobs, x.per_ms, x.in_window) for x in got] == want

    @rule(data=st.data())
    def retry_failed(self, data: st.DataObject) -> None:
        queue, qm = self.q(data, prefer=lambda m: m.failed)
        failed = qm.failed if qm.failed and data.draw(st.booleans(), label="failed?") else None
        job_id = data.draw(st.sampled_from(failed or sorted(qm.jobs) or JOB_IDS), label="job")
        _, code = self.attempt(self.c.retry_failed(queue, job_id, now_ms=self.now))
        assert (("OK",) if code is None else ("ERR", code)) == qm.retry_failed(self.now, job_id)

    @rule(data=st.data())
    def retry_failed_batch(self, data: st.DataObject) -> None:
        queue, qm = self.q(data, prefer=lambda m: m.failed)
        ids = self.ids(data, qm, qm.failed)
        got = self.run(self.c.retry_failed_batch(queue, ids, now_ms=self.now))
        assert [tuple(g) for g in got] == qm.retry_failed_batch(self.now, ids)

    @rule(data=st.data())
    def remove_job(self, data: st.DataObject) -> None:
        queue, qm = self.q(data, prefer=lambda m: m.jobs)
        job_id = data.draw(st.sampled_from(sorted(qm.jobs) or JOB_IDS), label="job")
        lane = self.lane_for(data, qm, job_id)
        _, code = self.attempt(self.c.remove_job(queue, job_id, lane, now_ms=self.now))
        want = qm.remove_job(self.now, job_id, lane)
        assert (("OK",) if code is None else ("ERR", code)) == want

    @rule(data=st.data())
    def remove_jobs_batch(self, data: st.DataObject) -> None:
        queue, qm = self.q(data, prefer=lambda m: m.jobs)
        ids = self.ids(data, qm)
        lane = self.lane_for(data, qm, ids[0] if ids else "")
        got = self.run(self.c.remove_jobs_batch(queue, lane, ids, now_ms=self.now))
        assert [tuple(g) for g in got] == qm.remove_jobs_batch(self.now, lane, ids)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """Cancel any job (waiting, delayed, grouped, active, finished or unknown)."""
        queue, qm = self.q(data, prefer=lambda m: m.jobs)
        job_id = data.draw(st.sampled_from(sorted(qm.jobs) or JOB_IDS), label="job")
        got = self.run(self.c.cancel(queue, job_id, now_ms=self.now))
        assert got == qm.cancel(self.now, job_id, self.keep_failed)[1]

    @rule(data=st.data())
    def vanish(self, data: st.DataObject) -> None:
        """A job or schedule hash disappears behind the scripts' back (eviction, TTL,
        manual DEL); a schedule's zset entry stays."""
        queue, qm = self.q(data)
        if qm.jobs and data.draw(st.sampled_from([False, False, True]), label="vanish?"):
            job_id = data.draw(st.sampled_from(sorted(qm.jobs)), label="job")
            self.r.delete("{" + queue + "}:job:" + job_id)
            qm.vanish(job_id)
        elif qm.schedules and data.draw(st.sampled_from([False] * 5 + [True]),
                                        label="vanish schedule?"):
            name = data.draw(st.sampled_from(sorted(qm.schedules)), label="schedule")
            self.r.delete("{" + queue + "}:schedule:" + name)
            qm.vanish_schedule(name)

    # -- parent / child ------------------------------------------------------------------

    @rule(key=st.sampled_from(PARENTS), expected=st.integers(1, 3),
          ttl_ms=st.sampled_from([0, 0, 600_000]))
    def childs_init(self, key: str, expected: int, ttl_ms: int) -> None:
        _, code = self.attempt(self.c.childs_init(key, expected, ttl_ms=ttl_ms))
        want = self.model.counter(key).init(expected, ttl_ms or self.child_ttl)
        assert (("OK",) if code is None else ("ERR", code)) == want

    @rule(key=st.sampled_from(PARENTS), child=st.sampled_from(CHILDREN))
    def child_ack(self, key: str, child: str) -> None:
        got, code = self.attempt(self.c.child_ack(key, child))
        want = self.model.counter(key).ack(child)
        if want == ("ERR", "NO_COUNTER"):  # the client's contract: -1, nothing raised
            want = ("OK", -1)
        assert (("OK", got) if code is None else ("ERR", code)) == want

    # -- schedules -----------------------------------------------------------------------
    # (the partitioned machine overrides the three routing hooks)

    def sched_queue(self, data: st.DataObject) -> str:
        """The queue name schedule calls take."""
        return self.q(data, prefer=lambda m: m.schedules)[0]

    def sched_parts(self, queue: str) -> tuple[str, ...]:
        """The physical queues behind ``queue``, in the client's order."""
        return (queue,)

    def sched_home(self, queue: str, name: str, gid: str | None, dedup_key: str | None) -> str:
        """Where schedule() keeps ``name``."""
        return queue

    def sched_holder(self, queue: str, name: str) -> str | None:
        for part in self.sched_parts(queue):
            if name in self.model.queue(part).schedules:
                return part
        return None

    def sched_name(self, data: st.DataObject, queue: str) -> str:
        """Mostly a schedule that exists, sometimes any name."""
        known = sorted({n for p in self.sched_parts(queue) for n in self.model.queue(p).schedules})
        if known and data.draw(st.sampled_from([True] * 3 + [False]), label="existing?"):
            return data.draw(st.sampled_from(known), label="schedule")
        return data.draw(st.sampled_from(SCHEDULE_NAMES), label="schedule")

    def _sched_kwargs(self, spec: dict[str, Any]) -> dict[str, Any]:
        """schedule()'s keyword arguments for a drawn spec (at the clock)."""
        t = spec["timing"]
        kw: dict[str, Any] = ({"every_ms": t} if isinstance(t, int)
                              else {"cron": t[0], "tz": t[1]})
        kw["misfire"] = spec["misfire"]
        if spec["grace"] is not None:
            kw["misfire_grace_ms"] = spec["grace"]
        if spec["jitter"]:
            kw["jitter_ms"] = spec["jitter"]
        if spec["start"] is not None:
            kw["start_ms"] = 0 if spec["start"] == "epoch" else self.now + spec["start"]
        if spec["end"] is not None:
            kw["end_ms"] = self.now + spec["end"]
        if spec["payload"] is not None:
            kw["payload"] = spec["payload"]
        kw.update(spec["opts"])
        return kw

    def _sched_spec(self, name: str, kw: dict[str, Any]) -> sched.ScheduleSpec:
        """The definition the client builds from these keywords (raises InvalidArgument
        when it refuses them)."""
        o = dict(kw)
        payload = o.pop("payload", None)
        timing = {k: o.pop(k) for k in ("cron", "every_ms", "start_ms", "end_ms") if k in o}
        ages = self.c.defaults.ages(o.pop("keep_completed_ms", None),
                                    o.pop("keep_failed_ms", None))
        options = JobOptions(max_attempts=o.pop("max_attempts", DEFAULT_MAX_ATTEMPTS),
                             timeout_ms=o.pop("timeout_ms", DEFAULT_TIMEOUT_MS),
                             backoff_ms=o.pop("backoff_ms", DEFAULT_BACKOFF_MS), **ages,
                             **{k: v for k, v in o.items() if k not in (
                                 "tz", "misfire", "misfire_grace_ms", "jitter_ms")})
        return sched.ScheduleSpec(
            name, cron=timing.get("cron"), every_ms=timing.get("every_ms"),
            tz=o.get("tz", "UTC"), start_ms=timing.get("start_ms"),
            end_ms=timing.get("end_ms"), misfire=o["misfire"],
            misfire_grace_ms=o.get("misfire_grace_ms", DEFAULT_MISFIRE_GRACE_MS),
            jitter_ms=o.get("jitter_ms", 0),
            payload=encoded({} if payload is None else payload).encode(), options=options)

    @staticmethod
    def _values(spec: sched.ScheduleSpec) -> list[str]:
        """The SCHED_DEF fields as schedule_set receives (and stores) them."""
        return [v.decode() if isinstance(v, bytes) else str(v) for v in spec.values()]

    def check_info(self, queue: str, name: str, got: ScheduleInfo | None) -> None:
        part = self.sched_holder(queue, name)
        rec = self.model.queue(part).schedule_record(name) if part is not None else None
        assert got == (sched.info(part, queue, rec) if part is not None and rec else None)

    def script(self, script: Any, part: str, args: list[Any]) -> tuple[Any, ...]:
        """One script called directly (no client checks), its reply as text."""
        reply = self.run(self.c.routing.call(script, part, args))
        return tuple(x.decode() if isinstance(x, bytes) else x for x in reply)

    @rule(data=st.data(), spec=schedule_specs, via=st.sampled_from(["client"] * 3 + ["script"]),
          again=st.sampled_from([None, None, "same", "payload"]),
          then=st.sampled_from([None, None, "fire", "reach"]))
    def schedule(self, data: st.DataObject, spec: dict[str, Any], via: str,
                 again: str | None, then: str | None) -> None:
        """Create, replace or leave unchanged a schedule (client: the whole schedule()
        call; script: schedule_set with the model's next fire time and, sometimes, a stale
        expected_rev, answered CHANGED); ``again``: the last definition given to that name
        (unchanged) or it with a new payload (replaced, same timing); then sometimes fire
        at once, or at its next fire time."""
        queue = self.sched_queue(data)
        last = self.sched_given.get((queue, spec["name"]))
        if again and last is not None:
            kw = dict(last)
            if again == "payload":
                kw["payload"] = {"v": self.now}
            spec = {**spec, "kwargs": kw}
        self._schedule(data, queue, spec, via)
        if then == "reach":
            self.now = max(self.now, self._next_fire(queue) or self.now)
        if then:
            self._fire(queue)

    def _schedule(self, data: st.DataObject | None, queue: str, spec: dict[str, Any],
                  via: str = "client") -> None:
        name = spec["name"]
        kw = spec.get("kwargs") or self._sched_kwargs(spec)
        self.sched_given[(queue, name)] = kw
        try:
            sspec: sched.ScheduleSpec | None = self._sched_spec(name, kw)
        except InvalidArgument:  # end_ms before start_ms
            sspec = None
        home = self.sched_home(queue, name, kw.get("gid"), kw.get("dedup_key"))
        qm = self.model.queue(home)
        elsewhere = [p for p in self.sched_parts(queue)
                     if p != home and name in self.model.queue(p).schedules]
        if via == "script" and data is not None and sspec is not None and not elsewhere:
            values = self._values(sspec)
            stored = qm.schedules.get(name)
            fire = first_fire(dict(zip(SCHED_DEF, values, strict=True)), stored, self.now)
            nxt, anchor = fire or (None, self.now)  # (the script takes '': none left)
            rev = int(stored["rev"]) if stored else 0
            expected = data.draw(st.sampled_from([rev] * 3 + [rev + 1, max(rev - 1, 0)]),
                                 label="expected_rev")
            got = self.script(sched.SCHEDULE_SET, home,
                              sched.set_args(self.now, sspec, expected, nxt, anchor))
            assert got == qm.schedule_set(self.now, name, expected, values, nxt, anchor)
            return
        try:
            info: ScheduleInfo | None = self.run(self.c.schedule(queue, name, **kw,
                                                                 now_ms=self.now))
        except InvalidArgument:
            info = None
        if sspec is None:
            assert info is None, "end_ms before start_ms accepted"
            return
        values = self._values(sspec)
        stored = qm.schedules.get(name)
        fire = first_fire(dict(zip(SCHED_DEF, values, strict=True)), stored, self.now)
        if fire is None:  # no occurrence left: refused, nothing written (no move either)
            assert info is None, "a schedule without occurrences accepted"
            return
        for part in elsewhere:  # a new gid moved it: the old copy goes, the new one is new
            self.model.queue(part).schedule_remove(name)
        rev = int(stored["rev"]) if stored else 0
        assert qm.schedule_set(self.now, name, rev, values, *fire)[0] == "OK"
        self.check_info(queue, name, info)

    @rule(data=st.data())
    def pause_schedule(self, data: st.DataObject) -> None:
        queue = self.sched_queue(data)
        self._pause_schedule(queue, self.sched_name(data, queue))

    def _pause_schedule(self, queue: str, name: str) -> None:
        got, code = self.attempt(self.c.pause_schedule(queue, name, now_ms=self.now))
        replies = [self.model.queue(p).schedule_pause(self.now, name, True)
                   for p in self.sched_parts(queue)]
        oks = [r for r in replies if r[0] == "OK"]
        want = ("OK", any(r[1] == "1" for r in oks)) if oks else ("ERR", "NO_SCHEDULE")
        assert (("OK", got) if code is None else ("ERR", code)) == want

    @rule(data=st.data(), via=st.sampled_from(["client"] * 3 + ["script"]))
    def resume_schedule(self, data: st.DataObject, via: str) -> None:
        """resume_schedule (from the next occurrence after now and the last one); or
        schedule_pause called directly: pause or resume, with a rev that may be stale."""
        queue = self.sched_queue(data)
        name = self.sched_name(data, queue)
        if via == "script":
            part = self.sched_holder(queue, name) or self.sched_parts(queue)[0]
            qm = self.model.queue(part)
            h = qm.schedules.get(name, {})
            rev = int(h.get("rev") or 1)
            paused = data.draw(st.booleans(), label="pause?")
            expected = data.draw(st.sampled_from([rev] * 3 + [rev + 1, max(rev - 1, 1)]),
                                 label="expected_rev")
            nxt = resume_next(h, self.now) if h else self.now + 1000
            got = self.script(sched.SCHEDULE_PAUSE, part,
                              sched.pause_args(self.now, name, paused, expected, nxt))
            assert got == qm.schedule_pause(self.now, name, paused, expected, nxt)
            return
        self._resume_schedule(queue, name)

    def _resume_schedule(self, queue: str, name: str) -> None:
        got, code = self.attempt(self.c.resume_schedule(queue, name, now_ms=self.now))
        part = self.sched_holder(queue, name)
        if part is None:
            want: tuple[Any, ...] = ("ERR", "NO_SCHEDULE")
        else:
            qm = self.model.queue(part)
            h = qm.schedules[name]
            if h.get("paused") != "1":  # the client reads it running: no call
                want = ("OK", False)
            else:
                r = qm.schedule_pause(self.now, name, False, int(h["rev"]),
                                      resume_next(h, self.now))
                want = ("OK", r[1] == "1")
        assert (("OK", got) if code is None else ("ERR", code)) == want

    @rule(data=st.data())
    def unschedule(self, data: st.DataObject) -> None:
        queue = self.sched_queue(data)
        self._unschedule(queue, self.sched_name(data, queue))

    def _unschedule(self, queue: str, name: str) -> None:
        got = self.run(self.c.unschedule(queue, name))
        want = [self.model.queue(p).schedule_remove(name) for p in self.sched_parts(queue)]
        assert got == any(w[1] == "1" for w in want)

    @rule(data=st.data())
    def fire_schedules(self, data: st.DataObject) -> None:
        self._fire(self.sched_queue(data))

    def _fire(self, queue: str) -> None:
        got = self.run(self.c.fire_schedules(queue, now_ms=self.now))
        published, waits = 0, []
        for part in self.sched_parts(queue):
            n, wait = self.model.queue(part).fire_due(self.now)
            published += n
            if wait is not None:
                waits.append(wait)
        assert got == FireResult(published, min(waits) if waits else None)

    def _next_fire(self, queue: str) -> int | None:
        scores = [sc for p in self.sched_parts(queue)
                  for sc in self.model.queue(p).sched_z.values() if sc != INF]
        return int(min(scores)) if scores else None

    def scheduled(self) -> bool:
        return any(sc != INF for q in self.model.queues.values() for sc in q.sched_z.values())

    @precondition(scheduled)
    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 0, 1, 2500]))
    def reach_fire(self, data: st.DataObject, offset: int) -> None:
        """Move the clock to the next fire time (one ms before, at, after it, or a few
        occurrences later) and fire."""
        queue = self.sched_queue(data)
        nxt = self._next_fire(queue)
        if nxt is not None:
            self.now = max(self.now, nxt + offset)
        self._fire(queue)

    @precondition(scheduled)
    @rule(data=st.data(), meanwhile=st.sampled_from(
        ["nothing", "fire", "pause", "pause_resume", "unschedule", "replace"]))
    def fire_raced(self, data: st.DataObject, meanwhile: str) -> None:
        """schedule_fire with plans made from a read, after something else changed a
        schedule (another fire, a pause, a removal, a replacement): FIRED when nothing
        did, else STALE, PAUSED or GONE, and nothing written for it."""
        queue = self.sched_queue(data)
        nxt = self._next_fire(queue)
        if nxt is not None:
            self.now = max(self.now, nxt)
        planned: list[tuple[str, list[tuple[str, int, int, FirePlanT]]]] = []
        for part in self.sched_parts(queue):
            qm = self.model.queue(part)
            items = []
            for name in qm.schedules_due(self.now)[0]:
                h = qm.schedules[name]
                plan = plan_fire(h, self.now)
                if plan is not None:
                    items.append((name, int(h["rev"]), int(h["next_ms"]), plan))
            if items:
                planned.append((part, items))
        if not planned:
            return
        name = data.draw(st.sampled_from([it[0] for _, items in planned for it in items]),
                         label="changed")
        if meanwhile == "fire":
            self._fire(queue)
        elif meanwhile in ("pause", "pause_resume"):
            self._pause_schedule(queue, name)
            if meanwhile == "pause_resume":
                self._resume_schedule(queue, name)
        elif meanwhile == "unschedule":
            self._unschedule(queue, name)
        elif meanwhile == "replace":
            self._schedule(data, queue, {**data.draw(schedule_specs, label="new"), "name": name})
        for part, items in planned:
            fire_items = [sched.FireItem(n, rev, expected, FirePlan(*plan))
                          for n, rev, expected, plan in items]
            got = self.script(sched.SCHEDULE_FIRE, part, sched.fire_args(
                self.now, self.model.events_maxlen, fire_items))
            want = self.model.queue(part).schedule_fire(self.now, items)
            assert got == (want[0], *[str(x) for pair in want[1] for x in pair]), want

    @rule(data=st.data())
    def read_schedules(self, data: st.DataObject) -> None:
        """schedules() (schedule_read 'page') and get_schedule() ('one')."""
        queue = self.sched_queue(data)
        got = self.run(self.c.schedules(queue, now_ms=self.now))
        want = sorted(((p, rec) for p in self.sched_parts(queue)
                       for n in self.model.queue(p).schedules
                       if (rec := self.model.queue(p).schedule_record(n))),
                      key=lambda pr: pr[1]["name"])
        assert got == [sched.info(p, queue, rec) for p, rec in want]
        name = self.sched_name(data, queue)
        self.check_info(queue, name, self.run(self.c.get_schedule(queue, name, now_ms=self.now)))

    # -- dependencies and flows ----------------------------------------------------------
    # (the partitioned machine overrides the routing hooks)

    def dep_queues(self) -> tuple[str, ...]:
        """The physical queues dependencies are drawn from: the machine's, and q2 even when
        the machine does not use it (no job of it ever exists: links answer 'gone')."""
        return tuple(dict.fromkeys((*self.queues, *QUEUES)))

    def client_deps(self) -> bool:
        """Whether publish / publish_many with depends_on go through the client here."""
        return True

    def deps_target(self, data: st.DataObject) -> tuple[str, tuple[str, ...]]:
        """A queue name for resolve_dependencies and the physical queues behind it."""
        names = [n for n in self.dep_queues()
                 if self.model.queue(n).deps_out or self.model.queue(n).deps_src]
        if not names or data.draw(st.sampled_from([False] * 4 + [True]), label="any queue?"):
            names = list(self.dep_queues())
        name = data.draw(st.sampled_from(names), label="deps queue")
        return name, (name,)

    def draw_deps(self, data: st.DataObject, queue: str, job_id: str,
                  self_ok: bool) -> list[tuple[str, str]]:
        """1-3 distinct dependencies (queue, id): mostly jobs that exist (in any state, on
        any queue), sometimes any id; with ``self_ok`` sometimes the job itself."""
        known = [(q, i) for q in self.dep_queues() for i in sorted(self.model.queue(q).jobs)]
        anything = sorted({*known, *((q, i) for q in self.dep_queues() for i in JOB_IDS[:4])})
        which = data.draw(st.sampled_from(["known"] * 4 + ["any"]), label="deps known?")
        pool = known if known and which == "known" else anything
        refs = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True),
                         label="depends on")
        if self_ok and (queue, job_id) not in refs and data.draw(
                st.sampled_from([False] * 9 + [True]), label="self?"):
            refs.append((queue, job_id))
        return refs

    @staticmethod
    def _options(spec: dict[str, Any], mj: dict[str, Any]) -> JobOptions:
        return JobOptions(max_attempts=spec["max_attempts"], timeout_ms=spec["timeout_ms"],
                          backoff_ms=spec["backoff_ms"], due_ms=mj["due_ms"],
                          delay_ms=mj["delay_ms"], gid=spec["gid"],
                          group_limit=spec["group_limit"],
                          keep_completed_ms=mj["keep_completed_ms"],
                          keep_failed_ms=mj["keep_failed_ms"], **spec["control"])

    def _enqueue_raw(self, queue: str, jobs: list[tuple[dict[str, Any], list[tuple[str, str, bool]],
                                                     str, list[tuple[str, str, str]]]]) -> bool:
        """enqueue called directly: per job its spec, its dependencies (queue, id,
        linked), its policy and its pre-registered dependents (queue, id, policy), the
        extras built by the client's own helper. True when it was accepted."""
        fields: list[Any] = []
        models = []
        for spec, dep, policy, up in jobs:
            mj = self._model_job(spec)
            opts = self._options(spec, mj)
            opts.extras = deps.with_dependencies(opts.extras, dep, policy, up)
            fields += enq.job_fields(spec["id"], encoded(spec["payload"]).encode(), opts)
            control = dict(spec["control"])
            if dep:
                control["depends_on"] = [[q, i, 1] if linked else [q, i] for q, i, linked in dep]
                control["dep_policy"] = policy
            if up:
                control["dependents"] = [[q, i, p] for q, i, p in up]
            models.append({**mj, "control": control})
        got = self.script(enq.ENQUEUE, queue, enq.args(self.now, fields, self.model.events_maxlen))
        want = self.model.queue(queue).enqueue(self.now, models)
        assert got == tuple(str(x) for x in want), want
        return got[0] == "OK"

    def _after_write(self, parts: list[str]) -> None:
        """The client's delivery right after a write (every op of ``parts``' outboxes, due
        or not, then the cascade), on the machine's clock."""
        got = self.run(self.c._deliver_dependencies(parts, now=self.now, every=True))
        assert got == self.model.resolve_dependencies(parts, self.now, False, every=True)

    @rule(data=st.data(), spec=job_specs, policy=st.sampled_from(DEP_POLICIES),
          via=st.sampled_from(["client", "publish", "script", "script"]))
    def publish_dependent(self, data: st.DataObject, spec: dict[str, Any], policy: str,
                          via: str) -> None:
        """Publish a job with dependencies. ``client``: publish() with dependencies on its
        own queue (it checks they exist and refuses a self-dependency). ``publish``: what
        publish() does with dependencies on other queues, on the machine's clock (publish
        runs its own deps_link and delivery on the server's): register the job with them
        first (deps_link; 'gone' refuses the publish), write it naming them linked, then
        deliver those queues' outboxes. ``script``: enqueue directly (linked or not, a
        dependency that does not exist on another queue, a self-dependency: DEP_CYCLE,
        one missing on this queue: DEP_NOT_FOUND)."""
        queue, qm = self.q(data)
        refs = self.draw_deps(data, queue, spec["id"], self_ok=via == "script")
        if via == "client" and not self.client_deps():
            via = "publish"
        if via == "client":
            refs = [(q, i) for q, i in refs if q == queue] or [(queue, refs[0][1])]
        if via == "script":
            linked = [data.draw(st.sampled_from([False] * 3 + [True]), label="linked")
                      for _ in refs]
            self._enqueue_raw(queue, [(spec, [(q, i, k) for (q, i), k in zip(refs, linked,
                                                                             strict=True)],
                                       policy, [])])
            return
        if (queue, spec["id"]) in refs:  # refused by the client, nothing sent
            want: tuple[Any, ...] = ("ERR", "DEP_CYCLE")
        elif any(i not in self.model.queue(q).jobs for q, i in refs):
            want = ("ERR", "DEP_NOT_FOUND")
        else:
            want = ()
        if via == "publish":
            if want:
                return
            other = [(q, i) for q, i in refs if q != queue]
            for q in dict.fromkeys(q for q, _ in other):
                got = self._link(q, [(i, f"{queue}:{spec['id']}", policy)
                                     for oq, i in other if oq == q])
                if "gone" in got[2:]:  # DependencyNotFound (the links made stay: harmless)
                    return
            self._enqueue_raw(queue, [(spec, [(q, i, q != queue) for q, i in refs], policy, [])])
            if other:  # (publish delivers even when a dedup holder took the job)
                self._after_write(sorted({q for q, _ in other}))
            return
        given = [i if data.draw(st.booleans(), label="plain id?") else (q, i) for q, i in refs]
        mj = self._model_job(spec)
        got, code = self.attempt(self.c.publish(
            queue, spec["payload"], job_id=spec["id"], max_attempts=spec["max_attempts"],
            timeout_ms=spec["timeout_ms"], backoff_ms=spec["backoff_ms"], due_ms=mj["due_ms"],
            delay_ms=mj["delay_ms"], gid=spec["gid"], group_limit=spec["group_limit"],
            keep_completed_ms=spec["keep_ms"][0], keep_failed_ms=spec["keep_ms"][1],
            **spec["control"], depends_on=given, on_dependency_failure=policy,
            now_ms=self.now))
        if not want:
            control = {**spec["control"], "depends_on": [[q, i] for q, i in refs],
                       "dep_policy": policy}
            want = qm.enqueue(self.now, [{**mj, "control": control}])
        assert (("OK", 1) if code is None else ("ERR", code)) == want[:2], want
        assert code is not None or got == (want[2] if len(want) > 2 else spec["id"])
        assert self.take_auto() == []

    @rule(data=st.data(), specs=st.lists(job_specs, min_size=2, max_size=3,
                                         unique_by=lambda s: s["id"]),
          policy=st.sampled_from(DEP_POLICIES))
    def publish_chain(self, data: st.DataObject, specs: list[dict[str, Any]],
                      policy: str) -> None:
        """A chain in one batch (each job depends on the one before it, the first maybe
        on a job that exists): publish_many with dependencies on its own queue, or
        enqueue directly when the first depends on another queue."""
        queue, qm = self.q(data)
        first = self.draw_deps(data, queue, specs[0]["id"], self_ok=False)[:1]
        chain = [first] + [[(queue, s["id"])] for s in specs[:-1]]
        if not self.client_deps() or first[0][0] != queue:
            self._enqueue_raw(queue, [(s, [(q, i, False) for q, i in c], policy, [])
                                      for s, c in zip(specs, chain, strict=True)])
            return
        models = [self._model_job(s) for s in specs]
        jobs = self._job_specs(specs, models)
        for job, c in zip(jobs, chain, strict=True):
            job.depends_on = [i for _, i in c]
            job.on_dependency_failure = policy
        got, code = self.attempt(self.c.publish_many(queue, jobs, now_ms=self.now))
        batch = {s["id"] for s in specs}
        dep = first[0][1]
        want: tuple[Any, ...]
        if dep == specs[0]["id"] or dep in batch:  # itself, or a job that comes later
            want = ("ERR", "DEP_CYCLE")
        elif dep not in qm.jobs:
            want = ("ERR", "DEP_NOT_FOUND")
        else:
            for m, c in zip(models, chain, strict=True):
                m["control"] = {**m["control"], "depends_on": [[q, i] for q, i in c],
                                "dep_policy": policy}
            want = qm.enqueue(self.now, models)
        assert (("OK", len(specs)) if code is None else ("ERR", code)) == want[:2], want
        assert code is not None or got == (list(want[2:]) if len(want) > 2
                                           else [s["id"] for s in specs])
        assert self.take_auto() == []

    @rule(data=st.data(), shape=st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=1,
                                         max_size=3),
          then_deliver=st.booleans())
    def publish_flow(self, data: st.DataObject, shape: list[int], then_deliver: bool) -> None:
        """A flow written bottom up the way publish_flow writes one: a root, 1-3
        children, each with 0-2 children of its own, each node on either queue with its
        own policy; a child on another queue than its parent is written first with the
        parent pre-registered (``dependents``) and the parent names it linked; one
        enqueue call per queue per round, deepest first. A refused call (an id that
        exists) stops the rounds after it (a publisher that died part-way). Then, mostly,
        the client's delivery of the outboxes of the children's queues (every op)."""
        parent_of = [-1]
        for n in shape:
            parent_of.append(0)
            child = len(parent_of) - 1
            parent_of += [child] * n
        count = len(parent_of)
        ids = data.draw(st.lists(st.sampled_from(FLOW_IDS + JOB_IDS[:5]), min_size=count,
                                 max_size=count, unique=True), label="flow ids")
        targets = [data.draw(st.sampled_from(self.queues), label="node queue")
                   for _ in range(count)]
        policies = [data.draw(st.sampled_from(DEP_POLICIES), label="node policy")
                    for _ in range(count)]
        specs = [flow_spec(data.draw(job_specs, label="node"), i) for i in ids]
        children: list[list[int]] = [[] for _ in range(count)]
        for k, p in enumerate(parent_of):
            if p >= 0:
                children[p].append(k)
        jobs = []
        for k in range(count):
            on = [(targets[c], ids[c], targets[c] != targets[k]) for c in children[k]]
            p = parent_of[k]
            up = ([(targets[p], ids[p], policies[p])]
                  if p >= 0 and targets[p] != targets[k] else [])
            jobs.append((specs[k], on, policies[k], up))
        depth = [0] * count
        for k, p in enumerate(parent_of):
            depth[k] = depth[p] + 1 if p >= 0 else 0
        order = sorted(range(count), key=lambda k: (-depth[k], k))
        written = [False] * count
        cross: set[str] = set()
        while not all(written):
            ready = {k for k in order if not written[k] and all(
                written[c] for c in children[k] if targets[c] != targets[k])}
            changed = True
            while changed:  # a child on the same queue goes before it, in its call
                changed = False
                for k in list(ready):
                    if any(not written[c] and c not in ready for c in children[k]):
                        ready.discard(k)
                        changed = True
            by_target: dict[str, list[int]] = {}
            for k in order:
                if k in ready:
                    by_target.setdefault(targets[k], []).append(k)
            ok = [self._enqueue_raw(t, [jobs[k] for k in ks]) for t, ks in by_target.items()]
            if not all(ok):
                return
            for k in ready:
                written[k] = True
                if parent_of[k] >= 0 and targets[parent_of[k]] != targets[k]:
                    cross.add(targets[k])
        if cross and then_deliver:
            self._after_write(sorted(cross))

    # delivering the outbox with the scripts themselves

    def _pending(self, queue: str, limit: int, mode: str) -> list[tuple[str, str, str]]:
        got = self.script(deps.DEPS_PENDING, queue, [self.now, limit, mode,
                                                     self.model.events_maxlen])
        assert got == self.model.queue(queue).deps_pending(self.now, limit, mode)
        ops = [(got[2 + 3 * k], got[3 + 3 * k], got[4 + 3 * k]) for k in range(int(got[1]))]
        self.op_log = (self.op_log + [(queue, op) for op in ops])[-40:]
        return ops

    def _link(self, queue: str, links: list[tuple[str, str, str]]) -> tuple[Any, ...]:
        got = self.script(deps.DEPS_LINK, queue, deps.link_args(self.now, links))
        assert got == self.model.queue(queue).deps_link(self.now, links)
        return got

    def _resolve(self, queue: str, items: list[tuple[str, str, str, str]]) -> tuple[Any, ...]:
        got = self.script(deps.DEPS_RESOLVE, queue, deps.resolve_args(
            self.now, items, self.model.events_maxlen))
        assert got == self.model.queue(queue).deps_resolve(self.now, items)
        return got

    def _ack_ops(self, queue: str, acks: list[tuple[str, str]]) -> None:
        got = self.script(deps.DEPS_ACK, queue, deps.ack_args(self.now, acks))
        assert got == self.model.queue(queue).deps_ack(self.now, acks)

    def _deliver(self, data: st.DataObject, queue: str,
                 ops: list[tuple[str, str, str]]) -> dict[str, str]:
        """Deliver ops of ``queue``'s outbox (in the order given): 'L' ops by deps_link on
        their dependency's queue ('gone': settled here by deps_resolve; 'queued': the
        outcome is an op of that queue's outbox now), 'R' ops by deps_resolve on their
        dependent's queue; grouped per queue or one call each, an item sometimes given
        twice. Returns op -> the ack the client would send ('done' | 'retry')."""
        grouped = data.draw(st.booleans(), label="grouped?")
        links: list[tuple[str, tuple[str, str, str], str]] = []
        outcomes: list[tuple[str, tuple[str, str, str, str], str]] = []
        for op, _, result in ops:
            kind, word, job_id, other_q, other_id = op.split("\t")
            if kind == "L":
                links.append((other_q, (other_id, f"{queue}:{job_id}", word), op))
            else:
                outcomes.append((other_q, (other_id, f"{queue}:{job_id}", word, result), op))
        status: dict[str, str] = {}
        for q, items in self._calls(data, links, grouped):
            got = self._link(q, [it for it, _ in items])
            for k, (_, op) in enumerate(items):
                if got[2 + k] != "gone":
                    status[op] = "done"
                    continue
                job_id, other_id = op.split("\t")[2], op.split("\t")[4]
                outcomes.append((queue, (job_id, f"{q}:{other_id}", "gone", ""), op))
        for q, items2 in self._calls(data, outcomes, grouped):
            got = self._resolve(q, [it for it, _ in items2])
            for k, (_, op) in enumerate(items2):
                status[op] = "done" if got[2 + k] == "OK" else "retry"
        return status

    @staticmethod
    def _calls(data: st.DataObject, items: list[tuple[str, Any, str]],
               grouped: bool) -> list[tuple[str, list[tuple[Any, str]]]]:
        """Script calls for (queue, item, op) triples: one per queue or one per item,
        sometimes an item twice in its call."""
        calls: list[tuple[str, list[tuple[Any, str]]]] = []
        by_queue: dict[str, list[tuple[Any, str]]] = {}
        for q, item, op in items:
            twice = data.draw(st.sampled_from([1] * 5 + [2]), label="twice?")
            if grouped:
                by_queue.setdefault(q, []).extend([(item, op)] * twice)
            else:
                calls.append((q, [(item, op)] * twice))
        return calls + list(by_queue.items())

    def outbox_queues(self) -> list[str]:
        return [n for n in self.dep_queues() if self.model.queue(n).deps_out]

    @precondition(lambda self: any(q.deps_out or q.deps_src for q in self.model.queues.values()))
    @rule(data=st.data(), limit=st.sampled_from([1, 2, 1000, 1000]),
          mode=st.sampled_from(["0", "1", "all"]))
    def deliver(self, data: st.DataObject, limit: int, mode: str) -> None:
        """deps_pending (due ops, after the repair scan, or every op), then the ops
        delivered in any order, then deps_ack: mostly what the client would send,
        sometimes nothing for an op (the deliverer died: the op is due again
        DEPS_RETRY_MS later), 'retry' for a delivered one, an op acked twice, or one of
        earlier calls acked again."""
        names = self.outbox_queues() or list(self.dep_queues())
        queue = data.draw(st.sampled_from(names), label="outbox")
        ops = self._pending(queue, limit, mode)
        ops = data.draw(st.permutations(ops), label="order") if ops else []
        status = self._deliver(data, queue, ops)
        acks = []
        for op, _, _ in ops:
            how = data.draw(st.sampled_from(["client"] * 6 + ["none", "retry", "twice"]),
                            label="ack")
            if how == "none":
                continue
            action = "retry" if how == "retry" else status.get(op, "retry")
            acks += [(op, action)] * (2 if how == "twice" else 1)
        old = [o[0] for q, o in self.op_log if q == queue]
        if old and data.draw(st.sampled_from([False] * 4 + [True]), label="old?"):
            acks.append((data.draw(st.sampled_from(old), label="old op"),
                         data.draw(st.sampled_from(["done", "retry"]), label="how")))
        if acks:
            self._ack_ops(queue, data.draw(st.permutations(acks), label="ack order"))

    @precondition(lambda self: bool(self.op_log))
    @rule(data=st.data(), ack=st.booleans())
    def redeliver(self, data: st.DataObject, ack: bool) -> None:
        """An op handed out earlier delivered again (a second deliverer, or one that
        timed out and came back): idempotent; sometimes acknowledged again."""
        queue, op = data.draw(st.sampled_from(self.op_log), label="old op")
        status = self._deliver(data, queue, [op])
        if ack:
            self._ack_ops(queue, [(op[0], status.get(op[0], "retry"))])

    @precondition(lambda self: any(q.deps_out or q.deps_src for q in self.model.queues.values()))
    @rule(data=st.data(), repair=st.booleans())
    def resolve_deps(self, data: st.DataObject, repair: bool) -> None:
        """resolve_dependencies (the client's delivery with its cascade, on the machine's
        clock)."""
        name, parts = self.deps_target(data)
        got = self.run(self.c.resolve_dependencies(name, repair=repair, now_ms=self.now))
        assert got == self.model.resolve_dependencies(parts, self.now, repair)

    @precondition(lambda self: any(q.deps_src for q in self.model.queues.values()))
    @rule(data=st.data(), offset=st.sampled_from([-1, 0, 0, 1]),
          via=st.sampled_from(["script", "client"]))
    def reach_repair(self, data: st.DataObject, offset: int, via: str) -> None:
        """Move the clock to the next repair check of a job with dependents (one ms before,
        at or after it) and run the repair scan: by deps_pending, its ops then delivered,
        or by resolve_dependencies."""
        names = [n for n in self.dep_queues() if self.model.queue(n).deps_src]
        queue = data.draw(st.sampled_from(names), label="queue")
        self.now = max(self.now, min(self.model.queue(queue).deps_src.values()) + offset)
        if via == "client":
            got = self.run(self.c.resolve_dependencies(queue, now_ms=self.now))
            assert got == self.model.resolve_dependencies([queue], self.now, True)
            return
        ops = self._pending(queue, 1000, "1")
        status = self._deliver(data, queue, ops)
        if status:
            self._ack_ops(queue, sorted(status.items()))

    @precondition(lambda self: any(q.deps_out for q in self.model.queues.values()))
    @rule(data=st.data(), late=st.sampled_from([0, 0, 600_000]))
    def reach_retry(self, data: st.DataObject, late: int) -> None:
        """Move the clock to when the next outbox op is due again (taken, not acked), or
        past DEPS_ORPHAN_MS, and take it: an op for a dependent that never appeared is
        dropped by its 'retry'."""
        names = self.outbox_queues()
        queue = data.draw(st.sampled_from(names), label="queue")
        self.now = max(self.now, min(self.model.queue(queue).deps_out.values()) + late)
        ops = self._pending(queue, 1000, "0")
        status = self._deliver(data, queue, ops)
        if status:
            self._ack_ops(queue, sorted(status.items()))

    def _end(self, queue: str, job_id: str, token: str, outcome: str) -> None:
        """End a lease: 'S' completed (its id as the result), 'F' a failed attempt, 'X'
        failed for good."""
        qm = self.model.queue(queue)
        if outcome == "S":
            _, code = self.attempt(self.c.ack_success(queue, job_id, token, result={"of": job_id},
                                                      now_ms=self.now))
            want = qm.ack_success(self.now, job_id, token, encoded({"of": job_id}),
                                  self.keep_completed)
            self.check_ack(queue, ("OK",) if code is None else ("ERR", code), want)
        else:
            res, code = self.attempt(self.c.ack_fail(queue, job_id, token, "dep boom",
                                                     final=outcome == "X", now_ms=self.now))
            want = qm.ack_fail(self.now, job_id, token, "dep boom", outcome == "X",
                               self.keep_failed)
            self.check_ack(queue, outcome_tuple(res) if code is None else ("ERR", code), want)

    @precondition(lambda self: any(
        "dependents" in h and h.get("state") == "wait"
        for q in self.model.queues.values() for h in q.jobs.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["S", "S", "F", "X"]))
    def run_dependencies(self, data: st.DataObject, outcome: str) -> None:
        """Reserve up to three jobs of a queue where a job with dependents waits, and end
        them all (completed with a result, a failed attempt, or failed for good)."""
        queue, qm = self.q(data, prefer=lambda m: any(
            "dependents" in h and h.get("state") == "wait" for h in m.jobs.values()))
        got = reserve_tuple(self.run(self.c.reserve_many(queue, 3, now_ms=self.now)))
        assert got == qm.reserve(self.now, 3)
        self.record(queue, got)
        if got is None or got[0] != "JOB":
            return
        for job in got[1]:
            self._end(queue, job[0], job[6], outcome)

    @precondition(lambda self: any(q.waiting_deps or q.deps_out
                                   for q in self.model.queues.values()))
    @rule(data=st.data(), outcomes=st.sampled_from(["S", "S", "SF", "SX", "SSSX"]),
          rounds=st.integers(1, 4))
    def drain(self, data: st.DataObject, outcomes: str, rounds: int) -> None:
        """Work the queues the way workers would, for a few rounds: reserve what is ready
        on each queue and end it (mostly completed), then deliver every outbox
        (resolve_dependencies on the machine's clock): chains and flows run to their
        end."""
        for _ in range(rounds):
            for queue in self.queues:
                qm = self.model.queue(queue)
                got = reserve_tuple(self.run(self.c.reserve_many(queue, 3, now_ms=self.now)))
                assert got == qm.reserve(self.now, 3)
                self.record(queue, got)
                if got is None or got[0] != "JOB":
                    continue
                for job in got[1]:
                    self._end(queue, job[0], job[6],
                              data.draw(st.sampled_from(outcomes), label="outcome"))
            for queue in self.dep_queues():
                if self.model.queue(queue).deps_out:
                    got = self.run(self.c.resolve_dependencies(queue, repair=False,
                                                               now_ms=self.now))
                    assert got == self.model.resolve_dependencies([queue], self.now, False)
            self.now += 1

    @precondition(lambda self: any(q.waiting_deps for q in self.model.queues.values()))
    @rule(data=st.data(), batch=st.booleans())
    def remove_waiting_deps(self, data: st.DataObject, batch: bool) -> None:
        """remove_job / remove_jobs_batch of lane waiting_deps, called directly (the
        remove_job rules go through the client, which takes that lane too)."""
        queue, qm = self.q(data, prefer=lambda m: m.waiting_deps)
        pool = sorted(qm.waiting_deps) or sorted(qm.jobs) or list(JOB_IDS)
        maxlen = self.model.events_maxlen
        if batch:
            ids = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3),
                            label="ids")
            got = self.script(admin.REMOVE_JOBS_BATCH, queue,
                              ["waiting_deps", len(ids), *ids, self.now, maxlen])
            want = qm.remove_jobs_batch(self.now, "waiting_deps", ids)
            assert got == ("OK", str(len(ids)),
                           *[x for i, status, code in want for x in (i, status, code or "")])
        else:
            job_id = data.draw(st.sampled_from(pool), label="job")
            got = self.script(admin.REMOVE_JOB, queue, [job_id, "waiting_deps", self.now, maxlen])
            assert got == tuple(qm.remove_job(self.now, job_id, "waiting_deps"))

    # -- the whole keyspace after every step ---------------------------------------------

    def real_keyspace(self) -> dict[str, Any]:
        return dump_keyspace(self.r)

    @staticmethod
    def stream_fields(key: str, entries: list[tuple[str, dict[str, str]]],
                      want: Any, problems: list[str]) -> list[dict[str, str]]:
        """The fields of each real entry, for comparison with the model's: the ids must
        increase strictly; an event on the server clock has no ``ms`` field (its entry id
        holds the time): the id's time is checked to be a plausible epoch ms and the model's
        ``ms`` compared as ``"*"``."""
        ids = [tuple(int(x) for x in eid.split("-")) for eid, _ in entries]
        if ids != sorted(set(ids)):
            problems.append(f"{key}: entry ids not strictly increasing: {ids}")
        out = []
        for i, (eid, fields) in enumerate(entries):
            f = dict(fields)
            expected = want[i] if isinstance(want, list) and i < len(want) else {}
            if expected.get("ms") == SERVER_CLOCK:
                if "ms" in f or int(eid.split("-")[0]) < 1_600_000_000_000:
                    problems.append(f"{key}: entry {i} ({eid}, ms {f.get('ms')!r}) is not "
                                    "on the server clock")
                f["ms"] = SERVER_CLOCK
            out.append(f)
        return out

    @invariant()
    def keyspace_matches_model(self) -> None:
        real = self.real_keyspace()
        want = self.model.keyspace()
        problems = [f"missing {k} = {want[k][:2]}" for k in sorted(set(want) - set(real))]
        problems += [f"unexpected {k} = {real[k][:2]}" for k in sorted(set(real) - set(want))]
        for key in sorted(set(real) & set(want)):
            kind, value, ttl = want[key]
            rkind, rvalue, pttl = real[key]
            if rkind == "stream":
                rvalue = self.stream_fields(key, rvalue, value, problems)
            if (rkind, rvalue) != (kind, value):
                problems.append(f"{key}: real {(rkind, rvalue)} != model {(kind, value)}")
            if ttl is None and pttl != -1:
                problems.append(f"{key}: expires in {pttl} ms, model: never")
            if ttl is not None and not 0 < pttl <= ttl:
                problems.append(f"{key}: pttl {pttl}, model: expires within {ttl} ms")
        assert not problems, "\n".join(problems)
        self.model.check_invariants()


def test_scripts_agree_with_model(omniq_redis_url: str) -> None:
    run_state_machine_as_test(lambda: QueueMachine(omniq_redis_url), settings=SETTINGS)
