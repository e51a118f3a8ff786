"""Live proxies, engine side: one operation on a stored object per ``remote_op_request``.

Runs inside the remote kernel next to :mod:`.core` and is shipped with it as source, so its
imports are the standard library, ipykernel and cloudpickle only. Results go back through the
engine's own encoding (:meth:`Engine.encode`), so a live operation's result follows the same
download policy as a cell's names: small values come back, big ones stay remote as new proxies.
"""
from __future__ import annotations

import builtins
import contextlib
import functools
import inspect
import itertools
import linecache
import logging
import operator
import reprlib
import signal
import sys
import threading
import traceback
import types
from typing import Any, Iterator

from ..wire import protocol, serialize
from . import lookup, settings, store, tracebacks, watching, yours
from .atoms import TWINNED, atom

log = logging.getLogger(__name__)

#: Operator names a binop/unop may use; each is a function of :mod:`operator`.
BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and_", "or_",
          "xor", "lshift", "rshift", "eq", "ne", "lt", "le", "gt", "ge")
UNARY = ("neg", "pos", "abs", "invert")
#: In-place operator names (``x *= 2`` on a proxy): each a function of :mod:`operator`.
INPLACE = ("iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "imatmul", "iand",
           "ior", "ixor", "ilshift", "irshift")
#: Rows (items) a preview shows.
PREVIEW_ROWS = 10
#: Characters of a preview's text, at most.
PREVIEW_CHARS = 4000


def install(engine: Any) -> None:
    """Register the ``remote_op_request`` handler with the engine's kernel."""

    async def op_request(stream, ident, parent) -> None:
        await handle(engine, stream, ident, parent)

    engine.kernel.shell_handlers[protocol.OP_REQUEST] = engine.guard(op_request)


async def handle(engine: Any, stream, ident, parent: dict) -> None:
    """Apply one operation and reply; always replies, whatever the operation raises. An
    async generator's next item is awaited in the kernel's own event loop, the one its cell's
    top-level ``await`` ran in."""
    if not engine.authentic(parent):
        return
    content = parent["content"]
    client = protocol.client_of(parent)
    frames: list = []
    failed: Exception | None = None
    before = _take_settings(content)
    try:
        # a call's `input()` asks the notebook; what it runs or loads (a module of yours
        # whose top level calls `get_ipython()`) finds IPython's builtins, as in a cell
        with lookup.input_forwarded(content), engine.ipythons_builtins():
            reply = _apply(engine, content, parent, client, frames)
        if inspect.isawaitable(reply):
            reply = await reply
    except CallRaised as raised:  # its error, with what it changed before (after the error's
        reply = {**_error(raised.error, getattr(engine.kernel, "shell", None)),  # frames)
                 **raised.changes}
        failed = raised.error
    except BaseException as err:  # the client waits for a reply whatever happens
        frames = []
        reply = _error(err, getattr(engine.kernel, "shell", None))
        failed = err if isinstance(err, Exception) else None  # not an interrupt
    if before is not None:
        _settings_changed(before, reply)
    if failed is not None and content.get("op") == "call":  # the plain cell shows it: here
        settings.take({"sys.last_value": failed})  # too, as for a cell's (hunt 40 H40-10)
    if content.get("op") in _RUNS_CODE:
        _show_figures(engine)
    # an interrupt that comes now is for an operation already over (the client interrupts when
    # its user stops, and it knows): it must not cut the reply short (a message half sent made
    # the next one fail its signature check) nor fail the handler (no reply at all)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        if failed is not None:  # the exception itself: its args and attributes (`KeyError(2.5)`,
            try:                # `err.code`), which its text alone loses, first
                error_frames = serialize.dumps(failed, ERROR_BYTES)
                reply["exception"] = len(error_frames)
            except BaseException:  # noqa: BLE001 - one that does not pickle: its text only
                error_frames = []
            frames = [*error_frames, *frames]
        engine.reply(stream, ident, parent, reply, frames)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


