"""What the engine's main thread is doing, told on the control channel (``remote_status``).

A client waiting for a reply cannot tell from silence alone whether its request runs, waits
behind another client's cell, or never arrived (a request whose signature fails is dropped
without an answer: a forger must learn nothing). The control thread answers while a cell runs,
so the client asks it: the request it names is running, answered already, or unknown; and
whether the main thread is handling anything, and since when it has been idle. Unknown while
idle for a while means lost: an idle engine reads a waiting request at once.

Kept only by the kernels we start (``EngineKernel``), where every shell message passes through
:meth:`Activity.begin` and :meth:`Activity.end`; a kernel we were attached to does not answer,
and its client waits as before.
"""
from __future__ import annotations

import collections
import time
from typing import Any

from ..wire import protocol

#: How many answered requests are remembered, newest last.
ANSWERED = 256


class Activity:
    """The main thread's requests: written there, read by the control thread (under the GIL,
    each read and write is whole)."""

    def __init__(self) -> None:
        self.busy = 0  # shell messages being handled now
        self.current: str | None = None  # the msg_id of our request being handled
        self.answered: collections.deque[str] = collections.deque(maxlen=ANSWERED)
        self.idle_since = time.monotonic()

    def begin(self) -> None:
        """A shell message, any kind, is being handled (one at a time)."""
        self.busy += 1

    def handling(self, msg_id: Any) -> None:
        """The message being handled is request ``msg_id`` (ours once it passed its signature
        check; ipykernel's as its header names it)."""
        self.current = msg_id if isinstance(msg_id, str) else None

    def end(self) -> None:
        """The message being handled has been answered (or dropped)."""
        if self.current is not None:
            self.answered.append(self.current)
            self.current = None
        self.busy -= 1
        if not self.busy:
            self.idle_since = time.monotonic()

    def state_of(self, msg_id: Any) -> dict:
        """What the engine knows of request ``msg_id``: ``running``, ``answered`` or
        ``unknown``, with whether it is busy and for how long it has been idle."""
        if isinstance(msg_id, str) and msg_id == self.current:
            state = "running"
        elif isinstance(msg_id, str) and msg_id in self.answered:  # its reply went
            state = "answered"
        else:
            state = "unknown"
        busy = self.busy > 0
        return {"state": state, "busy": busy,
                "idle_for": 0.0 if busy else max(time.monotonic() - self.idle_since, 0.0)}


def install(engine: Any) -> Activity:
    """Keep ``engine``'s activity and answer ``remote_status_request`` with it."""
    activity = engine.activity = Activity()

    def status_request(stream, ident, parent) -> None:
        if not engine.authentic(parent):
            return
        content = dict(activity.state_of(parent["content"].get("msg_id")), status="ok")
        engine.reply_control(stream, ident, parent, content)

    engine.kernel.control_handlers[protocol.STATUS_REQUEST] = status_request
    return activity
