"""verbose=True prints the worker's log when the application configured no logging."""

from __future__ import annotations

import re
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


FAILING = """
import asyncio, logging, sys
from omniq import AsyncOmniq
%s

async def main(url):
    async with AsyncOmniq(url=url) as q:
        job_id = await q.publish("loud", {"a": 1}, max_attempts=2, backoff_ms=0)
        async def handler(ctx):
            raise ValueError("boom " + str(ctx.attempt))
        await q.consume("loud", handler, drain=True)
        print("JOB", job_id)

asyncio.run(main(sys.argv[1]))
"""


def _run_failing(url: str, config: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", FAILING % config, url],
        capture_output=True, text=True, timeout=60, check=True,
    )


def test_failures_are_logged_with_traceback_without_verbose(omniq_redis_url: str) -> None:
    """verbose=False, logging configured: the retry is a WARNING, the failure for good an
    ERROR, each with the handler's traceback and the retry's due time for people."""
    proc = _run_failing(
        omniq_redis_url,
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, "
        "format='%(levelname)s %(message)s')")
    job_id = proc.stdout.split("JOB ")[1].strip()
    err = proc.stderr
    assert f"WARNING omniq: loud/{job_id} failed (attempt 1/2), will retry " in err
    assert "ValueError: boom 1" in err
    assert f"ERROR omniq: loud/{job_id} failed for good (attempt 2/2): ValueError: boom 2" in err
    assert err.count("Traceback (most recent call last):") == 2
    assert 'in handler' in err  # the handler's own frame
    # the due time is relative and ISO, not raw epoch milliseconds
    when = r"will retry (in \d+\.\d s|\d+\.\d s ago) \(\d{4}-\d\d-\d\dT\d\d:\d\d:[\d.]+Z\)"
    assert re.search(when, err), err
    assert "reserved loud/" not in err  # the per-job INFO lines need verbose=True


def test_failures_reach_stderr_with_no_logging_configured(omniq_redis_url: str) -> None:
    proc = _run_failing(omniq_redis_url, "")
    assert "failed for good (attempt 2/2): ValueError: boom 2" in proc.stderr
    assert "Traceback (most recent call last):" in proc.stderr
