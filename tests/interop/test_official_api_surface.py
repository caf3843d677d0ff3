"""omniq is a drop-in for the official OmniQ Python package: its public API exists here.

``official_api_dump.py`` runs in the official package's own venv and dumps, as JSON, every
public module of ``omniq`` 4.0.0 (classes with their methods' parameters, properties and
dataclass fields; functions; other names). This test imports the same module paths from
this checkout and checks that every module, name, method, field and parameter exists, that
a parameter the official API takes by position is taken at the same position here, that
every parameter with a default has one here, that nothing here is required that the
official API does not require, and that defaults are equal except where
``DEFAULT_DIFFERENCES`` says why. On failure it prints the whole list of differences.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest
from interop_util import HERE, clean_env, parse_result

pytestmark = pytest.mark.interop

DUMP = HERE / "official_api_dump.py"

# Official modules that are implementation details, not API: (module, reason)
INTERNAL_MODULES = {
    "omniq._ops": "private (underscore) module",
    "omniq.monitor_core": "the engine behind QueueMonitor; not exported, not documented",
    "omniq.scripts": "script loading; ours is omniq._scripts",
    "omniq.transport": "redis client construction; ours is omniq.aio._connect",
    "omniq.helper": "key and name helpers of the official internals "
                    "(OmniqClient.queue_base is the public one)",
    "omniq.clock": "the official internals' wall clock (ours: omniq._protocol.common)",
}
# Official names that are internals of a public module: (module, name) -> reason
INTERNAL_NAMES = {
    ("omniq.consumer", "StopController"): "state of the official loop's signal handlers",
    ("omniq.consumer", "HeartbeatHandle"): "the official loop's heartbeat thread",
    ("omniq.consumer", "start_heartbeater"): "the official loop's heartbeat thread",
}
# Official members that are internals, in whichever module the class is reached from
INTERNAL_MEMBERS = {
    "OmniqClient.ops": "the official client's internal OmniqOps object",
}
# Classes users construct: their __init__ parameters are compared. The other classes are
# results and contexts the library builds (users read them): their fields are compared.
CONSTRUCTED = {"OmniqClient", "QueueMonitor"}
# A ``**options: Unpack[TypedDict]`` keyword's default is the wrapped function's (compared
# there), so it is not compared here
_FORWARDED = object()
# (qualified name, parameter) -> (our default, reason); the same in every module that
# exports the name (``omniq.consume`` is ``omniq.consumer.consume``)
_OURS_TIMING = ("None: omniq's own timing, unchanged unless given (docs/sync.md, the table "
                "'official parameter -> what omniq does with it')")
DEFAULT_DIFFERENCES: dict[tuple[str, str], tuple[Any, str]] = {
    ("OmniqClient.consume", "drain"): (
        False, "the seeds document drain=False as the long-running consumer and drain=True "
               "as 'exits once the queue is empty'; a default of True would make the seeds' "
               "consumer.py (no drain argument) exit at once (docs/sync.md)"),
    ("OmniqClient.consume", "logger"): (
        None, "None: verbose lines go to the 'omniq' logger, printed to stdout when logging "
              "is not configured (what print does for the official loop)"),
    **{("OmniqClient.consume", p): (None, _OURS_TIMING)
       for p in ("poll_interval_s", "promote_interval_s", "promote_batch", "reap_interval_s",
                 "reap_batch")},
    ("OmniqClient.__init__", "host"): (
        "127.0.0.1", "the official None means redis-py's default, localhost: the same server"),
}
DEFAULT_DIFFERENCES.update({("consume", p): v for (q, p), v in list(DEFAULT_DIFFERENCES.items())
                            if q == "OmniqClient.consume"})


def official_api(official_python: Path, official_cwd: Path) -> dict[str, Any]:
    out = subprocess.run([str(official_python), "-I", str(DUMP)], capture_output=True,
                         text=True, cwd=official_cwd, env=clean_env(), timeout=120)
    result: dict[str, Any] = parse_result(out.returncode, out.stdout, out.stderr)
    return result


def _attributes(cls: type) -> set[str]:
    names = set(dir(cls))
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        names.update([slots] if isinstance(slots, str) else slots)
        names.update(vars(klass).get("__annotations__", {}))
    if dataclasses.is_dataclass(cls):
        names.update(f.name for f in dataclasses.fields(cls))
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        names.update(cls.__struct_fields__)
    return names


def _params(fn: Any) -> list[inspect.Parameter]:
    """The parameters of ``fn``; ``**kw: Unpack[TypedDict]`` counts as its keywords."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
    out: list[inspect.Parameter] = []
    for p in inspect.signature(fn).parameters.values():
        ann = hints.get(p.name, p.annotation)
        if p.kind is p.VAR_KEYWORD and typing.get_origin(ann) is typing.Unpack:
            keys = typing.get_type_hints(typing.get_args(ann)[0])
            out += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=_FORWARDED)
                    for n in keys]
        else:
            out.append(p)
    return out


