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
from typing import Any, Callable, ClassVar, Mapping, Protocol

from ..cells import display, runner
from ..cells.lookup import answerer, may_ask
from ..client import handshake
from ..client.connection import Connection, Pending, Reply, job_queue_of_thread
from ..errors import (JobError, NotConnected, ProxyError, RemoteInterrupt, RemoteKernelDied,
                      RemoteMagicsError, RemoteTimeout)
from ..wire import protocol, serialize

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    """What :mod:`remote_magics.jobs` attaches to a target that has async jobs."""

    connection: Connection | None  # the job thread's own connection

    def unfinished(self) -> list: ...

    def wait(self, quiet: bool) -> None: ...



#: Times a kernel that exited while starting is launched again. jupyter_client chooses its
#: ports free, then the kernel binds them: another process may take one in between (seen on
#: a loaded machine: "Address already in use"), and the next launch chooses others.
RELAUNCHES = 2


#: The ports of a kernel's connection file.
_PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def _new_ports(km: Any) -> None:
    """Have ``km``'s next start choose new free ports, as jupyter_client does for ports it
    chose itself (``newports``; ours are chosen when the connection file is written)."""
    for name in _PORTS:
        if isinstance(getattr(km, name, None), int):
            setattr(km, name, 0)
    cleanup = getattr(km, "cleanup_connection_file", None)
    if callable(cleanup):
        cleanup()


