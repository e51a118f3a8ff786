"""Pickling values into ZeroMQ frames, for the client and the engine alike.

cloudpickle with pickle protocol 5: functions and classes defined in a notebook go by value,
installed modules by reference, and every out-of-band buffer (a numpy array's data, a large
``bytes``) becomes a frame of its own, sent and received without a copy. A proxy pickles as a
reference that the engine resolves from its object store (:func:`resolve_proxy`), so a proxy
costs a few bytes on the wire wherever it sits in a value.

Standard library and cloudpickle only: this module is shipped as source to kernels that do not
have remote_magics installed.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib
import importlib.util
import io
import pickle
import sys
import threading
import types
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator, Sequence

import cloudpickle

PROTOCOL = 5

#: Types that plain pickle handles exactly as cloudpickle does, at a fraction of the cost.
PLAIN = frozenset({int, float, complex, bool, type(None), str})


class TooLarge(Exception):
    """Raised by :func:`dumps` once a value's serialized size passes its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"serialized size exceeds {limit} bytes")
        self.limit = limit


class _Sink:
    """A write-only file that counts bytes and stops the pickler past a limit."""

    def __init__(self, limit: int | None) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit

    def add(self, nbytes: int) -> None:
        self.size += nbytes
        if self.limit is not None and self.size > self.limit:
            raise TooLarge(self.limit)

    def write(self, data: bytes) -> int:
        self.add(len(data))
        self.parts.append(bytes(data))
        return len(data)


_importable: dict[str, bool] = {}  # module name → whether importing it made it available


def _import_module_of(obj: Any) -> None:
    """Import the module of a class or function when it is installed but not yet imported.

    cloudpickle sends a class by reference only when its module is in ``sys.modules``; a class
    of a lazily imported submodule (``numpy.rec.recarray`` before anything imported
    ``numpy.rec``) would otherwise travel by value and come back as a look-alike class.
    """
    name = getattr(obj, "__module__", None)
    if not isinstance(name, str) or name in sys.modules or name == "__main__" \
            or _importable.get(name) is False:
        return
    try:
        found = importlib.util.find_spec(name) is not None
        if found:
            importlib.import_module(name)
    except Exception:  # a module made at run time, or one that fails to import: by value
        found = False
    _importable[name] = found and name in sys.modules


