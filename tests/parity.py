"""Parity harness: one list of cells run plainly, as ``%%remote`` cells and in the remote kernel.

A cell must behave the same every way (issue 13): what it printed, the result it showed, the
error it raised, and afterwards every name the notebook sees, with equal values and the same
objects shared between names. Use it from any test file with the ``parity`` fixture::

    from tests.parity import parity, parity_kernel  # noqa: F401 - the harness's fixtures

    def test_something(parity):
        parity(["lst = [1, 2]", "alias = lst", "alias.append(3)", "lst"],
               shared=[("lst", "alias")])

``parity(cells, shared=..., ways=...)`` runs ``cells`` in every way of :data:`WAYS` (or those
given), asserts that each way's :class:`Trace` equals the plain one, and returns the traces.
``shared`` lists pairs of expressions over the notebook's names that must be the same object
(``("fig.axes[0]", "ax")``) after the cells ran (not checked on names that are proxies).

- ``plain``: the session's ``InteractiveShell``, names cleared first (and restored after);
- ``all`` / ``small`` / ``none``: the same shell, every cell as ``%%remote --download=...``
  on the session's engine (but a cell that starts with ``# plain``, which runs plainly
  there); the notebook's names are the shell's (a proxy compared by the value it stands
  for: keeping a big value remote is what ``small`` asks);
- ``kernel``: a kernel under the remote kernelspec, driven with jupyter_client; the notebook's
  names are the engine's, brought here in one pickle (so sharing between them shows).

What is compared, per cell: stdout, stderr, the result shown (its plain text and HTML, or
``image``), the displays shown (the same), and the error's class and traceback as shown (cells
numbered from the run's first, a remote error's header line left out). Object addresses and durations
(``%time``, ``%timeit``) are normalised, ANSI colours dropped; nothing else is. Afterwards: the
same user names (IPython's own and ``_``-names aside), each value equal by :func:`same`, and
each ``shared`` pair identical. In ``kernel`` every name must pickle (cloudpickle) to come here.
"""
from __future__ import annotations

import base64
import builtins
import collections
import dataclasses
import io
import math
import re
import sys
import warnings
from typing import Any, Callable, Iterable

import pytest

from tests.test_kernel import Frontend, execute, install

#: The ways a list of cells runs; ``plain`` is the reference.
WAYS = ("plain", "all", "small", "none", "kernel")
#: A cell that starts so runs plainly in ``all``, ``small`` and ``none`` too (a notebook that
#: mixes plain and ``%%remote`` cells: build plainly, change remotely, read plainly).
PLAIN = "# plain\n"

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WORD = re.compile(r"[A-Za-z_]\w*")
#: A duration as %time and %timeit print it; "us" and "+-" where stdout cannot encode "μs", "±".
_DURATION = re.compile(r"\d+(\.\d+)?(e[+-]?\d+)?\s*(ns|us|µs|μs|ms|s)\b")


def normal(text: str) -> str:
    """``text`` with what legitimately differs between runs normalised away: object addresses,
    ANSI colours, and durations (%time, %timeit), which differ every run."""
    text = _ADDRESS.sub("0xADDR", _ANSI.sub("", text))
    return _DURATION.sub("TIME", text.replace("+-", "±"))


#: The line a remote error starts with, naming where it ran; a plain cell has no such line.
_REMOTE_HEADER = re.compile(r"^(Remote error|Interrupted) on target '[^']*':\n")
_CELL_LABEL = re.compile(r"In\[(\d+)\]")


def traceback_text(items: Iterable[str], first: int) -> str:
    """A shown traceback as compared: joined as a notebook shows it, normalised, the remote
    header dropped, and each ``Cell In[n]`` numbered from the run's first cell (``In[+0]``),
    since each way's cells have their own execution counts."""
    text = _REMOTE_HEADER.sub("", normal("\n".join(items)))
    return _CELL_LABEL.sub(lambda m: f"In[+{int(m.group(1)) - first}]", text)


def _shown(data: dict) -> str:
    """One result or display as compared: ``image`` for a picture, else its plain text and its
    HTML (a table shows as HTML in a notebook)."""
    if any(mime.startswith("image/") for mime in data):
        return "image"
    html = data.get("text/html")
    return "text: " + normal(data.get("text/plain", "")) + (
        "\nhtml: " + normal(html) if html else "")


