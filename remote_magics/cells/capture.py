"""Which notebook names a cell reads and writes, found from its syntax alone.

Written for the ``%%remote`` magic: before a cell runs in a remote kernel, ``reads`` says which
notebook variables it may need; afterwards ``writes`` and ``deletes`` say which names to bring
back or remove. This module knows the Python AST and IPython's magics as calls (what
``%timeit``, ``!cmd`` and ``%%capture`` become), nothing about kernels or sockets.

The analysis follows Python's scoping rules in one walk over the cell, in evaluation order. The
walk keeps the set of names the cell has *definitely* bound so far; looking a name up in the
cell's globals before that is a read. Function and lambda bodies run at an unknown later time,
so their global look-ups are judged against what was bound when the ``def`` or ``lambda`` ran.
Where flow is uncertain (branches, loops, exceptions, short-circuit operators) a binding counts
as possibly missing, so ``reads`` may hold extra names but never misses one. One exception, by
design: a ``with`` body counts as running to the end, though a context manager can swallow an
exception raised in it.
"""
from __future__ import annotations

import ast
import io
import keyword
import re
import string
import tokenize
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, NamedTuple, Union

from ..engine import settings

__all__ = ["CellNames", "analyze", "names_in", "pandas_string_names"]


@dataclass(frozen=True)
class CellNames:
    """The notebook names one cell touches; every tuple is in first-seen order, without repeats.

    ``reads``: names the cell may look up in the notebook namespace before binding them itself
    (builtins and dunders included: the caller filters them against the namespace).
    ``writes``: names the cell binds, or may bind, at cell level, including deleted ones.
    ``deletes``: names the cell may remove at cell level (also in ``writes``): with ``del``, or
    as the ``except ... as NAME`` that Python unbinds after its handler.
    ``last_expr``: the last top-level statement is an expression, the cell's result (``Out[n]``);
    not when the cell ends with ``;``, which silences the result as IPython does.
    ``quiet``: the cell ends with ``;``: none of its statements shows a value, whatever the
    shell's ``ast_node_interactivity``.
    ``star_import``: the cell does ``from m import *`` or ``%run script.py`` (which binds the
    script's names), so ``writes`` is incomplete.
    ``maybe_changed``: names the cell reads that it may change in place without assigning them:
    a method is called on them (``lst.append(4)``), something in them is assigned or deleted
    (``x[0] = 1``, ``df.loc[m, 'c'] = v``, ``obj.a = 2``), or they are passed to a call
    (``np.random.shuffle(x)``), or called (a function that keeps state: ``acc(1)`` appends to
    its default ``seen=[]``). Whether one did change is for the side that runs it to see.
    ``augmented``: names the cell gives an augmented assignment at cell level (``a *= 2``,
    ``lst += [1]``, also in a function declaring them ``global``): a mutable object is changed
    in place so, and stays bound to its name.
    ``lists_names``: the cell lists the notebook's names (``%who``, ``%whos``, ``%who_ls``), or
    sees them all (``'df' in globals()``, ``dir()``, ``import __main__``, ``doctest.testmod()``),
    so it reads every one of them.
    ``magics``: the magics the cell runs, as ``("line" | "cell", name)``.
    ``class_attributes``: attributes the cell may set (or delete) on a class it reaches by name, outside
    its functions, as ``(owner, attribute)``: ``pd.Series.total = f`` (``("pd.Series",
    "total")``), ``setattr(Series, 'total', f)``, and a pandas accessor registered with
    ``@pd.api.extensions.register_series_accessor('phys')`` (``("pandas:Series", "phys")``).
    Which of them are a library's classes is for the caller to see.
    ``annotates``: the cell annotates a name at cell level (``x: int = 5``, ``y: list``), which
    Python records in the namespace's ``__annotations__`` (made when the cell starts, if
    missing); that name is then among ``reads`` and ``maybe_changed``.
    ``changed_then_bound``: names of ``maybe_changed`` that the cell also binds, which code may
    change before the cell first binds them (``current.append(1); current = []``): the
    notebook's object, which its other names keep, may have changed.
    ``imports``: the modules the cell imports, by their absolute dotted names (``import a.b``,
    ``from a.b import c``: ``a.b``; a relative import is not among them).
    ``imported_as``: what each name an import binds holds, as ``(name, "module")`` or ``(name,
    "module:attribute")``: ``import warnings as w`` gives ``("w", "warnings")``, ``import a.b``
    ``("a", "a")``, ``from pandas import Series`` ``("Series", "pandas:Series")``.
    """

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    deletes: tuple[str, ...]
    last_expr: bool
    star_import: bool
    maybe_changed: tuple[str, ...] = ()
    augmented: tuple[str, ...] = ()
    lists_names: bool = False
    quiet: bool = False
    magics: tuple[tuple[str, str], ...] = ()
    class_attributes: tuple[tuple[str, str], ...] = ()
    annotates: bool = False
    changed_then_bound: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    imported_as: tuple[tuple[str, str], ...] = ()
    #: it hands IPython's shell code in a text made as it runs (``get_ipython().ev(expr)``,
    #: ``.run_cell(src)``, ``.run_line_magic('time', stmt)``): it may read any name, as
    #: ``eval(expr)`` may (hunt 26 H26-27)
    runs_unread_code: bool = False


_PARSE_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def _parse(code: str, filename: str, mode: str, futures: int = 0) -> Any:
    """The syntax tree of ``code``, with the parser's warnings (Python 3.12's ``invalid escape
    sequence``) kept quiet: the cell shows the warnings IPython's checks and the run itself
    give, as plainly, never one more from this analysis. ``futures``: the ``__future__``
    features to parse with (:func:`analyze`).

    """
    with settings.unshown_warnings():
        # dont_inherit: this module's own __future__ imports must not change how it parses.
        return compile(code, filename, mode, flags=_PARSE_FLAGS | futures, dont_inherit=True)


def analyze(code: str, futures: int | None = None) -> CellNames:
    """Analyse one cell's source (IPython syntax already transformed to Python).

    Raises Python's own ``SyntaxError`` when the code does not parse. It parses with the
    ``__future__`` features the notebook's earlier cells imported (``futures``: compiler
    flags; by default those of the running IPython's compiler), as IPython does: after
    ``from __future__ import barry_as_FLUFL``, ``1 <> 2`` parses (hunt 30 H30-5).
    """
    if futures is None:
        futures = future_flags()
    return _analyze(code, futures & settings.FUTURE_FLAGS)


