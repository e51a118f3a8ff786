"""The errors a user of remote_magics can meet; each message says what to do next."""
from __future__ import annotations

import sys
import types
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
    """The remote kernel process ended while we needed it; ``status``: its exit status, if known."""

    def __init__(self, message: str, *, status: Any = None) -> None:
        super().__init__(message)
        self.status = status


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


class ProxyWarning(UserWarning):
    """A proxy was used where its value would behave otherwise: what was lost, and what to do."""


class JobError(RemoteMagicsError):
    """A detached job cannot be found, collected or followed (the message says why)."""


class SshError(RemoteMagicsError):
    """An ssh target could not be started; the subclasses name the usual causes."""


def _said(output: str) -> str:
    said = " ".join(output.split())
    return f" ssh said: {said.rstrip('.')}." if said else ""


class HostUnreachable(RemoteMagicsError):
    """The host (or a served engine's address) did not accept a connection."""

    def __init__(self, address: Any, output: str = "", hint: str = "") -> None:
        super().__init__(
            f"cannot reach {address}: nothing accepted the connection (the host is down, the "
            "name does not resolve, or no server listens on that port)." + _said(output) + " "
            + (hint or "Check the host name and port; `ssh HOST` in a terminal must work first."))


class AuthenticationRefused(SshError):
    """ssh reached the host but the host refused to log us in (or its key is not trusted)."""

    def __init__(self, address: Any, output: str = "") -> None:
        hint = ("Its host key is not in known_hosts: run `ssh HOST` once in a terminal to accept "
                "it." if "Host key verification" in output else
                "Load your key into the agent (ssh-add) or name it with IdentityFile in "
                "~/.ssh/config; remote_magics runs ssh in batch mode, so it cannot ask for a "
                "password.")
        super().__init__(f"{address} refused to authenticate us." + _said(output) + " " + hint)


class NoSuchPython(SshError):
    """The Python command given for the target does not exist on the host."""

    def __init__(self, address: Any, python: str, output: str = "",
                 hint: str = "`ssh HOST which python3` shows the default one") -> None:
        super().__init__(
            f"there is no Python at '{python}' on {address}." + _said(output) +
            " Give the interpreter's path there with --python, e.g. --python "
            f"/opt/conda/bin/python ({hint}).")
        self.python = python


class RemoteKernelMissing(SshError):
    """The host's Python lacks a module that the engine needs (ipykernel, cloudpickle)."""

    def __init__(self, address: Any, python: str, missing: list) -> None:
        names = " ".join(missing)
        super().__init__(
            f"the Python at {python} on {address} cannot run an engine: it lacks "
            f"{', '.join(missing)}. Install it there with `{python} -m pip install {names}` "
            "(remote_magics itself need not be installed; its engine is sent over), or pick "
            "another interpreter with --python.")
        self.missing = list(missing)


class RemotePortInUse(RemoteMagicsError):
    """The ports asked for on the remote host (or for a served engine) are taken."""

    def __init__(self, where: str, detail: str = "") -> None:
        super().__init__(
            f"the engine on {where} cannot bind its ports: {detail or 'they are in use'}. "
            "Give a wider --port-range (five consecutive free ports are needed), leave it out "
            "to use any free ports, or stop the program that holds them.")


class PackageInstallError(RemoteMagicsError):
    """pip failed in the target's environment; the cell that asked for the packages did not run."""

    def __init__(self, target: str, what: str, status: int, output: str) -> None:
        super().__init__(
            f"pip {what!r} failed on target '{target}' (exit status {status}), so the cell did "
            "not run. Fix the requirement or the target's package index, then run the cell "
            f"again. pip said:\n{output.rstrip()}")
        self.output = output


class ConnectionRefused(RemoteMagicsError):
    """A served engine accepted the TCP connection but refused our security handshake."""

    def __init__(self, address: str, curve: bool, key: bool = False) -> None:
        why = ("the engine admits only clients that hold its key, and the URL's key= is not "
               "this engine's" if key else
               "the Curve server key in the URL is not this engine's" if curve else
               "the engine requires CurveZMQ encryption and the URL has no curve= key")
        super().__init__(
            f"the served engine at {address} refused the connection: {why}. Copy the whole "
            "URL that `remote-magics serve` printed (its curve= part is the server's public "
            "key), or use the connection file it wrote.")


