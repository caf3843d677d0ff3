"""Connection settings: one object builds both of an :class:`~omniq.AsyncOmniq`'s clients.

:class:`ConnectionSettings` takes the connection options of ``AsyncOmniq`` (a URL or host
and port, credentials, TLS, timeouts), parses and validates the URL itself, and builds

* :meth:`~ConnectionSettings.redis`: the redis-py client, a ``redis.asyncio.Redis`` for
  ``redis://`` / ``rediss://`` / ``unix://`` (or host and port) and a
  ``redis.asyncio.cluster.RedisCluster`` for ``redis+cluster://`` / ``rediss+cluster://``
  (or ``cluster=True``);
* :meth:`~ConnectionSettings.lean`: the lean script connection (:mod:`omniq.aio._resp`) on
  the same address, credentials and TLS settings, or None where it does not apply.

Either way redis-py's own retries of failed commands are off: a command whose connection
broke may have run, and the scripts are not idempotent (a re-sent publish fails DUPLICATE,
a re-sent reserve leases a second job). MOVED and ASK redirections are still followed,
because a redirected command did not run.

As with redis-py's ``from_url``, what the URL says (its credentials and query options)
wins over the keyword options; with a URL, ``host``, ``port``, ``db`` and ``ssl`` come from
the URL only.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl as _ssl
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from omniq.aio._resp import RespClient
from omniq.errors import InvalidArgument

__all__ = ["AnyRedis", "ConnectionSettings", "is_cluster_url", "open_pubsub", "plain_url"]

AnyRedis: TypeAlias = Redis | RedisCluster

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
_SCHEMES_TEXT = ", ".join(f"{s}://" for s in _SCHEMES)
_DEFAULT_HOST = "localhost"  # redis-py's, for a URL without a host
_DEFAULT_PORT = 6379
_DEFAULT_CONNECT_TIMEOUT_S = 5.0  # redis-py's (>= 6) default socket_connect_timeout
_CERT_REQS = {
    "none": _ssl.CERT_NONE,
    "optional": _ssl.CERT_OPTIONAL,
    "required": _ssl.CERT_REQUIRED,
}
_FALSE_STRINGS = ("0", "F", "FALSE", "N", "NO")  # as redis-py reads booleans in URLs


def is_cluster_url(url: str) -> bool:
    """True for ``redis+cluster://`` and ``rediss+cluster://`` URLs."""
    return url.partition("://")[0].lower() in _CLUSTER_SCHEMES


def plain_url(url: str) -> str:
    """The URL redis-py's cluster client takes: ``redis+cluster://`` -> ``redis://``."""
    scheme, sep, rest = url.partition("://")
    return _CLUSTER_SCHEMES.get(scheme.lower(), scheme) + sep + rest


def default_keepalive_options() -> dict[int, int]:
    """TCP keepalive tuning as redis-py (>= 6) applies by default: probe after 30 s idle,
    every 5 s, give up after 3 (the constants a platform lacks are left out)."""
    options: dict[int, int] = {}
    for names, value in ((("TCP_KEEPIDLE", "TCP_KEEPALIVE"), 30), (("TCP_KEEPINTVL",), 5),
                         (("TCP_KEEPCNT",), 3)):
        for name in names:
            option = getattr(socket, name, None)
            if option is not None:
                options[option] = value
                break
    return options


def _to_bool(value: str) -> bool:
    return value.upper() not in _FALSE_STRINGS


# query options we read ourselves (both clients honour them); others go to redis-py as is
_QUERY_PARSERS: Mapping[str, Callable[[str], Any]] = {
    "db": int,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "socket_keepalive": _to_bool,
    "max_connections": int,
    "client_name": str,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_cert_reqs": str,
    "ssl_check_hostname": _to_bool,
}


