"""The target: a connected remote kernel with our engine in it, and the registry of targets.

A :class:`Target` is the Python API beneath the magics: ``target.run(code, namespace)``,
``target.fetch``, ``target.info``, ``target.close``. How a target comes to be is the business
of its kind (:mod:`.local`, :mod:`.attach`, :mod:`.kernelspec`, :mod:`.ssh`, :mod:`.served`,
:mod:`.dask`): each registers itself here by scheme (:func:`register_kind`), and
:func:`remote_magics.targets.connect` looks the scheme up (:func:`kind_of`).
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import threading
import time
from typing import Any, Callable, Mapping, Protocol

from ..cells import display, runner
from ..client import handshake
from ..client.connection import Connection, Pending, Reply, job_queue_of_thread
from ..errors import NotConnected, ProxyError, RemoteKernelDied, RemoteMagicsError
from ..wire import protocol, serialize

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    """What :mod:`remote_magics.jobs` attaches to a target that has async jobs."""

    connection: Connection | None  # the job thread's own connection

    def unfinished(self) -> list: ...

    def wait(self, quiet: bool) -> None: ...


class Target:
    """A connected remote kernel with our engine in it."""

    def __init__(self, name: str, connection: Connection, *, spec: str,
                 kernel_manager: Any = None) -> None:
        self.name = name
        self.spec = spec
        self.connection = connection
        self.kernel_manager = kernel_manager
        self._releases: list[str] = []
        self._releases_lock = threading.Lock()
        self.engine_id = ""
        self.details: dict = {}
        self.runs = 0
        self.last_run: runner.RunResult | None = None
        self.lost: str | None = None  # why the kernel is gone, once we know it died
        self.before_run: list[Callable[["Target"], Any]] = []  # e.g. --sync-path's mirror
        self.job_queue: JobQueue | None = None  # set by remote_magics.jobs at the first job

    # --- the target's async jobs (run by remote_magics.jobs) -----------------------------

    def jobs(self) -> list:
        """The jobs queued or running on this target, in submission order."""
        return self.job_queue.unfinished() if self.job_queue is not None else []

    def busy(self) -> bool:
        """Whether jobs are queued or running on this target."""
        return bool(self.jobs())

    def wait_for_jobs(self, quiet: bool = False) -> None:
        """Wait until this target's jobs have finished (saying so unless ``quiet``).

        A job's own thread never waits: it is the one running them.
        """
        if self.job_queue is not None and job_queue_of_thread() is None:
            self.job_queue.wait(quiet)

    def connection_for_thread(self) -> Connection:
        """The connection the calling thread may use: its job thread's own, or the main one."""
        queue = job_queue_of_thread()
        if queue is not None and queue is self.job_queue and queue.connection is not None:
            return queue.connection
        if queue is None and threading.current_thread() is threading.main_thread():
            return self.connection
        raise RuntimeError("a target's connection may be used only from the notebook's thread "
                           "or from that target's job thread")

    # --- requests ------------------------------------------------------------------------

    def check_usable(self, wait_for_jobs: bool = False) -> None:
        """Raise at once if the kernel is known to be gone; first, if asked, wait for its jobs."""
        if wait_for_jobs:
            self.wait_for_jobs()
        if self.connection.closed:
            raise NotConnected(f"target '{self.name}' is disconnected; connect again with "
                               "%remote_connect")
        if self.lost is not None:
            raise RemoteKernelDied(self.lost)

    def _watch(self, outcome: Callable[[], Any]) -> Any:
        """Return ``outcome()``, remembering a kernel death it reports."""
        try:
            return outcome()
        except RemoteKernelDied as err:
            self.lost = str(err)
            raise

    @property
    def owned(self) -> bool:
        """Whether we started this kernel (and so shut it down on disconnect)."""
        return self.kernel_manager is not None

    def request(self, msg_type: str, content: dict, frames: list = (), *,
                timeout: float | None = None, on_output: Callable | None = None,
                patience: float | None = None, on_progress: Callable | None = None) -> Reply:
        """One request to the engine after the target's jobs, its reply (see Connection.request)."""
        self.check_usable(wait_for_jobs=True)
        return self._watch(lambda: self.connection.request(
            msg_type, content, frames, timeout=timeout, on_output=on_output, patience=patience,
            on_progress=on_progress))

    def execute(self, content: dict, *, timeout: float | None = None,
                on_output: Callable[[dict], None] | None = None) -> Reply:
        """Run a cell in the engine's own IPython shell (an ``execute_request``); its reply.

        For the remote kernel, whose state lives in the engine's namespace. ``content`` is the
        request's (``code``, ``silent``, ``store_history``, ...); ``on_output`` gets its iopub
        messages. A cell the stop button interrupted returns the engine's reply (an error
        reply naming KeyboardInterrupt, its traceback already relayed); a dead kernel, a lost
        connection or ``timeout`` raise as :meth:`run` does.
        """
        self.check_usable(wait_for_jobs=True)
        pending = self.connection.start("execute_request", content, timeout=timeout,
                                        on_output=on_output)

        def outcome() -> Reply:
            try:
                return pending.wait()
            except KeyboardInterrupt:
                if pending.reply is None:  # a second stop: we gave up waiting
                    raise
                return pending.reply

        return self._watch(outcome)

    def run(
        self,
        code: str,
        namespace: dict,
        *,
        download: str = "small",
        bytes: int = protocol.DEFAULT_BYTES,
        timeout: float | None = None,
        on_output: Callable[[dict], None] | None = display.show,
        hidden: dict | None = None,
        cell_id: int | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> runner.RunResult:
        """Run ``code`` remotely with the names it reads from ``namespace``; bring back what it binds.

        ``download`` is ``all`` (every bound value comes back), ``small`` (values whose serialized
        size is at most ``bytes`` come back, the rest stay remote as proxies) or ``none``.
        ``namespace`` changes only when the run succeeds. ``on_progress`` follows big
        transfers (:meth:`remote_magics.cells.display.Watch.on_progress`).
        """
        pending = self.start_run(code, namespace, download=download, bytes=bytes,
                                 timeout=timeout, on_output=on_output, hidden=hidden,
                                 cell_id=cell_id, on_progress=on_progress)
        self._watch(pending.wait)
        return self.finish_run(pending, namespace)

    def start_run(self, code: str, namespace: Mapping[str, Any], *, download: str = "small",
                  bytes: int = protocol.DEFAULT_BYTES, timeout: float | None = None,
                  on_output: Callable[[dict], None] | None = display.show,
                  hidden: Mapping[str, Any] | None = None,
                  cell_id: int | None = None,
                  on_progress: Callable[[str, int, int], None] | None = None) -> Pending:
        """Send a run without waiting for it (a pool sends to every member, then waits)."""
        protocol.check_download(download)
        self.check_usable(wait_for_jobs=True)
        for hook in list(self.before_run):
            hook(self)
        self.runs += 1
        request = runner.prepare(code, namespace, self, download=download, limit=int(bytes),
                                 hidden=hidden or {}, cell_id=cell_id or self.runs)
        self.flush_releases()
        return self.connection.start(protocol.RUN_REQUEST, request.content, request.frames,
                                     timeout=timeout, on_output=on_output,
                                     on_progress=on_progress)

    def finish_run(self, pending: Pending, namespace: dict) -> runner.RunResult:
        """The result of a run started by :meth:`start_run` that has finished; updates ``namespace``."""
        reply = self._watch(pending.result)
        result = runner.apply(reply, self, namespace)
        result.bytes_sent = reply.bytes_sent
        result.seconds = time.perf_counter() - pending.started
        self.last_run = dataclasses.replace(result, values={}, result=None)  # stats, not values
        return result

    def fetch(self, object_id: str, timeout: float | None = None) -> Any:
        """The value of a remote object, downloaded."""
        with display.watching() as watch:  # a download over 50 MB shows a progress bar
            reply = self.request(protocol.FETCH_REQUEST, {"id": object_id}, timeout=timeout,
                                  on_output=watch.on_output, on_progress=watch.on_progress)
        if reply.content.get("status") != "ok":
            raise ProxyError(
                f"cannot fetch remote object {object_id} from target '{self.name}': "
                f"{reply.content.get('ename')}: {reply.content.get('evalue')}")
        return serialize.loads(reply.frames)

    def info(self) -> dict:
        """The engine's description: pid, host, objects held for us, versions."""
        self.flush_releases()
        reply = self.request(protocol.INFO_REQUEST, {}, patience=30)  # never interrupts
        self.details = reply.content
        return reply.content

    def release_later(self, object_id: str) -> None:
        """Queue a release of one reference (safe from ``__del__``, any thread)."""
        with self._releases_lock:
            self._releases.append(object_id)

    def flush_releases(self) -> None:
        """Send the queued releases without waiting for the engine's answer."""
        with self._releases_lock:
            ids, self._releases = self._releases, []
        if ids and not self.connection.closed:
            self.connection.send(protocol.RELEASE_REQUEST, {"ids": ids})

    def restart(self, timeout: float = 60.0) -> None:
        """Restart a kernel we started: a fresh engine; every proxy to the old one is lost."""
        km = self.kernel_manager
        if km is None:
            raise RemoteMagicsError(
                f"target '{self.name}' is a kernel we did not start ({self.spec}), so we cannot "
                "restart it: restart it where it runs, then %remote_disconnect and "
                "%remote_connect again.")
        self.connection.close()
        km.restart_kernel(now=True)
        with self._releases_lock:
            self._releases.clear()
        self.connection = owned_connection(self.name, km)
        self.lost = None
        self.handshake(timeout)

    def handshake(self, timeout: float, install: bool = False) -> None:
        """Wait until the kernel answers (installing the engine if asked); learn its details."""
        km = self.kernel_manager
        self.details = handshake.handshake(self.connection, self.name, timeout,
                                           alive=km.is_alive if km is not None else None,
                                           install=install)
        self.engine_id = self.details["engine_id"]

    def ready(self, timeout: float, install: bool = False) -> "Target":
        """:meth:`handshake` with a kernel just launched; on failure shut it down and raise."""
        try:
            self.handshake(timeout, install=install)
        except BaseException:
            self.close(shutdown=True)
            raise
        return self

    def alive(self, timeout: float = 2.0) -> bool:
        """Whether the kernel answers its heartbeat."""
        if self.connection.closed:
            return False
        if self.kernel_manager is not None and not self.kernel_manager.is_alive():
            return False
        return self.connection.ping(timeout)

    def close(self, shutdown: bool | None = None) -> None:
        """Disconnect; shut the kernel down when we started it (or when ``shutdown`` says so)."""
        if self.connection.closed:
            return
        if shutdown is None:
            shutdown = self.owned
        try:
            if not shutdown:
                with self._releases_lock:
                    self._releases.clear()
                self.connection.send(protocol.RELEASE_REQUEST, {"ids": [], "all": True})
        finally:
            self.connection.close()
            if shutdown and self.kernel_manager is not None:
                self.kernel_manager.shutdown_kernel(now=True)
                self.kernel_manager.cleanup_resources()

    def __repr__(self) -> str:
        return f"<Target {self.name!r} {self.spec}>"


class Registry:
    """The targets of this Python process, by name, and which one ``%%remote`` uses by default."""

    def __init__(self) -> None:
        self.targets: dict[str, Target] = {}
        self.current: str | None = None
        self.groups: dict[str, Any] = {}  # name → pool.Pool, whose members are in targets
        atexit.register(self.close_all)

    def add(self, target: Target) -> Target:
        self.targets[target.name] = target
        self.current = target.name
        return target

    def get(self, name: str | None = None) -> Target:
        """The target called ``name``, or the current one."""
        if not self.targets:
            raise NotConnected(
                "no remote kernel is connected. Run %remote_connect first (no argument starts a "
                "new local engine kernel; a connection file path attaches to a running kernel).")
        name = name or self.current
        if name not in self.targets:
            raise NotConnected(f"no target named '{name}'. Connected targets: "
                               f"{', '.join(self.targets)}. See %remote_targets.")
        return self.targets[name]

    def remove(self, name: str, shutdown: bool | None = None) -> None:
        target = self.get(name)
        del self.targets[target.name]
        if self.current == target.name:
            self.current = next(reversed(self.targets), None)
        target.close(shutdown)

    def close_all(self) -> None:
        for name in list(self.targets):
            try:
                self.remove(name)
            except Exception:  # at exit, one kernel's trouble must not keep others alive
                log.debug("closing %s failed", name, exc_info=True)


registry = Registry()


def owned_connection(name: str, km: Any) -> Connection:
    """A connection to a kernel we started (``km``: a KernelManager or one of its look-alikes).

    Interrupts go by signal, and the exit status comes from the kernel's process.
    """
    def exit_status() -> int | str | None:
        process = getattr(km.provisioner, "process", None)
        if process is not None:
            return process.poll()
        return None if km.is_alive() else "unknown"

    return Connection(km.get_connection_info(session=False), name=name,
                      interrupt=km.interrupt_kernel, exit_status=exit_status)


# --- kinds of target ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of target, by the scheme of its spec (``ssh`` for ``ssh://host``).

    ``start(spec, name, *, n, timeout, cwd, **options)`` starts (or reaches) the target
    ``name``, or with ``n`` that many members named ``name[0]``, ``name[1]``, ...
    (:func:`member_names`), each handshaken, and returns them with a cleanup to call once all of
    them are closed (or None). ``many``: ``-n N`` starts N of them as a pool; ``group``: they
    always come as a pool (one per worker of a cluster, at most ``n``).
    """

    scheme: str
    start: Callable[..., tuple[list[Target], Callable[[], None] | None]]
    many: bool = False
    group: bool = False


KINDS: dict[str, Kind] = {}
#: The scheme of a spec that names none of the registered ones: a kernel's connection file.
FILE_SCHEME = "file"


def member_names(group: str, count: int) -> list[str]:
    """The names of a pool's members: ``group[0]``, ``group[1]``, ..."""
    return [f"{group}[{i}]" for i in range(count)]


def register_kind(kind: Kind) -> None:
    """Make ``kind`` the one that starts targets of its scheme."""
    KINDS[kind.scheme] = kind


def kind_of(spec: str | None) -> Kind:
    """The kind that handles ``spec``: nothing or ``local``, ``SCHEME:...``, or a connection file."""
    if not spec or spec == "local":
        return KINDS["local"]
    scheme, colon, _ = spec.partition(":")
    if colon and scheme in KINDS:
        return KINDS[scheme]
    return KINDS[FILE_SCHEME]
