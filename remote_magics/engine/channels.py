"""Channels, engine side: the ``ch`` a remote cell sends to and receives from (execnet's model).

A notebook :class:`~remote_magics.channels.Channel` pickles as a call of :func:`attach` with its
id, so a cell that reads ``ch`` gets the :class:`Channel` of this module with that id. What the
cell sends goes out on iopub as ``remote_channel_data``, with the run as its parent, so the
client that relays the run receives it, with the run's agreed digest; on the same host its big
frames go in sealed segments (:mod:`remote_magics.wire.streaming`), closed when the notebook's
acknowledgements list them as taken. What the notebook sends comes in on the control
channel (``remote_channel_send``): the shell is busy running the cell, and ipykernel serves
control on a thread of its own, through the ports (and tunnels) the connection already has. On
the same host its big frames come in the notebook's sealed segments, mapped here on arrival.
Each message is acknowledged to the socket that sent it (``remote_channel_ack`` on control) as
soon as the cell has room for it (:data:`~..wire.protocol.CHANNEL_WINDOW_BYTES` unread), so the
notebook's sends are paced by what the cell reads and never pile up here.

Shipped as source with the engine: standard library, ipykernel and cloudpickle only.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..wire import dataport, protocol, serialize, shared, streaming

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
    if channel is None:
        return
    try:  # same host: its big frames are the notebook's sealed segments, mapped in place here
        frames = shared.attach_shared(content, frames)
    except streaming.StreamError as err:
        _engine.kernel.log.error("remote_magics: dropped a message for channel %s: %s",
                                 channel.id[:8], err)
        return
    channel._arrived(_Item(frames, client, serialize.nbytes(frames), list(ident),
                           shared.shared_fds(content)))


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
        channel._arrived(_CLOSED)


@dataclass
class _Item:
    """One message from the notebook, until the cell reads it."""

    frames: list
    client: str
    nbytes: int
    ident: list  # the notebook socket that sent it: its acknowledgement goes there
    taken: list = field(default_factory=list)  # the notebook's segments it came in
    acked: bool = False


def _control_thread(callback) -> None:
    """Run ``callback`` on the control thread, which alone may send on the control socket."""
    stream = getattr(_engine.kernel, "control_stream", None)
    if stream is not None:
        stream.io_loop.add_callback(callback)


class Channel:
    """The remote cell's end of a channel: ``send(obj)``, ``receive(timeout)``, iteration, ``close()``."""

    def __init__(self, channel_id: str) -> None:
        self.id = channel_id
        self._incoming: deque = deque()  # _Item (or _CLOSED) from the notebook, until read
        self._owed: list[_Item] = []  # read before they were acknowledged
        self._arrival = threading.Condition()
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
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._arrival:
            while not self._incoming:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"nothing received on channel {self.id} within "
                                       f"{timeout} s")
                self._arrival.wait(left)
            item = self._incoming.popleft()
            if item is not _CLOSED and not item.acked:
                self._owed.append(item)
            owing = bool(self._owed) or any(not waiting.acked for waiting in self._incoming
                                            if waiting is not _CLOSED)
        if owing:  # room for more now: acknowledge what the notebook waits for
            _control_thread(self._acknowledge)
        if item is _CLOSED:
            self._eof = True
            raise EOFError(f"channel {self.id} was closed by the notebook")
        frames, item.frames = item.frames, []  # an item owed an acknowledgement holds no bytes
        with serialize.resolving(_engine.resolver(item.client)):  # proxies in it resolve here
            return serialize.loads(frames)

    def _arrived(self, item: Any) -> None:
        """On the control thread: a message (or the notebook's close) for the cell to read."""
        with self._arrival:
            self._incoming.append(item)
            self._arrival.notify_all()
        if item is not _CLOSED:
            self._acknowledge()

    def _acknowledge(self) -> None:
        """On the control thread: acknowledge each message the cell has room for, to its sender.

        Room: the unread bytes up to and including it are within the window, or it is the next
        to read, or no cell holds the channel yet (what is sent ahead waits here, as before).
        """
        acks: dict[tuple, list] = {}
        with self._arrival:
            due, self._owed = self._owed, []
            unread = 0
            for position, item in enumerate(self._incoming):
                if item is _CLOSED:
                    break
                unread += item.nbytes
                if item.acked:
                    continue
                if (self._parent is not None and position > 0
                        and unread > protocol.CHANNEL_WINDOW_BYTES):
                    break
                due.append(item)
            for item in due:
                item.acked = True
                ack = acks.setdefault(tuple(item.ident), [0, []])
                ack[0] += item.nbytes
                ack[1].extend(item.taken)
        for ident, (nbytes, taken) in acks.items():
            try:
                streaming.send(_engine.session, _engine.kernel.control_stream,
                               protocol.CHANNEL_ACK, {"channel": self.id, "nbytes": nbytes,
                                                      "taken": taken}, [], _engine.key,
                               ident=list(ident), chunk=None)
            except Exception:  # the kernel is shutting down: nobody waits for it
                _engine.kernel.log.debug("remote_magics: could not acknowledge channel %s",
                                         self.id[:8], exc_info=True)

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
        placer = engine.shared if request.get("shared_ok") is True else None
        # elsewhere: big frames by the data-port link of the client that relays the run. Only
        # that connection reads them (iopub would give every connection of the notebook a
        # copy), they are in the socket's buffers when ``port`` returns (no copy for ZeroMQ's
        # thread), and the link digests them while they go
        link = (engine.data_link(self._parent) if placer is None and self._parent is not None
                and dataport.big_frames(frames) else None)
        if link is not None:
            try:
                frames, ported = dataport.port(link, frames, scheme)
                content = dict(content, ported=ported)
            except OSError as err:  # the link is closed now: the message goes whole on iopub
                engine.kernel.log.warning("remote_magics: data port failed (%s); channel %s "
                                          "sends on iopub", err, self.id[:8])
        out = streaming.Outgoing(engine.key, frames, protocol.STREAM_CHUNK if placer else None,
                                 shared=placer, owner=self._owner, scheme=scheme)
        if out.streamed:  # no room in shared memory now: iopub carries the message whole
            engine.shared.close(self._owner, [fd for _, fd, _ in out.shared])
            out = streaming.Outgoing(engine.key, frames, None, scheme=scheme)
        # what goes whole leaves on ipykernel's io thread later: copy mutable buffers, so the
        # cell may reuse an array it has sent
        out.frames = serialize.snapshot(out.frames)
        content = out.seal(dict(content, channel=self.id))
        engine.session.send(engine.kernel.iopub_socket, msg_type, content, parent=self._parent,
                            ident=b"remote_channel", buffers=out.frames)

    def __repr__(self) -> str:
        return f"<remote channel {self.id}{' closed' if self._closed else ''}>"
