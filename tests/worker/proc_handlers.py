"""Module-level handlers for the process-pool tests (importable by spawned children)."""

from __future__ import annotations

import os
from typing import Any


def cpu_handler(ctx: Any) -> dict[str, Any]:
    total = sum(i * i for i in range(ctx.payload["n"]))
    return {"pid": os.getpid(), "total": total, "exec": ctx.exec is None, "job": ctx.job_id}


def failing_handler(ctx: Any) -> None:
    raise ValueError(f"bad input {ctx.payload['n']}")
