"""Differential runs: real notebooks written elsewhere, run plainly and remotely, compared cell by cell.

The corpus is ``../shared/corpus/`` (see its README): the numpy-100 exercises (one cell each) and
Julia Evans' pandas cookbook. Each is run under nbclient

- ``plain``: a plain python3 kernel; twice when a remote way differs from it (cells whose two
  plain runs differ are unseeded randomness or timings, and are not compared);
- ``all`` / ``small`` / ``none``: the same kernel with ``%load_ext remote_magics`` and
  ``%remote_connect`` first, every code cell run as ``%%remote --download=...`` (but a cell
  that starts with :data:`PLAIN`, for notebooks that mix plain and remote cells);
- ``kernel``: the notebook unchanged under the remote kernelspec (every cell runs remotely).

Every way starts with the same cell seeding Python's and NumPy's global random generators, so
cells that draw unseeded random numbers still compare. What is compared:

- per cell: the text it printed, its results' plain text and HTML, whether it showed an image,
  and the class of any error;
- after the last cell: the names the notebook holds (the local kernel's in ``plain``, ``all``,
  ``small``, ``none``; the engine's in ``kernel``), each by a digest of its value (:data:`STATE_PROBE`),
  so a change made in place, or a name lost or left stale, shows even when nothing printed it.

Normalised, and why:

- object addresses (``0x7f...``): they differ every run;
- the folder ipykernel names a cell's code after (``/tmp/ipykernel_4242/``, by its process id),
  which a warning's line shows: without it every cell that warns was dropped as unstable;
- a cell whose plain run fails (offline, or data the corpus lacks) is compared as any other:
  the remote run must fail with the same error class, after printing the same;
- cells (and names after the run) whose two plain runs differ: unseeded randomness or timings;
- the one note a remote cell must print where a value cannot travel (:data:`ACCEPTED_NOTE`:
  ``'con' stays remote as a proxy: it cannot be pickled (...)``), and nothing else, and only
  where it is true: cloudpickle cannot pickle the plain run's value of that name after that
  cell (one more plain run asks, :func:`picklable_plainly`); a note on a value that pickles
  plainly is a divergence (a bug of ours kept it remote). The name's digest then says only
  its type, both sides;
- a name that is a proxy after the run (``small`` keeps big values remote, ``none`` all) is
  digested by the value it stands for, fetched: keeping it remote is what the policy asks.

``python -m tests.differential [numpy|pandas] [MODE ...]`` prints the divergent cells and names
of each mode; :func:`compare` is what a test asserts on.
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterable

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def corpus() -> Path:
    """:data:`CORPUS`, or a FileNotFoundError saying where it must be (a bare clone lacks it)."""
    if not CORPUS.is_dir():
        raise FileNotFoundError(
            f"the differential corpus is not at {CORPUS}: these tests run real notebooks kept "
            "beside the repository (../shared/corpus, as CI's checkout has it). Clone the "
            "repository next to that shared folder, or copy the corpus there.")
    return CORPUS
MODES = ("all", "small", "kernel", "none")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: The folder ipykernel names a cell's code after (its process id): a warning's line shows it.
_CELL_FOLDER = re.compile(r"ipykernel_\d+/")
_FENCE = re.compile(r"```python\n(.*?)```", re.S)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one cell showed, normalised for comparison."""

    text: str  # streams and plain-text results, in order
    image: bool
    error: str | None  # the error's class name
    notes: tuple[str, ...] = dataclasses.field(default=(), compare=False)  # accepted notes

    def brief(self) -> str:
        shown = self.text if len(self.text) < 300 else self.text[:300] + "..."
        return f"error={self.error} image={self.image} text={shown!r}"


#: The one note a remote cell may print that a plain cell does not: a value that cannot be
#: pickled (an open sqlite connection, a numpy.nditer) cannot travel, so it stays remote.
ACCEPTED_NOTE = re.compile(
    r"^remote_magics: '\w+' stays remote as a proxy: it cannot be pickled \(.*\)\n", re.M)

#: What a plain ipykernel logs, on the running cell's stderr as well as its own, when frames
#: that are not a Jupyter message reach one of its ports: another process's socket that once
#: talked to a kernel there, reconnecting after that kernel died (the suite starts hundreds
#: of kernels on reused ports). Nothing of the cell's: taken out of its text.
STRAY_FRAMES = re.compile(
    r"ERROR:tornado\.general:Uncaught exception in ZMQStream callback\n"
    r"Traceback \(most recent call last\):\n(?:[ \t].*\n)*ValueError: DELIM not in msg_list\n?")