class RemoteError(RemoteMagicsError):
    """An exception raised by the cell in the remote kernel.

    Carries the remote ``ename``, ``evalue`` and ``traceback``; IPython shows the remote
    traceback in place of a local one. :meth:`from_reply` returns an instance that is also an
    instance of the original exception class when that class is importable locally, so
    ``except ZeroDivisionError:`` catches a remote division by zero. As in a plain cell, its
    class is named as the remote one and its message is the remote one, which is what a
    frontend is told (``ename``, ``evalue``); ``target`` names where it was raised.
    """

    ename: str = ""
    evalue: str = ""
    traceback: list[str] = []
    target: str = ""
    #: The error as Python prints it, for one IPython shows so (an exception group); else empty.
    printed: str = ""
    #: Raised by an operation on a proxy in the notebook's own code (a plain cell calling a
    #: function that stayed remote), not by a ``%%remote`` cell: its frames here come first.
    called_here: bool = False

    def __str__(self) -> str:
        return self.evalue

    def _render_traceback_(self) -> list[str]:
        remote = _remote_lines(f"Remote error on target '{self.target}':", self.traceback,
                               f"{self.ename}: {self.evalue}")
        if not self.called_here:
            return remote
        try:
            here = _frames_here(self)
        except Exception:  # noqa: BLE001 - no IPython formatter: the remote part alone
            return remote
        if not here:
            return remote
        # the notebook's frames (its separator, heading and frames), then the remote ones
        # (as a cell's: heading, frames, the error's line), or the error's line alone
        return [remote[0], *here[:-1], *(remote[3:] if _dashes(remote[1:2]) else remote[1:])]

    @classmethod
    def from_reply(cls, content: dict, target: str,
                   original: BaseException | None = None) -> "RemoteError":
        """The error for a failed run's reply ``content``; with ``original``, the exception as
        it crossed, its args and attributes too (``e.args[0]`` of a KeyError is the missing
        key, ``e.code`` of a notebook error class), as a plain ``except`` sees them."""
        kind = _remote_class(content.get("etype", ""))
        named = _named(cls, content.get("ename"))
        # IPython shows a SyntaxError as if it had compiled it itself (our frames, never
        # ``_render_traceback_``): a remote one is named so, not made one
        error_class = named if kind is None or issubclass(kind, SyntaxError) \
            else _subclass(cls, kind)
        error = None
        if original is not None and issubclass(error_class, type(original)):
            # made with the arguments it was made with: an OSError's errno and filename, a
            # UnicodeError's parts are set by its constructor, not kept in its __dict__; a
            # notebook error class's __init__ sees its own arguments, not the message (hunt
            # 21 H21-8: sys.last_value after a remote error had lost them)
            error = _made_again(error_class, original)
        if error is None:
            error = _instantiate(error_class, content.get("evalue", "")) or _instantiate(
                named, content.get("evalue", ""))
            error.args = (content.get("evalue", ""),)
        if original is not None and (issubclass(error_class, type(original))
                                     or type(original).__name__ == content.get("ename")):
            # (and of a class the notebook holds no class for, one a `none` cell made: its
            # attributes, `err.a`, on the error named as it, hunt 26 H26-25)
            error.args = original.args
            error.__dict__.update(getattr(original, "__dict__", None) or {})
        if original is not None:  # `raise ValueError(...) from err`, or raised while handling
            # one: `sys.last_value.__cause__` / `__context__` are the chain as it crossed
            error.__cause__, error.__context__ = original.__cause__, original.__context__
            error.__suppress_context__ = original.__suppress_context__
        error.ename = content.get("ename", "Exception")
        error.evalue = content.get("evalue", "")
        error.traceback = list(content.get("traceback", []))
        error.printed = content.get("printed") or ""
        error.target = target
        return error


