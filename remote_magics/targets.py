"""Targets: the remote kernels a notebook runs cells on, and how each one is obtained.

A :class:`Target` is the Python API beneath the magics: ``target.run(code, namespace)``,
``target.fetch``, ``target.info``, ``target.close``. :func:`connect` obtains one from a target
spec: nothing or ``local`` (start a new engine kernel here), or the path of a running kernel's
connection file (the engine is installed into it, shipped as source if need be).
"""
from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

from . import protocol, relay, runner, serialize
from .client import Connection, Reply
from .errors import ConnectionLost, NotConnected, ProxyError, RemoteKernelDied, RemoteMagicsError

log = logging.getLogger(__name__)

ENGINE_SPEC_NAME = "remote-magics-engine"


class Target:
    """A connected remote kernel with our engine in it."""

    def __init__(self, name: str, connection: Connection, *, spec: str,
                 kernel_manager: KernelManager | None = None) -> None:
        self.name = name
        self.spec = spec
        self.connection = connection
        self.kernel_manager = kernel_manager
        self._releases: list[str] = []
        self._releases_lock = threading.Lock()
        self.engine_id = ""
        self.details: dict = {}
        self.runs = 0
        self.last_run: runner.RunResult | None = None

    @property
    def owned(self) -> bool:
        """Whether we started this kernel (and so shut it down on disconnect)."""
        return self.kernel_manager is not None

    def _request(self, msg_type: str, content: dict, frames: list = (), *,
                 timeout: float | None = None, on_output: Callable | None = None) -> Reply:
        if self.connection.closed:
            raise NotConnected(f"target '{self.name}' is disconnected; connect again with "
                               "%remote_connect")
        return self.connection.request(msg_type, content, frames, timeout=timeout,
                                       on_output=on_output)

    def run(
        self,
        code: str,
        namespace: dict,
        *,
        download: str = "small",
        bytes: int = 1 << 20,
        timeout: float | None = None,
        on_output: Callable[[dict], None] | None = relay.show,
        hidden: dict | None = None,
        cell_id: int | None = None,
    ) -> runner.RunResult:
        """Run ``code`` remotely with the names it reads from ``namespace``; bring back what it binds.

        ``download`` is ``all`` (every bound value comes back), ``small`` (values whose serialized
        size is at most ``bytes`` come back, the rest stay remote as proxies) or ``none``.
        ``namespace`` changes only when the run succeeds.
        """
        if download not in protocol.DOWNLOAD_POLICIES:
            raise ValueError(f"download must be one of {', '.join(protocol.DOWNLOAD_POLICIES)}, "
                             f"not {download!r}")
        started = time.perf_counter()
        self.runs += 1
        request = runner.prepare(code, namespace, self, download=download, limit=int(bytes),
                                 hidden=hidden or {}, cell_id=cell_id or self.runs)
        self.flush_releases()
        reply = self._request(protocol.RUN_REQUEST, request.content, request.frames,
                              timeout=timeout, on_output=on_output)
        result = runner.apply(reply, self, namespace)
        result.bytes_sent = reply.bytes_sent
        result.seconds = time.perf_counter() - started
        self.last_run = dataclasses.replace(result, values={}, result=None)  # stats, not values
        return result

    def fetch(self, object_id: str, timeout: float | None = None) -> Any:
        """The value of a remote object, downloaded."""
        reply = self._request(protocol.FETCH_REQUEST, {"id": object_id}, timeout=timeout)
        if reply.content.get("status") != "ok":
            raise ProxyError(
                f"cannot fetch remote object {object_id} from target '{self.name}': "
                f"{reply.content.get('ename')}: {reply.content.get('evalue')}")
        return serialize.loads(reply.frames)

    def info(self) -> dict:
        """The engine's description: pid, host, objects held for us, versions."""
        self.flush_releases()
        reply = self._request(protocol.INFO_REQUEST, {}, timeout=30)
        self.details = reply.content
        return reply.content

    def release_later(self, object_id: str) -> None:
        """Queue a release of one reference (safe from ``__del__``, any thread)."""
        with self._releases_lock:
            self._releases.append(object_id)

    def flush_releases(self) -> None:
        """Send the queued releases without waiting for the engine's answer."""
        with self._releases_lock:
            ids, self._releases = self._releases, []
        if ids and not self.connection.closed:
            self.connection.send(protocol.RELEASE_REQUEST, {"ids": ids})

    def alive(self, timeout: float = 2.0) -> bool:
        """Whether the kernel answers its heartbeat."""
        if self.connection.closed:
            return False
        if self.kernel_manager is not None and not self.kernel_manager.is_alive():
            return False
        return self.connection.ping(timeout)

    def close(self, shutdown: bool | None = None) -> None:
        """Disconnect; shut the kernel down when we started it (or when ``shutdown`` says so)."""
        if self.connection.closed:
            return
        if shutdown is None:
            shutdown = self.owned
        try:
            if not shutdown:
                with self._releases_lock:
                    self._releases.clear()
                self.connection.send(protocol.RELEASE_REQUEST, {"ids": [], "all": True})
        finally:
            self.connection.close()
            if shutdown and self.kernel_manager is not None:
                self.kernel_manager.shutdown_kernel(now=True)
                self.kernel_manager.cleanup_resources()

    def __repr__(self) -> str:
        return f"<Target {self.name!r} {self.spec}>"


