"""What the client is told about an exception raised in the engine, at a bounded cost.

A user's exception is described whatever its objects do (a ``__str__`` that raises, an interrupt
while formatting), and its traceback costs little however deep it is: IPython's formatter takes
about a millisecond a frame, so a traceback of more than :data:`IPYTHON_FRAMES` frames (a
RecursionError at a raised recursion limit has a million) is collapsed here, repeated frames
summarized in one line each as IPython does, and formatted as Python does.

Shipped with the engine as source: standard library only.
"""
from __future__ import annotations

import builtins
import traceback
from types import TracebackType
from typing import Any

#: The flag of a code object that is awaited (``inspect.CO_COROUTINE``): a cell with a
#: top-level ``await`` compiles so.
CO_COROUTINE = 0x80
#: Frames a traceback may have and still go through IPython's formatter.
IPYTHON_FRAMES = 100
#: Frames of a collapsed traceback shown at most; the middle of a longer one is left out.
SHOWN_FRAMES = 60
#: The longest cycle of frames (mutual recursion) that is collapsed, in frames.
LONGEST_CYCLE = 8
#: Exceptions of a chain (``__cause__``, ``__context__``) shown at most.
CHAIN = 10

#: Our own package's name and a dot, as it is named where it runs (shipped into a kernel too).
_OURS = __name__.split(".")[0] + "."


def of_yours(tb: TracebackType) -> bool:
    """Whether a traceback entry's frame runs your code: not ours, not IPython's."""
    return not tb.tb_frame.f_globals.get("__name__", "").startswith((_OURS, "IPython."))


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


class CellStopIteration(Exception):
    """Carries a ``StopIteration`` a cell raised (``next(g)`` of an exhausted generator) out of
    the coroutine that runs it, where Python would turn it into a RuntimeError (PEP 479); the
    cell's error is :func:`original`'s, as a plain cell's is."""

    def __init__(self, error: StopIteration) -> None:
        super().__init__(error)
        self.error = error


def original(err: BaseException) -> BaseException:
    """The exception a cell raised (unwrapping a :class:`CellStopIteration`)."""
    return err.error if isinstance(err, CellStopIteration) else err


def message(err: BaseException) -> str:
    """``str(err)``, whatever the exception's ``__str__`` does."""
    try:
        return str(err)
    except BaseException:  # a __str__ that raises, even KeyboardInterrupt, has no message
        return f"<{type(err).__name__}: its message could not be formatted>"


