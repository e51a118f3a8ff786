"""Your modules in the engine as a run or a call found them, and what it changed in them.

Your modules (the notebook's, loaded from its files: :data:`~..wire.serialize.SENDERS_MODULES`)
come with the notebook's values of their globals. What a run or a plain cell's call of a
function that stayed remote then changes in them goes back into the notebook's modules: the
globals it rebound, those it changed in place (:func:`watch_globals`), and their classes and
functions it changed (:func:`watch_definitions`), which a cell reaches through the module.
"""
from __future__ import annotations

import dataclasses
import sys
import types
from typing import Any, Sequence

from ..wire import serialize

#: Where a name is not bound (a dict's ``get`` default), or a closure's cell is empty.
_ABSENT = object()


#: A global of your module bigger than this (pickled) is not watched for changes in place.
GLOBAL_WATCH_BYTES = 4 << 20


def watch_globals(start: dict[str, dict], now: dict[str, dict]) -> dict:
    """The globals of your modules (:func:`~..wire.serialize.senders_modules_now`' ``now``)
    that a run's inputs carried, the notebook's values bound here as they loaded (not what
    ``start`` held), and that may change in place, with a digest of each now:
    ``{(module, name): (object, digest)}``. One over :data:`GLOBAL_WATCH_BYTES` is not
    watched."""
    watched = {}
    for module, values in now.items():
        then = start.get(module, {})
        for name, obj in values.items():
            if name.startswith("__") or then.get(name, _ABSENT) is obj \
                    or not _changes_in_place(obj):
                continue
            digest = serialize.watch_digest(obj, GLOBAL_WATCH_BYTES)
            if digest is not None:
                watched[(module, name)] = (obj, digest)
    return watched


def globals_changed(watched: dict, linked: dict | None = None) -> list[tuple[str, str, Any]]:
    """Those of :func:`watch_globals`' still bound in their module whose pickle changed since:
    ``(module, name, object)``; the module as ``linked`` has it (the run's, taken out of
    ``sys.modules`` by it or not: hunt 38 H38-7), else the loaded one."""
    return [(module, name, obj) for (module, name), (obj, digest) in watched.items()
            if _still_bound(module, name, obj, linked)
            and serialize.changed_since(obj, digest, GLOBAL_WATCH_BYTES)]


def _still_bound(module: str, name: str, obj: Any, linked: dict | None = None) -> bool:
    """Whether ``obj`` is still the global ``name`` of ``module``."""
    loaded = serialize.module_then(module, linked)
    return loaded is not None and vars(loaded).get(name, _ABSENT) is obj


