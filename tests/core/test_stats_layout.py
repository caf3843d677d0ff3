"""Raw key layout, job hash fields and the stats hash (PROTOCOL.md §1-§3)."""

from __future__ import annotations

import re

from core_util import T0, gk, jk, qk, real_stats, stored_stats

TOKEN_RE = re.compile(r"[0-9a-f]{40}")

JOB_FIELDS = {
    "id", "payload", "state", "attempt", "max_attempts", "timeout_ms", "backoff_ms",
    "created_ms", "updated_ms", "queued_ms", "first_started_ms", "last_started_ms",
    "completed_ms", "failed_ms",
}
STATS_COUNTERS = {
    "waiting", "group_waiting", "waiting_total", "active", "delayed", "failed",
    "completed_kept", "groups_ready",
}


def _keys(raw) -> dict[str, str]:
    return {k: raw.type(k) for k in raw.scan_iter()}


async def test_layout_after_ungrouped_publish(omniq, raw):
    jid = await omniq.publish("q", {"a": 1}, now_ms=T0)
    assert _keys(raw) == {
        jk("q", jid): "hash",
        qk("q", "wait"): "list",
        qk("q", "idx:wait"): "zset",
        qk("q", "stats"): "hash",
        qk("q", "events"): "stream",
    }
    h = raw.hgetall(jk("q", jid))
    assert set(h) == JOB_FIELDS  # no gid, no due_ms, no lease fields yet
    assert h["first_started_ms"] == h["last_started_ms"] == ""
    assert h["completed_ms"] == h["failed_ms"] == ""
    assert raw.zscore(qk("q", "idx:wait"), jid) == T0
    stats = raw.hgetall(qk("q", "stats"))
    assert set(stats) >= STATS_COUNTERS
    assert stats["waiting"] == stats["waiting_total"] == "1"
    assert stats["group_waiting"] == "0"
    assert stats["last_enqueue_ms"] == stats["last_activity_ms"] == str(T0)
    assert raw.exists(qk("q", "meta")) == 0  # the anchor is never written


async def test_layout_after_grouped_publish(omniq, raw):
    jid = await omniq.publish("q", {}, gid="g1", group_limit=3, now_ms=T0)
    assert _keys(raw) == {
        jk("q", jid): "hash",
        gk("q", "g1", "wait"): "list",
        gk("q", "g1", "limit"): "string",
        qk("q", "groups:ready"): "zset",
        qk("q", "has_groups"): "string",
        qk("q", "idx:wait"): "zset",
        qk("q", "stats"): "hash",
        qk("q", "events"): "stream",
    }
    assert raw.hget(jk("q", jid), "gid") == "g1"
    assert raw.get(qk("q", "has_groups")) == "1"
    assert raw.zrange(qk("q", "groups:ready"), 0, -1, withscores=True) == [("g1", float(T0))]
    stats = raw.hgetall(qk("q", "stats"))
    assert (stats["waiting"], stats["group_waiting"], stats["waiting_total"]) == ("0", "1", "1")
    assert stats["groups_ready"] == "1"


async def test_layout_after_delayed_publish(omniq, raw):
    jid = await omniq.publish("q", {}, due_ms=T0 + 500, now_ms=T0)
    assert _keys(raw) == {
        jk("q", jid): "hash",
        qk("q", "delayed"): "zset",
        qk("q", "idx:delayed"): "zset",
        qk("q", "stats"): "hash",
        qk("q", "events"): "stream",
    }
    h = raw.hgetall(jk("q", jid))
    assert h["state"] == "delayed"
    assert h["due_ms"] == str(T0 + 500)
    assert raw.hget(qk("q", "stats"), "delayed") == "1"


