"""Targets: the remote kernels a notebook runs cells on, and every way of obtaining one.

:mod:`.base` holds :class:`~.base.Target`, the registry of connected targets and the registry of
kinds. Each kind registers itself by the scheme of its spec when imported here:

=============================  ===================================================  ============
spec                           what happens                                         module
=============================  ===================================================  ============
nothing, ``local``             a new engine kernel on this machine                  :mod:`.local`
a connection file              attach to a running kernel, install the engine       :mod:`.attach`
``kernelspec:NAME``            kernels started through that kernelspec             :mod:`.kernelspec`
``ssh://[user@]host[:port]``   an engine started on that host, ports tunnelled      :mod:`.ssh`
``tcp://HOST:PORT?key=...``    an engine started there by ``remote-magics serve``    :mod:`.served`
``dask://SCHEDULER:PORT``      one kernel per worker of a Dask cluster (a pool)     :mod:`.dask`
=============================  ===================================================  ============

:func:`connect` connects one target and registers it; pools (``-n``, Dask) are made by
:mod:`remote_magics.pool` from :func:`start`.
"""
from __future__ import annotations

from typing import Any, Callable

from ..engine import persist as engine_persist
from ..errors import RemoteMagicsError
from . import attach, dask, kernelspec, local, served, ssh  # noqa: F401  each registers its kind
from .base import Kind, Registry, Target, kind_of, registry


#: The first protocol version with persistent engines and detached jobs.
PERSIST_PROTOCOL = 9


def start(spec: str | None, name: str, *, n: int | None = None, timeout: float = 60.0,
          cwd: str | None = None, **options: Any) -> tuple[list[Target], Callable[[], None] | None]:
    """Start the targets ``spec`` names, not yet registered: see :class:`~.base.Kind`."""
    kind = kind_of(spec)
    if n is not None and not (kind.many or kind.group):
        raise RemoteMagicsError(
            f"-n takes 'local', 'kernelspec:NAME' or 'dask://SCHEDULER:PORT', not {spec!r}")
    return kind.start(spec, name, n=n, timeout=timeout, cwd=cwd, **options)


def connect(spec: str | None = None, *, name: str | None = None, timeout: float = 60.0,
            cwd: str | None = None, persist: bool = False, idle_timeout: float | None = None,
            **options: Any) -> Target:
    """Connect one target (see the table above) and make it the current one.

    ``name`` defaults to ``"default"``. Connecting a live target of the same name and spec
    again returns it. ``options`` go to the kind: ``python`` (for ssh and local targets),
    ``ssh_options`` and ``port_range`` for ssh. With ``persist`` (local, ssh and served engines)
    the engine outlives this process and its ssh connection: the persistent engine called
    ``name`` is reached when one runs, else started; it ends ``idle_timeout`` seconds (default a
    day) after its last client and job, or with ``close(shutdown=True)``.
    """
    name = name or "default"
    if name in registry.targets:
        existing = registry.targets[name]
        wanted = spec or "local"
        if kind_of(spec) is local.KIND and options.get("python"):
            wanted = local.spec_text(local.resolve_python(options["python"]))
        if existing.spec == wanted and existing.alive() \
                and (not persist or existing.persistent is not None):
            registry.current = name
            if persist and idle_timeout:
                existing.persist(name, idle_timeout)
            return existing
        raise RemoteMagicsError(
            f"a target named '{name}' is already connected ({existing.spec}). Disconnect it "
            f"first with %remote_disconnect {name}, or pick another name with --name.")
    kind = kind_of(spec)
    if kind.group:
        raise RemoteMagicsError(f"{spec} starts a pool of kernels: connect it with "
                                "remote_magics.connect (or %remote_connect), which makes pools")
    if persist:
        if not kind.persist:
            raise RemoteMagicsError(
                f"--persist is for engines we start ('local', ssh://) and served ones (tcp://), "
                f"not {spec!r}" + (": a kernel you attach to already outlives this notebook"
                                   if kind.scheme == "file" else ""))
        try:
            engine_persist.check_name(name)
        except ValueError as err:
            raise RemoteMagicsError(str(err)) from None
        options.update(persist=True, idle_timeout=idle_timeout)
    (target,), _ = kind.start(spec, name, timeout=timeout, cwd=cwd, **options)
    if persist:
        try:
            if target.details.get("protocol_version", 0) < PERSIST_PROTOCOL:
                raise RemoteMagicsError(
                    f"the engine of '{name}' runs an older remote_magics (protocol "
                    f"{target.details.get('protocol_version')}), which has no persistent "
                    "engines; upgrade remote_magics where it runs")
            target.persist(name, idle_timeout)
        except BaseException:
            target.close(shutdown=False)  # an engine that it started idles out by itself
            raise
    return registry.add(target)


__all__ = ["Kind", "Registry", "Target", "connect", "kind_of", "registry", "start"]
