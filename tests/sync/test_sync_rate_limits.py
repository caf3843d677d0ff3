"""The blocking facade's rate-limit twins."""

from __future__ import annotations

from omniq import OmniqClient, RateLimit

T0 = 1_000_000


def test_sync_rate_limit_round_trip(omniq_sync: OmniqClient) -> None:
    c = omniq_sync
    c.set_rate_limit("q", 1, 60_000, now_ms=T0)
    c.set_rate_limit("q", 2, 1000, gid="g", now_ms=T0)
    c.publish_many("q", [{}, {}], now_ms=T0)
    assert len(c.reserve_many("q", 2, now_ms=T0 + 1).jobs) == 1
    res = c.reserve_many("q", 2, now_ms=T0 + 2)
    assert (res.status, res.retry_after_ms, res.limited_by) == ("LIMITED", 59_999, "queue")
    assert c.get_rate_limit("q", now_ms=T0 + 2) == RateLimit(max_jobs=1, per_ms=60_000,
                                                             in_window=1)
    assert c.get_rate_limit("q", gid="g") == RateLimit(max_jobs=2, per_ms=1000, gid="g")
    assert [x.gid for x in c.rate_limits("q")] == [None, "g"]
    assert c.clear_rate_limit("q") is True
    assert c.clear_rate_limit("q", gid="g") is True
    assert c.rate_limits("q") == []
