"""One connection to a remote kernel: its ZeroMQ sockets, signed messages, requests in flight.

The notebook kernel runs its own event loop, so nothing here runs asyncio: :meth:`Connection.request`
polls the sockets directly, relays the iopub messages of its request as they arrive, watches the
heartbeat, and turns a KeyboardInterrupt (the stop button) into an interrupt of the remote kernel.

A :class:`Pending` is one request sent on a :class:`Connection`, until its reply and its
``remote_output_done`` (or idle status) are in; :func:`wait_all` waits for many on one poll, so
N kernels run in parallel without threads. While waiting it relays output, pings the heartbeat,
watches the kernel process, and turns a timeout or the stop button into an interrupt.
"""
from __future__ import annotations

import builtins
import collections
import functools
import getpass
import itertools
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import zmq
from jupyter_client.session import Session

from ..engine import curve
from ..errors import ConnectionLost, RemoteInterrupt, RemoteKernelDied, RemoteTimeout
from ..wire import dataport, protocol, shared, streaming

log = logging.getLogger(__name__)

#: Seconds between heartbeat pings while we wait.
HEARTBEAT_INTERVAL = 1.0
#: Seconds a reply may trail its request's idle status (they come on different sockets).
REPLY_GRACE = 10.0
#: Seconds we wait for the remote kernel to answer an interrupt before giving up on it.
INTERRUPT_GRACE = 5.0
#: Seconds between checks of whether a kernel process we can see has exited.
STATUS_INTERVAL = 0.5
#: Seconds a request waits for its reply before we ask the engine what it knows of it
#: (:mod:`..engine.activity`), then seconds between two such questions.
STATUS_ASK_AFTER = 2.0
STATUS_ASK_EVERY = 1.0
#: Seconds an engine that has not seen a request must have been idle, at two answers in a
#: row, for the request to count as lost; longer for one that streamed chunks, whose last
#: chunks and the request itself may still be on a slow link (another connection than the
#: question's).
LOST_IDLE = 3.0
LOST_IDLE_STREAMED = 60.0
#: iopub messages relayed per wake-up at most (a flood of output must not starve the heartbeat).
RELAY_BATCH = 500
#: Bytes of an upload sent ahead of the engine's acknowledgements (it digests them meanwhile).
UPLOAD_WINDOW = 4 * protocol.STREAM_CHUNK
#: Seconds to open and authenticate a link to an engine's data port before using chunks instead.
DATA_PORT_TIMEOUT = 5.0
#: Seconds between progress updates of a download arriving by the data port.
PROGRESS_INTERVAL = 0.1
#: Seconds of chunks of a download taken per wake-up at most (the heartbeat gets its turn).
CHUNK_BUDGET = 0.2
#: Seconds a wait looks at its sockets without sleeping before it sleeps on them: an answer
#: within it (a small cell's, a proxy's attribute) is taken without waking this thread, which
#: cost a null cell about 0.1 ms on a two-core VM (half the round trip of raw ZeroMQ).
SPIN = 0.002
#: Late output messages kept for a request that shows output, at most (the oldest go first).
LATE_KEEP = 10_000
#: The line shown before output that comes after its request ended (a thread's, a child's).
LATE_MARKER = "[remote_magics: late output from an earlier cell]\n"
#: Signatures of received messages a connection remembers, to drop a message that comes twice.
RECEIVED_HISTORY = 1 << 14


_iopub_handlers: dict[str, Callable[[dict, "Connection"], None]] = {}
_control_handlers: dict[str, Callable[[dict], None]] = {}
_twin_blocks = itertools.count(1)
_thread_role = threading.local()


def mark_job_thread(queue: object) -> None:
    """Say that the calling thread runs one target's async jobs (``queue``: their queue).

    Such a thread has its own :meth:`Connection.twin`; the main connections belong to the
    notebook's thread.
    """
    _thread_role.job_queue = queue


def job_queue_of_thread() -> object | None:
    """The job queue whose worker the calling thread is, or None on any other thread."""
    return getattr(_thread_role, "job_queue", None)


