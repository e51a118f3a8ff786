"""Which statements of a cell show their values, as IPython's ``ast_node_interactivity`` says.

A plain IPython cell runs its statements in two parts: those that show nothing, then those run
"interactively" (Python's ``single`` mode), whose expression statements go to the display hook
and show as ``Out[n]``. Which part a statement goes to is the shell's setting:

- ``last_expr`` (IPython's default): the last statement, if it is an expression;
- ``last_expr_or_assign``: that, or the name the last statement assigns (``x = f()`` shows x);
- ``last``: the last statement, whatever it is (a ``for`` loop shows each of its expressions);
- ``all``: every statement;
- ``none``: none.

A cell whose last token is ``;`` shows nothing, whatever the setting (IPython's quiet result).

:func:`plan` splits a cell so; the engine runs the first part as plain code, the interactive
statements with :func:`showing` as the display hook, and the last expression apart, as the
cell's result (``Out[n]``, which comes back to the notebook as today).
"""
from __future__ import annotations

import ast
import contextlib
import contextvars
import sys
from typing import Any, Callable, Iterator, NamedTuple

from ..wire.protocol import INTERACTIVITY

#: IPython's default: only a last expression shows, the cell's result.
DEFAULT = INTERACTIVITY[0]


class Plan(NamedTuple):
    """A cell split by what shows: run ``quiet``, then ``shown`` (its expressions displayed as
    they run), then evaluate ``result`` (or None), the cell's value."""

    quiet: list[ast.stmt]
    shown: list[ast.stmt]
    result: ast.expr | None


def setting_of(shell: Any) -> str:
    """A shell's ``ast_node_interactivity`` (a class attribute set by hand counts, as IPython
    reads it), or the default when there is no shell or no valid value."""
    value = getattr(shell, "ast_node_interactivity", DEFAULT)
    return value if value in INTERACTIVITY else DEFAULT


def plan(body: list[ast.stmt], setting: str) -> Plan:
    """Split a cell's top-level statements by ``setting`` (one of IPython's, as
    :data:`~..wire.protocol.INTERACTIVITY` lists them)."""
    body = list(body)
    if setting == "last_expr_or_assign" and body:
        target = _assigned_name(body[-1])
        if target is not None:  # IPython shows the name the cell ends by assigning
            shown = ast.Expr(ast.Name(target, ast.Load()))
            body.append(ast.copy_location(shown, body[-1]))
            ast.fix_missing_locations(shown)
    if not body or setting == "none":
        return Plan(body, [], None)
    *head, last = body
    result = last.value if isinstance(last, ast.Expr) else None
    tail = [] if result is not None else [last]
    if setting == "all":
        return Plan([], head + tail, result)
    if setting == "last":
        return Plan(head, tail, result)
    return Plan(head + tail, [], result)  # last_expr, last_expr_or_assign


def _assigned_name(node: ast.stmt) -> str | None:
    """The name a last ``x = ...``, ``x += ...`` or ``x: int = ...`` binds, as IPython finds it
    (an assignment's first target; a tuple or an attribute is not a name)."""
    if isinstance(node, ast.Assign):
        target = node.targets[0]
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        target = node.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


_SHOW: contextvars.ContextVar[Callable[[Any], None] | None] = contextvars.ContextVar(
    "remote_magics_show", default=None)
_BEFORE: list = []  # the display hook there was before ours first went in


def _display_hook(value: Any) -> None:
    """``sys.displayhook`` while the engine runs: a run's own statement values go to its
    ``show``; anything else to the hook there was before."""
    show = _SHOW.get()
    if show is not None:
        if value is not None:
            show(value)
            _fill_run_cells_result(value)
        return
    (_BEFORE[0] if _BEFORE else sys.__displayhook__)(value)


def _fill_run_cells_result(value: Any) -> None:
    """What IPython's display hook does for ``get_ipython().run_cell(code)`` run by a cell: the
    value of its last expression is its ``ExecutionResult.result`` (hunt 23 H23-18: None)."""
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    hook = getattr(get_ipython() if get_ipython is not None else None, "displayhook", None)
    running = getattr(hook, "exec_result", None)
    if running is not None:
        running.result = value


@contextlib.contextmanager
def showing(show: Callable[[Any], None]) -> Iterator[None]:
    """While it lasts, the values of this context's interactive statements go to ``show`` (a
    thread of another run keeps its own)."""
    if sys.displayhook is not _display_hook:
        _BEFORE[:] = [sys.displayhook]
        sys.displayhook = _display_hook
    token = _SHOW.set(show)
    try:
        yield
    finally:
        _SHOW.reset(token)


__all__ = ["DEFAULT", "Plan", "setting_of", "plan", "showing"]
