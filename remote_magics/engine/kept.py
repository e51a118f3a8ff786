"""Uploads the engine keeps between runs, so an unchanged big value is sent once.

The client marks a big array it uploads with a token (:func:`..wire.serialize.kept_upload`);
the engine keeps the unpickled value in its object store under that token, for that client
only, and a later run that reads the same unchanged array sends just the token
(:func:`..wire.serialize.keep_reference`). The client decides that its array is unchanged
(``cells/uploads.py``); here the engine makes sure its own copy is unchanged too: a cell that
changes the kept value in place, a thread it started, or another name for it, and the kept copy
is refused when a run next asks for it (the run does not start, and the client sends it again
with its own value in the same cell). It is checked then only, not after every run as well: one
scan of its pages per run that uses it. Without write tracking (:mod:`.pages`) no array is kept.

A big list, tuple, set, frozenset or dict of atoms (numbers, strings, bytes, None, and tuples
or frozensets of them: :func:`atoms_only`) is kept the same way (hunt 27's 70 MB set of poker
hands went up with every cell that read it). Its members never change, so the container is
unchanged while it holds the same objects in the same order: :class:`Members` watches it by a
list of them, held, so no id is reused (a scan of 2.6 million costs about 0.2 s, against
several seconds to pickle, send and rebuild it).

The other way too: a big array a run's reply carries by value (a cell made it, under ``all`` or
within ``small``'s limit) is kept here under a new token (:meth:`RunKeeper.offering`), and the
client watches its copy from the moment it is unpickled (:func:`..wire.serialize.kept_download`),
so a later cell that reads it, unchanged on both sides, sends only the token, as for an upload.
The reply lists what it offered; the client releases what it did not take.

A kept copy goes when the client says so (its array died, it changed, a memory cap), when the
client disconnects, and with the engine. Standard library only, besides the wire format.
"""
from __future__ import annotations

import itertools
import logging
import operator
import secrets
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..wire import serialize
from . import pages
from .store import ObjectStore

log = logging.getLogger(__name__)

#: An array smaller than this goes every time, both ways: checking costs more than sending.
KEEP_BYTES = 1 << 20

#: The classes whose objects never change and hold nothing that does.
_ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes})

#: Immutable containers: made of those, one is an atom too.
_NESTED = frozenset({tuple, frozenset})


class KeptCopyLost(LookupError):
    """A run refers to a kept upload the engine no longer holds (or whose copy changed)."""

    def __init__(self, token: str) -> None:
        super().__init__(f"the engine no longer keeps upload {token} (it changed or was "
                         "released); the client uploads it again")
        self.token = token


@dataclass
class Kept:
    """One kept copy: its size, and what tells whether it changed (the write-tracked span of an
    array's memory, or a container's :class:`Members`)."""

    span: "pages.Span | Members"
    nbytes: int


class Members:
    """A container of atoms (:func:`atoms_only`) watched by its members, as a
    :class:`~.pages.Span` watches an array's memory: :meth:`written` says whether it changed
    since :meth:`protect`. It holds the container and, for a mutable one, a list of its members
    then (or of a dict's keys and of its values), compared by identity: they cannot be freed and
    their ids reused, and an atom cannot change. A change that restores equal members in
    another order reads as a change (it is sent again, never wrongly kept).

    A member whose identity a program may test (a sentinel tuple, ``cell is EMPTY``; a string
    a name holds too) and that other values hold goes as the receiver's own member of its copy
    (:class:`..wire.serialize.KeptMembers`), so something taking a hold of one is no change."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.members: tuple | None = None  # until protect: written

    def protect(self) -> None:
        obj = self.obj
        self.members = tuple(list(part) for part in _parts(obj)) if type(obj) not in _NESTED \
            else ()

    def written(self) -> bool:
        obj = self.obj
        if obj is None or self.members is None:
            return True
        try:
            return any(len(now) != len(then) or not all(map(operator.is_, now, then))
                       for now, then in zip(_parts(obj), self.members))
        except RuntimeError:  # changed size while scanned (a thread of a cell): changed
            return True

    def __call__(self) -> Any:
        """The container (as a weak reference to an array gives the array)."""
        return self.obj

    def alone(self) -> bool:
        """Whether nothing but this holds the container any more."""
        return self.obj is not None and sys.getrefcount(self.obj) <= 2  # (ours, the argument's)

    def close(self) -> None:
        self.obj, self.members = None, None


def _unmoved(members: Members) -> Callable[[], bool]:
    return lambda: not members.written()


def _found_unmoved() -> bool:  # a container found unwritten after the run
    return True


def _parts(obj: Any) -> tuple:
    """What a container's members are: a dict's keys and its values, another's members."""
    return (obj, obj.values()) if type(obj) is dict else (obj,)