def compare_params(where: str, key: tuple[str, str], theirs: list[dict[str, Any]] | None,
                   ours_fn: Any, diffs: list[str]) -> None:
    if theirs is None:
        return
    try:
        ours = _params(ours_fn)
    except (TypeError, ValueError):
        diffs.append(f"{where}: no signature here")
        return
    by_name = {p.name: p for p in ours}
    positional = [p.name for p in ours
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    their_positional = [t["name"] for t in theirs
                        if t["kind"] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    their_names = {t["name"] for t in theirs}
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in ours)
    for t in theirs:
        name = t["name"]
        if t["kind"] in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        p = by_name.get(name)
        if p is None:
            diffs.append(f"{where}: parameter {name!r} missing (official: "
                         f"{t['kind'].lower()}, default {t['default']})")
            continue
        if t["kind"] == "POSITIONAL_OR_KEYWORD" and name not in ("self", "cls"):
            i = their_positional.index(name)
            if i >= len(positional) or positional[i] != name:
                diffs.append(f"{where}: {name!r} is official positional #{i}; here "
                             f"{p.kind.name.lower()}")
        if p.kind is p.POSITIONAL_ONLY:
            diffs.append(f"{where}: {name!r} is positional-only here")
        if t["has_default"]:
            if p.default is inspect.Parameter.empty:
                diffs.append(f"{where}: {name!r} is required here, official default "
                             f"{t['default']}")
                continue
            allowed = DEFAULT_DIFFERENCES.get((key[1], name))
            if (p.default is not _FORWARDED and repr(p.default) != t["default"]
                    and (allowed is None or allowed[0] != p.default)):
                diffs.append(f"{where}: {name!r} default {p.default!r} here, official "
                             f"{t['default']}")
    for p in ours:
        if (p.name not in their_names and p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
                and not has_var_kw):
            diffs.append(f"{where}: {p.name!r} is required here and unknown to the official API")


def compare(api: dict[str, Any]) -> list[str]:
    diffs: list[str] = []
    for mod_name, names in api["modules"].items():
        if mod_name in INTERNAL_MODULES:
            continue
        if "error" in names and isinstance(names["error"], str):
            continue  # the official module does not import itself
        try:
            ours_mod = importlib.import_module(mod_name)
        except ImportError as exc:
            diffs.append(f"module {mod_name}: {type(exc).__name__}: {exc}")
            continue
        for name, desc in names.items():
            if (mod_name, name) in INTERNAL_NAMES:
                continue
            where = f"{mod_name}.{name}"
            if not hasattr(ours_mod, name):
                diffs.append(f"{where}: missing ({desc['kind']})")
                continue
            obj = getattr(ours_mod, name)
            if desc["kind"] == "function":
                if not callable(obj):
                    diffs.append(f"{where}: not callable here")
                else:
                    compare_params(where, (mod_name, name), desc["params"], obj, diffs)
            elif desc["kind"] == "class":
                if not inspect.isclass(obj):
                    diffs.append(f"{where}: not a class here")
                    continue
                attrs = _attributes(obj)
                for field in desc["fields"] + desc["properties"]:
                    if field.startswith("_") or f"{name}.{field}" in INTERNAL_MEMBERS:
                        continue
                    if field not in attrs:
                        diffs.append(f"{where}.{field}: field missing")
                for meth, params in desc["methods"].items():
                    if f"{name}.{meth}" in INTERNAL_MEMBERS:
                        continue
                    if meth == "__init__" and name not in CONSTRUCTED:
                        continue
                    if meth not in attrs or not callable(getattr(obj, meth, None)):
                        diffs.append(f"{where}.{meth}(): method missing")
                        continue
                    if meth in ("__enter__", "__exit__"):
                        continue
                    compare_params(f"{where}.{meth}()", (mod_name, f"{name}.{meth}"), params,
                                   getattr(obj, meth), diffs)
    return diffs


def test_official_public_api_exists_here(official_python: Path, official_cwd: Path) -> None:
    api = official_api(official_python, official_cwd)
    assert api["version"] == "4.0.0"
    diffs = compare(api)
    assert not diffs, ("the official omniq 4.0.0 API differs here:\n  "
                       + "\n  ".join(diffs))


def test_the_walk_sees_the_documented_surface(official_python: Path,
                                              official_cwd: Path) -> None:
    """The dump is not vacuous: the names of the official README are in it."""
    api = official_api(official_python, official_cwd)["modules"]
    assert {"OmniqClient", "QueueMonitor", "consume", "JobCtx"} <= set(api["omniq"])
    client = api["omniq.client"]["OmniqClient"]["methods"]
    assert {"publish", "publish_json", "consume", "reserve", "ack_fail"} <= set(client)
    assert "now_ms_override" in {p["name"] for p in client["publish"]}
    assert "lane_page" in api["omniq.monitor"]["QueueMonitor"]["methods"]
    assert "idx_score_ms" in api["omniq.monitor_models"]["LaneJob"]["fields"]
    unused = (set(INTERNAL_MODULES) | {m for m, _ in INTERNAL_NAMES}) - set(api)
    assert not unused, f"INTERNAL_MODULES names modules the package does not have: {unused}"


def test_our_queue_monitor_answers_like_the_official_one(official: Any,
                                                          omniq_redis_url: str) -> None:
    """Same queue, both monitors: every stat, lane row, group and job record is equal."""
    from dataclasses import asdict

    from interop_util import driver_jobs, job_mix

    from omniq import OmniqClient
    from omniq.monitor import QueueMonitor

    queue = "mon-x"
    jobs = job_mix("mx")
    official.run({"op": "publish", "queue": queue, "jobs": driver_jobs(jobs)})
    gids = sorted({j["gid"] for j in jobs if j.get("gid")})
    with OmniqClient(redis_url=omniq_redis_url) as uq:
        for _ in range(3):  # some active jobs, one failed for good, one completed
            job = uq.reserve(queue=queue)
            assert job is not None
        uq.ack_success(queue=queue, job_id=job.job_id, lease_token=job.lease_token)
        failing = uq.reserve(queue=queue)
        assert failing is not None
        uq.ack_fail(queue=queue, job_id=failing.job_id, lease_token=failing.lease_token,
                    error="boom", final=True)
        ids = [j["job_id"] for j in jobs]
        theirs = official.run({"op": "monitor", "queue": queue, "gids": gids, "job_ids": ids})
        mon = QueueMonitor(uq)
        lanes: dict[str, list[dict[str, Any]]] = {}
        for lane in ("wait", "active", "delayed", "failed", "completed"):
            rows: list[dict[str, Any]] = []
            offset = 0
            while True:
                page = mon.lane_page(queue, lane, offset=offset, limit=25)
                rows += [asdict(x) for x in page]
                if len(page) < 25:
                    break
                offset += 25
            lanes[lane] = rows
        ours = {
            "stats": asdict(mon.stats(queue)),
            "queues": mon.scan_queues(),
            "groups_ready": [asdict(g) for g in mon.groups_ready_with_scores(queue, limit=500)],
            "group_status": [asdict(g) for g in mon.group_status(queue, gids)],
            "lanes": lanes,
            "jobs": {j: (None if (i := mon.get_job(queue, j)) is None else asdict(i))
                     for j in ids},
        }
    assert sum(len(v) for v in ours["lanes"].values()) == len(jobs)
    for key in ("stats", "queues", "groups_ready", "group_status", "lanes", "jobs"):
        assert ours[key] == theirs[key], key
