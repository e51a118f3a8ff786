"""Channels, engine side: the ``ch`` a remote cell sends to and receives from (execnet's model).

A notebook :class:`~remote_magics.channels.Channel` pickles as a call of :func:`attach` with its
id, so a cell that reads ``ch`` gets the :class:`Channel` of this module with that id. What the
cell sends goes out on iopub as ``remote_channel_data``, with the run as its parent, so the
client that relays the run receives it, with the run's agreed digest; on the same host its big
frames go in sealed segments (:mod:`remote_magics.wire.streaming`), closed when the notebook's
acknowledgements list them as taken. What the notebook sends comes in on the control
channel (``remote_channel_send``): the shell is busy running the cell, and ipykernel serves
control on a thread of its own, through the ports (and tunnels) the connection already has.

Shipped as source with the engine: standard library, ipykernel and cloudpickle only.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Any

from ..wire import protocol, serialize, streaming

_channels: dict[str, "Channel"] = {}
_lock = threading.Lock()
_engine: Any = None
_CLOSED = object()  # queued when the notebook closes the channel
#: Seconds ``send`` waits for the notebook to acknowledge earlier messages before it gives up.
SEND_TIMEOUT = 300.0


def install(engine: Any) -> None:
    """Serve the notebook's side of channels on the kernel's control channel."""
    global _engine
    _engine = engine
    engine.kernel.control_handlers[protocol.CHANNEL_SEND] = _on_send
    engine.kernel.control_handlers[protocol.CHANNEL_CLOSE] = _on_close
    engine.kernel.control_handlers[protocol.CHANNEL_ACK] = _on_ack


def _get(channel_id: str, client: str) -> "Channel | None":
    """The channel, made if new; None when another client owns it (its id shows on iopub)."""
    with _lock:
        channel = _channels.get(channel_id)
        if channel is None:  # the notebook may send before the cell that reads it starts
            channel = _channels[channel_id] = Channel(channel_id)
        if not channel._owner:
            channel._owner = client
        if client != channel._owner:
            _engine.kernel.log.error("remote_magics: dropped a message for channel %s from "
                                     "another client than its own", channel_id[:8])
            return None
        return channel


def attach(channel_id: str) -> "Channel":
    """Called by the unpickler when a cell reads a notebook channel: the engine's end of it."""
    running = getattr(_engine, "running", None)
    channel = _get(channel_id, protocol.client_of(running) if running else "")
    if channel is None:
        raise LookupError(f"channel {channel_id[:8]} belongs to another client")
    channel._parent = running
    return channel


def _on_send(stream, ident, parent) -> None:
    if not _engine.authentic(parent):
        return
    content, client = parent["content"], protocol.client_of(parent)
    frames = list(parent["buffers"][: content.get("nframes", 0)])
    channel = _get(content.get("channel", ""), client)
    if channel is not None:
        channel._incoming.put((frames, client))


def _owned(parent: dict) -> "Channel | None":
    """The existing channel a control message names, if its sender is the channel's client."""
    channel_id, client = parent["content"].get("channel", ""), protocol.client_of(parent)
    with _lock:
        channel = _channels.get(channel_id)
        if channel is None or not client or client != channel._owner:
            return None
        return channel


def _release(channel: "Channel", content: dict) -> None:
    """Close the segments the notebook says it has mapped (``taken``): only its own."""
    taken = content.get("taken")
    if isinstance(taken, list) and taken:
        _engine.shared.close(channel._owner, [fd for fd in taken if isinstance(fd, int)])


def _on_ack(stream, ident, parent) -> None:
    channel = _owned(parent)
    if channel is not None:
        _release(channel, parent["content"])
        channel._acked(int(parent["content"].get("count", 0)))


def _on_close(stream, ident, parent) -> None:
    channel = _owned(parent)
    if channel is not None:
        _release(channel, parent["content"])
        with _lock:
            _channels.pop(channel.id, None)
        channel._incoming.put(_CLOSED)


