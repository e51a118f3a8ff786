"""The remote kernel: a Jupyter kernel whose state lives in an engine, and whose cells run there.

The kernel the frontend talks to is a small local ipykernel; the notebook's namespace is the
engine's own ``user_ns``. Each ordinary cell goes to the engine as an ``execute_request`` (with
``store_history``), so IPython itself runs it there: magics, ``?``, ``;``, display hooks, inline
figures, ``%whos``, ``%timeit``, ``In``/``Out`` and the execution count behave as in a plain
kernel, and the engine's output, reply and payloads come back as this kernel's own. Tab
completion and inspection (Shift-Tab) ask the engine too, and the stop button interrupts it.

Only a ``%%local`` cell moves data (:mod:`remote_magics.cells.local_cell`): the names it reads come
from the engine by the download policy (values, or proxies for big ones), it runs in this
kernel, and what it binds, deletes or changes in place goes back. A ``%%remote`` cell runs
the same way (the ``%%remote`` magic, here, reading and writing the engine's names). Cells made
only of ``%remote_*`` line magics (``%remote_connect``, ``%remote_targets``, ...) run here.
The target and the download options come from the kernelspec's argv as traitlets config
(``--RemoteKernel.target=...``, ``--RemoteMagics.download=...``).

This module also builds and installs the kernelspecs (the remote kernel's and the engine's), always
through ``jupyter_client``'s :class:`KernelSpecManager`.
"""
from __future__ import annotations

if __name__ == "__main__":  # python -m remote_magics.kernel: a kernel Jupyter started
    from remote_magics.engine.startup import leave_the_folder_off_the_path

    leave_the_folder_off_the_path()  # before anything else is imported

import contextlib  # noqa: E402
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from ipykernel.ipkernel import IPythonKernel
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from traitlets import Float, Unicode

from . import __version__, connecting, targets
from .cells import local_cell
from .engine import launching
from .engine.host import engine_command
from .errors import NotConnected, RemoteMagicsError
from .magics import RemoteMagics, python_of
from .wire import protocol

log = logging.getLogger(__name__)

#: Where a kernelspec keeps what remote_magics needs to know about it.
METADATA_KEY = "remote_magics"
#: Prefix of the remote kernels' kernelspec names, so ``jupyter kernelspec list`` shows them apart.
SPEC_PREFIX = "remote-"

_LOCAL_HEADER = re.compile(r"%%local[ \t]*(?:\n|$)")
_LOCAL_MAGIC = re.compile(r"%%local\b")
_REMOTE_HEADER = re.compile(r"%%remote([ \t][^\n]*)?(?:\n|$)")
_REMOTE_LINE_MAGIC = re.compile(r"%remote\w*(?:\s|$)")
_NAME = re.compile(r"[A-Za-z0-9._-]+")

#: Where a cell runs: in the engine, here with the engine's names, or here alone.
ENGINE, LOCAL, HERE = "engine", "local", "here"
#: The engine's iopub messages that a cell shows; the others (its execute_input, status) are
#: this kernel's own to publish.
SHOWN = ("stream", "display_data", "update_display_data", "execute_result", "error",
         "clear_output")
#: Seconds a completion or an inspection waits for the engine before this kernel answers (5 s
#: once gave a frontend no names at all, in a CI run on a loaded machine).
COMPLETION_PATIENCE = 15.0


class Route(NamedTuple):
    """Where a cell runs (:data:`ENGINE`, :data:`LOCAL` or :data:`HERE`) and the code run there."""

    where: str
    code: str


