"""Bulk transfer: a float64 array of 100 MB and of 1 GB, sent to the remote and brought back.

Ours: ``%%remote --download=all`` with the array as the cell's input (upload: ``n = x.size``) or
output (download: ``y = big``, where ``big`` is a proxy to an array made remotely), through the
InteractiveShell, and ``proxy.fetch()`` for the API. Peers: raw pyzmq multipart with
``copy=False`` (the floor), ipyparallel push/pull, Dask scatter/gather (``direct=True``, no
hashing, no compression), execnet bytes over a channel (the payload is already ``bytes``: the
conversion is not timed). Payloads are random, so no peer gains from compression. Raw pyzmq and
ours run trial by trial in turn (their ratio is a target; other load on the machine then falls on
both); each other peer runs alone. The 1 GB cases run one at a time and every copy is freed
before the next.
"""
from __future__ import annotations

import gc

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
    _floor_and_ours(bench, arrays)
    _digest(bench, arrays)
    _guard(bench, "ipp", "ipyparallel", lambda: _ipyparallel(bench, arrays), arrays)
    _guard(bench, "dask", "Dask", lambda: _dask(bench, arrays), arrays)
    _guard(bench, "execnet", "execnet", lambda: _execnet(bench, arrays), arrays)
    for n in sizes:
        for direction in ("up", "down"):
            ours = _row(direction, n, "remote")
            what = f"{direction}load {_name(n)}"
            bench.target(f"{what}: %%remote ≥ 0.8 × raw pyzmq", ours, _row(direction, n, "zmq"),
                         at_least=0.8)
            bench.target(f"{what}: %%remote ≥ 3 × ipyparallel", ours, _row(direction, n, "ipp"),
                         at_least=3)
            bench.target(f"{what}: %%remote ≥ 3 × execnet", ours, _row(direction, n, "execnet"),
                         at_least=3)


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


def _floor_and_ours(bench: Bench, arrays: dict) -> None:
    """Raw pyzmq and ours trial by trial in turn: their ratio is the target that matters most."""
    with peers.raw_zmq() as peer, peers.ours() as ours:
        ns = ours.shell.user_ns
        for n, array in arrays.items():
            trials = _trials(bench, n)
            ns["x"] = array
            bench.transfers([
                dict(group=_group("up", n), row_id=_row("up", n, "zmq"),
                     label="raw pyzmq multipart copy=False (floor)",
                     fn=lambda: peer.upload(array), nbytes=n, remote_pid=peer.pid),
                dict(group=_group("up", n), row_id=_row("up", n, "remote"),
                     label="remote_magics %%remote --download=all, n = x.size",
                     fn=lambda: ours.cell("%%remote --download=all\nn = x.size"),
                     nbytes=n, remote_pid=ours.pid),
            ], trials=trials)
            del ns["x"]
            peer.call(b"alloc", str(n).encode())
            ours.cell(f"%%remote --download=none\nimport numpy as np\n"
                      f"big = np.random.default_rng(1).random({n // 8})")
            bench.transfers([
                dict(group=_group("down", n), row_id=_row("down", n, "zmq"),
                     label="raw pyzmq multipart copy=False (floor)", fn=peer.download,
                     nbytes=n, remote_pid=peer.pid),
                dict(group=_group("down", n), row_id=_row("down", n, "remote"),
                     label="remote_magics %%remote --download=all, y = big",
                     fn=lambda: ours.cell("%%remote --download=all\ny = big"),
                     teardown=lambda: ns.pop("y", None), nbytes=n, remote_pid=ours.pid),
                dict(group=_group("down", n), row_id=_row("down", n, "fetch"),
                     label="remote_magics API: proxy.fetch()", fn=ns["big"].fetch,
                     nbytes=n, remote_pid=ours.pid),
            ], trials=trials)
            peer.call(b"free")
            ns.pop("big").release()
            ours.target.info()  # the release is in once the engine has answered


def _digest(bench: Bench, arrays: dict) -> None:
    """What the frames' keyed digest costs one side: each transfer of ours pays it twice."""
    from remote_magics.wire import protocol

    key = b"k" * 32
    for n, array in arrays.items():
        bench.transfer(_group("up", n), _row("digest", n, "remote"),
                       "remote_magics frames_digest alone, one side (bound of ours)",
                       lambda: protocol.frames_digest(key, [b"head", array]),
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


def _dask(bench: Bench, arrays: dict) -> None:
    from distributed import wait

    with peers.dask() as dk:
        client = dk.client
        held = []

        def scatter(array) -> None:
            held.append(client.scatter(array, direct=True, hash=False))

        def forget() -> None:
            held.clear()

        for n, array in arrays.items():
            bench.transfer(_group("up", n), _row("up", n, "dask"), "Dask scatter",
                           lambda: scatter(array), teardown=forget,
                           nbytes=n, remote_pid=dk.pid, trials=_trials(bench, n))
            big = client.submit(_random, n // 8, pure=False)
            wait(big, timeout=peers.TIMEOUT)
            bench.transfer(_group("down", n), _row("down", n, "dask"), "Dask gather",
                           lambda: client.gather(big, direct=True),
                           nbytes=n, remote_pid=dk.pid, trials=_trials(bench, n))
            del big


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
