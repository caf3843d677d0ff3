"""Backoff strategies computed by the scripts (docs/control.md "Backoff strategies"):
fixed, exponential with a cap, and deterministic "equal" jitter."""

from __future__ import annotations

import hashlib

from core_util import T0, jk

MAX_INT = 2**53 - 1


async def _fail_sequence(omniq, queue: str, n: int, **opts) -> list[int]:
    """Publish one job, then n times: lease it, fail it, promote it at its due time.
    Returns the delay of each retry (due - time of the failure)."""
    await omniq.publish(queue, {}, max_attempts=n + 1, now_ms=T0, **opts)
    t = T0
    delays = []
    for _ in range(n):
        t += 10
        job = await omniq.reserve(queue, now_ms=t)
        assert job is not None
        out = await omniq.ack_fail(queue, job.job_id, job.lease_token, "boom", now_ms=t)
        assert out.status == "RETRY"
        assert out.due_ms is not None
        delays.append(out.due_ms - t)
        t = out.due_ms
        assert await omniq.promote_delayed(queue, now_ms=t) == 1
    return delays


def _equal_jitter(job_id: str, attempt: int, now: int, d: int) -> int:
    """The script's jitter, recomputed: d - floor(d/2) + floor(r * (floor(d/2) + 1))."""
    r = int(hashlib.sha1(f"{job_id}:{attempt}:{now}".encode()).hexdigest()[:13], 16) / 2**52
    half = d // 2
    return d - half + min(int(r * (half + 1)), half)


async def test_fixed_is_the_default(omniq):
    assert await _fail_sequence(omniq, "q", 3, backoff_ms=250) == [250, 250, 250]


async def test_exp_doubles_per_attempt(omniq):
    assert await _fail_sequence(omniq, "q", 5, backoff_ms=100, backoff="exp") == [
        100, 200, 400, 800, 1600]


async def test_exp_capped_by_backoff_max_ms(omniq):
    got = await _fail_sequence(omniq, "q", 5, backoff_ms=100, backoff="exp",
                               backoff_max_ms=300)
    assert got == [100, 200, 300, 300, 300]


async def test_cap_applies_to_fixed_too(omniq):
    assert await _fail_sequence(omniq, "q", 2, backoff_ms=1000, backoff_max_ms=300) == [
        300, 300]


async def test_jitter_is_equal_jitter_and_deterministic(omniq, raw):
    jid = await omniq.publish("q", {}, job_id="j1", max_attempts=9, backoff_ms=1000,
                              backoff="exp", backoff_jitter=True, now_ms=T0)
    t = T0
    seen = []
    for attempt in range(1, 7):
        t += 7
        job = await omniq.reserve("q", now_ms=t)
        assert job is not None
        assert job.attempt == attempt
        out = await omniq.ack_fail("q", jid, job.lease_token, now_ms=t)
        assert out.due_ms is not None
        d = 1000 * 2 ** (attempt - 1)
        delay = out.due_ms - t
        assert d - d // 2 <= delay <= d
        assert delay == _equal_jitter(jid, attempt, t, d)
        seen.append(delay)
        t = out.due_ms
        await omniq.promote_delayed("q", now_ms=t)
    assert len(set(seen)) == len(seen)  # really drawn, not a constant fraction
    # the same job, attempt and time in another queue: the same delay (replays agree)
    await omniq.publish("q2", {}, job_id="j1", max_attempts=2, backoff_ms=1000,
                        backoff_jitter=True, now_ms=T0)
    job = await omniq.reserve("q2", now_ms=T0 + 7)
    assert job is not None
    out = await omniq.ack_fail("q2", "j1", job.lease_token, now_ms=T0 + 7)
    assert out.due_ms == T0 + 7 + _equal_jitter("j1", 1, T0 + 7, 1000)


async def test_jitter_with_cap_stays_within_cap(omniq):
    got = await _fail_sequence(omniq, "q", 6, backoff_ms=100, backoff="exp",
                               backoff_max_ms=500, backoff_jitter=True)
    caps = [100, 200, 400, 500, 500, 500]
    assert all(c - c // 2 <= d <= c for d, c in zip(got, caps, strict=True)), got


async def test_huge_attempt_does_not_overflow(omniq, raw):
    jid = await omniq.publish("q", {}, max_attempts=MAX_INT, backoff_ms=1000, backoff="exp",
                              now_ms=T0)
    raw.hset(jk("q", jid), "attempt", str(10**15))
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.attempt == 10**15 + 1
    out = await omniq.ack_fail("q", jid, job.lease_token, now_ms=T0 + 1)
    assert out == ("RETRY", MAX_INT)  # delay capped at 2^53-1, due too
    assert raw.hget(jk("q", jid), "due_ms") == str(MAX_INT)


async def test_huge_attempt_with_cap_and_jitter(omniq, raw):
    jid = await omniq.publish("q", {}, max_attempts=MAX_INT, backoff_ms=1000, backoff="exp",
                              backoff_max_ms=60_000, backoff_jitter=True, now_ms=T0)
    raw.hset(jk("q", jid), "attempt", "5000")
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    out = await omniq.ack_fail("q", jid, job.lease_token, now_ms=T0 + 1)
    assert out.due_ms is not None
    assert 30_000 <= out.due_ms - (T0 + 1) <= 60_000
    assert out.due_ms - (T0 + 1) == _equal_jitter(jid, 5001, T0 + 1, 60_000)


async def test_exp_with_zero_backoff_is_zero(omniq, raw):
    jid = await omniq.publish("q", {}, max_attempts=MAX_INT, backoff_ms=0, backoff="exp",
                              backoff_jitter=True, now_ms=T0)
    raw.hset(jk("q", jid), "attempt", "100000")  # 0 * 2^53, never NaN
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert await omniq.ack_fail("q", jid, job.lease_token, now_ms=T0 + 1) == ("RETRY", T0 + 1)


async def test_reap_uses_the_same_backoff(omniq):
    await omniq.publish("q", {}, max_attempts=3, timeout_ms=50, backoff_ms=100,
                        backoff="exp", now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0)
    assert job is not None
    assert await omniq.reap_expired("q", now_ms=T0 + 50) == 1
    info = await omniq.get_job("q", job.job_id)
    assert info is not None
    assert info.state == "delayed"
    assert info.due_ms == T0 + 150
    await omniq.promote_delayed("q", now_ms=T0 + 150)
    job = await omniq.reserve("q", now_ms=T0 + 150)
    assert job is not None
    assert job.attempt == 2
    assert await omniq.reap_expired("q", now_ms=T0 + 200) == 1
    info = await omniq.get_job("q", job.job_id)
    assert info is not None
    assert info.due_ms == T0 + 200 + 200
