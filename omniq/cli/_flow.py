"""``omniq flow QUEUE ID``: a job and the jobs it depends on, as a tree (docs/cli.md).

One public call, ``AsyncOmniq.get_flow``; the rest is output. A flow can be a chain
thousands of jobs deep, so both outputs walk the tree with a stack, never recursively.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from omniq.cli import EXIT_FAILED, EXIT_OK, CliError
from omniq.cli._commands import _client, _run

if TYPE_CHECKING:
    from omniq.types import FlowInfo

# what a parent records for a dependency in a given state, when nothing is unusual
_EXPECTED = {"completed": "completed", "failed": "failed"}
_FIELDS = ("queue", "job_id", "state", "dependency_state")


def cmd_flow(args: argparse.Namespace) -> int:
    return _run(_flow(args))


async def _flow(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        flow = await client.get_flow(args.queue, args.job_id, max_nodes=args.max_nodes)
    if flow is None:
        raise CliError(f"no job {args.job_id} in {args.queue}", EXIT_FAILED)
    if args.json:
        print(flow_json(flow))
    else:
        for line in flow_tree(flow):
            print(line)
    return EXIT_OK


def _label(node: FlowInfo, shown: set[tuple[str, str]]) -> str:
    text = f"{node.queue}:{node.job_id}  {node.state}"
    seen = node.dependency_state
    if seen is not None and seen != _EXPECTED.get(node.state, "pending"):
        text += f"  (dependency: {seen})"
    if node.truncated:
        if not node.children and (node.queue, node.job_id) in shown:
            text += "  (dependencies shown above)"
        else:
            text += "  (more dependencies not shown: --max-nodes)"
    return text


def flow_tree(root: FlowInfo) -> Iterator[str]:
    """The lines of the tree, as ``tree`` draws one: ``queue:id  state``, and the state the
    parent records for the dependency when it is not the one its state implies
    (``pending`` for a job not finished)."""
    shown: set[tuple[str, str]] = set()  # jobs printed with their dependencies
    stack: list[tuple[FlowInfo, str, str]] = [(root, "", "")]  # node, branch, child prefix
    while stack:
        node, branch, prefix = stack.pop()
        yield branch + _label(node, shown)
        if node.children:
            shown.add((node.queue, node.job_id))
        last = len(node.children) - 1
        for i, child in reversed(list(enumerate(node.children))):
            stack.append((child, prefix + ("└── " if i == last else "├── "),
                          prefix + ("    " if i == last else "│   ")))


def flow_json(root: FlowInfo) -> str:
    """``json.dumps(msgspec.to_builtins(root), indent=2)``, written without recursion (the
    encoders stop a few hundred levels deep); on one line when the tree is more than
    ``_INDENT_DEPTH`` levels deep (the indentation of a long chain would grow with the
    square of its length)."""
    step, sep = ("  ", "\n") if _depth(root) <= _INDENT_DEPTH else ("", "")
    return sep.join(_json_lines(root, step))


_INDENT_DEPTH = 100


def _depth(root: FlowInfo) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack += [(child, depth + 1) for child in node.children]
    return deepest


def _json_lines(root: FlowInfo, step: str) -> Iterator[str]:
    stack: list[str | tuple[FlowInfo, str, str]] = [(root, "", "")]  # node, indent, after
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
            continue
        node, pad, after = item
        inner = pad + step
        yield pad + "{"
        for name in _FIELDS:
            value = json.dumps(getattr(node, name), ensure_ascii=False)
            yield f'{inner}"{name}": {value},'
        tail = [f'{inner}"truncated": {json.dumps(node.truncated)}', pad + "}" + after]
        if not node.children:
            yield f'{inner}"children": [],'
            yield from tail
            continue
        yield f'{inner}"children": ['
        stack += reversed(tail)
        stack.append(inner + "],")
        last = len(node.children) - 1
        stack += [(child, inner + step, "" if i == last else ",")
                  for i, child in reversed(list(enumerate(node.children)))]