#: What the last cell of every way runs (local in ``all``/``small``): the notebook's user names,
#: each with a digest of its value (see the module docstring), as one JSON line.
_PROBE_CODE = r'''
def _differential_digest(value, depth=0):
    import cloudpickle, hashlib, re, types
    kind = type(value)
    if kind.__module__.startswith("remote_magics") and any(
            base.__name__ == "RemoteObject" for base in kind.__mro__):  # an iterator's too
        from remote_magics.cells import proxy  # the proxy's own, whatever its value's names
        try:
            value = proxy.fetch(value)
        except Exception:  # it cannot come here (an open connection): only its type compares
            # the type leaves builtins without their module: as the plain digest names them
            kind = value._descriptor["type"]
            named = kind if "." in kind else "builtins." + kind
            return "unpicklable " + named
        kind = type(value)
    name = kind.__module__ + "." + kind.__qualname__
    short = lambda text: text if len(text) < 200 else hashlib.sha1(text.encode()).hexdigest()
    address = re.compile(r"0x[0-9a-fA-F]{6,}")
    if isinstance(value, types.ModuleType):
        return "module " + value.__name__
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return name + " " + getattr(value, "__qualname__", "?")
    if callable(value) and isinstance(getattr(value, "__wrapped__", None), types.FunctionType) \
            and hasattr(value, "cache_info"):  # an lru_cache: as its function (a fetched one
        return "builtins.function " + value.__wrapped__.__qualname__  # may not pickle again)
    if isinstance(value, (str, bytes, int, float, complex, bool, type(None), range)):
        return name + " " + short(repr(value))
    if depth < 3 and isinstance(value, (list, tuple, set, frozenset, dict)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        if isinstance(value, dict):
            items = [(repr(k), _differential_digest(v, depth + 1)) for k, v in value.items()]
        else:
            items = [_differential_digest(v, depth + 1) for v in items]
        own = vars(value) if hasattr(value, "__dict__") else {}  # a subclass's attributes
        if own:
            items = [items, sorted((k, _differential_digest(v, depth + 1)) for k, v in own.items())]
        return name + " " + short(repr(items))
    module = kind.__module__.split(".")[0]
    if module == "numpy" and hasattr(value, "dtype") and hasattr(value, "tobytes"):
        if value.dtype.kind == "O":
            return name + " " + short(repr(value.tolist()))
        return f"{name} {value.dtype.str} {getattr(value, 'shape', ())} " + \
            hashlib.sha1(value.tobytes()).hexdigest()
    if module == "numpy" and hasattr(value, "bit_generator"):
        return name + " " + short(repr(value.bit_generator.state))
    if module == "pandas" and hasattr(value, "to_csv") or kind.__name__ == "Index":
        frame = value.to_frame() if hasattr(value, "to_frame") and not hasattr(value, "columns") \
            else value
        return f"{name} {getattr(value, 'name', None)!r} {list(frame.index.names)} " + \
            short(repr(frame.dtypes.tolist()) + frame.to_csv())
    if module == "matplotlib" and hasattr(value, "axes"):
        axes = value.axes if isinstance(value.axes, list) else [value]
        return name + " " + repr([len(ax.lines) + len(ax.patches) + len(ax.collections)
                                  for ax in axes])
    try:  # cloudpickle, as remote_magics: an object of a notebook class that stayed remote
        # (`none`) is fetched as an object of a class by value, which pickle cannot find
        cloudpickle.dumps(value)
    except Exception:  # cannot travel: only its type compares (the note says it stayed remote)
        return "unpicklable " + name
    text = address.sub("0xADDR", repr(value))
    if "0xADDR" in text and depth < 3 and hasattr(value, "__dict__"):
        return name + " " + _differential_digest(dict(vars(value)), depth + 1)
    return name + " " + short(text)

def _differential_state():
    import json
    from IPython import get_ipython
    ip = get_ipython()
    state = {}
    for name, value in list(ip.user_ns.items()):
        if name.startswith("_") or name in ip.user_ns_hidden:
            continue
        try:
            state[name] = _differential_digest(value)
        except Exception as err:  # a value whose digest fails: its type and why
            kind = type(value).__qualname__
            if type(value).__module__.startswith("remote_magics") and hasattr(
                    value, "type_name"):  # a proxy: the type it stands for, as plainly named
                # (asked of our proxies only: a class's __getattr__ may raise KeyError)
                kind = value.type_name.rpartition(".")[2]
            state[name] = f"{kind} undigestible {type(err).__name__}"
    print("DIFFERENTIAL-STATE " + json.dumps(state))

_differential_state()
'''
#: The first cell of the plain run that asks which noted names pickle (:func:`picklable_plainly`):
#: after each cell, cloudpickle of the names noted there (``WANTED``: the cell's execution count
#: → names), kept in ``_differential_picklable`` for :data:`_PICKLABLE_REPORT`.
_PICKLABLE_HOOK = r'''
def _differential_hook(wanted):
    import cloudpickle
    from IPython import get_ipython
    ip = get_ipython()
    found = ip.user_ns.setdefault("_differential_picklable", {})

    def check(result):
        for name in wanted.get(str(result.execution_count), ()):
            key = f"{result.execution_count} {name}"
            if name not in ip.user_ns:
                found[key] = "missing"
                continue
            try:
                cloudpickle.dumps(ip.user_ns[name])
            except Exception:
                found[key] = "unpicklable"
            else:
                found[key] = "picklable"
    ip.events.register("post_run_cell", check)

_differential_hook(WANTED)
'''
_PICKLABLE_REPORT = ("import json as _json\n"
                     "print('DIFFERENTIAL-PICKLABLE ' + _json.dumps(_differential_picklable))")


