"""Same-host transfers: a big frame copied out of the sender's memory, or in a sealed segment.

Between two processes of one user on one host, a big frame need not cross a socket at all.
Two ways, both detected, never assumed: each side offers a probe (:func:`probe`), a random nonce
in a sealed ``memfd`` and at an address in its memory, which the other must read back.

- **Pull** (where the peer read our nonce out of our memory, :func:`pull_ok`): the sender lends
  the buffer it already has (:meth:`Shared.lend`; no copy on its side) and the message names
  its address; the receiver copies it with ``process_vm_readv`` into fresh private memory, its
  threads faulting in and filling pages side by side (:func:`pull`), then checks the lend's
  lease, which the sender ends before it lets the buffer go, and says done through a pipe the
  message names. A sender waits for that (:meth:`Lending.wait`, bounded) before it goes on.
- **Sealed segment** (where pulls are not agreed: a seccomp filter, ``PULL_ENV=0``): the sender
  writes the frame once into a sealed ``memfd`` (:meth:`Shared.put`); the receiver opens it
  through ``/proc/<pid>/fd/<fd>``, checks its seals and size, and maps it in place
  (:func:`open_shared`), so its bytes land nowhere else.

Anything that fails (no memfd, not enough memory, a peer in another container) falls back to
the chunks of :mod:`.streaming`. The sender gives a placer (:class:`Lending` over its
:class:`Shared`) to :func:`.streaming.send`; the receiver calls :func:`attach_shared` on a
verified message before it claims the streamed frames, and tells the sender which segments it
took (:func:`shared_fds`), so the sender closes them (:meth:`Shared.close`); segments nobody
claimed expire (:data:`SHARED_KEEP`).

Standard library only: shipped as source with the engine to kernels that lack remote_magics.
"""
from __future__ import annotations

import ctypes
import hmac
import itertools
import logging
import mmap
import os
import secrets
import select
import stat
import threading
import time
from typing import Sequence

from . import recycle
from .streaming import StreamError, populate, stats

log = logging.getLogger(__name__)

#: Environment variable: "0" turns shared memory off for the frames this process sends; a
#: number of bytes is the most one frame may put there (the rest is streamed).
SHARED_ENV = "REMOTE_MAGICS_SHARED_MEMORY"
#: Seconds an engine keeps a segment its client has not said it took (a lost reply's).
SHARED_KEEP = 600.0

try:
    import fcntl

    _SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
except (ImportError, AttributeError):  # not Linux, or a Python without memfd seals
    fcntl = None  # type: ignore[assignment]
    _SEALS = 0
#: Bytes per write into a segment: big enough that a call costs nothing, small enough that an
#: interrupt or a full memory stops it soon.
_WRITE_STEP = 64 << 20

#: Environment variable: "0" turns pulls off in this process (it neither lends its buffers nor
#: copies a peer's): big frames then go in sealed segments; "1" pulls whenever the peer agreed;
#: unset, uploads are pulled and replies only while the host has a core free (:func:`pull_now`).
PULL_ENV = "REMOTE_MAGICS_SAME_HOST_PULL"
#: Seconds a lender waits for its reader at least, and the reading speed it allows for besides
#: (bytes a second), before it takes a buffer back: a reader gone never holds it up for long.
LEND_WAIT = 10.0
LEND_RATE = 50e6
#: Bytes per process_vm_readv call: a reader's threads take turns, chunk by chunk.
_PULL_STEP = 8 << 20
#: A frame below this is pulled by one thread: a thread's start costs more than it saves.
_PULL_SPLIT = 32 << 20
#: Lend references start here, above any fd, so one ``held`` table and one ``shared_taken``
#: list serve segments and lends alike.
_FIRST_REFERENCE = 1 << 32
_references = itertools.count(_FIRST_REFERENCE)


_supported: bool | None = None


def shared_supported() -> bool:
    """Whether this process can make sealed segments and open a peer's (Linux, Python 3.8+).

    Asked on every request (a null cell's too), so found out once: none of it changes.
    """
    global _supported
    if _supported is None:
        _supported = (fcntl is not None and hasattr(os, "memfd_create")
                      and hasattr(os, "MFD_ALLOW_SEALING") and os.path.isdir("/proc/self/fd"))
    return _supported