def future_flags(shell: Any = None) -> int:
    """The compiler flags of the ``__future__`` features ``shell`` (by default the running
    IPython) compiles its cells with; 0 outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a requirement
            return 0
        shell = get_ipython()
    flags = getattr(getattr(shell, "compile", None), "flags", 0)
    return flags & settings.FUTURE_FLAGS if isinstance(flags, int) else 0


@lru_cache(maxsize=512)
def _analyze(code: str, futures: int) -> CellNames:
    """:func:`analyze`; cached, since the magic analyses the same cell text again on every
    run."""
    tree = _parse(code, "<cell>", "exec", futures)
    walker = _Walker()
    walker.visit_all(tree.body)
    quiet = bool(tree.body) and _ends_with_semicolon(code, tree.body[-1].lineno)
    changed, bound, imported, sets_attributes, annotated, imported_as = _maybe_changed(tree)
    annotates = annotated and _annotates(tree.body)
    if annotates:  # Python's own: the namespace's `__annotations__` takes each, in place
        walker.reads.setdefault(_ANNOTATIONS, None)
        walker.changed.setdefault(_ANNOTATIONS, None)
    # the notebook's module itself (`import __main__`, `sys.modules['__main__']`, a frame's
    # `f_globals`): every name, and any may change through it (`__main__.seen.append(1)`,
    # hunt 25 H25-9: lost)
    reaches_main = walker.imports_main or (any(word in code for word in _MAIN_WORDS)
                                           and _reads_main(tree))
    return CellNames(
        reads=tuple(walker.reads),
        writes=tuple(walker.writes),
        deletes=tuple(walker.deletes),
        last_expr=bool(tree.body) and isinstance(tree.body[-1], ast.Expr) and not quiet,
        quiet=quiet,
        star_import=walker.star_import,
        lists_names=walker.lists_names or reaches_main
        or (("user_ns" in code or "get_ipython" in code) and _reads_user_ns(tree)),
        maybe_changed=tuple(name for name in {**changed, **walker.changed}
                            if name in walker.reads or name == ANY_NAME)
        + ((ANY_NAME,) if reaches_main and ANY_NAME not in changed
           and ANY_NAME not in walker.changed else ()),
        changed_then_bound=_changed_then_bound(changed, bound, [
            name for name in changed if name in walker.writes and name in walker.reads]),
        magics=tuple(walker.magics),
        runs_unread_code=walker.runs_unread_code,
        augmented=tuple(walker.augmented),
        class_attributes=tuple(dict.fromkeys(class_attributes(tree.body)))
        if sets_attributes else (),
        annotates=annotates,
        imports=tuple(dict.fromkeys(imported)),
        imported_as=tuple(imported_as.items()) if sets_attributes else (),
    )


_ANNOTATIONS = "__annotations__"


def _annotates(statements: Iterable[ast.AST]) -> bool:
    """Whether Python's compiler sets up ``__annotations__`` for these cell-level statements:
    one of them, or one in their blocks (not in a function's or class's), annotates a name."""
    for node in statements:
        if isinstance(node, ast.AnnAssign):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        blocks = [getattr(node, field, None) or [] for field in ("body", "orelse", "finalbody")]
        blocks += [handler.body for handler in getattr(node, "handlers", None) or []]
        blocks += [case.body for case in getattr(node, "cases", None) or []]
        if any(_annotates(block) for block in blocks if isinstance(block, list)):
            return True
    return False


#: pandas' decorators that register an accessor: the class each adds it to.
_ACCESSOR_REGISTRARS = {"register_series_accessor": "pandas:Series",
                        "register_dataframe_accessor": "pandas:DataFrame",
                        "register_index_accessor": "pandas:Index"}


#: The calls that import the module a string names: ``importlib.import_module('mod')``,
#: ``__import__('mod')``.
_IMPORTING_CALLS = frozenset({"import_module", "__import__"})


def _called_name(node: ast.Call) -> str | None:
    """The name a call calls: ``ols`` of ``smf.ols(...)`` and of ``ols(...)``."""
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else \
        func.id if isinstance(func, ast.Name) else None


def _dotted(node: ast.AST) -> str | None:
    """``pd.Series`` for that chain of names and attributes; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def class_attributes(statements: Iterable[ast.AST]) -> Iterator[tuple[str, str]]:
    """The ``(owner, attribute)`` pairs of :attr:`CellNames.class_attributes` in
    ``statements``, outside function bodies (a method's ``self.x = 1`` is no class's)."""
    waiting = [node for node in statements if type(node) not in _LEAVES]
    while waiting:
        node = waiting.pop()
        kind = type(node)
        if kind in _DEFINITIONS:
            waiting.extend(node.decorator_list)
            continue
        if kind is ast.Lambda:
            continue
        if kind in _CLASS_ATTRIBUTE_NODES:
            for target in node.targets if kind is ast.Assign or kind is ast.Delete \
                    else [node.target]:
                if type(target) is ast.Attribute:
                    owner = _dotted(target.value)
                    if owner is not None:
                        yield owner, target.attr
        elif kind is ast.Call:
            called = _called_name(node)
            if called == "setattr" and len(node.args) >= 2:
                attribute = _text(node.args[1])
                owner = _dotted(node.args[0]) if attribute else None
                if owner is not None:
                    yield owner, attribute
            elif called in _ACCESSOR_REGISTRARS and node.args:
                attribute = _text(node.args[0])
                if attribute:
                    yield _ACCESSOR_REGISTRARS[called], attribute
        waiting.extend(_children(node))


_SETTING_CALLS = frozenset({"setattr", *_ACCESSOR_REGISTRARS})
_DEFINITIONS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef})
_CLASS_ATTRIBUTE_NODES = frozenset({ast.Assign, ast.Delete, ast.AugAssign, ast.AnnAssign})


def _reads_user_ns(tree: ast.AST) -> bool:
    """Whether the code reaches IPython's namespace itself (``get_ipython().user_ns[n]``), or
    binds or deletes names there (``get_ipython().push({...})``, ``.del_var(name)``): it sees
    (and may bind) every name then."""
    return any(isinstance(node, ast.Attribute) and node.attr in _USER_NS_WORK
               for node in ast.walk(tree))


#: The shell's attributes that reach its namespace (:func:`_reads_user_ns`).
_USER_NS_WORK = frozenset({"user_ns", "user_global_ns", "push", "del_var", "drop_by_id"})


#: What a cell's text holds when it may look the notebook's module up (:func:`_reads_main`).
_MAIN_WORDS = ("__main__", "__name__", "getmodule", "__globals__", "f_globals")


def _reads_main(tree: ast.AST) -> bool:
    """Whether the code looks the notebook's module up (``sys.modules['__main__']``, or as
    "this module", ``sys.modules[__name__]``, either with ``.get``,
    ``importlib.import_module(__name__)``, ``inspect.getmodule(f)``), or a function's or a
    frame's globals (``f.__globals__``, ``inspect.currentframe().f_globals``): it sees every
    name then."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and (
                _text(node.slice) == "__main__" or _modules(node.value) and _is_name(node.slice)):
            return True
        if isinstance(node, ast.Attribute) and node.attr in ("__globals__", "f_globals"):
            return True
        if not isinstance(node, ast.Call):
            continue
        called = node.func.attr if isinstance(node.func, ast.Attribute) else \
            node.func.id if isinstance(node.func, ast.Name) else None
        names_main = bool(node.args) and (_text(node.args[0]) == "__main__"
                                          or _is_name(node.args[0]))
        if called == "getmodule" or called == "import_module" and names_main \
                or called == "get" and _modules(node.func.value) and names_main:
            return True
    return False


def _modules(node: ast.AST) -> bool:
    """``sys.modules`` (or ``modules`` of ``from sys import modules``)."""
    return isinstance(node, ast.Attribute) and node.attr == "modules" \
        or isinstance(node, ast.Name) and node.id == "modules"


def _is_name(node: ast.AST) -> bool:
    """``__name__``: in a cell, as in a plain one, ``'__main__'``."""
    return isinstance(node, ast.Name) and node.id == "__name__"


def _base_name(node: ast.AST) -> str | None:
    """The name an attribute or item chain starts from: ``df`` of ``df.loc[m, 'c']``, ``la`` of
    ``globals()['la'].append`` and of ``eval('la').fill`` (hunt 19 H19-12)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Subscript) and _namespace_call(node.value):
            key = _text(node.slice)  # a computed one (`globals()[n]`): any name, ANY_NAME
            return (key if key.isidentifier() else None) if key is not None else ANY_NAME
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "eval" and node.args:
        text = _text(node.args[0])
        return text.strip() if text is not None and text.strip().isidentifier() else None
    if isinstance(node, ast.NamedExpr):  # `(y := x)[0] = 3`: y, an alias of x's object
        return node.target.id
    return node.id if isinstance(node, ast.Name) else None


#: What :func:`_base_name` gives for ``globals()[n]``, a name computed as the cell runs: in
#: ``CellNames.maybe_changed``, any name the cell is sent may change.
ANY_NAME = "*"