class Pickler(cloudpickle.CloudPickler):
    """cloudpickle's pickler, sending classes and functions of installed modules by reference."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType)):
            _import_module_of(obj)
        substitute = getattr(_state, "substitute", None)
        if substitute is not None:  # an upload the engine keeps (:func:`substituting`)
            reduced = substitute(obj)
            if reduced is not NotImplemented:
                return reduced
        return super().reducer_override(obj)


class BytecodeByValue(Exception):
    """A value holds Python code by value (a notebook's function or class) where it may not go.

    Bytecode is specific to a Python minor version: between two, it fails to load, or loads and
    misbehaves. :func:`dumps` and :func:`loads` raise this with ``bytecode=False``.
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__("it holds Python code by value (" + (f"'{name}': " if name else "")
                         + "a function, or a method of a class, defined in the notebook or a cell)")
        self.name = name


def _refuse_code(code: types.CodeType) -> Any:
    raise BytecodeByValue(getattr(code, "co_qualname", code.co_name))


class _NoBytecodePickler(Pickler):
    """cloudpickle, except that a code object (what a function by value carries) raises."""

    dispatch_table = collections.ChainMap(
        {types.CodeType: _refuse_code}, getattr(cloudpickle.CloudPickler, "dispatch_table", {}))


class _NoBytecodeUnpickler(pickle.Unpickler):
    """pickle's unpickler, except that making a code object raises :class:`BytecodeByValue`."""

    def find_class(self, module: str, name: str) -> Any:
        found = super().find_class(module, name)
        if found is types.CodeType:
            raise BytecodeByValue()
        if name == "_builtin_type" and module.startswith("cloudpickle"):  # how it names CodeType

            def builtin_type(type_name: str) -> Any:
                if type_name == "CodeType":
                    raise BytecodeByValue()
                return found(type_name)

            return builtin_type
        return found


def dumps(obj: Any, limit: int | None = None, *, bytecode: bool = True) -> list:
    """Pickle ``obj`` into frames: the pickle stream, then one frame per out-of-band buffer.

    With ``limit``, stop as soon as the frames' total size passes it and raise
    :class:`TooLarge`, so a 1 GB value is never fully serialized just to learn it is big.
    With ``bytecode=False``, raise :class:`BytecodeByValue` rather than pickle code by value
    (for a peer on another Python version).
    """
    if type(obj) in PLAIN:  # the C pickler alone: a cell reading 1,000 numbers stays fast
        head = pickle.dumps(obj, protocol=PROTOCOL)
        if limit is not None and len(head) > limit:
            raise TooLarge(limit)
        return [head]
    sink = _Sink(limit)
    buffers: list[memoryview] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            view = buffer.raw()
        except BufferError:  # not contiguous: it goes in-band, inside the pickle stream
            return True
        sink.add(view.nbytes)
        buffers.append(view)
        return False

    pickler = Pickler if bytecode else _NoBytecodePickler
    if limit is None:
        stream = io.BytesIO()
        pickler(stream, protocol=PROTOCOL, buffer_callback=out_of_band).dump(obj)
        head = stream.getvalue()
    else:
        pickler(sink, protocol=PROTOCOL, buffer_callback=out_of_band).dump(obj)
        head = b"".join(sink.parts)
    return [head, *buffers]


def fingerprint(obj: Any, limit: int | None = None) -> bytes | None:
    """A digest of ``obj``'s pickle, to see whether code changed it in place.

    None when it cannot be pickled, or (with ``limit``) when its pickle is larger than that.
    """
    try:
        frames = dumps(obj, limit)
    except Exception:  # TooLarge, or a value that does not pickle
        return None
    digest = hashlib.blake2b(digest_size=32)
    for frame in frames:
        view = memoryview(frame)
        digest.update(view.nbytes.to_bytes(8, "little"))
        digest.update(view.cast("B") if view.ndim != 1 or view.itemsize != 1 else view)
    return digest.digest()


def loads(frames: Sequence, *, bytecode: bool = True) -> Any:
    """Rebuild a value from the frames made by :func:`dumps`; buffers are used in place.

    With ``bytecode=False``, raise :class:`BytecodeByValue` before making any code object.
    """
    if bytecode:
        return pickle.loads(frames[0], buffers=frames[1:])
    return _NoBytecodeUnpickler(io.BytesIO(frames[0]), buffers=frames[1:]).load()


#: An item of one frame up to this size shares a frame with the message's other small items.
PACK_BYTES = 64 << 10


def pack(items: list[dict], frames: list) -> tuple[list, bool]:
    """Lay out a message's frames with its small one-frame items joined into one last frame.

    ``items`` describe the frames in order (``nframes`` each, absent for none). Each ZeroMQ frame
    costs a send, a receive and a digest update on both sides, so a cell reading 1,000 numbers
    sends 1 frame, not 1,000. A moved item's description gets ``nframes`` 0 and ``at``:
    [offset, size] in the shared frame. Returns the frames and whether the last one is shared.
    """
    out, shared, size, start = [], [], 0, 0
    for item in items:
        count = item.get("nframes") or 0
        own = frames[start:start + count]
        start += count
        if count == 1 and memoryview(own[0]).nbytes <= PACK_BYTES:
            item["nframes"], item["at"] = 0, [size, memoryview(own[0]).nbytes]
            shared.append(own[0])
            size += item["at"][1]
        else:
            out.extend(own)
    if not shared:
        return frames, False
    return [*out, *frames[start:], b"".join(shared)], True


def unpack(items: list[dict], frames: list, packed: bool) -> list[list]:
    """Each item's frames, from a message laid out by :func:`pack`."""
    shared = memoryview(frames[-1]) if packed and frames else None
    own = frames[:-1] if shared is not None else frames
    found, start = [], 0
    for item in items:
        at = item.get("at")
        if at is not None and shared is not None:
            found.append([shared[at[0]:at[0] + at[1]]])
        else:
            count = item.get("nframes") or 0
            found.append(list(own[start:start + count]))
            start += count
    return found


def nbytes(frames: Iterable) -> int:
    """Total size of frames in bytes."""
    return sum(memoryview(frame).nbytes for frame in frames)


# --- proxies ------------------------------------------------------------------------------

_state = threading.local()


@contextlib.contextmanager
def resolving(resolver: Callable[[str, str], Any]) -> Iterator[None]:
    """Within this block, unpickled proxy references are turned into objects by ``resolver``.

    ``resolver(engine_id, object_id)`` returns the object; the engine provides it.
    """
    previous = getattr(_state, "resolver", None)
    _state.resolver = resolver
    try:
        yield
    finally:
        _state.resolver = previous


@contextlib.contextmanager
def noting_proxies() -> Iterator[list]:
    """Collect, into the yielded list, every proxy pickled within this block."""
    previous = getattr(_state, "noted", None)
    noted: list = []
    _state.noted = noted
    try:
        yield noted
    finally:
        _state.noted = previous


def proxy_reference(proxy: Any, engine_id: str, object_id: str) -> tuple:
    """What a proxy's ``__reduce__`` returns: a call of :func:`resolve_proxy` at the engine."""
    noted = getattr(_state, "noted", None)
    if noted is not None:
        noted.append(proxy)
    return resolve_proxy, (engine_id, object_id)


def resolve_proxy(engine_id: str, object_id: str) -> Any:
    """Called by the unpickler at the engine to turn a proxy reference into the object."""
    resolver = getattr(_state, "resolver", None)
    if resolver is None:
        raise pickle.UnpicklingError(
            f"a proxy to remote object {object_id} can only be unpickled by its engine; "
            "call .fetch() on the proxy to get its value"
        )
    return resolver(engine_id, object_id)


# --- uploads the engine keeps between runs ------------------------------------------------

@contextlib.contextmanager
def substituting(substitute: Callable[[Any], Any]) -> Iterator[None]:
    """Within this block, every object pickled is first offered to ``substitute(obj)``.

    It returns ``NotImplemented`` to pickle the object as usual, or a reduce tuple: the client
    returns :func:`keep_reference` for a value the engine already keeps, or
    :func:`kept_upload`'s for one it should keep. Being pickle-level, this works for an object
    anywhere in a run's values, and once per object however many names hold it.
    """
    previous = getattr(_state, "substitute", None)
    _state.substitute = substitute
    try:
        yield
    finally:
        _state.substitute = previous


@contextlib.contextmanager
def keeping(keeper: Any) -> Iterator[None]:
    """Within this block, kept uploads unpickled go to ``keeper`` (the engine provides it):
    ``keeper.keep(token, obj)`` for a new one, ``keeper.get(token)`` for a reference."""
    previous = getattr(_state, "keeper", None)
    _state.keeper = keeper
    try:
        yield
    finally:
        _state.keeper = previous


def kept_upload(token: str, rebuild: Callable, args: tuple, state: Any = None) -> Any:
    """Called by the unpickler at the engine: ``rebuild(*args)`` (then given ``state``, as
    pickle does), kept under ``token``."""
    obj = rebuild(*args)
    if state is not None:
        obj.__setstate__(state)
    keeper = getattr(_state, "keeper", None)
    if keeper is not None:
        keeper.keep(token, obj)
    return obj


def keep_reference(token: str) -> tuple:
    """The reduce tuple of a value the engine keeps under ``token``: no bytes travel."""
    return resolve_kept, (token,)


def resolve_kept(token: str) -> Any:
    """Called by the unpickler at the engine to turn a kept upload's token into the value."""
    keeper = getattr(_state, "keeper", None)
    if keeper is None:
        raise pickle.UnpicklingError(
            f"a reference to upload {token} can only be unpickled by the engine that kept it")
    return keeper.get(token)


# --- modules that the other side cannot import --------------------------------------------

@contextlib.contextmanager
def by_value(modules: Iterable[ModuleType]) -> Iterator[None]:
    """Within this block, cloudpickle pickles these modules' functions and classes by value."""
    registered = []
    try:
        for module in modules:
            if module.__name__ in sys.modules:
                try:
                    cloudpickle.register_pickle_by_value(module)
                except ValueError:  # already registered by the user
                    continue
                registered.append(module)
        yield
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)
