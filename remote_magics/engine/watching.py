"""Whether a run changed an input in place, with its big buffers watched by their pages.

A run's inputs are watched by a digest of their pickle (:func:`..wire.serialize.watch_digest`):
what differs after the run went back as changed. Hashing a big value's bytes twice a run cost
about 0.2 s a 100 MB, so a value over the watch limit was not watched at all, and an in-place
change to it was lost without a word (hunt 18 C9: four new columns of a 189 MB DataFrame). Here
each out-of-band buffer of at least :data:`PAGES_BYTES` (a numpy array's memory, a DataFrame's
block) is watched by its memory's pages instead (:mod:`.pages`): the digest covers the pickle
stream, which holds the value's structure (its columns, index, shapes, dtypes) and its small
parts, and says only where each big buffer is. After the run, the value changed if its stream
differs, if a big buffer is somewhere else, or if any of its pages was written. The limit then
counts the stream and the buffers that are hashed, not the watched ones.

Without write tracking (another OS, an older kernel, memory that is not private), a buffer is
hashed as before.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any

from ..wire import serialize
from . import pages

#: An out-of-band buffer at least this big is watched by its pages, not hashed.
PAGES_BYTES = 1 << 20


@dataclasses.dataclass
class Digest:
    """A watch digest whose big buffers are watched by their pages: ``value`` is
    :func:`..wire.serialize.watch_digest`'s, ``spans`` each big buffer's address, size and
    write-tracked span (None: hashed, as its memory cannot be watched), in the order the
    pickle met them."""

    value: tuple
    spans: list[tuple[int | None, int, pages.Span | None]]

    def close(self) -> None:
        for _, _, span in self.spans:
            if span is not None:
                span.close()
        self.spans = []


def address(view: memoryview) -> int | None:
    """Where a buffer's bytes start; None without numpy (what gives a big buffer here)."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return None
    try:
        return numpy.frombuffer(view, numpy.uint8).ctypes.data
    except (TypeError, ValueError):
        return None


def digest(obj: Any, limit: int, apart: frozenset = frozenset()) -> Any:
    """What tells :func:`changed` whether code changed ``obj`` in place: a :class:`Digest`
    when it has big buffers this process can watch, else the plain watch digest; None when
    ``obj`` is not watched (it does not pickle, or what is hashed passes ``limit``)."""
    tracker = pages.tracker()
    if tracker is None:
        return serialize.watch_digest(obj, limit, apart)
    spans: list[tuple[int | None, int, pages.Span | None]] = []

    def watched(view: memoryview) -> bool:
        if view.nbytes < PAGES_BYTES:
            return False
        where = address(view)
        span = tracker.span(where, view.nbytes) if where is not None else None
        if span is not None:
            span.protect()
        spans.append((where, view.nbytes, span))  # in order, a buffer hashed too
        return span is not None

    value = serialize.watch_digest(obj, limit, apart, watched)
    found = Digest(value, spans)
    if value is None or not any(span for _, _, span in spans):
        found.close()
        return value
    return found


def changed(obj: Any, found: Any, limit: int) -> bool:
    """Whether ``obj`` changed since :func:`digest` gave ``found``."""
    if not isinstance(found, Digest):
        return serialize.changed_since(obj, found, limit)
    spans = iter(found.spans)

    def same(view: memoryview) -> bool:
        if view.nbytes < PAGES_BYTES:
            return False
        where, nbytes, span = next(spans, (None, None, None))
        return span is not None and (where, nbytes) == (address(view), view.nbytes) \
            and not span.written()

    return serialize.changed_since(obj, found.value, limit, same)


def close(watched: dict) -> None:
    """Stop watching the pages of a run's watched inputs (``{name: (object, digest)}``)."""
    for _, found in watched.values():
        if isinstance(found, Digest):
            found.close()
