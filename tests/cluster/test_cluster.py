"""Queues on a real local Redis Cluster: placement, batches split by node, script loading,
the sync facade, and a node restarted in the middle of a run."""

from __future__ import annotations

import asyncio
import collections

import pytest
import redis

from omniq import AsyncOmniq, ConnectionFailed, InvalidArgument, OmniqClient
from omniq.aio.worker import Worker
from omniq.testing.embedded import EmbeddedCluster
from omniq.types import Lease

QUEUES = [f"q{i}" for i in range(12)]


def owner(nodes: list[redis.Redis], queue: str) -> int:
    """Index of the node that serves the queue's slot (the others answer MOVED)."""
    found = []
    for i, node in enumerate(nodes):
        try:
            node.exists("{" + queue + "}:meta")
        except redis.exceptions.MovedError:
            pass
        else:
            found.append(i)
    assert len(found) == 1, found
    return found[0]


def evalsha_calls(node: redis.Redis) -> int:
    stats = node.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_queues_live_on_the_node_of_their_slot(omniq, nodes):
    for q in QUEUES:
        await omniq.publish(q, {"q": q})
    owners = {q: owner(nodes, q) for q in QUEUES}
    assert len(set(owners.values())) == 3  # twelve queues cover all three masters
    for q, i in owners.items():
        assert nodes[i].llen("{" + q + "}:wait") == 1  # the other nodes answer MOVED
    assert sum(n.dbsize() for n in nodes) == sum(
        len(n.keys("{q*}:*")) for n in nodes
    )  # nothing outside the queues' own keys
    for q in QUEUES:
        job = await omniq.reserve(q)
        assert job is not None
        assert job.payload == {"q": q}
        assert (await omniq.ack_success(q, job.job_id, job.lease_token)) is None
        assert (await omniq.stats(q)).completed_kept == 1
    assert await omniq.queues() == sorted(QUEUES)


async def test_heartbeats_across_nodes_are_one_call_per_queue(omniq, nodes):
    leases: list[Lease] = []
    for q in QUEUES:
        await omniq.publish_many(q, [{"i": i} for i in range(3)])
        res = await omniq.reserve_many(q, 3)
        leases += [Lease(q, j.job_id, j.lease_token) for j in res.jobs]
    per_node = collections.Counter(owner(nodes, q) for q in QUEUES)
    assert all(isinstance(r, int) for r in await omniq.heartbeat_many(leases))  # loads it
    before = [evalsha_calls(n) for n in nodes]
    result = await omniq.heartbeat_many(leases)
    assert len(result) == 36
    assert all(isinstance(r, int) for r in result)
    after = [evalsha_calls(n) for n in nodes]
    # one batched heartbeat script per queue, each on the node that owns the queue
    assert [a - b for a, b in zip(after, before, strict=True)] == [per_node[i] for i in range(3)]


async def test_scripts_reload_on_the_node_that_lost_them(omniq, nodes):
    for q in QUEUES:
        await omniq.publish(q, {})
    nodes[1].script_flush()  # one node forgets every script
    leases = []
    for q in QUEUES:
        job = await omniq.reserve(q)  # single calls recover
        assert job is not None
        leases.append(Lease(q, job.job_id, job.lease_token))
    nodes[2].script_flush()
    assert all(isinstance(r, int) for r in await omniq.heartbeat_many(leases))  # pipelined
    nodes[0].script_flush()
    ids = await omniq.publish_many("q0", [{"i": i} for i in range(2500)])  # chunked
    assert len(ids) == 2500
    assert (await omniq.stats("q0")).waiting == 2500


async def test_a_worker_consumes_queues_on_every_node(omniq, nodes):
    seen: list[str] = []
    for q in QUEUES:
        await omniq.publish_many(q, [{"q": q, "i": i} for i in range(20)])
        await omniq.publish(q, {"q": q, "i": 99}, gid="g", group_limit=1)

    async def handler(ctx):
        seen.append(f"{ctx.payload['q']}:{ctx.payload['i']}")

    worker = await omniq.consume(QUEUES, handler, concurrency=8, drain=True)
    assert worker is not None
    assert sorted(seen) == sorted(f"{q}:{i}" for q in QUEUES for i in [*range(20), 99])
    for q in QUEUES:
        s = await omniq.stats(q)
        assert (s.waiting_total, s.active, s.completed_kept) == (0, 0, 21)


