"""Virtual environments of the peers (under ``benchmarks/.venvs/``, gitignored) and the Node
project of BullMQ (``benchmarks/node/``, ``node_modules`` gitignored).

Every Python peer gets its own environment, built once (marker file keyed by the package
list) and reused. The official OmniQ SDK has the same import name as this package, so it is
never installed next to it. Every Python peer also gets ``hiredis``: redis-py uses it when it
is there, as it does for us, so no peer is measured with the pure-Python parser.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
NODE_DIR = HERE / "node"
PEERS_DIR = HERE / "peers"


@dataclass(frozen=True)
class PeerEnv:
    """A Python peer: its venv name, pip requirements and the distributions to report."""

    name: str
    requirements: tuple[str, ...]
    report: tuple[str, ...]


PY_ENVS: dict[str, PeerEnv] = {
    "official": PeerEnv("official", ("omniq==4.0.0", "hiredis"), ("omniq", "redis", "hiredis")),
    "arq": PeerEnv("arq", ("arq==0.28.0", "hiredis"), ("arq", "redis", "hiredis")),
    # saq 0.26.4 imports typing_extensions without declaring it
    "saq": PeerEnv("saq", ("saq[redis]==0.26.4", "hiredis", "typing_extensions"),
                   ("saq", "redis", "hiredis")),
    "taskiq": PeerEnv(
        "taskiq", ("taskiq==0.13.0", "taskiq-redis==1.2.4", "hiredis"),
        ("taskiq", "taskiq-redis", "redis", "hiredis"),
    ),
    "rq": PeerEnv("rq", ("rq==2.12.0", "hiredis"), ("rq", "redis", "hiredis")),
    "bullmq": PeerEnv("bullmq", ("bullmq==3.4.4", "hiredis"), ("bullmq", "redis", "hiredis")),
    "tools": PeerEnv("tools", ("py-spy==0.4.3",), ("py-spy",)),
}

NODE_BULLMQ = "6.7.0+ioredis-5.11.1"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus what could put this repository or another venv on sys.path."""
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                     "PYTHONUSERBASE", "PYTHONSAFEPATH", "PYTHONDEVMODE")
    }
    env.update(extra)
    return env


def venv_dir(name: str) -> Path:
    return VENVS / name


def venv_python(name: str) -> Path:
    return venv_dir(name) / "bin" / "python"


def _stamp(env: PeerEnv) -> str:
    key = json.dumps([env.requirements, sys.version_info[:2]])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _base_python() -> str:
    # a venv made from inside a venv is based on the base interpreter anyway; be explicit
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_venv(name: str, log: bool = True) -> Path:
    """Create (or reuse) the venv of peer ``name``; returns its interpreter."""
    env = PY_ENVS[name]
    target = venv_dir(name)
    marker = target / ".bench-ready"
    stamp = _stamp(env)
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text().strip() == stamp and venv_python(name).exists():
            return venv_python(name)
        if log:
            print(f"[setup] creating {target} ({' '.join(env.requirements)})", flush=True)
        if target.exists():
            shutil.rmtree(target)
        subprocess.run([_base_python(), "-m", "venv", str(target)], check=True,
                       env=clean_env())
        subprocess.run(
            [str(venv_python(name)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *env.requirements],
            check=True, env=clean_env(),
        )
        marker.write_text(stamp + "\n")
    return venv_python(name)


def venv_versions(name: str) -> dict[str, str]:
    """Installed versions of the distributions of interest in a peer venv."""
    env = PY_ENVS[name]
    code = (
        "import importlib.metadata as m, json, sys\n"
        f"names = {list(env.report)!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "out['python'] = sys.version.split()[0]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(venv_python(name)), "-I", "-c", code], capture_output=True,
                          text=True, check=True, env=clean_env(), cwd=str(venv_dir(name)))
    versions: dict[str, str] = json.loads(proc.stdout)
    return versions


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_node(log: bool = True) -> Path | None:
    """Install BullMQ for Node in benchmarks/node; None without node."""
    if not node_available():
        return None
    marker = NODE_DIR / "node_modules" / ".bench-ready"
    if marker.is_file() and marker.read_text().strip() == NODE_BULLMQ:
        return NODE_DIR
    if log:
        print(f"[setup] npm install in {NODE_DIR} (bullmq {NODE_BULLMQ})", flush=True)
    # `npm install` honours package-lock.json; `npm ci` rejects this lock file (npm's
    # platform-specific optional dependencies of msgpackr-extract are not all listed in it)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=NODE_DIR, check=True, env=clean_env())
    marker.write_text(NODE_BULLMQ + "\n")
    return NODE_DIR


def node_versions() -> dict[str, str]:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    versions = {"node": out.stdout.strip()}
    pkg = NODE_DIR / "node_modules" / "bullmq" / "package.json"
    if pkg.is_file():
        versions["bullmq"] = json.loads(pkg.read_text())["version"]
    pkg = NODE_DIR / "node_modules" / "ioredis" / "package.json"
    if pkg.is_file():
        versions["ioredis"] = json.loads(pkg.read_text())["version"]
    return versions
