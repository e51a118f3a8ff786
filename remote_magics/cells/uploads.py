"""Big values uploaded once: which local arrays and containers each engine keeps, and whether
they changed.

A ``%%remote`` cell ships every value it reads. A numpy array of at least :data:`KEEP_BYTES`
is uploaded with a token, and the engine keeps its copy (:mod:`..engine.kept`); a later run that
reads the same array sends only the token, if the array is unchanged. Unchanged is detected,
never assumed: the array's pages are write-protected in the asynchronous mode of a userfaultfd
(:mod:`..engine.pages`) when its bytes are sent, and any write since then (through any name,
a view, the kernel) is found in microseconds. Without that (another OS, an older kernel), a
keyed BLAKE3 digest of the bytes decides when the ``blake3`` package is installed, and
otherwise the array is simply uploaded every time.

A big list, tuple, set, frozenset or dict of atoms (:func:`..engine.kept.atoms_only`: at least
:data:`~..wire.serialize.KEPT_MEMBERS` numbers, strings, tuples of them) is kept the same way; it is
unchanged while it holds the same members in the same order (:class:`..engine.kept.Members`, which
holds them, so no id is reused). A container cannot be watched by a weak reference: its record holds
it, and lets it go once nothing else does (:meth:`Uploads.sweep`, as a run starts).

A big array a cell sends back by value is the engine's own, kept there too (:mod:`..engine.kept`):
the notebook watches its copy from the moment it is unpickled (:meth:`Uploads.adopt`), so the
next cell that reads it unchanged sends only its token, and a cell's result read by the next
cell is not uploaded again.

The engine drops a copy that changed there (the cell wrote it), unless it went back whole, into
the notebook's array: both are then watched again (:meth:`Uploads.resynced`); a
kept copy is released when the local array dies, when it changed here, when a target's kept
bytes pass :data:`CAP_BYTES` (least recently used first), and with the connection or engine.
"""
from __future__ import annotations

import logging
import secrets
import sys
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from ..engine import pages
from ..engine.kept import KEEP_BYTES, Members, atoms_only, memory_of, size_of
from ..wire import serialize

log = logging.getLogger(__name__)

#: At most this many bytes kept per target; past it, the least recently used copies go.
CAP_BYTES = 8 << 30


@dataclass
class Held:
    """What one target keeps of one array: its token, for which engine, and its size."""

    token: str
    engine_id: str
    nbytes: int
    confirmed: bool = False  # the engine said it kept it


@dataclass
class Tracked:
    """A local array whose bytes went to one or more engines, or a container of atoms whose
    members did, and how to tell they changed."""

    ref: Callable[[], Any]  # an array's weakref; a container's Members, which holds it
    layout: tuple  # address, shape, strides, dtype, writeable: all the pickle says but bytes
    span: pages.Span | Members | None
    digest: bytes | None = None
    held: "weakref.WeakKeyDictionary[Any, Held]" = field(
        default_factory=weakref.WeakKeyDictionary)  # target → what it keeps


