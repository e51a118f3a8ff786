"""Fetch on first use: a name a run reads and was not given is asked of the notebook.

The client ships the names its analysis of the cell finds; a name it cannot see (``eval(name)``
of a computed string, ``exec(open('f.py').read())``, ``%run -i``) would be a NameError. For a
run whose client listens (the request's ``lookup``), the run's namespace gets ``__builtins__``
= a :class:`Builtins`: a copy of the builtins whose ``__missing__`` is reached only by a name
that neither the namespace nor the builtins hold, read by code whose globals are the run's
(the cell, the functions it defines, ``eval``/``exec`` without globals of their own). It asks
the client on iopub (``remote_lookup_request``, the run as parent), which answers on control
while the shell is busy with the cell; found, the value is bound in the run's namespace (and
watched for in-place changes, as an input); not found, the cell gets the NameError a plain
cell gets.

The namespace itself stays an exact dict, so module-level code keeps CPython's fast lookups:
a dict subclass with ``__missing__`` as globals would make every builtin a cell reads a Python
call. Functions lose only their specialised global lookups (a builtin read costs them about
0.1 µs more), which is why the client asks for lookups only for a cell that reads ``eval``,
``exec`` and the like (:func:`remote_magics.cells.lookup.may_ask`).

``input()`` and ``getpass.getpass()`` ask the notebook the same way (:func:`install`): while a
request whose client answers runs, ipykernel's ``raw_input`` is forwarded as ipykernel forwards
it for an ``execute_request`` that allows stdin, and its ask goes to the client on iopub
(``remote_input_request``), which asks the notebook's own frontend and answers on control. The
cell then gets what a plain cell gets: the typed text, EOFError, KeyboardInterrupt, or
ipykernel's own StdinNotImplementedError where the frontend takes no input.

Shipped as source with the engine: standard library and the wire format only.
"""
from __future__ import annotations

import builtins
import contextlib
import queue
import secrets
import sys
import threading
import types
from typing import Any

from ..wire import protocol, serialize
from . import quiet, store, watching

_engine: Any = None
_lock = threading.Lock()
_waiting: dict[str, "_Ask"] = {}  # lookup token → the ask waiting for its answer


def _not_fetched(message: str, name: str) -> NameError:
    """The cell's error for a name the notebook holds that could not be brought into the run.

    A plain NameError (the notebook knows the class), whose message says why.
    """
    error = NameError(message)
    error.name = name
    return error


class _Ask:
    """One lookup in flight: who may answer it, and where the answer goes."""

    def __init__(self, client: str) -> None:
        self.client = client
        self.answer: queue.Queue = queue.Queue(maxsize=1)


def install(engine: Any) -> None:
    """Take lookup and input answers on the kernel's control channel; ask the client for the
    input of a request whose client answers (its content has ``stdin``)."""
    global _engine
    _engine = engine
    kernel = engine.kernel
    kernel.control_handlers[protocol.LOOKUP_ANSWER] = _on_answer
    kernel.control_handlers[protocol.INPUT_ANSWER] = _on_answer
    own = getattr(kernel, "_input_request", None)  # ipykernel's: on its stdin socket
    if own is None or getattr(own, "remote_magics", False):
        return

    def input_request(prompt: str, ident: Any, parent: Any, password: bool = False) -> str:
        if isinstance(parent, dict) and "stdin" in (parent.get("content") or {}):
            return ask_input(prompt, parent, password)
        return own(prompt, ident, parent, password=password)  # a frontend of the kernel's own

    input_request.remote_magics = True  # type: ignore[attr-defined]
    kernel._input_request = input_request


