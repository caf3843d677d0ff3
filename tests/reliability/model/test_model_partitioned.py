"""Model-based test of a partitioned queue: the logical queue ``q1`` with two partitions.

The machine of ``test_model.py`` runs with the two partitions ``q1.p0`` and ``q1.p1`` as its
queues, each checked against its own :class:`QueueModel`. Publishing and pausing go
through the logical name: the test routes every job itself with the documented rule
(CRC-32 of the gid, or of the explicit job id for an ungrouped job, modulo 2), so a
routing change, a key outside the partitions' tags or a write to the wrong partition
breaks the keyspace comparison. Schedules too go through the logical name: each lives on
the partition of its gid, else of its dedup key, else of its name (a new gid moves it),
and fires, pauses, reads and removals fan out over both. Leases, maintenance and admin
use the partition names, and every step also checks the logical ``stats``, ``get_job``
and ``is_paused``. Dependencies and flows link jobs of the two partitions (enqueue called
on a partition; outboxes delivered per partition or through the logical name).
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule, run_state_machine_as_test
from test_model import (
    KEEP_MS,
    SETTINGS,
    T0,
    WEEK_MS,
    QueueMachine,
    job_specs,
    schedule_specs,
)

from omniq import AsyncOmniq, InvalidArgument, PartialPublishError
from omniq._limits import DEFAULT_EVENTS_MAXLEN

LOGICAL = "q1"
PARTS = 2
PHYSICAL = tuple(f"{LOGICAL}.p{i}" for i in range(PARTS))
LAYOUT_KEY = "{" + LOGICAL + "}:partitions"


def route(spec: dict[str, Any]) -> str:
    key = (spec["gid"] or "").strip() or spec["control"].get("dedup_key") or spec["id"]
    return PHYSICAL[zlib.crc32(key.encode()) % PARTS]


class PartitionedMachine(QueueMachine):
    @initialize(
        keep_completed=st.sampled_from([0, 1, 3, 100]),
        keep_failed=st.sampled_from([None, None, 0, 2]),
        child_ttl=st.sampled_from([0, WEEK_MS]),
        two_queues=st.just(False),
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
        super().setup(keep_completed, keep_failed, child_ttl, False, [], keep_completed_ms,
                      keep_failed_ms, events_maxlen)
        assert self.run(self.c.partition_queue(LOGICAL, PARTS)) is True
        self.queues = PHYSICAL
        if seed:
            self._publish_many(LOGICAL, seed)
        for spec in sched_seed or ():
            self._schedule(None, LOGICAL, spec)

    # publishing goes through the logical queue, routed by the test

    @rule(spec=job_specs)
    def publish(self, spec: dict[str, Any]) -> None:  # type: ignore[override]
        qm = self.model.queue(route(spec))
        mj = self._model_job(spec)
        got, code = self.attempt(self.c.publish(
            LOGICAL, spec["payload"], job_id=spec["id"], max_attempts=spec["max_attempts"],
            timeout_ms=spec["timeout_ms"], backoff_ms=spec["backoff_ms"],
            due_ms=mj["due_ms"], delay_ms=mj["delay_ms"], gid=spec["gid"],
            group_limit=spec["group_limit"], keep_completed_ms=spec["keep_ms"][0],
            keep_failed_ms=spec["keep_ms"][1], **spec["control"], now_ms=self.now))
        want = qm.enqueue(self.now, [mj])
        assert (("OK", 1) if code is None else ("ERR", code)) == want[:2], want
        assert code is not None or got == (want[2] if len(want) > 2 else spec["id"])

    @rule(specs=st.lists(job_specs, min_size=1, max_size=3))
    def publish_many(self, specs: list[dict[str, Any]]) -> None:  # type: ignore[override]
        self._publish_many(LOGICAL, specs)

    def _publish_many(self, queue: str, specs: list[dict[str, Any]]) -> None:
        models = [self._model_job(s) for s in specs]
        jobs = self._job_specs(specs, models)
        try:
            got, code = self.attempt(self.c.publish_many(LOGICAL, jobs, now_ms=self.now))
        except PartialPublishError as exc:  # other partitions wrote theirs: see below
            got, code = None, getattr(exc.errors[0], "code", None)
        ids = [s["id"] for s in specs]
        if len(set(ids)) < len(ids):  # refused by the client before anything is sent
            assert code == "DUPLICATE"
            return
        by_part: dict[str, list[int]] = {}
        for k, s in enumerate(specs):
            by_part.setdefault(route(s), []).append(k)
        first = None
        for part, ks in by_part.items():  # each partition all-or-nothing on its own
            want = self.model.queue(part).enqueue(self.now, [models[k] for k in ks])
            if want[0] != "OK" and first is None:
                first = want[1]
            for k, now_id in zip(ks, want[2:], strict=False):  # deduplicated: the holder's
                ids[k] = now_id
        assert code == first
        assert code is not None or got == ids

    @rule(data=st.data(), stay=st.sampled_from([False, False, False, True]))
    def pause(self, data: st.DataObject, stay: bool) -> None:
        self.run(self.c.pause(LOGICAL))
        for part in PHYSICAL:
            self.model.queue(part).pause()
        assert self.run(self.c.is_paused(LOGICAL)) is True
        assert self.run(self.c.reserve_many(LOGICAL, 1, now_ms=self.now)).status == "PAUSED"
        self._reserve(data, 1)
        if not stay:
            self.resume(data)

    @rule(data=st.data())
    def resume(self, data: st.DataObject, queue: str | None = None) -> None:
        wants = [self.model.queue(part).resume() for part in PHYSICAL]
        got = self.run(self.c.resume(LOGICAL))
        assert got == any(w[1] for w in wants)

    # schedules go through the logical queue; each lives on the partition of its gid, else
    # of its dedup key, else of its name (the rule of route())

    def sched_queue(self, data: st.DataObject) -> str:
        return LOGICAL

    def sched_parts(self, queue: str) -> tuple[str, ...]:
        return PHYSICAL

    def sched_home(self, queue: str, name: str, gid: str | None, dedup_key: str | None) -> str:
        key = (gid or "").strip() or dedup_key or name
        return PHYSICAL[zlib.crc32(key.encode()) % PARTS]

    # dependencies: between the two partitions (cross-queue ops), published by enqueue
    # directly on a partition; resolve_dependencies through the logical name too

    def dep_queues(self) -> tuple[str, ...]:
        return PHYSICAL

    def client_deps(self) -> bool:
        return False

    def deps_target(self, data: st.DataObject) -> tuple[str, tuple[str, ...]]:
        if data.draw(st.booleans(), label="logical?"):
            return LOGICAL, PHYSICAL
        return super().deps_target(data)

    # the logical view after every step

    @invariant()
    def logical_view_matches(self) -> None:
        total = self.run(self.c.stats(LOGICAL))
        parts = [self.run(self.c.stats(part)) for part in PHYSICAL]
        for field in ("waiting", "group_waiting", "waiting_total", "active", "delayed",
                      "failed", "completed_kept", "groups_ready"):
            assert getattr(total, field) == sum(getattr(s, field) for s in parts), field
        assert total.paused == any(self.model.queue(p).paused for p in PHYSICAL)
        assert self.run(self.c.is_paused(LOGICAL)) == total.paused
        for part in PHYSICAL:
            for job_id in sorted(self.model.queue(part).jobs)[:2]:
                info = self.run(self.c.get_job(LOGICAL, job_id))
                assert info is not None
                holders = [p for p in PHYSICAL if job_id in self.model.queue(p).jobs]
                assert info.queue == holders[0]

    def real_keyspace(self) -> dict[str, Any]:
        real = super().real_keyspace()
        assert real.pop(LAYOUT_KEY)[:2] == ("string", str(PARTS))
        outside = [k for k in real if not k.startswith(("{q1.p0}:", "{q1.p1}:", "{cc:"))]
        assert not outside, outside
        return real


def test_partitions_agree_with_model(omniq_redis_url: str) -> None:
    run_state_machine_as_test(lambda: PartitionedMachine(omniq_redis_url), settings=SETTINGS)


async def test_a_refused_move_keeps_the_schedule(omniq_redis_url: str) -> None:
    """schedule() documents "no occurrence left (nothing is written)": a replacement that
    would move the schedule to another partition (a new gid) is refused before the old
    copy is removed."""
    async with AsyncOmniq(url=omniq_redis_url) as c:
        await c.partition_queue("pq", PARTS)
        here = zlib.crc32(b"a") % PARTS
        other = next(g for g in "bcdefgh" if zlib.crc32(g.encode()) % PARTS != here)
        await c.schedule("pq", "s", every_ms=1000, gid="a", now_ms=T0)
        with pytest.raises(InvalidArgument):
            await c.schedule("pq", "s", every_ms=1000, gid=other, end_ms=T0 - 1,
                             now_ms=T0 + 10)
        assert await c.get_schedule("pq", "s") is not None
