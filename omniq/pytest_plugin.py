"""Former home of :mod:`omniq.testing.pytest_plugin`; everything is re-exported here.

The ``pytest11`` entry point registers :mod:`omniq.testing.pytest_plugin`. This module is for
code that imports the fixtures, or names the plugin in ``pytest_plugins`` / ``-p`` (with
plugin autoloading disabled); registering both modules would add ``--omniq-server`` twice.
"""

from __future__ import annotations

from omniq.testing.pytest_plugin import (
    omniq,
    omniq_redis_url,
    omniq_server,
    omniq_server_factory,
    omniq_sync,
    pytest_addoption,
    pytest_generate_tests,
)

__all__ = [
    "omniq",
    "omniq_redis_url",
    "omniq_server",
    "omniq_server_factory",
    "omniq_sync",
    "pytest_addoption",
    "pytest_generate_tests",
]
