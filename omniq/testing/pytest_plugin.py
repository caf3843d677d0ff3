"""pytest plugin (entry point ``pytest11``): real servers and clients for tests.

Fixtures:

``omniq_server``
    A session-wide embedded server (see :mod:`omniq.testing.embedded`), an
    :class:`~omniq.testing.embedded.EmbeddedCluster` for the ``cluster`` kind, or None when
    ``OMNIQ_TEST_REDIS_URL`` points the fixtures at an external server.
``omniq_redis_url``
    URL of a database flushed before the test.
``omniq``
    An :class:`~omniq.AsyncOmniq` on that database (function scope, closed after).
``omniq_sync``
    A blocking :class:`~omniq.OmniqClient` on that database.
``omniq_server_factory``
    Starts private servers (``factory(appendonly=True, ...)``) that the test may kill and
    restart; all are stopped at teardown.

Options: ``--omniq-server=KINDS`` (``auto``, ``redis``, ``valkey``, ``cluster`` or a list
such as ``redis,valkey,cluster`` to run every test that uses a server once per kind;
``cluster`` is a local 3-master Redis Cluster whose URL is ``redis+cluster://...``).
Async fixtures work with pytest-asyncio (``asyncio_mode = "auto"``) and with anyio's
plugin.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from omniq.aio._connect import is_cluster_url, plain_url
from omniq.testing.embedded import EmbeddedCluster, EmbeddedServer

if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq
    from omniq.sync.client import OmniqClient

__all__ = [
    "omniq",
    "omniq_redis_url",
    "omniq_server",
    "omniq_server_factory",
    "omniq_sync",
]

_URL_ENV = "OMNIQ_TEST_REDIS_URL"
_KIND_NAMES = ("auto", "redis", "valkey", "cluster")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("omniq")
    group.addoption(
        "--omniq-server",
        default=os.environ.get("OMNIQ_TEST_SERVER", "auto"),
        help="server kinds for the omniq fixtures: auto, redis, valkey, cluster, or a "
        "comma-separated list such as redis,valkey,cluster",
    )


def _kinds(config: pytest.Config) -> list[str]:
    value = str(config.getoption("--omniq-server"))
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    for k in kinds:
        if k not in _KIND_NAMES:
            raise pytest.UsageError(f"--omniq-server: unknown kind {k!r}")
    return kinds or ["auto"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kinds = _kinds(metafunc.config)
    if len(kinds) > 1 and "omniq_server" in metafunc.fixturenames:
        metafunc.parametrize("omniq_server", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def omniq_server(
    request: pytest.FixtureRequest,
) -> Iterator[EmbeddedServer | EmbeddedCluster | None]:
    """The session's embedded server or cluster (None with ``OMNIQ_TEST_REDIS_URL``)."""
    if os.environ.get(_URL_ENV):
        yield None
        return
    kind = getattr(request, "param", None) or _kinds(request.config)[0]
    server: EmbeddedServer | EmbeddedCluster
    if kind == "cluster":
        server = EmbeddedCluster(masters=3)
    else:
        server = EmbeddedServer(kind=None if kind == "auto" else kind)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def omniq_redis_url(omniq_server: EmbeddedServer | EmbeddedCluster | None) -> str:
    """URL of a freshly flushed database on the test server (every node of a cluster)."""
    import redis

    url = os.environ.get(_URL_ENV) or (omniq_server.url if omniq_server else "")
    if is_cluster_url(url):
        with redis.RedisCluster.from_url(plain_url(url)) as rc:
            nodes = [(n.host, n.port) for n in rc.get_primaries()]
        for host, port in nodes:
            with redis.Redis(host=host, port=port) as r:
                r.flushdb()
                r.script_flush()
        return url
    with redis.Redis.from_url(url) as r:
        r.flushdb()
        r.script_flush()
    return url


@pytest.fixture
async def omniq(omniq_redis_url: str) -> AsyncIterator[AsyncOmniq]:
    """An async client on a flushed database."""
    from omniq.aio.client import AsyncOmniq

    client = AsyncOmniq(url=omniq_redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def omniq_sync(omniq_redis_url: str) -> Iterator[OmniqClient]:
    """A blocking client on a flushed database."""
    from omniq.sync.client import OmniqClient

    client = OmniqClient(redis_url=omniq_redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def omniq_server_factory(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., EmbeddedServer]]:
    """Start private servers for this test; every one is stopped at teardown."""
    started: list[EmbeddedServer] = []
    param = getattr(request, "param", None)

    def factory(**kwargs: Any) -> EmbeddedServer:
        if "kind" not in kwargs and "binary" not in kwargs:
            kind = param or _kinds(request.config)[0]
            kwargs["kind"] = None if kind in ("auto", "cluster") else kind
        server = EmbeddedServer(**kwargs)
        server.start()
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
