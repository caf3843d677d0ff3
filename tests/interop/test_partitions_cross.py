"""Each partition of a partitioned queue is a plain OmniQ v1 queue: the official client
monitors it and consumes from it, and our logical view stays exact."""

from __future__ import annotations

import interop_util as interop
import pytest
import redis

from omniq import AsyncOmniq

pytestmark = pytest.mark.interop


async def test_official_client_reads_and_consumes_one_partition(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    await omniq.partition_queue("parts", 4)
    ids = await omniq.publish_many("parts", [{"i": i} for i in range(40)])
    for k in range(3):
        ids.append(await omniq.publish("parts", {"k": k}, gid="g1", group_limit=1))
    partitions = await omniq.queue_partitions("parts")
    sizes = {p: (await omniq.stats(p)).waiting_total for p in partitions}
    assert sum(sizes.values()) == 43
    target = max(sizes, key=lambda p: sizes[p])
    # the official monitor reads the partition exactly (we list it as "parts")
    await interop.check_monitors(official, omniq, raw, target, listed_as="parts")

    res = await official.arun({"op": "reserve", "queue": target})
    assert res["status"] == "JOB"
    assert res["job_id"] in ids
    info = await omniq.get_job("parts", res["job_id"])  # found through the logical queue
    assert info is not None
    assert info.queue == target
    assert info.state == "active"
    assert (await omniq.stats("parts")).active == 1
    await interop.check_monitors(official, omniq, raw, target, listed_as="parts")

    # we settle the official client's lease (the job is on a partition: acks go there)
    token = res.get("lease_token") or res.get("token")
    assert token
    assert await omniq.ack_success(target, res["job_id"], token) is None
    # the official consumer drains that partition; the logical queue sees the completions
    before = await omniq.stats("parts")
    res = await official.arun({"op": "consume", "queue": target, "ledger": "pl"})
    assert res["timed_out"] is False
    assert res["handled"] == sizes[target] - 1  # all but the job settled above
    after = await omniq.stats("parts")
    assert after.waiting_total == before.waiting_total - res["handled"]
    assert after.completed_kept == before.completed_kept + res["handled"]
    assert (await omniq.stats(target)).waiting_total == 0
    await interop.check_monitors(official, omniq, raw, target, listed_as="parts")