def route(code: str) -> Route:
    """Where the remote kernel runs a cell the user sent.

    ``%%local`` cells lose their first line and run here with the engine's names (:data:`LOCAL`),
    and so do ``%%remote`` cells, unchanged (the magic runs here). Blank cells, cells made only
    of ``%remote_*`` line magics, and ``%%local`` with arguments (a usage error) run here alone
    (:data:`HERE`). Every other cell runs in the engine (:data:`ENGINE`).
    """
    stripped = code.lstrip()
    if _LOCAL_HEADER.match(stripped):
        return Route(LOCAL, _LOCAL_HEADER.sub("", stripped, count=1))
    if _LOCAL_MAGIC.match(stripped):
        return Route(HERE, code)
    if _REMOTE_HEADER.match(stripped):
        return Route(LOCAL, code)
    lines = [line.strip() for line in code.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if all(_REMOTE_LINE_MAGIC.match(line) for line in lines):  # also a blank cell
        return Route(HERE, code)
    return Route(ENGINE, code)


@contextlib.contextmanager
def interrupting(target: targets.Target) -> Iterator[None]:
    """While the engine runs a cell, the stop button (SIGINT here) interrupts the engine.

    The signal goes straight on, whatever this kernel is doing at that instant (relaying the
    cell's output, say), and the engine's reply then says KeyboardInterrupt; a KeyboardInterrupt
    raised here instead could end the wait with the engine still running. A second stop while
    the engine has not answered raises KeyboardInterrupt here, as ``%%remote`` does.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = 0

    def stop(signum: int, frame: Any) -> None:
        nonlocal stops
        stops += 1
        if stops > 1:
            raise KeyboardInterrupt
        target.connection.interrupt()

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@magics_class
class LocalMagics(Magics):
    """``%%local``, which the remote kernel handles itself; reached only with arguments."""

    @cell_magic
    def local(self, line: str, cell: str) -> None:
        """Run this cell in the local kernel, with the engine's names."""
        raise UsageError(f"%%local takes no arguments, not {line.strip()!r}: put %%local alone "
                         "on the first line of a cell to run that cell locally.")


class RemoteKernel(IPythonKernel):
    """A kernel whose state lives in an engine on a target, where its cells run natively."""

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
        # a %%remote cell runs here with the names it reads fetched from the engine: asked
        # for a name it was not given, this kernel would have nothing more to answer with
        self.options().fetch_on_first_use = False
        self.synced_engine: str | None = None  # the engine whose count and names match ours
        self.pending: set[str] = set()  # names bound here before any engine was connected
        self.local_only: set[str] = set()  # names that could not go to the engine

    @property
    def banner(self) -> str:  # type: ignore[override]
        return (f"{super().banner}\nremote_magics remote kernel: cells run in the engine of "
                f"target '{self.target_name}' ({self.target}), which keeps the notebook's "
                "names; %%local runs a cell here.\n")

    # --- where the state lives ------------------------------------------------------------

    def options(self) -> RemoteMagics:
        """The ``RemoteMagics`` configurable (download, bytes, timeout), as ``%config`` sets it."""
        return self.shell.magics_manager.registry["RemoteMagics"]

    def current_target(self) -> targets.Target | None:
        """The target whose engine holds the notebook's names, if one is connected."""
        try:
            return targets.registry.get()
        except NotConnected:
            return None

    def engine(self) -> targets.Target:
        """The current target; the configured one is connected first when there is none."""
        if not targets.registry.targets:
            connecting.connect(self.target, name=self.target_name, timeout=self.connect_timeout)
        return targets.registry.get()

    def sync(self, target: targets.Target) -> None:
        """Before the first cell on an engine: its count follows ours, our pending names go there."""
        if target.engine_id == self.synced_engine:
            return
        ns = self.shell.user_ns
        values = {name: ns[name] for name in sorted(self.pending) if name in ns}
        failed, count = local_cell.push(target, values, namespace=ns,
                                        execution_count=self.shell.execution_count)
        self.keep_here(target, values, failed)
        self.pending.clear()
        if count is not None and count > self.shell.execution_count:
            self.shell.execution_count = count
        self.synced_engine = target.engine_id

    def keep_here(self, target: targets.Target, sent: dict, failed: dict) -> None:
        """After names went to the engine: this kernel keeps only those that could not go."""
        for name, why in failed.items():
            print(f"remote_magics: '{name}' stays in this kernel only: it cannot go to target "
                  f"'{target.name}' ({why})", file=sys.stderr)
        self.local_only = (self.local_only - set(sent)) | set(failed)
        for name in sent:
            if name not in failed:
                self.shell.user_ns.pop(name, None)

    # --- cells ----------------------------------------------------------------------------

    async def do_execute(self, code: str, silent: bool, store_history: bool = True,
                         user_expressions: dict | None = None, allow_stdin: bool = False,
                         **kwargs: Any) -> dict:
        where, body = route(code)
        if where == ENGINE:
            return self.execute_in_engine(code, silent, store_history, user_expressions,
                                          allow_stdin)
        count = self.shell.execution_count
        history = store_history and not silent
        if where == HERE:
            reply = await super().do_execute(code, silent, store_history, user_expressions,
                                              allow_stdin, **kwargs)
            target = self.current_target()
            if target is not None and history:
                self.settle(target, local_cell.Changes(), code, count)
            return reply
        return await self.execute_here(body, code, silent, store_history, user_expressions,
                                       allow_stdin, **kwargs)

    def execute_in_engine(self, code: str, silent: bool, store_history: bool,
                          user_expressions: dict | None, allow_stdin: bool = False) -> dict:
        """Run a cell in the engine's shell; its reply is this kernel's, its output shown here.

        The cell's ``input()`` asks this kernel's frontend, as a plain kernel's does
        (``stdin``: the engine asks us, and we ask with our own ``raw_input``).
        """
        self._forward_input(allow_stdin)
        try:
            target = self.engine()
            self.sync(target)
            with interrupting(target):
                reply = target.execute(
                    {"code": code, "silent": silent, "store_history": store_history,
                     "user_expressions": user_expressions or {}, "allow_stdin": allow_stdin,
                     "stdin": allow_stdin, "stop_on_error": False},
                    timeout=self.options().timeout or None, on_output=self.show)
        except (Exception, KeyboardInterrupt) as err:
            return self.failed(err, silent, store_history)
        finally:
            self._restore_input()
        content = dict(reply.content)
        count = content.get("execution_count")
        if store_history and not silent and isinstance(count, int):
            self.shell.execution_count = count + 1
        return content

    async def execute_here(self, code: str, raw: str, silent: bool, store_history: bool,
                           user_expressions: dict | None, allow_stdin: bool,
                           **kwargs: Any) -> dict:
        """Run a cell in this kernel, with the names it reads fetched from the engine first."""
        ns, hidden = self.shell.user_ns, self.shell.user_ns_hidden
        try:
            python = python_of(self.shell, code)
        except Exception:  # the shell reports it when it runs the cell
            python = code
        read = [name for name in local_cell.names_read(raw, python)
                if not (name in hidden and hidden.get(name) is ns.get(name))]
        target = self.current_target()
        fetched: list[str] = []
        if target is not None:
            try:
                self.sync(target)
                options = self.options()
                fetched, notes = local_cell.fetch(
                    target, read, ns, download=options.download, limit=options.bytes,
                    keep=self.local_only | self.pending)
            except (Exception, KeyboardInterrupt) as err:
                return self.failed(err, silent, store_history)
            self.local_only -= set(fetched)
            for note in notes:
                print(f"remote_magics: {note}", file=sys.stderr)
        watch = local_cell.watch(ns, hidden, [*read, *fetched])  # fetched: also names sharing
        count = self.shell.execution_count
        reply = await super().do_execute(code, silent, store_history, user_expressions,
                                          allow_stdin, **kwargs)
        changes = watch.changes(ns, hidden)
        if target is None:  # they go to the engine when one is connected
            self.pending = (self.pending | set(changes.bound) | set(changes.changed)) \
                - set(changes.deleted)
            return reply
        history = store_history and not silent
        outputs = self.shell.history_manager.output_hist
        result = outputs[count] if history and count in outputs else local_cell.NO_RESULT
        self.settle(target, changes, raw if history else None, count, result,
                    held=watch.kept(fetched, ns))
        for name in fetched:  # the engine holds them: nothing stale stays here
            if name not in self.local_only and name not in changes.bound:
                ns.pop(name, None)
        return reply

    def settle(self, target: targets.Target, changes: local_cell.Changes, cell: str | None,
               count: int, result: Any = local_cell.NO_RESULT, held: dict | None = None) -> None:
        """After a cell ran here: what it bound, changed and deleted goes to the engine, and
        the cell into the engine's history (``In``, ``Out``, its execution count). ``held``:
        the engine's objects the cell fetched and kept bound (they go back as those objects)."""
        sent = {**changes.bound, **changes.changed}
        try:
            self.sync(target)
            failed, _ = local_cell.push(
                target, sent, changed=changes.changed, deletes=changes.deleted, cell=cell,
                execution_count=count if cell is not None else None, result=result,
                namespace=self.shell.user_ns, held=held or {})
        except (Exception, KeyboardInterrupt) as err:
            print(f"remote_magics: what this cell bound stays in this kernel only: it could not "
                  f"go to target '{target.name}' ({type(err).__name__}: {err})", file=sys.stderr)
            self.local_only |= set(sent)
            self.synced_engine = None  # its count is not known to match ours
            return
        self.local_only -= set(changes.deleted)
        self.keep_here(target, sent, failed)

    def show(self, msg: dict) -> None:
        """Publish one iopub message of the engine's cell as this kernel's own."""
        kind = msg["msg_type"]
        if kind not in SHOWN:
            return
        self.session.send(self.iopub_socket, kind, msg["content"],
                          parent=self.get_parent("shell"), metadata=msg.get("metadata") or {},
                          ident=f"kernel.{self.ident}.{kind}".encode())

    def failed(self, err: BaseException, silent: bool, store_history: bool) -> dict:
        """Show an error of ours (no engine, a dead kernel) as the cell's; the error reply."""
        render = getattr(err, "_render_traceback_", None)
        lines = render() if render is not None else \
            self.shell.InteractiveTB.structured_traceback(type(err), err, err.__traceback__)
        error = {"ename": type(err).__name__, "evalue": str(err), "traceback": lines}
        if not silent:
            self.session.send(self.iopub_socket, "error", error, parent=self.get_parent("shell"),
                              ident=f"kernel.{self.ident}.error".encode())
        count = self.shell.execution_count
        if store_history and not silent:
            self.shell.execution_count += 1  # the cell counts, as in a plain kernel
            self.synced_engine = None
        return {"status": "error", "execution_count": count, "user_expressions": {},
                "payload": [], **error}

    # --- completion and inspection: the engine's ---------------------------------------------

    def ask_engine(self, msg_type: str, content: dict) -> dict | None:
        """A request to the engine's own shell while it is idle; None when it cannot answer."""
        target = self.current_target()
        if target is None or target.busy() or target.lost is not None:
            return None
        try:
            reply = target.request(msg_type, content, patience=COMPLETION_PATIENCE)
        except Exception:  # a completion must never fail the frontend: ours, then
            log.debug("remote_magics: the engine did not answer a %s", msg_type, exc_info=True)
            return None
        return reply.content if reply.content.get("status") == "ok" else None

    def do_complete(self, code: str, cursor_pos: int) -> dict:
        """Completions from the engine, whose names they are; this kernel's (magics) otherwise."""
        found = self.ask_engine("complete_request", {"code": code, "cursor_pos": cursor_pos})
        if found and found.get("matches"):
            return found
        return super().do_complete(code, cursor_pos)

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0,
                   omit_sections: Any = ()) -> dict:
        """What Shift-Tab shows, from the engine; this kernel's own otherwise."""
        found = self.ask_engine("inspect_request", {"code": code, "cursor_pos": cursor_pos,
                                                    "detail_level": detail_level})
        if found and found.get("found"):
            return found
        return super().do_inspect(code, cursor_pos, detail_level, omit_sections)

    def do_shutdown(self, restart: bool) -> Any:
        targets.registry.close_all()  # engines we started go with us, also on restart
        return super().do_shutdown(restart)


