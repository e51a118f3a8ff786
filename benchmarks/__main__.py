"""``python -m benchmarks [--quick] [--only WORD ...] [--rows WORD ...] [--output PATH]``: run,
print, write RESULTS.md."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

from . import harness

log = logging.getLogger("benchmarks")


class _HardStop(BaseException):
    """Raised by the alarm when a benchmark hangs past the run's time limit."""


def _on_alarm(signum, frame):
    raise _HardStop("the benchmark run hung past its time limit")


def _end_children() -> None:
    """End what this run started and left behind: our own descendants, by pid."""
    try:
        import psutil
    except ImportError:
        return
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            log.info("leftover: %d %s", child.pid, " ".join(child.cmdline())[:120])
        except psutil.Error:
            pass
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    if children:
        log.warning("ended %d leftover child process(es): %s", len(children),
                    ", ".join(f"{c.pid}" for c in children))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer trials, no 1 GB cases")
    parser.add_argument("--only", nargs="*", default=(),
                        help="run only the bench_*.py modules whose name contains a word")
    parser.add_argument("--rows", nargs="*", default=(),
                        help="within a module, run only the sections whose name contains a "
                             "word (bench_bulk: core, digest, ipp, dask, execnet, ssh)")
    parser.add_argument("--output", default=None,
                        help="where to write the report ('-' for nowhere; default "
                             "benchmarks/RESULTS.md, or benchmarks/.cache/RESULTS-quick.md "
                             "with --quick, so a quick run never replaces the full results)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds for the whole run (default 900, quick 150)")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    limit = args.time_limit or (150.0 if args.quick else 900.0)
    started = time.monotonic()
    bench = harness.Bench(quick=args.quick, deadline=started + limit)
    bench.only_rows = list(args.rows)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(limit + 45))
    errors: list[str] = []
    try:
        errors = harness.run_all(harness.discover(args.only), bench)
    except _HardStop as err:
        errors.append(str(err))
    finally:
        signal.alarm(0)
        _end_children()
    bench.judge()
    text = harness.report(bench, seconds=time.monotonic() - started, errors=errors)
    print(text)
    if args.output is None:
        args.output = str(harness.HERE / (".cache/RESULTS-quick.md" if args.quick else "RESULTS.md"))
    if args.output != "-":
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        log.info("wrote %s", os.path.relpath(args.output))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
