"""Live proxies, client side: Python's operators on a :class:`RemoteObject` run remotely.

``len(p)``, ``p[i]``, ``p[a:b]``, ``p.attr``, ``p.method(...)``, ``iter(p)``, ``x in p``,
arithmetic and comparisons each send one ``remote_op_request`` (:mod:`.protocol`); the result
comes back by the proxy's download policy (small → value, big → a new proxy). Iteration takes
:data:`ITER_CHUNK` items per round trip. What stays local: ``isinstance`` (a proxy is a
``RemoteObject``), ``hash`` and ``is`` (identity of the proxy), ``repr`` (from the descriptor),
the proxy's own attributes (``fetch``, ``release``, ``check``, ``target``, ``type_name``,
``remote_len``, ``shape``, ``dtype``, ``nbytes``, ``reason``) and every name that starts with
an underscore (tools probe such names: ``_repr_png_``, pandas' ``_typ``).

Operations use the target's main connection, so they belong to the notebook's thread; while
an async job runs on the target they wait for it (tab completion and previews do not wait).
"""
from __future__ import annotations

import html
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Iterator

from . import protocol, serialize
from .errors import ProxyError, RemoteError, SerializationError

if TYPE_CHECKING:
    from .proxy import RemoteObject

log = logging.getLogger(__name__)

#: Items fetched per round trip when iterating over a proxy.
ITER_CHUNK = 1000
#: Seconds a preview may take before the display goes without it.
PREVIEW_TIMEOUT = 10.0
#: Instance attributes of RemoteObject itself; they are never forwarded.
_LOCAL_NAMES = frozenset({"reason"})

_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "truediv": "truediv",
           "floordiv": "floordiv", "mod": "mod", "pow": "pow", "matmul": "matmul",
           "and": "and_", "or": "or_", "xor": "xor", "lshift": "lshift", "rshift": "rshift"}
_COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")
_UNARY = ("neg", "pos", "abs", "invert")


class GoneAttributeError(ProxyError, AttributeError):
    """An attribute of a proxy whose remote object is gone: both a ProxyError and an AttributeError."""


def _policy(proxy: "RemoteObject") -> tuple[str, int]:
    descriptor = proxy._descriptor
    return descriptor.get("download") or "small", int(descriptor.get("bytes") or 1 << 20)


def _on_notebook_thread(target: Any) -> None:
    from . import jobs

    if jobs.is_worker_thread():
        raise RuntimeError(
            "live proxy operations use the target's main connection and must run on the "
            "notebook's thread, not in a job's or a channel's callback; pass the value to the "
            "remote cell instead")


def request(proxy: "RemoteObject", op: str, *, name: str | None = None, args: tuple = (),
            kwargs: dict | None = None, chunk: int | None = None,
            timeout: float | None = None, patience: float | None = None):
    """Send one operation on ``proxy``'s remote object; return the reply (raises RemoteError).

    It waits its turn behind the target's jobs (as every Target request does). ``patience``
    gives up without interrupting the kernel, for previews and completions.
    """
    proxy.check()
    target = proxy._target
    _on_notebook_thread(target)
    download, limit = _policy(proxy)
    content = {"id": proxy._id, "op": op, "name": name, "download": download, "bytes": limit,
               "chunk": chunk, "nframes": 0}
    frames: list = []
    if args or kwargs:
        with serialize.noting_proxies() as noted:
            try:
                frames = serialize.dumps((tuple(args), dict(kwargs or {})))
            except Exception as err:
                raise SerializationError(f"an argument of {op}", (args, kwargs), err) from err
        for other in noted:
            other.check()
            if other._target is not target:
                raise ProxyError(f"an argument is a proxy on target '{other.target}', and this "
                                 f"proxy lives on '{target.name}'; .fetch() one of them first")
        content["nframes"] = len(frames)
    reply = target._request(protocol.OP_REQUEST, content, frames, timeout=timeout,
                            patience=patience)
    if reply.content.get("status") != "ok":
        raise RemoteError.from_reply(reply.content, target.name)
    return reply


def operate(proxy: "RemoteObject", op: str, **options: Any) -> Any:
    """One operation on ``proxy``, its result decoded: a JSON value, a local value, or a proxy."""
    reply = request(proxy, op, **options)
    if "value" in reply.content:
        return reply.content["value"]
    return _decode(reply.content["output"], reply.frames, proxy)


def _decode(output: dict, frames: list, parent: "RemoteObject") -> Any:
    """An Output of an op reply; new proxies inherit the parent proxy's download policy."""
    from .proxy import RemoteObject
    from .runner import _load

    download, limit = _policy(parent)
    output = dict(output, ref=dict(output["ref"], download=download, bytes=limit))
    if output["kind"] == "value":
        value, note = _load(output, frames, parent._target)
        if note:
            log.info("remote_magics: %s", note)
        return value
    return RemoteObject(parent._target, output["ref"], output.get("reason"))


