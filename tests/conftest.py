"""Shared test helpers. The server and client fixtures come from omniq.testing.pytest_plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from omniq.aio._connect import is_cluster_url, plain_url

# The cluster kind of --omniq-server runs these suites; the others (interop with the
# official client, fault injection on single servers, ...) run on single servers only.
CLUSTER_SUITES = (
    "tests/core/",
    "tests/worker/",
    "tests/cluster/",
    "tests/reliability/model/test_model_partitioned.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_cluster = callspec is not None and callspec.params.get("omniq_server") == "cluster"
        path = item.nodeid.replace("\\", "/")
        if on_cluster and (
            not path.startswith(CLUSTER_SUITES) or item.get_closest_marker("single_node")
        ):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture
def raw(omniq_redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the test database (a cluster client on a cluster)."""
    if is_cluster_url(omniq_redis_url):
        cluster = redis.RedisCluster.from_url(plain_url(omniq_redis_url), decode_responses=True)
        try:
            yield cluster  # type: ignore[misc]
        finally:
            cluster.close()
        return
    client = redis.Redis.from_url(omniq_redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
