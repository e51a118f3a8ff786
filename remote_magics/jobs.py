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

``%%remote --detach`` makes a :class:`DetachedJob` instead (:func:`detach`): the cell runs in
the engine, on a thread of its own (:mod:`remote_magics.engine.jobs`), and keeps running when
this notebook goes away; on a persistent engine (``--persist``) a new notebook reconnects and
gets it back with ``target.job(number)`` (``%remote_job N``). It is a Future too, with the
same display. Its :class:`JobOutput` replays what the job printed and follows the rest; a
:class:`JobWatcher` per target (a thread with a connection of its own) asks the engine for
the new output on the control channel, which is answered while the engine runs other cells.
Plain cells do not wait for detached jobs: they run beside them in the engine.
"""
from __future__ import annotations

import base64
import bisect
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
from .errors import ConnectionLost, JobError, RemoteError, RemoteKernelDied
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
#: Seconds between two looks at a detached job's new output: the first while output comes,
#: doubling up to the second while it does not.
FOLLOW_FAST = 0.2
FOLLOW_SLOW = 2.0
#: A detached job's statuses once it has ended.
FINAL = ("done", "failed", "cancelled")

_queues: "weakref.WeakSet[JobQueue]" = weakref.WeakSet()
_lock = threading.Lock()
_numbers = iter(range(1, sys.maxsize))


class JobDisplay:
    """The display of a job (text and HTML): its headline, what it printed and displayed.

    Shown under the cell that started the job (:meth:`_show`) and updated there as it goes
    (:meth:`_refresh`), whatever cell runs now. A job gives :meth:`shown_text`,
    :meth:`shown_bundles`, and ``number``, ``target``, ``status``, ``elapsed``, ``_applied``.
    """

    label = "job"
    _last_refresh = 0.0

    def shown_text(self) -> str:
        raise NotImplementedError

    def shown_bundles(self) -> list[dict]:
        raise NotImplementedError

    @property
    def _handles(self) -> list:
        """The displays of this job, each updated in place as it changes."""
        return self.__dict__.setdefault("_display_handles", [])

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

    def _headline(self) -> str:
        status = self.status
        where = f"{self.label} {self.number} on '{self.target.name}'"
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
        lines = [f"<{type(self).__name__} {self._headline()}>"]
        text = self.shown_text()
        if text:
            lines.append(text.rstrip("\n"))
        lines.extend(f"[{next(iter(bundle), 'output')}]" for bundle in self.shown_bundles())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"running": "#1565c0", "queued": "#777", "done": "#2e7d32",
                  "failed": "#c62828", "cancelled": "#777"}[self.status]
        parts = [f"<div class='remote-magics-job'><b style='color:{colour}'>"
                 f"{html.escape(self._headline())}</b>"]
        text = self.shown_text()
        if text:
            parts.append(f"<pre>{html.escape(text)}</pre>")
        parts.extend(_bundle_html(bundle) for bundle in self.shown_bundles())
        parts.append("</div>")
        return "".join(parts)


class Job(JobDisplay, concurrent.futures.Future):
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
        self._held = request.held  # what comes back refers to these, even if names moved on
        self._sent = request.sent
        self._channels = shipped
        self._thread = threading.current_thread()
        self._apply_lock = threading.Lock()
        self._applied = False
        self._value: Any = None
        self._cancel_requested = False
        self._start_lock = threading.Lock()  # cancel() against the worker starting the job
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
                run = runner.apply(reply, self.target, self._namespace, self._held,
                                   self._sent)
                run.bytes_sent = reply.bytes_sent
                run.seconds = self.elapsed
                run.print_notes()
                self.run, self._value, self._applied = run, run.result, True
                self._namespace = self._sent = None  # what the request pickled: let go
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

    # --- what its display shows ------------------------------------------------------------

    def shown_text(self) -> str:
        return self.output

    def shown_bundles(self) -> list[dict]:
        return self.rich


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
    with channels.shipping() as shipped:
        request = target.prepare_run(code, namespace, download=download, bytes=bytes,
                                     hidden=hidden, cell_id=cell_id, wait_for_jobs=False)
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


# --- detached jobs ----------------------------------------------------------------------------


class JobOutput:
    """What a detached job printed: what it printed so far, then the rest as it comes.

    ``str(output)`` is the text so far. Iterating gives its lines (without their newlines):
    those so far, then each new one as the job prints it, until the job ends. In a notebook,
    showing it (``job.output`` as a cell's last line, or :meth:`follow`) prints them the same
    way, with what the job displayed; the stop button stops following, and the job runs on.
    The engine keeps a job's newest lines only (``%config RemoteMagics.job_output_lines``);
    where older ones were dropped, the text and the lines say how many.
    """

    def __init__(self, job: "DetachedJob", limit: int) -> None:
        self.job = job
        self.limit = max(int(limit), 1)
        self._entries: list[tuple[int, str, Any]] = []  # (seq, kind, payload), by seq
        self._cond = threading.Condition()
        self.next = 0  # the seq of the next entry to ask the engine for
        self.partial: dict[str, str] = {}
        self.finished = False

    @property
    def dropped(self) -> int:
        """How many lines were dropped before the oldest one kept."""
        with self._cond:
            return self._entries[0][0] if self._entries else self.next

    def _take(self, reply: dict) -> bool:
        """The engine's answer to a look (on the watcher's thread); whether it brought anything."""
        with self._cond:
            entries = [tuple(entry) for entry in reply.get("entries", ()) if entry[0] >= self.next]
            self._entries.extend(entries)
            if len(self._entries) > 2 * self.limit:  # the engine's bound, kept here too
                del self._entries[:-self.limit]
            changed = bool(entries) or reply.get("partial", {}) != self.partial
            self.next = max(self.next, int(reply.get("next", self.next)))
            self.partial = dict(reply.get("partial") or {})
            self._cond.notify_all()
        return changed

    def _finish(self) -> None:
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    @staticmethod
    def _notice(count: int) -> str:
        return (f"[remote_magics: {count} earlier line{'s' if count != 1 else ''} dropped; the "
                "engine keeps a job's newest lines]")

    def _follow(self, wait: bool = True):
        """(kind, payload) from the first entry: "stdout", "stderr", "display", or "dropped"
        (payload: how many), until the job ends (or, without ``wait``, until what is here)."""
        position = 0
        while True:
            with self._cond:
                while True:
                    index = bisect.bisect_left(self._entries, position, key=lambda entry: entry[0])
                    if index < len(self._entries) or self.finished or not wait:
                        break
                    self._cond.wait()
                batch = self._entries[index:]
            if not batch:
                return
            for seq, kind, payload in batch:
                if seq > position:
                    yield "dropped", seq - position
                position = seq + 1
                yield kind, payload

    def __iter__(self):
        self.job.follow()
        for kind, payload in self._follow():
            if kind == "dropped":
                yield self._notice(payload)
            elif kind != "display":
                yield payload[:-1] if payload.endswith("\n") else payload

    @property
    def text(self) -> str:
        """What the job printed so far, with a line where older lines were dropped."""
        parts = []
        for kind, payload in self._follow(wait=False):
            if kind == "dropped":
                parts.append(self._notice(payload) + "\n")
            elif kind == "display":
                parts.append(f"[{next(iter(payload), 'output')}]\n")
            else:
                parts.append(payload)
        with self._cond:
            parts.extend(self.partial.values())
        return "".join(parts)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def follow(self) -> None:
        """Show what the job printed so far, then the rest as it comes, until it ends.

        In a notebook it goes under the running cell, displays included. The stop button
        stops following; the job runs on.
        """
        from IPython.display import publish_display_data

        self.job.follow()
        try:
            for kind, payload in self._follow():
                if kind == "dropped":
                    print(self._notice(payload), file=sys.stderr, flush=True)
                elif kind == "display":
                    publish_display_data(payload)
                else:
                    stream = sys.stderr if kind == "stderr" else sys.stdout
                    stream.write(payload)
                    stream.flush()
        except KeyboardInterrupt:
            print(f"\nremote_magics: stopped following {self.job.label} {self.job.number}; it "
                  "runs on in the engine", file=sys.stderr)
            return
        if self.job.lost is not None:
            print(f"remote_magics: {self.job.lost}", file=sys.stderr)

    def _ipython_display_(self) -> None:
        self.follow()


class DetachedJob(JobDisplay, concurrent.futures.Future):
    """A ``%%remote --detach`` job: it runs in the engine, whether or not this notebook does.

    A Future of the cell's value, like :class:`Job`: ``done()``, ``result(timeout)`` (waits,
    then brings the job's names into the namespace by the job's download policy, once, and
    returns its last value; the engine then releases them), ``cancel()`` (a queued job never
    runs; a running one gets KeyboardInterrupt at its next Python line), ``status``,
    ``elapsed``. ``number`` is its id in the engine (``%remote_jobs``, ``%remote_job N``,
    ``target.job(N)``); ``output`` is its :class:`JobOutput`; ``info`` the engine's last word
    on it (a JobInfo of :mod:`remote_magics.wire.protocol`). When the connection goes, the
    Future fails with :class:`JobError`; the job runs on, and reconnecting gets it back.
    """

    label = "detached job"

    def __init__(self, target: Target, info: dict, namespace: dict | None) -> None:
        super().__init__()
        self.number = int(info["id"])
        self.target = target
        self.info = info
        self.output = JobOutput(self, info.get("output_lines") or protocol.JOB_OUTPUT_LINES)
        self.run: runner.RunResult | None = None
        self.lost: str | None = None  # why we stopped following it
        self._namespace = namespace
        self._thread = threading.current_thread()
        self._apply_lock = threading.Lock()
        self._applied = False  # its names are in this notebook
        self._value: Any = None
        self._seen = time.monotonic()  # when ``info`` came

    @property
    def first_line(self) -> str:
        return self.info.get("first_line", "")

    @property
    def status(self) -> str:
        """``queued``, ``running``, ``done``, ``failed`` or ``cancelled``."""
        return "cancelled" if self.cancelled() else self.info["status"]

    @property
    def elapsed(self) -> float:
        """Seconds the job has run (0 while queued)."""
        elapsed = float(self.info.get("elapsed") or 0.0)
        if self.info["status"] == "running" and not self.done():
            elapsed += time.monotonic() - self._seen
        return elapsed

    def running(self) -> bool:
        return self.info["status"] == "running" and not self.done()

    def follow(self) -> "DetachedJob":
        """Keep ``output`` and ``status`` up to date from the engine until the job ends."""
        if not self.done():
            watcher_of(self.target).add(self)
        return self

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job; bring its names into the namespace (once); return its value."""
        self.follow()
        super().result(timeout)
        with self._apply_lock:
            if not self._applied:
                if threading.current_thread() is not self._thread:
                    raise RuntimeError("call result() on the thread that made the job (the "
                                       "notebook's): it changes the notebook's namespace")
                namespace = self._namespace if self._namespace is not None else {}
                run = self.target.collect_job(self.number, namespace)
                run.seconds = self.elapsed
                run.print_notes()
                self.run, self._value, self._applied = run, run.result, True
                self._namespace = None
                self.info = dict(self.info, collected=True)
                self._refresh(force=True)
        return self._value

    def cancel(self) -> bool:
        """Cancel the job in the engine if it is queued or running; False once it has ended."""
        if self.done():
            return False
        reply = self.target.control_request(protocol.JOB_CANCEL_REQUEST, {"job": self.number})
        if reply["job"]["status"] in FINAL:
            self._end(reply["job"])
        watcher_of(self.target).wake.set()  # the next look comes now
        return bool(reply["cancelled"])

    def _mark_cancelled(self) -> None:
        super().cancel()
        self.set_running_or_notify_cancel()

    # --- the watcher's side --------------------------------------------------------------

    def _take(self, reply: dict) -> bool:
        """One look at the engine's job: its new output and status. Whether anything came."""
        changed = self.output._take(reply)
        self.info, self._seen = reply["job"], time.monotonic()
        if self.info["status"] in FINAL and not reply.get("more"):
            self._end(self.info)
        self._refresh()
        return changed

    def _end(self, info: dict) -> None:
        """The job has ended: the Future says how."""
        with self._apply_lock:
            if self.done():
                return
            self.info = info
            if info["status"] == "done":
                self.set_result(None)  # result() collects the names on the notebook's thread
            elif info["status"] == "failed":
                self.set_exception(RemoteError.from_reply(info.get("error") or {},
                                                          self.target.name))
            else:
                self._mark_cancelled()
        self.output._finish()
        self._refresh(force=True)

    def _lose(self, error: BaseException) -> None:
        """We can no longer follow the job (the connection went); it may run on."""
        with self._apply_lock:
            if self.done():
                return
            self.lost = (f"lost track of {self.label} {self.number} on '{self.target.name}' "
                         f"({type(error).__name__}: {error}). If its engine is alive the job runs "
                         f"on: reconnect (%remote_connect ... --name {self.target.name} --persist)"
                         f" and get it back with %remote_job {self.number}.")
            self.set_exception(JobError(self.lost))
        self.output._finish()
        self._refresh(force=True)

    # --- display ---------------------------------------------------------------------------

    def _headline(self) -> str:
        if self.lost is not None:
            return (f"{self.label} {self.number} on '{self.target.name}': not followed any more "
                    f"(the connection went; it was {self.info['status']}); if its engine is "
                    f"alive it runs on: reconnect, then %remote_job {self.number}")
        if self.status == "done" and self.info.get("collected") and not self._applied:
            return (f"{self.label} {self.number} on '{self.target.name}': done in "
                    f"{self.elapsed:.1f} s; its names were collected elsewhere")
        return super()._headline()

    def shown_text(self) -> str:
        return self.output.text[-OUTPUT_CHARS:]

    def shown_bundles(self) -> list[dict]:
        return [payload for kind, payload in self.output._follow(wait=False)
                if kind == "display"][-10:]


