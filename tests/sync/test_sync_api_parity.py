"""OmniqClient and AsyncOmniq keep the same methods, parameters and defaults (drift check)."""

from __future__ import annotations

import inspect

import omniq
import omniq.client
import omniq.sync
from omniq import AsyncOmniq, OmniqClient

# async name -> sync name; everything else must match by name
RENAMED = {"aclose": "close"}
ASYNC_ONLY = {"__aenter__", "__aexit__"}
SYNC_ONLY = {"__enter__", "__exit__"}
# methods that return an iterator: the sync one returns the blocking twin of the async one
ITERATOR_TWINS = {"events": ("EventStream", "SyncEventStream")}


def public_methods(cls: type) -> dict[str, object]:
    return {
        name: fn
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_async_method_has_a_sync_twin() -> None:
    sync = public_methods(OmniqClient)
    for name, afn in public_methods(AsyncOmniq).items():
        assert RENAMED.get(name, name) in sync, f"OmniqClient lacks {name}"
        sfn = sync[RENAMED.get(name, name)]
        a, s = inspect.signature(afn), inspect.signature(sfn)  # type: ignore[arg-type]
        assert list(a.parameters.values()) == list(s.parameters.values()), name
        if name in ITERATOR_TWINS:
            assert (a.return_annotation, s.return_annotation) == ITERATOR_TWINS[name]
            assert not inspect.iscoroutinefunction(afn)  # an async iterator, used at once
        else:
            assert a.return_annotation == s.return_annotation, name
            assert inspect.iscoroutinefunction(afn) or name == "queue_base", name
        assert not inspect.iscoroutinefunction(sfn), name
        assert (sfn.__doc__ or "").strip(), f"OmniqClient.{name} has no docstring"


def test_every_sync_method_has_an_async_twin() -> None:
    asyncs = public_methods(AsyncOmniq)
    back = {v: k for k, v in RENAMED.items()}
    for name in public_methods(OmniqClient):
        assert back.get(name, name) in asyncs, f"AsyncOmniq lacks {name}"


def test_static_and_dunder_methods() -> None:
    assert isinstance(inspect.getattr_static(OmniqClient, "queue_base"), staticmethod)
    assert OmniqClient.queue_base("demo") == AsyncOmniq.queue_base("demo") == "{demo}"
    for name in ASYNC_ONLY:
        assert hasattr(AsyncOmniq, name)
    for name in SYNC_ONLY:
        assert hasattr(OmniqClient, name)


def test_import_paths() -> None:
    assert omniq.client.OmniqClient is OmniqClient
    assert omniq.OmniqClient is OmniqClient
    assert omniq.sync.OmniqClient is OmniqClient
    assert "OmniqClient" in omniq.__all__
    assert issubclass(omniq.sync.SyncClientError, omniq.OmniqError)
    assert issubclass(omniq.sync.SyncClientError, RuntimeError)


def test_classmethod_constructors_are_twins() -> None:
    # inspect.isfunction skips classmethods (bound methods): compare them here
    for name in ("from_settings",):
        a = inspect.getattr_static(AsyncOmniq, name)
        s = inspect.getattr_static(OmniqClient, name)
        assert isinstance(a, classmethod), name
        assert isinstance(s, classmethod), name
        asig, ssig = inspect.signature(getattr(AsyncOmniq, name)), inspect.signature(
            getattr(OmniqClient, name))
        assert list(asig.parameters.values()) == list(ssig.parameters.values()), name
        assert (asig.return_annotation, ssig.return_annotation) == ("AsyncOmniq", "OmniqClient")
        assert (getattr(OmniqClient, name).__doc__ or "").strip(), name
    classmethods = {
        n for cls in (AsyncOmniq, OmniqClient) for n, v in vars(cls).items()
        if isinstance(v, classmethod) and not n.startswith("_")
    }
    assert classmethods == {"from_settings"}
