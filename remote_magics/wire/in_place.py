"""Making an object equal to another without replacing it, so every name and holder of it sees
the change: how a value a remote cell changed in place comes back (both sides use it: the
notebook for what a run changed, the remote kernel for what a ``%%local`` cell changed, and the
unpickler for an object that was sent inside a value and comes back, :mod:`.serialize`).

Standard library only; shipped with the engine.
"""
from __future__ import annotations

import array
import collections
import datetime
import functools
import io
import itertools
import random
import sys
import types
import warnings
from typing import Any, Iterator


def attribute_of(obj: Any, name: str, default: Any = None) -> Any:
    """``obj``'s attribute ``name`` as Python finds it before a class's ``__getattr__`` would be
    asked, else ``default``: what we look up on any object (``__setstate__``, ``__func__``,
    ``__qualname__``) never reaches a user's ``__getattr__``, which may print what it is asked,
    count it, or raise KeyError for every name it lacks (the attribute-dict idiom's
    ``self.data[name]``: hunt 29 H29-2, H29-3, H29-5)."""
    try:
        if isinstance(obj, type):  # a class: its own members and its bases'
            return getattr(obj, name, default)
        return object.__getattribute__(obj, name)
    except Exception:  # noqa: BLE001 - a property that raises: as absent
        return default


def refill(container: list | dict | set, items: Any) -> None:
    """Make a list, dict or set (or a subclass's object) hold ``items`` (a list's or set's
    members, or a dict's items or a mapping; not the container itself) by the builtin's own
    methods: a subclass's ``__setitem__`` may refuse or log (hunt 33 H33-2: an ``IntList``
    refused the refill). An ``OrderedDict`` by its own, which keep its order (``dict``'s left
    its links out: hunt 33 H33-12, items lost)."""
    if isinstance(container, list):
        list.__setitem__(container, slice(None), items)
    elif isinstance(container, set):
        set.clear(container)
        set.update(container, items)
    elif isinstance(container, collections.OrderedDict):
        collections.OrderedDict.clear(container)
        pairs = items.items() if isinstance(items, dict) else items
        for key, value in list(pairs):
            collections.OrderedDict.__setitem__(container, key, value)
    else:
        dict.clear(container)
        dict.update(container, items)


def update_in_place(old: Any, new: Any) -> bool:
    """Make ``old`` equal to ``new`` without replacing it (its other names see the change).

    For lists, dicts, sets, deques, bytearrays and ``array.array``s, numpy arrays of the same
    shape and dtype, or of the same size when a contiguous one can take the new ones (a masked
    array, matrix or record array of the same shape and dtype, with its attributes too), random
    generators (numpy's and Python's ``random.Random``), an ``itertools.count``, an
    ``io.StringIO`` or ``io.BytesIO``, a ``functools.partial``, an exception (its ``args``
    and attributes), and plain objects of the same class (their ``__dict__``; a
    ``SimpleNamespace``); False when ``old`` cannot be updated so.
    """
    if type(old) is not type(new) or old is new:
        return old is new
    try:
        if isinstance(old, (list, dict)):
            refill(old, new)
            if isinstance(old, collections.defaultdict):
                old.default_factory = new.default_factory
        elif isinstance(old, bytearray):
            old[:] = new
        elif isinstance(old, set):
            set.clear(old)
            lay_out_set(old, sys.getsizeof(new), new)
        elif isinstance(old, collections.deque):
            if old.maxlen != new.maxlen:  # fixed when made
                return False
            old.clear()
            old.extend(new)
        elif isinstance(old, array.array):
            old[:] = new
        elif _is_array(old):
            if (old.shape != new.shape or old.dtype != new.dtype) and not _reshaped(old, new):
                return False
            if not writeable(old):
                return _through_its_memory(old, new)
            old[...] = new
        elif _array_class(old) is not None:  # a masked array, a matrix, a record array: its
            # memory (which may be another array's) takes the values, and it the attributes
            plain = _array_class(old)
            if old.shape != new.shape or old.dtype != new.dtype or not writeable(old):
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
            return update_in_place(old.bit_generator, new.bit_generator)
        elif _bit_generator(old):  # a second Generator over it (`Generator(bg)`) draws on;
            old.state = new.state  # its seed sequence counts the children spawned from it
            if old.seed_seq is not None and new.seed_seq is not None:  # (hunt 17 C7c)
                update_in_place(old.seed_seq, new.seed_seq)
        elif _seed_sequence(old):  # Cython's own pickling: its state set into it
            reduced = new.__reduce_ex__(2)
            old.__setstate_cython__(reduced[2])
        elif isinstance(old, random.Random):
            old.setstate(new.getstate())
        elif type(old) is functools.partial:  # its function, arguments and attributes (a
            function, arguments, keywords, attributes = new.__reduce__()[2]  # `__name__`,
            old.__setstate__((function, arguments, keywords,  # which pandas names a column by)
                              None if attributes is None else dict(attributes)))
            return True
        elif _legacy_random_state(old):
            old.set_state(new.get_state())
        elif _valued_with_attributes(old, new):  # its value cannot change, its attributes can
            pass  # (below)
        elif isinstance(old, BaseException) and isinstance(attribute_of(old, "__dict__"), dict):
            old.args = new.args  # an error a list holds, `err.handled = True` there (hunt 24
            # H24-12: the name was bound anew); its chain, and its attributes below
            old.__cause__, old.__context__ = new.__cause__, new.__context__
            old.__suppress_context__ = new.__suppress_context__
        elif _plain_object(old):
            if getattr(type(old), "__getstate__", None) is getattr(object, "__getstate__", None):
                old.__dict__.clear()
                old.__dict__.update(new.__dict__)
                return True
            # a class's own __getstate__ may leave attributes out (a lock, a generator, a
            # cache, which its __setstate__ made anew there): they stay as they are here
            fresh = left_out(new)
            old.__dict__.update((key, value) for key, value in new.__dict__.items()
                                if key not in fresh)
            return True
        else:
            return False
        own = attribute_of(old, "__dict__")  # a list's or dict's subclass: its attributes too
        if isinstance(own, dict) and isinstance(attribute_of(new, "__dict__"), dict):
            own.clear()
            own.update(new.__dict__)
    except Exception:  # an object that refuses: it is bound anew instead
        return False
    return True


