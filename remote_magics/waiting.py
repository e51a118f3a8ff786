"""Waiting for requests in flight: their replies, their output, the heartbeat and the deadlines.

A :class:`Pending` is one request sent on a :class:`.client.Connection`, until its reply and its
``remote_output_done`` (or idle status) are in; :func:`wait_all` waits for many on one poll, so
N kernels run in parallel without threads. While waiting it relays output, pings the heartbeat,
watches the kernel process, and turns a timeout or the stop button into an interrupt.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Iterator

import zmq

from .errors import ConnectionLost, RemoteKernelDied, RemoteMagicsError, RemoteTimeout

if TYPE_CHECKING:
    from .client import Connection, Reply

log = logging.getLogger(__name__)

#: Seconds between heartbeat pings while we wait.
HEARTBEAT_INTERVAL = 1.0
#: Seconds a reply may trail its request's idle status (they come on different sockets).
REPLY_GRACE = 10.0
#: Seconds we wait for the remote kernel to answer an interrupt before giving up on it.
INTERRUPT_GRACE = 5.0
#: Seconds between checks of whether a kernel process we can see has exited.
STATUS_INTERVAL = 0.5


class Pending:
    """One request in flight on one connection, until its reply and its idle status are in.

    ``error`` holds what the request turned into when it failed (timeout, lost kernel,
    interrupt); :meth:`result` returns the reply or raises that.
    """

    def __init__(self, conn: Connection, msg_id: str, sent: int, timeout: float | None,
                 on_output: Callable[[dict], None] | None, answer_required: bool,
                 patience: float | None = None) -> None:
        self.conn = conn
        self.msg_id = msg_id
        self.bytes_sent = sent
        self.started = time.perf_counter()
        self.on_output = on_output
        self.answer_required = answer_required
        self.waiter = _Waiter(conn, msg_id, timeout, patience)
        self.reply: Reply | None = None
        self.idle_at: float | None = None
        self.error: BaseException | None = None
        self.finished = False

    def advance(self, ready: dict) -> bool:
        """Take what the ready sockets hold for this request; True once it has finished."""
        conn = self.conn
        try:
            if conn.shell in ready:
                self.reply = conn._take_reply(self.msg_id) or self.reply
            if conn.iopub in ready:
                self.idle_at = conn._relay(self.msg_id, self.on_output) or self.idle_at
            if conn.hb in ready or conn.hb.poll(0):  # a long iopub drain must not look like silence
                self.waiter.beat()
            if self.reply is not None and self.idle_at is not None:
                return self._finish()
            quiet_since = max(self.idle_at or 0.0, conn.chunk_at)  # a streamed reply still coming
            if self.reply is None and self.idle_at is not None and time.monotonic() - quiet_since > (
                    0.5 if not self.answer_required else REPLY_GRACE):
                if not self.answer_required:
                    return self._finish()
                raise ConnectionLost(f"kernel '{conn.name}' finished a request without replying")
            if self.reply is not None and self.idle_at is None and \
                    self.waiter.reply_waited() > REPLY_GRACE:
                log.warning("remote_magics: no idle status from '%s'; some output may be missing",
                            conn.name)
                return self._finish()
            self.waiter.check(self.reply is not None)
        except BaseException as err:  # kept for result(): the other requests still finish
            self.error = err
            self.finished = True
        return self.finished

    def _finish(self) -> bool:
        self.finished = True
        self.waiter.done()
        if self.reply is not None:
            self.reply.bytes_sent = self.bytes_sent
        return True

    def interrupt(self) -> None:
        """The user pressed stop: interrupt the remote kernel (a second stop gives up waiting)."""
        self.waiter.user_interrupt()

    def result(self) -> Reply | None:
        """The reply, or raise what the request turned into."""
        if self.error is not None:
            raise self.error
        return self.reply

    def wait(self) -> Reply | None:
        """Wait for this request alone; see :meth:`Connection.request`."""
        for _ in wait_all([self]):
            pass
        return self.result()


def wait_all(pending: list[Pending]) -> Iterator[Pending]:
    """Wait for requests in flight on any connections; yield each one as it finishes.

    One poll over every connection's sockets, so N kernels run in parallel without threads.
    ``pending`` may grow while we iterate (a member that finished is given more work).
    A KeyboardInterrupt interrupts every kernel still running and the wait goes on for their
    replies (each then holds a KeyboardInterrupt as its error); a second one gives up.
    """
    poller = zmq.Poller()
    polled: set[int] = set()
    while True:
        active = [p for p in pending if not p.finished]
        if not active:
            return
        for p in active:
            if id(p.conn) not in polled:
                polled.add(id(p.conn))
                for sock in (p.conn.shell, p.conn.iopub, p.conn.hb):
                    poller.register(sock, zmq.POLLIN)
        try:
            ready = dict(poller.poll(min(p.waiter.poll_ms() for p in active)))
        except KeyboardInterrupt:
            for p in active:
                p.interrupt()
            continue
        for p in active:
            if p.advance(ready):
                yield p


class _Waiter:
    """The clock of one request: deadlines, heartbeat, interrupts."""

    def __init__(self, conn: Connection, msg_id: str, timeout: float | None,
                 patience: float | None = None) -> None:
        self.conn = conn
        self.msg_id = msg_id
        now = time.monotonic()
        self.give_up = now + patience if patience else None
        self.patience = patience
        self.deadline = now + timeout if timeout else None
        self.timeout = timeout
        self.last_beat = now
        self.next_ping = now
        self.interrupted_at: float | None = None
        self.cause: str | None = None  # "user" or "timeout" once we have interrupted
        self.reply_at: float | None = None
        self.next_status_check = now + STATUS_INTERVAL

    def poll_ms(self) -> int:
        now = time.monotonic()
        if now >= self.next_ping:
            self.conn.hb.send(b"ping")
            self.next_ping = now + HEARTBEAT_INTERVAL
        wait = self.next_ping - now
        if self.deadline is not None and self.cause is None:
            wait = min(wait, max(self.deadline - now, 0))
        return max(int(wait * 1000), 1)

    def beat(self) -> None:
        while self.conn.hb.poll(0):
            self.conn.hb.recv()
        self.last_beat = time.monotonic()

    def user_interrupt(self) -> None:
        if self.cause == "user":  # a second stop while we wait: give up waiting
            raise KeyboardInterrupt
        self.cause = "user"
        self.interrupted_at = time.monotonic()
        self.conn.interrupt()

    def reply_waited(self) -> float:
        now = time.monotonic()
        if self.reply_at is None:
            self.reply_at = now
        return now - self.reply_at

    def check(self, have_reply: bool) -> None:
        """Raise if the kernel is dead, silent, or past its deadline without answering."""
        now = time.monotonic()
        if now - self.last_beat > self.conn.heartbeat_timeout:
            self._lost()
        if now >= self.next_status_check:  # a dead process is known at once, not after silence
            self.next_status_check = now + STATUS_INTERVAL
            if self.conn.exit_status() is not None:
                self._lost()
        if self.give_up is not None and now >= self.give_up and not have_reply:
            raise RemoteTimeout(
                f"target '{self.conn.name}' did not answer within {self.patience:g} s: its "
                "kernel is alive but busy (another client's cell, or a long job). Try again "
                "when it is idle.")
        if self.deadline is not None and now >= self.deadline and self.cause is None:
            self.cause = "timeout"
            self.interrupted_at = now
            self.conn.interrupt()
        if (self.interrupted_at is not None and not have_reply
                and now - self.interrupted_at > INTERRUPT_GRACE):
            self.done()
            raise ConnectionLost(
                f"kernel '{self.conn.name}' did not stop within {INTERRUPT_GRACE:.0f} s of being "
                "interrupted; it may be stuck in code that ignores interrupts. Its state is "
                "unknown: restart it with %remote_connect --restart, or wait and run "
                "%remote_targets to see whether it answers again."
            )

    def _lost(self) -> None:
        status = self.conn.exit_status()
        if status is not None:
            raise RemoteKernelDied(
                f"the remote kernel of target '{self.conn.name}' died (exit status {status}) "
                "while running the cell. Its remote objects are lost. Restart it with "
                f"%remote_connect --restart {self.conn.name}, then run the cell again."
            )
        raise ConnectionLost(
            f"target '{self.conn.name}' stopped answering its heartbeat for "
            f"{self.conn.heartbeat_timeout:.0f} s: its kernel died, was stopped, or the network "
            "to it is down. Check the kernel's host; %remote_connect --restart "
            f"{self.conn.name} restarts a kernel we started."
        )

    def done(self) -> None:
        """Raise what an interrupt or a timeout turned the request into, if anything."""
        if self.cause == "user":
            raise KeyboardInterrupt
        if self.cause == "timeout":
            raise RemoteTimeout(
                f"the cell ran past its timeout of {self.timeout:g} s on target "
                f"'{self.conn.name}' and was interrupted; nothing in the notebook changed. "
                "Raise --timeout (or %config RemoteMagics.timeout) to give it longer."
            )


__all__ = ["Connection", "Pending", "Reply", "RemoteMagicsError", "wait_all"]
