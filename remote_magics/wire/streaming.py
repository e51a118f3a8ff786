"""Big frames streamed ahead of their message as ``remote_chunk`` messages, for both sides.

A frame longer than :data:`protocol.STREAM_CHUNK` does not travel inside its message: it goes
first, cut into chunks, each one an ordinary signed Jupyter message on the same socket with a
digest of its own (see :mod:`.protocol`). The sender digests each chunk just before sending it
without a copy, so hashing the next chunk overlaps ZeroMQ's transfer of this one; the receiver
digests each chunk as it arrives and copies it into place, so its hashing overlaps the transfer
too, and a progress bar can follow the bytes.

Between two processes of one user on one host, a big frame need not cross a socket at all: the
sender writes it once into a sealed ``memfd`` (:class:`Shared`) and the message names it; the
receiver opens it through ``/proc/<pid>/fd/<fd>`` and maps it in place (:func:`open_shared`), so
its bytes land nowhere else. Whether the peer can do that is detected, not assumed: each side
offers a sealed probe holding a random nonce (:func:`probe`), which the other must read back
(:func:`probe_ok`) before it is used. Anything that fails (no memfd, not enough memory, a peer in
another container) falls back to the chunks above.

:class:`Outgoing` cuts one message's frames; :func:`send` sends them; :class:`Window` paces a
client's upload by the engine's acknowledgements; :class:`Incoming` puts one peer's chunks back
together and hands the frames to the message that claims them (the engine's ``remote_chunk``
handler, :meth:`remote_magics.engine.core.Engine.chunk_request`, feeds one per client).

Standard library only: shipped as source with the engine to kernels that lack remote_magics.
"""
from __future__ import annotations

import collections
import logging
import mmap
import os
import secrets
import threading
import time
from typing import Any, Callable, Iterator, Sequence

from . import protocol

#: Chunks one transfer is cut into at most (a huge frame gets bigger chunks): fewer than
#: ZeroMQ's high-water mark of 1000 messages, past which a ROUTER socket drops messages.
MAX_CHUNKS = 512

#: Messages the client's shell socket holds at most: a download's chunks beyond wait in the
#: engine, uncopied, instead of piling up in the notebook's memory while it digests.
RECEIVE_QUEUE = 4

_TAG = b"remote_chunk"  # a chunk's digest can never equal a message's

log = logging.getLogger(__name__)

#: Bytes moved by this process, by path: "shared_sent", "shared_received", "streamed_sent",
#: "streamed_received" (what the tests check, and what a user may look at to see the path used).
stats: collections.Counter = collections.Counter()


class StreamError(Exception):
    """A chunk, or a streamed message, that does not fit its transfer: both are dropped."""


def _u64(number: int) -> bytes:
    return number.to_bytes(8, "little")


def _bytes_view(frame: Any) -> memoryview:
    view = memoryview(frame)
    return view if view.ndim == 1 and view.itemsize == 1 else view.cast("B")


def _chunk_fields(transfer: str, index: int, offset: int, nbytes: int, chunk: Any) -> tuple:
    return (_TAG, transfer.encode(), _u64(index), _u64(offset), _u64(nbytes), chunk)


def chunk_digest(key: bytes, transfer: str, index: int, offset: int, nbytes: int,
                 chunk: Any, scheme: str = protocol.HMAC_SHA256) -> str:
    """A chunk's digest: binds the key, the transfer, the frame's index and size, the offset and
    the chunk's bytes, so a chunk cannot be replayed into another transfer or place."""
    return protocol.frames_digest(key, _chunk_fields(transfer, index, offset, nbytes, chunk),
                                  scheme)


def _message_fields(content: dict, frames: Sequence) -> Sequence:
    streamed, shared = content.get("streamed"), content.get("shared")
    if not streamed and not shared:
        return frames
    fields = [*frames]
    if streamed:
        fields.append(str(streamed.get("transfer", "")).encode())
    if shared:  # the segments named: already under the message's signature, here too
        fields.append(repr(shared).encode())
    return fields


def message_digest(key: bytes, content: dict, frames: Sequence,
                   scheme: str = protocol.HMAC_SHA256) -> str:
    """A message's digest over its frames as sent; a streamed message's is bound to its transfer."""
    return protocol.frames_digest(key, _message_fields(content, frames), scheme)


def message_ok(key: bytes, content: dict, frames: Sequence) -> bool:
    """Whether a message's ``digest`` is right for its frames as sent (constant-time compare)."""
    return protocol.digest_ok(key, _message_fields(content, frames),
                              str(content.get("digest") or ""))


def streams(frames: Sequence, chunk: int = protocol.STREAM_CHUNK) -> bool:
    """Whether a message with these frames would stream any of them."""
    return any(memoryview(frame).nbytes > chunk for frame in frames)