#: The probe cell: run in a namespace of its own, so that the notebook's names (``from numpy
#: import *`` binds ``bool``, ``all``, ``sum``) shadow none of the builtins it uses, and it
#: binds nothing.
STATE_PROBE = f"exec({_PROBE_CODE!r}, {{}})"


@dataclasses.dataclass
class Divergence:
    cell: int
    source: str
    plain: Outcome
    remote: Outcome


def numpy100() -> tuple[list[str], Path]:
    """The numpy-100 solutions, one cell each, and the directory to run them in."""
    text = (corpus() / "numpy-100" / "100_Numpy_exercises_with_solutions.md").read_text()
    return [block.strip() for block in _FENCE.findall(text)], CORPUS / "numpy-100"


def pandas_cookbook() -> list[tuple[str, list[str], Path]]:
    """The cookbook's chapters: name, code cells, and the directory its data paths start from."""
    folder = corpus() / "pandas-cookbook" / "cookbook"
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        found.append((path.stem, [c.source for c in nb.cells if c.cell_type == "code"], folder))
    return found


#: The first cell of every way: the global random generators seeded alike.
SEED = "import random as _random, numpy as _numpy\n_random.seed(0)\n_numpy.random.seed(0)"
#: A cell that starts with this line runs plainly in the ``all``/``small``/``none`` ways too:
#: a notebook that mixes plain and remote cells, as people use ``%%remote``.
PLAIN = "# plain\n"
#: Cells the harness puts before the corpus's own in a way (their outcomes are dropped).
_SETUP = {"plain": 1, "kernel": 1, "all": 2, "small": 2, "none": 2}


