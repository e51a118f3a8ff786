"""Dask targets: ``dask://SCHEDULER:PORT`` starts one kernel on each worker of a Dask cluster.

Dask's own deployments reach Slurm, PBS, Kubernetes and clouds; we never run a scheduler of our
own. Those kernels bind to the worker's address, so they use CurveZMQ (keys provisioned by
jupyter_client, ``transport_encryption``). They always come as a pool, one member per worker.
The functions that run on a worker travel by reference, so the workers need remote_magics.
"""
from __future__ import annotations

import logging
import secrets
from typing import Any, Callable
from urllib.parse import urlparse

from ..client.connection import Connection
from ..errors import RemoteMagicsError
from .base import Kind, Target, member_names, register_kind
from .local import OneSpec, child_kernel_spec

log = logging.getLogger(__name__)


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


def start(spec: str, name: str, *, n: int | None = None, timeout: float,
          **options: Any) -> tuple[list[Target], Callable[[], None]]:
    """One kernel on each of the cluster's workers (the first ``n`` when given): ``name[i]``."""
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
        names = member_names(name, len(workers))
        for i, worker in enumerate(workers):
            info = dict(infos[worker])
            token = info.pop("remote_magics_token")
            members.append(WorkerTarget(
                names[i], Connection(info, name=names[i]), spec=spec,
                client=client, worker=worker, token=token))
        for target in members:
            target.handshake(timeout, install=True)
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
    spec = child_kernel_spec("ipykernel_launcher", "remote_magics worker kernel",
                                     interrupt_mode="message",
                                     metadata={"supported_encryption": ["curve"]})
    km = AsyncKernelManager(kernel_name="remote-magics-worker",
                            kernel_spec_manager=OneSpec(spec),
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


register_kind(Kind("dask", start, group=True))
