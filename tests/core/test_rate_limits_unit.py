"""Pure unit tests of the rate-limit contract (omniq._protocol.rate_limits, the LIMITED
reservation reply, the partitioned LIMITED rule of Routing); no server."""

from __future__ import annotations

import pytest

from omniq._protocol import leases, rate_limits
from omniq.aio._routing import _limited
from omniq.errors import InvalidArgument, ProtocolError
from omniq.types import RateLimit, ReserveResult


def test_parse_limited_reservation():
    assert leases.parse_reserve("q", ["LIMITED", "250", "queue"]) == ReserveResult(
        "LIMITED", [], 250, "queue")
    assert leases.parse_reserve("q", ["LIMITED", "1", "group"]).limited_by == "group"
    _, res = leases.parse_ack_reserve("q", ["0", "LIMITED", "7", "queue"], [])
    assert res == ReserveResult("LIMITED", [], 7, "queue")
    with pytest.raises(ProtocolError):
        leases.parse_reserve("q", ["LIMITED", "1", "tenant"])


def test_other_reservations_carry_no_limit():
    res = leases.parse_reserve("q", ["EMPTY"])
    assert (res.retry_after_ms, res.limited_by) == (0, "")
    status, jobs, *_ = res  # the first two fields keep their place
    assert (status, jobs) == ("EMPTY", [])


def test_split_max_jobs():
    assert rate_limits.split_max_jobs(7, 3) == [3, 2, 2]
    assert rate_limits.split_max_jobs(6, 3) == [2, 2, 2]
    assert rate_limits.split_max_jobs(4, 4) == [1, 1, 1, 1]
    assert sum(rate_limits.split_max_jobs(100_000, 1024)) == 100_000
    with pytest.raises(InvalidArgument, match="at least 4"):
        rate_limits.split_max_jobs(3, 4)


def test_args_and_checks():
    assert rate_limits.set_args(5, "", 10, 1000) == (5, "", 10, 1000)
    assert rate_limits.check_gid(None) == ""
    assert rate_limits.check_gid(" acme ") == "acme"
    for bad in ("", "  ", 7, "a\nb"):
        with pytest.raises(InvalidArgument):
            rate_limits.check_gid(bad)
    for max_jobs, per_ms in ((0, 1), (100_001, 1), (1, 0), (1, 2**53), (True, 1), (1.0, 1)):
        with pytest.raises(InvalidArgument):
            rate_limits.set_args(0, "", max_jobs, per_ms)
    assert rate_limits.get_args(9, None) == (9, "all", "")
    assert rate_limits.get_args(9, "") == (9, "queue", "")
    assert rate_limits.get_args(9, "g") == (9, "group", "g")
    assert rate_limits.clear_args(9, "g") == (9, "g")


def test_parse_get_and_merge():
    reply = ["OK", "2", "", "6", "100", "3", "g", "1", "50", "0"]
    assert rate_limits.parse_get(reply) == [
        RateLimit(max_jobs=6, per_ms=100, in_window=3),
        RateLimit(max_jobs=1, per_ms=50, gid="g", in_window=0)]
    assert rate_limits.parse_get(["OK", "0"]) == []
    shares = [RateLimit(max_jobs=3, per_ms=100, in_window=1), None,
              RateLimit(max_jobs=2, per_ms=100, in_window=2)]
    assert rate_limits.merge_queue_limits(shares) == RateLimit(max_jobs=5, per_ms=100,
                                                               in_window=3)
    assert rate_limits.merge_queue_limits([None, None]) is None
    assert rate_limits.parse_set(["OK", "1"]) is True
    assert rate_limits.parse_clear(["OK", "0"]) is False
    with pytest.raises(InvalidArgument):
        rate_limits.parse_set(["ERR", "BAD_ARGS", "max_jobs"])


def test_limited_over_partitions():
    q = ReserveResult("LIMITED", [], 300, "queue")
    g = ReserveResult("LIMITED", [], 100, "group")
    # every partition stopped by the queue-wide limit (or paused): the whole queue waits
    assert _limited({"p0": q, "p1": q}, set(), 2) == ReserveResult("LIMITED", [], 300, "queue")
    assert _limited({"p0": q}, {"p1"}, 2).limited_by == "queue"
    # a partition that is merely empty, or held by groups only, may get work at any time
    assert _limited({"p0": q}, set(), 2) == ReserveResult("LIMITED", [], 300, "group")
    assert _limited({"p0": q, "p1": g}, set(), 2) == ReserveResult("LIMITED", [], 100, "group")
