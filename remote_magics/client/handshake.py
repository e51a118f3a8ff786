"""How a kernel becomes usable: the handshake, and the engine installed when it lacks one.

The handshake waits until a kernel answers and our iopub subscription is live, then asks it for
its ``remote_info``. A plain ipykernel first gets our engine by one ``execute_request``, which
ships the engine's source (:func:`shipped_sources`: everything under ``wire/`` and ``engine/``)
when ``remote_magics`` is not importable there (zero install, as execnet does). ssh targets send
the same sources to the host (:mod:`remote_magics.targets.ssh`).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from ..errors import ConnectionLost, RemoteKernelDied, RemoteMagicsError
from ..wire import protocol
from .connection import Connection

#: The folders of the package that run remotely; nothing else is shipped.
SHIPPED_FOLDERS = ("wire", "engine")
#: Seconds more that a silent kernel gets, to tell a short timeout from a wrong key.
TIMEOUT_PROBE = 2.0
#: The package's ``__init__`` where it is shipped: the notebook side's API is not there.
SHIPPED_INIT = '"""remote_magics, as shipped to a remote kernel: its wire format and engine only."""\n'


@functools.lru_cache(maxsize=None)
def shipped_sources() -> dict[str, str]:
    """The source of every shipped module, by its path from the package's parent directory.

    ``{"remote_magics/__init__.py": ..., "remote_magics/wire/protocol.py": ..., ...}``: what a
    kernel or host without remote_magics needs to import ``remote_magics.engine``.
    """
    package = Path(__file__).resolve().parent.parent
    sources = {"remote_magics/__init__.py": SHIPPED_INIT}
    for folder in SHIPPED_FOLDERS:
        for path in sorted((package / folder).glob("*.py")):
            sources[f"remote_magics/{folder}/{path.name}"] = path.read_text()
    return sources


@functools.lru_cache(maxsize=None)
def local_versions() -> tuple[tuple[str, str | None], ...]:
    """This notebook's :func:`~remote_magics.wire.protocol.versions`, as sorted pairs."""
    return tuple(sorted(protocol.versions().items()))


def _minor(version: str | None) -> str | None:
    return ".".join(version.split(".")[:2]) if version else None


def _major(version: str | None) -> str | None:
    return version.split(".")[0] if version else None


def remote_versions(details: dict) -> dict[str, str | None]:
    """A target's versions from its info reply (older engines report fewer)."""
    found = dict(details.get("versions") or {})
    found.setdefault("python", details.get("python_version"))
    return found


def bytecode_barrier(details: dict) -> str | None:
    """None when code can go by value between this notebook and the target; else why not.

    Bytecode differs between Python minor versions: a function or class by value from one
    fails to load in the other, or loads and misbehaves.
    """
    here = dict(local_versions())["python"]
    there = remote_versions(details).get("python")
    if there is None or _minor(there) == _minor(here):
        return None
    return f"the target runs Python {there} and this notebook Python {here}"


def across_versions(err: BaseException, barrier: str) -> BaseException:
    """``err`` (code that may not cross), its message completed with ``barrier`` (the versions)."""
    err.args = (f"{err}, and {barrier}: bytecode does not cross Python versions (what a module "
                "installed on both sides defines goes by reference, and does)",)
    return err


def version_note(details: dict, name: str) -> str | None:
    """One line on what cannot cross between this notebook and target ``name``, or None."""
    here, there = dict(local_versions()), remote_versions(details)
    parts = []
    barrier = bytecode_barrier(details)
    if barrier:
        parts.append(f"it runs Python {there['python']} and this notebook {here['python']}, so "
                     "functions and classes defined in the notebook or a cell cannot travel by "
                     "value either way (define them in a %%remote cell to use them there, or in a "
                     "module installed on both sides); data travels as usual")
    if "cloudpickle" in there and there["cloudpickle"] != here["cloudpickle"]:
        parts.append(f"it has cloudpickle {there['cloudpickle']} and this notebook "
                     f"{here['cloudpickle']}, which may fail to load each other's functions and "
                     f"classes (install cloudpickle=={here['cloudpickle']} there)")
    if "numpy" in there:
        mine, theirs = here["numpy"], there["numpy"]
        if mine and not theirs:
            parts.append("numpy is not installed there, so numpy arrays cannot be sent to it")
        elif theirs and not mine:
            parts.append("numpy is not installed here, so its numpy arrays stay remote as proxies")
        elif mine and theirs and _major(mine) != _major(theirs):
            parts.append(f"it has numpy {theirs} and this notebook {mine}: arrays may fail to "
                         "load across numpy major versions")
    if not parts:
        return None
    return f"remote_magics: target '{name}': " + "; ".join(parts) + "."