class JobWatcher:
    """Follows one target's detached jobs: a thread with a connection of its own.

    It asks the engine for each job's new output (``remote_job_output_request``, on the
    control channel) while output comes, less often while it does not, and stops when no job
    it follows is unfinished. When the target's connection goes, its jobs fail with
    :class:`JobError` (they may run on).
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.jobs: list[DetachedJob] = []
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def add(self, job: DetachedJob) -> None:
        with self.lock:
            if job not in self.jobs:
                self.jobs.append(job)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, daemon=True,
                                               name=f"remote_magics-follow-{self.target.name}")
                self.thread.start()
        self.wake.set()

    def _loop(self) -> None:
        conn: Connection | None = None
        main: Connection | None = None
        interval = FOLLOW_FAST
        try:
            while True:
                with self.lock:
                    self.jobs = [job for job in self.jobs if not job.done()]
                    if not self.jobs:
                        self.thread = None
                        return
                    jobs = list(self.jobs)
                if self.target.connection is not main:  # the first look, or a restarted target
                    if conn is not None:
                        conn.close()
                    main = self.target.connection
                    conn = main.twin()  # the control channel only: no handshake needed
                changed = False
                for job in jobs:
                    try:
                        changed |= self._look(job, conn)
                    except JobError as err:  # this job only (say, a new engine lacks it)
                        job._lose(err)
                interval = FOLLOW_FAST if changed else min(interval * 2, FOLLOW_SLOW)
                self.wake.wait(interval)
                self.wake.clear()
        except BaseException as err:  # the target went: every job it followed is lost
            with self.lock:
                jobs, self.jobs, self.thread = self.jobs, [], None
            for job in jobs:
                job._lose(err)
        finally:
            if conn is not None:
                conn.close()

    def _look(self, job: DetachedJob, conn: Connection) -> bool:
        changed = False
        while True:
            reply = self.target.control_request(
                protocol.JOB_OUTPUT_REQUEST, {"job": job.number, "since": job.output.next},
                connection=conn)
            changed |= job._take(reply)
            if not reply.get("more"):
                return changed


_watchers: "weakref.WeakKeyDictionary[Target, JobWatcher]" = weakref.WeakKeyDictionary()


def watcher_of(target: Target) -> JobWatcher:
    """The target's :class:`JobWatcher`."""
    with _lock:
        watcher = _watchers.get(target)
        if watcher is None:
            watcher = _watchers[target] = JobWatcher(target)
        return watcher


