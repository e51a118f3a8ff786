"""Async cells: ``%%remote --async`` runs a cell as a :class:`Job` while the notebook goes on.

A :class:`Job` is a real :class:`concurrent.futures.Future`. Each target has one worker thread
that runs its jobs one after another, in submission order, over a :class:`Connection` of its
own (a ZeroMQ socket belongs to one thread). That connection carries the target's Jupyter
session id, so the engine scopes objects to the same client: proxies made by a job work in the
notebook and the other way round.

The names a job's cell reads are pickled when it is submitted, on the notebook's thread, so the
job sees the values of that moment. The names it binds reach the namespace when
:meth:`Job.result` is first called (exactly once), on the notebook's thread. Output the cell
prints while it runs goes into the job's own display (a display id, updated from the worker
thread), so it stays under the cell that started the job. A plain ``%%remote`` (or a live
proxy operation) on a target with jobs waits for them: the target's job queue is a
:class:`JobQueue`, reached through :meth:`~remote_magics.targets.base.Target.wait_for_jobs`.
"""
from __future__ import annotations

import base64
import concurrent.futures
import html
import logging
import queue
import sys
import threading
import time
import weakref
from typing import Any

import zmq

from . import channels
from .cells import display, runner
from .client.connection import Connection, Pending, mark_job_thread
from .errors import ConnectionLost, RemoteError, RemoteKernelDied
from .targets.base import Target
from .wire import protocol

log = logging.getLogger(__name__)

#: Seconds an idle worker waits between checks that its target is still connected.
IDLE_CHECK = 0.5
#: Seconds between two updates of a running job's display, at most one per this interval.
REFRESH_INTERVAL = 0.2
#: Characters of printed output a job's display keeps (the tail).
OUTPUT_CHARS = 20_000
#: Milliseconds the worker polls at most before it looks at a cancel request.
_CANCEL_POLL_MS = 100

_queues: "weakref.WeakSet[JobQueue]" = weakref.WeakSet()
_lock = threading.Lock()
_numbers = iter(range(1, sys.maxsize))


