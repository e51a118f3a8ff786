"""One remote run of a cell, from the client's side: what to send, and what the reply means.

:func:`prepare` turns a cell and a namespace into a run request (which names to ship, pickled);
:func:`apply` turns the reply into values and proxies and, only when every name decoded, puts
them into the namespace, so a failed run changes nothing. ``target`` is a
:class:`~remote_magics.targets.base.Target` (its ``name``, ``release_later`` and
``flush_releases``); this module is below targets, so it takes any such object.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import json
import socket
import sys
import types
import weakref
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Iterable, Mapping, MutableMapping, Sequence

from ..client.connection import Reply
from ..engine import settings
from ..engine.namespace import changeable
from ..engine.store import FUNCTIONS_IN_CONTAINERS
from ..client.handshake import across_versions, bytecode_barrier, local_versions, \
    remote_versions
from ..errors import ProxyError, RemoteError, SerializationError
from ..wire import copy_on_write, protocol, serialize
from ..wire.in_place import update_in_place
from . import capture, display, twins, uploads
from .agreed import settings_agreed
from .proxy import (SEARCHES_MAIN, RemoteObject, decode_outputs, ensure_reachable, listable,
                    owner_of, same_remote, sees_the_namespace)
from .proxy import globals_read as globals_of_remote


@dataclass
class RunResult:
    """What one remote run did: the names it brought back, its result, and what it cost."""

    target: str
    values: dict[str, Any] = field(default_factory=dict)  # name → local value or RemoteObject
    deleted: list[str] = field(default_factory=list)
    result: Any = None  # the last expression's value (or proxy), None when there is none
    display: dict | None = None  # the result as the remote kernel formatted it: data, metadata
    notes: list[str] = field(default_factory=list)  # one line per name that stayed remote unasked
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    #: the exception the cell raised, as it crossed (None if it did not, or did not pickle)
    error: BaseException | None = None

    @property
    def proxies(self) -> dict[str, RemoteObject]:
        """The names that came back as proxies."""
        return {k: v for k, v in self.values.items() if isinstance(v, RemoteObject)}

    def print_notes(self, label: str = "") -> None:
        """Tell the user, on stderr, of every name that stayed remote unasked (one line each)."""
        for note in self.notes:
            print(f"remote_magics: {label + ': ' if label else ''}{note}", file=sys.stderr)


@dataclass
class Request:
    """A run request ready to send: its content and its frames."""

    content: dict
    frames: list
    cell: capture.CellNames
    #: the objects sent, by name (read, or shared with what the cell may change): what comes
    #: back refers to these
    held: dict[str, Any] = field(default_factory=dict)
    #: every object the request pickled: what comes back refers to those inside them too
    sent: serialize.SentObjects | None = None


#: The text the user typed for the cell the notebook runs now, by the Python it runs
#: (:func:`typed_as`): ``(code, typed)``.
_typed: tuple[str, str] = ("", "")


def typed_as(code: str, typed: str) -> None:
    """Say that ``code`` is what IPython made of ``typed``, the cell body as the user typed it
    (a magic gets it with a newline added, and ``%timeit x`` becomes a call). A request for
    ``code`` then carries it, and the engine names the cell's file as a plain cell's is named:
    ipykernel names it by a hash of the typed text, and a warning's line shows that name."""
    global _typed
    _typed = (code, typed)


def prepare(code: str, namespace: Mapping[str, Any], target: Any, **options: Any) -> Request:
    """Analyse ``code`` and pickle the names it reads from ``namespace``, in one stream (see
    :func:`prepare_once`, which has the options).

    A module of your own goes by value, with the globals of it the cell's values reach; when
    one of those cannot be pickled (thinkplot keeps a generator once it has drawn), the request
    is made again with your modules by their file (:func:`~..wire.serialize.by_file`): an
    engine on this host imports each from the same file. Only if that fails too is the first
    error raised.
    """
    try:
        return prepare_once(code, namespace, target, **options)
    except SerializationError as err:
        own = serialize.own_modules()
        # (not code refused for another Python version: the file would not help there)
        if not own or isinstance(err.__cause__, serialize.BytecodeByValue) \
                or err.__cause__ is None:
            raise
        try:
            return prepare_once(code, namespace, target, by_file=own, **options)
        except (SerializationError, ProxyError):
            raise err from None


