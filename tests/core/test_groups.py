"""Groups: FIFO inside a group, round-robin between groups, group_limit."""

from __future__ import annotations

from core_util import T0, gk, qk

from omniq import JobSpec


async def _drain(omniq, queue: str, start: int, n: int) -> list[tuple[str, str]]:
    """reserve + ack n times with an increasing clock; returns (gid, payload tag)."""
    out = []
    t = start
    for _ in range(n):
        t += 10
        job = await omniq.reserve(queue, now_ms=t)
        assert job is not None
        out.append((job.gid, job.payload["tag"]))
        t += 10
        await omniq.ack_success(queue, job.job_id, job.lease_token, now_ms=t)
    return out


async def test_fifo_within_group(omniq):
    await omniq.publish_many(
        "q", [{"tag": f"a{i}"} for i in range(5)], gid="A", group_limit=5, now_ms=T0
    )
    res = await omniq.reserve_many("q", 5, now_ms=T0 + 1)
    assert [j.payload["tag"] for j in res.jobs] == ["a0", "a1", "a2", "a3", "a4"]


async def test_round_robin_between_groups(omniq):
    t = T0
    for g in "ABC":
        for i in range(3):
            t += 1
            await omniq.publish("q", {"tag": f"{g}{i}"}, gid=g, now_ms=t)
    got = await _drain(omniq, "q", t, 9)
    assert [g for g, _ in got] == list("ABCABCABC")
    assert [tag for _, tag in got] == ["A0", "B0", "C0", "A1", "B1", "C1", "A2", "B2", "C2"]


async def test_limit_one_blocks_group_until_ack(omniq, raw):
    await omniq.publish_many("q", [{"tag": i} for i in range(2)], gid="g", now_ms=T0)
    first = await omniq.reserve("q", now_ms=T0 + 1)
    assert first is not None
    assert first.payload["tag"] == 0
    assert raw.get(gk("q", "g", "inflight")) == "1"
    assert await omniq.reserve("q", now_ms=T0 + 2) is None  # missing limit means 1
    await omniq.ack_success("q", first.job_id, first.lease_token, now_ms=T0 + 3)
    assert raw.zscore(qk("q", "groups:ready"), "g") == T0 + 3
    second = await omniq.reserve("q", now_ms=T0 + 4)
    assert second is not None
    assert second.payload["tag"] == 1


async def test_group_limit_two(omniq, raw):
    await omniq.publish_many("q", [{"tag": i} for i in range(3)], gid="g", group_limit=2,
                             now_ms=T0)
    a = await omniq.reserve("q", now_ms=T0 + 1)
    b = await omniq.reserve("q", now_ms=T0 + 2)
    assert a is not None
    assert b is not None
    assert raw.get(gk("q", "g", "inflight")) == "2"
    assert await omniq.reserve("q", now_ms=T0 + 3) is None
    assert (await omniq.reserve_many("q", 5, now_ms=T0 + 3)).status == "EMPTY"
    await omniq.ack_fail("q", a.job_id, a.lease_token, "x", now_ms=T0 + 4)
    c = await omniq.reserve("q", now_ms=T0 + 5)
    assert c is not None
    assert c.payload["tag"] == 2


async def test_group_limit_first_writer_wins(omniq, raw):
    await omniq.publish("q", {"tag": 0}, gid="g", group_limit=2, now_ms=T0)
    await omniq.publish("q", {"tag": 1}, gid="g", group_limit=5, now_ms=T0 + 1)
    await omniq.publish("q", {"tag": 2}, gid="g", now_ms=T0 + 2)
    await omniq.publish_many("q", [JobSpec(payload={"tag": 3}, gid="g", group_limit=9)],
                             now_ms=T0 + 3)
    assert raw.get(gk("q", "g", "limit")) == "2"
    res = await omniq.reserve_many("q", 4, now_ms=T0 + 4)
    assert len(res.jobs) == 2


async def test_no_limit_key_without_group_limit(omniq, raw):
    await omniq.publish("q", {}, gid="g", now_ms=T0)
    assert raw.exists(gk("q", "g", "limit")) == 0
    await omniq.publish("q", {}, gid="g", group_limit=3, now_ms=T0)
    assert raw.get(gk("q", "g", "limit")) == "3"  # set later by the first non-zero limit


async def test_group_keeps_place_in_line(omniq, raw):
    # A new publish to a group already in groups:ready keeps its older score (ZADD NX).
    await omniq.publish("q", {"tag": "a"}, gid="A", now_ms=T0)
    await omniq.publish("q", {"tag": "b"}, gid="B", now_ms=T0 + 1)
    await omniq.publish("q", {"tag": "a2"}, gid="A", group_limit=1, now_ms=T0 + 2)
    assert raw.zrange(qk("q", "groups:ready"), 0, -1, withscores=True) == [
        ("A", float(T0)),
        ("B", float(T0 + 1)),
    ]


async def test_grouped_and_ungrouped_mix(omniq):
    await omniq.publish_many("q", [{"tag": f"u{i}"} for i in range(2)], now_ms=T0)
    await omniq.publish_many("q", [{"tag": f"g{i}"} for i in range(2)], gid="G", now_ms=T0)
    got = await _drain(omniq, "q", T0, 4)
    assert [tag for _, tag in got] == ["g0", "u0", "g1", "u1"]


async def test_round_robin_inside_one_batch(omniq, raw):
    # every re-add happens in the same millisecond: ties in groups:ready must not hand the
    # lexicographically first group every second slot
    await omniq.publish_many(
        "q", [JobSpec(payload={"tag": f"{g}{i}"}, gid=g, group_limit=4) for g in "ab"
              for i in range(4)], now_ms=T0,
    )
    res = await omniq.reserve_many("q", 4, now_ms=T0)
    assert [j.gid for j in res.jobs] == list("abab")
    # groups still holding capacity and work are back in line after the call
    assert raw.zrange(qk("q", "groups:ready"), 0, -1) == ["a", "b"]
    res = await omniq.reserve_many("q", 4, now_ms=T0)
    assert [j.payload["tag"] for j in res.jobs] == ["a2", "b2", "a3", "b3"]


async def test_round_robin_inside_one_batch_three_groups(omniq):
    await omniq.publish_many(
        "q", [JobSpec(payload={}, gid=g, group_limit=2) for g in "cab" for _ in range(3)],
        now_ms=T0,
    )
    res = await omniq.reserve_many("q", 9, now_ms=T0 + 1)
    assert [j.gid for j in res.jobs] == list("abcabc")  # limit 2: the third jobs wait
