"""``python -m omniq``: the ``omniq`` command (see :mod:`omniq.cli`)."""

from omniq.cli import main

raise SystemExit(main())
