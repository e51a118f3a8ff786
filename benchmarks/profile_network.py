"""``python -m benchmarks.profile_network [--mb N] [--trials K] [--profile up|down|fetch]``:
where the network path's time goes (issue 15).

One local engine with big frames forced onto the network path (signed ``remote_chunk``
messages over ZeroMQ, as to a target on another host): ``%%remote`` upload, ``%%remote``
download and ``proxy.fetch()`` of one numpy array, each trial's MB/s with the median and the
spread (this 2-core VM is shared; one trial says little). ``--profile`` runs one more transfer
under cProfile in this process (the client side) and prints its top functions by own time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time
from typing import Callable

from . import peers

_TARGET = "profile-net"


def _rates(nbytes: int, fn: Callable[[], None], trials: int) -> list[float]:
    rates = []
    for _ in range(trials):
        start = time.perf_counter()
        fn()
        rates.append(nbytes / (time.perf_counter() - start) / 1e6)
    return rates


def _line(what: str, rates: list[float]) -> str:
    each = " ".join(f"{rate:.0f}" for rate in rates)
    return (f"{what:6} median {statistics.median(rates):6.0f} MB/s  "
            f"(min {min(rates):.0f}, max {max(rates):.0f}; trials: {each})")


def main(argv: list[str] | None = None) -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--mb", type=int, default=100, help="array size in MB (default 100)")
    parser.add_argument("--trials", type=int, default=5, help="trials per direction")
    parser.add_argument("--profile", choices=("up", "down", "fetch"),
                        help="one more transfer under cProfile (client side)")
    args = parser.parse_args(argv)
    nbytes = args.mb * 1_000_000
    with peers.ours(_TARGET) as net:
        net.network()
        ns = net.shell.user_ns
        array = np.random.default_rng(0).random(nbytes // 8)

        def up() -> None:
            middle = array.size // 2  # a changed array: the engine keeps an unchanged one
            array.flat[middle] = array.flat[middle] + 1
            ns["x"] = array
            net.cell(f"%%remote --target {_TARGET} --download=all\nn = x.size")
            ns.pop("x", None)

        net.cell(f"%%remote --target {_TARGET} --download=none\nimport numpy as np\n"
                 f"big = np.random.default_rng(1).random({nbytes // 8})")
        big = ns.pop("big")

        def down() -> None:
            ns["big"] = big
            net.cell(f"%%remote --target {_TARGET} --download=all\ny = big[:]")
            ns.pop("y", None)
            ns.pop("big", None)

        runs = {"up": up, "down": down, "fetch": big.fetch}
        for what, fn in runs.items():
            print(_line(what, _rates(nbytes, fn, args.trials)), flush=True)
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(runs[args.profile])
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(15)
            print(out.getvalue())


if __name__ == "__main__":
    main()
