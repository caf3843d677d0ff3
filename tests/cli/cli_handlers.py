"""Handlers for the CLI tests: ``omniq worker cli_handlers:NAME`` run with this folder as the
current directory (the CLI puts it first on sys.path)."""

from __future__ import annotations

import asyncio
from typing import Any

not_callable = 42
routes_bad = {"a": 42}


async def slow(ctx: Any) -> dict[str, Any]:
    """Say the job started (the test waits for these lines), then work for a while."""
    print(f"started {ctx.job_id}", flush=True)
    await asyncio.sleep(float(ctx.payload.get("seconds", 1.0)))
    return {"n": ctx.payload["n"]}


def fail(ctx: Any) -> None:
    raise RuntimeError(f"boom {ctx.payload['n']}")
