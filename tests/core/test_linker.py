"""The script linker includes exactly the library functions an operation uses."""

from __future__ import annotations

import re

from omniq._scripts import SCRIPTS, link, split_library

LIB = """local K = KEYS[1]
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


def test_link_follows_calls_and_ignores_comments_and_strings() -> None:
    src = link(LIB, "return two(1) -- three\nlocal s = 'three'")
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
