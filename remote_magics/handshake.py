"""How a kernel becomes a target: the handshake, and the engine installed when it lacks one.

The handshake waits until a kernel answers and our iopub subscription is live, then asks it for
its ``remote_info``. A plain ipykernel first gets our engine by one ``execute_request``, which
ships the engine's modules as source when ``remote_magics`` is not importable there (zero
install, as execnet does).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import protocol
from .errors import ConnectionLost, RemoteKernelDied, RemoteMagicsError

if TYPE_CHECKING:
    from .targets import Target


def ready(target: Target, timeout: float, install: bool = False) -> None:
    """Handshake with a launched kernel; on failure shut it down and raise."""
    try:
        handshake(target, timeout, install=install)
    except BaseException:
        target.close(shutdown=True)
        raise


def handshake(target: Target, timeout: float, install: bool = False) -> None:
    """Wait until the kernel answers and our iopub subscription is live; install the engine."""
    conn = target.connection
    alive = None
    if target.kernel_manager is not None:
        alive = target.kernel_manager.is_alive
    if not conn.wait_ready(timeout, alive=alive):
        if alive is not None and not alive():
            raise RemoteKernelDied(f"the kernel of '{target.name}' exited while starting; "
                                   "run it by hand to see its error.")
        if conn.ping(1.0):
            raise ConnectionLost(
                f"the kernel of '{target.name}' is running (its heartbeat answers) but dropped "
                f"every message for {timeout:g} s: the key in the connection file is likely "
                "wrong, so the kernel cannot verify our signatures. Use the kernel's current "
                "connection file.")
        raise ConnectionLost(
            f"the kernel of '{target.name}' did not answer within {timeout:g} s: it is not "
            "running, or not reachable at the address in its connection file.")
    if install:
        install_engine(target)
    info = conn.request(protocol.INFO_REQUEST, {}, timeout=timeout, answer_required=False)
    if info is None:
        raise RemoteMagicsError(f"the kernel of '{target.name}' does not answer remote_magics "
                                "requests; is it an IPython kernel (ipykernel)?")
    target.engine_id = info.content["engine_id"]
    target.details = info.content


SHIPPED = ("protocol", "serialize", "streaming", "store", "engine_live", "engine_channels", "engine")

BOOTSTRAP = """
def _remote_magics_bootstrap(sources, version):
    import sys, types
    try:
        import remote_magics.engine as engine
        if engine.protocol.PROTOCOL_VERSION != version:
            raise ImportError("another protocol version")
    except ImportError:
        package = types.ModuleType("remote_magics")
        package.__path__ = []
        sys.modules["remote_magics"] = package
        for name, source in sources:
            module = types.ModuleType("remote_magics." + name)
            module.__package__ = "remote_magics"
            sys.modules[module.__name__] = module
            setattr(package, name, module)
            exec(compile(source, "<remote_magics." + name + " (shipped)>", "exec"), module.__dict__)
        engine = sys.modules["remote_magics.engine"]
    engine.install(get_ipython().kernel)
_remote_magics_bootstrap({sources!r}, {version!r})
del _remote_magics_bootstrap
"""


def install_engine(target: Target) -> None:
    """Install our handlers into a plain ipykernel, shipping our source when it lacks us."""
    here = Path(__file__).parent
    sources = [(name, (here / f"{name}.py").read_text()) for name in SHIPPED]
    code = BOOTSTRAP.format(sources=sources, version=protocol.PROTOCOL_VERSION)
    reply = target.connection.request(
        "execute_request",
        {"code": code, "silent": True, "store_history": False, "user_expressions": {},
         "allow_stdin": False, "stop_on_error": False},
        timeout=60,
    )
    if reply.content.get("status") != "ok":
        raise RemoteMagicsError(
            f"could not install the remote_magics engine into '{target.name}': "
            f"{reply.content.get('ename')}: {reply.content.get('evalue')}. The kernel needs "
            "ipykernel and cloudpickle: pip install cloudpickle in the kernel's environment.")
