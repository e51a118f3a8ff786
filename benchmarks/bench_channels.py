"""Channels: 100 numpy arrays of 10 MB streamed between the notebook and a running remote cell.

- remote → notebook: ``%%remote --channel ch`` whose cell sends 100 arrays; the notebook has
  received them all when the cell is over (the run relays them), and each is checked.
- notebook → remote: an ``--async`` cell reads 100 arrays from ``ch`` and sends back one total;
  the clock runs from the first ``send`` to that total.
- both again on the network path: to an engine whose big frames may not go by shared memory
  (what a target on another host gets: each message whole, with its keyed digest).
- the floor of the network path: raw pyzmq, 100 messages of 10 MB pipelined each way between
  two processes (``copy=False``, no digest, no pickling, nobody waits for them to be read).
MB/s of the 1,000 MB that travel (100 MB with --quick: 10 arrays).
"""
from __future__ import annotations

from . import peers
from .harness import MB, Bench

TITLE = "Channels: 100 × 10 MB arrays"
ORDER = 40
GROUP = "channels"


def _channel_cases(ours, count: int, size: int, suffix: str, label: str) -> list[dict]:
    """Both directions over a channel to ``ours``'s engine, as transfer cases."""
    item = __import__("numpy").ones(10 * MB // 8)
    ns = ours.shell.user_ns
    on = f"--target {ours.target.name}"  # both engines share the shell: name the one meant
    item_name = "item_" + ours.target.name.replace("-", "_")  # a proxy on that engine
    ours.cell(f"%%remote {on}\nimport numpy as np\n{item_name} = np.ones(10 * 1000 * 1000 // 8)")

    def down() -> None:
        ours.cell(f"%%remote {on} --channel ch\nfor _ in range({count}):\n    ch.send({item_name})")
        got = list(ns["ch"])
        if len(got) != count or got[-1].nbytes != item.nbytes:
            raise AssertionError(f"received {len(got)} arrays")

    def up() -> None:
        ours.cell(f"%%remote {on} --async -o job --channel up\n"
                  f"total = sum(float(up.receive(60)[0]) for _ in range({count}))")
        channel, job = ns["up"], ns["job"]
        for _ in range(count):
            channel.send(item)
        job.result(120)
        if ns["total"] != count:
            raise AssertionError(f"the cell summed {ns['total']}")

    return [
        dict(group=GROUP, row_id=f"channels.down{suffix}", label=f"remote cell → notebook, "
             f"{count} × 10 MB arrays over a channel{label}", fn=down, nbytes=size,
             remote_pid=ours.pid),
        dict(group=GROUP, row_id=f"channels.up{suffix}", label=f"notebook → --async remote "
             f"cell, {count} × 10 MB arrays over a channel{label}", fn=up, nbytes=size,
             remote_pid=ours.pid),
    ]


def _zmq_cases(peer, count: int, size: int) -> list[dict]:
    """Raw pyzmq: ``count`` messages of 10 MB each way, pipelined (the network path's floor)."""
    import numpy as np

    item = np.ones(10 * MB // 8)

    def wait(replies: int) -> None:
        for _ in range(replies):
            if not peer.sock.poll(int(peers.TIMEOUT * 1000)):
                raise TimeoutError("the raw pyzmq peer did not answer")
            peer.sock.recv_multipart(copy=False)

    def up() -> None:
        for _ in range(count):
            peer.sock.send_multipart([b"up", item], copy=False)
        wait(count)

    def down() -> None:
        for _ in range(count):
            peer.sock.send(b"down")
        wait(count)

    peer.call(b"alloc", str(item.nbytes).encode())
    return [
        dict(group=GROUP, row_id="channels.zmq.down", label=f"raw pyzmq, {count} × 10 MB "
             "messages pipelined, peer → here (floor of the network path)", fn=down,
             nbytes=size, remote_pid=peer.pid),
        dict(group=GROUP, row_id="channels.zmq.up", label=f"raw pyzmq, {count} × 10 MB "
             "messages pipelined, here → peer (floor of the network path)", fn=up,
             nbytes=size, remote_pid=peer.pid),
    ]


def run(bench: Bench) -> None:
    """Each direction by each path, interleaved trial by trial with the raw pyzmq floor."""
    count = 10 if bench.quick else 100
    size = count * 10 * MB
    # the network rows each on an engine of their own: a target that ran an --async job has a
    # second connection (the job's), which gets a copy of every iopub message too (the big
    # frames no longer go there: see the note)
    with peers.raw_zmq() as peer, peers.ours("bench-channels") as same, \
            peers.ours("bench-channels-net") as net, \
            peers.ours("bench-channels-net-up") as net_up:
        net.network()
        net_up.network()
        down_net, _ = _channel_cases(net, count, size, ".net", ": network path")
        _, up_net = _channel_cases(net_up, count, size, ".net", ": network path")
        cases = [*_channel_cases(same, count, size, "", ""), down_net, up_net,
                 *_zmq_cases(peer, count, size)]
        bench.transfers(cases, trials=bench.trials(7, 3))
        for name in [f"item_{o.target.name.replace('-', '_')}" for o in (same, net, net_up)
                     ] + ["ch", "up", "job", "total"]:
            same.shell.user_ns.pop(name, None)
    bench.note("channels: the network-path rows use an engine each, and their big frames go by "
               "the data port of the connection relaying the run. Before they did (on iopub), an "
               "engine that had run an --async job sent every big frame twice, once to the job's "
               "idle connection too: a plain cell's channel moved about 0.75 GB/s there, with "
               "twice the payload in the notebook's memory.")
    for row_id, text in (("channels.down", "remote → notebook"), ("channels.up",
                                                                  "notebook → remote"),
                         ("channels.down.net", "remote → notebook, network path"),
                         ("channels.up.net", "notebook → remote, network path")):
        bench.limit(f"channel {text}: {count} × 10 MB at ≥ 1 GB/s (≤ {size / 1e9:g} s)", row_id,
                    at_most_seconds=size / (1000 * MB))


if __name__ == "__main__":
    import sys

    from .__main__ import main

    sys.exit(main(["--only", "channels", *sys.argv[1:]]))