@contextlib.contextmanager
def input_forwarded(content: dict):
    """Around a run whose client answers input (``stdin`` in ``content``): ``input()`` and
    ``getpass.getpass()`` are ipykernel's, which ask the client (or raise ipykernel's
    StdinNotImplementedError when ``stdin`` is false: the notebook's frontend takes none)."""
    kernel = getattr(_engine, "kernel", None)
    forward = getattr(kernel, "_forward_input", None)
    if ("stdin" not in content or forward is None
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    forward(bool(content["stdin"]))
    try:
        yield
    finally:
        kernel._restore_input()


@contextlib.contextmanager
def _asking(parent: dict, msg_type: str, key: str, content: dict):
    """Ask the client of ``parent`` on iopub (``content``, and a new token under ``key``);
    yields the :class:`_Ask` its answer on control reaches, until the block ends."""
    token, ask = secrets.token_hex(16), _Ask(protocol.client_of(parent))
    with _lock:
        _waiting[token] = ask
    try:
        _engine.session.send(_engine.kernel.iopub_socket, msg_type, {key: token, **content},
                             parent=parent, ident=f"remote_magics.{key}".encode())
        yield ask
    finally:
        with _lock:
            _waiting.pop(token, None)


def ask_input(prompt: str, parent: dict, password: bool) -> str:
    """Ask the client of ``parent`` for a line of input, as ipykernel asks its frontend.

    Waits until the answer comes: a person is typing. An interrupt of the run (the notebook's
    stop button) ends the wait with ipykernel's KeyboardInterrupt.
    """
    quiet.flush_printed()  # what the cell printed shows before the prompt
    with _asking(parent, protocol.INPUT_REQUEST, "ask", {"prompt": str(prompt),
                                                          "password": bool(password)}) as ask:
        while True:
            try:
                content, _frames = ask.answer.get(timeout=0.5)
                break
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                raise KeyboardInterrupt("Interrupted by user") from None
    value = content.get("value")
    if isinstance(value, str):
        return value
    raise _input_error(content.get("error"), content.get("message"))


def _input_error(name: Any, message: Any) -> BaseException:
    """What the notebook's ``input()`` raised, to raise in the cell."""
    message = str(message) if message is not None else ""
    if name in ("EOFError", "KeyboardInterrupt"):
        return getattr(builtins, name)(*([message] if message else []))
    if name == "StdinNotImplementedError":  # IPython's, as ipykernel raises it
        kind = getattr(sys.modules.get("ipykernel.kernelbase"), name, None)
        if isinstance(kind, type) and issubclass(kind, Exception):
            return kind(message)
    return RuntimeError(f"input() failed in the notebook: {str(name)[:80]}: {message}")


def _on_answer(stream, ident, parent) -> None:
    """An answer on control: to the ask of its token, if its sender is the run's client."""
    if not _engine.authentic(parent):
        return
    content = parent["content"]
    token = content.get("ask") if parent["header"].get("msg_type") == protocol.INPUT_ANSWER \
        else content.get("lookup")
    with _lock:
        ask = _waiting.pop(token, None) if isinstance(token, str) else None
        if ask is not None and ask.client != protocol.client_of(parent):
            _waiting[token] = ask  # not its client's: the real answer may still come
            ask = None
    if ask is None:
        _engine.kernel.log.error("remote_magics: dropped a lookup answer for no lookup of its "
                                 "client's (another run's, or one that timed out)")
        return
    ask.answer.put((parent["content"], list(parent["buffers"])))


class AskExit:
    """``exit`` and ``quit`` in a remote cell: IPython's, whose call asks the kernel to exit
    once the cell is over (``keep_kernel``: only its frontend). The notebook's kernel is asked,
    as by the same call in a plain cell; the engine goes on (it is not the notebook's kernel).
    Before, the names were not defined there."""

    __slots__ = ("run",)

    def __init__(self, run: "Builtins") -> None:
        self.run = run

    def __call__(self, keep_kernel: bool = False) -> None:
        self.run.asked_exit = bool(keep_kernel)

    def __repr__(self) -> str:
        return "Use exit() or Ctrl-D (i.e. EOF) to exit"


def asked_exit(found: "Builtins | None", reply: dict) -> None:
    """Put in a run's ``reply`` that its cell called ``exit()`` or ``quit()`` (``ask_exit``:
    ``{"keepkernel": bool}``), if it did."""
    if found is not None and found.asked_exit is not None:
        reply["ask_exit"] = {"keepkernel": found.asked_exit}


class Builtins(dict):
    """A run's ``__builtins__``: the builtins, and the notebook's names on first use."""

    __slots__ = ("namespace", "parent", "watched", "watch_bytes", "fetched", "listening",
                 "asked_exit")

    def __init__(self, namespace: dict, parent: dict, watched: dict, watch_bytes: int) -> None:
        super().__init__(builtins.__dict__)
        for name in protocol.EXITS:  # site's, where IPython did not hide them, would end the
            self.pop(name, None)  # process
        self.namespace = namespace  # the run's globals: where a fetched name is bound
        self.parent = parent  # the run request: the lookup's parent, and its client
        self.watched = watched  # core.watch's: a fetched value is watched like an input
        self.watch_bytes = watch_bytes
        self.fetched: list[str] = []
        self.listening = True  # False once the run is over: nobody answers any more
        self.asked_exit: bool | None = None  # exit(keep_kernel) was called: AskExit

    def __reduce__(self):
        # the builtins module, as a plain cell's `__builtins__` is: a copy of the dict took the
        # run's own `input` (which forwards to the notebook), which pickles by no name, so a
        # function reading `vars(__builtins__)` could not come back at all
        return serialize.quiet_import, ("builtins",)

    # As a plain cell's ``__builtins__`` (the builtins module): `__builtins__.len`,
    # `__builtins__.__name__`, `vars(__builtins__)` work on it too
    @property
    def __dict__(self) -> "Builtins":  # type: ignore[override]
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(builtins, name)

    def __missing__(self, name: str) -> Any:
        if name in protocol.EXITS and self.listening:  # the notebook's: hidden, unpicklable
            return AskExit(self)
        try:  # added to the builtins module after the copy (IPython's builtin_trap)
            return builtins.__dict__[name]
        except KeyError:
            pass
        if not self.listening or (name.startswith("__") and name.endswith("__")):
            raise KeyError(name)
        if sys._getframe(1).f_globals is not self.namespace:  # `exec(code, {})`: its own globals,
            raise KeyError(name)  # which hold no notebook names in a plain cell either
        return self.fetch(name)

    def fetch(self, name: str) -> Any:
        """Ask the run's client for ``name``; bind and return its value, or raise KeyError."""
        with _asking(self.parent, protocol.LOOKUP_REQUEST, "lookup", {"name": name}) as ask:
            try:
                content, frames = ask.answer.get(timeout=protocol.LOOKUP_TIMEOUT)
            except queue.Empty:
                raise _not_fetched(
                    f"name '{name}' is not defined: the notebook did not answer within "
                    f"{protocol.LOOKUP_TIMEOUT:g} s when the remote cell asked for it (it "
                    "stopped waiting for the cell?). Pass it to the cell by name.",
                    name) from None
        value = self._value(name, content, frames, ask.client)
        if type(value) is types.FunctionType and store.of_another_run(  # one that stayed
                value, self.namespace, getattr(getattr(_engine, "kernel", None), "shell", None)):
            # here (`eval('helper')(2)`) reads its globals here, as a run's input's twin does
            # (:meth:`.core.Engine.functions_see_this_run`): it read its old ones (NameError)
            value = store.twin_in(self.namespace, value)
        self.namespace[name] = value
        self.fetched.append(name)
        if content.get("watch") is True and name not in self.watched:
            digest = watching.digest(value, self.watch_bytes, frozenset(
                id(obj) for obj, _ in self.watched.values() if isinstance(obj, type)))
            if digest is not None:
                self.watched[name] = (value, digest)
        return value

    def _value(self, name: str, content: dict, frames: list, client: str) -> Any:
        """The value an answer carries; KeyError when not found; NameError saying why when refused."""
        if content.get("name") != name:
            raise _not_fetched(f"name '{name}': the notebook's answer was for another name "
                             f"({str(content.get('name'))[:80]!r}); refused.", name)
        if content.get("found") is not True:
            error = content.get("error")
            if isinstance(error, str) and error:
                raise _not_fetched(f"name '{name}' could not be fetched from the notebook: "
                                 f"{error}", name)
            raise KeyError(name)  # not defined there either: a plain cell's NameError
        nframes = content.get("nframes")
        if not isinstance(nframes, int) or nframes < 1 or nframes != len(frames):
            raise _not_fetched(f"name '{name}': the notebook's answer is malformed ({nframes!r} "
                             f"frames announced, {len(frames)} sent); refused.", name)
        try:
            with serialize.resolving(_engine.resolver(client)), \
                    serialize.cell_namespace(self.namespace):  # a function: the run's globals
                return serialize.loads(frames)
        except Exception as err:
            raise _not_fetched(f"the notebook's value of '{name}' could not be unpickled in the "
                             f"remote kernel: {type(err).__name__}: {err}", name) from err


class RunModule(types.ModuleType):
    """A run's module (``__main__`` while its cell runs): a name it lacks, asked of it as an
    attribute, is the notebook's, fetched on first use when the run's client listens. Code that
    finds names in ``__main__`` by attribute does so: pickle's ``find_class`` unpickling objects
    of a notebook class (``pickle.load`` of a results file, ``pd.read_pickle``), ``from
    __main__ import f`` (``timeit``'s setup), ``getattr(sys.modules['__main__'], n)`` (hunt 21
    H21-17: AttributeError "Can't get attribute 'Result' on <module '__main__'>"). Its
    namespace holds no name for this (``dir()`` in the cell lists what a plain cell's does)."""

    def __getattr__(self, name: str) -> Any:
        found = vars(self).get("__builtins__")
        if not isinstance(found, Builtins) or not found.listening \
                or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(f"module '__main__' has no attribute '{name}'")
        try:
            return found.fetch(name)
        except KeyError:
            raise AttributeError(f"module '__main__' has no attribute '{name}'") from None


def for_run(content: dict, namespace: dict, parent: dict, watched: dict,
            watch_bytes: int) -> Builtins | None:
    """Give ``namespace`` the builtins that fetch on first use, when the run's client listens.

    ``watched`` (``{name: (object, digest)}``) gets each fetched value whose pickle is at most
    ``watch_bytes``, when the client says it may change. Returns the builtins (:func:`close`
    them when the run ends), or None for a run whose client does not listen.
    """
    if not content.get("lookup") or _engine is None:
        return None
    found = Builtins(namespace, parent, watched, watch_bytes)
    namespace["__builtins__"] = found
    return found


def for_call(content: dict, parent: dict, watched: dict, watch_bytes: int) -> Builtins | None:
    """The builtins that fetch on first use for a plain cell's call of a function that stayed
    remote, when its client listens (the request's ``lookup``), as :func:`for_run`'s for a
    run; the caller gives them the call's namespace (``namespace``). None otherwise."""
    if not content.get("lookup") or _engine is None:
        return None
    return Builtins({}, parent, watched, watch_bytes)


def close(found: Builtins | None) -> None:
    """The run is over: its client answers no more (functions it made still run, without)."""
    if found is not None:
        found.listening = False


def fetched(namespace: dict) -> list[str]:
    """The names a run's namespace was given on first use (they count as its inputs)."""
    found = namespace.get("__builtins__")
    return list(found.fetched) if isinstance(found, Builtins) else []
