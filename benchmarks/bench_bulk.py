"""Bulk transfer: a float64 array of 100 MB and of 1 GB, sent to the remote and brought back.

Ours: ``%%remote --download=all`` with the array as the cell's input (upload: ``n = x.size``) or
output (download: ``y = big[:]``, where ``big`` is a proxy to an array made remotely: a view of
it, so that a new object comes back; ``y = big`` would be the notebook's own proxy), through the
InteractiveShell, and ``proxy.fetch()`` for the API; each by both data paths of a local engine:
the network path (big frames over the engine's data port, a side TCP connection authenticated
with the key and digested as the bytes move, what a target on another host gets; signed
ZeroMQ chunks are its fallback) and the same-host path (the receiver copies the frame out of
the sender's memory with process_vm_readv; a sealed shared-memory segment where that is not
allowed). Both receive into memory an earlier frame of that size used (``wire.recycle``), as
a re-run cell does from its second run on; the rows "into new memory each time" turn that off on
both sides, as for the first transfer of a size (and Dask, which receives into new memory); they
run after the others, not trial by trial with them.
Peers: raw pyzmq multipart with ``copy=False`` (the floor of the network path), Dask
scatter/gather (``direct=True``, no hashing, no compression), ipyparallel push/pull, execnet
bytes over a channel (the payload is already ``bytes``: the conversion is not timed). Payloads
are random, so no peer gains from compression. Raw pyzmq, both paths of ours and Dask run trial
by trial in turn (their ratios are the targets; other load on the machine then falls on each
alike); the other peers run alone. The 1 GB cases run one at a time and every copy is freed
before the next.

Across hosts (section ``ssh``): an engine behind the test sshd on 127.0.0.1 (the tunnels a
remote host gets, the data port's forward included; big frames forced onto the network path,
since the host is in fact this one)
against ``scp`` of the same bytes through the same sshd.

Sections, for ``python -m benchmarks --only bulk --rows WORD``: core, digest, ipp, dask
(with core), execnet, ssh.
"""
from __future__ import annotations

import gc
import os
import subprocess
import tempfile

import numpy as np

from . import peers
from .harness import MB, Bench

TITLE = "Bulk transfer"
ORDER = 20


def _sizes(bench: Bench) -> list[int]:
    return [100 * MB] if bench.quick else [100 * MB, 1000 * MB]


def _trials(bench: Bench, nbytes: int) -> int:
    return bench.trials(3, 3) if nbytes >= 1000 * MB else bench.trials(7, 3)


def _name(nbytes: int) -> str:
    return f"{nbytes // MB} MB" if nbytes < 1000 * MB else f"{nbytes // (1000 * MB)} GB"


def _group(direction: str, nbytes: int) -> str:
    return f"bulk {direction} {_name(nbytes)}"


def _row(direction: str, nbytes: int, tool: str) -> str:
    return f"{direction}.{nbytes // MB}.{tool}"