@dataclasses.dataclass(frozen=True)
class Cell:
    """What one cell showed, normalised."""

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    displays: tuple[str, ...] = ()
    error: str | None = None
    traceback: str | None = None  # as shown, see :func:`traceback_text`
    shown_before_result: int | None = None  # displays shown before the result (the order)
    #: results shown before the last (IPython's ``ast_node_interactivity`` ``all`` or ``last``)
    earlier_results: tuple[str, ...] = ()


@dataclasses.dataclass
class Trace:
    """One way's run of a list of cells: each cell's outcome, and the notebook's names after."""

    way: str
    cells: list[Cell]
    names: dict[str, Any]
    proxied: set[str] = dataclasses.field(default_factory=set)  # names that were proxies


# -- what "equal" means for the names a notebook holds -----------------------------------------

def _kind(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def same(a: Any, b: Any, _depth: int = 0) -> bool:
    """Whether two values, from two ways of running a notebook, are equal as a user sees them.

    Same type (by module and name: a class that travelled by value is still the same class to
    the user), and equal content: arrays and frames element by element (NaN equal to NaN),
    containers member by member, objects by their attributes, a random generator by its state,
    a figure by its axes and lines. Functions, classes and modules by their names.
    """
    if _depth > 20:
        return True
    if isinstance(b, Unfetchable) or isinstance(a, Unfetchable):
        kinds = {x.kind if isinstance(x, Unfetchable) else _kind(x) for x in (a, b)}
        return len({kind.rpartition(".")[2] for kind in kinds}) == 1
    if _kind(a) != _kind(b):
        return False
    import types
    if isinstance(a, types.ModuleType):
        return a.__name__ == b.__name__
    if isinstance(a, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    numpy = sys.modules.get("numpy")
    pandas = sys.modules.get("pandas")
    if numpy is not None:
        if isinstance(a, numpy.ndarray):
            if a.dtype != b.dtype or a.shape != b.shape:
                return False
            if a.dtype.kind in "fc":
                return bool(numpy.array_equal(a, b, equal_nan=True))
            if a.dtype.kind == "O":
                return all(same(x, y, _depth + 1) for x, y in zip(a.ravel(), b.ravel()))
            return bool(numpy.array_equal(a, b))
        if isinstance(a, numpy.random.Generator):
            return same(a.bit_generator.state, b.bit_generator.state, _depth + 1)
        if isinstance(a, numpy.generic):
            return same(a.item(), b.item(), _depth + 1)
    if pandas is not None and isinstance(a, (pandas.DataFrame, pandas.Series, pandas.Index)):
        names = list(a.index.names) == list(b.index.names) if hasattr(a, "index") else True
        return bool(a.equals(b)) and names and list(getattr(a, "columns", [])) == list(
            getattr(b, "columns", [])) and getattr(a, "name", None) == getattr(b, "name", None)
    matplotlib = sys.modules.get("matplotlib.figure")
    if matplotlib is not None and isinstance(a, matplotlib.Figure):
        return [len(ax.lines) for ax in a.axes] == [len(ax.lines) for ax in b.axes]
    axes = sys.modules.get("matplotlib.axes")
    if axes is not None and isinstance(a, axes.Axes):
        return [line.get_label() for line in a.lines] == [line.get_label() for line in b.lines]
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k], _depth + 1) for k in a)
    if isinstance(a, (list, tuple, collections.deque)):
        return len(a) == len(b) and all(same(x, y, _depth + 1) for x, y in zip(a, b))
    if isinstance(a, (set, frozenset, str, bytes, int, complex, bool, type(None))):
        return a == b
    if type(a) in (type({}.keys()), type({}.values()), type({}.items())):  # no == of their own
        return same(list(a), list(b), _depth + 1)
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return same(vars(a), vars(b), _depth + 1)
    if type(a).__eq__ is object.__eq__:  # equal only to itself (`itertools.count(12)`): two
        return normal(repr(a)) == normal(repr(b))  # ways' objects are equal as they show
    try:
        return bool(a == b)
    except Exception:
        return normal(repr(a)) == normal(repr(b))


# -- the ways ------------------------------------------------------------------------------------

def user_names(namespace: dict, hidden: dict) -> dict[str, Any]:
    """The names a user bound: not IPython's own, not ``_``-names (``_``, ``_i3``, ``__name__``)."""
    return {name: value for name, value in namespace.items()
            if not name.startswith("_") and name not in hidden}


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