async def test_cluster_option_and_database_rules(cluster, nodes):
    port = cluster.nodes[1].port
    async with AsyncOmniq(host="127.0.0.1", port=port, cluster=True) as c:
        jid = await c.publish("opt", {"x": 1})
        assert (await c.get_job("opt", jid)).state == "wait"
    with pytest.raises(InvalidArgument, match="database 0"):
        AsyncOmniq(url=f"redis+cluster://127.0.0.1:{port}/3")
    with pytest.raises(InvalidArgument, match="database 0"):
        AsyncOmniq(host="127.0.0.1", port=port, db=2, cluster=True)


def test_sync_facade_on_a_cluster(cluster, nodes):
    done: list[int] = []
    with OmniqClient(redis_url=cluster.url) as client:
        for q in ("s1", "s2", "s3"):
            client.publish_many(q, [{"i": i} for i in range(10)])
        for q in ("s1", "s2", "s3"):
            client.consume(q, lambda ctx: done.append(ctx.payload["i"]), drain=True)
        assert sorted(done) == sorted(list(range(10)) * 3)
        assert client.stats("s2").completed_kept == 10


@pytest.mark.slow
async def test_workers_ride_through_a_node_restart(cluster, nodes, omniq):
    """A master restarts (AOF on) while a worker drains queues on all three masters: the
    worker reconnects, redirections and connection errors are absorbed, no job is lost."""
    per_queue = 300
    for q in QUEUES:
        await omniq.publish_many(q, [{"q": q, "i": i} for i in range(per_queue)],
                                 timeout_ms=2000)
    runs: collections.Counter[str] = collections.Counter()
    halfway = asyncio.Event()

    async def handler(ctx):
        runs[ctx.job_id] += 1
        if sum(runs.values()) == len(QUEUES) * per_queue // 3:
            halfway.set()
        await asyncio.sleep(0.001)

    client = AsyncOmniq(url=cluster.url, socket_timeout=2.0, keep_completed=10_000)
    worker = Worker(client, QUEUES, handler, concurrency=16, maintenance_interval_s=0.2)
    await worker.start()
    try:
        await asyncio.wait_for(halfway.wait(), 60)
        on_node1 = [q for q in QUEUES if owner(nodes, q) == 1]
        left = sum(nodes[1].llen("{" + q + "}:wait") for q in on_node1)
        await asyncio.to_thread(cluster.restart_node, 1)
        assert left > 0  # the restart really hit jobs that were still to run

        async def finished() -> bool:
            try:
                for q in QUEUES:
                    s = await omniq.stats(q)
                    if s.completed_kept + s.failed < per_queue:
                        return False
            except ConnectionFailed:  # the test's own client meets the restart too
                return False
            return True

        for _ in range(600):  # bounded: up to 60 s for the rest of the run
            if await finished():
                break
            await asyncio.sleep(0.1)  # progress poll of another process's state
    finally:
        await worker.stop()
        await client.aclose()
    for q in QUEUES:
        s = await omniq.stats(q)
        assert (s.waiting_total, s.active, s.delayed, s.failed) == (0, 0, 0, 0), (q, s)
        assert s.completed_kept == per_queue
    assert len(runs) == len(QUEUES) * per_queue  # every job ran
    assert all(n >= 1 for n in runs.values())
    # A job runs twice only if its lease expired while the node was down and the reaper
    # handed it out again: at most the jobs in flight at the restart.
    assert sum(n - 1 for n in runs.values()) <= 16 * 2


def migrate_slot(nodes: list[redis.Redis], src: int, dst: int, slot: int) -> None:
    """Move one slot and its keys from node ``src`` to node ``dst`` (the resharding steps)."""
    ids = [n.execute_command("CLUSTER", "MYID") for n in nodes]
    dst_port = nodes[dst].connection_pool.connection_kwargs["port"]
    nodes[dst].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src])
    nodes[src].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst])
    while keys := nodes[src].execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000):
        nodes[src].execute_command("MIGRATE", "127.0.0.1", dst_port, "", 0, 5000, "KEYS", *keys)
    for n in nodes:
        n.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[dst])


