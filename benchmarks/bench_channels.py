"""Channels: 100 numpy arrays of 10 MB streamed between the notebook and a running remote cell.

- remote → notebook: ``%%remote --channel ch`` whose cell sends 100 arrays; the notebook has
  received them all when the cell is over (the run relays them), and each is checked.
- notebook → remote: an ``--async`` cell reads 100 arrays from ``ch`` and sends back one total;
  the clock runs from the first ``send`` to that total.
- remote → notebook on the network path: as the first, to an engine whose big frames may not go
  by shared memory (what a target on another host gets: each message whole on iopub, with its
  keyed digest).
MB/s of the 1,000 MB that travel (100 MB with --quick: 10 arrays).
"""
from __future__ import annotations

from . import peers
from .harness import MB, Bench

TITLE = "Channels: 100 × 10 MB arrays"
ORDER = 40
GROUP = "channels"


def run(bench: Bench) -> None:
    """Both directions, interleaved trial by trial."""
    import numpy as np

    count = 10 if bench.quick else 100
    item = np.ones(10 * MB // 8)
    size = count * item.nbytes
    with peers.ours("bench-channels") as ours:
        ns = ours.shell.user_ns
        ours.cell("%%remote\nimport numpy as np\nitem = np.ones(10 * 1000 * 1000 // 8)")  # a proxy

        def down() -> None:
            ours.cell(f"%%remote --channel ch\nfor _ in range({count}):\n    ch.send(item)")
            got = list(ns["ch"])
            if len(got) != count or got[-1].nbytes != item.nbytes:
                raise AssertionError(f"received {len(got)} arrays")

        def up() -> None:
            ours.cell("%%remote --async -o job --channel up\n"
                      f"total = sum(float(up.receive(60)[0]) for _ in range({count}))")
            channel, job = ns["up"], ns["job"]
            for _ in range(count):
                channel.send(item)
            job.result(120)
            if ns["total"] != count:
                raise AssertionError(f"the cell summed {ns['total']}")

        bench.transfers([
            dict(group=GROUP, row_id="channels.down", label=f"remote cell → notebook, {count} × "
                 "10 MB arrays over a channel", fn=down, nbytes=size, remote_pid=ours.pid),
            dict(group=GROUP, row_id="channels.up", label=f"notebook → --async remote cell, "
                 f"{count} × 10 MB arrays over a channel", fn=up, nbytes=size,
                 remote_pid=ours.pid),
        ], trials=bench.trials(5, 3))
        for name in ("item", "ch", "up", "job", "total"):
            ns.pop(name, None)
    with peers.ours("bench-channels-net") as ours:
        ours.network()
        ns = ours.shell.user_ns
        ours.cell("%%remote\nimport numpy as np\nitem = np.ones(10 * 1000 * 1000 // 8)")

        def down_network() -> None:
            ours.cell(f"%%remote --channel ch\nfor _ in range({count}):\n    ch.send(item)")
            got = list(ns["ch"])
            if len(got) != count or got[-1].nbytes != item.nbytes:
                raise AssertionError(f"received {len(got)} arrays")

        bench.transfers([
            dict(group=GROUP, row_id="channels.down.net", label=f"remote cell → notebook, "
                 f"{count} × 10 MB arrays over a channel: network path", fn=down_network,
                 nbytes=size, remote_pid=ours.pid),
        ], trials=bench.trials(5, 3))
        for name in ("item", "ch"):
            ns.pop(name, None)
    for row_id, text in (("channels.down", "remote → notebook"), ("channels.up",
                                                                  "notebook → remote"),
                         ("channels.down.net", "remote → notebook, network path")):
        bench.limit(f"channel {text}: {count} × 10 MB at ≥ 1 GB/s (≤ {size / 1e9:g} s)", row_id,
                    at_most_seconds=size / (1000 * MB))


if __name__ == "__main__":
    import sys

    from .__main__ import main

    sys.exit(main(["--only", "channels", *sys.argv[1:]]))
