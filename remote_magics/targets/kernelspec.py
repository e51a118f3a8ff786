"""Kernelspec targets: ``kernelspec:NAME`` starts kernels with that kernelspec.

jupyter_client's KernelManager starts them, so whichever kernel provisioner the kernelspec
names (local, or a gateway's Kubernetes/YARN/Docker ones) supplies them; our engine goes in
through the zero-install path. ``-n N`` starts N side by side for a pool.
"""
from __future__ import annotations

from typing import Any

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager

from ..errors import RemoteMagicsError
from .base import Kind, Target, member_names, register_kind
from .local import launch, runtime_connection_file, start_all


def start(spec: str, name: str, *, n: int | None = None, timeout: float, cwd: str | None = None,
          **options: Any) -> tuple[list[Target], None]:
    """A kernel (``n``: that many) started through the kernelspec ``spec`` names (``kernelspec:NAME``)."""
    names = [name] if n is None else member_names(name, n)
    kernel_name = spec.partition(":")[2]
    specs = KernelSpecManager()
    try:
        specs.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        known = ", ".join(sorted(specs.find_kernel_specs())) or "none"
        raise RemoteMagicsError(
            f"no kernelspec named '{kernel_name}'. Installed kernelspecs: {known} "
            "(jupyter kernelspec list shows them).") from None
    return start_all(names, lambda name: launch(
        name, KernelManager(kernel_name=kernel_name, kernel_spec_manager=specs,
                            connection_file=runtime_connection_file("remote-magics-kernel")),
        spec, cwd=cwd), timeout=timeout, install=True), None


register_kind(Kind("kernelspec", start, many=True))
