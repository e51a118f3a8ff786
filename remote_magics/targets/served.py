"""Served targets: an engine that ``remote-magics serve`` started elsewhere, reached by its URL.

``tcp://HOST:PORT?key=HMAC_KEY[&curve=SERVER_PUBLIC_KEY_HEX]``: ``PORT`` is the shell port;
iopub, stdin, control and heartbeat follow it, in that order
(:data:`remote_magics.wire.protocol.PORT_NAMES`). ``key`` signs messages; ``curve`` is the
server's public key, in hex. With ``curve``, our Curve key pair is made from ``key``
(:func:`remote_magics.engine.curve.client_keys`): the engine admits no other. :func:`format_url`
writes such a URL, :func:`parse_url` reads it.
"""
from __future__ import annotations

import time
import urllib.parse
from typing import Any

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from ..client.connection import Connection
from ..engine import curve
from ..errors import ConnectionRefused, HostUnreachable, RemoteMagicsError
from ..wire import protocol
from .base import Kind, Target, register_kind


def format_url(host: str, info: dict) -> str:
    """The ``tcp://`` URL a notebook connects with (the server's secret key is not in it)."""
    url = f"tcp://{host}:{info['shell_port']}?key={urllib.parse.quote(info['key'], safe='')}"
    if info.get("curve_publickey"):
        url += f"&curve={z85.decode(info['curve_publickey'].encode()).hex()}"
    return url


def parse_url(url: str) -> dict:
    """Connection info (the dict of a connection file) for a ``tcp://`` URL of :func:`format_url`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise ValueError(f"a served engine's address is tcp://HOST:PORT?key=KEY, not {url!r}")
    query = {name: urllib.parse.unquote(value) for name, _, value in
             (item.partition("=") for item in parts.query.split("&") if item)}
    unknown = set(query) - {"key", "curve"}
    if unknown:
        raise ValueError(f"unknown parameter {', '.join(sorted(unknown))} in {url!r}; "
                         "the URL takes key= and curve=")
    info = protocol.connection_info(
        parts.hostname, query.get("key", ""),
        {name: parts.port + i for i, name in enumerate(protocol.PORT_NAMES)})
    curve = query.get("curve")
    if curve:
        info["curve_publickey"] = _z85_key(curve)
    return info


def _z85_key(text: str) -> str:
    """A Curve public key given in hex (64 digits) or Z85 (40 characters), as Z85."""
    try:
        if len(text) == 64:
            return z85.encode(bytes.fromhex(text)).decode()
        if len(text) == 40:
            z85.decode(text.encode())
            return text
    except ValueError:
        pass
    raise ValueError("the curve= key of a served engine is 64 hex digits, as "
                     "remote-magics serve prints it")


def probe(info: dict, timeout: float) -> str:
    """How a served engine's shell port answers: ``"ok"``, ``"refused"``, ``"unauthorized"`` or
    ``"unreachable"``.

    ``refused`` means a TCP connection was made but the ZeroMQ security handshake failed: the
    engine wants Curve and we have no key, or our server key is not the engine's.
    ``unauthorized``: the engine refused our Curve client key, made from the URL's ``key=``
    (:func:`remote_magics.engine.curve.client_keys`), so that key is not the engine's.
    """
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    if info.get("curve_publickey"):
        sock.curve_serverkey = info["curve_publickey"].encode()
        sock.curve_publickey, sock.curve_secretkey = curve.client_keys(info["key"].encode())
    monitor = sock.get_monitor_socket()
    failed = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL \
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    connected = dropped = 0
    try:
        sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not monitor.poll(int(left * 1000)):
                break
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return "ok"
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:  # the engine's ZAP handler said no
                return "unauthorized"
            if event & failed:
                return "refused"
            connected += event == zmq.EVENT_CONNECTED
            dropped += event == zmq.EVENT_DISCONNECTED
            if connected and dropped >= 2:  # the peer hangs up on every handshake
                return "refused"
        return "refused" if connected else "unreachable"
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        context.term()


def connect(spec: str, name: str, *, timeout: float = 60.0) -> Target:
    """A :class:`~remote_magics.targets.base.Target` on the served engine at the URL ``spec``."""
    try:
        info = parse_url(spec)
    except ValueError as err:
        raise RemoteMagicsError(str(err)) from None
    address = f"tcp://{info['ip']}:{info['shell_port']}"
    verdict = probe(info, min(timeout, 10.0))
    if verdict == "unreachable":
        raise HostUnreachable(address, hint="Is `remote-magics serve` running there, and is "
                              "the port in the URL the one it printed?")
    if verdict in ("refused", "unauthorized"):
        raise ConnectionRefused(address, curve=bool(info.get("curve_publickey")),
                                key=verdict == "unauthorized")
    conn = Connection(info, name=name)
    target = Target(name, conn, spec=address)
    return target.ready(timeout, launched=False)


def start(spec: str, name: str, *, timeout: float, **options: Any) -> tuple[list[Target], None]:
    """The served engine at ``spec``, as one target.

    A served engine already outlives its notebooks; with ``persist``,
    :func:`remote_magics.targets.connect` gives it a name and an idle timeout afterwards.
    """
    return [connect(spec, name, timeout=timeout)], None


register_kind(Kind("tcp", start, persist=True))