def atoms_only(obj: Any) -> bool:
    """Whether ``obj`` is a list, tuple, set, frozenset or dict (exactly) of at least
    :data:`~..wire.serialize.KEPT_MEMBERS` atoms: numbers (numpy's scalars too), strings,
    bytes, None, and tuples and frozensets of them."""
    if type(obj) not in serialize.KEPT_CONTAINERS or len(obj) < serialize.KEPT_MEMBERS:
        return False
    return all(_atoms(part) for part in _parts(obj))


def _atoms(items: Any) -> bool:
    """Whether every one of ``items`` is an atom: a scalar, or a tuple or frozenset of them."""
    kinds = set(map(type, items))
    if not all(kind in _ATOMS or kind in _NESTED or _numpy_scalar(kind) for kind in kinds):
        return False
    if not kinds & _NESTED:
        return True
    inner = itertools.chain.from_iterable(items if kinds <= _NESTED else (
        item for item in items if type(item) in _NESTED))
    return all(kind in _ATOMS or _numpy_scalar(kind) for kind in set(map(type, inner)))


#: Per class: whether it is an immutable numpy scalar (``np.float64``, ``np.int32``, ...).
_NUMPY_SCALARS: dict[type, bool] = {}


def _numpy_scalar(kind: type) -> bool:
    found = _NUMPY_SCALARS.get(kind)
    if found is None:
        numpy = sys.modules.get("numpy")
        found = numpy is not None and issubclass(kind, (
            numpy.number, numpy.bool_, numpy.datetime64, numpy.timedelta64))
        _NUMPY_SCALARS[kind] = found
    return found


def watch_of(obj: Any) -> "pages.Span | Members | None":
    """What will tell whether ``obj``, a big value to keep, changed (not yet watching: call its
    ``protect``): its memory's span for an array, :class:`Members` for a container (the
    caller checked it holds atoms only); None when it cannot be watched here."""
    if type(obj) in serialize.KEPT_CONTAINERS:
        return Members(obj)
    tracker = pages.tracker()
    memory = memory_of(obj) if tracker is not None else None
    return tracker.span(*memory) if memory is not None else None


def size_of(obj: Any) -> int:
    """The bytes of a big value, for the cap on what is kept: an array's, or a container's
    estimated from its first member."""
    memory = memory_of(obj)
    if memory is not None:
        return memory[1]
    first = sum(sys.getsizeof(next(iter(members), None)) for members in _parts(obj))
    return sys.getsizeof(obj) + len(obj) * first


def memory_of(obj: Any) -> tuple[int, int] | None:
    """``(address, nbytes)`` of an object's one contiguous buffer (a numpy array's), else None."""
    interface = getattr(type(obj), "__array_interface__", None)
    if interface is None or getattr(obj, "dtype", None) is None or obj.dtype.hasobject:
        return None
    flags = obj.flags
    if not (flags.c_contiguous or flags.f_contiguous):
        return None
    return obj.ctypes.data, obj.nbytes


def whole_array(obj: Any) -> tuple[int, int] | None:
    """:func:`memory_of` a plain numpy array that is all of its memory (not a slice of a bigger
    one, which keeping would hold whole), else None."""
    if type(obj).__name__ != "ndarray" or type(obj).__module__ != "numpy":
        return None
    memory = memory_of(obj)
    root = obj.base
    while getattr(root, "base", None) is not None and type(root) is type(obj):
        root = root.base
    if memory is None or (type(root) is type(obj) and root.nbytes > obj.nbytes):
        return None
    return memory


