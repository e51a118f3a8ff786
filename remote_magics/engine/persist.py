"""Persistent engines: the state one keeps on its host, and its end after an idle time.

A persistent engine (``%remote_connect ... --persist``) outlives its notebook and its ssh
connection. It keeps its state in a directory named after the target, under Jupyter's runtime
directory on its host (:class:`StateDir`, mode 0700):

- ``record.json`` (0600): how to reach it (its connection info, with the key), its pid, when it
  started. A client of the same user reads it to reconnect; another user cannot read it, and
  without the key the engine drops every message.
- ``kernel.json`` (0600): the kernel's connection file; ``engine.log``: its stdout and stderr;
  ``source/``: the shipped package, for an engine started over ssh.
- ``engine.lock``: the engine holds a lock on it (``flock``) for its whole life, so "an engine
  is alive" is "the lock is held", whatever became of its pid; ``launch.lock``: held by whoever
  finds or starts the engine (:func:`remote_magics.engine.host.ensure_persistent`).
- ``saved/JOB/``: the names of a finished ``--detach --save`` job, one pickle each, and its
  ``info.json``: a new engine under the same name lists and serves them after a crash.

:class:`IdleWatch` ends the engine once no client has been connected to its shell, no job
queued or running and no request handled for its idle timeout. Shipped with the engine:
standard library only (``jupyter_core``, where ipykernel brought it, for the runtime directory).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Iterator

from ..wire import protocol

log = logging.getLogger(__name__)

#: The folder under Jupyter's runtime directory that holds persistent engines' state.
FOLDER = "remote-magics-persist"
#: What a persistent target's name may be: it names a directory.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
#: The file name of a job's last value among its saved names (not an identifier: no clash).
RESULT_FILE = "@result.pkl"
#: libzmq's monitor events (zmq.h): a client connected to / went from the shell socket.
EVENT_ACCEPTED = 0x0020
EVENT_DISCONNECTED = 0x0200
EVENT_MONITOR_STOPPED = 0x0400


class StateBusy(Exception):
    """Another live engine holds this state directory."""


def check_name(name: str) -> str:
    """``name`` if it can name a persistent engine's directory; ValueError otherwise."""
    if not NAME.fullmatch(name or ""):
        raise ValueError(f"a persistent target's name is letters, digits, '_', '.' and '-' "
                         f"(it names its state directory on the host), not {name!r}")
    return name


