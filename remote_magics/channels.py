"""Channels, notebook side: stream objects between the notebook and a running remote cell.

execnet's model. ``ch = Channel(target)`` (or ``%%remote --channel ch``) gives the notebook an
object with ``send``, ``receive``, iteration, ``setcallback(fn, endmarker)`` and
``waitclose(timeout)``; a remote cell that reads ``ch`` gets the engine's end of the same channel
(:mod:`remote_magics.engine.channels`), with ``send`` and ``receive``. Objects travel by cloudpickle with
out-of-band buffers. The channel closes when the run that holds it ends; if the run failed,
``receive`` and ``waitclose`` raise its error (a :class:`~remote_magics.errors.RemoteError`).

Messages from the remote cell arrive with the run's output, on whichever thread relays the run
(the notebook's for a plain ``%%remote``, the job's thread for ``--async``), so a callback runs
there (this module hands them to the connection: :func:`~remote_magics.client.connection.handle_iopub`).
Messages to the remote cell go on the kernel's control channel (see :mod:`remote_magics.wire.protocol`);
on the same host their big frames go in sealed segments the engine maps (closed here once its
acknowledgement says it took them). ``send`` keeps at most
:data:`~remote_magics.wire.protocol.CHANNEL_WINDOW_BYTES` unacknowledged, and the engine
acknowledges only what the cell has room to read, so a slow cell slows the sender down instead
of filling either side's memory.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import sys
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Iterator

from .client.connection import Connection, handle_control, handle_iopub
from .engine.channels import attach
from .errors import SerializationError
from .targets.base import Target, registry
from .wire import protocol, serialize, shared, streaming

log = logging.getLogger(__name__)

_open: "weakref.WeakValueDictionary[str, Channel]" = weakref.WeakValueDictionary()
_state = threading.local()
NO_ENDMARKER = object()
#: Seconds ``send`` waits for the remote cell to make room (read earlier objects) before it
#: raises TimeoutError.
SEND_TIMEOUT = 300.0
#: Seconds between looks at whether the channel closed while ``send`` waits for room.
_ROOM_POLL = 0.2
#: Seconds between drains of the idle main connection's iopub while ``receive`` waits.
_DRAIN_EVERY = 0.05


@contextlib.contextmanager
def shipping() -> Iterator[list]:
    """Collect, into the yielded list, every channel pickled (sent to a cell) in this block."""
    previous = getattr(_state, "shipped", None)
    shipped: list = []
    _state.shipped = shipped
    try:
        yield shipped
    finally:
        _state.shipped = previous


@contextlib.contextmanager
def closing_after_run() -> Iterator[list]:
    """Around one run: the channels it took are closed when it ends, with its error if it failed."""
    with shipping() as shipped:
        try:
            yield shipped
        except BaseException as err:
            finish(shipped, err)
            raise
    finish(shipped, None)


def finish(channels: list, error: BaseException | None) -> None:
    """Close ``channels``: the run that held them is over (``error`` if it failed)."""
    for channel in channels:
        channel._finish(error)


def deliver(msg: dict, conn: Connection) -> None:
    """Hand a ``remote_channel_*`` iopub message to its channel (``conn``'s relay calls it)."""
    channel = _open.get(msg["content"].get("channel", ""))
    if channel is None:
        log.debug("remote_magics: a message for an unknown channel was dropped")
        return
    channel._deliver(msg, conn)


def acknowledged(msg: dict) -> None:
    """Hand the engine's ``remote_channel_ack`` (on control) to its channel: room to send more."""
    channel = _open.get(msg["content"].get("channel", ""))
    if channel is not None:
        channel._acknowledged(msg["content"])


for _kind in (protocol.CHANNEL_DATA, protocol.CHANNEL_CLOSE):
    handle_iopub(_kind, deliver)
handle_control(protocol.CHANNEL_ACK, acknowledged)


class Channel:
    """The notebook's end of a channel to cells on ``target`` (the current target by default)."""

    def __init__(self, target: Target | None = None) -> None:
        if target is None:
            target = registry.get()
        self.target = target
        self.id = secrets.token_hex(16)
        self._items: deque = deque()
        self._cond = threading.Condition(threading.RLock())
        self._closed = False
        self._error: BaseException | None = None
        self._callback: Callable[[Any], Any] | None = None
        self._endmarker: Any = NO_ENDMARKER
        self.received = 0
        self._unacked_bytes = 0
        self._taken: list[int] = []  # the engine's segments we mapped: it may close them
        # to the remote cell: our sealed segments until the engine took them (same host), and
        # the bytes sent and not yet acknowledged
        self._segments = shared.Shared()
        self._room = threading.Condition()
        self._unacknowledged = 0
        weakref.finalize(self, self._segments.close)
        _open[self.id] = self

    def __reduce__(self) -> tuple:
        shipped = getattr(_state, "shipped", None)
        if shipped is not None:
            shipped.append(self)
        return attach, (self.id,)

    # --- to the remote cell ----------------------------------------------------------------

    def send(self, obj: Any) -> None:
        """Send ``obj`` to the remote cell (which takes it with ``ch.receive()``)."""
        if self._closed:
            raise OSError("the channel is closed: its run has ended")
        try:
            frames = serialize.dumps(obj)
        except Exception as err:
            raise SerializationError("the object sent on the channel", obj, err) from err
        conn = self.target.connection_for_thread()
        size = serialize.nbytes(frames)
        self._wait_for_room(conn, size)
        # same host (the engine maps our segments): each big frame is written once into a
        # sealed segment, the copy the sender may reuse its array after; else the message
        # goes whole, and zmq sends it later from its own thread, so mutable buffers are copied
        placer = self._segments if conn.shared_send else None
        out = streaming.Outgoing(conn.key, frames, protocol.STREAM_CHUNK if placer else None,
                                 shared=placer, scheme=conn.digest)
        if out.streamed:  # no room in shared memory now: the message goes whole
            self._segments.close(None, [fd for _, fd, _ in out.shared])
            out = streaming.Outgoing(conn.key, frames, None, scheme=conn.digest)
        out.frames = serialize.snapshot(out.frames)
        with self._room:
            self._unacknowledged += size
        conn.send_laid_out(protocol.CHANNEL_SEND, {"channel": self.id, "nframes": len(frames)},
                           out)

    def _wait_for_room(self, conn: Connection, size: int) -> None:
        """Wait until the engine has acknowledged enough that ``size`` more bytes fit the window.

        Acknowledgements come on the control socket of the connection that sent the messages:
        this thread's, which it reads here. One message always fits when nothing is pending.
        """
        deadline = time.monotonic() + SEND_TIMEOUT
        while True:
            while conn.serve_control(0):  # acknowledgements already in
                pass
            with self._room:
                if self._closed:
                    raise OSError("the channel is closed: its run has ended")
                if (not self._unacknowledged
                        or self._unacknowledged + size <= protocol.CHANNEL_WINDOW_BYTES):
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the remote cell read nothing from the channel for "
                                   f"{SEND_TIMEOUT:g} s")
            if conn.closed:
                raise OSError("the channel's target is disconnected")
            conn.serve_control(min(left, _ROOM_POLL))

    def _acknowledged(self, content: dict) -> None:
        taken = content.get("taken")
        if isinstance(taken, list) and taken:  # the engine maps them: our fds may go
            self._segments.close(None, [fd for fd in taken if isinstance(fd, int)])
        nbytes = content.get("nbytes")
        with self._room:
            if isinstance(nbytes, int) and nbytes > 0:
                self._unacknowledged = max(self._unacknowledged - nbytes, 0)
            self._room.notify_all()

    def close(self) -> None:
        """Close the channel on both sides: the remote ``receive`` raises EOFError."""
        self._finish(None)

    # --- from the remote cell --------------------------------------------------------------

    def receive(self, timeout: float | None = None) -> Any:
        """The next object the remote cell sent.

        Raises TimeoutError after ``timeout`` seconds, EOFError once the channel is closed and
        drained, and the run's error (a RemoteError) when the remote cell failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        idle = self._idle_main_connection()
        if idle is not None:
            idle.drain_iopub()
        with self._cond:
            if self._callback is not None:
                raise RuntimeError("this channel has a callback; receive() would never get anything")
            while not self._items:
                if self._closed:
                    if self._error is not None:
                        raise self._error
                    raise EOFError("the channel is closed and every object was received")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"nothing arrived on the channel within {timeout:g} s")
                if idle is None:
                    self._cond.wait(remaining)
                    continue
                self._cond.wait(_DRAIN_EVERY if remaining is None else min(remaining,
                                                                           _DRAIN_EVERY))
                self._cond.release()  # the job's thread delivers meanwhile
                try:
                    idle.drain_iopub()
                finally:
                    self._cond.acquire()
            return self._items.popleft()

    def _idle_main_connection(self) -> Connection | None:
        """The target's main connection when the notebook's own thread reads (so no request of
        its waits now), else None.

        It subscribes to all of the engine's iopub, so what an ``--async`` cell sends, relayed by
        the job's connection, queues there too, unread: on the network path the whole stream
        would pile up in the notebook's memory until its next request. Reading drops it.
        """
        if threading.current_thread() is not threading.main_thread():
            return None
        conn = self.target.connection
        return None if conn.closed else conn

    def __iter__(self) -> "Channel":
        return self

    def __next__(self) -> Any:
        try:
            return self.receive()
        except EOFError:
            raise StopIteration from None

    def setcallback(self, callback: Callable[[Any], Any], endmarker: Any = NO_ENDMARKER) -> None:
        """Call ``callback(obj)`` for each object, queued ones first; ``callback(endmarker)`` at close.

        Callbacks run on the thread that relays the run (the job's thread for ``--async``).
        """
        with self._cond:
            if self._callback is not None:
                raise RuntimeError("this channel already has a callback")
            while self._items:
                callback(self._items.popleft())
            if self._closed:
                if endmarker is not NO_ENDMARKER:
                    callback(endmarker)
                return
            self._callback, self._endmarker = callback, endmarker

    def waitclose(self, timeout: float | None = None) -> None:
        """Wait until the channel closes; raise the run's error if it failed, TimeoutError past ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"the channel did not close within {timeout:g} s")
                self._cond.wait(remaining)
            if self._error is not None:
                raise self._error

    def isclosed(self) -> bool:
        """Whether the channel is closed (its run ended, or one side closed it)."""
        return self._closed

    # --- the relay's side ------------------------------------------------------------------

    def _deliver(self, msg: dict, conn: Connection) -> None:
        content = msg["content"]
        if msg["msg_type"] == protocol.CHANNEL_CLOSE:
            self._finish(None)
            return
        frames = msg["buffers"][: content.get("nframes", 0)]
        if not streaming.message_ok(self.target.connection.key, content, frames):
            log.error("remote_magics: dropped a channel message whose frames fail their digest")
            return
        self._taken.extend(shared.shared_fds(content))  # same host: big frames in segments
        try:
            if content.get("ported"):  # elsewhere: big frames by the relaying connection's link
                if conn.link is None:
                    raise streaming.StreamError("its big frames came by a data port link this "
                                                "connection does not have")
                frames = conn.link.claim(content, frames)
            frames = shared.attach_shared(content, frames)
        except streaming.StreamError as err:
            log.error("remote_magics: dropped a channel message: %s", err)
            return
        obj = serialize.loads(frames)
        self._unacked_bytes += serialize.nbytes(frames)
        if ((self.received + 1) % protocol.CHANNEL_ACK_EVERY == 0
                or self._unacked_bytes >= protocol.CHANNEL_WINDOW_BYTES // 4):  # sender's window
            self._unacked_bytes = 0
            self._send_control(protocol.CHANNEL_ACK, {"count": self.received + 1})
        with self._cond:
            self.received += 1
            if self._callback is None:
                self._items.append(obj)
                self._cond.notify_all()
                return
            self._call(obj)

    def _call(self, obj: Any) -> None:
        try:
            self._callback(obj)
        except Exception:  # one bad callback must not stop the run's relay
            log.exception("remote_magics: a channel callback raised")
            print(f"remote_magics: the channel callback raised {sys.exc_info()[1]!r}",
                  file=sys.stderr)

    def _finish(self, error: BaseException | None) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._error = error
            self._cond.notify_all()
            if self._callback is not None and self._endmarker is not NO_ENDMARKER:
                self._call(self._endmarker)
        self._tell_remote_closed()  # frees the engine's end
        self._segments.close()  # what the engine took it maps; the rest is not needed

    def _tell_remote_closed(self) -> None:
        self._send_control(protocol.CHANNEL_CLOSE, {})

    def _send_control(self, msg_type: str, content: dict) -> None:
        taken, self._taken = self._taken, []
        if taken:  # the engine may close these now: our mappings keep the bytes
            content = dict(content, taken=taken)
        try:
            conn = self.target.connection_for_thread()
            if not conn.closed:
                conn.send(msg_type, dict(content, channel=self.id), channel="control")
        except Exception:  # the kernel is gone: nothing remote to tell
            log.debug("remote_magics: could not send %s", msg_type, exc_info=True)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<Channel {state} to target '{self.target.name}', "
                f"{len(self._items)} waiting, {self.received} received>")
