"""Dump the public API of the official OmniQ Python package (PyPI ``omniq``) as JSON.

Run ONLY with the official client's own virtual environment, isolated from this repository::

    <official-venv>/bin/python -I tests/interop/official_api_dump.py

It imports every module of the installed ``omniq`` package and describes, with ``ast`` (what
a module defines itself, not what it imports) and ``inspect``: its public classes (methods
with each parameter's name, kind and default; properties; dataclass fields), functions and
other top-level names. It reads the package; it contains none of its code. Output: the last
stdout line is ``OMNIQ-DRIVER-RESULT <json>``, the format of ``official_driver.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import os
import pkgutil
import sys
from typing import Any

RESULT_MARK = "OMNIQ-DRIVER-RESULT "
KEPT_DUNDERS = ("__init__", "__enter__", "__exit__", "__call__", "__iter__")


def signature(fn: Any) -> list[dict[str, Any]] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [
        {"name": p.name, "kind": p.kind.name,
         "default": None if p.default is inspect.Parameter.empty else repr(p.default),
         "has_default": p.default is not inspect.Parameter.empty}
        for p in sig.parameters.values()
    ]


def describe_class(cls: type) -> dict[str, Any]:
    methods: dict[str, Any] = {}
    properties: list[str] = []
    for klass in reversed([k for k in cls.__mro__ if k is not object]):
        for name, member in vars(klass).items():
            if name.startswith("_") and name not in KEPT_DUNDERS:
                continue
            if isinstance(member, property):
                properties.append(name)
            elif isinstance(member, (staticmethod, classmethod)):
                methods[name] = signature(getattr(cls, name))
            elif inspect.isfunction(member):
                methods[name] = signature(member)
    fields = ([f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls)
              else [])
    return {"kind": "class", "methods": methods, "properties": sorted(set(properties)),
            "fields": fields}


def defined_names(module: Any) -> list[str]:
    """Top-level public names a module defines (classes, functions, assignments)."""
    if getattr(module, "__all__", None) is not None and module.__name__ == "omniq":
        return list(module.__all__)
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py"):
        return []
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_")]


def describe(obj: Any) -> dict[str, Any]:
    if inspect.isclass(obj):
        return describe_class(obj)
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return {"kind": "function", "params": signature(obj)}
    return {"kind": "value", "repr": repr(obj)[:200]}


def main() -> None:
    import omniq

    here = os.path.realpath(omniq.__file__)
    if not here.startswith(os.path.realpath(sys.prefix) + os.sep):
        raise SystemExit(f"not the official package: {here}")
    names = ["omniq", *sorted("omniq." + m.name for m in pkgutil.iter_modules(omniq.__path__))]
    modules: dict[str, Any] = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # a module that does not import is reported, not fatal
            modules[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        modules[name] = {n: describe(getattr(module, n)) for n in defined_names(module)
                         if hasattr(module, n)}
    version = importlib.metadata.version("omniq")
    print(RESULT_MARK + json.dumps({"version": version, "file": here, "modules": modules}))


if __name__ == "__main__":
    import importlib.metadata

    main()