class _Recorder:
    """Around one cell in a shell: its stdout, stderr, displays, result and error, recorded."""

    def __init__(self, shell) -> None:
        self.shell = shell
        self.first = shell.execution_count  # the first cell's: tracebacks count from it

    def run(self, source: str) -> Cell:
        from IPython.utils.capture import capture_output

        shell = self.shell
        hook = shell.displayhook
        results: list[dict] = []
        shown: list[str] = []
        errors: list[str] = []
        shown_tracebacks: list[str] = []

        before: list[int] = []  # displays shown before the result

        def write_format_data(format_dict, md_dict=None) -> None:
            results.append(format_dict)
            before.append(len(captured.outputs))

        def show_traceback(etype, evalue, stb) -> None:
            errors.append(getattr(evalue, "ename", None) or etype.__name__)
            shown_tracebacks.append(traceback_text(stb, self.first))

        hook.write_format_data = write_format_data
        hook.write_output_prompt = lambda: None  # a terminal's "Out[n]:", which a notebook lacks
        shell._showtraceback = show_traceback
        try:
            with capture_output() as captured:
                shell.run_cell(source, store_history=True)
        finally:
            del hook.write_format_data, hook.write_output_prompt, shell._showtraceback
        shown.extend(_shown(output.data) for output in captured.outputs)
        return Cell(stdout=normal(captured.stdout), stderr=normal(captured.stderr),
                    result=_shown(results[-1]) if results else None, displays=tuple(shown),
                    error=errors[-1] if errors else None,
                    traceback=shown_tracebacks[-1] if shown_tracebacks else None,
                    shown_before_result=before[-1] if before else None,
                    earlier_results=tuple(_shown(data) for data in results[:-1]))


_NONE = object()


def run_shell(shell, cells: list[str], way: str = "plain", target: str = "default") -> Trace:
    """Run ``cells`` in ``shell`` plainly (``way="plain"``) or as ``%%remote --download=way``.

    The shell's user names are cleared first and put back after, so the cells see only their
    own; the notebook's names after the cells are returned in the :class:`Trace`.
    """
    saved = dict(shell.user_ns)
    # IPython's own records of _, __, ___ (which tell it whether a user assigned them) must
    # match the names put back, or it stops updating them
    hidden, hook = dict(shell.user_ns_hidden), shell.displayhook
    unders = [getattr(hook, name) for name in ("_", "__", "___")]
    for name in user_names(shell.user_ns, shell.user_ns_hidden):
        del shell.user_ns[name]
    # IPython stops updating _ once a cell bound it (`for _ in ...` in an earlier test), or
    # while the builtins hold one (Python's own displayhook sets that): in step, and none there
    for name, value in zip(("_", "__", "___"), unders):
        shell.user_ns[name] = value
        if name in shell.user_ns_hidden:  # what IPython compares a hidden one with
            shell.user_ns_hidden[name] = value
    builtin_under = builtins.__dict__.pop("_", _NONE)
    prefix = "" if way == "plain" else f"%%remote --target {target} --download={way}\n"
    recorder = _Recorder(shell)
    try:
        # a warning shows on stderr once per place, as in a kernel (pytest records them instead)
        # and under a kernel's filters, which cross to the engine as they are: Python's own,
        # which leave out a library's DeprecationWarning (one the engine's first import of
        # matplotlib_inline raised showed as a remote cell's output, and not the plain one's,
        # whose process had imported it long before) and a ResourceWarning (one for a pipe
        # another test left open, collected during a cell, would read as that cell's output)
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning,
                             DeprecationWarning):
                warnings.filterwarnings("ignore", category=category)
            warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
            warnings.showwarning = _warning_to_stderr
            outcomes = [recorder.run(source if source.startswith(PLAIN) else prefix + source)
                        for source in cells]
        fetched: dict[int, Any] = {}  # one proxy, one value: names sharing it still share
        mine = user_names(shell.user_ns, shell.user_ns_hidden)
        proxied = {name for name, value in mine.items() if _is_proxy(value)}
        names = {name: _home(value, fetched) for name, value in mine.items()}
    finally:
        shell.user_ns.clear()
        shell.user_ns.update(saved)
        shell.user_ns_hidden.clear()
        shell.user_ns_hidden.update(hidden)
        for name, value in zip(("_", "__", "___"), unders):
            setattr(hook, name, value)
        if builtin_under is not _NONE:
            builtins._ = builtin_under
    return Trace(way, outcomes, names, proxied)


