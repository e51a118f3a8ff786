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
    info = conn.request(protocol.INFO_REQUEST, {}, timeout=timeout, answer_required=False)
    if info is None:
        raise RemoteMagicsError(f"the kernel of '{name}' does not answer remote_magics "
                                "requests; is it an IPython kernel (ipykernel)?")
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
