"""Test tooling, kept apart from the client and the protocol core.

* :mod:`omniq.testing.embedded` -- a private Redis / Valkey server (``EmbeddedServer``) and a
  local Redis Cluster (``EmbeddedCluster``) for tests, examples and benchmarks;
  ``python -m omniq.testing.embedded`` runs one until Ctrl-C.
* :mod:`omniq.testing.pytest_plugin` -- the pytest fixtures (registered through the
  ``pytest11`` entry point).

The old module paths ``omniq.embedded`` and ``omniq.pytest_plugin`` still import.

Nothing is imported here: ``python -m omniq.testing.embedded`` must find the module not yet
imported (runpy would otherwise run a second copy of it, with its own atexit registry).
"""
