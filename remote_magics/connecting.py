"""``remote_magics.connect``: one call for every kind of target, a single kernel or a pool.

:func:`remote_magics.targets.connect` connects one kernel and :func:`remote_magics.pool.connect_pool`
a group of them; this is the one place that picks between them and applies the options that
work on any kind (``sync_path``).
"""
from __future__ import annotations

from typing import Sequence

from . import jobs, sync, targets  # noqa: F401  jobs: Target.job() makes its DetachedJob
from .errors import RemoteMagicsError
from .pool import Pool, connect_pool
from .targets import Target, registry


def connect(spec: str | None = None, *, name: str | None = None, timeout: float = 60.0,
            cwd: str | None = None, n: int | None = None, python: str | None = None,
            ssh_options: Sequence[str] = (), port_range: str | None = None,
            sync_path: str | None = None, persist: bool = False,
            idle_timeout: float | None = None) -> Target | Pool:
    """Connect to a remote kernel and make it the current target (a pool: only if there was none).

    ``spec`` is None or ``"local"`` to start a new engine kernel on this machine (in ``cwd``,
    by default the current directory), ``kernelspec:NAME`` to start one through that
    kernelspec, or the path (or name, as Jupyter finds it) of a running kernel's connection
    file. ``name`` defaults to ``"default"``. With ``n`` (or a ``dask://SCHEDULER`` spec) it
    returns a :class:`~remote_magics.pool.Pool` of kernels instead, named ``"pool"`` by default.
    ``python`` runs a local engine (or pool) with another interpreter that has ipykernel and
    cloudpickle. ``ssh://[user@]host[:port]`` starts an engine on that host with ``python``
    (default ``python3``; ``ssh_options`` go to the ssh command line, ``port_range`` bounds
    the host's ports) and tunnels it; ``tcp://HOST:PORT?key=...`` reaches a served engine
    (``remote-magics serve``). ``sync_path`` mirrors a local directory's Python files to the target.
    ``timeout`` is the seconds the kernel gets to start and answer.
    ``persist`` makes an engine that outlives this process and its ssh connection, or reaches
    the one of that name that runs already; it ends after ``idle_timeout`` seconds (a day by
    default) with no client and no job (see :func:`remote_magics.targets.connect`).
    """
    if not timeout > 0:
        raise ValueError(f"timeout takes a positive number of seconds (the time a kernel gets "
                         f"to start and answer), not {timeout!r}")
    if n is not None or targets.kind_of(spec).group:
        if persist:
            raise RemoteMagicsError("--persist takes one engine, not a pool (-n, dask://)")
        return connect_pool(spec, n=n, name=name, timeout=timeout, cwd=cwd, python=python)
    before = registry.targets.get(name or "default")
    target = targets.connect(spec, name=name, timeout=timeout, cwd=cwd, python=python,
                             ssh_options=ssh_options, port_range=port_range, persist=persist,
                             idle_timeout=idle_timeout)
    if sync_path and target is not before:  # a target connected again is mirrored already
        try:
            sync.mirror(target, sync_path)
        except BaseException:
            registry.remove(target.name)
            raise
    return target


def disconnect(name: str | None = None, shutdown: bool | None = None) -> None:
    """Close a target (the current one by default); kernels we started are shut down.

    A persistent engine runs on unless ``shutdown`` (then its uncollected results go too).
    """
    registry.remove(registry.get(name).name, shutdown)
