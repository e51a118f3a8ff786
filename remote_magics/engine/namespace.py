"""The kernel's own namespace as the remote kernel's state: names out to a ``%%local`` cell, and back.

The remote kernel (:mod:`remote_magics.kernel`) runs its cells here through IPython's own
``execute_request``, so the notebook's names live in this kernel's ``user_ns``. Only a cell that
runs in the notebook's kernel (``%%local``) moves data: before it runs, ``remote_names_request``
gives it the names it reads, each a value or a proxy by the download policy (encoded as a run's
outputs are, :meth:`Engine.encode`); afterwards ``remote_bind_request`` puts back what it bound
or changed, and records the cell in this kernel's history so ``In``, ``Out`` and the execution
count stay the notebook's.

Runs inside the remote kernel and is shipped with the engine as source: standard library,
ipykernel and cloudpickle only.
"""
from __future__ import annotations

import array
import collections
import io
import itertools
import random
import types
import warnings
from types import FunctionType, MethodType, ModuleType
from typing import Any

from ..wire import protocol, serialize


def install(engine: Any) -> None:
    """Register the handlers of ``remote_names_request`` and ``remote_bind_request``."""

    async def names_request(stream, ident, parent) -> None:
        handle(engine, stream, ident, parent, names)

    async def bind_request(stream, ident, parent) -> None:
        handle(engine, stream, ident, parent, bind)

    engine.kernel.shell_handlers[protocol.NAMES_REQUEST] = names_request
    engine.kernel.shell_handlers[protocol.BIND_REQUEST] = bind_request


def handle(engine: Any, stream, ident, parent: dict, action) -> None:
    """Run ``action`` for one request and reply; always replies, whatever it raises."""
    if not engine.authentic(parent):
        return
    frames: list = []
    try:
        shell = engine.kernel.shell
        reply = action(engine, shell, parent, frames)
    except BaseException as err:  # the client waits for a reply whatever happens
        frames = []
        reply = {"status": "error", "ename": type(err).__name__, "evalue": str(err),
                 "traceback": [f"{type(err).__name__}: {err}"]}
    engine.reply(stream, ident, parent, reply, frames)


def visible(shell: Any, name: str) -> bool:
    """Whether ``name`` is one of the user's names (not IPython's own ``In``, ``get_ipython``...)."""
    ns, hidden = shell.user_ns, shell.user_ns_hidden
    return name in ns and not (name in hidden and hidden[name] is ns[name])


def names(engine: Any, shell: Any, parent: dict, frames: list) -> dict:
    """The values of the names asked for, by the request's download policy; the rest missing."""
    content = parent["content"]
    client = protocol.client_of(parent)
    outputs, missing = [], []
    batch = engine.batch()  # one stream: names for one object stay one object there
    asked = list(content.get("names", ()))
    with serialize.cell_namespace(shell.user_ns):
        for name in asked:
            if visible(shell, name):
                outputs.append(engine.encode(name, shell.user_ns[name], content, client, frames,
                                             batch))
            elif name not in shell.user_ns:
                missing.append(name)
        # the names that share what goes: a change there reaches them when it comes back
        for name in sharing(shell, batch.stream.holds(), set(asked)):
            outputs.append(engine.encode(name, shell.user_ns[name], content, client, frames,
                                         batch))
    packed_frames, packed = serialize.pack(outputs, frames)
    frames[:] = packed_frames
    return {"status": "ok", "outputs": outputs, "result": None, "deleted": [],
            "missing": missing, "packed": packed}


def sharing(shell: Any, held: set[int], skip: set[str]) -> list[str]:
    """The user's other names whose objects are among ``held`` (reached by what is sent), and
    could change in place: they travel too, so a ``%%local`` cell that changes ``ax`` sends
    back ``fig`` with it."""
    return [name for name, value in shell.user_ns.items()
            if id(value) in held and name not in skip and not name.startswith("_")
            and visible(shell, name) and changeable(value)]


#: Values that no code changes in place (or that go by reference, as code and modules do).
_UNCHANGING = (type, ModuleType, bytes, range)
#: Members of a tuple or frozenset looked at to see whether one can change in place; past
#: these, it may (a digest before and after the run tells whether it did).
_MEMBERS_LOOKED_AT = 10_000


