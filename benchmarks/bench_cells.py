"""Cells whose cost should not grow with the data: proxy reuse, capture, many small inputs.

- Proxy reuse: ``y = x[0]`` where ``x`` is a proxy to a 1 GB array must cost about a null cell
  (the proxy travels as a reference; only the float comes back).
- Capture: :func:`remote_magics.cells.capture.analyze` of a 500-line cell (no kernel involved).
- Many small values: a cell that reads 1,000 small local variables, each pickled and shipped.
- Many small objects: our pickler against cloudpickle on 100,000 datetimes and 20,000
  dataclass objects (our ``reducer_override`` is asked about each one).
- No re-upload: a local 1 GB array (100 MB with --quick) read by five cells in a row: the first
  uploads it, cells 2 to 5 send a reference to the engine's kept copy (it is unchanged: its
  pages' write tracking says so); a view of it bound by a cell (``train = a[:n]``), which comes
  back as a view of the notebook's array with no bytes; read after a remote cell changed it and
  it came back whole (both copies equal again: no upload); then one element changed here and
  read again (uploaded again).
The null cell is measured again here, so every ratio is of figures taken minutes apart at most.
"""
from __future__ import annotations

import ast
import dataclasses
import gc
import statistics
import time

from . import peers
from .harness import MB, Bench, Row

TITLE = "Proxy reuse, capture, many small values"
ORDER = 30
GROUP = "cells"


def cell_of(lines: int) -> str:
    """A realistic notebook cell of about ``lines`` lines: imports, loops, functions, classes."""
    blocks = []
    i = 0
    while sum(b.count("\n") for b in blocks) < lines:
        blocks.append(
            f"import math as m{i}\n"
            f"data{i} = [v * {i} for v in range(10) if v % 2]\n"
            f"total{i} = sum(data{i}) + len(data{i})\n"
            f"for k{i}, v{i} in enumerate(data{i}):\n"
            f"    total{i} += k{i} * v{i}\n"
            f"def f{i}(a, b=total{i}):\n"
            f"    c = a + b + source{i % 7}\n"
            f"    return [c * n for n in range(a)]\n"
            f"class C{i}:\n"
            f"    scale = {i}\n"
            f"    def run(self, z):\n"
            f"        return f{i}(z) + [self.scale]\n"
            f"with open(path{i % 3}) as fh{i}:\n"
            f"    text{i} = fh{i}.read()\n"
            f"if (n{i} := len(text{i})) > 10:\n"
            f"    out{i} = {{k: v for k, v in zip(data{i}, range(n{i}))}}\n"
            f"else:\n"
            f"    out{i} = lambda q: q + total{i}\n"
            f"del data{i}\n"
        )
        i += 1
    return "".join(blocks)


def run(bench: Bench) -> None:
    """Null cell, proxy reuse of a 1 GB proxy, 1,000 small inputs; capture of 500 lines; a
    pcolor figure pickled; many small objects pickled; an unchanged array read again.
    ``--rows capture``, ``figure``, ``objects``,
    ``proxy`` (the null cell too), ``reuse``, ``containers`` pick sections (the reuse targets
    need ``proxy``'s null cell)."""
    trials = bench.trials(200, 40)
    if bench.wants("capture"):
        capture_rows(bench)
    if bench.wants("figure"):
        figure_rows(bench)
    if bench.wants("objects"):
        object_rows(bench)
    if bench.wants("proxy"):
        proxy_rows(bench, trials)
    if bench.wants("reuse"):
        reuse(bench)
    if bench.wants("containers"):
        containers(bench)


def capture_rows(bench: Bench) -> None:
    """capture.analyze of a 500-line cell and of 500 assignments, against ast.parse of the same
    text, interleaved: the analysis parses the cell, so parsing is its floor, and the target is
    what the analysis adds to it (on this VM ast.parse of that cell alone takes 4.5 to 7 ms,
    so a bound in milliseconds said more about the machine than about us)."""
    from remote_magics.cells import capture

    code = cell_of(500)
    analyze = getattr(capture.analyze, "__wrapped__", capture.analyze)  # past any cache
    simple = "\n".join(f"x{i} = y{i % 50} + {i}" for i in range(500))
    bench.interleave("capture", [
        ("capture.500", f"capture.analyze of a {code.count(chr(10))}-line cell (uncached)",
         lambda: analyze(code)),
        ("capture.parse", "ast.parse alone of the same cell (CPython's floor)",
         lambda: ast.parse(code)),
        ("capture.simple", "capture.analyze of 500 simple assignments (uncached)",
         lambda: analyze(simple)),
    ], trials=bench.trials(100, 30))
    bench.target("capture of a 500-line cell ≤ 3 × ast.parse of it", "capture.500",
                 "capture.parse", at_most=3.0)


