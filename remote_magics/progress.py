"""Progress bars for big transfers: uploads and downloads over :data:`protocol.PROGRESS_BYTES`.

The engine announces a big transfer on iopub (``remote_transfer``, see :mod:`.protocol`):
an upload once the request has arrived, a download just before the reply leaves. A value
travels as one ZeroMQ message, which arrives whole or not at all, so the bar cannot move byte
by byte without splitting values into many messages (which costs bulk throughput); it shows
the size, then fills when the transfer is over, with its rate. A widget in Jupyter, text
elsewhere (:func:`tqdm_class`).
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import time
from typing import Any, Callable, Iterator

from . import protocol, relay

log = logging.getLogger(__name__)


def tqdm_class() -> type:
    """tqdm's widget bar inside a Jupyter kernel (ipywidgets installed), its text bar elsewhere.

    Decided from the running shell, not from ``tqdm.auto``'s look at IPython's configuration,
    which a terminal IPython can carry too.
    """
    from tqdm.std import tqdm as text_bar

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        if importlib.util.find_spec("ipywidgets") is None:  # the widget bar needs it
            return text_bar
        from tqdm.notebook import tqdm as widget_bar

        return widget_bar
    return text_bar


def _bar(total: int, desc: str) -> Any:
    """A bar counting bytes."""
    return tqdm_class()(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1000,
                        leave=True, mininterval=0.1)


class Watch:
    """Passes a run's output to ``relay``, and turns transfer announcements into bars."""

    def __init__(self, quiet: bool = False, relay: Callable[[dict], None] = relay.show) -> None:
        self.quiet = quiet
        self.relay = relay
        self.started = time.time()  # tqdm counts in wall-clock seconds
        self.download: Any = None
        self.bars: list[str] = []  # what was shown, for tests and reports

    def on_output(self, msg: dict) -> None:
        if msg["msg_type"] != protocol.TRANSFER:
            self.relay(msg)
            return
        content = msg["content"]
        nbytes = int(content.get("nbytes") or 0)
        if self.quiet or nbytes <= protocol.PROGRESS_BYTES:
            return
        direction = content.get("direction", "download")
        self.bars.append(direction)
        bar = _bar(nbytes, direction)
        if direction == "upload":  # it has arrived: from the moment the run began until now
            bar.start_t = self.started
            bar.update(nbytes)
            bar.close()
        else:
            if self.download is not None:
                self.download.close()
            self.download = bar

    def finish(self) -> None:
        """The reply is in: a download announced before it is complete."""
        bar, self.download = self.download, None
        if bar is not None:
            bar.update(bar.total - bar.n)
            bar.close()


@contextlib.contextmanager
def watching(quiet: bool = False, relay: Callable[[dict], None] = relay.show) -> Iterator[Watch]:
    """A :class:`Watch` for one request; its bars end when the block does."""
    watch = Watch(quiet, relay)
    try:
        yield watch
    finally:
        watch.finish()