class RemoteIterator:
    """Iterates over a remote iterator, :data:`ITER_CHUNK` items per round trip."""

    def __init__(self, proxy: "RemoteObject", chunk: int = ITER_CHUNK) -> None:
        self._parent = proxy
        self._iterator = operate(proxy, "iter")
        self._chunk = chunk
        self._buffer: deque = deque()
        self._done = False

    def __iter__(self) -> "RemoteIterator":
        return self

    def __next__(self) -> Any:
        if not self._buffer and not self._done:
            self._fill()
        if not self._buffer:
            raise StopIteration
        return self._buffer.popleft()

    def _fill(self) -> None:
        reply = request(self._iterator, "next", chunk=self._chunk)
        content = reply.content
        self._done = bool(content.get("done"))
        if "chunk" in content:
            self._buffer.extend(serialize.loads(reply.frames[: content["chunk"]]))
        else:
            start = 0
            for output in content.get("items", ()):
                end = start + (output.get("nframes") or 0)
                self._buffer.append(_decode(output, reply.frames[start:end], self._iterator))
                start = end
        if self._done:
            self._iterator.release()


def remote_dir(proxy: "RemoteObject") -> list[str]:
    """The remote object's attribute names; none while its target is busy or unreachable."""
    from . import jobs

    if jobs.busy(proxy._target):
        return []
    try:
        return list(operate(proxy, "dir", patience=PREVIEW_TIMEOUT))
    except Exception:  # completion must never fail the notebook
        log.debug("remote dir failed", exc_info=True)
        return []


def preview(proxy: "RemoteObject") -> dict:
    """The head of the remote value (text, and HTML for DataFrames), computed remotely."""
    return operate(proxy, "preview", patience=PREVIEW_TIMEOUT)


def preview_html(proxy: "RemoteObject") -> str:
    """HTML of the preview for ``_repr_html_``; a short note instead when it cannot be had."""
    from . import jobs

    if proxy._released or threading.current_thread() is not threading.main_thread():
        return ""
    if jobs.busy(proxy._target):
        return "<br><small>preview: the target is busy with a job</small>"
    try:
        shown = preview(proxy)
    except Exception as err:  # a display must never fail
        return f"<br><small>no preview: {html.escape(type(err).__name__)}</small>"
    if shown.get("html"):
        return f"<div class='remote-magics-preview'>{shown['html']}</div>"
    return f"<pre class='remote-magics-preview'>{html.escape(shown.get('text') or '')}</pre>"


class LiveOperations:
    """Mixin of :class:`RemoteObject`: the Python protocols, forwarded to the remote object."""

    __hash__ = object.__hash__  # identity of the proxy, so proxies stay usable as dict keys

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or "_target" not in self.__dict__:
            raise AttributeError(name)
        try:
            return operate(self, "getattr", name=name)
        except ProxyError as err:
            raise GoneAttributeError(str(err)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if (name.startswith("_") or name in _LOCAL_NAMES or "_released" not in self.__dict__
                or name in self.__dict__ or hasattr(type(self), name)):
            object.__setattr__(self, name, value)
        else:
            operate(self, "setattr", name=name, args=(value,))

    def __delattr__(self, name: str) -> None:
        if name.startswith("_") or name in self.__dict__ or hasattr(type(self), name):
            object.__delattr__(self, name)
        else:
            operate(self, "delattr", name=name)

    def __dir__(self) -> list[str]:
        return sorted(set(object.__dir__(self)) | set(remote_dir(self)))

    def _ipython_key_completions_(self) -> list:
        from . import jobs

        if jobs.busy(self._target):
            return []
        try:
            return operate(self, "keys", patience=PREVIEW_TIMEOUT)
        except Exception:  # completion must never fail the notebook
            return []

    def __len__(self) -> int:
        return operate(self, "len")

    def __bool__(self) -> bool:
        return operate(self, "bool")

    def __contains__(self, item: Any) -> bool:
        return operate(self, "contains", args=(item,))

    def __iter__(self) -> Iterator:
        return RemoteIterator(self)

    def __getitem__(self, key: Any) -> Any:
        return operate(self, "getitem", args=(key,))

    def __setitem__(self, key: Any, value: Any) -> None:
        operate(self, "setitem", args=(key, value))

    def __delitem__(self, key: Any) -> None:
        operate(self, "delitem", args=(key,))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return operate(self, "call", args=args, kwargs=kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy

        return numpy.asarray(self.fetch(), dtype=dtype)

    def __int__(self) -> int:
        return int(self.fetch())

    def __float__(self) -> float:
        return float(self.fetch())


def _binary(name: str, reflected: bool):
    op = ("r" if reflected else "") + name

    def method(self, other):
        return operate(self, "binop", name=op, args=(other,))
    return method


def _unary(name: str):
    def method(self):
        return operate(self, "unop", name=name)
    return method


for _dunder, _name in _BINARY.items():
    setattr(LiveOperations, f"__{_dunder}__", _binary(_name, False))
    setattr(LiveOperations, f"__r{_dunder}__", _binary(_name, True))
for _name in _COMPARE:
    setattr(LiveOperations, f"__{_name}__", _binary(_name, False))
for _name in _UNARY:
    setattr(LiveOperations, f"__{_name}__", _unary(_name))
