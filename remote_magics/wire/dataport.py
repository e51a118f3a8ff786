"""Big frames over a side TCP connection to the engine: the data port, for both sides.

ZeroMQ copies a big frame more than once on each side, and an upload's chunks each go through
the kernel's shell dispatch; a plain TCP stream read straight into its destination does neither.
So an engine whose shell is reachable without encryption listens on one more TCP port, its *data
port*, at the kernel's ip (never a wildcard address), and announces it in its info reply (an
ssh target forwards it like the other ports, and says so in the connection info's
``data_port``). Each client :class:`Connection <remote_magics.client.connection.Connection>`
opens one connection to it, a :class:`Link`, used both ways.

Who may connect: anybody on the host can reach a loopback port, so the first bytes prove the
session key (:func:`connect`, :class:`Listener`): the engine sends :data:`MAGIC` and a fresh
nonce, the client answers with :data:`MAGIC`, a nonce of its own and an HMAC-SHA256 of both
under the key; the engine checks it, proves the key back the same way, and the client names the
client secret it stands for. A connection that sends anything else, or nothing within
:data:`HANDSHAKE_TIMEOUT` seconds, is closed with a logged reason.

A transfer is one message's big frames, sent as one stream on the link (:meth:`Link.send`): a
header (:data:`HEADER` then each frame's size), then the frames' bytes, from the sender's
buffers without a copy; the receiver reads them straight into memory of the
frame's size (:func:`.recycle.take`). Both sides digest the bytes in a second thread, overlapped
with the transfer: the MAC the two sides agreed (AES-GMAC, keyed BLAKE3 or HMAC-SHA256, each
with a key derived from the session key for this use only), over the transfer id, the frames'
sizes and their bytes. The message itself then
goes on the shell socket with an empty placeholder at each such frame and ``content["ported"]``
= ``{"transfer": id, "frames": [[index, nbytes], ...], "digest": digest}``, under the message's
signature. The receiver uses the frames only once the message claims them and the digest it
computed equals the signed one (:meth:`Link.claim`): a tampered transfer is refused and nothing
runs. A transfer id is taken once: a transfer whose id the link has seen is a replay, and
the link is closed. Anything that fails falls back to the chunks of :mod:`.streaming`.

Standard library only (``cryptography`` and ``blake3`` when present): shipped as source with the
engine.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import os
import queue
import secrets
import select
import socket
import threading
import time
from typing import Any, Callable, Sequence

from . import protocol, recycle, streaming

#: Environment variable: "0" turns the data port off (an engine opens none, a client uses none).
ENV = "REMOTE_MAGICS_DATA_PORT"
#: The first bytes each side sends on a new connection.
MAGIC = b"remote_magics data port 1\n"
NONCE = 32
#: Seconds a new connection has to prove the key.
HANDSHAKE_TIMEOUT = 10.0
#: Seconds a transfer may go without a byte moving before the link is given up.
STALL_TIMEOUT = 30.0
#: A transfer's header: tag, transfer id (16 bytes), digest scheme (1 byte), frame count (4 bytes);
#: then each frame's size (8 bytes little-endian).
HEADER = b"RMDT"
_HEADER_SIZE = len(HEADER) + 16 + 1 + 4
#: Frames one transfer may carry at most.
MAX_FRAMES = 4096
#: Bytes moved per system call, and handed to the digest thread at a time as they arrive: a
#: piece the size of a core's L2 cache is still there when the digest reads it. On 2 cores,
#: median of 14-42 trials: 2 MB against 16 MB sends and 4 MB digests moved 1 GB up 12% faster
#: (2,215 against 1,969 MB/s) and fetched it 11% faster, 100 MB 5-6% faster each way; 1 MB and
#: 512 kB were no better than 2 MB (a system call per piece starts to count).
STEP = 2 << 20
#: Socket buffers asked for (the kernel caps them at its own limits).
SOCKET_BUFFER = 8 << 20
#: Transfers a link keeps received but unclaimed (an abandoned request's) before dropping the
#: oldest, unless all it keeps fit in :data:`KEEP_BYTES`: a remote cell's channel sends up to
#: that many bytes ahead of the notebook's acknowledgements, each message a transfer.
KEEP = 2
KEEP_BYTES = protocol.CHANNEL_WINDOW_BYTES
#: Transfer ids a link remembers, to refuse one sent again.
SEEN = 4096

_SCHEMES = {protocol.HMAC_SHA256: 0, protocol.BLAKE3: 1, protocol.GMAC: 2}
_PREFIXES = {protocol.BLAKE3: "b3:", protocol.GMAC: "gm:"}

log = logging.getLogger(__name__)


def enabled() -> bool:
    """Whether this process uses data ports (:data:`ENV` is not "0")."""
    return os.environ.get(ENV, "1").strip() != "0"


def _blake3_module() -> Any:
    try:
        import blake3  # optional: the engine is shipped into kernels that may lack it
    except ImportError:
        return None
    return blake3


class Digest:
    """A keyed digest of one transfer, fed its bytes in order as they arrive or leave."""

    def __init__(self, key: bytes, scheme: str, transfer: bytes, sizes: Sequence[int]) -> None:
        self.scheme = scheme
        if scheme == protocol.GMAC:  # its nonce: the transfer id's first 12 random bytes, never
            # twice (a link refuses an id it has seen; each side draws its own ids)
            self.mac = protocol.Gmac(protocol.derived_key(key, b"data port gmac"), transfer[:12])
        elif scheme == protocol.BLAKE3:
            blake3 = _blake3_module()
            if blake3 is None:
                raise streaming.StreamError("a blake3 digest asked for, but blake3 is not here")
            self.mac = blake3.blake3(key=protocol.derived_key(key, b"data port blake3"),
                                     max_threads=1)  # the other core moves bytes
        else:
            self.mac = hmac.new(key, b"remote_magics data port\0", hashlib.sha256)
        self.mac.update(transfer)
        for size in sizes:
            self.mac.update(size.to_bytes(8, "little"))

    def update(self, view: memoryview) -> None:
        self.mac.update(view)

    def hexdigest(self) -> str:
        text = self.mac.tag().hex() if self.scheme == protocol.GMAC else self.mac.hexdigest()
        return _PREFIXES.get(self.scheme, "") + text


def _proof(key: bytes, role: bytes, engine_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(key, b"remote_magics data port " + role + b"\0" + engine_nonce + client_nonce,
                    hashlib.sha256).digest()


def _recv_exact(sock: socket.socket, nbytes: int) -> bytes:
    data = bytearray(nbytes)
    view, got = memoryview(data), 0
    while got < nbytes:
        n = sock.recv_into(view[got:])
        if not n:
            raise ConnectionError("the peer closed the connection")
        got += n
    return bytes(data)


def _tune(sock: socket.socket) -> None:
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:  # a system that refuses: its default will do
            pass
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Transfer:
    """One transfer being received: its buffers, how much has arrived, and its digest once in."""

    def __init__(self, transfer: bytes, sizes: list[int]) -> None:
        self.id = transfer.hex()
        self.sizes = sizes
        self.buffers, self.warm = zip(*(recycle.take(size) for size in sizes))
        self.total = sum(sizes)
        self.received = 0
        self.digest = ""


class Link:
    """One authenticated data-port connection between a client and an engine, used both ways.

    A thread receives the peer's transfers as they come, digesting them in a second thread;
    :meth:`claim` hands a message its frames once they are in and verified. :meth:`send` sends
    ours. ``on_close`` is called once the link is closed, with it.
    """

    def __init__(self, sock: socket.socket, key: bytes, link_id: str, *, client: str = "",
                 name: str = "", on_close: Callable[["Link"], None] | None = None) -> None:
        self.sock = sock
        self.key = key
        self.id = link_id
        self.client = client  # on the engine's side: the client secret it stands for
        self.name = name  # for log lines
        self.on_close = on_close
        self.closed = False
        self.reason = ""
        self.done: collections.OrderedDict[str, _Transfer] = collections.OrderedDict()
        self.under_way: _Transfer | None = None  # the transfer arriving now (:meth:`progress`)
        self.moved_at = time.monotonic()  # when a byte of a transfer last arrived
        self._seen: set[str] = set()
        self._seen_order: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()  # an engine's job threads reply too
        sock.settimeout(STALL_TIMEOUT)
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"remote_magics-dataport-{link_id[:8]}")
        self._reader.start()

    # --- sending ---------------------------------------------------------------------------

    def send(self, views: Sequence[memoryview], scheme: str,
             on_progress: Callable[[int, int], None] | None = None) -> tuple[str, str]:
        """Send ``views`` as one transfer; returns its id and its digest.

        The digest is made in a second thread while the bytes go, piece by piece as each is sent,
        so both threads read the piece while it is in the cache (a digest running through the
        whole buffer on its own pace read it from memory a second time: 100 MB up, 1,417-1,457
        MB/s against 1,463-1,732 this way, in three alternating runs). Raises ``OSError`` when
        the link fails (it is closed then).
        """
        transfer = secrets.token_bytes(16)
        sizes = [view.nbytes for view in views]
        digest = Digest(self.key, scheme, transfer, sizes)
        header = (HEADER + transfer + bytes([_SCHEMES[scheme]]) + len(sizes).to_bytes(4, "little")
                  + b"".join(size.to_bytes(8, "little") for size in sizes))
        pending: queue.SimpleQueue = queue.SimpleQueue()

        def hash_as_it_goes() -> None:
            while (piece := pending.get()) is not None:
                digest.update(piece)

        hashing = threading.Thread(target=hash_as_it_goes, daemon=True)
        hashing.start()
        total, sent = sum(sizes), 0
        try:
            with self._send_lock:
                if self.closed:
                    raise ConnectionError(f"the data port link is closed ({self.reason})")
                self.sock.sendall(header)
                for view in views:
                    for offset in range(0, view.nbytes, STEP):
                        piece = view[offset:offset + STEP]
                        pending.put(piece)
                        self.sock.sendall(piece)
                        sent += piece.nbytes
                        if on_progress is not None:
                            on_progress(sent, total)
        except BaseException as err:  # an interrupt too: the peer would wait for the rest
            self.close(f"sending failed: {err!r}")
            raise
        finally:
            pending.put(None)
            hashing.join()
        streaming.stats["ported_sent"] += total
        return transfer.hex(), digest.hexdigest()

    # --- receiving -------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            while not self.closed:
                ready, _, _ = select.select([self.sock], [], [], 1.0)
                if not ready:
                    continue  # idle between transfers: look at ``closed`` again
                if not self.sock.recv(1, socket.MSG_PEEK):
                    self.close()  # the peer closed it between transfers: nothing was lost
                    return
                self._receive_one()
        except (OSError, ConnectionError, ValueError, streaming.StreamError) as err:
            self.close(str(err) or type(err).__name__)

    def _receive_one(self) -> None:
        head = _recv_exact(self.sock, _HEADER_SIZE)
        if head[:len(HEADER)] != HEADER:
            raise streaming.StreamError("a transfer without its header")
        transfer, scheme_byte = head[4:20], head[20]
        count = int.from_bytes(head[21:25], "little")
        schemes = {number: name for name, number in _SCHEMES.items()}
        if scheme_byte not in schemes or not 0 < count <= MAX_FRAMES:
            raise streaming.StreamError(f"a transfer header naming {count} frames, scheme "
                                        f"{scheme_byte}")
        sizes_raw = _recv_exact(self.sock, 8 * count)
        sizes = [int.from_bytes(sizes_raw[i:i + 8], "little") for i in range(0, 8 * count, 8)]
        if any(size <= 0 for size in sizes):
            raise streaming.StreamError("a transfer with an empty frame")
        if transfer.hex() in self._seen:
            raise streaming.StreamError(f"transfer {transfer.hex()[:8]} sent before (a replay)")
        self._remember(transfer.hex())
        digest = Digest(self.key, schemes[scheme_byte], transfer, sizes)
        pending: queue.SimpleQueue = queue.SimpleQueue()

        def hash_as_it_comes() -> None:
            while (view := pending.get()) is not None:
                digest.update(view)

        hashing = threading.Thread(target=hash_as_it_comes, daemon=True)
        hashing.start()
        try:
            incoming = _Transfer(transfer, sizes)
            with self._cond:
                self.under_way = incoming
                self.moved_at = time.monotonic()
                self._cond.notify_all()
            for buffer, warm in zip(incoming.buffers, incoming.warm):
                view, filled, hashed = buffer, 0, 0
                prefault = streaming.Prefault(buffer, warm)  # pages faulted in ahead of the bytes
                try:
                    while filled < view.nbytes:
                        n = self.sock.recv_into(view[filled:filled + STEP])
                        if not n:
                            raise ConnectionError("the peer closed the connection mid-transfer")
                        filled += n
                        prefault.advance(filled)
                        incoming.received += n
                        self.moved_at = time.monotonic()
                        if filled - hashed >= STEP or filled == view.nbytes:
                            pending.put(view[hashed:filled])
                            hashed = filled
                finally:
                    prefault.finish()
        except BaseException:
            self.under_way = None  # a failed transfer's memory goes now, not with the link
            raise
        finally:
            pending.put(None)
            hashing.join()
        incoming.digest = digest.hexdigest()
        streaming.stats["ported_received"] += incoming.total
        with self._cond:
            self.under_way = None
            self.done[incoming.id] = incoming
            while len(self.done) > KEEP and sum(t.total for t in self.done.values()) > KEEP_BYTES:
                dropped, _ = self.done.popitem(last=False)  # an abandoned request's: unclaimed
                log.info("remote_magics: dropped unclaimed data-port transfer %s", dropped[:8])
            self._cond.notify_all()

    def progress(self) -> tuple[int, int] | None:
        """Bytes in so far and in all of the transfer arriving now; None between transfers.
        Any thread (the receiving thread updates it as pieces land)."""
        incoming = self.under_way
        return None if incoming is None else (incoming.received, incoming.total)

    def _remember(self, transfer: str) -> None:
        self._seen.add(transfer)
        self._seen_order.append(transfer)
        if len(self._seen_order) > SEEN:
            self._seen.discard(self._seen_order.popleft())

    def claim(self, content: dict, frames: Sequence) -> list:
        """The frames of a verified message, its ported frames put back in place.

        Waits while its transfer is still arriving (bytes moved in the last
        :data:`STALL_TIMEOUT` seconds). Raises :class:`.streaming.StreamError` when the
        transfer did not arrive, does not match what the message lists, or fails its digest:
        the message is then dropped, and the frames never used.
        """
        ported = content.get("ported")
        if not ported:
            return list(frames)
        try:
            transfer, digest = str(ported["transfer"]), str(ported["digest"])
            listed = [(int(index), int(nbytes)) for index, nbytes in ported["frames"]]
        except (KeyError, TypeError, ValueError):
            raise streaming.StreamError("a message whose data-port fields are malformed") from None
        with self._cond:
            while transfer not in self.done:
                if self.closed:
                    raise streaming.StreamError(f"transfer {transfer[:8]} did not arrive: the "
                                                f"data port link closed ({self.reason})")
                if time.monotonic() - self.moved_at > STALL_TIMEOUT:
                    raise streaming.StreamError(f"transfer {transfer[:8]} did not arrive within "
                                                f"{STALL_TIMEOUT:.0f} s")
                self._cond.wait(1.0)
            incoming = self.done.pop(transfer)
        frames = list(frames)
        if ([nbytes for _, nbytes in listed] != incoming.sizes
                or len({index for index, _ in listed}) != len(listed)
                or any(not 0 <= index < len(frames) or memoryview(frames[index]).nbytes
                       for index, _ in listed)):
            raise streaming.StreamError(f"a message whose ported frames do not match transfer "
                                        f"{transfer[:8]}")
        if not hmac.compare_digest(incoming.digest, digest):
            raise streaming.StreamError(f"transfer {transfer[:8]} fails its digest (its bytes "
                                        "were altered on the way)")
        for (index, _), buffer in zip(listed, incoming.buffers):
            frames[index] = memoryview(buffer)
        return frames

    def clear(self) -> None:
        """Drop the transfers received and never claimed (an abandoned request's)."""
        with self._cond:
            self.done.clear()

    def close(self, reason: str = "closed") -> None:
        """Close the link (once), logging why unless we closed it ourselves."""
        with self._cond:
            if self.closed:
                return
            self.closed = True
            self.reason = reason
            self.done.clear()
            if reason != "closed":  # said before a waiting claim wakes to the reason
                log.warning("remote_magics: data port link %s%s closed: %s", self.id[:8],
                            f" to '{self.name}'" if self.name else "", reason)
            self._cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.on_close is not None:
            self.on_close(self)


def connect(address: tuple[str, int], key: bytes, client: str, *, name: str = "",
            timeout: float = HANDSHAKE_TIMEOUT) -> Link:
    """Open a link to an engine's data port, proving the key and checking the engine's proof.

    ``client``: the client secret the link stands for. Raises ``OSError`` (unreachable, or
    the engine does not prove the key: ``ConnectionError``).
    """
    sock = socket.create_connection(address, timeout=timeout)
    try:
        _tune(sock)
        hello = _recv_exact(sock, len(MAGIC) + NONCE)
        if hello[:len(MAGIC)] != MAGIC:
            raise ConnectionError(f"{address[0]}:{address[1]} is not an engine's data port")
        engine_nonce, client_nonce = hello[len(MAGIC):], secrets.token_bytes(NONCE)
        sock.sendall(MAGIC + client_nonce + _proof(key, b"client", engine_nonce, client_nonce))
        proof = _recv_exact(sock, 32)
        if not hmac.compare_digest(proof, _proof(key, b"engine", engine_nonce, client_nonce)):
            raise ConnectionError(f"the data port at {address[0]}:{address[1]} does not hold "
                                  "the connection key")
        secret = client.encode()
        sock.sendall(len(secret).to_bytes(1, "little") + secret)
        if _recv_exact(sock, 1) != b"\x01":  # listed by the engine: requests may name it now
            raise ConnectionError("the engine did not admit the data port link")
    except BaseException:
        sock.close()
        raise
    return Link(sock, key, client_nonce.hex(), name=name)


class Listener:
    """An engine's data port: admits connections that prove the key, one :class:`Link` each."""

    def __init__(self, key: bytes, ip: str, port: int = 0,
                 logger: logging.Logger | None = None) -> None:
        self.key = key
        self.log = logger or log
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((ip, port))
            self.sock.listen(16)
        except OSError:
            self.sock.close()
            raise
        self.port: int = self.sock.getsockname()[1]
        self.links: dict[str, Link] = {}
        self.refused = 0  # connections closed before they proved the key
        self.closed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="remote_magics-dataport").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                ready, _, _ = select.select([self.sock], [], [], 1.0)
                if not ready:
                    continue
                sock, peer = self.sock.accept()
            except OSError:
                if self.closed:
                    return
                continue
            threading.Thread(target=self._admit, args=(sock, peer), daemon=True,
                             name="remote_magics-dataport-admit").start()

    def _admit(self, sock: socket.socket, peer: Any) -> None:
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT)
            _tune(sock)
            engine_nonce = secrets.token_bytes(NONCE)
            sock.sendall(MAGIC + engine_nonce)
            hello = _recv_exact(sock, len(MAGIC) + NONCE + 32)
            if hello[:len(MAGIC)] != MAGIC:
                raise ConnectionError("it sent the wrong preamble")
            client_nonce, proof = hello[len(MAGIC):-32], hello[-32:]
            if not hmac.compare_digest(proof, _proof(self.key, b"client", engine_nonce,
                                                     client_nonce)):
                raise ConnectionError("it did not prove the connection key")
            sock.sendall(_proof(self.key, b"engine", engine_nonce, client_nonce))
            length = _recv_exact(sock, 1)[0]
            client = _recv_exact(sock, length).decode("ascii") if length else ""
            if not client:
                raise ConnectionError("it named no client")
        except (OSError, ConnectionError, UnicodeDecodeError) as err:
            self.refused += 1
            self.log.warning("remote_magics: closed a data-port connection from %s: %s", peer,
                             err if str(err) else "it sent nothing in time")
            sock.close()
            return
        link_id = client_nonce.hex()
        with self._lock:
            stale = self.links.pop(link_id, None)
        if stale is not None:  # a nonce used twice: not a client of ours
            stale.close("its link id was used again")
            sock.close()
            return
        link = Link(sock, self.key, link_id, client=client, on_close=self._forget)
        with self._lock:
            self.links[link_id] = link
        try:
            sock.sendall(b"\x01")  # listed: the client's requests may name it from now on
        except OSError as err:
            link.close(f"admission failed: {err}")

    def _forget(self, link: Link) -> None:
        with self._lock:
            if self.links.get(link.id) is link:
                del self.links[link.id]

    def link_for(self, link_id: object, client: str) -> Link | None:
        """The open link ``link_id`` of client ``client``, or None (never another client's)."""
        with self._lock:
            link = self.links.get(link_id) if isinstance(link_id, str) else None
        if link is None or link.closed or not client or link.client != client:
            return None
        return link

    def close(self) -> None:
        """Stop listening and close every link."""
        self.closed = True
        self.sock.close()
        with self._lock:
            links = list(self.links.values())
        for link in links:
            link.close()


