"""Null cell latency: the cost of a cell that does nothing, for us and each peer.

Ours: an empty ``%%remote`` cell run through a real InteractiveShell (capture, ship, run, relay,
return: everything the user waits for) and the API's ``target.run("pass", {})``. Peers: a raw
pyzmq DEALER/ROUTER round trip (the floor), a plain ``execute_request`` to an ipykernel waited
to idle, ipyparallel ``apply_sync(lambda: None)`` and ``%%px pass``, execnet ``remote_exec`` +
receive, Dask ``client.submit(...).result()``. ``--rows core`` (ours, raw pyzmq, plain kernel),
``ipp``, ``execnet``, ``dask`` pick sections.
"""
from __future__ import annotations

from . import peers
from .harness import Bench

TITLE = "Null cell latency"
ORDER = 10
GROUP = "null cell latency"


def _noop() -> None:
    return None


def run(bench: Bench) -> None:
    """Ours, raw pyzmq and a plain kernel interleaved (the targets' ratios); then each peer."""
    trials = bench.trials(300, 60)
    if bench.wants("core"):
        core(bench, trials)
    if bench.wants("ipp"):
        with_ipyparallel(bench, trials)
    if bench.wants("execnet"):
        with_execnet(bench, trials)
    if bench.wants("dask"):
        with_dask(bench, trials)
    bench.target("null %%remote ≤ 0.4 × plain execute_request", "null.remote", "null.execute",
                 at_most=0.4)
    bench.target("null %%remote below ipyparallel apply_sync (interleaved)", "null.remote2",
                 "null.ipp", at_most=1.0)


def core(bench: Bench, trials: int) -> None:
    """Ours, raw pyzmq and a plain kernel, interleaved: the ratio of the null-cell target."""
    with peers.raw_zmq() as zmq_peer, peers.ours() as ours, peers.plain_kernel() as kernel:
        bench.interleave(GROUP, [
            ("null.zmq", "raw pyzmq DEALER/ROUTER round trip (floor)", zmq_peer.roundtrip),
            ("null.remote", "remote_magics: %%remote pass (InteractiveShell)",
             lambda: ours.cell("%%remote\npass")),
            ("null.api", 'remote_magics: target.run("pass", {})',
             lambda: ours.target.run("pass", {})),
            ("null.execute", "plain ipykernel execute_request, waited to idle", kernel.execute),
        ], trials=trials)


def with_ipyparallel(bench: Bench, trials: int) -> None:
    """Ours against ipyparallel, interleaved."""
    try:
        with peers.ipyparallel() as ipp, peers.ours() as ours:
            ip = peers.shell()
            ipp.view.activate()
            bench.interleave(GROUP, [
                ("null.remote2", "remote_magics: %%remote pass, interleaved with ipyparallel",
                 lambda: ours.cell("%%remote\npass")),
                ("null.ipp", "ipyparallel apply_sync(lambda: None)",
                 lambda: ipp.view.apply_sync(lambda: None)),
                ("null.px", "ipyparallel %%px --block pass (InteractiveShell)",
                 lambda: ip.run_cell("%%px --block\npass", store_history=False)),
            ], trials=trials)
    except Exception as err:
        bench.skip(GROUP, "null.ipp", "ipyparallel", f"{type(err).__name__}: {err}")


def with_execnet(bench: Bench, trials: int) -> None:
    """execnet's round trip."""
    try:
        with peers.execnet() as ex:
            bench.time(GROUP, "null.execnet", "execnet remote_exec + receive", ex.null,
                       trials=trials)
    except Exception as err:
        bench.skip(GROUP, "null.execnet", "execnet", f"{type(err).__name__}: {err}")


def with_dask(bench: Bench, trials: int) -> None:
    """Dask's submit and result."""
    try:
        with peers.dask() as dk:
            bench.time(GROUP, "null.dask", "Dask client.submit(f).result()",
                       lambda: dk.client.submit(_noop, pure=False).result(timeout=peers.TIMEOUT),
                       trials=trials)
    except Exception as err:
        bench.skip(GROUP, "null.dask", "Dask", f"{type(err).__name__}: {err}")