def _redis_query_parsers() -> Mapping[str, Callable[..., object]]:
    """redis-py's parsers for the query options it knows (public in redis.asyncio)."""
    from redis.asyncio import connection

    return getattr(connection, "URL_QUERY_ARGUMENT_PARSERS", {})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSettings:
    """Where and how to connect, validated; builds the redis-py client and the lean one.

    Build it with :meth:`from_options` (the options of ``AsyncOmniq``).
    """

    host: str
    port: int
    unix_path: str | None  # a unix:// URL: the socket path (host and port unused)
    db: int
    username: str | None
    password: str | None = dataclasses.field(repr=False)
    ssl: bool
    cluster: bool
    client_name: str | None
    socket_timeout: float | None
    socket_connect_timeout: float | None
    socket_keepalive: bool
    socket_keepalive_options: Mapping[int, int]
    max_connections: int | None
    ssl_ca_certs: str | None
    ssl_certfile: str | None
    ssl_keyfile: str | None
    ssl_cert_reqs: str
    ssl_check_hostname: bool
    extra: Mapping[str, Any]  # other URL query options, for redis-py only

    @classmethod
    def from_options(
        cls,
        *,
        url: str | None = None,
        host: str = "127.0.0.1",
        port: int = _DEFAULT_PORT,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        ssl: bool = False,
        client_name: str | None = None,
        socket_timeout: float | None = None,
        max_connections: int | None = None,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        cluster: bool = False,
    ) -> ConnectionSettings:
        """Settings from ``AsyncOmniq``'s options (see the module docstring for how a URL
        combines with them). :raises InvalidArgument: an invalid URL or option."""
        fields: dict[str, Any] = {
            "host": host, "port": port, "unix_path": None, "db": db, "username": username,
            "password": password, "ssl": ssl, "cluster": cluster, "client_name": client_name,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": _DEFAULT_CONNECT_TIMEOUT_S,
            "socket_keepalive": True, "max_connections": max_connections,
            "ssl_ca_certs": ssl_ca_certs, "ssl_certfile": ssl_certfile,
            "ssl_keyfile": ssl_keyfile, "ssl_cert_reqs": "required",
            "ssl_check_hostname": True, "extra": {},
        }
        if url is not None:
            fields.update(_parse_url(url))
        if fields["ssl_cert_reqs"] not in _CERT_REQS:
            raise InvalidArgument(
                f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}: "
                f"{fields['ssl_cert_reqs']!r}"
            )
        if fields["cluster"]:
            if fields["db"] != 0:
                raise InvalidArgument("Redis Cluster has only database 0")
            if fields["unix_path"] is not None:
                raise InvalidArgument("Redis Cluster is reached over TCP, not a unix socket")
        fields["socket_keepalive_options"] = default_keepalive_options()  # used if keepalive
        return cls(**fields)

    # -- the clients -------------------------------------------------------------------

    def redis(self) -> AnyRedis:
        """A new redis-py client (``decode_responses=True``, retries off)."""
        common: dict[str, Any] = {
            "decode_responses": True,
            "encoding_errors": "replace",
            "retry": Retry(NoBackoff(), 0),
            "username": self.username,
            "password": self.password,
            "client_name": self.client_name,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            **self.extra,
        }
        if self.max_connections is not None or not self.cluster:
            common["max_connections"] = self.max_connections  # RedisCluster: int or nothing
        if self.unix_path is not None:
            return Redis(unix_socket_path=self.unix_path, db=self.db, **common)
        common["socket_keepalive"] = self.socket_keepalive
        common["socket_keepalive_options"] = dict(self.socket_keepalive_options)
        if self.ssl:
            common.update(
                ssl=True, ssl_ca_certs=self.ssl_ca_certs, ssl_certfile=self.ssl_certfile,
                ssl_keyfile=self.ssl_keyfile, ssl_cert_reqs=self.ssl_cert_reqs,
                ssl_check_hostname=self.ssl_check_hostname,
            )
        if self.cluster:
            return RedisCluster(host=self.host, port=self.port, **common)
        return Redis(host=self.host, port=self.port, db=self.db, **common)

    def lean(self) -> RespClient | None:
        """A new lean script connection on the same server, or None where it does not
        apply: a cluster, a unix socket, or URL options it does not implement."""
        if self.cluster or self.unix_path is not None or self.extra:
            return None
        return RespClient(
            self.host, self.port, db=self.db, username=self.username,
            password=self.password, client_name=self.client_name,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_connect_timeout,
            ssl_context_factory=self.ssl_context if self.ssl else None,
            socket_keepalive=self.socket_keepalive,
            socket_keepalive_options=self.socket_keepalive_options,
        )

    def ssl_context(self) -> _ssl.SSLContext:
        """The TLS context of the lean connection, made as redis-py makes its own: the
        system CAs plus ``ssl_ca_certs``, ``ssl_cert_reqs``, ``ssl_check_hostname`` and
        the client certificate."""
        context = _ssl.create_default_context()
        context.check_hostname = self.ssl_check_hostname
        context.verify_mode = _CERT_REQS[self.ssl_cert_reqs]
        if self.ssl_certfile or self.ssl_keyfile:
            context.load_cert_chain(certfile=self.ssl_certfile or "", keyfile=self.ssl_keyfile)
        if self.ssl_ca_certs:
            context.load_verify_locations(cafile=self.ssl_ca_certs)
        return context