def _available_memory() -> int:
    """Bytes of memory the kernel says can still be taken without swapping (MemAvailable)."""
    try:
        with open("/proc/meminfo", "rb") as meminfo:
            for line in meminfo:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def shared_room() -> int:
    """The most bytes one frame may put into shared memory now: 0 when it may not at all.

    Half the memory available (a segment must never push the host into swap or the OOM killer;
    the rest of the frame then goes by the network path), or :data:`SHARED_ENV`'s limit.
    """
    if not shared_supported():
        return 0
    room = _available_memory() // 2
    limit = os.environ.get(SHARED_ENV, "").strip()
    if limit:
        try:
            room = min(room, max(int(float(limit)), 0))
        except ValueError:
            log.warning("remote_magics: %s=%r is not a number of bytes; ignored", SHARED_ENV,
                        limit)
    return room


#: The name of our shared segments (``/memfd:remote_magics`` in ``/proc/self/maps``): a receiver
#: maps one privately only after checking its seals, so nobody can change what it maps.
SEGMENT_NAME = "remote_magics"


def _new_segment(view: memoryview) -> int:
    """A sealed memfd holding ``view``'s bytes (the one copy this side makes); raises OSError.

    Written with pwrite, never through a shared writable mapping, so that the write seal can be
    set; once sealed, no process can change, grow or shrink it (the kernel refuses), so the
    bytes the receiver maps are the bytes signed for, with no digest to compute over them.
    """
    fd = os.memfd_create(SEGMENT_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, view.nbytes)  # the size first: no growing of the file at each write
        offset = 0
        while offset < view.nbytes:
            offset += os.pwrite(fd, view[offset:offset + _WRITE_STEP], offset)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Shared:
    """The sealed segments one side has sent and keeps open until the receiver has mapped them,
    and the buffers it has lent until the receiver has copied them.

    Both are held for an ``owner`` (the client's secret on the engine's side) and closed with
    :meth:`close`; a receiver's mapping keeps a segment's bytes after we close ours, and a
    receiver's copy is its own.
    """

    def __init__(self) -> None:
        self.held: dict[int, tuple[str, float]] = {}  # fd → (owner, time.monotonic() made)
        self.lent: dict[int, _Lend] = {}  # reference → a buffer lent (also in ``held``)
        self._lock = threading.Lock()  # an engine's job threads reply too

    def put(self, view: memoryview, owner: str = "") -> int | None:
        """A sealed segment holding ``view``, or None when there is no room (stream it then)."""
        if view.nbytes > shared_room():
            return None
        self.expire()
        try:
            fd = _new_segment(view)
        except OSError as err:  # ENOMEM, ENOSPC in a small container, EPERM under seccomp...
            log.info("remote_magics: shared memory unavailable for %d bytes (%s); streaming",
                     view.nbytes, err)
            return None
        with self._lock:
            self.held[fd] = (owner, time.monotonic())
        stats["shared_sent"] += view.nbytes
        return fd

    def lend(self, view: memoryview, owner: str = "") -> int | None:
        """Lend ``view`` to a peer that copies it out itself (:func:`pull`): no copy here.

        Returns the lend's reference, or None when it cannot be lent (then place it as a
        segment). The buffer is held, and its lease stands, until :meth:`close` (the reader
        said it is done, :meth:`wait`, or the lend expired): a reader checks the lease after
        its copy, so it never uses bytes read from a buffer already taken back.
        """
        if view.nbytes > shared_room() or not pull_supported():
            return None
        self.expire()
        try:
            lend = _Lend(view)
        except (OSError, ValueError, TypeError) as err:  # a full lease table, no pipe left...
            log.info("remote_magics: cannot lend %d bytes (%s); a segment instead",
                     view.nbytes, err)
            return None
        ref = next(_references)
        with self._lock:
            self.held[ref] = (owner, time.monotonic())
            self.lent[ref] = lend
        stats["shared_sent"] += view.nbytes
        stats["shared_lent"] += view.nbytes
        return ref

    def listing(self, placed: list) -> dict:
        """A message's ``shared`` field: this process, ``frames`` (``[index, fd, nbytes]`` per
        segment) and ``lent`` (``[index, reference, nbytes, address, lease, token, done]`` per
        buffer lent: where it is, where its lease is, the lease's token, the fd to say done)."""
        segments, lent = [], []
        with self._lock:
            for index, ref, nbytes in placed:
                lend = self.lent.get(ref)
                if lend is None:
                    segments.append([index, ref, nbytes])
                else:
                    lent.append([index, ref, nbytes, lend.address, lend.lease, lend.token.hex(),
                                 lend.done_write])
        field: dict = {"pid": os.getpid(), "frames": segments}
        if lent:
            field["lent"] = lent
        return field

    def wait(self, refs: Sequence, timeout: float) -> bool:
        """Wait until the reader of each of ``refs`` (lent) says it is done, at most ``timeout``
        seconds; then take them all back (:meth:`close`). True when every reader said so."""
        with self._lock:
            waiting = {self.lent[ref].done_read: self.lent[ref] for ref in refs
                       if ref in self.lent}
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000):
                try:
                    said = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                if waiting[fd].token in said or not said:  # done, or the pipe is gone
                    poller.unregister(fd)
                    del waiting[fd]
        if waiting:
            log.warning("remote_magics: %d lent buffer(s) not read within %.0f s; taken back",
                        len(waiting), timeout)
        self.close(None, refs)
        return not waiting

    def close(self, owner: str | None = None, fds: Sequence | None = None) -> None:
        """Close the segments held for ``owner`` (all owners' with None); only ``fds`` if given.
        A buffer lent is taken back: its lease ends first, so a late reader refuses it."""
        with self._lock:
            closing = [fd for fd, (held_for, _) in self.held.items()
                       if (owner is None or held_for == owner) and (fds is None or fd in fds)]
            lends = []
            for fd in closing:
                del self.held[fd]
                if fd in self.lent:
                    lends.append(self.lent.pop(fd))
        for lend in lends:
            lend.end()
        for fd in closing:
            if fd < _FIRST_REFERENCE:
                os.close(fd)

    def expire(self) -> None:
        """Close segments older than :data:`SHARED_KEEP`: replies a client never took (it went
        away, or stopped waiting), which would otherwise hold their memory for ever."""
        old = time.monotonic() - SHARED_KEEP
        with self._lock:
            expired = [fd for fd, (_, made) in self.held.items() if made < old]
        if expired:
            self.close(None, expired)


