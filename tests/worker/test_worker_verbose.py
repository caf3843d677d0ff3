"""verbose=True prints the worker's log when the application configured no logging."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import asyncio, sys
from omniq import AsyncOmniq

async def main(url):
    async with AsyncOmniq(url=url) as q:
        job_id = await q.publish("verbose", {"a": 1})
        async def handler(ctx):
            return None
        await q.consume("verbose", handler, drain=True, verbose=%s)
        print("JOB", job_id)

asyncio.run(main(sys.argv[1]))
"""


def _run(url: str, verbose: bool) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT % verbose, url],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return proc.stdout


def test_verbose_prints_without_logging_config(omniq_redis_url: str) -> None:
    out = _run(omniq_redis_url, True)
    job_id = out.split("JOB ")[1].strip()
    assert f"reserved verbose/{job_id} attempt 1/3" in out
    assert f"completed verbose/{job_id}" in out


def test_quiet_without_verbose(omniq_redis_url: str) -> None:
    out = _run(omniq_redis_url, False)
    assert "reserved" not in out
    assert out.startswith("JOB ")
