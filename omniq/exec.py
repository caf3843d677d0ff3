"""``from omniq.exec import Exec``: the official SDK's name of a plain handler's
``ctx.exec`` (omniq's :class:`~omniq.aio.context.SyncExec`; async handlers get
:class:`~omniq.aio.context.Exec`)."""

from omniq.aio.context import SyncExec as Exec

__all__ = ["Exec"]
