"""CurveZMQ clients of an engine kernel: only those that hold the connection's key get in.

Curve encrypts, but by itself a Curve server admits any client that knows the server's public
key, which a served engine's URL prints (``curve=``). So an engine kernel started with Curve
keys (``remote-magics serve --curve``) admits only two client key pairs, on all five sockets:
the one derived from the connection's HMAC key (:func:`client_keys`, what a client that has the
URL uses) and the kernel's own (Jupyter's scheme: a client holding the connection file reuses
the kernel's key pair). :class:`Admission` runs ZeroMQ's ZAP handler (``zmq.auth``) in the
kernel's contexts, before their sockets bind, and refuses every other key.

Shipped with the engine: standard library, ipykernel, and ZeroMQ (ipykernel's own dependency).
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

import zmq
from zmq.utils import z85

_CLIENT_KEY_LABEL = b"remote_magics curve client key"
#: The ZAP domain of an engine's sockets: libzmq asks the ZAP handler only when one is set.
DOMAIN = "remote_magics"


def client_keys(key: bytes) -> tuple[bytes, bytes]:
    """The Curve key pair (public, secret; Z85) of a client that holds the HMAC ``key``.

    The secret key is an HMAC-SHA256 of a fixed label under ``key``: the same for every client
    with the URL, and unknown to anyone without the key.
    """
    secret = z85.encode(hmac.new(key, _CLIENT_KEY_LABEL, hashlib.sha256).digest())
    return zmq.curve_public(secret), secret


class Admission:
    """ZAP handlers, one per ZeroMQ context, that admit only the ``allowed`` Curve public keys.

    ``log``: the kernel's logger (the application's, which writes to the real stderr).
    """

    def __init__(self, allowed: set[bytes], log: Any) -> None:
        self.allowed = set(allowed)
        self.log = log
        self.refused = 0
        self._authenticators: dict[int, Any] = {}  # id(context) → its ThreadAuthenticator

    def callback(self, domain: str, client_key: bytes) -> bool:
        """zmq.auth's question for each Curve handshake: is this client's public key (Z85) one of ours?"""
        if client_key in self.allowed:
            return True
        self.refused += 1
        self.log.warning("remote_magics: refused a Curve client whose key pair was not made from "
                    "the connection's key")
        return False

    def watch(self, context: zmq.Context) -> None:
        """Answer the Curve handshakes of every socket of ``context`` (once per context)."""
        if id(context) in self._authenticators:
            return
        from zmq.auth.thread import ThreadAuthenticator

        authenticator = ThreadAuthenticator(context, log=self.log)
        authenticator.configure_curve_callback(DOMAIN, credentials_provider=self)
        authenticator.start()
        self._authenticators[id(context)] = authenticator

    def protect(self, socket: zmq.Socket) -> None:
        """Before ``socket`` binds: its context's handler checks every client that connects."""
        self.watch(socket.context)
        socket.zap_domain = DOMAIN.encode()
        socket.zap_enforce_domain = True  # fail closed: no handler, no handshake

    def protect_new_sockets(self, context: zmq.Context) -> None:
        """As :meth:`protect`, for every socket ``context`` makes from now on (ipykernel's
        heartbeat makes and binds its own, on its thread)."""
        self.watch(context)
        context.zap_domain = DOMAIN.encode()  # pyzmq: a default for the context's new sockets
        context.zap_enforce_domain = True

    def stop(self) -> None:
        """Stop the handlers (before their contexts terminate, which would wait for them)."""
        for authenticator in self._authenticators.values():
            authenticator.stop()
        self._authenticators.clear()


def admission(key: bytes, kernel_public_key: bytes, log: Any) -> Admission:
    """The :class:`Admission` of an engine kernel with this HMAC key and Curve public key."""
    return Admission({client_keys(key)[0], kernel_public_key}, log)