class CallRaised(Exception):
    """A call's own error, with the reply's fields for what it changed before it raised
    (``changes``: ``changed``, ``rebound``, ``module_rebound``, their frames in the
    operation's): the notebook takes them, then raises the error (hunt 36 H36-7: `log.append(x);
    raise ...` left the notebook's `log` unchanged)."""

    def __init__(self, error: Exception, changes: dict) -> None:
        super().__init__(error)
        self.error, self.changes = error, changes


#: The operations that run the object's own code (a call, a property, ``__getitem__``, an
#: operator), which may draw.
_RUNS_CODE = frozenset({"call", "getattr", "getitem", "binop", "unop", "enter", "exit"})


def _take_settings(content: dict) -> dict | None:
    """For a plain cell's call of a function that stayed remote: take the settings the notebook
    sent with it (hunt 32 H32-6: after a plain `np.set_printoptions(precision=2)`, `os.chdir`,
    `warnings.simplefilter('error')` or `sys.setrecursionlimit(5000)`, the call printed, read
    and failed as without them), or for a showing of a value (``protocol.SHOWING_OPS``), and
    return this process's settings then; None for another operation."""
    op = content.get("op")
    if op != "call" and op not in protocol.SHOWING_OPS:
        return None
    if content.get("settings"):
        settings.take(settings.decode(content["settings"]))
    return settings.snapshot()


def _settings_changed(before: dict, reply: dict) -> None:
    """Put into a call's ``reply`` the settings the call changed (but the random generators',
    which stay the engine's for a proxy's operations), for the notebook to take."""
    changed = settings.differing(settings.snapshot(), before, random=False)
    if changed:
        reply["settings"] = settings.encode(changed)


