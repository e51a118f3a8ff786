"""The benchmark harness: timing, memory, targets, the table and ``RESULTS.md``.

A benchmark is a module ``benchmarks/bench_*.py`` with a documented function
``run(bench: Bench) -> None``; :func:`discover` finds every such module, so adding a file is
enough to add rows. Optional module attributes: ``ORDER`` (int, lower runs first; default 100)
and ``TITLE`` (shown in the log). Inside ``run``:

- ``bench.quick`` says whether this is ``make bench-quick`` (fewer trials, no 1 GB cases);
- ``bench.trials(full, quick)`` picks a trial count for the mode;
- ``bench.time(group, row_id, label, fn, trials=...)`` times ``fn()`` after warm-up and records a
  row of seconds (median, min, max); ``bench.transfer(...)`` does the same for a transfer of
  ``nbytes`` and also records the peak RSS growth of this process and the remote one;
- ``bench.skip(group, row_id, label, reason)`` records a row that could not be measured;
- ``bench.target(text, row_id, other_id, at_most=...)`` (or ``at_least=``) states a target as a
  ratio of two rows of the same run; ``bench.limit(text, row_id, at_most_seconds=...)`` states an
  absolute one;
- ``bench.cleanup(fn)`` runs ``fn`` when the module ends, whatever happens; peers started through
  :mod:`benchmarks.peers` are context managers, use them in ``with`` blocks.

Every wait in a benchmark must be bounded by a timeout; everything binds 127.0.0.1.
"""
from __future__ import annotations

import datetime
import gc
import importlib
import logging
import os
import platform
import statistics
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MB = 1_000_000


@dataclass
class Row:
    """One line of the table: a case measured for one tool."""

    group: str
    row_id: str
    label: str
    seconds: list[float] = field(default_factory=list)
    nbytes: int | None = None  # set for a transfer: the row shows MB/s
    rss_local: int | None = None  # peak RSS growth during a trial, bytes
    rss_remote: int | None = None
    note: str = ""
    skipped: str = ""  # why the row has no figure

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def cells(self) -> list[str]:
        """The row's figures as table cells: median, min, max, unit."""
        if self.skipped or not self.seconds:
            return ["—", "—", "—", ""]
        if self.nbytes:
            rates = sorted(self.nbytes / MB / s for s in self.seconds)
            return [_num(statistics.median(rates)), _num(rates[0]), _num(rates[-1]), "MB/s"]
        unit, scale = ("ms", 1e3) if self.median >= 1e-4 else ("µs", 1e6)
        return [_num(self.median * scale), _num(min(self.seconds) * scale),
                _num(max(self.seconds) * scale), unit]

    def memory(self) -> str:
        if self.rss_local is None and self.rss_remote is None:
            return ""
        return f"+{_rss(self.rss_local, self.nbytes)} / +{_rss(self.rss_remote, self.nbytes)}"


@dataclass
class Target:
    """A goal stated as a ratio of two rows (or as an absolute time) and whether it was met."""

    text: str
    row_id: str
    other_id: str | None = None
    at_most: float | None = None
    at_least: float | None = None
    ratio: float | None = None  # measured
    met: bool | None = None
    why: str = ""


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value >= 1 else f"{value:.3f}"


def _rss(nbytes: int | None, size: int | None) -> str:
    if nbytes is None:
        return "?"
    text = f"{max(nbytes, 0) / MB:,.0f} MB"
    if size:
        text += f" ({max(nbytes, 0) / size:.1f}×)"
    return text


# --- memory -------------------------------------------------------------------------------