def runtime_dir() -> str:
    """Jupyter's runtime directory for this user (``jupyter --runtime-dir``)."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # ipykernel brings jupyter_core; without it, its documented default
        return os.environ.get("JUPYTER_RUNTIME_DIR") or os.path.join(
            os.path.expanduser("~"), ".local", "share", "jupyter", "runtime")
    return jupyter_runtime_dir()


def write_private(path: str, data: bytes | Callable[[Any], None]) -> None:
    """Write ``data`` to ``path`` readable by its owner only (0600), all at once (a rename).

    ``data`` is bytes, or a function that writes to the open file.
    """
    partial = f"{path}.{os.getpid()}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            data(out) if callable(data) else out.write(data)
    except BaseException:
        _remove(partial)
        raise
    os.replace(partial, path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class StateDir:
    """The directory of one persistent engine's state (see the module's docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.record_file = os.path.join(path, "record.json")
        self.connection_file = os.path.join(path, "kernel.json")
        self.log_file = os.path.join(path, "engine.log")
        self.source = os.path.join(path, "source")
        self.saved = os.path.join(path, "saved")
        self._held: int | None = None  # the fd of engine.lock while this process holds it

    @classmethod
    def for_name(cls, name: str, root: str | None = None) -> "StateDir":
        """The state directory of the persistent engine ``name`` (made, mode 0700, if missing)."""
        base = os.path.join(root or runtime_dir(), FOLDER)
        path = os.path.join(base, check_name(name))
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(base, 0o700)
        os.chmod(path, 0o700)
        return cls(path)

    # --- who is alive --------------------------------------------------------------------

    def _lock(self, which: str, blocking: bool) -> int | None:
        fd = os.open(os.path.join(self.path, which), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @contextlib.contextmanager
    def launching(self) -> Iterator[None]:
        """Hold ``launch.lock``: one client at a time finds or starts this engine."""
        fd = self._lock("launch.lock", blocking=True)
        try:
            yield
        finally:
            os.close(fd)

    def held(self) -> bool:
        """Whether a live engine holds this state."""
        if self._held is not None:
            return True
        fd = self._lock("engine.lock", blocking=False)
        if fd is None:
            return True
        os.close(fd)
        return False

    def hold(self) -> None:
        """Take this state for this process's life; :class:`StateBusy` if an engine holds it."""
        if self._held is None:
            self._held = self._lock("engine.lock", blocking=False)
            if self._held is None:
                raise StateBusy(f"another engine runs as '{self.name}' ({self.path})")

    # --- the record ----------------------------------------------------------------------

    def read_record(self) -> dict | None:
        try:
            with open(self.record_file) as source:
                return json.load(source)
        except (OSError, ValueError):
            return None

    def live_record(self) -> dict | None:
        """The record of the engine that holds this state; None (and the stale one gone) if none does."""
        if self.held():
            return self.read_record()
        self.clear()
        return None

    def write_record(self, record: dict) -> None:
        write_private(self.record_file, json.dumps(record, indent=1).encode())

    def clear(self, discard: bool = False) -> None:
        """Remove what only a live engine needs; with ``discard``, its saved results and all."""
        for path in (self.record_file, self.connection_file, self.source):
            _remove(path)
        if discard:
            _remove(self.path)
            return
        with contextlib.suppress(OSError):
            if not os.listdir(self.saved):
                os.rmdir(self.saved)

    # --- saved job results ---------------------------------------------------------------

    def _job_dir(self, job_id: int) -> str:
        return os.path.join(self.saved, str(int(job_id)))

    def save_job(self, job_id: int, info: dict, names: dict[str, Any], value: Any,
                 content: dict) -> list[str]:
        """Write a finished job's names (and last value) to disk; the names that could not be."""
        import cloudpickle

        directory = self._job_dir(job_id)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        unsaved = []
        items = [(f"{name}.pkl", name, obj) for name, obj in names.items()]
        if value is not None:
            items.append((RESULT_FILE, "Out", value))
        for file, name, obj in items:
            path = os.path.join(directory, file)
            try:  # pickled straight into the file: a big value is not copied in memory
                write_private(path, lambda out, obj=obj: cloudpickle.dump(obj, out, protocol=5))
            except Exception as err:  # one name that cannot be pickled loses only itself
                log.warning("remote_magics: job %s: cannot save '%s': %s", job_id, name, err)
                unsaved.append(name)
        record = {"info": dict(info, saved=True, unsaved=unsaved), "content": content,
                  "names": [name for name in names if name not in unsaved],
                  "result": value is not None and "Out" not in unsaved}
        write_private(os.path.join(directory, "info.json"), json.dumps(record).encode())
        return unsaved

    def saved_jobs(self) -> list[dict]:
        """The saved jobs' records (``info``, ``content``, ``names``, ``result``), by id."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(self.saved):
                try:
                    with open(os.path.join(self.saved, entry, "info.json")) as source:
                        found.append(json.load(source))
                except (OSError, ValueError):  # a save cut short by a crash: nothing to serve
                    continue
        return sorted(found, key=lambda record: record["info"]["id"])

    def load_job(self, job_id: int, record: dict) -> tuple[dict[str, Any], Any]:
        """A saved job's names and last value, read back."""
        import pickle

        directory = self._job_dir(job_id)

        def load(file: str) -> Any:
            with open(os.path.join(directory, file), "rb") as source:
                return pickle.load(source)

        names = {name: load(f"{name}.pkl") for name in record.get("names", ())}
        return names, load(RESULT_FILE) if record.get("result") else None

    def drop_job(self, job_id: int) -> None:
        _remove(self._job_dir(job_id))


def end(state: StateDir | None, *, discard: bool, why: str) -> None:
    """End this engine at once: its state cleared (``discard``: all of it), its processes ended."""
    try:
        with contextlib.suppress(Exception):  # its log, for whoever wonders where it went
            with open(state.log_file if state else os.devnull, "a") as log_file:
                print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} remote_magics engine "
                      f"{os.getpid()}: {why}; ending.", file=log_file)
        if state is not None:
            state.clear(discard)
        if os.getpgid(0) == os.getpid():  # our own process group: what the jobs started ends too
            os.killpg(os.getpid(), signal.SIGTERM)
    finally:
        os._exit(0)


