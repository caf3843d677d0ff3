"""One module per implementation under test; each runs one scenario per process.

``omniq_async``, ``omniq_sync`` and ``floor`` run with this repository's interpreter
(``python -m benchmarks.peers.NAME``); the ``peer_*`` modules run with their peer's own virtual
environment (``python -I benchmarks/peers/peer_NAME.py``) and import only ``_harness`` from
here.
"""