@dataclasses.dataclass
class YourModules:
    """Your modules here as a run's cell began (the notebook's, loaded from its files:
    :data:`~..wire.serialize.SENDERS_MODULES`), for what the cell changed in them to go back
    (:meth:`Engine.outputs`). ``before``: their globals
    (:func:`~..wire.serialize.senders_modules_now`); ``globals``: those the inputs carried that
    may change in place (:func:`watch_globals`); ``definitions``: their classes and functions
    (:func:`watch_definitions`); ``own``: the modules of yours loaded then
    (:func:`~..wire.serialize.own_modules`), beside which those the cell imports are new (None
    where the cell did not run); ``linked``: the notebook's loaded then, by name
    (:func:`~..wire.serialize.senders_modules_linked`); ``made``: the modules made at run time
    in ``sys.modules`` then, by name (:func:`~..wire.serialize.run_time_modules`), when the
    cell may put one there."""

    before: dict
    globals: dict
    definitions: dict
    own: list | None = None
    linked: dict | None = None
    made: dict | None = None

    @classmethod
    def now(cls, at_start: dict, definitions: bool = True, reached: Sequence[str] = (),
            made: bool = False) -> "YourModules":
        """As they are now, ``at_start`` (their globals before the inputs loaded) aside; their
        classes and functions watched only with ``definitions`` (a run's, not a call's: a
        look at each of them, which a call in a loop would pay each time). ``reached``: those
        a call reaches (:func:`modules_reached`), whose classes and functions are watched all
        the same, and their lists, dicts and sets too, which their code reaches by its
        globals (``Bank.accts[name] = 1``, ``LOG.append(name)`` in a method of an object that
        stayed remote: hunt 36 H36-3, H36-8). With ``made``, the modules made at run time
        in ``sys.modules`` too (:meth:`made_since`)."""
        before = serialize.senders_modules_now()
        watched = watch_globals(at_start, before)
        if definitions:
            found = watch_definitions(before)
        else:
            reached_now = {name: before[name] for name in reached if name in before}
            found = watch_definitions(reached_now)
            watched.update(watch_globals({}, {
                module: {name: value for name, value in values.items()
                         if type(value) in serialize.CONTAINERS}
                for module, values in reached_now.items()}))
        return cls(before, watched, found, serialize.own_modules(),
                   serialize.senders_modules_linked(),
                   serialize.modules_made() if made else None)

    def gone(self) -> list[str]:
        """The notebook's modules here taken out of ``sys.modules`` since (a cell's
        ``del sys.modules['m']``), which the notebook takes out of its own too."""
        return serialize.senders_modules_gone(self.linked) if self.linked else []

    def imported_first(self, loaded: Sequence[str]) -> list[types.ModuleType]:
        """The modules of yours imported here since (a cell's or a call's ``import fm``, first
        on this side), but those the notebook has loaded (``loaded``: a fresh import of one
        here is not the notebook's module), which go back with their state; none where the
        cell did not run."""
        if self.own is None:
            return []
        return [module for module in serialize.imported_since(self.own)
                if module.__name__ not in loaded]

    def made_since(self) -> list[tuple[str, types.ModuleType]]:
        """The modules made at run time that the cell put in ``sys.modules`` since
        (``sys.modules['cfg'] = types.ModuleType('cfg')``, also in place of one of yours),
        and those it put there under a second name (``sys.modules['al'] = fmod``), by their
        names there: they go to the notebook's ``sys.modules`` too (hunt 38 H38-3, hunt 39
        H39-1)."""
        if self.made is None:
            return []
        return [(name, module) for name, module in serialize.modules_made().items()
                if self.made.get(name) is not module]


def modules_reached(obj: Any, names: dict | None) -> list[str]:
    """The modules of yours (the notebook's: :data:`~..wire.serialize.SENDERS_MODULES`) a call
    of ``obj`` reaches: the one whose function, or whose class's method, ``obj`` is, those its
    code imports (``def use(): import fm``), and those among the notebook's globals the call
    came with (``wr5`` for a cell's ``def h(x): wr5.add(x)``)."""
    found = []
    function = getattr(obj, "__func__", obj)
    if type(function) is types.FunctionType:
        name = function.__globals__.get("__name__")
        module = sys.modules.get(name) if name in serialize.SENDERS_MODULES else None
        if module is not None and vars(module) is function.__globals__:
            found.append(name)
        found += sorted(serialize.code_names(function.__code__) & serialize.SENDERS_MODULES
                        - {name})
    found += [value.__name__ for value in (names or {}).values()
              if isinstance(value, types.ModuleType)
              and value.__name__ in serialize.SENDERS_MODULES and value.__name__ not in found]
    return found


def watch_definitions(now: dict[str, dict]) -> dict:
    """The classes and functions of your modules (:func:`~..wire.serialize.senders_modules_now`'
    ``now``) that are their globals, with what a run may change of each:
    ``{(module, name): (definition, parts)}`` (see :func:`definitions_changed`). A cell reaches
    them through the module (``kinds.Kind.label = 'x'``, ``plugins.Plugin('a')`` whose
    ``__init__`` fills ``Plugin.registry``, ``memo.fib(20)`` filling its ``cache={}``, a
    closure ``counter = make()``), so no input names them (hunt 26 H26-35, H26-32, H26-33)."""
    watched = {}
    for module, values in now.items():
        for name, obj in values.items():
            if isinstance(obj, (type, types.FunctionType)) and not serialize.dunder(name) \
                    and getattr(obj, "__module__", None) == module:
                watched[(module, name)] = (obj, _definition_parts(obj))
    return watched


