"""Running scripts: FCALL or EVALSHA with transparent reloading, alone or pipelined.

Only this module runs scripts, over the lean connection of :mod:`omniq.aio._resp` when the
client has one (it built its own connections) or else over redis-py; it maps errors the
same way on both paths (:func:`map_error`), so only omniq exceptions escape the client.

A queue script is called as a function of :data:`omniq._scripts.LIBRARY` (FCALL: its
library code ran once, at load, so a call skips the script's set-up; docs/architecture.md
"Script set-up cost"), loaded with FUNCTION LOAD after a "Function not found" reply, as a
script is after NOSCRIPT. Where FCALL is not available (a server before 7.0, an ACL that
allows EVALSHA only, a proxy that forwards EVALSHA only) the runner falls back to EVALSHA
for good; a refused FCALL ran nothing, so the fallback repeats nothing. Redis Cluster stays
on EVALSHA: redis-py asks a node for the keys of every FCALL (COMMAND GETKEYS), one more
round trip per call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster

from omniq._scripts import LIBRARY, Script
from omniq.aio._connect import AnyRedis
from omniq.aio._resp import RespClient
from omniq.errors import ConnectionFailed, OmniqError, PermissionDenied, ServerError

__all__ = ["Call", "ScriptRunner", "map_error", "map_errors"]

Call = tuple[Script, str, Sequence[Any]]

logger = logging.getLogger("omniq")


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
    """Calls scripts as functions of :data:`~omniq._scripts.LIBRARY` (FCALL) or by SHA
    (EVALSHA), loading the library or the script when the server lacks it: over ``lean``
    (a :class:`~omniq.aio._resp.RespClient`) when given, else over the redis-py client."""

    __slots__ = ("_execute", "functions", "lean", "redis")

    def __init__(self, redis: AnyRedis, lean: RespClient | None = None) -> None:
        self.redis = redis
        self.lean = lean
        self._execute: Callable[..., Awaitable[Any]] = (
            redis.execute_command if lean is None else lean.execute
        )
        # whether queue scripts go by FCALL; False for good after the server refused it
        self.functions = not isinstance(redis, RedisCluster)

    def _command(self, script: Script, key: str, args: Sequence[Any]) -> tuple[Any, ...]:
        if self.functions and script.function is not None:
            return ("FCALL", script.function, 1, key, *args)
        return ("EVALSHA", script.sha, 1, key, *args)

    async def call(self, script: Script, key: str, args: Sequence[Any]) -> Any:
        """Run ``script`` with ``key`` as KEYS[1]; when the server lacks its function or
        script, load it and retry once."""
        # the hot path: no context manager, errors mapped only when they happen
        execute = self._execute
        try:
            try:
                if self.functions and script.function is not None:
                    return await execute("FCALL", script.function, 1, key, *args)
                return await execute("EVALSHA", script.sha, 1, key, *args)
            except rexc.ResponseError as exc:  # NoScriptError is one
                if not await self._recover(exc, script):
                    raise
            try:
                return await execute(*self._command(script, key, args))
            except rexc.ResponseError as exc:  # FCALL fell back to EVALSHA, then NOSCRIPT
                if not await self._recover(exc, script):
                    raise
            return await execute(*self._command(script, key, args))
        except _ERRORS as exc:
            mapped = map_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _recover(self, exc: BaseException, script: Script) -> bool:
        """After an error reply to a call of ``script``: make the call possible and say
        whether to retry it (False: the error is the script's answer, raise it)."""
        if isinstance(exc, rexc.NoScriptError):
            await self.redis.script_load(script.source)  # every node of a cluster
            return True
        if not (self.functions and script.function is not None and _refused_fcall(exc)):
            return False
        if "Function not found" in str(exc):
            try:
                await self.redis.function_load(LIBRARY, replace=True)
                return True
            except rexc.ResponseError as load_exc:  # no FUNCTION LOAD here: use EVALSHA
                exc = load_exc
        self.functions = False
        logger.info("omniq: calling scripts by EVALSHA, the server refused Redis Functions "
                    "(%s)", exc)
        return True

    async def call_many(self, calls: Sequence[Call]) -> list[Any]:
        """Run several script calls in one pipelined round trip (no MULTI).

        Calls refused because the server lacked their function or script did not run;
        they are retried once after loading. Other per-call Redis errors are returned in
        place as exceptions.
        """
        if not calls:
            return []
        with map_errors():
            results = await self._pipeline(calls)
            for _ in range(2):  # FCALL may fall back to EVALSHA, which may need a load
                missing = [i for i, r in enumerate(results)
                           if isinstance(r, rexc.ResponseError) and _not_run(r, calls[i][0])]
                if not missing:
                    break
                done: set[tuple[bool, str]] = set()
                for i in missing:
                    script = calls[i][0]
                    # one load of each script, one of the library
                    what = (True, script.sha) if isinstance(results[i], rexc.NoScriptError) \
                        else (False, "")
                    if what not in done:
                        done.add(what)
                        await self._recover(results[i], script)
                retried = await self._pipeline([calls[i] for i in missing])
                for i, r in zip(missing, retried, strict=True):
                    results[i] = r
            return results

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        if self.lean is not None:
            return await self.lean.execute_many(
                [self._command(script, key, args) for script, key, args in calls]
            )
        pipe = self.redis.pipeline(transaction=False)
        for script, key, args in calls:
            pipe.execute_command(*self._command(script, key, args))
        return list(await pipe.execute(raise_on_error=False))


def _not_run(exc: BaseException, script: Script) -> bool:
    """Whether an error reply to a call of ``script`` says it did not run for want of
    the script or its function."""
    return isinstance(exc, rexc.NoScriptError) or (
        script.function is not None and _refused_fcall(exc))


def _refused_fcall(exc: BaseException) -> bool:
    """Whether an error reply says an FCALL did not run: its function is not loaded, or
    the server (or the user's ACL) has no FCALL."""
    text = str(exc)
    if isinstance(exc, rexc.NoPermissionError):
        return "fcall" in text.lower()
    return "Function not found" in text or (
        "unknown command" in text.lower() and "fcall" in text.lower())
