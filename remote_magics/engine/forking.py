"""multiprocessing in the engine: a pool's workers get the cells' functions and classes.

A pool made in a remote cell forks workers whose ``__main__`` is that cell's run module: the
names that cell was sent, not all the notebook's. A notebook function a later remote cell gives
the pool (``pool.apply_async(add, (1, 2))``) reached the engine only with that cell; pickle sent
it by reference (``__main__.add``), the worker could not find it, and the pool, which loses a
task its worker fails to unpickle, never answered (hunt 42 H42-9). In a plain kernel the worker
has it: it was in ``__main__`` when the pool forked.

So the engine notes which names each process it starts has in its ``__main__`` (those of the
``__main__`` it forked with), and multiprocessing's pickler sends a function, class or cache of
the cells by reference only while every live child has its name, as pickle does plainly (a
pool made in the cell that uses it: nothing changes, its globals stay the worker's); else by
name and by value (:func:`by_name_or_value`): a worker takes what its ``__main__`` holds under
that name, as pickle would, and only where it holds nothing, the one sent, which it keeps in
its ``__main__`` from then on, as if it had been there when it forked (its globals are that
``__main__``'s, as plainly). Only for the cells' own: the kernel's own cells, and a worker's
results, pickle as plainly.

A pool's own threads pickle its tasks and unpickle its results, also after the cell that gave
them ended, when ``__main__`` is the engine's own again (``res = pool.map_async(f, xs)`` in one
cell, ``res.get()`` in a later one; hunt 43 H43-7): then the run module the workers forked
from, or the globals of the function the cell sent, say what the cells' names are. A result
whose class is the cells' (``__main__.R``) unpickles from that module too; before, the pool's
result thread died on it, and ``.get()`` waited for ever.

Shipped as source with the engine: standard library and the wire format only.
"""
from __future__ import annotations

import functools
import io
import os
import pickle
import sys
import types
import weakref
from typing import Any

from ..wire import serialize
from .lookup import RunModule

#: The process that changed multiprocessing's pickler (:func:`install`): a worker is another.
_installed_in: list[int | None] = [None]
#: Each process started since then → the names its ``__main__`` held when it started (none of
#: the cells' for one that did not fork: spawned, or from a forkserver), and that ``__main__``
#: when it was a run's module.
_started: "weakref.WeakKeyDictionary[Any, tuple[frozenset[str], Any]]" = \
    weakref.WeakKeyDictionary()


def install() -> None:
    """Give multiprocessing's pickler our way for the cells' functions and classes, and note
    the ``__main__`` names of each process it starts, once multiprocessing is imported (before
    that, nothing: cheap to call at every run)."""
    reduction = sys.modules.get("multiprocessing.reduction")
    process = sys.modules.get("multiprocessing.process")
    pickler = getattr(reduction, "ForkingPickler", None)
    base = getattr(process, "BaseProcess", None)
    if pickler is None or base is None or hasattr(pickler, "reducer_override"):
        return  # not imported yet, ours already, or one of its own (a later Python's)
    _installed_in[0] = os.getpid()
    start = base.start

    @functools.wraps(start)
    def noting_start(self: Any) -> None:
        main = sys.modules.get("__main__")
        forks = getattr(self, "_start_method", None) in (None, "fork")
        names = frozenset(vars(main)) if forks and isinstance(main, types.ModuleType) \
            else frozenset()
        start(self)
        _started[self] = (names, main if forks and isinstance(main, RunModule) else None)

    base.start = noting_start
    pickler.reducer_override = _reducer_override
    pickler.loads = staticmethod(_loads)


def note_run_children(main: Any) -> None:
    """Note the live children started during the run whose module is ``main`` (its ``__main__``)
    before :func:`install` could (the cell imported multiprocessing and started a pool): they
    forked from ``main``. Which of its names they had then is not known, so none counts (the
    cells' functions go to them by name and by value)."""
    if os.getpid() != _installed_in[0]:
        return
    for child in _children():
        if child not in _started:
            forks = getattr(child, "_start_method", None) in (None, "fork")
            _started[child] = (frozenset(), main if forks else None)


def _found(module: Any, qualname: str, missing: Any = None) -> Any:
    """What ``module`` (or a namespace) holds under ``qualname`` (``C.method``: an attribute of
    what it holds), as pickle finds a global; ``missing`` if nothing. Its own names only: a
    run's module asks the notebook for a name it lacks (:class:`.lookup.RunModule`), which a
    worker cannot."""
    first, *rest = qualname.split(".")
    if isinstance(module, types.ModuleType):
        module = vars(module)
    found = module.get(first, missing) if isinstance(module, dict) else missing
    for name in rest:
        if found is missing:
            break
        found = getattr(found, name, missing)
    return found


def _children() -> list:
    """The live processes this one started (multiprocessing's)."""
    process = sys.modules.get("multiprocessing.process")
    return [] if process is None else process.active_children()


def _every_child_has(name: str) -> bool:
    """Whether every live process this one started had ``name`` in its ``__main__`` then (one
    started before :func:`install` counts as not having it)."""
    return all(name in _started.get(child, ((), None))[0] for child in _children())


def _forked_from() -> list:
    """The run modules the live children forked from, the latest child's first: the
    ``__main__`` a pool's task or result refers to once its cell has ended."""
    found: list = []
    for child in reversed(_children()):
        module = _started.get(child, ((), None))[1]
        if module is not None and all(module is not seen for seen in found):
            found.append(module)
    return found


