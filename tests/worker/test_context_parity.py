"""ctx.exec and ctx.check_completion: the blocking twins match the async ones, and every
``Exec`` method has the contract of the client method of the same name (drift check)."""

from __future__ import annotations

import inspect

from omniq import AsyncOmniq
from omniq.aio.context import CheckCompletion, Exec, SyncCheckCompletion, SyncExec

# Exec methods bound to the current job: no client method with the same parameters
JOB_BOUND = {"heartbeat", "child_ack", "dependency_results"}


def methods(cls: type) -> dict[str, object]:
    return {n: f for n, f in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}


def test_blocking_twins_match() -> None:
    for acls, scls in ((Exec, SyncExec), (CheckCompletion, SyncCheckCompletion)):
        a, s = methods(acls), methods(scls)
        assert set(a) == set(s), (acls, scls)
        for name, afn in a.items():
            sfn = s[name]
            assert inspect.iscoroutinefunction(afn), name
            assert not inspect.iscoroutinefunction(sfn), name
            sa, ss = inspect.signature(afn), inspect.signature(sfn)  # type: ignore[arg-type]
            assert list(sa.parameters.values()) == list(ss.parameters.values()), name
            assert sa.return_annotation == ss.return_annotation, name
            assert (sfn.__doc__ or "").strip(), f"{scls.__name__}.{name} has no docstring"


def test_exec_methods_keep_the_client_contract() -> None:
    client = methods(AsyncOmniq)
    for name, fn in methods(Exec).items():
        assert name in client, f"Exec.{name} is not a client method"
        ours, theirs = inspect.signature(fn), inspect.signature(client[name])  # type: ignore[arg-type]
        assert ours.return_annotation == theirs.return_annotation, name
        if name in JOB_BOUND:
            continue
        for param in ours.parameters.values():
            if param.name == "self" or param.kind is param.VAR_KEYWORD:
                continue
            other = theirs.parameters.get(param.name)
            assert other is not None, f"Exec.{name}({param.name}) is not a client parameter"
            assert (other.kind, other.default, other.annotation) == (
                param.kind, param.default, param.annotation), (name, param.name)


def test_publish_options_name_every_publish_keyword() -> None:
    from omniq.types import PublishOptions

    publish = inspect.signature(AsyncOmniq.publish)
    keywords = {n for n, p in publish.parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert set(PublishOptions.__annotations__) == keywords
