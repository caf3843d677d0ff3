"""Every example in examples/ runs as a script against the test server and says what it did."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from shared_util import without_slow_steps

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ULID = r"[0-9A-HJKMNP-TV-Z]{26}"


# what an example may log on stderr: the failures it provokes on purpose (omniq logs every
# failure, whatever ``verbose`` says)
EXPECTED_STDERR = {
    "publish_json": rf"omniq: orders/{ULID} failed for good \(attempt 1/3\): InvalidPayload: "
                    r"Expected `int`, got `str` - at `\$\.amount`\n",
}


def run_example(name: str, url: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMNIQ_REDIS_URL"}
    if url is not None:
        env["OMNIQ_REDIS_URL"] = url
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", str(EXAMPLES / f"{name}.py")],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # -X dev logs every event-loop step slower than 0.1 s; on a busy machine (the suite on
    # two cores) any step can be: that line is load, not a fault of the example
    stderr = without_slow_steps(proc.stderr)
    assert re.fullmatch(EXPECTED_STDERR.get(name, ""), stderr), stderr
    return proc.stdout.splitlines()


def check_quickstart(lines: list[str]) -> None:
    assert [x for x in lines if x.startswith("published ")] == [
        x for x in lines if re.fullmatch(f"published {ULID}", x)
    ]
    assert len([x for x in lines if x.startswith("published ")]) == 3
    for to in ("ada", "alan", "grace"):
        assert f"sending email to {to}@example.com (attempt 1)" in lines
    assert lines[-2:] == ["done: 3 jobs completed", "result of the last job: {'sent': True}"]


def check_publish_consume(lines: list[str]) -> None:
    processed = [x for x in lines if x.startswith("processing ")]
    assert [x.split(" (")[0] for x in processed] == [
        "processing {'n': 0}", "processing {'n': 1}", "processing {'n': 2}",
    ]
    assert lines[-2:] == ["completed 3 jobs", "waiting now: 0"]


def check_publish_json(lines: list[str]) -> None:
    assert lines[:3] == [
        "ORD-1: 10.00 USD tags=['priority']",
        "ORD-2: 2.50 EUR tags=None",
        "completed 2, failed 1",
    ]
    assert lines[3].startswith("ORD-3 failed: ")
    assert "amount" in lines[3]


def check_grouped_jobs(lines: list[str]) -> None:
    for tenant in ("acme", "globex"):
        reports = [x for x in lines if x.startswith(f"tenant:{tenant}: ")]
        assert reports == [f"tenant:{tenant}: report {n}" for n in range(3)]  # FIFO per group
    assert lines[-1] == (
        "most reports running at once per tenant: {'tenant:acme': 1, 'tenant:globex': 1}"
    )


def check_parent_child(lines: list[str]) -> None:
    assert lines[:2] == ["doc-1: split into 3 pages", "doc-2: split into 2 pages"]
    for doc, pages in (("doc-1", 3), ("doc-2", 2)):
        done = [i for i, x in enumerate(lines) if x.startswith(f"{doc}: page ")]
        assert len(done) == pages
        assert lines.count(f"{doc}: all pages done") == 1
        assert lines.index(f"{doc}: all pages done") > max(done)


def check_documents_pages(lines: list[str]) -> None:
    docs = (("doc-1", 3, 600), ("doc-2", 2, 300))
    assert len(lines) == sum(pages + 3 for _, pages, _ in docs)
    for doc, pages, words in docs:
        split = lines.index(f"{doc}: split into {pages} pages")
        done = [lines.index(f"{doc}: page {p} done") for p in range(1, pages + 1)]
        # the parent ran once, after every page, and got their results in page order
        summary = f"{doc}: all pages done (pages {list(range(1, pages + 1))}, {words} words)"
        assert lines.count(summary) == 1
        assert split < min(done)
        assert max(done) < lines.index(summary)
    assert lines[-2:] == [
        "doc-1: documents-done completed; its pages: completed, completed, completed",
        "doc-2: documents-done completed; its pages: completed, completed",
    ]


def check_pause_resume(lines: list[str]) -> None:
    assert lines == [
        "sent email 1",
        "rate limited: emails paused",
        "paused: True, waiting: 3",
        "emails resumed (was paused: True)",
        "sent email 2",
        "sent email 3",
        "sent email 4",
        "paused: False, waiting: 0",
    ]


def check_cli_handler(lines: list[str]) -> None:
    assert lines == [
        "sending email to ada@example.com (attempt 1)",
        "sending email to alan@example.com (attempt 1)",
        "building report weekly",
        "done: 3 jobs completed",
    ]


def check_fastapi_app(lines: list[str]) -> None:
    assert len(lines) == 2
    for line, image in zip(lines, ("a.png", "b.png"), strict=True):
        assert re.fullmatch(f"{ULID} {{'thumbnail': 'thumb-{re.escape(image)}'}}", line), line


def check_aiohttp_app(lines: list[str]) -> None:
    assert len(lines) == 2
    for line, image in zip(lines, ("a.png", "b.png"), strict=True):
        assert re.fullmatch(f"{ULID} {{'resized': 'small-{re.escape(image)}'}}", line), line


def check_schedules(lines: list[str]) -> None:
    assert re.fullmatch(r"nightly fires next at 02:30 Paris time", lines[0]), lines[0]
    # three consecutive occurrences, each run once, in order
    assert lines[1:4] == [f"heartbeat run {i + 1}: occurrence start + {i} s, payload "
                          "{'kind': 'heartbeat'}" for i in range(3)]
    assert lines[4].startswith("heartbeat: every 1000 ms, next paused, ")
    assert re.fullmatch(r"nightly: 30 2 \* \* \*, next \d{4}-\d\d-\d\d 0[01]:30 UTC, "
                        r"0 jobs published", lines[5]), lines[5]
    assert len(lines) == 6


CHECKS: dict[str, Callable[[list[str]], None]] = {
    "quickstart": check_quickstart,
    "publish_consume": check_publish_consume,
    "publish_json": check_publish_json,
    "grouped_jobs": check_grouped_jobs,
    "parent_child": check_parent_child,
    "documents_pages": check_documents_pages,
    "pause_resume": check_pause_resume,
    "cli_handler": check_cli_handler,
    "fastapi_app": check_fastapi_app,
    "aiohttp_app": check_aiohttp_app,
    "schedules": check_schedules,
}


def test_every_example_is_checked() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_docstring_says_how_to_run_it(name: str) -> None:
    """A user reading the example finds the install line and how it picks its server."""
    doc = ast.get_docstring(ast.parse((EXAMPLES / f"{name}.py").read_text())) or ""
    assert f"python examples/{name}.py" in doc
    assert "pip install" in doc
    assert "OMNIQ_REDIS_URL" in doc
    assert "When it is unset" in doc


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example(name: str, omniq_redis_url: str) -> None:
    for module in {"fastapi_app": ("fastapi", "httpx"), "aiohttp_app": ("aiohttp",)}.get(name, ()):
        pytest.importorskip(module)
    lines = run_example(name, omniq_redis_url)
    try:
        CHECKS[name](lines)
    except AssertionError as exc:
        raise AssertionError("\n".join(["output:", *lines])) from exc


def test_quickstart_starts_its_own_server() -> None:
    """The README's first command: no server configured, the example brings one."""
    check_quickstart(run_example("quickstart", None))
