"""Fetch on first use, notebook side: answer a running remote cell's ask for a name.

The analysis of a cell (:mod:`.capture`) cannot see every name it reads (``eval(name)`` of a
computed string, a file run with ``exec``); the engine asks for such a name while the cell
runs (:mod:`remote_magics.engine.lookup`), and :func:`answerer` looks it up in the notebook's
namespace as :func:`.runner.prepare` would have shipped it: the same machinery names
(IPython's ``In``, ``Out``) are left out, the same modules go by value, and a proxy must be
the target's own.
"""
from __future__ import annotations

import functools
import logging
import types
from typing import Any, Callable, Mapping

from ..client.connection import LookupAnswer
from ..client.handshake import across_versions, bytecode_barrier
from ..wire import protocol, serialize
from . import capture, runner
from .proxy import RemoteObject, globals_read

log = logging.getLogger(__name__)

#: Builtins through which a cell reads names that no analysis of its code can see. Only a
#: cell that reads one (or runs ``%run``) is offered lookups: the builtins that ask cost the
#: functions the cell defines about 0.1 µs per builtin they read.
DYNAMIC_BUILTINS = serialize.DYNAMIC_BUILTINS


#: Words of code that may find the notebook's names in ``__main__`` by attribute: unpickling
#: objects of a notebook class (``pickle.load``, ``joblib.load``, ``pd.read_pickle``, ``dill``,
#: ``shelve``), ``from __main__ import f`` (``timeit``'s setup), ``cProfile.run('f()')``,
#: ``getattr(sys.modules['__main__'], name)`` (hunt 21 H21-17; see ``engine.lookup.RunModule``).
BY_MAIN = ("pickle", "joblib", "dill", "shelve", "timeit", "profile", "Profile", "__main__")


def may_ask(cell: capture.CellNames, code: str, namespace: Mapping[str, Any] = {}) -> bool:
    """Whether a cell (its analysis, and IPython's Python for it) may read names the analysis
    cannot see; its reads list the builtins it reads, ``%time`` and ``%timeit`` code included.

    So may a notebook function or class it reads from ``namespace`` (or the class of an object
    it reads) whose code calls one of :data:`DYNAMIC_BUILTINS`: it goes by value and runs
    with the run's globals (a ``__repr__`` doing ``eval(self.name)``); and a cell whose code
    says one of :data:`BY_MAIN`.
    """
    if not (DYNAMIC_BUILTINS.isdisjoint(cell.reads) and protocol.EXITS.isdisjoint(cell.reads)) \
            or cell.runs_unread_code or "_magic('run'" in code \
            or any(word in code for word in BY_MAIN):
        return True
    return any(_runs_dynamic(namespace[name], namespace) for name in cell.reads
               if name in namespace)


def _runs_dynamic(value: Any, namespace: Mapping[str, Any]) -> bool:
    """Whether ``value`` is, or is an instance of, the notebook's own code calling a dynamic
    builtin (code defined in ``namespace``: it will run with the run's globals). By its type:
    ``isinstance`` reads an object's ``__class__``, which its class's ``__getattribute__`` may
    print (hunt 42 H42-8)."""
    kind = type(value)
    if kind is types.FunctionType:
        return value.__globals__ is namespace and _calls_dynamic(value.__code__)
    if issubclass(kind, RemoteObject):  # a function or class that stayed remote: its code's
        return not DYNAMIC_BUILTINS.isdisjoint(globals_read(value))
    if issubclass(kind, type):
        kind = value
    if kind.__module__ != "__main__":  # an installed class keeps its module's globals
        return False
    return any(function.__globals__ is namespace and _calls_dynamic(function.__code__)
               for klass in kind.__mro__[:-1] for function in serialize.class_functions(klass))


@functools.lru_cache(maxsize=1024)
def _calls_dynamic(code: types.CodeType) -> bool:
    """Whether ``code`` or code nested in it reads one of :data:`DYNAMIC_BUILTINS`."""
    return not DYNAMIC_BUILTINS.isdisjoint(code.co_names) or any(
        _calls_dynamic(const) for const in code.co_consts if isinstance(const, types.CodeType))


def answerer(namespace: Mapping[str, Any], hidden: Mapping[str, Any],
             target: Any) -> Callable[[str], LookupAnswer]:
    """``answer(name)``: the value of ``name`` in ``namespace`` for a run on ``target``.

    Never raises: a value that cannot be pickled is answered with the reason, which the cell
    raises as a NameError naming the value.
    """
    def answer(name: str) -> LookupAnswer:
        # IPython's machinery is not sent; its history is, as a plain cell reads it
        # (`eval(f"_{k}")`: IPython hides the `_N` names it binds, hunt 38 H38-1), and so
        # are the other names it hides (`%pylab`'s)
        if name not in namespace or (runner.shells_own(name, namespace[name], hidden)
                                     and not protocol.HISTORY_NAME.fullmatch(name)):
            return LookupAnswer()
        value = namespace[name]
        try:
            with serialize.cell_namespace(namespace):  # its functions take the run's globals
                frames = _pickle(value, target)
        except Exception as err:
            kind = type(value)
            log.debug("remote_magics: '%s' asked for by the remote cell is not sent", name,
                      exc_info=True)
            return LookupAnswer(error=f"the notebook holds a {kind.__module__}.{kind.__qualname__}"
                                      f" that cannot be sent ({type(err).__name__}: {err}); "
                                      "create it inside the cell instead")
        return LookupAnswer(found=True, frames=frames, watch=runner.may_change(value))
    return answer


def _pickle(value: Any, target: Any) -> list:
    """``value``'s item for ``target``, as :func:`.runner.prepare` pickles an input."""
    barrier = bytecode_barrier(getattr(target, "details", None) or {})
    with serialize.by_value(serialize.own_modules()), serialize.noting_proxies() as proxies:
        try:
            frames = serialize.dumps(value, bytecode=barrier is None)
        except serialize.BytecodeByValue as err:
            raise across_versions(err, barrier) from None
    runner.check_proxies(proxies, target)
    return frames
