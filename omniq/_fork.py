"""The one fork registry: what an object does in a forked child, and where inherited state
is parked.

After ``os.fork()`` the child holds copies of the parent's sockets, event loops and
threads' state. Using or closing them would disturb the parent (a shared socket, an epoll
instance both processes edit), so objects that own such state register a callback here
(:func:`on_fork_in_child`) that drops it, and hand what they dropped to :func:`park`, which
keeps it referenced forever so that no finalizer ever runs on it.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["on_fork_in_child", "park"]

T = TypeVar("T")

# held weakly: registering never keeps an object alive
_callbacks: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()
_parked: list[object] = []  # inherited through fork() (or left on another loop): never touched


def on_fork_in_child(obj: T, callback: Callable[[T], None]) -> None:
    """Call ``callback(obj)`` in the child after every ``fork()``, while ``obj`` lives."""
    _callbacks[obj] = callback


def park(obj: object) -> None:
    """Keep ``obj`` referenced for the life of the process, so it is never finalized."""
    _parked.append(obj)


def _after_fork_in_child() -> None:
    for obj, callback in list(_callbacks.items()):
        callback(obj)


os.register_at_fork(after_in_child=_after_fork_in_child)