def _is_proxy(value: Any) -> bool:
    from remote_magics.cells.proxy import RemoteObject

    return isinstance(value, RemoteObject)


def _home(value: Any, fetched: dict[int, Any]) -> Any:
    """A proxy's value, fetched (once per proxy, kept in ``fetched``): a name ``small`` keeps
    remote (too big) compares by its value, since keeping it there is what the policy asks;
    a tuple holding proxies (one that stayed remote comes back as a tuple of its items), with
    its items' values; anything else as it is."""
    from remote_magics.cells.proxy import RemoteObject, fetch

    from remote_magics.errors import ProxyError

    if type(value) is tuple and any(isinstance(item, RemoteObject) for item in value):
        if id(value) not in fetched:
            fetched[id(value)] = tuple(_home(item, fetched) for item in value)
        return fetched[id(value)]
    if not isinstance(value, RemoteObject):
        return value
    if id(value) not in fetched:
        try:
            fetched[id(value)] = fetch(value, timeout=60)
        except ProxyError:  # what cannot travel (an open file) stays remote: its kind alone
            fetched[id(value)] = Unfetchable(value._descriptor["type"])
    return fetched[id(value)]


@dataclasses.dataclass(frozen=True)
class Unfetchable:
    """A proxy to a value that cannot be fetched (an open file): compared by its type."""

    kind: str


#: The cell that lists the engine's user names, in the remote kernel, as one pickle (base64).
_NAMES_PROBE = (  # our pickler: what it carries that cloudpickle does not (a pandas object's
    # own attributes) is compared too
    "import io as _io, base64 as _b64\nfrom remote_magics.wire import serialize as _s\n"
    "_buf = _io.BytesIO()\n"
    "_names = {_n: _v for _n, _v in get_ipython().user_ns.items() "
    "if not _n.startswith('_') and _n not in get_ipython().user_ns_hidden}\n"
    "_bad = {}\n"  # what cannot travel (an open file): its kind alone, as a proxy shows it
    "with _s.module_globals(_names):\n"  # matplotlib's rcParams as the live one, as we send it
    "    for _n, _v in list(_names.items()):\n"
    "        try:\n            _s.dumps(_v)\n        except Exception:\n"
    "            _bad[_n] = f'{type(_v).__module__}.{type(_v).__qualname__}'\n"
    "            del _names[_n]\n"
    "    _s.Pickler(_buf, protocol=5).dump((_names, _bad))\n"
    "print('PARITY-NAMES', _b64.b64encode(_buf.getvalue()).decode())")


def run_kernel(kc, cells: list[str], timeout: float = 120) -> Trace:
    """Run ``cells`` in a kernel under the remote kernelspec (a started jupyter_client client).

    The engine's names are reset first (``%reset -f``); after the cells, they come here in one
    pickle, so two names for one object are still one object.
    """
    reply, _ = execute(kc, "%reset -f", timeout)
    assert reply["status"] == "ok", reply
    outcomes, first = [], None
    for source in cells:
        reply, outputs = execute(kc, source, timeout)
        first = reply.get("execution_count") if first is None else first
        outcomes.append(_kernel_cell(reply, outputs, first or 0))
    reply, outputs = execute(kc, _NAMES_PROBE, timeout)
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    assert reply["status"] == "ok" and "PARITY-NAMES" in text, (reply, text)
    import cloudpickle

    names, bad = cloudpickle.loads(base64.b64decode(text.split("PARITY-NAMES", 1)[1].strip()))
    names.update({name: Unfetchable(kind) for name, kind in bad.items()})
    return Trace("kernel", outcomes, names)


def _kernel_cell(reply: dict, outputs: list[dict], first: int) -> Cell:
    stdout, stderr = io.StringIO(), io.StringIO()
    result, shown, error, traceback, before = None, [], None, None, None
    earlier: list[str] = []
    for msg in outputs:
        content = msg["content"]
        kind = msg["msg_type"]
        if kind == "stream":
            (stderr if content["name"] == "stderr" else stdout).write(content["text"])
        elif kind == "execute_result":
            if result is not None:
                earlier.append(result)
            result, before = _shown(content["data"]), len(shown)
        elif kind == "display_data":
            shown.append(_shown(content["data"]))
        elif kind == "error":
            error = content["ename"]
            traceback = traceback_text(content.get("traceback", []), first)
    if reply.get("status") == "error" and error is None:
        error = reply.get("ename")
    return Cell(stdout=normal(stdout.getvalue()), stderr=normal(stderr.getvalue()),
                result=result, displays=tuple(shown), error=error, traceback=traceback,
                shown_before_result=before, earlier_results=tuple(earlier))