def _make(nbytes: int) -> np.ndarray:
    return np.random.default_rng(0).random(nbytes // 8)


def run(bench: Bench) -> None:
    """Upload and download at each size, tool by tool (raw pyzmq first: it is the floor)."""
    sizes = _sizes(bench)
    arrays = {n: _make(n) for n in sizes}
    bench.cleanup(arrays.clear)
    if bench.wants("core") or bench.wants("dask"):
        _guard(bench, "dask", "Dask", lambda: _core(bench, arrays), arrays)
    if bench.wants("digest"):
        _digest(bench, arrays)
    if bench.wants("ipp"):
        _guard(bench, "ipp", "ipyparallel", lambda: _ipyparallel(bench, arrays), arrays)
    if bench.wants("execnet"):
        _guard(bench, "execnet", "execnet", lambda: _execnet(bench, arrays), arrays)
    if bench.wants("ssh"):
        _guard(bench, "ssh", "ssh", lambda: _ssh(bench, arrays), arrays)
    bench.note("bulk: the same-host rows copy the payload out of the sender's memory into the "
               "receiver's (process_vm_readv): the receiver's peak RSS grows by one copy, the "
               "sender's by none. Where such copies are not allowed (a sealed shared-memory "
               "segment instead), the peak RSS leaves the segment out until its pages are "
               "touched: one copy on the host, shared by both sides.")
    for n in sizes:
        for direction in ("up", "down"):
            what = f"{direction}load {_name(n)}"
            dask = "Dask " + ("scatter" if direction == "up" else "gather")
            paths = [("remote", "%%remote (network path)")]
            if direction == "down":
                paths.append(("fetch", "proxy.fetch() (network path)"))
            for tool, label in paths:
                ours = _row(direction, n, tool)
                bench.target(f"{what}: {label} ≥ 1 × {dask}", ours, _row(direction, n, "dask"),
                             at_least=1)
                bench.target(f"{what}: {label} ≥ 1 × raw pyzmq", ours, _row(direction, n, "zmq"),
                             at_least=1)
            bench.target(f"{what}: %%remote (network path, new memory) ≥ 1 × {dask}",
                         _row(direction, n, "netcold"), _row(direction, n, "dask"), at_least=1)
            bench.target(f"{what}: %%remote (same host, new memory) ≥ 2 × {dask}",
                         _row(direction, n, "shmcold"), _row(direction, n, "dask"), at_least=2)
            for tool, label in [("shm", "%%remote (same host)")] + (
                    [("shmfetch", "proxy.fetch() (same host)")] if direction == "down" else []):
                bench.target(f"{what}: {label} ≥ 2 × {dask}", _row(direction, n, tool),
                             _row(direction, n, "dask"), at_least=2)
            ours = _row(direction, n, "remote")
            bench.target(f"{what}: %%remote ≥ 3 × ipyparallel", ours, _row(direction, n, "ipp"),
                         at_least=3)
            bench.target(f"{what}: %%remote ≥ 3 × execnet", ours, _row(direction, n, "execnet"),
                         at_least=3)
            bench.target(f"{what} across hosts: %%remote over ssh ≥ 1 × scp",
                         _row(direction, n, "ssh"), _row(direction, n, "scp"), at_least=1)


def _changed(array, cell: str) -> str:
    """``cell``, after one write to ``array``: the engine keeps an unchanged upload (no bytes
    would travel), so each upload trial changes the array, as a new value would be."""
    middle = array.size // 2  # a page of its own: its write is seen whatever value it writes
    array.flat[middle] = array.flat[middle]
    return cell


def _recycling(on: bool, *targets) -> None:
    """Turn received-memory recycling (``wire.recycle``) on or off here and in ``targets``'
    engines: off, every big frame is received into new memory, as the first transfer of its
    size is."""
    from remote_magics.wire import recycle

    value = "" if on else "0"
    os.environ[recycle.ENV] = value
    for ours in targets:
        ours.target.run(f"import os\nos.environ[{recycle.ENV!r}] = {value!r}\n"
                        "from remote_magics.wire import recycle\nrecycle.release_all()", {},
                        download="none")
    if not on:
        recycle.release_all()


def _cold(cases: list[dict], targets: dict) -> list[dict]:
    """For each of ``cases`` run by one of ours named in ``targets`` (tool → its Ours), the same
    transfer into new memory each time. Run after the others, not trial by trial with them:
    turned off, recycling drops the memory the warm rows' next trials would have used."""
    cold = []
    for case in cases:
        tool = case["row_id"].rsplit(".", 1)[1]
        if tool not in targets:
            continue
        ours, setup, teardown = targets[tool], case.get("setup"), case.get("teardown")
        path = "network path" if tool == "remote" else "same host"
        cold.append({**case, "row_id": case["row_id"].replace(f".{tool}", ".netcold" if
                                                             tool == "remote" else ".shmcold"),
                     "label": f"the same, {path}, into new memory each time (recycling off)",
                     "setup": lambda ours=ours, setup=setup: (_recycling(False, ours),
                                                             setup and setup()),
                     "teardown": lambda ours=ours, teardown=teardown: (teardown and teardown(),
                                                                       _recycling(True, ours))})
    return cold


def _guard(bench: Bench, tool: str, label: str, fn, arrays) -> None:
    try:
        fn()
    except Exception as err:
        for n in arrays:
            for direction in ("up", "down"):
                if bench.row(_row(direction, n, tool)) is None:
                    bench.skip(_group(direction, n), _row(direction, n, tool), label,
                               f"{type(err).__name__}: {err}")
    gc.collect()


def _core(bench: Bench, arrays: dict) -> None:
    """Raw pyzmq, both paths of ours and Dask, trial by trial in turn: their ratios are the
    targets that matter most."""
    with peers.raw_zmq() as peer, peers.ours("bench") as same, \
            peers.ours("bench-net") as net, peers.dask() as dk:
        net.network()
        assert same.target.connection.shared_send, "a local engine that cannot share memory"
        ns = same.shell.user_ns  # one shell drives both targets
        client = dk.client
        held = []

        def forget() -> None:
            held.clear()

        for n, array in arrays.items():
            trials = _trials(bench, n)
            ns["x"] = array
            up = _group("up", n)
            cases = [
                dict(group=up, row_id=_row("up", n, "zmq"),
                     label="raw pyzmq multipart copy=False (floor)",
                     fn=lambda: peer.upload(array), nbytes=n, remote_pid=peer.pid),
                dict(group=up, row_id=_row("up", n, "remote"),
                     label="remote_magics %%remote --download=all, n = x.size: network path "
                           "(data port)",
                     fn=lambda: net.cell(_changed(array, "%%remote --target bench-net "
                                                         "--download=all\nn = x.size")),
                     nbytes=n, remote_pid=net.pid),
                dict(group=up, row_id=_row("up", n, "shm"),
                     label="remote_magics %%remote, n = x.size: same host (shared memory)",
                     fn=lambda: same.cell(_changed(array, "%%remote --target bench "
                                                          "--download=all\nn = x.size")),
                     nbytes=n, remote_pid=same.pid),
                dict(group=up, row_id=_row("up", n, "dask"), label="Dask scatter",
                     fn=lambda: held.append(client.scatter(array, direct=True, hash=False)),
                     teardown=forget, nbytes=n, remote_pid=dk.pid),
            ]
            bench.transfers(cases, trials=trials)
            bench.transfers(_cold(cases, {"remote": net, "shm": same}), trials=trials)
            del ns["x"]
            peer.call(b"alloc", str(n).encode())
            bigs = {}  # each target's proxy to its own array, put in place as "big" for its cell
            for ours, name in ((net, "bench-net"), (same, "bench")):
                ours.cell(f"%%remote --target {name} --download=none\nimport numpy as np\n"
                          f"big = np.random.default_rng(1).random({n // 8})\nx = None")
                bigs[name] = ns.pop("big")
            big = client.submit(_random, n // 8, pure=False)
            from distributed import wait

            wait(big, timeout=peers.TIMEOUT)
            down = _group("down", n)
            cases = [
                dict(group=down, row_id=_row("down", n, "zmq"),
                     label="raw pyzmq multipart copy=False (floor)", fn=peer.download,
                     nbytes=n, remote_pid=peer.pid),
                dict(group=down, row_id=_row("down", n, "remote"),
                     label="remote_magics %%remote --download=all, y = big[:]: network path "
                           "(data port)",
                     setup=lambda: ns.__setitem__("big", bigs["bench-net"]),
                     fn=lambda: net.cell("%%remote --target bench-net --download=all\n"
                                         "y = big[:]"),
                     teardown=lambda: (ns.pop("y", None), ns.pop("big", None)),
                     nbytes=n, remote_pid=net.pid),
                dict(group=down, row_id=_row("down", n, "fetch"),
                     label="remote_magics API: proxy.fetch(): network path (data port)",
                     fn=bigs["bench-net"].fetch, nbytes=n, remote_pid=net.pid),
                dict(group=down, row_id=_row("down", n, "shm"),
                     label="remote_magics %%remote, y = big[:]: same host (shared memory)",
                     setup=lambda: ns.__setitem__("big", bigs["bench"]),
                     fn=lambda: same.cell("%%remote --target bench --download=all\ny = big[:]"),
                     teardown=lambda: (ns.pop("y", None), ns.pop("big", None)),
                     nbytes=n, remote_pid=same.pid),
                dict(group=down, row_id=_row("down", n, "shmfetch"),
                     label="remote_magics API: proxy.fetch(): same host (shared memory)",
                     fn=bigs["bench"].fetch, nbytes=n, remote_pid=same.pid),
                dict(group=down, row_id=_row("down", n, "dask"), label="Dask gather",
                     fn=lambda: client.gather(big, direct=True),
                     nbytes=n, remote_pid=dk.pid),
            ]
            bench.transfers(cases, trials=trials)
            bench.transfers(_cold(cases, {"remote": net, "shm": same}), trials=trials)
            del big
            peer.call(b"free")
            for ours, name in ((net, "bench-net"), (same, "bench")):
                bigs.pop(name).release()
                ours.cell(f"%%remote --target {name} --download=none\nbig = None")
                ours.target.info()  # the release is in once the engine has answered


def _digest(bench: Bench, arrays: dict) -> None:
    """What the frames' keyed digest costs one side: each transfer of ours pays it twice."""
    from remote_magics.wire import protocol

    key = b"k" * 32
    for n, array in arrays.items():
        for scheme in protocol.digest_schemes():
            tool = "remote" if scheme == protocol.HMAC_SHA256 else scheme
            bench.transfer(_group("up", n), _row("digest", n, tool),
                           f"remote_magics frames_digest alone, {scheme}, one side (a bound of "
                           "the network path)",
                           lambda: protocol.frames_digest(key, [b"head", array], scheme),
                           nbytes=n, remote_pid=None, trials=_trials(bench, n))


def _ipyparallel(bench: Bench, arrays: dict) -> None:
    with peers.ipyparallel() as ipp:
        view = ipp.view

        def forget() -> None:
            view.execute("x = None", block=True)
            ipp.rc.purge_local_results("all")  # the client keeps every result it received

        for n, array in arrays.items():
            bench.transfer(_group("up", n), _row("up", n, "ipp"), "ipyparallel push",
                           lambda: view.push({"x": array}, block=True), teardown=forget,
                           nbytes=n, remote_pid=ipp.pid, trials=_trials(bench, n))
            view.execute(f"import numpy as np; big = np.random.default_rng(1).random({n // 8})",
                         block=True)
            bench.transfer(_group("down", n), _row("down", n, "ipp"), "ipyparallel pull",
                           lambda: view.pull("big", block=True), teardown=forget,
                           nbytes=n, remote_pid=ipp.pid, trials=_trials(bench, n))
            view.execute("big = None", block=True)
            forget()


def _random(count: int):
    import numpy as np

    return np.random.default_rng(1).random(count)


def _execnet(bench: Bench, arrays: dict) -> None:
    with peers.execnet() as ex:
        for n, array in arrays.items():
            payload = array.tobytes()
            bench.transfer(_group("up", n), _row("up", n, "execnet"), "execnet bytes over a channel",
                           lambda: ex.upload(payload),
                           nbytes=n, remote_pid=ex.pid, trials=_trials(bench, n))
            del payload
            ex.call("alloc", n)
            bench.transfer(_group("down", n), _row("down", n, "execnet"),
                           "execnet bytes over a channel", ex.download,
                           nbytes=n, remote_pid=ex.pid, trials=_trials(bench, n))
            ex.call("alloc", 0)


def _ssh(bench: Bench, arrays: dict) -> None:
    """An engine through the test sshd's tunnels (network path) against scp of the same bytes."""
    with peers.sshd() as server, peers.ours_ssh(server) as ours, \
            tempfile.TemporaryDirectory(prefix="bench-scp-") as scratch:
        ours.network()
        ns = ours.shell.user_ns
        name = ours.target.name
        local = os.path.join(scratch, "payload")
        there = os.path.join(scratch, "there")

        def scp(source: str, dest: str) -> None:
            subprocess.run(["scp", "-q", "-F", str(server.config), source, dest], check=True,
                           timeout=peers.TIMEOUT, stdin=subprocess.DEVNULL)

        for n, array in arrays.items():
            trials = _trials(bench, n)
            array.tofile(local)  # scp's source: a file (in the page cache: not re-read from disk)
            ns["x"] = array
            bench.transfers([
                dict(group=_group("up", n), row_id=_row("up", n, "ssh"),
                     label="across hosts: %%remote n = x.size through ssh tunnels (data port)",
                     fn=lambda: ours.cell(_changed(array, f"%%remote --target {name} "
                                                          "--download=all\nn = x.size")),
                     nbytes=n, remote_pid=ours.pid),
                dict(group=_group("up", n), row_id=_row("up", n, "scp"),
                     label="across hosts: scp of the same bytes through the same sshd",
                     fn=lambda: scp(local, f"rmtest:{there}"),
                     teardown=lambda: os.path.exists(there) and os.unlink(there),
                     nbytes=n, remote_pid=None),
            ], trials=trials)
            del ns["x"]
            ours.cell(f"%%remote --target {name} --download=none\nimport numpy as np\n"
                      f"big = np.random.default_rng(1).random({n // 8})\nx = None")
            bench.transfers([
                dict(group=_group("down", n), row_id=_row("down", n, "ssh"),
                     label="across hosts: %%remote y = big[:] through ssh tunnels (data port)",
                     fn=lambda: ours.cell(f"%%remote --target {name} --download=all\ny = big[:]"),
                     teardown=lambda: ns.pop("y", None), nbytes=n, remote_pid=ours.pid),
                dict(group=_group("down", n), row_id=_row("down", n, "scp"),
                     label="across hosts: scp of the same bytes through the same sshd",
                     fn=lambda: scp(f"rmtest:{local}", there),
                     teardown=lambda: os.path.exists(there) and os.unlink(there),
                     nbytes=n, remote_pid=None),
            ], trials=trials)
            ns.pop("big").release()
            os.unlink(local)