def _reshaped(old: Any, new: Any) -> bool:
    """Give the array ``old`` the shape and dtype of ``new`` as ``a.shape = ...`` and ``a.dtype
    = ...`` do: the same memory seen another way, which numpy allows on a contiguous array of
    the same size (hunt 23 H23-9: a remote cell's ``arr.shape = (3, 2)`` bound the name to a new
    array, and a list holding ``arr`` kept the old shape). False, and ``old`` as it was, where
    numpy refuses."""
    if old.nbytes != new.nbytes or not old.flags.c_contiguous:
        return False
    with warnings.catch_warnings():  # NumPy may call setting them discouraged: it is the
        warnings.simplefilter("ignore")  # cell's own code that did
        try:
            trial = old.view(new.dtype)  # first on a view: `old` stays as it is if refused
            trial.shape = new.shape
        except Exception:  # not a view numpy can make of this memory
            return False
        old.dtype = new.dtype  # first: it scales the last axis
        old.shape = new.shape
    return True


def _through_its_memory(old: Any, new: Any) -> bool:
    """Make the read-only array ``old`` equal to ``new`` through the memory it views.

    A read-only view of writable memory (``np.asarray(df['a'])`` under pandas' copy-on-write,
    ``a.view()`` marked read-only) changes when that memory is written through a writable name
    for it: a remote cell that wrote the frame changed the view there. Here its memory takes the
    values too (the frame's block, when it came back first, already gave them), so the view
    still follows the frame (hunt 16 C2b: it was bound anew, and a later plain write to the frame
    no longer showed in it). An array read-only through and through (its own memory, a buffer
    that refuses writes: numpy says so) and a broadcast view stay as they were: False.
    """
    try:
        if bool((old == new).all()):
            return True
    except Exception:  # a comparison the dtype refuses: the memory is written, or not
        pass
    if old.base is None or any(step == 0 for step in old.strides):
        return False
    try:
        writable = old.view()
        writable.flags.writeable = True  # numpy refuses where the memory's owner is read-only
        writable[...] = new
    except Exception:
        return False
    return True


#: The most steps an ``itertools.count`` is advanced to take a remote cell's ``next`` calls.
COUNT_STEPS = 1_000_000


