"""Differential runs: real notebooks written elsewhere, run plainly and remotely, compared cell by cell.

The corpus is ``../shared/corpus/`` (see its README): the numpy-100 exercises (one cell each) and
Julia Evans' pandas cookbook. Each is run under nbclient

- ``plain``: a plain python3 kernel, twice (cells whose two plain runs differ are unseeded
  randomness or timings, and are not compared);
- ``all`` / ``small``: the same kernel with ``%load_ext remote_magics`` and ``%remote_connect``
  first, every code cell run as ``%%remote --download=...``;
- ``kernel``: the notebook unchanged under the remote kernelspec (every cell runs remotely).

Every way starts with the same cell seeding Python's and NumPy's global random generators, so
cells that draw unseeded random numbers still compare. A cell is compared only where its plain
run succeeds. What is compared, after normalising object
addresses: the text it printed, its results' plain text, whether it showed an image, and the class
of any error. ``python -m tests.differential [numpy|pandas] [MODE ...]`` prints the divergent
cells of each mode; :func:`compare` is what a test asserts on.
"""
from __future__ import annotations

import dataclasses
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterable

import nbformat
from nbclient import NotebookClient

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
MODES = ("all", "small", "kernel")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FENCE = re.compile(r"```python\n(.*?)```", re.S)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one cell showed, normalised for comparison."""

    text: str  # streams and plain-text results, in order
    image: bool
    error: str | None  # the error's class name

    def brief(self) -> str:
        shown = self.text if len(self.text) < 300 else self.text[:300] + "..."
        return f"error={self.error} image={self.image} text={shown!r}"


@dataclasses.dataclass
class Divergence:
    cell: int
    source: str
    plain: Outcome
    remote: Outcome


def numpy100() -> tuple[list[str], Path]:
    """The numpy-100 solutions, one cell each, and the directory to run them in."""
    text = (CORPUS / "numpy-100" / "100_Numpy_exercises_with_solutions.md").read_text()
    return [block.strip() for block in _FENCE.findall(text)], CORPUS / "numpy-100"


def pandas_cookbook() -> list[tuple[str, list[str], Path]]:
    """The cookbook's chapters: name, code cells, and the directory its data paths start from."""
    folder = CORPUS / "pandas-cookbook" / "cookbook"
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        found.append((path.stem, [c.source for c in nb.cells if c.cell_type == "code"], folder))
    return found


#: The first cell of every way: the global random generators seeded alike.
SEED = "import random as _random, numpy as _numpy\n_random.seed(0)\n_numpy.random.seed(0)"
#: Cells the harness puts before the corpus's own in a way (their outcomes are dropped).
_SETUP = {"plain": 1, "kernel": 1, "all": 2, "small": 2}


def _notebook(cells: Iterable[str], mode: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    new = nbformat.v4.new_code_cell
    if mode in ("all", "small"):
        nb.cells.append(new("%load_ext remote_magics\n%remote_connect --name differential"))
        nb.cells.extend(new(f"%%remote --download={mode}\n{source}")
                        for source in [SEED, *cells])
    else:
        nb.cells.extend(new(source) for source in [SEED, *cells])
    return nb


def _outcome(cell: nbformat.NotebookNode) -> Outcome:
    parts, image, error = [], False, None
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            error = output.ename
        else:
            data = output.get("data", {})
            image = image or any(m.startswith("image/") for m in data)
            if "text/plain" in data and not any(m.startswith("image/") for m in data):
                parts.append(data["text/plain"] + "\n")
    text = _ADDRESS.sub("0xADDR", _ANSI.sub("", "".join(parts)))
    return Outcome(text, image, error)


#: What a cell shows that never finished (the run stopped there: this and later cells).
STOPPED = Outcome("", False, "stopped: the cell did not finish within the timeout")


def run(cells: list[str], mode: str, cwd: Path, timeout: int = 60) -> list[Outcome]:
    """Run ``cells`` one way (``plain`` or a :data:`MODES` entry); each cell's :class:`Outcome`.

    A cell that does not finish within ``timeout`` seconds stops the run: it and the cells
    after it are :data:`STOPPED`.
    """
    nb = _notebook(cells, mode)
    options = dict(timeout=timeout, allow_errors=True, interrupt_on_timeout=True,
                   resources={"metadata": {"path": str(cwd)}})
    try:
        if mode == "kernel":
            from jupyter_client.manager import AsyncKernelManager

            from remote_magics import kernel

            with tempfile.TemporaryDirectory() as prefix:
                kernel.install(kernel.remote_spec("differential"), "remote-differential",
                               prefix=prefix)
                km = AsyncKernelManager(kernel_name="remote-differential",
                                        kernel_spec_manager=kernel.spec_manager(prefix))
                NotebookClient(nb, km=km, **options).execute()
        else:
            NotebookClient(nb, kernel_name="python3", **options).execute()
    except Exception as err:  # a cell that hangs: what ran before it still counts
        print(f"differential: {mode} run stopped: {type(err).__name__}", file=sys.stderr)
    ran = [cell for cell in nb.cells if cell.get("execution_count") is not None]
    outcomes = [_outcome(cell) for cell in ran]
    outcomes = outcomes[_SETUP[mode]:]
    return outcomes + [STOPPED] * (len(cells) - len(outcomes))


def compare(cells: list[str], cwd: Path, modes: Iterable[str] = MODES) -> dict:
    """Per mode: how many cells were compared, and the divergent ones; plus what was left out."""
    first, second = run(cells, "plain", cwd), run(cells, "plain", cwd)
    failing = [i for i, o in enumerate(first) if o.error is not None]
    unstable = [i for i, (a, b) in enumerate(zip(first, second)) if a != b and i not in failing]
    compared = [i for i in range(len(cells)) if i not in failing and i not in unstable]
    report: dict = {"cells": len(cells), "plain_fails": failing, "unstable": unstable}
    for mode in modes:
        outcomes = run(cells, mode, cwd)
        report[mode] = {"compared": len(compared), "divergent": [
            Divergence(i, cells[i], first[i], outcomes[i])
            for i in compared if outcomes[i] != first[i]]}
    return report


def _print(name: str, report: dict, modes: Iterable[str]) -> None:
    print(f"== {name}: {report['cells']} cells; plain run fails in {len(report['plain_fails'])}, "
          f"unstable in {len(report['unstable'])}")
    for mode in modes:
        entry = report[mode]
        print(f"-- {mode}: {entry['compared']} compared, {len(entry['divergent'])} divergent")
        for d in entry["divergent"]:
            print(f"   cell {d.cell}: {d.source.splitlines()[0][:70]!r}")
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
