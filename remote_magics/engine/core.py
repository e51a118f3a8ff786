"""The engine: our shell handlers inside the remote kernel.

An ordinary ipykernel kernel that also answers the shell messages of
:mod:`remote_magics.wire.protocol` (run, fetch, release, info, chunks of uploads) and keeps an
object store for the values that stay remote. Started as ``python -m remote_magics.engine -f
CONNECTION_FILE`` (:func:`main`), or installed into any running ipykernel by :func:`install`
(the client ships the engine's source when remote_magics is not importable there). Its imports
are the standard library, ipykernel, cloudpickle and the wire format only.
"""
from __future__ import annotations

import ast
import linecache
import os
import platform
import secrets
import socket
import sys
import traceback
from typing import Any

from ..wire import protocol, serialize, streaming
from . import channels, live, namespace
from .store import ObjectStore, describe


class Engine:
    """Our shell handlers, attached to one ipykernel kernel."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.session = kernel.session
        self.key: bytes = kernel.session.key
        self.engine_id = secrets.token_hex(8)
        self.store = ObjectStore()
        self.running: dict | None = None  # the run request being handled
        self.incoming: dict[str, streaming.Incoming] = {}  # client → its upload under way

    def install(self) -> None:
        """Register the handlers of our request types with the kernel."""
        self.kernel.shell_handlers.update(
            {
                protocol.RUN_REQUEST: self.run_request,
                protocol.FETCH_REQUEST: self.fetch_request,
                protocol.RELEASE_REQUEST: self.release_request,
                protocol.INFO_REQUEST: self.info_request,
                protocol.CHUNK: self.chunk_request,
            }
        )
        self.kernel._remote_magics_engine = self
        live.install(self)
        channels.install(self)
        namespace.install(self)

    async def dispatch(self, raw: list) -> bool:
        """Handle one of our requests with the least ceremony; False for any other message.

        For the kernels we start (``EngineKernel``). ipykernel's own dispatch parses every date
        of the message, publishes busy and idle (each a wake-up of the output thread) and, after
        the handler, waits twice on its output thread to flush stdout and stderr, which our
        handlers have already queued: on two cores that cost a null cell about a millisecond.
        The client finishes on the reply and ``remote_output_done``, so it needs none of them.
        """
        kernel = self.kernel
        try:
            idents, parts = self.session.feed_identities(raw, copy=False)
            msg_type = self.session.unpack(parts[1].bytes).get("msg_type", "")
        except Exception:  # not a message of ours (ipykernel's own markers, or garbage)
            return False
        handler = kernel.shell_handlers.get(msg_type) if msg_type.startswith("remote_") else None
        if handler is None:
            return False
        try:
            msg = protocol.unpack_message(self.session, parts)
        except Exception:
            kernel.log.error("remote_magics: dropped a %s that failed its signature check", msg_type)
            return True
        kernel.set_parent(idents, msg, channel="shell")
        kernel.pre_handler_hook()
        try:
            await handler(kernel.shell_stream, idents, msg)
        except Exception:
            kernel.log.error("remote_magics: %s handler failed", msg_type, exc_info=True)
        except KeyboardInterrupt:  # an interrupt that came after the handler's own try
            kernel.log.error("remote_magics: KeyboardInterrupt outside a run")
        finally:
            kernel.post_handler_hook()
        return True

    # --- messaging -----------------------------------------------------------------------

    def reply(self, stream, ident, parent, content: dict, frames: list = ()) -> None:
        msg_type = protocol.reply_type(parent["header"]["msg_type"])
        frames = list(frames)
        self._announce(parent, "download", frames)
        content["engine_id"] = self.engine_id
        self._output_done(parent)
        streaming.send(self.session, stream, msg_type, content, frames, self.key, parent=parent,
                       ident=ident)

    def _output_done(self, parent: dict) -> None:
        """Publish, behind all the output the request made, that it made no more.

        The kernel's idle status says the same, but only after it has waited twice on its output
        thread; this marker lets the client finish a null cell about half a millisecond sooner.
        """
        streams = [stream for stream in (sys.stdout, sys.stderr) if stream is not None]
        pub_thread = getattr(streams[0], "pub_thread", None) if streams else None

        def flush_then_mark() -> None:
            for stream in streams:
                flush = getattr(stream, "_flush", None)
                (flush or stream.flush)()  # on the output thread, this queues its messages
            self.session.send(self.kernel.iopub_socket, protocol.OUTPUT_DONE, {}, parent,
                              ident=b"remote_magics.output_done")  # queued behind them

        if pub_thread is not None and all(getattr(s, "pub_thread", None) is pub_thread
                                          for s in streams):
            pub_thread.schedule(flush_then_mark)
        else:  # streams replaced by the user's code: flush them here, then mark
            for stream in streams:
                stream.flush()
            self.session.send(self.kernel.iopub_socket, protocol.OUTPUT_DONE, {}, parent,
                              ident=b"remote_magics.output_done")

    def _announce(self, parent: dict, direction: str, frames: list) -> None:
        """Tell the client, on iopub, that a big transfer is under way (it shows progress).

        Not for a streamed transfer, whose progress the client follows chunk by chunk.
        """
        size = serialize.nbytes(frames)
        if size > protocol.PROGRESS_BYTES and not (parent["content"].get("streamed")
                                                   or streaming.streams(frames)):
            self.session.send(self.kernel.iopub_socket, protocol.TRANSFER,
                              {"direction": direction, "nbytes": size}, parent=parent,
                              ident=b"remote_transfer")

    def authentic(self, msg: dict) -> bool:
        """Whether a message's frames pass their digest; every handler asks first.

        A request's streamed frames are put in place here, and whatever else its client
        streamed and never claimed is dropped.
        """
        kind, content = msg["header"]["msg_type"], msg["content"]
        if not streaming.message_ok(self.key, content, msg["buffers"]):
            return self._drop(msg, "whose frames fail their digest")
        if kind not in protocol.REQUEST_TYPES:  # channel messages (control thread): never streamed
            return True
        incoming = self.incoming.pop(msg["header"]["session"], None) or streaming.Incoming(self.key)
        try:
            msg["buffers"] = incoming.claim(content, msg["buffers"])
        except streaming.StreamError as err:
            return self._drop(msg, f"({err})")
        return True

    def _drop(self, msg: dict, why: str) -> bool:
        """Log and drop a message (returns False), publishing a dropped request's idle status.

        Our fast dispatch publishes none, and without it the client would wait for ever.
        """
        kind = msg["header"]["msg_type"]
        self.kernel.log.error("remote_magics: dropped a %s %s", kind, why)
        if kind in protocol.REQUEST_TYPES:
            self.session.send(self.kernel.iopub_socket, "status", {"execution_state": "idle"},
                              parent=msg, ident=b"remote_magics.status")
        return False

    def resolver(self, client: str):
        def resolve(engine_id: str, oid: str) -> Any:
            if engine_id != self.engine_id:
                raise LookupError(f"the proxy {oid} belongs to another engine ({engine_id})")
            try:
                return self.store.get(oid, client)
            except KeyError:
                raise LookupError(
                    f"remote object {oid} is not held for this client on this engine "
                    "(released, or the kernel restarted)"
                ) from None
        return resolve

    # --- handlers ------------------------------------------------------------------------

    async def run_request(self, stream, ident, parent) -> None:
        """Run a cell: unpickle its inputs, run it, return or keep each name it bound."""
        if not self.authentic(parent):
            return
        self._announce(parent, "upload", parent["buffers"])
        self.running = parent  # channels a cell reads publish with this run as their parent
        content = parent["content"]
        client = parent["header"]["session"]
        try:
            namespace = self._namespace(content, parent["buffers"], client)
            value = await self._execute(content, namespace)
        except BaseException as err:  # the client waits for a reply whatever happens
            self._flush_figures()
            self.reply(stream, ident, parent, self._error_content(err))
            return
        finally:
            self.running = None
        self._flush_figures()
        reply, frames = self._outputs(content, namespace, value, client)
        self.reply(stream, ident, parent, reply, frames)

    def _namespace(self, content: dict, frames: list, client: str) -> dict:
        namespace: dict[str, Any] = {"__name__": "__main__"}
        shell = getattr(self.kernel, "shell", None)
        if shell is not None:
            namespace["get_ipython"] = shell.get_ipython
        namespace.update(dict.fromkeys(content.get("placeholders", ())))
        inputs = content.get("inputs", [])
        with serialize.resolving(self.resolver(client)):
            for item, own in zip(inputs, serialize.unpack(inputs, frames, content.get("packed"))):
                try:
                    namespace[item["name"]] = serialize.loads(own)
                except Exception as err:
                    raise InputError(item["name"], err) from err
        return namespace

    async def _execute(self, content: dict, namespace: dict) -> Any:
        """Run the cell's code in ``namespace``; the value of a last expression, else None."""
        filename = f"<remote cell {content.get('cell_id', 0)}>"
        code = content["code"]
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree: Any = code  # without a last expression, compile the text: no Python AST objects
        last = None
        if content.get("last_expr"):
            tree = compile(code, filename, "exec", flags=ast.PyCF_ONLY_AST | flags)
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
        for node, mode in ((tree, "exec"), (last, "eval")):
            if node is None:
                continue
            compiled = compile(node, filename, mode, flags=flags)
            outcome = eval(compiled, namespace)  # noqa: S307 - the user's own cell
            if compiled.co_flags & 0x80:  # CO_COROUTINE: the cell awaits at top level
                outcome = await outcome
        return outcome if last is not None else None

    def _flush_figures(self) -> None:
        """Show figures the cell made, as ``execute_request`` does after a cell."""
        shell = getattr(self.kernel, "shell", None)
        if shell is None:
            return
        try:
            shell.events.trigger("post_execute")
        except Exception:
            self.kernel.log.debug("post_execute hooks failed", exc_info=True)

    def _error_content(self, err: BaseException) -> dict:
        if isinstance(err, InputError):
            cause = err.__cause__
            kind, evalue = type(cause), str(err)
            lines = traceback.format_exception(cause)
        else:
            kind, evalue = type(err), str(err)
            lines = self._format_traceback(err)
        return {"status": "error", "ename": kind.__name__, "evalue": evalue, "traceback": lines,
                "etype": f"{kind.__module__}.{kind.__qualname__}",
                "outputs": [], "result": None, "deleted": []}

    def _format_traceback(self, err: BaseException) -> list[str]:
        tb = err.__traceback__
        own = Engine._execute.__code__.co_filename
        while tb is not None and tb.tb_frame.f_code.co_filename == own:
            tb = tb.tb_next  # our own frames are noise to the user
        shell = getattr(self.kernel, "shell", None)
        try:
            return shell.InteractiveTB.structured_traceback(type(err), err, tb)
        except Exception:  # no IPython formatter: plain Python formatting
            return traceback.format_exception(type(err), err, tb)

    def _outputs(self, content: dict, namespace: dict, value: Any, client: str):
        """The reply's outputs, result and frames, by the download policy."""
        inputs = {item["name"] for item in content.get("inputs", ())}
        frames: list = []
        outputs, deleted = [], []
        for name in content.get("outputs", ()):
            if name not in namespace:
                if name in inputs or name in content.get("placeholders", ()):
                    deleted.append(name)
                continue
            outputs.append(self.encode(name, namespace[name], content, client, frames))
        result = None
        if value is not None:
            result = self.encode("Out", value, content, client, frames)
        frames, packed = serialize.pack([*outputs, result] if result else outputs, frames)
        return {"status": "ok", "outputs": outputs, "result": result, "deleted": deleted,
                "packed": packed}, frames

    def encode(self, name: str, obj: Any, content: dict, client: str, frames: list) -> dict:
        policy = content.get("download", "small")
        reason = None
        if policy != "none":
            limit = content.get("bytes") if policy == "small" else None
            try:
                item = serialize.dumps(obj, limit)
            except serialize.TooLarge:
                pass
            except Exception as err:  # cannot be pickled: it stays remote, and we say why
                reason = f"{type(err).__name__}: {err}"
            else:
                frames.extend(item)
                ref = describe(obj, self.store.add(obj, client))
                ref.update(download=content.get("download", "small"), bytes=content.get("bytes"))
                return {"name": name, "kind": "value", "nframes": len(item), "ref": ref}
        ref = describe(obj, self.store.add(obj, client))
        ref.update(download=content.get("download", "small"), bytes=content.get("bytes"))
        return {"name": name, "kind": "proxy", "ref": ref, "reason": reason}

    async def chunk_request(self, stream, ident, parent) -> None:
        """Take one chunk of a client's upload (:mod:`..wire.streaming`), and acknowledge it.

        The chunks wait in :attr:`incoming` (client session → its Incoming) until the request
        they go ahead of claims them (:meth:`authentic`).
        """
        client, content = parent["header"]["session"], parent["content"]
        incoming = self.incoming.get(client)
        if incoming is None:
            incoming = self.incoming[client] = streaming.Incoming(self.key)
        ack = {name: content.get(name) for name in ("transfer", "index", "offset")}
        try:
            incoming.add(content, parent["buffers"])
        except streaming.StreamError as err:
            self.kernel.log.error("remote_magics: dropped a chunk: %s", err)
            ack["error"] = str(err)
        self.session.send(self.kernel.iopub_socket, protocol.CHUNK_ACK, ack, parent=parent,
                          ident=b"remote_magics.chunk_ack")  # the client sends more

    async def fetch_request(self, stream, ident, parent) -> None:
        """Send an object's whole value."""
        if not self.authentic(parent):
            return
        client = parent["header"]["session"]
        oid = parent["content"].get("id", "")
        try:
            item = serialize.dumps(self.store.get(oid, client))
        except KeyError:
            self.reply(stream, ident, parent, {
                "status": "error", "ename": "LookupError",
                "evalue": f"remote object {oid} is not held for this client", "traceback": []})
            return
        except Exception as err:
            self.reply(stream, ident, parent, {
                "status": "error", "ename": type(err).__name__, "evalue": str(err),
                "traceback": traceback.format_exception(err)})
            return
        self.reply(stream, ident, parent, {"status": "ok", "nframes": len(item)}, item)

    async def release_request(self, stream, ident, parent) -> None:
        """Drop the client's references to objects."""
        if not self.authentic(parent):
            return
        client = parent["header"]["session"]
        released = sum(self.store.release(oid, client) for oid in parent["content"].get("ids", ()))
        if parent["content"].get("all"):
            released += self.store.drop_client(client)
        self.reply(stream, ident, parent, {"status": "ok", "released": released})

    async def info_request(self, stream, ident, parent) -> None:
        """Describe the engine and what it holds for this client."""
        if not self.authentic(parent):
            return
        import cloudpickle

        client = parent["header"]["session"]
        self.reply(stream, ident, parent, {
            "status": "ok",
            "protocol_version": protocol.PROTOCOL_VERSION,
            "objects": self.store.count(client),
            "total_objects": self.store.count(),
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "python": sys.executable,
            "python_version": platform.python_version(),
            "cwd": os.getcwd(),
            "versions": {"cloudpickle": cloudpickle.__version__},
        })