def prepare_once(
    code: str,
    namespace: Mapping[str, Any],
    target: Any,
    *,
    download: str,
    limit: int,
    hidden: Mapping[str, Any] = {},
    cell_id: int = 0,
    show_result: bool = False,
    by_file: Sequence[ModuleType] = (),
    shares_random: bool = True,
) -> Request:
    """Analyse ``code`` and pickle the names it reads from ``namespace``, in one stream.

    With the names the cell may change in place go the notebook's other names that share
    objects with them (:func:`names_sharing`), watched too, so they come back together.

    ``show_result``: the engine also formats the cell's result as it would display it
    (:attr:`RunResult.display`), for a notebook that shows it. ``by_file``: modules of your own
    that go as their file, not by value (:func:`~..wire.serialize.by_file`). ``shares_random``:
    the engine draws random numbers from the notebook's stream, as one process does; a fan-out
    (each member one of many) leaves each member its own.
    ``hidden`` holds the namespace's own machinery (IPython's ``In``, ``Out``, ``get_ipython``):
    a name bound to the same object there is not shipped. Raises :class:`SerializationError`
    naming the first value that cannot be pickled; nothing has been sent by then.
    """
    cell = capture.analyze(code)
    if cell.annotates and "__annotations__" not in namespace \
            and isinstance(namespace, MutableMapping):  # made here as a plain cell makes it,
        namespace["__annotations__"] = {}  # when it starts: the cell's annotations go into it
    magics = custom_magics(cell)
    # the body of a magic a notebook cell made is text the analysis cannot read: every name
    lists_names = cell.lists_names or bool(magics)
    barrier = bytecode_barrier(getattr(target, "details", None) or {})
    names = [name for name in cell.reads if name in namespace
             and not shells_own(name, namespace[name], hidden)]
    # the notebook's history the cell reads (`_`, `_3`, `Out[3]`, `_i`): IPython keeps it
    # among its own names, and a plain cell reads it as any other
    listed = set(names)  # (sets: a cell reading 1,000 names made these lists quadratic)
    history = [name for name in cell.reads if name in namespace and name not in listed
               and protocol.HISTORY_NAME.fullmatch(name)]
    # the notebook's globals its functions that the cell calls read or set (`global counter`):
    # they travel with the functions anyway; as inputs, what the run does to them comes back
    more, sees_all, imported = globals_of_functions(namespace, names)
    names += [name for name in more
              if name not in listed and not shells_own(name, namespace[name], hidden)]
    # the list `catch_warnings(record=True)` records into, left open across cells: a warning
    # the cell gives goes into it there too, as it would here (hunt 25 H25-13)
    current_objects = settings.current_objects()
    recorded = current_objects.get("warnings.record")
    if recorded is not None:
        names += [name for name, value in list(namespace.items()) if value is recorded
                  and name not in listed and name not in names and not name.startswith("_")][:1]
    # and the figure pyplot holds open here (`close_figures = False`, `agg`), by a name that
    # holds it, for a cell that uses pyplot: it is pyplot's current figure there too, and what
    # `plt.title('x')` does to it comes back (hunt 36 H36-5)
    figure = settings.current_figure()
    figure_names = [name for name, value in list(namespace.items()) if value is figure
                    and not name.startswith("_")][:1] \
        if figure is not None and _uses_pyplot(cell, namespace) else []
    names += [name for name in figure_names if name not in listed and name not in names]
    if "__subclasses__" in code:  # `Shape.__subclasses__()` there lists the notebook's too
        names += [name for name in subclasses_held(namespace, names)
                  if name not in listed and name not in names]
    # the folders `%cd` visited (`_dh`, IPython's own), which `%cd -` and `%dhist` read: a
    # remote `%cd` adds to the notebook's (hunt 22 H22-6), as a watched input; not from another
    # host, whose folders are not this machine's (the notebook's folder stays where it is)
    same_host = (getattr(target, "details", None) or {}).get(
        "hostname", socket.gethostname()) == socket.gethostname()
    visits = same_host and any(name in _DIRECTORY_MAGICS for _, name in cell.magics)
    if "_dh" in namespace and "_dh" not in listed and visits:
        names.append("_dh")
    # a function of the notebook that looks at the whole namespace (`globals()[name]`,
    # `unittest.main()`), called by the cell: as a plain cell's, it sees every name
    lists_names = lists_names or sees_all
    shipped = set(names) | set(history)
    writes, reads = set(cell.writes), set(cell.reads)
    # a result in the history changed in place (`_.append(2)`) is the notebook's object, which
    # its other names share: watched too (it comes back into that object, never rebound); so
    # is the output cache itself (`Out.clear()` frees what the results hold: hunt 26 H26-3)
    # (one the cell binds too only where it may change it first: `current.append(1); current
    # = []`, and the notebook's other names for the old object see the change, hunt 19 H19-24)
    watch = [n for n in cell.maybe_changed if n in shipped
             and (n not in writes or n in cell.changed_then_bound)
             and (n not in history or protocol.RESULT_NAME.fullmatch(n)
                  or n in protocol.OUTPUT_CACHE_NAMES)
             and may_change(namespace[n])]
    watching = set(watch)
    # watched whenever the cell reads them: a function that keeps state (`memo={}`, a
    # closure), which may be called under another name (`for g in [f]: g(1)`, `map(f, xs)`),
    # a class of the notebook's, which may change itself when made under another name (its
    # subclass the cell defines, `cls('c') for cls in [Base]`: `Base.count += 1`), and what
    # fills itself when read (a defaultdict's `dd['a']`, a cached_property's)
    watch += [n for n in names if n in reads and n not in watching and n not in writes
              and ((type(namespace[n]) is types.FunctionType or isinstance(namespace[n], type))
                   and may_change(namespace[n]) or fills_when_read(namespace[n]))
              or n in figure_names and n not in watching and n not in writes]
    watching = set(watch)
    # a function's global: the function may change it, also one the cell reads without
    # changing it itself (`dfs(0)`, then `3 in visited`; `check(v)`, then `if errors:`: hunt
    # 24 H24-2, the notebook's set and list stayed empty)
    function_globals = set(more)
    watch += [n for n in names if n not in watching
              and (n not in reads or n in function_globals and n not in writes)
              and may_change(namespace[n])]
    # a magic of the notebook's runs text the analysis cannot read: it may change any name
    # (`%%add_method_to T` puts a method on T), so every name it is sent is watched; so may the
    # cell's `globals()[n].append(0)` and a notebook function that looks at the whole namespace
    # (`globals()[name].append(9)` with the name it is given: hunt 25 H25-9)
    opaque = bool(magics) or capture.ANY_NAME in cell.maybe_changed or sees_all
    if opaque:
        watching = set(watch)
        watch += [n for n in names if n not in watching and n not in writes
                  and may_change(namespace[n])]
    # what a memoryview the cell may write through shows is the object under it: that
    # object's names are watched too, also where the cell only reads them (`memv[2] = 1024`,
    # then `numbers`: hunt 30 H30-8, it came back as the notebook's own, unwritten)
    under = set()
    for name in watch:
        if type(namespace[name]) is memoryview:
            try:
                under.add(id(namespace[name].obj))
            except ValueError:  # released
                pass
    if under:
        watching = set(watch)
        watch += [n for n in names if n not in watching and n not in writes
                  and id(namespace[n]) in under and may_change(namespace[n])]
    # the notebook's class of an object the cell may change, by a name it has: the cell may
    # change the class through the object (`s.bar(1)` where `Spam.bar` is a callable object
    # counting its calls: hunt 42 H42-7), and only a watched class goes back
    kinds = {id(type(namespace[n])) for n in watch
             if getattr(type(namespace[n]), "__module__", None) == "__main__"}
    if kinds:
        watching, listed = set(watch), set(names)
        found = [n for n, value in list(namespace.items())
                 if id(value) in kinds and isinstance(value, type) and n not in watching
                 and n not in writes and not shells_own(n, value, hidden)
                 and may_change(value)]
        names += [n for n in found if n not in listed]
        shipped |= set(found)
        watch += found
    # One stream for all names: two names for one object stay one object at the engine.
    # A big array the engine keeps unchanged goes as a reference to its copy (uploads.py).
    with serialize.by_value(serialize.own_modules()), serialize.by_file(by_file) as left_in_file, \
            serialize.cell_namespace(namespace), \
            serialize.substituting(uploads.ledger.substitute(target)), \
            serialize.module_globals({name: namespace[name] for name in names}), \
            serialize.keeping_caches(CachesKept(target)):
        # a numpy view of another name's array goes as a view of it: they share memory there
        stream = serialize.Outgoing(bytecode=barrier is None,
                                    roots=[namespace[name] for name in names])
        inputs, frames = pickle_inputs(stream, names, namespace, target, barrier)
        for name in history:  # what cannot go (an unpicklable Out entry) is not there, as before
            try:
                more, more_frames = pickle_inputs(stream, [name], namespace, target, barrier)
            except (SerializationError, ProxyError):
                continue
            inputs += more
            frames += more_frames
        # `a *= 2` changes a mutable `a` in place and binds it again: it is not watched (the
        # engine sends back what the cell bound), but the notebook's other names for it must
        # see the change as plainly (`b = a` before), so they go with it
        augmented = [n for n in cell.augmented if n in shipped and may_change(namespace[n])]
        # what the cell may change goes with every name that shares it; not for a function with
        # nothing of its own, which only gains attributes, in place (0.3 ms a cell with 1,000
        # names to look through)
        if augmented or any(serialize.bare_function(namespace[n]) is None for n in watch):
            sharing = names_sharing(stream.holds(), namespace, hidden,
                                    skip=shipped | set(cell.writes) | set(cell.deletes))
            more, more_frames = pickle_inputs(stream, sharing, namespace, target, barrier)
            inputs += more
            frames += more_frames
            watch += sharing
        registered = []  # the magics the notebook made, registered at the engine for the cell
        for kind, name, made in magics:
            input_name = f"{MAGIC_INPUT}{kind}_{name}"
            if made is None:  # a remote cell made it: the engine has it
                continue
            try:
                more, more_frames = pickle_inputs(stream, [input_name], {input_name: made},
                                                  target, barrier)
            except (SerializationError, ProxyError):  # it stays unknown there, as before
                continue
            inputs += more
            frames += more_frames
            registered.append([kind, name, input_name])
        # your modules the cell imports that the notebook has (`import utils` atop a remote
        # cell), or a function of the notebook's that it calls (`def use(): import fm13`): the
        # notebook's, with its globals, as when the cell reads one by its name, so the engine's
        # import finds it and what the cell does to it comes back (it imported a copy of its
        # own from the file: hunt 20 H20-19; hunt 35 H35-13)
        modules = []
        mirrors = getattr(target, "mirrors", None)  # --sync-path: the engine's import wins
        for module in own_modules_imported([*cell.imports, *imported]):
            if mirrors is not None and mirrors(module.__name__):
                continue
            input_name = f"{MODULE_INPUT}{module.__name__}"
            try:
                more, more_frames = pickle_inputs(stream, [input_name], {input_name: module},
                                                  target, barrier)
            except (SerializationError, ProxyError):  # the engine imports its own, as before
                continue
            inputs += more
            frames += more_frames
            modules.append(input_name)
        # one of them under a second name too (`sys.modules['alias'] = fm1`, `import alias`
        # in the cell): the engine puts it there under that name too (hunt 39 H39-1)
        aliases = {alias: f"{MODULE_INPUT}{module.__name__}" for alias, module
                   in serialize.module_aliases(_with_parents([*cell.imports, *imported])).items()
                   if f"{MODULE_INPUT}{module.__name__}" in modules}
        if lists_names:  # %whos: every name of the notebook, as a plain cell lists them
            listed = shipped | set(inputs_named(inputs))
            more_names = list(listable(namespace, hidden, target, skip=listed))
            # an installed module's global among them (a star import's `sympy.test`) goes by
            # reference, as a name the cell reads does (hunt 19 H19-11: sent by value, it
            # failed to load there and every such cell failed)
            with serialize.module_globals({name: namespace[name]
                                           for name in [*names, *more_names]}):
                for name in more_names:
                    try:
                        more, more_frames = pickle_inputs(stream, [name], namespace, target,
                                                          barrier)
                    except (SerializationError, ProxyError):  # what cannot go is not listed
                        continue
                    for item in more:  # nor what cannot load there: the cell runs all the same
                        item["listed"] = True
                    inputs += more
                    frames += more_frames
                    if opaque and may_change(namespace[name]):
                        watch.append(name)
    for module, name, why in left_in_file:  # never silently the file's value (hunt 18 C1b)
        print(f"remote_magics: your module '{module}' went to the engine as its file (a global "
              f"of one of your modules cannot be pickled), and its global '{name}' cannot be "
              f"pickled ({why}): the engine's '{module}.{name}' is what the file makes, not the "
              "notebook's value. Keep what cannot be pickled out of your modules' globals, or "
              "run the code that uses it in a plain cell.", file=sys.stderr)
    placeholders = [n for n in cell.deletes if n in namespace and n not in cell.reads]
    frames, packed = serialize.pack(inputs, frames)
    content = {
        "code": code,
        "inputs": inputs,
        "placeholders": placeholders,
        "outputs": list(cell.writes),
        "deletes": list(cell.deletes),
        "last_expr": cell.last_expr,
        "star_import": cell.star_import,
        "watch": watch,
        "show_result": show_result,
        "download": download,
        "bytes": limit,
        "cell_id": cell_id,
        "xmode": display.traceback_mode(),
        "packed": packed,
    }
    if (_typed[0] is code or _typed[0] == code) and _typed[1] != code:
        content["typed"] = _typed[1]
    interactivity = display.interactivity()
    if interactivity is not None:  # IPython's default (the last expression) goes unsaid
        content["interactivity"] = interactivity
    count = display.execution_count()
    if count is not None:
        content["execution_count"] = count
    patched = library_class_attributes(cell, namespace)  # `pd.Series.total = f` in the cell:
    settings.watch_class_attributes(patched)  # the class on either side takes it, as in one
    changed = settings_agreed(target).send(shares_random)
    if changed:
        content["settings"] = changed
    current = settings.named_current(namespace, inputs_named(inputs), current_objects)
    if figure_names and figure_names[0] in inputs_named(inputs):
        current["pyplot.figure"] = figure_names[0]  # pyplot's current figure there too
    if current:  # `setcontext(ctx)`: the engine's `ctx` is made current there
        content["current"] = current
    if not shares_random:
        content["random"] = False
    if cell.quiet:
        content["quiet"] = True
    if any(name == "reset" for _, name in cell.magics):  # `%reset out` says how many it flushes
        content["output_entries"] = display.output_entries()
    if any(name in _HISTORY_MAGICS for _, name in cell.magics):
        content["history"] = notebook_history(
            code, whole=any(name == "notebook" for _, name in cell.magics))
    stack = display.directory_stack() if visits else None
    if stack is not None:  # `%pushd` there, `%popd` here: one stack (hunt 25 H25-8)
        content["dir_stack"] = stack
    if patched:  # the engine watches them too, from before the cell runs
        content["class_attributes"] = patched
    if lists_names:  # every name the notebook holds went: one missing there is missing here
        content["all_names"] = True
    if registered:
        content["magics"] = registered
    if modules:
        content["modules"] = modules
    if aliases:
        content["module_aliases"] = aliases
    loaded = serialize.own_module_names()
    if loaded:  # the engine's fresh import of one of these is not the notebook's module
        content["loaded_modules"] = sorted(loaded)
    gone = serialize.own_modules_gone(target.engine_id)
    if gone:  # `del sys.modules['m']` here: imported afresh there too (hunt 37 H37-4)
        content["modules_gone"] = gone
    # what it sent: in the reply, a reference to one of these is to the notebook's own object
    return Request(content, frames, cell,
                   {name: namespace[name] for name in [*names, *watch] if name in namespace},
                   stream.sent())


