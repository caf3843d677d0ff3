"""The parent/child counter scripts ``childs_init`` and ``child_ack`` (anchor
``{cc:<key>}:meta``, not a queue)."""

from __future__ import annotations

from typing import Any

from omniq._protocol.common import check_non_negative, check_positive, parse_ok, texts
from omniq._scripts import scripts

__all__ = ["CHILDS_INIT", "CHILD_ACK", "NO_COUNTER", "childs_init_args", "parse_child_ack",
           "parse_childs_init"]

CHILDS_INIT, CHILD_ACK = scripts("childs_init", "child_ack")

NO_COUNTER = -1
"""What ``child_ack`` returns when the counter does not exist (the OmniQ v1 convention)."""


def childs_init_args(expected: int, ttl_ms: int) -> tuple[int, int]:
    """ARGV of childs_init.lua (``ttl_ms`` 0: no expiry)."""
    return (check_positive(expected, "expected"), check_non_negative(ttl_ms, "ttl_ms"))


def parse_childs_init(reply: Any) -> None:
    """``{'OK'}``; raises CounterError (``ALREADY_INIT`` ...)."""
    parse_ok("childs_init", reply)


def parse_child_ack(reply: Any) -> int:
    """The remaining count; ``NO_COUNTER`` (-1) when the counter does not exist."""
    r = texts(reply)
    if r[:2] == ["ERR", "NO_COUNTER"]:
        return NO_COUNTER
    return int(parse_ok("child_ack", reply)[1])
