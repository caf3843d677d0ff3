"""Parent/child completion counters: childs_init / child_ack."""

from __future__ import annotations

import pytest
from core_util import run_script

from omniq import CounterError, InvalidArgument


async def test_count_down_idempotent(omniq, raw):
    await omniq.childs_init("parent", 3)
    assert raw.get("{cc:parent}:count") == "3"
    # the client's child_ttl_ms (7 days) by default; tests/reliability/growth covers the rest
    assert 7 * 86_400_000 - 60_000 < raw.pttl("{cc:parent}:count") <= 7 * 86_400_000
    assert await omniq.child_ack("parent", "c1") == 2
    assert await omniq.child_ack("parent", "c1") == 2  # repeat: not counted twice
    assert raw.smembers("{cc:parent}:done") == {"c1"}
    assert await omniq.child_ack("parent", "c2") == 1
    assert await omniq.child_ack("parent", "c3") == 0
    assert raw.exists("{cc:parent}:count", "{cc:parent}:done") == 0
    assert raw.get("{cc:parent}:finished") == "1"
    assert raw.pttl("{cc:parent}:finished") > 0  # the marker expires


async def test_late_repeat_after_completion_returns_zero(omniq):
    await omniq.childs_init("p", 1)
    assert await omniq.child_ack("p", "only") == 0
    assert await omniq.child_ack("p", "only") == 0
    assert await omniq.child_ack("p", "someone-else") == 0


async def test_no_counter(omniq, raw):
    # one contract for child_ack everywhere (client, ctx.exec, the official clients):
    # -1 when the counter does not exist, and nothing is written
    assert await omniq.child_ack("never", "c1") == -1
    assert raw.keys("{cc:never}*") == []


async def test_already_init(omniq, raw):
    await omniq.childs_init("p", 2)
    await omniq.child_ack("p", "a")
    with pytest.raises(CounterError) as ei:
        await omniq.childs_init("p", 5)
    assert ei.value.code == "ALREADY_INIT"
    assert raw.get("{cc:p}:count") == "1"  # untouched


async def test_reinit_after_completion(omniq, raw):
    await omniq.childs_init("p", 1)
    await omniq.child_ack("p", "a")
    await omniq.childs_init("p", 2)
    assert raw.exists("{cc:p}:finished") == 0
    assert await omniq.child_ack("p", "a") == 1  # a fresh round counts "a" again


async def test_ttl_ms(omniq, raw):
    await omniq.childs_init("p", 3, ttl_ms=60_000)
    pttl = raw.pttl("{cc:p}:count")
    assert 0 < pttl <= 60_000
    await omniq.child_ack("p", "a")
    assert 0 < raw.pttl("{cc:p}:done") <= 60_000
    assert 0 < raw.pttl("{cc:p}:count") <= 60_000  # DECR keeps the expiry


async def test_bad_arguments(omniq, raw):
    for bad in (0, -1):
        with pytest.raises(InvalidArgument):
            await omniq.childs_init("p", bad)
    for key in ("", "a{b", "x}", "k" * 129):
        with pytest.raises(InvalidArgument):
            await omniq.childs_init(key, 1)
    with pytest.raises(InvalidArgument):
        await omniq.child_ack("p", "")
    assert raw.dbsize() == 0


def test_script_level_codes(raw):
    assert run_script(raw, "childs_init", "{cc:k}:meta", "") == ["ERR", "NO_EXPECTED"]
    assert run_script(raw, "childs_init", "{cc:k}:meta", "0") == ["ERR", "BAD_EXPECTED"]
    assert run_script(raw, "childs_init", "{cc:k}:meta", "x") == ["ERR", "BAD_EXPECTED"]
    assert run_script(raw, "child_ack", "{cc:k}:meta", "") == ["ERR", "CHILD_REQUIRED"]
    assert raw.dbsize() == 0
