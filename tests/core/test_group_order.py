"""Strict order within a group across retries (group_order="strict", docs/control.md):
a failed attempt keeps the head of its group through its backoff; terminal failure
releases the group, or holds it (on_failure="block") until retry_failed or remove."""

from __future__ import annotations

from core_util import T0, gk, jk, qk

STRICT = {"gid": "g", "group_order": "strict", "max_attempts": 3, "backoff_ms": 1000}


async def _publish_ab(omniq, **opts) -> tuple[str, str]:
    a = await omniq.publish("q", {"tag": "A"}, job_id="A", now_ms=T0, **opts)
    b = await omniq.publish("q", {"tag": "B"}, job_id="B", now_ms=T0 + 1, **opts)
    return a, b


async def _lease(omniq, t: int, want: str | None):
    job = await omniq.reserve("q", now_ms=t)
    if want is None:
        assert job is None, job
        return None
    assert job is not None, job
    assert job.job_id == want, job
    return job


async def test_strict_retry_keeps_the_head(omniq, raw):
    await _publish_ab(omniq, **STRICT)
    a = await _lease(omniq, T0 + 10, "A")
    out = await omniq.ack_fail("q", "A", a.lease_token, "boom", now_ms=T0 + 20)
    assert out == ("RETRY", T0 + 1020)
    assert raw.get(gk("q", "g", "held")) == "A"
    assert raw.zscore(qk("q", "groups:ready"), "g") is None
    # during A's backoff B does not run, however often reserve asks
    await _lease(omniq, T0 + 30, None)
    await _lease(omniq, T0 + 1019, None)
    assert (await omniq.group_states("q", ["g"]))[0].held_by == "A"
    assert await omniq.promote_delayed("q", now_ms=T0 + 1020) == 1
    assert raw.get(gk("q", "g", "held")) is None
    assert raw.lrange(gk("q", "g", "wait"), 0, -1) == ["A", "B"]
    a = await _lease(omniq, T0 + 1030, "A")
    assert a.attempt == 2
    await _lease(omniq, T0 + 1031, None)  # group_limit 1: B waits for A's ack
    await omniq.ack_success("q", "A", a.lease_token, now_ms=T0 + 1040)
    await _lease(omniq, T0 + 1050, "B")


async def test_fifo_default_reenters_at_the_tail(omniq, raw):
    await _publish_ab(omniq, gid="g", max_attempts=3, backoff_ms=1000)
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    assert raw.exists(gk("q", "g", "held")) == 0
    b = await _lease(omniq, T0 + 30, "B")  # v1: B runs during A's backoff
    await omniq.promote_delayed("q", now_ms=T0 + 1020)
    await omniq.ack_success("q", "B", b.lease_token, now_ms=T0 + 1030)
    assert raw.lrange(gk("q", "g", "wait"), 0, -1) == ["A"]


async def test_fifo_retry_goes_behind_later_jobs(omniq, raw):
    await _publish_ab(omniq, gid="g", max_attempts=3, backoff_ms=0, group_limit=2)
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.publish("q", {}, job_id="C", gid="g", now_ms=T0 + 11)
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    await omniq.promote_delayed("q", now_ms=T0 + 20)
    assert raw.lrange(gk("q", "g", "wait"), 0, -1) == ["B", "C", "A"]


async def test_strict_reap_holds_the_group(omniq, raw):
    await _publish_ab(omniq, **STRICT, timeout_ms=100)
    await _lease(omniq, T0 + 10, "A")
    assert await omniq.reap_expired("q", now_ms=T0 + 110) == 1
    assert raw.get(gk("q", "g", "held")) == "A"
    assert raw.get(gk("q", "g", "inflight")) is None
    await _lease(omniq, T0 + 120, None)
    await omniq.promote_delayed("q", now_ms=T0 + 1110)
    a = await _lease(omniq, T0 + 1120, "A")
    assert a.attempt == 2


async def test_terminal_failure_releases_by_default(omniq, raw):
    await _publish_ab(omniq, **{**STRICT, "max_attempts": 1})
    a = await _lease(omniq, T0 + 10, "A")
    assert await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20) == ("FAILED", None)
    assert raw.exists(gk("q", "g", "held"), gk("q", "g", "blocked")) == 0
    await _lease(omniq, T0 + 30, "B")


