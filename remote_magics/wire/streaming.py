"""Big frames streamed ahead of their message as ``remote_chunk`` messages, for both sides.

A frame longer than :data:`protocol.STREAM_CHUNK` does not travel inside its message: it goes
first, cut into chunks, each one an ordinary signed Jupyter message on the same socket with a
digest of its own (see :mod:`.protocol`). The sender digests each chunk just before sending it
without a copy, so hashing the next chunk overlaps ZeroMQ's transfer of this one; the receiver
digests each chunk as it arrives and copies it into place, so its hashing overlaps the transfer
too, and a progress bar can follow the bytes.

Between two processes of one user on one host, a big frame need not cross a socket at all: it
goes into a sealed segment instead (:mod:`.shared`, given to :class:`Outgoing` as ``shared``), and
the message lists it in its ``shared`` field; the receiver maps it in
(:func:`remote_magics.wire.shared.attach_shared`) before it claims the streamed frames.

:class:`Outgoing` cuts one message's frames; :func:`send` sends them; :class:`Window` paces a
client's upload by the engine's acknowledgements; :class:`Incoming` puts one peer's chunks back
together and hands the frames to the message that claims them (the engine's ``remote_chunk``
handler, :meth:`remote_magics.engine.core.Engine.chunk_request`, feeds one per client).

Standard library only: shipped as source with the engine to kernels that lack remote_magics.
"""
from __future__ import annotations

import _signal
import collections
import logging
import secrets
import threading
import time
from typing import Any, Callable, Iterator, Protocol, Sequence

from . import protocol, recycle

#: Chunks one transfer is cut into at most (a huge frame gets bigger chunks): fewer than
#: ZeroMQ's high-water mark of 1000 messages, past which a ROUTER socket drops messages.
MAX_CHUNKS = 512

#: Messages the client's shell socket holds at most: a download's chunks beyond wait in the
#: engine, uncopied, instead of piling up in the notebook's memory while it digests.
RECEIVE_QUEUE = 4

_TAG = b"remote_chunk"  # a chunk's digest can never equal a message's
_SIGINT = _signal.SIGINT  # an int: signal.SIGINT is an enum

log = logging.getLogger(__name__)

#: Bytes moved by this process, by path: "shared_sent", "shared_received", "streamed_sent",
#: "streamed_received" (what the tests check, and what a user may look at to see the path used);
#: of the shared ones, "shared_lent" were lent to a peer that copied them out of our memory,
#: "shared_pulled" copied here out of a peer's (the rest went in sealed segments).
stats: collections.Counter = collections.Counter()


class StreamError(Exception):
    """A chunk, or a streamed message, that does not fit its transfer: both are dropped."""


class Placer(Protocol):
    """Where a big frame goes instead of being streamed: same-host segments
    (:class:`remote_magics.wire.shared.Shared` is the one kind)."""

    def put(self, view: memoryview, owner: str) -> int | None:
        """A reference to a place holding ``view``'s bytes for ``owner``, or None (stream it)."""

    def listing(self, placed: list) -> dict:
        """The message's ``shared`` field for ``placed``: ``[index, reference, nbytes]`` each."""


def _u64(number: int) -> bytes:
    return number.to_bytes(8, "little")