class IdleWatch:
    """Ends the engine once it has been idle for ``timeout`` seconds.

    Idle means: no client connected to its shell socket (counted from the socket's ZeroMQ
    monitor: a notebook that dies or an ssh tunnel that closes drops its connection), no job
    queued or running (``in_use``), no request being handled (:meth:`begin`, :meth:`end`).
    """

    def __init__(self, state: StateDir | None, timeout: float, in_use: Callable[[], bool],
                 clients: int = 0) -> None:
        self.state = state
        self.timeout = float(timeout)
        self.in_use = in_use
        self.clients = clients
        self.busy = 0
        self.since = time.monotonic()
        self.wake = threading.Event()

    def start(self, shell_socket: Any) -> None:
        """Count the clients of ``shell_socket`` (from the thread that owns it), and watch."""
        monitor = shell_socket.get_monitor_socket(EVENT_ACCEPTED | EVENT_DISCONNECTED)
        threading.Thread(target=self._count, args=(monitor,), daemon=True,
                         name="remote_magics-clients").start()
        threading.Thread(target=self._watch, daemon=True, name="remote_magics-idle").start()

    def set_timeout(self, timeout: float) -> None:
        self.timeout = float(timeout)
        self.wake.set()

    def begin(self) -> None:
        """A request is being handled."""
        self.busy += 1
        self.since = time.monotonic()

    def end(self) -> None:
        self.busy -= 1
        self.since = time.monotonic()

    def idle_for(self) -> float | None:
        """Seconds the engine has been idle, or None while it is in use."""
        if self.clients > 0 or self.busy > 0 or self.in_use():
            return None
        return time.monotonic() - self.since

    def _count(self, monitor: Any) -> None:
        while True:
            try:
                event = int.from_bytes(monitor.recv_multipart()[0][:2], "little")
            except Exception:  # the kernel is closing its sockets: let its context end
                monitor.close(0)
                return
            if event == EVENT_ACCEPTED:
                self.clients += 1
            elif event == EVENT_DISCONNECTED:
                self.clients = max(self.clients - 1, 0)
            elif event == EVENT_MONITOR_STOPPED:
                monitor.close(0)
                return
            self.since = time.monotonic()

    def _watch(self) -> None:
        while True:
            self.wake.wait(min(max(self.timeout / 10, 0.1), 30.0))
            self.wake.clear()
            idle = self.idle_for()
            if idle is None:
                self.since = time.monotonic()
            elif idle >= self.timeout:
                end(self.state, discard=False,
                    why=f"idle for {idle:.0f} s with no client and no job")


class Persistence:
    """What makes an engine persistent: its state directory and its idle watch."""

    def __init__(self, state: StateDir | None, watch: IdleWatch) -> None:
        self.state = state
        self.watch = watch
        self.started = time.time()

    def info(self) -> dict:
        """The PersistInfo of :mod:`remote_magics.wire.protocol`."""
        idle = self.watch.idle_for()
        return {"name": self.state.name if self.state else None,
                "idle_timeout": self.watch.timeout, "state": self.state.path if self.state else None,
                "clients": self.watch.clients, "idle": None if idle is None else round(idle, 3),
                "started": self.started}


def make_persistent(engine: Any, state: StateDir, idle_timeout: float, clients: int) -> Persistence:
    """Make ``engine`` persistent under ``state`` (held from now on), watched for idleness.

    Called on the kernel's main thread, which owns the shell socket that the watch monitors.
    Saved jobs in ``state`` join the engine's job table.
    """
    state.hold()
    watch = IdleWatch(state, idle_timeout, engine.jobs.active, clients=clients)
    persistence = engine.persistence = Persistence(state, watch)
    engine.jobs.adopt(state)
    watch.start(engine.kernel.shell_stream.socket)
    return persistence


def write_record(engine: Any, connection_file: str) -> None:
    """Tell whoever started this engine (and later clients) how to reach it: its record."""
    with open(connection_file) as source:
        info = json.load(source)
    persistence = engine.persistence
    persistence.state.write_record({
        "name": persistence.state.name, "connection": info, "pid": os.getpid(),
        "hostname": socket.gethostname(), "python": sys.executable, "cwd": os.getcwd(),
        "started": persistence.started, "idle_timeout": persistence.watch.timeout,
        "log": persistence.state.log_file, "protocol_version": protocol.PROTOCOL_VERSION})


def install(engine: Any) -> None:
    """Register ``remote_persist_request`` (shell) and ``remote_shutdown_request`` (control)."""

    async def persist_request(stream, ident, parent) -> None:
        if not engine.authentic(parent):
            return
        content = parent["content"]
        timeout = content.get("idle_timeout")
        try:
            persistence = engine.persistence
            if persistence is None:
                state = StateDir.for_name(content.get("name", ""))
                persistence = make_persistent(engine, state, timeout or protocol.IDLE_TIMEOUT,
                                              clients=1)  # the one asking, connected before
            elif persistence.state is not None and content.get("name") != persistence.state.name:
                raise ValueError(f"this engine is persistent as '{persistence.state.name}', "
                                 f"not '{content.get('name')}'")
            elif timeout:
                persistence.watch.set_timeout(timeout)
        except (ValueError, OSError, StateBusy) as err:
            engine.reply(stream, ident, parent, {"status": "error", "ename": type(err).__name__,
                                                 "evalue": str(err), "traceback": []})
            return
        engine.reply(stream, ident, parent, {"status": "ok", "persist": persistence.info()})

    def shutdown_request(stream, ident, parent) -> None:
        if not engine.authentic(parent):
            return
        if engine.persistence is None:  # an engine that ends with its notebook is not ours to end
            engine.kernel.log.error("remote_magics: a shutdown request to an engine that is "
                                    "not persistent was ignored")
            return
        end(engine.persistence.state, discard=True, why="shut down by a client")

    engine.kernel.shell_handlers[protocol.PERSIST_REQUEST] = persist_request
    engine.kernel.control_handlers[protocol.SHUTDOWN_REQUEST] = shutdown_request