class _Session(Session):
    """Jupyter's Session, whose message ids start with a token of their connection.

    So a connection knows which iopub messages answer its own earlier requests (late output),
    while twins share the session id that scopes the engine's objects.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.id_prefix = f"{secrets.token_hex(8)}_"

    @property
    def msg_id(self) -> str:
        number = self.message_count
        self.message_count += 1
        return f"{self.id_prefix}{number}"


def handle_iopub(msg_type: str, handler: Callable[[dict, "Connection"], None]) -> None:
    """Give iopub messages of ``msg_type`` (a channel's, say) to ``handler``, not to a request's
    output, with the connection that relays them (whose data-port link may hold their frames)."""
    _iopub_handlers[msg_type] = handler


def handle_control(msg_type: str, handler: Callable[[dict], None]) -> None:
    """Give control messages of ``msg_type`` that answer no request (a channel's
    acknowledgements) to ``handler``, once their digest is checked."""
    _control_handlers[msg_type] = handler


@dataclass
class Reply:
    """A reply message: its content, its binary frames, and what the exchange cost."""

    msg_type: str
    content: dict
    frames: list = field(default_factory=list)
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass
class LookupAnswer:
    """The notebook's answer to a running cell's ask for a name (``remote_lookup_answer``).

    ``frames``: the value's item when ``found``; ``watch``: the cell may change it in place;
    ``error``: why a value that exists cannot be sent.
    """

    found: bool = False
    frames: list = field(default_factory=list)
    watch: bool = False
    error: str | None = None


#: The largest buffer of a received message taken as a copy (:meth:`Connection._recv`).
HELD_COPY = 64 * 1024


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
        self.session = _Session(
            key=self.key, signature_scheme=info.get("signature_scheme", "hmac-sha256")
        )
        #: What the engine scopes our objects to: in our messages' content only, never on iopub.
        self.client_secret = secrets.token_hex(16)
        self.history = protocol.SignatureHistory(RECEIVED_HISTORY)  # replies and output, once
        self.context = zmq.Context()
        self._open(connect=True)
        #: Found gone (:meth:`park`): the sockets let go of the kernel's ports until a request
        self.parked = False
        self.closed = False
        self.taking_in = False  # a request's wait takes in what came (stops wait till it has)
        self.stop_held: streaming.uninterrupted | None = None  # a stop that came meanwhile
        self._incoming = streaming.Incoming(self.key)  # the awaited reply's streamed frames
        # same host (:meth:`agree`): big frames go by sealed shared-memory segments
        self.shared = shared.Shared()  # ours, until the engine has mapped them
        self.shared_send = False  # the engine reads our segments
        self.shared_receive = False  # we read the engine's
        self.lend_send = False  # the engine copies our big frames out of our memory
        self.pull_receive = False  # we copy the engine's out of its memory
        self.lender = 0  # the engine's pid once we copy from it: no other process's lends
        self.shared_taken: list[int] = []  # the engine's segments we mapped: it may close them
        self.digest = protocol.HMAC_SHA256  # big frames' digest, as agreed in the handshake
        # elsewhere (no shared memory): big frames by the engine's data port (:meth:`agree`)
        self.data_address: tuple[str, int] | None = None
        self.answers_status = False  # the engine says what it knows of a request (activity)
        self.use_data_port = True  # False: big frames go as chunks on the shell socket
        self.link: dataport.Link | None = None
        self.link_failed = False  # the data port could not be reached: chunks from now on
        self.port_download = False  # the awaited reply's big frames come by the link now
        self.dropped: dict[str, str] = {}  # request msg_id → why the engine dropped it
        # holding requests that are over → whether their reply reached us (protocol: settled)
        self.unsettled: dict[str, bool] = {}
        self.carried: collections.deque[str] = collections.deque()  # releases for the next request
        self.carried_uploads: collections.deque[str] = collections.deque()  # kept uploads' too
        self.late: collections.deque[dict] = collections.deque(maxlen=LATE_KEEP)
        self.late_dropped = 0  # late messages that did not fit in ``late``
        self._late_shown = False  # the marker is up: the next late message needs none
        self.restartable = False  # whether %remote_connect --restart can restart the kernel
        self.still_running: str | None = None  # a request that did not stop when interrupted
        self.still_running_since = 0.0

    def _open(self, connect: bool) -> None:
        """The kernel's four sockets (connected to its ports if ``connect``), and the poller
        over those a request waits on."""
        self._endpoints: list[tuple[zmq.Socket, str]] = []  # each socket and its kernel port
        self.shell = self._socket(zmq.DEALER, "shell_port", connect=connect)
        self.control = self._socket(zmq.DEALER, "control_port", connect=connect)
        self.iopub = self._socket(zmq.SUB, "iopub_port", connect=connect)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.hb = self._socket(zmq.DEALER, "hb_port", immediate=True, connect=connect)
        self.poller = zmq.Poller()
        for sock in (self.shell, self.iopub, self.hb):
            self.poller.register(sock, zmq.POLLIN)

    def _socket(self, kind: int, port_key: str, immediate: bool = False,
                connect: bool = True) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.immediate = immediate  # queue only to a peer that is there (see beat_out)
        if kind == zmq.SUB:
            sock.rcvhwm = 0  # never drop a cell's output on our side
        elif port_key == "shell_port":  # a download's chunks wait on the engine, uncopied
            sock.rcvhwm = streaming.RECEIVE_QUEUE
        if self.info.get("curve_publickey"):  # a kernel bound to a network address: CurveZMQ
            public = self.info["curve_publickey"]
            public = public.encode() if isinstance(public, str) else public
            secret = self.info.get("curve_secretkey")
            sock.curve_serverkey = public
            if secret is None:  # a tcp:// URL names only the server's key: the engine admits
                public, secret = curve.client_keys(self.key)  # the key pair made from key=
            sock.curve_publickey = public  # Jupyter's scheme: clients reuse the kernel's keypair
            sock.curve_secretkey = secret.encode() if isinstance(secret, str) else secret
        transport = self.info.get("transport", "tcp")
        ip = self.info.get("ip", "127.0.0.1")
        port = self.info[port_key]
        address = f"{transport}://{ip}:{port}" if transport == "tcp" else f"{transport}://{ip}-{port}"
        if connect:
            sock.connect(address)
        self._endpoints.append((sock, address))
        return sock

    def park(self) -> None:
        """Let go of the kernel's ports once it is found gone (dead, or silent past the
        heartbeat's timeout), until the user asks for it again (:meth:`reach_again`).

        Left connected, zmq keeps reconnecting to those ports every 0.1 s and hands whatever
        is queued there, and every later ping, to the next process that binds one of them:
        on a busy host, another kernel, which logs the stray frames into the cell it is
        running. Its sockets close, which drops what was queued; new ones, not connected,
        take their place (a socket disconnected and connected again to the same port did not
        always reach a kernel that had come back)."""
        if self.closed or self.parked:
            return
        for sock, _ in self._endpoints:
            sock.close(linger=0)
        self._open(connect=False)
        self.parked = True

    def reach_again(self) -> None:
        """Connect a parked connection again, for a request the user makes now: the kernel
        may be back (a network outage that ended, a kernel restarted on the same ports). It
        must answer its heartbeat first, so that a stranger now on one of its ports gets one
        ping at most, never the request; if it does not, the connection is parked again and
        :class:`ConnectionLost` says so."""
        if self.closed or not self.parked:
            return
        for sock, address in self._endpoints:
            sock.connect(address)
        self.parked = False
        if self.exit_status() is None and self.ping(self.heartbeat_timeout):
            return
        self.park()
        status = self.exit_status()
        ended = f"has ended (exit status {status})" if status is not None else (
            f"still does not answer its heartbeat ({self.heartbeat_timeout:.0f} s)")
        raise ConnectionLost(
            f"target '{self.name}' was found gone earlier and {ended}, so nothing was sent. "
            f"Check the kernel's host; if the kernel is gone, {self.restart_advice()}.")

    # --- sending -------------------------------------------------------------------------

    def send(self, msg_type: str, content: dict, frames: Sequence = (), *, channel: str = "shell",
             on_progress: Callable[[str, int, int], None] | None = None) -> str:
        """Sign and send a message (with a digest of its frames); returns its msg_id.

        On the shell channel, big frames are streamed ahead of the message (:mod:`remote_magics.wire.streaming`),
        paced by the engine's acknowledgements, which ``on_progress("upload", done, total)``
        follows. Raises :class:`ConnectionLost` when the engine refuses a chunk or goes away.
        Our own message types (and their chunks) carry :attr:`client_secret`, and so does an
        ``execute_request`` whose ``input()`` asks us (``stdin``): the engine takes our answer
        by it.
        """
        self.reach_again()
        ours = {"client": self.client_secret} if (
            msg_type.startswith("remote_") or "stdin" in content) else None
        if ours:
            content = dict(content, **ours)
        if channel == "control":  # a channel's messages stay whole
            msg = streaming.send(self.session, self.control, msg_type, content, frames, self.key,
                                 chunk=None, scheme=self.digest)
            return msg["header"]["msg_id"]
        link = (self.data_link() if ours and not self.shared_send
                and dataport.big_frames(frames) else None)
        if link is not None:
            progress = functools.partial(on_progress, "upload") if on_progress else None
            try:
                msg = dataport.send(self.session, self.shell, link, msg_type, content, frames,
                                    self.key, scheme=self.digest, on_progress=progress)
                return msg["header"]["msg_id"]
            except OSError as err:  # the link is closed: the engine never saw this transfer named
                log.warning("remote_magics: data port to '%s' failed (%s); sending as chunks",
                            self.name, err)
        window = streaming.Window(UPLOAD_WINDOW, on_progress, self._next_ack,
                                  self._upload_stalled, interval=HEARTBEAT_INTERVAL)
        try:
            msg = streaming.send(self.session, self.shell, msg_type, content, frames, self.key,
                                 window=window, chunk_fields=ours,
                                 shared=(shared.Lending(self.shared, self.lend_send)
                                         if self.shared_send else None),
                                 scheme=self.digest)
        except streaming.StreamError as err:
            raise ConnectionLost(f"target '{self.name}' refused an upload ({err}): its data was "
                                 "altered on the way, and nothing ran. Run it again.") from None
        window.finish()
        return msg["header"]["msg_id"]

    def send_laid_out(self, msg_type: str, content: dict, out: streaming.Outgoing) -> str:
        """Send on control a message whose frames ``out`` laid out (on the same host, its big
        frames in sealed segments of ``out``'s :class:`~..wire.shared.Shared`); its msg_id."""
        content = out.seal(dict(content, client=self.client_secret))
        return streaming.send_whole(self.session, self.control, msg_type, content,
                                    buffers=out.frames)["header"]["msg_id"]

    def serve_control(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a message on control that answers no request and hand
        it to its handler (:func:`handle_control`); False when none came."""
        if not self.control.poll(max(int(timeout * 1000), 0) if timeout else 0):
            return False
        msg = self._recv(self.control)
        if msg is not None and not self._handled_control(msg):
            log.debug("remote_magics: dropped a %s on control that nothing waits for",
                      msg["msg_type"])
        return True

    def _handled_control(self, msg: dict) -> bool:
        """Whether ``msg`` went to its :func:`handle_control` handler (one with a bad digest is
        dropped)."""
        handler = _control_handlers.get(msg["msg_type"])
        if handler is None:
            return False
        if streaming.message_ok(self.key, msg["content"], msg["buffers"]):
            handler(msg)
        else:
            log.error("remote_magics: dropped a %s from '%s' whose digest is wrong",
                      msg["msg_type"], self.name)
        return True

    def offer(self) -> dict:
        """What the handshake's info request carries to agree on the data path (:meth:`agree`)."""
        return {"shared_probe": shared.probe(), "digests": protocol.digest_schemes()}

    def agree(self, info: dict) -> None:
        """Use what the engine's info reply shows both sides can do: its digest for big frames
        (keyed BLAKE3 when both have it), and shared memory each way it works (same host, user).

        The engine read our probe (``shared_ok``): it can map our segments; we read its probe:
        we can map its segments, and say so in each request.
        """
        if info.get("digest_scheme") in protocol.digest_schemes():
            self.digest = info["digest_scheme"]
        self.answers_status = info.get("answers_status") is True
        self.shared_send = info.get("shared_ok") is True
        self.shared_receive = (shared.probe() is not None  # not turned off here
                               and shared.probe_ok(info.get("shared_probe")))
        # the engine copies our big frames out of our memory (uploads lent, not copied), and
        # we copy its replies' out of its memory: each way where process_vm_readv works
        self.lend_send = self.shared_send and info.get("pull_ok") is True
        self.pull_receive = self.shared_receive and shared.pull_ok(info.get("shared_probe"))
        self.lender = int(info["shared_probe"]["pid"]) if self.pull_receive else 0
        # a tunnelled kernel's connection info names the data port's local end (None: none);
        # a kernel reached directly announces its own, at the address of its other ports
        port = (self.info[protocol.DATA_PORT] if protocol.DATA_PORT in self.info
                else info.get(protocol.DATA_PORT))
        if (isinstance(port, int) and port > 0 and self.info.get("transport", "tcp") == "tcp"
                and not self.info.get("curve_publickey")):
            self.data_address = (self.info.get("ip", "127.0.0.1"), port)
        log.debug("remote_magics: target '%s': shared memory to it %s, from it %s", self.name,
                  self.shared_send, self.shared_receive)

    def data_link(self) -> "dataport.Link | None":
        """The open link to the engine's data port, opened now if need be; None to use chunks
        (no data port, turned off, or it could not be reached: then never again on this
        connection)."""
        if (not (self.use_data_port and dataport.enabled()) or self.data_address is None
                or self.link_failed):
            return None
        if self.link is not None and not self.link.closed:
            return self.link
        try:
            self.link = dataport.connect(self.data_address, self.key, self.client_secret,
                                         name=self.name, timeout=DATA_PORT_TIMEOUT)
        except OSError as err:
            self.link_failed = True
            log.warning("remote_magics: target '%s': its data port %s:%s cannot be reached (%s); "
                        "big frames go as chunks", self.name, *self.data_address, err)
            return None
        return self.link

    def _next_ack(self, timeout: float) -> dict | None:
        """During an upload, the next iopub message: an acknowledgement's content, else {}."""
        if not self.iopub.poll(max(int(timeout * 1000), 1)):
            return None
        msg = self._recv(self.iopub)  # no request of ours runs yet: only late output to keep
        if msg is not None and msg["msg_type"] == protocol.CHUNK_ACK:
            return msg["content"]
        if msg is not None and self._is_late(msg, ""):
            self._keep_late(msg)
        return {}

    def _upload_stalled(self) -> None:
        """An upload is not acknowledged: fine if the kernel still answers, else raise."""
        if self.exit_status() is None and self.ping(self.heartbeat_timeout):
            return
        self.park()
        status = self.exit_status()
        if status is not None:
            raise RemoteKernelDied(
                f"the remote kernel of target '{self.name}' died (exit status {status}) while "
                "the cell's data was being sent to it; the cell did not run. Its remote objects "
                f"are lost. To go on, {self.restart_advice()}, then run the cell again.",
                status=status)
        raise ConnectionLost(
            f"target '{self.name}' stopped answering its heartbeat during an upload: its "
            "kernel was stopped, or the network to it is down. Check the kernel's host; "
            f"{self.restart_advice()}.")

    def restart_advice(self) -> str:
        """How the user restarts this connection's kernel, as a clause of a sentence."""
        if self.restartable:
            return f"restart it with %remote_connect --restart {self.name}"
        return (f"we did not start this kernel, so restart it where it runs, then "
                f"%remote_disconnect {self.name} and %remote_connect it again")

    def abandon(self, msg_id: str) -> None:
        """Stop waiting for request ``msg_id``, which still runs: later requests queue behind it."""
        self.still_running, self.still_running_since = msg_id, time.monotonic()

    def still_running_for(self) -> float | None:
        """Seconds since we stopped waiting for a request that still runs; None when none does.

        Its reply, once in, says it has finished: the replies waiting on the shell socket are
        read (none of them is awaited now).
        """
        while self.still_running is not None and not self.closed and self.shell.poll(0):
            msg = self._recv(self.shell)
            if msg is not None and msg["parent_header"].get("msg_id") == self.still_running:
                self.still_running = None
        if self.still_running is None or self.closed:
            return None
        return time.monotonic() - self.still_running_since

    def control_request(self, msg_type: str, content: dict, *, timeout: float = 30.0) -> Reply:
        """Send one of our control requests and wait for its reply, on the control channel.

        ipykernel serves control on a thread of its own, so this is answered while a cell runs.
        Raises :class:`RemoteKernelDied` when the kernel is known to have ended, and
        :class:`ConnectionLost` after ``timeout`` seconds without the reply.
        """
        if self.closed:
            raise ConnectionLost(f"the connection to '{self.name}' is closed; reconnect with "
                                 f"%remote_connect")
        msg_id = self.send(msg_type, content, channel="control")
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = self.control_reply(msg_id, max(int(min(left, STATUS_INTERVAL) * 1000), 1))
            if reply is not None:
                return reply
            status = self.exit_status()
            if status is not None:
                raise RemoteKernelDied(f"the remote kernel of target '{self.name}' has ended "
                                       f"(exit status {status}).")
        raise ConnectionLost(f"target '{self.name}' did not answer on its control channel within "
                             f"{timeout:g} s: its kernel died, is stuck, or the network to it is "
                             "down.")

    def control_reply(self, msg_id: str, wait_ms: int = 0) -> Reply | None:
        """The reply to our control request ``msg_id`` if it comes within ``wait_ms``; None if
        not. What else comes on control goes to its handler, or is dropped (the reply of an
        interrupt, or of a request we gave up on)."""
        if not self.control.poll(wait_ms):
            return None
        while True:
            msg = self._recv(self.control)
            if msg is not None and not self._handled_control(msg) \
                    and msg["parent_header"].get("msg_id") == msg_id:
                if streaming.message_ok(self.key, msg["content"], msg["buffers"]):
                    return Reply(msg["msg_type"], msg["content"], list(msg["buffers"]))
                log.error("remote_magics: dropped a reply from '%s' whose digest is wrong",
                          self.name)
            if not self.control.poll(0):
                return None

    def watch_end(self) -> Callable[[float], bool]:
        """Watch for the kernel closing our shell connection; call the result to wait for it.

        ``wait(timeout)`` returns True once the connection has closed (the kernel ended), False
        after ``timeout`` seconds. Set up before asking the kernel to end, so no event is missed.
        """
        monitor = self.shell.get_monitor_socket(zmq.EVENT_DISCONNECTED)

        def wait(timeout: float) -> bool:
            try:
                return bool(monitor.poll(max(int(timeout * 1000), 1)))
            finally:
                self.shell.disable_monitor()
                monitor.close(0)
        return wait

    def interrupt(self) -> None:
        """Interrupt the remote kernel: by signal when we own it, else on the control channel."""
        if self._interrupt is not None:
            self._interrupt()
        else:
            self.send("interrupt_request", {}, channel="control")

    # --- receiving -----------------------------------------------------------------------

    def _recv(self, sock: zmq.Socket) -> dict | None:
        """One signed message from ``sock``, or None for one that fails its signature or that
        came before (a replay)."""
        hold = streaming.uninterrupted(later=True)
        try:
            with hold:  # the whole message, or none of it; and its frames are let go of in
                # here, where a stop is held: pyzmq checks for signals as a frame is freed, and
                # a KeyboardInterrupt raised there is lost (the stop button did nothing, CI)
                raw = sock.recv_multipart(copy=False)
                try:
                    idents, parts = self.session.feed_identities(raw, copy=False)
                    msg = protocol.unpack_message(self.session, parts, self.history)
                    # small buffers as copies, so that their frames go here too (a big one's
                    # goes when its value does, seldom)
                    msg["buffers"] = [memoryview(bytearray(buffer)) if buffer.nbytes <= HELD_COPY
                                      else buffer for buffer in msg["buffers"]]
                    return msg
                finally:
                    raw = idents = parts = None
        except protocol.Replayed as replay:
            log.warning("remote_magics: dropped a %s from '%s' that came before (a replay)",
                        replay.message["msg_type"], self.name)
            return None
        except Exception:
            log.warning("remote_magics: dropped a message from '%s' that failed its signature check",
                        self.name)
            return None
        finally:
            if hold.came is not None:  # a stop while it came in: after it is taken in, when a
                if self.taking_in:  # request's wait takes it (Pending.advance), else now
                    self.stop_held = hold
                else:
                    hold.deliver()

    def deliver_held_stop(self) -> None:
        """Raise the stop that came while a message came in (:meth:`_recv`), if one did."""
        hold, self.stop_held = self.stop_held, None
        if hold is not None:
            hold.deliver()

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
        on_lookup: Callable[[str], "LookupAnswer"] | None = None,
    ) -> Reply | None:
        """Send a request and wait for its reply, relaying its output to ``on_output``.

        Returns once both the reply and the kernel's idle status for the request are in, so every
        output has been relayed. Raises :class:`RemoteTimeout` past ``timeout`` seconds (after
        interrupting the remote), :class:`RemoteKernelDied` or :class:`ConnectionLost` when the
        kernel dies or stops answering, and :class:`RemoteInterrupt` (a KeyboardInterrupt, with
        the remote line) after interrupting the remote when the user interrupts us. A request
        that does not stop within :data:`INTERRUPT_GRACE` seconds of its interrupt is left
        running, and says so (:meth:`still_running_for` tells the next one). With
        ``answer_required=False``, a request the kernel does not know
        (idle status, no reply) returns None. ``patience`` gives up waiting after that many
        seconds without interrupting anything (for requests that queue behind a busy kernel).
        ``on_progress(direction, done, total)`` follows the bytes of a streamed upload or
        download ("upload" or "download"), chunk by chunk. ``on_lookup``: see :meth:`start`.
        """
        return self.start(msg_type, content, frames, timeout=timeout, on_output=on_output,
                          answer_required=answer_required, patience=patience,
                          on_progress=on_progress, on_lookup=on_lookup).wait()

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
        on_lookup: Callable[[str], "LookupAnswer"] | None = None,
    ) -> "Pending":
        """Send a request and return it in flight; :func:`wait_all` waits for many at once.

        ``on_lookup(name)`` answers the run's ``remote_lookup_request`` messages while we wait
        (fetch on first use; the request's ``lookup`` says the engine may ask).
        """
        if self.closed:
            raise ConnectionLost(f"the connection to '{self.name}' is closed; reconnect with "
                                 f"%remote_connect")
        sent = sum(memoryview(f).nbytes for f in frames)
        self._incoming.clear()  # what an abandoned request left half-downloaded
        settled, self.unsettled = self.unsettled, {}  # every earlier request is over
        if settled:
            content = {**content, "settled": settled}
        taken: list[int] = []
        carried = [self.carried.popleft() for _ in range(len(self.carried))]
        uploads = [self.carried_uploads.popleft() for _ in range(len(self.carried_uploads))]
        if (carried or uploads) and msg_type in protocol.REQUEST_TYPES:
            content = {**content, "release": carried, "release_uploads": uploads}
        else:  # a message that does not carry them: the next one will
            self.carried.extendleft(reversed(carried))
            self.carried_uploads.extendleft(reversed(uploads))
            carried, uploads = [], []
        if msg_type.startswith("remote_"):  # our engine's requests: how its reply may come
            taken, self.shared_taken = self.shared_taken, []
            if taken or self.shared_receive:
                content = {**content, "shared_taken": taken, "shared_ok": self.shared_receive,
                           "pull_ok": self.pull_receive and shared.pull_now(True)}
            if self.digest != protocol.HMAC_SHA256:
                content = {**content, "digest_scheme": self.digest}
            link = self.data_link() if not self.shared_receive else None
            if link is not None:  # the reply's big frames may come by it
                link.clear()  # what an abandoned request left there
                content = {**content, "data_link": link.id}
        stopped = None
        try:
            msg_id = self.send(msg_type, content, frames, on_progress=on_progress)
        except streaming.Interrupted as stop:  # the stop button as the request went
            if stop.message["header"]["msg_type"] != msg_type:  # a chunk of it: it did not go
                self._unsent(settled, taken, carried, uploads)
                raise
            msg_id, stopped = stop.message["header"]["msg_id"], stop
        except BaseException:
            self._unsent(settled, taken, carried, uploads)
            raise
        if msg_type in protocol.HOLDING_TYPES:
            self.unsettled[msg_id] = False  # until its reply is in
        self._late_shown = False
        self.port_download = False
        self._incoming = streaming.Incoming(
            self.key, functools.partial(on_progress, "download") if on_progress else None)
        pending = Pending(self, msg_id, sent, timeout, on_output, answer_required, patience,
                          on_lookup)
        # a proxy's operation is one step of the notebook's own code (`for x in p: ...`): the
        # stop button stops that code even when the operation finished before the interrupt
        # reached it, as it stops a plain loop at its next step
        pending.waiter.always_stops = msg_type == protocol.OP_REQUEST
        if stopped is not None:  # it went whole and may run: stopped as if pressed while we wait
            try:
                pending.interrupt()
            except BaseException as err:
                pending.error, pending.finished = err, True
        return pending

    def _unsent(self, settled: dict, taken: list, carried: list, uploads: list) -> None:
        """A request did not go: what it carried goes with the next one (the engine did not
        learn of it; carried twice, a release would drop a reference twice)."""
        self.unsettled = {**settled, **self.unsettled}
        self.shared_taken = taken + self.shared_taken
        self.carried.extendleft(reversed(carried))
        self.carried_uploads.extendleft(reversed(uploads))

    def carry_release(self, object_id: str) -> None:
        """Release an engine's reference with our next request (protocol: ``release``); any
        thread."""
        self.carried.append(object_id)

    def carry_upload_release(self, token: str) -> None:
        """Release a kept upload (:mod:`..cells.uploads`) with our next request (protocol:
        ``release_uploads``); any thread."""
        self.carried_uploads.append(token)

    def received(self, msg_id: str) -> None:
        """The reply to ``msg_id`` reached its caller: the objects it holds are ours to release."""
        if msg_id in self.unsettled:
            self.unsettled[msg_id] = True

    def take_reply(self, msg_id: str) -> Reply | None:
        """The reply to ``msg_id`` if it is in; chunks streamed ahead of it are put in place.

        Takes chunks for at most :data:`CHUNK_BUDGET` seconds, so a long download leaves the
        heartbeat its turn. Raises :class:`ConnectionLost` for a reply whose chunks were dropped.
        """
        found = None
        budget = time.monotonic() + CHUNK_BUDGET
        while found is None and self.shell.poll(0):
            msg = self._recv(self.shell)
            if msg is None or msg["parent_header"].get("msg_id") != msg_id:
                if msg is not None and msg["parent_header"].get("msg_id") == self.still_running:
                    self.still_running = None  # the request we stopped waiting for has finished
                if (msg is not None and msg["msg_type"] in protocol.REPLY_TYPES
                        and "shared" in msg["content"]
                        and streaming.message_ok(self.key, msg["content"], msg["buffers"])):
                    shared.decline(msg["content"], self.lender)  # its engine need not wait
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
                    if content.get("ported"):  # big frames that came by the data port
                        if self.link is None:
                            raise streaming.StreamError("its data-port link is not open")
                        frames = self.link.claim(content, frames)
                    frames = shared.attach_shared(content, frames, self.lender)
                    frames = self._incoming.claim(content, frames)
                    self.shared.close()  # the engine answered: it has mapped all we sent
                    self.shared_taken.extend(shared.shared_fds(content))
                except streaming.StreamError as err:
                    log.error("remote_magics: dropped a reply from '%s': %s", self.name, err)
                    raise ConnectionLost(
                        f"the reply from target '{self.name}' arrived damaged ({err}: a chunk of "
                        "it failed its digest check or went missing) and was dropped; the "
                        "connection may be corrupting data. Run the cell again.") from None
            self.port_download = False
            found = Reply(msg["header"]["msg_type"], content, frames,
                          bytes_received=sum(memoryview(f).nbytes for f in frames))
            # the engine answers one request at a time, in order: this reply, to a request sent
            # after the one we stopped waiting for, says that one has finished too, even if its
            # own reply never came (one cut short was dropped, and every later cell said the
            # target was still running it)
            self.still_running = None
        return found

    @property
    def chunk_at(self) -> float:
        """When (``time.monotonic()``) a chunk of the awaited reply last came; 0.0 before any.

        A reply whose chunks still come after the request's idle status is late, not missing.
        """
        return self._incoming.arrived_at

    def relay(self, msg_id: str, on_output: Callable[[dict], None] | None,
              on_lookup: Callable[[str], "LookupAnswer"] | None = None) -> float | None:
        """Pass the iopub messages of request ``msg_id`` to ``on_output`` (a bounded batch).

        Message types with a handler of their own (:func:`handle_iopub`) go to it instead.
        Output of an earlier request of this connection (a thread's or a forked child's, printed
        after its request ended) goes too, after :data:`LATE_MARKER`; with no ``on_output`` it
        is kept for the next request that has one. Returns when the request's output ended
        (``remote_output_done`` or idle), if it did.
        """
        idle_at = None
        if on_output is not None and (self.late or self.late_dropped):
            self._show_late(on_output)
        for _ in range(RELAY_BATCH):  # bounded, so heartbeats and deadlines get their turn
            if not self.iopub.poll(0):
                break
            msg = self._recv(self.iopub)
            if msg is None:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                if self._is_late(msg, msg_id):
                    self._keep_late(msg)
                    if on_output is not None:
                        self._show_late(on_output)
                continue
            if msg["msg_type"] in protocol.OUTPUT_TYPES:
                self._late_shown = False  # the request's own output: a later late one is marked
            if msg["msg_type"] == protocol.OUTPUT_DONE:
                idle_at = time.monotonic()
            elif msg["msg_type"] == "status":
                if msg["content"].get("execution_state") == "idle":
                    idle_at = time.monotonic()
                    if msg["content"].get("remote_dropped"):  # our engine refused the request
                        self.dropped[msg_id] = str(msg["content"]["remote_dropped"])
            elif msg["msg_type"] == protocol.LOOKUP_REQUEST:
                self.answer_lookup(msg, on_lookup)
            elif msg["msg_type"] == protocol.INPUT_REQUEST:
                self.answer_input(msg)
            elif msg["msg_type"] in _iopub_handlers:
                _iopub_handlers[msg["msg_type"]](msg, self)
            elif on_output is not None:
                if (msg["msg_type"] == protocol.TRANSFER and self.link is not None
                        and msg["content"].get("direction") == "download"):
                    self.port_download = True  # its bytes follow on the link: show them come
                on_output(msg)
        return idle_at

    def port_progress(self) -> bool:
        """Pass how much of a download announced on the data port has arrived to the awaited
        request's progress; whether one is awaited (the wait then looks again within
        :data:`PROGRESS_INTERVAL`)."""
        link = self.link
        if not self.port_download or link is None:
            return False
        arrived = link.progress()
        if arrived is not None and self._incoming.on_progress is not None:
            self._incoming.on_progress(*arrived)
        return True

    def answer_lookup(self, msg: dict, on_lookup: Callable[[str], "LookupAnswer"] | None) -> None:
        """Answer the running cell's ask for a name, on control (the shell is busy with the cell).

        A malformed ask is dropped with a log line; with no ``on_lookup`` (a run that did not
        offer lookups) the name is not found, so the cell fails as a plain cell would.
        """
        token, name = msg["content"].get("lookup"), msg["content"].get("name")
        if not (isinstance(token, str) and isinstance(name, str) and name.isidentifier()):
            log.error("remote_magics: dropped a malformed lookup request from '%s'", self.name)
            return
        answer = on_lookup(name) if on_lookup is not None else LookupAnswer()
        content = {"lookup": token, "name": name, "found": answer.found,
                   "nframes": len(answer.frames), "watch": answer.watch, "error": answer.error}
        self.send(protocol.LOOKUP_ANSWER, content, answer.frames, channel="control")

    def answer_input(self, msg: dict) -> None:
        """Answer the running cell's ``input()`` with this process's own, on control.

        In a notebook, during the cell, that is ipykernel's, which asks the frontend; in a
        terminal it reads the terminal. What it raises (EOFError, the stop button's
        KeyboardInterrupt) is the answer: the remote cell raises the same, and its error comes
        back as the run's.
        """
        token, prompt = msg["content"].get("ask"), msg["content"].get("prompt")
        if not (isinstance(token, str) and isinstance(prompt, str)):
            log.error("remote_magics: dropped a malformed input request from '%s'", self.name)
            return
        ask = getpass.getpass if msg["content"].get("password") else builtins.input
        try:
            content = {"ask": token, "value": str(ask(prompt))}
        except BaseException as err:  # noqa: BLE001 - the cell raises it, there
            content = {"ask": token, "error": type(err).__name__, "message": str(err)}
        self.send(protocol.INPUT_ANSWER, content, channel="control")

    def drain_iopub(self) -> None:
        """Drop what iopub queued while no request of ours waited (other clients' output, a job
        thread's), keeping the late output of this connection's requests for the next one."""
        while not self.closed and self.iopub.poll(0):
            msg = self._recv(self.iopub)
            if msg is not None and self._is_late(msg, ""):
                self._keep_late(msg)

    def _is_late(self, msg: dict, msg_id: str) -> bool:
        """Whether ``msg`` is output of an earlier request of this connection (not ``msg_id``)."""
        parent = msg["parent_header"].get("msg_id") or ""
        return (parent != msg_id and parent.startswith(self.session.id_prefix)
                and msg["msg_type"] in protocol.OUTPUT_TYPES)

    def _keep_late(self, msg: dict) -> None:
        if len(self.late) == self.late.maxlen:
            self.late_dropped += 1
        self.late.append(msg)

    def _show_late(self, on_output: Callable[[dict], None]) -> None:
        """Pass the kept late output on, after the marker line when it is not up yet."""
        if not self._late_shown:
            self._late_shown = True
            text = LATE_MARKER
            if self.late_dropped:
                text += (f"[remote_magics: {self.late_dropped} earlier messages of it were "
                         "dropped: more came than we keep between requests]\n")
                self.late_dropped = 0
            on_output({"msg_type": "stream", "header": {"msg_type": "stream"},
                       "parent_header": {}, "content": {"name": "stdout", "text": text}})
        while self.late:
            on_output(self.late.popleft())

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
        if self.parked:  # found gone: no pings until the user asks for it again
            return False
        while self.hb.poll(0):
            self.hb.recv()
        deadline = time.monotonic() + timeout
        while not self.beat_out() and time.monotonic() < deadline:
            time.sleep(0.01)  # not connected yet: a ping has nowhere to go
        return bool(self.hb.poll(int(timeout * 1000)) and self.hb.recv())

    def beat_out(self) -> bool:
        """Send one ping if the heartbeat is connected; whether it went.

        A ping never waits in a queue for a heartbeat that is not there: zmq would keep
        reconnecting to a dead kernel's port and hand the queued pings to whatever binds that
        port next (another kernel, which logs "DELIM not in msg_list" into its running cell).
        One not sent counts as one not answered."""
        if self.parked:
            return False
        try:
            self.hb.send(b"ping", zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def set_exit_status(self, exit_status: Callable[[], int | str | None]) -> None:
        """Learn a kernel's exit status from ``exit_status`` (None while it runs) from now on."""
        self._exit_status = exit_status

    def twin(self) -> "Connection":
        """A second connection to the same kernel as the same client, for another thread.

        It carries this connection's client secret, so the engine scopes objects to the same
        client, and its Jupyter session id. Its message ids have a prefix of their own (and
        count from far away), so a reply, an idle status or late output of one is never taken
        for the other's.
        """
        twin = Connection(self.info, name=self.name, interrupt=self._interrupt,
                          exit_status=self._exit_status, heartbeat_timeout=self.heartbeat_timeout)
        twin.restartable = self.restartable
        twin.shared_send, twin.shared_receive = self.shared_send, self.shared_receive
        twin.lend_send, twin.pull_receive = self.lend_send, self.pull_receive
        twin.lender = self.lender
        twin.digest = self.digest
        twin.data_address, twin.use_data_port = self.data_address, self.use_data_port
        twin.client_secret = self.client_secret
        twin.session.session = self.session.session
        twin.session.message_count = next(_twin_blocks) << 40
        return twin

    def exit_status(self) -> int | None:
        """The kernel process's exit status if it has ended and we can know it, else None."""
        return self._exit_status() if self._exit_status is not None else None

    def close(self, linger: float = 0.0) -> None:
        """Close the sockets and their context; the kernel itself is not touched.

        ``linger``: seconds to let messages still queued here (a last release) reach the kernel.
        """
        if not self.closed:
            self.closed = True
            self._incoming.clear()
            self.shared.close()
            if self.link is not None:
                self.link.close()
            self.context.destroy(linger=int(linger * 1000))


class Pending:
    """One request in flight on one connection, until its reply and its idle status are in.

    ``error`` holds what the request turned into when it failed (timeout, lost kernel,
    interrupt); :meth:`result` returns the reply or raises that.
    """

    def __init__(self, conn: Connection, msg_id: str, sent: int, timeout: float | None,
                 on_output: Callable[[dict], None] | None, answer_required: bool,
                 patience: float | None = None,
                 on_lookup: Callable[[str], "LookupAnswer"] | None = None) -> None:
        self.conn = conn
        self.msg_id = msg_id
        self.bytes_sent = sent
        self.started = time.perf_counter()
        self.on_output = on_output
        self.on_lookup = on_lookup
        self.answer_required = answer_required
        self.waiter = _Waiter(conn, msg_id, timeout, patience,
                              lost_idle=LOST_IDLE_STREAMED if sent > protocol.STREAM_CHUNK
                              else LOST_IDLE)
        self.reply: Reply | None = None
        self.idle_at: float | None = None
        self.error: BaseException | None = None
        self.finished = False
        self.objects: Any = None  # what the request pickled, for its reply to refer to (a run's)

    def advance(self, ready: dict) -> bool:
        """Take what the ready sockets hold for this request; True once it has finished."""
        conn = self.conn
        try:
            conn.taking_in = True  # a stop while a message comes: after what came is kept
            try:
                if conn.shell in ready:
                    self.reply = conn.take_reply(self.msg_id) or self.reply
                if conn.iopub in ready:
                    self.idle_at = conn.relay(self.msg_id, self.on_output,
                                              self.on_lookup) or self.idle_at
            finally:
                conn.taking_in = False
            conn.deliver_held_stop()
            if conn.hb in ready or conn.hb.poll(0):  # a long iopub drain must not look like silence
                self.waiter.beat()
            if self.reply is not None and self.idle_at is not None:
                return self._finish()
            if self.reply is not None and self.reply.content.get(protocol.QUIET) is True:
                # no output of its own follows: what iopub holds now (late output) is shown
                conn.relay(self.msg_id, self.on_output, self.on_lookup)
                return self._finish()
            dropped = conn.dropped.pop(self.msg_id, None)
            if self.reply is None and dropped is not None:
                raise ConnectionLost(
                    f"target '{conn.name}' dropped the request, and nothing ran: a request "
                    f"{dropped}. Its data was altered on the way or did not all arrive; run it "
                    "again.")
            quiet_since = max(self.idle_at or 0.0, conn.chunk_at)  # a streamed reply still coming
            if self.reply is None and self.idle_at is not None and time.monotonic() - quiet_since > (
                    0.5 if not self.answer_required else REPLY_GRACE):
                if not self.answer_required:
                    return self._finish()
                raise ConnectionLost(f"kernel '{conn.name}' finished a request without replying")
            if self.reply is not None and self.idle_at is None and \
                    self.waiter.reply_waited() > REPLY_GRACE:
                log.warning("remote_magics: no idle status from '%s'; some output may be missing",
                            conn.name)
                return self._finish()
            self.waiter.check(self.reply is not None)
        except KeyboardInterrupt as err:
            if isinstance(err, RemoteInterrupt):  # what the request turned into
                self.error, self.finished = err, True
            else:  # the stop button, pressed while we relayed output: as during the poll
                try:
                    self.interrupt()
                except BaseException as second:  # a second stop gives up waiting
                    self.error, self.finished = second, True
        except BaseException as err:  # kept for result(): the other requests still finish
            self.error = err
            self.finished = True
        return self.finished

    def _finish(self) -> bool:
        self.finished = True
        if self.reply is not None:  # before done(), which raises for an interrupted run: its
            self.reply.bytes_sent = self.bytes_sent  # reply's names still reach the notebook,
            self.conn.received(self.msg_id)  # and the engine must keep what they refer to
        self.waiter.done(self.reply)
        return True

    def interrupt(self) -> None:
        """The user pressed stop: interrupt the remote kernel (a second stop gives up waiting).

        Not once its reply is in: it has finished there, and a late interrupt would land in
        whatever the kernel does next (the next request)."""
        if self.reply is not None and self.waiter.cause is None:
            self.waiter.cause = "user"  # what done() makes of it: the request's own outcome
            return
        self.waiter.user_interrupt()

    def result(self) -> Reply | None:
        """The reply, or raise what the request turned into."""
        if self.error is not None:
            raise self.error
        return self.reply

    def wait(self) -> Reply | None:
        """Wait for this request alone; see :meth:`Connection.request`."""
        for _ in wait_all([self]):
            pass
        return self.result()


def wait_all(pending: list[Pending]) -> Iterator[Pending]:
    """Wait for requests in flight on any connections; yield each one as it finishes.

    One poll over every connection's sockets, so N kernels run in parallel without threads.
    ``pending`` may grow while we iterate (a member that finished is given more work).
    A KeyboardInterrupt interrupts every kernel still running and the wait goes on for their
    replies (each then holds a KeyboardInterrupt as its error); a second one gives up.
    """
    poller = zmq.Poller()
    polled: set[int] = set()
    spin_until = time.perf_counter() + SPIN
    while True:
        active = [p for p in pending if not p.finished]
        if not active:
            return
        for p in active:
            if id(p.conn) not in polled:
                polled.add(id(p.conn))
                for sock in (p.conn.shell, p.conn.iopub, p.conn.hb):
                    poller.register(sock, zmq.POLLIN)
        try:
            ready = dict(poller.poll(0)) if spin_until else {}
            if not ready and spin_until:
                if time.perf_counter() < spin_until:
                    continue  # (the heartbeat's and the deadlines' checks wait until it sleeps)
                spin_until = 0.0
            if not ready:
                ready = dict(poller.poll(min(p.waiter.poll_ms() for p in active)))
        except KeyboardInterrupt:
            for p in active:
                p.interrupt()
            continue
        for p in active:
            if p.advance(ready):
                yield p


class _Waiter:
    """The clock of one request: deadlines, heartbeat, interrupts, and what the engine knows
    of it (``lost_idle``: see :data:`LOST_IDLE`)."""

    def __init__(self, conn: Connection, msg_id: str, timeout: float | None,
                 patience: float | None = None, lost_idle: float = LOST_IDLE) -> None:
        self.conn = conn
        self.msg_id = msg_id
        now = time.monotonic()
        self.give_up = now + patience if patience else None
        self.patience = patience
        self.deadline = now + timeout if timeout else None
        self.timeout = timeout
        self.next_ping = now + HEARTBEAT_INTERVAL  # a request answered sooner needs no ping
        self.unanswered_since: float | None = None  # the first ping not answered yet
        self.interrupted_at: float | None = None
        self.cause: str | None = None  # "user" or "timeout" once we have interrupted
        self.always_stops = False  # a user's interrupt raises even after a good reply
        self.reply_at: float | None = None
        self.next_status_check = now + STATUS_INTERVAL
        self.lost_idle = lost_idle
        self.next_question = now + STATUS_ASK_AFTER  # to the engine, on control
        self.question: tuple[str, float] | None = None  # the status request out, and when
        self.unseen = 0  # answers in a row: idle, and this request unknown
        self.answered_at: float | None = None  # when the engine first said it answered it

    def poll_ms(self) -> int:
        now = time.monotonic()
        if now >= self.next_ping:
            self.conn.beat_out()
            self.next_ping = now + HEARTBEAT_INTERVAL
            if self.unanswered_since is None:
                self.unanswered_since = now
        wait = self.next_ping - now
        if self.conn.port_progress():  # a download arriving by the data port: its bar moves
            wait = min(wait, PROGRESS_INTERVAL)
        if self.deadline is not None and self.cause is None:
            wait = min(wait, max(self.deadline - now, 0))
        return max(int(wait * 1000), 1)

    def beat(self) -> None:
        while self.conn.hb.poll(0):
            self.conn.hb.recv()
        self.unanswered_since = None

    def user_interrupt(self) -> None:
        if self.cause == "user":  # a second stop while we wait: give up waiting
            raise self.not_stopped(gave_up=True)
        self.cause = "user"
        self.interrupted_at = time.monotonic()
        self.conn.interrupt()

    def reply_waited(self) -> float:
        now = time.monotonic()
        if self.reply_at is None:
            self.reply_at = now
        return now - self.reply_at

    def check(self, have_reply: bool) -> None:
        """Raise if the kernel is dead, silent, or past its deadline without answering.

        Silent: a ping sent has gone unanswered for the heartbeat's timeout. Not the time since
        the last answer: the notebook itself may have been busy that long (taking a big reply
        in, showing a slow output, a laptop asleep) and sent no ping meanwhile; a reply that
        came then is not lost work."""
        now = time.monotonic()
        if self.unanswered_since is not None and \
                now - self.unanswered_since > self.conn.heartbeat_timeout:
            if self.conn.hb.poll(0):  # answered while we were busy
                self.beat()
            else:
                self._lost()
        if now >= self.next_status_check:  # a dead process is known at once, not after silence
            self.next_status_check = now + STATUS_INTERVAL
            if self.conn.exit_status() is not None:
                self._lost()
        if not have_reply and self.conn.answers_status and (
                now >= self.next_question or self.question is not None):
            self._ask_engine(now)
        if self.give_up is not None and now >= self.give_up and not have_reply:
            raise RemoteTimeout(
                f"target '{self.conn.name}' did not answer within {self.patience:g} s: its "
                "kernel is alive but busy (another client's cell, or a long job). Try again "
                "when it is idle.")
        if self.deadline is not None and now >= self.deadline and self.cause is None:
            self.cause = "timeout"
            self.interrupted_at = now
            self.conn.interrupt()
        if (self.interrupted_at is not None and not have_reply
                and now - self.interrupted_at > INTERRUPT_GRACE):
            raise self.not_stopped()

    def _ask_engine(self, now: float) -> None:
        """Weigh the engine's answer to our last question about this request, and ask again
        (:mod:`..engine.activity`): silence alone cannot tell a request that runs, or waits
        behind another client's, from one lost on the way or dropped unanswered (a bad
        signature), which would leave us waiting for ever."""
        if self.question is not None:
            asked, at = self.question
            answer = self.conn.control_reply(asked)
            if answer is not None:
                self.question = None
                self._weigh(answer.content, now)
            elif now - at < 5 * STATUS_ASK_EVERY:
                return  # its control thread has not answered yet (the GIL held by a C call)
        if now >= self.next_question:
            self.next_question = now + STATUS_ASK_EVERY
            self.question = (self.conn.send(protocol.STATUS_REQUEST, {"msg_id": self.msg_id},
                                            channel="control"), now)

    def _weigh(self, answer: dict, now: float) -> None:
        state = answer.get("state")
        idle_for = answer.get("idle_for")
        if state == "unknown" and answer.get("busy") is False and \
                isinstance(idle_for, (int, float)) and idle_for >= self.lost_idle:
            self.unseen += 1
        else:
            self.unseen = 0
        if self.unseen >= 2:  # an idle engine reads a waiting request at once
            raise ConnectionLost(
                f"target '{self.conn.name}' never received this request: it has been idle for "
                f"{idle_for:.0f} s without seeing it. It was lost on the way, or refused without "
                "an answer (a request whose signature fails is dropped so: the kernel's log "
                "says why). Nothing ran there and nothing in the notebook changed. Run the cell "
                f"again; if this happens again, {self.conn.restart_advice()}.")
        self.answered_at = (self.answered_at or now) if state == "answered" else None
        if self.answered_at is not None and now - self.answered_at > REPLY_GRACE \
                and now - self.conn.chunk_at > REPLY_GRACE:
            raise ConnectionLost(
                f"target '{self.conn.name}' finished this request more than {REPLY_GRACE:.0f} s "
                "ago, but its reply never arrived. The cell ran there: what it changed is "
                "changed in the engine, but nothing it bound reached the notebook. Look at the "
                "remote state (a %%remote cell that prints it) before you run the cell again.")

    def not_stopped(self, gave_up: bool = False) -> BaseException:
        """The error for a request that has not stopped since we interrupted it.

        It still runs remotely: the connection remembers it, so the next request says that it
        waits for it (:meth:`Connection.still_running_for`).
        """
        self.conn.abandon(self.msg_id)
        name = self.conn.name
        still = (f"did not stop within {INTERRUPT_GRACE:.0f} s of being interrupted (it may catch "
                 "KeyboardInterrupt, or be in code that does not see interrupts): it is still "
                 "running there")
        if gave_up:
            what = (f"you stopped waiting for target '{name}': its cell had not stopped since "
                    "the first interrupt and may still be running there")
        elif self.cause == "timeout":
            what = (f"the cell ran past its timeout of {self.timeout:g} s on target '{name}' and "
                    f"was interrupted, but {still}")
        else:
            what = f"the cell on target '{name}' {still}"
        message = (f"{what}. Nothing in the notebook changed. The next request to '{name}' "
                   f"waits until that cell finishes; to stop it now, {self.conn.restart_advice()}.")
        if self.cause == "timeout" and not gave_up:
            return RemoteTimeout(message)
        return RemoteInterrupt(message, target=name)

    def _lost(self) -> None:
        self.conn.park()
        status = self.conn.exit_status()
        if status is not None:
            raise RemoteKernelDied(
                f"the remote kernel of target '{self.conn.name}' died (exit status {status}) "
                "while running the cell. Its remote objects are lost. To go on, "
                f"{self.conn.restart_advice()}, then run the cell again.", status=status)
        raise ConnectionLost(
            f"target '{self.conn.name}' stopped answering its heartbeat for "
            f"{self.conn.heartbeat_timeout:.0f} s: its kernel died, was stopped, or the network "
            "to it is down. Check the kernel's host; if the kernel is gone, "
            f"{self.conn.restart_advice()}."
        )

    def done(self, reply: Reply | None) -> None:
        """Raise what an interrupt or a timeout turned the request into, if anything.

        A cell that caught the stop button's interrupt and finished on its own ends as it
        would in the notebook: with its own outcome.
        """
        content = reply.content if reply is not None else {}
        kept = ("the names it bound before that are in the notebook, as after a plain cell's "
                "interrupt" if content.get("outputs") else "nothing in the notebook changed")
        if self.cause == "user" and (content.get("ename") == "KeyboardInterrupt" or not content
                                     or self.always_stops):
            raise RemoteInterrupt(
                f"the cell on target '{self.conn.name}' was interrupted; {kept}.",
                target=self.conn.name, traceback=content.get("traceback", []))
        if self.cause == "timeout":
            raise RemoteTimeout(
                f"the cell ran past its timeout of {self.timeout:g} s on target "
                f"'{self.conn.name}' and was interrupted; {kept}. "
                "Raise --timeout (or %config RemoteMagics.timeout) to give it longer."
            )