# -- the comparison ------------------------------------------------------------------------------

def differences(plain: Trace, other: Trace, cells: list[str],
                shared: Iterable[tuple[str, str]] = ()) -> list[str]:
    """How ``other`` differs from ``plain``: one line each; empty when they behave the same."""
    found = []
    for i, (mine, theirs) in enumerate(zip(plain.cells, other.cells)):
        if mine != theirs:
            found.append(f"{other.way}: cell {i} {cells[i].splitlines()[0]!r}: "
                         f"plain {mine} != {theirs}")
    if set(plain.names) != set(other.names):
        found.append(f"{other.way}: names {sorted(plain.names)} != {sorted(other.names)}")
    for name in sorted(set(plain.names) & set(other.names)):
        if not same(plain.names[name], other.names[name]):
            found.append(f"{other.way}: {name} = {plain.names[name]!r} plainly, "
                         f"{other.names[name]!r} here")
    for left, right in shared:
        # proxies (``none``) are fetched one by one, so sharing between their values cannot
        # show here; tests/test_parity_shared.py checks it in the engine
        if not other.proxied & set(_WORD.findall(f"{left} {right}")):
            found += _identity(other, left, right)
    return found


def check(runners: dict[str, Callable[[list[str]], Trace]], cells: list[str],
          shared: Iterable[tuple[str, str]] = (), ways: Iterable[str] = WAYS) -> dict[str, Trace]:
    """Run ``cells`` every way; assert each behaves as ``plain``; the traces by way."""
    shared = list(shared)
    traces = {way: runners[way](cells) for way in ways}
    found = []
    for way, trace in traces.items():
        if way != "plain":
            found += differences(traces["plain"], trace, cells, shared)
    for left, right in shared:  # the plain run must share them, or the case tests nothing
        found += _identity(traces["plain"], left, right)
    assert not found, "\n".join(found)
    return traces


def _identity(trace: Trace, left: str, right: str) -> list[str]:
    """``[]`` when ``left is right`` among the trace's names, else the line saying not."""
    try:
        ok = eval(f"({left}) is ({right})", {}, dict(trace.names))  # noqa: S307 - the test's own
    except Exception as err:  # a name missing is a difference too
        ok = f"{type(err).__name__}: {err}"
    return [] if ok is True else [f"{trace.way}: {left} is not {right} ({ok})"]


# -- the fixtures (import both into a test module) ----------------------------------------

@pytest.fixture(scope="session")
def parity_kernel(tmp_path_factory):
    """A kernel under the remote kernelspec (default download policy), for the session."""
    prefix = tmp_path_factory.mktemp("parity-prefix")
    install(prefix, "--name", "parity")
    front = Frontend(prefix, "remote-parity", tmp_path_factory.mktemp("parity-cwd"))
    yield front
    front.close()


@pytest.fixture
def parity(shell, target, parity_kernel, monkeypatch):
    """``parity(cells, shared=(), ways=WAYS)``: run ``cells`` every way, assert they agree."""
    shell.run_line_magic("matplotlib", "inline")  # figures show as a notebook shows them
    # `!cmd` as a kernel runs it (IPython's test shell prints its output stripped instead)
    monkeypatch.setattr(shell, "system", shell.system_piped)
    # a fresh notebook: IPython's %run draws (and so shows) a figure when an earlier cell drew
    # one (its matplotlib runner reads this flag), and earlier tests in this process did
    import matplotlib.pyplot as plt
    monkeypatch.setattr(plt.draw_if_interactive, "called", False, raising=False)
    runners = {
        "plain": lambda cells: run_shell(shell, cells, "plain"),
        "kernel": lambda cells: run_kernel(parity_kernel.kc, cells),
        **{way: (lambda cells, way=way: run_shell(shell, cells, way, target.name))
           for way in ("all", "small", "none")},
    }

    def _parity(cells, shared=(), **options):
        return check(runners, list(cells), shared, **options)

    return _parity
