"""Which notebook names a cell reads and writes, found from its syntax alone.

Written for the ``%%remote`` magic: before a cell runs in a remote kernel, ``reads`` says which
notebook variables it may need; afterwards ``writes`` and ``deletes`` say which names to bring
back or remove. This module knows the Python AST and nothing about IPython, kernels or sockets.

The analysis follows Python's scoping rules. One walk over the cell, in evaluation order, keeps
the set of names the cell has *definitely* bound so far; looking a name up in the cell's globals
before that is a read. Function and lambda bodies run at an unknown later time, so their global
look-ups are judged against what was bound when the ``def`` or ``lambda`` ran. Where flow is
uncertain (branches, loops, exceptions, short-circuit operators) a binding counts as possibly
missing, so ``reads`` may hold extra names but never misses one.
"""
from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Union

__all__ = ["CellNames", "analyze"]


@dataclass(frozen=True)
class CellNames:
    """The notebook names one cell touches; every tuple is in first-seen order, without repeats.

    ``reads``: names the cell may look up in the notebook namespace before binding them itself
    (builtins and dunders included: the caller filters them against the namespace).
    ``writes``: names the cell binds, or may bind, at cell level, including deleted ones.
    ``deletes``: names the cell may remove with ``del`` at cell level (also in ``writes``).
    ``last_expr``: the last top-level statement is an expression, the cell's result (``Out[n]``).
    ``star_import``: the cell does ``from m import *``, so ``writes`` is incomplete.
    """

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    deletes: tuple[str, ...]
    last_expr: bool
    star_import: bool


_PARSE_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@lru_cache(maxsize=512)
def analyze(code: str) -> CellNames:
    """Analyse one cell's source (IPython syntax already transformed to Python).

    Raises Python's own ``SyntaxError`` when the code does not parse. Results are cached, since
    the magic analyses the same cell text again on every run.
    """
    # dont_inherit: this module's own __future__ imports must not change how the cell parses.
    tree = compile(code, "<cell>", "exec", flags=_PARSE_FLAGS, dont_inherit=True)
    walker = _Walker()
    walker.visit_all(tree.body)
    return CellNames(
        reads=tuple(walker.reads),
        writes=tuple(walker.writes),
        deletes=tuple(walker.deletes),
        last_expr=bool(tree.body) and isinstance(tree.body[-1], ast.Expr),
        star_import=walker.star_import,
    )


@dataclass(eq=False)  # eq=False: scopes hash by identity, as keys of class-body bindings
class _Scope:
    """One Python namespace met during the walk."""

    kind: Literal["module", "class", "function", "comprehension"]
    parent: _Scope | None = None
    local: frozenset[str] = frozenset()  # names bound anywhere in the scope, in any order
    global_names: frozenset[str] = frozenset()  # names declared ``global`` in the scope
    private: str = ""  # the enclosing class's name, for mangling ``__x``


@dataclass
class _Bindings:
    """What one scope's code binds, deletes and declares, regardless of order."""

    bound: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    global_names: set[str] = field(default_factory=set)
    nonlocal_names: set[str] = field(default_factory=set)

    def locals(self, extra: Iterable[str] = ()) -> frozenset[str]:
        """The scope's local names: its bindings (plus ``extra``) minus declared outer names."""
        return frozenset(self.bound.union(extra) - self.global_names - self.nonlocal_names)


# A key of _Walker.bound: a cell global's name, or (class scope, name) for a class body.
_Key = Union[str, tuple[_Scope, str]]

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_IGNORED_FIELDS = frozenset({"ctx", "op", "ops", "type_comment"})
_FIELDS_BY_TYPE: dict[type, tuple[str, ...]] = {}