def handshake(conn: Connection, name: str, timeout: float, *,
              alive: Callable[[], bool] | None = None, install: bool = False) -> dict:
    """Wait until the kernel answers and our iopub subscription is live; its engine's info.

    ``alive`` tells whether a kernel we started still runs; ``install`` installs the engine
    into a plain ipykernel first.
    """
    if not conn.wait_ready(timeout, alive=alive):
        if alive is not None and not alive():
            raise RemoteKernelDied(f"the kernel of '{name}' exited while starting; "
                                   "run it by hand to see its error.")
        too_short = (
            f"the kernel of '{name}' did not answer within the timeout of {timeout:g} s: the "
            "timeout is too short for it to start and answer (a new kernel takes a second or "
            "more, longer on a busy machine). Give it longer with --timeout (the default is "
            "60 s)")
        beating = conn.ping(1.0)
        if conn.restartable:  # a kernel we started: it has our key, and it is still alive
            raise ConnectionLost(too_short + ("." if beating else
                                              ", or check that its ports can be reached."))
        if beating:  # alive but silent: a short timeout, or a key it cannot verify us with
            if conn.wait_ready(TIMEOUT_PROBE, alive=alive):
                raise ConnectionLost(too_short + ".")
            raise ConnectionLost(
                f"the kernel of '{name}' is running (its heartbeat answers) but dropped "
                f"every message for {timeout + TIMEOUT_PROBE:g} s: the key in the connection "
                "file is likely wrong, so the kernel cannot verify our signatures. Use the "
                "kernel's current connection file.")
        raise ConnectionLost(
            f"the kernel of '{name}' did not answer within {timeout:g} s: it is not "
            "running, or not reachable at the address in its connection file.")
    if install:
        install_engine(conn, name)
    info = conn.request(protocol.INFO_REQUEST, conn.offer(), timeout=timeout,
                        answer_required=False)
    if info is None:
        raise RemoteMagicsError(f"the kernel of '{name}' does not answer remote_magics "
                                "requests; is it an IPython kernel (ipykernel)?")
    conn.agree(info.content)
    return info.content


# Runs in the kernel: import our engine, or serve the shipped sources to Python's import system.
BOOTSTRAP = """
def _remote_magics_bootstrap(sources, version):
    import importlib.abc, importlib.util, sys
    try:
        import remote_magics.engine.core as core
        if core.protocol.PROTOCOL_VERSION != version:
            raise ImportError("another protocol version")
    except ImportError:
        for name in [n for n in sys.modules if n.split(".")[0] == "remote_magics"]:
            del sys.modules[name]

        class Shipped(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, fullname, path=None, target=None):
                base = fullname.replace(".", "/")
                for file, package in ((base + "/__init__.py", True), (base + ".py", False)):
                    if file in sources:
                        return importlib.util.spec_from_loader(
                            fullname, self, origin=file, is_package=package)
                return None

            def create_module(self, spec):
                return None

            def exec_module(self, module):
                file = module.__spec__.origin
                exec(compile(sources[file], "<" + file + " (shipped)>", "exec"), module.__dict__)

        sys.meta_path.insert(0, Shipped())
        import remote_magics.engine.core as core
    core.install(get_ipython().kernel)
_remote_magics_bootstrap({sources!r}, {version!r})
del _remote_magics_bootstrap
"""


def install_engine(conn: Connection, name: str) -> None:
    """Install our handlers into a plain ipykernel, shipping our source when it lacks us."""
    code = BOOTSTRAP.format(sources=shipped_sources(), version=protocol.PROTOCOL_VERSION)
    reply = conn.request(
        "execute_request",
        {"code": code, "silent": True, "store_history": False, "user_expressions": {},
         "allow_stdin": False, "stop_on_error": False},
        timeout=60,
    )
    if reply.content.get("status") != "ok":
        raise RemoteMagicsError(
            f"could not install the remote_magics engine into '{name}': "
            f"{reply.content.get('ename')}: {reply.content.get('evalue')}. The kernel needs "
            "ipykernel and cloudpickle: pip install cloudpickle in the kernel's environment.")