async def _blocked(omniq, raw) -> None:
    await _publish_ab(omniq, **{**STRICT, "max_attempts": 2, "on_failure": "block"})
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    await omniq.promote_delayed("q", now_ms=T0 + 1020)
    a = await _lease(omniq, T0 + 1030, "A")
    assert await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 1040) == (
        "FAILED", None)
    assert raw.get(gk("q", "g", "blocked")) == "A"
    await _lease(omniq, T0 + 1050, None)
    await omniq.publish("q", {}, job_id="C", gid="g", now_ms=T0 + 1060)  # re-readies g
    await _lease(omniq, T0 + 1070, None)
    state = (await omniq.group_states("q", ["g"]))[0]
    assert state.blocked_by == "A"
    assert state.waiting == 2
    assert not state.ready


async def test_block_released_by_retry_failed(omniq, raw):
    await _blocked(omniq, raw)
    await omniq.retry_failed("q", "A", now_ms=T0 + 2000)
    assert raw.exists(gk("q", "g", "blocked")) == 0
    assert raw.lrange(gk("q", "g", "wait"), 0, -1) == ["A", "B", "C"]
    a = await _lease(omniq, T0 + 2010, "A")
    assert a.attempt == 1
    await omniq.ack_success("q", "A", a.lease_token, now_ms=T0 + 2020)
    await _lease(omniq, T0 + 2030, "B")


async def test_block_released_by_retry_failed_batch(omniq, raw):
    await _blocked(omniq, raw)
    res = await omniq.retry_failed_batch("q", ["A", "nope"], now_ms=T0 + 2000)
    assert [r.status for r in res] == ["OK", "ERR"]
    await _lease(omniq, T0 + 2010, "A")


async def test_block_released_by_remove(omniq, raw):
    await _blocked(omniq, raw)
    await omniq.remove_job("q", "A", "failed", now_ms=T0 + 2000)
    assert raw.exists(gk("q", "g", "blocked")) == 0
    await _lease(omniq, T0 + 2010, "B")


async def test_block_released_when_retention_deletes_the_job(omniq, raw):
    await _publish_ab(omniq, **{**STRICT, "max_attempts": 1, "on_failure": "block",
                                "keep_failed_ms": 500})
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    await _lease(omniq, T0 + 30, None)
    await omniq.promote_delayed("q", now_ms=T0 + 520)  # deletes A: its keep time is over
    assert raw.exists(jk("q", "A"), gk("q", "g", "blocked")) == 0
    await _lease(omniq, T0 + 530, "B")


async def test_remove_of_delayed_strict_job_frees_the_group(omniq, raw):
    await _publish_ab(omniq, **STRICT)
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    await omniq.remove_job("q", "A", "delayed", now_ms=T0 + 30)
    assert raw.exists(gk("q", "g", "held")) == 0
    assert raw.zscore(qk("q", "groups:ready"), "g") == T0 + 30
    await _lease(omniq, T0 + 40, "B")


async def test_remove_batch_of_delayed_strict_job(omniq, raw):
    await _publish_ab(omniq, **STRICT)
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    res = await omniq.remove_jobs_batch("q", "delayed", ["A"], now_ms=T0 + 30)
    assert [r.status for r in res] == ["OK"]
    await _lease(omniq, T0 + 40, "B")


async def test_stale_hold_is_dropped(omniq, raw):
    """A hold whose job was moved on by another client (here: its hash deleted by hand)
    does not starve the group: the first reserve that meets it drops it."""
    await _publish_ab(omniq, **STRICT)
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    raw.delete(jk("q", "A"))
    await omniq.publish("q", {}, job_id="C", gid="g", now_ms=T0 + 30)
    await _lease(omniq, T0 + 40, "B")
    assert raw.exists(gk("q", "g", "held")) == 0


