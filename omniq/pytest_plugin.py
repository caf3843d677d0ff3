"""Former home of :mod:`omniq.testing.pytest_plugin`; everything is re-exported here.

The ``pytest11`` entry point registers :mod:`omniq.testing.pytest_plugin`. This module is for
code that imports the fixtures, or names the plugin in ``pytest_plugins`` / ``-p`` with plugin
autoloading disabled (naming it as well as the entry point fails, as naming the old module
did: ``--omniq-server`` would be added twice).
"""

from __future__ import annotations

from omniq.testing import pytest_plugin as _plugin
from omniq.testing.pytest_plugin import omniq as omniq
from omniq.testing.pytest_plugin import omniq_redis_url as omniq_redis_url
from omniq.testing.pytest_plugin import omniq_server as omniq_server
from omniq.testing.pytest_plugin import omniq_server_factory as omniq_server_factory
from omniq.testing.pytest_plugin import omniq_sync as omniq_sync
from omniq.testing.pytest_plugin import pytest_addoption as pytest_addoption
from omniq.testing.pytest_plugin import pytest_generate_tests as pytest_generate_tests

__all__ = [*_plugin.__all__, "pytest_addoption", "pytest_generate_tests"]