def open_shared(pid: int, fd: int, nbytes: int) -> memoryview:
    """Map a peer's sealed segment of ``nbytes`` in place: copy-on-write, so writable here.

    Raises :class:`StreamError` unless it is sealed against writing, growing and shrinking, and
    of that size: an unsealed file could change under us after any check (and a shrunk one would
    crash us with SIGBUS on access).
    """
    try:
        # non-blocking: a FIFO named instead of a segment must not hang us (it is refused below)
        own = os.open(f"/proc/{int(pid)}/fd/{int(fd)}",
                      os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as err:
        raise StreamError(f"shared segment {pid}/{fd} cannot be opened ({err})") from None
    try:
        try:
            seals = fcntl.fcntl(own, fcntl.F_GET_SEALS)
        except OSError:  # not a memfd at all
            seals = 0
        need = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
        if seals & need != need:
            raise StreamError(f"shared segment {pid}/{fd} is not sealed against changes")
        if os.fstat(own).st_size != nbytes or nbytes <= 0:
            raise StreamError(f"shared segment {pid}/{fd} does not hold {nbytes} bytes")
        mapping = mmap.mmap(own, nbytes, flags=mmap.MAP_PRIVATE,
                            prot=mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(own)
    return memoryview(mapping)


def shared_fds(content: dict) -> list[int]:
    """The segments (the sender's fds) and lends a message named, for the receiver to say it
    took them."""
    shared = content.get("shared")
    if not isinstance(shared, dict):
        return []
    return [int(entry[1]) for key in ("frames", "lent") for entry in shared.get(key, ())]


#: ``attach_shared``'s ``lender`` that takes lends from any process: an engine's (a client
#: that holds the key may run code there anyway, so it can read nothing it could not already).
ANY_LENDER = -1


def attach_shared(content: dict, frames: Sequence, lender: int = 0) -> list:
    """A verified message's frames with the shared segments it names mapped in at their places
    (the frames as they are when it names none), and the buffers it lends copied in.

    Lends are taken only from process ``lender`` (the peer whose probe we read; 0: from none,
    :data:`ANY_LENDER`: from any), so a peer cannot make us copy another process's memory.
    Raises :class:`~.streaming.StreamError` for a segment that cannot be mapped as named, or a
    lend that cannot be copied (then the message is dropped, as for a bad chunk).
    """
    shared = content.get("shared")
    frames = list(frames)
    if not shared:
        return frames
    try:
        pid = int(shared["pid"])
        listed = [(int(i), int(fd), int(n)) for i, fd, n in shared["frames"]]
    except (KeyError, TypeError, ValueError):
        raise StreamError("a message whose shared segments are not listed right") from None
    if not shared_supported():
        raise StreamError("a message in shared memory, which this host cannot map")
    try:
        lent = [(int(i), int(ref), int(n), int(address), int(lease), bytes.fromhex(token),
                 int(done)) for i, ref, n, address, lease, token, done in shared.get("lent", ())]
    except (TypeError, ValueError):
        raise StreamError("a message whose lent buffers are not listed right") from None
    if lent and lender not in (pid, ANY_LENDER):
        raise StreamError(f"a message lending buffers of process {pid}, which we never agreed "
                          "to copy from")
    places = [index for index, *_ in listed] + [index for index, *_ in lent]
    for index in places:
        if (not 0 <= index < len(frames) or memoryview(frames[index]).nbytes != 0
                or places.count(index) > 1):
            raise StreamError(f"a message whose shared frame {index} has no place")
    for index, fd, nbytes in listed:
        frames[index] = open_shared(pid, fd, nbytes)
        stats["shared_received"] += nbytes
    for index, ref, nbytes, address, lease, token, done in lent:
        frames[index] = pull(pid, address, nbytes, lease, token, done)
        stats["shared_received"] += nbytes
        stats["shared_pulled"] += nbytes
    return frames


def decline(content: dict, lender: int = 0) -> None:
    """Tell the sender of a verified message we will not read the buffers it lent (a reply
    nobody waits for any more), so it takes them back at once instead of at its timeout.
    Only to process ``lender``, as for :func:`attach_shared`."""
    shared = content.get("shared")
    if not isinstance(shared, dict) or not shared.get("lent"):
        return
    try:
        pid = int(shared["pid"])
        if lender not in (pid, ANY_LENDER):
            return
        for entry in shared["lent"]:
            _say_done(pid, int(entry[6]), bytes.fromhex(entry[5]))
    except (KeyError, TypeError, ValueError, IndexError):
        pass


# --- pulls: the receiver copies a lent buffer out of the sender with process_vm_readv -------
#
# A sealed segment costs the sender a fresh shared-memory page per 4 kB (shmem allocation is
# what bounds it, near 3 GB/s, and one file's pages fill one at a time); a pull costs the
# receiver fresh private pages, which its threads fault in and fill side by side (about 1.5x
# faster on 2 cores). The sender lends the buffer it already has: no copy there at all.


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int),
                ("ndim", ctypes.c_int), ("format", ctypes.c_char_p),
                ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]


