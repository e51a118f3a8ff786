"""The remote kernel: a Jupyter kernel whose every cell runs on a target, as ``%%remote`` runs it.

It is an ordinary ipykernel kernel (the *local* side: its namespace holds what cells bring back)
that sends each cell to its target through the ``%%remote`` magic, so proxies, streamed output,
plots, errors and interrupts behave exactly as they do there. ``%%local`` runs a cell in this
kernel instead, and cells made only of ``%remote_*`` line magics (``%remote_connect``,
``%remote_targets``, ...) run here too. Its target and download options come from the kernelspec's
argv as traitlets config (``--RemoteKernel.target=...``, ``--RemoteMagics.download=...``).

This module also builds and installs the kernelspecs (the remote kernel's and the engine's), always
through ``jupyter_client``'s :class:`KernelSpecManager`.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from traitlets import Float, Unicode

from . import __version__, targets
from .engine.host import engine_command
from .wire import protocol

#: Where a kernelspec keeps what remote_magics needs to know about it.
METADATA_KEY = "remote_magics"
#: Prefix of the remote kernels' kernelspec names, so ``jupyter kernelspec list`` shows them apart.
SPEC_PREFIX = "remote-"

_LOCAL_HEADER = re.compile(r"%%local[ \t]*(?:\n|$)")
_REMOTE_HEADER = re.compile(r"%%remote([ \t][^\n]*)?(?:\n|$)")
_REMOTE_LINE_MAGIC = re.compile(r"%remote\w*(?:\s|$)")
_NAME = re.compile(r"[A-Za-z0-9._-]+")


def cell_for(code: str, connect_args: str | None = None) -> str:
    """The code this kernel runs locally for a cell the user sent.

    ``%%local`` cells lose their first line and run here; ``%%remote...`` cells, cells of
    ``%remote_*`` line magics only, and blank cells run here unchanged; every other cell becomes a
    ``%%remote`` cell. ``connect_args``, when given, are the ``%remote_connect`` arguments of a
    target to connect first (no target is connected yet).
    """
    stripped = code.lstrip()
    if _LOCAL_HEADER.match(stripped):
        return _LOCAL_HEADER.sub("", stripped, count=1)
    lines = [line.strip() for line in code.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    header = _REMOTE_HEADER.match(stripped)
    if header and connect_args is not None:  # an explicit %%remote cell, also needs a target
        return _as_remote(stripped[header.end():], connect_args, (header.group(1) or "").strip())
    if not lines or stripped.startswith(("%%remote", "%%local")):
        return code
    if all(_REMOTE_LINE_MAGIC.match(line) for line in lines):
        return code
    return _as_remote(code, connect_args)


def _as_remote(code: str, connect_args: str | None, options: str = "") -> str:
    if connect_args is None:
        return "%%remote\n" + code
    return (f"get_ipython().run_line_magic('remote_connect', {connect_args!r})\n"
            f"get_ipython().run_cell_magic('remote', {options!r}, {code!r})\n")


@magics_class
class LocalMagics(Magics):
    """``%%local``, which the remote kernel handles itself; reached only with arguments."""

    @cell_magic
    def local(self, line: str, cell: str) -> None:
        """Run this cell in the local kernel (the remote kernel's own namespace)."""
        raise UsageError(f"%%local takes no arguments, not {line.strip()!r}: put %%local alone "
                         "on the first line of a cell to run that cell locally.")


class RemoteKernel(IPythonKernel):
    """A kernel that runs every cell on a remote target as ``%%remote`` does."""

    implementation = "remote_magics.kernel"
    implementation_version = __version__

    target = Unicode("local", config=True,
                     help="Target of the cells: 'local' (a new engine kernel on this machine) or "
                          "the path of a running kernel's connection file, as %remote_connect "
                          "takes it.")
    target_name = Unicode("default", config=True,
                          help="Name of that target, as %remote_targets shows it.")
    connect_timeout = Float(60.0, config=True,
                            help="Seconds to wait for the target to start and answer.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shell.extension_manager.load_extension("remote_magics")
        self.shell.register_magics(LocalMagics)

    @property
    def banner(self) -> str:  # type: ignore[override]
        return (f"{super().banner}\nremote_magics remote kernel: cells run on target "
                f"'{self.target_name}' ({self.target}); %%local runs a cell here.\n")

    def connect_args(self) -> str | None:
        """``%remote_connect`` arguments for the configured target, while none is connected."""
        if targets.registry.targets:
            return None
        return (f"{shlex.quote(self.target)} --name {shlex.quote(self.target_name)} "
                f"--timeout {self.connect_timeout:g}")

    async def do_execute(self, code: str, silent: bool, store_history: bool = True,
                         user_expressions: dict | None = None, allow_stdin: bool = False,
                         **kwargs: Any) -> dict:
        return await super().do_execute(cell_for(code, self.connect_args()), silent,
                                        store_history, user_expressions, allow_stdin, **kwargs)

    def do_shutdown(self, restart: bool) -> Any:
        targets.registry.close_all()  # engines we started go with us, also on restart
        return super().do_shutdown(restart)


def main() -> None:
    """``python -m remote_magics.kernel -f CONNECTION_FILE [--RemoteKernel.target=...]``."""
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=RemoteKernel)


# --- kernelspecs ---------------------------------------------------------------------------


@dataclass
class InstalledSpec:
    """A remote_magics kernelspec found on this machine."""

    name: str
    display_name: str
    kind: str  # "remote" or "engine"
    target: str | None
    resource_dir: str


def spec_name(name: str) -> str:
    """The kernelspec name of the remote kernel called ``name``: ``remote-NAME``, lower case."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"a kernel name uses letters, digits, '.', '_' and '-' only, not {name!r}")
    name = name.lower()
    return name if name.startswith(SPEC_PREFIX) else SPEC_PREFIX + name


def remote_spec(name: str, target: str = "local", *, download: str = "small",
                bytes: int = protocol.DEFAULT_BYTES, timeout: float | None = None,
                python: str = sys.executable) -> dict:
    """The kernel.json of a remote kernel whose cells run on ``target``."""
    protocol.check_download(download)
    if target not in ("", "local") and "://" not in target and os.path.exists(target):
        target = os.path.abspath(target)  # the kernel starts in the notebook's directory
    argv = [python, "-m", "remote_magics.kernel", "-f", "{connection_file}",
            f"--RemoteKernel.target={target or 'local'}", f"--RemoteKernel.target_name={name}",
            f"--RemoteMagics.download={download}", f"--RemoteMagics.bytes={int(bytes)}"]
    if timeout:
        argv.append(f"--RemoteMagics.timeout={float(timeout):g}")
    return {
        "argv": argv,
        "display_name": f"Python 3 (remote: {name})",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {METADATA_KEY: {"kind": "remote", "target": target or "local",
                                    "download": download, "bytes": int(bytes),
                                    "timeout": timeout or None, "debugger": False}},
    }


def engine_spec(python: str = sys.executable) -> dict:
    """The kernel.json of the engine itself, for a JupyterHub or a kernel provisioner to start."""
    return {
        "argv": engine_command("{connection_file}", python=python, log_level=None),
        "display_name": "remote_magics engine",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {METADATA_KEY: {"kind": "engine", "target": None, "debugger": False}},
    }


def spec_manager(prefix: str | None = None) -> KernelSpecManager:
    """Jupyter's kernelspec manager, also looking under ``prefix`` when one is given."""
    manager = KernelSpecManager()
    if prefix:
        extra = os.path.join(os.path.abspath(prefix), "share", "jupyter", "kernels")
        manager.kernel_dirs = [extra, *[d for d in manager.kernel_dirs if d != extra]]
    return manager


def install(spec: dict, kernel_name: str, *, user: bool = False,
            prefix: str | None = None) -> str:
    """Install a kernelspec with :meth:`KernelSpecManager.install_kernel_spec`; its directory."""
    from ipykernel.kernelspec import RESOURCES  # the Python logos the launcher shows

    with tempfile.TemporaryDirectory() as source:
        for logo in Path(RESOURCES).iterdir():
            if logo.name.startswith("logo"):
                (Path(source) / logo.name).write_bytes(logo.read_bytes())
        (Path(source) / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
        return spec_manager(prefix).install_kernel_spec(
            source, kernel_name=kernel_name, user=user, prefix=prefix, replace=True)


def uninstall(name: str, *, prefix: str | None = None) -> str:
    """Remove the remote_magics kernelspec ``name`` (``NAME`` or ``remote-NAME``); its old directory."""
    manager = spec_manager(prefix)
    found = {spec.name: spec for spec in installed(prefix=prefix)}
    for candidate in (name.lower(), spec_name(name) if _NAME.fullmatch(name) else None):
        if candidate in found:
            return manager.remove_kernel_spec(candidate)
    raise NoSuchKernel(name)


def installed(*, prefix: str | None = None) -> list[InstalledSpec]:
    """The remote_magics kernelspecs Jupyter finds (those with our metadata), by name."""
    found = []
    for name, entry in sorted(spec_manager(prefix).get_all_specs().items()):
        spec = entry.get("spec", {})
        ours = (spec.get("metadata") or {}).get(METADATA_KEY)
        if isinstance(ours, dict):
            found.append(InstalledSpec(name, spec.get("display_name", name), ours.get("kind", "?"),
                                       ours.get("target"), entry.get("resource_dir", "")))
    return found


if __name__ == "__main__":
    main()
