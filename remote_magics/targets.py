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
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

from . import handshake, protocol, relay, runner, serialize
from .client import Connection, Reply
from .waiting import Pending
from .errors import NotConnected, ProxyError, RemoteKernelDied, RemoteMagicsError

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
        self.lost: str | None = None  # why the kernel is gone, once we know it died
        self.before_run: list[Callable[["Target"], Any]] = []  # e.g. --sync-path's mirror

    def _usable(self, wait_for_jobs: bool = False) -> None:
        """Raise at once if the kernel is known to be gone; first, if asked, wait for its jobs."""
        if wait_for_jobs:
            from . import jobs  # jobs builds on targets

            jobs.wait_turn(self)
        if self.connection.closed:
            raise NotConnected(f"target '{self.name}' is disconnected; connect again with "
                               "%remote_connect")
        if self.lost is not None:
            raise RemoteKernelDied(self.lost)

    def _watch(self, outcome: Callable[[], Any]) -> Any:
        """Return ``outcome()``, remembering a kernel death it reports."""
        try:
            return outcome()
        except RemoteKernelDied as err:
            self.lost = str(err)
            raise

    @property
    def owned(self) -> bool:
        """Whether we started this kernel (and so shut it down on disconnect)."""
        return self.kernel_manager is not None

    def _request(self, msg_type: str, content: dict, frames: list = (), *,
                 timeout: float | None = None, on_output: Callable | None = None,
                 patience: float | None = None, on_progress: Callable | None = None) -> Reply:
        self._usable(wait_for_jobs=True)
        return self._watch(lambda: self.connection.request(
            msg_type, content, frames, timeout=timeout, on_output=on_output, patience=patience,
            on_progress=on_progress))

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
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> runner.RunResult:
        """Run ``code`` remotely with the names it reads from ``namespace``; bring back what it binds.

        ``download`` is ``all`` (every bound value comes back), ``small`` (values whose serialized
        size is at most ``bytes`` come back, the rest stay remote as proxies) or ``none``.
        ``namespace`` changes only when the run succeeds. ``on_progress`` follows big
        transfers (:meth:`.progress.Watch.on_progress`).
        """
        pending = self.start_run(code, namespace, download=download, bytes=bytes,
                                 timeout=timeout, on_output=on_output, hidden=hidden,
                                 cell_id=cell_id, on_progress=on_progress)
        self._watch(pending.wait)
        return self.finish_run(pending, namespace)

    def start_run(self, code: str, namespace: Mapping[str, Any], *, download: str = "small",
                  bytes: int = 1 << 20, timeout: float | None = None,
                  on_output: Callable[[dict], None] | None = relay.show,
                  hidden: Mapping[str, Any] | None = None,
                  cell_id: int | None = None,
                  on_progress: Callable[[str, int, int], None] | None = None) -> Pending:
        """Send a run without waiting for it (a pool sends to every member, then waits)."""
        if download not in protocol.DOWNLOAD_POLICIES:
            raise ValueError(f"download must be one of {', '.join(protocol.DOWNLOAD_POLICIES)}, "
                             f"not {download!r}")
        self._usable(wait_for_jobs=True)
        for hook in list(self.before_run):
            hook(self)
        self.runs += 1
        request = runner.prepare(code, namespace, self, download=download, limit=int(bytes),
                                 hidden=hidden or {}, cell_id=cell_id or self.runs)
        self.flush_releases()
        return self.connection.start(protocol.RUN_REQUEST, request.content, request.frames,
                                     timeout=timeout, on_output=on_output,
                                     on_progress=on_progress)

    def finish_run(self, pending: Pending, namespace: dict) -> runner.RunResult:
        """The result of a run started by :meth:`start_run` that has finished; updates ``namespace``."""
        reply = self._watch(pending.result)
        result = runner.apply(reply, self, namespace)
        result.bytes_sent = reply.bytes_sent
        result.seconds = time.perf_counter() - pending.started
        self.last_run = dataclasses.replace(result, values={}, result=None)  # stats, not values
        return result

    def fetch(self, object_id: str, timeout: float | None = None) -> Any:
        """The value of a remote object, downloaded."""
        from .progress import watching

        with watching() as watch:  # a download over 50 MB shows a progress bar
            reply = self._request(protocol.FETCH_REQUEST, {"id": object_id}, timeout=timeout,
                                  on_output=watch.on_output, on_progress=watch.on_progress)
        if reply.content.get("status") != "ok":
            raise ProxyError(
                f"cannot fetch remote object {object_id} from target '{self.name}': "
                f"{reply.content.get('ename')}: {reply.content.get('evalue')}")
        return serialize.loads(reply.frames)

    def info(self) -> dict:
        """The engine's description: pid, host, objects held for us, versions."""
        self.flush_releases()
        reply = self._request(protocol.INFO_REQUEST, {}, patience=30)  # never interrupts
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

    def restart(self, timeout: float = 60.0) -> None:
        """Restart a kernel we started: a fresh engine; every proxy to the old one is lost."""
        km = self.kernel_manager
        if km is None:
            raise RemoteMagicsError(
                f"target '{self.name}' is a kernel we did not start ({self.spec}), so we cannot "
                "restart it: restart it where it runs, then %remote_disconnect and "
                "%remote_connect again.")
        self.connection.close()
        km.restart_kernel(now=True)
        with self._releases_lock:
            self._releases.clear()
        self.connection = _owned_connection(self.name, km)
        self.lost = None
        handshake.handshake(self, timeout)

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
        self.groups: dict[str, Any] = {}  # name → pool.Pool, whose members are in targets
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
            cwd: str | None = None, n: int | None = None, python: str | None = None,
            ssh_options: Sequence[str] = (), port_range: str | None = None,
            sync_path: str | None = None) -> Any:
    """Connect to a remote kernel and make it the current target.

    ``spec`` is None or ``"local"`` to start a new engine kernel on this machine (in ``cwd``,
    by default the current directory), ``kernelspec:NAME`` to start one through that
    kernelspec, or the path (or name, as Jupyter finds it) of a running kernel's connection
    file. ``name`` defaults to ``"default"``. With ``n`` (or a ``dask://SCHEDULER`` spec) it
    returns a :class:`~remote_magics.pool.Pool` of kernels instead, named ``"pool"`` by default.
    ``ssh://[user@]host[:port]`` starts an engine on that host with ``python`` (default
    ``python3``; ``ssh_options`` go to the ssh command line, ``port_range`` bounds the host's
    ports) and tunnels it; ``tcp://HOST:PORT?key=...`` reaches a served engine
    (:mod:`.serve`). ``sync_path`` mirrors a local directory's Python files to the target.
    """
    if n is not None or (spec or "").startswith("dask://"):
        from .pool import connect_pool

        return connect_pool(spec, n=n, name=name, timeout=timeout, cwd=cwd)
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
    elif spec.startswith("kernelspec:"):
        from .provision import start_kernelspec

        target = start_kernelspec(spec, [name], timeout=timeout, cwd=cwd)[0]
    elif spec.startswith("ssh://"):
        from . import ssh

        target = ssh.connect(spec, name, timeout=timeout, cwd=cwd, python=python,
                             ssh_options=ssh_options, port_range=port_range)
    elif spec.startswith("tcp://"):
        from . import serve

        target = serve.connect(spec, name, timeout=timeout)
    else:
        target = _attach(spec, name, timeout=timeout)
    if sync_path:
        from . import sync

        try:
            sync.mirror(target, sync_path)
        except BaseException:
            target.close()
            raise
    return registry.add(target)


