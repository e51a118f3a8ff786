"""Caches of cell functions (``@lru_cache def fib``, ``@cache``) that last from run to run.

In a plain notebook a cached function keeps its entries from cell to cell. Python keeps an
``lru_cache``'s entries out of reach, so they cannot travel with it; instead the engine keeps
its cache between runs. Each run's copy of the function arrives with that run's globals (the
notebook's values now), so the kept cache must call this run's copy: the engine makes the
caches of cell functions around a ``functools.partial`` of the function (C, no Python frame of
its own: recursion goes exactly as deep as plainly; its C call is given stack room by
:func:`room_for_the_partial`), which :func:`rebind` points at each run's.

Which cache a run means is said by a token (:func:`..wire.serialize.cache_token`): the engine
holds each cache it sent or was sent in its object store under that token, for that client,
until the notebook's copy of it dies (its release comes as a proxy's does) or the client goes.
Standard library only.
"""
from __future__ import annotations

import functools
import types
import weakref
from typing import Any

from .store import ObjectStore

#: Each cache of a cell function made here → the partial it calls (see :func:`rebind`).
_through: "weakref.WeakKeyDictionary[Any, functools.partial]" = weakref.WeakKeyDictionary()
_plain_lru_cache = functools.lru_cache


def _of_a_cell(func: Any) -> bool:
    """Whether ``func`` is a function a cell defined (its globals are a run's namespace or the
    kernel's), not a module's."""
    return type(func) is types.FunctionType and func.__globals__.get("__name__") == "__main__"


def _through_a_partial(decorate: Any, func: Any) -> Any:
    """``decorate(func)``, Python's own cache, calling ``func`` through a partial if it is a
    cell's (so that :func:`rebind` can point it at another run's copy)."""
    if not _of_a_cell(func):
        return decorate(func)
    through = functools.partial(func)
    wrapper = decorate(through)
    # the function's attributes, not the partial's, in the order Python's own cache has them
    attributes = vars(wrapper)
    parameters = attributes["cache_parameters"]
    attributes.clear()
    wrapper.cache_parameters = parameters
    functools.update_wrapper(wrapper, func)
    _through[wrapper] = through
    return wrapper


def lru_cache(maxsize: Any = 128, typed: bool = False) -> Any:
    """``functools.lru_cache`` as the engine has it: the very same caches, of Python's own
    type, with the same arguments and errors; a cell function's calls through a partial."""
    if callable(maxsize) and isinstance(typed, bool):  # `@lru_cache` without arguments
        return _through_a_partial(functools.partial(_plain_lru_cache, typed=typed), maxsize)
    decorate = _plain_lru_cache(maxsize, typed)  # its own checks of the arguments

    def decorating_function(user_function: Any) -> Any:
        return _through_a_partial(decorate, user_function)
    return decorating_function


#: How many times the stack limit the process started with its main thread gets (below).
STACK_ROOM = 2


def room_for_the_partial() -> int | None:
    """Let the main thread's stack grow to :data:`STACK_ROOM` times its soft limit (at most the
    hard one); the new soft limit, or None where it stays as it was.

    The partial costs no Python frame but does cost C stack: each level of a recursion through
    a cell function's cache takes a C call more than plainly (656 bytes a level against 512,
    measured on CPython 3.11), so a recursion a plain kernel finishes under a raised
    ``sys.setrecursionlimit`` (15,000 levels of ``lru_cache``, pytudes' Socks, hunt 29 H29-8)
    overran the engine's 8 MiB and killed it. Linux checks the limit when the stack grows, so
    raising it here is enough: a recursion that finishes plainly finishes here too (one deep
    enough to crash a plain kernel may finish here). Where there is no such limit (Windows, an
    unlimited one), nothing changes."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        if soft == resource.RLIM_INFINITY or soft <= 0:
            return None
        wanted = STACK_ROOM * soft
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        if wanted <= soft:
            return None
        resource.setrlimit(resource.RLIMIT_STACK, (wanted, hard))
    except (OSError, ValueError):  # not allowed here: the stack stays as it was
        return None
    return wanted


def install() -> None:
    """Make the caches of cell functions rebindable from now on (``functools.cache`` calls
    ``functools.lru_cache``, so it is covered too), and give the main thread's stack room for
    the C call that costs (:func:`room_for_the_partial`). Once per process."""
    if functools.lru_cache is not lru_cache:
        functools.update_wrapper(lru_cache, _plain_lru_cache, updated=())
        functools.lru_cache = lru_cache
        room_for_the_partial()


def rebind(wrapper: Any, func: types.FunctionType) -> bool:
    """Point a cache made here at ``func`` (a run's copy of its function); False if it was not
    made so (a cache made before :func:`install`, or of a module's function)."""
    try:
        through = _through.get(wrapper)
    except TypeError:  # not weakly referable: not a cache
        return False
    if through is None:
        return False
    through.__setstate__((func, (), {}, None))
    wrapper.__wrapped__ = func
    return True


def function_of(wrapper: Any) -> types.FunctionType | None:
    """The function a rebindable cache calls now; None for anything else."""
    try:
        through = _through.get(wrapper)
    except TypeError:  # not weakly referable: not a cache
        return None
    return through.func if through is not None else None


class RunCaches:
    """A run's caches for :func:`..wire.serialize.keeping_caches`: kept in ``store`` for
    ``client`` under their tokens."""

    def __init__(self, store: ObjectStore, client: str) -> None:
        self.store, self.client = store, client

    def keep(self, token: str, wrapper: Any) -> None:
        """Hold a cache that crossed (sent, or made from one the client sent) under ``token``."""
        self.store.add_as(token, wrapper, self.client)

    def find(self, token: str, func: types.FunctionType) -> Any:
        """The cache kept under ``token``, calling ``func`` from now on; None if none is kept
        (released, or another engine's) or its function's code is not ``func``'s."""
        try:
            wrapper = self.store.get(token, self.client)
        except KeyError:
            return None
        held = function_of(wrapper)
        if held is None or held.__code__ != func.__code__ or not rebind(wrapper, func):
            return None
        return wrapper


__all__ = ["install", "lru_cache", "rebind", "function_of", "RunCaches"]
