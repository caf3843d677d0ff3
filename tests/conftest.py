"""Shared test helpers. The server and client fixtures come from omniq.testing.pytest_plugin.

``--omniq-loop=uvloop`` runs the async tests on uvloop's event loop (pytest-asyncio's
``pytest_asyncio_loop_factories`` hook); the default ``asyncio`` leaves pytest-asyncio's
loop alone. The sync facade keeps its own asyncio loop either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping

import pytest
import redis

from omniq.aio._connect import is_cluster_url, plain_url

# The cluster kind of --omniq-server runs these suites; the others (interop with the
# official client, fault injection on single servers, ...) run on single servers only.
CLUSTER_SUITES = (
    "tests/core/",
    "tests/worker/",
    "tests/cluster/",
    "tests/eventlog/",
    "tests/reliability/model/test_model_partitioned.py",
    "tests/reliability/faults/test_flow_crash.py",
)


_LOOPS = ("asyncio", "uvloop")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("omniq").addoption(
        "--omniq-loop",
        default="asyncio",
        choices=_LOOPS,
        help="event loop of the async tests: asyncio (default) or uvloop",
    )


class _UvloopFactories:
    """Registered only with --omniq-loop=uvloop: every async test gets a uvloop loop."""

    def pytest_asyncio_loop_factories(
        self, config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
        import uvloop

        return {"uvloop": uvloop.new_event_loop}


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--omniq-loop") != "uvloop":
        return
    try:
        import uvloop  # noqa: F401
    except ImportError:
        raise pytest.UsageError("--omniq-loop=uvloop needs uvloop (pip install uvloop)") from None
    import pytest_asyncio.plugin

    if not hasattr(pytest_asyncio.plugin, "PytestAsyncioSpecs"):
        raise pytest.UsageError(
            "--omniq-loop=uvloop needs a pytest-asyncio with the "
            "pytest_asyncio_loop_factories hook"
        )
    config.pluginmanager.register(_UvloopFactories(), "omniq-uvloop")


@pytest.fixture
def loop_kind(request: pytest.FixtureRequest) -> str:
    """The --omniq-loop of this run."""
    return str(request.config.getoption("--omniq-loop"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("omniq_server") if callspec is not None else None
        on_cluster = kind == "cluster"
        path = item.nodeid.replace("\\", "/")
        only = item.get_closest_marker("kinds")
        if (on_cluster and (
            not path.startswith(CLUSTER_SUITES) or item.get_closest_marker("single_node")
        )) or (only is not None and kind is not None and kind not in only.args):
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