def _show_figures(engine: Any) -> None:
    """Show the figures an operation drew (``draw_graph(G)`` called through its proxy from a
    plain cell), with the operation, as a cell's are shown when it ends; before, they came out
    with the next remote cell. Nothing to do without pyplot, or with no figure open."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    try:
        drawn = pyplot is not None and bool(pyplot.get_fignums())
    except Exception:
        drawn = False
    if drawn:
        engine.flush_figures()


def _apply(engine: Any, content: dict, parent: dict, client: str, frames: list) -> dict:
    op, name = content.get("op"), content.get("name")
    buffers = parent["buffers"]
    if op not in protocol.LIVE_OPS:
        raise ValueError(f"unknown live operation {op!r}")
    try:
        obj = engine.store.get(content.get("id", ""), client)
    except KeyError:
        raise LookupError(f"remote object {content.get('id')} is not held for this client "
                          "(released, or the kernel restarted)") from None
    args: tuple = ()
    kwargs: dict = {}
    names = None
    more: list = []
    memos: list = []  # the objects the arguments brought, for a call's changes to them
    # your modules as the call began: the notebook's values of their globals come with it
    if op == "call" and isinstance(content.get("modules_gone"), list):
        serialize.forget_modules(content["modules_gone"])  # (hunt 37 H37-4)
    at_start = serialize.senders_modules_now() if op == "call" else None
    if content.get("nframes"):
        with serialize.resolving(engine.resolver(client)):
            args, kwargs, *more = serialize.loads(buffers[: content["nframes"]], memos=memos)
        names = (more[0] or None) if more and isinstance(more[0], dict) else None
    figure = more[1] if content.get("figure") and len(more) > 1 else None
    modules = None if at_start is None else \
        yours.YourModules.now(at_start, definitions=False,
                              reached=yours.modules_reached(obj, names))
    if op in protocol.JSON_OPS:
        return {"status": "ok", "value": _json_op(obj, op, name, args, content.get("caller"))}
    if op == "next":
        return _next_chunk(engine, obj, content, client, frames)
    if op == "anext":
        return _next_async(engine, obj, content, client, frames)
    if op == "await":
        return _awaited(engine, obj, content, client, frames)
    policy = {"download": content.get("download", "small"), "bytes": content.get("bytes")}
    caller = content.get("caller")
    if op == "getattr":
        result = _as_asked(caller, getattr, obj, name)
        if callable(result) and not isinstance(result, type):
            policy["download"] = "none"  # a bound method would pickle its whole object
    elif op == "getitem":
        result = _as_asked(caller, operator.getitem, obj, args[0])
    elif op == "call":
        if names:
            _take_globals(obj, names)
        watched = _watch_arguments(args, kwargs, names or {}, content.get("watch"), figure)
        fetched: dict = {}  # the notebook's values it reads on first use, watched as globals
        function, shared, twinned, asking = _in_one_namespace(
            engine, obj, names, lookup.for_call(content, parent, fetched, ARGUMENT_WATCH_BYTES))
        stored = _globals_stored(obj, shared)
        before = dict(shared) if asking is not None else None
        raised: Exception | None = None
        try:
            try:
                with _drawing_on(figure):
                    result = _as_asked_seeing(caller, names, function, args, kwargs)
            except Exception as err:  # noqa: BLE001 - what it changed before it raised goes
                raised, result = err, None  # back too, as plainly (hunt 36 H36-7)
            finally:
                engine.put_back(twinned)
                lookup.close(asking)
                watched.update((f"g:{name}", each) for name, each in fetched.items())
            if before is not None:  # `globals()[name] = value`, `del globals()[name]`
                stored += _bound_unseen(shared, before, stored)
            output = engine.encode("result", result, policy, client, frames) \
                if raised is None else None
            changed = {key: value for key, (value, digest) in watched.items()
                       if watching.changed(value, digest, ARGUMENT_WATCH_BYTES)}
            changed.update((f"{protocol.MODULE_KEY}{module}:{name}", value)
                           for module, name, value in [
                               *yours.globals_changed(modules.globals, modules.linked),
                               *yours.definitions_changed(modules.definitions,
                                                          modules.linked)])
        finally:
            watching.close(watched)
        reply = {"status": "ok", "output": output} if raised is None else {}
        if changed:
            try:
                reply["changed"] = _changed_arguments(changed, frames, memos)
            except Exception:  # noqa: BLE001 - the call is over: its changes stay here
                log.warning("remote_magics: a call changed its arguments in ways that cannot be "
                            "sent back", exc_info=True)
        rebound = _rebound(engine, stored, policy, client, frames)
        if shared is not None:  # what it bound there, the cells' namespaces here keep too
            _keep_bound(obj, stored)
        if rebound:
            reply["rebound"] = rebound
        in_modules = _rebound_in_modules(engine, modules, changed, policy, client, frames)
        if in_modules:
            reply["module_rebound"] = in_modules
        imported = _imported_by_call(engine, modules, content, client, frames)
        if imported:
            reply["imported"] = imported
        if raised is not None:
            raise CallRaised(raised, reply)
        return reply
    elif op == "enter":  # `with p:` in a plain cell
        kind = type(obj)
        lacks = [method for method in ("__enter__", "__exit__") if not hasattr(kind, method)]
        if lacks:  # the notebook raises the TypeError its own `with` would
            return {"status": "ok", "lacks": lacks, "type": kind.__name__}
        result = kind.__enter__(obj)
        if result is obj:  # a file's, a connection's: `with f as g` gives `g is f`, as plainly
            return {"status": "ok", "same": True}
    elif op == "iter":
        result = iter(obj)
        policy["download"] = "none"
    elif op == "binop" and name in INPLACE:  # `pmf *= likelihood` in a plain cell
        result = _as_asked(caller, getattr(operator, name), obj, args[0])
        if result is obj:  # changed in place, as plainly: the proxy stays the same object
            return {"status": "ok", "same": True}
    elif op == "binop":
        result = _binop(caller, obj, name, args[0])
    elif op == "unop":
        if name not in UNARY:
            raise ValueError(f"unknown unary operator {name!r}")
        result = _as_asked(caller, getattr(operator, name), obj)
    else:  # pragma: no cover - LIVE_OPS and the branches above agree
        raise ValueError(f"unknown live operation {op!r}")
    return {"status": "ok", "output": engine.encode("result", result, policy, client, frames)}


@contextlib.contextmanager
def _drawing_on(figure: Any) -> Iterator[None]:
    """Within: ``figure`` (the copy of the notebook's current figure a call came with) is
    pyplot's current figure, as the notebook's is to a plain call there (``plt.text(...)``
    draws on it: hunt 34 H34-2); then pyplot lets it go, unshown (the notebook shows its own,
    which takes what the call drew), its number as the notebook's
    (:func:`.settings.lend_to_pyplot`)."""
    if figure is not None:
        settings.lend_to_pyplot(figure)
    try:
        yield
    finally:
        settings.return_lent_figures()  # (one the call closed stays open there: not followed)


def _as_asked(caller: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
    """:func:`_as_asked_seeing` with no names of the notebook's."""
    return _as_asked_seeing(caller, None, function, args, kwargs)


def _as_asked_seeing(caller: Any, names: dict | None, function: Any, args: tuple,
                     kwargs: dict) -> Any:
    """``function(*args, **kwargs)``, called from the notebook cell's line that asked for it
    (``caller``: file, line number and text, :func:`..cells.live.callers_line`) as code of
    ``__main__``: a warning the code raises for its caller (pandas' deprecations,
    ``stacklevel=2``) names that line and shows as it does plainly; Python shows a
    DeprecationWarning only for ``__main__``'s code, so called from here it was dropped (hunt
    18 C8). ``getattr``, ``setattr`` and ``operator``'s functions add no frame of their own.
    Without a caller, called here. ``names``: the notebook's values the call was sent, which
    that line's frame holds as its own, where pandas looks up a ``query``'s ``@mu`` (hunt 31
    H31-3: ``UndefinedVariableError`` under ``none``)."""
    if not (isinstance(caller, list) and len(caller) == 3 and isinstance(caller[0], str)
            and type(caller[1]) is int and 0 < caller[1] <= 100_000):
        return function(*args, **kwargs)
    filename, lineno, line = caller
    entry = linecache.cache.get(filename)
    if isinstance(line, str) and (entry is None or (len(entry) == 4 and entry[1] is None)):
        lines = list(entry[2]) if entry is not None else []  # the line the warning shows
        lines.extend([""] * (lineno - len(lines)))
        lines[lineno - 1] = line if line.endswith("\n") else line + "\n"
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    if filename not in _caller_globals and len(_caller_globals) >= 1000:
        _caller_globals.clear()  # (a warning shown once per place may show once more)
    scope = _caller_globals.setdefault(filename, {"__name__": "__main__",
                                                  "__builtins__": builtins})
    called = {**(names or {}), "_function": function, "_args": args, "_kwargs": kwargs}
    exec(_compiled(filename, lineno), scope, called)
    return called["_result"]


_caller_globals: dict[str, dict] = {}  # each notebook cell file's stand-in module globals


@functools.lru_cache(maxsize=512)
def _compiled(filename: str, lineno: int) -> types.CodeType:
    return compile("\n" * (lineno - 1) + "_result = _function(*_args, **_kwargs)", filename,
                   "exec")


#: An argument whose pickle is over this (its big buffers aside: :mod:`.watching`) is not
#: watched for changes a call makes to it.
ARGUMENT_WATCH_BYTES = 64 << 20


def _watch_arguments(args: tuple, kwargs: dict, names: dict, keys: Any,
                     figure: Any = None) -> dict:
    """The arguments the notebook asked to watch (``"0"``, ``"1"``: positions; ``"k:name"``: a
    keyword's; ``"g:name"``: a notebook global the function reads, sent with the call; ``"f"``:
    the notebook's current figure, ``figure``), with a digest of each now:
    ``{key: (value, digest)}``."""
    if not isinstance(keys, list):
        return {}
    watched = {}
    for key in keys:
        if not isinstance(key, str):
            continue
        if key == "f":
            if figure is None:
                continue
            value = figure
        elif key.startswith(("k:", "g:")):
            found = kwargs if key[0] == "k" else names
            if key[2:] not in found:
                continue
            value = found[key[2:]]
        elif key.isdigit() and int(key) < len(args):
            value = args[int(key)]
        else:
            continue
        digest = watching.digest(value, ARGUMENT_WATCH_BYTES)
        if digest is not None:
            watched[key] = (value, digest)
    return watched


def _changed_arguments(changed: dict, frames: list, memos: list) -> dict:
    """The arguments a call changed in place, pickled after the result's frames as the
    notebook's own objects (:func:`~..wire.serialize.returning`): an object of a Python class,
    a list, dict or set takes its new state or contents there, and so do the objects the
    arguments brought inside them (``memos``: ``state['seen']``, the notebook's own list); another
    kind the notebook updates in place. ``{"keys": [...], "nframes": n}``."""
    keys = list(changed)
    with serialize.returning(changed, keys, inner=serialize.InnerIndex(memos) if memos else None):
        item = serialize.dumps([changed[key] for key in keys])  # before frames grow: all or none
    frames.extend(item)
    return {"keys": keys, "nframes": len(item)}


#: A global a call had not bound before it.
_UNBOUND = object()


def _in_one_namespace(engine: Any, obj: Any, names: dict | None,
                      asking: Any = None) -> tuple[Any, dict | None, list, Any]:
    """What a call from a plain cell runs: for a cell's function given the notebook's globals,
    a twin of it whose globals are one namespace for this call, holding those globals (the
    cells' functions among them twins too, :meth:`~.core.Engine.functions_see_this_run`): a
    global one of them rebinds is the one the others read, as in the notebook's one namespace
    (hunt 20 H20-26: `parse_line` set `TOKENS` in its cell's namespace and `pop`, of another
    cell, read its own). Else ``obj`` itself, and None. And where twins took a place in lists
    and dicts, for the engine to put back when the call is over.

    ``asking``: the builtins that ask the notebook for a name on first use
    (:func:`.lookup.for_call`), for a call whose client answers, as a remote cell's run has
    them. For a cell's function or method, the one namespace is made with them, whether
    globals came or not: its code finds the notebook's names there (``eval(name)``; hunt 32
    H32-7: NameError) and binds them there (``globals()[name] = value``), as a plain call
    does in the notebook's namespace. Returned last, or None when not used."""
    function = obj.__func__ if type(obj) is types.MethodType else obj
    if type(function) is not types.FunctionType \
            or function.__globals__.get("__name__") != "__main__":
        return obj, None, [], None
    method = function is not obj
    if asking is None and (method or not names):
        return obj, None, [], None
    shared = {"__name__": "__main__", "__builtins__": builtins, **(names or {}),
              _CALLED: function}
    if method:  # its class's other methods see the one namespace too (`self.helper()`)
        shared[_OWNER] = obj.__self__
    if asking is not None:  # before the twins are made: they take the builtins there
        asking.namespace = shared
        shared["__builtins__"] = asking
    twinned = engine.functions_see_this_run(shared, asks=asking is not None)
    called = shared.pop(_CALLED)
    if method:
        called = types.MethodType(called, shared.pop(_OWNER))
    return called, shared, twinned, asking


#: Where :func:`_in_one_namespace` puts the called function, for it to be twinned with the
#: rest, and the object a called method is bound to.
_CALLED = "__remote_magics_called__"
_OWNER = "__remote_magics_owner__"


def _bound_unseen(shared: dict, before: dict, stored: list) -> list[tuple[dict, str, Any]]:
    """What a call bound, rebound or deleted in its one namespace that its code does not name
    (``globals()[name] = value``), as :func:`_globals_stored` lists what it names: not the
    names it fetched from the notebook, nor dunder names."""
    named = {name for _, name, _ in stored}
    fetched = set(lookup.fetched(shared))
    return [(shared, name, before.get(name, _UNBOUND))
            for name in (*shared, *(name for name in before if name not in shared))
            if name not in named and name not in fetched and not name.startswith("__")
            and shared.get(name, _UNBOUND) is not before.get(name, _UNBOUND)]


def _globals_stored(obj: Any, shared: dict | None = None) -> list[tuple[dict, str, Any]]:
    """The globals of a cell's namespace that ``obj``'s functions (:func:`.store.cell_functions`)
    bind or delete (``global counter``), each with its value before the call: ``(namespace,
    name, value)``, :data:`_UNBOUND` for one not bound. ``shared``: the one namespace the call
    runs its functions in (:func:`_in_one_namespace`), where they bind them."""
    found = []
    for function in store.cell_functions(obj):
        namespace = function.__globals__
        if namespace.get("__name__") == "__main__":
            into = namespace if shared is None else shared
            found.extend((into, name, into.get(name, _UNBOUND))
                         for name in sorted(serialize.code_stores_globals(function.__code__)))
    return found


def _keep_bound(obj: Any, stored: list) -> None:
    """Bind in the namespaces of ``obj``'s cell functions the globals the call bound or
    deleted in its one namespace (``stored``, from :func:`_globals_stored`)."""
    changed = {name: namespace.get(name, _UNBOUND) for namespace, name, before in stored
               if namespace.get(name, _UNBOUND) is not before}
    for function in store.cell_functions(obj):
        namespace = function.__globals__
        if namespace.get("__name__") != "__main__":
            continue
        for name, value in changed.items():
            if value is _UNBOUND:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def _rebound(engine: Any, stored: list, policy: dict, client: str, frames: list) -> list:
    """The notebook's globals a call from a plain cell bound anew or deleted (``global
    counter; counter += 1`` in a function that stayed remote): each as ``{"name", "output"}``
    by the call's download policy, its frames after the others', or ``{"name", "deleted":
    True}``, for the notebook to bind as a plain call would have (hunt 18 C10: the engine's
    global moved on and the notebook's stayed, and the next remote cell sent the old one)."""
    found, seen = [], set()
    for namespace, name, before in stored:
        now = namespace.get(name, _UNBOUND)
        if now is before or name in seen:
            continue
        seen.add(name)
        if now is _UNBOUND:
            found.append({"name": name, "deleted": True})
            continue
        try:
            found.append({"name": name,
                          "output": engine.encode(name, now, policy, client, frames)})
        except Exception:  # noqa: BLE001 - the call succeeded: the name stays as it is there
            log.warning("remote_magics: a call bound the global %r, which cannot be sent back",
                        name, exc_info=True)
    return found


def _rebound_in_modules(engine: Any, modules: Any, changed: dict, policy: dict, client: str,
                        frames: list) -> list:
    """The globals of your modules a call bound anew or deleted (``cfgmod.CONFIG = {...}``,
    ``global calls; calls += 1`` in a function of the module), each as ``{"name":
    "module:name", "output"}`` by the call's policy, its frames after the others', or with
    ``"deleted": True``: the notebook's modules take them, as a run's do (hunt 34 H34-6: a
    plain cell's call read and changed the engine's module, not the notebook's)."""
    found: list = []
    for module, name, value in serialize.rebound_since(modules.before, modules.linked):
        if f"{protocol.MODULE_KEY}{module}:{name}" in changed:
            continue
        try:
            found.append({"name": f"{module}:{name}",
                          "output": engine.encode(name, value, policy, client, frames)})
        except Exception:  # noqa: BLE001 - the call succeeded: the global stays as it is here
            log.warning("remote_magics: a call bound %s.%s, which cannot be sent back", module,
                        name, exc_info=True)
    found += [{"name": f"{module}:{name}", "deleted": True}
              for module, name in serialize.deleted_since(modules.before, modules.linked)]
    return found


def _imported_by_call(engine: Any, modules: Any, content: dict, client: str,
                      frames: list) -> list:
    """The modules of yours a call imported first here (``def use(): import fm`` called from a
    plain cell), each as ``{"name", "output"}``, its frames after the others': with the state
    the call left them in, for the notebook's import of them, as a run's (its ``IMPORTED``
    outputs); not those the notebook has loaded (``loaded_modules``)."""
    found: list = []
    for module in modules.imported_first(content.get("loaded_modules") or ()):
        try:
            found.append({"name": module.__name__,
                          "output": engine.encode(module.__name__, module, {"download": "all"},
                                                  client, frames)})
        except Exception:  # noqa: BLE001 - the call is over: the module stays as it is here
            log.warning("remote_magics: a call imported %s, which cannot be sent back",
                        module.__name__, exc_info=True)
    return found


def _take_globals(obj: Any, names: dict) -> None:
    """The notebook's values of the globals a cell's function (a method, a cell class's
    methods, and the cells' functions they call) reads, put into the namespaces they run in,
    before a call from a plain cell: as a run that calls it sends them. Only a cell's namespace
    takes them: a module's globals are its own."""
    done = set()
    for function in store.cell_functions(obj):
        namespace = function.__globals__
        if id(namespace) not in done and namespace.get("__name__") == "__main__":
            done.add(id(namespace))
            namespace.update(names)


def _binop(caller: Any, obj: Any, name: str, other: Any) -> Any:
    """``obj <op> other``, or ``other <op> obj`` for a reflected name such as "radd", from the
    notebook's line that asked (:func:`_as_asked`: ``z / 0``'s RuntimeWarning names it)."""
    reflected = name.startswith("r") and name[1:] in BINARY and name not in BINARY
    base = name[1:] if reflected else name
    if base not in BINARY:
        raise ValueError(f"unknown binary operator {name!r}")
    function = getattr(operator, base)
    return _as_asked(caller, function, other, obj) if reflected \
        else _as_asked(caller, function, obj, other)


def _json_op(obj: Any, op: str, name: str | None, args: tuple, caller: Any = None) -> Any:
    """An operation whose answer is JSON; the object's own code it runs (``__len__``,
    ``__setitem__``), from the notebook's line that asked (:func:`_as_asked`), so that what
    it warns shows as plainly (a write to a broadcast array, hunt 30)."""
    if op == "len":
        return _as_asked(caller, len, obj)
    if op == "bool":
        return _as_asked(caller, bool, obj)
    if op == "str":
        return _as_asked(caller, str, obj)
    if op == "contains":
        return bool(_as_asked(caller, operator.contains, obj, args[0]))
    if op == "dir":
        return sorted(str(entry) for entry in dir(obj))
    if op == "preview":  # and what the card says, as the value is now
        return {**preview(obj), "summary": store.summary(obj)}
    if op == "summary":  # a proxy shown again: what its card says, as the value is now
        return store.summary(obj)
    if op == "keys":
        keys = obj.keys() if hasattr(obj, "keys") else ()
        return [key for key in itertools.islice(keys, 1000) if isinstance(key, (str, int))]
    if op == "exit":  # the with-body's exception class and exception (no traceback), or None
        return bool(type(obj).__exit__(obj, *args[:2], None))
    if op == "setattr":
        _as_asked(caller, setattr, obj, name, args[0])
    elif op == "delattr":
        _as_asked(caller, delattr, obj, name)
    elif op == "setitem":
        _as_asked(caller, operator.setitem, obj, args[0], args[1])
    elif op == "delitem":
        _as_asked(caller, operator.delitem, obj, args[0])
    return None


def _next_chunk(engine: Any, iterator: Any, content: dict, client: str, frames: list) -> dict:
    """Up to ``chunk`` items: as one pickled list when small enough, else one Output each."""
    count = max(1, int(content.get("chunk") or 1))
    items = list(itertools.islice(iterator, count))
    return _items(engine, items, len(items) < count, content, client, frames)


async def _next_async(engine: Any, iterator: Any, content: dict, client: str,
                      frames: list) -> dict:
    """The next item of an async iterator, as :func:`_next_chunk` gives one; none when it
    ends (``StopAsyncIteration``)."""
    try:
        item = await type(iterator).__anext__(iterator)
    except StopAsyncIteration:
        return {"status": "ok", "items": [], "done": True}
    return _items(engine, [item], False, content, client, frames)


async def _awaited(engine: Any, awaitable: Any, content: dict, client: str,
                   frames: list) -> dict:
    """What awaiting a coroutine or a task gives, in the engine's event loop (where a remote
    cell's ``await`` runs it), as :func:`_next_async` gives an item."""
    return _items(engine, [await awaitable], True, content, client, frames)


def _one_array(items: list) -> Any:
    """``items`` as one numpy array when they are numpy numbers, booleans or dates of one
    dtype (an array's items, iterated), whose items are those again; else None."""
    numpy = sys.modules.get("numpy")
    if numpy is None or len(items) < 2 or not isinstance(items[0], numpy.generic):
        return None
    kind, dtype = type(items[0]), items[0].dtype
    if dtype.kind not in "biufcmM" or not all(
            type(item) is kind and item.dtype == dtype for item in items):
        return None
    return numpy.array(items, dtype=dtype)


def _plain_atom(item: Any) -> bool:
    """Whether ``item`` comes back as a value under ``none`` with nothing to say about its
    identity: an atom but a tuple or frozenset (their identity is kept: ``cells.twins``)."""
    return item is None or item is True or item is False \
        or (type(item) not in TWINNED and atom(item))


def _items(engine: Any, items: list, done: bool, content: dict, client: str,
           frames: list) -> dict:
    """The reply of :func:`_next_chunk`: ``items`` as one pickled list when small enough, else
    one Output each. Under ``none`` too when every item is an atom, which comes back as a
    value anyway (iterating a remote array in a plain cell, ``min(p)``: one Output and one
    held reference each made that 40 times slower)."""
    policy = content.get("download", "small")
    if policy != "none" or all(_plain_atom(item) for item in items):
        limit = content.get("bytes") if policy == "small" else None
        packed = _one_array(items)  # a remote array's numbers: one array, not an object each
        try:
            try:
                item = serialize.dumps(items if packed is None else packed, limit)
            except serialize.TooLarge:
                # many atoms, over the limit together and far under it each, come back as
                # values anyway (300,000 short strings read 64,000 a time: hunt 40 H40-4,
                # an Output each made the loop a hundred times slower)
                if packed is not None or not all(_plain_atom(item) for item in items):
                    raise
                item = serialize.dumps(items)
        except serialize.TooLarge:
            pass  # some items are big: each one goes by the policy on its own
        except BaseException:  # noqa: B036 - whatever an item's __reduce__ raises
            pass  # some item cannot be pickled: it stays remote, the others come back
        else:
            frames.extend(item)
            return {"status": "ok", "chunk": len(item), "done": done,
                    **({"array": True} if packed is not None else {})}
    policy_content = {"download": policy, "bytes": content.get("bytes")}
    outputs = [engine.encode("item", value, policy_content, client, frames) for value in items]
    return {"status": "ok", "items": outputs, "done": done}


def preview(obj: Any, rows: int = PREVIEW_ROWS) -> dict:
    """The head of a value as text and, when the value renders as HTML (a DataFrame), as HTML."""
    shown = obj
    head = getattr(obj, "head", None)
    if callable(head) and not isinstance(obj, type):
        try:
            shown = head(rows)
        except Exception:  # a head() with another signature: preview the object itself
            shown = obj
    html = None
    render = getattr(shown, "_repr_html_", None)
    if callable(render) and not isinstance(shown, type):
        try:
            html = render()
        except Exception:
            html = None
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(shown, numpy.ndarray):
        with numpy.printoptions(threshold=rows * 2, edgeitems=max(1, rows // 2)):
            text = repr(shown)
    elif shown is not obj:
        text = repr(shown)
    else:
        short = reprlib.Repr()
        short.maxlist = short.maxtuple = short.maxset = short.maxfrozenset = rows
        short.maxdeque = short.maxarray = short.maxdict = rows
        short.maxstring = short.maxother = 200
        short.maxlevel = 3
        text = short.repr(obj)
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + " …"
    if html is not None and len(html) > 20 * PREVIEW_CHARS:
        html = None
    return {"text": text, "html": html}


#: An operation's exception whose pickle is bigger than this goes as its text only.
ERROR_BYTES = 1 << 20


def _error(err: BaseException, shell: Any = None) -> dict:
    """An operation's error reply: with the frames of your code it ran (a remote function a
    plain cell called: ``Cell In[1], line 2, in risky(v)``), formatted as a cell's, which the
    notebook shows below its own frames (hunt 26 H26-13); just the error's line when it rose
    in ours (``p.missing``)."""
    kind = type(err)
    tb = err.__traceback__
    while tb is not None and (  # ours, and the caller's line :func:`_as_asked` stands in for
            not tracebacks.of_yours(tb)
            or tb.tb_frame.f_globals is _caller_globals.get(tb.tb_frame.f_code.co_filename)):
        tb = tb.tb_next
    if tb is None:
        lines = traceback.format_exception_only(kind, err)
    else:
        lines = tracebacks.error_content(err, tb, shell=shell)["traceback"]
    return {"status": "error", "ename": kind.__name__, "evalue": tracebacks.message(err),
            "etype": f"{kind.__module__}.{kind.__qualname__}", "traceback": lines}

