"""Pools whose kernels come from existing machinery: a kernelspec, and a Dask cluster."""
from __future__ import annotations

import json
import sys

import psutil
import pytest
import zmq
from IPython.utils.capture import capture_output

import remote_magics
from remote_magics.errors import RemoteMagicsError
from remote_magics.pool import Pool

KERNELSPEC = "rm-test-plain-python"


def _member_pids(shell, name: str) -> list[int]:
    res = shell.run_cell(f"%%remote --targets {name}\nimport os\nmember_pid = os.getpid()",
                         store_history=False)
    assert res.error_in_exec is None
    return shell.user_ns["member_pid"]


def _keep_current(action):
    before = remote_magics.registry.current
    try:
        return action()
    finally:
        remote_magics.registry.current = before


@pytest.fixture
def kernelspec_dir(tmp_path, monkeypatch):
    """A kernelspec for a plain ipykernel (no remote_magics engine), found through JUPYTER_PATH."""
    spec = tmp_path / "kernels" / KERNELSPEC
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "plain python for remote_magics tests", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return spec


def test_kernelspec_pool_starts_n_kernels_of_that_spec(shell, kernelspec_dir):
    with capture_output() as out:
        res = _keep_current(lambda: shell.run_cell(
            f"kpool = %remote_connect kernelspec:{KERNELSPEC} -n 2 --name kpool",
            store_history=False))
    assert res.error_in_exec is None, out.stderr
    kpool = shell.user_ns["kpool"]
    try:
        assert isinstance(kpool, Pool) and len(kpool) == 2
        assert all(m.spec == f"kernelspec:{KERNELSPEC}" for m in kpool)
        pids = _member_pids(shell, "kpool")
        assert len(set(pids)) == 2
        # the kernels are the kernelspec's plain ipykernel, with the engine installed into it
        res = shell.run_cell("%%remote --targets kpool\nkind = type(get_ipython().kernel).__name__",
                             store_history=False)
        assert res.error_in_exec is None
        assert shell.user_ns["kind"] == ["IPythonKernel", "IPythonKernel"]
        procs = [psutil.Process(p) for p in pids]
    finally:
        kpool.close()
    _, alive = psutil.wait_procs(procs, timeout=15)
    assert not alive


def test_unknown_kernelspec_lists_the_installed_ones(shell, kernelspec_dir):
    with pytest.raises(RemoteMagicsError, match=f"no kernelspec named 'nope'.*{KERNELSPEC}"):
        remote_magics.connect("kernelspec:nope", n=2, name="nopool")
    assert "nopool" not in remote_magics.registry.groups


@pytest.fixture(scope="module")
def cluster():
    """A real Dask LocalCluster: 2 worker processes on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=50) as made:
        yield made


def test_dask_pool_places_one_curve_engine_per_worker(shell, cluster):
    from distributed import Client

    address = cluster.scheduler_address.removeprefix("tcp://")
    with capture_output() as out:
        res = _keep_current(lambda: shell.run_cell(
            f"dpool = %remote_connect dask://{address} --name dpool", store_history=False))
    assert res.error_in_exec is None, out.stderr
    dpool = shell.user_ns["dpool"]
    try:
        assert len(dpool) == 2
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            worker_pids = set(client.run(lambda: __import__("os").getpid()).values())
        pids = _member_pids(shell, "dpool")
        assert {psutil.Process(p).ppid() for p in pids} == worker_pids  # one per worker

        for member in dpool:
            info = member.connection.info
            assert info["ip"] == "127.0.0.1" and info["curve_publickey"]
        _plaintext_gets_no_answer(dpool[0].connection.info)

        shell.user_ns["xs"] = list(range(10))
        res = shell.run_cell("%%remote --targets dpool --scatter xs --gather doubled\n"
                             "doubled = [2 * x for x in xs]", store_history=False)
        assert res.error_in_exec is None
        assert shell.user_ns["doubled"] == [2 * x for x in range(10)]
        assert dpool.map(abs, range(-5, 5), progress=False) == [abs(x) for x in range(-5, 5)]
        procs = [psutil.Process(p) for p in pids]
    finally:
        dpool.close()
    _, alive = psutil.wait_procs(procs, timeout=15)
    assert not alive  # shutting down the pool stopped the engines on the workers
    assert "dpool" not in remote_magics.registry.groups


def _plaintext_gets_no_answer(info: dict) -> None:
    """A client without the Curve keys cannot talk to the kernel."""
    from jupyter_client.session import Session

    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        # once the Curve handshake has failed, the socket has no peer and a send waits for one:
        # that wait ends too (the flaky 300 s hang of this test)
        sock.sndtimeo = 2000
        sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        session = Session(key=info["key"] if isinstance(info["key"], bytes) else
                          info["key"].encode())
        try:
            session.send(sock, "kernel_info_request", {})
        except zmq.Again:  # never even sent: no answer either
            return
        assert sock.poll(2000) == 0
    finally:
        ctx.destroy(linger=0)


def test_dask_pool_cannot_ask_for_more_workers_than_exist(shell, cluster):
    address = cluster.scheduler_address.removeprefix("tcp://")
    with pytest.raises(RemoteMagicsError, match="has 2 workers"):
        remote_magics.connect(f"dask://{address}", n=3, name="toomany")
    assert "toomany" not in remote_magics.registry.groups