class Uploads:
    """The client's record of kept uploads, for every target (one per process: :data:`ledger`)."""

    def __init__(self) -> None:
        self.tracked: dict[int, Tracked] = {}  # id(array) → its record
        self.recent: "weakref.WeakKeyDictionary[Any, OrderedDict[str, Tracked]]" = \
            weakref.WeakKeyDictionary()  # target → token → record, least recently used first
        self.lock = threading.RLock()
        self.keyed = secrets.token_bytes(32)  # the digest's key: no one can aim a collision

    # --- while a run's values are pickled ---------------------------------------------------

    def substitute(self, target: Any) -> Callable[[Any], Any]:
        """The function :func:`..wire.serialize.substituting` calls for each object pickled for
        ``target``: a reference for a kept unchanged array, a kept upload for a new big one."""
        ndarray = _ndarray()
        sent: dict[int, str] = {}  # id(array) → token, for an array met again in the same run
        self.sweep()

        def substitute(obj: Any) -> Any:
            if type(obj) in serialize.KEPT_CONTAINERS:  # a name's (serialize.Outgoing.dump asks)
                if len(obj) < serialize.KEPT_MEMBERS:
                    return NotImplemented
            elif ndarray is None or type(obj) is not ndarray or obj.nbytes < KEEP_BYTES:
                return NotImplemented
            if id(obj) in sent:  # the engine keeps it first, then resolves this reference
                return serialize.keep_reference(sent[id(obj)])
            try:
                reduced = self.reduce(obj, target)
            except Exception:  # never fail a run for this: the array goes as usual
                log.debug("uploads: not kept", exc_info=True)
                return NotImplemented
            if reduced is not NotImplemented:
                sent[id(obj)] = reduced[1][0]
            return reduced

        return substitute

    def reduce(self, array: Any, target: Any) -> Any:
        """A reference to ``target``'s copy of ``array`` (or container) when it is unchanged,
        else an upload that ``target`` keeps; ``NotImplemented`` for one that cannot be kept."""
        container = type(array) in serialize.KEPT_CONTAINERS
        if not container and memory_of(array) is None:  # references, or not in one piece
            return NotImplemented
        with self.lock:
            record = self.current(array)
            held = record.held.get(target) if record is not None else None
            if held is not None and held.confirmed and held.engine_id == target.engine_id:
                self.recent.setdefault(target, OrderedDict()).move_to_end(held.token)
                return serialize.keep_reference(held.token)
            if container:
                reduced = serialize.container_rebuild(array)  # pickled inside, as usual
            else:
                reduced = array.__reduce_ex__(serialize.PROTOCOL)  # (rebuild, args[, state])
                if not (isinstance(reduced, tuple) and 2 <= len(reduced) <= 3):
                    return NotImplemented
            if record is None:
                record = self.track(array)
                if record is None:
                    return NotImplemented
            if held is not None:  # a copy not confirmed, or of an engine before a restart
                self.release(target, record, held)
            token = secrets.token_hex(16)
            record.held[target] = Held(token, target.engine_id, size_of(array))
            return serialize.kept_upload, (token, *reduced)

    def current(self, array: Any) -> Tracked | None:
        """The record of ``array`` if what its engines keep is still equal to it, else None
        (its copies released: it changed, or it is a new array where an old one was)."""
        record = self.tracked.get(id(array))
        if record is None:
            return None
        if record.ref() is array and record.layout == layout(array) and not self.changed(record):
            return record
        self.drop(record)
        return None

    def changed(self, record: Tracked) -> bool:
        """Whether the array's bytes may have changed since they were sent."""
        if record.span is not None:
            return record.span.written()
        array = record.ref()
        return array is None or record.digest is None or record.digest != self.digest(array)

    def track(self, array: Any, checked: bool = False) -> Tracked | None:
        """Start a record of ``array``, watching its memory from now (before its bytes go); of
        a container, watching its members, if it holds atoms only (``checked``: the engine that
        sent it found so)."""
        if type(array) in serialize.KEPT_CONTAINERS:
            if not (checked or atoms_only(array)):
                return None
            members = Members(array)
            members.protect()
            record = Tracked(members, layout(array), members)
            self.tracked[id(array)] = record
            return record
        address, nbytes = array.ctypes.data, array.nbytes
        tracker = pages.tracker()
        span = tracker.span(address, nbytes) if tracker is not None else None
        digest = None
        if span is not None:
            span.protect()
        else:
            digest = self.digest(array)
            if digest is None:  # no cheap way to see a change: upload every time
                return None
        key = id(array)
        record = Tracked(weakref.ref(array, lambda _, key=key: self.died(key)), layout(array),
                         span, digest)
        self.tracked[key] = record
        return record

    def digest(self, array: Any) -> bytes | None:
        """A keyed BLAKE3 digest of the array's bytes, or None without the ``blake3`` package."""
        try:
            from blake3 import blake3
        except ImportError:
            return None
        data = array.reshape(-1, order="A").view("u1")  # its bytes, whatever the dtype
        return blake3(data, key=self.keyed, max_threads=blake3.AUTO).digest()

    # --- while a run's reply is unpickled ---------------------------------------------------

    def adopter(self, target: Any) -> "Adoption":
        """What :func:`..wire.serialize.adopting` calls for each kept download of one reply
        from ``target`` (give it to :meth:`adopted` once the reply is unpickled)."""
        return Adoption(self, target)

    def adopt(self, target: Any, token: str, array: Any) -> bool:
        """Record a big array just unpickled from ``target``'s reply, whose engine keeps its
        own (under ``token``): watched from now, so a later run that reads it unchanged sends a
        reference. False when it cannot be watched here (the engine's copy is then released)."""
        ndarray = _ndarray()
        container = type(array) in serialize.KEPT_CONTAINERS
        if not container and (ndarray is None or type(array) is not ndarray
                              or memory_of(array) is None):
            return False
        with self.lock:
            record = self.current(array)
            if record is None:
                record = self.track(array, checked=True)
                if record is None:
                    return False
            held = record.held.get(target)
            if held is not None:  # an array met twice: its first copy there is enough
                return False
            record.held[target] = Held(token, target.engine_id, size_of(array), confirmed=True)
            self.recent.setdefault(target, OrderedDict())[token] = record
            return True

    def holding(self, target: Any, token: str) -> Any:
        """The container this side holds that ``target`` keeps under ``token``, else None: a
        member of it that a reply refers to is found in it
        (:class:`..wire.serialize.KeptMembers`; checked there against the value sent)."""
        with self.lock:
            record = self.recent.get(target, {}).get(token)
            if record is None:  # uploaded by this run: confirmed once its reply is in
                record = next((tracked for tracked in self.tracked.values()
                               if getattr(tracked.held.get(target), "token", None) == token),
                              None)
        container = record.ref() if record is not None else None
        return container if type(container) in serialize.KEPT_CONTAINERS else None

    def adopted(self, target: Any, report: dict | None, adoption: "Adoption") -> None:
        """After a reply is unpickled: the engine's copies of the arrays it offered (the
        report's ``offered``) that no array here took are released, and the cap applies."""
        offered = (report or {}).get("offered") or ()
        with self.lock:
            for token in offered:
                if token not in adoption.tokens:
                    target.release_upload_later(token)
            if adoption.tokens:
                self.cap(target)

    # --- after a run's reply ------------------------------------------------------------------

    def settle(self, target: Any, report: dict | None) -> None:
        """Apply what the engine did with this run's uploads (the reply's ``uploads``)."""
        if not report:
            return
        kept = set(report.get("kept", ()))
        gone = set(report.get("dropped", ())) | set(report.get("lost", ()))
        with self.lock:
            recent = self.recent.setdefault(target, OrderedDict())
            for record in list(self.tracked.values()):
                held = record.held.get(target)
                if held is None:
                    continue
                if held.token in gone:
                    record.held.pop(target, None)
                    recent.pop(held.token, None)
                elif held.token in kept and not held.confirmed:
                    held.confirmed = True
                    recent[held.token] = record
            self.cap(target)

    def resynced(self, target: Any, report: dict | None, namespace: dict) -> None:
        """After a run's names are bound: the kept copies the run changed and sent back whole
        (the report's ``resynced``: token → name), which the engine watches again. Where the
        name holds this very array, laid out as sent, it has just taken those values (updated
        in place), so it is watched again from now too, and the next run sends a reference;
        every other target's copy of it is older, and is released. Anything else (the array was
        replaced, a job's name moved on): the copy is released, and the array goes up again."""
        tokens = (report or {}).get("resynced")
        if not tokens:
            return
        with self.lock:
            for record in list(self.tracked.values()):
                held = record.held.get(target)
                if held is None or held.token not in tokens:
                    continue
                array = record.ref()
                if array is None or namespace.get(tokens[held.token]) is not array \
                        or record.layout != layout(array) or not held.confirmed:
                    self.release(target, record, held)
                    continue
                for other, copy in list(record.held.items()):
                    if other is not target:
                        self.release(other, record, copy)
                if record.span is not None:
                    record.span.protect()
                else:
                    record.digest = self.digest(array)

    def lost(self, report: dict | None) -> bool:
        """Whether a run failed only because its engine no longer had a kept copy (run it again:
        the copies it lacked are forgotten, so they are uploaded)."""
        return bool(report and report.get("lost"))

    def cap(self, target: Any) -> None:
        """Release ``target``'s least recently used kept copies past :data:`CAP_BYTES`."""
        recent = self.recent.get(target)
        if not recent:
            return
        total = sum(r.held[target].nbytes for r in recent.values() if target in r.held)
        while recent and total > CAP_BYTES:
            token, record = recent.popitem(last=False)
            held = record.held.get(target)
            if held is not None and held.token == token:
                total -= held.nbytes
                self.release(target, record, held)

    # --- releases -----------------------------------------------------------------------------

    def release(self, target: Any, record: Tracked, held: Held) -> None:
        """Tell ``target``'s engine (with its next message) to drop its copy."""
        record.held.pop(target, None)
        recent = self.recent.get(target)
        if recent is not None:
            recent.pop(held.token, None)
        if held.engine_id == target.engine_id:
            target.release_upload_later(held.token)

    def drop(self, record: Tracked) -> None:
        """Forget a record: every engine's copy is released, and its memory no longer watched."""
        for target, held in list(record.held.items()):
            self.release(target, record, held)
        for key, found in list(self.tracked.items()):
            if found is record:
                del self.tracked[key]
        if record.span is not None:
            record.span.close()

    def sweep(self) -> None:
        """Forget the containers no one but this record holds any more (``del H`` in the
        notebook): their members are freed, and their engines' copies released. Unlike an
        array, a list or dict cannot be watched by a weak reference; this runs as each run
        starts."""
        with self.lock:
            for record in list(self.tracked.values()):
                if type(record.ref) is Members and record.ref.alone():
                    self.drop(record)

    def died(self, key: int) -> None:
        """The local array went: so do its kept copies (called by its weakref, any thread)."""
        with self.lock:
            record = self.tracked.get(key)
            if record is not None and record.ref() is None:
                self.drop(record)


