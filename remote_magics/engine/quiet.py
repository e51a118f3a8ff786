"""Proof that nothing was output since the last reply, so a reply can say so and need no marker.

The end-of-output marker (``remote_output_done``) is queued on ipykernel's output thread behind
a request's output, so the client knows it has relayed all of it, late output of earlier cells
included. Waking that thread is most of a null cell's remote time on two cores: the thread and
the main thread then hand the GIL to each other through every frame of the reply. When nothing
at all was output since the engine's previous reply, there is nothing to wait for: the reply
says ``quiet`` and the client finishes on it alone. (Every earlier reply was either quiet too or
followed by its marker, which the client waited for: so whatever was output before has reached
the client already.)

"Nothing was output" is proved, never guessed. Since the previous reply: nothing was written to
``sys.stdout`` or ``sys.stderr`` (from any thread; C output reaches them through the pipe on
their file descriptor, which is emptied under a lock, so bytes are either still in the pipe or
already written), no message was handed to the output thread (stream flushes, display data,
figures, comms, our own iopub messages; our marker aside), and the process did not fork (a
forked child's output comes through another pipe of ipykernel's). Also nothing written earlier
still waits in a stream's buffer or in a flush under way. Only the kernels we start use
:class:`CountingStream` (``EngineApp.outstream_class``); in any other kernel nothing is proved
and the marker goes as before. When there was output, :meth:`CountingStream.drain` moves C
output still in its pipe into the stream before the marker is queued, so it is never shown late.
"""
from __future__ import annotations

import os
import select
import sys
import threading

from ipykernel import iostream
from ipykernel.iostream import OutStream

#: Bytes read from a stream's pipe at a time, as ipykernel reads them.
PIPE_BUFFER_SIZE = getattr(iostream, "PIPE_BUFFER_SIZE", 1000)

_forks = [0]  # forks of this process so far (a list: changed from the fork hook)


def _count_fork() -> None:
    _forks[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_count_fork)


class CountingStream(OutStream):
    """ipykernel's stdout/stderr, which counts its writes and the messages of its output thread.

    Its file-descriptor watcher moves bytes from the pipe into the stream under :attr:`transfer`,
    so whoever holds that lock sees C output either still in the pipe or already written.
    """

    def __init__(self, *args, **kwargs) -> None:
        self.writes = 0
        self.flushing = 0  # flushes under way (on the output thread)
        self.transfer = threading.Lock()  # set before the watcher thread starts (in __init__)
        super().__init__(*args, **kwargs)
        _count_published(self.pub_thread)

    def write(self, string: str) -> int | None:  # type: ignore[override]
        self.writes += 1
        return super().write(string)

    def _flush(self) -> None:
        self.flushing += 1
        try:
            super()._flush()
        finally:
            self.flushing -= 1

    def idle(self) -> bool:
        """Whether nothing written to the stream waits to be published (False when unsure)."""
        if self.pending() or self.flushing or getattr(self, "_flush_pending", True):
            return False
        buffers = getattr(self, "_buffers", None)
        lock = getattr(self, "_buffer_lock", None)
        if not isinstance(buffers, dict) or lock is None:
            return False
        with lock:
            return not any(buffer.tell() for buffer in self._buffers.values())

    def _watch_pipe_fd(self) -> None:
        # ipykernel's loop, but the bytes go from the pipe into the stream by drain()
        if self._fid is None:
            return
        poller = select.poll()
        poller.register(self._fid, select.POLLIN)
        try:
            while self._should_watch:
                poller.poll()
                if not self.drain():
                    return
        except Exception:
            self._exc = sys.exc_info()

    def drain(self) -> bool:
        """Move what the file descriptor's pipe holds into the stream, now, on this thread.

        Under :attr:`transfer`, so C output written before this call is in the stream after
        it, whichever thread moved it. False once the pipe is closed or no longer watched.
        """
        if self._fid is None:
            return False
        poller = select.poll()
        poller.register(self._fid, select.POLLIN)
        with self.transfer:
            while poller.poll(0):  # readable: this read cannot block
                data = os.read(self._fid, PIPE_BUFFER_SIZE)
                if not data or not self._should_watch:
                    return False
                self.write(data.decode(errors="replace"))
        # not echoed to the process's own descriptor, as ipykernel does for the terminal that
        # runs the server: an engine's is its parent kernel's, whose capture showed the same
        # bytes in the notebook a second time (hunt 19 H19-27: `os.system('echo x')` twice)
        return True

    def pending(self) -> bool:
        """Whether bytes written to the file descriptor have not reached the stream yet."""
        if self._fid is None:
            return False
        poller = select.poll()
        poller.register(self._fid, select.POLLIN)
        with self.transfer:
            return bool(poller.poll(0))


#: The topic of our end-of-output marker, which is not output (:meth:`..core.Engine._output_done`).
MARKER_TOPIC = b"remote_magics.output_done"


def _count_published(pub_thread) -> None:
    """Count the messages handed to the output thread (every iopub message), once."""
    if getattr(pub_thread, "remote_magics_published", None) is not None:
        return
    pub_thread.remote_magics_published = 0
    send_multipart = pub_thread.send_multipart

    def counted(msg, *args, **kwargs) -> None:
        if not (msg and msg[0] == MARKER_TOPIC):
            pub_thread.remote_magics_published += 1
        send_multipart(msg, *args, **kwargs)

    pub_thread.send_multipart = counted


def flush_printed() -> None:
    """Send what the cell printed so far (``sys.stdout``, ``sys.stderr``), so that what goes on
    iopub next (a prompt, a result) comes after it, as in a plain cell."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or replaced stream (None): nothing of it to order
            pass


def mark() -> tuple | None:
    """The output counters now (take it once a reply is sent), to compare with at the next
    reply; None where nothing can be proved (streams not ours: another kernel, or replaced)."""
    out, err = sys.stdout, sys.stderr
    if not (isinstance(out, CountingStream) and isinstance(err, CountingStream)
            and out.pub_thread is err.pub_thread):
        return None
    return out, err, out.writes, err.writes, out.pub_thread.remote_magics_published, _forks[0]


def silent_since(marked: tuple | None) -> bool:
    """Whether nothing was output since :func:`mark` gave ``marked``, and nothing written
    before waits to be published (False when unsure)."""
    if marked is None:
        return False
    out, err = marked[0], marked[1]
    if sys.stdout is not out or sys.stderr is not err or not out.idle() or not err.idle():
        return False
    # read after idle(): a transfer or a flush that finished before it has counted itself
    return marked[2:] == (out.writes, err.writes, out.pub_thread.remote_magics_published,
                          _forks[0])