async def test_a_queue_whose_slot_moved_follows_the_redirect(omniq, nodes):
    """A paused, idle queue is resharded to another master: clients holding the old slot
    map get MOVED and follow it; the queue's data moved with it intact."""
    ids = await omniq.publish_many("q5", [{"i": i} for i in range(50)])
    job = await omniq.reserve("q5")
    assert job is not None
    await omniq.pause("q5")
    src = owner(nodes, "q5")
    dst = (src + 1) % 3
    slot = int(nodes[0].execute_command("CLUSTER", "KEYSLOT", "{q5}"))
    await asyncio.to_thread(migrate_slot, nodes, src, dst, slot)
    assert owner(nodes, "q5") == dst
    # the client still routes q5 to the old node: MOVED is followed transparently
    assert await omniq.heartbeat("q5", job.job_id, job.lease_token) > 0
    assert (await omniq.ack_success("q5", job.job_id, job.lease_token)) is None
    assert await omniq.resume("q5") is True
    done: list[str] = []

    async def handler(ctx):
        done.append(ctx.job_id)

    await omniq.consume("q5", handler, concurrency=4, drain=True)
    assert sorted(done) == sorted(ids[1:])
    s = await omniq.stats("q5")
    assert (s.waiting_total, s.active, s.completed_kept) == (0, 0, 50)


async def test_a_partitioned_queue_spreads_over_the_masters(omniq, nodes):
    assert await omniq.partition_queue("orders", 8) is True
    parts = await omniq.queue_partitions("orders")
    assert parts == [f"orders.p{i}" for i in range(8)]
    assert len({owner(nodes, p) for p in parts}) == 3  # eight hash tags, three masters
    ids = await omniq.publish_many("orders", [{"i": i} for i in range(400)])
    for g in range(8):
        for k in range(10):
            await omniq.publish("orders", {"g": g, "k": k}, gid=f"cust-{g}", group_limit=1)
    per_node = collections.Counter()
    for p in parts:
        per_node[owner(nodes, p)] += (await omniq.stats(p)).waiting_total
    assert sum(per_node.values()) == 480
    assert min(per_node.values()) > 0  # every master holds part of the one queue
    order: dict[int, list[int]] = collections.defaultdict(list)
    running: collections.Counter[int] = collections.Counter()
    seen: list[str] = []

    async def handler(ctx):
        seen.append(ctx.job_id)
        assert ctx.logical_queue == "orders"
        if "g" in ctx.payload:
            g = ctx.payload["g"]
            running[g] += 1
            assert running[g] == 1  # group_limit=1 holds across the cluster
            order[g].append(ctx.payload["k"])
            await asyncio.sleep(0.001)
            running[g] -= 1

    await omniq.consume("orders", handler, concurrency=16, drain=True)
    assert len(seen) == len(set(seen)) == 480
    assert set(ids) <= set(seen)
    assert all(order[g] == list(range(10)) for g in range(8))  # FIFO per group
    s = await omniq.stats("orders")
    assert (s.waiting_total, s.active, s.completed_kept) == (0, 0, 8 * 60)


def test_embedded_cluster_is_a_full_cluster(cluster, nodes):
    assert cluster.url == f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}"
    assert cluster.node_urls == [n.url for n in cluster.nodes]
    assert cluster.running
    for node in nodes:
        info = node.execute_command("CLUSTER", "INFO")
        text = info if isinstance(info, str) else str(info)
        assert "cluster_state:ok" in text
        assert "cluster_slots_assigned:16384" in text
        assert "cluster_known_nodes:3" in text
    with pytest.raises(ValueError, match="masters"):
        EmbeddedCluster(masters=0)
    with pytest.raises(TypeError):
        EmbeddedCluster(extra_args="--foo")


async def test_cancel_on_a_partitioned_queue_across_nodes(omniq, nodes):
    """cancel finds each job's partition (on whichever master); a running job's worker is
    told through the wake channel of its partition and fails it 'cancelled'."""
    from omniq import JobFailed

    assert await omniq.partition_queue("jobs", 6) is True
    ids = [await omniq.publish("jobs", {"i": i}, gid=f"g{i}") for i in range(12)]
    results = [await omniq.cancel("jobs", jid) for jid in ids[:6]]
    assert results == ["cancelled"] * 6
    assert await omniq.cancel("jobs", "missing") == "not_found"
    started = asyncio.Event()
    ran: list[int] = []

    async def handler(ctx):
        if ctx.payload["i"] == 6:
            started.set()
            await asyncio.Event().wait()
        ran.append(ctx.payload["i"])

    async with Worker(omniq, "jobs", handler, concurrency=4):
        await asyncio.wait_for(started.wait(), 10)
        assert await omniq.cancel("jobs", ids[6]) == "cancelling"
        with pytest.raises(JobFailed) as err:
            await asyncio.wait_for(omniq.wait("jobs", ids[6]), 10)
        assert err.value.error == "cancelled"
        for jid in ids[7:]:
            await asyncio.wait_for(omniq.wait("jobs", jid), 10)
    assert sorted(ran) == list(range(7, 12))
    for jid in ids[:6]:
        assert await omniq.cancel("jobs", jid) == "finished"