_libc_handle = None


def _libc():
    """The C library, with ``process_vm_readv``; None where it has no such call."""
    global _libc_handle
    if _libc_handle is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.process_vm_readv.restype = ctypes.c_ssize_t
            libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong,
                                              ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
            _libc_handle = libc
        except (OSError, AttributeError):
            _libc_handle = False
    return _libc_handle or None


def pull_supported() -> bool:
    """Whether this process may lend its buffers and copy a peer's (Linux, not turned off)."""
    return (shared_supported() and os.environ.get(PULL_ENV, "").strip() != "0"
            and os.environ.get(SHARED_ENV, "").strip() != "0" and _libc() is not None)


def pull_now(receiving: bool) -> bool:
    """Whether a client's next transfer should be pulled (where the peer agreed), not sealed:
    an upload the engine copies from the client's lent buffer (``receiving`` false), or a reply
    the client copies from the engine's (``receiving`` true).

    Measured on 2 cores, 1 GB, median of 5 (issue 15): an upload pulled ran at 4,465 MB/s idle
    and 2,465 with both cores spinning, against 3,095 and 1,962 sealed, so an upload is always
    pulled; a reply pulled ran at 3,252 idle and 2,817 loaded, against 3,251 and 3,287 sealed
    (one writer, and a receiver that touches no page until it is used), so a reply is pulled
    only while no more tasks run than there are cores, this one included (``/proc/loadavg``), so
    one stray task on an idle host does not turn pulls off. :data:`PULL_ENV` overrides both.
    """
    setting = os.environ.get(PULL_ENV, "").strip()
    if setting == "0" or not pull_supported():
        return False
    return setting == "1" or not receiving or running_tasks() <= _cpus()