@dataclass
class RunKeeper:
    """What one run does with kept uploads, given to :func:`..wire.serialize.keeping`."""

    keeper: "Keeper"
    client: str
    kept: list[str] = field(default_factory=list)  # tokens kept by this run
    lost: list[str] = field(default_factory=list)  # tokens asked for but not held
    # this run's uploads, kept or not: another reference in the same run resolves to them
    received: dict[str, Any] = field(default_factory=dict)
    # kept copies the run changed that go back whole (token → name): equal again once the
    # notebook takes the values, so kept on both sides (see :meth:`resync`)
    resynced: dict[str, str] = field(default_factory=dict)
    # arrays of the reply kept here for the client (tokens): the ones it does not take, it
    # releases (:meth:`offering`)
    offered: list[str] = field(default_factory=list)

    def keep(self, token: str, obj: Any) -> None:
        self.received[token] = obj
        if self.keeper.keep(self.client, token, obj):
            self.kept.append(token)

    def span_of(self, obj: Any) -> pages.Span | None:
        """The write-tracked memory of ``obj`` if it is a copy this run uses that the engine
        keeps (unchanged when the run started), else None."""
        held = self.keeper.clients.get(self.client)
        if not held:
            return None
        for token, value in self.received.items():
            if value is obj and token in held:
                return held[token].span
        return None

    def resync(self, going: dict[str, Any]) -> None:
        """The kept copies the run wrote that go back whole as changed (``going``: name → the
        object, its values in the reply): watched again from now, so that the next run that
        reads them sends a reference, not the notebook's array again. The notebook's array
        takes exactly these bytes (:meth:`..cells.uploads.Uploads.resynced`); if it cannot,
        it releases the copy."""
        held = self.keeper.clients.get(self.client)
        if not held:
            return
        for name, obj in going.items():
            for token, value in self.received.items():
                if value is obj and token in held and held[token].span.written():
                    held[token].span.protect()
                    self.resynced[token] = name

    def holding(self, token: str) -> Any:
        """The kept container this run was sent under ``token`` (or uploaded), else None: a
        member of it that a value refers to is found in it
        (:class:`..wire.serialize.KeptMembers`)."""
        value = self.received.get(token)
        return value if type(value) in serialize.KEPT_CONTAINERS else None

    def containers(self, unwritten: Sequence = ()) -> list[tuple[str, Any, Callable[[], bool]]]:
        """The kept containers this run was sent, for its reply's
        :class:`~..wire.serialize.KeptMembers`: ``(token, container, unchanged)``. Those of
        ``unwritten`` were found unchanged after the run (:func:`..core.unwritten`): not
        asked again (a pass over their members)."""
        held = self.keeper.clients.get(self.client) or {}
        same = {id(obj) for obj in unwritten}
        return [(token, value,
                 _found_unmoved if id(value) in same else _unmoved(held[token].span))
                for token, value in self.received.items()
                if type(value) in serialize.KEPT_CONTAINERS and token in held
                and held[token].span() is value]

    def offering(self, limit: int | None) -> Callable[[Any], Any]:
        """The substitute (:func:`..wire.serialize.substituting`) for the values of this run's
        reply: a big plain array, or a big container of atoms (:func:`atoms_only`), that goes by
        value is kept here under a new token and goes as
        :func:`..wire.serialize.kept_download`. ``limit``: the most bytes a value may have to
        go (``small``'s); a bigger array stays here as a proxy, so it is not offered, nor is a
        container whose estimated size (:func:`size_of`) is bigger (one the estimate missed is
        offered, stays here, and the client releases it). One held here already (a kept upload,
        a proxy's object) goes as usual."""
        def offer(obj: Any) -> Any:
            try:
                return offered(obj)
            except Exception:  # never fail a reply for this: the value goes as usual
                log.debug("kept: not offered", exc_info=True)
                return NotImplemented

        def offered(obj: Any) -> Any:
            if type(obj) in serialize.KEPT_CONTAINERS:  # a name's (serialize.Outgoing.dump asks)
                if (limit is not None and size_of(obj) > limit) or not atoms_only(obj):
                    return NotImplemented
                reduced = serialize.container_rebuild(obj)  # pickled inside, as usual
            else:
                memory = whole_array(obj)
                if memory is None or memory[1] < KEEP_BYTES or (limit is not None
                                                                and memory[1] > limit):
                    return NotImplemented
                reduced = obj.__reduce_ex__(serialize.PROTOCOL)  # (rebuild, args[, state])
                if not (isinstance(reduced, tuple) and 2 <= len(reduced) <= 3):
                    return NotImplemented
            token = secrets.token_hex(16)
            if not self.keeper.keep(self.client, token, obj):
                return NotImplemented
            self.offered.append(token)
            return serialize.kept_download, (token, *reduced)
        return offer

    def get(self, token: str) -> Any:
        if token in self.received:
            return self.received[token]
        try:
            self.received[token] = self.keeper.get(self.client, token)
        except KeptCopyLost:
            self.lost.append(token)
            raise
        return self.received[token]

    def add_to(self, reply: dict) -> None:
        """Put :meth:`report` into a run's reply as ``uploads``, unless there is nothing to say."""
        report = self.report()
        if any(report.values()):
            reply["uploads"] = report

    def report(self) -> dict:
        """For the run's reply: ``kept`` (tokens now held), ``lost``, ``resynced`` (token →
        name: see :meth:`resync`) and ``offered`` (:meth:`offering`); ``dropped`` stays empty
        (a copy the run changed otherwise is refused when a run next asks for it:
        :meth:`Keeper.get`)."""
        return {"kept": list(self.kept), "dropped": [], "lost": self.lost,
                "resynced": dict(self.resynced), "offered": list(self.offered)}