class InputError(Exception):
    """An input of the cell could not be unpickled in the engine."""

    def __init__(self, name: str, cause: BaseException) -> None:
        hint = ""
        if isinstance(cause, ImportError) and cause.name:
            hint = (f" The cell uses module '{cause.name}' by reference and it is not installed"
                    " in the remote kernel's environment: install it there.")
        super().__init__(
            f"the value of '{name}' could not be unpickled in the remote kernel: "
            f"{type(cause).__name__}: {cause}.{hint}"
        )
        self.name = name


def install(kernel: Any) -> Engine:
    """Attach an engine to a running ipykernel kernel (once; later calls return the same one)."""
    engine = getattr(kernel, "_remote_magics_engine", None)
    if engine is None:
        engine = Engine(kernel)
        engine.install()
    return engine


def main() -> None:
    """``python -m remote_magics.engine -f CONNECTION_FILE``: an ipykernel with our handlers."""
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelapp import IPKernelApp

    class EngineKernel(IPythonKernel):
        implementation = "remote_magics.engine"

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            install(self)

        async def dispatch_shell(self, msg: list, *args: Any, **kwargs: Any) -> None:
            if not await self._remote_magics_engine.dispatch(msg):
                await super().dispatch_shell(msg, *args, **kwargs)

    class EngineApp(IPKernelApp):
        def init_control(self, context: Any) -> None:
            super().init_control(context)
            # Shell messages on the main thread, as before ipykernel 7's subshells: each request
            # and reply skips two thread hops, the larger part of a null cell's remote time.
            self.shell_channel_thread = None

    EngineApp.launch_instance(kernel_class=EngineKernel)

