"""Live proxy operations, client side: one ``remote_op_request`` on a remote object.

A :class:`~remote_magics.cells.proxy.RemoteObject` turns Python's operators (``len(p)``,
``p[i]``, ``p.attr``, calls, iteration, arithmetic) into one operation each (:mod:`remote_magics.
wire.protocol`'s ``LIVE_OPS``); :func:`request` sends it and returns the engine's reply. The
result comes back by the proxy's download policy (small → value, big → a new proxy).

Operations use the target's main connection, so they belong to the notebook's thread; while
an async job runs on the target they wait for it (tab completion and previews do not wait).
"""
from __future__ import annotations

import linecache
import socket
import sys
from typing import Any, Callable

from ..client.connection import Reply, job_queue_of_thread
from ..client.handshake import across_versions, bytecode_barrier
from ..errors import RemoteError, SerializationError
from ..wire import protocol, serialize
from . import display
from .agreed import settings_agreed

#: Items fetched per round trip when iterating over a proxy.
ITER_CHUNK = 1000
#: The most items a round trip fetches when iterating over a proxy of one of
#: :data:`READ_AHEAD_TYPES`, doubling from :data:`ITER_CHUNK`.
ITER_CHUNK_MOST = 64_000
#: The types (as a proxy's descriptor names them) whose iteration reading ahead cannot change:
#: containers, not iterators or generators.
READ_AHEAD_TYPES = frozenset({"list", "tuple", "dict", "set", "frozenset", "str", "bytes",
                              "range", "numpy.ndarray", "pandas.core.series.Series",
                              "pandas.core.indexes.base.Index", "pandas.core.frame.DataFrame"})
#: Seconds a preview or a completion may take before it goes without (never interrupting).
PREVIEW_TIMEOUT = 10.0


#: Operations that run the object's code, which may warn its caller (pandas' deprecations, a
#: write to a broadcast array, ``z / 0``): the notebook's line that asked goes with them
#: (:func:`callers_line`).
CALLING_OPS = frozenset(("call", "getattr", "getitem", "setitem", "delitem", "setattr",
                         "delattr", "binop", "unop", "len", "bool", "str", "contains"))


def callers_line() -> list | None:
    """The notebook cell's line that asked for an operation: its file, line number and text, as
    a warning names it; None when the first frame outside remote_magics is not a cell's
    (a library that handed a proxy on)."""
    frame = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(
            "remote_magics"):
        frame = frame.f_back
    if frame is None or frame.f_globals.get("__name__") != "__main__":
        return None
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    return [filename, lineno, linecache.getline(filename, lineno)]


#: Operations that only look at the object (a property read by ``getattr`` aside): a proxy's
#: summary made before them still holds.
LOOKING_OPS = frozenset(("getattr", "getitem", "len", "bool", "contains", "dir", "preview",
                         "keys", "str", "summary"))


def _your_modules_for(target: Any) -> list:
    """Your modules, for a call to an engine on this host (which imports them from the same
    files); none for another host, where a call's modules are the engine's own."""
    details = getattr(target, "details", None) or {}
    if details.get("hostname", socket.gethostname()) != socket.gethostname():
        return []
    return serialize.own_modules()


def _call_payload(call: tuple, names: dict | None, figure: Any) -> tuple:
    """What an operation's frames hold: its arguments and keywords, then the notebook's values
    of the globals it reads, then the current figure (each only when there is one)."""
    if figure is not None:
        return (*call, names or {}, figure)
    return (*call, names) if names else call


