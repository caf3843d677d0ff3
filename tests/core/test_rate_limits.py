"""Rate limits: the sliding window of the reserve scripts, queue-wide and per group.

Every reservation gives an explicit clock (``now_ms`` from ``T0``), so the window math is
exact. Windows are long (10 s) because the window logs also expire on the server's clock.
"""

from __future__ import annotations

import pytest
from core_util import T0, gk, qk, run_script

from omniq import InvalidArgument, JobSpec, RateLimit
from omniq.types import ReserveResult

PER = 10_000


async def _ids(omniq, queue: str, count: int, now: int) -> list[str]:
    res = await omniq.reserve_many(queue, count, now_ms=now)
    assert res.status in ("JOB", "EMPTY", "LIMITED"), res
    return [j.job_id for j in res.jobs]


async def test_queue_limit_window_math_and_sliding(omniq, raw):
    ids = await omniq.publish_many("q", [{"i": i} for i in range(10)], now_ms=T0)
    await omniq.set_rate_limit("q", 3, PER)
    # two now, one a second later: the window holds three
    assert await _ids(omniq, "q", 2, T0 + 1000) == ids[:2]
    assert await _ids(omniq, "q", 5, T0 + 2000) == ids[2:3]  # only one fits
    res = await omniq.reserve_many("q", 5, now_ms=T0 + 3000)
    # full until the first two leave the window at T0 + 1000 + PER
    assert res == ReserveResult("LIMITED", [], T0 + 1000 + PER - (T0 + 3000), "queue")
    assert await omniq.reserve("q", now_ms=T0 + 1000 + PER - 1) is None
    # at T0 + 1000 + PER the first two have left: two more fit, not three
    assert await _ids(omniq, "q", 5, T0 + 1000 + PER) == ids[3:5]
    res = await omniq.reserve_many("q", 1, now_ms=T0 + 1500 + PER)
    assert (res.status, res.retry_after_ms) == ("LIMITED", 500)  # the third (T0 + 2000)
    assert await _ids(omniq, "q", 5, T0 + 2000 + PER) == ids[5:6]
    assert raw.zcard(qk("q", "rate_log")) == 3
    limit = await omniq.get_rate_limit("q", now_ms=T0 + 2000 + PER)
    assert limit == RateLimit(max_jobs=3, per_ms=PER, in_window=3)


async def test_limited_only_when_full_empty_otherwise(omniq):
    await omniq.set_rate_limit("q", 2, PER)
    assert (await omniq.reserve_many("q", 3, now_ms=T0)).status == "EMPTY"
    await omniq.publish_many("q", [{}, {}, {}], now_ms=T0)
    assert len(await _ids(omniq, "q", 3, T0 + 1)) == 2
    res = await omniq.reserve_many("q", 1, now_ms=T0 + 2)
    assert res.status == "LIMITED"
    assert res.retry_after_ms == PER - 1


async def test_clear_lifts_the_limit_and_drops_the_log(omniq, raw):
    await omniq.publish_many("q", [{}, {}, {}], now_ms=T0)
    await omniq.set_rate_limit("q", 1, PER)
    assert len(await _ids(omniq, "q", 3, T0 + 1)) == 1
    assert (await omniq.reserve_many("q", 3, now_ms=T0 + 2)).status == "LIMITED"
    assert await omniq.clear_rate_limit("q") is True
    assert await omniq.clear_rate_limit("q") is False
    assert not raw.exists(qk("q", "rate_log"))
    assert not raw.exists(qk("q", "rate_limits"))
    assert await omniq.get_rate_limit("q") is None
    assert len(await _ids(omniq, "q", 3, T0 + 3)) == 2


async def test_lower_limit_holds_at_once(omniq):
    await omniq.publish_many("q", [{} for _ in range(6)], now_ms=T0)
    await omniq.set_rate_limit("q", 5, PER)
    assert len(await _ids(omniq, "q", 4, T0 + 1)) == 4
    await omniq.set_rate_limit("q", 2, PER)  # four in the window already
    res = await omniq.reserve_many("q", 1, now_ms=T0 + 2)
    assert (res.status, res.retry_after_ms) == ("LIMITED", PER - 1)
    assert (await omniq.get_rate_limit("q", now_ms=T0 + 2)) == RateLimit(
        max_jobs=2, per_ms=PER, in_window=4)