class Channel:
    """The remote cell's end of a channel: ``send(obj)``, ``receive(timeout)``, iteration, ``close()``."""

    def __init__(self, channel_id: str) -> None:
        self.id = channel_id
        self._incoming: queue.Queue = queue.Queue()
        self._parent: dict | None = None
        self._owner = ""  # the secret of the client whose channel this is (protocol.client_of)
        self._closed = False
        self._eof = False
        self._window = threading.Condition()
        self._sizes: deque = deque()  # sizes of the messages sent and not yet acknowledged
        self._sent = 0
        self._acknowledged = 0

    def send(self, obj: Any) -> None:
        """Send ``obj`` to the notebook (cloudpickle, out-of-band buffers as frames of their own)."""
        if self._closed:
            raise OSError(f"channel {self.id} is closed")
        frames = serialize.dumps(obj)
        size = serialize.nbytes(frames)
        with self._window:  # wait for the notebook to catch up: iopub drops what overflows
            if not self._window.wait_for(self._room_for(size), timeout=SEND_TIMEOUT):
                raise TimeoutError(f"the notebook took nothing from channel {self.id} for "
                                   f"{SEND_TIMEOUT:g} s")
            self._sent += 1
            self._sizes.append(size)
        self._publish(protocol.CHANNEL_DATA, {"nframes": len(frames)}, frames)

    def _room_for(self, size: int):
        def room() -> bool:
            pending = self._sent - self._acknowledged
            return pending == 0 or (pending < protocol.CHANNEL_WINDOW and
                                    sum(self._sizes) + size <= protocol.CHANNEL_WINDOW_BYTES)
        return room

    def _acked(self, count: int) -> None:
        with self._window:
            while self._acknowledged < min(count, self._sent):
                self._acknowledged += 1
                self._sizes.popleft()
            self._window.notify_all()

    def receive(self, timeout: float | None = None) -> Any:
        """The next object the notebook sent; TimeoutError after ``timeout`` s, EOFError once closed."""
        if self._eof:
            raise EOFError(f"channel {self.id} was closed by the notebook")
        try:
            frames = self._incoming.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"nothing received on channel {self.id} within {timeout} s") from None
        if frames is _CLOSED:
            self._eof = True
            raise EOFError(f"channel {self.id} was closed by the notebook")
        frames, client = frames
        with serialize.resolving(_engine.resolver(client)):  # proxies in it resolve here
            return serialize.loads(frames)

    def __iter__(self):
        while True:
            try:
                yield self.receive()
            except EOFError:
                return

    def close(self) -> None:
        """Tell the notebook that this side sends no more."""
        if not self._closed:
            self._closed = True
            self._publish(protocol.CHANNEL_CLOSE, {}, [])

    def isclosed(self) -> bool:
        """Whether this side has closed the channel."""
        return self._closed

    def _publish(self, msg_type: str, content: dict, frames: list) -> None:
        engine = _engine
        request = (self._parent or {}).get("content", {})
        # the digest the notebook asked for in the run's request (keyed BLAKE3 where agreed)
        scheme = protocol.agreed_scheme([request.get("digest_scheme")])
        # same host (the notebook maps our segments): each big frame is written once into a
        # sealed segment the notebook maps, instead of copied through iopub and digested twice
        shared = engine.shared if request.get("shared_ok") is True else None
        out = streaming.Outgoing(engine.key, frames, protocol.STREAM_CHUNK if shared else None,
                                 shared=shared, owner=self._owner, scheme=scheme)
        if out.streamed:  # no room in shared memory now: iopub carries the message whole
            engine.shared.close(self._owner, [fd for _, fd, _ in out.shared])
            out = streaming.Outgoing(engine.key, frames, None, scheme=scheme)
        # what goes whole leaves on ipykernel's io thread later: copy mutable buffers, so the
        # cell may reuse an array it has sent
        out.frames = [frame if isinstance(frame, bytes) or memoryview(frame).readonly
                      else bytes(frame) for frame in out.frames]
        content = out.seal(dict(content, channel=self.id))
        engine.session.send(engine.kernel.iopub_socket, msg_type, content, parent=self._parent,
                            ident=b"remote_channel", buffers=out.frames)

    def __repr__(self) -> str:
        return f"<remote channel {self.id}{' closed' if self._closed else ''}>"