def _namespace_call(node: ast.AST) -> bool:
    """Whether ``node`` is ``globals()``, ``vars()`` or ``locals()``: the cell's namespace."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args \
        and node.func.id in ("globals", "vars", "locals")


#: Nodes with no node inside them that :func:`_maybe_changed` looks at.
_LEAVES = frozenset({ast.Name, ast.Constant, ast.alias, ast.Pass, ast.Break, ast.Continue,
                     ast.Global, ast.Nonlocal})


def _children(node: ast.AST) -> list[ast.AST]:
    """The nodes directly inside ``node`` but leaves, in ``ast.iter_child_nodes``'s order."""
    found, leaves = [], _LEAVES
    for name in _fields(type(node)):
        value = getattr(node, name, None)
        if type(value) is list:
            found.extend(item for item in value if item is not None and type(item) not in leaves)
        elif value is not None and type(value) not in leaves and isinstance(value, ast.AST):
            found.append(value)
    return found


def _inner_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of ``tree`` but its leaves, breadth first as ``ast.walk`` gives them, without
    its generators (this walk was a third of a long cell's analysis)."""
    nodes, at, leaves = [tree], 0, _LEAVES
    while at < len(nodes):  # (_children inlined: a call per node was a tenth of the walk)
        node = nodes[at]
        at += 1
        for name in _fields(type(node)):
            value = getattr(node, name, None)
            if type(value) is list:
                nodes.extend(item for item in value
                             if item is not None and type(item) not in leaves)
            elif value is not None and type(value) not in leaves and isinstance(value, ast.AST):
                nodes.append(value)
    return nodes


def _store_targets(node: ast.AST) -> list[ast.AST]:
    """What ``node`` stores into or deletes: an assignment's targets, a loop's or a
    comprehension's variable (``for model.lr in rates`` sets ``model.lr``: hunt 20 H20-4), a
    ``with``'s ``as`` parts."""
    if isinstance(node, (ast.Assign, ast.Delete)):
        return node.targets
    if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.comprehension)):
        return [node.target]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return [item.optional_vars for item in node.items if item.optional_vars is not None]
    return []


#: Context managers that never suppress an exception (their ``__exit__`` returns false), by
#: the name they are called by (``open(p)``, ``gzip.open(p)``, ``np.errstate(...)``): a ``with``
#: of these runs its body to the end or raises, so what the body binds is bound after it.
NEVER_SUPPRESSING = frozenset({
    "open", "File", "ZipFile", "TarFile", "TemporaryDirectory", "NamedTemporaryFile",
    "TemporaryFile", "SpooledTemporaryFile", "errstate", "printoptions", "catch_warnings",
    "option_context", "context", "rc_context", "no_grad", "inference_mode", "enable_grad",
    "redirect_stdout", "redirect_stderr", "nullcontext", "closing", "ExitStack", "Pool",
    "ThreadPoolExecutor", "ProcessPoolExecutor", "localcontext", "scandir", "Popen",
    "urlopen", "connect", "Session", "Timer", "timer", "tqdm", "capture_output",
})


def _never_suppresses(expr: ast.AST) -> bool:
    """Whether a ``with`` item's expression is a call of one of :data:`NEVER_SUPPRESSING`."""
    if type(expr) is not ast.Call:
        return False
    func = expr.func
    name = func.id if type(func) is ast.Name else func.attr if type(func) is ast.Attribute \
        else None
    return name in NEVER_SUPPRESSING


class _Changes(NamedTuple):
    """What :func:`_maybe_changed` found."""

    changed: dict[str, tuple[int, int]]
    bound: dict[str, tuple[int, int]]
    imported: list[str]
    sets_attributes: bool
    annotated: bool
    imported_as: dict[str, str]


def _maybe_changed(tree: ast.AST) -> _Changes:
    """Names whose objects the code may change in place (see ``CellNames.maybe_changed``),
    each with the place (line, column) of the first code that may change it; the place of
    the first statement that binds each name the code binds (an augmented assignment aside:
    it binds the object it changed), for :func:`_changed_then_bound`; and the modules the code
    imports (absolute, dotted: ``CellNames.imports``); and whether the code may set a class's
    attribute (it assigns or deletes an attribute, or calls ``setattr`` or a pandas accessor
    registrar somewhere: else :func:`class_attributes` need not walk it); and whether it
    annotates a name or attribute anywhere (else :func:`_annotates` need not walk it).

    Through another name too: a loop's variable (``for row in grid: row.append(0)`` may change
    ``grid``'s rows, and so may ``for a in arrays: a += 5``, ``for df in [train, test]:
    df['b'] = 1``), a name bound to one or a part of one (``it = box``, ``row = grid[0]``,
    ``left, right = la, lb``, ``cfg = user_cfg or defaults``), a part passed to a call
    (``shuffle(deck.cards)``, ``map(acc.add, xs)``, ``fill([l1, l2])``)."""
    found: dict[Any, tuple[int, int]] = {}

    bound: dict[Any, tuple[int, int]] = {}
    imported: list[str] = []
    imported_as: dict[str, str] = {}
    sets_attributes = annotated = False

    def mark(names: Iterable[str | None], node: ast.AST, into: dict = found) -> None:
        if not names:  # (most calls: an argument that is a constant or an operation)
            return
        at = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        for name in names:
            if name not in into or at < into[name]:
                into[name] = at

    aliases: list[tuple[list[str], list[str]]] = []  # (names bound, the names they hold a part of)
    for node in _inner_nodes(tree):
        kind = type(node)
        if kind not in _CHANGING:  # most nodes: an operation, an attribute, a statement
            continue
        if kind is ast.Call:
            called = _called_name(node)
            sets_attributes = sets_attributes or called in _SETTING_CALLS
            if called in _IMPORTING_CALLS and node.args and type(node.args[0]) is ast.Constant \
                    and isinstance(node.args[0].value, str) \
                    and not node.args[0].value.startswith("."):  # a plugin loader's literal
                imported.append(node.args[0].value)  # `importlib.import_module('mod')`
            if isinstance(node.func, (ast.Attribute, ast.Subscript)):  # `d['log'](1)` too:
                receiver = node.func.value  # what it calls is held in `d`; `(a if c else
                mark(_sources(receiver) if type(receiver) in _CHOICES  # b).append(1)`: both
                     else [_base_name(receiver)], node)  # (hunt 23 H23-8)
            elif type(node.func) is ast.Name:  # a function that keeps state (`seen=[]`)
                mark([node.func.id], node)
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                mark(_sources(arg), node)
            continue
        if kind is ast.Import or kind is ast.ImportFrom:
            mark([(a.asname or a.name).partition(".")[0] for a in node.names], node, bound)
            if kind is ast.Import:
                imported.extend(a.name for a in node.names)
                imported_as.update((a.asname, a.name) if a.asname else
                                   (a.name.partition(".")[0],) * 2 for a in node.names)
            elif node.module and not node.level:
                imported.append(node.module)
                imported_as.update((a.asname or a.name, f"{node.module}:{a.name}")
                                   for a in node.names if a.name != "*")
            continue
        if kind is ast.ExceptHandler:
            if node.name:
                mark([node.name], node, bound)
            continue
        if kind in _LOOPS:
            names = _bound_names(node.target)
            aliases.append((names, _sources(node.iter)))
            if kind is not ast.comprehension:  # (a comprehension's are its own)
                mark(names, node, bound)
        elif kind is ast.Assign:
            names = [n for t in node.targets for n in _bound_names(t)]
            aliases.append((names, _sources(node.value)))
            mark(names, node, bound)
        elif kind is ast.NamedExpr:
            aliases.append(([node.target.id], _sources(node.value)))
            mark([node.target.id], node, bound)
        elif kind is ast.Match:  # `case Point(0, y) as s:`, `case [first, *rest]:`: each
            for case in node.cases:  # name a pattern captures holds the subject or a part
                names = _captured(case.pattern)  # of it, as a loop's variable does (H23-8)
                aliases.append((names, _sources(node.subject)))
                mark(names, case.pattern, bound)
        elif kind is ast.Delete or kind is ast.AnnAssign:
            annotated = annotated or kind is ast.AnnAssign
            if kind is ast.AnnAssign and node.value is not None and type(node.target) is ast.Name:
                aliases.append(([node.target.id], _sources(node.value)))  # `row: list = grid[0]`
            mark([n for t in (node.targets if kind is ast.Delete else [node.target])
                  for n in _bound_names(t)], node, bound)
        elif kind in _DEFINITIONS:
            mark([node.name], node, bound)
            for decorator in node.decorator_list:  # `@Reg.on` calls Reg.on(f)
                mark([_base_name(decorator.func if type(decorator) is ast.Call
                                 else decorator)], decorator)
        elif kind is ast.With or kind is ast.AsyncWith:
            mark([n for item in node.items if item.optional_vars is not None
                  for n in _bound_names(item.optional_vars)], node, bound)
        elif kind is ast.AugAssign and type(node.target) is ast.Name:
            mark([node.target.id], node)  # `a += 5` changes a list or an array in place: a
            # loop's variable's (`for a in arrays`) or an alias's (`q = x`) source (H19-2)
        for target in _store_targets(node):  # `x.a = 1`, `for box[0] in ...`, `as cfg['c']`
            if type(target) is ast.Name:  # most: a name, with nothing stored into
                continue
            sets_attributes = sets_attributes or type(target) is ast.Attribute
            mark([_base_name(part) for part in ast.walk(target)
                  if isinstance(part, (ast.Attribute, ast.Subscript))],
                 target if kind is ast.comprehension else node)
        if kind is ast.With or kind is ast.AsyncWith:  # its __enter__ and __exit__ run
            mark([_base_name(item.context_expr) for item in node.items], node)
        # what a definition keeps of an object, its code may change (hunt 20 H20-15): a default
        # (`def f(x, cache=memo)`), a class keyword (`class C(Base, registry=reg)`, which
        # `__init_subclass__` may add to) and a class attribute (`class C: items = shared`)
        elif kind is ast.ClassDef:
            for keyword in node.keywords:
                mark(_sources(keyword.value), node)
            for statement in node.body:
                if isinstance(statement, (ast.Assign, ast.AnnAssign)) \
                        and statement.value is not None:
                    mark(_sources(statement.value), statement)
        elif kind in _FUNCTIONS:
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    mark(_sources(default), node)
    grown = True
    while grown:  # what a loop's variable or an alias may change, its source may have changed
        grown = False
        for names, sources in aliases:
            places = [found[n] for n in names if n in found]
            if places and any(found.get(source, (1 << 30, 0)) > min(places)
                              for source in sources):
                at = min(places)
                for source in sources:
                    if found.get(source, (1 << 30, 0)) > at:
                        found[source] = at
                grown = True
    found.pop(None, None)
    return _Changes(found, bound, imported, sets_attributes, annotated, imported_as)