async def test_group_limit_parks_the_group_and_serves_the_others(omniq, raw):
    jobs = [JobSpec(payload={"g": g, "i": i}, gid=g, group_limit=10)
            for i in range(4) for g in ("A", "B")]
    await omniq.publish_many("q", jobs, now_ms=T0)
    await omniq.set_rate_limit("q", 1, PER, gid="A")
    res = await omniq.reserve_many("q", 8, now_ms=T0 + 1)
    # A gives one job and is parked; B (no rate limit, group_limit 10) gives all four
    assert sorted(j.gid for j in res.jobs) == ["A", "B", "B", "B", "B"]
    assert raw.zscore(qk("q", "groups:limited"), "A") == T0 + 1 + PER
    assert raw.zscore(qk("q", "groups:ready"), "A") is None
    # nothing else to lease: LIMITED by the parked group, due when A's window allows
    res = await omniq.reserve_many("q", 8, now_ms=T0 + 100)
    assert res == ReserveResult("LIMITED", [], PER - 99, "group")
    # ungrouped work is not blocked by the parked group
    await omniq.publish("q", {"u": 1}, now_ms=T0 + 200)
    got = await omniq.reserve_many("q", 8, now_ms=T0 + 300)
    assert [j.gid for j in got.jobs] == [""]
    # when due, the reservation itself moves A back in line
    res = await omniq.reserve_many("q", 8, now_ms=T0 + 1 + PER)
    assert [j.gid for j in res.jobs] == ["A"]
    assert raw.zscore(qk("q", "groups:limited"), "A") == T0 + 1 + 2 * PER
    assert raw.zcard(gk("q", "A", "rate_log")) == 1


async def test_group_limit_counts_each_job_of_a_batch(omniq):
    await omniq.publish_many("q", [{"i": i} for i in range(6)], gid="A", group_limit=6,
                             now_ms=T0)
    await omniq.set_rate_limit("q", 4, PER, gid="A")
    assert len(await _ids(omniq, "q", 6, T0 + 1)) == 4
    assert len(await _ids(omniq, "q", 6, T0 + PER)) == 0
    assert len(await _ids(omniq, "q", 6, T0 + PER + 1)) == 2


async def test_group_and_queue_limits_together(omniq):
    jobs = [JobSpec(payload={}, gid=g, group_limit=10) for g in ("A", "B") for _ in range(5)]
    await omniq.publish_many("q", jobs, now_ms=T0)
    await omniq.set_rate_limit("q", 4, PER)
    await omniq.set_rate_limit("q", 1, PER, gid="A")
    res = await omniq.reserve_many("q", 10, now_ms=T0 + 1)
    assert sorted(j.gid for j in res.jobs) == ["A", "B", "B", "B"]
    res = await omniq.reserve_many("q", 10, now_ms=T0 + 2)
    assert (res.status, res.limited_by) == ("LIMITED", "queue")


async def test_clearing_a_group_limit_unparks_the_group(omniq, raw):
    await omniq.publish_many("q", [{}, {}, {}], gid="A", group_limit=3, now_ms=T0)
    await omniq.set_rate_limit("q", 1, PER, gid="A")
    assert len(await _ids(omniq, "q", 3, T0 + 1)) == 1
    assert raw.zscore(qk("q", "groups:limited"), "A") is not None
    assert await omniq.clear_rate_limit("q", gid="A") is True
    assert raw.zscore(qk("q", "groups:limited"), "A") is None
    assert raw.zscore(qk("q", "groups:ready"), "A") is not None
    assert not raw.exists(qk("q", "rate_limits"))  # the group count went with the last one
    assert len(await _ids(omniq, "q", 3, T0 + 2)) == 2


async def test_raising_a_group_limit_unparks_it(omniq, raw):
    await omniq.publish_many("q", [{}, {}, {}], gid="A", group_limit=3, now_ms=T0)
    await omniq.set_rate_limit("q", 1, PER, gid="A")
    assert len(await _ids(omniq, "q", 3, T0 + 1)) == 1
    await omniq.set_rate_limit("q", 3, PER, gid="A")
    assert raw.zscore(qk("q", "groups:limited"), "A") is None
    assert len(await _ids(omniq, "q", 3, T0 + 2)) == 2
    assert (await omniq.get_rate_limit("q", gid="A", now_ms=T0 + 2)) == RateLimit(
        max_jobs=3, per_ms=PER, gid="A", in_window=3)


async def test_acked_job_re_readies_a_parked_group_which_parks_again(omniq, raw):
    # an ack frees a slot and puts the group in groups:ready again; the next reservation
    # sees its window still full and parks it again, without leasing
    await omniq.publish_many("q", [{}, {}, {}], gid="A", now_ms=T0)  # group_limit 1
    await omniq.set_rate_limit("q", 1, PER, gid="A")
    first = await omniq.reserve("q", now_ms=T0 + 1)
    assert first is not None
    await omniq.ack_success("q", first.job_id, first.lease_token, now_ms=T0 + 2)
    assert raw.zscore(qk("q", "groups:ready"), "A") == T0 + 2
    res = await omniq.reserve_many("q", 2, now_ms=T0 + 3)
    assert res == ReserveResult("LIMITED", [], PER - 2, "group")
    assert raw.zscore(qk("q", "groups:ready"), "A") is None
    assert raw.zscore(qk("q", "groups:limited"), "A") == T0 + 1 + PER


