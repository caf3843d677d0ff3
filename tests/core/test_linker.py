"""The script linker includes exactly the library functions an operation uses."""

from __future__ import annotations

import re

from omniq._scripts import SCRIPTS, link, split_library

LIB = """local K = KEYS[1]
local UNUSED = K .. ':unused'
local T = {a = 1,
  b = 2}
local function one(x) return x end
local function two(x)
  return one(x) + 1
end
-- three is mentioned in a comment only: 'three'
local function three(x)
  return 3
end
"""


def test_split_handles_one_line_functions() -> None:
    other, functions = split_library(LIB)
    assert list(functions) == ["one", "two", "three"]
    assert functions["one"] == "local function one(x) return x end"
    assert "local K = KEYS[1]" in other
    assert "local T = {a = 1,\n  b = 2}" in other  # a table runs until its braces balance


def test_link_follows_calls_and_ignores_comments_and_strings() -> None:
    src = link(LIB, "return two(1) + K -- three\nlocal s = 'three'")
    assert re.findall(r"local function (\w+)", src) == ["one", "two"]
    assert src.startswith("local K = KEYS[1]")


def test_link_without_queue_preamble() -> None:
    src = link(LIB, "return one(1)", queue=False)
    assert "KEYS[1]" not in src.split("return one(1)")[0]
    assert re.findall(r"local function (\w+)", src) == ["one"]


def test_shipped_scripts_define_only_what_they_call() -> None:
    for script in SCRIPTS.values():
        defined = re.findall(r"local function (\w+)", script.source)
        code = re.sub(r"--[^\n]*|'[^'\n]*'", "", script.source)
        for name in defined:
            uses = len(re.findall(rf"\b{name}\b", code))
            assert uses >= 2, f"{script.name} links {name} but never calls it"
    assert "local K_WAIT" not in SCRIPTS["child_ack"].source


def test_link_leaves_out_unused_definitions() -> None:
    src = link(LIB, "return T.a + two(1)")
    assert "local T = {a = 1,\n  b = 2}" in src
    assert "UNUSED" not in src
    assert "local K = KEYS[1]" not in src  # nothing linked uses K
    assert "local UNUSED" in link(LIB, "return UNUSED")
    assert "local K = KEYS[1]" in link(LIB, "return UNUSED")  # through UNUSED


def test_heartbeat_links_no_key_names_it_does_not_use() -> None:
    src = SCRIPTS["heartbeat"].source
    code = re.sub(r"--[^\n]*", "", src)
    assert "local K_RATE " not in code
    assert "local DEDUP_PREFIX" not in code
    assert "local K_ACTIVE" in code
