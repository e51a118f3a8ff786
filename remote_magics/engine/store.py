"""The engine's object store: the values that stay remote for proxies, and their descriptors.

Runs inside the remote kernel, shipped with :mod:`.core` as source to kernels that lack
remote_magics: standard library only.
"""
from __future__ import annotations

import functools
import gc
import inspect
import itertools
import secrets
import sys
import types
from typing import Any, Callable

from ..wire import in_place, protocol, serialize


class ObjectStore:
    """Objects kept remote for proxies: id → object, with a reference count per client."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}
        self._counts: dict[str, dict[str, int]] = {}  # id → {client: count}
        self._ids: dict[int, str] = {}  # id(object) → object id, so one object has one id

    def add(self, obj: Any, client: str) -> str:
        """Hold ``obj`` for ``client`` (one more reference) and return its id."""
        oid = self._ids.get(id(obj))
        if oid is None:
            oid = secrets.token_hex(16)
            self._objects[oid] = obj
            self._ids[id(obj)] = oid
            self._counts[oid] = {}
        counts = self._counts[oid]
        counts[client] = counts.get(client, 0) + 1
        return oid

    def add_as(self, oid: str, obj: Any, client: str) -> bool:
        """Hold a new ``obj`` for ``client`` under the id ``oid`` the client chose (a kept
        upload's token); False when that id or that object is held already."""
        if oid in self._objects or id(obj) in self._ids:
            return False
        self._objects[oid] = obj
        self._ids[id(obj)] = oid
        self._counts[oid] = {client: 1}
        return True

    def get(self, oid: str, client: str) -> Any:
        """The object, if ``client`` holds a reference to it; KeyError otherwise."""
        if client not in self._counts.get(oid, ()):
            raise KeyError(oid)
        return self._objects[oid]

    def release(self, oid: str, client: str) -> bool:
        """Drop one of ``client``'s references; the object goes when no client holds any."""
        counts = self._counts.get(oid)
        if not counts or client not in counts:
            return False
        counts[client] -= 1
        if counts[client] <= 0:
            del counts[client]
        if not counts:
            obj = self._objects.pop(oid)
            del self._counts[oid]
            self._ids.pop(id(obj), None)
        return True

    def drop_client(self, client: str) -> int:
        """Release every reference ``client`` holds; returns how many objects it held."""
        held = [oid for oid, counts in self._counts.items() if client in counts]
        for oid in held:
            self._counts[oid][client] = 1
            self.release(oid, client)
        return len(held)

    def count(self, client: str | None = None) -> int:
        """How many objects are held (for ``client``, or for anyone)."""
        if client is None:
            return len(self._objects)
        return sum(1 for counts in self._counts.values() if client in counts)


def describe(obj: Any, oid: str, proxy: bool = True) -> dict:
    """A proxy's descriptor: type, length, shape, dtype and size, as far as cheaply known.

    Never raises: a field that the object will not give (a ``shape`` or ``nbytes`` property
    that raises, even ``KeyboardInterrupt``) is left unknown (None). Without ``proxy`` (a
    value that goes back as itself), a function's or class's ``code`` is left out: its
    signature is read only for a proxy that answers it.
    """
    kind = type(obj)
    desc: dict[str, Any] = dict.fromkeys(protocol.DESCRIPTOR_FIELDS)
    desc.update(id=oid, type=_attempt(
        lambda: f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins."),
        getattr(kind, "__name__", "object")))
    if isinstance(obj, types.ModuleType):  # its attributes may be lazy, or warn when read
        desc["size"], desc["size_exact"] = _attempt(lambda: sys.getsizeof(obj)), False
        return desc  # (numpy.core's `shape` says it is deprecated: no cell of the user read it)
    desc["shadows"] = _attempt(lambda: _shadows(obj, kind), [])
    # its own iterator (a generator, a file, map()): `next(p)` takes one item, as plainly
    desc["iterator"] = hasattr(kind, "__next__") and hasattr(kind, "__iter__")
    # an async one (an async generator): `await anext(p)` and `async for` in a plain cell
    desc["async_iterator"] = hasattr(kind, "__anext__") and hasattr(kind, "__aiter__")
    # a coroutine or a task a remote cell made: `await p` in a plain cell (hunt 26 H26-19)
    desc["awaitable"] = hasattr(kind, "__await__")
    desc["callable"] = callable(obj)  # only then is its proxy (`callable(mask)` in pandas)
    # a descriptor (`__get__`, `__set__`): its proxy on a plain class is one too (hunt 33
    # H33-7, H33-14: `balance = Positive()` refused nothing, a `property` was itself)
    desc["descriptor"] = _descriptor_kind(kind)
    if desc["callable"]:
        # a function or class is not iterable (an Enum class is): pandas' `apply(f)` took an
        # iterable proxy for a list of functions (hunt 19 H19-31)
        desc["iterable"] = hasattr(kind, "__iter__") or hasattr(kind, "__getitem__")
        if proxy:
            desc["code"] = _attempt(lambda: code_card(obj))
    desc.update(summary(obj))
    if isinstance(obj, BaseException):  # its chain and traceback are read through the proxy
        desc["exception"] = True
    # a run or a plain cell that calls it (its methods) is sent these from the notebook: what
    # its code and the cells' functions and classes it reaches read
    functions = _attempt(lambda: cell_functions(obj), [])
    if functions:
        desc["globals"] = _attempt(lambda: _globals_of(functions) + _cell_classes_of(obj), [])
    return desc


def _cell_classes_of(obj: Any) -> list[str]:
    """The names of the cells' classes ``obj``'s methods are looked up in (its class's MRO;
    a bound method's object's): a call sends the notebook's, whose changes reach the copies
    here, so ``Base.tag = 'changed'`` in a plain cell is what ``k.who()`` reads for a ``Kid``
    of a remote cell (hunt 35 H35-2)."""
    owner = obj.__self__ if isinstance(obj, types.MethodType) else obj
    kind = owner if isinstance(owner, type) else type(owner)
    return [cls.__name__ for cls in kind.__mro__
            if getattr(cls, "__module__", None) == "__main__" and cls.__qualname__ == cls.__name__]


def _descriptor_kind(kind: type) -> str | None:
    """"data" for a class whose objects are data descriptors (``__set__`` or ``__delete__``:
    a cell's validator, a ``property``), "other" for one with ``__get__`` alone (a
    ``classmethod``, an ``lru_cache`` wrapper), None for any other class, and for functions,
    methods and classes (a function's proxy binds as a function does, :class:`.RemoteCode`)."""
    if not hasattr(kind, "__get__") \
            or issubclass(kind, (type, types.FunctionType, types.MethodType)):
        return None
    return "data" if hasattr(kind, "__set__") or hasattr(kind, "__delete__") else "other"


#: The kinds of callables whose proxy answers their name, module, docstring and signature.
_CODE = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
         types.BuiltinMethodType, types.MethodWrapperType)
