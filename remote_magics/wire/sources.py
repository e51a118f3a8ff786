"""Where code sent by value was written: its file name, its cell's lines and label travel with it.

cloudpickle names the file of every code object it sends ``<dynamic-code>`` (its bytes then do
not depend on where a function was defined), and the receiver has no lines for it. A traceback
through a notebook function run remotely showed ``File <dynamic-code>:4`` and no source where a
plain cell shows ``Cell In[3], line 4, in f(x)`` and the line. Here a code object keeps its file
name. A file that exists only in memory (a cell: IPython and the engine keep their cells in
:mod:`linecache`, never on disk) goes with its lines, and with the label this side's IPython gives
it (``Cell``, ``In[3]``). The receiver keeps both: tracebacks formatted there read the lines from
:mod:`linecache` and the label from its shell's compiler, once :func:`label_cells` has hooked it.

Standard library only: shipped with the engine.
"""
from __future__ import annotations

import linecache
import types
from typing import Any, Callable

#: Labels of cells whose code arrived here: file name → (label, name), ``("Cell", "In[3]")``.
_arrived: dict[str, tuple[str, str]] = {}
#: This side's own labeller: the ``format_code_name`` of its IPython shell's compiler, if hooked.
_own: list[Callable[[str], Any]] = []


def label_cells(compiler: Any) -> None:
    """Make ``compiler`` (an IPython shell's ``compile``) label cells whose code arrived here
    as their own side does (``Cell In[3]``), and remember its own labels for code sent from here.

    Idempotent; a compiler without ``format_code_name`` (an old IPython) is left as it is.
    """
    own = getattr(compiler, "format_code_name", None)
    if own is None or getattr(own, "labels_arrived_cells", False):
        return

    def format_code_name(name: str) -> Any:
        return own(name) or _arrived.get(name)  # a cell of its own: its label, however it came

    format_code_name.labels_arrived_cells = True  # type: ignore[attr-defined]
    compiler.format_code_name = format_code_name
    _own[:] = [own]


def label(filename: str) -> tuple[str, str] | None:
    """What a traceback calls ``filename`` here: ``("Cell", "In[3]")`` for a cell, else None."""
    return _own_label(filename) or _arrived.get(filename)


def _own_label(filename: str) -> tuple[str, str] | None:
    """The label this side's own shell gives ``filename``: one of its own cells, else None."""
    try:
        named = _own[0](filename) if _own else None
    except Exception:  # a compiler of another IPython: no label, the file name shows
        named = None
    if isinstance(named, tuple) and len(named) == 2 and all(isinstance(p, str) for p in named):
        return (named[0], named[1])
    return None


def in_memory_lines(filename: str) -> list[str] | None:
    """The lines of ``filename`` when they exist only in :mod:`linecache` (a cell), else None."""
    entry = linecache.cache.get(filename)
    if isinstance(entry, tuple) and len(entry) == 4 and entry[1] is None:
        return entry[2]  # the very list: a pickle stream sends it once for all its functions
    return None


def reduce_code(code: types.CodeType, reduced: tuple) -> tuple:
    """``code``'s reduction: cloudpickle's ``reduced`` (``CodeType`` and its arguments), rebuilt
    by :func:`code_at` with its own file name, its cell's lines and label."""
    filename = code.co_filename
    return code_at, (reduced[1], filename, in_memory_lines(filename), label(filename))


def code_at(args: tuple, filename: Any, lines: Any, named: Any) -> types.CodeType:
    """A code object from cloudpickle's arguments, named for the file it was written in; that
    file's lines and label are kept here for tracebacks (see the module docstring)."""
    code = types.CodeType(*args)
    if not isinstance(filename, str):
        return code
    code = code.replace(co_filename=filename)
    if _own_label(filename) is not None:  # a cell of this side that went and came back
        return code
    if isinstance(lines, list) and all(isinstance(line, str) for line in lines):
        entry = linecache.cache.get(filename)
        if entry is None or (isinstance(entry, tuple) and len(entry) == 4 and entry[1] is None):
            # a real file here (mtime set) keeps its own lines; a cell's are the sender's
            linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    if isinstance(named, tuple) and len(named) == 2 and all(isinstance(p, str) for p in named):
        _arrived[filename] = (named[0], named[1])
    return code