def main() -> None:
    """``python -m remote_magics.kernel -f CONNECTION_FILE [--RemoteKernel.target=...]``."""
    import zmq
    from ipykernel.kernelapp import IPKernelApp

    class RemoteKernelApp(IPKernelApp):
        def init_heartbeat(self) -> None:  # the engine's: a heartbeat whose port was taken
            self.heartbeat = launching.bound_heartbeat(  # fails the start, which then ends
                zmq.Context(), (self.transport, self.ip, self.hb_port),
                curve_publickey=getattr(self, "curve_publickey", None),
                curve_secretkey=getattr(self, "curve_secretkey", None))
            self.hb_port = self.heartbeat.port

    # IPython's name for it, as in a plain kernel (`%config IPKernelApp`)
    RemoteKernelApp.__name__ = RemoteKernelApp.__qualname__ = IPKernelApp.__name__
    # a port taken between jupyter_client's choice and the bind ends the kernel at once, as
    # the engine's, so JupyterLab (or a script) sees it die and starts it on other ports; it
    # kept running before, and its client waited out the whole start timeout
    launching.launch(RemoteKernelApp.instance(kernel_class=RemoteKernel))


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


#: How many times :func:`start_kernel` starts a kernel that ends as it starts: as a local
#: target's launches.
STARTS = targets.base.RELAUNCHES + 1


