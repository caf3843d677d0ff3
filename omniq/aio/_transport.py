"""Running scripts: EVALSHA with transparent NOSCRIPT recovery, alone or pipelined.

Only this module talks to redis-py for scripts, and it maps transport failures to
:class:`~omniq.errors.ConnectionFailed`, so only omniq exceptions escape the client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from redis import exceptions as rexc

from omniq._scripts import Script
from omniq.aio._connect import AnyRedis
from omniq.errors import ConnectionFailed, OmniqError, PermissionDenied

__all__ = ["Call", "ScriptRunner", "map_errors"]

Call = tuple[Script, str, Sequence[Any]]


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Turn redis-py errors into omniq errors: a refusal of credentials or of an ACL
    (NOPERM, WRONGPASS, NOAUTH) is :class:`PermissionDenied`, a transport failure or an
    unavailable cluster slot (CLUSTERDOWN, TRYAGAIN) :class:`ConnectionFailed`, any other
    server error :class:`OmniqError`."""
    try:
        yield
    except rexc.NoPermissionError as exc:  # redis-py strips the NOPERM code
        raise PermissionDenied(f"Redis refused the command (NOPERM): {exc}") from exc
    except rexc.AuthenticationError as exc:  # WRONGPASS / NOAUTH, a ConnectionError
        raise PermissionDenied(f"Redis refused the credentials: {exc}") from exc
    except (rexc.ClusterDownError, rexc.TryAgainError, rexc.SlotNotCoveredError) as exc:
        # A cluster node is down or a slot is moving: the command did not run; retry later.
        raise ConnectionFailed(f"Redis Cluster unavailable: {exc}") from exc
    except rexc.ResponseError as exc:
        if str(exc).startswith(("NOPERM", "WRONGPASS", "NOAUTH")):
            raise PermissionDenied(f"Redis refused: {exc}") from exc
        raise OmniqError(f"Redis error: {exc}") from exc
    except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
        raise ConnectionFailed(f"Redis connection failed: {exc}") from exc


class ScriptRunner:
    """Calls scripts by SHA on one redis-py client and reloads them after NOSCRIPT."""

    __slots__ = ("_execute", "redis")

    def __init__(self, redis: AnyRedis) -> None:
        self.redis = redis
        self._execute: Callable[..., Awaitable[Any]] = redis.execute_command

    async def call(self, script: Script, key: str, args: Sequence[Any]) -> Any:
        """EVALSHA ``script`` with ``key`` as KEYS[1]; on NOSCRIPT, load it and retry once."""
        with map_errors():
            try:
                return await self._execute("EVALSHA", script.sha, 1, key, *args)
            except rexc.NoScriptError:
                await self.redis.script_load(script.source)  # every node of a cluster
                return await self._execute("EVALSHA", script.sha, 1, key, *args)

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
        pipe = self.redis.pipeline(transaction=False)
        for script, key, args in calls:
            pipe.execute_command("EVALSHA", script.sha, 1, key, *args)
        return list(await pipe.execute(raise_on_error=False))
