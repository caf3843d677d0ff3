"""The I/O-free protocol core: one module per group of scripts, each owning its scripts'
contract (the :class:`~omniq._scripts.Script` objects, the ARGV builders, the reply parsers
and the limits they share with the Lua side, from :mod:`omniq._limits`).

* :mod:`.common` -- argument checks, reply decoding, error mapping, job ids
* :mod:`.enqueue` -- ``enqueue`` (publish, publish_many)
* :mod:`.leases` -- ``reserve``, ``ack_reserve``, ``heartbeat``, ``ack_success``, ``ack_fail``
* :mod:`.admin` -- maintenance, pause/resume, retry and removal, partition layouts
* :mod:`.children` -- parent/child completion counters
* :mod:`.reads` -- plain reads done outside scripts (stats, job records, probes)

The async client is ``args = build(...)``, ``reply = await call(script, anchor, args)``,
``return parse(reply)``; everything here is unit-tested without Redis
(``tests/core/test_protocol_unit.py``).
"""