class Job(concurrent.futures.Future):
    """One ``%%remote --async`` cell: a Future of the cell's value.

    ``result(timeout)`` waits, then assigns the cell's names into the namespace by its download
    policy (the first time only) and returns the cell's last expression value (or None).
    ``cancel()`` takes a queued job off the queue, or interrupts a running one. ``elapsed`` is
    the seconds it has run; ``output`` the text it printed; ``run`` the
    :class:`~remote_magics.cells.runner.RunResult` once its names are in.
    """

    def __init__(self, target: Target, request: runner.Request, namespace: dict, *,
                 timeout: float | None, inputs: dict, shipped: list, quiet: bool) -> None:
        super().__init__()
        self.number = next(_numbers)
        self.target = target
        self.timeout = timeout
        self.quiet = quiet
        self.output = ""
        self.rich: list[dict] = []  # display_data bundles the cell showed
        self.run: runner.RunResult | None = None
        self.submitted = time.monotonic()
        self.started: float | None = None
        self.finished: float | None = None
        self._request: runner.Request | None = request
        self._namespace = namespace
        self._inputs = inputs  # holds the proxies the cell reads until the engine has them
        self._channels = shipped
        self._thread = threading.current_thread()
        self._apply_lock = threading.Lock()
        self._applied = False
        self._value: Any = None
        self._cancel_requested = False
        self._start_lock = threading.Lock()  # cancel() against the worker starting the job
        self._handles: list = []  # every display of the job, updated in place as it changes
        self._last_refresh = 0.0

    # --- the Future ----------------------------------------------------------------------
    # The Future stays PENDING while the job runs (``started`` says it runs), so that a running
    # job that is cancelled can still become CANCELLED through Future's own public methods.

    def running(self) -> bool:
        """Whether the job is running now."""
        return self.started is not None and not self.done()

    @property
    def elapsed(self) -> float:
        """Seconds the job has run (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    @property
    def status(self) -> str:
        """``queued``, ``running``, ``done``, ``failed`` or ``cancelled``."""
        if self.cancelled():
            return "cancelled"
        if not self.done():
            return "running" if self.running() else "queued"
        return "failed" if self.exception(0) is not None else "done"

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the cell; put its names into the namespace (once); return its value."""
        reply = super().result(timeout)
        with self._apply_lock:
            if not self._applied:
                if threading.current_thread() is not self._thread:
                    raise RuntimeError("call result() on the thread that submitted the job (the "
                                       "notebook's): it changes the notebook's namespace")
                run = runner.apply(reply, self.target, self._namespace)
                run.bytes_sent = reply.bytes_sent
                run.seconds = self.elapsed
                run.print_notes()
                self.run, self._value, self._applied = run, run.result, True
                self._namespace = None
                self._refresh(force=True)  # its displays no longer say ".result() brings..."
        return self._value

    def cancel(self) -> bool:
        """Cancel a queued job, or interrupt a running one; False once it has finished."""
        with self._start_lock:
            if self.done():
                return False
            if self.started is not None:  # running: the worker interrupts it, then cancels
                self._cancel_requested = True
                return True
            self._mark_cancelled()
        channels.finish(self._channels, concurrent.futures.CancelledError())
        self._refresh(force=True)
        return True

    def _mark_cancelled(self) -> None:
        """PENDING → CANCELLED, and tell whoever waits (``concurrent.futures.wait``) at once."""
        super().cancel()
        self.set_running_or_notify_cancel()

    def _start(self) -> bool:
        """The worker takes the job: False if it was cancelled while queued."""
        with self._start_lock:
            if self.cancelled():
                return False
            self.started = time.monotonic()
            return True

    # --- the worker's side ---------------------------------------------------------------

    def _on_output(self, msg: dict) -> None:
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "stream":
            self.output = (self.output + content.get("text", ""))[-OUTPUT_CHARS:]
        elif kind in ("display_data", "execute_result"):
            self.rich.append(content.get("data", {}))
        elif kind == "error":
            self.output += "\n".join(content.get("traceback", [])) + "\n"
        elif kind == "clear_output":
            self.output, self.rich = "", []
        self._refresh()

    def _refresh(self, force: bool = False) -> None:
        """Update the job's displays (throttled; at once when ``force``), wherever they are."""
        if not self._handles:
            return
        now = time.monotonic()
        if not force and now - self._last_refresh < REFRESH_INTERVAL:
            return
        self._last_refresh = now
        try:
            bundle = self._bundle()
            for handle in list(self._handles):
                handle.update(bundle, raw=True)
        except Exception:  # a display must never break the job
            log.debug("job display update failed", exc_info=True)

    def _show(self) -> None:
        self._ipython_display_()

    def _ipython_display_(self) -> None:
        """Display the job (``job`` as a cell's last line, ``display(job)``) and keep it current.

        Each display gets a display id, and every change of the job's status or output
        updates it in place, so a job shown while running does not stay "running".
        """
        from IPython.display import display

        handle = display(self._bundle(), raw=True, display_id=True)
        if handle is not None:
            self._handles.append(handle)

    def _bundle(self) -> dict:
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    # --- display ---------------------------------------------------------------------------

    def _headline(self) -> str:
        status = self.status
        where = f"job {self.number} on '{self.target.name}'"
        if status == "queued":
            return f"{where}: queued"
        if status == "failed":
            error = self.exception(0)
            what = f"{error.ename}: {error.evalue}" if isinstance(error, RemoteError) else \
                f"{type(error).__name__}: {error}"
            return f"{where}: failed after {self.elapsed:.1f} s ({what})"
        if status == "done" and not self._applied:
            return f"{where}: done in {self.elapsed:.1f} s; .result() brings its names back"
        return f"{where}: {status} {self.elapsed:.1f} s"

    def __repr__(self) -> str:
        lines = [f"<Job {self._headline()}>"]
        if self.output:
            lines.append(self.output.rstrip("\n"))
        lines.extend(f"[{next(iter(bundle), 'output')}]" for bundle in self.rich)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"running": "#1565c0", "queued": "#777", "done": "#2e7d32",
                  "failed": "#c62828", "cancelled": "#777"}[self.status]
        parts = [f"<div class='remote-magics-job'><b style='color:{colour}'>"
                 f"{html.escape(self._headline())}</b>"]
        if self.output:
            parts.append(f"<pre>{html.escape(self.output)}</pre>")
        parts.extend(_bundle_html(bundle) for bundle in self.rich)
        parts.append("</div>")
        return "".join(parts)


def _bundle_html(bundle: dict) -> str:
    if "text/html" in bundle:
        return str(bundle["text/html"])
    for mime in ("image/png", "image/jpeg"):
        if mime in bundle:
            data = bundle[mime]
            data = data if isinstance(data, str) else base64.b64encode(data).decode()
            return f"<img src='data:{mime};base64,{data}'/>"
    if "image/svg+xml" in bundle:
        return str(bundle["image/svg+xml"])
    return f"<pre>{html.escape(str(bundle.get('text/plain', '')))}</pre>"