def _children(node: ast.AST) -> list[ast.AST]:
    """The node's child nodes in field order, without operator and context markers."""
    kind = type(node)
    fields = _FIELDS_BY_TYPE.get(kind)
    if fields is None:
        fields = _FIELDS_BY_TYPE[kind] = tuple(f for f in kind._fields if f not in _IGNORED_FIELDS)
    children: list[ast.AST] = []
    for name in fields:
        value = getattr(node, name, None)
        if type(value) is list:
            children.extend(item for item in value if isinstance(item, ast.AST))
        elif isinstance(value, ast.AST):
            children.append(value)
    return children


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


def _imported_name(alias: ast.alias) -> str:
    """The name an import binds: ``import a.b`` binds ``a``, ``import a.b as c`` binds ``c``."""
    return alias.asname or alias.name.partition(".")[0]


def _target_names(target: ast.AST) -> list[str]:
    """Names bound by an assignment target (attributes and subscripts bind no name)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _scan(nodes: Iterable[ast.AST]) -> _Bindings:
    """Collect the bindings of one scope's code, not descending into nested scopes' bodies."""
    found = _Bindings()
    # The flag marks code inside a comprehension, whose targets bind in the comprehension.
    stack = [(node, False) for node in nodes]
    while stack:
        node, in_comprehension = stack.pop()
        kind = type(node)
        if kind is ast.Name:
            if type(node.ctx) is not ast.Load and not in_comprehension:
                found.bound.add(node.id)
                if type(node.ctx) is ast.Del:
                    found.deleted.add(node.id)
            continue
        if kind is ast.NamedExpr:  # walrus binds here even from inside a comprehension
            found.bound.add(node.target.id)
            stack.append((node.value, in_comprehension))
            continue
        if kind in _DEFINITIONS:
            found.bound.add(node.name)
        if kind in _DEFINITIONS or kind is ast.Lambda:
            stack.extend((part, in_comprehension) for part in _outer_parts(node))
            continue
        if kind is ast.Global:
            found.global_names.update(node.names)
        elif kind is ast.Nonlocal:
            found.nonlocal_names.update(node.names)
        elif kind is ast.Import or kind is ast.ImportFrom:
            found.bound.update(_imported_name(a) for a in node.names if a.name != "*")
        elif kind is ast.ExceptHandler and node.name:
            found.bound.add(node.name)
            found.deleted.add(node.name)  # Python deletes the name when the handler ends
        elif kind in (ast.MatchAs, ast.MatchStar) and node.name:
            found.bound.add(node.name)
        elif kind is ast.MatchMapping and node.rest:
            found.bound.add(node.rest)
        inner = in_comprehension or kind in _COMPREHENSIONS
        stack.extend((child, inner) for child in _children(node))
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

    # -- traversal --------------------------------------------------------------------------

    def visit(self, node: ast.AST) -> None:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            handler(self, node)
        else:
            for child in _children(node):
                self.visit(child)

    def visit_all(self, nodes: Iterable[ast.AST | None]) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

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
            self.bound.difference_update((self.scope, name) for name in _scan(nodes).deleted)

    # -- names ------------------------------------------------------------------------------

    def mangle(self, name: str) -> str:
        if self.scope.private and name.startswith("__") and not name.endswith("__"):
            return f"_{self.scope.private}{name}"
        return name

    def read_global(self, name: str) -> None:
        name = self.mangle(name)
        if name not in self.bound:
            self.reads[name] = None

    def load(self, name: str) -> None:
        """Resolve a name look-up the way the compiler does, noting it if it reaches globals."""
        scope = self.scope
        if scope.kind == "class" and name not in scope.global_names:
            if (scope, name) in self.bound:
                return
            if name in scope.local:  # the class namespace lacks it: Python goes straight to globals
                return self.read_global(name)
            scope = scope.parent
        while scope.kind != "module" and name not in scope.global_names:
            if scope.kind != "class" and name in scope.local:  # class bodies hide nothing
                return
            scope = scope.parent
        self.read_global(name)

    def bind(self, name: str, scope: _Scope | None = None, deleted: bool = False) -> None:
        """Note that ``name`` is bound (or deleted) in ``scope``, the current one by default."""
        scope = scope or self.scope
        if scope.kind == "module" or name in scope.global_names:
            name = self.mangle(name)
            self.writes[name] = None
            if deleted:
                self.deletes[name] = None
            self.bound.add(name)  # bound or deleted, the notebook's old value is gone either way
        elif scope.kind == "class":
            key = (scope, name)
            self.bound.discard(key) if deleted else self.bound.add(key)
        # Function and comprehension locals need no tracking: their scope is fixed at compile time.

    def visit_name(self, node: ast.Name) -> None:
        if type(node.ctx) is ast.Load:
            self.load(node.id)
        else:
            self.bind(node.id, deleted=type(node.ctx) is ast.Del)

    def visit_named_expr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        scope = self.scope
        while scope.kind == "comprehension":  # walrus binds in the enclosing non-comprehension scope
            scope = scope.parent
        self.bind(node.target.id, scope)

    def visit_import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.star_import = True
            else:
                self.bind(_imported_name(alias))

    # -- assignments ------------------------------------------------------------------------

    def visit_assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        self.visit_all(node.targets)

    def visit_aug_assign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.load(node.target.id)
            self.visit(node.value)
            self.bind(node.target.id)
        else:
            self.visit_all([node.target, node.value])

    def visit_ann_assign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit_all([node.value, node.target])
        elif not isinstance(node.target, ast.Name):
            self.visit_all(_children(node.target))  # `a.b: int` evaluates `a` but assigns nothing
        if self.scope.kind != "function":  # annotations of function locals are never evaluated
            self.visit(node.annotation)

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
        if node.name and self.scope.kind == "class":  # Python deletes the name after the handler
            self.bound.discard((self.scope, node.name))

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

    def visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.visit_all(_outer_parts(node))
        with self.maybe():
            if not node.decorator_list and self.scope.kind == "module":
                self.bound.add(node.name)  # no code runs between creating the function and binding it
            self.walk_function(node.args, node.body)
        self.bind(node.name)

    def visit_lambda(self, node: ast.Lambda) -> None:
        self.visit_all(_outer_parts(node))
        with self.maybe():
            self.walk_function(node.args, [node.body])

    def walk_function(self, args: ast.arguments, body: list[Any]) -> None:
        """Walk a body that runs at some later call: its global look-ups are all reads."""
        found = _scan(body)
        scope = _Scope(
            "function",
            self.scope,
            found.locals(arg.arg for arg in _params(args)),
            frozenset(found.global_names),
            self.scope.private,
        )
        with self.inside(scope):
            self.visit_all(body)

    def visit_class(self, node: ast.ClassDef) -> None:
        self.visit_all(_outer_parts(node))
        found = _scan(node.body)
        scope = _Scope(
            "class", self.scope, found.locals(), frozenset(found.global_names), node.name.lstrip("_")
        )
        # Python sets these in the class namespace before the body runs.
        self.bound.update([(scope, "__module__"), (scope, "__qualname__")])
        with self.inside(scope):
            self.visit_all(node.body)
        self.bind(node.name)

    def visit_comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp) -> None:
        first, *rest = node.generators
        self.visit(first.iter)  # the first iterable is evaluated in the enclosing scope
        targets = frozenset(name for gen in node.generators for name in _target_names(gen.target))
        scope = _Scope("comprehension", self.scope, targets, private=self.scope.private)
        elements = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        with self.maybe(), self.inside(scope):
            self.visit_all([first.target, *first.ifs])
            for generator in rest:
                self.visit_all([generator.iter, generator.target, *generator.ifs])
            self.visit_all(elements)


_HANDLERS: dict[type, Callable[[_Walker, Any], None]] = {
    ast.Name: _Walker.visit_name,
    ast.NamedExpr: _Walker.visit_named_expr,
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
