"""The engine: our shell handlers inside the remote kernel.

An ordinary ipykernel kernel that also answers the shell messages of
:mod:`remote_magics.wire.protocol` (run, fetch, release, info, chunks of uploads) and keeps an
object store for the values that stay remote. Started as ``python -m remote_magics.engine -f
CONNECTION_FILE`` (:func:`main`), or installed into any running ipykernel by :func:`install`
(the client ships the engine's source when remote_magics is not importable there). Its imports
are the standard library, ipykernel, cloudpickle and the wire format only.
"""
from __future__ import annotations

import ast
import asyncio
import base64
import builtins
import collections.abc
import contextlib
import contextvars
import dataclasses
import datetime
import enum
import functools
import gc
import importlib.util
import io
import itertools
import json
import linecache
import numbers
import os
import platform
import secrets
import socket
import sys
import threading
import types
from typing import Any, Callable, Iterable, Sequence

from ..wire import (copy_on_write, dataport, in_place, protocol, serialize, shared, sources,
                    streaming)
from . import (activity, caches, channels, forking, interactive, jobs, kept, launching, live,
               lookup, namespace, pages, persist, quiet, settings, tracebacks, watching)
from .atoms import TWINNED, atom
from .store import FUNCTIONS_IN_CONTAINERS, ObjectStore, describe, of_another_run, twin_in
from .yours import YourModules, definitions_changed, globals_changed

#: True in the context of a run (and of the threads it starts, which inherit its context).
IN_RUN: contextvars.ContextVar[bool] = contextvars.ContextVar("remote_magics_in_run",
                                                              default=False)


def inherit_run_context() -> None:
    """Make threads that a run starts inherit its context (once per process).

    ipykernel takes an output's parent from a context variable, and a new thread starts with an
    empty context: it falls back to whatever request the kernel handles when it prints, so a
    thread's output after its cell went to a later request, or to none. Started in a copy of the
    run's context, it keeps the run as the parent of everything it prints; the client shows what
    comes after the run as late output. Threads started outside our runs are left alone.
    """
    original = threading.Thread.start
    if getattr(original, "remote_magics_inherits", False):
        return

    @functools.wraps(original)
    def start(thread: threading.Thread, *args: Any, **kwargs: Any) -> None:
        if IN_RUN.get():
            try:
                thread.run = functools.partial(contextvars.copy_context().run, thread.run)
            except AttributeError:  # a Thread subclass with __slots__: it prints as before
                pass
        return original(thread, *args, **kwargs)

    start.remote_magics_inherits = True  # type: ignore[attr-defined]
    threading.Thread.start = start  # type: ignore[method-assign]


class _Placeholder:
    """What a name the cell may delete (and does not read) holds until the cell binds it."""

    def __repr__(self) -> str:
        return "<the notebook's value, not sent>"


#: The value of such a name in the run's namespace: ``del name`` works, and nothing comes back.
PLACEHOLDER = _Placeholder()
#: A result's display not formatted yet (:meth:`Engine.outputs`): formatting may give None.
NOT_SHOWN = object()


#: The most a module of yours a cell imported first sends of its globals (pickled) with it;
#: past that it goes by its name alone (:meth:`Engine.encode`).
MODULE_STATE_BYTES = 64 << 20
#: An input larger than this (pickled) is not watched for in-place changes: the cost of looking.
#: Its big buffers (a numpy array's memory) are watched by their pages and do not count
#: (:mod:`.watching`), unless this process cannot track writes.
WATCH_BYTES = 64 << 20


#: What a run's namespace holds as a module's (and keeps through ``%reset``).
_MODULE_NAMES = ("__name__", "__doc__", "__package__", "__loader__", "__spec__",
                 "__builtins__", "__builtin__")
#: The module of each run in progress (its namespace is the module's): id of the namespace →
#: the module (a run's functions keep the namespace; the module goes when the run ends).
_RUN_MODULES: dict[int, types.ModuleType] = {}


@contextlib.contextmanager
def _the_run_is_main(namespace: dict):
    """While a cell runs, ``sys.modules['__main__']`` is its namespace, as a plain cell's is the
    notebook's: ``pickle`` finds its classes and functions by reference (``pickle.dump(model,
    f)``, a ``multiprocessing`` pool's workers), ``import __main__`` sees its names, doctest
    and dataclasses look there. On the main thread only (a detached job's thread runs beside
    the main one's cells)."""
    main = _RUN_MODULES.get(id(namespace))
    if threading.current_thread() is not threading.main_thread() or main is None \
            or main.__dict__ is not namespace:
        yield
        return
    forking.install()  # a pool's workers get the cells' functions (once multiprocessing is in)
    before = sys.modules.get("__main__")
    sys.modules["__main__"] = main  # type: ignore[assignment]
    try:
        yield
    finally:
        forking.install()  # (this cell may have imported it)
        forking.note_run_children(main)  # (and started a pool before that)
        if sys.modules.get("__main__") is main:
            if before is None:
                del sys.modules["__main__"]
            else:
                sys.modules["__main__"] = before


def _calls_the_shell(code: str, namespace: dict | None = None) -> bool:
    """Whether a cell's Python calls IPython's shell by name: a magic (``_magic(``), a shell
    command (``!cmd`` → ``.system(``, ``x = !cmd`` → ``.getoutput(``), whose ``{expr}`` and
    ``$name`` IPython expands from the shell's ``user_ns``, code it runs there
    (``get_ipython().ex(...)``, ``.ev(...)``, ``.run_cell(...)``), names it binds or deletes
    there (``.push({...})``, ``.del_var(name)``), or that namespace itself
    (``get_ipython().user_ns['x'] = 1``); or whether one of the notebook's functions in
    ``namespace`` does (``def export(**kw): get_ipython().push(kw)``, hunt 26 H26-7)."""
    if any(call in code for call in _SHELL_CALLS):
        return True
    return namespace is not None and any(
        type(value) is types.FunctionType and value.__module__ == "__main__"
        and serialize.uses_the_shell(value.__code__) for value in list(namespace.values()))


#: What a cell's Python calls on IPython's shell that uses the shell's namespace.
_SHELL_CALLS = ("_magic(", ".system(", ".getoutput(", ".ex(", ".ev(", ".run_cell(", ".user_ns",
                ".user_global_ns", ".set_next_input(", ".push(", ".del_var(", ".drop_by_id(")


def watch(content: dict, namespace: dict, spans: Any = None) -> dict:
    """The inputs a run may change in place (the request's ``watch``), with a digest of each now.

    ``{name: (object, digest)}``; an input whose pickle is over :data:`WATCH_BYTES` (its big
    buffers aside: :mod:`.watching`), or that does not pickle, is not watched. ``spans(obj)``:
    the write-tracked memory of a kept upload (:mod:`.kept`), which stands in for its digest
    at no cost. :func:`.watching.close` the result when the run is over.
    """
    watched = {}
    names = [name for name in content.get("watch", ()) if name in namespace]
    # an input the cell only reads that a watched one holds (`pair = (1, big)`, then `pair[1][0]
    # = -1` and `print(big)`): the cell may change it through that one, and it went back as
    # unchanged (lists, dicts and objects of Python classes go back with their contents when
    # something changed anyway: see _held_inside's other use)
    read = {item["name"]: namespace[item["name"]] for item in content.get("inputs", ())
            if item.get("name") in namespace and item["name"] not in names}
    read = {name: obj for name, obj in read.items() if _changed_unseen(obj)}
    if names and read:
        names += sorted(_held_inside([namespace[name] for name in names], read,
                                     WATCH_INSIDE_OBJECTS))
    # a watched class goes back itself when it changes: inside the others, its identity
    apart = frozenset(id(namespace[name]) for name in names if isinstance(namespace[name], type))
    for name in names:
        span = spans(namespace[name]) if spans is not None else None
        digest = span or watching.digest(namespace[name], WATCH_BYTES, apart)
        if digest is not None:
            watched[name] = (namespace[name], digest)
    return watched


#: How many members of lists and dicts a run looks at for functions to twin, in all, and how
#: deep (a parser's dict of lists of functions and of objects holding one: depth 3).
MEMBERS_TWINNED = 10_000
DEPTH_TWINNED = 3
#: The most items a tuple of index arrays (:func:`_index_tuple`) may have.
TUPLE_ITEMS = 64


def _members_twinned(container: Any, twin_of: Callable[[Any], Any],
                     see_class: Callable[[type], None], budget: list[int]) -> list:
    """Put the twins of the functions in ``container`` (a list or dict, and the lists, dicts and
    cell objects' attributes inside it; ``twin_of``: see :meth:`Engine.functions_see_this_run`)
    in their places; where they went: ``[(place, key, function, twin)]`` (a place is a list or
    dict; a subclass's own ``__setitem__`` is not called). The classes of the cell objects
    met go to ``see_class``. ``budget``: how many members the run may still look at (it
    goes down)."""
    twinned: list = []
    seen: set[int] = set()

    def walk(place: Any, depth: int) -> None:
        if id(place) in seen or len(place) > budget[0]:
            return
        seen.add(id(place))
        budget[0] -= len(place)
        members = list(place.items()) if isinstance(place, dict) else list(enumerate(place))
        for key, member in members:
            kind = type(member)
            if kind in serialize.PLAIN:
                continue
            if kind is types.FunctionType:
                twin = twin_of(member)
                if twin is not None:
                    (dict if isinstance(place, dict) else list).__setitem__(place, key, twin)
                    twinned.append((place, key, member, twin))
            elif depth < DEPTH_TWINNED and isinstance(member, (list, dict)):
                walk(member, depth + 1)
            elif depth < DEPTH_TWINNED and kind.__module__ == "__main__" \
                    and type(in_place.attribute_of(member, "__dict__")) is dict:
                see_class(kind)  # `list_of(variable)`: its class's methods, and its attributes
                walk(member.__dict__, depth + 1)

    walk(container, 1)
    return twinned


def _repoint(partial: functools.partial, function: Any) -> None:
    """Make ``partial`` call ``function``, with the same arguments."""
    partial.__setstate__((function, partial.args, partial.keywords or None,
                          vars(partial) or None))


def put_back(twinned: Iterable) -> None:
    """The functions :func:`_members_twinned` put twins in place of, back where they were
    (where the twin still is: a place the cell set anew keeps what it set); a partial's
    function and a singledispatch function's implementations
    (:meth:`Engine.functions_see_this_run`) too."""
    for container, key, function, twin in reversed(twinned):
        if type(container) is functools.partial:
            if container.func is twin:
                _repoint(container, function)
            continue
        if type(container) is types.FunctionType:  # a singledispatch function's registry
            if container.registry.get(key) is twin:
                container.register(key, function)
            continue
        kind = dict if isinstance(container, dict) else list
        try:
            if kind.__getitem__(container, key) is twin:
                kind.__setitem__(container, key, function)
        except (KeyError, IndexError):  # the cell took it out
            continue


def _staying_arrays(content: dict, proxied: Sequence, bound: Sequence) -> list:
    """Under ``small``: the numpy arrays that stay here, the inputs the notebook holds as
    proxies and those the cell bound that are too big to go (their bytes alone pass the limit)."""
    numpy = sys.modules.get("numpy")
    if numpy is None or content.get("download", "small") != "small":
        return []
    limit = content.get("bytes") or protocol.DEFAULT_BYTES
    return [obj for obj in proxied if type(obj) is numpy.ndarray] + [
        obj for obj in bound if type(obj) is numpy.ndarray and obj.nbytes > limit]


#: What holds no other object :func:`_held_inside` could be after (no look at its attributes).
_HOLDING_NOTHING = serialize.PLAIN | {bytes}
#: The most objects :func:`_held_inside` looks through after a run; before one (:func:`watch`,
#: every run that watches a name and reads an array), fewer.
HELD_INSIDE_OBJECTS = 100_000
WATCH_INSIDE_OBJECTS = 10_000


def _changed_unseen(obj: Any) -> bool:
    """Whether a change to ``obj`` made through another object goes back only if ``obj`` is
    watched: not a list, dict, set or bytearray, nor an object of a Python class (they go with
    their contents or state when something changed), nor a value that never changes, a class,
    a function or a module (a numpy array, a pandas object)."""
    return not (type(obj) in serialize.CONTAINERS or serialize.restatable(obj) or atom(obj)
                or obj is None or isinstance(obj, (type, types.FunctionType, types.ModuleType,
                                                   str, bytes, tuple, frozenset)))


def _held_inside(roots: Sequence, candidates: dict[str, Any],
                 limit: int = HELD_INSIDE_OBJECTS) -> set[str]:
    """The names of ``candidates`` whose objects ``roots`` hold, through lists, tuples, dicts,
    sets, deques, objects' ``__dict__``, a partial's function and arguments, a bound method's
    object and a function's defaults, attributes and closure (at most ``limit`` objects looked
    at)."""
    if not roots or not candidates:
        return set()
    wanted = {id(obj): name for name, obj in candidates.items()}
    found: set[str] = set()
    seen: set[int] = set()
    waiting = list(roots)
    walked = (list, tuple, dict, set, frozenset, collections.deque)
    while waiting and len(seen) < limit:
        obj = waiting.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if id(obj) in wanted:
            found.add(wanted[id(obj)])
            if len(found) == len(wanted):
                break
        if type(obj) in _HOLDING_NOTHING:
            continue
        # (no more of a container than the walk has left to look at: a list of 100,000
        # numbers cost 11 ms a run before `watch`, 10,000 of them looked at)
        if isinstance(obj, dict):
            waiting.extend(itertools.islice(obj.values(), limit - len(seen)))
        elif isinstance(obj, walked):
            waiting.extend(itertools.islice(obj, limit - len(seen)))
        elif type(obj) is functools.partial:  # `p = partial(add, lst)`, then `p(1)` (hunt
            # 24 H24-2); `cb = partial(closed.append, 'x')`, then `cb(); closed` (hunt 41 H41-2)
            waiting.extend((obj.func, *obj.args, *obj.keywords.values()))
        elif type(obj) in _BOUND_METHODS:  # `bound = box.items.append`, then `bound(2)`
            owner = getattr(obj, "__self__", None)
            if owner is not None and not isinstance(owner, types.ModuleType):
                waiting.append(owner)
        elif type(obj) is types.FunctionType:  # `f.__defaults__ = (saved,)`, then `f(1)`
            waiting.extend((*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values(),
                            *vars(obj).values()))  # (hunt 36 H36-1); what its closure holds
            for cell in obj.__closure__ or ():  # (`cb = outer(closed.append)`, an ExitStack's
                try:  # callbacks: hunt 41 H41-2)
                    waiting.append(cell.cell_contents)
                except ValueError:  # empty
                    pass
        else:
            own = in_place.attribute_of(obj, "__dict__") if not isinstance(obj, type) else None
            if type(own) is dict:  # itself too: a name may hold it (`d = vars(m)`, the Borg
                waiting.append(own)  # idiom's shared state: hunt 42)
    return found