def start_kernel(kernel_name: str, prefix: str | None = None, *, cwd: str | None = None,
                 timeout: float = 60.0, starts: int = STARTS) -> tuple[Any, Any]:
    """The installed kernel ``kernel_name`` started, and a blocking client it has answered.

    ``(kernel_manager, client)``, with the client's channels started; shut both down when done
    (``client.stop_channels()``, ``kernel_manager.shutdown_kernel()``). jupyter_client chooses
    the kernel's ports free, then the kernel binds them, and another process may take one in
    between: the kernel then ends as it starts ("Address already in use"). As JupyterLab's
    restarter does, this starts it again on new ports, ``starts`` times in all.
    """
    from jupyter_client.manager import KernelManager

    start = 0
    while True:
        start += 1
        km = KernelManager(kernel_name=kernel_name, kernel_spec_manager=spec_manager(prefix))
        km.start_kernel(**({"cwd": str(cwd)} if cwd is not None else {}))
        kc = km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=timeout)
            return km, kc
        except BaseException as err:
            died = not km.is_alive()
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            km.cleanup_resources()
            if not isinstance(err, RuntimeError):
                raise
            if not died:
                raise RemoteMagicsError(
                    f"the kernel {kernel_name!r} started but did not answer within "
                    f"{timeout:g} s, so it was shut down. Its own messages are on this "
                    "process's stderr; give a longer timeout if it is slow to start.") from None
            if start >= starts:
                raise RemoteMagicsError(
                    f"the kernel {kernel_name!r} ended as it started, {starts} times. Its own "
                    "messages, on this process's stderr, say why; run it from a terminal with "
                    "`jupyter console --kernel` to see them.") from None


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
            source, kernel_name=kernel_name, user=user, prefix=prefix)  # it replaces always


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