class Keeper:
    """The engine's kept uploads: client → token → :class:`Kept`; the values live in the store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.clients: dict[str, dict[str, Kept]] = {}

    def run(self, client: str) -> RunKeeper:
        """The keeper of one run of ``client``."""
        return RunKeeper(self, client)

    def keep(self, client: str, token: str, obj: Any) -> bool:
        """Keep ``obj`` for ``client`` under ``token``; False when it cannot be watched here.
        A container is kept as the sender found it: of atoms only (:func:`atoms_only`)."""
        span = watch_of(obj)
        if span is None:
            return False
        if not self.store.add_as(token, obj, client):
            span.close()
            return False
        span.protect()
        self.forget(client, [token])  # a token kept twice: the newer copy
        self.clients.setdefault(client, {})[token] = Kept(span, size_of(obj))
        return True

    def get(self, client: str, token: str) -> Any:
        """The kept value, unchanged since it came; :class:`KeptCopyLost` otherwise."""
        kept = self.clients.get(client, {}).get(token)
        if kept is None or kept.span.written():
            self.drop(client, token)
            raise KeptCopyLost(token)
        try:
            return self.store.get(token, client)
        except KeyError:
            self.forget(client, [token])
            raise KeptCopyLost(token) from None

    def drop(self, client: str, token: str) -> None:
        """Drop one kept copy (the store keeps the value while proxies still hold it)."""
        if token in self.clients.get(client, {}):
            self.store.release(token, client)
        self.forget(client, [token])

    def forget(self, client: str, tokens: list[str]) -> None:
        """Stop watching kept copies whose store reference went (or goes) elsewhere."""
        held = self.clients.get(client)
        for token in tokens:
            kept = held.pop(token, None) if held else None
            if kept is not None:
                kept.span.close()

    def release(self, client: str, tokens: list[str]) -> int:
        """The client releases these kept copies (its array died or changed); how many went."""
        held = self.clients.get(client, {})
        mine = [token for token in tokens if token in held]
        for token in mine:
            self.drop(client, token)
        return len(mine)

    def drop_client(self, client: str) -> None:
        """Forget everything kept for ``client`` (its references go with the store's)."""
        for kept in self.clients.pop(client, {}).values():
            kept.span.close()

    def count(self, client: str | None = None) -> tuple[int, int]:
        """How many copies are kept, and their bytes (for ``client``, or for anyone)."""
        groups = [self.clients.get(client, {})] if client is not None else self.clients.values()
        items = [kept for group in groups for kept in group.values()]
        return len(items), sum(kept.nbytes for kept in items)
