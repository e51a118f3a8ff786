"""remote_magics: run a notebook cell in a remote Jupyter kernel and bring its names back.

In IPython: ``%load_ext remote_magics``, ``%remote_connect``, then ``%%remote`` cells.
From Python: ``target = remote_magics.connect()``, ``target.run(code, namespace)``.
"""
from __future__ import annotations

from .errors import (
    ConnectionLost,
    FanOutError,
    MapError,
    NotConnected,
    ProxyError,
    RemoteError,
    RemoteKernelDied,
    RemoteMagicsError,
    RemoteTimeout,
    SerializationError,
)
from .proxy import RemoteObject
from .runner import RunResult
from .targets import Target, connect, registry
from .pool import Pool

__version__ = "0.1.0"


def disconnect(name: str | None = None) -> None:
    """Close a target (the current one by default); kernels we started are shut down."""
    registry.remove(registry.get(name).name)


def load_ipython_extension(ipython) -> None:
    """``%load_ext remote_magics``: register the magics."""
    from .magics import RemoteMagics, flush_all_releases

    ipython.register_magics(RemoteMagics)
    if flush_all_releases not in ipython.events.callbacks["post_execute"]:
        ipython.events.register("post_execute", flush_all_releases)


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext remote_magics``: stop flushing releases after cells."""
    from .magics import flush_all_releases

    if flush_all_releases in ipython.events.callbacks["post_execute"]:
        ipython.events.unregister("post_execute", flush_all_releases)


__all__ = [
    "ConnectionLost", "FanOutError", "MapError", "NotConnected", "Pool", "ProxyError", "RemoteError", "RemoteKernelDied",
    "RemoteMagicsError", "RemoteObject", "RemoteTimeout", "RunResult", "SerializationError",
    "Target", "connect", "disconnect", "registry", "__version__",
]
