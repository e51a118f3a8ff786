"""Local targets: new engine kernels on this machine, started by jupyter_client's KernelManager.

``%remote_connect`` (or ``local``) starts one; ``local -n N`` starts N side by side for a pool.
``local --persist`` reaches the persistent engine of that name on this machine, or starts one
detached from this process (:func:`remote_magics.engine.host.ensure_persistent`).
"""
from __future__ import annotations

import os
import signal
from typing import Any, Callable, Sequence

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

from ..client.connection import Connection
from ..engine import host
from ..engine.host import engine_command
from ..errors import RemoteMagicsError, RemotePortInUse
from .attach import pid_status
from .base import Kind, Target, member_names, owned_connection, register_kind

ENGINE_SPEC_NAME = "remote-magics-engine"


class OneSpec(KernelSpecManager):
    """A kernelspec manager that knows one kernelspec, whatever name is asked for."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self.spec


def child_kernel_spec(module: str, display_name: str, **fields: Any) -> KernelSpec:
    """A kernel of this Python (``python -m module``) that ends with this process, logging errors only."""
    return KernelSpec(argv=engine_command("{connection_file}", module=module, parent=os.getpid()),
                      display_name=display_name, language="python", resource_dir="", **fields)


def engine_kernel_manager() -> KernelManager:
    """A KernelManager for a new engine kernel on this machine."""
    spec = child_kernel_spec("remote_magics.engine", "remote_magics engine",
                             interrupt_mode="signal")
    return KernelManager(kernel_name=ENGINE_SPEC_NAME, kernel_spec_manager=OneSpec(spec))


def launch(name: str, km: KernelManager, spec: str, *, cwd: str | None) -> Target:
    """Start a kernel with ``km`` and connect to it, without waiting for it to answer.

    A pool launches all its kernels first and then waits for each (:func:`start_all`), so they
    boot side by side.
    """
    km.start_kernel(cwd=cwd or os.getcwd())
    try:
        conn = owned_connection(name, km)
    except BaseException:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()
        raise
    return Target(name, conn, spec=spec, kernel_manager=km)


def start_all(names: Sequence[str], launch_one: Callable[[str], Target], *, timeout: float,
              install: bool) -> list[Target]:
    """Launch every kernel, then wait for each; on any failure shut all of them down."""
    started: list[Target] = []
    try:
        for name in names:
            started.append(launch_one(name))
        for target in started:
            target.handshake(timeout, install=install)
    except BaseException:
        for target in started:
            target.close(shutdown=True)
        raise
    return started


def start_persistent(name: str, *, timeout: float, cwd: str | None = None,
                     idle_timeout: float | None = None) -> Target:
    """The persistent engine ``name`` on this machine, reached or started, handshaken."""
    try:
        record = host.ensure_persistent(name, idle_timeout=idle_timeout, cwd=cwd or os.getcwd(),
                                        timeout=timeout)
    except host.PortsInUse as err:
        raise RemotePortInUse("this machine", str(err)) from None
    except (host.EngineStartFailed, ValueError, OSError) as err:
        raise RemoteMagicsError(str(err)) from None
    pid = record["pid"]

    def interrupt() -> None:  # the engine alone: what its detached jobs started goes on
        os.kill(pid, signal.SIGINT)

    conn = Connection(record["connection"], name=name, interrupt=interrupt,
                      exit_status=pid_status(pid))
    target = Target(name, conn, spec="local")
    target.persistent, target.reconnected = {"name": name}, record["reconnected"]
    try:
        target.handshake(timeout)
    except BaseException:
        conn.close()
        raise
    return target


def start(spec: str | None, name: str, *, n: int | None = None, timeout: float,
          cwd: str | None = None, persist: bool = False, idle_timeout: float | None = None,
          **options: Any) -> tuple[list[Target], None]:
    """A new engine kernel on this machine (``n``: that many, side by side); see :func:`start_persistent`."""
    if persist:
        return [start_persistent(name, timeout=timeout, cwd=cwd, idle_timeout=idle_timeout)], None
    names = [name] if n is None else member_names(name, n)
    return start_all(names, lambda name: launch(name, engine_kernel_manager(), "local", cwd=cwd),
                     timeout=timeout, install=False), None


register_kind(Kind("local", start, many=True, persist=True))
