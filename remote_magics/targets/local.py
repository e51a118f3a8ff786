"""Local targets: new engine kernels on this machine, started by jupyter_client's KernelManager.

``%remote_connect`` (or ``local``) starts one; ``local -n N`` starts N side by side for a pool.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

from ..engine.host import engine_command
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


def start(spec: str | None, name: str, *, n: int | None = None, timeout: float,
          cwd: str | None = None, **options: Any) -> tuple[list[Target], None]:
    """A new engine kernel on this machine (``n``: that many, side by side)."""
    names = [name] if n is None else member_names(name, n)
    return start_all(names, lambda name: launch(name, engine_kernel_manager(), "local", cwd=cwd),
                     timeout=timeout, install=False), None


register_kind(Kind("local", start, many=True))