def definitions_changed(watched: dict, linked: dict | None = None
                        ) -> list[tuple[str, str, Any]]:
    """Those of :func:`watch_definitions`' still bound in their module that the run changed:
    ``(module, name, definition)``; ``linked`` as for :func:`globals_changed`."""
    return [(module, name, obj) for (module, name), (obj, parts) in watched.items()
            if _still_bound(module, name, obj, linked)
            and not _same_parts(parts, _definition_parts(obj, parts))]


def _definition_parts(obj: Any, then: list | None = None) -> list:
    """What a run may change of a class (its attributes and bases) or a function (its
    attributes, defaults, closure's values, labels), as ``[(key, value, print)]``: a value
    that may change in place has a print (:func:`_contents_print`), taken anew only where
    ``then`` (the parts before) holds the same object with one."""
    if isinstance(obj, type):
        items = [*serialize.class_attributes(obj).items(), ("__bases__", obj.__bases__)]
    else:
        items = [("labels", (obj.__name__, obj.__qualname__, obj.__doc__, obj.__module__)),
                 *(("." + key, value) for key, value in obj.__dict__.items()),
                 *(("default", value) for value in obj.__defaults__ or ()),
                 *(("kwdefault " + key, value)
                   for key, value in (obj.__kwdefaults__ or {}).items())]
        for cell in obj.__closure__ or ():
            try:
                items.append(("closure", cell.cell_contents))
            except ValueError:  # an empty cell
                items.append(("closure", _ABSENT))
    before = {id(value): printed for _, value, printed in then or ()}
    parts = []
    for key, value in items:
        printed = None
        if _changes_in_place(value) and (then is None or before.get(id(value)) is not None):
            printed = _contents_print(value)
        parts.append((key, value, printed))
    return parts


#: A list, set or dict of at most this many plain values is watched by its members.
_MEMBERS_WATCHED = 256


class _Members(tuple):
    """A small builtin container's members (:func:`_contents_print`), compared by identity."""


def _contents_print(value: Any) -> Any:
    """What tells whether ``value`` changed in place: a builtin container of a few plain values
    (a default ``seen=[]``, a ``count = [0]`` closure, a class's ``registry = []`` of names) by
    its members, which are the same objects while it is unchanged (at about a hundredth of the
    cost of its digest); anything else by its :func:`~..wire.serialize.watch_digest`."""
    kind = type(value)
    if kind in (list, set, dict) and len(value) <= _MEMBERS_WATCHED:
        members = _Members((kind, *value.keys(), *value.values()) if kind is dict
                           else (kind, *value))
        if all(type(member) in serialize.PLAIN for member in members[1:]):
            return members
    return serialize.watch_digest(value, GLOBAL_WATCH_BYTES)


def _same_parts(then: list, now: list) -> bool:
    return len(then) == len(now) and all(
        a[0] == b[0] and (a[1] is b[1] or (a[0] == "labels" and a[1] == b[1]))
        and _same_print(a[2], b[2]) for a, b in zip(then, now))


def _same_print(then: Any, now: Any) -> bool:
    if type(then) is _Members:
        return type(now) is _Members and len(now) == len(then) \
            and all(a is b for a, b in zip(then, now))
    return then == now


def _changes_in_place(obj: Any) -> bool:
    """Whether ``obj`` is a value a cell may change in place (not a module, class, function,
    or a value that never changes)."""
    kind = type(obj)
    return not (kind in serialize.PLAIN or kind in serialize.UNCHANGING
                or isinstance(obj, (type, types.ModuleType, types.FunctionType,
                                    types.BuiltinFunctionType, types.MethodType)))
