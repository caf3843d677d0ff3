"""The script linker includes exactly the library functions an operation uses."""

from __future__ import annotations

import re

import pytest
import redis

from omniq._scripts import LIBRARY, LIBRARY_NAME, SCRIPTS, library, link, split_library

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


# -- the Redis Functions library ------------------------------------------------------

FN_LIB = """local MAX = 10
local ANCHOR = KEYS[1]
local K_A = ANCHOR .. ':a'
local K_B = ANCHOR .. ':b'
local FIXED = {x = 1}
local state = {}
local head, tail = 1, 0
local function a() return K_A end
local function b() state[#state + 1] = K_B return FIXED.x end
"""


def test_library_runs_per_call_definitions_in_each_begin_and_the_rest_once() -> None:
    src, names = library(FN_LIB, {"one": "return a()", "two": "return b() + MAX"})
    name = src.split("\n", 1)[0].removeprefix("#!lua name=")
    assert names == {"one": f"{name}_one", "two": f"{name}_two"}
    head = src.split("local function a()")[0]
    # run once, at load: the constant and the table of fixed values
    assert "local MAX = 10" in head
    assert "local FIXED = {x = 1}" in head
    # declared once, assigned per call: what reads KEYS (directly or not) and the state
    assert "local ANCHOR, K_A, K_B, state, head, tail" in head
    begin_one = src.split("local function begin_one(keys, argv)\n")[1].split("\nend\n")[0]
    begin_two = src.split("local function begin_two(keys, argv)\n")[1].split("\nend\n")[0]
    assert begin_one.split("\n") == ["  KEYS, ARGV = keys, argv", "  ANCHOR = KEYS[1]",
                                     "  K_A = ANCHOR .. ':a'", "  head, tail = 1, 0"]
    assert "K_B = ANCHOR .. ':b'" in begin_two
    assert "state = {}" in begin_two  # fresh state on every call of a script that uses it
    assert "K_A" not in begin_two
    assert f"redis.register_function('{name}_two', function(keys, argv)\nbegin_two(keys, argv)" \
        in src


def test_library_name_follows_the_code() -> None:
    one, _ = library(FN_LIB, {"one": "return a()"})
    other, _ = library(FN_LIB, {"one": "return a() .. 'x'"})
    assert one.split("\n", 1)[0] != other.split("\n", 1)[0]
    assert LIBRARY.startswith(f"#!lua name={LIBRARY_NAME}\n")
    for script in SCRIPTS.values():  # every queue script is a function of the library
        assert (script.function is None) == (script.name in ("childs_init", "child_ack"))
        if script.function is not None:
            assert f"redis.register_function('{script.function}'," in LIBRARY


def _pairs(flat: list) -> dict:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def test_library_loads_and_its_functions_answer(raw) -> None:
    if isinstance(raw, redis.RedisCluster):
        pytest.skip("on a cluster the client calls the scripts (EVALSHA), not the library")
    raw.function_load(LIBRARY, replace=True)
    listed = _pairs(raw.function_list(library=LIBRARY_NAME)[0])
    assert {_pairs(f)["name"] for f in listed["functions"]} == {
        s.function for s in SCRIPTS.values() if s.function is not None}
    # a bad argument is refused by the function exactly as by the script
    key = "{lib-test}:meta"
    by_function = raw.execute_command("FCALL", SCRIPTS["reserve"].function, 1, key, "x")
    by_script = raw.execute_command("EVAL", SCRIPTS["reserve"].source, 1, key, "x")
    assert by_function == by_script == ["ERR", "BAD_ARGS", "now_ms"]