def left_out(obj: Any) -> dict:
    """The attributes of ``obj`` that its class's own ``__getstate__`` leaves out of its state
    by dropping them from a copy of its ``__dict__`` (a lock, a generator, a cache: the usual
    recipe, whose ``__setstate__`` makes them anew for a new object), by name; empty where its
    state is anything else (a state it derives, which its ``__setstate__`` derives back)."""
    own = attribute_of(obj, "__dict__")
    getstate = getattr(type(obj), "__getstate__", None)
    if not isinstance(own, dict) or getstate is None \
            or getstate is getattr(object, "__getstate__", None):
        return {}
    try:
        state = obj.__getstate__()
    except Exception:
        return {}
    if not isinstance(state, dict) or any(key not in own or own[key] is not value
                                          for key, value in state.items()):
        return {}
    return {key: value for key, value in own.items() if key not in state}


def updatable(obj: Any) -> bool:
    """Whether ``obj`` is of a library's kind that :func:`update_in_place` may make equal to
    another: a deque, an ``array.array``, a random generator (numpy's bit generator, seed
    sequence), a counter, a string buffer, a
    subclass of list, dict or set (``Counter``, ``OrderedDict``, ``defaultdict``), a
    ``SimpleNamespace``, an object of a notebook class (one with a reduction of its own). Not a
    numpy array (its memory goes its own way, as a view where it was one), nor an object of a
    library's Python class (its internals, as pandas' block manager, are rebuilt their way)."""
    kind = type(obj)
    return isinstance(obj, (collections.deque, array.array, random.Random)) \
        or kind in (itertools.count, io.StringIO, io.BytesIO, types.SimpleNamespace) \
        or (module_of(kind) == "__main__" and _plain_object(obj)) \
        or (isinstance(obj, (list, dict, set)) and module_of(kind).partition(".")[0]
            not in ("pandas", "numpy")) \
        or _random_generator(obj) or _legacy_random_state(obj) or _bit_generator(obj) \
        or _seed_sequence(obj) or plain_exception(obj)


def plain_exception(obj: Any) -> bool:
    """Whether ``obj`` is an exception whose state is its ``args``, attributes and chain: its
    class written in C adds no fields of its own (as ``OSError``'s ``errno``, ``StopIteration``'s
    ``value``, ``SyntaxError``'s place do)."""
    if not isinstance(obj, BaseException):
        return False
    base = next(klass for klass in type(obj).__mro__ if not klass.__flags__ & HEAPTYPE)
    return base.__basicsize__ == BaseException.__basicsize__


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
    return module_of(kind).startswith("numpy.random") and kind.__name__ == "RandomState"


def _random_generator(obj: Any) -> bool:
    kind = type(obj)
    return module_of(kind).startswith("numpy.random") and hasattr(obj, "bit_generator")


def _bit_generator(obj: Any) -> bool:
    """Whether ``obj`` is a numpy bit generator (``rng.bit_generator``, ``np.random.PCG64()``)."""
    kind = type(obj)
    return module_of(kind).startswith("numpy.random") and any(
        klass.__name__ == "BitGenerator" and klass.__module__ == "numpy.random.bit_generator"
        for klass in kind.__mro__[1:])


def _seed_sequence(obj: Any) -> bool:
    """Whether ``obj`` is a numpy ``SeedSequence`` (``np.random.SeedSequence(1234)``)."""
    kind = type(obj)
    return kind.__name__ == "SeedSequence" and kind.__module__ == "numpy.random.bit_generator" \
        and hasattr(obj, "__setstate_cython__")


def _is_array(obj: Any) -> bool:
    kind = type(obj)
    return kind.__module__ == "numpy" and kind.__name__ == "ndarray"


def _array_class(obj: Any) -> type | None:
    """numpy's ``ndarray``, when ``obj`` is of a subclass of it; else None."""
    return next((klass for klass in type(obj).__mro__[1:-1] if klass.__name__ == "ndarray"
                 and klass.__module__ == "numpy"), None)


def module_of(kind: type) -> str:
    """The name of the module that defines the class ``kind``, or "" where it names none (a
    SymPy ``Function('f')``'s class has ``__module__`` None: hunt 20 H20-16)."""
    name = getattr(kind, "__module__", None)
    return name if isinstance(name, str) else ""


HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python

#: What ``sys.getsizeof`` says of an empty set (its small table of 8 slots inside it).
_EMPTY_SET = sys.getsizeof(set())
#: What a slot of a set's table takes (a key and its hash).
_SET_SLOT = 16


