"""Tuples and frozensets a ``--download=none`` cell sent back, and the engine's own objects.

Under ``none`` a short tuple or frozenset of numbers and strings comes back as a value: a proxy
of one could not hash as it does (``table[key]`` raised KeyError, ``key in table`` missed). The
engine keeps its object, and the notebook keeps a proxy of it beside its copy (so it does for
a tuple of proxies, the tuple of a none cell's ``np.where(mask)``): a later remote
cell that reads the copy under a name gets the engine's object again, so a sentinel tested with
``is`` there (``cell is empty``, with ``empty = (0, 0)`` held by a grid that stayed remote)
still matches. At most :data:`KEPT` a target, the least recently used going first (its copy
then goes by value, as before).

The other way too: that engine object coming back again (``P[7]`` through a proxy of a list
that stayed remote, after a none cell's ``x = P[7]``) is the notebook's copy again, so ``x is
P[7]`` holds as plainly (hunt 28 H28-2): the engine names it by its one id (:func:`copy_of`).
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

#: Copies kept with their engine object's proxy, per target.
KEPT = 1000

_lock = threading.Lock()
_kept: "weakref.WeakKeyDictionary[Any, OrderedDict[int, tuple[Any, Any]]]" = \
    weakref.WeakKeyDictionary()
#: Per target: the engine object's id (its proxy's) → the id of the copy kept for it.
_copies: "weakref.WeakKeyDictionary[Any, dict[str, int]]" = weakref.WeakKeyDictionary()


def keep(target: Any, value: Any, proxy: Any) -> None:
    """Remember that ``value`` (a copy that came back) is ``proxy``'s object at ``target``."""
    with _lock:
        kept = _kept.setdefault(target, OrderedDict())
        copies = _copies.setdefault(target, {})
        kept[id(value)] = (value, proxy)  # held: its id stays its own
        copies[proxy._id] = id(value)
        while len(kept) > KEPT:
            _, (_, gone) = kept.popitem(last=False)  # the proxy goes, and releases the
            copies.pop(gone._id, None)                # engine's object


def copy_of(target: Any, oid: str, value: Any = None) -> Any:
    """The copy kept for ``target``'s object ``oid`` when ``value`` came back for it (of its
    type and length: the engine's object cannot have changed, it is a tuple or frozenset, and
    the proxies a tuple holds see what changed in its items), or a proxy of it did (``value``
    None), or None."""
    with _lock:
        kept, copies = _kept.get(target), _copies.get(target)
        key = copies.get(oid) if copies else None
        found = kept.get(key) if key is not None else None
        if found is None or found[1]._id != oid:
            return None
        copy = found[0]
    if value is None:
        return copy
    return copy if type(copy) is type(value) and len(copy) == len(value) else None


def proxy_of(target: Any, value: Any) -> Any:
    """The proxy of ``target``'s object that ``value`` is a copy of, or None."""
    with _lock:
        kept = _kept.get(target)
        found = kept.get(id(value)) if kept else None
        if found is None or found[0] is not value:
            return None
        kept.move_to_end(id(value))
        return found[1]


def forget(target: Any, value: Any) -> None:
    """Drop what :func:`keep` remembered of ``value`` (its engine object is gone)."""
    with _lock:
        kept = _kept.get(target)
        if kept and id(value) in kept and kept[id(value)][0] is value:
            _, proxy = kept.pop(id(value))
            _copies.get(target, {}).pop(proxy._id, None)