def _notebook(cells: Iterable[str], mode: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    new = nbformat.v4.new_code_cell
    if mode in ("all", "small", "none"):
        nb.cells.append(new("%load_ext remote_magics\n%remote_connect --name differential"))
        # an empty cell stays empty: Jupyter does not run it (``%%remote`` alone would be
        # IPython's own "cell body is empty" UsageError)
        nb.cells.extend(new(source if not source.strip() or source.startswith(PLAIN)
                            else f"%%remote --download={mode}\n{source}")
                        for source in [SEED, *cells])
    else:
        nb.cells.extend(new(source) for source in [SEED, *cells])
    nb.cells.append(new(STATE_PROBE))
    return nb


def _joined_streams(outputs: list) -> list:
    """``outputs`` with each run of stream outputs of one name joined into one, as a Jupyter
    front end shows them: where a kernel's stream flushes between two writes of one line (its
    flush timer fires between them, under load) is no difference between two ways."""
    joined = []
    for output in outputs:
        if (output.output_type == "stream" and joined and joined[-1].output_type == "stream"
                and joined[-1].name == output.name):
            joined[-1] = nbformat.from_dict({**joined[-1], "text": joined[-1].text + output.text})
        else:
            joined.append(output)
    return joined


def cell_outcome(cell: nbformat.NotebookNode) -> Outcome:
    """What one run cell showed: its text (streams, results, HTML), whether it drew an image,
    its errors' names (each error output's, in order: a formatter's error shown besides the
    cell's counts too), and the accepted notes taken out of its stderr."""
    parts, image, errors, notes = [], False, [], []
    for output in _joined_streams(cell.get("outputs", [])):
        if output.output_type == "stream":
            text = output.text
            if output.name == "stderr":
                text = STRAY_FRAMES.sub("", text)
                notes += [m.group(0) for m in ACCEPTED_NOTE.finditer(text)]
                text = ACCEPTED_NOTE.sub("", text)
            parts.append(text)
        elif output.output_type == "error":
            errors.append(output.ename)
        else:
            data = output.get("data", {})
            image = image or any(m.startswith("image/") for m in data)
            if not any(m.startswith("image/") for m in data):  # a table shows as HTML too
                parts += [data[mime] + "\n" for mime in ("text/plain", "text/html") if mime in data]
    text = _ADDRESS.sub("0xADDR", _ANSI.sub("", "".join(parts)))
    text = _CELL_FOLDER.sub("ipykernel_PID/", text)
    return Outcome(text, image, ", ".join(errors) or None, tuple(notes))


def _state(cell: nbformat.NotebookNode) -> dict[str, str] | None:
    """The names and digests :data:`STATE_PROBE` printed; None when it did not run."""
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and "DIFFERENTIAL-STATE " in output.text:
            line = output.text.split("DIFFERENTIAL-STATE ", 1)[1].splitlines()[0]
            return {k: _ADDRESS.sub("0xADDR", v) for k, v in json.loads(line).items()}
    return None


#: What an empty cell shows.
EMPTY = Outcome("", False, None)
#: What a cell shows that never finished (the run stopped there: this and later cells).
STOPPED = Outcome("", False, "stopped: the cell did not finish within the timeout")


@dataclasses.dataclass
class Run:
    """One way's run: each cell's outcome, and the names after (None: it never got there)."""

    outcomes: list[Outcome]
    state: dict[str, str] | None


#: How many of a comparison's runs go side by side. Most of a run's time is kernels starting
#: and messages waiting, so on 2 cores four at once take about half the time of one
#: after another.
SIDE_BY_SIDE = 4


def run(cells: list[str], mode: str, cwd: Path, timeout: int = 60) -> Run:
    """Run ``cells`` one way (``plain`` or a :data:`MODES` entry): each cell's :class:`Outcome`,
    and the names after the last cell.

    A cell that does not finish within ``timeout`` seconds stops the run: it and the cells
    after it are :data:`STOPPED`.
    """
    return run_ways(cells, [mode], cwd, timeout)[mode]


def run_ways(cells: list[str], modes: Iterable[str], cwd: Path, timeout: int = 60
             ) -> dict[str, Run]:
    """:func:`run` of each of ``modes``, :data:`SIDE_BY_SIDE` at a time; mode → its Run."""
    modes = list(modes)

    async def every_way() -> list[Run]:
        turns = asyncio.Semaphore(SIDE_BY_SIDE)

        async def one(mode: str) -> Run:
            async with turns:
                # Each run works in a fresh copy of the corpus folder: cells write there
                # (chapter 9's to_sql), and every way must start from the same files;
                # ../shared stays untouched.
                with tempfile.TemporaryDirectory() as scratch:
                    copy = Path(scratch) / cwd.name
                    shutil.copytree(cwd, copy)
                    return await _run_kernels(cells, mode, copy, timeout)
        return await asyncio.gather(*(one(mode) for mode in modes))

    with _as_a_server_starts_kernels():
        return dict(zip(modes, run_sync(every_way)()))


@contextlib.contextmanager
def _as_a_server_starts_kernels():
    """Kernels started here watch their file descriptors, as a notebook server's do: ipykernel
    does not under pytest (``PYTEST_CURRENT_TEST``), and a shell command's output, or what an
    engine echoed into its parent's descriptor (hunt 19 H19-27), went unseen."""
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


async def _execute(nb: nbformat.NotebookNode, mode: str, cwd: Path, timeout: int) -> None:
    """Run ``nb`` in a new kernel of the way ``mode``; the kernels it started end with it."""
    options = dict(timeout=timeout, allow_errors=True, interrupt_on_timeout=True,
                   resources={"metadata": {"path": str(cwd)}})
    if mode != "kernel":
        client = NotebookClient(nb, kernel_name="python3", **options)
        try:
            await client.async_execute()
        finally:  # nbclient leaves its exit-time cleanup registered when its kernel died as it
            # started (our retry, STARTS), and at exit it failed on the kernel manager it had
            # let go ("Exception ignored in atexit callback", seen once in a CI run)
            atexit.unregister(client._cleanup_kernel)
        return
    from jupyter_client.manager import AsyncKernelManager

    from remote_magics import kernel

    with tempfile.TemporaryDirectory() as prefix:
        kernel.install(kernel.remote_spec("differential"), "remote-differential", prefix=prefix)
        km = AsyncKernelManager(kernel_name="remote-differential",
                                kernel_spec_manager=kernel.spec_manager(prefix))
        client = NotebookClient(nb, km=km, **options)
        try:
            await client.async_execute()
        finally:  # nbclient stops only the kernels it made: this one and its engine
            atexit.unregister(client._cleanup_kernel)
            if km.has_kernel:
                await km.shutdown_kernel(now=False)


#: Times a run whose kernel died before running anything is started again: jupyter_client
#: picks a kernel's ports free and the kernel binds them later, so kernels starting side by
#: side may take one another's ("Address already in use").
STARTS = 3


async def _run_kernels(cells: list[str], mode: str, cwd: Path, timeout: int) -> Run:
    for start in range(1, STARTS + 1):
        nb = _notebook(cells, mode)
        try:
            await _execute(nb, mode, cwd, timeout)
            break
        except Exception as err:  # a cell that hangs: what ran before it still counts
            if start < STARTS and not isinstance(err, CellTimeoutError) \
                    and all(cell.get("execution_count") is None for cell in nb.cells):
                print(f"differential: {mode} kernel did not start ({type(err).__name__}); "
                      "starting another", file=sys.stderr)
                continue
            print(f"differential: {mode} run stopped: {type(err).__name__}", file=sys.stderr)
            break
    for setup in nb.cells[:_SETUP[mode]]:  # a setup cell that failed (`%remote_connect`): why
        for output in setup.get("outputs", []):
            if output.output_type == "error" or getattr(output, "name", "") == "stderr":
                print(f"differential: {mode} setup: {output.get('ename') or ''} "
                      f"{output.get('evalue') or output.get('text', '')}"[:2000], file=sys.stderr)
    probe = nb.cells[-1]
    state = _state(probe) if probe.get("execution_count") is not None else None
    outcomes = [
        cell_outcome(cell) if cell.get("execution_count") is not None
        else EMPTY if not source.strip()  # nbclient skips an empty cell: it shows nothing
        else STOPPED
        for cell, source in zip(nb.cells[_SETUP[mode]:], cells)]
    return Run(outcomes, state)


def compare(cells: list[str], cwd: Path, modes: Iterable[str] = MODES) -> dict:
    """Per mode: how many cells were compared, the divergent ones, and the names that differ
    after the run (name → (plain digest, this mode's), None where a name is missing); plus what
    was left out.

    The second plain run, which tells unseeded randomness and timings apart, runs only when a
    mode differs from the first (most notebooks: none does, and it cost a sixth of the time);
    ``unstable`` and ``unstable_names`` are then empty."""
    others = run_ways(cells, ["plain", *modes], cwd)
    first = others.pop("plain")
    failing = [i for i, o in enumerate(first.outcomes) if o.error is not None]
    plain_state = first.state or {}
    differs = any(other.state is None or other.state != plain_state
                  or other.outcomes != first.outcomes for other in others.values())
    second = run(cells, "plain", cwd) if differs else first
    unstable = [i for i, (a, b) in enumerate(zip(first.outcomes, second.outcomes)) if a != b]
    compared = [i for i in range(len(cells)) if i not in unstable]
    again = second.state or {}
    unstable_names = sorted(n for n in {*plain_state, *again}
                            if plain_state.get(n) != again.get(n))
    report: dict = {"cells": len(cells), "plain_fails": failing, "unstable": unstable,
                    "unstable_names": unstable_names}
    noted: dict[str, list[tuple[int, str]]] = {}  # mode → (cell, name) of each accepted note
    states: dict[str, dict] = {}
    for mode, other in others.items():
        state = other.state or {}
        report[mode] = {
            "compared": len(compared),
            "divergent": [Divergence(i, cells[i], first.outcomes[i], other.outcomes[i])
                          for i in compared if other.outcomes[i] != first.outcomes[i]],
            "names": {n: (plain_state.get(n), state.get(n)) for n in sorted({*plain_state, *state})
                      if n not in unstable_names and plain_state.get(n) != state.get(n)},
            "notes": [note.strip() for i in compared for note in other.outcomes[i].notes],
        }
        noted[mode] = [(i, note.split("'")[1])
                       for i in compared for note in other.outcomes[i].notes]
        states[mode] = state
        if other.state is None:
            report[mode]["names"]["(the run stopped before its names could be read)"] = (
                "", None)
    wanted = {pair for pairs in noted.values() for pair in pairs}
    verdicts = picklable_plainly(cells, cwd, wanted) if wanted else {}
    for mode, pairs in noted.items():  # a note is true only where the plain value cannot pickle
        for cell, name in pairs:
            verdict = verdicts.get((cell, name))
            if verdict is None:  # that run did not get there: the plain value at the end decides
                verdict = "unpicklable" if (plain_state.get(name) or "unpicklable").startswith(
                    "unpicklable") else "picklable"
            if verdict != "unpicklable":
                report[mode]["names"][f"{name} (noted in cell {cell} as unpicklable)"] = (
                    f"{verdict} plainly", states[mode].get(name))
    return report


def picklable_plainly(cells: list[str], cwd: Path, wanted: set[tuple[int, str]],
                      timeout: int = 60) -> dict[tuple[int, str], str]:
    """For each ``(cell, name)`` of ``wanted``: whether cloudpickle pickles the plain run's value
    of ``name`` right after cell ``cell`` ("picklable", "unpicklable", or "missing": the name
    is unbound then), from one more plain run; a cell the run did not reach is left out."""
    counts, count = {}, 2  # the hook's cell and SEED run first
    for index, source in enumerate(cells):
        if source.strip():  # nbclient skips an empty cell: it takes no execution count
            count += 1
            counts[index] = count
    by_count: dict[str, list[str]] = {}
    for cell, name in wanted:
        by_count.setdefault(str(counts[cell]), []).append(name)
    new = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [new(_PICKLABLE_HOOK.replace("WANTED", repr(by_count))),
                *(new(source) for source in [SEED, *cells]), new(_PICKLABLE_REPORT)]
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / cwd.name
        shutil.copytree(cwd, copy)
        try:
            NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=True,
                           interrupt_on_timeout=True,
                           resources={"metadata": {"path": str(copy)}}).execute()
        except Exception as err:  # a cell that hangs: what ran before it still counts
            print(f"differential: the picklability run stopped: {type(err).__name__}",
                  file=sys.stderr)
    found: dict = {}
    for output in nb.cells[-1].get("outputs", []):
        if output.output_type == "stream" and "DIFFERENTIAL-PICKLABLE " in output.text:
            found = json.loads(output.text.split("DIFFERENTIAL-PICKLABLE ", 1)[1].splitlines()[0])
    return {(cell, name): found[f"{counts[cell]} {name}"] for cell, name in wanted
            if f"{counts[cell]} {name}" in found}


