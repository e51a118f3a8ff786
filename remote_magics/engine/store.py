"""The engine's object store: the values that stay remote for proxies, and their descriptors.

Runs inside the remote kernel, shipped with :mod:`.core` as source to kernels that lack
remote_magics: standard library only.
"""
from __future__ import annotations

import secrets
import sys
from typing import Any

from ..wire import protocol


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


def describe(obj: Any, oid: str) -> dict:
    """A proxy's descriptor: type, length, shape, dtype and size, as far as cheaply known."""
    kind = type(obj)
    desc: dict[str, Any] = dict.fromkeys(protocol.DESCRIPTOR_FIELDS)
    desc.update(id=oid, type=f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins."))
    try:
        desc["len"] = len(obj) if hasattr(kind, "__len__") else None
    except Exception:  # a __len__ that fails is no reason to fail the run
        desc["len"] = None
    shape = getattr(obj, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        desc["shape"] = list(shape)
        desc["dtype"] = str(getattr(obj, "dtype", "")) or None
    desc["size"], desc["size_exact"] = _size(obj)
    return desc


def _size(obj: Any) -> tuple[int | None, bool]:
    """Memory size of ``obj`` in bytes, exact for buffers, estimated from a sample for containers."""
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes, True
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return memoryview(obj).nbytes, True
    try:
        size = sys.getsizeof(obj)
        if isinstance(obj, (list, tuple, set, frozenset, dict)) and obj:
            items = list(obj.items()) if isinstance(obj, dict) else obj
            sample = [items[i] for i in range(0, len(items), max(1, len(items) // 100))]
            each = sum(_deep_size(item) for item in sample) / len(sample)
            return int(size + each * len(obj)), False
        return size, True
    except Exception:  # objects whose size cannot be taken get none
        return None, False


def _deep_size(item: Any) -> int:
    if isinstance(item, tuple):
        return sys.getsizeof(item) + sum(sys.getsizeof(part) for part in item)
    return sys.getsizeof(item)