def _growth() -> Iterator[tuple[int, int]]:
    """How a set's table grows as members are added one by one to an empty one (as pickle
    rebuilds it): ``(members, slots)`` from the member that makes it grow on. CPython grows it
    when it is 3/5 full, to the power of 2 above four times (past 50,000 members twice) its
    members."""
    mask = 7
    while True:
        used = -(-3 * mask // 5)
        least = used * 2 if used > 50_000 else used * 4
        slots = 8
        while slots <= least:
            slots <<= 1
        yield used, slots
        mask = slots - 1


def fresh_set_size(count: int) -> int:
    """What ``sys.getsizeof`` says of a set of ``count`` members added one by one to an empty
    one (:func:`_growth`)."""
    slots = 8
    for used, grown in _growth():
        if used > count:
            break
        slots = grown
    return _EMPTY_SET + (slots * _SET_SLOT if slots > 8 else 0)


def lay_out_set(made: set, size: int, members: Any) -> None:
    """Put ``members`` into the empty set ``made``, in their order, in a table as big as
    ``size`` (the sender's ``sys.getsizeof``) where that is bigger than they would get: a set
    keeps its table when members leave it (a sieve's ``primes -= set(...)``), so its numbers
    sit where their hashes say in a big table; rebuilt in a small one they wrap around it and
    iterate in another order (``[2, 3, 5, 7, 521, 11, ...]``: hunt 30 H30-1). The table is
    grown with placeholder ints on slots no member's hash names, which then leave it."""
    members = list(members)
    if size > sys.getsizeof(made) and size > fresh_set_size(len(members)):
        slots = (size - _EMPTY_SET) // _SET_SLOT
        try:
            homes = {hash(member) & (slots - 1) for member in members}
        except TypeError:  # (an unhashable member fails below, as it would)
            homes = set()
        needed = next(used for used, grown in _growth() if grown >= slots)
        # `slot + slots` has its home at `slot`, where no member's is, and is no member
        placeholders = list(itertools.islice(
            (slot + slots for slot in range(slots) if slot not in homes), needed))
        made.update(placeholders)
        for placeholder in placeholders:  # one by one: `difference_update` would shrink it
            made.discard(placeholder)
    made.update(members)

#: NumPy's flag of a writeable array (``NPY_ARRAY_WRITEABLE``), in an array's ``flags.num``.
_WRITEABLE = 0x0400


def writeable(array: Any) -> bool:
    """Whether a numpy array may be written, asked without the ``FutureWarning`` NumPy gives
    for an array ``np.broadcast_arrays`` made when its ``flags.writeable`` is read (hunt 21
    H21-7: a remote cell making one printed a warning from our code, none plainly)."""
    return bool(array.flags.num & _WRITEABLE)


#: NumPy's flag of an array that warns when it is written (``NPY_ARRAY_WARN_ON_WRITE``): what
#: ``np.broadcast_arrays`` makes, whose rows share memory. Pickling drops it; Python may set it.
_WARNS_ON_WRITE = 1 << 31


def warns_on_write(array: Any) -> bool:
    """Whether writing to a numpy array makes NumPy warn (``np.broadcast_arrays``' results:
    a ``DeprecationWarning`` on a write, a ``FutureWarning`` on reading ``flags.writeable``)."""
    return bool(array.flags.num & _WARNS_ON_WRITE)


def warn_on_write(array: Any) -> None:
    """Make NumPy warn when ``array`` (rebuilt here from one that warned) is written, as the
    sender's did (hunt 29 H29-1: a write through a broadcast array warned plainly only)."""
    try:
        array.flags._warn_on_write = True
    except (AttributeError, ValueError):  # a NumPy without the flag: nothing to keep
        pass


def _valued_with_attributes(old: Any, new: Any) -> bool:
    """Whether ``old`` and ``new`` are equal objects of a Python subclass of an immutable value
    (a tuple, named tuple, frozenset or date) with attributes, which alone a cell can change
    (``p.note = 'new'``: hunt 24 H24-12, the name was bound anew and its holders kept the old)."""
    return isinstance(old, (tuple, frozenset, datetime.date)) \
        and bool(type(old).__flags__ & HEAPTYPE) \
        and isinstance(attribute_of(old, "__dict__"), dict) and old == new


def _plain_object(obj: Any) -> bool:
    """Whether all of ``obj``'s state is its ``__dict__``: Python classes only, no slots, or a
    ``types.SimpleNamespace`` (``cfg.epochs = 1`` in a remote cell reaches ``model.cfg``)."""
    classes = [cls for cls in type(obj).__mro__[:-1] if cls is not types.SimpleNamespace]
    return isinstance(attribute_of(obj, "__dict__"), dict) and \
        (bool(classes) or type(obj) is types.SimpleNamespace) and all(
            cls.__flags__ & HEAPTYPE and not vars(cls).get("__slots__") for cls in classes)