def changeable(value: Any, _depth: int = 0) -> bool:
    """Whether code could change ``value`` in place: not scalars, classes, modules (but a class
    of the notebook's, whose attributes a cell may set: ``Registry.items.append(x)``). A Python
    function can: its defaults (``def acc(x, seen=[])``), its closure (``nonlocal count``), its
    attributes (``f.calls += 1``, or a first one: ``event.terminal = True`` set on the
    notebook's function by a library the cell calls, hunt 14 C1); a function the notebook sent
    comes back as the notebook's own, so such a change must come back with it (it is watched:
    a digest of the function's own state, not of its code). A tuple,
    namedtuple or frozenset can when a member can (``t = ([1],)``, ``t[0].append(2)``); a
    bound method when its object (or its class, for a class method) can (``add = acc.add``,
    ``add(5)``)."""
    kind = type(value)
    if kind is FunctionType:
        return True
    if isinstance(value, type):  # of any metaclass: a Protocol, an Enum (hunt 14 C11)
        return value.__module__ == "__main__"
    if kind is MethodType:
        owner = value.__self__
        return not isinstance(owner, ModuleType) and changeable(owner, _depth + 1)
    if isinstance(value, (tuple, frozenset)):
        if _depth > 3:
            return True
        for count, member in enumerate(value):
            if count == _MEMBERS_LOOKED_AT:
                return True
            if type(member) not in serialize.PLAIN and changeable(member, _depth + 1):
                return True
        return False
    return not (kind in serialize.PLAIN or isinstance(value, _UNCHANGING)
                or callable(value) and hasattr(value, "__code__"))


def bind(engine: Any, shell: Any, parent: dict, frames: list) -> dict:
    """Bind, update in place, or delete names; record a cell that ran elsewhere in the history."""
    content = parent["content"]
    client = protocol.client_of(parent)
    items = content.get("inputs", [])
    values: dict[str, Any] = {}
    failed = []
    result_name = items[-1]["name"] if items and content.get("result") else None
    with serialize.resolving(engine.resolver(client)), serialize.cell_namespace(shell.user_ns), \
            serialize.updating(shell.user_ns):  # objects it fetched come back as these
        loaded = serialize.load_names(items, serialize.unpack(items, parent["buffers"],
                                                              content.get("packed")))
    for item, (value, err) in zip(items, loaded):
        if err is None:
            values[item["name"]] = value
        else:
            failed.append({"name": item["name"], "error": f"{type(err).__name__}: {err}"})
    result = values.pop(result_name) if result_name in values else None
    changed = set(content.get("changed", ()))
    for name, value in values.items():
        if name in changed and visible(shell, name) and update_in_place(shell.user_ns[name], value):
            continue
        shell.user_ns[name] = value
    for name in content.get("deletes", ()):
        if visible(shell, name):
            del shell.user_ns[name]
    count = content.get("execution_count")
    if count is not None:
        record(shell, int(count), content.get("cell"), result, result_name is not None)
    return {"status": "ok", "failed": failed, "execution_count": shell.execution_count}


def record(shell: Any, count: int, cell: str | None, result: Any, has_result: bool) -> None:
    """Record cell ``count`` (run in the notebook's kernel) as ``In[count]``, and its result.

    Without ``cell``, only make ``count`` the number of this kernel's next cell (when higher).
    """
    history = shell.history_manager
    before = shell.execution_count
    while len(history.input_hist_parsed) < count:  # cells this kernel never saw
        history.input_hist_parsed.append("")
        history.input_hist_raw.append("")
    if cell is None:
        shell.execution_count = max(before, count)
        return
    if len(history.input_hist_parsed) == count:
        history.store_inputs(count, cell, cell)
        if has_result:
            shell.execution_count = count + 1  # the display hook numbers Out by the one before
            shell.displayhook.update_user_ns(result)
    shell.execution_count = max(before, count + 1)