def figure_rows(bench: Bench) -> None:
    """Our pickling of a figure with a pcolor of n×n cells (n² vertex arrays over one buffer,
    each a numpy view our pickler places), at n = 50 and 100, against cloudpickle's: it was
    quadratic (hunt 19 H19-21: 80 s at 100×100), and must grow as the cells do (4×)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import cloudpickle
    import numpy as np

    from remote_magics.wire import serialize

    figures = {}
    for n in (50, 100):
        phi = np.linspace(0, 2 * np.pi, n)
        x, y = np.meshgrid(phi, phi)
        fig, ax = plt.subplots()
        figures[n] = (fig, ax, ax.pcolor(x, y, np.cos(x) * np.sin(y)))
    bench.interleave("figure", [
        ("figure.ours50", "our pickler: a figure with a 50x50 pcolor",
         lambda: serialize.Outgoing().dump(figures[50])),
        ("figure.ours100", "our pickler: a figure with a 100x100 pcolor",
         lambda: serialize.Outgoing().dump(figures[100])),
        ("figure.cloudpickle", "cloudpickle.dumps of the 100x100 figure",
         lambda: cloudpickle.dumps(figures[100])),
    ], trials=bench.trials(10, 3))
    for fig, _, _ in figures.values():
        plt.close(fig)
    bench.target("pickling a 100x100 pcolor figure ≤ 5 × the 50x50 one (it has 4 × the parts)",
                 "figure.ours100", "figure.ours50", at_most=5.0)


@dataclasses.dataclass
class Reading:
    """A small record, as notebooks keep lists of (for :func:`object_rows`)."""

    station: str
    value: float


def object_rows(bench: Bench) -> None:
    """Our pickler against cloudpickle on many small objects, each of which our
    ``reducer_override`` is asked about: 100,000 datetimes (a class written in C) and 20,000
    dataclass objects (a Python class's)."""
    import datetime

    import cloudpickle

    from remote_magics.wire import serialize

    stamps = [datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=i)
              for i in range(100_000)]
    readings = [Reading(f"s{i % 50}", i / 2) for i in range(20_000)]
    bench.interleave("objects", [
        ("objects.ours_c", "our pickler: 100,000 datetimes", lambda: serialize.dumps(stamps)),
        ("objects.cloudpickle_c", "cloudpickle.dumps of them", lambda: cloudpickle.dumps(stamps)),
        ("objects.ours_py", "our pickler: 20,000 dataclass objects",
         lambda: serialize.dumps(readings)),
        ("objects.cloudpickle_py", "cloudpickle.dumps of them",
         lambda: cloudpickle.dumps(readings)),
    ], trials=bench.trials(10, 3))
    bench.target("pickling 100,000 datetimes ≤ 2 × cloudpickle", "objects.ours_c",
                 "objects.cloudpickle_c", at_most=2.0)
    bench.target("pickling 20,000 dataclass objects ≤ 2 × cloudpickle", "objects.ours_py",
                 "objects.cloudpickle_py", at_most=2.0)


def proxy_rows(bench: Bench, trials: int) -> None:
    """The null cell (for the ratios), a 1 GB proxy reused, 1,000 small inputs."""
    with peers.ours() as ours:
        ns = ours.shell.user_ns
        ours.cell("%%remote --download=none\nimport numpy as np\n"
                  f"x = np.ones({1000 * MB // 8})")
        bench.interleave(GROUP, [
            ("cells.null", "%%remote pass (null cell, for the ratios)",
             lambda: ours.cell("%%remote\npass")),
            ("cells.proxy", "%%remote y = x[0], x a 1 GB proxy",
             lambda: ours.cell("%%remote\ny = x[0]")),
        ], trials=trials)
        ns.pop("x").release()
        ns.pop("y", None)
        names = [f"v{i}" for i in range(1000)]
        ns.update({name: i for i, name in enumerate(names)})
        cell = "%%remote\nn = len([" + ", ".join(names) + "])"
        bench.time(GROUP, "cells.many", "%%remote reading 1,000 small local variables",
                   lambda: ours.cell(cell), trials=bench.trials(50, 15))
        for name in names:
            del ns[name]
    bench.target("proxy reuse of 1 GB ≤ 2 × null cell", "cells.proxy", "cells.null", at_most=2.0)


