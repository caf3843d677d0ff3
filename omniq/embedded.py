"""Former home of :mod:`omniq.testing.embedded`; its public names are re-exported here.

``from omniq.embedded import EmbeddedServer`` and ``python -m omniq.embedded`` keep working.
"""

from __future__ import annotations

from omniq.testing.embedded import (
    EmbeddedCluster,
    EmbeddedServer,
    ServerNotFound,
    ServerStartError,
    ServerTLS,
    find_server_binary,
    main,
)

__all__ = [
    "EmbeddedCluster",
    "EmbeddedServer",
    "ServerNotFound",
    "ServerStartError",
    "ServerTLS",
    "find_server_binary",
    "main",
]

if __name__ == "__main__":
    raise SystemExit(main())