#: The most of a docstring a proxy's descriptor carries.
DOC_CHARS = 4096


def code_card(obj: Any) -> dict | None:
    """What a proxy of a function or class answers locally, as the value does plainly
    (``f.__name__``, ``functools.wraps(f)``, ``inspect.signature(f)``): its name, qualified
    name, module, docstring (up to :data:`DOC_CHARS`) and signature, each parameter as
    ``[name, kind, default, annotation]`` (the texts of the default and annotation as a
    plain ``inspect.signature`` shows them, or None), then the return annotation's text; None
    for another callable."""
    if not isinstance(obj, _CODE):
        return None

    def text(value: Any) -> str | None:
        return None if value is inspect.Parameter.empty else inspect.formatannotation(value)

    card: dict[str, Any] = {}
    for name in ("__name__", "__qualname__", "__module__"):
        value = getattr(obj, name, None)
        card[name] = value if isinstance(value, str) else None
    doc = getattr(obj, "__doc__", None)
    card["__doc__"] = doc[:DOC_CHARS] if isinstance(doc, str) else None
    signature = _attempt(lambda: inspect.signature(obj))
    card["signature"] = None if signature is None else [
        [[p.name, int(p.kind), None if p.default is p.empty else repr(p.default)[:200],
          text(p.annotation)] for p in signature.parameters.values()],
        text(signature.return_annotation)]
    return card


def summary(obj: Any) -> dict:
    """What a proxy's card shows of ``obj``, as it is now: its length, shape and dtype, and
    size (each None where unknown; never raises)."""
    found: dict[str, Any] = {"shape": None, "dtype": None}
    found["len"] = _attempt(lambda: len(obj) if hasattr(type(obj), "__len__")
                            and not _a_cells(getattr(type(obj), "__len__")) else None)
    shape = _attempt(lambda: attribute(obj, "shape"))
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        found["shape"] = [int(n) for n in shape]
        found["dtype"] = _attempt(lambda: str(attribute(obj, "dtype") or "") or None)
    found["size"], found["size_exact"] = _attempt(lambda: _size(obj), (None, False))
    return found


def attribute(obj: Any, name: str) -> Any:
    """``obj``'s attribute ``name`` where its class or its own ``__dict__`` has one, else None:
    never by its ``__getattr__``, which may load, count or print (hunt 19 H19-29: a lazy
    object's ``__getattr__`` loaded a ``shape`` and an ``nbytes`` the cell never asked for)."""
    own = in_place.attribute_of(obj, "__dict__")
    if isinstance(own, dict) and name in own:
        return own[name]
    for klass in type(obj).__mro__:
        if name in vars(klass):
            found = vars(klass)[name]
            if _a_cells(getattr(found, "fget", None) or getattr(found, "func", None)
                        or getattr(found, "__get__", None)):
                return None  # a cell's property: it may load or count too (hunt 23 H23-16)
            return getattr(obj, name, None)
    return None