class Registry:
    """The targets of this Python process, by name, and which one ``%%remote`` uses by default."""

    def __init__(self) -> None:
        self.targets: dict[str, Target] = {}
        self.current: str | None = None
        atexit.register(self.close_all)

    def add(self, target: Target) -> Target:
        self.targets[target.name] = target
        self.current = target.name
        return target

    def get(self, name: str | None = None) -> Target:
        """The target called ``name``, or the current one."""
        if not self.targets:
            raise NotConnected(
                "no remote kernel is connected. Run %remote_connect first (no argument starts a "
                "new local engine kernel; a connection file path attaches to a running kernel).")
        name = name or self.current
        if name not in self.targets:
            raise NotConnected(f"no target named '{name}'. Connected targets: "
                               f"{', '.join(self.targets)}. See %remote_targets.")
        return self.targets[name]

    def remove(self, name: str, shutdown: bool | None = None) -> None:
        target = self.get(name)
        del self.targets[target.name]
        if self.current == target.name:
            self.current = next(reversed(self.targets), None)
        target.close(shutdown)

    def close_all(self) -> None:
        for name in list(self.targets):
            try:
                self.remove(name)
            except Exception:  # at exit, one kernel's trouble must not keep others alive
                log.debug("closing %s failed", name, exc_info=True)


registry = Registry()


def connect(spec: str | None = None, *, name: str | None = None, timeout: float = 60.0,
            cwd: str | None = None) -> Target:
    """Connect to a remote kernel and make it the current target.

    ``spec`` is None or ``"local"`` to start a new engine kernel on this machine (in ``cwd``,
    by default the current directory), or the path (or name, as Jupyter finds it) of a running
    kernel's connection file. ``name`` defaults to ``"default"``.
    """
    name = name or "default"
    if name in registry.targets:
        existing = registry.targets[name]
        if existing.spec == (spec or "local") and existing.alive():
            registry.current = name
            return existing
        raise RemoteMagicsError(
            f"a target named '{name}' is already connected ({existing.spec}). Disconnect it "
            f"first with %remote_disconnect {name}, or pick another name with --name.")
    if spec in (None, "", "local"):
        target = _start_local(name, timeout=timeout, cwd=cwd)
    elif spec.startswith(("ssh://", "tcp://")):
        raise RemoteMagicsError(
            f"{spec.split(':')[0]}:// targets are not supported yet: start a kernel there and "
            "pass its connection file to %remote_connect.")
    else:
        target = _attach(spec, name, timeout=timeout)
    return registry.add(target)


