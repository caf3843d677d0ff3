"""The populated database every bad-input case starts from, and the "nothing written" check."""

from __future__ import annotations

from typing import Any

import redis
from keydump import Dump, diff, dump_keyspace

from omniq import AsyncOmniq, JobSpec
from omniq.types import ReservedJob

T0 = 1_000_000
Q = "q"


class World:
    """A snapshot-able populated database: ``unchanged(before)`` asserts no key changed."""

    def __init__(self, client: AsyncOmniq, raw: redis.Redis) -> None:
        self.client = client
        self.raw = raw
        self.leases: dict[str, ReservedJob] = {}

    def snap(self) -> Dump:
        return dump_keyspace(self.raw)

    def unchanged(self, before: Dump) -> None:
        changes = diff(before, self.snap())
        assert not changes, "\n".join(changes)

    def script(self, name: str, key: str, *args: Any) -> Any:
        """Call one of our scripts directly (EVAL), bypassing every client-side check."""
        from omniq._scripts import SCRIPTS

        return self.raw.eval(SCRIPTS[name].source, 1, key, *args)


async def populate(c: AsyncOmniq, raw: redis.Redis) -> World:
    """Jobs in every lane of queue ``q``: active a1 and a2 (leases kept in
    ``world.leases``), failed f1, completed c1, waiting w1, grouped g1 and g2 (group
    ``grp``, limit 2), delayed d1; plus a parent/child counter ``parent`` (3, one acked)."""
    w = World(c, raw)
    for jid in ("a1", "a2"):
        await c.publish(Q, {"n": jid}, job_id=jid, timeout_ms=60_000, now_ms=T0)
        job = await c.reserve(Q, now_ms=T0 + 1)
        assert job is not None
        assert job.job_id == jid
        w.leases[jid] = job
    await c.publish(Q, {"n": "f1"}, job_id="f1", max_attempts=1, now_ms=T0 + 2)
    f1 = await c.reserve(Q, now_ms=T0 + 3)
    assert f1 is not None
    await c.ack_fail(Q, f1.job_id, f1.lease_token, "boom", now_ms=T0 + 4)
    await c.publish(Q, {"n": "c1"}, job_id="c1", now_ms=T0 + 5)
    c1 = await c.reserve(Q, now_ms=T0 + 6)
    assert c1 is not None
    await c.ack_success(Q, c1.job_id, c1.lease_token, result={"ok": True}, now_ms=T0 + 7)
    w.leases["c1"] = c1  # an ended lease
    await c.publish(Q, {"n": "w1"}, job_id="w1", now_ms=T0 + 8)
    await c.publish_many(Q, [JobSpec(payload={"n": g}, job_id=g) for g in ("g1", "g2")],
                         gid="grp", group_limit=2, now_ms=T0 + 9)
    await c.publish(Q, {"n": "d1"}, job_id="d1", delay_ms=10_000, now_ms=T0 + 10)
    await c.childs_init("parent", 3)
    await c.child_ack("parent", "child-1")
    return w


# -- schedules -----------------------------------------------------------------------------

PQ = "pq"  # a queue partitioned in two: its logical anchor refuses schedule writes


async def populate_schedules(c: AsyncOmniq, raw: redis.Redis) -> World:
    """The populated database plus schedules of ``q``, all made at T0 (rev 1 each):
    ``s1`` every minute (next fire T0 + 60 s, nothing due), ``sa`` every second since
    T0 - 10 s until T0 + 5 s with misfire 'all' (next fire T0 - 10 s: 11 occurrences due
    at T0 + 100), ``so`` and ``ss`` the same with misfire 'once' and 'skip' and no end,
    ``sp`` every second, paused; and ``pq`` partitioned in two."""
    w = await populate(c, raw)
    await c.schedule(Q, "s1", every_ms=60_000, now_ms=T0)
    await c.schedule(Q, "sa", every_ms=1000, start_ms=T0 - 10_000, end_ms=T0 + 5000,
                     misfire="all", now_ms=T0)
    await c.schedule(Q, "so", every_ms=1000, start_ms=T0 - 10_000, now_ms=T0)
    await c.schedule(Q, "ss", every_ms=1000, start_ms=T0 - 10_000, misfire="skip", now_ms=T0)
    await c.schedule(Q, "sp", every_ms=1000, now_ms=T0)
    assert await c.pause_schedule(Q, "sp", now_ms=T0)
    await c.partition_queue(PQ, 2)
    return w


# -- dependencies -----------------------------------------------------------------------

Q2 = "q2"


async def populate_deps(c: AsyncOmniq, raw: redis.Redis) -> World:
    """The populated database plus dependency state, written by enqueue directly at
    T0 + 20: on ``q``, ``b1`` (waiting) with a dependent ``wd`` (waiting_deps, same queue)
    and ``px`` on ``q2`` pre-registered, and ``wx`` waiting for ``q2:x1`` (an 'L' op in
    ``q``'s outbox); on ``q2``, ``x1`` (waiting) and ``x2`` cancelled with the dependent
    ``q:wy`` pre-registered (an 'R' op in ``q2``'s outbox): so ``{q}:waiting_deps``,
    ``{q}:job:b1:dependents``, ``{q}:deps:src``, ``{q}:deps:out`` / ``outdata`` and
    ``q2``'s outbox all exist."""
    w = await populate(c, raw)
    now = str(T0 + 20)

    def job(jid: str, extras: str = "") -> list[str]:
        return [jid, "{}", "3", "60000", "0", "0", "0", "", "0", "0", "0", extras]

    def enqueue(key: str, *jobs: list[str]) -> None:
        reply = w.script("enqueue", key, now, str(len(jobs)), *[x for j in jobs for x in j])
        assert reply[0] == "OK", reply

    enqueue("{q2}:meta", job("x1"), job("x2", '{"dependents":[["q","wy","fail"]]}'))
    enqueue("{q}:meta", job("b1", '{"dependents":[["q2","px","fail"]]}'),
            job("wd", '{"depends_on":[["q","b1"]],"dep_policy":"wait"}'),
            job("wx", '{"depends_on":[["q2","x1"]]}'))
    assert w.script("cancel", "{q2}:meta", "x2", now, "", "100")[1] == "cancelled"
    for key in ("{q}:waiting_deps", "{q}:job:b1:dependents", "{q}:deps:src", "{q}:deps:out",
                "{q}:deps:outdata", "{q2}:deps:out"):
        assert raw.exists(key), key
    return w
