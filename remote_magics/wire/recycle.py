"""Big receive buffers used again: memory a received frame lived in is kept a few seconds after
the last object using it dies, and the next frame of about its size goes into it.

Fresh memory is what a big transfer between two processes of one host costs most: the kernel
zeroes each new page and maps it at its first touch, and on a VM that reports free pages to its
host (virtio-balloon) the host maps them again too. Measured on this project's 2-core VM,
copying 1 GB with two threads ran at 3,900-4,000 MB/s into fresh memory and at 13,200-13,400
into memory touched before (issue 15). A user who re-runs a cell with a changed array, or reads
a result again, moves the same sizes again and again: the second and later transfers copy into
pages that are already there.

New memory is not on transparent huge pages: on this project's VMs faulting in 2 MB pages ran
at 0.4 to 6 GB/s from one transfer to the next, and a 1 GB data-port transfer at 360-1,800 MB/s;
4 kB pages faulted in ahead (:class:`.streaming.Prefault`) ran at 1,450-1,750, steadily.

:func:`take` gives a writable byte view of exactly the size asked; a frame's array keeps the
view, and the memory comes back here only when nothing refers to it any more (the view's
exporter is a small object whose finalizer hands the memory back, never earlier). Memory kept
unused goes back to the system after :data:`KEEP_SECONDS`, and there is never more of it than
:func:`cap` (an eighth of the machine's memory, 4 GiB at most). It is not marked ``MADV_FREE``:
the kernel then faults every page again at its next write, and the copy ran at 8,400 MB/s
instead of 13,300. ``REMOTE_MAGICS_RECYCLE=0`` turns it off.

Standard library only: shipped as source with the engine to kernels that lack remote_magics.
"""
from __future__ import annotations

import collections
import ctypes
import mmap
import os
import sys
import threading
import time
from typing import Any

#: Smaller buffers come fresh: the C allocator reuses small memory already.
MIN_BYTES = 32 << 20
#: Seconds unused memory is kept before it goes back to the system.
KEEP_SECONDS = 10.0
#: Bytes kept unused at most, whatever the machine's memory (see :func:`cap`).
CAP_BYTES = 4 << 30
#: A kept buffer serves a frame up to this fraction smaller than itself (its tail unused).
SLACK = 1 / 8
#: Environment variable: "0" turns recycling off in this process.
ENV = "REMOTE_MAGICS_RECYCLE"

#: Bytes handed out by :func:`take`: "fresh" from the system, "reused" from memory kept here.
stats: collections.Counter = collections.Counter()


def enabled() -> bool:
    return os.environ.get(ENV, "").strip() != "0" and hasattr(mmap, "MAP_PRIVATE")


