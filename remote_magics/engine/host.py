"""An engine kernel as a child process on this host: its ports, its connection file, its life.

Used by ``remote-magics serve`` (:mod:`remote_magics.serve`) and, on an ssh host, by
:func:`stdio`, the remote half of an ssh target: the ssh loader unpacks the shipped package into
a private directory and calls it. :func:`ensure_persistent` finds or starts a persistent engine
(:mod:`.persist`), on this machine for a local target and from :func:`stdio` on an ssh host.
Standard library only at import time, because it is shipped.
"""
from __future__ import annotations

import collections
import ipaddress
import json
import os
import select
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Callable

from ..wire import protocol
from . import persist

#: Modules the remote Python needs for an engine; ssh targets check them first.
REQUIRED_MODULES = ("ipykernel", "cloudpickle")
#: What stderr says when a port could not be bound (libzmq's EADDRINUSE message).
ADDRESS_IN_USE = "Address already in use"


class PortsInUse(Exception):
    """No five consecutive free ports in the requested range."""


class EngineStartFailed(Exception):
    """A persistent engine exited, or did not come up, while starting; the message has its log."""


def is_loopback(ip: str) -> bool:
    """Whether binding to ``ip`` keeps the engine off the network."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def parse_port_range(text: str | None) -> tuple[int, int]:
    """``"50000-50100"`` or ``"50000"`` → (low, high); None or ``"0"`` → (0, 0), any free ports."""
    if not text or text.strip() == "0":
        return 0, 0
    low, _, high = text.strip().partition("-")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"a port range is LOW-HIGH, such as 50000-50100, not {text!r}") from None
    if not 0 < lo <= hi < 65536 or hi - lo < len(protocol.PORT_NAMES) - 1:
        raise ValueError(f"the port range {text!r} must hold at least "
                         f"{len(protocol.PORT_NAMES)} ports between 1 and 65535")
    return lo, hi


def _free(ip: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def free_port(ip: str) -> int:
    """A port that is free on ``ip`` now (the system's choice)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def pick_data_port(ip: str, taken: dict, low: int = 0, high: int = 0) -> int:
    """A free port on ``ip`` for the engine's data port, none of ``taken``'s: within
    ``low``-``high`` when given (0 when none is left there: big frames then go as chunks)."""
    if not low:
        return free_port(ip)
    used = set(taken.values())
    return next((port for port in range(low, high + 1) if port not in used and _free(ip, port)),
                0)


def pick_ports(ip: str, low: int = 0, high: int = 0) -> dict[str, int]:
    """Five consecutive free ports on ``ip``: within ``low``-``high``, or anywhere when 0."""
    count = len(protocol.PORT_NAMES)
    if low:
        starts = range(low, high - count + 2)
    else:
        starts = [free_port(ip) for _ in range(64)]
    for start in starts:
        if start + count - 1 < 65536 and all(_free(ip, start + i) for i in range(count)):
            return {name: start + i for i, name in enumerate(protocol.PORT_NAMES)}
    taken = sorted(p for p in range(low, high + 1) if not _free(ip, p))[:10] if low else []
    raise PortsInUse(f"no {count} consecutive free ports on {ip} in {low}-{high}"
                     + (f" (in use: {', '.join(map(str, taken))})" if taken else ""))


def write_connection_file(path: str, info: dict) -> None:
    """Write ``info`` as a connection file readable by its owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info, out, indent=1)


#: ``python -c`` code that runs the engine from shipped sources in the directory ``argv[1]``,
#: first on ``sys.path``, and the working directory (``''``) taken off it as ``-m`` does.
SHIPPED_LOADER = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                  "from remote_magics.engine.startup import leave_the_folder_off_the_path; "
                  "leave_the_folder_off_the_path(); "
                  "from remote_magics.engine.core import main; main()")


def engine_command(connection_file: str, *, module: str = "remote_magics.engine",
                   python: str | None = None, parent: int | None = None,
                   log_level: str | None = "ERROR", shipped: str | None = None) -> list[str]:
    """The command line of an engine kernel: ``python -m remote_magics.engine -f FILE``.

    ``module``: another kernel module (``ipykernel_launcher``); ``parent``: the pid whose end
    ends the kernel too; ``log_level``: ipykernel's logging (None: its default); ``shipped``:
    the directory of shipped sources to run the engine from (for a Python without remote_magics).
    """
    start = ["-c", SHIPPED_LOADER, shipped] if shipped else ["-m", module]
    argv = [python or sys.executable, *start, "-f", connection_file]
    if parent is not None:
        argv.append(f"--IPKernelApp.parent_handle={parent}")
    if log_level is not None:
        argv.append(f"--IPKernelApp.log_level={log_level}")
    return argv


class ParentWatch(threading.Thread):
    """Ends the engine when the process that started it ends, removing its connection file first.

    It takes the place of ipykernel's parent poller (``--IPKernelApp.parent_handle``), which
    ends the kernel with ``os._exit`` and so leaves the connection file, key and all, behind
    when whatever wrote it was killed: the launcher that would have removed it is gone.
    """

    def __init__(self, parent: int, connection_file: Callable[[], str]) -> None:
        super().__init__(daemon=True, name="remote_magics-parent-watch")
        self.parent = parent
        self.connection_file = connection_file
        self.was_parent = os.getppid() == parent

    def run(self) -> None:
        self.wait_for_parent()
        try:
            os.unlink(self.connection_file())
        except OSError:
            pass
        os._exit(1)

    def _gone(self) -> bool:
        if self.was_parent:
            return os.getppid() != self.parent  # reparented: it has ended
        try:
            os.kill(self.parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def wait_for_parent(self) -> None:
        """Return once the parent process has ended."""
        try:
            handle = os.pidfd_open(self.parent)
        except ProcessLookupError:
            return
        except (AttributeError, OSError):  # no pidfd (not Linux): look every second, as ipykernel
            while not self._gone():
                time.sleep(1.0)
            return
        try:
            if not self._gone():  # the pid was not reused before we opened it
                select.select([handle], [], [])  # readable once that process has ended
        finally:
            os.close(handle)


class Supervisor:
    """The engine kernel as a child process: started, watched, stopped with its children."""

    def __init__(self, connection_file: str, *, pythonpath: str | None = None,
                 cwd: str | None = None) -> None:
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.process = subprocess.Popen(
            engine_command(connection_file, parent=os.getpid()),  # it ends if we are killed
            stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(), stderr=subprocess.PIPE,
            env=env, cwd=cwd, start_new_session=True,  # its own group: we stop its children too
        )
        self._copier = threading.Thread(target=self._copy_stderr, daemon=True)
        self._copier.start()

    def _copy_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.stderr_tail.append(line)
            sys.stderr.write(line)
            sys.stderr.flush()

    @property
    def port_in_use(self) -> bool:
        """Whether the kernel failed because one of its ports was taken."""
        return any(ADDRESS_IN_USE in line for line in self.stderr_tail)

    def wait_listening(self, ip: str, port: int, timeout: float) -> bool:
        """Wait until the kernel has bound ``port`` (False if it exits or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _free(ip, port):
                return True
            try:
                self.process.wait(0.05)  # the pause between looks is a wait on the kernel
                return False
            except subprocess.TimeoutExpired:
                continue
        return False

    def wait(self, timeout: float | None = None) -> int:
        status = self.process.wait(timeout)
        self._copier.join(timeout=5)
        return status

    def interrupt(self) -> None:
        """SIGINT to the kernel's process group, as ipykernel's own interrupt does."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)

    def stop(self, grace: float = 5.0) -> None:
        """Stop the kernel and everything it started: SIGTERM, then SIGKILL after ``grace``."""
        if self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue


# --- persistent engines --------------------------------------------------------------------------

_launched: list[subprocess.Popen] = []  # engines started here, reaped when they end


def ensure_persistent(name: str, *, idle_timeout: float | None = None, cwd: str | None = None,
                      python: str | None = None, port_range: str | None = None,
                      source: str | None = None, timeout: float = 60.0) -> dict:
    """The record of the live persistent engine ``name`` on this host; one is started if none runs.

    A new engine runs ``python`` (this one by default) in ``cwd`` (the home directory by
    default), detached from this process: its own session, no parent to watch, its output in
    its log. It ends after ``idle_timeout`` seconds idle (a day by default). ``source`` is a
    directory holding the ``remote_magics`` package to copy for it (an ssh host's shipped copy).
    The record gains ``reconnected``: whether the engine was running already.
    Raises ValueError for a bad name or port range, :class:`PortsInUse`, :class:`EngineStartFailed`.
    """
    state = persist.StateDir.for_name(name)
    with state.launching():
        record = state.live_record()
        if record is not None:
            return dict(record, reconnected=True)
        pythonpath = None
        if source is not None:
            shutil.copytree(os.path.join(source, "remote_magics"),
                            os.path.join(state.source, "remote_magics"))
            pythonpath = state.source
        low, high = parse_port_range(port_range)
        for _ in range(3):  # a port taken between our look and the kernel's bind: new ports
            ports = pick_ports("127.0.0.1", low, high)
            write_connection_file(state.connection_file, protocol.connection_info(
                "127.0.0.1", secrets.token_hex(32), ports))
            process = _launch(state, idle_timeout or protocol.IDLE_TIMEOUT, cwd, python,
                              pythonpath)
            record = _wait_record(state, process, timeout)
            if record is not None:
                return dict(record, reconnected=False)
            if not _log_tail(state).count(ADDRESS_IN_USE):
                break
        raise EngineStartFailed(f"the persistent engine '{name}' did not start (exit status "
                                f"{process.poll()}). Its log ({state.log_file}) ends:\n"
                                + _log_tail(state))


def _launch(state: persist.StateDir, idle_timeout: float, cwd: str | None, python: str | None,
            pythonpath: str | None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("JPY_PARENT_PID", None)  # ipykernel would watch this process and end with it
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    command = [*engine_command(state.connection_file, python=python),
               "--persist-dir", state.path, "--idle-timeout", repr(float(idle_timeout))]
    fd = os.open(state.log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            cwd=cwd or os.path.expanduser("~"),
            start_new_session=True)  # no signal for this process's group or terminal reaches it
    _launched[:] = [p for p in _launched if p.poll() is None] + [process]
    return process


def _wait_record(state: persist.StateDir, process: subprocess.Popen, timeout: float) -> dict | None:
    """Wait until the engine has written its record (it is up), or has exited: its record or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = state.read_record()
        if record is not None and record.get("pid") == process.pid:
            return record
        try:
            process.wait(0.05)  # the pause between looks is a wait on the engine
            return None
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    process.wait(10)
    return None


def _log_tail(state: persist.StateDir) -> str:
    try:
        with open(state.log_file, errors="replace") as log:
            return log.read()[-4000:]
    except OSError:
        return ""


# --- ssh targets: the remote half ---------------------------------------------------------------

def _emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def stdio(settings: dict, workdir: str) -> int:
    """Run an engine for an ssh target; ``workdir`` holds the shipped package, and is removed.

    ``settings``: ``key`` (the HMAC key), ``port_range`` ("LO-HI" or null), ``cwd`` (or null
    for the home directory), ``runtime_dir`` (Jupyter's, for the connection file; else it goes
    into ``workdir``; either way it is removed with the kernel), ``persist`` (null, or
    ``{"name", "idle_timeout"}``: see below), ``timeout``. Answers on stdout with one JSON line:
    ``{"ready": {ports}, "pid", "hostname", "python"}``, or ``{"error": "missing", "missing":
    [modules], "python"}``, or ``{"error": "ports", "detail"}``; then ``{"exit": status,
    "port_in_use": bool, "stderr"}`` once the kernel ends. A line ``interrupt`` on stdin
    interrupts the kernel; closing stdin stops it.

    With ``persist``, the engine is the persistent one of that name on this host, found or
    started (:func:`ensure_persistent`): ``ready`` also has ``key`` (the engine's, which the
    client uses instead of its own) and ``persist`` (``reconnected``, ``started``), an error
    may be ``{"error": "start", "detail"}``, and closing stdin leaves the engine running.
    """
    import importlib.util
    import shutil

    connection_file = os.path.join(workdir, "engine.json")
    try:
        missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            _emit({"error": "missing", "missing": missing, "python": sys.executable,
                   "version": sys.version.split()[0]})
            return 3
        if settings.get("persist"):
            return _stdio_persistent(settings, workdir)
        try:
            ports = pick_ports("127.0.0.1", *parse_port_range(settings.get("port_range")))
        except (PortsInUse, ValueError) as err:
            _emit({"error": "ports", "detail": str(err), "hostname": socket.gethostname()})
            return 4
        data_port = pick_data_port("127.0.0.1", ports, *parse_port_range(settings.get("port_range")))
        if data_port:  # the engine listens there; the client's tunnel reaches it
            ports = {**ports, protocol.DATA_PORT: data_port}
        info = protocol.connection_info("127.0.0.1", settings["key"], ports)
        if settings.get("runtime_dir"):
            try:
                os.makedirs(settings["runtime_dir"], mode=0o700, exist_ok=True)
                connection_file = os.path.join(settings["runtime_dir"],
                                               f"remote-magics-ssh-{os.getpid()}.json")
            except OSError:  # not writable: the private workdir will do
                pass
        write_connection_file(connection_file, info)
        kernel = Supervisor(connection_file, pythonpath=workdir,
                            cwd=settings.get("cwd") or os.path.expanduser("~"))
        _emit({"ready": ports, "pid": kernel.process.pid, "hostname": socket.gethostname(),
               "python": sys.executable})

        def obey() -> None:
            for line in sys.stdin:  # ends when the ssh connection closes our stdin
                if line.strip() == "interrupt":
                    kernel.interrupt()
            kernel.stop()

        threading.Thread(target=obey, daemon=True).start()
        status = kernel.wait()
        _emit({"exit": status, "port_in_use": kernel.port_in_use,
               "stderr": "".join(kernel.stderr_tail)[-4000:]})
        return 0
    finally:
        try:
            os.unlink(connection_file)
        except OSError:
            pass
        shutil.rmtree(workdir, ignore_errors=True)


def _stdio_persistent(settings: dict, workdir: str) -> int:
    """:func:`stdio` for a persistent engine: find or start it, report it, leave it running."""
    wanted = settings["persist"]
    try:
        record = ensure_persistent(wanted["name"], idle_timeout=wanted.get("idle_timeout"),
                                   cwd=settings.get("cwd"), python=sys.executable,
                                   port_range=settings.get("port_range"), source=workdir,
                                   timeout=float(settings.get("timeout") or 60))
    except PortsInUse as err:
        _emit({"error": "ports", "detail": str(err), "hostname": socket.gethostname()})
        return 4
    except (EngineStartFailed, ValueError, OSError) as err:
        _emit({"error": "start", "detail": str(err), "hostname": socket.gethostname()})
        return 5
    info, pid = record["connection"], record["pid"]
    _emit({"ready": {name: info[name] for name in protocol.PORT_NAMES}, "pid": pid,
           "hostname": socket.gethostname(), "python": record.get("python"), "key": info["key"],
           "persist": {"reconnected": record["reconnected"], "started": record.get("started")}})
    state = persist.StateDir.for_name(wanted["name"])
    closed = threading.Event()

    def obey() -> None:
        for line in sys.stdin:  # ends when the ssh connection closes our stdin
            if line.strip() == "interrupt":
                try:
                    os.kill(pid, signal.SIGINT)  # the engine only: its jobs' processes go on
                except ProcessLookupError:
                    pass
        closed.set()

    threading.Thread(target=obey, daemon=True).start()
    while not closed.wait(0.5):  # each pause a wait on stdin's end
        if not state.held():
            _emit({"exit": "unknown", "port_in_use": False, "stderr": _log_tail(state)})
            return 0
    return 0
