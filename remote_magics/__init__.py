"""remote_magics: run a notebook cell in a remote Jupyter kernel and bring its names back.

In IPython: ``%load_ext remote_magics``, ``%remote_connect``, then ``%%remote`` cells.
From Python: ``target = remote_magics.connect()``, ``target.run(code, namespace)``.

The names below load on first use (PEP 562), so ``python -m remote_magics.engine`` in a remote
kernel imports nothing of the notebook side.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_ERRORS = ("ConnectionLost", "FanOutError", "JobError", "MapError", "NotConnected", "ProxyError",
           "ProxyWarning",
           "RemoteError", "RemoteInterrupt", "RemoteKernelDied", "RemoteMagicsError",
           "RemoteTimeout", "SerializationError")

__all__ = [*_ERRORS, "Pool", "RemoteObject", "RunResult", "Target", "connect", "disconnect",
           "registry", "__version__"]


def __getattr__(name: str) -> Any:
    """The public API, imported when first asked for."""
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    if name == "RemoteObject":
        from .cells.proxy import RemoteObject

        return RemoteObject
    if name == "RunResult":
        from .cells.runner import RunResult

        return RunResult
    if name in ("Target", "registry"):
        from . import targets

        return getattr(targets, name)
    if name == "Pool":
        from .pool import Pool

        return Pool
    if name in ("connect", "disconnect"):
        from . import connecting

        return getattr(connecting, name)
    raise AttributeError(f"module 'remote_magics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext remote_magics``: register the magics."""
    from .engine import settings
    from .magics import (RemoteMagics, count_async_checks, explain_proxy_errors,
                         flush_all_releases, show_printed_remote_errors, watch_class_attributes)
    from .wire import sources

    ipython.register_magics(RemoteMagics)
    count_async_checks(ipython)  # a remote cell's compile-time warnings show as often as plainly
    show_printed_remote_errors(ipython)  # a remote exception group shows the cell's frames
    sources.label_cells(ipython.compile)  # tracebacks through remote cells' functions: 'Cell In[3]'
    settings.watch_shown_warnings()  # a warning a plain cell showed once, a remote one does not
    if flush_all_releases not in ipython.events.callbacks["post_execute"]:
        ipython.events.register("post_execute", flush_all_releases)
    if watch_class_attributes not in ipython.events.callbacks["post_run_cell"]:
        ipython.events.register("post_run_cell", watch_class_attributes)
    if explain_proxy_errors not in ipython.events.callbacks["post_run_cell"]:
        ipython.events.register("post_run_cell", explain_proxy_errors)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext remote_magics``: stop flushing releases after cells."""
    from .magics import (explain_proxy_errors, flush_all_releases, stop_counting_async_checks,
                         stop_showing_printed_remote_errors, watch_class_attributes)

    stop_counting_async_checks(ipython)
    stop_showing_printed_remote_errors(ipython)
    if explain_proxy_errors in ipython.events.callbacks["post_run_cell"]:
        ipython.events.unregister("post_run_cell", explain_proxy_errors)
    if watch_class_attributes in ipython.events.callbacks["post_run_cell"]:
        ipython.events.unregister("post_run_cell", watch_class_attributes)

    if flush_all_releases in ipython.events.callbacks["post_execute"]:
        ipython.events.unregister("post_execute", flush_all_releases)