#: The nodes :func:`_maybe_changed` looks at: those that call, bind, store, import or define.
_LOOPS = frozenset({ast.For, ast.AsyncFor, ast.comprehension})
_FUNCTIONS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda})
_CHOICES = frozenset({ast.IfExp, ast.BoolOp})  # `a if c else b`, `a or b`: either object
_CHANGING = frozenset({
    ast.Call, ast.For, ast.AsyncFor, ast.comprehension, ast.Assign, ast.NamedExpr, ast.Match,
    ast.Delete,
    ast.AnnAssign, ast.AugAssign, ast.Import, ast.ImportFrom, ast.FunctionDef,
    ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ExceptHandler, ast.With, ast.AsyncWith})


def _changed_then_bound(changed: dict[str, tuple[int, int]], bound: dict[str, tuple[int, int]],
                        names: Iterable[str]) -> tuple[str, ...]:
    """Those of ``names`` (which the cell both changes and binds) that code may change before
    the cell first binds them, in the order of the code (``current.append(1); current = []``):
    the notebook's object changed, which its other names still hold. Not ``df =
    df.dropna()``, where the name is bound after the call in the same statement. ``Z -=
    Z.mean()`` binds Z to the object it changed: no binding away from it (hunt 19 H19-39:
    ``Z -= Z.mean(); Z = Z / 2``)."""
    return tuple(name for name in names
                 if name in bound and changed.get(name, (1 << 30, 0)) < bound[name])


