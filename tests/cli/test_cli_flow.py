"""``omniq flow`` and the dependencies shown by ``omniq job``, run as subprocesses against
the test server.

The dependency fields are written onto published jobs as the scripts write them
(tests/flow_util.py; tests/core/test_flow_reads.py tests the reads themselves).
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest
import redis
from flow_util import depend, set_state
from test_cli import cli, one_line_error

from omniq import AsyncOmniq

# the command holds no queue logic (it calls the client, which the core suite runs on
# every kind): one server kind is enough for its parsing and output
pytestmark = [pytest.mark.single_node, pytest.mark.kinds("redis")]


def cli_all(*calls: tuple[str, ...], url: str) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at once (a client command takes most of a second to start)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda args: cli(*args, url=url), calls))


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == ""
    return proc.stdout


def test_help() -> None:
    out = ok(cli("flow", "--help", url=None))
    assert "example:\n  omniq flow " in out
    assert "--max-nodes" in out
    assert "--json" in out
    assert "--url" in out
    assert "\n    flow " in ok(cli("--help", url=None))


async def flow_fixture(omniq: AsyncOmniq, raw: redis.Redis) -> dict[str, str]:
    """reports:top waits on steps:c1 (completed, itself after emails:leaf), steps:c2
    (running), steps:c3 (failed, ignored by the policy) and a job that was removed."""
    ids = {"leaf": await omniq.publish("emails", {"leaf": 1})}
    for name in ("c1", "c2", "c3"):
        ids[name] = await omniq.publish("steps", {"step": name})
    ids["top"] = await omniq.publish("reports", {"top": 1})
    depend(raw, ("steps", ids["c1"]), [("emails", ids["leaf"])], ["completed"],
           results={("emails", ids["leaf"]): '{"sent": 1}'})
    depend(raw, ("reports", ids["top"]),
           [("steps", ids["c1"]), ("steps", ids["c2"]), ("steps", ids["c3"]),
            ("steps", "gone")],
           ["completed", "pending", "ignored", "ignored"], policy="ignore",
           results={("steps", ids["c1"]): '{"rows": 3}'})
    raw.delete("{steps}:job:gone", "{steps}:job:gone:dependents")
    for q, name, state in (("emails", "leaf", "completed"), ("steps", "c1", "completed"),
                           ("steps", "c2", "active"), ("steps", "c3", "failed"),
                           ("reports", "top", "waiting_deps")):
        set_state(raw, (q, ids[name]), state)
    return ids


async def test_flow_tree_json_and_not_found(
    omniq: AsyncOmniq, omniq_redis_url: str, raw: redis.Redis
) -> None:
    ids = await flow_fixture(omniq, raw)
    top, c1, c2, c3, leaf = (ids[k] for k in ("top", "c1", "c2", "c3", "leaf"))
    tree, as_json, small, missing, bad = cli_all(
        ("flow", "reports", top), ("flow", "reports", top, "--json"),
        ("flow", "reports", top, "--max-nodes", "2"), ("flow", "reports", "nope"),
        ("flow", "reports", top, "--max-nodes", "0"), url=omniq_redis_url)
    assert ok(tree).splitlines() == [
        f"reports:{top}  waiting_deps",
        f"├── steps:{c1}  completed",
        f"│   └── emails:{leaf}  completed",
        f"├── steps:{c2}  active",
        f"├── steps:{c3}  failed  (dependency: ignored)",
        "└── steps:gone  missing  (dependency: ignored)",
    ]
    flow = await omniq.get_flow("reports", top)
    assert json.loads(ok(as_json)) == msgspec.to_builtins(flow)
    assert ok(small).splitlines() == [
        f"reports:{top}  waiting_deps  (more dependencies not shown: --max-nodes)",
        f"└── steps:{c1}  completed  (more dependencies not shown: --max-nodes)",
    ]
    one_line_error(missing, 1, r"^omniq flow: error: no job nope in reports$")
    assert bad.returncode == 2
    assert "--max-nodes" in bad.stderr


async def test_flow_of_a_shared_dependency_and_a_cycle(
    omniq: AsyncOmniq, omniq_redis_url: str, raw: redis.Redis
) -> None:
    a, b, c, d = [await omniq.publish("q", {"n": i}) for i in range(4)]
    depend(raw, ("q", a), [("q", b), ("q", c)], ["pending", "pending"])
    depend(raw, ("q", b), [("q", d)], ["pending"])
    depend(raw, ("q", c), [("q", d)], ["pending"])
    depend(raw, ("q", d), [("q", a)], ["pending"])  # a cycle: the scripts refuse one
    assert ok(cli("flow", "q", a, url=omniq_redis_url)).splitlines() == [
        f"q:{a}  wait",
        f"├── q:{b}  wait",
        f"│   └── q:{d}  wait",
        f"│       └── q:{a}  wait  (dependencies shown above)",
        f"└── q:{c}  wait",
        f"    └── q:{d}  wait  (dependencies shown above)",
    ]


async def test_job_shows_dependencies_and_dependents(
    omniq: AsyncOmniq, omniq_redis_url: str, raw: redis.Redis
) -> None:
    ids = await flow_fixture(omniq, raw)
    top, c1, c2, c3 = (ids[k] for k in ("top", "c1", "c2", "c3"))
    plain = await omniq.publish("steps", {"plain": 1})
    top_out, top_json, c1_out, c1_json, plain_out = cli_all(
        ("job", "reports", top), ("job", "reports", top, "--json"), ("job", "steps", c1),
        ("job", "steps", c1, "--json"), ("job", "steps", plain), url=omniq_redis_url)
    out = ok(top_out)
    assert "state:             waiting_deps" in out
    assert "deps_left:         1\ndep_policy:        ignore\n" in out
    assert ("dependencies:\n"
            f"  steps:{c1}  completed\n"
            f"  steps:{c2}  pending\n"
            f"  steps:{c3}  ignored\n"
            f"  steps:gone{' ' * (len(c1) - 4)}  ignored\n"
            "payload:\n") in out
    assert "dependents:" not in out
    record = json.loads(ok(top_json))
    assert record["depends_on"][0] == ["steps", c1]
    assert record["dependencies"][f"steps:{c2}"] == "pending"
    assert (record["deps_left"], record["dep_policy"]) == (1, "ignore")
    assert record["dependency_results"] == {f"steps:{c1}": {"rows": 3}}
    assert record["dependency_results_raw"] == {f"steps:{c1}": '{"rows": 3}'}
    out = ok(c1_out)
    assert f"dependents:\n  reports:{top}\npayload:\n" in out
    assert "dep_policy:        fail" in out  # c1 waits on the leaf with the default policy
    assert json.loads(ok(c1_json))["dependents"] == [["reports", top]]
    out = ok(plain_out)
    assert "depend" not in out
    assert "deps_left" not in out