class OneSpec(KernelSpecManager):
    """A kernelspec manager that knows one kernelspec, whatever name is asked for."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self.spec


def child_kernel_spec(module: str, display_name: str, **fields: Any) -> KernelSpec:
    """A kernel of this Python (``python -m module``) that ends with this process, logging errors only."""
    return KernelSpec(
        argv=[sys.executable, "-m", module, "-f", "{connection_file}",
              f"--IPKernelApp.parent_handle={os.getpid()}", "--IPKernelApp.log_level=ERROR"],
        display_name=display_name, language="python", resource_dir="", **fields,
    )


def engine_kernel_manager() -> KernelManager:
    """A KernelManager for a new engine kernel on this machine."""
    spec = child_kernel_spec("remote_magics.engine", "remote_magics engine",
                             interrupt_mode="signal")
    return KernelManager(kernel_name=ENGINE_SPEC_NAME, kernel_spec_manager=OneSpec(spec))


def _start_local(name: str, *, timeout: float, cwd: str | None) -> Target:
    target = _launch(name, engine_kernel_manager(), "local", cwd=cwd)
    handshake.ready(target, timeout)
    return target


def _launch(name: str, km: KernelManager, spec: str, *, cwd: str | None) -> Target:
    """Start a kernel with ``km`` and connect to it, without waiting for it to answer.

    A pool launches all its kernels first and then waits for each (:func:`.handshake.ready`), so they
    boot side by side.
    """
    km.start_kernel(cwd=cwd or os.getcwd())
    try:
        conn = _owned_connection(name, km)
    except BaseException:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()
        raise
    return Target(name, conn, spec=spec, kernel_manager=km)


def _owned_connection(name: str, km: KernelManager) -> Connection:
    """A connection to a kernel we started: interrupts by signal, exit status from the process."""
    return Connection(km.get_connection_info(session=False), name=name,
                      interrupt=km.interrupt_kernel,
                      exit_status=lambda: _exit_status(km))


def _exit_status(km: KernelManager) -> int | str | None:
    """The exit status of a kernel we started, once it has ended; None while it runs."""
    process = getattr(km.provisioner, "process", None)
    if process is not None:
        return process.poll()
    return None if km.is_alive() else "unknown"


def _pid_status(pid: int) -> Callable[[], str | None]:
    """For a kernel process on this machine that we did not start: 'unknown' once it is gone."""
    def status() -> str | None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "unknown"
        except PermissionError:  # exists, owned by someone else
            return None
        try:  # a dead child of some other process lingers as a zombie until reaped
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    return "unknown"
        except OSError:
            pass
        return None
    return status


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
        handshake.handshake(target, timeout, install=True)
    except BaseException:
        conn.close()
        raise
    local_ip = str(info.get("ip", "")).startswith("127.") or info.get("transport") == "ipc"
    if local_ip and target.details.get("hostname") == socket.gethostname():
        conn._exit_status = _pid_status(int(target.details["pid"]))
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