class Outgoing:
    """One message's frames, those longer than ``chunk`` bytes taken out to go ahead as chunks.

    ``frames`` is what the message itself carries: an empty placeholder at each streamed index.
    ``chunk=None`` streams nothing (messages on the control channel stay whole). With ``shared``
    (the peer maps our segments: same host), a long frame goes into a sealed segment of
    ``shared``, held for ``owner``, when there is room; else it is streamed.
    """

    def __init__(self, key: bytes, frames: Sequence,
                 chunk: int | None = protocol.STREAM_CHUNK, *,
                 shared: "Shared | None" = None, owner: str = "",
                 scheme: str = protocol.HMAC_SHA256) -> None:
        self.key = key
        self.scheme = scheme  # the digest agreed with the peer (protocol.agreed_scheme)
        self.frames: list = []
        self.streamed: list[tuple[int, memoryview]] = []
        self.shared: list[list[int]] = []  # [index, fd, nbytes] of each frame in a segment
        for index, frame in enumerate(frames):
            if chunk is not None and memoryview(frame).nbytes > chunk:
                view = _bytes_view(frame)
                fd = shared.put(view, owner) if shared is not None else None
                if fd is None:
                    self.streamed.append((index, view))
                else:
                    self.shared.append([index, fd, view.nbytes])
                self.frames.append(b"")
            else:
                self.frames.append(frame)
        self.nbytes = sum(memoryview(frame).nbytes for frame in frames)
        self.transfer = secrets.token_hex(16) if self.streamed else ""
        streamed_bytes = sum(view.nbytes for _, view in self.streamed)
        self.chunk = max(chunk or 0, -(-streamed_bytes // MAX_CHUNKS))

    def chunks(self) -> Iterator[tuple[dict, memoryview]]:
        """Each chunk's content and bytes, in order; a digest is made only as its chunk is due."""
        for index, view in self.streamed:
            for offset in range(0, view.nbytes, self.chunk):
                piece = view[offset:offset + self.chunk]
                yield {"transfer": self.transfer, "index": index, "offset": offset,
                       "nbytes": view.nbytes, "total": self.nbytes,
                       "digest": chunk_digest(self.key, self.transfer, index, offset,
                                              view.nbytes, piece, self.scheme)}, piece

    def seal(self, content: dict) -> dict:
        """A copy of the message's content with its ``streamed`` field and its ``digest``."""
        content = dict(content)
        content.pop("streamed", None)
        content.pop("shared", None)
        if self.streamed:
            listed = [[index, view.nbytes] for index, view in self.streamed]
            content["streamed"] = {"transfer": self.transfer, "frames": listed}
        if self.shared:
            content["shared"] = {"pid": os.getpid(), "frames": self.shared}
        content["digest"] = message_digest(self.key, content, self.frames, self.scheme)
        return content


def send(session: Any, sock: Any, msg_type: str, content: dict, frames: Sequence, key: bytes, *,
         parent: dict | None = None, ident: Any = None, chunk: int | None = protocol.STREAM_CHUNK,
         window: "Window | None" = None, chunk_fields: dict | None = None,
         shared: "Shared | None" = None, owner: str = "",
         scheme: str = protocol.HMAC_SHA256) -> dict:
    """Send a message with ``jupyter_client``'s ``session``, its big frames streamed ahead of it.

    A ``window`` (the client's) paces the chunks by the engine's acknowledgements;
    ``chunk_fields`` go into every chunk's content too (a client's secret). With ``shared``
    (a peer on this host that reads our segments), big frames go into sealed segments held for
    ``owner`` instead, as room allows. ``scheme``: the digest agreed with the peer. Returns the
    message as ``session.send`` does.
    """
    out = Outgoing(key, frames, chunk, shared=shared, owner=owner, scheme=scheme)
    stats["streamed_sent"] += sum(view.nbytes for _, view in out.streamed)
    flush = getattr(sock, "flush", None)  # a ZMQStream (the engine's shell) queues until flushed
    for chunk_content, piece in out.chunks():
        if chunk_fields:
            chunk_content.update(chunk_fields)
        session.send(sock, protocol.CHUNK, chunk_content, parent=parent, ident=ident,
                     buffers=[piece])
        if flush is not None:  # on its way now, while the next chunk is digested
            flush(2)  # zmq.POLLOUT
        if window is not None:
            window.add(chunk_content, piece.nbytes)
    if window is not None and out.streamed:
        window.drain()  # every chunk in before the message: a refused one stops it here
    msg = session.send(sock, msg_type, out.seal(content), parent=parent, ident=ident,
                       buffers=out.frames)
    if flush is not None:  # a reply leaves now, not when the engine's loop next turns
        flush(2)
    return msg


class Window:
    """An upload's chunks sent but not yet acknowledged by the engine: at most ``size`` bytes.

    The engine acknowledges each chunk once it is verified and in place (``remote_chunk_ack``),
    so progress (``on_progress("upload", done, total)``) follows the bytes that have arrived,
    and chunks never pile up in the engine's memory faster than it digests them.
    ``next_ack(timeout)`` returns the content of the next acknowledgement, ``{}`` for any other
    message, or None once ``timeout`` seconds pass, after which ``stalled()`` raises if the
    engine is gone. After ``patience`` seconds without one (an engine busy with another
    client's cell), the rest of the upload goes without waiting. Give it to :func:`send`,
    then call :meth:`finish`.
    """

    def __init__(self, size: int, on_progress: Callable[[str, int, int], None] | None,
                 next_ack: Callable[[float], dict | None], stalled: Callable[[], None], *,
                 interval: float = 1.0, patience: float = 10.0) -> None:
        self.size = size
        self.on_progress = on_progress
        self.next_ack = next_ack
        self.stalled = stalled
        self.interval = interval
        self.patience = patience
        self.transfer = ""
        self.unacked: list[tuple[tuple[int, int], int]] = []  # ((index, offset), nbytes)
        self.unacked_bytes = self.acked = self.total = 0
        self.waiting = True

    def add(self, content: dict, nbytes: int) -> None:
        """One more chunk sent; wait while more than ``size`` bytes are unacknowledged.

        Raises :class:`StreamError` when the engine refuses a chunk.
        """
        self.transfer, self.total = content["transfer"], content["total"]
        self.unacked.append(((content["index"], content["offset"]), nbytes))
        self.unacked_bytes += nbytes
        self._wait(self.size)

    def drain(self) -> None:
        """Wait until every chunk is acknowledged (or the engine is too busy to say)."""
        self._wait(0)

    def _wait(self, limit: int) -> None:
        heard = time.monotonic()
        while self.waiting and self.unacked_bytes > limit:
            ack = self.next_ack(self.interval)
            if ack is None:
                self.stalled()
            elif ack.get("transfer") == self.transfer and self._acknowledged(ack):
                heard = time.monotonic()
            if time.monotonic() - heard > self.patience:
                self.waiting = False

    def _acknowledged(self, ack: dict) -> bool:
        if ack.get("error"):
            raise StreamError(str(ack["error"]))
        place = (ack.get("index"), ack.get("offset"))
        if place not in [sent for sent, _ in self.unacked]:
            return False
        while self.unacked:  # the engine takes chunks in order: all before it are in too
            sent, nbytes = self.unacked.pop(0)
            self.unacked_bytes -= nbytes
            self.acked += nbytes
            if sent == place:
                break
        if self.on_progress is not None:
            self.on_progress("upload", self.acked, self.total)
        return True

    def finish(self) -> None:
        """The message is sent: the bar completes (its own frames are on their way)."""
        if self.total and self.on_progress is not None:
            self.on_progress("upload", self.total, self.total)


def fresh_buffer(nbytes: int) -> mmap.mmap:
    """Fresh private memory for ``nbytes`` of a frame that arrives from a peer (chunks or the
    data port), on huge pages where the kernel has them."""
    if hasattr(mmap, "MAP_PRIVATE"):  # private: mmap's default, shared, is costlier shmem
        buffer = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE)
    else:  # Windows
        buffer = mmap.mmap(-1, nbytes)
    try:  # 2 MB pages: faulting in fresh memory 4 kB at a time costs as much as a digest
        buffer.madvise(mmap.MADV_HUGEPAGE)
    except (AttributeError, OSError):  # no transparent huge pages here
        pass
    return buffer


class _Frame:
    """One streamed frame being filled: its buffer, and how much of it has arrived."""

    __slots__ = ("buffer", "view", "filled")

    def __init__(self, nbytes: int) -> None:
        self.buffer = fresh_buffer(nbytes)
        self.view = memoryview(self.buffer)
        self.filled = 0


class Incoming:
    """The transfer under way from one peer: its chunks verified and put in place until claimed.

    A peer sends one message's chunks and then that message, so a chunk of a new transfer means
    the one under way was abandoned (an interrupted upload): it is dropped, never kept.
    """

    def __init__(self, key: bytes, on_progress: Callable[[int, int], None] | None = None) -> None:
        self.key = key
        self.on_progress = on_progress  # (bytes in, total) after each chunk and at the claim
        self.arrived_at = 0.0  # time.monotonic() of the last chunk taken
        self.transfer = ""
        self.total = 0
        self.received = 0
        self.frames: dict[int, _Frame] = {}
        self.failed = ""  # a transfer with a bad chunk: its later chunks are ignored quietly

    def clear(self) -> None:
        """Forget the transfer under way (its buffers go when nothing else holds them)."""
        self.transfer, self.total, self.received, self.frames = "", 0, 0, {}

    def add(self, content: dict, buffers: Sequence) -> tuple[int, int]:
        """Take one chunk; returns the transfer's bytes received so far and its total.

        Raises :class:`StreamError` for a chunk that fails its digest or does not come next in
        its frame; the transfer is then dropped, so the message that claims it is dropped too.
        """
        try:
            transfer = str(content["transfer"])
            index, offset = int(content["index"]), int(content["offset"])
            nbytes, total = int(content["nbytes"]), int(content["total"])
        except (KeyError, TypeError, ValueError):
            transfer = str(content.get("transfer", ""))
            raise self._fail(transfer, "a chunk without its fields") from None
        if transfer == self.failed:
            return self.received, self.total
        if len(buffers) != 1:
            raise self._fail(transfer, f"a chunk with {len(buffers)} frames instead of 1")
        piece = _bytes_view(buffers[0])
        if transfer != self.transfer:
            self.clear()  # a new transfer: the one under way was abandoned
            self.transfer, self.total = transfer, total
        frame = self.frames.get(index)
        if frame is None:
            if offset != 0 or nbytes <= 0 or index < 0:
                raise self._fail(transfer, f"frame {index} starting at offset {offset}")
            frame = self.frames[index] = _Frame(nbytes)
        if (offset != frame.filled or nbytes != len(frame.buffer) or total != self.total
                or not 0 < piece.nbytes <= nbytes - offset
                or self.received + piece.nbytes > total):
            raise self._fail(transfer, f"a chunk of frame {index} out of order (offset {offset}, "
                                       f"{frame.filled} of {nbytes} bytes in)")
        if not self._digest_ok(content, transfer, index, offset, nbytes, piece):
            raise self._fail(transfer, "a chunk whose bytes fail their digest")
        frame.view[offset:offset + piece.nbytes] = piece
        frame.filled += piece.nbytes
        self.received += piece.nbytes
        stats["streamed_received"] += piece.nbytes
        self.arrived_at = time.monotonic()
        if self.on_progress is not None:
            self.on_progress(self.received, self.total)
        return self.received, self.total

    def _digest_ok(self, content: dict, transfer: str, index: int, offset: int, nbytes: int,
                   piece: memoryview) -> bool:
        return protocol.digest_ok(self.key, _chunk_fields(transfer, index, offset, nbytes, piece),
                                  str(content.get("digest") or ""))

    def _fail(self, transfer: str, why: str) -> StreamError:
        if transfer == self.transfer:
            self.clear()
        self.failed = transfer
        return StreamError(f"{why} (transfer {transfer[:8]})")

    def claim(self, content: dict, frames: Sequence) -> list:
        """The frames of a verified message, its streamed frames put back in place.

        Raises :class:`StreamError` when the message's transfer is not complete here (a chunk
        was dropped) or does not match what the message lists.
        """
        shared = content.get("shared")
        if shared:
            frames = _attach_shared(shared, frames)
        streamed = content.get("streamed")
        if not streamed:
            return list(frames)
        transfer = str(streamed.get("transfer", ""))
        held, held_frames = self.transfer, self.frames
        self.clear()  # claimed or not, the transfer is over
        if not transfer or transfer != held:
            raise StreamError(f"a message whose streamed frames did not all arrive "
                              f"(transfer {transfer[:8]})")
        frames = list(frames)
        listed = {}
        for entry in streamed.get("frames", ()):
            index, nbytes = int(entry[0]), int(entry[1])
            frame = held_frames.get(index)
            if (frame is None or index in listed or not 0 <= index < len(frames)
                    or memoryview(frames[index]).nbytes != 0
                    or frame.filled != nbytes or len(frame.buffer) != nbytes):
                raise StreamError(f"a message whose streamed frame {index} does not match its "
                                  f"chunks (transfer {transfer[:8]})")
            listed[index] = frame
        if len(listed) != len(held_frames):
            raise StreamError(f"a message that leaves chunks of its transfer {transfer[:8]} unused")
        for index, frame in listed.items():
            frames[index] = frame.view
        if self.on_progress is not None:  # the message's own frames are in too
            total = sum(memoryview(frame).nbytes for frame in frames)
            self.on_progress(total, total)
        return frames



# --- same host: sealed shared-memory segments ---------------------------------------------

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
    (the frames as they are when it names none). Raises :class:`StreamError` as ``claim`` does."""
    shared = content.get("shared")
    return _attach_shared(shared, frames) if shared else list(frames)


def _attach_shared(shared: dict, frames: Sequence) -> list:
    """A message's frames with its shared segments mapped in at their indexes."""
    frames = list(frames)
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