class JobQueue:
    """One target's jobs, and the thread that runs them in order, with a connection of its own.

    It is the target's ``job_queue``: the target asks it whether it is busy and waits on it.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.queue: queue.Queue = queue.Queue()
        self.jobs: list[Job] = []  # submitted and not finished, in order
        self.connection: Connection | None = None
        self._main: Connection | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True,
                                       name=f"remote_magics-jobs-{target.name}")
        self.thread.start()

    def add(self, job: Job) -> None:
        with _lock:
            self.jobs.append(job)
        self.queue.put(job)

    def unfinished(self) -> list[Job]:
        with _lock:
            return [job for job in self.jobs if not job.done()]

    def wait(self, quiet: bool = False) -> None:
        """Wait until the queued and running jobs have finished, saying so unless ``quiet``."""
        ahead = self.unfinished()
        if not ahead:
            return
        if not quiet:
            numbers = ", ".join(str(job.number) for job in ahead)
            display.note(f"remote_magics: target '{self.target.name}' is busy with job "
                         f"{numbers}; waiting for its turn")
        concurrent.futures.wait(ahead)
        self._drop_stale_output()

    def _drop_stale_output(self) -> None:
        """Discard what the idle main connection's iopub queued while jobs ran (their output).

        The main connection subscribes to all of iopub, so a job's output and channel messages
        pile up there too; nothing waits on them (late output of the main connection's own
        requests is kept). Called on the notebook's thread between requests.
        """
        self.target.connection.drain_iopub()

    def stop(self, timeout: float = 10.0) -> None:
        self.queue.put(None)
        self.thread.join(timeout)

    def _loop(self) -> None:
        mark_job_thread(self)
        try:
            while True:
                try:
                    job = self.queue.get(timeout=IDLE_CHECK)
                except queue.Empty:
                    if self.target.connection.closed:
                        return
                    continue
                if job is None:
                    return
                try:
                    self._run(job)
                finally:
                    with _lock:
                        if job in self.jobs:
                            self.jobs.remove(job)
        finally:
            with _lock:
                if self.target.job_queue is self:
                    self.target.job_queue = None
            for job in self.unfinished():  # the target went away with jobs still queued
                job.cancel()
            if self.connection is not None:
                self.connection.close()

    def _connect(self) -> Connection:
        main = self.target.connection
        if self.connection is not None and self._main is main and not self.connection.closed:
            return self.connection
        if self.connection is not None:
            self.connection.close()
        conn = main.twin()  # the same client for the engine's store
        if not conn.wait_ready(30.0):
            conn.close()
            raise ConnectionLost(f"target '{main.name}' did not answer the job's connection")
        self.connection, self._main = conn, main
        return conn

    def _run(self, job: Job) -> None:
        if not job._start():
            return
        job._refresh(force=True)
        error: BaseException | None = None
        reply = None
        try:
            conn = self._connect()
            request, job._request = job._request, None
            pending = conn.start(protocol.RUN_REQUEST, request.content, request.frames,
                                 timeout=job.timeout, on_output=job._on_output)
            del request
            self._wait(pending, job)
            reply = pending.result()
        except BaseException as err:  # kept on the job; the worker goes on with the next one
            error = err
        job.finished = time.monotonic()
        job._inputs = {}
        if isinstance(error, RemoteKernelDied):
            self.target.mark_lost(error)
        if error is None and reply.content.get("status") != "ok":
            error = RemoteError.from_reply(reply.content, self.target.name)
        channels.finish(job._channels, error)
        if job._cancel_requested and error is not None:
            job._mark_cancelled()
        elif error is not None:
            job.set_exception(error)
        else:
            job.set_result(reply)
        job._refresh(force=True)

    def _wait(self, pending: Pending, job: Job) -> None:
        conn = pending.conn
        poller = zmq.Poller()
        for sock in (conn.shell, conn.iopub, conn.hb):
            poller.register(sock, zmq.POLLIN)
        interrupted = False
        while not pending.finished:
            if job._cancel_requested and not interrupted:
                interrupted = True
                try:
                    pending.interrupt()
                except KeyboardInterrupt:
                    pass
            ready = dict(poller.poll(min(pending.waiter.poll_ms(), _CANCEL_POLL_MS)))
            pending.advance(ready)


def submit(target: Target, code: str, namespace: dict, *, download: str = "small",
           bytes: int = protocol.DEFAULT_BYTES, timeout: float | None = None, hidden: dict | None = None,
           cell_id: int | None = None, show: bool = False, quiet: bool = False) -> Job:
    """Queue ``code`` to run on ``target`` after the jobs before it; return its :class:`Job` at once.

    The names the cell reads are pickled now (a :class:`SerializationError` is raised here).
    With ``show``, the job displays itself and keeps that display up to date.
    """
    protocol.check_download(download)
    target.check_usable()
    for hook in list(target.before_run):
        hook(target)
    target.runs += 1
    with channels.shipping() as shipped:
        request = runner.prepare(code, namespace, target, download=download, limit=int(bytes),
                                 hidden=hidden or {}, cell_id=cell_id or target.runs)
    target.flush_releases()
    inputs = {name: namespace[name] for name in request.cell.reads if name in namespace}
    job = Job(target, request, namespace, timeout=timeout, inputs=inputs, shipped=shipped,
              quiet=quiet)
    if show:
        job._show()
    queue_of(target).add(job)
    return job


def queue_of(target: Target) -> JobQueue:
    """The target's job queue, started at its first job (again after its thread ended)."""
    with _lock:
        found = target.job_queue
        if not isinstance(found, JobQueue) or not found.thread.is_alive():
            found = target.job_queue = JobQueue(target)
            _queues.add(found)
        return found


def shutdown(target: Target | None = None, timeout: float = 10.0) -> None:
    """Stop the job threads (of ``target``, or all), after their current jobs."""
    with _lock:
        queues = [q for q in _queues if target is None or q.target is target]
    for each in queues:
        each.stop(timeout)
