"""RemoteObject: a local stand-in for a value that stays in a remote kernel."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from . import serialize
from .errors import ProxyError
from .live import LiveOperations, preview_html

if TYPE_CHECKING:
    from .targets import Target


def format_size(size: int | None, exact: bool = True) -> str:
    """A byte count in the units a person reads (``~`` marks an estimate)."""
    if size is None:
        return "size unknown"
    mark = "" if exact else "~"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{mark}{value:.0f} {unit}" if unit == "B" else f"{mark}{value:.1f} {unit}"
        value /= 1000
    return f"{mark}{size} B"


class RemoteObject(LiveOperations):
    """A value that lives in a remote kernel.

    Use it in a later ``%%remote`` cell on the same target and it is resolved there, at no
    transfer cost; ``.fetch()`` brings the value home. When the last local reference goes, the
    remote object is released (batched, without blocking the notebook). Python's operators
    (``len``, ``p[i]``, ``p.attr``, calls, iteration, arithmetic) run remotely: see :mod:`.live`.
    """

    def __init__(self, target: "Target", descriptor: dict, reason: str | None = None) -> None:
        self._target = target
        self._descriptor = dict(descriptor)
        self._id: str = descriptor["id"]
        self._engine_id: str = target.engine_id  # a restarted kernel has a new engine id
        self.reason = reason
        self._released = False

    @property
    def target(self) -> str:
        """The name of the target whose kernel holds the value."""
        return self._target.name

    @property
    def type_name(self) -> str:
        """The remote value's type, as ``module.Class`` (builtins without a module)."""
        return self._descriptor["type"]

    @property
    def remote_len(self) -> int | None:
        """``len()`` of the remote value when it has one (known without a round trip)."""
        return self._descriptor.get("len")

    @property
    def shape(self) -> tuple | None:
        """The remote value's shape, for array-likes."""
        shape = self._descriptor.get("shape")
        return tuple(shape) if shape is not None else None

    @property
    def dtype(self) -> str | None:
        """The remote value's dtype, for array-likes."""
        return self._descriptor.get("dtype")

    @property
    def nbytes(self) -> int | None:
        """The remote value's size in memory, in bytes (exact for buffers, else an estimate)."""
        return self._descriptor.get("size")

    def fetch(self, timeout: float | None = None) -> Any:
        """Download the value and return it; the remote copy stays until this proxy goes."""
        self.check()
        return self._target.fetch(self._id, timeout=timeout)

    def check(self) -> None:
        """Raise :class:`ProxyError` if the remote object can no longer be reached."""
        problem = None
        if self._released:
            problem = "it was released"
        elif self._target.engine_id != self._engine_id:
            problem = f"target '{self.target}' was restarted since, which lost it"
        elif self._target.lost is not None:
            problem = self._target.lost
        if problem:
            raise ProxyError(f"the remote {self.type_name} behind this proxy is gone: {problem}. "
                             "Recompute it with a %%remote cell.")

    def release(self) -> None:
        """Release the remote object now, instead of when the proxy is garbage collected."""
        if not self._released:
            self._released = True
            self._target.release_later(self._id)
            self._target.flush_releases()

    def __reduce__(self) -> tuple:
        return serialize.proxy_reference(self, self._target.engine_id, self._id)

    def __del__(self) -> None:
        if not getattr(self, "_released", True):
            self._released = True
            if self._target.engine_id == self._engine_id:
                self._target.release_later(self._id)

    def _summary(self) -> list[str]:
        parts = []
        if self.shape is not None:
            parts.append("shape=" + "×".join(str(n) for n in self.shape))
            if self.dtype:
                parts.append(f"dtype={self.dtype}")
        elif self.remote_len is not None:
            parts.append(f"len={self.remote_len:,}")
        parts.append(format_size(self.nbytes, bool(self._descriptor.get("size_exact"))))
        return parts

    def __repr__(self) -> str:
        return (f"<RemoteObject {self.type_name} {' '.join(self._summary())} "
                f"on target '{self.target}'>")

    def _repr_html_(self) -> str:
        cells = "".join(f"<td>{html.escape(part)}</td>" for part in self._summary())
        note = f"<br><small>{html.escape(self.reason)}</small>" if self.reason else ""
        return (
            "<div class='remote-magics-proxy'><b>RemoteObject</b> "
            f"<code>{html.escape(self.type_name)}</code> on target "
            f"<code>{html.escape(self.target)}</code>"
            f"<table><tr>{cells}</tr></table>"
            "<small>stays remote: use it in a <code>%%remote</code> cell, or "
            f"<code>.fetch()</code> it</small>{note}{preview_html(self)}</div>"
        )
