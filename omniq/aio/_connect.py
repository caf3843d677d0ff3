"""Building the redis-py client an :class:`~omniq.AsyncOmniq` talks through.

A ``redis://`` / ``rediss://`` / ``unix://`` URL (or host and port) gives a
``redis.asyncio.Redis``; a ``redis+cluster://`` / ``rediss+cluster://`` URL (or
``cluster=True``) gives a ``redis.asyncio.cluster.RedisCluster``. Either way redis-py's
own retries of failed commands are off: a command whose connection broke may have run,
and the scripts are not idempotent (a re-sent publish fails DUPLICATE, a re-sent reserve
leases a second job). MOVED and ASK redirections are still followed, because a redirected
command did not run.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from omniq.errors import InvalidArgument

__all__ = ["AnyRedis", "connect", "is_cluster_url", "open_pubsub", "plain_url"]

AnyRedis: TypeAlias = Redis | RedisCluster

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    """True for ``redis+cluster://`` and ``rediss+cluster://`` URLs."""
    return url.partition("://")[0].lower() in _CLUSTER_SCHEMES


def plain_url(url: str) -> str:
    """The URL redis-py's cluster client takes: ``redis+cluster://`` -> ``redis://``."""
    scheme, sep, rest = url.partition("://")
    return _CLUSTER_SCHEMES.get(scheme.lower(), scheme) + sep + rest


def connect(
    *,
    url: str | None,
    host: str,
    port: int,
    db: int,
    username: str | None,
    password: str | None,
    ssl: bool,
    cluster: bool,
    options: dict[str, Any],
) -> AnyRedis:
    """A new redis-py client for these settings (``options``: common connection kwargs)."""
    common = dict(options)
    common["retry"] = Retry(NoBackoff(), 0)
    if url and is_cluster_url(url):
        url = plain_url(url)
        cluster = True
    if cluster:
        if db != 0 or (url and _url_db(url) not in (None, 0)):
            raise InvalidArgument("Redis Cluster has only database 0")
        if common.get("max_connections") is None:
            common.pop("max_connections", None)  # RedisCluster wants an int or nothing
    if url:  # explicit credentials override the URL's
        if username is not None:
            common["username"] = username
        if password is not None:
            common["password"] = password
        return (RedisCluster if cluster else Redis).from_url(url, **common)
    if cluster:
        return RedisCluster(
            host=host, port=port, username=username, password=password, ssl=ssl, **common
        )
    return Redis(
        host=host, port=port, db=db, username=username, password=password, ssl=ssl, **common
    )


def _url_db(url: str) -> int | None:
    path = url.partition("://")[2].partition("/")[2].partition("?")[0]
    if not path:
        return None
    try:
        return int(path)
    except ValueError:
        raise InvalidArgument(f"invalid database number in URL: {path!r}") from None


async def open_pubsub(redis: AnyRedis) -> PubSub | ClusterPubSub:
    """A pub/sub object that drops subscribe confirmations.

    On a cluster, plain (not sharded) PUBLISH reaches every node, so subscribing through
    the node that owns the channel's slot is enough; the slot map is loaded first.
    """
    if isinstance(redis, RedisCluster):
        await redis.initialize()
    return redis.pubsub(ignore_subscribe_messages=True)