def _a_cells(code: Any) -> bool:
    """Whether ``code`` (a function, a method, a descriptor's ``__get__``) is a cell's own: the
    card of a proxy runs none of it (a ``__len__`` that counts, a ``shape`` property that loads:
    the cell did not ask for them, and plainly they would not have run)."""
    return getattr(getattr(code, "__func__", code), "__module__", None) == "__main__"


def _shadows(obj: Any, kind: type) -> list[str]:
    """The proxy's own names (:data:`~..wire.protocol.PROXY_NAMES`) that ``obj`` has as
    attributes, looked up without running any code of it: in its ``__dict__`` or its classes'."""
    own = in_place.attribute_of(obj, "__dict__")
    own = own if isinstance(own, dict) else {}
    classes = [vars(klass) for klass in kind.__mro__ if klass is not object]
    return [name for name in protocol.PROXY_NAMES
            if name in own or any(name in found for found in classes)]


#: Functions :func:`cell_functions` follows at most (a cell calling a whole library of its own).
_MOST_FUNCTIONS = 500
#: Members of a list, tuple or dict looked at for functions, here (:func:`cell_functions`) and
#: in the notebook's analysis (a table of handlers is short; a list of a million numbers is
#: not looked through).
FUNCTIONS_IN_CONTAINERS = 64


def of_another_run(function: types.FunctionType, namespace: dict, shell: Any) -> bool:
    """Whether ``function`` is a cell's function whose globals are another run's than
    ``namespace`` (one that stayed here): not a module's, and not of the kernel's own namespace
    (``shell``'s, or ``__main__``'s), which the remote kernel's cells run in."""
    old = function.__globals__
    return old is not namespace and old.get("__name__") == "__main__" and "__builtins__" in old \
        and old is not getattr(shell, "user_ns", None) \
        and old is not getattr(sys.modules.get("__main__"), "__dict__", None)


def twin_in(namespace: dict, function: types.FunctionType) -> types.FunctionType:
    """A twin of a cell's ``function`` whose globals are ``namespace`` (a run's): the same
    code, defaults, closure and attributes (set on either, they are the other's)."""
    made = types.FunctionType(function.__code__, namespace, function.__name__,
                              function.__defaults__, function.__closure__)
    made.__kwdefaults__ = function.__kwdefaults__
    made.__dict__ = function.__dict__
    for attribute in ("__qualname__", "__module__", "__doc__", "__annotations__"):
        setattr(made, attribute, getattr(function, attribute))
    return made


def cell_functions(obj: Any) -> list[types.FunctionType]:
    """The functions ``obj`` runs that read a cell's globals: ``obj`` itself (a function, the
    function of a bound method), the methods of a cell's class (and of its cells' bases) for
    the class or an object of it, and, through the globals their code names, the cells'
    functions and classes those call (``outer`` calling ``inner`` calling ``helper``); also
    what a function calls without naming it as a global (hunt 30 H30-11: under ``none`` its
    globals were not sent): the function a decorator's wrapper holds in its closure, a
    cache's (``@lru_cache``), a ``partial``'s, a ``singledispatch`` function's registered
    ones, a cached property's, and the functions of a dispatch table (``ops['neg'](4)``)."""
    found: dict[int, types.FunctionType] = {}
    waiting: list[Any] = [in_place.attribute_of(obj, "__func__", obj)]
    if isinstance(obj, types.MethodType):  # and its class's other methods (`self.step()`)
        owner = obj.__self__
        waiting.insert(0, owner if isinstance(owner, type) else type(owner))
    elif not isinstance(obj, (type, types.FunctionType, functools.partial)) \
            and not serialize.is_cache_wrapper(obj):
        waiting.append(type(obj))
    while waiting and len(found) < _MOST_FUNCTIONS:
        item = waiting.pop()
        if serialize.is_cache_wrapper(item):  # `@lru_cache def f`: the function it calls
            item = in_place.attribute_of(item, "__wrapped__")
        elif isinstance(item, functools.partial):
            waiting.append(item.func)
            continue
        if type(item) is types.FunctionType:
            if id(item) in found:
                continue
            registry = in_place.attribute_of(item, "registry")  # a singledispatch function's
            if isinstance(registry, types.MappingProxyType):
                waiting.extend(registry.values())
            if found and item.__globals__.get("__name__") != "__main__":
                continue
            found[id(item)] = item
            for name in serialize.code_globals(item.__code__):
                waiting.append(item.__globals__.get(name))
            for cell in item.__closure__ or ():  # a decorator's wrapper: the function it wraps
                try:
                    waiting.append(cell.cell_contents)
                except ValueError:  # an empty cell
                    pass
        elif isinstance(item, type):
            for owner in item.__mro__:
                if getattr(owner, "__module__", None) == "__main__":
                    waiting.extend(f for f in serialize.class_functions(owner)
                                   if id(f) not in found)
        elif type(item) in (list, tuple, dict) and not found:  # a dispatch table that stayed
            members = item.values() if type(item) is dict else item  # here: its functions
            waiting.extend(member for member in itertools.islice(members, FUNCTIONS_IN_CONTAINERS)
                           if type(member) is types.FunctionType)
    return list(found.values())