class _EngineSpecs(KernelSpecManager):
    """Knows one kernelspec: our engine, run by this Python."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "remote_magics.engine", "-f", "{connection_file}",
                  f"--IPKernelApp.parent_handle={os.getpid()}", "--IPKernelApp.log_level=ERROR"],
            display_name="remote_magics engine", language="python",
            interrupt_mode="signal", resource_dir="",
        )


def _start_local(name: str, *, timeout: float, cwd: str | None) -> Target:
    km = KernelManager(kernel_name=ENGINE_SPEC_NAME, kernel_spec_manager=_EngineSpecs())
    km.start_kernel(cwd=cwd or os.getcwd())
    try:
        info = km.get_connection_info(session=False)
        conn = Connection(info, name=name, interrupt=km.interrupt_kernel,
                          exit_status=lambda: km.provisioner.poll() if km.provisioner else None)
        target = Target(name, conn, spec="local", kernel_manager=km)
        _handshake(target, timeout)
    except BaseException:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()
        raise
    return target


def _attach(spec: str, name: str, *, timeout: float) -> Target:
    path = _connection_file(spec)
    try:
        info = json.loads(Path(path).read_text())
        info["shell_port"], info["key"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RemoteMagicsError(
            f"cannot read the connection file {path}: {err}. Give the path of a running "
            "kernel's connection file (jupyter --runtime-dir lists them).") from None
    conn = Connection(info, name=name)
    target = Target(name, conn, spec=str(path))
    try:
        _handshake(target, timeout, install=True)
    except BaseException:
        conn.close()
        raise
    return target


def _connection_file(spec: str) -> str:
    if os.path.exists(spec):
        return spec
    try:
        from jupyter_client import find_connection_file

        return find_connection_file(spec)
    except OSError:
        raise RemoteMagicsError(
            f"no connection file found for '{spec}'. Give the path of a running kernel's "
            "connection file (jupyter --runtime-dir lists them).") from None


def _handshake(target: Target, timeout: float, install: bool = False) -> None:
    """Wait until the kernel answers and our iopub subscription is live; install the engine."""
    conn = target.connection
    alive = None
    if target.kernel_manager is not None:
        alive = target.kernel_manager.is_alive
    if not conn.wait_ready(timeout, alive=alive):
        if alive is not None and not alive():
            raise RemoteKernelDied(f"the kernel of '{target.name}' exited while starting; "
                                   "run it by hand to see its error.")
        raise ConnectionLost(
            f"the kernel of '{target.name}' did not answer within {timeout:g} s. If its "
            "heartbeat answers but nothing else does, the key in the connection file is likely "
            "wrong (a kernel drops messages it cannot verify); otherwise the kernel is not "
            "running or not reachable.")
    if install:
        _install_engine(target)
    info = conn.request(protocol.INFO_REQUEST, {}, timeout=timeout, answer_required=False)
    if info is None:
        raise RemoteMagicsError(f"the kernel of '{target.name}' does not answer remote_magics "
                                "requests; is it an IPython kernel (ipykernel)?")
    target.engine_id = info.content["engine_id"]
    target.details = info.content


_SHIPPED = ("protocol", "serialize", "engine")

_BOOTSTRAP = """
def _remote_magics_bootstrap(sources, version):
    import sys, types
    try:
        import remote_magics.engine as engine
        if engine.protocol.PROTOCOL_VERSION != version:
            raise ImportError("another protocol version")
    except ImportError:
        package = types.ModuleType("remote_magics")
        package.__path__ = []
        sys.modules["remote_magics"] = package
        for name, source in sources:
            module = types.ModuleType("remote_magics." + name)
            module.__package__ = "remote_magics"
            sys.modules[module.__name__] = module
            setattr(package, name, module)
            exec(compile(source, "<remote_magics." + name + " (shipped)>", "exec"), module.__dict__)
        engine = sys.modules["remote_magics.engine"]
    engine.install(get_ipython().kernel)
_remote_magics_bootstrap({sources!r}, {version!r})
del _remote_magics_bootstrap
"""


def _install_engine(target: Target) -> None:
    """Install our handlers into a plain ipykernel, shipping our source when it lacks us."""
    here = Path(__file__).parent
    sources = [(name, (here / f"{name}.py").read_text()) for name in _SHIPPED]
    code = _BOOTSTRAP.format(sources=sources, version=protocol.PROTOCOL_VERSION)
    reply = target.connection.request(
        "execute_request",
        {"code": code, "silent": True, "store_history": False, "user_expressions": {},
         "allow_stdin": False, "stop_on_error": False},
        timeout=60,
    )
    if reply.content.get("status") != "ok":
        raise RemoteMagicsError(
            f"could not install the remote_magics engine into '{target.name}': "
            f"{reply.content.get('ename')}: {reply.content.get('evalue')}. The kernel needs "
            "ipykernel and cloudpickle: pip install cloudpickle in the kernel's environment.")