_cpu_count = 0
_loadavg_fd = -1


def _cpus() -> int:
    """The host's CPUs, found once (glibc reads a file for it each time)."""
    global _cpu_count
    if not _cpu_count:
        _cpu_count = os.cpu_count() or 1
    return _cpu_count


def running_tasks() -> int:
    """Tasks running or ready to run on the host now, this one included (1 when unknown).

    ``/proc/loadavg`` stays open and is read from its start each time (every request asks).
    """
    global _loadavg_fd
    for _ in range(2):  # once more on a descriptor somebody closed under us
        try:
            if _loadavg_fd < 0:
                _loadavg_fd = os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC)
            return int(os.pread(_loadavg_fd, 128, 0).split()[3].split(b"/")[0])
        except OSError:
            _loadavg_fd = -1
        except (ValueError, IndexError):  # not the file it was (closed and its number reused)
            _loadavg_fd = -1
            return 1
    return 1


def _address(view: memoryview) -> int:
    """The address of a contiguous buffer's first byte, read-only ones too (no copy)."""
    buffer = _PyBuffer()
    if ctypes.pythonapi.PyObject_GetBuffer(ctypes.py_object(view), ctypes.byref(buffer), 0):
        raise ValueError("a buffer without an address")
    try:
        return int(buffer.buf or 0)
    finally:
        ctypes.pythonapi.PyBuffer_Release(ctypes.byref(buffer))


def _read(pid: int, address: int, into: int, nbytes: int) -> None:
    """Copy ``nbytes`` at ``address`` in process ``pid`` to ``into`` here; raises OSError."""
    local, remote = _IOVec(into, nbytes), _IOVec(address, nbytes)
    got = _libc().process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if got != nbytes:
        err = ctypes.get_errno() if got < 0 else 0
        raise OSError(err, os.strerror(err) if err else f"{max(got, 0)} of {nbytes} bytes")


_LEASE = 16  # bytes of a lease: the lend's random token while it stands, zeros after
_leases: mmap.mmap | None = None
_leases_address = 0
_free_leases: list[int] = []
_leases_lock = threading.Lock()


def _take_lease() -> int:
    """The address of a free lease slot in this process's lease table (made once, never freed:
    a reader may look at a slot at any time)."""
    global _leases, _leases_address
    with _leases_lock:
        if _leases is None:
            _leases = mmap.mmap(-1, 1 << 16)
            _leases_address = ctypes.addressof(ctypes.c_char.from_buffer(_leases))
            _free_leases.extend(range((1 << 16) - _LEASE, -1, -_LEASE))
        if not _free_leases:
            raise ValueError(f"{(1 << 16) // _LEASE} buffers lent already")
        return _leases_address + _free_leases.pop()