def _frames_here(error: BaseException) -> list[str]:
    """``error``'s traceback in the notebook as IPython shows a plain cell's, its frames
    of your code only (not IPython's, not ours), from its separator to its last line;
    empty when there is no such frame or no IPython shell."""
    from IPython import get_ipython  # (only ever asked by IPython)
    shell = get_ipython()
    if shell is None:
        return []
    frames = []
    tb = error.__traceback__
    while tb is not None:
        if not tb.tb_frame.f_globals.get("__name__", "").startswith(("IPython.", _OURS)):
            frames.append(tb)
        tb = tb.tb_next
    chained = None
    for tb in reversed(frames):
        chained = types.TracebackType(chained, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
    if chained is None:
        return []
    return list(shell.InteractiveTB.structured_traceback(type(error), error, chained,
                                                         tb_offset=0))


#: Our own package's name and a dot (the engine, shipped apart, has its own:
#: ``engine.tracebacks.of_yours``; this layer is below it).
_OURS = __name__.split(".")[0] + "."


def _dashes(lines: list[str]) -> bool:
    """Whether ``lines`` starts with IPython's separator line (``-----``, maybe coloured)."""
    return bool(lines) and "-----" in lines[0]



def _remote_lines(header: str, traceback: list[str], fallback: str) -> list[str]:
    """A remote traceback as IPython shows it: a header, then the remote items as they came
    (IPython's are a frame each, which is what sets a plain cell's spacing)."""
    return [f"{_RED}{header}{_RESET}", *(traceback or [fallback])]


class CellSyntaxError(RemoteMagicsError):
    """A ``%%remote`` cell's code does not parse: nothing was sent.

    Shown as IPython shows a plain cell's (``lines``: ``Cell In[7], line 1``, the line, a caret),
    not as a trace through the magic; :meth:`of` names its class as Python's
    (``SyntaxError``, ``IndentationError``), which is what a frontend is told.
    """

    def __init__(self, message: str, lines: list[str]) -> None:
        super().__init__(message)
        self.lines = list(lines)

    def _render_traceback_(self) -> list[str]:
        return self.lines

    @classmethod
    def of(cls, err: SyntaxError, lines: list[str]) -> "CellSyntaxError":
        """The error for Python's ``err``, shown as ``lines``."""
        return _named(cls, type(err).__name__)(str(err), lines)


class RemoteInterrupt(KeyboardInterrupt):
    """The stop button interrupted a remote cell (or gave up waiting for one).

    A ``KeyboardInterrupt``, so code that stops on one still does. IPython shows it as the
    remote line the cell was at (``traceback``, from the remote kernel), not as the notebook's
    own frames; without a remote traceback (the cell did not stop), as its message.
    """

    def __init__(self, message: str, *, target: str = "", traceback: list[str] = ()) -> None:
        super().__init__(message)
        self.target = target
        self.traceback = list(traceback)

    def _render_traceback_(self) -> list[str]:
        if self.traceback:
            return _remote_lines(f"Interrupted on target '{self.target}':", self.traceback,
                                 "KeyboardInterrupt")
        return [f"{_RED}{type(self).__name__}{_RESET}: {self}"]


# What a frontend is told (ipykernel's ``ename``) and what IPython shows: an interrupted cell is
# a KeyboardInterrupt, as in Jupyter. ``__qualname__`` stays, so pickle finds the class.
RemoteInterrupt.__name__ = "KeyboardInterrupt"


_subclasses: dict[type, type] = {}
_named_classes: dict[tuple[type, str], type] = {}


def _named(base: type, ename: Any) -> type:
    """``base``, named as the remote class (``ename``) that is not importable here: a class the
    remote cell defined. ``__qualname__`` stays, as for :class:`RemoteInterrupt`."""
    if not isinstance(ename, str) or not ename.isidentifier() or ename == base.__name__:
        return base
    if (base, ename) not in _named_classes:
        named = type(base.__name__, (base,), {"__module__": __name__})
        named.__name__ = ename
        _named_classes[(base, ename)] = named
    return _named_classes[(base, ename)]


def _remote_class(qualified: str) -> type | None:
    """The local exception class named ``module.qualname``, if its module is already loaded."""
    module_name, _, qualname = qualified.rpartition(".")
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    # SystemExit too: IPython shows it, and warns, as for a plain cell's ``sys.exit()``
    if isinstance(obj, type) and issubclass(obj, (Exception, SystemExit)):
        return obj
    return None


def _instantiate(error_class: type, *arguments: Any) -> BaseException | None:
    """An instance made of ``arguments``, without running a constructor that wants others."""
    for make in (lambda: error_class(*arguments),
                 lambda: error_class.__new__(error_class, *arguments)):
        try:
            return make()
        except Exception:  # noqa: BLE001 - a constructor that refuses them: the next way
            continue
    return None


def _made_again(error_class: type, original: BaseException) -> BaseException | None:
    """An ``error_class`` made as ``original`` was: by its constructor, with the arguments
    pickle makes it with, unless its class has an ``__init__`` written in Python, which is not
    run again with its final ``args`` (``f'code {code}'`` would say ``'code code 7'``): then
    only made, its state set after."""
    arguments = _arguments(original)
    if any(isinstance(vars(klass).get("__init__"), types.FunctionType)
           for klass in type(original).__mro__):
        try:
            made = error_class.__new__(error_class, *arguments)
        except Exception:  # noqa: BLE001 - made from its message then
            return None
        made.args = arguments
        return made
    return _instantiate(error_class, *arguments)


def _arguments(error: BaseException) -> tuple:
    """The arguments ``error`` is made again with, as pickle makes it (an OSError's filename
    too, which its ``args`` lack)."""
    try:
        reduced = error.__reduce__()
    except Exception:  # noqa: BLE001 - its args then
        return tuple(error.args)
    arguments = reduced[1] if isinstance(reduced, tuple) and len(reduced) > 1 else None
    return tuple(arguments) if isinstance(arguments, tuple) else tuple(error.args)


def _subclass(base: type, kind: type) -> type:
    """A class that is both ``base`` and ``kind``; ``base`` alone if Python cannot combine them."""
    if issubclass(kind, base):
        return kind
    if kind not in _subclasses:
        try:
            _subclasses[kind] = type(f"Remote{kind.__name__}", (base, kind), {
                "__module__": __name__, "__str__": base.__str__})
            _subclasses[kind].__name__ = kind.__name__  # what a frontend is told, as plainly
        except TypeError:  # exception classes with clashing C layouts: the name alone
            _subclasses[kind] = _named(base, kind.__name__)
    return _subclasses[kind]



class FanOutError(RemoteMagicsError):
    """A fan-out run failed on some members; the others' results stay reachable.

    ``results`` has one entry per member, in member order: its
    :class:`~remote_magics.cells.runner.RunResult`, or the exception it failed with. ``failures``
    maps each failed member's name to its exception. The notebook's names did not change.
    """

    def __init__(self, targets: list[str], results: list) -> None:
        self.targets = list(targets)
        self.results = list(results)
        self.failures = {name: r for name, r in zip(targets, results)
                         if isinstance(r, BaseException)}
        lines = [f"  {name}: {_one_line(err)}" for name, err in self.failures.items()]
        ok = len(self.targets) - len(self.failures)
        super().__init__(
            f"the cell failed on {len(self.failures)} of {len(self.targets)} targets:\n"
            + "\n".join(lines)
            + f"\nThe results of the {ok} that succeeded are in this error's .results (in a notebook: "
            "sys.last_value.results); nothing in the notebook changed.")

    def _render_traceback_(self) -> list[str]:
        lines = [f"{_RED}{type(self).__name__}{_RESET}: {self}"]
        for name, err in self.failures.items():
            if isinstance(err, RemoteError):
                lines.append("")
                lines.extend(err._render_traceback_())
        return lines


class MapError(RemoteMagicsError):
    """An item of a remote map failed. ``index`` and ``item`` name it; ``error`` is what it raised."""

    def __init__(self, index: int, item: Any, error: BaseException) -> None:
        self.index = index
        self.item = item
        self.error = error
        shown = repr(item)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        super().__init__(f"item {index} ({shown}) failed: {_one_line(error)}. Results of the "
                         "other items were discarded; fix the function or the item and map again.")

    def _render_traceback_(self) -> list[str]:
        lines = [f"{_RED}{type(self).__name__}{_RESET}: {self}"]
        if isinstance(self.error, RemoteError):
            lines.extend(self.error._render_traceback_())
        return lines


def _one_line(err: BaseException) -> str:
    if isinstance(err, RemoteError):
        return f"{err.ename}: {err.evalue}"
    return f"{type(err).__name__}: {err}".split("\n")[0]
