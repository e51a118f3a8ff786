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
``__main__``'s, as plainly). Only while ``__main__`` is a run's module: the kernel's own cells,
and a worker's results, pickle as plainly.

Shipped as source with the engine: standard library and the wire format only.
"""
from __future__ import annotations

import functools
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
#: the cells' for one that did not fork: spawned, or from a forkserver).
_started: "weakref.WeakKeyDictionary[Any, frozenset[str]]" = weakref.WeakKeyDictionary()


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
        _started[self] = names

    base.start = noting_start
    pickler.reducer_override = _reducer_override


def _found(module: Any, qualname: str, missing: Any = None) -> Any:
    """What ``module`` holds under ``qualname`` (``C.method``: an attribute of what it holds),
    as pickle finds a global; ``missing`` if nothing. Its own names only: a run's module asks
    the notebook for a name it lacks (:class:`.lookup.RunModule`), which a worker cannot."""
    first, *rest = qualname.split(".")
    found = vars(module).get(first, missing) if isinstance(module, types.ModuleType) else missing
    for name in rest:
        if found is missing:
            break
        found = getattr(found, name, missing)
    return found


def _every_child_has(name: str) -> bool:
    """Whether every live process this one started had ``name`` in its ``__main__`` then (one
    started before :func:`install` counts as not having it)."""
    process = sys.modules.get("multiprocessing.process")
    return process is None or all(name in _started.get(child, ())
                                  for child in process.active_children())


def _reducer_override(pickler: Any, obj: Any) -> Any:
    kind = type(obj)
    if kind is not types.FunctionType and not issubclass(kind, type) \
            and not serialize.is_cache_wrapper(obj):
        return NotImplemented
    if getattr(obj, "__module__", None) != "__main__" or os.getpid() != _installed_in[0]:
        return NotImplemented
    main = sys.modules.get("__main__")
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(main, RunModule) or not isinstance(qualname, str) \
            or _found(main, qualname) is not obj:
        return NotImplemented  # pickle's own way, which fails (a lambda) as it does plainly
    if _every_child_has(qualname.partition(".")[0]):
        return NotImplemented  # by reference, as plainly: the workers have it
    try:
        with serialize.cell_namespace(vars(main)):
            frames = serialize.dumps(obj)
    except Exception as err:
        raise pickle.PicklingError(
            f"remote_magics: {qualname!r} of the notebook could not be sent to the workers of "
            "a multiprocessing pool or process: one started by an earlier remote cell lacks "
            f"it, so it goes by value, and that failed ({type(err).__name__}: {err}). Start "
            "the pool in the cell that uses it (`with Pool(2) as pool:`), or make what it "
            "reads picklable.") from err
    return by_name_or_value, (qualname, frames[0], [bytes(frame) for frame in frames[1:]])


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


__all__ = ["install", "by_name_or_value"]
