"""Running scripts: EVALSHA with transparent NOSCRIPT recovery, alone or pipelined.

Only this module runs scripts, over the lean connection of :mod:`omniq.aio._resp` when the
client has one (it built its own connections) or else over redis-py; it maps errors the
same way on both paths (:func:`map_error`), so only omniq exceptions escape the client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from redis import exceptions as rexc

from omniq._scripts import Script
from omniq.aio._connect import AnyRedis
from omniq.aio._resp import RespClient
from omniq.errors import ConnectionFailed, OmniqError, PermissionDenied, ServerError

__all__ = ["Call", "ScriptRunner", "map_error", "map_errors"]

Call = tuple[Script, str, Sequence[Any]]


def map_error(exc: BaseException) -> BaseException:
    """The omniq exception for a redis-py error: a refusal of credentials or of an ACL
    (NOPERM, WRONGPASS, NOAUTH) is :class:`PermissionDenied`, a transport failure or an
    unavailable cluster slot (CLUSTERDOWN, TRYAGAIN) :class:`ConnectionFailed`, any other
    server error :class:`ServerError`. Anything else
    (omniq's own exceptions included) is returned unchanged."""
    if isinstance(exc, OmniqError):
        return exc
    if isinstance(exc, rexc.NoPermissionError):  # redis-py strips the NOPERM code
        return PermissionDenied(f"Redis refused the command (NOPERM): {exc}")
    if isinstance(exc, rexc.AuthenticationError):  # WRONGPASS / NOAUTH, a ConnectionError
        return PermissionDenied(f"Redis refused the credentials: {exc}")
    if isinstance(exc, rexc.ClusterDownError | rexc.TryAgainError | rexc.SlotNotCoveredError):
        # A cluster node is down or a slot is moving: the command did not run; retry later.
        return ConnectionFailed(f"Redis Cluster unavailable: {exc}")
    if isinstance(exc, rexc.ResponseError):
        if str(exc).startswith(("NOPERM", "WRONGPASS", "NOAUTH")):
            return PermissionDenied(f"Redis refused: {exc}")
        return ServerError(f"Redis error: {exc}")
    if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | OSError):
        return ConnectionFailed(f"Redis connection failed: {exc}")
    if isinstance(exc, AttributeError | TypeError) and _raised_in_redis_connection(exc):
        # redis-py's asyncio connections can be closed by one task while another uses them
        # (a reconnect after a node restart): the stream writer is then None. The command
        # was not sent; to the caller this is a broken connection like any other.
        return ConnectionFailed(f"Redis connection failed (closed while in use): {exc}")
    return exc


def _raised_in_redis_connection(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    path = last.tb_frame.f_code.co_filename.replace("\\", "/")
    return "/redis/asyncio/" in path or path.endswith(
        ("/asyncio/streams.py", "/asyncio/selector_events.py"))


# what redis-py and the lean connection raise (ConnectionFailed is an OSError too), and
# the AttributeError / TypeError of a redis-py connection closed while in use
_ERRORS = (rexc.RedisError, rexc.RedisClusterException, OSError, AttributeError, TypeError)


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Raise redis-py errors as omniq errors (see :func:`map_error`)."""
    try:
        yield
    except _ERRORS as exc:
        mapped = map_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc


class ScriptRunner:
    """Calls scripts by SHA and reloads them after NOSCRIPT: over ``lean`` (a
    :class:`~omniq.aio._resp.RespClient`) when given, else over the redis-py client."""

    __slots__ = ("_execute", "lean", "redis")

    def __init__(self, redis: AnyRedis, lean: RespClient | None = None) -> None:
        self.redis = redis
        self.lean = lean
        self._execute: Callable[..., Awaitable[Any]] = (
            redis.execute_command if lean is None else lean.execute
        )

    async def call(self, script: Script, key: str, args: Sequence[Any]) -> Any:
        """EVALSHA ``script`` with ``key`` as KEYS[1]; on NOSCRIPT, load it and retry once."""
        # the hot path: no context manager, errors mapped only when they happen
        execute = self._execute
        try:
            try:
                return await execute("EVALSHA", script.sha, 1, key, *args)
            except rexc.NoScriptError:
                await self.redis.script_load(script.source)  # every node of a cluster
                return await execute("EVALSHA", script.sha, 1, key, *args)
        except _ERRORS as exc:
            mapped = map_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def call_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run several script calls in one pipelined round trip (no MULTI).

        Calls that failed with NOSCRIPT did not run; they are retried once after loading.
        Other per-call Redis errors are returned in place as exceptions.
        """
        if not calls:
            return []
        with map_errors():
            results = await self._pipeline(calls)
            missing = [i for i, r in enumerate(results) if isinstance(r, rexc.NoScriptError)]
            if missing:
                for script in {calls[i][0].sha: calls[i][0] for i in missing}.values():
                    await self.redis.script_load(script.source)  # every node of a cluster
                retried = await self._pipeline([calls[i] for i in missing])
                for i, r in zip(missing, retried, strict=True):
                    results[i] = r
            return results

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        if self.lean is not None:
            return await self.lean.execute_many(
                [("EVALSHA", script.sha, 1, key, *args) for script, key, args in calls]
            )
        pipe = self.redis.pipeline(transaction=False)
        for script, key, args in calls:
            pipe.execute_command("EVALSHA", script.sha, 1, key, *args)
        return list(await pipe.execute(raise_on_error=False))