def _globals_of(functions: list[types.FunctionType]) -> list[str]:
    """The global names ``functions``' code uses, which of
    :data:`~..wire.serialize.LOOKS_AT_MAIN` it uses, and the modules of yours it may import
    (``def use(): import fm13``: a call sends the notebook's, and what it does to it goes back,
    hunt 35 H35-13), those not loaded here yet too (one the notebook imports and changes
    before calling it goes with the call)."""
    names: dict[str, None] = {}
    own = serialize.own_module_names()
    for function in functions:
        code = function.__code__
        names.update(dict.fromkeys(serialize.code_globals(code)))
        names.update(dict.fromkeys(_looks_at_main(code)))
        names.update(dict.fromkeys(sorted(serialize.code_names(code) & own)))
        names.update(dict.fromkeys(sorted(name for name in serialize.code_imports(code)
                                          if name not in sys.modules)))
    return list(names)


def _looks_at_main(code: types.CodeType) -> list[str]:
    """Which of :data:`~..wire.serialize.LOOKS_AT_MAIN` a function uses: listed with its
    globals in its proxy's descriptor."""
    names = serialize.code_names(code)
    return [name for name in serialize.LOOKS_AT_MAIN if name in names]


def _attempt(get: Callable[[], Any], default: Any = None) -> Any:
    """``get()``, or ``default`` whatever it raises: a user's property must not fail a reply."""
    try:
        return get()
    except BaseException:  # noqa: B036 - KeyboardInterrupt and SystemExit from user code too
        return default


#: Objects a size estimate visits at most; an object graph bigger than that has no size shown.
SIZE_WALK = 5000
#: Objects a size estimate does not count: shared by everything, not owned by the value.
_SHARED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType,
           types.MethodType, types.FrameType, types.GetSetDescriptorType,
           types.WrapperDescriptorType, types.MethodDescriptorType)
#: Types whose size ``sys.getsizeof`` gives exactly (they hold no other objects).
_ATOMS = (int, float, complex, str, bool, type(None), range, slice)


def _size(obj: Any) -> tuple[int | None, bool]:
    """Memory size of ``obj`` in bytes: exact for buffers, else an estimate (None: unknown).

    Containers are estimated from a sample of their items; other objects by a walk of what
    they refer to, bounded by :data:`SIZE_WALK` objects.
    """
    nbytes = attribute(obj, "nbytes")
    if isinstance(nbytes, int):
        return nbytes, True
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return memoryview(obj).nbytes, True
    if isinstance(obj, _ATOMS):
        return sys.getsizeof(obj), True
    if isinstance(obj, (list, tuple, set, frozenset, dict)):
        size = sys.getsizeof(obj)
        if not obj:
            return size, True
        items = list(obj.items()) if isinstance(obj, dict) else obj
        if not isinstance(items, (list, tuple)):
            items = list(items)
        sample = [items[i] for i in range(0, len(items), max(1, len(items) // 100))]
        each = sum(_deep_size(item) for item in sample) / len(sample)
        return int(size + each * len(obj)), False
    return _walk(obj), False


def _deep_size(item: Any) -> int:
    if isinstance(item, tuple):
        return sys.getsizeof(item) + sum(sys.getsizeof(part) for part in item)
    return sys.getsizeof(item)


def _walk(obj: Any) -> int | None:
    """The summed ``sys.getsizeof`` of ``obj`` and what it refers to; None past :data:`SIZE_WALK`.

    An object with a ``__sizeof__`` of its own in Python (a pandas object) counts what it holds
    already, so the walk does not go into it.
    """
    seen = {id(obj)}
    todo = [obj]
    total = 0
    while todo:
        current = todo.pop()
        total += sys.getsizeof(current)
        own_sizeof = inspect.getattr_static(type(current), "__sizeof__", None)
        if isinstance(own_sizeof, types.FunctionType):
            continue
        for ref in gc.get_referents(current):
            if id(ref) in seen or isinstance(ref, _SHARED):
                continue
            seen.add(id(ref))
            if len(seen) > SIZE_WALK:
                return None
            todo.append(ref)
    return total
