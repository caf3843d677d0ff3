"""Former home of :mod:`omniq.testing.embedded`; its public names are re-exported here.

``from omniq.embedded import EmbeddedServer`` and ``python -m omniq.embedded`` keep working.
"""

from __future__ import annotations

from omniq.testing import embedded as _embedded
from omniq.testing.embedded import EmbeddedCluster as EmbeddedCluster
from omniq.testing.embedded import EmbeddedServer as EmbeddedServer
from omniq.testing.embedded import ServerNotFound as ServerNotFound
from omniq.testing.embedded import ServerStartError as ServerStartError
from omniq.testing.embedded import ServerTLS as ServerTLS
from omniq.testing.embedded import find_server_binary as find_server_binary
from omniq.testing.embedded import main as main

__all__ = [*_embedded.__all__, "main"]

if __name__ == "__main__":
    raise SystemExit(main())
