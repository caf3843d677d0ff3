"""ConnectionSettings (omniq.aio._connect): URL parsing and validation, and the two clients
it builds agreeing with each other and with redis-py's own reading of the same URL."""

from __future__ import annotations

import ssl

import pytest
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from omniq import AsyncOmniq
from omniq.aio._connect import ConnectionSettings
from omniq.errors import InvalidArgument

SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")


@pytest.mark.parametrize(
    "url", ["localhost:6379", "127.0.0.1", "http://localhost:6379", "redis:/localhost", ""]
)
async def test_a_url_without_a_valid_scheme_is_invalid_argument_listing_the_schemes(url):
    with pytest.raises(InvalidArgument) as err:
        AsyncOmniq(url=url)
    for scheme in SCHEMES:
        assert scheme in str(err.value)


def test_the_password_of_an_invalid_url_is_not_in_the_message():
    with pytest.raises(InvalidArgument) as err:
        ConnectionSettings.from_options(url="carol:s3cret@localhost:6379")
    assert "s3cret" not in str(err.value)
    with pytest.raises(InvalidArgument) as err:
        ConnectionSettings.from_options(url="redis://carol:s3cret@localhost:notaport")
    assert "s3cret" not in str(err.value)
    assert "port" in str(err.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost/abc", "database"),
        ("redis://localhost/0?socket_timeout=soon", "socket_timeout"),
        ("redis+cluster://localhost:7000/2", "only database 0"),
        ("redis://localhost/0?ssl_cert_reqs=sometimes", "ssl_cert_reqs"),
        ("unix://", "socket path"),
    ],
)
def test_invalid_url_parts_are_invalid_argument(url, message):
    with pytest.raises(InvalidArgument, match=message):
        ConnectionSettings.from_options(url=url)


def _kwargs(client: aredis.Redis) -> dict[str, object]:
    return client.connection_pool.connection_kwargs


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://h.example:6380/3",
        "redis://carol:p%40ss@h.example:6380/2?socket_timeout=1.5&client_name=me",
        "redis://:only-password@h.example/1?db=4",
        "rediss://u:p@h.example:6390/0?ssl_cert_reqs=optional&ssl_check_hostname=false",
        "redis://h.example/0?socket_connect_timeout=2&socket_keepalive=no",
    ],
)
async def test_the_redis_py_client_reads_a_url_as_redis_py_does(url):
    ours = ConnectionSettings.from_options(url=url).redis()
    # what omniq passed redis-py before it parsed URLs itself (AsyncOmniq's defaults)
    theirs = aredis.Redis.from_url(url, socket_timeout=None, client_name=None)
    try:
        assert isinstance(ours, aredis.Redis)
        assert ours.connection_pool.connection_class is theirs.connection_pool.connection_class
        mine = ours.connection_pool.make_connection()  # not connected: settings only
        other = theirs.connection_pool.make_connection()
        for key in ("host", "port", "db", "username", "password", "client_name",
                    "socket_timeout", "socket_connect_timeout", "socket_keepalive",
                    "socket_keepalive_options"):
            assert getattr(mine, key) == getattr(other, key), key
        if isinstance(other, SSLConnection):
            assert isinstance(mine, SSLConnection)
            for key in ("cert_reqs", "check_hostname", "ca_certs"):
                assert getattr(mine.ssl_context, key) == getattr(other.ssl_context, key), key
        assert _kwargs(ours)["decode_responses"] is True
        assert ours.get_retry() is not None
        assert ours.get_retry().get_retries() == 0  # never re-send: scripts may have run
    finally:
        await ours.aclose()
        await theirs.aclose()


async def test_the_lean_client_has_the_settings_of_the_redis_py_client():
    url = "redis://carol:p%40ss@h.example:6380/2?socket_timeout=1.5&client_name=me"
    settings = ConnectionSettings.from_options(url=url, username="ignored", password="x")
    lean = settings.lean()
    assert lean is not None
    client = settings.redis()
    try:
        kwargs = _kwargs(client)
        assert (lean.host, lean.port, lean.db) == ("h.example", 6380, 2)
        assert (lean.username, lean.password) == ("carol", "p@ss")  # the URL wins
        assert (kwargs["username"], kwargs["password"]) == ("carol", "p@ss")
        assert lean.client_name == kwargs["client_name"] == "me"
        assert lean.socket_timeout == kwargs["socket_timeout"] == 1.5
        assert lean.socket_connect_timeout == kwargs["socket_connect_timeout"]
        assert lean.socket_keepalive == kwargs["socket_keepalive"]
        assert lean.socket_keepalive_options == kwargs["socket_keepalive_options"]
    finally:
        await client.aclose()


async def test_keyword_options_without_a_url():
    settings = ConnectionSettings.from_options(
        host="h.example", port=7001, db=3, username="u", password="p", client_name="n",
        socket_timeout=2.0, max_connections=7,
    )
    client = settings.redis()
    try:
        kwargs = _kwargs(client)
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("h.example", 7001, 3)
        assert client.connection_pool.max_connections == 7
        lean = settings.lean()
        assert lean is not None
        assert (lean.host, lean.port, lean.db, lean.username) == ("h.example", 7001, 3, "u")
    finally:
        await client.aclose()


async def test_tls_settings_build_the_same_context_rules_on_both_clients(tmp_path):
    settings = ConnectionSettings.from_options(
        url="rediss://h.example:6390?ssl_cert_reqs=required"
    )
    client = settings.redis()
    try:
        assert client.connection_pool.connection_class is SSLConnection
        lean = settings.lean()
        assert lean is not None
        context = settings.ssl_context()
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        relaxed = ConnectionSettings.from_options(
            url="rediss://h.example?ssl_cert_reqs=none&ssl_check_hostname=false"
        ).ssl_context()
        assert relaxed.verify_mode == ssl.CERT_NONE
        assert not relaxed.check_hostname
    finally:
        await client.aclose()


async def test_which_settings_get_a_lean_client(tmp_path):
    unix = ConnectionSettings.from_options(url=f"unix://{tmp_path}/r.sock?db=2")
    client = unix.redis()
    try:
        assert client.connection_pool.connection_class is UnixDomainSocketConnection
        assert _kwargs(client)["path"] == f"{tmp_path}/r.sock"
        assert _kwargs(client)["db"] == 2
    finally:
        await client.aclose()
    assert unix.lean() is None
    cluster = ConnectionSettings.from_options(url="rediss+cluster://u:p@h.example:7000")
    assert (cluster.cluster, cluster.ssl, cluster.host, cluster.port) == (
        True, True, "h.example", 7000)
    assert cluster.lean() is None
    built = cluster.redis()
    try:
        assert isinstance(built, RedisCluster)
    finally:
        await built.aclose()
    assert ConnectionSettings.from_options(url="redis://h:1", cluster=True).cluster
    # a query option the lean client does not implement keeps everything on redis-py
    other = ConnectionSettings.from_options(url="redis://h:1/0?health_check_interval=3")
    assert other.lean() is None
    assert other.extra == {"health_check_interval": 3}


def test_settings_are_immutable():
    settings = ConnectionSettings.from_options(url="redis://h:1", password="secret")
    with pytest.raises(AttributeError):
        settings.host = "other"  # type: ignore[misc]
    assert "secret" not in repr(settings)
