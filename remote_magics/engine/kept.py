"""Uploads the engine keeps between runs, so an unchanged big value is sent once.

The client marks a big array it uploads with a token (:func:`..wire.serialize.kept_upload`);
the engine keeps the unpickled value in its object store under that token, for that client
only, and a later run that reads the same unchanged array sends just the token
(:func:`..wire.serialize.keep_reference`). The client decides that its array is unchanged
(``cells/uploads.py``); here the engine makes sure its own copy is unchanged too: a cell that
changes the kept value in place, a thread it started, or another name for it, and the kept copy
is refused when a run next asks for it (the run does not start, and the client sends it again
with its own value in the same cell). It is checked then only, not after every run as well: one
scan of its pages per run that uses it. Without write tracking (:mod:`.pages`) nothing is kept.

The other way too: a big array a run's reply carries by value (a cell made it, under ``all`` or
within ``small``'s limit) is kept here under a new token (:meth:`RunKeeper.offering`), and the
client watches its copy from the moment it is unpickled (:func:`..wire.serialize.kept_download`),
so a later cell that reads it, unchanged on both sides, sends only the token, as for an upload.
The reply lists what it offered; the client releases what it did not take.

A kept copy goes when the client says so (its array died, it changed, a memory cap), when the
client disconnects, and with the engine. Standard library only, besides the wire format.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from ..wire import serialize
from . import pages
from .store import ObjectStore

log = logging.getLogger(__name__)

#: An array smaller than this goes every time, both ways: checking costs more than sending.
KEEP_BYTES = 1 << 20


class KeptCopyLost(LookupError):
    """A run refers to a kept upload the engine no longer holds (or whose copy changed)."""

    def __init__(self, token: str) -> None:
        super().__init__(f"the engine no longer keeps upload {token} (it changed or was "
                         "released); the client uploads it again")
        self.token = token


@dataclass
class Kept:
    """One kept copy: its size, and the span of memory that tells whether it changed."""

    span: pages.Span
    nbytes: int


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

    def offering(self, limit: int | None) -> Callable[[Any], Any]:
        """The substitute (:func:`..wire.serialize.substituting`) for the values of this run's
        reply: a big plain array that goes by value is kept here under a new token and goes as
        :func:`..wire.serialize.kept_download`. ``limit``: the most bytes a value may have to
        go (``small``'s); a bigger array stays here as a proxy, so it is not offered. One held
        here already (a kept upload, a proxy's object) goes as usual."""
        def offer(obj: Any) -> Any:
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
        """Keep ``obj`` for ``client`` under ``token``; False when it cannot be watched here."""
        tracker = pages.tracker()
        memory = memory_of(obj) if tracker is not None else None
        span = tracker.span(*memory) if memory is not None else None
        if span is None:
            return False
        if not self.store.add_as(token, obj, client):
            span.close()
            return False
        span.protect()
        self.forget(client, [token])  # a token kept twice: the newer copy
        self.clients.setdefault(client, {})[token] = Kept(span, memory[1])
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
