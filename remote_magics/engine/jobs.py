"""Detached jobs, engine side: cells that run on a thread of the engine and wait to be collected.

``%%remote --detach`` sends a ``remote_detach_request``: the engine reads the cell's inputs at
once, queues the job and answers with its id. One thread of the engine (:class:`JobTable`) runs
the jobs one after another, beside what its main thread runs (cells, live proxies, other
clients' requests), so a notebook that reconnects is answered while a job runs for hours.
Each :class:`Job` keeps, whether or not any client is connected:

- its output (:class:`JobOutput`): what it printed, line by line, and what it displayed; the
  newest ``output_lines`` entries, and how many older ones were dropped;
- its status, its times, and its error if it failed;
- the names it bound and its last value, until a client collects them; with ``save``, also on
  disk (:meth:`~.persist.StateDir.save_job`) before it reports "done", so that an engine that
  crashes afterwards loses nothing.

A job's prints reach its output because ``sys.stdout`` and ``sys.stderr`` become
:class:`RoutedStream`: a write from a job's thread goes to that job, any other to the kernel's
stream as before. Its ``display()`` calls reach it through a hook of the display publisher.
Cancelling a running job raises KeyboardInterrupt in its thread at its next Python line (a long
call into C finishes first). Listing, output and cancelling come on the control channel, served
by its own thread; submitting and collecting on the shell. Shipped: standard library only.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import threading
import time
from typing import Any

from ..wire import protocol, serialize
from . import tracebacks

#: Characters of output a job keeps at most (its newest), whatever its bound in lines.
OUTPUT_CHARS = 16 << 20
#: Characters of a line still without its newline after which it is kept as an entry anyway.
PARTIAL_CHARS = 1 << 16
#: Entries, and characters, one output reply carries at most; the client asks again for more.
REPLY_ENTRIES = 5_000
REPLY_CHARS = 4 << 20
#: Characters of a job's first line that its listing shows.
FIRST_LINE_CHARS = 80

_thread_output = threading.local()  # .output: the JobOutput of the job the calling thread runs


def _size(payload: Any) -> int:
    if isinstance(payload, str):
        return len(payload)
    return sum(len(value) if isinstance(value, str) else 64 for value in payload.values())


class JobOutput:
    """What a job printed (lines of stdout and stderr) and displayed: the newest ``lines`` entries.

    Every entry gets the next sequence number; the entries before :attr:`first` were dropped
    to keep the bound (also a bound of :data:`OUTPUT_CHARS` characters). Text after the last
    newline of a stream waits in :attr:`partial` until its line ends.
    """

    def __init__(self, lines: int = protocol.JOB_OUTPUT_LINES) -> None:
        self.limit = max(int(lines), 1)
        self.entries: collections.deque[tuple[int, str, Any]] = collections.deque()
        self.first = 0  # the sequence number of the oldest entry kept: as many were dropped
        self.next = 0
        self.chars = 0
        self.partial = {"stdout": "", "stderr": ""}
        self.lock = threading.Lock()

    def write(self, stream: str, text: str) -> None:
        """``text`` printed on ``stream`` ("stdout" or "stderr")."""
        with self.lock:
            pending = self.partial[stream] + text
            start = 0
            while (end := pending.find("\n", start)) >= 0:
                self._add(stream, pending[start:end + 1])
                start = end + 1
            rest = pending[start:]
            if len(rest) > PARTIAL_CHARS:
                self._add(stream, rest)
                rest = ""
            self.partial[stream] = rest

    def display(self, bundle: dict) -> None:
        """A MIME bundle the job displayed."""
        with self.lock:
            self._add("display", bundle)

    def close(self) -> None:
        """The job has ended: text still without a newline becomes an entry."""
        with self.lock:
            for stream, rest in self.partial.items():
                if rest:
                    self._add(stream, rest)
                self.partial[stream] = ""

    def _add(self, kind: str, payload: Any) -> None:
        self.entries.append((self.next, kind, payload))
        self.next += 1
        self.chars += _size(payload)
        while len(self.entries) > self.limit or (self.chars > OUTPUT_CHARS and len(self.entries) > 1):
            _, _, dropped = self.entries.popleft()
            self.first += 1
            self.chars -= _size(dropped)

    def read(self, since: int) -> dict:
        """The entries from ``since`` on (those still kept), as a ``remote_job_output_reply`` has them."""
        with self.lock:
            start = max(int(since), self.first)
            entries, chars = [], 0
            for seq, kind, payload in list(self.entries)[start - self.first:]:
                if entries and (len(entries) >= REPLY_ENTRIES or chars > REPLY_CHARS):
                    break
                entries.append([seq, kind, payload])
                chars += _size(payload)
            upto = entries[-1][0] + 1 if entries else max(start, self.next)
            more = upto < self.next
            return {"entries": entries, "first": self.first, "next": upto, "more": more,
                    "partial": {} if more else dict(self.partial)}


class RoutedStream:
    """``sys.stdout`` or ``sys.stderr`` once jobs run: a job thread's writes go to its job."""

    def __init__(self, name: str, original: Any) -> None:
        self.name = name
        self.original = original

    def write(self, text: str) -> int:
        output = getattr(_thread_output, "output", None)
        if output is None:
            return self.original.write(text)
        output.write(self.name, str(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if getattr(_thread_output, "output", None) is None:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:  # everything else is the kernel's stream's
        return getattr(self.original, name)


def route_streams() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` :class:`RoutedStream` (once)."""
    import sys

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RoutedStream):
            setattr(sys, name, RoutedStream(name, stream))


class Job:
    """One detached job: its cell, its output, its status, and its names until collected."""

    def __init__(self, job_id: int, content: dict, namespace: dict | None) -> None:
        self.id = job_id
        self.content = content
        lines = [line.strip() for line in content.get("code", "").splitlines() if line.strip()]
        self.first_line = (lines[0] if lines else "")[:FIRST_LINE_CHARS]
        self.namespace = namespace
        self.value: Any = None
        # the kept containers it was sent (kept.RunKeeper.containers): a member of one that
        # comes back is the notebook's own, as for a run
        self.containers: list = []
        self.status = "queued"
        self.submitted = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.save = bool(content.get("save"))
        self.saved = False
        self.unsaved: list[str] = []
        self.saved_record: dict | None = None  # read back from disk by a new engine
        self.collected = False
        self.error: dict | None = None
        self.output = JobOutput(content.get("output_lines") or protocol.JOB_OUTPUT_LINES)
        self.thread_id: int | None = None
        self.in_cell = False  # its cell's code runs now: a cancel interrupts it
        self.cancel_requested = False

    @classmethod
    def from_saved(cls, record: dict) -> "Job":
        """A job that a previous engine under the same name finished and saved."""
        info = record["info"]
        job = cls(info["id"], record.get("content", {}), None)
        job.first_line = info.get("first_line", "")
        job.status, job.submitted = "done", info.get("submitted") or time.time()
        job.started, job.finished = info.get("started"), info.get("finished")
        job.save = job.saved = True
        job.unsaved = list(info.get("unsaved", ()))
        job.saved_record = record
        return job

    def info(self) -> dict:
        """The JobInfo of :mod:`remote_magics.wire.protocol`."""
        elapsed = 0.0
        if self.started is not None:
            elapsed = (self.finished or time.time()) - self.started
        error = None
        if self.error is not None:
            error = {key: self.error.get(key) for key in ("ename", "evalue", "etype", "traceback")}
        return {"id": self.id, "first_line": self.first_line, "status": self.status,
                "submitted": self.submitted, "started": self.started, "finished": self.finished,
                "elapsed": round(elapsed, 3), "save": self.save, "saved": self.saved,
                "unsaved": self.unsaved, "collected": self.collected, "dropped": self.output.first,
                "lines": len(self.output.entries), "output_lines": self.output.limit,
                "error": error}


class JobError(Exception):
    """A job that is not there, not finished, or already collected."""


class JobTable:
    """The engine's detached jobs, by id, and the thread that runs them one after another."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.lock = threading.Condition()
        self.jobs: dict[int, Job] = {}
        self.queue: collections.deque[Job] = collections.deque()
        self.thread: threading.Thread | None = None
        self.next_id = 1
        self.state: Any = None  # the persist.StateDir that saved results go to

    def adopt(self, state: Any) -> None:
        """Save results under ``state`` from now on; list the jobs saved there before."""
        with self.lock:
            self.state = state
            for record in state.saved_jobs():
                job = Job.from_saved(record)
                self.jobs.setdefault(job.id, job)
                self.next_id = max(self.next_id, job.id + 1)

    def active(self) -> bool:
        """Whether a job is queued or running."""
        with self.lock:
            return bool(self.queue) or any(job.status == "running" for job in self.jobs.values())

    def get(self, job_id: Any) -> Job:
        try:
            return self.jobs[int(job_id)]
        except (KeyError, TypeError, ValueError):
            raise JobError(f"this engine has no job {job_id}; %remote_jobs lists its jobs") from None

    def infos(self) -> list[dict]:
        with self.lock:
            return [job.info() for _, job in sorted(self.jobs.items())]

    def submit(self, content: dict, namespace: dict, containers: list = ()) -> Job:
        """Queue a cell whose inputs are already in ``namespace`` (``containers``: the kept
        containers among them, :attr:`Job.containers`)."""
        if content.get("save") and self.state is None:
            raise JobError("--save needs a persistent engine (one connected with --persist): "
                           "only it has a place on disk that a new engine finds after a crash")
        route_streams()
        with self.lock:
            job = Job(self.next_id, content, namespace)
            job.containers = list(containers)
            self.next_id += 1
            self.jobs[job.id] = job
            self.queue.append(job)
            if self.thread is None:
                self.thread = threading.Thread(target=self._work, daemon=True,
                                               name="remote_magics-detached-jobs")
                self.thread.start()
            self.lock.notify_all()
        return job

    def cancel(self, job_id: Any) -> bool:
        """Drop a queued job, or interrupt a running one; False once it has ended."""
        with self.lock:
            job = self.get(job_id)
            if job.status == "queued":
                self.queue.remove(job)
                job.status, job.finished = "cancelled", time.time()
                job.namespace, job.containers = None, []
                return True
            if job.status != "running":
                return False
            job.cancel_requested = True
            if job.in_cell and job.thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(job.thread_id),
                                                           ctypes.py_object(KeyboardInterrupt))
            return True

    def collect(self, job_id: Any, client: str) -> tuple[dict, list]:
        """A finished job's names encoded for ``client`` (a run reply and its frames); then released."""
        with self.lock:
            job = self.get(job_id)
            if job.status in ("queued", "running"):
                raise JobError(f"job {job.id} is still {job.status}")
            if job.collected:
                raise JobError(f"job {job.id}'s results were collected already (they are "
                               "released once collected)")
            job.collected = True  # claimed: a second client asking now is told so
        try:
            if job.status == "failed":
                return dict(job.error), []
            if job.status == "cancelled":
                return {"status": "error", "ename": "KeyboardInterrupt",
                        "evalue": f"job {job.id} was cancelled", "etype": "builtins.KeyboardInterrupt",
                        "traceback": [], "outputs": [], "result": None, "deleted": []}, []
            namespace, value = job.namespace, job.value
            if namespace is None:  # saved by an engine that has ended since
                namespace, value = self.state.load_job(job.id, job.saved_record)
            reply, frames = self.engine.outputs(job.content, namespace, value, client,
                                                containers=job.containers)
        except BaseException:
            job.collected = False
            raise
        job.namespace = job.value = job.saved_record = None
        job.containers = []
        if job.saved and self.state is not None:
            self.state.drop_job(job.id)
        return reply, frames

    # --- the jobs' thread ----------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self.lock:
                while not self.queue:
                    self.lock.wait()
                job = self.queue.popleft()
                job.status, job.started = "running", time.time()
                job.thread_id = threading.get_ident()
            try:
                self._run(job)
            except BaseException as err:  # the thread goes on with the next job whatever happens
                if job.status == "running":
                    self._finish(job, None, err)

    def _run(self, job: Job) -> None:
        engine = self.engine
        value, error = None, None
        _thread_output.output = job.output
        publisher = getattr(getattr(engine.kernel, "shell", None), "display_pub", None)
        hook = _display_hook(job.output, threading.current_thread())
        if hasattr(publisher, "register_hook"):
            publisher.register_hook(hook)
        try:
            try:
                with self.lock:
                    if job.cancel_requested:
                        raise KeyboardInterrupt
                    job.in_cell = True
                value, error = asyncio.run(_cell(engine, job.content, job.namespace))
            except BaseException as err:
                error = err
            finally:
                with self.lock:
                    job.in_cell = False
            engine.flush_figures()
        except KeyboardInterrupt as err:  # a cancel that came just as the cell ended
            error = error or err
        finally:
            if hasattr(publisher, "unregister_hook"):
                publisher.unregister_hook(hook)
            _thread_output.output = None
            job.output.close()
        self._finish(job, value, error)

    def _finish(self, job: Job, value: Any, error: BaseException | None) -> None:
        if error is None:
            namespace = job.namespace or {}
            names = {name: namespace[name] for name in job.content.get("outputs", ())
                     if name in namespace}
            job.namespace, job.value = names, value
            if job.save and self.state is not None:
                job.finished = time.time()
                try:
                    job.unsaved = self.state.save_job(job.id, dict(job.info(), status="done"),
                                                      names, value, job.content)
                    job.saved = True
                except Exception as err:  # a full disk: the names stay in memory, unsaved
                    self.engine.kernel.log.error("remote_magics: job %s not saved: %s", job.id, err)
                    job.unsaved = [*names, *(["Out"] if value is not None else [])]
            status = "done"
        elif job.cancel_requested and isinstance(error, KeyboardInterrupt):
            job.namespace, job.containers, status = None, [], "cancelled"
        else:
            job.namespace, job.containers, status = None, [], "failed"
            job.error = self.engine.error_content(error)
        with self.lock:
            job.status, job.finished = status, job.finished or time.time()


async def _cell(engine: Any, content: dict, namespace: dict) -> tuple[Any, BaseException | None]:
    """Run a job's cell; its value, or what it raised (traceback from the cell's own frames)."""
    try:
        return await engine.execute(content, namespace), None
    except BaseException as raised:
        err = tracebacks.original(raised)
        return None, err.with_traceback(err.__traceback__.tb_next)


def _display_hook(output: JobOutput, thread: threading.Thread):
    """A display publisher hook: what ``thread`` displays goes to ``output``, not to iopub."""
    def hook(msg: dict) -> dict | None:
        if threading.current_thread() is not thread:
            return msg
        if msg.get("msg_type") in ("display_data", "update_display_data"):
            output.display(dict(msg["content"].get("data", {})))
        return None
    return hook


def install(engine: Any) -> None:
    """Register the job requests: detach and collect on the shell; jobs, output, cancel on control."""
    table: JobTable = engine.jobs

    async def detach_request(stream, ident, parent) -> None:
        if not engine.authentic(parent):
            return
        content = parent["content"]
        try:
            uploads = engine.kept.run(protocol.client_of(parent))
            with serialize.keeping(uploads):
                namespace = engine.namespace(content, parent["buffers"],
                                             protocol.client_of(parent))
            job = table.submit(content, namespace, uploads.containers())
        except BaseException as err:  # nothing was queued; the client waits for a reply
            engine.reply(stream, ident, parent, engine.error_content(err))
            return
        engine.reply(stream, ident, parent, {"status": "ok", "job": job.info()})

    async def collect_request(stream, ident, parent) -> None:
        if not engine.authentic(parent):
            return
        try:
            reply, frames = table.collect(parent["content"].get("job"),
                                          protocol.client_of(parent))
        except BaseException as err:
            reply, frames = engine.error_content(err), []
        engine.reply(stream, ident, parent, reply, frames)

    def answering(handle):
        def handler(stream, ident, parent) -> None:
            if not engine.authentic(parent):
                return
            try:
                content = dict(handle(parent["content"]), status="ok")
            except Exception as err:  # always a reply: the client waits for one
                content = {"status": "error", "ename": type(err).__name__, "evalue": str(err)}
            engine.reply_control(stream, ident, parent, content)
        return handler

    def output(content: dict) -> dict:
        job = table.get(content.get("job"))
        with table.lock:
            info = job.info()
        return dict(job.output.read(content.get("since", 0)), job=info)

    def cancel(content: dict) -> dict:
        cancelled = table.cancel(content.get("job"))
        return {"cancelled": cancelled, "job": table.get(content.get("job")).info()}

    engine.kernel.shell_handlers[protocol.DETACH_REQUEST] = detach_request
    engine.kernel.shell_handlers[protocol.JOB_COLLECT_REQUEST] = collect_request
    engine.kernel.control_handlers.update({
        protocol.JOBS_REQUEST: answering(lambda content: {"jobs": table.infos()}),
        protocol.JOB_OUTPUT_REQUEST: answering(output),
        protocol.JOB_CANCEL_REQUEST: answering(cancel),
    })
