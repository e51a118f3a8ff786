"""Whether a range of this process's memory was written since a moment: Linux write tracking.

Used on both sides to keep a big array's bytes from travelling twice: the client asks whether a
local array changed since it was uploaded, the engine whether a kept copy changed since it came.
A userfaultfd in asynchronous write-protect mode (Linux 6.7+: ``UFFD_FEATURE_WP_ASYNC``) marks
the range's pages protected; a later write is let through by the kernel at once, with no signal
to us, and only clears the page's mark; the ``PAGEMAP_SCAN`` ioctl then finds any written page
of a 1 GB range in about 15 µs. Writes by the kernel (``readinto``) and by another name for the
same memory (a view) clear the mark too. Unlike soft-dirty bits (``/proc/self/clear_refs``),
protecting one range leaves every other range's record alone, so one tracker serves all.

Where this is missing (another OS, an older kernel, a sandbox that forbids userfaultfd, memory
that is not private and anonymous, a forked child), :func:`tracker` or :meth:`Tracker.span` say
so with None, and the caller must assume the memory changed. Standard library only (ctypes).
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import fcntl
import logging
import os
import platform
import sys
import threading
import weakref
from typing import Iterator

from ..wire import shared

log = logging.getLogger(__name__)

_SYS_USERFAULTFD = {"x86_64": 323, "aarch64": 282}.get(platform.machine())
_UFFD_USER_MODE_ONLY = 1  # what an unprivileged process may ask for (vm.unprivileged_userfaultfd)
_UFFD_API = 0xAA
_FEATURE_WP_UNPOPULATED = 1 << 13  # pages not yet touched count as protected too
_FEATURE_WP_ASYNC = 1 << 15
_REGISTER_MODE_WP = 1 << 1
_WRITEPROTECT_MODE_WP = 1 << 0
_PAGE_IS_WRITTEN = 1 << 1


def _iowr(kind: int, number: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (kind << 8) | number


class _Api(ctypes.Structure):
    _fields_ = [("api", ctypes.c_uint64), ("features", ctypes.c_uint64),
                ("ioctls", ctypes.c_uint64)]


class _Range(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Register(ctypes.Structure):
    _fields_ = [("range", _Range), ("mode", ctypes.c_uint64), ("ioctls", ctypes.c_uint64)]


class _WriteProtect(ctypes.Structure):
    _fields_ = [("range", _Range), ("mode", ctypes.c_uint64)]


class _Region(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64),
                ("categories", ctypes.c_uint64)]


class _Scan(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "size", "flags", "start", "end", "walk_end", "vec", "vec_len", "max_pages",
        "category_inverted", "category_mask", "category_anyof_mask", "return_mask")]


_UFFDIO_API = _iowr(_UFFD_API, 0x3F, ctypes.sizeof(_Api))
_UFFDIO_REGISTER = _iowr(_UFFD_API, 0x00, ctypes.sizeof(_Register))
_UFFDIO_UNREGISTER = (2 << 30) | (ctypes.sizeof(_Range) << 16) | (_UFFD_API << 8) | 0x01
_UFFDIO_WRITEPROTECT = _iowr(_UFFD_API, 0x06, ctypes.sizeof(_WriteProtect))
_PAGEMAP_SCAN = _iowr(ord("f"), 16, ctypes.sizeof(_Scan))


class Span:
    """A watched range of memory: :meth:`protect` starts a period, :meth:`written` asks about it.

    The whole pages inside the range are write-tracked; the bytes of the range on a page it
    shares with other memory at either end (malloc's heap puts neighbours there, which write
    all the time) are compared with a copy taken at :meth:`protect` instead, so a neighbour's
    write is not taken for a change. Made by :meth:`Tracker.span`; :meth:`close` when the
    memory's owner goes.
    """

    def __init__(self, tracker: "Tracker", address: int, nbytes: int, start: int,
                 end: int) -> None:
        self.tracker = tracker
        self.start, self.end = start, end  # the whole pages, tracked
        # (address, length) of the bytes on the shared pages before and after them
        self.edges = [(address, start - address), (end, address + nbytes - end)] \
            if start < end else [(address, nbytes)]
        self.copies: list[bytes] = []
        self.dirty = True  # written, as far as we know, until protected

    def protect(self) -> None:
        """From now on, any write to the range makes :meth:`written` true."""
        self.tracker.protect(self)
        self.copies = [ctypes.string_at(where, size) for where, size in self.edges]

    def written(self) -> bool:
        """Whether any byte of the range may have been written since :meth:`protect`."""
        return self.dirty or (self.start < self.end and self.tracker.scan(self.start, self.end)) \
            or self.copies != [ctypes.string_at(where, size) for where, size in self.edges]

    def close(self) -> None:
        """Stop watching (the memory is about to go, or is no longer of interest)."""
        self.tracker.forget(self)


class Tracker:
    """The process's one userfaultfd in async write-protect mode, and the spans it watches."""

    def __init__(self, uffd: int, pagemap: int) -> None:
        self.uffd, self.pagemap = uffd, pagemap
        self.pid = os.getpid()
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.spans: weakref.WeakSet[Span] = weakref.WeakSet()
        self.lock = threading.Lock()
        # spans closed while the lock was taken: a closing span's owner may be an array that
        # dies inside our own locked code (a garbage collection there runs its weakref callback)
        self.closing: collections.deque[Span] = collections.deque()

    def span(self, address: int, nbytes: int) -> Span | None:
        """A span over the pages holding ``[address, address + nbytes)``; None when the kernel
        will not watch that memory (it is not private anonymous memory, or another owner)."""
        if os.getpid() != self.pid or nbytes <= 0:
            return None  # a forked child does not inherit the registration
        if not private_anonymous(address // self.page * self.page, address + nbytes):
            return None  # shared memory changes through other mappings without a trace here
        start = -(-address // self.page) * self.page  # the whole pages inside
        end = max(start, (address + nbytes) // self.page * self.page)
        if start < end:
            try:
                fcntl.ioctl(self.uffd, _UFFDIO_REGISTER,
                            _Register(_Range(start, end - start), _REGISTER_MODE_WP, 0), True)
            except OSError as err:
                log.debug("pages: %#x+%d cannot be watched: %s", start, end - start, err)
                return None
        span = Span(self, address, nbytes, start, end)
        with self.locked():
            self.spans.add(span)
        return span

    def protect(self, span: Span) -> None:
        """Start a new period for ``span``. Its pages' marks are shared with every span that
        overlaps it, so a write one of those has not seen yet is recorded on it first."""
        if span.start == span.end:
            span.dirty = False  # its bytes are all compared with a copy
            return
        with self.locked():
            for other in list(self.spans):
                if other is span or other.dirty or other.end <= span.start \
                        or span.end <= other.start:
                    continue
                if self.scan(max(span.start, other.start), min(span.end, other.end)):
                    other.dirty = True
            fcntl.ioctl(self.uffd, _UFFDIO_WRITEPROTECT,
                        _WriteProtect(_Range(span.start, span.end - span.start),
                                      _WRITEPROTECT_MODE_WP), True)
            span.dirty = False

    def scan(self, start: int, end: int) -> bool:
        """Whether any page of ``[start, end)`` was written since it was last protected."""
        found = _Region()
        arg = _Scan(ctypes.sizeof(_Scan), 0, start, end, 0, ctypes.addressof(found), 1, 1, 0,
                    _PAGE_IS_WRITTEN, 0, _PAGE_IS_WRITTEN)
        try:
            return fcntl.ioctl(self.pagemap, _PAGEMAP_SCAN, arg, True) > 0
        except OSError:  # the memory went (unmapped): as good as changed
            return True

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock; before letting it go, finish the spans closed meanwhile."""
        with self.lock:
            try:
                yield
            finally:
                self._close_pending()

    def forget(self, span: Span) -> None:
        """Stop watching ``span``; its pages are unregistered unless another span holds them.

        Never waits for the lock: a span closed while it is held (by this thread, from a
        weakref callback inside our own locked code, or by another) is finished by the holder
        before it lets go, else by the next one to take it."""
        self.closing.append(span)
        if self.lock.acquire(blocking=False):
            try:
                self._close_pending()
            finally:
                self.lock.release()

    def _close_pending(self) -> None:
        while self.closing:
            span = self.closing.popleft()
            self.spans.discard(span)
            if span.start == span.end or any(o.start < span.end and span.start < o.end
                                             for o in self.spans):
                continue
            try:
                fcntl.ioctl(self.uffd, _UFFDIO_UNREGISTER,
                            _Range(span.start, span.end - span.start), True)
            except OSError:  # already unmapped: nothing is registered any more
                pass


#: How a private mapping of one of our sealed shared segments shows in ``/proc/self/maps``:
#: sealed against writes before it was mapped, so only this process can change its pages.
_SEGMENT = f"/memfd:{shared.SEGMENT_NAME} (deleted)".encode()


def private_anonymous(start: int, end: int) -> bool:
    """Whether every byte of ``[start, end)`` is memory only this process can change: private
    anonymous memory (malloc's heap or its own mappings), or a private mapping of a sealed
    shared segment that carried a big frame here, from ``/proc/self/maps``."""
    covered = start
    try:
        with open("/proc/self/maps", "rb") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                low, high = (int(x, 16) for x in fields[0].split(b"-"))
                if high <= covered or low >= end:
                    continue
                path = fields[5].strip() if len(fields) > 5 else b""
                anonymous = fields[4] == b"0" and path in (b"", b"[heap]")
                if low > covered or fields[1][3:4] != b"p" \
                        or not (anonymous or path == _SEGMENT):
                    return False
                covered = high
                if covered >= end:
                    return True
    except (OSError, ValueError, IndexError):
        pass
    return False


_tracker: Tracker | None = None
_tried = False
_tried_lock = threading.Lock()


def tracker() -> Tracker | None:
    """This process's tracker, made at the first call; None when this system cannot track."""
    global _tracker, _tried
    with _tried_lock:
        if not _tried:
            _tried = True
            _tracker = _open()
    if _tracker is not None and _tracker.pid != os.getpid():
        return None
    return _tracker


def _open() -> Tracker | None:
    if not sys.platform.startswith("linux") or _SYS_USERFAULTFD is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    uffd = libc.syscall(_SYS_USERFAULTFD, os.O_CLOEXEC | os.O_NONBLOCK | _UFFD_USER_MODE_ONLY)
    if uffd < 0:
        log.debug("pages: no userfaultfd: %s", os.strerror(ctypes.get_errno()))
        return None
    try:
        fcntl.ioctl(uffd, _UFFDIO_API,
                    _Api(_UFFD_API, _FEATURE_WP_ASYNC | _FEATURE_WP_UNPOPULATED, 0), True)
        pagemap = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:  # a kernel before 6.7 lacks async write-protect
        log.debug("pages: userfaultfd without async write-protect: %s", err)
        os.close(uffd)
        return None
    tracker = Tracker(uffd, pagemap)
    # PAGEMAP_SCAN came with the feature; an empty scan tells whether this kernel has it
    try:
        fcntl.ioctl(pagemap, _PAGEMAP_SCAN, _Scan(ctypes.sizeof(_Scan), 0, 0, 0, 0, 0, 0, 0, 0,
                                                  _PAGE_IS_WRITTEN, 0, _PAGE_IS_WRITTEN), True)
    except OSError as err:
        log.debug("pages: no PAGEMAP_SCAN: %s", err)
        os.close(uffd)
        os.close(pagemap)
        return None
    return tracker