def _import_afresh(name: Any, old: Any, values: dict) -> None:
    """Import your module ``name`` afresh from its file (a remote cell took it out of
    ``sys.modules`` and imported it again), and bind the names of ``values`` that held the
    ``old`` one to it."""
    if not isinstance(name, str) or old is None or name in sys.modules:
        return
    try:
        fresh = serialize.quiet_import(name)
    except Exception:  # noqa: BLE001 - it no longer imports here: the next `import` says why
        return
    for key, value in list(values.items()):
        if value is old:
            values[key] = fresh


def subclasses_held(namespace: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """The notebook's names, public, that hold subclasses of the classes ``names`` holds in
    ``namespace`` (those classes aside): sent with a cell that asks a class for its
    ``__subclasses__()``, which there lists those it has."""
    classes = [namespace[name] for name in names if isinstance(namespace.get(name), type)]
    if not classes:
        return []
    found = []
    for name, value in list(namespace.items()):
        if isinstance(value, type) and not name.startswith("_") \
                and all(value is not each for each in classes):
            try:
                if any(issubclass(value, each) for each in classes):
                    found.append(name)
            except TypeError:  # a metaclass's own issubclass refusing
                continue
    return found


def library_class_attributes(cell: capture.CellNames,
                             namespace: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The attributes ``cell`` may set on a library's classes (``pd.Series.total = f``, a
    pandas accessor) or modules (``np.myconst = 5``), as ``(module, class's qualified name or
    "" for the module, attribute)``: owners looked up in ``namespace`` by attribute (no code of
    theirs runs), classes of your own modules and of the notebook left out (they travel whole),
    and the modules of the process itself (``sys.stdout = ...`` is each side's own)."""
    found = []
    imported = dict(cell.imported_as)
    for owner, attribute in cell.class_attributes:
        if ":" in owner:  # `pandas:Series`: a library's class, when it is imported
            module_name, _, path = owner.partition(":")
            kind: Any = sys.modules.get(module_name)
        else:
            first, _, path = owner.partition(".")
            kind = namespace.get(first)
            if kind is None and first in imported:  # the cell imports it itself (`import
                kind = _imported(imported[first])  # warnings; warnings.showwarning = f`)
        for part in path.split(".") if path else ():
            kind = inspect.getattr_static(kind, part, None)
        if isinstance(kind, ModuleType):  # hunt 18 C6: a library module's own attribute
            module_name, qualname = kind.__name__, ""
            if module_name.partition(".")[0] in _PROCESS_MODULES:
                continue
        elif isinstance(kind, type):
            module_name, qualname = getattr(kind, "__module__", None), kind.__qualname__
        else:
            continue
        if not isinstance(module_name, str) or module_name == "__main__":
            continue
        own = serialize.own_module_names()
        if module_name.partition(".")[0] in own or module_name in own:
            continue
        found.append((module_name, qualname, attribute))
    return found


def _imported(what: str) -> Any:
    """The module (``"module"``) or the module's attribute (``"module:attribute"``, looked up
    without running its code) an import of the cell binds, as this process has it already;
    imported here now if it was not (hunt 23 H23-14: a patch in the cell that imports the
    library, ``import fractions; fractions.Fraction.double = f``, stayed on that side); None
    when this process cannot import it."""
    module_name, _, attribute = what.partition(":")
    module = sys.modules.get(module_name)
    if module is None:  # the cell's import of it, whose name comes back here, imports it here
        try:  # too; now, so the cell's patch is watched on both sides from its start; quietly,
            module = serialize.quiet_import(module_name)  # as then: the engine's import prints
        except Exception:  # not here (the engine's own library): that side's alone
            return None  # (its banner showed twice: hunt 24 H24-3)
    return inspect.getattr_static(module, attribute, None) if attribute else module


#: Modules whose attributes are the process's own (its streams, environment, signals): a cell
#: that sets one sets it on its side only.
_PROCESS_MODULES = frozenset({"sys", "os", "posix", "builtins", "io", "signal", "threading",
                              "gc", "importlib", "site", "faulthandler", "atexit"})


#: IPython's magics that visit folders or list those visited: they use the shell's ``_dh``.
_DIRECTORY_MAGICS = frozenset(("cd", "pushd", "popd", "dhist", "dirs"))

#: IPython's magics that show or save the session's input history (``%history -n``), and the
#: one that exports it as a notebook (``%notebook out.ipynb``), with its outputs.
_HISTORY_MAGICS = frozenset(("history", "hist", "notebook"))


def notebook_history(code: str, whole: bool = False) -> list[list] | None:
    """The notebook's inputs this session, typed and as IPython ran them (``%history``'s
    ``-n``, ranges, ``-f``), and its outputs' text (``-o``: ``[number, repr]`` pairs): the
    engine shows them for a remote cell's ``%history``, as a plain cell's shows them. This
    cell is there as the user typed its body, as a plain one is. ``whole`` (``%notebook``):
    also each line's outputs (``[number, [[type, bundle], ...]]``) and errors, as IPython
    keeps them to export."""
    from IPython import get_ipython

    shell = get_ipython()
    history = getattr(shell, "history_manager", None)
    if history is None:
        return None
    raw, parsed = list(history.input_hist_raw), list(history.input_hist_parsed)
    if raw and parsed:  # the %%remote cell: its body, typed and run
        typed = _typed[1] if _typed[0] is code or _typed[0] == code else code
        raw[-1], parsed[-1] = typed, code
    reprs = getattr(history, "output_hist_reprs", None)
    outputs = [[number, text] for number, text in reprs.items()
               if isinstance(number, int) and isinstance(text, str)] if isinstance(
        reprs, dict) else []
    if not whole:
        return [raw, parsed, outputs]
    shown = [[number, [[out.output_type, out.bundle] for out in outs]]
             for number, outs in dict(getattr(history, "outputs", {}) or {}).items()]
    errors = list(map(list, dict(getattr(history, "exceptions", {}) or {}).items()))
    try:  # they go in the request's JSON: what is not JSON stays out, as not there
        json.dumps([shown, errors])
    except (TypeError, ValueError):
        shown, errors = [], []
    return [raw, parsed, outputs, shown, errors]


#: Packages whose magics every kernel of ours has: IPython's own, ipykernel's and ours.
_KERNEL_MAGIC_PACKAGES = frozenset(("IPython", "ipykernel", "remote_magics"))
#: The input name under which a magic of the notebook's goes (then ``kind_name``).
MAGIC_INPUT = "__remote_magics_magic_"
#: The input name of a module of yours a cell imports (:func:`own_modules_imported`), which the
#: engine loads and leaves out of the run's names.
MODULE_INPUT = "__remote_magics_module_"


def own_modules_imported(imports: Sequence[str]) -> list[ModuleType]:
    """The modules of yours (:func:`~..wire.serialize.own_modules`) the notebook has loaded that a cell imports
    (``import utils``, ``from pkg.helpers import f``: ``pkg`` and ``pkg.helpers``), and those
    it made at run time (``types.ModuleType`` put in ``sys.modules``: hunt 25 H25-11)."""
    if not imports:
        return []
    own = {id(module) for module in serialize.own_modules()}
    found: dict[str, ModuleType] = {}
    for name in _with_parents(imports):
        module = sys.modules.get(name)
        if module is not None and (id(module) in own or serialize.made_at_run_time(module)):
            found.setdefault(module.__name__, module)
    return list(found.values())


def _with_parents(imports: Sequence[str]) -> list[str]:
    """The modules ``imports`` names and their packages, in order: ``pkg``, ``pkg.helpers``
    for ``pkg.helpers``."""
    found: dict[str, None] = {}
    for name in imports:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            found.setdefault(".".join(parts[:end]))
    return list(found)


def _uses_pyplot(cell: capture.CellNames, namespace: Mapping[str, Any]) -> bool:
    """Whether ``cell`` reads a name bound to ``matplotlib.pyplot`` (``plt``) or imports it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    return pyplot is not None and (
        any(namespace.get(name) is pyplot for name in cell.reads)
        or any(name.startswith("matplotlib") for name in cell.imports))


def custom_magics(cell: capture.CellNames) -> list[tuple[str, str, Any]]:
    """The magics ``cell`` runs that the notebook has from elsewhere than IPython (a cell's
    ``@register_cell_magic``, a module's, an extension's), as ``(kind, name, what makes it)``:
    the function, or the ``Magics`` class whose method it is (None: the notebook has no such
    magic; a remote cell made it). The engine registers them for the cell, as a plain cell
    finds them in the notebook."""
    if not cell.magics:
        return []
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return []
    found = []
    for kind, name in cell.magics:
        magic = shell.magics_manager.magics.get(kind, {}).get(name)
        owner = getattr(magic, "__self__", None)
        made = type(owner) if owner is not None and not isinstance(owner, type) else magic
        package = (getattr(made, "__module__", None) or "").split(".")[0]
        if package not in _KERNEL_MAGIC_PACKAGES:  # None: unknown here (a remote cell made it)
            found.append((kind, name, made))
    return found


def globals_of_functions(namespace: Mapping[str, Any],
                         names: Iterable[str]) -> tuple[list[str], bool, set[str]]:
    """The names of ``namespace`` that its own functions among ``names`` read or set as
    globals, and the functions those call in turn (``visit`` appending to ``seen``); also
    the functions held in a list, tuple or dict among them (``actions['log'](1)``), and the
    methods of a notebook class among them or of one's object (a property appending to a
    global ``seen``: hunt 24 H24-2). And whether one of them looks at the whole namespace
    (:func:`_sees_the_namespace`), and the modules of yours they may import (``import fm13``
    in a function's body: a name of their code that is one of :func:`own_modules`')."""
    found: list[str] = []
    seen: set[str] = set()
    classes: set[int] = set()  # the notebook classes whose methods were looked at
    sees_all = False
    imported: set[str] = set()
    queue = list(names)
    while queue:
        value = namespace.get(queue.pop())
        reads: list[str] = []
        for function in _with_closures([*_functions_in(value), *_methods_of(value, classes)]):
            if function.__globals__ is namespace:
                globals_read = serialize.code_globals(function.__code__)
                reads.extend(globals_read)
                sees_all = sees_all or _sees_the_namespace(function.__code__, globals_read)
                reads.extend(_annotation_names(function))
                reads.extend(_pandas_string_names(function.__code__))
                if serialize.own_module_names():
                    imported |= serialize.code_names(function.__code__) \
                        & serialize.own_module_names()
        if isinstance(value, type) and value.__module__ == "__main__":
            reads.extend(_annotation_names(value))
        # the notebook's module under a name (`import __main__ as M`, then `M.secret`, in the
        # cell or a function it calls): as `import __main__`, every name (hunt 21 H21-14)
        sees_all = sees_all or (isinstance(value, types.ModuleType)
                                and value.__dict__ is namespace)
        if isinstance(value, RemoteObject):  # a function that stayed remote: its descriptor's
            reads.extend(globals_of_remote(value))  # (your modules it imports among them)
            imported.update(name for name in globals_of_remote(value)
                            if name in serialize.own_module_names())
            sees_all = sees_all or sees_the_namespace(value)
        for name in reads:
            if name in namespace and name not in seen:
                seen.add(name)
                found.append(name)
                queue.append(name)
    return found, sees_all, imported


def _annotation_names(owner: Any) -> list[str]:
    """The names in the annotations of a function or class that are strings (``from __future__
    import annotations``, or written so): ``typing.get_type_hints`` and the libraries that use
    it (dataclass serializers, ``singledispatch`` by annotation) look them up in its globals
    (hunt 21 H21-11: a remote cell's ``get_type_hints(f)`` raised NameError)."""
    annotations = vars(owner).get("__annotations__") if isinstance(owner, type) \
        else getattr(owner, "__annotations__", None)
    if not isinstance(annotations, dict):
        return []
    return [name for text in annotations.values() if isinstance(text, str)
            for name in capture.names_in(text)]


def _sees_the_namespace(code: types.CodeType, globals_read: tuple[str, ...]) -> bool:
    if "globals" in globals_read:
        return True
    names = serialize.code_names(code)
    if not names.isdisjoint(serialize.LOOKS_AT_MAIN):  # `import __main__`, a caller's frame's
        return True  # globals, IPython's namespace
    if serialize.uses_the_shell(code):  # `get_ipython().push(...)`, `.run_cell(src)`
        return True
    if ("modules" in names or "import_module" in names) and (  # sys.modules[__name__]: its
            "__name__" in names or "__main__" in serialize.code_strings(code)):  # module's
        return True
    return any(module in globals_read and attribute in names
               for module, attribute in SEARCHES_MAIN)


def _pandas_string_names(code: types.CodeType) -> list[str]:
    """The names the strings of a function that calls ``query`` or ``eval`` may refer to as
    pandas reads them (``frame.query('a > @lim')``, ``pd.eval('x * 2')``): they look them up
    in its globals, by name, with no look-up of ours to fetch them (hunt 21 H21-15)."""
    names = serialize.code_names(code)
    if "query" not in names and "eval" not in names:
        return []
    return [name for text in serialize.code_strings(code)
            for name in capture.pandas_string_names(text, "eval" in names)]




def _methods_of(value: Any, looked_at: set[int]) -> list[types.FunctionType]:
    """The functions of the notebook class ``value`` or of ``value``'s class, and of the
    notebook classes it derives from: its methods, static and class methods, and what its
    properties and cached properties call; none for a class already in ``looked_at`` (which
    takes the class)."""
    kind = value if isinstance(value, type) else type(value)
    if id(kind) in looked_at or getattr(kind, "__module__", None) != "__main__":
        return []
    looked_at.add(id(kind))
    found = []
    for klass in kind.__mro__:
        if getattr(klass, "__module__", None) != "__main__":
            continue
        for member in list(vars(klass).values()):
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                found += [part for part in (member.fget, member.fset, member.fdel)
                          if isinstance(part, types.FunctionType)]
            elif isinstance(member, functools.cached_property):
                found += [member.func] if isinstance(member.func, types.FunctionType) else []
            elif isinstance(member, types.FunctionType):
                found.append(member)
    return found


#: How many functions :func:`_with_closures` adds from closures, at most, for one value.
FUNCTIONS_IN_CLOSURES = 64


def _with_closures(functions: list[types.FunctionType]) -> list[types.FunctionType]:
    """``functions``, and the functions their closures hold, and theirs in turn: what a
    method calls through its closure (a dataclass's generated ``__init__`` calls each field's
    ``default_factory``, ``lambda: next(_seq)``, hunt 30 H30-2; a decorator's wrapper calls
    the function it wraps)."""
    found = list(functions)
    seen = {id(function) for function in found}
    added = 0
    for function in found:  # grows as it goes
        for cell in function.__closure__ or ():
            try:
                held = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if type(held) is types.FunctionType and id(held) not in seen \
                    and added < FUNCTIONS_IN_CLOSURES:
                seen.add(id(held))
                found.append(held)
                added += 1
    return found


def _functions_in(value: Any) -> list[types.FunctionType]:
    """``value`` if it is a function; the functions among its first members if it is a list,
    tuple or dict (its values)."""
    if isinstance(value, types.FunctionType):
        return [value]
    kind = type(value)
    if kind is dict:
        members = itertools.islice(value.values(), FUNCTIONS_IN_CONTAINERS)
    elif kind is list or kind is tuple:
        members = value[:FUNCTIONS_IN_CONTAINERS]
    else:
        return []
    return [member for member in members if isinstance(member, types.FunctionType)]


class CachesKept:
    """The notebook's side of the caches an engine keeps between runs (``@lru_cache def fib``:
    see :func:`~..wire.serialize.keeping_caches`): each cache of a cell function that crosses
    to or from ``target`` is released there when the notebook's copy of it dies, as a proxy is.
    The notebook never takes an engine's cache (its own copy calls its own function)."""

    #: (token, id of the target) of every cache whose release is arranged
    _arranged: set[tuple[str, int]] = set()

    def __init__(self, target: Any) -> None:
        self.target = target

    def keep(self, token: str, wrapper: Any) -> None:
        key = (token, id(self.target))
        if key in self._arranged:
            return
        self._arranged.add(key)
        weakref.finalize(wrapper, _release_cache, weakref.ref(self.target), token, key)

    def find(self, token: str, func: Any) -> None:
        return None


def _release_cache(target: "weakref.ref", token: str, key: tuple) -> None:
    CachesKept._arranged.discard(key)
    alive = target()
    if alive is not None:
        alive.release_later(token)


def pickle_inputs(stream: serialize.Outgoing, names: list[str], namespace: Mapping[str, Any],
                  target: Any, barrier: str | None) -> tuple[list[dict], list]:
    """Pickle ``names`` of ``namespace`` into ``stream``: the request's inputs and frames.

    Raises :class:`SerializationError` naming the first value that cannot be pickled, or that
    holds a proxy to another target.
    """
    inputs, frames = [], []
    for name in serialize.views_last(serialize.kept_first(names, namespace), namespace):
        value = namespace[name]
        original = twins.proxy_of(target, value)
        if original is not None:  # a tuple a none cell sent: as the engine's own object
            try:
                ensure_reachable(original)
                value = original
            except ProxyError:  # its kernel restarted: the copy goes
                twins.forget(target, value)
        try:
            item, fields = dump_for(target, value, stream)
        except ProxyError:  # a proxy whose object is gone says so itself
            raise
        except serialize.BytecodeByValue as err:
            raise SerializationError(name, value, across_versions(err, barrier)) from None
        except Exception as err:
            raise SerializationError(name, value, err) from err
        inputs.append({"name": name, "nframes": len(item), **fields})
        frames.extend(item)
    return inputs, frames


def check_proxies(proxies: Iterable[RemoteObject], target: Any) -> None:
    """Raise ValueError for a proxy that is not ``target``'s: no other engine can resolve it."""
    for proxy in proxies:
        ensure_reachable(proxy)
        owner = owner_of(proxy)
        if owner is not target:
            raise ValueError(f"it holds a proxy to an object on target '{owner.name}', not "
                             f"'{target.name}'; fetch it with .fetch() or run the cell on "
                             f"--target {owner.name}")


def dump_for(target: Any, value: Any, stream: serialize.Outgoing) -> tuple[list, dict]:
    """``value`` pickled into ``stream`` for the engine of ``target``: its frames and item
    fields. A proxy it holds must be ``target``'s; when it is not, nothing of ``value`` stays
    in the stream, so later names never refer to what was not sent."""
    if type(value) in serialize.PLAIN:  # holds no proxy: the quick way, outside the stream
        return stream.dump(value)  # (in the stream, a string another value holds too)
    with serialize.noting_proxies() as proxies:
        item, fields = stream.dump(value)
    try:
        check_proxies(proxies, target)
    except Exception:  # another target's, or one whose object is gone (ProxyError)
        stream.restart()
        raise
    return item, fields


def inputs_named(inputs: list[dict]) -> list[str]:
    """The names a request's inputs carry."""
    return [item["name"] for item in inputs]


def names_sharing(held: set[int], namespace: Mapping[str, Any], hidden: Mapping[str, Any],
                  skip: set[str]) -> list[str]:
    """The notebook's other names whose objects are among ``held`` (reached by what is sent).

    They travel with the names a cell may change and come back with them, so a change reaches
    every name of the notebook that sees it (``ax.plot(...)`` also changes ``fig``). Not
    IPython's own names, nor ``_``-names (``_``, ``_5``: past results), nor what cannot change.
    """
    return [name for name, value in namespace.items()
            if id(value) in held and name not in skip and not name.startswith("_")
            and not shells_own(name, value, hidden) and may_change(value)]


#: The names IPython binds and hides for itself, besides its history (``In``, ``_oh``): each
#: side's shell has its own.
SHELL_NAMES = frozenset({"get_ipython", "exit", "quit", "open"})


def shells_own(name: str, value: Any, hidden: Mapping[str, Any]) -> bool:
    """Whether ``name`` is the shell's own, bound to the very object the shell hid: its
    history and :data:`SHELL_NAMES`. Not a name another hidden binding made (``%pylab``'s star
    import, ``push(..., interactive=False)``), which ``%who`` leaves out but a cell reads as
    any other (hunt 41 H41-4: after a remote ``%pylab``, the next remote cell's ``prod`` was a
    NameError)."""
    return name in hidden and hidden[name] is value \
        and (name in SHELL_NAMES or protocol.HISTORY_NAME.fullmatch(name) is not None)


def lacked_uploads(reply: "Reply | None", target: Any) -> bool:
    """Whether a run failed before running only because its engine no longer kept an upload
    the run referred to; those are forgotten, so the same run sent again uploads them."""
    if reply is None or reply.content.get("status") == "ok":
        return False
    report = reply.content.get("uploads")
    uploads.ledger.settle(target, report)
    return uploads.ledger.lost(report)


def version_hint(details: dict) -> str:
    """A sentence naming both sides' Python and cloudpickle versions when they differ, else ""."""
    here, there = dict(local_versions()), remote_versions(details)
    pairs = [f"{label} {there[what]} there and {here[what]} here"
             for what, label in (("python", "Python"), ("cloudpickle", "cloudpickle"))
             if there.get(what) and there[what] != here[what]]
    if not pairs:
        return ""
    return (" The versions differ (" + ", ".join(pairs) + "): a value pickled by one may not "
            "load in the other, functions and classes by value above all.")


def apply(reply: "Reply", target: Any, namespace: dict,
          held: Mapping[str, Any] | None = None,
          sent: serialize.SentObjects | None = None) -> RunResult:
    """Decode a run reply and update ``namespace``; raises :class:`RemoteError` for a failed run.

    A failed run's reply also holds the names the cell bound before its error: they reach
    ``namespace`` first, as a plain cell keeps them. ``held``, ``sent``: see :func:`bind`.
    """
    content = reply.content
    if content.get("xmode"):  # the cell ran %xmode there: this notebook's mode, as plainly
        display.take_traceback_mode(content["xmode"])
    run = bind(reply, target, namespace, held, sent)
    if content.get("current"):  # a current settings object there is a name's (`setcontext`)
        settings.make_current(content["current"], namespace)
    if isinstance(content.get("dir_stack"), list):  # `%pushd` or `%popd` there
        display.take_directory_stack(content["dir_stack"])
    if isinstance(content.get("ask_exit"), dict):  # the cell called exit() there
        display.ask_exit(content["ask_exit"].get("keepkernel"))
    if content.get("status") != "ok":
        if content.get("input"):  # an input did not unpickle there: versions may be why
            hint = version_hint(getattr(target, "details", None) or {})
            content = {**content, "evalue": f"target '{target.name}': "
                       + content.get("evalue", "") + hint}
        error = RemoteError.from_reply(content, target.name, run.error)
        if run.values or run.deleted:
            run.print_notes()
        raise error
    return run


#: Bytes of pickle up to which :func:`same_object` compares an object with its copy.
SAME_BYTES = 16 << 20


def same_object(original: Any, copy: Any) -> Any:
    """``original`` (an object the notebook sent), made equal to ``copy`` (what came back for
    it under another name) if the cell changed it through that name; None when that cannot be
    told or done (the copy is bound then, as before)."""
    if isinstance(original, RemoteObject) or isinstance(copy, RemoteObject):
        return original if same_remote(original, copy) else None  # its proxy, held here
    if type(original) is not type(copy):
        return None
    before = serialize.fingerprint(original, SAME_BYTES)
    if before is not None and before == serialize.fingerprint(copy, SAME_BYTES):
        return original  # unchanged: its elements stay the notebook's own objects too
    # changed through the new name (`y = x; y.append(3)`), or pickled differently: only a
    # container or an array is made equal in place (an object's state swapped whole would
    # leave what it refers to behind, as a figure's axes)
    if before is not None and (isinstance(original, (list, dict, set, bytearray))
                               or type(original).__module__ == "numpy") \
            and update_in_place(original, copy):
        return original
    return None


#: Each class of the notebook's values → whether reading one may change it (see below).
_filling: "weakref.WeakKeyDictionary[type, bool]" = weakref.WeakKeyDictionary()


def fills_when_read(value: Any) -> bool:
    """Whether merely reading ``value`` may change it: a dict that fills missing keys
    (``defaultdict``), an object with a ``functools.cached_property`` (read once, kept), an
    iterator (``for v in it: break`` moves it on), or an object of a notebook class whose code
    runs when it is read: a property or another descriptor (a lazy load into ``self._data``,
    a counter of reads), ``__getattr__``, ``__getitem__``, ``__iter__`` (a loader counting its
    epochs), ``__len__``, ``__contains__`` (hunt 19 H19-13, H19-29, H19-30)."""
    kind = type(value)
    try:
        found = _filling.get(kind)
    except TypeError:
        return False
    if found is None:
        found = _filling[kind] = (issubclass(kind, dict) and hasattr(kind, "__missing__")) \
            or hasattr(kind, "__next__") or any(
                isinstance(member, functools.cached_property)
                or (klass.__module__ == "__main__" and _runs_when_read(name, member))
                for klass in kind.__mro__ for name, member in vars(klass).items())
    return found


#: A notebook class's methods that run when its object is read, not called.
_READ_HOOKS = frozenset({"__getattr__", "__getattribute__", "__getitem__", "__iter__",
                         "__len__", "__contains__", "__bool__"})


def _runs_when_read(name: str, member: Any) -> bool:
    """Whether a notebook class's member ``name`` runs code when its object is read: one of
    :data:`_READ_HOOKS`, a property, or another descriptor (not a plain method)."""
    if name in _READ_HOOKS:
        return True
    kind = type(member)
    return kind is property or (hasattr(kind, "__get__") and kind not in _PLAIN_MEMBERS)


#: Members whose reading runs no code of the notebook's: methods, and class-level values.
_PLAIN_MEMBERS = (types.FunctionType, staticmethod, classmethod, types.BuiltinFunctionType,
                  types.MethodDescriptorType, types.WrapperDescriptorType,
                  types.GetSetDescriptorType, types.MemberDescriptorType)


def may_change(value: Any) -> bool:
    """Whether a cell could change ``value`` in place (worth watching when it runs remotely).

    Not immutable scalars, and not the code and modules a cell calls (functions, classes,
    modules), which go by reference or by value and come back as themselves; but a class of
    the notebook's, or of a module of your own (``Reg.items.append(x)`` in a classmethod).
    """
    if isinstance(value, RemoteObject):
        return False
    if changeable(value):
        return True
    return isinstance(value, type) and isinstance(value.__dict__.get("__module__"), str) \
        and any(module.__name__ == value.__module__ for module in serialize.own_modules())


def _reload_here(names: Any, run: "RunResult") -> None:
    """Reload the modules of your own the cell reloaded (``importlib.reload(mymod)``), as one
    process would: before its values are rebuilt, which may name the new functions."""
    for name in names if isinstance(names, list) else ():
        module = sys.modules.get(name) if isinstance(name, str) else None
        if module is None or not any(mine is module for mine in serialize.own_modules()):
            continue
        try:
            with serialize.quietly():  # what it prints, the cell showed (hunt 24 H24-3)
                importlib.reload(module)
        except Exception as err:  # its file is not on this host, or fails here
            run.notes.append(f"the cell reloaded your module '{name}' there, and reloading it "
                             f"here failed ({type(err).__name__}: {err}): this notebook keeps "
                             f"the module it had; reload it in a plain cell")


def bind(reply: "Reply", target: Any, namespace: dict,
         held: Mapping[str, Any] | None = None,
         sent: serialize.SentObjects | None = None) -> RunResult:
    """Put the names a run reply holds into ``namespace`` (values or proxies); what it did.

    The outputs are one pickle stream: names for one object get one object. An object the
    cell read and did not change comes back as this namespace's own; one it changed, of a
    Python class, is rebuilt into this namespace's object wherever it appears. Any other name
    the cell changed in place (an output marked ``changed``) keeps its object here, made equal
    to the remote one, so every other name for it sees the change too; an object that cannot be
    updated so is replaced. Functions defined there take ``namespace`` as their globals.
    ``held``: the objects the request sent to be watched (:attr:`Request.held`), for a reply
    that comes while the notebook runs on (``--async``); by default they are ``namespace``'s.
    ``sent``: every object the request pickled (:attr:`Request.sent`): one the reply refers to
    inside a value (``row = grid[0]``) is that object here, with its new contents.
    """
    content = reply.content
    uploads.ledger.settle(target, content.get("uploads"))
    taken = {}
    if content.get("settings"):  # `np.set_printoptions(...)` in the cell holds here too
        taken = settings_agreed(target).take(content["settings"])
    run = RunResult(target.name, bytes_received=reply.bytes_received)
    if content.get("status") != "ok" and isinstance(taken.get("sys.last_value"), BaseException):
        run.error = taken["sys.last_value"]  # the engine's, as the error a cell showed sets it
    _reload_here(content.get("reloaded"), run)
    outputs = [output for output in [*content.get("outputs", []), content.get("result")]
               if output is not None]
    frames = serialize.unpack(outputs, reply.frames, content.get("packed", False))
    mine = namespace if held is None else held  # the objects the request sent, by name
    # functions defined there see this namespace; objects both sides hold stay this side's
    # a big array the engine sent and keeps is watched here from now (uploads.py)
    adoption = uploads.ledger.adopter(target)
    copy_on_write.take_note()
    try:
        with serialize.cell_namespace(namespace), serialize.updating(mine, sent), \
                serialize.keeping_caches(CachesKept(target)), serialize.adopting(adoption):
            decoded = decode_outputs(outputs, frames, target)
    finally:
        uploads.ledger.adopted(target, content.get("uploads"), adoption)
    # a changed object updated in place here stays this side's under every name that holds it
    # (`back = payload; payload[0] = -1` leaves `back is payload`, as in a plain cell)
    updated = {}
    for output, (value, _) in zip(outputs, decoded):
        name = output.get("name")
        if isinstance(name, str) and name.startswith(protocol.FORMER):  # changed, then rebound
            name = name[len(protocol.FORMER):]
            if name in mine and id(value) not in updated and update_in_place(mine[name], value):
                updated[id(value)] = mine[name]
            continue
        if output.get("changed") and name in namespace and id(value) not in updated and \
                update_in_place(namespace[name], value):
            updated[id(value)] = namespace[name]
    for output, (value, _) in zip(outputs, decoded):
        origin = output.get("same_as")  # `y = x`: y is the notebook's x, as in a plain cell
        if origin in mine and id(value) not in updated:
            original = same_object(mine[origin], value)
            if original is not None:
                updated[id(value)] = original
    imported: list[tuple[str, types.ModuleType]] = []
    for output, (value, note) in zip(outputs, decoded):
        if note:
            run.notes.append(note)
        value = updated.get(id(value), value)
        if output is content.get("result"):
            run.result, run.display = value, output.get("display")
            continue
        if (protocol.HISTORY_NAME.fullmatch(output["name"]) and output.get("changed")) \
                or output["name"].startswith(protocol.FORMER):
            # IPython's own the cell changed in place, or a former object (updated above): not
            # bound; one the cell bound itself (`_ = plt.hist(x)`, `for _ in range(3)`) is, as
            # plainly, and IPython's results no longer overwrite it (hunt 20 H20-9)
            continue
        if output["name"].startswith(protocol.IMPORTED):  # your module, taken as it came
            if isinstance(value, types.ModuleType):
                imported.append((output["name"][len(protocol.IMPORTED):], value))
            continue
        if output["name"].startswith(protocol.MODULE_GLOBAL):  # `confmod.pageDict = {...}`
            module_name, _, name = output["name"][len(protocol.MODULE_GLOBAL):].partition(":")
            serialize.set_your_global(module_name, name, value, bool(output.get("changed")))
            continue
        run.values[output["name"]] = value
    if copy_on_write.take_note():  # pandas objects came: those sharing memory say so
        copy_on_write.link([*(value for value, _ in decoded), *namespace.values()])
    run.deleted = [name for name in content.get("deleted", []) if name in namespace]
    for name in content.get("deleted", []):  # `del mymod.attr` there (hunt 26 H26-34)
        if isinstance(name, str) and name.startswith(protocol.MODULE_GLOBAL):
            module_name, _, attribute = name[len(protocol.MODULE_GLOBAL):].partition(":")
            serialize.delete_your_global(module_name, attribute)
    if content.get("reset"):  # %reset there: the notebook's names go, as plainly, then the
        display.reset_names(namespace)  # names the cell bound after it come
    if content.get("flushed"):  # `%reset -f out` there: the notebook's `Out` (hunt 26 H26-1)
        display.flush_histories(content["flushed"])
    closed = mine.get(content.get("figure_closed")) if isinstance(
        content.get("figure_closed"), str) else None
    if closed is not None and closed is settings.current_figure():  # `plt.close(fig)` there
        sys.modules["matplotlib.pyplot"].close(closed)  # (hunt 37 H37-1)
    if isinstance(content.get("modules_gone"), list):  # `del sys.modules['m']` there
        afresh = content.get("modules_afresh")
        old = {name: sys.modules.get(name) for name in afresh} \
            if isinstance(afresh, list) else {}
        serialize.forget_modules(content["modules_gone"])
        for name, module in old.items():  # `del sys.modules['m']; import m` there: here too,
            _import_afresh(name, module, run.values)  # and the cell's names are the new one
    for name, module in imported:  # one made there at run time, in place of yours too
        if name == module.__name__ and name not in sys.modules \
                and "__file__" not in vars(module):  # (`sys.modules['cfg'] =
            sys.modules[name] = module  # types.ModuleType('cfg')` there: hunt 38 H38-3)
    serialize.take_module_aliases({name: module for name, module in imported  # and one
                                   if name != module.__name__})  # there under a second name
    namespace.update(run.values)
    for name in run.deleted:
        namespace.pop(name, None)
    if isinstance(content.get("hidden"), list):  # `%pylab` there: its names are IPython's
        display.hide_names(namespace, {name: run.values[name] for name in content["hidden"]
                                       if isinstance(name, str) and name in run.values})
    # a kept upload the cell changed came back whole: equal to the engine's copy again
    uploads.ledger.resynced(target, content.get("uploads"), namespace)
    serialize.note_own_modules(target.engine_id)  # those the reply brought, which it has
    target.flush_releases()
    return run


