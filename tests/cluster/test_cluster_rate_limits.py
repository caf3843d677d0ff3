"""Rate limits on a real local Redis Cluster: every key of a limit lives in its queue's slot,
and a worker holds a queue-wide limit shared by partitions on different masters."""

from __future__ import annotations

from test_cluster import owner

from omniq import RateLimit
from omniq.aio.worker import Worker


async def test_limit_keys_live_in_the_queue_slot(omniq, nodes):
    await omniq.publish_many("rq", [{}, {}], gid="g", group_limit=2)
    await omniq.set_rate_limit("rq", 5, 60_000)
    await omniq.set_rate_limit("rq", 1, 60_000, gid="g")
    res = await omniq.reserve_many("rq", 2)
    assert len(res.jobs) == 1
    node = nodes[owner(nodes, "rq")]
    assert node.exists("{rq}:rate_limits", "{rq}:rate_log", "{rq}:g:g:rate_log",
                       "{rq}:groups:limited") == 4
    assert await omniq.rate_limits("rq") == [
        RateLimit(max_jobs=5, per_ms=60_000, in_window=1),
        RateLimit(max_jobs=1, per_ms=60_000, gid="g", in_window=1)]


async def test_a_shared_limit_over_partitions_on_every_master(omniq, nodes):
    assert await omniq.partition_queue("rp", 6) is True
    parts = await omniq.queue_partitions("rp")
    assert len({owner(nodes, p) for p in parts}) == 3
    await omniq.set_rate_limit("rp", 12, 400)  # two per partition and window
    ids = await omniq.publish_many("rp", [{"i": i} for i in range(36)])
    starts: list[str] = []

    async def handler(ctx):
        starts.append(ctx.job_id)

    worker = Worker(omniq, "rp", handler, concurrency=36, drain=True)
    await worker.run()
    assert sorted(starts) == sorted(ids)
    times = []
    for p in parts:
        node = nodes[owner(nodes, p)]
        for key in node.scan_iter("{" + p + "}:job:*"):
            times.append(int(node.hget(key, "last_started_ms")))
    times.sort()
    # 36 jobs at 12 per window: three windows, the last at least two windows after the first
    assert times[-1] - times[0] >= 2 * 400
    assert all(sum(1 for t in times if s <= t < s + 400) <= 12 for s in times)
