"""Fan-out: the pyfora seed ``sum(isPrime(x) for x in range(N))`` locally and over 2 kernels.

Rows (N = 3,000,000; 300,000 with --quick), all measured in the same run on the same machine:
- one local process (the baseline of every speedup);
- a 2-member pool with ``%%remote --targets pool --scatter xs --gather total``, ``xs`` a range
  (contiguous halves: the upper half holds most of the work, so this row shows the imbalance);
- the same cell scattering blocks of 10,000 reordered (even blocks, then odd blocks) so that
  each contiguous half holds about the same work;
- ``pool.map(isPrime, range(N), chunksize=N // 64)`` (load balanced);
- ipyparallel's load-balanced ``map`` and Dask's ``client.map`` over the same 64 chunks,
  each with 2 engines / 2 worker processes.
The functions are defined in the shell's ``__main__`` namespace, as in a notebook, so every
tool ships them by value.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from typing import Iterator

from . import peers
from .harness import Bench

TITLE = "Fan-out over 2 kernels: isPrime sum"
ORDER = 60
GROUP = "fanout"

SOURCE = '''
def isPrime(p):
    x = 2
    while x*x <= p:
        if p % x == 0:
            return 0
        x = x + 1
    return 1

def count_primes(xs):
    return sum(isPrime(x) for x in xs)
'''


def run(bench: Bench) -> None:
    """Local, pool scatter/gather (contiguous and interleaved), pool.map, ipyparallel, Dask."""
    import remote_magics

    n = 300_000 if bench.quick else 3_000_000
    chunk = max(1, n // 64)
    expected = 25_999 if n == 300_000 else (216_818 if n == 3_000_000 else None)
    ip = peers.shell()
    ip.run_cell(SOURCE, store_history=False)
    ns = ip.user_ns
    is_prime, count_primes = ns["isPrime"], ns["count_primes"]
    chunks = [range(a, min(a + chunk, n)) for a in range(0, n, chunk)]

    def check(total: int) -> None:
        if expected is not None and total != expected:
            raise AssertionError(f"counted {total} primes below {n}, expected {expected}")

    trials = 1
    label = f"{n:,}"
    bench.time(GROUP, "fanout.local", f"local sum(isPrime(x) for x in range({label}))",
               lambda: check(count_primes(range(n))), trials=trials, warmup=0)

    pool = remote_magics.connect("local", n=2, name="bench-fanout", timeout=peers.TIMEOUT)
    try:
        def scatter_cell(xs) -> None:
            ns["xs"] = xs
            result = ip.run_cell("%%remote --targets bench-fanout --scatter xs --gather total\n"
                                 "total = [sum(isPrime(x) for r in xs for x in r)]",
                                 store_history=False)
            if not result.success:
                raise RuntimeError(f"cell failed: {result.error_in_exec!r}")
            check(sum(ns["total"]))

        bench.time(GROUP, "fanout.scatter", "2-member pool, --scatter range halves --gather",
                   lambda: scatter_cell([range(0, n // 2), range(n // 2, n)]),
                   trials=trials, warmup=1)
        blocks = [range(a, min(a + 10_000, n)) for a in range(0, n, 10_000)]
        even = blocks[0::2] + blocks[1::2]  # each half: every other block of the whole range
        bench.time(GROUP, "fanout.scatter_even", "2-member pool, --scatter interleaved blocks",
                   lambda: scatter_cell(even),
                   trials=trials, warmup=0)
        bench.time(GROUP, "fanout.map", f"pool.map(isPrime, range(N), chunksize={chunk:,})",
                   lambda: check(sum(pool.map(is_prime, range(n), chunk, progress=False))),
                   trials=trials, warmup=0)
    finally:
        pool.close()

    try:
        with _ipyparallel(2) as view:
            view.map_sync(is_prime, range(100), chunksize=10)  # ship the function once
            bench.time(GROUP, "fanout.ipp", f"ipyparallel load-balanced map, chunksize={chunk:,}",
                       lambda: check(sum(view.map_sync(is_prime, range(n), chunksize=chunk))),
                       trials=trials, warmup=0)
    except ImportError as err:
        bench.skip(GROUP, "fanout.ipp", "ipyparallel map", f"not installed: {err}")

    try:
        with _dask(2) as client:
            def dask_map() -> None:
                futures = client.map(count_primes, chunks, pure=False)
                check(sum(client.gather(futures)))

            bench.time(GROUP, "fanout.dask", f"Dask client.map over {len(chunks)} chunks",
                       dask_map, trials=trials, warmup=0)
    except ImportError as err:
        bench.skip(GROUP, "fanout.dask", "Dask client.map", f"not installed: {err}")

    for row_id, text in (("fanout.scatter", "pool scatter/gather (range halves)"),
                         ("fanout.scatter_even", "pool scatter/gather (interleaved blocks)"),
                         ("fanout.map", "pool.map"), ("fanout.ipp", "ipyparallel map"),
                         ("fanout.dask", "Dask client.map")):
        bench.target(f"{text}: speedup over local ≥ 1.8× on 2 cores", "fanout.local", row_id,
                     at_least=1.8)
    bench.target("pool.map vs ipyparallel map (≥ 1 means ours is as fast or faster)",
                 "fanout.ipp", "fanout.map", at_least=0.9)
    bench.target("pool.map vs Dask client.map (≥ 1 means ours is as fast or faster)",
                 "fanout.dask", "fanout.map", at_least=0.9)
    bench.note(f"fan-out: {n:,} items, {os.cpu_count()} CPUs; the local row is this process, the "
               "others use 2 kernels / engines / workers. Speedup = local ÷ row.")


@contextlib.contextmanager
def _ipyparallel(engines: int) -> Iterator:
    import shutil

    import ipyparallel as ipp

    profile_dir = tempfile.mkdtemp(prefix="bench-ipp-")
    cluster = ipp.Cluster(n=engines, controller_ip="127.0.0.1", profile_dir=profile_dir,
                          cluster_id=f"bench-{uuid.uuid4().hex[:8]}", log_level=40,
                          shutdown_atexit=True, engine_timeout=peers.TIMEOUT)
    try:
        rc = cluster.start_and_connect_sync(activate=False)
        rc.wait_for_engines(engines, timeout=peers.TIMEOUT)
        try:
            yield rc.load_balanced_view()
        finally:
            rc.close()
    finally:
        cluster.stop_cluster_sync()
        shutil.rmtree(profile_dir, ignore_errors=True)


@contextlib.contextmanager
def _dask(workers: int) -> Iterator:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster, timeout=peers.TIMEOUT) as client:
        yield client


if __name__ == "__main__":
    import sys

    from .__main__ import main

    sys.exit(main(["--only", "fanout", *sys.argv[1:]]))