def big_frames(frames: Sequence, chunk: int = protocol.STREAM_CHUNK) -> list[int]:
    """The indexes of the frames that would otherwise be streamed as chunks."""
    return [i for i, frame in enumerate(frames) if memoryview(frame).nbytes > chunk]


def port(link: Link, frames: Sequence, scheme: str = protocol.HMAC_SHA256,
         on_progress: Callable[[int, int], None] | None = None) -> tuple[list, dict]:
    """Send the big frames of a message over ``link`` now; the frames the message itself
    carries (an empty placeholder at each of those) and its ``ported`` field.

    The bytes are in the kernel's socket buffers when it returns: the sender may change them.
    Raises ``OSError`` when the link fails (send the message another way then: nothing of it
    reached the peer's code).
    """
    indexes = big_frames(frames)
    views = [_bytes_view(frames[i]) for i in indexes]
    transfer, digest = link.send(views, scheme, on_progress)
    placed = list(frames)
    for index in indexes:
        placed[index] = b""
    return placed, {"transfer": transfer, "digest": digest,
                    "frames": [[i, v.nbytes] for i, v in zip(indexes, views)]}


def send(session: Any, sock: Any, link: Link, msg_type: str, content: dict, frames: Sequence,
         key: bytes, *, parent: dict | None = None, ident: Any = None,
         scheme: str = protocol.HMAC_SHA256,
         on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Send a message whose big frames go ahead of it over ``link``; returns it as sent.

    Raises ``OSError`` when the link fails before the message is sent (send it by
    :func:`.streaming.send` then: nothing of it reached the peer's code).
    """
    placed, ported = port(link, frames, scheme, on_progress)
    return streaming.send(session, sock, msg_type, dict(content, ported=ported), placed, key,
                          parent=parent, ident=ident, chunk=None, scheme=scheme)


def _bytes_view(frame: Any) -> memoryview:
    view = memoryview(frame)
    return view if view.ndim == 1 and view.itemsize == 1 else view.cast("B")
