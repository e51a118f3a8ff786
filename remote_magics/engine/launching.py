"""Starting an ipykernel application so that a start that fails ends the process at once.

jupyter_client chooses a kernel's ports free, then the kernel binds them: on a busy machine
another process may take one in between ("Address already in use"). ipykernel's own kernel then
kept running: the application's exit handler waits for a socket it never closes. Whoever
launched it waited out a whole timeout instead of seeing it end and launching another. Used by
the engine (:mod:`.core`) and by the remote kernel (:mod:`remote_magics.kernel`).
"""
from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import Any

#: Seconds the heartbeat's thread may take to bind its socket as the kernel starts.
HEARTBEAT_BIND_TIMEOUT = 30.0


def launch(app: Any) -> None:
    """Initialize the ipykernel application ``app`` and start it; if the initialization fails,
    say why on stderr and end the process with status 1 (see :func:`end_on_a_failed_start`)."""
    try:
        app.initialize()
    except BaseException as err:  # noqa: BLE001 - whatever stops it, it must end now
        end_on_a_failed_start(err)
    app.start()


def bound_heartbeat(context: Any, address: tuple, **keys: Any) -> Any:
    """ipykernel's heartbeat, started, once its thread has bound its socket.

    Raises why it could not (``ZMQError: Address already in use``), or RuntimeError when it
    did not within :data:`HEARTBEAT_BIND_TIMEOUT`. ipykernel's own heartbeat binds in its
    thread, whose failure left a kernel answering every request and silent to pings: the
    first cell longer than the heartbeat's timeout was taken for a lost connection.
    """
    from ipykernel.heartbeat import Heartbeat

    class BoundHeartbeat(Heartbeat):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.bound = threading.Event()
            self.failure: BaseException | None = None

        def _bind_socket(self) -> None:
            try:
                super()._bind_socket()
            except BaseException as err:
                self.failure = err
                raise
            finally:
                self.bound.set()

        def run(self) -> None:
            try:
                super().run()
            except BaseException as err:
                if err is not self.failure:
                    raise
                # the kernel's start reports it and ends

    heartbeat = BoundHeartbeat(context, address, **keys)
    heartbeat.start()
    if not heartbeat.bound.wait(HEARTBEAT_BIND_TIMEOUT):
        raise RuntimeError(f"the heartbeat did not bind its port {heartbeat.port} within "
                           f"{HEARTBEAT_BIND_TIMEOUT:g} s")
    if heartbeat.failure is not None:
        raise heartbeat.failure
    return heartbeat


def end_on_a_failed_start(err: BaseException) -> None:
    """End the process at once, with ``err``'s traceback on stderr (a SystemExit: its code).

    ``os._exit``: no exit handler runs, so none waits for the sockets of the failed start.
    """
    stream = sys.__stderr__
    code: Any = 1
    if isinstance(err, SystemExit):
        code = err.code
        if code is not None and not isinstance(code, int):
            print(code, file=stream)
            code = 1
    else:
        traceback.print_exception(err, file=stream)
    if stream is not None:
        stream.flush()
    os._exit(code or 0)