async def test_ack_reserve_reply_carries_limited(omniq):
    await omniq.publish_many("q", [{}, {}], now_ms=T0)
    await omniq.set_rate_limit("q", 1, PER)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    from omniq.types import Ack

    outcomes, res = await omniq.ack_reserve(
        "q", [Ack(job.job_id, job.lease_token, True, b"")], 1, now_ms=T0 + 2)
    assert outcomes == [None]
    assert res == ReserveResult("LIMITED", [], PER - 1, "queue")


async def test_list_every_limit(omniq):
    await omniq.set_rate_limit("q", 10, 1000, gid="b")
    await omniq.set_rate_limit("q", 5, 2000)
    await omniq.set_rate_limit("q", 7, 3000, gid="a")
    assert await omniq.rate_limits("q") == [
        RateLimit(max_jobs=5, per_ms=2000),
        RateLimit(max_jobs=7, per_ms=3000, gid="a"),
        RateLimit(max_jobs=10, per_ms=1000, gid="b"),
    ]
    assert await omniq.get_rate_limit("q", gid="zz") is None


async def test_no_limit_means_no_rate_keys(omniq, raw):
    await omniq.publish_many("q", [JobSpec(payload={}, gid="A"), JobSpec(payload={})],
                             now_ms=T0)
    assert len(await _ids(omniq, "q", 2, T0 + 1)) == 2
    assert [k for k in raw.keys("*") if "rate" in k or "limited" in k] == []


async def test_partitioned_queue_shares_the_queue_limit(omniq):
    await omniq.partition_queue("pq", 3)
    await omniq.set_rate_limit("pq", 7, PER)
    parts = await omniq.queue_partitions("pq")
    shares = [(await omniq.get_rate_limit(p)) for p in parts]
    assert [s.max_jobs if s else 0 for s in shares] == [3, 2, 2]
    assert await omniq.get_rate_limit("pq") == RateLimit(max_jobs=7, per_ms=PER)
    with pytest.raises(InvalidArgument, match="at least 3"):
        await omniq.set_rate_limit("pq", 2, PER)
    await omniq.publish_many("pq", [{"i": i} for i in range(30)], now_ms=T0)
    got = 0
    for k in range(10):
        got += len((await omniq.reserve_many("pq", 5, now_ms=T0 + 1 + k)).jobs)
    assert got == 7
    res = await omniq.reserve_many("pq", 5, now_ms=T0 + 20)
    assert (res.status, res.limited_by) == ("LIMITED", "queue")
    assert await omniq.clear_rate_limit("pq") is True
    assert await omniq.get_rate_limit("pq") is None


async def test_partitioned_queue_group_limit_on_its_partition(omniq):
    await omniq.partition_queue("pq", 4)
    await omniq.publish_many("pq", [{} for _ in range(3)], gid="G", group_limit=3, now_ms=T0)
    await omniq.set_rate_limit("pq", 1, PER, gid="G")
    assert await omniq.get_rate_limit("pq", gid="G") == RateLimit(max_jobs=1, per_ms=PER,
                                                                  gid="G")
    assert len((await omniq.reserve_many("pq", 3, now_ms=T0 + 1)).jobs) == 1
    res = await omniq.reserve_many("pq", 3, now_ms=T0 + 2)
    assert (res.status, res.limited_by) == ("LIMITED", "group")
    assert res.retry_after_ms == PER - 1


# -- the scripts, called directly --------------------------------------------------------


def test_set_script_replies(raw):
    assert run_script(raw, "set_rate_limit", "{q}:meta", T0, "", "5", "100") == ["OK", "1"]
    assert run_script(raw, "set_rate_limit", "{q}:meta", T0, "", "6", "100") == ["OK", "0"]
    assert run_script(raw, "set_rate_limit", "{q}:meta", T0, "g", "1", "100") == ["OK", "1"]
    assert raw.hgetall(qk("q", "rate_limits")) == {"queue": "6 100", "g:g": "1 100",
                                                   "groups": "1"}
    assert run_script(raw, "get_rate_limit", "{q}:meta", str(T0), "all", "") == [
        "OK", "2", "", "6", "100", "0", "g", "1", "100", "0"]
    assert run_script(raw, "clear_rate_limit", "{q}:meta", T0, "g") == ["OK", "1"]
    assert run_script(raw, "clear_rate_limit", "{q}:meta", T0, "g") == ["OK", "0"]
    assert raw.hgetall(qk("q", "rate_limits")) == {"queue": "6 100"}