class Adoption:
    """The kept downloads of one reply as it is unpickled (:meth:`Uploads.adopter`)."""

    def __init__(self, uploads: Uploads, target: Any) -> None:
        self.uploads, self.target = uploads, target
        self.tokens: set[str] = set()  # those taken: the engine's copy of each is held here

    def __call__(self, token: str, array: Any) -> None:
        try:
            if self.uploads.adopt(self.target, token, array):
                self.tokens.add(token)
        except Exception:  # never fail a reply for this: the array is simply not kept
            log.debug("uploads: download not kept", exc_info=True)

    def holding(self, token: str) -> Any:
        """The container the target keeps under ``token`` that this side holds too, or None."""
        return self.uploads.holding(self.target, token)


def layout(array: Any) -> tuple:
    """Everything of an array's pickle except its bytes: where they are, how they are read (a
    structured dtype's field names too, which ``a.dtype.names = ...`` changes in the very dtype
    object), and whether they may be written (``a.flags.writeable = False`` writes no page: the
    engine's writable copy with the old names stood in for it, hunt 24 H24-8). A container's
    is its class: its members say the rest."""
    if type(array) in serialize.KEPT_CONTAINERS:
        return (type(array),)
    return (array.ctypes.data, array.shape, array.strides, array.dtype, array.dtype.names,
            array.flags.writeable)


def _ndarray() -> type | None:
    numpy = sys.modules.get("numpy")  # no numpy imported: no array to keep
    return getattr(numpy, "ndarray", None) if numpy is not None else None


#: The process's one record (one page tracker serves every array and target).
ledger = Uploads()