class Target:
    """A connected remote kernel with our engine in it.

    ``persistent`` is the engine's PersistInfo (:mod:`~remote_magics.wire.protocol`) when it
    outlives us (``--persist``): closing the target then leaves it running, and
    ``close(shutdown=True)`` ends it. ``reconnected`` says that it ran before we connected.
    """

    #: Makes the :class:`~remote_magics.jobs.DetachedJob` of :meth:`job`; set by remote_magics.jobs.
    make_job: ClassVar[Callable[..., Any] | None] = None

    def __init__(self, name: str, connection: Connection, *, spec: str,
                 kernel_manager: Any = None) -> None:
        self.name = name
        self.spec = spec
        self.connection = connection
        self.kernel_manager = kernel_manager
        self.persistent: dict | None = None
        self.reconnected = False
        self._releases: list[str] = []
        self._upload_releases: list[str] = []  # kept uploads to drop (cells/uploads.py)
        # reentrant: a collection run while it is held (a new list is an allocation) may call a
        # proxy's __del__ or an array's weakref callback, which queue a release in this thread
        self._releases_lock = threading.RLock()
        self.engine_id = ""
        self.details: dict = {}
        self.runs = 0
        self.changes = 0  # runs and proxy operations since it started that may change objects
        self.last_run: runner.RunResult | None = None
        self.lost: str | None = None  # why the kernel is gone, once we know it died
        self.before_run: list[Callable[["Target"], Any]] = []  # e.g. --sync-path's mirror
        # the module names whose files --sync-path mirrors here (the engine imports those)
        self.mirrored: list[Callable[[str], bool]] = []
        self.job_queue: JobQueue | None = None  # set by remote_magics.jobs at the first job

    def mirrors(self, module: str) -> bool:
        """Whether ``--sync-path`` mirrors the file of the module ``module`` to this target: its
        engine imports the file as it is now, not the notebook's module (edits are picked up
        by the next run)."""
        return any(covers(module) for covers in self.mirrored)

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
            raise RemoteKernelDied(
                f"{self.lost}, so this did not run. To go on, "
                f"{self.connection.restart_advice()}, then run it again.")

    def mark_lost(self, died: RemoteKernelDied) -> None:
        """Remember that the kernel died (``died`` said so), for every later use of the target."""
        status = f" (exit status {died.status})" if died.status is not None else ""
        self.lost = f"the remote kernel of target '{self.name}' died earlier{status}"

    def say_if_still_running(self, quiet: bool = False) -> None:
        """Say so when a request will wait for a cell that did not stop when interrupted."""
        seconds = self.connection.still_running_for()
        if seconds is not None and not quiet:
            display.note(
                f"remote_magics: target '{self.name}' is still running the cell that did not "
                f"stop when interrupted {seconds:.0f} s ago; this waits until it finishes. To "
                f"stop it now, {self.connection.restart_advice()}.")

    def _watch(self, outcome: Callable[[], Any]) -> Any:
        """Return ``outcome()``, remembering a kernel death it reports."""
        try:
            return outcome()
        except RemoteKernelDied as err:
            self.mark_lost(err)
            raise

    @property
    def owned(self) -> bool:
        """Whether we started this kernel and shut it down on disconnect (not a persistent one)."""
        return self.kernel_manager is not None and self.persistent is None

    def request(self, msg_type: str, content: dict, frames: list = (), *,
                timeout: float | None = None, on_output: Callable | None = None,
                patience: float | None = None, on_progress: Callable | None = None,
                on_lookup: Callable[[str], Any] | None = None) -> Reply:
        """One request to the engine after the target's jobs, its reply (see Connection.request)."""
        self.check_usable(wait_for_jobs=True)
        self.say_if_still_running(quiet=patience is not None)
        return self._watch(lambda: self.connection.request(
            msg_type, content, frames, timeout=timeout, on_output=on_output, patience=patience,
            on_progress=on_progress, on_lookup=on_lookup))

    def lookup_answerer(self, namespace: Mapping[str, Any],
                        hidden: Mapping[str, Any]) -> Callable[[str], Any]:
        """What answers the engine's asks for a name of ``namespace`` (fetch on first use)
        during a request to this target: a run's, or a plain cell's call of a function that
        stayed remote (:meth:`.proxy.RemoteObject.__call__`)."""
        return answerer(namespace, hidden, self)

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
        quiet: bool = False,
        show_result: bool = False,
        lookup: bool = False,
    ) -> runner.RunResult:
        """Run ``code`` remotely with the names it reads from ``namespace``; bring back what it binds.

        ``download`` is ``all`` (every bound value comes back), ``small`` (values whose serialized
        size is at most ``bytes`` come back, the rest stay remote as proxies) or ``none``.
        A failed or interrupted run still brings back what the cell bound before it stopped.
        ``on_progress`` follows big transfers (:meth:`remote_magics.cells.display.Watch.on_progress`).
        ``quiet`` leaves out the note that the run waits for a cell that did not stop when
        interrupted. ``show_result``: the engine also formats the result as it displays it
        (``RunResult.display``). ``lookup``: a name the cell reads that the analysis did not
        ship is fetched from ``namespace`` when the cell first reads it (this call waits and
        answers), instead of a NameError; offered only to a cell that calls ``eval``,
        ``exec``, ``globals()`` and the like (:func:`~remote_magics.cells.lookup.may_ask`).
        """
        for attempt in range(2):
            pending = self.start_run(code, namespace, download=download, bytes=bytes,
                                     timeout=timeout, on_output=on_output, hidden=hidden,
                                     cell_id=cell_id, on_progress=on_progress, quiet=quiet,
                                     show_result=show_result, lookup=lookup)
            self._stopped_keeps(pending.wait, pending, namespace)
            if attempt or not runner.lacked_uploads(pending.reply, self):
                break  # else nothing ran: the engine lacked a kept copy, now sent again
        return self.finish_run(pending, namespace)

    def _stopped_keeps(self, outcome: Callable[[], Any], pending: Pending, namespace: dict) -> Any:
        """``outcome()`` of a run; if it was interrupted or timed out, the names the cell bound
        before it stopped reach ``namespace`` first, as after a plain cell's interrupt."""
        try:
            return self._watch(outcome)
        except (RemoteInterrupt, RemoteTimeout):
            if pending.reply is not None and pending.reply.content.get("outputs"):
                with serialize.unseen():
                    runner.bind(pending.reply, self, namespace, sent=pending.objects)
            raise

    def start_run(self, code: str, namespace: Mapping[str, Any], *, download: str = "small",
                  bytes: int = protocol.DEFAULT_BYTES, timeout: float | None = None,
                  on_output: Callable[[dict], None] | None = display.show,
                  hidden: Mapping[str, Any] | None = None,
                  cell_id: int | None = None,
                  on_progress: Callable[[str, int, int], None] | None = None,
                  quiet: bool = False, show_result: bool = False,
                  lookup: bool = False) -> Pending:
        """Send a run without waiting for it (a pool sends to every member, then waits).

        Unless ``quiet``, says so when the run waits for a cell that did not stop. With
        ``lookup`` (see :meth:`run`), whoever waits for it answers the cell's asks for names.
        """
        request = self.prepare_run(code, namespace, download=download, bytes=bytes,
                                   hidden=hidden, cell_id=cell_id, show_result=show_result)
        request.content["stdin"] = display.stdin_allowed()  # whoever waits answers input()
        on_lookup = None
        if lookup and may_ask(request.cell, request.content["code"], namespace):
            request.content["lookup"] = True
            on_lookup = self.lookup_answerer(namespace, hidden or {})
        pending = self.send_run(request, timeout=timeout, on_output=on_output,
                                on_progress=on_progress, quiet=quiet, on_lookup=on_lookup)
        pending.objects = request.sent  # its reply's references to objects inside the inputs
        return pending

    def send_run(self, request: runner.Request, *, timeout: float | None = None,
                 on_output: Callable[[dict], None] | None = display.show,
                 on_progress: Callable[[str, int, int], None] | None = None,
                 quiet: bool = False,
                 on_lookup: Callable[[str], Any] | None = None) -> Pending:
        """Send a run made by :meth:`prepare_run`; it is in flight when this returns.

        A pool calls this from one thread per member, so that big uploads go out together.
        ``on_lookup`` answers the cell's asks for names (:meth:`start_run`'s ``lookup``).
        """
        self.say_if_still_running(quiet)
        return self._watch(lambda: self.connection.start(
            protocol.RUN_REQUEST, request.content, request.frames, timeout=timeout,
            on_output=on_output, on_progress=on_progress, on_lookup=on_lookup))

    def prepare_run(self, code: str, namespace: Mapping[str, Any], *, download: str,
                    bytes: int, hidden: Mapping[str, Any] | None, cell_id: int | None,
                    wait_for_jobs: bool = True, show_result: bool = False,
                    shares_random: bool = True) -> runner.Request:
        """A run request, pickled and ready to send, after the target's checks and hooks.

        Every way of running a cell (a plain run, an ``--async`` or a detached job) starts here:
        the download policy is checked, the target must be usable (after its jobs, unless
        ``wait_for_jobs`` is false), ``before_run`` hooks run (``--sync-path``), and releases
        queued so far leave with it (:meth:`carry_releases`). A fan-out's member draws its own
        random numbers (``shares_random=False``). Raises :class:`SerializationError` before
        anything is sent.
        """
        protocol.check_download(download)
        self.check_usable(wait_for_jobs=wait_for_jobs)
        for hook in list(self.before_run):
            hook(self)
        self.runs += 1
        self.changes += 1
        with serialize.unseen():  # what the cells' objects print as they are read: not shown
            request = runner.prepare(code, namespace, self, download=download,
                                     limit=int(bytes), hidden=hidden or {},
                                     cell_id=cell_id or self.runs, show_result=show_result,
                                     shares_random=shares_random)
        self.carry_releases()
        request.content["stdin"] = False  # a job's input(): nobody waits to answer it
        return request

    def finish_run(self, pending: Pending, namespace: dict) -> runner.RunResult:
        """The result of a run started by :meth:`start_run` that has finished; updates ``namespace``."""
        reply = self._stopped_keeps(pending.result, pending, namespace)
        with serialize.unseen():  # (as they are made)
            result = runner.apply(reply, self, namespace, sent=pending.objects)
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
        barrier = handshake.bytecode_barrier(self.details)
        try:
            return serialize.loads(reply.frames, bytecode=barrier is None)
        except serialize.BytecodeByValue as err:
            raise ProxyError(
                f"cannot fetch remote object {object_id} from target '{self.name}': {err}, and "
                f"{barrier}: bytecode does not cross Python versions, so it stays remote. Use "
                "it there (in a %%remote cell), or fetch what it computes instead.") from None

    def info(self) -> dict:
        """The engine's description: pid, host, objects held for us, versions."""
        self.flush_releases()
        reply = self.request(protocol.INFO_REQUEST, {}, patience=30)  # never interrupts
        self.details = reply.content
        return reply.content

    # --- detached jobs and persistence (the engine's own; see remote_magics.jobs) ------------

    def job(self, number: int, namespace: dict | None = None) -> Any:
        """The engine's detached job ``number`` as a :class:`~remote_magics.jobs.DetachedJob`.

        Its ``result()`` puts the job's names into ``namespace`` (by default the IPython
        namespace when there is one).
        """
        if Target.make_job is None:
            raise RemoteMagicsError("detached jobs need remote_magics.jobs: import it first")
        return Target.make_job(self, number, namespace)

    def control_request(self, msg_type: str, content: dict,
                        connection: Connection | None = None) -> dict:
        """One of our control requests (answered while a cell runs); its reply's content.

        Raises :class:`JobError` with the engine's words when it answers with an error.
        """
        self.check_usable()
        conn = connection or self.connection_for_thread()
        reply = self._watch(lambda: conn.control_request(msg_type, content)).content
        if reply.get("status") != "ok":
            raise JobError(f"target '{self.name}': {reply.get('evalue') or reply.get('ename')}")
        return reply

    def detached_jobs(self) -> list[dict]:
        """The engine's detached jobs (JobInfo dicts of :mod:`~remote_magics.wire.protocol`)."""
        return self.control_request(protocol.JOBS_REQUEST, {})["jobs"]

    def uncollected_jobs(self) -> list[int]:
        """The detached jobs whose names nobody has collected (queued and running ones too)."""
        return [job["id"] for job in self.detached_jobs()
                if job["status"] in ("queued", "running")
                or (job["status"] == "done" and not job["collected"])]

    def cancel_job(self, number: int) -> bool:
        """Cancel a queued detached job or interrupt a running one; False once it has ended."""
        return bool(self.control_request(protocol.JOB_CANCEL_REQUEST, {"job": number})["cancelled"])

    def collect_job(self, number: int, namespace: dict) -> runner.RunResult:
        """Bring a finished detached job's names into ``namespace``; the engine then releases them."""
        reply = self.request(protocol.JOB_COLLECT_REQUEST, {"job": number})
        result = runner.apply(reply, self, namespace)
        result.bytes_sent = reply.bytes_sent
        return result

    def persist(self, name: str, idle_timeout: float | None = None) -> dict:
        """Make the engine persistent as ``name`` (or set its idle timeout); its PersistInfo."""
        reply = self.request(protocol.PERSIST_REQUEST, {"name": name, "idle_timeout": idle_timeout},
                             patience=30)
        if reply.content.get("status") != "ok":
            raise RemoteMagicsError(f"target '{self.name}' cannot be persistent: "
                                    f"{reply.content.get('evalue')}")
        self.persistent = reply.content["persist"]
        return self.persistent

    def end_engine(self, timeout: float = 30.0) -> list[int]:
        """End a persistent engine now with what it holds; the jobs whose results nobody collected.

        Its saved results go too. Returns once its shell connection has closed.
        """
        uncollected = self.uncollected_jobs()
        ended = self.connection.watch_end()
        self.connection.send(protocol.SHUTDOWN_REQUEST, {}, channel="control")
        if not ended(timeout):
            raise RemoteMagicsError(f"the persistent engine of '{self.name}' did not end within "
                                    f"{timeout:g} s of being told to; it may be stuck in code that "
                                    f"holds the interpreter. Its pid is {self.details.get('pid')} on "
                                    f"{self.details.get('hostname')}.")
        return uncollected

    def release_later(self, object_id: str, small: bool = False) -> None:
        """Queue a release of one reference (safe from ``__del__``, any thread).

        ``small``: the engine's copy of a small value this side decoded; it goes with the next
        request to the engine (:meth:`Connection.carry_release`), not in a message of its own.
        """
        if small:
            self.connection.carry_release(object_id)
            return
        with self._releases_lock:
            self._releases.append(object_id)

    def release_upload_later(self, token: str) -> None:
        """Queue the release of a kept upload (safe from ``__del__``, any thread)."""
        with self._releases_lock:
            self._upload_releases.append(token)

    def flush_releases(self) -> None:
        """Send the queued releases without waiting for the engine's answer; they wait while
        the kernel is found gone (parked: a release is no reason to reach for it again)."""
        if self.connection.parked:
            return
        ids, tokens = self._take_releases()
        if (ids or tokens) and not self.connection.closed:
            self.connection.send(protocol.RELEASE_REQUEST, {"ids": ids, "uploads": tokens})

    def _take_releases(self) -> tuple[list[str], list[str]]:
        """The queued releases (object ids, kept uploads' tokens), no longer queued."""
        with self._releases_lock:
            ids, self._releases = self._releases, []
            tokens, self._upload_releases = self._upload_releases, []
        return ids, tokens

    def carry_releases(self) -> None:
        """Give the queued releases to the request about to be sent: they reach the engine
        with it, ahead of its work, as a release request sent just before it would, without a
        message (and a reply) of their own."""
        ids, tokens = self._take_releases()
        for object_id in ids:
            self.connection.carry_release(object_id)
        for token in tokens:
            self.connection.carry_upload_release(token)

    def restart(self, timeout: float = 60.0) -> None:
        """Restart a kernel we started: a fresh engine; every proxy to the old one is lost."""
        km = self.kernel_manager
        if self.persistent is not None:
            raise RemoteMagicsError(
                f"target '{self.name}' is a persistent engine: end it with %remote_disconnect "
                f"{self.name} --shutdown, then %remote_connect ... --persist starts a new one.")
        if km is None:
            raise RemoteMagicsError(
                f"target '{self.name}' is a kernel we did not start ({self.spec}), so we cannot "
                "restart it: restart it where it runs, then %remote_disconnect and "
                "%remote_connect again.")
        self.connection.close()
        for attempt in range(RELAUNCHES + 1):
            if attempt:  # the same ports first, as a restart keeps them; new ones where the
                _new_ports(km)  # kernel could not bind one (another process took it meanwhile)
            km.restart_kernel(now=True)
            with self._releases_lock:
                self._releases.clear()
                self._upload_releases.clear()
            self.connection = owned_connection(self.name, km)
            self.lost = None
            try:
                self.handshake(timeout)
                return
            except RemoteKernelDied:
                if attempt == RELAUNCHES:
                    raise
                self.connection.close()

    def handshake(self, timeout: float, install: bool = False) -> None:
        """Wait until the kernel answers (installing the engine if asked); learn its details."""
        km = self.kernel_manager
        self.details = handshake.handshake(self.connection, self.name, timeout,
                                           alive=km.is_alive if km is not None else None,
                                           install=install)
        self.engine_id = self.details["engine_id"]

    def ready(self, timeout: float, install: bool = False, launched: bool = True) -> "Target":
        """:meth:`handshake` with a kernel just reached; on failure let it go and raise.

        A kernel we ``launched`` is shut down (a persistent engine idles out by itself); for
        one we did not start, only our connection is closed.
        """
        try:
            self.handshake(timeout, install=install)
        except BaseException:
            if launched:
                self.close(shutdown=self.persistent is None)
            else:
                self.connection.close()
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
        """Disconnect; shut the kernel down when we started it (or when ``shutdown`` says so).

        A persistent engine is left running, unless ``shutdown`` ends it (:meth:`end_engine`).
        """
        if self.connection.closed:
            return
        if shutdown is None:
            shutdown = self.owned
        linger = 0.0
        try:
            if shutdown and self.persistent is not None:
                self.end_engine()
            elif not shutdown and not self.connection.parked:  # found gone: nobody to tell
                with self._releases_lock:
                    self._releases.clear()
                    self._upload_releases.clear()
                self.connection.send(protocol.RELEASE_REQUEST, {"ids": [], "all": True})
                linger = 1.0  # the release must leave before the sockets go
        finally:
            self.connection.close(linger)
            # a persistent ssh target's kernel manager is our ssh link, which ends either way
            if (shutdown or self.persistent is not None) and self.kernel_manager is not None:
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

    def add(self, target: Target, current: bool = True) -> Target:
        """Register ``target``; it becomes the current one if ``current`` or if there was none."""
        self.targets[target.name] = target
        if current or self.current not in self.targets:
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

    conn = Connection(km.get_connection_info(session=False), name=name,
                      interrupt=km.interrupt_kernel, exit_status=exit_status)
    conn.restartable = True  # Target.restart works for every kernel with a manager
    return conn


# --- kinds of target ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of target, by the scheme of its spec (``ssh`` for ``ssh://host``).

    ``start(spec, name, *, n, timeout, cwd, **options)`` starts (or reaches) the target
    ``name``, or with ``n`` that many members named ``name[0]``, ``name[1]``, ...
    (:func:`member_names`), each handshaken, and returns them with a cleanup to call once all of
    them are closed (or None). ``many``: ``-n N`` starts N of them as a pool; ``group``: they
    always come as a pool (one per worker of a cluster, at most ``n``). ``persist``: ``start``
    also takes ``persist=True`` and ``idle_timeout``, and reaches the persistent engine ``name``
    (starting it when none runs), which :func:`remote_magics.targets.connect` then makes
    persistent (:meth:`Target.persist`).
    """

    scheme: str
    start: Callable[..., tuple[list[Target], Callable[[], None] | None]]
    many: bool = False
    group: bool = False
    persist: bool = False  # takes persist=True (and idle_timeout): an engine that outlives us


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