def _parse_url(url: str) -> dict[str, Any]:
    """The settings a URL gives (only those it gives). :raises InvalidArgument:"""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES:
        raise InvalidArgument(
            f"invalid Redis URL {_redacted(url)!r}: it must start with one of "
            f"{_SCHEMES_TEXT}"
        )
    parts = urlsplit(url)
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    redis_parsers = _redis_query_parsers()
    for name, values in parse_qs(parts.query).items():
        value = values[0]  # parse_qs has percent-decoded it already
        parser = _QUERY_PARSERS.get(name) or redis_parsers.get(name)
        try:
            parsed = value if parser is None else parser(value)
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"invalid value for {name!r} in Redis URL: {value!r}") from None
        (fields if name in _QUERY_PARSERS else extra)[name] = parsed
    fields["extra"] = extra
    if parts.username:
        fields["username"] = unquote(parts.username)
    if parts.password:
        fields["password"] = unquote(parts.password)
    if scheme in _CLUSTER_SCHEMES:
        fields["cluster"] = True
    fields["ssl"] = scheme in ("rediss", "rediss+cluster")
    if scheme == "unix":
        if not parts.path:
            raise InvalidArgument(f"a unix:// URL needs a socket path: {_redacted(url)!r}")
        fields["unix_path"] = unquote(parts.path)
        fields.setdefault("db", 0)
        return fields
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgument(f"invalid port in Redis URL {_redacted(url)!r}") from None
    fields["host"] = unquote(parts.hostname) if parts.hostname else _DEFAULT_HOST
    fields["port"] = port or _DEFAULT_PORT
    path = unquote(parts.path).replace("/", "")
    if "db" not in fields:
        if path:
            try:
                fields["db"] = int(path)
            except ValueError:
                raise InvalidArgument(f"invalid database number in Redis URL: {path!r}") from None
        else:
            fields["db"] = 0
    return fields


def _redacted(url: str) -> str:
    """``url`` without its password, for error messages."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, userinfo = head.partition("://")
    if not sep:
        return f"***@{tail}"
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user}{colon and ':***'}@{tail}"


async def open_pubsub(redis: AnyRedis, *, confirmations: bool = False) -> PubSub | ClusterPubSub:
    """A pub/sub object that drops subscribe confirmations (unless ``confirmations``: then
    they come as messages of type ``subscribe``, one per channel).

    On a cluster, plain (not sharded) PUBLISH reaches every node, so subscribing through
    the node that owns the channel's slot is enough; the slot map is loaded first.
    """
    if isinstance(redis, RedisCluster):
        await redis.initialize()
    return redis.pubsub(ignore_subscribe_messages=not confirmations)