def request(target: Any, object_id: str, op: str, *, download: str, limit: int,
            name: str | None = None, args: tuple = (), kwargs: dict | None = None,
            chunk: int | None = None, timeout: float | None = None,
            patience: float | None = None, names: dict | None = None,
            check_proxies: Callable[[list], None] | None = None,
            watch: list | None = None, sent: list | None = None,
            on_lookup: Callable[[str], Any] | None = None,
            optional: set[str] | None = None, figure: Any = None,
            on_error: Callable[[Reply], None] | None = None) -> Reply:
    """Send one operation on the object ``object_id`` of ``target``; its reply (raises RemoteError).

    It waits its turn behind the target's jobs (as every Target request does). ``patience``
    gives up without interrupting the kernel, for previews and completions. The proxies among
    the arguments go to ``check_proxies`` (they must live on the same target). ``names``: for a
    call, the notebook's values of the globals the function reads (see
    :meth:`.proxy.RemoteObject.__call__`); ``watch``: for a call, the arguments the engine
    digests before and after it, and sends back when changed; ``sent`` gets the pickler's memo
    of the arguments (:func:`~..wire.serialize.dumps`); ``on_lookup``: for a call, answers the
    engine's asks for the notebook's names as it runs (fetch on first use, ``eval(name)``);
    ``optional``: those of ``names`` that are left out when they cannot be pickled (the
    notebook's other names, for a function that looks at them all), as a run leaves them;
    ``figure``: for a call, the notebook's current pyplot figure, current there while it runs;
    ``on_error``: given an error reply before its error is raised (a call's changes before it
    raised).
    """
    if job_queue_of_thread() is not None:
        raise RuntimeError(
            "live proxy operations use the target's main connection and must run on the "
            "notebook's thread, not in a job's or a channel's callback; pass the value to the "
            "remote cell instead")
    content = {"id": object_id, "op": op, "name": name, "download": download, "bytes": limit,
               "chunk": chunk, "nframes": 0}
    if op not in LOOKING_OPS and hasattr(target, "changes"):  # a proxy's card is asked again
        target.changes += 1
    if op in CALLING_OPS and patience is None:
        caller = callers_line()
        if caller is not None:
            content["caller"] = caller
    agreed = settings_agreed(target) if op == "call" and patience is None \
        or op in protocol.SHOWING_OPS else None
    if agreed is not None:  # as for a remote cell: its `input()` asks the notebook's frontend
        # (hunt 32 H32-5: EOFError), and `np.set_printoptions`, `%cd` of a plain cell hold
        content["stdin"] = display.stdin_allowed()  # for it (H32-6)
        changed = agreed.send_with_call()
        if changed:
            content["settings"] = changed
    if watch:
        content["watch"] = watch
    if on_lookup is not None and op == "call":
        content["lookup"] = True
    if op == "call" and serialize.own_module_names():  # (those a call imports first come back)
        content["loaded_modules"] = sorted(serialize.own_module_names())
    gone = serialize.own_modules_gone(target.engine_id) if op == "call" else []
    if gone:  # `del sys.modules['m']` here: not there either (hunt 37 H37-4)
        content["modules_gone"] = gone
    frames: list = []
    if figure is not None and op == "call":
        content["figure"] = True
    else:
        figure = None
    if args or kwargs or names or figure is not None:
        barrier = bytecode_barrier(getattr(target, "details", None) or {})
        # your modules, to an engine on this host, as their file with the globals that hold
        # data (hunt 34 H34-6: a call's `cfgmod.CONFIG` was the engine's module's); not by
        # value, as a run sends them: a call in a loop paid that each time (30 ms a call for a
        # module of 120 definitions)
        with serialize.by_file(_your_modules_for(target)), \
                serialize.noting_proxies() as noted:
            try:
                call = (tuple(args), dict(kwargs or {}))
                try:
                    frames = serialize.dumps(_call_payload(call, names, figure),
                                             bytecode=barrier is None, sent=sent)
                except Exception:
                    if not optional:
                        raise
                    names = {name: value for name, value in names.items()
                             if name not in optional or _pickles(value, barrier is None)}
                    if sent is not None:
                        sent.clear()
                    frames = serialize.dumps(_call_payload(call, names, figure),
                                             bytecode=barrier is None, sent=sent)
            except serialize.BytecodeByValue as err:
                raise SerializationError(f"an argument of {op}", (args, kwargs),
                                         across_versions(err, barrier)) from None
            except Exception as err:
                raise SerializationError(f"an argument of {op}", (args, kwargs), err) from err
        if noted and check_proxies is not None:
            check_proxies(noted)
        content["nframes"] = len(frames)
    # what the code it runs prints or shows appears in the cell, as it would plainly (a
    # function that stayed remote, called from a plain cell); previews and completions are
    # ours, and show nothing
    reply = target.request(protocol.OP_REQUEST, content, frames, timeout=timeout,
                           patience=patience,
                           on_output=display.show_as_written if patience is None else None,
                           on_lookup=on_lookup if "lookup" in content else None)
    if agreed is not None and reply.content.get("settings"):  # what the call set there
        agreed.take_from_call(reply.content["settings"])
    if reply.content.get("status") != "ok":
        if on_error is not None:
            on_error(reply)
        error = RemoteError.from_reply(reply.content, target.name, _exception_of(reply, target))
        error.called_here = True  # shown below the notebook's own frames that called it
        raise error
    return reply


def _pickles(value: Any, bytecode: bool) -> bool:
    """Whether ``value`` can be pickled for the engine."""
    try:
        serialize.dumps(value, bytecode=bytecode)
    except Exception:  # noqa: BLE001 - whatever stops it, it cannot go
        return False
    return True


def _exception_of(reply: Reply, target: Any) -> BaseException | None:
    """The exception an operation raised, as it crossed (its args, its attributes), or None
    when it did not (it does not pickle, or not here)."""
    count = reply.content.get("exception")
    if not isinstance(count, int) or not 0 < count <= len(reply.frames):
        return None
    barrier = bytecode_barrier(getattr(target, "details", None) or {})
    try:
        found = serialize.loads(reply.frames[:count], bytecode=barrier is None)
    except Exception:  # noqa: BLE001 - a class this side lacks: its text says enough
        return None
    return found if isinstance(found, BaseException) else None