def one_line(err: BaseException) -> str:
    """``Type: message`` on one line, whatever the exception's ``__str__`` does."""
    text = " ".join(message(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def error_content(err: BaseException, tb: TracebackType | None = None, *, shell: Any = None,
                  evalue: str | None = None) -> dict:
    """The fields of an error reply for ``err`` (its traceback from ``tb``), never raising.

    ``shell`` is the kernel's IPython shell, whose formatter colours a short traceback.
    """
    kind = type(err)
    try:
        lines = format_traceback(err, tb, shell)
    except BaseException:  # an interrupt while formatting: the reply goes without the frames
        lines = [one_line(err)]
    content = {"status": "error", "ename": kind.__name__,
               "evalue": message(err) if evalue is None else evalue, "traceback": lines,
               "etype": f"{kind.__module__}.{kind.__qualname__}",
               "outputs": [], "result": None, "deleted": []}
    if shell is not None and has_a_group(err):
        try:
            content["printed"] = as_python_prints(err, tb, shell)
        except BaseException:  # noqa: BLE001 - IPython's form alone, as before
            pass
    return content


def has_a_group(err: BaseException) -> bool:
    """Whether ``err`` or an exception it was raised while handling is an exception group:
    IPython (8.15 on) prints such an error with Python's own formatter, to stderr, as it cannot
    show a group's members in its own form."""
    group = getattr(builtins, "BaseExceptionGroup", None)
    seen: set[int] = set()
    while group is not None and err is not None and id(err) not in seen:
        if isinstance(err, group):
            return True
        seen.add(id(err))
        err = err.__context__
    return False


def as_python_prints(err: BaseException, tb: TracebackType | None, shell: Any) -> str:
    """``err`` as a plain cell's ``traceback.print_exc()`` prints it, from the line of IPython's
    ``run_code`` that ran the cell; empty when a link of its chain is too deep to format
    cheaply (IPython's form is shown then)."""
    if any(_frames(link_tb, IPYTHON_FRAMES + 1) > IPYTHON_FRAMES
           for _, link_tb, _ in _chain(err, tb)):
        return ""
    awaited = tb is not None and bool(tb.tb_frame.f_code.co_flags & CO_COROUTINE)
    shown = traceback.TracebackException(type(err), err, tb, compact=True)
    shown.stack = traceback.StackSummary.from_list(
        [*_run_code_frame(type(shell), awaited), *shown.stack])
    return "".join(shown.format())


def format_traceback(err: BaseException, tb: TracebackType | None, shell: Any = None) -> list[str]:
    """``err``'s traceback from ``tb``: IPython's when it is short, else collapsed here.

    IPython's comes as it gives it (one item a frame, each ending in a newline: joined with
    newlines, frames are a blank line apart, as in a plain cell); Python's, one item a line.
    """
    short = all(_frames(link_tb, IPYTHON_FRAMES + 1) <= IPYTHON_FRAMES
                for _, link_tb, _ in _chain(err, tb))
    if short:
        if shell is not None:
            try:
                if isinstance(err, SyntaxError):
                    return _syntax_error(shell, err, tb)
                # tb_offset=0: ``tb`` starts at the cell's frame (IPython's default offset
                # skips its own run_code frame, which the Plain and Minimal modes apply)
                return list(shell.InteractiveTB.structured_traceback(type(err), err, tb,
                                                                     tb_offset=0))
            except Exception:  # no IPython formatter: plain Python formatting
                pass
        return _one_a_line(traceback.format_exception(type(err), err, tb))
    lines: list[str] = []
    for exc, exc_tb, link in reversed(_chain(err, tb)):
        lines.extend(_collapsed(exc, exc_tb))
        if link:
            lines.append(link)
    return _one_a_line(lines)


def _syntax_error(shell: Any, err: SyntaxError, tb: TracebackType | None) -> list[str]:
    """A SyntaxError as IPython shows a plain cell's: the cell's own, as the line and a caret;
    one raised while it ran (``exec``, ``ast.parse``), under its frames as a list, which start,
    as in IPython, at the line of ``run_code`` that ran the cell."""
    frames = traceback.extract_tb(tb) if tb is not None else []
    if frames:
        frames = [*_run_code_frame(type(shell)), *frames]
    return list(shell.SyntaxTB.structured_traceback(type(err), err, frames))


_run_code_frames: dict[tuple, list] = {}


def _run_code_frame(shell_class: type, awaited: bool = False) -> list:
    """The frame of IPython's ``run_code`` where it runs a cell (``awaited``: a cell with a
    top-level ``await``, which it awaits), which IPython lists first in a syntax error raised
    while a plain cell ran, and Python's formatter in a plain cell's exception group; none if
    that line is not found."""
    key = (shell_class, awaited)
    if key not in _run_code_frames:
        found: list = []
        start = "await eval(code_obj" if awaited else "exec(code_obj"
        try:
            import inspect

            run_code = inspect.unwrap(shell_class.run_code)
            lines, first = inspect.getsourcelines(run_code)
            for offset, line in enumerate(lines):
                if line.strip().startswith(start):
                    found = [traceback.FrameSummary(inspect.getsourcefile(run_code) or "",
                                                    first + offset, "run_code",
                                                    line=line.strip())]
                    break
        except (TypeError, OSError, AttributeError):  # no source: the frames alone
            pass
        _run_code_frames[key] = found
    return _run_code_frames[key]


def _one_a_line(chunks: list[str]) -> list[str]:
    """Python's formatted traceback (items ending in newlines) as one item a line."""
    return "".join(chunks).rstrip("\n").split("\n")


def _chain(err: BaseException, tb: TracebackType | None) -> list[tuple]:
    """``[(exception, traceback, link to the one before it)]``, newest first, as Python links them."""
    chain = [(err, tb, "")]
    seen = {id(err)}
    while len(chain) < CHAIN:
        exc = chain[-1][0]
        if exc.__cause__ is not None:
            older, link = exc.__cause__, _CAUSE
        elif exc.__context__ is not None and not exc.__suppress_context__:
            older, link = exc.__context__, _CONTEXT
        else:
            break
        if id(older) in seen:
            break
        seen.add(id(older))
        chain[-1] = (*chain[-1][:2], link)
        chain.append((older, older.__traceback__, ""))
    return chain


def _frames(tb: TracebackType | None, most: int) -> int:
    """How many frames ``tb`` has, counting up to ``most``."""
    count = 0
    while tb is not None and count < most:
        count, tb = count + 1, tb.tb_next
    return count


def _collapsed(err: BaseException, tb: TracebackType | None) -> list[str]:
    """One exception's traceback with repeated frames summarized, as Python formats it."""
    lines = ["Traceback (most recent call last):\n"] if tb is not None else []
    for entry in _collapse(tb):
        if isinstance(entry, tuple):
            lines.append(f"  [... {entry[0]}]\n")
        else:
            lines.extend(traceback.StackSummary.extract([(entry.tb_frame, entry.tb_lineno)])
                         .format())
    lines.extend(traceback.format_exception_only(type(err), err))
    return lines


def _collapse(tb: TracebackType | None) -> list:
    """The frames of ``tb`` to show, and ``(note, frames left out)`` in place of those left out.

    A cycle of up to :data:`LONGEST_CYCLE` frames that repeats more than three times shows its
    first two rounds and its last, as IPython shows recursion; past :data:`SHOWN_FRAMES`, the
    middle is left out too.
    """
    tbs = []
    while tb is not None:
        tbs.append(tb)
        tb = tb.tb_next
    keys = [(entry.tb_frame.f_code, entry.tb_lineno) for entry in tbs]
    shown: list = []
    i, n = 0, len(keys)
    while i < n:
        for cycle in range(1, LONGEST_CYCLE + 1):
            end = i + cycle
            while end < n and keys[end] == keys[end - cycle]:
                end += 1
            rounds = (end - i) // cycle
            if rounds > 3:
                break
        else:
            shown.append(tbs[i])
            i += 1
            continue
        where = ", ".join(f"{code.co_name} at line {line}" for code, line in keys[i:i + cycle])
        shown.extend(tbs[i:i + 2 * cycle])
        shown.append((f"skipping similar frames: {where} ({rounds - 3:,} times)",
                      (rounds - 3) * cycle))
        shown.extend(tbs[i + (rounds - 1) * cycle:i + rounds * cycle])
        i += rounds * cycle
    if len(shown) > SHOWN_FRAMES:
        half = SHOWN_FRAMES // 2
        frames = sum(entry[1] if isinstance(entry, tuple) else 1 for entry in shown[half:-half])
        shown = [*shown[:half], (f"skipping {frames:,} more frames", frames), *shown[-half:]]
    return shown