class _Lend:
    """One buffer lent: held (so never freed), its lease, and the pipe its reader says done on."""

    __slots__ = ("view", "address", "lease", "token", "done_read", "done_write")

    def __init__(self, view: memoryview) -> None:
        self.view = view  # holds the exporter's memory until the lend ends
        self.address = _address(view)
        self.done_read, self.done_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            self.lease = _take_lease()
        except ValueError:
            os.close(self.done_read)
            os.close(self.done_write)
            raise
        self.token = secrets.token_bytes(_LEASE)
        ctypes.memmove(self.lease, self.token, _LEASE)

    def end(self) -> None:
        """Take the buffer back: the lease ends before the buffer may go (a reader checks it
        after copying), then the pipe closes and the slot is free again."""
        ctypes.memset(self.lease, 0, _LEASE)
        os.close(self.done_read)
        os.close(self.done_write)
        with _leases_lock:
            _free_leases.append(self.lease - _leases_address)
        self.view = None


def _say_done(pid: int, fd: int, token: bytes) -> None:
    """Write ``token`` into the sender's done pipe (``/proc/<pid>/fd/<fd>``), if it is one."""
    try:
        done = os.open(f"/proc/{int(pid)}/fd/{int(fd)}",
                       os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return  # the lend is over already: nothing waits
    try:
        if stat.S_ISFIFO(os.fstat(done).st_mode):  # never write into another kind of file
            os.write(done, token)
    except OSError:
        pass
    finally:
        os.close(done)


def pull(pid: int, address: int, nbytes: int, lease: int, token: bytes, done: int) -> memoryview:
    """Copy a buffer lent by process ``pid`` into private memory here (:func:`.recycle.take`);
    writable.

    Threads fault in their pages and copy chunk by chunk side by side. After the copy, the
    lend's lease must still hold ``token`` (the sender ends it before it lets the buffer go),
    else the bytes may come from memory already reused, and :class:`~.streaming.StreamError`
    is raised; so it is for a buffer that cannot be read whole. Then the sender is told
    (its pipe ``done``) that it may take the buffer back.
    """
    if nbytes <= 0 or len(token) != _LEASE or _libc() is None:
        raise StreamError(f"lent buffer {pid}/{address:#x} cannot be pulled here")
    try:
        buffer, warm = recycle.take(nbytes)  # memory a frame used before, or new memory
    except (OSError, ValueError) as err:
        raise StreamError(f"no memory for a lent buffer of {nbytes} bytes ({err})") from None
    anchor = ctypes.c_char.from_buffer(buffer)
    into = ctypes.addressof(anchor)
    steps = range(0, nbytes, _PULL_STEP)
    workers = 1 if nbytes < _PULL_SPLIT else max(1, min(4, os.cpu_count() or 1, len(steps)))
    failed: list[OSError] = []
    # each thread takes the next chunk when it is free: on a busy host, one that gets no
    # core for a while leaves its share to the others instead of holding up the end
    taking = iter(steps)
    take_lock = threading.Lock()

    def next_offset() -> int | None:
        with take_lock:
            return next(taking, None)

    def work() -> None:
        try:
            while not failed and (offset := next_offset()) is not None:
                size = min(_PULL_STEP, nbytes - offset)
                if not warm:  # may fail: the copy faults pages in then
                    populate(into + offset, size)
                _read(pid, address + offset, into + offset, size)
        except Exception as err:  # any failure in a helper must fail the pull
            failed.append(err if isinstance(err, OSError) else OSError(0, repr(err)))

    helpers = [threading.Thread(target=work, daemon=True, name="remote_magics-pull")
               for _ in range(1, workers)]
    for helper in helpers:
        helper.start()
    try:
        work()
    except BaseException:  # an interrupt: the helpers stop at their next chunk
        failed.append(OSError(0, "interrupted"))
        raise
    finally:  # never unmap the buffer while a helper still writes into it
        for helper in helpers:
            helper.join()
    seen = ctypes.create_string_buffer(_LEASE)
    if not failed:
        try:
            _read(pid, lease, ctypes.addressof(seen), _LEASE)
        except OSError as err:
            failed.append(err)
    del anchor
    if failed:
        buffer.release()
        raise StreamError(f"lent buffer {pid}/{address:#x} cannot be read ({failed[0]})")
    if not hmac.compare_digest(seen.raw, token):
        buffer.release()
        raise StreamError(f"lent buffer {pid}/{address:#x} was taken back before it was read")
    _say_done(pid, done, token)
    return buffer


class Lending:
    """A placer (see :class:`~.streaming.Placer`) for one message to a peer that pulls: big
    frames are lent when ``lend`` (the peer read our probe's memory, and for a reply the client
    asked for it: :func:`pull_now`), else put in segments of ``shared``. Whether pulls are
    turned off here is :meth:`Shared.lend`'s to say, at a big frame: most messages have none,
    and cost no look-up. :meth:`wait` holds the lent buffers until the peer has copied them."""

    def __init__(self, shared: Shared, lend: bool = True) -> None:
        self.shared = shared
        self.lend = lend
        self.lent: list[int] = []
        self.nbytes = 0

    def put(self, view: memoryview, owner: str = "") -> int | None:
        ref = self.shared.lend(view, owner) if self.lend else None
        if ref is None:
            return self.shared.put(view, owner)
        self.lent.append(ref)
        self.nbytes += view.nbytes
        return ref

    def listing(self, placed: list) -> dict:
        return self.shared.listing(placed)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the peer to copy what was lent (:data:`LEND_WAIT` plus the time to read it
        at :data:`LEND_RATE` unless ``timeout``), then take it back; True if it did."""
        if not self.lent:
            return True
        if timeout is None:
            timeout = LEND_WAIT + self.nbytes / LEND_RATE
        lent, self.lent, self.nbytes = self.lent, [], 0
        return self.shared.wait(lent, timeout)


_probe: dict | None = None
_probe_nonce = b""


def probe() -> dict | None:
    """This process's offer of shared memory: a sealed segment holding a random nonce.

    ``{"pid", "fd", "nbytes", "nonce"}``, or None when shared memory is off or unsupported here.
    A peer that reads the nonce back (:func:`probe_ok`) is on this host, in our process
    namespace, with the rights to open our segments: detected, never assumed.
    """
    global _probe
    if not shared_supported() or os.environ.get(SHARED_ENV, "").strip() == "0":
        return None
    if _probe is None:
        nonce = secrets.token_bytes(16)
        try:
            fd = _new_segment(memoryview(nonce))
        except OSError:
            return None
        _probe = {"pid": os.getpid(), "fd": fd, "nbytes": len(nonce), "nonce": nonce.hex()}
        global _probe_nonce
        _probe_nonce = nonce  # held for ever: a peer reads it here (pull_ok)
    offer = dict(_probe)
    if pull_supported():  # where the nonce is in our memory, for a peer that pulls
        offer["address"] = _address(memoryview(_probe_nonce))
    return offer


def probe_ok(offer: object) -> bool:
    """Whether a peer's :func:`probe` can be read here: then it can send us shared segments."""
    if not isinstance(offer, dict) or not shared_supported():
        return False
    try:
        view = open_shared(int(offer["pid"]), int(offer["fd"]), int(offer["nbytes"]))
        return bytes(view) == bytes.fromhex(str(offer["nonce"]))
    except (StreamError, KeyError, TypeError, ValueError, OSError):
        return False


def pull_ok(offer: object) -> bool:
    """Whether a peer's :func:`probe` can be copied out of its memory here (process_vm_readv:
    same user, no seccomp filter or ptrace rule against it): then it may lend us buffers."""
    if not isinstance(offer, dict) or not pull_supported() or "address" not in offer:
        return False
    try:
        nonce = bytes.fromhex(str(offer["nonce"]))
        seen = ctypes.create_string_buffer(len(nonce))
        _read(int(offer["pid"]), int(offer["address"]), ctypes.addressof(seen), len(nonce))
        return bool(nonce) and hmac.compare_digest(seen.raw, nonce)
    except (KeyError, TypeError, ValueError, OSError):
        return False
