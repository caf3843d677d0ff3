"""Fixtures of the interop suite: the official OmniQ client in its own virtual environment.

``official_python`` (session) creates or reuses ``<repo>/.venvs/official-omniq-4.0.0`` (see
``interop_util.ensure_official_venv``); ``official`` runs driver commands on the test
database. ``omniq``, ``raw`` and ``omniq_redis_url`` come from omniq.testing.pytest_plugin and
tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from interop_util import ROOT, Official, ensure_official_venv


@pytest.fixture(scope="session")
def official_python() -> Path:
    """The official venv's interpreter; checks that it imports the official package."""
    python = ensure_official_venv()
    return python


@pytest.fixture(scope="session")
def official_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory for the driver, outside the repository."""
    cwd = tmp_path_factory.mktemp("official-cwd")
    assert ROOT not in cwd.resolve().parents
    return cwd


@pytest.fixture
def official(official_python: Path, official_cwd: Path, omniq_redis_url: str) -> Official:
    """Runs official_driver.py commands against the (flushed) test database."""
    return Official(official_python, omniq_redis_url, official_cwd)