def detach(target: Target, code: str, namespace: dict, *, download: str = "small",
           bytes: int = protocol.DEFAULT_BYTES, hidden: dict | None = None,
           cell_id: int | None = None, save: bool = False,
           output_lines: int = protocol.JOB_OUTPUT_LINES, show: bool = False,
           quiet: bool = False) -> DetachedJob:
    """Run ``code`` on ``target`` as a detached job; return its :class:`DetachedJob` at once.

    The names the cell reads are pickled now and are in the engine when this returns (after
    the target's ``--async`` jobs). ``save`` (a persistent target only) writes the names it
    binds to disk on the engine's host when it finishes. The engine keeps the newest
    ``output_lines`` lines of its output. With ``show``, the job displays itself here and keeps
    that display up to date.
    """
    if save and target.persistent is None:
        raise JobError(f"--save needs a persistent target, and '{target.name}' is not one: "
                       "connect with --persist (its engine then keeps saved results where a "
                       "new engine finds them after a crash)")
    request = target.prepare_run(code, namespace, download=download, bytes=bytes,
                                 hidden=hidden, cell_id=cell_id)
    content = dict(request.content, save=bool(save), output_lines=int(output_lines))
    reply = target.request(protocol.DETACH_REQUEST, content, request.frames)
    if reply.content.get("status") != "ok":
        raise RemoteError.from_reply(reply.content, target.name)
    job = DetachedJob(target, reply.content["job"], namespace)
    if target.owned and not quiet:
        print(f"remote_magics: {job.label} {job.number} ends with target '{target.name}', "
              "whose engine ends with this notebook; connect with --persist for jobs that "
              "outlive it", file=sys.stderr)
    if show:
        job._show()
    return job.follow()


def job_of(target: Target, number: int, namespace: dict | None = None) -> DetachedJob:
    """The engine's detached job ``number``, followed from now on (:meth:`Target.job`)."""
    infos = {info["id"]: info for info in target.detached_jobs()}
    if int(number) not in infos:
        raise JobError(f"target '{target.name}' has no detached job {number}"
                       + (f"; its jobs are {', '.join(map(str, infos))}" if infos else "")
                       + " (%remote_jobs lists them)")
    if namespace is None:
        namespace = _notebook_namespace()
    return DetachedJob(target, infos[int(number)], namespace).follow()


def _notebook_namespace() -> dict | None:
    """The running IPython shell's namespace, if there is one."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell.user_ns if shell is not None else None


Target.make_job = job_of
