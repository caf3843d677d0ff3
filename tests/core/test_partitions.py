"""Partitioned queues: layout, routing, reservation and the logical-queue operations.

A logical queue ``orders`` with N partitions is the N plain OmniQ v1 queues ``orders.pi``
(keys ``{orders.pi}:...``); its layout lives in ``{orders}:partitions``.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

import pytest
import redis
from core_util import T0, jk, qk, real_stats, run_script, stored_stats

from omniq import (
    AsyncOmniq,
    DuplicateJobError,
    InvalidArgument,
    JobNotFound,
    JobSpec,
    LaneMismatch,
    PartialPublishError,
    PartitionError,
)
from omniq._keys import partition_index, partition_name, split_partition

N = 4


def part_of(gid: str, n: int = N) -> int:
    """The documented rule, written out: CRC-32 (zlib) of the UTF-8 gid, mod N."""
    return zlib.crc32(gid.encode("utf-8")) % n


def gid_for(partition: int, n: int = N, prefix: str = "g") -> str:
    """A gid that hashes to ``partition``."""
    i = 0
    while part_of(f"{prefix}{i}", n) != partition:
        i += 1
    return f"{prefix}{i}"


def tags(raw: redis.Redis) -> Counter[str]:
    """Hash tags of every key in the database, with the number of keys of each."""
    return Counter(k[1 : k.index("}")] for k in raw.scan_iter(count=1000))


# -- layout ------------------------------------------------------------------------------


async def test_layout_is_stored_and_shared(omniq, raw, omniq_redis_url):
    assert await omniq.queue_partitions("orders") == ["orders"]
    assert await omniq.partition_queue("orders", N) is True
    assert raw.get("{orders}:partitions") == str(N)
    assert raw.type("{orders}:partitions") == "string"
    async with AsyncOmniq(url=omniq_redis_url) as other:
        assert await other.queue_partitions("orders") == [f"orders.p{i}" for i in range(N)]
        assert await other.partition_queue("orders", N) is False  # same count: a no-op
        with pytest.raises(PartitionError) as err:
            await other.partition_queue("orders", N + 1)
        assert err.value.code == "PARTITION_CONFLICT"
        assert err.value.detail == str(N)
    assert raw.get("{orders}:partitions") == str(N)


async def test_queue_with_jobs_cannot_be_partitioned(omniq, raw):
    await omniq.publish("busy", {"a": 1})
    with pytest.raises(PartitionError) as err:
        await omniq.partition_queue("busy", 2)
    assert err.value.code == "QUEUE_NOT_EMPTY"
    assert raw.get("{busy}:partitions") is None
    assert await omniq.queue_partitions("busy") == ["busy"]


async def test_completed_history_also_blocks_partitioning(omniq, raw):
    await omniq.publish("done", {"a": 1})
    job = await omniq.reserve("done")
    await omniq.ack_success("done", job.job_id, job.lease_token)
    with pytest.raises(PartitionError, match="QUEUE_NOT_EMPTY"):
        await omniq.partition_queue("done", 2)


@pytest.mark.parametrize("bad", [0, -1, 1025, True, "3", 2.0, None])
async def test_partition_count_is_validated(omniq, raw, bad):
    with pytest.raises(InvalidArgument):
        await omniq.partition_queue("q", bad)
    assert raw.dbsize() == 0


@pytest.mark.parametrize("name", ["q#1", "q#", "#1", "q{x}", "", None, "x" * 126])
async def test_partition_queue_rejects_bad_names(omniq, raw, name):
    with pytest.raises(InvalidArgument):
        await omniq.partition_queue(name, 2)
    assert raw.dbsize() == 0


def test_partition_script_validates_its_arguments(raw):
    anchor = "{s}:meta"
    for args in ([], ["x"], ["0"], ["1025"], ["1.5"], ["2", "3"]):
        assert run_script(raw, "partition", anchor, *args)[:2] == ["ERR", "BAD_ARGS"], args
    assert raw.dbsize() == 0
    assert run_script(raw, "partition", anchor, "08") == ["OK", "8", "1"]  # stored canonical
    assert raw.get("{s}:partitions") == "8"
    assert run_script(raw, "partition", anchor, "8") == ["OK", "8", "0"]


def test_partition_names():
    assert partition_name("orders", 3) == "orders.p3"
    assert split_partition("orders.p3") == ("orders", 3)
    assert split_partition("orders.p1023") == ("orders", 1023)
    assert split_partition("orders") == ("orders", None)
    # names that cannot be partition names are plain names
    for plain in ("orders.p03", "orders.p-1", "orders.p1024", "orders.px", "orders.p", ".p1x"):
        assert split_partition(plain) == (plain, None)
    # every partition name is a valid OmniQ v1 queue name (^[A-Za-z0-9._-]+$, <= 128)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", partition_name("a-b_c.d", 1023))
    with pytest.raises(InvalidArgument, match="too long"):
        partition_name("x" * 126, 0)
    # the rule every client must share (pinned values, so a change of hash fails here)
    assert zlib.crc32(b"tenant-1") == 4226746879
    assert [partition_index(g, 8) for g in ("tenant-1", "a", "b", "é")] == [7, 3, 1, 6]


# -- publish -----------------------------------------------------------------------------


async def test_keys_land_in_partition_tags(omniq, raw):
    await omniq.partition_queue("orders", N)
    for i in range(20):
        await omniq.publish("orders", {"i": i}, gid=f"t{i % 5}")
        await omniq.publish("orders", {"i": i})
    await omniq.publish_many("orders", [{"m": i} for i in range(20)], delay_ms=60_000)
    seen = tags(raw)
    assert set(seen) <= {"orders"} | {f"orders.p{i}" for i in range(N)}
    assert seen["orders"] == 1  # only the layout key
    assert all(seen[f"orders.p{i}"] > 0 for i in range(N))
    # every partition is a consistent plain queue
    for i in range(N):
        q = f"orders.p{i}"
        assert stored_stats(raw, q) == real_stats(raw, q)


async def test_gid_always_maps_to_the_same_partition(omniq, raw):
    await omniq.partition_queue("orders", N)
    gids = [f"tenant-{i}" for i in range(12)] + ["é", " padded "]
    for gid in gids:
        for k in range(3):
            await omniq.publish("orders", {"k": k}, gid=gid)
        await omniq.publish_many("orders", [JobSpec(payload={"m": 1}, gid=gid), {"m": 2}],
                                 gid=gid)
    for gid in gids:
        want = f"orders.p{part_of(gid.strip())}"
        for i in range(N):
            n = raw.llen(f"{{orders.p{i}}}:g:{gid.strip()}:wait")
            assert n == (5 if f"orders.p{i}" == want else 0), (gid, i)


async def test_ungrouped_jobs_spread_evenly(omniq, raw):
    await omniq.partition_queue("even", N)
    for i in range(40):
        await omniq.publish("even", {"i": i})
    await omniq.publish_many("even", [{"i": i} for i in range(400)])
    sizes = [raw.llen(qk(f"even.p{i}", "wait")) for i in range(N)]
    assert sum(sizes) == 440
    assert max(sizes) - min(sizes) <= 2, sizes


async def test_explicit_ids_route_by_id_so_duplicates_are_refused(omniq, raw):
    await omniq.partition_queue("ids", N)
    await omniq.publish("ids", {"a": 1}, job_id="job-1")
    with pytest.raises(DuplicateJobError):
        await omniq.publish("ids", {"a": 2}, job_id="job-1")
    with pytest.raises(DuplicateJobError):
        await omniq.publish_many("ids", [JobSpec(payload={"a": 3}, job_id="job-1")])
    holder = f"ids.p{part_of('job-1')}"
    assert raw.hget(jk(holder, "job-1"), "payload") == '{"a":1}'
    assert (await omniq.get_job("ids", "job-1")).queue == holder


async def test_publish_many_reports_what_other_partitions_wrote(omniq, raw):
    await omniq.partition_queue("pm", N)
    await omniq.publish("pm", {"old": 1}, job_id="dup")
    dup_part = part_of("dup")
    # one job per partition besides the duplicate, each with an explicit id
    specs = [JobSpec(payload={"x": 1}, job_id="dup")]
    for p in range(N):
        jid = next(f"id{i}" for i in range(1000) if part_of(f"id{i}") == p)
        specs.append(JobSpec(payload={"p": p}, job_id=jid))
    with pytest.raises(PartialPublishError) as err:
        await omniq.publish_many("pm", specs)
    assert isinstance(err.value.__cause__, DuplicateJobError)
    assert [type(e) for e in err.value.errors] == [DuplicateJobError]
    written = err.value.published_ids
    expect = [s.job_id for s in specs[1:] if part_of(s.job_id) != dup_part]
    assert sorted(written) == sorted(expect)
    for s in specs[1:]:
        exists = raw.exists(jk(f"pm.p{part_of(s.job_id)}", s.job_id))
        assert bool(exists) == (s.job_id in written), s.job_id


async def test_publish_many_validates_everything_before_writing(omniq, raw):
    await omniq.partition_queue("v", N)
    before = raw.dbsize()
    with pytest.raises(InvalidArgument):
        await omniq.publish_many("v", [{"a": 1}] * 50 + ["not an object"])
    with pytest.raises(DuplicateJobError):
        await omniq.publish_many("v", [JobSpec(payload={}, job_id="x"),
                                       JobSpec(payload={}, job_id="x")])
    assert raw.dbsize() == before


async def test_a_partition_is_a_plain_queue_of_its_own(omniq, raw):
    """A partition name is an ordinary queue name: publishing into one partition directly
    is allowed (it is how an official client would publish) and the logical queue's
    consumers take the job."""
    await omniq.partition_queue("orders", N)
    jid = await omniq.publish("orders.p1", {"a": 1})
    assert raw.llen("{orders.p1}:wait") == 1
    assert (await omniq.stats("orders")).waiting == 1
    assert (await omniq.stats("orders.p1")).waiting == 1
    job = await omniq.reserve("orders")
    assert job is not None
    assert (job.job_id, job.queue) == (jid, "orders.p1")
    await omniq.pause("orders.p1")  # that partition alone
    assert await omniq.is_paused("orders.p1")
    assert not await omniq.is_paused("orders.p2")


async def test_partitioning_refuses_to_adopt_queues_named_like_its_partitions(omniq, raw):
    await omniq.publish("inv.p2", {"mine": True})  # somebody's plain queue
    with pytest.raises(PartitionError) as e:
        await omniq.partition_queue("inv", N)
    assert e.value.code == "QUEUE_NOT_EMPTY"
    assert raw.exists("{inv}:partitions") == 0
    assert await omniq.partition_queue("inv", 2) is True  # inv.p0, inv.p1 are free
    assert await omniq.queues() == ["inv", "inv.p2"]


async def test_stale_layout_cache_reroutes_publish(omniq, raw, omniq_redis_url):
    assert await omniq.stats("late") is not None  # caches "late" as unpartitioned
    assert await omniq.queue_partitions("late") == ["late"]
    async with AsyncOmniq(url=omniq_redis_url) as admin:
        await admin.partition_queue("late", N)
    jid = await omniq.publish("late", {"a": 1})
    ids = await omniq.publish_many("late", [{"b": i} for i in range(8)])
    assert await omniq.queue_partitions("late") == [f"late.p{i}" for i in range(N)]
    assert not [k for k in raw.scan_iter("{late}:*") if k != "{late}:partitions"]
    for i in [jid, *ids]:
        assert (await omniq.get_job("late", i)).queue.startswith("late.p")
    # the enqueue script itself refuses the logical anchor of a partitioned queue
    r = run_script(raw, "enqueue", "{late}:meta", T0, 1, "x", "{}", 1, 1, 0, 0, 0, "", 0, 0,
                   0, "")
    assert r == ["ERR", "PARTITIONED"]


# -- reserve -----------------------------------------------------------------------------


async def test_reserve_many_fills_the_batch_from_every_partition(omniq):
    await omniq.partition_queue("r", N)
    await omniq.publish_many("r", [{"i": i} for i in range(4 * N)])
    res = await omniq.reserve_many("r", 4 * N)
    assert res.status == "JOB"
    assert len(res.jobs) == 4 * N
    assert Counter(j.queue for j in res.jobs) == {f"r.p{i}": 4 for i in range(N)}
    assert (await omniq.reserve_many("r", 5)).status == "EMPTY"


async def test_reserve_finds_the_only_partition_with_work(omniq):
    await omniq.partition_queue("sparse", 8)
    gid = gid_for(5, 8)
    await omniq.publish_many("sparse", [{"i": i} for i in range(3)], gid=gid, group_limit=10)
    for _ in range(8):  # whatever partition the rotation starts at
        job = await omniq.reserve("sparse")
        assert job is not None
        assert job.queue == "sparse.p5"
        await omniq.ack_success(job.queue, job.job_id, job.lease_token)
        await omniq.publish("sparse", {"again": 1}, gid=gid)
    res = await omniq.reserve_many("sparse", 10)
    assert len(res.jobs) == 3


async def test_reserve_rotates_fairly_over_partitions(omniq):
    await omniq.partition_queue("fair", N)
    await omniq.publish_many("fair", [{"i": i} for i in range(10 * N)])
    seen = Counter()
    for _ in range(5 * N):
        job = await omniq.reserve("fair")
        seen[job.queue] += 1
    assert seen == {f"fair.p{i}": 5 for i in range(N)}
    # batches smaller than the partition count rotate too
    seen.clear()
    for _ in range(N):
        res = await omniq.reserve_many("fair", 2)
        seen.update(j.queue for j in res.jobs)
    assert seen == {f"fair.p{i}": 2 for i in range(N)}


async def test_leases_are_settled_on_the_partition(omniq, raw):
    await omniq.partition_queue("l", N)
    await omniq.publish_many("l", [{"i": i} for i in range(3)], max_attempts=1)
    a, b, c = (await omniq.reserve_many("l", 3)).jobs
    with pytest.raises(InvalidArgument, match="partitioned"):
        await omniq.ack_success("l", a.job_id, a.lease_token)
    await omniq.heartbeat(a.queue, a.job_id, a.lease_token)
    assert (await omniq.heartbeat_many([(b.queue, b.job_id, b.lease_token),
                                        (c.queue, c.job_id, c.lease_token)]))[0] > 0
    await omniq.ack_success(a.queue, a.job_id, a.lease_token, result={"ok": 1})
    assert (await omniq.ack_fail(b.queue, b.job_id, b.lease_token, "boom")).status == "FAILED"
    outcomes, _ = await omniq.ack_reserve(c.queue, [], 0)
    assert outcomes == []
    assert raw.hget(jk(a.queue, a.job_id), "state") == "completed"
    assert await omniq.result("l", a.job_id) == {"ok": 1}


async def test_pause_resume_act_on_every_partition(omniq, raw):
    await omniq.partition_queue("pz", N)
    await omniq.publish_many("pz", [{"i": i} for i in range(2 * N)])
    await omniq.pause("pz")
    assert all(raw.get(qk(f"pz.p{i}", "paused")) == "1" for i in range(N))
    assert await omniq.is_paused("pz")
    assert await omniq.reserve("pz") is None
    assert (await omniq.reserve_many("pz", 3)).status == "PAUSED"
    assert (await omniq.stats("pz")).paused
    assert await omniq.resume("pz") is True
    assert not await omniq.is_paused("pz")
    assert await omniq.resume("pz") is False
    assert len((await omniq.reserve_many("pz", 2 * N)).jobs) == 2 * N
    # one partition paused by hand: the logical queue reports it
    raw.set(qk("pz.p2", "paused"), "1")
    assert await omniq.is_paused("pz")
    assert await omniq.is_paused("pz.p2")
    assert not await omniq.is_paused("pz.p1")


# -- inspection and admin ----------------------------------------------------------------


async def test_stats_sum_the_partitions(omniq, raw):
    await omniq.partition_queue("st", N)
    await omniq.publish_many("st", [{"i": i} for i in range(10)])
    await omniq.publish_many("st", [{"g": i} for i in range(6)], gid="grp")
    await omniq.publish("st", {"later": 1}, delay_ms=60_000)
    res = await omniq.reserve_many("st", 3)
    await omniq.ack_success(res.jobs[0].queue, res.jobs[0].job_id, res.jobs[0].lease_token)
    parts = [await omniq.stats(f"st.p{i}") for i in range(N)]
    total = await omniq.stats("st")
    assert total.queue == "st"
    for field in ("waiting", "group_waiting", "waiting_total", "active", "delayed", "failed",
                  "completed_kept", "groups_ready"):
        assert getattr(total, field) == sum(getattr(s, field) for s in parts), field
    assert total.waiting_total + total.active + total.delayed + total.completed_kept == 17
    assert total.completed_kept == 1
    assert total.active == 2
    assert total.delayed == 1
    assert total.last_enqueue_ms == max(s.last_enqueue_ms or 0 for s in parts)
    for i in range(N):  # each partition is a normal queue, its stats hash exact
        assert stored_stats(raw, f"st.p{i}") == real_stats(raw, f"st.p{i}")


async def test_queues_lists_a_partitioned_queue_once(omniq):
    await omniq.partition_queue("big", N)
    await omniq.publish_many("big", [{"i": i} for i in range(2 * N)])
    await omniq.publish("small", {"a": 1})
    assert await omniq.queues() == ["big", "small"]


async def test_get_job_finds_the_partition(omniq):
    await omniq.partition_queue("gj", N)
    ids = await omniq.publish_many("gj", [{"i": i} for i in range(N)])
    holders = {(await omniq.get_job("gj", jid)).queue for jid in ids}
    assert holders == {f"gj.p{i}" for i in range(N)}
    assert await omniq.get_job("gj", "missing") is None
    assert await omniq.result("gj", "missing") is None


async def test_promote_and_reap_cover_every_partition(omniq):
    await omniq.partition_queue("m", N)
    await omniq.publish_many("m", [{"i": i} for i in range(2 * N)], delay_ms=100, now_ms=T0)
    assert await omniq.promote_delayed("m", now_ms=T0 + 50) == 0
    assert await omniq.promote_delayed("m", now_ms=T0 + 100) == 2 * N
    res = await omniq.reserve_many("m", 2 * N, now_ms=T0 + 100)
    assert len(res.jobs) == 2 * N
    assert await omniq.reap_expired("m", now_ms=T0 + 100 + 30_000) == 2 * N
    assert (await omniq.stats("m")).delayed == 2 * N


async def _failed_jobs(omniq, queue: str, n: int) -> list[str]:
    ids = await omniq.publish_many(queue, [{"i": i} for i in range(n)], max_attempts=1)
    res = await omniq.reserve_many(queue, n)
    assert len(res.jobs) == n
    for j in res.jobs:
        await omniq.ack_fail(j.queue, j.job_id, j.lease_token, "e")
    return ids


async def test_admin_ops_find_the_job_partition(omniq, raw):
    await omniq.partition_queue("adm", N)
    ids = await _failed_jobs(omniq, "adm", 2 * N)
    assert (await omniq.stats("adm")).failed == 2 * N
    where = {jid: (await omniq.get_job("adm", jid)).queue for jid in ids}
    assert len(set(where.values())) == N

    await omniq.retry_failed("adm", ids[0])
    assert raw.hget(jk(where[ids[0]], ids[0]), "state") == "wait"
    with pytest.raises(LaneMismatch):
        await omniq.retry_failed("adm", ids[0])
    with pytest.raises(JobNotFound):
        await omniq.retry_failed("adm", "missing")

    res = await omniq.retry_failed_batch("adm", [ids[1], "missing", ids[2], ids[0]])
    assert [(r.job_id, r.status) for r in res] == [
        (ids[1], "OK"), ("missing", "ERR"), (ids[2], "OK"), (ids[0], "ERR")]
    assert res[1].reason == "NO_JOB"
    assert res[3].reason  # not failed any more

    await omniq.remove_job("adm", ids[3], "failed")
    assert not raw.exists(jk(where[ids[3]], ids[3]))
    with pytest.raises(JobNotFound):
        await omniq.remove_job("adm", ids[3], "failed")
    with pytest.raises(LaneMismatch):
        await omniq.remove_job("adm", ids[0], "failed")  # it waits now
    res = await omniq.remove_jobs_batch("adm", "failed", [*ids[4:], "missing"])
    assert [r.status for r in res] == ["OK"] * (2 * N - 4) + ["ERR"]
    res = await omniq.remove_jobs_batch("adm", "wait", [ids[0], ids[1], ids[2]])
    assert [r.status for r in res] == ["OK"] * 3
    stats = await omniq.stats("adm")
    assert (stats.failed, stats.waiting_total) == (0, 0)
    for i in range(N):
        assert stored_stats(raw, f"adm.p{i}") == real_stats(raw, f"adm.p{i}")


def test_sync_facade(omniq_sync, raw):
    assert omniq_sync.partition_queue("sq", 3) is True
    assert omniq_sync.queue_partitions("sq") == ["sq.p0", "sq.p1", "sq.p2"]
    omniq_sync.publish("sq", {"a": 1}, gid="x")
    job = omniq_sync.reserve("sq")
    assert job.queue == f"sq.p{part_of('x', 3)}"
    omniq_sync.ack_success(job.queue, job.job_id, job.lease_token)
    assert omniq_sync.stats("sq").completed_kept == 1
    with pytest.raises(PartitionError):
        omniq_sync.partition_queue("sq", 4)


async def test_reserve_many_fills_whatever_partition_the_rotation_starts_at(omniq):
    await omniq.partition_queue("rot", N)
    gids = [gid_for(p) for p in range(3)]  # partitions 0-2 have work, partition 3 none
    for _ in range(N):  # the starting partition advances by one per call
        for gid in gids:
            await omniq.publish("rot", {"g": gid}, gid=gid)
        res = await omniq.reserve_many("rot", 3)
        assert sorted(j.queue for j in res.jobs) == ["rot.p0", "rot.p1", "rot.p2"]
        for j in res.jobs:
            await omniq.ack_success(j.queue, j.job_id, j.lease_token)


async def test_publish_to_a_new_plain_queue_reads_no_layout(omniq, raw, monkeypatch):
    async def no_get(*args, **kwargs):
        raise AssertionError("publish must not read the layout of a plain queue")

    monkeypatch.setattr(omniq.redis, "get", no_get)
    await omniq.publish("plain", {"a": 1})
    await omniq.publish_many("plain2", [{"a": 1}, {"b": 2}])
    assert raw.llen(qk("plain", "wait")) == 1
    assert raw.llen(qk("plain2", "wait")) == 2


async def test_a_fresh_client_publishes_into_the_partitions(omniq, raw, omniq_redis_url):
    await omniq.partition_queue("fresh", N)
    async with AsyncOmniq(url=omniq_redis_url) as other:
        jid = await other.publish("fresh", {"a": 1}, gid="g")
    async with AsyncOmniq(url=omniq_redis_url) as other:
        ids = await other.publish_many("fresh", [{"b": i} for i in range(3)])
    assert raw.exists(jk(f"fresh.p{part_of('g')}", jid))
    assert sum(raw.llen(qk(f"fresh.p{i}", "wait")) for i in range(N)) == 3
    assert len(ids) == 3
    assert not [k for k in raw.scan_iter("{fresh}:*") if k != "{fresh}:partitions"]