def _print(name: str, report: dict, modes: Iterable[str]) -> None:
    print(f"== {name}: {report['cells']} cells; plain run fails in {len(report['plain_fails'])}, "
          f"unstable in {len(report['unstable'])}; names unstable: {report['unstable_names']}")
    for mode in modes:
        entry = report[mode]
        print(f"-- {mode}: {entry['compared']} compared, {len(entry['divergent'])} divergent, "
              f"{len(entry['names'])} names differ after; {len(entry['notes'])} accepted notes")
        for note in entry["notes"]:
            print(f"   note: {note}")
        for key, (mine, theirs) in entry["names"].items():
            print(f"   name {key}: plain {mine!r} / {mode} {theirs!r}")
        for d in entry["divergent"]:
            print(f"   cell {d.cell}: {(d.source.splitlines() or [''])[0][:70]!r}")
            print(f"      plain:  {d.plain.brief()}")
            print(f"      remote: {d.remote.brief()}")


def main(argv: list[str]) -> None:
    which = argv[0] if argv else "numpy"
    modes = tuple(argv[1:]) or MODES
    if which == "numpy":
        cells, cwd = numpy100()
        _print("numpy-100", compare(cells, cwd, modes), modes)
    else:
        for name, cells, cwd in pandas_cookbook():
            _print(name, compare(cells, cwd, modes), modes)


if __name__ == "__main__":
    main(sys.argv[1:])
