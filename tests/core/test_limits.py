"""Limits shared by the Python and Lua sides have one value (no server needed)."""

from __future__ import annotations

import re
from importlib import resources

from omniq import _limits
from omniq._scripts import SCRIPTS

LUA_ONLY = {"DEPS_REPAIR_MS", "MAX_GROUP_POPS", "MAX_ORPHAN_SKIPS", "MAX_UNPARK",
            "MAX_EXPIRED_PER_CALL"}  # bounds on one reservation's work


def _lib() -> str:
    return (resources.files("omniq") / "lua" / "lib.lua").read_text(encoding="utf-8")


def test_lua_constants_equal_the_python_ones() -> None:
    found = dict(re.findall(r"^local ([A-Z][A-Z0-9_]*) = (-?\d+)$", _lib(), re.M))
    assert {k: int(v) for k, v in found.items() if k not in LUA_ONLY} == _limits.LUA_SHARED
    assert set(found) - set(_limits.LUA_SHARED) == LUA_ONLY


def test_scripts_spell_no_shared_limit_as_a_literal() -> None:
    literals = {str(v) for v in _limits.LUA_SHARED.values() if v > 100}
    for name in sorted(p.name for p in (resources.files("omniq") / "lua").iterdir()):
        if not name.endswith(".lua") or name == "lib.lua":
            continue
        text = (resources.files("omniq") / "lua" / name).read_text(encoding="utf-8")
        code = re.sub(r"--[^\n]*", "", text)
        for lit in literals:
            assert not re.search(rf"\b{lit}\b", code), f"{name} spells {lit}: use the constant"


def test_every_script_gets_the_constants() -> None:
    for script in SCRIPTS.values():
        assert "local MAX_INT = 9007199254740991" in script.source, script.name


def test_python_side_uses_the_owner() -> None:
    from omniq import _keys, codec
    from omniq.aio import client

    assert _keys.MAX_ID_LENGTH is _limits.MAX_ID_LENGTH
    assert codec.MAX_ERROR_BYTES is _limits.MAX_ERROR_BYTES
    assert client.DEFAULT_TIMEOUT_MS == _limits.DEFAULT_TIMEOUT_MS == 30_000
    assert _limits.FALLBACK_LEASE_MS == 60_000  # the v1 rule for stored timeouts <= 0


def test_every_constant_a_script_uses_is_defined() -> None:
    """An undefined UPPER_CASE name is nil in Lua: arithmetic on it fails only at run time
    (heartbeat.lua once used DEFAULT_TIMEOUT_MS, which only the Python side has)."""
    lib = _lib()
    defined = set(re.findall(r"^local ([A-Z][A-Z0-9_]*) =", lib, re.M))
    for name in sorted(p.name for p in (resources.files("omniq") / "lua").iterdir()):
        if not name.endswith(".lua"):
            continue
        text = (resources.files("omniq") / "lua" / name).read_text(encoding="utf-8")
        code = re.sub(r"--[^\n]*|'[^'\n]*'", "", text)
        own = set(re.findall(r"^local ([A-Z][A-Z0-9_]*)", code, re.M))
        own |= {n for line in re.findall(r"^local ([A-Z_][A-Z0-9_, ]*) =", code, re.M)
                for n in re.split(r",\s*", line)}
        used = set(re.findall(r"\b([A-Z][A-Z0-9_]{2,})\b", code)) - {"ARGV", "KEYS"}
        assert used <= defined | own, f"{name} uses undefined {sorted(used - defined - own)}"
