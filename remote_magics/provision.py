"""Where a pool's kernels come from: machinery people already run, never a scheduler of ours.

- ``local``: engine kernels started here by jupyter_client's KernelManager.
- ``kernelspec:NAME``: kernels started by KernelManager with that kernelspec, so whichever
  kernel provisioner the kernelspec names (local, or a gateway's Kubernetes/YARN/Docker ones)
  supplies them; our engine goes in through the zero-install path.
- ``dask://SCHEDULER:PORT``: one kernel per Dask worker, started on the worker (Dask's own
  deployments reach Slurm, PBS, Kubernetes and clouds). Those kernels bind to the worker's
  address, so they use CurveZMQ (keys provisioned by jupyter_client, ``transport_encryption``).

Kernels are launched side by side first and waited for afterwards, so N boot in parallel.
"""
from __future__ import annotations

import logging
import secrets
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager

from . import handshake, targets
from .client import Connection
from .errors import RemoteMagicsError
from .targets import Target

log = logging.getLogger(__name__)


def _start_all(names: Sequence[str], launch: Callable[[str], Target], *, timeout: float,
               install: bool) -> list[Target]:
    """Launch every kernel, then wait for each; on any failure shut all of them down."""
    started: list[Target] = []
    try:
        for name in names:
            started.append(launch(name))
        for target in started:
            handshake.handshake(target, timeout, install=install)
    except BaseException:
        for target in started:
            target.close(shutdown=True)
        raise
    return started


def start_local(names: Sequence[str], *, timeout: float, cwd: str | None) -> list[Target]:
    """One new engine kernel on this machine per name."""
    return _start_all(names, lambda name: targets._launch(
        name, targets.engine_kernel_manager(), "local", cwd=cwd),
        timeout=timeout, install=False)


def start_kernelspec(spec: str, names: Sequence[str], *, timeout: float,
                     cwd: str | None) -> list[Target]:
    """One kernel per name, started through the kernelspec ``spec`` names (``kernelspec:NAME``)."""
    kernel_name = spec.partition(":")[2]
    specs = KernelSpecManager()
    try:
        specs.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        known = ", ".join(sorted(specs.find_kernel_specs())) or "none"
        raise RemoteMagicsError(
            f"no kernelspec named '{kernel_name}'. Installed kernelspecs: {known} "
            "(jupyter kernelspec list shows them).") from None
    return _start_all(names, lambda name: targets._launch(
        name, KernelManager(kernel_name=kernel_name, kernel_spec_manager=specs), spec, cwd=cwd),
        timeout=timeout, install=True)


# --- Dask ------------------------------------------------------------------------------------


class WorkerTarget(Target):
    """A kernel that a Dask worker started for us; closing it shuts the kernel down there."""

    def __init__(self, name: str, connection: Connection, *, spec: str, client: Any,
                 worker: str, token: str) -> None:
        super().__init__(name, connection, spec=spec)
        self._client = client
        self.worker = worker
        self._token = token

    @property
    def owned(self) -> bool:
        return True

    def close(self, shutdown: bool | None = None) -> None:
        was_open = not self.connection.closed
        super().close(shutdown=True if shutdown is None else shutdown)
        if was_open and shutdown is not False and self._client.status == "running":
            self._client.run(_stop_worker_engine, self._token, workers=[self.worker])


def start_dask(spec: str, name: str, *, n: int | None,
               timeout: float) -> tuple[list[Target], Callable[[], None]]:
    """One kernel on each of the cluster's workers (the first ``n`` when given)."""
    try:
        from distributed import Client
    except ImportError:
        raise RemoteMagicsError("dask:// pools need Dask's distributed package: "
                                "pip install distributed") from None
    address = "tcp://" + spec[len("dask://"):]
    client = Client(address, timeout=timeout, set_as_default=False)
    members: list[Target] = []
    try:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        if n is not None:
            if n > len(workers):
                raise RemoteMagicsError(f"the Dask cluster at {address} has {len(workers)} "
                                        f"workers; -n {n} asks for more. Scale the cluster up.")
            workers = workers[:n]
        if not workers:
            raise RemoteMagicsError(f"the Dask cluster at {address} has no workers")
        infos = client.run(_start_worker_engine, workers=workers)
        for i, worker in enumerate(workers):
            info = dict(infos[worker])
            token = info.pop("remote_magics_token")
            members.append(WorkerTarget(
                f"{name}[{i}]", Connection(info, name=f"{name}[{i}]"), spec=spec,
                client=client, worker=worker, token=token))
        for target in members:
            handshake.handshake(target, timeout, install=True)
    except BaseException:
        for target in members:
            target.close(shutdown=True)
        client.close()
        raise
    return members, client.close


async def _start_worker_engine(dask_worker: Any) -> dict:
    """Run on a Dask worker: start a kernel bound to the worker's own address, with Curve."""
    from jupyter_client.manager import AsyncKernelManager

    host = urlparse(dask_worker.address).hostname or "127.0.0.1"
    # plain ipykernel in the worker's Python, Curve capable
    spec = targets.child_kernel_spec("ipykernel_launcher", "remote_magics worker kernel",
                                     interrupt_mode="message",
                                     metadata={"supported_encryption": ["curve"]})
    km = AsyncKernelManager(kernel_name="remote-magics-worker",
                            kernel_spec_manager=targets.OneSpec(spec),
                            ip=host, transport_encryption="required")
    await km.start_kernel()
    token = secrets.token_hex(16)
    _worker_kernels(dask_worker)[token] = km
    info = km.get_connection_info(session=False)
    info["remote_magics_token"] = token
    return info


async def _stop_worker_engine(token: str, dask_worker: Any) -> bool:
    """Run on a Dask worker: shut down a kernel it started for us."""
    km = _worker_kernels(dask_worker).pop(token, None)
    if km is None:
        return False
    await km.shutdown_kernel(now=True)
    km.cleanup_resources()
    return True


def _worker_kernels(worker: Any) -> dict:
    kernels = getattr(worker, "_remote_magics_kernels", None)
    if kernels is None:
        kernels = worker._remote_magics_kernels = {}
    return kernels