async def test_other_groups_run_while_one_is_held(omniq):
    await _publish_ab(omniq, **STRICT)
    await omniq.publish("q", {}, job_id="X", gid="h", now_ms=T0 + 2)
    await omniq.publish("q", {}, job_id="U", now_ms=T0 + 3)
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    got = {(await _lease_any(omniq, T0 + 30 + i)) for i in range(2)}
    assert got == {"X", "U"}
    await _lease(omniq, T0 + 40, None)


async def _lease_any(omniq, t: int) -> str:
    job = await omniq.reserve("q", now_ms=t)
    assert job is not None
    return job.job_id


async def test_group_limit_two_held_head_blocks_new_starts(omniq, raw):
    """With group_limit 2 the held group starts nothing new; the running job goes on."""
    opts = {**STRICT, "group_limit": 2}
    await _publish_ab(omniq, **opts)
    await omniq.publish("q", {}, job_id="C", now_ms=T0 + 2, **opts)
    a = await _lease(omniq, T0 + 10, "A")
    b = await _lease(omniq, T0 + 11, "B")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    await _lease(omniq, T0 + 30, None)  # a slot is free, but A holds the head
    await omniq.ack_success("q", "B", b.lease_token, now_ms=T0 + 40)
    await _lease(omniq, T0 + 50, None)
    await omniq.promote_delayed("q", now_ms=T0 + 1020)
    await _lease(omniq, T0 + 1030, "A")
    await _lease(omniq, T0 + 1031, "C")


async def test_strict_delayed_publish_goes_to_the_tail(omniq, raw):
    """Only a retry takes the head: a strict job published for later queues normally."""
    await omniq.publish("q", {}, job_id="B", gid="g", group_order="strict", now_ms=T0)
    await omniq.publish("q", {}, job_id="A", gid="g", group_order="strict", delay_ms=100,
                        now_ms=T0)
    await omniq.promote_delayed("q", now_ms=T0 + 100)
    assert raw.lrange(gk("q", "g", "wait"), 0, -1) == ["B", "A"]


async def test_strict_job_info(omniq):
    await _publish_ab(omniq, **{**STRICT, "on_failure": "block"})
    info = await omniq.get_job("q", "A")
    assert info is not None
    assert info.group_order == "strict"
    assert info.on_failure == "block"


async def test_strict_on_a_partitioned_queue(omniq):
    await omniq.partition_queue("pq", 4)
    await omniq.publish("pq", {}, job_id="A", now_ms=T0, **STRICT)
    await omniq.publish("pq", {}, job_id="B", now_ms=T0 + 1, **STRICT)
    a = await omniq.reserve("pq", now_ms=T0 + 10)
    assert a is not None
    assert a.job_id == "A"
    await omniq.ack_fail(a.queue, "A", a.lease_token, now_ms=T0 + 20)
    assert await omniq.reserve("pq", now_ms=T0 + 30) is None
    state = (await omniq.group_states("pq", ["g"]))[0]
    assert state.held_by == "A"
    await omniq.promote_delayed("pq", now_ms=T0 + 1020)
    a = await omniq.reserve("pq", now_ms=T0 + 1030)
    assert a is not None
    assert a.job_id == "A"


async def test_cancel_of_delayed_strict_job_frees_the_group(omniq, raw):
    await _publish_ab(omniq, **STRICT)
    a = await _lease(omniq, T0 + 10, "A")
    await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 20)
    assert raw.get(gk("q", "g", "held")) == "A"
    assert await omniq.cancel("q", "A", now_ms=T0 + 30) == "cancelled"
    assert raw.exists(gk("q", "g", "held")) == 0
    await _lease(omniq, T0 + 40, "B")


async def test_cancelled_block_job_does_not_block_its_group(omniq, raw):
    await _publish_ab(omniq, **{**STRICT, "on_failure": "block"})
    a = await _lease(omniq, T0 + 10, "A")
    assert await omniq.cancel("q", "A", now_ms=T0 + 20) == "cancelling"
    assert await omniq.ack_fail("q", "A", a.lease_token, now_ms=T0 + 30) == (
        "FAILED", None)
    assert raw.hget(jk("q", "A"), "last_error") == "cancelled"
    assert raw.exists(gk("q", "g", "blocked")) == 0
    await _lease(omniq, T0 + 40, "B")