def _cells_own(main: Any, obj: Any, qualname: str) -> dict | None:
    """The namespace of the cells under whose ``qualname`` ``obj`` is: ``__main__``'s when it is
    a run's; else (a pool's task thread pickling a task after its cell ended, when ``__main__``
    is the engine's own again, or a later cell's that lacks it) that of the run module a live
    child forked from, or the globals of the run that sent it. None if none holds it."""
    candidates = [vars(module) for module in
                  ([main] if isinstance(main, RunModule) else []) + _forked_from()]
    own = _globals_of(obj)
    if own is not None and own.get("__name__") == "__main__" \
            and own is not getattr(main, "__dict__", None):
        candidates.append(own)  # a run's namespace (the engine's own __main__ is not one)
    for namespace in candidates:
        if _found(namespace, qualname) is obj:
            return namespace
    return None


def _globals_of(obj: Any) -> dict | None:
    """The globals ``obj``'s code reads: a function's; a cache's function's; a class's first
    method's."""
    if isinstance(obj, type):
        obj = next((value for value in vars(obj).values()
                    if isinstance(value, types.FunctionType)), None)
    obj = getattr(obj, "__wrapped__", obj)
    found = getattr(obj, "__globals__", None)
    return found if isinstance(found, dict) else None


def _reducer_override(pickler: Any, obj: Any) -> Any:
    kind = type(obj)
    if kind is not types.FunctionType and not issubclass(kind, type) \
            and not serialize.is_cache_wrapper(obj):
        return NotImplemented
    if getattr(obj, "__module__", None) != "__main__" or os.getpid() != _installed_in[0]:
        return NotImplemented
    main = sys.modules.get("__main__")
    qualname = getattr(obj, "__qualname__", None)
    namespace = _cells_own(main, obj, qualname) if isinstance(qualname, str) else None
    if namespace is None:
        return NotImplemented  # pickle's own way, which fails (a lambda) as it does plainly
    if _every_child_has(qualname.partition(".")[0]):
        if namespace is getattr(main, "__dict__", None):
            return NotImplemented  # by reference, as plainly: the workers have it
        return by_name, (qualname,)  # the same, where __main__ is no longer the one they forked
    try:
        with serialize.cell_namespace(namespace):
            frames = serialize.dumps(obj)
    except Exception as err:
        raise pickle.PicklingError(
            f"remote_magics: {qualname!r} of the notebook could not be sent to the workers of "
            "a multiprocessing pool or process: one started by an earlier remote cell lacks "
            f"it, so it goes by value, and that failed ({type(err).__name__}: {err}). Start "
            "the pool in the cell that uses it (`with Pool(2) as pool:`), or make what it "
            "reads picklable.") from err
    return by_name_or_value, (qualname, frames[0], [bytes(frame) for frame in frames[1:]])


def by_name(qualname: str) -> Any:
    """Called by the unpickler: what this process's ``__main__`` holds under ``qualname``, as
    pickle finds a global of ``__main__``."""
    missing = object()
    found = _found(sys.modules.get("__main__"), qualname, missing)
    if found is missing:
        raise pickle.UnpicklingError(f"Can't get attribute {qualname!r} on <module '__main__'>")
    return found


class _Unpickler(pickle.Unpickler):
    """pickle's, but a global of ``__main__`` that the engine's ``__main__`` lacks (a result
    of a pool's worker, whose ``__main__`` was a run's, arriving after that run ended) is the
    one of the run module a live child forked from. Without it, the pool's result thread
    failed and ended, and the result's ``.get()`` waited for ever."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__main__" and os.getpid() == _installed_in[0]:
            missing = object()
            main = sys.modules.get("__main__")
            for source in ([main] if main is not None else []) + _forked_from():
                found = _found(source, name, missing)
                if found is not missing:
                    return found
        return super().find_class(module, name)


def _loads(data: Any, /) -> Any:
    """multiprocessing's ``ForkingPickler.loads``: with :class:`_Unpickler` in the engine while
    a child forked from a run's module lives (it copies ``data``), else pickle's own."""
    if os.getpid() == _installed_in[0] and _forked_from():
        return _Unpickler(io.BytesIO(data)).load()
    return pickle.loads(data)


def by_name_or_value(qualname: str, head: bytes, buffers: list) -> Any:
    """Called by the unpickler: what this process's ``__main__`` holds under ``qualname``, as
    pickle would find it; where it holds nothing, the function or class sent by value. In a
    worker, its globals are that ``__main__``'s (it gets those it reads and lacks) and it is
    kept there from now on; in the engine it takes nothing of a run's namespace, whose names
    go back to the notebook."""
    main = sys.modules.get("__main__")
    missing = object()
    found = _found(main, qualname, missing)
    if found is not missing:
        return found
    worker = os.getpid() != _installed_in[0] and isinstance(main, types.ModuleType)
    namespace = vars(main) if worker else None
    with serialize.cell_namespace(namespace):
        made = serialize.loads([head, *buffers])
    if namespace is not None and "." not in qualname:
        namespace.setdefault(qualname, made)
    return made


__all__ = ["install", "note_run_children", "by_name", "by_name_or_value"]
