"""Showing a remote cell's output in the notebook: its messages, and bars for big transfers.

:func:`show` re-publishes one iopub message of a remote request as the remote kernel published it.
A :class:`Watch` passes a run's output on and turns big transfers (over
:data:`~remote_magics.wire.protocol.PROGRESS_BYTES`) into progress bars: a big frame travels as
a stream of chunks (:mod:`remote_magics.wire.streaming`), and the connection reports each one
(:meth:`Watch.on_progress`), so an upload's bar moves as its chunks leave and a download's as
they arrive. A transfer by the engine's data port, or of many small frames (one ZeroMQ message,
which arrives whole or not at all), is announced on iopub (``remote_transfer``): its bar shows
the size, moves as a data-port download's bytes arrive, and fills when the transfer is over.
A widget in Jupyter, text elsewhere (:func:`tqdm_class`).
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import logging
import sys
import time
from typing import Any, Callable, Iterator

from IPython.core import page
from IPython.display import clear_output, publish_display_data

from ..engine import settings
from ..errors import RemoteError
from ..wire import protocol

log = logging.getLogger(__name__)


def _shell() -> Any:
    """The running IPython shell, if any (without importing IPython's machinery for it)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def stdin_allowed() -> bool:
    """Whether ``input()`` in the running cell can ask anyone: in a kernel, whether its
    frontend takes input (ipykernel's ``allow_stdin`` for the cell); elsewhere (a terminal, a
    script) it reads this process's stdin."""
    kernel = getattr(_shell(), "kernel", None)
    if kernel is None:
        return True
    return bool(getattr(kernel, "_allow_stdin", False))


def show(msg: dict, flush: bool = True) -> None:
    """Re-publish one iopub message of a remote request in the local notebook; a stream's
    text flushed at once (a remote cell's, in the order the engine sent it) unless ``flush``
    is False (:func:`show_as_written`)."""
    kind = msg["msg_type"]
    content = msg["content"]
    if kind == "stream":
        stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
        stream.write(content.get("text", ""))
        if flush:
            stream.flush()
    elif kind == "execute_result":  # a statement the notebook's interactivity shows
        show_result(content)
    elif kind in ("display_data", "update_display_data"):
        publish_display_data(
            data=content.get("data", {}),
            metadata=content.get("metadata") or {},
            transient=content.get("transient") or None,
            update=kind == "update_display_data",
        )
    elif kind == "clear_output":
        clear_output(wait=bool(content.get("wait")))
    elif kind == "error":  # code that showed a traceback itself without raising
        sys.stderr.write("\n".join(content.get("traceback", [])) + "\n")
    elif kind == protocol.PAGE and isinstance(content.get("data"), dict):  # `x?` in the cell
        page.page(content["data"], start=content.get("start") or 0)  # paged as here
    elif kind == protocol.NEXT_INPUT and isinstance(content.get("text"), str):  # `%load f.py`
        shell = _shell()
        if shell is not None:
            shell.set_next_input(content["text"], replace=content.get("replace") is True)
    elif kind == protocol.LOG_RECORD:  # for the notebook's own log handlers (a log file)
        settings.take_log_record(content)


def show_as_written(msg: dict) -> None:
    """:func:`show`, a stream's text left to the notebook's own buffering: what a proxy's
    operation prints or warns during a plain cell goes out as the cell's own writes would
    (a warning on stderr after what the cell printed to stdout meanwhile, as plainly)."""
    show(msg, flush=False)


def show_result(content: dict) -> None:
    """Show a remote statement's value (``ast_node_interactivity = 'all'``) as the shell shows
    a result: ``Out[n]`` with this cell's number, formatted where it ran. Not the cell's own
    result, which comes back as a value and is shown after the cell, as plainly."""
    data, metadata = content.get("data") or {}, content.get("metadata") or {}
    hook = getattr(_shell(), "displayhook", None)
    if hook is None:
        publish_display_data(data=data, metadata=metadata)
        return
    hook.start_displayhook()
    hook.write_output_prompt()
    hook.write_format_data(data, metadata)
    hook.finish_displayhook()


def show_error(content: dict, target: str) -> None:
    """An error the remote kernel showed without its cell raising (a figure that failed to draw
    after the cell), shown as an error, as a plain cell's post-execute error is."""
    shell = _shell()
    if shell is None:
        show({"msg_type": "error", "content": content})
        return
    error = _shown_again(content, target) or RemoteError.from_reply(content, target)
    shell.showtraceback((type(error), error, None))


def _shown_again(content: dict, target: str) -> RemoteError | None:
    """The notebook's last error when the remote kernel showed that one again (``%tb`` in a
    remote cell), its text as shown now: IPython then keeps ``sys.last_value`` the same object,
    its chain and attributes with it, as plainly (a new error lost ``__context__``)."""
    last = getattr(sys, "last_value", None)
    if not isinstance(last, RemoteError) or last.target != target \
            or last.ename != content.get("ename") or last.evalue != content.get("evalue"):
        return None
    last.traceback = list(content.get("traceback", []))
    return last


def traceback_mode() -> str | None:
    """How this notebook shows tracebacks (``%xmode``: Context, Plain, Verbose, Minimal...),
    which a remote error is formatted in; None outside IPython."""
    shell = _shell()
    mode = getattr(getattr(shell, "InteractiveTB", None), "mode", None)
    return mode if isinstance(mode, str) else None


def execution_count() -> int | None:
    """This notebook's ``get_ipython().execution_count`` now, which a remote cell reads as
    plainly (it counts the running cell one ahead or not, by IPython's version); None outside
    IPython."""
    count = getattr(_shell(), "execution_count", None)
    return count if type(count) is int else None


def interactivity() -> str | None:
    """Which statements of a cell show their values here (IPython's ``ast_node_interactivity``,
    a class attribute set by hand included), when not IPython's default; None outside IPython."""
    setting = getattr(_shell(), "ast_node_interactivity", None)
    if setting in protocol.INTERACTIVITY and setting != protocol.INTERACTIVITY[0]:
        return setting
    return None


def reset_names(namespace: dict) -> None:
    """A remote cell ran ``%reset``: the notebook's names go, as a plain cell's ``%reset``
    clears them (IPython's own reset, when ``namespace`` is the shell's)."""
    shell = _shell()
    if shell is not None and shell.user_ns is namespace:
        shell.reset(new_session=False)
        return
    for name in [name for name in namespace if not name.startswith("__")]:
        del namespace[name]


def flush_histories(targets: Any) -> None:
    """A remote cell ran ``%reset out``, ``in`` or ``dhist``: the notebook's output cache
    (``Out``, ``_``, ``_N``), input history (``_i``, ``_iN``) or directory history (``_dh``)
    is flushed, by IPython's own ``%reset``, as a plain cell's flushes them; the engine printed
    what it prints (:data:`~..wire.protocol.FLUSHED_HISTORIES`)."""
    shell = _shell()
    if shell is None or not isinstance(targets, list):
        return
    for target in targets:
        if target in protocol.FLUSHED_HISTORIES:
            with contextlib.redirect_stdout(io.StringIO()):
                shell.run_line_magic("reset", "-f " + target)


def output_entries() -> int:
    """How many results the notebook's output cache holds (``len(Out)``), which a remote
    ``%reset out`` says it flushes."""
    cache = getattr(_shell(), "user_ns", {}).get("_oh")
    return len(cache) if isinstance(cache, dict) else 0


def take_traceback_mode(mode: Any) -> None:
    """A remote cell ran ``%xmode``: the notebook shows tracebacks so from now on, as plainly."""
    shell = _shell()
    formatter = getattr(shell, "InteractiveTB", None)
    if formatter is not None and isinstance(mode, str) and mode in formatter.valid_modes:
        formatter.set_mode(mode)


def directory_stack() -> list[str] | None:
    """IPython's directory stack (``%pushd`` pushes on it, ``%popd`` pops), None without one."""
    stack = getattr(_shell(), "dir_stack", None)
    return list(stack) if isinstance(stack, list) else None


def hide_names(namespace: dict, values: dict) -> None:
    """Names a remote cell's IPython bound as its own (``%pylab``'s star import,
    ``push(..., interactive=False)``): hidden in the notebook too, so ``%who``, ``%whos`` and
    ``%reset``'s listing leave them out, as after a plain cell (IPython hides a name while it
    holds the very object it hid)."""
    shell = _shell()
    if shell is not None and shell.user_ns is namespace:
        shell.user_ns_hidden.update(values)


def take_directory_stack(stack: list) -> None:
    """A remote cell's ``%pushd`` or ``%popd`` left the stack so: the notebook's is that now,
    as after a plain cell's."""
    own = getattr(_shell(), "dir_stack", None)
    if isinstance(own, list) and all(isinstance(path, str) for path in stack):
        own[:] = stack


def ask_exit(keep_kernel: Any) -> None:
    """A remote cell called ``exit()`` or ``quit()``: the notebook's kernel is asked to exit
    (its frontend only, with ``keep_kernel=True``), as the same call in a plain cell asks it,
    through the shell's own exit autocall. Nothing without IPython."""
    exiter = getattr(_shell(), "exiter", None)
    if exiter is None:
        return
    try:
        exiter(keep_kernel=bool(keep_kernel))  # ipykernel's
    except TypeError:  # a terminal IPython's takes no argument
        exiter()


def note(text: str) -> None:
    """A one-line note to the user (waiting for a busy target, say): plain output, not an error.

    On stdout, which Jupyter shows as ordinary output; stderr would colour it as an error.
    """
    print(text, file=sys.stdout, flush=True)


def tqdm_class() -> type:
    """tqdm's widget bar inside a Jupyter kernel (ipywidgets installed; :func:`_widget_bar`),
    its text bar elsewhere.

    Decided from the running shell, not from ``tqdm.auto``'s look at IPython's configuration,
    which a terminal IPython can carry too.
    """
    from tqdm.std import tqdm as text_bar

    shell = _shell()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        if importlib.util.find_spec("ipywidgets") is None:  # the widget bar needs it
            return text_bar
        return _widget_bar()
    return text_bar


@functools.lru_cache(maxsize=None)  # the class, made once
def _widget_bar() -> type:
    """tqdm's widget bar, shown with a display id and shown again when it ends.

    A frontend without a widget manager (nbconvert, nbclient, a notebook viewer) saves the text
    a widget had when it was shown, which for a bar is its start: ``0%``, for ever, under a
    transfer that finished. Shown again at its end, the saved text is where it ended (``100%``
    and the rate), or nothing for a bar that does not stay (``leave=False``), as the widget
    itself then shows.
    """
    from IPython.display import display
    from tqdm.notebook import tqdm as widget_bar

    class SavedWidgetBar(widget_bar):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["display"] = False  # shown here instead, with an id
            super().__init__(*args, **kwargs)
            self.shown = None if self.disable else display(self.container, display_id=True)

        def close(self) -> None:
            shown, self.shown = getattr(self, "shown", None), None
            super().close()
            if shown is None:
                return
            if self.leave:
                shown.update(self.container)
            else:
                shown.update({"text/plain": ""}, raw=True)

    return SavedWidgetBar


def progress_bar(total: int, desc: str, unit: str = "B", leave: bool = True) -> Any:
    """A bar counting ``total`` bytes (or items of another ``unit``), for :func:`tqdm_class`."""
    scale = {"unit_scale": True, "unit_divisor": 1000} if unit == "B" else {}
    return tqdm_class()(total=total, desc=desc, unit=unit, leave=leave, mininterval=0.1, **scale)


class Watch:
    """Passes a run's output to ``relay``, and turns transfers into bars.

    Give :meth:`on_output` as a request's ``on_output`` and :meth:`on_progress` as its
    ``on_progress`` (see :meth:`remote_magics.client.connection.Connection.request`).
    """

    def __init__(self, quiet: bool = False, relay: Callable[[dict], None] = show,
                 target: str = "") -> None:
        self.quiet = quiet
        self.relay = relay
        self.target = target  # with it, an error the kernel showed shows as an error here
        self.started = time.time()  # tqdm counts in wall-clock seconds
        self.download: Any = None
        self.streaming: dict[str, Any] = {}  # direction → the bar of a streamed transfer
        self.bars: list[str] = []  # what was shown, for tests and reports
        self.updates: list[tuple[str, int]] = []  # (direction, bytes done) of streamed transfers
        # after ``remote_cell_ran``: what a plain cell shows after its result (:meth:`held_back`)
        self.after_result: list[dict] | None = None

    def on_progress(self, direction: str, done: int, total: int) -> None:
        """A streamed transfer moved: ``done`` of its ``total`` bytes are through."""
        if self.quiet or total <= protocol.PROGRESS_BYTES:
            return
        self.updates.append((direction, done))
        if direction == "download" and self.download is not None:
            # the announced download (its bytes come by the data port): :meth:`finish` ends it
            bar = self.download
            bar.update(max(min(done, bar.total) - bar.n, 0))
            return
        bar = self.streaming.get(direction)
        if bar is None:
            self.bars.append(direction)
            bar = self.streaming[direction] = progress_bar(total, direction)
        bar.update(max(min(done, total) - bar.n, 0))
        if done >= total:
            bar.close()
            del self.streaming[direction]

    def on_output(self, msg: dict) -> None:
        if msg["msg_type"] == protocol.CELL_RAN:
            self.after_result = []
            return
        if msg["msg_type"] != protocol.TRANSFER:
            if self.after_result is not None:
                self.after_result.append(msg)
            else:
                self._relay(msg)
            return
        content = msg["content"]
        nbytes = int(content.get("nbytes") or 0)
        if self.quiet or nbytes <= protocol.PROGRESS_BYTES:
            return
        direction = content.get("direction", "download")
        self.bars.append(direction)
        bar = progress_bar(nbytes, direction)
        if direction == "upload":  # it has arrived: from the moment the run began until now
            bar.start_t = self.started
            bar.update(nbytes)
            bar.close()
        else:
            if self.download is not None:
                self.download.close()
            self.download = bar

    def held_back(self) -> Callable[[], None] | None:
        """What came after the cell's own output (its figures), to show after its result (call
        it then); None when nothing did."""
        held, self.after_result = self.after_result, None
        if not held:
            return None

        def show_them() -> None:
            for msg in held:
                self._relay(msg)

        return show_them

    def _relay(self, msg: dict) -> None:
        if msg["msg_type"] == "error" and self.target:
            show_error(msg["content"], self.target)
        else:
            self.relay(msg)

    def finish(self) -> None:
        """The reply is in: a download announced before it is complete; other bars end."""
        bar, self.download = self.download, None
        if bar is not None:
            bar.update(bar.total - bar.n)
            bar.close()
        for bar in self.streaming.values():  # a transfer cut short: the bar stays where it got
            bar.close()
        self.streaming.clear()


@contextlib.contextmanager
def watching(quiet: bool = False, relay: Callable[[dict], None] = show,
             target: str = "") -> Iterator[Watch]:
    """A :class:`Watch` for one request (to ``target``); its bars end when the block does."""
    watch = Watch(quiet, relay, target)
    try:
        yield watch
    finally:
        watch.finish()
