"""Local targets: new engine kernels on this machine, started by jupyter_client's KernelManager.

``%remote_connect`` (or ``local``) starts one; ``local -n N`` starts N side by side for a pool.
``local --python PATH`` starts it with another interpreter (a conda env, a virtualenv) that has
ipykernel and cloudpickle but not remote_magics: the engine's sources are shipped into a private
directory, which it imports them from, as for ssh targets. Connection files go to Jupyter's runtime
directory, and the engine removes its own when the notebook process ends without doing so.

``local --persist`` reaches the persistent engine of that name on this machine, or starts one
detached from this process (:func:`remote_magics.engine.host.ensure_persistent`).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from typing import Any, Callable, Sequence

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import Unicode

from ..client.connection import Connection
from ..client.handshake import shipped_sources
from ..engine import host
from ..engine.host import REQUIRED_MODULES, engine_command
from ..errors import (NoSuchPython, RemoteKernelDied, RemoteKernelMissing, RemoteMagicsError,
                      RemotePortInUse)
from .attach import pid_status
from .base import RELAUNCHES, Kind, Target, member_names, owned_connection, register_kind

ENGINE_SPEC_NAME = "remote-magics-engine"
#: Seconds the check of a ``--python`` interpreter may take.
PYTHON_CHECK_TIMEOUT = 60.0


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


def runtime_connection_file(prefix: str = "remote-magics-engine") -> str:
    """A new connection file's path in Jupyter's runtime directory (made, mode 0700, if missing).

    Where ``jupyter --runtime-dir`` and Jupyter's tools look, instead of the system's temporary
    folder, which is where a KernelManager of its own would write it.
    """
    directory = jupyter_runtime_dir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return os.path.join(directory, f"{prefix}-{uuid.uuid4()}.json")


class ShippedEngineManager(KernelManager):
    """A KernelManager whose engine imports remote_magics from sources shipped into ``workdir``.

    The directory is removed with the kernel's other resources (kept across a restart).
    """

    workdir = Unicode("", help="The private directory that holds the shipped sources.")

    def cleanup_resources(self, restart: bool = False) -> None:
        super().cleanup_resources(restart=restart)
        if not restart and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


_CHECK = ("import importlib.util, json\n"
          "print(json.dumps({'missing': [m for m in %r if importlib.util.find_spec(m) is None]}))")


def resolve_python(python: str) -> str:
    """The absolute path of the interpreter ``python`` names (a path, or a command on PATH).

    Symbolic links are kept: a virtualenv's ``bin/python`` is one. Raises :class:`NoSuchPython`.
    """
    found = shutil.which(python)
    if found is None:
        raise NoSuchPython("this machine", python, hint="`which python3` shows the default one")
    return os.path.abspath(found)


def check_python(python: str) -> str:
    """:func:`resolve_python`, once the interpreter is known to be able to run an engine.

    Raises :class:`NoSuchPython` when there is none, :class:`RemoteKernelMissing` when it lacks
    ipykernel or cloudpickle.
    """
    found = resolve_python(python)
    report: dict = {}
    try:
        done = subprocess.run([found, "-c", _CHECK % (REQUIRED_MODULES,)], capture_output=True,
                              text=True, timeout=PYTHON_CHECK_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        said = str(err)
    else:
        try:
            report = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            said = " ".join(done.stderr.split())[-500:] or f"exit status {done.returncode}"
    if not report:
        raise RemoteMagicsError(
            f"the interpreter {found} (--python {python}) did not run a Python check: {said}. "
            f"Give a Python 3 interpreter's path; `{python} --version` must work in a "
            "terminal.") from None
    if report["missing"]:
        raise RemoteKernelMissing("this machine", found, report["missing"])
    return found


def ship_engine() -> str:
    """A new private directory (mode 0700) holding the shipped sources of the engine."""
    workdir = tempfile.mkdtemp(prefix="remote_magics-engine-")
    for path, source in shipped_sources().items():
        file = os.path.join(workdir, *path.split("/"))
        os.makedirs(os.path.dirname(file), exist_ok=True)
        with open(file, "w") as out:
            out.write(source)
    return workdir


def engine_kernel_manager(python: str | None = None) -> KernelManager:
    """A KernelManager for a new engine kernel on this machine (``python``: checked, absolute).

    With ``python``, the engine runs on that interpreter from shipped sources.
    """
    connection_file = runtime_connection_file()
    if python is None:
        spec = child_kernel_spec("remote_magics.engine", "remote_magics engine",
                                 interrupt_mode="signal")
        return KernelManager(kernel_name=ENGINE_SPEC_NAME, kernel_spec_manager=OneSpec(spec),
                             connection_file=connection_file)
    workdir = ship_engine()
    spec = KernelSpec(argv=engine_command("{connection_file}", python=python, parent=os.getpid(),
                                          shipped=workdir),
                      display_name=f"remote_magics engine ({python})", language="python",
                      resource_dir="", interrupt_mode="signal")
    return ShippedEngineManager(kernel_name=ENGINE_SPEC_NAME, kernel_spec_manager=OneSpec(spec),
                                connection_file=connection_file, workdir=workdir)


def launch(name: str, km: KernelManager, spec: str, *, cwd: str | None) -> Target:
    """Start a kernel with ``km`` and connect to it, without waiting for it to answer.

    A pool launches all its kernels first and then waits for each (:func:`start_all`), so they
    boot side by side.
    """
    try:
        km.start_kernel(cwd=cwd or os.getcwd())
    except BaseException:
        km.cleanup_resources()  # the connection file, and a shipped engine's sources
        raise
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
        for index, name in enumerate(names):
            for attempt in range(RELAUNCHES + 1):
                try:
                    started[index].handshake(timeout, install=install)
                    break
                except RemoteKernelDied:
                    if attempt == RELAUNCHES:
                        raise
                    started.pop(index).close(shutdown=True)
                    started.insert(index, launch_one(name))
    except BaseException:
        for target in started:
            target.close(shutdown=True)
        raise
    return started


def spec_text(python: str | None) -> str:
    """How a local target's spec reads: ``local``, or ``local --python PATH``."""
    return f"local --python {python}" if python else "local"


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
    return target.ready(timeout, launched=False)


def start(spec: str | None, name: str, *, n: int | None = None, timeout: float,
          cwd: str | None = None, python: str | None = None, persist: bool = False,
          idle_timeout: float | None = None, **options: Any) -> tuple[list[Target], None]:
    """A new engine kernel on this machine (``n``: that many, side by side).

    ``python``: the interpreter to run it with (this one by default), which needs ipykernel and
    cloudpickle only. ``persist``: the persistent engine of that name (see :func:`start_persistent`).
    """
    if persist:
        if python is not None:
            raise RemoteMagicsError("--persist with --python is not supported yet: a persistent "
                                    "local engine runs with the notebook's Python")
        return [start_persistent(name, timeout=timeout, cwd=cwd, idle_timeout=idle_timeout)], None
    names = [name] if n is None else member_names(name, n)
    if python is not None:
        python = check_python(python)
    return start_all(names, lambda name: launch(name, engine_kernel_manager(python),
                                                spec_text(python), cwd=cwd),
                     timeout=timeout, install=False), None


KIND = Kind("local", start, many=True, persist=True)
register_kind(KIND)