def _sources(node: ast.AST) -> list[str]:
    """The names whose objects (or parts of them) an expression may give: ``df`` of
    ``df.loc[m]``, each name of a literal (``[train, test]``, ``{'x': d1}.items()``), of a
    choice (``a if c else b``, ``cfg or defaults``, ``(y := x)``), what a call of one's
    method gives (``d.values()``, ``zip(xs, ys)``), and a comprehension's (``[r for r in
    rows]``); none of a constant or an operation."""
    base = _base_name(node)
    if base is not None:
        return [base]
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [name for item in node.elts for name in _sources(item)]
    if isinstance(node, ast.Dict):
        return [name for item in node.values for name in _sources(item)]
    if isinstance(node, ast.IfExp):
        return _sources(node.body) + _sources(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [name for item in node.values for name in _sources(item)]
    if isinstance(node, ast.NamedExpr):
        return [node.target.id, *_sources(node.value)]
    if isinstance(node, ast.Call):  # `zip(xs, ys)`, `enumerate(frames)`, `d.items()`
        return [name for item in (node.func, *node.args) for name in _sources(item)]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        # `{p.name: p for p in players}`, `[r for r in rows]`: what it iterates over, and what
        # its items name besides its own variables (hunt 24 H24-9)
        own = {name for part in node.generators for name in _bound_names(part.target)}
        items = (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,)
        return [*(name for part in node.generators for name in _sources(part.iter)),
                *(name for item in items for name in _sources(item) if name not in own)]
    return []


def _captured(pattern: ast.AST) -> list[str]:
    """The names a ``case`` pattern binds: ``as`` names, bare captures, ``*rest``, ``**rest``."""
    names = []
    for node in ast.walk(pattern):
        kind = type(node)
        if (kind is ast.MatchAs or kind is ast.MatchStar) and node.name:
            names.append(node.name)
        elif kind is ast.MatchMapping and node.rest:
            names.append(node.rest)
    return names


def _bound_names(target: ast.AST) -> list[str]:
    """The names an assignment or loop target binds (``row``, ``k, v``, ``first, *rest``);
    none for a store into an object (``X[0]``, ``o.x``, ``for box[0] in ...``): ``X[0] = 0;
    X = X / X.max()`` changes the notebook's ``X`` before it first binds the name (hunt 23
    H23-1; the names inside such a target were taken as bound there, so the change was lost)."""
    kind = type(target)
    if kind is ast.Name:
        return [target.id]
    if kind is ast.Tuple or kind is ast.List:
        return [name for item in target.elts for name in _bound_names(item)]
    if kind is ast.Starred:
        return _bound_names(target.value)
    if kind is ast.Subscript and _namespace_call(target.value):  # `del globals()['d']`
        key = _text(target.slice)
        return [key] if key is not None and key.isidentifier() else []
    return []


#: IPython magics that run their argument (or cell body) as Python in the caller's namespace,
#: or describe the object it names (``x?``): the options before it that take a value, and
#: whether what it assigns binds there. As a cell magic, what follows the options on the line
#: runs before the body (``%%timeit``'s setup, ``%%prun``'s and ``%%debug``'s first statement).
_CODE_MAGICS = {"time": ((), True), "timeit": (("-n", "-r", "-p"), False),
                "prun": (("-D", "-l", "-s", "-T"), True),
                "debug": (("-b", "--breakpoint"), True),
                **dict.fromkeys(("pinfo", "pinfo2", "pdef", "pdoc", "psource", "pfile"),
                                ((), False))}  # `x?` and friends: the object they describe

#: Magics whose line IPython passes as it is: every other magic's line has its ``{expr}`` and
#: ``$name`` expanded from the caller's names first (``InteractiveShell.var_expand``).
_NO_VAR_EXPAND = frozenset(("time", "timeit", "prun", "debug"))

#: ``get_ipython()`` methods that run their string argument as code in the shell's namespace:
#: as a cell of its own, as statements, or as an expression.
_SHELL_CODE = {"run_cell": "exec", "ex": "exec", "ev": "eval"}

#: How many leading arguments of a ``get_ipython()`` method are code it runs (or the magic
#: that runs it): one of them made as the cell runs may read any name.
_CODE_ARGUMENTS = {**dict.fromkeys(_SHELL_CODE, 1), "run_line_magic": 2, "run_cell_magic": 3}

#: ``get_ipython()`` methods that run a shell command after expanding it as a magic's line.
_SHELL_COMMANDS = frozenset(("system", "system_piped", "system_raw", "getoutput"))

#: ``$name`` and ``$name.attr`` outside single quotes, as IPython's ``DollarFormatter`` finds
#: them (``$$name`` stands for a literal ``$name``).
_DOLLAR = re.compile(r"(.*?)\$(\$?[\w\.]+)(?=([^']*'[^']*')*[^']*$)")


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _shell_call(node: ast.Call) -> tuple[str, list[str | None]] | None:
    """``get_ipython().method(...)``: the method's name and its arguments' texts (None for an
    argument that is not a string literal); None for any other call."""
    func = node.func
    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython"):
        return func.attr, [_text(arg) for arg in node.args]
    return None


def _magic_code(line: str, valued: tuple[str, ...]) -> str:
    """A line magic's Python after its leading options (``-n1 -r 3 x.sum()`` → ``x.sum()``)."""
    rest = line.lstrip()
    while rest.startswith("-"):
        option, _, rest = rest.partition(" ")
        if option in valued:  # its value is the next word
            _, _, rest = rest.lstrip().partition(" ")
        rest = rest.lstrip()
    return rest


def _expansions(text: str) -> list[str]:
    """The Python expressions IPython's ``var_expand`` evaluates in a shell command or a magic's
    line: each ``{expr}`` (``${expr}`` too) and each ``$name`` or ``$name.attr``, as its
    ``DollarFormatter`` parses them. A line it cannot parse, IPython leaves as it is."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        return []
    found = []
    for literal, field_name, spec, _ in parts:
        found += [m.group(2) for m in _DOLLAR.finditer(literal) if not m.group(2).startswith("$")]
        if field_name:  # IPython puts a `:` part back: `{x[1:3]}` is a slice, not a format
            found.append(f"{field_name}:{spec}" if spec else field_name)
    return found


_transformer: Any = None


@lru_cache(maxsize=256)
def _as_python(code: str) -> str:
    """IPython's Python for code a magic runs as a cell (``%%capture``'s body, ``%%time``'s):
    its own ``!cmd`` and ``%magic`` lines become calls, as IPython transforms them."""
    global _transformer
    if "%" not in code and "!" not in code and "?" not in code:
        return code  # plain Python: nothing to transform
    try:
        if _transformer is None:
            from IPython.core.inputtransformer2 import TransformerManager
            _transformer = TransformerManager()
        return _transformer.transform_cell(code)
    except Exception:  # what IPython cannot transform does not run there either
        return code


def _code_in_strings(node: ast.Call, shell: tuple[str, list[str | None]] | None,
                     ) -> Iterator[tuple[str, str, bool]]:
    """Python that a call runs from string arguments whose meaning is known: (code, mode, binds).

    ``get_ipython().run_line_magic('timeit', '-n1 x.sum()')`` and ``run_cell_magic('time', '',
    body)`` (what ``%timeit`` and ``%%time`` become), ``%%capture``'s body, ``eval('x')``,
    ``exec('y = x')``, ``pd.eval('df1 + df2')``, ``get_ipython().ex('y = x')`` (and ``ev``,
    ``run_cell``), and the ``{expr}`` and ``$name`` that a shell command (``!echo $x``,
    ``files = !ls {path}``) or a magic's line expands, which only read.
    """
    func, args = node.func, node.args
    texts = [_text(arg) for arg in args]
    if isinstance(func, ast.Name) and func.id in ("eval", "exec") and texts and texts[0]:
        yield texts[0], func.id, True
    elif shell is not None:
        method, texts = shell
        if method in _SHELL_COMMANDS and texts and texts[0] is not None:
            yield from ((expr, "eval", False) for expr in _expansions(texts[0]))
        if method in _SHELL_CODE and texts and texts[0] is not None:  # `get_ipython().ex(s)`
            yield _as_python(texts[0]), _SHELL_CODE[method], True
            return
        if method not in ("run_line_magic", "run_cell_magic") or len(texts) < 2 \
                or texts[0] is None or texts[1] is None:
            return
        magic, line = texts[0], texts[1]
        if magic not in _NO_VAR_EXPAND:
            yield from ((expr, "eval", False) for expr in _expansions(line))
        if magic == "xdel":  # `%xdel a`: reads `a`, then deletes it (and what refers to it)
            names = [word for word in line.split() if word.isidentifier()]
            yield "".join(f"{name}\ndel {name}\n" for name in names), "exec", True
        body = texts[2] if method == "run_cell_magic" and len(texts) >= 3 else None
        if magic == "capture" and body is not None:  # runs its body as a cell of its own
            yield _as_python(body), "exec", True
        elif magic in _CODE_MAGICS:
            valued, binds = _CODE_MAGICS[magic]
            if method == "run_line_magic":
                yield _as_python(_magic_code(line, valued)), "exec", binds
            elif body is not None:
                yield _as_python(f"{_magic_code(line, valued)}\n{body}"), "exec", binds
    elif isinstance(func, ast.Attribute):
        owner = func.value
        if func.attr == "eval" and isinstance(owner, ast.Name) and owner.id in ("pd", "pandas") \
                and texts and texts[0]:
            yield texts[0].replace("@", ""), "eval", True
    formula = _formula(node)
    if formula:  # patsy looks its names up in the caller's namespace: they only read
        names = names_in(formula)
        if names:
            yield f"({', '.join(names)},)", "eval", False


#: Calls that take a patsy formula (patsy's own, and statsmodels' formula API: ``smf.ols``),
#: whose Python parts name the caller's values: ``'y ~ np.log(x1) + double(x0)'``.
_FORMULA_CALLS = frozenset((
    "dmatrices", "dmatrix", "ols", "wls", "gls", "glsar", "glm", "gee", "ordinal_gee",
    "nominal_gee", "logit", "probit", "mnlogit", "poisson", "negativebinomial", "quantreg",
    "rlm", "mixedlm", "phreg", "from_formula"))

#: What a call (not the shell's) must call for :func:`_code_in_strings` to find code in it:
#: ``eval``, ``exec``, ``pd.eval`` or a formula's.
_CALLS_WITH_CODE = frozenset(("eval", "exec")) | _FORMULA_CALLS


#: A name in a text of code that is not an attribute (``np`` in ``np.log(x)``, not ``log``).
_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)")


def names_in(text: str) -> list[str]:
    """The names a text of code (a patsy formula, an annotation's string) refers to, as a
    regular expression finds them: not attributes, not keywords."""
    return [name for name in _NAME.findall(text) if not keyword.iskeyword(name)]


def _formula(node: ast.Call) -> str | None:
    """The formula a :data:`_FORMULA_CALLS` call is given (its first argument, or
    ``formula=``), when it is a string literal with a ``~`` or is patsy's ``dmatrix``'s."""
    called = _called_name(node)
    if called not in _FORMULA_CALLS:
        return None
    given = [_text(node.args[0])] if node.args else []
    given += [_text(word.value) for word in node.keywords if word.arg in ("formula", "formula_like")]
    text = next((text for text in given if text), None)
    return text if text and ("~" in text or called == "dmatrix") else None


#: IPython magics that list the names of the namespace they run in, or delete those a pattern
#: matches (``%reset_selective -f ^x$``: every name goes, and those it deleted are gone here too).
_LISTING_MAGICS = frozenset(("who", "whos", "who_ls", "reset_selective", "xdel"))


#: Calls that see every name of the namespace: ``globals()``, ``dir()``, ``vars()``,
#: ``locals()`` (``'df' in globals()``), and tools that search ``__main__`` (doctest, unittest).
_NAMESPACE_BUILTINS = frozenset(("globals", "dir", "vars", "locals"))
_MAIN_SEARCHERS = frozenset((("doctest", "testmod"), ("unittest", "main")))


def _sees_the_namespace(node: ast.Call) -> bool:
    """Whether a call reads the whole namespace, as :data:`_NAMESPACE_BUILTINS` and
    :data:`_MAIN_SEARCHERS` do (a plain cell's sees every name of the notebook)."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in _NAMESPACE_BUILTINS and not node.args and not node.keywords
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
        and (func.value.id, func.attr) in _MAIN_SEARCHERS


def _line_magic(shell: tuple[str, list[str | None]] | None) -> str | None:
    """The magic's name, for ``get_ipython().run_line_magic('name', ...)`` (``shell``: what
    :func:`_shell_call` gives for the call)."""
    if shell is None or shell[0] != "run_line_magic" or not shell[1]:
        return None
    return shell[1][0]


def _capture_output(shell: tuple[str, list[str | None]] | None) -> tuple[str, bool] | None:
    """For ``%%capture [options] NAME`` (``run_cell_magic('capture', line, body)``, as
    :func:`_shell_call` gives it): NAME, and whether the body ends with ``;``, when IPython
    deletes NAME instead of binding it."""
    if shell is None or shell[0] != "run_cell_magic" or len(shell[1]) < 3:
        return None
    magic, line, body = shell[1][:3]
    if magic != "capture" or line is None or body is None:
        return None
    words = [word for word in line.split() if not word.startswith("-")]
    if not words or not words[0].isidentifier():
        return None
    return words[0], _ends_with_semicolon(body, 1)


_AT_NAME = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


def _at_names(node: ast.Call) -> list[str]:
    """Names a pandas ``query``/``eval`` string refers to as ``@name`` (the caller's variables)."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr in ("query", "eval")):
        return []
    text = _text(node.args[0]) if node.args else None
    return _AT_NAME.findall(text) if text else []


def pandas_string_names(text: str, evaluated: bool) -> list[str]:
    """The names a string pandas reads as an expression may refer to in its caller's
    namespace: its ``@name``s (``query``, ``eval``), and, for one ``pd.eval`` evaluates
    (``evaluated``), every name it reads. For a string a function holds, whose use the
    analysis of a cell does not see (hunt 21 H21-15: ``frame.query('a > @lim')`` in a
    notebook function called remotely)."""
    found = _AT_NAME.findall(text)
    if evaluated:
        try:
            tree = _parse(text.replace("@", ""), "<string>", "eval")
        except (SyntaxError, ValueError):
            return found
        found += [node.id for node in ast.walk(tree) if isinstance(node, ast.Name)]
    return found


def _ends_with_semicolon(code: str, from_line: int) -> bool:
    """Whether the code's last token (comments aside) is ``;``: IPython's quiet result.

    Only the lines from the last statement on are tokenized (a long cell stays cheap).
    """
    tail = "".join(code.splitlines(keepends=True)[from_line - 1:])
    last = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(tail).readline):
            if token.type not in _NOT_CODE:
                last = token.string
    except (tokenize.TokenError, SyntaxError):
        return False
    return last == ";"


_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
             tokenize.ENDMARKER}


@dataclass(eq=False)  # eq=False: scopes hash by identity, as keys of class-body bindings
class _Scope:
    """One Python namespace met during the walk."""

    kind: Literal["module", "class", "function", "comprehension"]
    parent: _Scope | None = None
    private: str = ""  # the enclosing class's name, for mangling `__x`
    deferred: bool = False  # inside a function or lambda body: runs at some later call
    local: set[str] = field(default_factory=set)  # bound so far; complete when the walk leaves
    global_names: set[str] = field(default_factory=set)
    nonlocal_names: set[str] = field(default_factory=set)
    pending: list[str] = field(default_factory=list)  # look-ups resolved when `local` is complete


# A key of _Walker.bound: a cell global's name, or (class scope, name) for a class body.
_Key = Union[str, tuple[_Scope, str]]

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
# Fields that never hold a node (Constant and MatchSingleton, whose `value` is not one, have
# handlers; so do Import, ImportFrom, Global and Nonlocal, whose `names` are not walked).
_NOT_NODES = frozenset({
    "ctx", "op", "ops", "id", "attr", "arg", "asname", "module", "level", "names", "name",
    "conversion", "is_async", "simple", "type_comment", "kind", "kwd_attrs", "rest", "tag",
})
_NODE_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(kind: type) -> tuple[str, ...]:
    """The fields of an AST node type that may hold nodes with names in them."""
    fields = _NODE_FIELDS.get(kind)
    if fields is None:
        fields = _NODE_FIELDS[kind] = tuple(f for f in kind._fields if f not in _NOT_NODES)
    return fields


def _params(args: ast.arguments) -> list[ast.arg]:
    """Every parameter of a function or lambda."""
    every = [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg]
    return [arg for arg in every if arg is not None]


def _outer_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a def, lambda or class that run in the enclosing scope, in evaluation order."""
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords]
    args = node.args
    parts = [*getattr(node, "decorator_list", ()), *args.defaults]
    parts += [default for default in args.kw_defaults if default is not None]
    if not isinstance(node, ast.Lambda):
        parts += [arg.annotation for arg in _params(args) if arg.annotation is not None]
        parts += [node.returns] if node.returns is not None else []
    return parts


def _target_names(target: ast.AST) -> list[str]:
    """Names bound by an assignment target (attributes and subscripts bind no name)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _deleted_names(nodes: Iterable[ast.AST]) -> set[str]:
    """Names a ``del`` or an ``except ... as`` may unbind anywhere inside ``nodes``."""
    found = set()
    for node in nodes:
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Del):
                found.add(inner.id)
            elif isinstance(inner, ast.ExceptHandler) and inner.name:
                found.add(inner.name)
    return found


class _Walker:
    """Walks a cell in evaluation order, recording its global reads, writes and deletes."""

    def __init__(self) -> None:
        self.scope = _Scope("module")
        self.bound: set[_Key] = set()  # definitely bound (or deleted) by the cell at this point
        self.reads: dict[str, None] = {}  # dicts keep first-seen order without repeats
        self.writes: dict[str, None] = {}
        self.deletes: dict[str, None] = {}
        self.star_import = False
        self.lists_names = False
        self.imports_main = False  # `import __main__`: see analyze
        self.changed: dict[str, None] = {}  # maybe changed in place by code run from a string
        self.magics: dict[tuple[str, str], None] = {}  # ("line" | "cell", name) the cell runs
        self.augmented: dict[str, None] = {}  # global names given `x op= value`
        self.runs_unread_code = False  # see CellNames

    # -- traversal --------------------------------------------------------------------------

    def visit(self, node: ast.AST) -> None:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            handler(self, node)
        else:
            self.visit_children(node)

    def visit_children(self, node: ast.AST) -> None:
        visit = self.visit
        for name in _fields(type(node)):
            value = getattr(node, name)
            if type(value) is list:
                for item in value:
                    if item is not None:  # `**d` in a dict display has a None key
                        visit(item)
            elif value is not None:
                visit(value)

    def visit_all(self, nodes: Iterable[ast.AST | None]) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

    def ignore(self, node: ast.AST) -> None:
        pass

    @contextmanager
    def maybe(self) -> Iterator[None]:
        """Walk code that may not run: what it binds counts as unbound afterwards."""
        saved = self.bound
        self.bound = set(saved)
        yield
        self.bound = saved

    @contextmanager
    def inside(self, scope: _Scope) -> Iterator[None]:
        outer, self.scope = self.scope, scope
        yield
        self.scope = outer

    def either(self, *branches: list[ast.AST]) -> None:
        """Walk alternatives of which exactly one runs: afterwards, bound means bound in all."""
        start = self.bound
        ends = []
        for branch in branches:
            self.bound = set(start)
            self.visit_all(branch)
            ends.append(self.bound)
        self.bound = set.intersection(*ends)

    def forget_deletions(self, *nodes: ast.AST) -> None:
        """In a class body, a ``del`` in a loop or try may already have run anywhere in it."""
        if self.scope.kind == "class":
            names = _deleted_names(nodes)
            self.bound.difference_update((self.scope, self.mangle(name)) for name in names)

    # -- names ------------------------------------------------------------------------------

    def mangle(self, name: str) -> str:
        """Python renames `__x` to `_Class__x` inside a class body and the scopes nested in it."""
        if self.scope.private and name.startswith("__") and not name.endswith("__"):
            return f"_{self.scope.private}{name}"
        return name

    def read_global(self, name: str) -> None:
        if name not in self.bound:
            self.reads[name] = None

    def load(self, name: str) -> None:
        name = self.mangle(name)
        scope = self.scope
        if scope.kind != "class":
            self.resolve(name, scope)
        elif name in scope.global_names:
            self.read_global(name)
        elif (scope, name) in self.bound:
            return
        elif scope.deferred:  # a function around the class may bind it: wait for its bindings
            scope.pending.append(name)
        else:
            self.read_global(name)

    def resolve(self, name: str, scope: _Scope) -> None:
        """Follow a look-up outward from ``scope`` until some scope settles where it goes."""
        while scope.kind != "module":
            if scope.kind != "class":  # a class body's names are invisible to nested scopes
                if name in scope.global_names:
                    break
                if scope.kind == "function" and name not in scope.nonlocal_names:
                    scope.pending.append(name)  # local or not, we know once the body is walked
                    return
                if name in scope.local:
                    return
            scope = scope.parent
        self.read_global(name)

    def close(self, scope: _Scope) -> None:
        """Settle a function's or class's pending look-ups, now that all its bindings are known."""
        for name in scope.pending:
            if name in scope.global_names:
                self.read_global(name)
            elif scope.kind == "class" and name in scope.local:
                self.read_global(name)  # missing from the class namespace: Python tries globals
            elif name not in scope.local:
                self.resolve(name, scope.parent)

    def bind(self, name: str, scope: _Scope | None = None, deleted: bool = False) -> None:
        """Note that ``name`` is bound (or deleted) in ``scope``, the current one by default."""
        name = self.mangle(name)
        scope = scope or self.scope
        if scope.kind == "module" or name in scope.global_names:
            self.writes[name] = None
            if deleted:
                self.deletes[name] = None
            self.bound.add(name)  # bound or deleted, the notebook's old value is gone either way
        elif name not in scope.nonlocal_names:
            scope.local.add(name)
            if scope.kind != "class":  # function scopes are fixed at compile time: order is moot
                return
            if deleted:
                self.bound.discard((scope, name))
            else:
                self.bound.add((scope, name))

    def visit_name(self, node: ast.Name) -> None:
        if type(node.ctx) is ast.Load:
            self.load(node.id)
        else:
            self.bind(node.id, deleted=type(node.ctx) is ast.Del)

    def visit_call(self, node: ast.Call) -> None:
        """A call; code it runs from a string (a magic's, ``eval``'s, ``query``'s) counts too,
        and what IPython's magics bind: ``%run``'s script's names, ``%%capture``'s NAME."""
        self.visit_children(node)
        shell = _shell_call(node)
        magic = _line_magic(shell)
        if shell is not None and shell[0] in ("run_line_magic", "run_cell_magic") and shell[1] \
                and shell[1][0]:
            self.magics[(shell[0][len("run_"):-len("_magic")], shell[1][0])] = None
        if magic in _LISTING_MAGICS or _sees_the_namespace(node):
            self.lists_names = True
        elif magic == "run":  # the script's names land in the notebook, as `import *`'s do
            self.star_import = True
        if shell is not None and None in shell[1][:_CODE_ARGUMENTS.get(shell[0], 0)]:
            self.runs_unread_code = True  # `get_ipython().ev(expr)`: a text made as it runs
        for code, mode, binds in _code_in_strings(node, shell) \
                if shell is not None or _called_name(node) in _CALLS_WITH_CODE else ():
            try:
                tree = _parse(code, "<string>", mode)
            except (SyntaxError, ValueError):
                continue
            body = tree.body if mode == "exec" else [tree.body]
            self.changed.update(_maybe_changed(tree).changed)  # `%timeit lst.append(1)` changes lst
            if not binds:  # it runs in a namespace of its own (%timeit): only its reads count
                inner = _Walker()
                inner.visit_all(body)
                for name in inner.reads:
                    self.load(name)
                self.changed.update(inner.changed)
                self.star_import |= inner.star_import
            else:
                self.visit_all(body)
        captured = _capture_output(shell)
        if captured is not None:  # after its body: `%%capture out` binds out in the notebook
            self.bind(captured[0], self.module_scope(), deleted=captured[1])
        for name in _at_names(node):
            self.load(name)

    def module_scope(self) -> _Scope:
        scope = self.scope
        while scope.parent is not None:
            scope = scope.parent
        return scope

    def visit_subscript(self, node: ast.Subscript) -> None:
        """A subscript; ``globals()['x']`` reads or binds the cell's global ``x`` (a key
        computed at run time is fetched on first use, and what it binds stays remote)."""
        self.visit_children(node)
        owner = node.value
        if not (isinstance(owner, ast.Call) and not owner.args
                and isinstance(owner.func, ast.Name) and owner.func.id == "globals"):
            return
        name = _text(node.slice)
        if name is None or not name.isidentifier():
            return
        if type(node.ctx) is ast.Load:
            self.load(name)
        else:
            self.bind(name, self.module_scope(), deleted=type(node.ctx) is ast.Del)

    def visit_named_expr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        scope = self.scope
        while scope.kind == "comprehension":  # walrus binds in the enclosing non-comprehension scope
            scope = scope.parent
        self.bind(node.target.id, scope)

    def read_forward_references(self, annotations: list) -> None:
        """The names in string annotations (``a: 'Point'``, ``Optional['Node']``), which
        ``typing.get_type_hints`` (a dataclass's, pydantic's) looks up in the module later: a
        notebook class they name is sent too (hunt 34 H34-8: NameError); one the cell defines
        itself is the cell's then."""
        for annotation in annotations:
            for part in ast.walk(annotation) if annotation is not None else ():
                if type(part) is ast.Constant and type(part.value) is str \
                        and len(part.value) < 1000:
                    try:
                        parsed = ast.parse(part.value.strip(), mode="eval")
                    except (SyntaxError, ValueError):  # not an annotation: a mere string
                        continue
                    for name in ast.walk(parsed):
                        if type(name) is ast.Name:
                            self.read_global(name.id)

    def visit_declaration(self, node: ast.Global | ast.Nonlocal) -> None:
        scope = self.scope
        names = scope.global_names if isinstance(node, ast.Global) else scope.nonlocal_names
        names.update(self.mangle(name) for name in node.names)

    def visit_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if getattr(node, "module", None) == "__main__" or any(
                alias.name == "__main__" for alias in node.names):
            self.lists_names = self.imports_main = True  # the notebook's module: all its names
        for alias in node.names:
            if alias.name == "*":
                self.star_import = True
            else:  # `import a.b` binds `a`, `import a.b as c` binds `c`
                self.bind(alias.asname or alias.name.partition(".")[0])

    # -- assignments ------------------------------------------------------------------------

    def visit_assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        self.visit_all(node.targets)

    def visit_aug_assign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.load(node.target.id)
            self.visit(node.value)
            self.bind(node.target.id)
            name = self.mangle(node.target.id)
            if self.scope.kind == "module" or name in self.scope.global_names:
                self.augmented[name] = None
        else:
            self.visit_all([node.target, node.value])

    def visit_ann_assign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit_all([node.value, node.target])
        elif not isinstance(node.target, ast.Name):
            self.visit_children(node.target)  # `a.b: int` evaluates `a` but assigns nothing
        if self.scope.kind != "function":  # annotations of function locals are never evaluated
            self.visit(node.annotation)
            self.read_forward_references([node.annotation])

    # -- control flow -----------------------------------------------------------------------

    def visit_if(self, node: ast.If | ast.IfExp) -> None:
        self.visit(node.test)
        if isinstance(node, ast.If):
            self.either(node.body, node.orelse)
        else:
            self.either([node.body], [node.orelse])

    def visit_bool_op(self, node: ast.BoolOp) -> None:
        self.visit(node.values[0])
        with self.maybe():
            self.visit_all(node.values[1:])

    def visit_compare(self, node: ast.Compare) -> None:
        self.visit_all([node.left, node.comparators[0]])
        if len(node.comparators) > 1:
            with self.maybe():  # `a < b < c` evaluates c only if a < b
                self.visit_all(node.comparators[1:])

    def visit_assert(self, node: ast.Assert) -> None:
        with self.maybe():  # `python -O` skips asserts
            self.visit_all([node.test, node.msg])

    def visit_for(self, node: ast.For | ast.AsyncFor) -> None:
        self.forget_deletions(node)
        self.visit(node.iter)
        with self.maybe():
            self.visit(node.target)
            self.visit_all(node.body)
        with self.maybe():
            self.visit_all(node.orelse)

    def visit_while(self, node: ast.While) -> None:
        self.forget_deletions(node)
        self.visit(node.test)
        with self.maybe():
            self.visit_all(node.body)
        with self.maybe():
            self.visit_all(node.orelse)

    def visit_with(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit_all([item.context_expr, item.optional_vars])
        if all(_never_suppresses(item.context_expr) for item in node.items):
            self.visit_all(node.body)
            return
        with self.maybe():  # an `__exit__` that returns true (`contextlib.suppress`, one of
            self.visit_all(node.body)  # yours) skips the rest of the body: a later read may
            # be the notebook's name (hunt 34 H34-3: NameError where its binding never ran)

    def visit_try(self, node: ast.Try) -> None:
        self.forget_deletions(node)
        start = set(self.bound)
        self.visit_all(node.body)
        self.visit_all(node.orelse)
        ends = [self.bound]
        for handler in node.handlers:  # an exception may come before anything in the body ran
            self.bound = set(start)
            self.visit(handler)
            ends.append(self.bound)
        self.bound = set.intersection(*ends)
        if node.finalbody:
            self.forget_deletions(*node.finalbody)
            joined, self.bound = self.bound, set(start)
            self.visit_all(node.finalbody)
            self.bound = joined | (self.bound - start)  # what finally binds holds on every path

    def visit_except_handler(self, node: ast.ExceptHandler) -> None:
        self.visit_all([node.type])
        if node.name:
            self.bind(node.name)
        self.visit_all(node.body)
        if node.name:  # Python deletes the name after the handler: a notebook's goes too
            self.bind(node.name, deleted=True)

    def visit_match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        for case in node.cases:
            with self.maybe():
                self.visit_all([case.pattern, case.guard, *case.body])

    def visit_match_capture(self, node: ast.MatchAs | ast.MatchStar) -> None:
        self.visit_all([getattr(node, "pattern", None)])
        if node.name:
            self.bind(node.name)

    def visit_match_mapping(self, node: ast.MatchMapping) -> None:
        self.visit_all([*node.keys, *node.patterns])
        if node.rest:
            self.bind(node.rest)

    # -- nested scopes ----------------------------------------------------------------------

    def new_scope(self, kind: Literal["class", "function", "comprehension"]) -> _Scope:
        outer = self.scope
        return _Scope(kind, outer, outer.private, outer.deferred or kind == "function")

    def walk_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> _Scope:
        """Walk a body that runs at some later call; its scope is returned still to be closed."""
        self.visit_all(_outer_parts(node))
        if not isinstance(node, ast.Lambda):
            self.read_forward_references([arg.annotation for arg in _params(node.args)]
                                         + [node.returns])
        scope = self.new_scope("function")
        body = node.body if isinstance(node.body, list) else [node.body]
        with self.maybe(), self.inside(scope):
            scope.local.update(self.mangle(arg.arg) for arg in _params(node.args))
            self.visit_all(body)
        return scope

    def visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        scope = self.walk_function(node)
        if not node.decorator_list and self.scope.kind == "module":
            self.bind(node.name)  # no code can call the function before its name is bound
            self.close(scope)
        else:
            self.close(scope)
            self.bind(node.name)

    def visit_lambda(self, node: ast.Lambda) -> None:
        self.close(self.walk_function(node))

    def visit_class(self, node: ast.ClassDef) -> None:
        self.visit_all(_outer_parts(node))
        scope = self.new_scope("class")
        scope.private = node.name.lstrip("_")
        # Python sets these in the class namespace before the body runs.
        self.bound.update([(scope, "__module__"), (scope, "__qualname__")])
        with self.inside(scope):
            self.visit_all(node.body)
        self.close(scope)
        self.bind(node.name)

    def visit_comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp) -> None:
        first, *rest = node.generators
        self.visit(first.iter)  # the first iterable is evaluated in the enclosing scope
        scope = self.new_scope("comprehension")
        scope.local.update(self.mangle(n) for g in node.generators for n in _target_names(g.target))
        elements = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        with self.maybe(), self.inside(scope):
            self.visit_all([first.target, *first.ifs])
            for generator in rest:
                self.visit_all([generator.iter, generator.target, *generator.ifs])
            self.visit_all(elements)


_HANDLERS: dict[type, Callable[[_Walker, Any], None]] = {
    ast.Name: _Walker.visit_name,
    ast.Call: _Walker.visit_call,
    ast.Constant: _Walker.ignore,
    ast.MatchSingleton: _Walker.ignore,
    ast.NamedExpr: _Walker.visit_named_expr,
    ast.Subscript: _Walker.visit_subscript,
    ast.Global: _Walker.visit_declaration,
    ast.Nonlocal: _Walker.visit_declaration,
    ast.Import: _Walker.visit_import,
    ast.ImportFrom: _Walker.visit_import,
    ast.Assign: _Walker.visit_assign,
    ast.AugAssign: _Walker.visit_aug_assign,
    ast.AnnAssign: _Walker.visit_ann_assign,
    ast.If: _Walker.visit_if,
    ast.IfExp: _Walker.visit_if,
    ast.BoolOp: _Walker.visit_bool_op,
    ast.Compare: _Walker.visit_compare,
    ast.Assert: _Walker.visit_assert,
    ast.For: _Walker.visit_for,
    ast.AsyncFor: _Walker.visit_for,
    ast.While: _Walker.visit_while,
    ast.Try: _Walker.visit_try,
    ast.With: _Walker.visit_with,
    ast.AsyncWith: _Walker.visit_with,
    ast.ExceptHandler: _Walker.visit_except_handler,
    ast.Match: _Walker.visit_match,
    ast.MatchAs: _Walker.visit_match_capture,
    ast.MatchStar: _Walker.visit_match_capture,
    ast.MatchMapping: _Walker.visit_match_mapping,
    ast.FunctionDef: _Walker.visit_function,
    ast.AsyncFunctionDef: _Walker.visit_function,
    ast.Lambda: _Walker.visit_lambda,
    ast.ClassDef: _Walker.visit_class,
    **{kind: _Walker.visit_comprehension for kind in _COMPREHENSIONS},
}
if hasattr(ast, "TryStar"):  # `except*`, Python 3.11+
    _HANDLERS[ast.TryStar] = _Walker.visit_try
