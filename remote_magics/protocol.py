"""The wire protocol between a notebook (the client) and an engine kernel.

Written down once, here; the client and the engine import these names. This module uses the
standard library only, because it is shipped as source into kernels that lack remote_magics.

Every message is an ordinary Jupyter message on the kernel's shell socket (DEALER → ROUTER),
signed by ``jupyter_client.session.Session`` with the connection key. Jupyter's signature does
not cover binary frames, so every message of ours that carries frames also carries
``content["digest"]``: an HMAC-SHA256, with the same key, of the frames' lengths and bytes
(:func:`frames_digest`). A side that finds a wrong digest logs the message and drops it.

Values travel as *items*. An item is one Python object pickled by cloudpickle with protocol 5:
the first frame is the pickle stream, the following ``nframes - 1`` frames are its out-of-band
buffers (numpy arrays, bytes), each a ZeroMQ frame of its own, never copied into the pickle.
Item descriptions (dicts, in the JSON content) appear in the same order as their frames.

Messages (``content`` fields; "→" client to engine, "←" engine to client):

``remote_run_request`` →
    ``code`` (str, already transformed by IPython), ``inputs`` ([{"name", "nframes"}]),
    ``placeholders`` ([names bound to None so that ``del name`` works]), ``outputs`` ([names the
    cell may bind]), ``deletes`` ([names the cell may delete]), ``last_expr`` (bool),
    ``download`` ("all" | "small" | "none"), ``bytes`` (int, the limit for "small"),
    ``cell_id`` (int, names the cell in tracebacks), ``digest``. Frames: the inputs' items.
``remote_run_reply`` ←
    ``status`` ("ok" | "error"), ``outputs`` ([Output]), ``result`` (Output or null),
    ``deleted`` ([names]), on error ``ename``, ``evalue``, ``traceback`` ([str, ANSI colored]),
    ``engine_id``, ``digest``. Frames: the items of the outputs whose ``kind`` is "value",
    output order, then the result's.
    An Output is ``{"name", "kind": "value", "nframes", "ref"}`` (downloaded; ``ref`` is the
    remote id under which the engine holds the value until the client releases it, so a value
    that fails to unpickle locally can stay remote) or ``{"name", "kind": "proxy", "ref",
    "reason"}`` (left remote; ``reason`` says why when the policy did not choose it).
    ``ref`` is an object descriptor (:data:`DESCRIPTOR_FIELDS`).
``remote_fetch_request`` → ``id``.  ``remote_fetch_reply`` ← ``status``, ``nframes``, ``digest``;
    frames: the object's item.
``remote_release_request`` → ``ids`` (a list; an id listed twice is released twice).
    ``remote_release_reply`` ← ``status``, ``released`` (int).
``remote_info_request`` → nothing. ``remote_info_reply`` ← ``engine_id``, ``objects`` (count held
    for this client), ``total_objects``, ``pid``, ``hostname``, ``python``, ``cwd``,
    ``versions``.

Objects held by the engine are scoped to the client's Jupyter session id (``header.session``):
one client cannot fetch or release another's. Ids are unguessable random tokens.

Output produced while a request runs (stdout, stderr, ``display_data``) goes out on iopub with the
request as its parent, as for ``execute_request``; the kernel's ``idle`` status for the request
follows all of it, so the client relays until it has both the reply and that status.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

PROTOCOL_VERSION = 1

RUN_REQUEST = "remote_run_request"
RUN_REPLY = "remote_run_reply"
FETCH_REQUEST = "remote_fetch_request"
FETCH_REPLY = "remote_fetch_reply"
RELEASE_REQUEST = "remote_release_request"
RELEASE_REPLY = "remote_release_reply"
INFO_REQUEST = "remote_info_request"
INFO_REPLY = "remote_info_reply"

REQUEST_TYPES = (RUN_REQUEST, FETCH_REQUEST, RELEASE_REQUEST, INFO_REQUEST)
REPLY_TYPES = (RUN_REPLY, FETCH_REPLY, RELEASE_REPLY, INFO_REPLY)

DOWNLOAD_POLICIES = ("all", "small", "none")

#: Fields of an object descriptor; any but ``id`` and ``type`` may be null.
DESCRIPTOR_FIELDS = ("id", "type", "len", "shape", "dtype", "size", "size_exact")


def reply_type(request_type: str) -> str:
    """The reply's message type for a request's message type."""
    return request_type[: -len("_request")] + "_reply"


def frames_digest(key: bytes, frames: Iterable) -> str:
    """HMAC-SHA256 of the frames (lengths included, so frames cannot be re-split); "" with no key."""
    if not key:
        return ""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for frame in frames:
        view = memoryview(frame)
        mac.update(view.nbytes.to_bytes(8, "little"))
        mac.update(view)
    return mac.hexdigest()


def digest_ok(key: bytes, frames: Iterable, digest: str | None) -> bool:
    """Whether ``digest`` is the right one for ``frames`` under ``key`` (constant-time compare)."""
    if not key:
        return True
    return hmac.compare_digest(frames_digest(key, frames), digest or "")