def _json_default(obj: Any) -> Any:
    """What a plain kernel's session sends for a value JSON has no form for (jupyter_client's
    rule, which this code, shipped to kernels as the standard library and ipykernel only,
    follows): a date or time as ISO text (a naive time in the local zone), bytes as base64,
    anything iterable as a list, an integral or real number (NumPy's) as a number; TypeError
    for the rest."""
    if isinstance(obj, datetime.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=datetime.datetime.now().astimezone().tzinfo)
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, datetime.date):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, collections.abc.Iterable):
        return list(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    raise TypeError(f"{obj!r} is not JSON serializable")


#: The kinds of a method bound to its object, Python's and C's (``[].append``).
_BOUND_METHODS = (types.MethodType, types.BuiltinMethodType)


def _definition(obj: Any) -> bool:
    """Whether ``obj`` is a class or a Python function: what a proxy cannot stand in for."""
    return isinstance(obj, (type, types.FunctionType))


def _method_of(obj: Any, origins: dict) -> bool:
    """Whether ``obj`` is a method bound to an object the notebook sent (``bound =
    acct.deposit``), or a list, tuple or dict of such methods (a dispatch table ``{'dep':
    acct.deposit}``, a list of listeners): it goes back bound to the notebook's objects, under
    ``none`` too. As a proxy it changed the engine's copy of the object, which the notebook
    never saw (hunt 32 H32-3)."""
    kind = type(obj)
    if kind is types.MethodType:
        return id(obj.__self__) in origins
    if kind in (list, tuple, dict) and 0 < len(obj) <= FUNCTIONS_IN_CONTAINERS:
        members = obj.values() if kind is dict else obj
        return all(type(member) is types.MethodType and id(member.__self__) in origins
                   for member in members)
    return False


def _member_of(obj: Any, origins: dict) -> bool:
    """Whether ``obj`` is a member of an Enum the notebook sent (``fav = Color.GREEN``,
    ``Color(1)``): the notebook's own member, under ``none`` too, so ``fav is Color.GREEN``
    holds there (hunt 35 H35-3: a proxy)."""
    return isinstance(obj, enum.Enum) and id(type(obj)) in origins


def _view_of(obj: Any, staying: Sequence, batch: "Batch | None" = None) -> bool:
    """Whether ``obj`` is a numpy view of one of the arrays ``staying``: it stays here too (a
    copy in the notebook would share no memory with it). Not of one that went in ``batch``'s
    stream after all (a class's attribute, `K.arr`, that the class took back by value): the view
    goes as a view of it (hunt 36 H36-6)."""
    if not staying or type(obj) is not type(staying[0]) or obj.base is None:
        return False
    numpy = sys.modules["numpy"]
    sent = batch.stream.holds() if batch is not None else frozenset()
    return any(array is not obj and id(array) not in sent
               and numpy.may_share_memory(obj, array) for array in staying)


def _module_builtin(obj: Any) -> bool:
    """Whether ``obj`` is a module's builtin function (``math.sqrt``, ``len``), which goes by its
    name; not a builtin method bound to an object (``xs.append``, a proxy's method must change
    the engine's list, not a copy of it)."""
    return isinstance(obj, types.BuiltinFunctionType) and (
        obj.__self__ is None or isinstance(obj.__self__, types.ModuleType))


def _index_tuple(obj: Any) -> bool:
    """Whether ``obj`` is a tuple that indexes a numpy array, each item for one axis: of at most
    :data:`TUPLE_ITEMS` items, numpy arrays of integers or booleans (one at least), integers,
    slices, None or Ellipsis (``np.where(mask)``, ``np.nonzero(a)``, ``np.indices(...)``)."""
    if type(obj) is not tuple or not obj or len(obj) > TUPLE_ITEMS:
        return False
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return False
    arrays = [item for item in obj if type(item) is numpy.ndarray]
    return bool(arrays) and all(array.dtype.kind in "biu" for array in arrays) and all(
        type(item) in (int, slice) or item is None or item is Ellipsis
        or type(item) is numpy.ndarray for item in obj)


#: A stream's own ``write``, before a cell (:meth:`Engine._as_in_a_cell`), that was none.
_ABSENT = object()
#: What an assignment binds but never changes in place.
_DEFINITIONS = (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType)


def _goes_as_itself(obj: Any) -> bool:
    """Whether ``obj`` comes back as itself under any policy: a singleton (`r is None` must hold
    in the notebook), or what goes by its name (a module: `import math` in a none cell gives the
    notebook math, not a proxy of it; `from collections import Counter`, a class a plain cell
    may subclass, and a library's own object, `from typing import Counter`: hunt 40 H40-6); a
    function a module holds under another name than its own (a closure a factory made there:
    jupyturtle's `forward`) is the notebook's module's, as a function by name is. (Under none,
    so does a number, short string or other small immutable value, which a proxy cannot stand
    in for: see atom; under small, `--bytes` is the user's word.)"""
    return (obj is None or obj is True or obj is False or obj is Ellipsis
            or isinstance(obj, types.ModuleType) or _module_builtin(obj)
            or serialize.by_name(obj) or serialize.library_object(obj)
            or serialize.is_shell(obj)
            or (type(obj) is types.FunctionType and serialize.goes_as_module_global(obj)))


def unwritten(sent: dict, uploads: Any) -> list:
    """The inputs of a run whose memory is known not written since they came: kept uploads
    (:mod:`.kept`) whose write-tracked span the run left alone. The notebook's array holds the
    same bytes, so a view of one (``train = data[:800_000]``) needs no values to go back."""
    same = []
    for obj in sent.values():
        span = uploads.span_of(obj)
        if span is not None and not span.written():
            same.append(obj)
    return same


def changed_in_place(watched: dict, namespace: dict,
                     same: Sequence = ()) -> tuple[list[str], list[str]]:
    """The watched inputs whose pickle changed during the run: those still bound to the same
    object, and those the run changed and then bound to another object or deleted (their
    objects as they came go back for the notebook's other holders:
    :data:`~..wire.protocol.FORMER`).

    ``same``: the inputs :func:`unwritten` found unwritten after the run; a kept upload among
    them is not asked again (a scan of its pages costs about 35 µs a GB)."""
    unchanged = {id(obj) for obj in same}
    bound, rebound = [], []
    for name, (obj, digest) in watched.items():
        still = namespace.get(name, PLACEHOLDER) is obj
        if isinstance(digest, (pages.Span, kept.Members)):  # a kept upload's: asked, not hashed
            changed = not (still and id(obj) in unchanged) and digest.written()
        else:
            changed = watching.changed(obj, digest, WATCH_BYTES)
        if changed:
            (bound if still else rebound).append(name)
    return bound, rebound


@dataclasses.dataclass
class Batch:
    """The names of one reply being encoded: one pickle stream for their values (objects they
    share stay shared), and the objects that stay remote (id → their reference and why), so
    that two names for one of them get one proxy."""

    stream: serialize.Outgoing = dataclasses.field(default_factory=serialize.Outgoing)
    remote: dict[int, tuple[dict, str | None]] = dataclasses.field(default_factory=dict)
    # a tuple that came back as a tuple of its items (Engine._items_proxied): id → the tuple
    # that went, which another name for it goes as again (one object in the notebook)
    tuples: dict[int, tuple[tuple, bool]] = dataclasses.field(default_factory=dict)
    # the objects the notebook sent as its proxies: a tuple among them stays one (the notebook
    # binds the copy it keeps of one, cells.twins)
    held_remotely: frozenset[int] = frozenset()


#: The kernel's own names that IPython's magics use from the namespace a cell runs in (the
#: directory history of ``%cd``, ``%pushd``, ``%dhist``; the output and input history that a
#: cell a magic runs with ``get_ipython().run_cell`` stores its result in): a run that calls
#: magics has them.
MAGICS_MACHINERY = ("_dh", "_oh", "_ih")


class Engine:
    """Our shell handlers, attached to one ipykernel kernel."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.session = kernel.session
        self.key: bytes = kernel.session.key
        self.engine_id = secrets.token_hex(8)
        self.store = ObjectStore()
        self.kept = kept.Keeper(self.store)  # big uploads kept between runs, per client
        self.running: dict | None = None  # the run request being handled
        self.reset_in_run = False  # the run being handled ran %reset (see _reset_the_run)
        self.flushed_in_run: list[str] = []  # the histories its `%reset out` etc. flushed
        self.hidden_in_run: list[str] = []  # names IPython hid in the run (_magics_see_the_run)
        # the settings as the last run's reply saw them: the next run's "before" unless the
        # notebook sends some (a change made between runs, by a job, goes with the next reply)
        self.settings_seen: dict | None = None
        self.incoming: dict[str, streaming.Incoming] = {}  # client → its upload under way
        self.shared = shared.Shared()  # segments of replies, until their client took them
        self.dataport: dataport.Listener | None = None  # big frames over a side TCP port
        # request msg_id → (client, ids its reply holds), until the client settles it
        self.unsettled: dict[str, tuple[str, list[str]]] = {}
        self.accepted: str | None = None  # the msg_id of the last request that passed its checks
        self.replied: str | None = None  # the msg_id of the last request answered
        self.history = protocol.SignatureHistory()  # what our dispatch accepted: no replays
        self.control_history = protocol.SignatureHistory()  # the same, on the control thread
        self.jobs = jobs.JobTable(self)  # detached jobs
        self.persistence: persist.Persistence | None = None  # set when it outlives its clients
        self.fast_request: str | None = None  # the msg_id of the request our dispatch handles
        self.quiet_mark: tuple | None = None  # output counters at our last reply (.quiet)
        self.activity: activity.Activity | None = None  # told on control (kernels we start)
        self.figures_closed: list = []  # the notebook's figures the run's cell closed

    def install(self) -> None:
        """Register the handlers of our request types with the kernel."""
        self.kernel.shell_handlers.update(
            {
                protocol.RUN_REQUEST: self.guard(self.run_request),
                protocol.FETCH_REQUEST: self.guard(self.fetch_request),
                protocol.RELEASE_REQUEST: self.guard(self.release_request),
                protocol.INFO_REQUEST: self.guard(self.info_request),
                protocol.CHUNK: self.guard(self.chunk_request),
            }
        )
        self.kernel._remote_magics_engine = self
        settings.watch_shown_warnings()  # what this kernel warned once the notebook does not
        self.dataport = open_data_port(self.kernel)
        shell = getattr(self.kernel, "shell", None)
        if shell is not None:  # notebook functions' tracebacks here say 'Cell In[3]', as there
            sources.label_cells(shell.compile)
        live.install(self)
        channels.install(self)
        lookup.install(self)
        inherit_run_context()
        jobs.install(self)
        persist.install(self)
        namespace.install(self)
        settings.log_forwarder = self.forward_log_record

    async def dispatch(self, raw: list) -> bool:
        """Handle one of our requests with the least ceremony; False for any other message.

        For the kernels we start (``EngineKernel``). ipykernel's own dispatch parses every date
        of the message, publishes busy and idle (each a wake-up of the output thread) and, after
        the handler, waits twice on its output thread to flush stdout and stderr, which our
        handlers have already queued: on two cores that cost a null cell about a millisecond.
        The client finishes on the reply and ``remote_output_done``, so it needs none of them.
        A message whose signature this dispatch accepted before (a replay) is dropped.
        """
        kernel = self.kernel
        if not self._framed(raw):
            return True
        try:
            idents, parts = self.session.feed_identities(raw, copy=False)
            header = self.session.unpack(parts[1].bytes)
            msg_type = header.get("msg_type", "")
        except Exception:  # not a message of ours (ipykernel's own markers, or garbage)
            return False
        handler = kernel.shell_handlers.get(msg_type) if msg_type.startswith("remote_") else None
        if handler is None:  # ipykernel's to handle (and to check): what it handles, as named
            if self.activity is not None:
                self.activity.handling(header.get("msg_id"))
            return False
        try:
            msg = protocol.unpack_message(self.session, parts, self.history)
        except protocol.Replayed as replay:
            self._drop(replay.message, "that was accepted before (a replay)")
            return True
        except Exception:
            kernel.log.error("remote_magics: dropped a %s that failed its signature check", msg_type)
            return True
        self.fast_request = msg["header"].get("msg_id")
        if self.activity is not None:  # passed its signature check: seen (a forged one is not)
            self.activity.handling(self.fast_request)
        kernel.set_parent(idents, msg, channel="shell")
        kernel.pre_handler_hook()
        try:
            await handler(kernel.shell_stream, idents, msg)
        except asyncio.CancelledError:  # the kernel is shutting down
            raise
        except BaseException:  # an interrupt after the guard's own try: the engine goes on
            kernel.log.error("remote_magics: %s handler failed", msg_type, exc_info=True)
        finally:
            kernel.post_handler_hook()
        return True

    def guard(self, handler):
        """``handler``, made to answer whatever happens inside it.

        User objects run inside every handler (a cell, a ``__reduce__``, a property, a
        ``__str__``): whatever they raise, ``KeyboardInterrupt`` and ``SystemExit`` included, a
        request that passed its checks gets an error reply, and the engine goes on.
        """
        async def guarded(stream, ident, parent) -> None:
            try:
                await handler(stream, ident, parent)
            except BaseException as err:  # never ends the engine, never leaves a request unanswered
                msg_id = parent["header"].get("msg_id")
                if self.accepted == msg_id and self.replied != msg_id:
                    self.running = None
                    self.reply(stream, ident, parent, self.error_content(err))
                self.kernel.log.error("remote_magics: %s handler failed: %s",
                                      parent["header"].get("msg_type"), tracebacks.one_line(err))
                if isinstance(err, asyncio.CancelledError):  # the kernel is shutting down
                    raise
        return guarded

    def _framed(self, raw: list) -> bool:
        """Whether ``raw`` has Jupyter's delimiter: ipykernel lets the ValueError of one without
        it go to the event loop, which printed a traceback into whatever cell ran next (a
        stray ``ping`` from a heartbeat socket that once reached this port, junk from a port
        scanner). It is dropped here, with a line in the kernel's log."""
        if any(memoryview(part) == protocol.DELIMITER for part in raw):  # (no copy of a frame)
            return True
        self.kernel.log.warning("remote_magics: dropped %d frames that are not a Jupyter message "
                                "(no %r)", len(raw), protocol.DELIMITER)
        return False

    def dispatch_control(self, raw: list) -> bool:
        """Handle one of our control requests (:data:`~..wire.protocol.CONTROL_REQUEST_TYPES`)
        or channel messages (:data:`~..wire.protocol.CHANNEL_CONTROL_TYPES`).

        For the kernels we start: without ipykernel's busy and idle statuses, which would go
        to every client's iopub at each look a client takes at a job's output.
        """
        if not self._framed(raw):
            return True
        try:
            idents, parts = self.session.feed_identities(raw, copy=False)
            msg_type = self.session.unpack(parts[1].bytes).get("msg_type", "")
        except Exception:
            return False
        if (msg_type not in protocol.CONTROL_REQUEST_TYPES
                and msg_type not in protocol.CHANNEL_CONTROL_TYPES):  # a channel's: one per item
            return False
        try:
            msg = protocol.unpack_message(self.session, parts, self.control_history)
        except protocol.Replayed:
            self.kernel.log.error("remote_magics: dropped a %s that was accepted before (a replay)",
                                  msg_type)
            return True
        except Exception:
            self.kernel.log.error("remote_magics: dropped a %s that failed its signature check",
                                  msg_type)
            return True
        try:
            self.kernel.control_handlers[msg_type](self.kernel.control_stream, idents, msg)
        except Exception:
            self.kernel.log.error("remote_magics: %s handler failed", msg_type, exc_info=True)
        return True

    # --- messaging -----------------------------------------------------------------------

    def reply(self, stream, ident, parent, content: dict, frames: list = ()) -> None:
        msg_type = protocol.reply_type(parent["header"]["msg_type"])
        frames = list(frames)
        # a client that can map our segments (it read our probe) says so in each request
        segments = (shared.Lending(self.shared, parent["content"].get("pull_ok") is True)
                    if parent["content"].get("shared_ok") is True else None)
        big = [n for n in (memoryview(f).nbytes for f in frames) if n > protocol.STREAM_CHUNK]
        room = shared.shared_room() if big and segments is not None else 0
        # a client on another host (or without shared memory) gets big frames by its data port
        link = (self.data_link(parent) if big and segments is None else None)
        self._announce(parent, "download", frames,
                       streamed=link is None and any(n > room for n in big))
        content["engine_id"] = self.engine_id
        self._hold_until_settled(parent, content)
        silent = self._silent(parent)
        if silent:
            content[protocol.QUIET] = True  # no output, so no marker: the client needs none
        scheme = protocol.agreed_scheme([parent["content"].get("digest_scheme")])
        if link is not None:
            try:
                dataport.send(self.session, stream, link, msg_type, content, frames, self.key,
                              parent=parent, ident=ident, scheme=scheme)
            except OSError as err:  # the link is closed now: its chunks go on the shell instead
                self.kernel.log.warning("remote_magics: data port failed (%s); sending the reply "
                                        "as chunks", err)
                link = None
        if link is None:
            streaming.send(self.session, stream, msg_type, content, frames, self.key,
                           parent=parent, ident=ident, shared=segments,
                           owner=protocol.client_of(parent), scheme=scheme)
        self.replied = parent["header"].get("msg_id")
        if not silent:  # after the reply: it leaves before the output thread wakes for the GIL
            self._output_done(parent)
        self.quiet_mark = quiet.mark()  # the next reply is quiet if nothing is output from now
        if segments is not None:  # what we lent stays as it is until the client has copied it
            segments.wait()

    def _silent(self, parent: dict) -> bool:
        """Whether nothing was output since our last reply (:mod:`.quiet`), for a request of
        our fast dispatch (only there is no idle status to wait for instead)."""
        if self.fast_request != parent["header"].get("msg_id"):
            return False
        self.fast_request = None
        return quiet.silent_since(self.quiet_mark)

    def data_link(self, msg: dict) -> "dataport.Link | None":
        """The data-port link a request's client named (``data_link``), if open and its own."""
        if self.dataport is None:
            return None
        return self.dataport.link_for(msg["content"].get("data_link"), protocol.client_of(msg))

    def reply_control(self, stream, ident, parent, content: dict) -> None:
        """Reply to a request on the control channel (no frames, never streamed)."""
        streaming.send(self.session, stream, protocol.reply_type(parent["header"]["msg_type"]),
                       content, [], self.key, parent=parent, ident=ident, chunk=None)

    def _output_done(self, parent: dict) -> None:
        """Publish, behind all the output the request made, that it made no more.

        The kernel's idle status says the same, but only after it has waited twice on its output
        thread; this marker lets the client finish a null cell about half a millisecond sooner.
        """
        streams = [stream for stream in (sys.stdout, sys.stderr) if stream is not None]
        pub_thread = getattr(streams[0], "pub_thread", None) if streams else None

        def flush_then_mark() -> None:
            for stream in streams:
                drain = getattr(stream, "drain", None)  # C output still in its pipe first
                if drain is not None:
                    drain()
            for stream in streams:
                flush = getattr(stream, "_flush", None)
                (flush or stream.flush)()  # on the output thread, this queues its messages
            self.session.send(self.kernel.iopub_socket, protocol.OUTPUT_DONE, {}, parent,
                              ident=quiet.MARKER_TOPIC)  # queued behind them

        if pub_thread is not None and all(getattr(s, "pub_thread", None) is pub_thread
                                          for s in streams):
            pub_thread.schedule(flush_then_mark)
        else:  # streams replaced by the user's code: flush them here, then mark
            for stream in streams:
                stream.flush()
            self.session.send(self.kernel.iopub_socket, protocol.OUTPUT_DONE, {}, parent,
                              ident=quiet.MARKER_TOPIC)

    def _hold_until_settled(self, parent: dict, content: dict) -> None:
        """Remember what a reply holds for its client, until the client says it received it."""
        if parent["header"]["msg_type"] not in protocol.HOLDING_TYPES:
            return
        held = protocol.held_ids(content)
        if held:
            if len(self.unsettled) >= protocol.UNSETTLED_KEEP:  # a client that never settles
                self.unsettled.pop(next(iter(self.unsettled)))
            self.unsettled[parent["header"]["msg_id"]] = (protocol.client_of(parent), held)

    def settle(self, msg: dict) -> None:
        """Apply a request's ``settled``: release what replies its client never received held."""
        settled = msg["content"].get("settled")
        if not isinstance(settled, dict):
            return
        client = protocol.client_of(msg)
        for msg_id, received in settled.items():
            entry = self.unsettled.get(msg_id)
            if entry is None or entry[0] != client:
                continue
            del self.unsettled[msg_id]
            if not received:
                for oid in entry[1]:
                    self.store.release(oid, client)

    def _announce(self, parent: dict, direction: str, frames: list, streamed: bool) -> None:
        """Tell the client, on iopub, that a big transfer is under way (it shows progress).

        Not for a ``streamed`` transfer, whose progress the client follows chunk by chunk.
        """
        size = serialize.nbytes(frames)
        if size > protocol.PROGRESS_BYTES and not streamed:
            self.session.send(self.kernel.iopub_socket, protocol.TRANSFER,
                              {"direction": direction, "nbytes": size}, parent=parent,
                              ident=b"remote_transfer")

    def authentic(self, msg: dict) -> bool:
        """Whether a message's frames pass their digest and it names its client; every handler
        asks first.

        A request's streamed frames are put in place here, and whatever else its client
        streamed and never claimed is dropped.
        """
        kind, content = msg["header"]["msg_type"], msg["content"]
        if not streaming.message_ok(self.key, content, msg["buffers"]):
            return self._drop(msg, "whose frames fail their digest")
        if not protocol.client_of(msg):
            return self._drop(msg, "without its client's secret (a client older than this engine?)")
        if kind not in protocol.REQUEST_TYPES:  # channel messages (control thread): never streamed
            return True
        taken = content.get("shared_taken")
        if isinstance(taken, list):  # segments of our replies that the client has mapped
            self.shared.close(protocol.client_of(msg), taken)
        incoming = self.incoming.pop(protocol.client_of(msg), None) or streaming.Incoming(self.key)
        try:
            if content.get("ported"):  # big frames that came by the data port: verified there
                link = self.data_link(msg)
                if link is None:
                    raise streaming.StreamError("its data-port link is not open")
                msg["buffers"] = link.claim(content, msg["buffers"])
            msg["buffers"] = incoming.claim(
                content, shared.attach_shared(content, msg["buffers"], shared.ANY_LENDER))
        except streaming.StreamError as err:
            return self._drop(msg, f"({err})")
        self.accepted = msg["header"].get("msg_id")  # from here on, it is answered (guard)
        self.settle(msg)
        for oid in content.get("release") or ():  # small values the client has decoded
            if isinstance(oid, str):
                self.store.release(oid, protocol.client_of(msg))
        tokens = content.get("release_uploads")  # kept uploads it let go of since its last
        if isinstance(tokens, list):  # request: before the run, as a release request would be
            self.kept.release(protocol.client_of(msg),
                              [token for token in tokens if isinstance(token, str)])
        return True

    def _drop(self, msg: dict, why: str) -> bool:
        """Log and drop a message (returns False), publishing a dropped request's idle status.

        Our fast dispatch publishes none, and without it the client would wait for ever.
        """
        kind = msg["header"]["msg_type"]
        self.kernel.log.error("remote_magics: dropped a %s %s", kind, why)
        if kind in protocol.REQUEST_TYPES:  # with why, so that the client says it at once
            self.session.send(self.kernel.iopub_socket, "status",
                              {"execution_state": "idle", "remote_dropped": why},
                              parent=msg, ident=b"remote_magics.status")
        return False

    def resolver(self, client: str):
        def resolve(engine_id: str, oid: str) -> Any:
            if engine_id != self.engine_id:
                raise LookupError(f"the proxy {oid} belongs to another engine ({engine_id})")
            try:
                return self.store.get(oid, client)
            except KeyError:
                raise LookupError(
                    f"remote object {oid} is not held for this client on this engine "
                    "(released, or the kernel restarted)"
                ) from None
        return resolve

    # --- handlers ------------------------------------------------------------------------

    async def run_request(self, stream, ident, parent) -> None:
        """Run a cell: unpickle its inputs, run it, return or keep each name it bound.

        Its ``input()`` asks the notebook, when the client answers (:mod:`.lookup`).
        """
        watched: dict = {}  # the inputs watched for in-place changes: see watch
        try:
            with lookup.input_forwarded(parent["content"]):
                await self._run(stream, ident, parent, watched)
        finally:
            watching.close(watched)

    async def _run(self, stream, ident, parent, watched: dict) -> None:
        if not self.authentic(parent):
            return
        self._announce(parent, "upload", parent["buffers"],
                       streamed=bool(parent["content"].get("streamed")))
        self.running = parent  # channels a cell reads publish with this run as their parent
        in_run = IN_RUN.set(True)  # threads the cell starts keep this run as their parent
        content = parent["content"]
        client = protocol.client_of(parent)
        namespace = None
        modules: YourModules | None = None  # your modules here as the cell began
        twinned: list = []  # functions in lists and dicts here whose twins run the cell
        sent: dict = {}
        before: dict | None = None
        asking = None
        uploads = self.kept.run(client)
        mode_before = self._traceback_mode()
        memos: list = []  # how the inputs' objects were numbered: see serialize.InnerIndex
        proxied: list = []  # the inputs the notebook holds as proxies
        self.reset_in_run = False  # set by %reset in the cell (_reset_the_run)
        self.flushed_in_run = []  # and by %reset out/in/dhist (_flush_in_the_notebook)
        self.hidden_in_run = []  # names IPython hid as the cell's magics bound them
        run_caches = caches.RunCaches(self.store, client)  # a cell function's cache lasts
        settings_before = None
        # what the cells' objects print as they are made and read here: not shown (up to the
        # cell's own run, and again as its names go back: serialize.unseen)
        hushed = contextlib.ExitStack()
        try:
            hushed.enter_context(serialize.unseen())
            settings.watch_class_attributes(content.get("class_attributes"))
            settings_before, lowered_limit = self._take_settings(content)
            if isinstance(content.get("modules_gone"), list):  # `del sys.modules['m']`
                serialize.forget_modules(content["modules_gone"])  # there (H37-4)
            modules_at_start = serialize.senders_modules_now()
            copy_on_write.take_note()
            with serialize.keeping(uploads), serialize.keeping_caches(run_caches):
                namespace = self.namespace(content, parent["buffers"], client, memos, proxied,
                                           as_main=True)
            if copy_on_write.take_note():  # pandas objects came: those sharing memory say so
                copy_on_write.link(list(namespace.values()))
            if "__subclasses__" in str(content.get("code")):  # the skeletons of classes that
                gc.collect()  # came as this side's own are gone from their bases' lists
            settings.take_pending()  # of libraries the inputs imported here (`pd`, sent)
            settings.watch_class_attributes(content.get("class_attributes"))  # theirs too
            if lowered_limit is not None:  # now that the inputs' libraries are imported
                settings.take({"sys.recursionlimit": lowered_limit})
            settings.make_current(content.get("current"), namespace)
            current = content.get("current")
            if isinstance(current, dict) and isinstance(current.get("pyplot.figure"), str):
                settings.lend_to_pyplot(namespace.get(current["pyplot.figure"]))
            sent = {item["name"]: namespace[item["name"]] for item in content.get("inputs", ())
                    if item.get("name") in namespace}  # the notebook's objects, as they came
            twinned = self.functions_see_this_run(namespace, bool(content.get("lookup")),
                                                   bool(content.get("all_names")),
                                                   containers=bool(proxied))
            self._register_magics(content, namespace, sent)
            self._take_directory_stack(content.get("dir_stack"))
            aliases = content.get("module_aliases")
            if isinstance(aliases, dict):  # one under a second name too (hunt 39 H39-1)
                serialize.take_module_aliases({alias: namespace.get(input_name)
                                               for alias, input_name in aliases.items()})
            for input_name in content.get("modules", ()):  # your modules the cell imports:
                namespace.pop(input_name, None)  # loaded as the notebook's, under no name
                sent.pop(input_name, None)
            before = dict(namespace)  # what the cell binds anew comes back, seen or not
            # and what it binds in your modules' namespaces here (`confmod.pageDict = {...}`)
            modules = YourModules.now(modules_at_start,  # (a cell that may put a module
                                      made="modules" in str(content.get("code")))  # there)
            watched.update(watch(content, namespace, uploads.span_of))
            asking = lookup.for_run(content, namespace, parent, watched, WATCH_BYTES)
            hushed.close()
            value = await self.execute(content, namespace, self._show_statement(content))
        except BaseException as raised:  # the client waits for a reply whatever happens
            hushed.close()
            err = tracebacks.original(raised)
            if not isinstance(err, InputError):  # sys.last_value, as a shown error sets it
                settings.take({"sys.last_value": err})
                self._debug_if_asked(err)
            lookup.close(asking)  # names the cell's threads read from now on: not asked
            self.flush_figures()
            with self._tracebacks_as_the_notebooks(content, mode_before) as mode:
                reply, frames = self.error_content(err), []
            if namespace is not None:  # as a plain cell, it keeps what it bound before the error
                same = unwritten(sent, uploads)
                with serialize.keeping_caches(run_caches), serialize.unseen():
                    reply, frames = self.bound_before(reply, content, namespace, client,
                                                      watched, sent, before, memos, proxied,
                                                      same, modules, uploads.containers(same))
            reply.update(mode)
            self._state_for_notebook(reply, content, namespace, sent, modules)
            lookup.asked_exit(asking, reply)
            self._reply_to_run(stream, ident, parent, reply, frames, uploads, settings_before)
            return
        finally:
            self.put_back(twinned)
            self.running = None
            IN_RUN.reset(in_run)
            _RUN_MODULES.pop(id(namespace), None)
        shown = NOT_SHOWN
        if value is not None and content.get("show_result"):
            # formatted as IPython's displayhook does, before the figures are drawn (a label's
            # `Text(0, 0.5, 'y')`, not where the drawing put it), and what its repr prints goes
            # out before the result (hunt 20 H20-7, H20-8); it may read notebook names too
            with self._tracebacks_as_the_notebooks(content, mode_before):
                shown = self.format_result(value)
            self._result_comes_first(parent)
        self.flush_figures()
        try:  # the result's display may read notebook names too (a __repr__ doing eval(name))
            # a big array that goes by value is kept here too: read again, it need not come back
            policy = content.get("download", "small")
            offer = uploads.offering(content.get("bytes") if policy == "small" else None) \
                if policy != "none" else None
            same = unwritten(sent, uploads)
            with self._tracebacks_as_the_notebooks(content, mode_before) as mode, \
                    serialize.keeping_caches(run_caches), serialize.substituting(offer), \
                    serialize.unseen():
                reply, frames = self.outputs(content, namespace, value, client, watched, sent,
                                             before, memos, proxied, same, modules, shown,
                                             uploads.containers(same))
            reply.update(mode)
            uploads.resync({output["name"]: namespace[output["name"]]
                            for output in reply["outputs"] if output.get("changed")
                            and output.get("kind") == "value" and output["name"] in namespace})
        finally:
            lookup.close(asking)
        self._state_for_notebook(reply, content, namespace, sent, modules)
        lookup.asked_exit(asking, reply)
        self._reply_to_run(stream, ident, parent, reply, frames, uploads, settings_before)

    def forward_log_record(self, content: dict) -> None:
        """Send a record for the notebook's own log handlers (:class:`.settings.Forwarding`),
        under the request being handled (a run, a live proxy's call); a record logged when
        none is (a thread left running) has no notebook to go to."""
        parent = self.running or self.kernel.get_parent("shell")
        if parent and parent.get("header", {}).get("msg_type") in protocol.REQUEST_TYPES:
            self.session.send(self.kernel.iopub_socket, protocol.LOG_RECORD, content,
                              parent=parent, ident=b"remote_log_record")

    def _reply_to_run(self, stream, ident, parent, reply: dict, frames: list, uploads: Any,
                      settings_before: dict | None) -> None:
        """Send a run's reply (its cell finished or failed), with what the run did besides its
        names: the settings it changed, a ``%reset``, the uploads kept."""
        if settings_before is not None:
            self.settings_seen = now = settings.snapshot()
            # a fan-out's run keeps its own random numbers
            changed = settings.differing(now, settings_before,
                                         random=parent["content"].get("random") is not False)
            if changed:  # `np.set_printoptions` in the cell: the notebook's too, as in one process
                reply["settings"] = settings.encode(changed)
        if self.reset_in_run:
            reply["reset"] = True
        if self.flushed_in_run:
            reply["flushed"] = self.flushed_in_run
        uploads.add_to(reply)
        self.reply(stream, ident, parent, reply, frames)

    def _register_magics(self, content: dict, namespace: dict, sent: dict) -> None:
        """Register the notebook's own magics the cell runs (``content["magics"]``: kind,
        name, and the input that holds the function or ``Magics`` class), as a plain cell
        finds them; they stay registered here, as they are there."""
        shell = getattr(self.kernel, "shell", None)
        for kind, name, input_name in content.get("magics", ()):
            made = namespace.pop(input_name, None)
            sent.pop(input_name, None)
            if made is None or shell is None:
                continue
            try:
                if isinstance(made, type):
                    shell.register_magics(made)
                else:
                    shell.register_magic_function(made, magic_kind=kind, magic_name=name)
            except Exception:  # it stays unknown here: the cell says so as before
                self.kernel.log.warning("remote_magics: could not register the notebook's "
                                        "magic %s", name, exc_info=True)

    def _take_directory_stack(self, stack: Any) -> None:
        """The notebook's directory stack, sent for a cell's ``%pushd``, ``%popd`` or
        ``%dirs``: the shell's here for the run (it goes back: :meth:`_state_for_notebook`)."""
        own = getattr(getattr(self.kernel, "shell", None), "dir_stack", None)
        if isinstance(stack, list) and isinstance(own, list) \
                and all(isinstance(path, str) for path in stack):
            own[:] = stack

    def _state_for_notebook(self, reply: dict, content: dict, namespace: dict | None,
                            sent: dict, modules: YourModules | None) -> None:
        """Say in ``reply`` which name holds a current settings object here (``current``: the
        cell's ``setcontext(ctx)``), among the names the notebook has this run's object for,
        those coming back as values and the inputs; when the notebook sent its directory
        stack, the stack as the cell left it (``dir_stack``); and the notebook's modules the
        cell took out of ``sys.modules`` (``modules_gone``), and of those, the ones it imported
        afresh from their files (``modules_afresh``)."""
        gone = modules.gone() if modules is not None else []
        if gone:  # `del sys.modules['m']` here: the notebook's `import m` runs the file afresh
            reply["modules_gone"] = gone
            afresh = [name for name in gone if serialize.your_module(name) is not None]
            if afresh:  # `del sys.modules['m']; import m`: the notebook's too (hunt 38 H38-8)
                reply["modules_afresh"] = afresh
        if namespace is None:
            return
        if "dir_stack" in content:
            stack = getattr(getattr(self.kernel, "shell", None), "dir_stack", None)
            if isinstance(stack, list):
                reply["dir_stack"] = list(stack)
        names = [output["name"] for output in reply.get("outputs", ())
                 if output.get("kind") == "value"]
        current = settings.named_current(namespace, [*names, *sent])
        if current:
            reply["current"] = current
        lent = (content.get("current") or {}).get("pyplot.figure")
        if self.figures_closed and namespace.get(lent) in self.figures_closed:
            reply["figure_closed"] = lent  # `plt.close(fig)`: the notebook's closes too
        if self.hidden_in_run:
            bound = {output.get("name") for output in reply.get("outputs", ())}
            reply["hidden"] = [name for name in self.hidden_in_run if name in bound]

    def _take_settings(self, content: dict) -> tuple[dict, int | None]:
        """Take the settings the notebook changed since they last agreed (:mod:`.settings`);
        this process's settings then, which the run's reply compares its own with, and a
        recursion limit lower than ours, to set once the cell's inputs are rebuilt: their
        libraries import here now (numpy's import goes deeper than a limit a notebook that
        had imported it lowered to show a RecursionError)."""
        if not content.get("settings"):  # as the last reply saw them: nothing came since
            return self.settings_seen or settings.snapshot(), None
        values = settings.decode(content["settings"])
        limit = values.get("sys.recursionlimit")
        lowered = (values.pop("sys.recursionlimit")
                   if isinstance(limit, int) and limit < sys.getrecursionlimit() else None)
        settings.take(values)
        return settings.snapshot(), lowered

    @staticmethod
    def _mark_input(output: dict, obj: Any, origins: dict[int, list[str]],
                    name: str | None) -> None:
        """An output bound to an object the notebook sent under another name (``y = x``) says
        which (``same_as``): the notebook binds its own object again, as a plain cell would,
        its proxy too (under none: ``b = a``, then ``a is b``, hunt 26 H26-15).
        ``origins``: each input object's id → the names it came under."""
        if output.get("kind") in ("value", "proxy"):
            for origin in origins.get(id(obj), ()):
                if origin != name:
                    output["same_as"] = origin
                    return

    def bound_before(self, reply: dict, content: dict, namespace: dict, client: str,
                     watched: dict | None = None, sent: dict | None = None,
                     before: dict | None = None, memos: list = (),
                     proxied: list = (), same: list = (),
                     modules: YourModules | None = None,
                     containers: Sequence = ()) -> tuple[dict, list]:
        """An error reply with the names the cell bound (or deleted) before it failed, and
        what it changed in your modules (``modules``: see :meth:`outputs`).

        Encoded by the download policy, as a finished cell's are; if that fails too, the error
        goes alone.
        """
        try:
            bound, frames = self.outputs(content, namespace, None, client, watched, sent,
                                         before, memos, proxied, same, modules,
                                         containers=containers)
        except BaseException as err:  # a value that cannot even be described: the error alone
            self.kernel.log.error("remote_magics: names bound before an error were not sent: %s",
                                  tracebacks.one_line(err))
            return reply, []
        return dict(reply, outputs=bound["outputs"], deleted=bound["deleted"],
                    packed=bound["packed"]), frames

    def namespace(self, content: dict, frames: list, client: str,
                  memos: list | None = None, proxied: list | None = None,
                  as_main: bool = False) -> dict:
        # as IPython's user namespace: a module's (`__main__` while the cell runs: see
        # _the_run_is_main), with the builtins module under both names (`vars(__builtins__)`)
        module = lookup.RunModule("__main__")
        namespace: dict[str, Any] = module.__dict__
        namespace.update({"__builtins__": builtins, "__builtin__": builtins})
        shell = getattr(self.kernel, "shell", None)
        if shell is not None:
            namespace["get_ipython"] = shell.get_ipython
            # IPython's `open`, which refuses the standard streams' descriptors (`open(1)`):
            # the builtin opened the engine's own stdout (hunt 25 H25-1)
            shown_open = shell.user_ns_hidden.get("open")
            if callable(shown_open):
                namespace["open"] = shown_open
            # and its module's docstring, which a plain cell's `__doc__` reads (hunt 26 H26-26)
            namespace["__doc__"] = getattr(shell.user_module, "__doc__", None)
        namespace.update(dict.fromkeys(content.get("placeholders", ()), PLACEHOLDER))
        inputs = content.get("inputs", [])
        # one stream: names for one object are one object here; functions get this namespace
        resolve = self.resolver(client)
        if proxied is not None:  # the objects the notebook holds as proxies: they stay here
            def resolve(engine_id: str, oid: str, found=resolve) -> Any:
                obj = found(engine_id, oid)
                proxied.append(obj)
                return obj
        with serialize.resolving(resolve), serialize.cell_namespace(namespace):
            loaded = serialize.load_names(inputs, serialize.unpack(inputs, frames,
                                                                   content.get("packed")),
                                          memos=memos)
        for item, (value, err) in zip(inputs, loaded):
            if err is not None and item.get("listed") is True:
                continue  # sent only to be listed (`%whos`, `dir()`): left out, as if unknown
            if err is not None:
                raise InputError(item["name"], err) from err
            namespace[item["name"]] = value
        if as_main:
            _RUN_MODULES[id(namespace)] = module
        return namespace

    async def execute(self, content: dict, namespace: dict,
                      show: Callable[[Any], None] | None = None) -> Any:
        """Run the cell's code in ``namespace``; the value of a last expression, else None.

        The values of the statements the notebook's interactivity shows besides (``all``,
        ``last``: :mod:`.interactive`) go to ``show``; by default they are displayed (a detached
        job keeps them with its output)."""
        code = content["code"]
        filename = self._cell_file(code, content.get("cell_id") or 0, content.get("typed"))
        # the __future__ imports earlier cells made, as IPython's compiler keeps them; never
        # this module's own (dont_inherit: `annotations` here must not make a cell's lazy)
        shell_compiler = getattr(getattr(self.kernel, "shell", None), "compile", None)
        futures = getattr(shell_compiler, "flags", 0) & settings.FUTURE_FLAGS
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT | futures
        # the notebook's interactivity; else this kernel's, which a remote cell may have set
        setting = "none" if content.get("quiet") else (
            content.get("interactivity") or interactive.setting_of(getattr(self.kernel, "shell",
                                                                           None)))
        # each top-level statement compiled and run on its own, as IPython runs a cell's: no
        # constant shared between two (`c = 999; d = 999; c is d` is False), and a future
        # import or a `global` later in the cell holds from there on (compiled as one module,
        # they were SyntaxErrors: hunt 20 H20-24)
        tree = compile(code, filename, "exec", flags=ast.PyCF_ONLY_AST | flags,
                       dont_inherit=True)
        split = interactive.plan(tree.body, setting)
        units: list[tuple[Any, str]] = [(ast.Module([node], type_ignores=[]), "exec")
                                        for node in split.quiet]
        units += [(ast.Interactive([node]), "single") for node in split.shown]
        if split.result is not None:
            units.append((ast.Expression(split.result), "eval"))
        outcome = None
        with self._magics_see_the_run(code, namespace, content), self._as_in_a_cell(), \
                self._the_notebooks_history(content.get("history")), \
                self._the_notebooks_count(content.get("execution_count")), \
                interactive.showing(show or self._display), _the_run_is_main(namespace):
            for node, mode in units:
                compiled = compile(node, filename, mode, flags=flags, dont_inherit=True)
                made = compiled.co_flags & settings.FUTURE_FLAGS & ~flags
                if made:  # the statements after it, and later cells too
                    flags |= made
                    if shell_compiler is not None:
                        shell_compiler.flags |= made
                try:
                    outcome = eval(compiled, namespace)  # noqa: S307 - the user's own cell
                except StopIteration as err:  # out of this coroutine it would be a RuntimeError
                    raise tracebacks.CellStopIteration(err) from None
                if compiled.co_flags & 0x80:  # CO_COROUTINE: the cell awaits at top level
                    outcome = await outcome
        return outcome if split.result is not None else None

    def _show_statement(self, content: dict) -> Callable[[Any], None]:
        """How the value of a statement the notebook's interactivity shows (``all``, ``last``:
        :mod:`.interactive`) reaches it: formatted here, as the cell's result is, after what
        the cell printed so far, as an ``execute_result`` the notebook shows as ``Out[n]``."""
        parent = self.running

        def show(value: Any) -> None:
            quiet.flush_printed()
            shown = self.format_result(value) or {"data": {"text/plain": repr(value)},
                                                  "metadata": {}}
            self.session.send(self.kernel.iopub_socket, "execute_result",
                              {"data": shown["data"], "metadata": shown["metadata"],
                               "execution_count": content.get("cell_id")},
                              parent=parent, ident=b"remote_magics.result")
        return show

    def _display(self, value: Any) -> None:
        """Display ``value`` as ``display(value)`` in the cell would (a detached job's
        statements: its output keeps them)."""
        shell = getattr(self.kernel, "shell", None)
        if shell is None:
            print(repr(value))
            return
        data, metadata = shell.display_formatter.format(value)
        shell.display_pub.publish(data=data, metadata=metadata)

    def functions_see_this_run(self, namespace: dict, asks: bool = False,
                                everything: bool = False, containers: bool = True) -> list:
        """A function an earlier run defined, which stayed here (a proxy, under ``none``), reads
        and sets its globals in this run's namespace, as a plain cell's function does in the
        notebook's one namespace: each such input is bound to a twin of it (the same code,
        defaults, closure and attributes) whose globals are this run's. The globals it reads
        that this run was not sent (the notebook cannot see inside a proxy) are its old ones,
        as before. A function that uses no cell's globals stays itself. A cache of such a
        function (``@cache def fib``, :mod:`.caches`) stays itself, its entries kept, and calls
        the twin; a class of an earlier run (an input, or an input's class) keeps its identity
        and takes twins of its methods (a ``__repr__`` doing ``eval(name)`` sees this run).
        ``asks``: the run asks the notebook for a name it lacks (:mod:`.lookup`), which is
        where code reading names dynamically finds them, not in its old globals.
        ``everything``: the run was sent every name of the notebook (``dir()`` in the cell): one
        it lacks is one the notebook lacks (deleted), never an old value.

        One such function in a list or dict that stayed here (a dispatch table ``table['p']``,
        a list of handlers, a parser's dict of functions) runs with this run's globals too: its
        twin takes its place there for the run (hunt 27 H27-2: it popped from the `TOKENS` of
        the run that made it, and its `global STATE` stayed there); one function has one twin
        in a run, under every name. Returns where twins took a place, for :func:`put_back`.
        Not on a detached job's thread (a cell the main thread runs may be using those lists and
        dicts), nor without ``containers`` (a run whose inputs hold nothing kept here: none of
        its functions is of an earlier run)."""
        shell = getattr(self.kernel, "shell", None)
        queue = list(namespace)
        classes: set[int] = set()
        twins: dict[int, Any] = {}
        twinned: list = []
        # members of lists and dicts looked at, for the whole run
        budget = [MEMBERS_TWINNED if containers
                  and threading.current_thread() is threading.main_thread() else 0]

        def twin_of(function: Any) -> Any:
            """``function``'s twin in this run, or None when it stays itself."""
            if type(function) is not types.FunctionType:
                return None
            if id(function) in twins:
                return twins[id(function)]
            twins[id(function)] = None
            if not of_another_run(function, namespace, shell):
                return None  # this run's, the kernel's, or a module's function
            old = function.__globals__
            reads = serialize.code_globals(function.__code__)
            dynamic = not serialize.DYNAMIC_BUILTINS.isdisjoint(reads)
            if not dynamic and all(read in vars(builtins) and read not in old
                                   and read not in namespace for read in reads):
                return None  # it uses no globals of a cell (`lambda v: -v`): it stays itself
            twin = twin_in(namespace, function)
            if dynamic:  # `eval(name)`: the notebook is asked for what it reads (`asks`), or
                # it finds any of its old names, as before
                reads = [] if asks else [read for read in old if not read.startswith("__")]
            for read in () if everything else reads:
                if read not in namespace and read in old:  # not sent: its old value, as before
                    namespace[read] = old[read]
                    queue.append(read)
            twins[id(function)] = twin
            return twin

        def see_class(kind: type) -> None:
            """The methods of a cell's class ``kind`` (and of its cells' bases) see this run."""
            if kind.__module__ != "__main__" or id(kind) in classes:
                return  # a library's class (int, ndarray...), or seen already
            if kind.__qualname__.isidentifier() and kind.__qualname__ not in namespace:
                # the notebook's __main__ holds it (`pickle.dump(model, f)` looks it up there)
                namespace[kind.__qualname__] = kind
            for klass in kind.__mro__:
                if klass is kind or (klass.__module__ == "__main__"
                                     and id(klass) not in classes):
                    classes.add(id(klass))
                    self._methods_see_this_run(klass, twin_of)

        while queue:
            name = queue.pop()
            value = namespace.get(name)
            if type(value) is types.FunctionType and serialize.is_single_dispatch(value):
                for kind, function in list(value.registry.items()):  # its implementations'
                    twin = twin_of(function)                          # twins, for the run
                    if twin is not None:
                        twinned.append((value, kind, function, twin))
                        value.register(kind, twin)
                continue
            if type(value) is types.FunctionType:
                twin = twin_of(value)
                if twin is not None:
                    namespace[name] = twin
                continue
            if serialize.is_cache_wrapper(value):
                function = caches.function_of(value)
                twin = twin_of(function) if function is not None else None
                if twin is not None:  # a cache that lasts: it calls its function's twin
                    caches.rebind(value, twin)
                continue
            if type(value) is functools.partial:  # it calls its function's twin for the run
                twin = twin_of(value.func)
                if twin is not None:
                    twinned.append((value, None, value.func, twin))
                    _repoint(value, twin)
                continue
            if isinstance(value, (list, dict)):
                if budget[0] and name not in MAGICS_MACHINERY and name != "In" \
                        and name not in protocol.OUTPUT_CACHE_NAMES:  # (they hold no functions)
                    twinned += _members_twinned(value, twin_of, see_class, budget)
                continue
            see_class(value if isinstance(value, type) else type(value))
        return twinned

    put_back = staticmethod(put_back)

    @staticmethod
    def _methods_see_this_run(klass: type, twin_of: Callable[[Any], Any]) -> None:
        """Put twins of ``klass``'s methods of an earlier run on it (see
        :meth:`functions_see_this_run`): plain, static and class methods, properties' parts,
        caches."""
        for name, attribute in list(vars(klass).items()):
            replaced = None
            if type(attribute) is types.FunctionType:
                replaced = twin_of(attribute)
            elif type(attribute) in (staticmethod, classmethod):
                twin = twin_of(attribute.__func__)
                replaced = type(attribute)(twin) if twin is not None else None
            elif type(attribute) is property:
                parts = (attribute.fget, attribute.fset, attribute.fdel)
                twins = [twin_of(part) for part in parts]
                if any(twin is not None for twin in twins):
                    replaced = property(*(twin or part for twin, part in zip(twins, parts)),
                                        attribute.__doc__)
            elif serialize.is_cache_wrapper(attribute):
                twin = twin_of(caches.function_of(attribute))
                if twin is not None:
                    caches.rebind(attribute, twin)
            elif type(attribute) is functools.cached_property:
                twin = twin_of(attribute.func)
                if twin is not None:  # what it computes, from this run's globals (hunt 30)
                    replaced = functools.cached_property(twin)
                    replaced.__set_name__(klass, name)
            if replaced is not None:
                setattr(klass, name, replaced)

    def _cell_file(self, code: str, number: int, typed: str | None = None) -> str:
        """The file name the cell's code is compiled under, its lines kept for tracebacks.

        The shell's own (``cache``): its tracebacks then say ``Cell In[7], line 2`` with the
        notebook's execution count, as the plain cell's do, and a function the cell defines
        carries that label back to the notebook (:mod:`..wire.sources`). ``typed``: the text
        the user typed, when ``code`` is not it: ipykernel names the file by it, and a
        warning's line shows the name.
        """
        shell = getattr(self.kernel, "shell", None)
        if shell is not None:
            try:
                if typed is not None:
                    return shell.compile.cache(code, number, raw_code=typed)
                return shell.compile.cache(code, number)
            except Exception:  # a compiler without IPython's cache: our own name below
                pass
        filename = f"<remote cell {number}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        return filename

    @contextlib.contextmanager
    def _as_in_a_cell(self):
        """IPython's builtins (``get_ipython``) and display hook in place, as while a notebook
        cell runs.

        Libraries look for the builtins when imported (pandas decides there whether it runs in
        a Jupyter kernel, which sets how wide its tables print). With the display trap held,
        a cell a magic runs (``%%capture``'s body, by ``shell.run_cell``) keeps the display
        hook it finds, as in IPython: ``%%capture`` took its body's result, which showed as the
        cell's own (hunt 19 H19-28).
        """
        shell = getattr(self.kernel, "shell", None)
        # and the streams' `write` as the cell found it, after: IPython (9) wraps it for each
        # cell and puts back the one it found, so one the cell set (`sys.stdout.write = ...`,
        # a context manager that raised before undoing its patch) is gone in the next cell
        # (hunt 42 H42-5: here it stayed)
        found = [(stream, vars(stream).get("write", _ABSENT))
                 for stream in (sys.stdout, sys.stderr) if hasattr(stream, "__dict__")]
        try:
            if shell is None:
                yield
                return
            with shell.builtin_trap, shell.display_trap:
                yield
        finally:
            for stream, write in found:
                if vars(stream).get("write", _ABSENT) is not write:
                    if write is _ABSENT:
                        vars(stream).pop("write", None)
                    else:
                        stream.write = write

    def ipythons_builtins(self) -> Any:
        """A context in which IPython's builtins (``get_ipython``, ``display``) are in place, as
        while a cell runs: for a plain cell's operation on a proxy, whose arguments may bring
        a module of yours whose top level calls ``get_ipython()`` (hunt 33 H33-10)."""
        shell = getattr(self.kernel, "shell", None)
        return shell.builtin_trap if shell is not None else contextlib.nullcontext()

    @contextlib.contextmanager
    def _the_notebooks_history(self, given: Any):
        """Around a cell that runs ``%history`` or ``%notebook``: the shell's inputs of this
        session are the notebook's (``given``: typed, and as run), and so are its outputs' text
        (``-o``) and, for ``%notebook``, its outputs and errors, so it shows or saves them as a
        plain cell does; this kernel's own are back after."""
        history = getattr(getattr(self.kernel, "shell", None), "history_manager", None)
        if history is None or not (isinstance(given, list) and len(given) in (2, 3, 5)
                                   and all(isinstance(part, list) for part in given)):
            yield
            return
        own = list(history.input_hist_raw), list(history.input_hist_parsed)
        history.input_hist_raw[:], history.input_hist_parsed[:] = given[:2]  # `In` is the list
        kept: list = []  # each of the history's dicts taken over for the run, and its own items

        def take_over(mapping: Any, items: Iterable) -> None:
            if isinstance(mapping, dict):
                kept.append((mapping, dict(mapping)))
                mapping.clear()
                mapping.update(items)

        reprs = getattr(history, "output_hist_reprs", None)
        take_over(reprs, ((pair[0], pair[1]) for pair in (given[2] if len(given) > 2 else ())
                          if isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int))
        if len(given) == 5:
            self._take_notebooks_outputs(history, given[3:], take_over)
        session = history.session_number
        # `-l` reads IPython's database, which has outputs only where it logs them
        shown = reprs if isinstance(reprs, dict) and getattr(history, "db_log_output", False) \
            else {}

        def tail(n: int | None = 10, raw: bool = True, output: bool = False,
                 include_latest: bool = False) -> list:  # `%history -l`: the notebook's last
            lines = history.input_hist_raw if raw else history.input_hist_parsed
            count = (10 if n is None else n) + (0 if include_latest else 1)
            found = [(session, number, (lines[number], shown.get(number)) if output
                      else lines[number])
                     for number in range(max(1, len(lines) - count), len(lines))]
            return found if include_latest else found[:-1]

        history.get_tail = tail  # this instance's, for the run
        try:
            yield
        finally:
            del history.get_tail
            history.input_hist_raw[:], history.input_hist_parsed[:] = own
            for mapping, own_items in kept:
                mapping.clear()
                mapping.update(own_items)

    @staticmethod
    def _take_notebooks_outputs(history: Any, given: list,
                                take_over: Callable[[Any, Iterable], None]) -> None:
        """The history's outputs and errors are the notebook's (``given``, as
        :func:`.runner.notebook_history` sends them) for ``%notebook``, by ``take_over``."""
        made = getattr(sys.modules.get("IPython.core.history"), "HistoryOutput", None)
        if made is None:
            return
        take_over(getattr(history, "outputs", None),
                  ((number, [made(output_type=kind, bundle=bundle) for kind, bundle in outs])
                   for number, outs in given[0]))
        take_over(getattr(history, "exceptions", None), (tuple(pair) for pair in given[1]))

    @contextlib.contextmanager
    def _the_notebooks_count(self, count: Any):
        """Around a cell: the shell's ``execution_count`` is the notebook's for it (``In[n]``),
        as a plain cell reads it (``f'fig_{get_ipython().execution_count}.png'``: it was this
        kernel's, 1 in every cell, hunt 20 H20-18); this kernel's own after."""
        shell = getattr(self.kernel, "shell", None)
        if shell is None or type(count) is not int or count <= 0:
            yield
            return
        own = shell.execution_count
        shell.execution_count = count
        try:
            yield
        finally:
            shell.execution_count = own

    @contextlib.contextmanager
    def _magics_see_the_run(self, code: str, namespace: dict, content: dict | None = None):
        """Around a cell that calls magics: IPython's namespace is the run's while it runs.

        As in a plain cell, ``x?``, ``%pinfo``, ``%whos``, ``%%time`` and ``%timeit`` look the
        cell's names up in the shell's ``user_ns``, and what they bind there stays in the run;
        ``!echo {x}`` in a function expands ``x`` from there too.
        On the main thread only: a detached job's thread must not swap the namespace under a
        cell the main thread runs; its magics use the kernel's, and leave no names there.
        """
        shell = getattr(self.kernel, "shell", None)
        if shell is None or not _calls_the_shell(code, namespace):
            yield
            return
        if threading.current_thread() is not threading.main_thread():
            with self._magics_leave_no_names(code, namespace):
                yield
            return
        own = shell.user_ns_hidden.get("get_ipython")
        if own is not None and namespace.get("get_ipython") == own:
            namespace["get_ipython"] = own  # the very object: %whos leaves it out, as IPython's
        kernel_ns = shell.user_ns
        for machinery in MAGICS_MACHINERY:  # %cd and %dhist keep the directories they visit
            if machinery not in namespace and machinery in kernel_ns:
                namespace[machinery] = kernel_ns[machinery]
        shell.user_ns = namespace
        # and its globals: code a magic runs (`get_ipython().run_cell(body)`) executes in
        # user_module's dict, where a function it defines finds its globals later
        kernel_module, run_module = shell.user_module, _RUN_MODULES.get(id(namespace))
        if run_module is not None:
            shell.user_module = run_module
        shell.reset = self._reset_the_run(namespace)  # %reset: the run's names, and the notebook's
        # `%reset out`, `in`, `dhist`: the notebook's histories (a cell that runs %reset)
        line_magics = getattr(getattr(shell, "magics_manager", None), "magics", {}).get("line", {})
        reset_magic = shell.find_line_magic("reset") if "output_entries" in (content or {}) \
            else None  # (found, as IPython loads a lazy one: the table then holds it)
        if getattr(reset_magic, "__self__", None) is None \
                or line_magics.get("reset") is not reset_magic:
            reset_magic = None  # not IPython's own, or not where it looks it up
        else:
            line_magics["reset"] = self._flush_in_the_notebook(
                reset_magic, content.get("output_entries"))
        payloads = getattr(shell, "payload_manager", None)
        before = len(payloads.read_payload()) if payloads is not None else 0
        # IPython's last cell result, which `%xdel` looks at: none here (a cell run by us is
        # not one of IPython's run_cell's)
        made = None
        if getattr(shell, "last_execution_result", _Placeholder) is None:
            result_class = getattr(sys.modules.get("IPython.core.interactiveshell"),
                                   "ExecutionResult", None)
            if result_class is not None:
                made = shell.last_execution_result = result_class(None)
        hidden = shell.user_ns_hidden
        hidden_before = dict(hidden)
        try:
            yield
        finally:
            shell.user_ns = kernel_ns
            shell.user_module = kernel_module
            del shell.reset
            if reset_magic is not None:
                line_magics["reset"] = reset_magic
            # what IPython bound as its own meanwhile (`%pylab`'s star import, `push(...,
            # interactive=False)`): hidden in the notebook too (hunt 26 H26-16)
            self.hidden_in_run = [name for name, value in list(hidden.items())
                                  if hidden_before.get(name, _Placeholder) is not value
                                  and namespace.get(name, _Placeholder) is value]
            if made is not None and shell.last_execution_result is made:
                shell.last_execution_result = None
            if payloads is not None:
                self._page_in_the_notebook(payloads, before)

    def _reset_the_run(self, namespace: dict) -> Callable[..., None]:
        """The shell's ``reset`` while a cell runs (``%reset``, ``%reset -f``): the run's names
        go, and the reply says so, so that the notebook resets too, as a plain cell's
        ``%reset`` clears the notebook (not this kernel's own names and history)."""
        def reset(new_session: bool = True, aggressive: bool = False) -> None:
            kept = {name: namespace[name] for name in (*_MODULE_NAMES, "get_ipython")
                    if name in namespace}
            namespace.clear()
            namespace.update(kept)
            self.reset_in_run = True
        return reset

    def _debug_if_asked(self, err: BaseException) -> None:
        """``%pdb on`` set in a remote cell: a later remote cell's error opens IPython's
        debugger here at the failing frame, as a plain cell's does; its prompt asks the notebook
        for input (hunt 27 H27-3). Where no input can be given (a frontend without stdin), it
        says why in one line, and the error is shown as ever."""
        shell = getattr(self.kernel, "shell", None)
        if not getattr(shell, "call_pdb", False) \
                or isinstance(err, (KeyboardInterrupt, SystemExit)):
            return
        try:
            shell.debugger(force=True)
        except BaseException as failed:  # noqa: BLE001 - the cell's error is what counts
            print(f"the debugger stopped: {tracebacks.one_line(failed)}", file=sys.stderr)

    def _flush_in_the_notebook(self, reset: Callable[[str], Any],
                               entries: Any) -> Callable[[str], Any]:
        """IPython's ``%reset`` while a cell runs, whose ``out``, ``in`` and ``dhist`` flush
        the notebook's histories (the reply says which: :data:`~..wire.protocol.FLUSHED_HISTORIES`),
        not this kernel's, saying what IPython says (``entries``: how many results the
        notebook's ``Out`` holds); the rest is IPython's own (hunt 26 H26-1)."""
        counted = [entries if type(entries) is int else 0]

        def magic(parameter_s: str = "") -> Any:
            try:
                opts, args = reset.__self__.parse_options(parameter_s, "sf", "aggressive",
                                                          mode="list")
            except Exception:  # noqa: BLE001 - IPython's own says what is wrong
                return reset(parameter_s)
            if not any(str(target).lower() in protocol.FLUSHED_HISTORIES for target in args):
                return reset(parameter_s)
            if "f" not in opts:
                no_stdin = getattr(sys.modules.get("IPython.core.error"),
                                   "StdinNotImplementedError", ())
                try:
                    sure = reset.__self__.shell.ask_yes_no(
                        "Once deleted, variables cannot be recovered. Proceed (y/[n])?",
                        default="n")
                except no_stdin:
                    sure = True
                if not sure:
                    print("Nothing done.")
                    return None
            if "s" in opts:  # its soft reset of the names, then the histories
                reset("-f -s")
            for target in args:
                which = str(target).lower()
                if which not in protocol.FLUSHED_HISTORIES:
                    reset("-f " + str(target))  # `array`, or what IPython does not know
                    continue
                if which == "out":
                    print(f"Flushing output cache ({counted[0]} entries)")
                    counted[0] = 0
                else:
                    print("Flushing input history" if which == "in"
                          else "Flushing directory history")
                with contextlib.redirect_stdout(io.StringIO()):  # and the run's names for
                    reset("-f " + which)  # them (`_`, `_i`, `_dh`), as IPython does
                if which == "out":  # and the notebook's `Out` the cell was sent
                    for name in protocol.OUTPUT_CACHE_NAMES:
                        cache = reset.__self__.shell.user_ns.get(name)
                        if isinstance(cache, dict):
                            cache.clear()
                self.flushed_in_run.append(which)
            return None
        return magic

    def _page_in_the_notebook(self, payloads: Any, before: int) -> None:
        """Send what the cell paged (``x?``'s help) to the notebook, which pages it as a plain
        cell's, and the next input it set (``%load``, ``set_next_input``: hunt 19 H19-33, the
        cell silently did nothing), which the notebook sets as its own; the kernel's own
        payloads go with its next ``execute_request``, not these."""
        written = payloads.read_payload()
        ours = [p for p in written[before:] if isinstance(p, dict)
                and p.get("source") in ("page", "set_next_input")]
        if not ours:
            return
        payloads.clear_payload()
        for payload in written:
            if not any(payload is mine for mine in ours):
                payloads.write_payload(payload)
        for payload in ours:
            if payload["source"] == "page":
                self.session.send(self.kernel.iopub_socket, protocol.PAGE,
                                  {"data": payload.get("data"), "start": payload.get("start", 0)},
                                  parent=self.running, ident=b"remote_magics.page")
            else:
                self.session.send(self.kernel.iopub_socket, protocol.NEXT_INPUT,
                                  {"text": payload.get("text"),
                                   "replace": bool(payload.get("replace"))},
                                  parent=self.running, ident=b"remote_magics.next_input")

    @contextlib.contextmanager
    def _magics_leave_no_names(self, code: str, namespace: dict):
        """Around a cell that calls magics: the names they copy from the run into the kernel's
        own namespace (``%timeit`` does) go again, so a later cell never sees them stale."""
        shell = getattr(self.kernel, "shell", None)
        if shell is None or not _calls_the_shell(code):
            yield
            return
        user_ns = shell.user_ns
        before = set(user_ns)
        try:
            yield
        finally:
            for name in [n for n in user_ns if n not in before]:
                if name in namespace and user_ns[name] is namespace[name]:
                    del user_ns[name]

    def _traceback_formatter(self) -> Any:
        """The shell's traceback formatter (its ``mode`` is ``%xmode``'s), or None."""
        return getattr(getattr(self.kernel, "shell", None), "InteractiveTB", None)

    def _traceback_mode(self) -> str | None:
        return getattr(self._traceback_formatter(), "mode", None)

    @contextlib.contextmanager
    def _tracebacks_as_the_notebooks(self, content: dict, before: str | None):
        """Format the run's errors in the notebook's ``%xmode`` (the request's ``xmode``), or
        in the one the cell itself set with ``%xmode``, which the reply then carries
        (``{"xmode": mode}``, yielded) for the notebook to take, as a plain cell's would."""
        formatter = self._traceback_formatter()
        now = getattr(formatter, "mode", None)
        if formatter is None or now is None:
            yield {}
            return
        if now != before:  # the cell ran %xmode: its mode, here and in the notebook
            yield {"xmode": now}
            return
        wanted = content.get("xmode")
        if not isinstance(wanted, str) or wanted == now or wanted not in formatter.valid_modes:
            yield {}
            return
        formatter.set_mode(wanted)
        try:
            yield {}
        finally:
            formatter.set_mode(now)

    def _result_comes_first(self, parent: dict) -> None:
        """Mark where the cell's own output ends (``remote_cell_ran``): the figures the
        post-execute hooks show next come after its result in the notebook, as in a plain
        cell. What the cell printed goes out first."""
        quiet.flush_printed()
        self.session.send(self.kernel.iopub_socket, protocol.CELL_RAN, {}, parent=parent,
                          ident=b"remote_cell_ran")

    def flush_figures(self) -> None:
        """Show figures the cell made, as ``execute_request`` does after a cell (not the
        notebook's that was current: :func:`.settings.return_lent_figures`; which the cell
        closed, :attr:`figures_closed`)."""
        self.figures_closed = settings.return_lent_figures()
        shell = getattr(self.kernel, "shell", None)
        if shell is None:
            return
        try:
            shell.events.trigger("post_execute")
        except Exception:
            self.kernel.log.debug("post_execute hooks failed", exc_info=True)

    def error_content(self, err: BaseException) -> dict:
        """An error reply's fields for ``err``: never raises, and costs little however deep."""
        if isinstance(err, InputError) and err.__cause__ is not None:
            cause = err.__cause__
            content = tracebacks.error_content(cause, cause.__traceback__, evalue=err.message)
            content["input"] = err.name  # the client adds what versions differ, if any
            return content
        tb = err.__traceback__
        own = Engine.execute.__code__.co_filename
        while tb is not None and tb.tb_frame.f_code.co_filename == own:
            tb = tb.tb_next  # our own frames are noise to the user
        return tracebacks.error_content(err, tb, shell=getattr(self.kernel, "shell", None))

    @staticmethod
    def _bound_unseen(namespace: dict, before: dict, listed: set) -> list[str]:
        """Names the run bound, or bound anew, that the cell's analysis did not list: a notebook
        function's ``global counter; counter += 1``, ``from m import *``, ``%run``, ``exec``.
        Not IPython's history, its machinery, dunder names, nor names fetched on first use."""
        fetched = set(lookup.fetched(namespace))
        return [name for name, obj in namespace.items()
                if name not in listed and name not in fetched and not name.startswith("__")
                and name not in MAGICS_MACHINERY and name != "get_ipython"
                and obj is not PLACEHOLDER and before.get(name, PLACEHOLDER) is not obj
                and not protocol.HISTORY_NAME.fullmatch(name)]

    def outputs(self, content: dict, namespace: dict, value: Any, client: str,
                watched: dict | None = None, sent: dict | None = None,
                before: dict | None = None, memos: Sequence = (), proxied: Sequence = (),
                same: Sequence = (), modules: YourModules | None = None,
                shown: Any = NOT_SHOWN, containers: Sequence = ()):
        """The reply's outputs, result and frames, by the download policy.

        ``watched`` (from :func:`watch`): inputs the cell may have changed in place; those it
        did change come back too, marked ``changed``, as if the cell had assigned them.
        ``sent``: every input as it came (name → object): a numpy view of one goes back as a
        view of the notebook's array. ``before``: the run's namespace before the cell ran
        (a copy): whatever the cell bound anew comes back too, listed by the analysis or not.
        ``memos``: how the inputs' objects were numbered as they came
        (:func:`~..wire.serialize.load_names`): an object inside them that goes back (``row =
        grid[0]``) is the notebook's own, with its contents as they are now. ``proxied``: the
        inputs the notebook holds as proxies: under ``small``, a numpy view of one of them (or
        of an array that stays here for its size) stays here too, as a plain view shares its
        array's memory. ``same``: the inputs whose memory the run did not write (from
        :func:`unwritten`): a view of one goes back without its values, which the notebook's
        array holds already. ``modules``: your modules here before the cell
        (:class:`YourModules`): the globals it rebound go back too, to be set in the
        notebook's module (:data:`~..wire.protocol.MODULE_GLOBAL`), and those it deleted go
        as deleted; a global the inputs carried that the cell changed in place goes back
        too, marked ``changed``, for the notebook's object to take the change
        (``confmod.pageDict['A'] = 1``, ``remember(x)`` appending to a list of your module);
        and a class or function of theirs the cell changed (``kinds.Kind.label = 'x'``), into
        the notebook's own, which goes back wherever the reply refers to it. ``shown``: the
        result's display, formatted already when the cell finished (:data:`NOT_SHOWN`:
        formatted here). ``containers``: the kept containers the run was sent
        (:meth:`.kept.RunKeeper.containers`): a member of one that goes back is the notebook's
        own (``x = P[7]``).
        """
        inputs = {item["name"] for item in content.get("inputs", ())}
        frames: list = []
        outputs, deleted = [], []
        names = list(content.get("outputs", ()))
        in_place, former = changed_in_place(watched or {}, namespace, same)
        changed_there = set(in_place)
        modules = modules or YourModules({}, {}, {})
        # (not within returning below)
        changed_globals = globals_changed(modules.globals, modules.linked)
        changed_definitions = definitions_changed(modules.definitions, modules.linked)
        changed = changed_there - set(names)
        names += sorted(changed)
        if before is not None:  # what the run bound or rebound that the analysis cannot see
            names += self._bound_unseen(namespace, before, set(names))
            # and the inputs it deleted unseen (`global X; del X` in a function it called)
            listed = set(names)
            names += [name for name in inputs if name not in namespace and name not in listed]
        elif content.get("star_import"):  # `from m import *` binds names the client cannot list
            # an input still bound to the object that came is the notebook's own: not new
            kept = {n for n in inputs if namespace.get(n) is (sent or {}).get(n, namespace.get(n))}
            given = {*kept, *content.get("placeholders", ()), *lookup.fetched(namespace),
                     "__name__", "get_ipython", *MAGICS_MACHINERY}
            listed = set(names)
            names += [n for n in namespace if n not in given and n not in listed
                      and not n.startswith("__")]
        # The client's objects the cell was given: wherever they appear in what goes back, they
        # are the client's own objects (those that changed, with their new state), so a changed
        # object's reference to one it only read is still to that one (`ax.figure is fig`)
        held = {name: obj for name, (obj, _) in (watched or {}).items()
                if namespace.get(name, PLACEHOLDER) is obj}
        held.update((name, watched[name][0]) for name in former)
        read = {name: obj for name, obj in (sent or {}).items()
                if name not in held and namespace.get(name, PLACEHOLDER) is obj}
        held.update(read)
        # when something changed, one the cell only read (of a Python class) goes with its
        # state too: a changed object may refer to objects inside it (a figure's transforms,
        # which ax.bbox uses), which must be the notebook's, not copies; the notebook names
        # sharing its objects came with the watched ones, so they stay the notebook's too
        restated = changed_there | set(former) | (
            {name for name, obj in read.items() if serialize.restatable(obj)}
            if changed_there or former else set())
        # and a list, dict, set or bytearray the cell only read by its name but may have
        # changed through a changed one that holds it (`row = grid[0]` in the notebook, then
        # `grid[0].append(9); row`): with its contents, else it went as the unchanged one
        # (hunt 19 H19-1)
        restated |= _held_inside([namespace[name] for name in changed_there if name in namespace],
                                 {name: obj for name, obj in read.items()
                                  if type(obj) in serialize.CONTAINERS and name not in restated})
        # and one that is a global of your module the cell changed through the module
        # (`holder = regm.REGISTRY` in the notebook, `regm.register('x')` in the cell): with
        # its contents, else it went as the unchanged one (hunt 34 H34-12)
        through_modules = {id(obj) for _, _, obj in changed_globals}
        restated |= {name for name, obj in held.items() if id(obj) in through_modules}
        # a name the cell assigned that still holds the object it came with may have changed in
        # place (`lst += [2]`, `a *= 2` assign what they changed): it goes as changed, with its
        # contents, and the notebook's object takes them; not a class, function or module, which
        # no assignment changes (`from collections import deque` again, with the notebook's
        # deque sent: restated, a builtin class could not be pickled, hunt 42 H42-2)
        kept = {name for name in content.get("outputs", ())
                if name in held and name not in former
                and (sent or {}).get(name, PLACEHOLDER) is held[name]
                and not isinstance(held[name], _DEFINITIONS)}
        restated |= kept
        changed |= kept
        origins: dict[int, list[str]] = {}  # each input object → the names it came under
        for origin, given in (sent or {}).items():
            origins.setdefault(id(given), []).append(origin)
        # a notebook class the cell changed goes first, with its state: a class the cell defined
        # on it (`class CSV(Plugin)`, which Plugin's `__init_subclass__` registered) is then
        # pickled once, inside that state; the other way round it went twice, its own bases
        # holding Plugin's state that holds it, and the registry held a second copy
        # then the other notebook objects it changed (under none they go back by value, and a
        # new object inside one, `model.add(layer)`, is then known: see encode)
        names.sort(key=lambda n: (not (n in changed and isinstance(namespace.get(n), type)),
                                  n not in changed))
        batch = Batch()
        for token, container, unchanged in containers:  # the notebook holds their members too
            batch.stream.members.add(token, container, unchanged)
        batch.stream.roots = [namespace[n] for n in names if n in namespace] + [value]
        staying = _staying_arrays(content, proxied, [namespace.get(n) for n in names])
        # one the notebook holds as a proxy was changed here, where its proxy still points: it
        # stays (by value it would part from what refers to it here: `di = iter(d.items())`)
        remote_held = {id(obj) for obj in proxied}
        batch.held_remotely = frozenset(remote_held)
        # your modules' classes, functions and the globals the inputs carried are the
        # notebook's own wherever they appear (the class of `p = plugins.Plugin('a')`, a list
        # `from moda import SHARED as S2` binds), one the cell changed with its state, once
        given = {id(obj) for obj in held.values()}
        carried = {id(obj) for obj, _ in modules.globals.values()}
        # and their functions under whatever name (`add_one = _factory(1)`, a closure: hunt 34
        # H34-1), which under none came as proxies running with the engine's module
        carried.update(id(obj) for obj, _ in modules.definitions.values())
        for (module, name), (obj, _) in [*modules.definitions.items(), *modules.globals.items()]:
            if id(obj) not in given:
                held[serialize.module_global_key(module, name)] = obj
        restated |= {serialize.module_global_key(module, name)
                     for module, name, obj in [*changed_definitions, *changed_globals]
                     if id(obj) not in given}
        inner = serialize.InnerIndex(memos) if memos else None
        keeps_remote = content.get("download") == "none"  # (else such a name comes back anyway)
        with serialize.cell_namespace(namespace), \
                serialize.returning(held, restated, sent or {}, inner, proxied, same,
                                    lambda obj: self._held_for(obj, content, client)), \
                serialize.module_globals({n: namespace[n] for n in names if n in namespace}):
            # a module of yours the cell imported first but bound under none of its names
            # (`from m import Thing`, an `import` inside a function, one your other module
            # imports) goes first, as the cell left it: the notebook's import of it then has
            # that state, and the names' objects of it are its (hunt 35 H35-6b, H35-12, H35-13);
            # not one the notebook has loaded (imported afresh here, by an `exec`, it is not
            # the notebook's: that one keeps its state)
            # and one the cell put in sys.modules (made at run time, or under a second name),
            # also when a name of the cell holds it: being in sys.modules is not being bound
            # (hunt 39 H39-9: `sys.modules['cfg38'] = cfg; cfg.K = 1` left it out)
            named = {id(namespace[name]) for name in names if name in namespace}
            for name, module in [
                    *((module.__name__, module)
                      for module in modules.imported_first(content.get("loaded_modules") or ())
                      if id(module) not in named),
                    *modules.made_since()]:
                outputs.append(self.encode(f"{protocol.IMPORTED}{name}", module, content,
                                           client, frames, batch))
            for name in names:
                if name not in namespace:
                    if name in inputs or name in content.get("placeholders", ()):
                        deleted.append(name)
                    continue
                if namespace[name] is PLACEHOLDER:  # a `del` that did not run: the name stays
                    continue
                # a notebook class or function the cell changed (`P.count += 1`) comes back
                # whole under any policy: a proxy in its place would fail `isinstance(x, P)`
                # and make `P(...)` run remotely; its state is its members, small
                # a name bound to an object the notebook sent (`it = box`), or one inside what
                # it sent (`row = grid[0]`: hunt 34 H34-4), is the notebook's object too, under
                # none as well: as a proxy it took the notebook's name along
                output = self.encode(name, namespace[name], content, client, frames, batch,
                                     stay=_view_of(namespace[name], staying, batch),
                                     back=name in changed and _definition(namespace[name]),
                                     own=(name in changed or id(namespace[name]) in origins
                                          or id(namespace[name]) in carried
                                          or _method_of(namespace[name], origins)
                                          or _member_of(namespace[name], origins)
                                          or (inner is not None and keeps_remote
                                              and inner.holds(namespace[name])))
                                     and id(namespace[name]) not in remote_held)
                if name in changed:
                    output["changed"] = True
                self._mark_input(output, namespace[name], origins, name)
                outputs.append(output)
            for name in former:  # the notebook's object the cell changed, then rebound
                obj = watched[name][0]
                output = self.encode(f"{protocol.FORMER}{name}", obj, content, client, frames,
                                     batch, own=id(obj) not in remote_held)
                output["changed"] = True
                outputs.append(output)
            for module, name, obj in changed_definitions:  # the notebook's, changed
                output = self.encode(f"{protocol.MODULE_GLOBAL}{module}:{name}", obj, content,
                                     client, frames, batch)
                output["changed"] = True
                outputs.append(output)
            for module, name, obj in serialize.rebound_since(modules.before, modules.linked):
                outputs.append(self.encode(f"{protocol.MODULE_GLOBAL}{module}:{name}", obj,
                                           content, client, frames, batch))
            for module, name, obj in changed_globals:
                # the notebook's object, changed in place: into it, under none too, as a
                # name's (a proxy set on the module split it from `from mymod import config`:
                # hunt 19 H19-26)
                output = self.encode(f"{protocol.MODULE_GLOBAL}{module}:{name}", obj, content,
                                     client, frames, batch, own=id(obj) not in remote_held)
                output["changed"] = True
                outputs.append(output)
            result = None
            if value is not None:
                # the notebook's object shown (`x.append(3); x`): its own under none too, so
                # `_ is x` holds as plainly (hunt 19 H19-16)
                result = self.encode("Out", value, content, client, frames, batch,
                                     own=id(value) in origins and id(value) not in remote_held)
                self._mark_input(result, value, origins, None)
                if content.get("show_result"):  # a proxy too: the cell shows the value, not a card
                    result["display"] = self.format_result(value) if shown is NOT_SHOWN \
                        else shown
        frames, packed = serialize.pack([*outputs, result] if result else outputs, frames)
        reply = {"status": "ok", "outputs": outputs, "result": result, "deleted": deleted,
                 "packed": packed}
        deleted += [f"{protocol.MODULE_GLOBAL}{module}:{name}"
                    for module, name in serialize.deleted_since(modules.before, modules.linked)]
        reloaded = serialize.reloaded_since(modules.before)
        if reloaded:  # `importlib.reload(mymod)`: the notebook reloads its own, as one process
            reply["reloaded"] = reloaded
        return reply, frames

    def format_result(self, value: Any) -> dict | None:
        """The cell result's display, made here as this kernel shows it: ``{"data", "metadata"}``.

        Formatted where the cell ran, so the options it set there (pandas' display width,
        numpy's print options, rcParams) apply, as they would in a plain kernel; None when it
        cannot be formatted (the client formats its own copy then).
        """
        shell = getattr(self.kernel, "shell", None)
        if shell is None:
            return None
        failed: list[dict] = []

        def showtraceback(exc_tuple: Any = None, *args: Any, **kwargs: Any) -> None:
            # IPython's formatters report a repr that raises here, and format the value without
            # that representation: the notebook shows the error as a plain kernel would
            kind, err, tb = exc_tuple if exc_tuple is not None else sys.exc_info()
            if err is not None:  # each, in order (`__repr__`'s, then `_repr_html_`'s: hunt 27
                failed.append(tracebacks.error_content(err, tb, shell=shell))  # H27-4)

        try:
            shell.showtraceback = showtraceback
            with shell.builtin_trap:  # as inside a cell: get_ipython() answers (pandas asks it)
                data, metadata = shell.display_formatter.format(value)
            data = {mime: base64.b64encode(shown).decode() if isinstance(shown, bytes) else shown
                    for mime, shown in data.items()}
            # what goes in the reply must be JSON, and is what a plain kernel's session makes
            # of it (NumPy numbers as numbers, sets as lists, dates as text: hunt 29 H29-7)
            data, metadata = json.loads(json.dumps([data, metadata], default=_json_default))
        except BaseException as err:  # a value that cannot be shown: the notebook formats it
            self.kernel.log.debug("remote_magics: result not formatted: %s",
                                  tracebacks.one_line(err))
            return None
        finally:
            del shell.showtraceback
        shown = {"data": data, "metadata": metadata}
        if failed:
            shown["error"] = failed[0]
        if len(failed) > 1:
            shown["more_errors"] = failed[1:]
        return shown

    def _held_for(self, obj: Any, content: dict, client: str, proxy: bool = True) -> dict:
        """``obj`` held for ``client`` (one more reference), described for its proxy (or, not
        ``proxy``, for a value going back), with the run's download policy: a name's, or one
        the notebook holds as a proxy met inside a value going back
        (:func:`~..wire.serialize.returning`'s ``proxy_of``)."""
        ref = describe(obj, self.store.add(obj, client), proxy=proxy)
        ref.update(download=content.get("download", "small"), bytes=content.get("bytes"))
        return ref

    @staticmethod
    def batch() -> Batch:
        """A new :class:`Batch`, for the names of one reply (:meth:`encode`)."""
        return Batch()

    def encode(self, name: str, obj: Any, content: dict, client: str, frames: list,
               batch: "Batch | None" = None, stay: bool = False, back: bool = False,
               own: bool = False) -> dict:
        """One name's output by the download policy: its value's frames, or a proxy.

        With ``batch``, it joins the other names of the same reply (one pickle stream, one
        proxy per object that stays remote). With ``stay``, it stays remote whatever the
        policy, as a big value under ``small`` does, without a note; with ``back``, it comes
        back whatever the policy (unless it cannot be pickled). ``own``: the notebook's object,
        which the cell changed in place; under ``none`` it comes back as under ``small`` (up to
        :data:`~..wire.protocol.DEFAULT_BYTES`), into the notebook's object, so the other
        notebook objects holding it see the change, as plainly (a proxy under its name alone
        split it in two: hunt 14 C6).
        """
        policy = "none" if stay else content.get("download", "small")
        if own and policy == "none":
            policy, content = "small", {**content, "bytes": protocol.DEFAULT_BYTES}
        elif policy == "none" and batch is not None and id(obj) in batch.stream.holds():
            # inside a notebook object that went back by value (`layer = Layer(); model.add(
            # layer)`): that very object, not a proxy of the engine's, which nothing of the
            # notebook's held (hunt 20 H20-3)
            policy = "all"
        # a tuple or frozenset let through under none: the notebook sends its copy back as a
        # reference to this object, which a sentinel (`empty = (0, 0)`) is tested against here
        twin = policy == "none" and not stay and type(obj) in TWINNED and atom(obj)
        # a tuple of index arrays (`np.where(mask)`'s) is no proxy: NumPy took one for a single
        # index array, `x[idx]` gave a 2-D result (hunt 41 H41-5); under none it comes back as
        # such a tuple is (up to DEFAULT_BYTES), else as a tuple of proxies of its arrays
        index = not stay and not own and _index_tuple(obj) \
            and (batch is None or id(obj) not in batch.held_remotely)  # (a proxy: stays one)
        if back or twin or _goes_as_itself(obj) or (policy == "none" and not stay and atom(obj)):
            policy = "all"
        reason = None
        remote = batch.remote.get(id(obj)) if batch is not None else None
        if remote is not None:  # another name of this reply: the same proxy
            return {"name": name, "kind": "proxy", "ref": remote[0], "reason": remote[1]}
        if policy != "none" or index:
            limit = protocol.DEFAULT_BYTES if policy == "none" \
                else content.get("bytes") if policy == "small" else None
            twin = twin or policy == "none"
            try:
                item, fields = self._dumped(obj, limit, batch)
            except serialize.TooLarge:
                pass
            except BaseException as err:  # cannot be pickled (whatever its __reduce__ raises):
                reason = tracebacks.one_line(err)  # it stays remote, and we say why
            else:
                frames.extend(item)
                ref = self._held_for(obj, content, client, proxy=False)
                if twin:
                    fields = {**fields, "twin": True}
                return {"name": name, "kind": "value", "nframes": len(item), "ref": ref, **fields}
        if index and reason is None:
            stand_in, own = batch.tuples.get(id(obj), (None, False)) if batch is not None \
                else (None, False)
            if stand_in is None:
                stand_in, own = self._items_proxied(obj, policy, content, client, batch)
            try:
                item, fields = self._dumped(stand_in, None, batch)
            except BaseException:  # noqa: B036 - an item that cannot be pickled: a proxy, as
                for proxied in stand_in:  # before
                    if isinstance(proxied, serialize.Proxied):
                        self.store.release(proxied.descriptor["id"], client)
            else:
                if batch is not None:
                    batch.tuples[id(obj)] = (stand_in, own)
                frames.extend(item)
                ref = self._held_for(obj, content, client, proxy=False)
                if policy == "none" and not own:
                    # the notebook keeps the engine's tuple beside it, as an atom's
                    # (cells.twins); not one holding a notebook object, which goes back as
                    # that object, so a cell changing it in place changes the notebook's
                    fields = {**fields, "twin": True}
                return {"name": name, "kind": "value", "nframes": len(item), "ref": ref, **fields}
        ref = self._held_for(obj, content, client)
        if batch is not None:
            batch.remote[id(obj)] = (ref, reason)
        return {"name": name, "kind": "proxy", "ref": ref, "reason": reason}

    def _items_proxied(self, items: tuple, policy: str, content: dict, client: str,
                       batch: "Batch | None") -> tuple[tuple, bool]:
        """``items`` as they go back inside a tuple too big to come back whole, and whether one
        of them is the notebook's own object: an atom, or what goes as itself (a module, None),
        as itself; the notebook's own object (one it sent), or one going by value in the
        reply's stream already, as that; under ``small`` one within ``--bytes`` on its own, as
        itself, but a view of a big array among them; any other as the notebook's proxy of it
        (one reference each: the notebook keeps one proxy of an object, see RemoteObject)."""
        limit = content.get("bytes")
        sent = batch.stream.holds() if batch is not None else frozenset()
        # a view of a big array among them stays with it, as a name's does (`_view_of`)
        numpy = sys.modules.get("numpy")
        staying = [item for item in items if numpy is not None and policy == "small"
                   and type(item) is numpy.ndarray and item.nbytes > (limit or 0)]
        kept, own = [], False
        for item in items:
            if _goes_as_itself(item) or atom(item):
                kept.append(item)
                continue
            if id(item) in sent or serialize.receivers_own(item):
                kept.append(item)
                own = True
                continue
            if policy == "small" and not _view_of(item, staying, batch):
                try:
                    serialize.dumps(item, limit)
                except BaseException:  # noqa: B036 - big, or cannot go: it stays
                    pass
                else:
                    kept.append(item)
                    continue
            kept.append(serialize.Proxied(self._held_for(item, content, client)))
        return tuple(kept), own

    @staticmethod
    def _dumped(obj: Any, limit: int | None, batch: "Batch | None") -> tuple[list, dict]:
        """``obj``'s frames and its item's fields, in ``batch``'s stream when there is one. A
        module of yours the cell imported first here goes with what the cell did to its
        globals and to its classes' and functions' attributes, which the notebook's takes (by
        reference alone, the notebook imported it afresh from the file: hunt 20 H20-19, hunt
        35 H35-6), in the reply's stream, so an object two of them
        share (`from moda import SHARED` in `modb`) stays one (hunt 26 H26-30); by reference
        where they cannot go."""
        for definitions in (True, False):  # its classes' attributes too, where they can go
            carried = serialize.module_with_state(obj, definitions) \
                if type(obj) is types.ModuleType else None
            if carried is None:
                break
            try:
                if batch is None:
                    return serialize.dumps(carried, MODULE_STATE_BYTES), {}
                return batch.stream.dump(carried, MODULE_STATE_BYTES)
            except Exception:  # noqa: BLE001 - a global that cannot go: by reference
                pass
        if batch is None:
            return serialize.dumps(obj, limit), {}
        return batch.stream.dump(obj, limit)

    async def chunk_request(self, stream, ident, parent) -> None:
        """Take one chunk of a client's upload (:mod:`..wire.streaming`), and acknowledge it.

        The chunks wait in :attr:`incoming` (client secret → its Incoming) until the request
        they go ahead of claims them (:meth:`authentic`).
        """
        client, content = protocol.client_of(parent), parent["content"]
        if not client:
            self._drop(parent, "without its client's secret (a client older than this engine?)")
            return
        incoming = self.incoming.get(client)
        if incoming is None:
            incoming = self.incoming[client] = streaming.Incoming(self.key)
        ack = {name: content.get(name) for name in ("transfer", "index", "offset")}
        try:
            incoming.add(content, parent["buffers"])
        except streaming.StreamError as err:
            self.kernel.log.error("remote_magics: dropped a chunk: %s", err)
            ack["error"] = str(err)
        self.session.send(self.kernel.iopub_socket, protocol.CHUNK_ACK, ack, parent=parent,
                          ident=b"remote_magics.chunk_ack")  # the client sends more

    async def fetch_request(self, stream, ident, parent) -> None:
        """Send an object's whole value."""
        if not self.authentic(parent):
            return
        client = protocol.client_of(parent)
        oid = parent["content"].get("id", "")
        try:
            obj = self.store.get(oid, client)
        except KeyError:
            self.reply(stream, ident, parent, {
                "status": "error", "ename": "LookupError",
                "evalue": f"remote object {oid} is not held for this client", "traceback": []})
            return
        try:
            with serialize.module_globals({}, [obj]):  # matplotlib's rcParams: the client's own
                item = serialize.dumps(obj)
        except BaseException as err:  # whatever its __reduce__ raises, the client gets an answer
            self.reply(stream, ident, parent, tracebacks.error_content(err, err.__traceback__))
            return
        self.reply(stream, ident, parent, {"status": "ok", "nframes": len(item)}, item)

    async def release_request(self, stream, ident, parent) -> None:
        """Drop the client's references to objects."""
        if not self.authentic(parent):
            return
        client = protocol.client_of(parent)
        released = sum(self.store.release(oid, client) for oid in parent["content"].get("ids", ()))
        released += self.kept.release(client, parent["content"].get("uploads", ()))
        if parent["content"].get("all"):
            self.kept.drop_client(client)
            released += self.store.drop_client(client)
            self.shared.close(client)
            self.unsettled = {k: v for k, v in self.unsettled.items() if v[0] != client}
        self.reply(stream, ident, parent, {"status": "ok", "released": released})

    async def info_request(self, stream, ident, parent) -> None:
        """Describe the engine and what it holds for this client."""
        if not self.authentic(parent):
            return
        client = protocol.client_of(parent)
        self.reply(stream, ident, parent, {
            "status": "ok",
            "protocol_version": protocol.PROTOCOL_VERSION,
            "objects": self.store.count(client),
            "kept": self.kept.count(client),
            "total_objects": self.store.count(),
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "python": sys.executable,
            "python_version": platform.python_version(),
            "cwd": os.getcwd(),
            "versions": protocol.versions(),
            "persist": self.persistence.info() if self.persistence is not None else None,
            "jobs": len(self.jobs.jobs),
            "answers_status": self.activity is not None,  # remote_status_request (.activity)
            # same host: our offer of shared memory, and whether we could read the client's
            "shared_probe": shared.probe(),
            "shared_ok": shared.probe_ok(parent["content"].get("shared_probe")),
            "pull_ok": shared.pull_ok(parent["content"].get("shared_probe")),
            "digest_scheme": protocol.agreed_scheme(parent["content"].get("digests")),
            # big frames may go by this TCP port (at the kernel's ip) instead of chunks
            protocol.DATA_PORT: self.dataport.port if self.dataport is not None else None,
        })


class _NoShellThread:
    """In place of ipykernel 7's shell channel thread, which the engine does without: false, as
    None is, where ipykernel asks whether there is one; where a cell with a top-level ``await``
    asks which thread runs the shell (to cancel it on SIGINT), the main thread, as in a kernel
    of its own (None raised there: every such cell of the remote kernel failed, hunt 20
    H20-17)."""

    parent_thread = threading.main_thread()

    def __bool__(self) -> bool:
        return False


class InputError(Exception):
    """An input of the cell could not be unpickled in the engine."""

    def __init__(self, name: str, cause: BaseException) -> None:
        hint = ""
        if isinstance(cause, ImportError) and cause.name:
            hint = (f" The cell uses module '{cause.name}' by reference and it is not installed"
                    " in the remote kernel's environment: install it there.")
        self.message = (f"the value of '{name}' could not be unpickled in the remote kernel: "
                        f"{tracebacks.one_line(cause)}.{hint}")
        super().__init__(self.message)
        self.name = name


def open_data_port(kernel: Any) -> "dataport.Listener | None":
    """The engine's data port (:mod:`..wire.dataport`), at the kernel's ip; None where it may not
    have one.

    Not for a kernel served with CurveZMQ (the side connection is not encrypted: its big frames
    stay in the encrypted chunks), on a wildcard address, on another transport, or with
    ``REMOTE_MAGICS_DATA_PORT=0``. The port is the connection file's ``data_port`` when it names
    one (an ssh target forwards that one), else any free port.
    """
    app = getattr(kernel, "parent", None)
    ip = str(getattr(app, "ip", "") or "")
    if (not dataport.enabled() or not kernel.session.key
            or getattr(app, "transport", "tcp") != "tcp"
            or getattr(app, "curve_secretkey", None) or ip in ("", "0.0.0.0", "::", "*")):
        return None
    port = 0
    try:
        with open(getattr(app, "abs_connection_file", "") or "") as file:
            port = int(json.load(file).get(protocol.DATA_PORT) or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    try:
        return dataport.Listener(kernel.session.key, ip, port, kernel.log)
    except OSError as err:
        kernel.log.warning("remote_magics: no data port on %s:%s (%s); big frames go as chunks",
                           ip, port, err)
        return None


def install(kernel: Any) -> Engine:
    """Attach an engine to a running ipykernel kernel (once; later calls return the same one)."""
    engine = getattr(kernel, "_remote_magics_engine", None)
    if engine is None:
        engine = Engine(kernel)
        engine.install()
        caches.install()  # caches of cell functions last from run to run
    return engine


#: Options of ``python -m remote_magics.engine`` that are ours, not ipykernel's.
PERSIST_DIR_OPTION = "--persist-dir"
IDLE_TIMEOUT_OPTION = "--idle-timeout"


def own_options(argv: list[str]) -> tuple[dict, list[str]]:
    """Our options (``--persist-dir DIR``, ``--idle-timeout S``) taken out of ``argv``."""
    options, rest = {}, []
    words = iter(argv)
    for word in words:
        name, equals, value = word.partition("=")
        if name in (PERSIST_DIR_OPTION, IDLE_TIMEOUT_OPTION):
            options[name] = value if equals else next(words)
        else:
            rest.append(word)
    return options, rest


def main() -> None:
    """``python -m remote_magics.engine -f CONNECTION_FILE``: an ipykernel with our handlers.

    With ``--persist-dir DIR [--idle-timeout S]`` (how :func:`.host.ensure_persistent` starts
    one) it is persistent: it holds the state directory ``DIR``, whose ``kernel.json`` is its
    connection file, ends after ``S`` seconds idle, and writes its record there once it is up.
    """
    import zmq
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelapp import IPKernelApp
    from ipykernel.parentpoller import ParentPollerUnix

    from .host import ParentWatch

    from . import curve

    options, sys.argv[1:] = own_options(sys.argv[1:])  # what ipykernel parses is its own
    # the program a cell sees, as in a kernel Jupyter started (`python -m ipykernel_launcher`):
    # argparse's usage line and `prog` name it (it was `__main__.py`, hunt 20 H20-11)
    launcher = importlib.util.find_spec("ipykernel_launcher")
    if launcher is not None and launcher.origin:
        sys.argv[0] = launcher.origin

    class EngineKernel(IPythonKernel):
        implementation = "remote_magics.engine"

        @property
        def _supports_kernel_subshells(self) -> bool:  # ipykernel 7 asks it as "is there a
            return False  # shell channel thread": ours is a stand-in (_NoShellThread)

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            engine = install(self)
            activity.install(engine)  # every shell message passes dispatch_shell below
            if PERSIST_DIR_OPTION in options:
                state = persist.StateDir(options[PERSIST_DIR_OPTION])
                try:
                    persist.make_persistent(engine, state, float(options.get(
                        IDLE_TIMEOUT_OPTION, protocol.IDLE_TIMEOUT)), clients=0)
                except persist.StateBusy as err:
                    raise SystemExit(f"remote_magics: {err}") from None
                persist.write_record(engine, state.connection_file)  # clients may come now

        async def dispatch_shell(self, msg: list, *args: Any, **kwargs: Any) -> None:
            persistence = self._remote_magics_engine.persistence
            watch = persistence.watch if persistence is not None else None
            if watch is not None:
                watch.begin()  # a request in progress: not idle
            busy = self._remote_magics_engine.activity
            busy.begin()
            try:
                if not await self._remote_magics_engine.dispatch(msg):
                    await super().dispatch_shell(msg, *args, **kwargs)
            finally:
                busy.end()
                if watch is not None:
                    watch.end()

        async def dispatch_control(self, msg: list) -> None:
            if not self._remote_magics_engine.dispatch_control(msg):
                await super().dispatch_control(msg)

        def start(self) -> None:
            super().start()
            # each shell message in one task, in the context that persists across cells (a
            # cell's ContextVar.set holds in the next): ipykernel's wrapper made a task that
            # made another and waited for it, two turns of the loop (0.06 ms a request). Not
            # before Python 3.11, whose tasks take no context (an engine of another Python
            # answered nothing: CI), nor with an ipykernel that has no `shell_main`
            if self.shell_stream is None or sys.version_info < (3, 11) \
                    or not hasattr(self, "shell_main"):
                return
            context = contextvars.copy_context()
            loop = self.io_loop.asyncio_loop  # (the loop ipykernel's own callback ran on)
            shell_main = self.shell_main
            self.shell_stream.on_recv(
                lambda msg: loop.create_task(shell_main(None, msg), context=context),
                copy=False)

    class EngineApp(IPKernelApp):
        admission = None  # with Curve keys: who may connect (:mod:`.curve`)

        def init_io(self) -> None:
            # stdout and stderr that can prove a request made no output (:mod:`.quiet`)
            self.outstream_class = f"{quiet.__name__}.{quiet.CountingStream.__name__}"
            super().init_io()

        def init_poller(self) -> None:
            super().init_poller()
            if isinstance(self.poller, ParentPollerUnix):  # ours also removes the connection file
                self.poller = ParentWatch(self.parent_handle, lambda: self.abs_connection_file)

        def init_control(self, context: Any) -> None:
            super().init_control(context)
            # Shell messages on the main thread, as before ipykernel 7's subshells: each request
            # and reply skips two thread hops, the larger part of a null cell's remote time.
            self.shell_channel_thread = _NoShellThread()

        def _apply_curve_server_options(self, socket: Any) -> None:
            # ipykernel calls this on shell, stdin, control and iopub before they bind
            super()._apply_curve_server_options(socket)
            if self.curve_secretkey is not None:
                if self.admission is None:
                    self.admission = curve.admission(self.session.key, self.curve_publickey,
                                                    self.log)
                self.admission.protect(socket)

        def init_heartbeat(self) -> None:
            # as ipykernel's, but its start waits until the heartbeat's socket is bound and
            # raises when it could not be (a port taken since jupyter_client chose it): the
            # heartbeat binds in a thread of its own, whose failure left a kernel answering
            # every request and silent to pings, lost at its first long cell (CI, stop 45).
            # With Curve keys, the heartbeat's own context is guarded before its socket binds.
            context = zmq.Context()
            keys = {}
            if getattr(self, "curve_secretkey", None) is not None:
                self.admission.protect_new_sockets(context)
                keys = dict(curve_publickey=self.curve_publickey,
                            curve_secretkey=self.curve_secretkey)
            self.heartbeat = launching.bound_heartbeat(
                context, (self.transport, self.ip, self.hb_port), **keys)
            self.hb_port = self.heartbeat.port

        def close(self) -> None:
            if self.admission is not None:
                self.admission.stop()  # a context waits for every socket before it terminates
            super().close()

    # IPython's name for it, as in a plain kernel: `%config` lists the application under it,
    # and `%config IPKernelApp.trio_loop` finds it (hunt 26 H26-17)
    EngineApp.__name__ = EngineApp.__qualname__ = IPKernelApp.__name__
    launching.launch(EngineApp.instance(kernel_class=EngineKernel))
