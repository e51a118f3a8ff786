"""The errors a user of remote_magics can meet; each message says what to do next."""
from __future__ import annotations

import sys
from typing import Any

_RESET = "\x1b[0m"
_RED = "\x1b[31m"


class RemoteMagicsError(Exception):
    """Base class of every error raised by remote_magics."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows our errors as one paragraph, not as a trace through our internals
        return [f"{_RED}{type(self).__name__}{_RESET}: {self}"]


class NotConnected(RemoteMagicsError):
    """No target by that name, or no target at all."""


class RemoteKernelDied(RemoteMagicsError):
    """The remote kernel process ended while we needed it."""


class ConnectionLost(RemoteMagicsError):
    """The remote kernel stopped answering (its heartbeat is silent) but may still exist."""


class RemoteTimeout(RemoteMagicsError):
    """A remote cell ran past its ``--timeout`` and was interrupted."""


class SerializationError(RemoteMagicsError):
    """A local value could not be pickled for the remote kernel; nothing ran remotely."""

    def __init__(self, name: str, value: Any, cause: BaseException) -> None:
        kind = type(value)
        super().__init__(
            f"cannot send '{name}' (a {kind.__module__}.{kind.__qualname__}) to the remote "
            f"kernel: {type(cause).__name__}: {cause}. Nothing ran remotely. Create the value "
            "inside the %%remote cell instead, or delete or rename it so the cell does not "
            "read it."
        )
        self.name = name
        self.type = kind


class ProxyError(RemoteMagicsError):
    """A proxy's remote object cannot be reached (released, or its kernel is gone)."""


class RemoteError(RemoteMagicsError):
    """An exception raised by the cell in the remote kernel.

    Carries the remote ``ename``, ``evalue`` and ``traceback``; IPython shows the remote
    traceback in place of a local one. :meth:`from_reply` returns an instance that is also an
    instance of the original exception class when that class is importable locally, so
    ``except ZeroDivisionError:`` catches a remote division by zero.
    """

    ename: str = ""
    evalue: str = ""
    traceback: list[str] = []
    target: str = ""

    def __str__(self) -> str:
        return f"{self.ename}: {self.evalue} (raised in remote kernel '{self.target}')"

    def _render_traceback_(self) -> list[str]:
        header = f"{_RED}Remote error on target '{self.target}':{_RESET}"
        lines = [line for chunk in self.traceback for line in chunk.rstrip("\n").split("\n")]
        return [header, *lines] if lines else [header, f"{self.ename}: {self.evalue}"]

    @classmethod
    def from_reply(cls, content: dict, target: str) -> "RemoteError":
        """The error for a failed run's reply ``content``."""
        kind = _remote_class(content.get("etype", ""))
        error_class = cls if kind is None else _subclass(cls, kind)
        error = error_class.__new__(error_class, content.get("evalue", ""))
        error.args = (content.get("evalue", ""),)
        error.ename = content.get("ename", "Exception")
        error.evalue = content.get("evalue", "")
        error.traceback = list(content.get("traceback", []))
        error.target = target
        return error


_subclasses: dict[type, type] = {}


def _remote_class(qualified: str) -> type | None:
    """The local exception class named ``module.qualname``, if its module is already loaded."""
    module_name, _, qualname = qualified.rpartition(".")
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, Exception):
        return obj
    return None


def _subclass(base: type, kind: type) -> type:
    """A class that is both ``base`` and ``kind``; ``base`` alone if Python cannot combine them."""
    if issubclass(kind, base):
        return kind
    if kind not in _subclasses:
        try:
            _subclasses[kind] = type(f"Remote{kind.__name__}", (base, kind), {
                "__module__": __name__, "__str__": base.__str__})
        except TypeError:  # exception classes with clashing C layouts
            _subclasses[kind] = base
    return _subclasses[kind]