def cap() -> int:
    """Bytes kept unused at most: an eighth of the machine's memory, :data:`CAP_BYTES` at most
    (the least recently returned go first)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        memory = 0
    return min(CAP_BYTES, memory // 8) if memory > 0 else CAP_BYTES


class _Pool:
    """The kept memory of this process: mappings nothing uses, newest last."""

    def __init__(self) -> None:
        self.free: list[tuple[mmap.mmap, float]] = []  # (mapping, time.monotonic() returned)
        self.lock = threading.RLock()  # a finalizer may run in any thread, inside a take too
        self.wake = threading.Condition(self.lock)
        self.reaper: threading.Thread | None = None

    def take(self, nbytes: int) -> tuple[mmap.mmap, bool]:
        """A mapping of at least ``nbytes``, and whether it was kept here (already faulted in)."""
        with self.lock:
            best = None
            for i, (mapping, _) in enumerate(self.free):
                size = len(mapping)
                if nbytes <= size <= nbytes + nbytes * SLACK and (
                        best is None or size < len(self.free[best][0])):
                    best = i
            if best is not None:
                return self.free.pop(best)[0], True
        return fresh(nbytes), False

    def give_back(self, mapping: mmap.mmap) -> None:
        """Keep ``mapping`` (nothing refers to its bytes any more) for a later :meth:`take`."""
        if not enabled() or sys.is_finalizing():
            # turned off since it was taken, or the interpreter is ending (a reaper started now
            # never runs, and its start would wait for it for ever): unmapped with its last
            # reference
            return
        limit = cap()
        with self.lock:
            self.free.append((mapping, time.monotonic()))
            total = sum(len(m) for m, _ in self.free)
            while self.free and total > limit:
                total -= len(self.free.pop(0)[0])  # unmapped when the last reference goes
            if self.free and (self.reaper is None or not self.reaper.is_alive()):
                self.reaper = threading.Thread(target=self._reap, daemon=True,
                                               name="remote_magics-recycle")
                self.reaper.start()
            self.wake.notify()

    def _reap(self) -> None:
        """Give kept memory back to the system once it is :data:`KEEP_SECONDS` old; ends when
        nothing is kept."""
        while True:
            with self.lock:
                now = time.monotonic()
                expired = [m for m, at in self.free if now - at >= KEEP_SECONDS]
                self.free = [(m, at) for m, at in self.free if now - at < KEEP_SECONDS]
                if not self.free and not expired:
                    self.reaper = None
                    return
                if not expired:
                    oldest = min(at for _, at in self.free)
                    self.wake.wait(max(0.05, oldest + KEEP_SECONDS - now))
            del expired  # unmapped here, outside the lock (the unmap lets go of the GIL)

    def clear(self) -> None:
        with self.lock:
            self.free = []
            self.wake.notify()

    def kept(self) -> int:
        """Bytes kept unused now."""
        with self.lock:
            return sum(len(m) for m, _ in self.free)


_pool = _Pool()
_lease_types: dict[int, type] = {}


def _lease_type(size: int) -> type:
    """A ctypes byte array of ``size`` whose finalizer gives its mapping back to the pool."""
    found = _lease_types.get(size)
    if found is None:
        def __del__(self: Any) -> None:
            mapping = self.__dict__.get("mapping")
            if mapping is not None:
                try:
                    _pool.give_back(mapping)
                except Exception:  # interpreter shutdown: the mapping just goes
                    pass

        found = type("RecycledBuffer", (ctypes.c_ubyte * size,), {"__del__": __del__})
        if len(_lease_types) > 16:
            _lease_types.clear()
        _lease_types[size] = found
    return found


def huge(mapping: mmap.mmap) -> mmap.mmap:
    """``mapping``, asked to be backed by huge pages where the kernel does so on request (as
    numpy asks for its big arrays): 512 times fewer first-touch faults, and a page-table walk
    512 times shorter for each look at which pages were written (:mod:`..engine.pages`)."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None and len(mapping) >= HUGE_BYTES:
        try:
            mapping.madvise(advice)
        except OSError:  # a kernel without transparent huge pages: small pages, as before
            pass
    return mapping


#: Mappings at least this big are asked for huge pages (2 MiB each on x86-64).
HUGE_BYTES = 4 << 20


def fresh(nbytes: int) -> mmap.mmap:
    """New private memory of ``nbytes``, in huge pages when big (:func:`huge`), kept or not."""
    flags = {"flags": mmap.MAP_PRIVATE} if hasattr(mmap, "MAP_PRIVATE") else {}
    return huge(mmap.mmap(-1, nbytes, **flags))


def take(nbytes: int) -> tuple[memoryview, bool]:
    """A writable byte view of ``nbytes`` of private memory, and whether it was kept here (its
    pages are in already; its old bytes too: the caller writes every byte before use). Kept
    memory of about that size when there is some, else new memory. Raises ``OSError`` or
    ``ValueError`` when there is none to map."""
    if nbytes < MIN_BYTES or not enabled():
        return memoryview(fresh(nbytes)), False
    mapping, reused = _pool.take(nbytes)
    stats["reused" if reused else "fresh"] += nbytes
    lease = _lease_type(len(mapping)).from_buffer(mapping)
    lease.mapping = mapping
    return memoryview(lease).cast("B")[:nbytes], reused


def kept() -> int:
    """Bytes of memory kept unused in this process now."""
    return _pool.kept()


def release_all() -> None:
    """Give every kept buffer back to the system now (memory in use is not touched)."""
    _pool.clear()


if hasattr(os, "register_at_fork"):  # a forked child starts with nothing kept and no reaper
    os.register_at_fork(after_in_child=lambda: _pool.__init__())
