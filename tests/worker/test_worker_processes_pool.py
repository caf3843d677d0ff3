"""processes=N: plain handlers run in a pool of spawned processes."""

from __future__ import annotations

import os

import pytest
from proc_handlers import cpu_handler, failing_handler

from omniq import InvalidArgument
from omniq.aio.worker import Worker


async def test_handlers_run_in_other_processes(omniq):
    ids = await omniq.publish_many("cpu", [{"n": 1000 + i} for i in range(6)])
    worker = await omniq.consume("cpu", cpu_handler, concurrency=3, drain=True, processes=2,
                                 handle_signals=False)
    assert worker.stats.completed == 6
    for i, job_id in enumerate(ids):
        result = await omniq.result("cpu", job_id)
        n = 1000 + i
        assert result["total"] == sum(k * k for k in range(n))
        assert result["pid"] != os.getpid()
        assert result["exec"] is True  # no exec in a process: it cannot reach the loop
        assert result["job"] == job_id


async def test_process_handler_failure_is_retried_like_any_other(omniq):
    job_id = await omniq.publish("cpu", {"n": 7}, max_attempts=2, backoff_ms=0)
    worker = await omniq.consume("cpu", failing_handler, drain=True, processes=1,
                                 handle_signals=False)
    info = await omniq.get_job("cpu", job_id)
    assert info.state == "failed"
    assert info.attempt == 2
    assert info.last_error_line == "ValueError: bad input 7"
    assert "Traceback" in info.last_error  # the process's traceback travels with the error
    assert worker.stats.retried == 1


async def test_processes_needs_a_plain_handler(omniq):
    async def handler(ctx):
        return None

    with pytest.raises(InvalidArgument, match="plain"):
        Worker(omniq, "cpu", handler, processes=2)
    with pytest.raises(InvalidArgument, match="processes"):
        Worker(omniq, "cpu", cpu_handler, processes=0)