def bytes_view(frame: Any) -> memoryview:
    """``frame``'s bytes as a flat unsigned-byte view (no copy)."""
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
    (the peer maps our segments: same host), a long frame goes into a segment of ``shared``,
    held for ``owner``, when there is room; else it is streamed.
    """

    def __init__(self, key: bytes, frames: Sequence,
                 chunk: int | None = protocol.STREAM_CHUNK, *,
                 shared: "Placer | None" = None, owner: str = "",
                 scheme: str = protocol.HMAC_SHA256) -> None:
        self.key = key
        self.scheme = scheme  # the digest agreed with the peer (protocol.agreed_scheme)
        self.frames: list = []
        self.streamed: list[tuple[int, memoryview]] = []
        self.placer = shared
        self.shared: list[list[int]] = []  # [index, fd, nbytes] of each frame in a segment
        for index, frame in enumerate(frames):
            if chunk is not None and memoryview(frame).nbytes > chunk:
                view = bytes_view(frame)
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
            content["shared"] = self.placer.listing(self.shared)
        content["digest"] = message_digest(self.key, content, self.frames, self.scheme)
        return content


class uninterrupted:  # noqa: N801 - used as a ``with`` statement, like a function
    """Hold a Ctrl-C (SIGINT: the stop button, a kernel's interrupt) that comes in the block
    until it ends, then give it to the handler that was there; with ``later``, keep it for
    :meth:`deliver` instead (``came`` says whether one came).

    ZeroMQ takes a message's parts one call at a time: a KeyboardInterrupt between two of them
    left half a message on the socket, and the next message's parts went on after it, so the
    peer dropped that one as badly signed ("Invalid Signature: b'<IDS|MSG>'") and the request
    was lost; one between two received parts left the rest to be taken for the next message.
    Only the main thread gets signals; elsewhere, or when Python does not handle SIGINT, the
    block just runs. A block that ends in a KeyboardInterrupt of its own gets no second one.
    Hold only what cannot wait for the user (a send, a receive): never a prompt.
    Handlers are swapped with ``_signal``'s own functions: ``signal``'s wrap them in enums, at
    2 us a call, and every message sent or taken in goes through here.
    """

    __slots__ = ("held", "came", "later")

    def __init__(self, later: bool = False) -> None:
        self.later = later
        self.held: Any = None
        self.came: tuple | None = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            held = _signal.getsignal(_SIGINT)
            if callable(held):
                self.held = held
                _signal.signal(_SIGINT, self._hold)

    def _hold(self, signum: int, frame: Any) -> None:
        self.came = (signum, frame)

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if self.held is None:
            return
        _signal.signal(_SIGINT, self.held)
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            self.came = None  # it ends in one already: one is enough
        if not self.later:
            self.deliver()

    def deliver(self) -> None:
        """Give a Ctrl-C that came in the block to its handler (which raises
        KeyboardInterrupt, as a rule), once."""
        came, self.came = self.came, None
        if came is not None:
            self.held(*came)


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C that came while a message went: the message went whole (``message``, as
    ``session.send`` returns it), and this is the interrupt, given to the caller after it."""

    def __init__(self, message: dict) -> None:
        super().__init__()
        self.message = message


def send_whole(session: Any, sock: Any, msg_type: str, content: dict, **kwargs: Any) -> dict:
    """``session.send``, never cut short by a Ctrl-C (:func:`uninterrupted`); one that came
    meanwhile is raised after it as :class:`Interrupted`."""
    msg = None
    try:
        with uninterrupted():
            try:
                msg = session.send(sock, msg_type, content, **kwargs)
            except UnicodeEncodeError:  # packed before anything went: it goes escaped
                msg = session.send(sock, msg_type, protocol.encodable(content), **kwargs)
    except KeyboardInterrupt as stop:
        if msg is None:  # not ours: it stopped the send itself
            raise
        raise Interrupted(msg).with_traceback(stop.__traceback__) from None
    return msg


def send(session: Any, sock: Any, msg_type: str, content: dict, frames: Sequence, key: bytes, *,
         parent: dict | None = None, ident: Any = None, chunk: int | None = protocol.STREAM_CHUNK,
         window: "Window | None" = None, chunk_fields: dict | None = None,
         shared: "Placer | None" = None, owner: str = "",
         scheme: str = protocol.HMAC_SHA256) -> dict:
    """Send a message with ``jupyter_client``'s ``session``, its big frames streamed ahead of it.

    A ``window`` (the client's) paces the chunks by the engine's acknowledgements;
    ``chunk_fields`` go into every chunk's content too (a client's secret). With ``shared``
    (a peer on this host that reads our segments), big frames go into sealed segments held for
    ``owner`` instead, as room allows. ``scheme``: the digest agreed with the peer. Returns the
    message as ``session.send`` does. A Ctrl-C while the message goes is raised once it has
    gone, as :class:`Interrupted` (which names it); one while its chunks go stops them.
    """
    out = Outgoing(key, frames, chunk, shared=shared, owner=owner, scheme=scheme)
    stats["streamed_sent"] += sum(view.nbytes for _, view in out.streamed)
    flush = getattr(sock, "flush", None)  # a ZMQStream (the engine's shell) queues until flushed
    stream = None
    if flush is not None and not sock.sending():  # nothing queued before ours: its socket now,
        stream, sock, flush = sock, sock.socket, None  # without the queue and polls (0.1 ms)
    for chunk_content, piece in out.chunks():
        if chunk_fields:
            chunk_content.update(chunk_fields)
        send_whole(session, sock, protocol.CHUNK, chunk_content, parent=parent, ident=ident,
                   buffers=[piece])
        if flush is not None:  # on its way now, while the next chunk is digested
            flush(2)  # zmq.POLLOUT
        if window is not None:
            window.add(chunk_content, piece.nbytes)
    if window is not None and out.streamed:
        window.drain()  # every chunk in before the message: a refused one stops it here
    stopped = None
    try:
        msg = send_whole(session, sock, msg_type, out.seal(content), parent=parent, ident=ident,
                         buffers=out.frames)
    except Interrupted as stop:  # it went: on its way first, then the interrupt
        msg, stopped = stop.message, stop
    if flush is not None:  # a reply leaves now, not when the engine's loop next turns
        flush(2)
    if stream is not None and sock.EVENTS & 1:  # zmq.POLLIN: a message came while we sent, and
        # our send took the wake-up of the stream's loop (its socket's descriptor signals edges)
        stream.io_loop.add_callback(stream.flush, 1, 1)
    if stopped is not None:
        raise stopped
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


#: MADV_POPULATE_WRITE (Linux 5.14): fault a range of pages in, writable, in one call.
POPULATE_WRITE = 23
_madvise_handle: Any = None


def _madvise() -> Any:
    """libc's ``madvise`` through ctypes (which lets go of the GIL while it runs), or None."""
    global _madvise_handle
    if _madvise_handle is None:
        try:
            import ctypes  # here: a kernel without ctypes still streams, without faulting ahead

            function = ctypes.CDLL(None, use_errno=True).madvise
            function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            _madvise_handle = function
        except (ImportError, OSError, AttributeError):
            _madvise_handle = False
    return _madvise_handle or None


def populate(address: int, nbytes: int) -> bool:
    """Fault in ``nbytes`` of this process's memory at ``address``, writable (one system call,
    no GIL held); False where the kernel cannot (before 5.14): the first write faults them then."""
    madvise = _madvise()
    return madvise is not None and madvise(address, nbytes, POPULATE_WRITE) == 0


class Prefault:
    """Faults a fresh buffer's pages in from a second thread, up to :attr:`AHEAD` bytes ahead
    of what has arrived (:meth:`advance`), so the receiving thread copies into memory that is
    already there: faulting pages in one at a time cost as much as the copy.

    Never more than :attr:`AHEAD` ahead, so a transfer cut short leaves little memory taken.
    :meth:`finish` must be called before the buffer is handed on (the thread stops and is
    joined; it holds the buffer mapped while it runs).
    """

    MIN = 64 << 20  #: smaller buffers are faulted in by their copy: a thread costs more
    AHEAD = 256 << 20
    STEP = 32 << 20
    IDLE = 120.0  #: seconds without a byte arriving after which the thread gives up

    def __init__(self, buffer: memoryview, warm: bool = False) -> None:
        self.nbytes = len(buffer)
        self.arrived = 0
        self._stop = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        if self.nbytes < self.MIN or warm or _madvise() is None:
            return  # small, its pages in already (:mod:`.recycle`), or no way to fault ahead
        import ctypes

        anchor = ctypes.c_char.from_buffer(buffer)  # held by the thread: no unmapping under it
        self._thread = threading.Thread(target=self._run, args=(anchor,), daemon=True,
                                        name="remote_magics-prefault")
        self._thread.start()

    def _run(self, anchor: Any) -> None:
        import ctypes

        base = ctypes.addressof(anchor)
        done, seen, idle_since = 0, -1, time.monotonic()
        while done < self.nbytes:
            with self._cond:
                # every wait is bounded: the receiver advances at each piece, or finishes
                self._cond.wait_for(lambda: self._stop or done - self.arrived < self.AHEAD,
                                    timeout=1.0)
                if self._stop:
                    break
                if self.arrived != seen:
                    seen, idle_since = self.arrived, time.monotonic()
                elif time.monotonic() - idle_since > self.IDLE:
                    break  # a receiver that went away without finish(): let the buffer go
                if done - self.arrived >= self.AHEAD:
                    continue
            size = min(self.STEP, self.nbytes - done)
            if not populate(base + done, size):
                break  # not supported, or no memory now: the copy faults pages in itself
            done += size

    def advance(self, arrived: int) -> None:
        """Say ``arrived`` bytes are in (the thread may run further ahead)."""
        if self._thread is not None:
            with self._cond:
                self.arrived = arrived
                self._cond.notify()

    def finish(self) -> None:
        """Stop faulting in (all bytes are in, or the transfer failed) and wait for the thread."""
        if self._thread is not None:
            with self._cond:
                self._stop = True
                self._cond.notify()
            self._thread.join()
            self._thread = None


class _Frame:
    """One streamed frame being filled: its buffer, and how much of it has arrived."""

    __slots__ = ("buffer", "warm", "filled", "prefault")

    def __init__(self, nbytes: int) -> None:
        self.buffer, self.warm = recycle.take(nbytes)  # writable bytes
        self.filled = 0
        self.prefault: Prefault | None = None  # started once a first chunk passed its digest


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
        for frame in getattr(self, "frames", {}).values():
            if frame.prefault is not None:
                frame.prefault.finish()
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
        piece = bytes_view(buffers[0])
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
        if frame.prefault is None and piece.nbytes < nbytes:
            frame.prefault = Prefault(frame.buffer, frame.warm)
        frame.buffer[offset:offset + piece.nbytes] = piece
        frame.filled += piece.nbytes
        if frame.prefault is not None:
            if frame.filled == nbytes:
                frame.prefault.finish()
            else:
                frame.prefault.advance(frame.filled)
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
            frames[index] = frame.buffer
        if self.on_progress is not None:  # the message's own frames are in too
            total = sum(memoryview(frame).nbytes for frame in frames)
            self.on_progress(total, total)
        return frames
