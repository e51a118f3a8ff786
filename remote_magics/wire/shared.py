"""Same-host transfers: a big frame in a sealed shared-memory segment instead of chunks.

Between two processes of one user on one host, a big frame need not cross a socket at all: the
sender writes it once into a sealed ``memfd`` (:class:`Shared`) and the message names it; the
receiver opens it through ``/proc/<pid>/fd/<fd>`` and maps it in place (:func:`open_shared`), so
its bytes land nowhere else. Whether the peer can do that is detected, not assumed: each side
offers a sealed probe holding a random nonce (:func:`probe`), which the other must read back
(:func:`probe_ok`) before it is used. Anything that fails (no memfd, not enough memory, a peer in
another container) falls back to the chunks of :mod:`.streaming`.

The sender gives its :class:`Shared` to :func:`.streaming.send` (it places the big frames); the
receiver calls :func:`attach_shared` on a verified message before it claims the streamed frames,
and tells the sender which segments it took (:func:`shared_fds`), so the sender closes them
(:meth:`Shared.close`); segments nobody claimed expire (:data:`SHARED_KEEP`).

Standard library only: shipped as source with the engine to kernels that lack remote_magics.
"""
from __future__ import annotations

import logging
import mmap
import os
import secrets
import threading
import time
from typing import Sequence

from .streaming import StreamError, stats

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


def shared_supported() -> bool:
    """Whether this process can make sealed segments and open a peer's (Linux, Python 3.8+)."""
    return (fcntl is not None and hasattr(os, "memfd_create")
            and hasattr(os, "MFD_ALLOW_SEALING") and os.path.isdir("/proc/self/fd"))


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
    """The sealed segments one side has sent and keeps open until the receiver has mapped them.

    Segments are held for an ``owner`` (the client's secret on the engine's side) and closed
    with :meth:`close`; a receiver's mapping keeps the bytes after we close ours.
    """

    def __init__(self) -> None:
        self.held: dict[int, tuple[str, float]] = {}  # fd → (owner, time.monotonic() made)
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

    def listing(self, placed: list) -> dict:
        """A message's ``shared`` field: this process and ``[index, fd, nbytes]`` per segment."""
        return {"pid": os.getpid(), "frames": placed}

    def close(self, owner: str | None = None, fds: Sequence | None = None) -> None:
        """Close the segments held for ``owner`` (all owners' with None); only ``fds`` if given."""
        with self._lock:
            closing = [fd for fd, (held_for, _) in self.held.items()
                       if (owner is None or held_for == owner) and (fds is None or fd in fds)]
            for fd in closing:
                del self.held[fd]
        for fd in closing:
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
    """The segments (the sender's fds) a message named, for the receiver to say it took them."""
    shared = content.get("shared")
    if not isinstance(shared, dict):
        return []
    return [int(entry[1]) for entry in shared.get("frames", ())]


def attach_shared(content: dict, frames: Sequence) -> list:
    """A verified message's frames with the shared segments it names mapped in at their places
    (the frames as they are when it names none).

    Raises :class:`~.streaming.StreamError` for a segment that cannot be mapped as named (then
    the message is dropped, as for a bad chunk).
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
    for index, fd, nbytes in listed:
        if not 0 <= index < len(frames) or memoryview(frames[index]).nbytes != 0:
            raise StreamError(f"a message whose shared frame {index} has no place")
        frames[index] = open_shared(pid, fd, nbytes)
        stats["shared_received"] += nbytes
    return frames


_probe: dict | None = None


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
    return dict(_probe)


def probe_ok(offer: object) -> bool:
    """Whether a peer's :func:`probe` can be read here: then it can send us shared segments."""
    if not isinstance(offer, dict) or not shared_supported():
        return False
    try:
        view = open_shared(int(offer["pid"]), int(offer["fd"]), int(offer["nbytes"]))
        return bytes(view) == bytes.fromhex(str(offer["nonce"]))
    except (StreamError, KeyError, TypeError, ValueError, OSError):
        return False