def reuse(bench: Bench) -> None:
    """A local array read by five cells: uploaded once, then references; changed: again."""
    import numpy as np

    size = 100 * MB if bench.quick else 1000 * MB
    label = "100 MB" if bench.quick else "1 GB"
    cell = "%%remote\ns = float(a[-1])"
    with peers.ours("bench-reuse") as ours:
        ns, target = ours.shell.user_ns, ours.target

        def read(expect_upload: bool) -> None:
            ours.cell(cell)
            uploaded = target.last_run.bytes_sent >= size
            if uploaded != expect_upload:  # the figures would measure something else
                raise AssertionError(f"expected upload={expect_upload}, sent "
                                     f"{target.last_run.bytes_sent:,} bytes")

        first = Row(GROUP, "cells.reuse.first", f"%%remote reading a new local {label} array "
                    "(cell 1: uploads it)")
        rest = Row(GROUP, "cells.reuse.rest", f"the same {label} array unchanged, mean of cells "
                   "2-5 (a reference to the engine's kept copy)")
        for _ in range(bench.trials(5, 3)):
            bench._check_deadline()
            ns.pop("a", None)
            gc.collect()
            ours.cell("%%remote\npass")  # the last array's kept copy is released first
            ns["a"] = np.ones(size // 8)
            started = time.perf_counter()
            read(True)
            first.seconds.append(time.perf_counter() - started)
            times = []
            for _ in range(4):
                started = time.perf_counter()
                read(False)
                times.append(time.perf_counter() - started)
            rest.seconds.append(statistics.mean(times))
        bench.rows += [first, rest]

        def view() -> None:  # a view of the upload comes back: as a view, with no bytes
            ours.cell("%%remote --download=all\ntrain = a[: len(a) // 2]")
            moved = target.last_run.bytes_sent + target.last_run.bytes_received
            if moved >= size // 2 or not np.shares_memory(ns["train"], ns["a"]):
                raise AssertionError(f"expected a view of the notebook's a, {moved:,} bytes "
                                     "moved")

        bench.interleave(GROUP, [
            ("cells.null2", "%%remote pass (null cell, interleaved with the next row)",
             lambda: ours.cell("%%remote\npass")),
            ("cells.reuse", f"%%remote s = float(a[-1]), a an unchanged local {label} array",
             lambda: read(False)),
            ("cells.reuse.view", f"%%remote --download=all train = a[: len(a) // 2], a view of "
             f"the same unchanged {label} array", view),
        ], trials=bench.trials(100, 30))

        def changed_there() -> None:  # a cell changes it, and it comes back whole
            ours.cell("%%remote --download=all\na[0] += 1.0")
            if target.last_run.bytes_received < size:
                raise AssertionError("expected the changed array back")

        bench.time(GROUP, "cells.reuse.after", f"the {label} array read again after a remote "
                   "cell changed it (a[0] += 1, back whole: both copies equal again)",
                   lambda: read(False), setup=changed_there, trials=bench.trials(5, 3), warmup=0)

        def change() -> None:
            ns["a"][-1] += 1.0

        bench.time(GROUP, "cells.reuse.changed", f"the same {label} array, one element changed "
                   "since (uploaded again)", lambda: read(True), setup=change,
                   trials=bench.trials(5, 3), warmup=0)
        def made_there() -> None:  # a cell makes the array, and it comes down (all-remote)
            ns.pop("m", None)
            gc.collect()
            ours.cell(f"%%remote --download=all\nimport numpy as np\nm = np.ones({size // 8})")
            if target.last_run.bytes_received < size:
                raise AssertionError("expected the new array back")

        def read_made() -> None:
            ours.cell("%%remote\ns = float(m[-1])")
            if target.last_run.bytes_sent >= size:
                raise AssertionError(f"expected no upload, sent {target.last_run.bytes_sent:,}")

        bench.time(GROUP, "cells.reuse.made", f"a {label} array a remote cell made and sent back "
                   "(--download=all), read by the next cell (the engine kept its own)",
                   read_made, setup=made_there, trials=bench.trials(5, 3), warmup=0)
        for name in ("a", "s", "train", "m"):
            ns.pop(name, None)
        gc.collect()
        # a DataFrame a cell reads and may change (`len(df)` passes it to a call): watched for
        # in-place changes by its blocks' pages, not by a digest of its bytes (hunt 18 C9)
        import pandas as pd

        ns["df"] = pd.DataFrame(np.ones((size // 64, 8)), columns=list("abcdefgh"))
        ours.cell("%%remote\nn = len(df)")  # uploads it

        def read_frame() -> None:
            ours.cell("%%remote\nn = len(df)")
            if target.last_run.bytes_sent >= size // 2:
                raise AssertionError(f"expected no upload, sent {target.last_run.bytes_sent:,}")

        bench.time(GROUP, "cells.reuse.frame", f"an unchanged {label} DataFrame passed to a call "
                   "(watched for in-place changes)", read_frame, trials=bench.trials(10, 5))
        for name in ("df", "n"):
            ns.pop(name, None)
        gc.collect()
    bench.target(f"an unchanged {label} DataFrame a cell may change < 3 × null cell",
                 "cells.reuse.frame", "cells.null", at_most=3.0)
    bench.target(f"a {label} array a remote cell made, read by the next cell < 2 × null cell",
                 "cells.reuse.made", "cells.null", at_most=2.0)
    bench.target(f"cells 2-5 reading an unchanged {label} array < 2 × null cell",
                 "cells.reuse.rest", "cells.null", at_most=2.0)
    bench.target(f"an unchanged {label} array read again < 2 × null cell (interleaved)",
                 "cells.reuse", "cells.null2", at_most=2.0)
    bench.target(f"a view of an unchanged {label} array (train = a[:n]) < 2 × null cell "
                 "(interleaved)", "cells.reuse.view", "cells.null2", at_most=2.0)
    # not against the null cell: the first cell after one that received the array back costs
    # 6-12 ms more at 100 MB than the next ones (not in bind, nor in either side's write
    # check; where is not found yet), with no byte uploaded
    bench.target(f"a {label} array read after a remote cell changed it costs no upload (≤ 0.5 × "
                 "reading it changed here)", "cells.reuse.after", "cells.reuse.changed",
                 at_most=0.5)
    bench.target(f"a changed {label} array costs about its first upload (≤ 1.2×)",
                 "cells.reuse.changed", "cells.reuse.first", at_most=1.2)


def containers(bench: Bench) -> None:
    """A big set of tuples (pytudes' poker hands: 2.6 million of them) and a big list of
    strings, made by a remote cell and sent back, then read by the next cells: kept by the
    engine (a reference and a check of their members), against the same read with keeping off
    (pickled, sent and rebuilt every time, as before)."""
    from remote_magics.cells import uploads

    n = 300_000 if bench.quick else 1_000_000
    cases = [("set", f"a set of {n:,} 5-tuples of ints",
              f"h = {{(i, i + 1, i + 2, i + 3, i + 4) for i in range({n})}}"),
             ("list", f"a list of {n:,} strings", f"h = [str(i) for i in range({n})]")]
    with peers.ours("bench-containers") as ours:
        ns, target = ours.shell.user_ns, ours.target
        for kind, what, make in cases:
            ns.pop("h", None)
            gc.collect()
            ours.cell("%%remote --download=all\n" + make)

            def read(kept: bool) -> None:
                ours.cell("%%remote\nn = len(h)")
                if (target.last_run.bytes_sent < 10_000) != kept:
                    raise AssertionError(f"expected kept={kept}, sent "
                                         f"{target.last_run.bytes_sent:,} bytes")

            bench.time(GROUP, f"cells.kept.{kind}", f"%%remote n = len(h), h {what} a remote "
                       "cell made and sent back, unchanged (the engine's kept copy, its members "
                       "checked)", lambda: read(True), trials=bench.trials(10, 5))
            track = uploads.ledger.track
            uploads.ledger.track = lambda value, checked=False: None  # keeping off
            record = uploads.ledger.tracked.get(id(ns["h"]))
            if record is not None:
                uploads.ledger.drop(record)
            try:
                bench.time(GROUP, f"cells.kept.{kind}.off", f"the same, keeping off (sent by "
                           "value every time)", lambda: read(False), trials=bench.trials(5, 3))
            finally:
                uploads.ledger.track = track
            bench.target(f"reading an unchanged {what} a remote cell made ≤ 0.2 × sending it",
                         f"cells.kept.{kind}", f"cells.kept.{kind}.off", at_most=0.2)
        ns.pop("h", None)
        ns.pop("n", None)
        gc.collect()
