"""Proof that a request made no output at all, so its reply can say so and need no marker.

The end-of-output marker (``remote_output_done``) is queued on ipykernel's output thread behind
a request's output, so the client knows it has relayed all of it. Waking that thread is most of
a null cell's remote time on two cores: the thread and the main thread then hand the GIL to each
other through every frame of the reply. A request that made no output needs no marker: its reply
says ``quiet`` and the client finishes on the reply alone.

"No output" is proved, never guessed. From the request's arrival to its reply: nothing was
written to ``sys.stdout`` or ``sys.stderr`` (from any thread; output of C code reaches them
through the pipe on their file descriptor, which is emptied under a lock, so bytes are either
still in the pipe or already written), nothing was handed to the output thread (display
data, figures, comms, our own iopub messages, streams' flushes), and the process did not fork (a
forked child's output comes through another pipe of ipykernel's). Only the kernels we start use
:class:`CountingStream` (``EngineApp.outstream_class``); in any other kernel nothing is proved
and the marker goes as before. When there was output, :meth:`CountingStream.drain` moves C
output still in its pipe into the stream before the marker is queued, so it is never shown late.
"""
from __future__ import annotations

import os
import select
import sys
import threading

from ipykernel.iostream import PIPE_BUFFER_SIZE, OutStream

_forks = [0]  # forks of this process so far (a list: changed from the fork hook)


def _count_fork() -> None:
    _forks[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_count_fork)


class CountingStream(OutStream):
    """ipykernel's stdout/stderr, which counts its writes and those handed to its output thread.

    Its file-descriptor watcher moves bytes from the pipe into the stream under :attr:`transfer`,
    so whoever holds that lock sees C output either still in the pipe or already written.
    """

    def __init__(self, *args, **kwargs) -> None:
        self.writes = 0
        self.transfer = threading.Lock()  # set before the watcher thread starts (in __init__)
        super().__init__(*args, **kwargs)
        _count_scheduled(self.pub_thread)

    def write(self, string: str) -> int | None:  # type: ignore[override]
        self.writes += 1
        return super().write(string)

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
        moved = []
        with self.transfer:
            while poller.poll(0):  # readable: this read cannot block
                data = os.read(self._fid, PIPE_BUFFER_SIZE)
                if not data or not self._should_watch:
                    return False
                self.write(data.decode(errors="replace"))
                moved.append(data)
        for data in moved:  # echoed as ipykernel does, outside the lock
            os.write(self._original_stdstream_copy, data)
        return True

    def pending(self) -> bool:
        """Whether bytes written to the file descriptor have not reached the stream yet."""
        if self._fid is None:
            return False
        poller = select.poll()
        poller.register(self._fid, select.POLLIN)
        with self.transfer:
            return bool(poller.poll(0))


def _count_scheduled(pub_thread) -> None:
    """Count what is handed to the output thread (every iopub message goes through it), once."""
    if getattr(pub_thread, "remote_magics_scheduled", None) is not None:
        return
    pub_thread.remote_magics_scheduled = 0
    schedule = pub_thread.schedule

    def counted(f) -> None:
        pub_thread.remote_magics_scheduled += 1
        schedule(f)

    pub_thread.schedule = counted


def mark() -> tuple | None:
    """The output counters now, to compare with at the reply; None where nothing can be proved
    (streams that are not ours: another kernel, or replaced by the user's code)."""
    out, err = sys.stdout, sys.stderr
    if not (isinstance(out, CountingStream) and isinstance(err, CountingStream)
            and out.pub_thread is err.pub_thread):
        return None
    return out, err, out.writes, err.writes, out.pub_thread.remote_magics_scheduled, _forks[0]


def silent_since(marked: tuple | None) -> bool:
    """Whether nothing was output since :func:`mark` gave ``marked`` (False when unsure)."""
    if marked is None:
        return False
    out, err = marked[0], marked[1]
    if sys.stdout is not out or sys.stderr is not err or out.pending() or err.pending():
        return False
    # read after pending(): a transfer that finished before it has counted its write
    return marked[2:] == (out.writes, err.writes, out.pub_thread.remote_magics_scheduled,
                          _forks[0])
