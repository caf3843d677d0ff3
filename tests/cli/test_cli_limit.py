"""``omniq limit``: show, set and clear rate limits (run as a subprocess)."""

from __future__ import annotations

import json

import pytest
from test_cli import cli, one_line_error

from omniq import AsyncOmniq, RateLimit

pytestmark = pytest.mark.single_node


async def test_set_show_and_clear(omniq: AsyncOmniq, omniq_redis_url: str) -> None:
    url = omniq_redis_url
    assert cli("limit", "q", url=url).stdout == "q has no rate limit\n"
    proc = cli("limit", "q", "100", "60000", url=url)
    assert (proc.returncode, proc.stdout) == (0, "q: at most 100 jobs per 60000 ms\n")
    proc = cli("limit", "q", "--gid", "acme", "5", "1000", url=url)
    assert proc.stdout == "group acme of q: at most 5 jobs per 1000 ms\n", proc.stderr
    assert await omniq.get_rate_limit("q") == RateLimit(max_jobs=100, per_ms=60000)
    assert await omniq.get_rate_limit("q", gid="acme") == RateLimit(max_jobs=5, per_ms=1000,
                                                                    gid="acme")
    lines = cli("limit", "q", url=url).stdout.splitlines()
    assert lines[0].split() == ["GROUP", "MAX_JOBS", "PER_MS", "IN_WINDOW"]
    assert [ln.split() for ln in lines[1:]] == [["(queue)", "100", "60000", "0"],
                                                 ["acme", "5", "1000", "0"]]
    shown = json.loads(cli("limit", "q", "--gid", "acme", "--json", url=url).stdout)
    assert shown == {"queue": "q", "limits": [
        {"gid": "acme", "max_jobs": 5, "per_ms": 1000, "in_window": 0}]}
    proc = cli("limit", "q", "--gid", "acme", "--clear", url=url)
    assert proc.stdout == "cleared the rate limit of group acme of q\n"
    assert cli("limit", "q", "--gid", "acme", "--clear", url=url).stdout == (
        "group acme of q had no rate limit\n")
    assert await omniq.rate_limits("q") == [RateLimit(max_jobs=100, per_ms=60000)]
    assert cli("limit", "q", "--clear", url=url).returncode == 0
    assert await omniq.rate_limits("q") == []


@pytest.mark.parametrize(("args", "pattern"), [
    (("q", "10"), "both MAX and PER_MS"),
    (("q", "10", "100", "--clear"), "not both"),
    (("q", "ten", "100"), "MAX is not an integer"),
    (("q", "10", "0"), "PER_MS must be at least 1"),
    (("q", "100001", "1000"), "max_jobs must be at most 100000"),
    (("q", "--gid", " ", "1", "1000"), "gid must not be empty"),
])
def test_bad_arguments(omniq_redis_url: str, args: tuple[str, ...], pattern: str) -> None:
    one_line_error(cli("limit", *args, url=omniq_redis_url), 2, pattern)