async def test_layout_after_reserve(omniq, raw):
    jid = await omniq.publish("q", {}, gid="g", timeout_ms=700, now_ms=T0)
    await omniq.reserve("q", now_ms=T0 + 5)
    keys = _keys(raw)
    assert keys[qk("q", "active")] == "zset"
    assert keys[qk("q", "idx:active")] == "zset"
    assert keys[qk("q", "lease:seq")] == "string"
    assert keys[qk("q", "lane:rr")] == "string"
    assert keys[gk("q", "g", "inflight")] == "string"
    assert gk("q", "g", "wait") not in keys  # empty lists vanish
    assert qk("q", "groups:ready") not in keys
    assert qk("q", "idx:wait") not in keys
    assert raw.zscore(qk("q", "active"), jid) == T0 + 705  # score = lock_until_ms
    assert raw.zscore(qk("q", "idx:active"), jid) == T0 + 5  # score = reserve time
    assert raw.get(gk("q", "g", "inflight")) == "1"
    assert raw.get(qk("q", "lane:rr")) == "1"
    h = raw.hgetall(jk("q", jid))
    assert h["state"] == "active"
    assert h["attempt"] == "1"
    assert TOKEN_RE.fullmatch(h["lease_token"])
    assert h["lock_until_ms"] == str(T0 + 705)
    assert h["first_started_ms"] == h["last_started_ms"] == h["updated_ms"] == str(T0 + 5)
    stats = raw.hgetall(qk("q", "stats"))
    assert stats["active"] == "1"
    assert stats["group_waiting"] == "0"
    assert stats["last_reserve_ms"] == str(T0 + 5)


async def test_lease_token_is_sha1_of_id_now_seq(omniq, raw):
    import hashlib

    jid = await omniq.publish("q", {}, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 5)
    seq = raw.get(qk("q", "lease:seq"))
    assert job.lease_token == hashlib.sha1(f"{jid}:{T0 + 5}:{seq}".encode()).hexdigest()


async def test_layout_after_ack_success(omniq, raw):
    jid = await omniq.publish("q", {}, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 5)
    await omniq.ack_success("q", jid, job.lease_token, now_ms=T0 + 9)
    keys = _keys(raw)
    assert qk("q", "active") not in keys
    assert qk("q", "idx:active") not in keys
    assert raw.lrange(qk("q", "completed"), 0, -1) == [jid]
    assert raw.zscore(qk("q", "idx:completed"), jid) == T0 + 9
    stats = raw.hgetall(qk("q", "stats"))
    assert stats["completed_kept"] == "1"
    assert stats["active"] == "0"
    assert stats["last_finish_ms"] == str(T0 + 9)


async def test_layout_after_fail(omniq, raw):
    jid = await omniq.publish("q", {}, max_attempts=1, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 5)
    await omniq.ack_fail("q", jid, job.lease_token, "oops", now_ms=T0 + 9)
    assert raw.lrange(qk("q", "failed"), 0, -1) == [jid]
    assert raw.zscore(qk("q", "idx:failed"), jid) == T0 + 9
    h = raw.hgetall(jk("q", jid))
    assert (h["state"], h["failed_ms"], h["last_error"], h["last_error_ms"]) == (
        "failed", str(T0 + 9), "oops", str(T0 + 9)
    )
    assert raw.hget(qk("q", "stats"), "failed") == "1"


async def test_stats_match_real_containers_through_lifecycle(omniq, raw):
    t = T0

    def check():
        assert stored_stats(raw, "q") == real_stats(raw, "q")

    await omniq.publish_many("q", [{}] * 4, now_ms=t)
    check()
    await omniq.publish_many("q", [{}] * 3, gid="a", now_ms=t)
    await omniq.publish_many("q", [{}] * 2, gid="b", group_limit=2, now_ms=t)
    await omniq.publish("q", {}, delay_ms=50, now_ms=t)
    check()
    jobs = (await omniq.reserve_many("q", 5, now_ms=t + 1)).jobs
    check()
    await omniq.ack_success("q", jobs[0].job_id, jobs[0].lease_token, now_ms=t + 2)
    check()
    await omniq.ack_fail("q", jobs[1].job_id, jobs[1].lease_token, "x", now_ms=t + 3)
    check()
    await omniq.promote_delayed("q", now_ms=t + 100_000)
    check()
    await omniq.reap_expired("q", now_ms=t + 100_000)
    check()
    assert raw.hget(qk("q", "stats"), "last_activity_ms") == str(t + 100_000)
