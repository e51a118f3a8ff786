"""pandas' copy-on-write, kept for the objects that cross.

Under copy-on-write (pandas 3; pandas 2 with ``pd.options.mode.copy_on_write = True``) several
pandas objects share one block of memory: a column taken from a frame (``col = data['a']``), a
slice, a shallow copy, ``df[['a']]``. Each block knows which others share its memory (its
``refs``), and pandas copies a block before writing to it while another one does, so no object
ever sees another's writes. An object rebuilt from a pickle gets blocks of its own bookkeeping.
Where rebuilt objects share memory (the serializer keeps views as views, and a changed object
comes back over the receiver's own arrays), nothing told pandas so, and a write to one went
through to the others, silently (hunt 15 C2, C3). So a receiver:

- does not write a changed array into its own array where that one is a block other pandas
  objects share (:func:`shared_arrays`): the object takes the new values in new memory, as
  pandas' own write would have;
- after a load, links the bookkeeping of the blocks that share memory (:func:`link`), as if
  pandas had made them share it.

Without pandas, or without copy-on-write (pandas 2's default, where a column is a view that sees
the frame's writes), nothing changes. Standard library only: pandas and NumPy are used where they
are imported already.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Iterable

from .in_place import attribute_of

_seen = threading.local()  # whether a load on this thread rebuilt a pandas object's blocks

#: How far :func:`pandas_objects` looks: into containers and objects' attributes this deep,
#: and at most this many objects (a notebook's names, and what they hold).
DEPTH = 2
LIMIT = 20_000


def note_blocks() -> None:
    """A load on this thread is rebuilding a pandas object's blocks (the unpickler says so)."""
    _seen.blocks = True


def take_note() -> bool:
    """Whether a load on this thread rebuilt pandas blocks since the last call."""
    seen = getattr(_seen, "blocks", False)
    _seen.blocks = False
    return seen


def active() -> Any:
    """pandas, when it is imported and copies on write; else None."""
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return None
    try:
        if int(pandas.__version__.split(".")[0]) >= 3:
            return pandas
        return pandas if pandas.get_option("mode.copy_on_write") is True else None
    except Exception:  # a pandas without the option: no copy-on-write
        return None


_ATOMS = frozenset({str, bytes, int, float, bool, complex, type(None)})  # hold no frames


def pandas_objects(values: Iterable[Any], pandas: Any) -> list:
    """The pandas frames and series among ``values``, and inside their containers and
    objects' attributes (:data:`DEPTH` levels, :data:`LIMIT` objects at most)."""
    kinds = (pandas.DataFrame, pandas.Series)
    found, seen, level = [], set(), list(values)
    for _ in range(DEPTH + 1):
        deeper = []
        for value in level:
            if type(value) in _ATOMS or id(value) in seen or len(seen) >= LIMIT:
                continue
            seen.add(id(value))
            if isinstance(value, kinds):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                deeper.extend(value[:LIMIT])
            elif isinstance(value, dict):
                deeper.extend(list(value.values())[:LIMIT])
            elif not isinstance(value, type):
                attributes = attribute_of(value, "__dict__")
                if isinstance(attributes, dict):
                    deeper.extend(list(attributes.values())[:LIMIT])
        level = deeper
    return found


def _blocks(objects: Iterable[Any]) -> list:
    """The blocks of ``objects`` whose values are NumPy arrays, with their memory's bounds."""
    numpy = sys.modules.get("numpy")
    found = []
    for obj in objects:
        try:
            blocks = obj._mgr.blocks
        except AttributeError:
            continue
        for block in blocks:
            values = getattr(block, "values", None)
            if numpy is None or not isinstance(values, numpy.ndarray) or not values.size \
                    or getattr(block, "refs", None) is None:
                continue
            start = values.__array_interface__["data"][0]
            low = start + sum(stride * (size - 1) for stride, size
                              in zip(values.strides, values.shape) if stride < 0)
            high = start + sum(stride * (size - 1) for stride, size
                               in zip(values.strides, values.shape) if stride > 0)
            found.append((low, high + values.itemsize, block))
    return found


def shared_arrays(holders: Iterable[Any]) -> set[int]:
    """The ids of the arrays that are blocks of pandas objects among ``holders`` (and inside
    them) which other objects share: pandas would copy each before writing to it."""
    pandas = active()
    if pandas is None:
        return set()
    shared = set()
    for _, _, block in _blocks(pandas_objects(holders, pandas)):
        try:
            if block.refs.has_reference():
                shared.add(id(block.values))
        except AttributeError:  # another pandas: nothing known
            continue
    return shared


def link(objects: Iterable[Any]) -> int:
    """Tell pandas which blocks of ``objects`` (pandas objects, and others among the values
    :func:`pandas_objects` finds) share memory, as if it had made them share it; how many
    blocks joined another's bookkeeping."""
    pandas = active()
    if pandas is None:
        return 0
    blocks = sorted(_blocks(pandas_objects(objects, pandas)), key=lambda item: item[0])
    joined = 0
    group: list = []
    end = -1
    for low, high, block in [*blocks, (None, None, None)]:
        if block is not None and low < end:  # overlaps the group's memory
            group.append(block)
            end = max(end, high)
            continue
        joined += _join(group)
        group, end = ([block], high) if block is not None else ([], -1)
    return joined


def _join(blocks: list) -> int:
    """Put ``blocks`` (sharing memory) under one bookkeeping, the first's."""
    if len(blocks) < 2:
        return 0
    refs = blocks[0].refs
    joined = 0
    for block in blocks[1:]:
        if block.refs is refs:
            continue
        others = [ref() for ref in getattr(block.refs, "referenced_blocks", ())]
        for other in [block, *others]:
            if other is None or other.refs is refs:
                continue
            try:
                other.refs = refs
                refs.add_reference(other)
            except (AttributeError, TypeError):  # another pandas: left as it was
                continue
            joined += 1
    return joined


__all__ = ["DEPTH", "LIMIT", "note_blocks", "take_note", "active", "pandas_objects",
           "shared_arrays", "link"]