def update_in_place(old: Any, new: Any) -> bool:
    """Make ``old`` equal to ``new`` without replacing it (its other names see the change).

    For lists, dicts, sets, deques, bytearrays and ``array.array``s, numpy arrays of the same
    shape and dtype (a masked array, matrix or record array with its attributes too), random
    generators (numpy's and Python's ``random.Random``), an ``itertools.count``, an
    ``io.StringIO`` or ``io.BytesIO``, and plain objects of the same class (their ``__dict__``;
    a ``SimpleNamespace``); False when ``old`` cannot be updated so.
    """
    if type(old) is not type(new) or old is new:
        return old is new
    try:
        if isinstance(old, (list, bytearray)):
            old[:] = new
        elif isinstance(old, dict):
            old.clear()
            old.update(new)
            if isinstance(old, collections.defaultdict):
                old.default_factory = new.default_factory
        elif isinstance(old, set):
            old.clear()
            old.update(new)
        elif isinstance(old, collections.deque):
            if old.maxlen != new.maxlen:  # fixed when made
                return False
            old.clear()
            old.extend(new)
        elif isinstance(old, array.array):
            old[:] = new
        elif _is_array(old):
            if old.shape != new.shape or old.dtype != new.dtype or not old.flags.writeable:
                return False
            old[...] = new
        elif _array_class(old) is not None:  # a masked array, a matrix, a record array: its
            # memory (which may be another array's) takes the values, and it the attributes
            plain = _array_class(old)
            if old.shape != new.shape or old.dtype != new.dtype or not old.flags.writeable:
                return False
            old.view(plain)[...] = new.view(plain)
        elif type(old) is itertools.count:  # an id counter (`next(ids)` there)
            return _advance_count(old, new)
        elif type(old) in (io.StringIO, io.BytesIO):  # a buffer written there (`print(...,
            old.seek(0)  # file=buf)`, a logger's stream): its text, and where it is
            old.truncate()
            old.write(new.getvalue())
            old.seek(new.tell())
        elif _random_generator(old):  # numpy's Generator: its state is its bit generator's
            old.bit_generator.state = new.bit_generator.state
        elif isinstance(old, random.Random):
            old.setstate(new.getstate())
        elif _legacy_random_state(old):
            old.set_state(new.get_state())
        elif _plain_object(old):
            # a class's own __getstate__ may leave attributes out (a cache, a lock): kept
            if getattr(type(old), "__getstate__", None) is getattr(object, "__getstate__", None):
                old.__dict__.clear()
            old.__dict__.update(new.__dict__)
            return True
        else:
            return False
        own = getattr(old, "__dict__", None)  # a list's or dict's subclass: its attributes too
        if isinstance(own, dict) and isinstance(getattr(new, "__dict__", None), dict):
            own.clear()
            own.update(new.__dict__)
    except Exception:  # an object that refuses: it is bound anew instead
        return False
    return True


#: The most steps an ``itertools.count`` is advanced to take a remote cell's ``next`` calls.
COUNT_STEPS = 1_000_000


def _advance_count(old: Any, new: Any) -> bool:
    """Advance the counter ``old`` to where ``new`` is (its state cannot be set): False when
    ``new`` is behind it, counts by another step, or too far ahead."""
    try:
        with warnings.catch_warnings():  # its pickling is deprecated in Python 3.12
            warnings.simplefilter("ignore", DeprecationWarning)
            (_, here), (_, there) = old.__reduce__(), new.__reduce__()
    except Exception:
        return False
    here, there = (*here, 1)[:2], (*there, 1)[:2]
    if here[1] != there[1] or not here[1]:
        return False
    steps = (there[0] - here[0]) / here[1]
    if steps != int(steps) or not 0 <= steps <= COUNT_STEPS:
        return False
    collections.deque(itertools.islice(old, int(steps)), maxlen=0)
    return True


def _legacy_random_state(obj: Any) -> bool:
    """Whether ``obj`` is a numpy ``RandomState`` (``np.random.RandomState(0)``)."""
    kind = type(obj)
    return kind.__module__.startswith("numpy.random") and kind.__name__ == "RandomState"


def _random_generator(obj: Any) -> bool:
    kind = type(obj)
    return kind.__module__.startswith("numpy.random") and hasattr(obj, "bit_generator")


def _is_array(obj: Any) -> bool:
    kind = type(obj)
    return kind.__module__ == "numpy" and kind.__name__ == "ndarray"


def _array_class(obj: Any) -> type | None:
    """numpy's ``ndarray``, when ``obj`` is of a subclass of it; else None."""
    return next((klass for klass in type(obj).__mro__[1:-1] if klass.__name__ == "ndarray"
                 and klass.__module__ == "numpy"), None)


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python


def _plain_object(obj: Any) -> bool:
    """Whether all of ``obj``'s state is its ``__dict__``: Python classes only, no slots, or a
    ``types.SimpleNamespace`` (``cfg.epochs = 1`` in a remote cell reaches ``model.cfg``)."""
    classes = [cls for cls in type(obj).__mro__[:-1] if cls is not types.SimpleNamespace]
    return isinstance(getattr(obj, "__dict__", None), dict) and \
        (bool(classes) or type(obj) is types.SimpleNamespace) and all(
            cls.__flags__ & _HEAPTYPE and not vars(cls).get("__slots__") for cls in classes)
