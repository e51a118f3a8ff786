"""One connection to a remote kernel: its ZeroMQ sockets, signed messages, and the wait for a reply.

The notebook kernel runs its own event loop, so nothing here runs asyncio: :meth:`Connection.request`
polls the sockets directly, relays the iopub messages of its request as they arrive, watches the
heartbeat, and turns a KeyboardInterrupt (the stop button) into an interrupt of the remote kernel.
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import zmq
from jupyter_client.session import Session

from . import protocol, streaming
from .errors import ConnectionLost
from .waiting import HEARTBEAT_INTERVAL, Pending

log = logging.getLogger(__name__)

#: iopub messages relayed per wake-up at most (a flood of output must not starve the heartbeat).
RELAY_BATCH = 500
#: Bytes of an upload sent ahead of the engine's acknowledgements (it digests them meanwhile).
UPLOAD_WINDOW = 4 * protocol.STREAM_CHUNK
#: Seconds of chunks of a download taken per wake-up at most (the heartbeat gets its turn).
CHUNK_BUDGET = 0.2


@dataclass
class Reply:
    """A reply message: its content, its binary frames, and what the exchange cost."""

    msg_type: str
    content: dict
    frames: list = field(default_factory=list)
    bytes_sent: int = 0
    bytes_received: int = 0


class Connection:
    """The sockets of one kernel, described by its connection info (the connection file's dict).

    ``interrupt`` interrupts the kernel by other means than the control channel (a signal, for a
    kernel we started); ``exit_status`` returns the kernel process's exit status, or None while
    it runs, when we can know it.
    """

    def __init__(
        self,
        info: dict,
        *,
        name: str,
        interrupt: Callable[[], None] | None = None,
        exit_status: Callable[[], int | None] | None = None,
        heartbeat_timeout: float = 3.0,
    ) -> None:
        self.name = name
        self.info = info
        self._interrupt = interrupt
        self._exit_status = exit_status
        self.heartbeat_timeout = heartbeat_timeout
        key = info.get("key", "")
        self.key = key.encode() if isinstance(key, str) else key
        self.session = Session(
            key=self.key, signature_scheme=info.get("signature_scheme", "hmac-sha256")
        )
        self.context = zmq.Context()
        self.shell = self._socket(zmq.DEALER, "shell_port")
        self.control = self._socket(zmq.DEALER, "control_port")
        self.iopub = self._socket(zmq.SUB, "iopub_port")
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.hb = self._socket(zmq.DEALER, "hb_port")
        self.poller = zmq.Poller()
        for sock in (self.shell, self.iopub, self.hb):
            self.poller.register(sock, zmq.POLLIN)
        self.closed = False
        self._incoming = streaming.Incoming(self.key)  # the awaited reply's streamed frames

    def _socket(self, kind: int, port_key: str) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        if kind == zmq.SUB:
            sock.rcvhwm = 0  # never drop a cell's output on our side
        elif port_key == "shell_port":  # a download's chunks wait on the engine, uncopied
            sock.rcvhwm = streaming.RECEIVE_QUEUE
        if self.info.get("curve_publickey"):  # a kernel bound to a network address: CurveZMQ
            public = self.info["curve_publickey"]
            public = public.encode() if isinstance(public, str) else public
            secret = self.info.get("curve_secretkey")
            sock.curve_serverkey = public
            if secret is None:  # a tcp:// URL names only the server's key: a key pair of our own
                if not hasattr(self, "_curve_keys"):
                    self._curve_keys = zmq.curve_keypair()
                public, secret = self._curve_keys
            sock.curve_publickey = public  # Jupyter's scheme: clients reuse the kernel's keypair
            sock.curve_secretkey = secret.encode() if isinstance(secret, str) else secret
        transport = self.info.get("transport", "tcp")
        ip = self.info.get("ip", "127.0.0.1")
        port = self.info[port_key]
        address = f"{transport}://{ip}:{port}" if transport == "tcp" else f"{transport}://{ip}-{port}"
        sock.connect(address)
        return sock

    # --- sending -------------------------------------------------------------------------

    def send(self, msg_type: str, content: dict, frames: Sequence = (), *, channel: str = "shell",
             on_progress: Callable[[str, int, int], None] | None = None) -> str:
        """Sign and send a message (with a digest of its frames); returns its msg_id.

        On the shell channel, big frames are streamed ahead of the message (:mod:`.streaming`),
        paced by the engine's acknowledgements, which ``on_progress("upload", done, total)``
        follows. Raises :class:`ConnectionLost` when the engine refuses a chunk or goes away.
        """
        if channel == "control":  # a channel's messages stay whole
            msg = streaming.send(self.session, self.control, msg_type, content, frames, self.key,
                                 chunk=None)
            return msg["header"]["msg_id"]
        window = streaming.Window(UPLOAD_WINDOW, on_progress, self._next_ack,
                                  self._upload_stalled, interval=HEARTBEAT_INTERVAL)
        try:
            msg = streaming.send(self.session, self.shell, msg_type, content, frames, self.key,
                                 window=window)
        except streaming.StreamError as err:
            raise ConnectionLost(f"target '{self.name}' refused an upload ({err}): its data was "
                                 "altered on the way, and nothing ran. Run it again.") from None
        window.finish()
        return msg["header"]["msg_id"]

    def _next_ack(self, timeout: float) -> dict | None:
        """During an upload, the next iopub message: an acknowledgement's content, else {}."""
        if not self.iopub.poll(max(int(timeout * 1000), 1)):
            return None
        msg = self._recv(self.iopub)  # no request of ours runs yet: nothing else to relay
        return msg["content"] if msg is not None and msg["msg_type"] == protocol.CHUNK_ACK else {}

    def _upload_stalled(self) -> None:
        """An upload is not acknowledged: fine if the kernel still answers, else raise."""
        if not self.ping(self.heartbeat_timeout):
            raise ConnectionLost(
                f"target '{self.name}' stopped answering its heartbeat during an upload: its "
                "kernel died, was stopped, or the network to it is down. Check the kernel's "
                f"host; %remote_connect --restart {self.name} restarts a kernel we started.")

    def interrupt(self) -> None:
        """Interrupt the remote kernel: by signal when we own it, else on the control channel."""
        if self._interrupt is not None:
            self._interrupt()
        else:
            self.send("interrupt_request", {}, channel="control")

    # --- receiving -----------------------------------------------------------------------

    def _recv(self, sock: zmq.Socket) -> dict | None:
        """One signed message from ``sock``, or None for one that fails its signature."""
        raw = sock.recv_multipart(copy=False)
        try:
            _, parts = self.session.feed_identities(raw, copy=False)
            return protocol.unpack_message(self.session, parts)
        except Exception:
            log.warning("remote_magics: dropped a message from '%s' that failed its signature check",
                        self.name)
            return None

    def request(
        self,
        msg_type: str,
        content: dict,
        frames: Sequence = (),
        *,
        timeout: float | None = None,
        on_output: Callable[[dict], None] | None = None,
        answer_required: bool = True,
        patience: float | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> Reply | None:
        """Send a request and wait for its reply, relaying its output to ``on_output``.

        Returns once both the reply and the kernel's idle status for the request are in, so every
        output has been relayed. Raises :class:`RemoteTimeout` past ``timeout`` seconds (after
        interrupting the remote), :class:`RemoteKernelDied` or :class:`ConnectionLost` when the
        kernel dies or stops answering, and KeyboardInterrupt after interrupting the remote when
        the user interrupts us. With ``answer_required=False``, a request the kernel does not know
        (idle status, no reply) returns None. ``patience`` gives up waiting after that many
        seconds without interrupting anything (for requests that queue behind a busy kernel).
        ``on_progress(direction, done, total)`` follows the bytes of a streamed upload or
        download ("upload" or "download"), chunk by chunk.
        """
        return self.start(msg_type, content, frames, timeout=timeout, on_output=on_output,
                          answer_required=answer_required, patience=patience,
                          on_progress=on_progress).wait()

    def start(
        self,
        msg_type: str,
        content: dict,
        frames: Sequence = (),
        *,
        timeout: float | None = None,
        on_output: Callable[[dict], None] | None = None,
        answer_required: bool = True,
        patience: float | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> "Pending":
        """Send a request and return it in flight; :func:`wait_all` waits for many at once."""
        if self.closed:
            raise ConnectionLost(f"the connection to '{self.name}' is closed; reconnect with "
                                 f"%remote_connect")
        sent = sum(memoryview(f).nbytes for f in frames)
        self._incoming.clear()  # what an abandoned request left half-downloaded
        msg_id = self.send(msg_type, content, frames, on_progress=on_progress)
        self._incoming = streaming.Incoming(
            self.key, functools.partial(on_progress, "download") if on_progress else None)
        return Pending(self, msg_id, sent, timeout, on_output, answer_required, patience)

    def _take_reply(self, msg_id: str) -> Reply | None:
        """The reply to ``msg_id`` if it is in; chunks streamed ahead of it are put in place.

        Takes chunks for at most :data:`CHUNK_BUDGET` seconds, so a long download leaves the
        heartbeat its turn. Raises :class:`ConnectionLost` for a reply whose chunks were dropped.
        """
        found = None
        budget = time.monotonic() + CHUNK_BUDGET
        while found is None and self.shell.poll(0):
            msg = self._recv(self.shell)
            if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                continue  # late replies of requests we stopped waiting for
            content, frames = msg["content"], msg["buffers"]
            if msg["msg_type"] == protocol.CHUNK:
                try:
                    self._incoming.add(content, frames)
                except streaming.StreamError as err:
                    log.error("remote_magics: dropped a chunk from '%s': %s", self.name, err)
                if time.monotonic() > budget:
                    break
                continue
            if msg["msg_type"] in protocol.REPLY_TYPES:  # Jupyter's own replies carry no digest
                if not streaming.message_ok(self.key, content, frames):
                    log.error("remote_magics: dropped a reply from '%s' whose frames fail their "
                              "digest", self.name)
                    continue
                try:
                    frames = self._incoming.claim(content, frames)
                except streaming.StreamError as err:
                    log.error("remote_magics: dropped a reply from '%s': %s", self.name, err)
                    raise ConnectionLost(
                        f"the reply from target '{self.name}' arrived damaged ({err}: a chunk of "
                        "it failed its digest check or went missing) and was dropped; the "
                        "connection may be corrupting data. Run the cell again.") from None
            found = Reply(msg["header"]["msg_type"], content, frames,
                          bytes_received=sum(memoryview(f).nbytes for f in frames))
        return found

    @property
    def chunk_at(self) -> float:
        """When (``time.monotonic()``) a chunk of the awaited reply last came; 0.0 before any.

        A reply whose chunks still come after the request's idle status is late, not missing.
        """
        return self._incoming.arrived_at

    def _relay(self, msg_id: str, on_output: Callable[[dict], None] | None) -> float | None:
        idle_at = None
        for _ in range(RELAY_BATCH):  # bounded, so heartbeats and deadlines get their turn
            if not self.iopub.poll(0):
                break
            msg = self._recv(self.iopub)
            if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == protocol.OUTPUT_DONE:
                idle_at = time.monotonic()
            elif msg["msg_type"] == "status":
                if msg["content"].get("execution_state") == "idle":
                    idle_at = time.monotonic()
            elif on_output is not None:
                on_output(msg)
        return idle_at

    def wait_ready(self, timeout: float, alive: Callable[[], bool] | None = None) -> bool:
        """Wait until the kernel answers a ``kernel_info_request`` and its iopub reaches us.

        A new SUB socket misses messages until its subscription is live, so we ask again until
        the kernel's status for one of our requests arrives. False after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                return False
            msg_id = self.send("kernel_info_request", {})
            replied = published = False
            until = min(time.monotonic() + 1.0, deadline)
            while time.monotonic() < until and not (replied and published):
                ready = dict(self.poller.poll(max(int((until - time.monotonic()) * 1000), 1)))
                for sock in (self.shell, self.iopub):
                    while sock in ready and sock.poll(0):
                        msg = self._recv(sock)
                        if msg is not None and msg["parent_header"].get("msg_id") == msg_id:
                            replied = replied or sock is self.shell
                            published = published or sock is self.iopub
                if self.hb in ready:
                    while self.hb.poll(0):
                        self.hb.recv()
            if replied and published:
                return True
        return False

    def ping(self, timeout: float) -> bool:
        """Whether the kernel's heartbeat answers within ``timeout`` seconds."""
        while self.hb.poll(0):
            self.hb.recv()
        self.hb.send(b"ping")
        return bool(self.hb.poll(int(timeout * 1000)) and self.hb.recv())

    def exit_status(self) -> int | None:
        """The kernel process's exit status if it has ended and we can know it, else None."""
        return self._exit_status() if self._exit_status is not None else None

    def close(self) -> None:
        """Close the sockets and their context; the kernel itself is not touched."""
        if not self.closed:
            self.closed = True
            self._incoming.clear()
            self.context.destroy(linger=0)