def reset_peak(pid: int) -> bool:
    """Reset a process's peak RSS (VmHWM) to its current RSS (Linux ``clear_refs``)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss(pid: int) -> int | None:
    """Current resident set size of a process, bytes."""
    return _status(pid, "VmRSS")


def peak_rss(pid: int) -> int | None:
    """Peak resident set size since the last :func:`reset_peak`, bytes."""
    return _status(pid, "VmHWM")


# --- the harness --------------------------------------------------------------------------

class Bench:
    """What a benchmark module's ``run(bench)`` records into."""

    def __init__(self, quick: bool, deadline: float) -> None:
        self.quick = quick
        self.deadline = deadline  # time.monotonic() past which the run is stopped
        self.rows: list[Row] = []
        self.targets: list[Target] = []
        self.notes: list[str] = []
        self._cleanups: list[Callable[[], Any]] = []
        self.load_before = _load()

    def wants(self, section: str) -> bool:
        """Whether ``--rows`` selects this section of a module (every section without it)."""
        only = getattr(self, "only_rows", None)
        return not only or any(word in section for word in only)

    def trials(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def row(self, row_id: str) -> Row | None:
        return next((r for r in self.rows if r.row_id == row_id), None)

    def cleanup(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` when the current module ends (last registered runs first)."""
        self._cleanups.append(fn)

    def note(self, text: str) -> None:
        """A line printed under the table (e.g. what a peer's figure includes)."""
        self.notes.append(text)

    def skip(self, group: str, row_id: str, label: str, reason: str) -> Row:
        row = Row(group, row_id, label, skipped=reason)
        self.rows.append(row)
        log.warning("skipped %s: %s", row_id, reason)
        return row

    def time(self, group: str, row_id: str, label: str, fn: Callable[[], Any], *,
             trials: int, warmup: int | None = None, setup: Callable[[], Any] | None = None,
             teardown: Callable[[], Any] | None = None, note: str = "") -> Row:
        """Time ``fn()`` ``trials`` times after ``warmup`` untimed calls; one row of seconds."""
        warmup = max(1, trials // 10) if warmup is None else warmup
        row = Row(group, row_id, label, note=note)
        try:
            for i in range(warmup + trials):
                self._check_deadline()
                if setup is not None:
                    setup()
                started = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - started
                if teardown is not None:
                    teardown()
                if i >= warmup:
                    row.seconds.append(elapsed)
        except Exception as err:
            return self._failed(row, err)
        self.rows.append(row)
        log.info("%-28s %s %s", row_id, *row.cells()[::3])
        return row

    def transfer(self, group: str, row_id: str, label: str, fn: Callable[[], Any], *,
                 nbytes: int, remote_pid: int | None, trials: int, warmup: int = 1,
                 setup: Callable[[], Any] | None = None,
                 teardown: Callable[[], Any] | None = None, note: str = "") -> Row:
        """Time a transfer of ``nbytes``; also the peak RSS growth of both processes per trial."""
        return self.transfers([dict(group=group, row_id=row_id, label=label, fn=fn,
                                    nbytes=nbytes, remote_pid=remote_pid, setup=setup,
                                    teardown=teardown, note=note)],
                              trials=trials, warmup=warmup)[0]

    def transfers(self, cases: list[dict], *, trials: int, warmup: int = 1) -> list[Row]:
        """Several transfers (each a dict of :meth:`transfer`'s arguments), trial by trial in
        turn, so that other load on the machine falls on each alike; one row each."""
        rows = [Row(c["group"], c["row_id"], c["label"], nbytes=c["nbytes"], note=c.get("note", ""))
                for c in cases]
        live = list(zip(rows, cases, [{"local": 0, "remote": 0} for _ in cases]))
        for i in range(warmup + trials):
            for entry in list(live):
                row, case, peaks = entry
                try:
                    self._check_deadline()
                    elapsed = self._transfer_trial(case, peaks)
                except Exception as err:
                    self._failed(row, err)
                    live.remove(entry)
                    continue
                if i >= warmup:
                    row.seconds.append(elapsed)
        for row, case, peaks in live:
            row.rss_local = peaks["local"]
            row.rss_remote = peaks["remote"] if case.get("remote_pid") is not None else None
            self.rows.append(row)
            log.info("%-28s %s MB/s  rss %s", row.row_id, row.cells()[0], row.memory())
        return rows

    def _transfer_trial(self, case: dict, peaks: dict) -> float:
        pids = {"local": os.getpid(), "remote": case.get("remote_pid")}
        if case.get("setup") is not None:
            case["setup"]()
        gc.collect()
        before = {}
        for side, pid in pids.items():
            if pid is not None and reset_peak(pid):
                before[side] = rss(pid)
        started = time.perf_counter()
        case["fn"]()
        elapsed = time.perf_counter() - started
        for side, base in before.items():
            peak = peak_rss(pids[side])
            if peak is not None and base is not None:
                peaks[side] = max(peaks[side], peak - base)
        if case.get("teardown") is not None:
            case["teardown"]()
        gc.collect()
        return elapsed

    def interleave(self, group: str, cases: list[tuple[str, str, Callable[[], Any]]], *,
                   trials: int, block: int = 10, warmup: int = 10) -> list[Row]:
        """Time several cases in alternating blocks of ``block`` trials, one row each.

        Other load on the machine then falls on every case alike, so their ratios hold even
        when the absolute figures wander.
        """
        rows = [Row(group, row_id, label) for row_id, label, _ in cases]
        live = list(zip(rows, (fn for _, _, fn in cases)))
        for row, fn in live:
            try:
                for _ in range(warmup):
                    fn()
            except Exception as err:
                self._failed(row, err)
        live = [(row, fn) for row, fn in live if not row.skipped]
        done = 0
        while done < trials:
            for row, fn in list(live):
                self._check_deadline()
                try:
                    for _ in range(min(block, trials - done)):
                        started = time.perf_counter()
                        fn()
                        row.seconds.append(time.perf_counter() - started)
                except Exception as err:
                    self._failed(row, err)
                    live.remove((row, fn))
            done += block
        for row, _ in live:
            self.rows.append(row)
            log.info("%-28s %s %s", row.row_id, *row.cells()[::3])
        return rows

    def _failed(self, row: Row, err: BaseException) -> Row:
        if isinstance(err, DeadlineExceeded):
            raise err
        row.skipped = f"failed: {type(err).__name__}: {err}"[:160]
        row.seconds = []
        self.rows.append(row)
        log.warning("%s failed", row.row_id, exc_info=True)
        return row

    def _check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise DeadlineExceeded("the benchmark run passed its time limit")

    def target(self, text: str, row_id: str, other_id: str, *, at_most: float | None = None,
               at_least: float | None = None) -> None:
        """A target: (figure of ``row_id``) / (figure of ``other_id``) within the bound.

        For transfer rows the figure is MB/s, for the others seconds.
        """
        self.targets.append(Target(text, row_id, other_id, at_most, at_least))

    def limit(self, text: str, row_id: str, *, at_most_seconds: float) -> None:
        """An absolute target: the median of ``row_id`` at most this many seconds."""
        self.targets.append(Target(text, row_id, None, at_most=at_most_seconds))

    def judge(self) -> None:
        """Compute every target's measured ratio from the rows of this run."""
        for tgt in self.targets:
            row = self.row(tgt.row_id)
            other = self.row(tgt.other_id) if tgt.other_id else None
            if row is None or not row.seconds or (tgt.other_id and (other is None or not other.seconds)):
                tgt.why = "not measured"
                continue
            if other is None:
                tgt.ratio = row.median
            elif row.nbytes:
                tgt.ratio = (row.nbytes / row.median) / (other.nbytes / other.median)
            else:
                tgt.ratio = row.median / other.median
            tgt.met = ((tgt.at_most is None or tgt.ratio <= tgt.at_most)
                       and (tgt.at_least is None or tgt.ratio >= tgt.at_least))

    def end_module(self) -> None:
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception:  # one failed cleanup must not keep the others from running
                log.warning("cleanup failed", exc_info=True)
        gc.collect()


class DeadlineExceeded(Exception):
    """The whole run passed its time limit; the remaining benchmarks are not run."""


# --- discovery ----------------------------------------------------------------------------

def discover(only: Iterable[str] = ()) -> list[ModuleType]:
    """The ``benchmarks/bench_*.py`` modules with a ``run`` function, in ``ORDER``."""
    only = list(only)
    modules = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem
        if only and not any(word in name for word in only):
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        if callable(getattr(module, "run", None)):
            modules.append(module)
        else:
            log.warning("benchmarks/%s.py has no run(bench) function; skipped", name)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def run_all(modules: list[ModuleType], bench: Bench) -> list[str]:
    """Run each module's ``run(bench)``; returns the errors of modules that failed."""
    errors = []
    for module in modules:
        title = getattr(module, "TITLE", module.__name__)
        log.info("== %s", title)
        started = time.monotonic()
        try:
            module.run(bench)
        except DeadlineExceeded as err:
            errors.append(f"{module.__name__}: {err}")
            bench.end_module()
            break
        except Exception as err:
            errors.append(f"{module.__name__}: {type(err).__name__}: {err}")
            log.error("%s failed:\n%s", module.__name__, traceback.format_exc())
        finally:
            bench.end_module()
        log.info("== %s took %.0f s", title, time.monotonic() - started)
    return errors


# --- the report ---------------------------------------------------------------------------

def versions() -> dict[str, str]:
    """Versions of Python, this project and the peers, as installed here."""
    import importlib.metadata as md

    found = {"python": platform.python_version()}
    for dist in ("remote_magics", "pyzmq", "ipykernel", "jupyter_client", "ipython",
                 "cloudpickle", "numpy", "ipyparallel", "execnet", "dask", "distributed"):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            found[dist] = "not installed"
    try:
        import zmq

        found["libzmq"] = zmq.zmq_version()
    except ImportError:
        pass
    return found


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:
        memory = "?"
    return f"{os.cpu_count()} CPUs ({cpu}), {memory} RAM, {platform.system()} {platform.release()}"


def table(bench: Bench) -> list[str]:
    """The table of rows, as Markdown lines (readable as plain text too)."""
    lines = ["| case | tool | median | min | max | unit | peak RSS growth local / remote | ratio |",
             "|---|---|---:|---:|---:|---|---|---|"]
    group = None
    first: dict[str, Row] = {}
    for row in bench.rows:
        first.setdefault(row.group, row)
    order = list(first)
    for row in sorted(bench.rows, key=lambda r: order.index(r.group)):
        ratio = ""
        base = first[row.group]
        if row is not base and row.seconds and base.seconds:
            if row.nbytes and base.nbytes:
                value = (row.nbytes / row.median) / (base.nbytes / base.median)
            else:
                value = row.median / base.median
            ratio = f"{value:.2f}× {base.row_id}"
        cells = row.cells()
        label = row.label + (f" ({row.note})" if row.note else "")
        if row.skipped:
            label += f" — {row.skipped}"
        shown = row.group if row.group != group else ""
        group = row.group
        lines.append(f"| {shown} | {label} | {' | '.join(cells)} | {row.memory()} | {ratio} |")
    return lines


def targets_table(bench: Bench) -> list[str]:
    lines = ["| target | measured | bound | result |", "|---|---:|---|---|"]
    for tgt in bench.targets:
        if tgt.other_id is None:
            measured = f"{tgt.ratio * 1e3:.2f} ms" if tgt.ratio is not None else "—"
            bound = f"≤ {tgt.at_most * 1e3:g} ms"
        else:
            measured = f"{tgt.ratio:.2f}×" if tgt.ratio is not None else "—"
            bound = " and ".join(
                b for b in (f"≥ {tgt.at_least:g}×" if tgt.at_least is not None else "",
                            f"≤ {tgt.at_most:g}×" if tgt.at_most is not None else "") if b)
        result = tgt.why or ("met" if tgt.met else "MISSED")
        lines.append(f"| {tgt.text} | {measured} | {bound} | {result} |")
    return lines


def report(bench: Bench, *, seconds: float, errors: list[str]) -> str:
    """The whole report: header, table, targets, notes."""
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    vers = ", ".join(f"{k} {v}" for k, v in versions().items())
    mode = "quick (`make bench-quick`)" if bench.quick else "full (`make bench`)"
    out = [
        "# remote_magics benchmarks",
        "",
        f"- date: {now}; mode: {mode}; took {seconds:.0f} s",
        f"- machine: {machine()}; load average before / after: {bench.load_before} / "
        f"{_load()} (other work on the machine shows here, and in the spread of min–max)",
        f"- versions: {vers}",
        "- each figure: median of the trials after warm-up, with min and max; ratios are of "
        "figures taken in this same run (for MB/s rows, a ratio above 1 is faster).",
        "- peak RSS growth: the most a process's resident memory rose above its level before a "
        "trial (Linux VmHWM after clear_refs), in MB and in multiples of the payload.",
        "",
        *table(bench),
        "",
        "## Targets",
        "",
        *targets_table(bench),
    ]
    if bench.notes or errors:
        out += ["", "## Notes", ""]
        out += [f"- {n}" for n in bench.notes]
        out += [f"- error: {e}" for e in errors]
    return "\n".join(out) + "\n"
