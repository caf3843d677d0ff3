"""A private 3-master cluster per module, with AOF persistence so nodes can restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from omniq import AsyncOmniq
from omniq.testing.embedded import EmbeddedCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(masters=3, appendonly=True) as c:
        yield c


@pytest.fixture
def nodes(cluster: EmbeddedCluster) -> Iterator[list[redis.Redis]]:
    """One plain client per node, flushed (data and script cache) before the test."""
    clients = [redis.Redis(host="127.0.0.1", port=n.port, decode_responses=True)
               for n in cluster.nodes]
    for c in clients:
        c.flushdb()
        c.script_flush()
        c.config_resetstat()
    try:
        yield clients
    finally:
        for c in clients:
            c.close()


@pytest.fixture
async def omniq(cluster: EmbeddedCluster, nodes: list[redis.Redis]) -> AsyncIterator[AsyncOmniq]:
    client = AsyncOmniq(url=cluster.url)
    try:
        yield client
    finally:
        await client.aclose()
