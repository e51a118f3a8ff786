"""Attaching to kernels we did not start, zero install, and the target list."""
from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

import remote_magics
from remote_magics.wire import protocol
from remote_magics.errors import RemoteMagicsError


class _Specs(KernelSpecManager):
    """A plain ipykernel (``python -m ipykernel_launcher``), optionally with an env."""

    env: dict = {}

    def get_kernel_spec(self, kernel_name):
        return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                "{connection_file}"], display_name="plain", language="python",
                          env=self.env)


def _plain_kernel(env: dict | None = None, starts: int = 3) -> KernelManager:
    """A plain ipykernel, up and answering. jupyter_client picks its ports, then the kernel
    binds them: another process may take one between the two ("Address already in use", seen
    when two test files run side by side), and the kernel dies as it starts. It is started
    again then, with new ports."""
    for start in range(starts):
        specs = _Specs()
        specs.env = env or {}
        km = KernelManager(kernel_name="plain", kernel_spec_manager=specs)
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            return km
        except RuntimeError:  # it died before it answered (or never answered: raised below)
            if km.is_alive() or start == starts - 1:
                km.shutdown_kernel(now=True)
                km.cleanup_resources()
                raise
        finally:
            kc.stop_channels()
        km.cleanup_resources()
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def plain_kernel():
    km = _plain_kernel()
    yield km
    km.shutdown_kernel(now=True)
    km.cleanup_resources()


@pytest.fixture(scope="module")
def blocked_kernel(tmp_path_factory):
    """A plain ipykernel in which `import remote_magics` fails, as on a machine without it."""
    site = tmp_path_factory.mktemp("blocked")
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name == "remote_magics" or name.startswith("remote_magics."):
                    raise ImportError("remote_magics is not installed here")
        sys.meta_path.insert(0, _Block())
    """))
    km = _plain_kernel({"PYTHONPATH": str(site)})
    yield km
    km.shutdown_kernel(now=True)
    km.cleanup_resources()


def test_connection_file_kernel_runs_cells(shell, plain_kernel):
    shell.run_line_magic("remote_connect", f"{plain_kernel.connection_file} --name lab")
    try:
        shell.user_ns["base"] = 10
        res = shell.run_cell("%%remote --target lab\nimport remote_magics\n"
                             "shipped = remote_magics.__path__ == []\nvalue = base * 2")
        assert res.error_in_exec is None
        assert shell.user_ns["value"] == 20
        assert shell.user_ns["shipped"] is False  # it could import the installed package
    finally:
        remote_magics.disconnect("lab")
    assert plain_kernel.is_alive()  # we did not start it, so we did not stop it


def test_zero_install_ships_the_engine_source(shell, blocked_kernel):
    shell.run_line_magic("remote_connect", f"{blocked_kernel.connection_file} --name bare")
    try:
        res = shell.run_cell("%%remote --target bare --download=small --bytes 1000\n"
                             "import remote_magics\nshipped = remote_magics.__path__ == []\n"
                             "big = list(range(10_000))")
        assert res.error_in_exec is None
        assert shell.user_ns["shipped"] is True
        big = shell.user_ns.pop("big")
        assert isinstance(big, remote_magics.RemoteObject)
        assert big.fetch() == list(range(10_000))
        blob = shell.user_ns["blob"] = bytearray(os.urandom(3 * protocol.STREAM_CHUNK))
        res = shell.run_cell("%%remote --target bare --download=all --quiet\nback = blob")
        assert res.error_in_exec is None  # streamed both ways through a stock ipykernel
        assert shell.user_ns.pop("back") == blob
    finally:
        shell.user_ns.pop("blob", None)
        remote_magics.disconnect("bare")


def test_remote_targets_lists_and_disconnect_shuts_down_our_kernel(shell, capsys):
    target = remote_magics.connect(name="extra")
    km = target.kernel_manager
    capsys.readouterr()
    shell.run_line_magic("remote_targets", "")
    listing = capsys.readouterr().out
    assert "extra" in listing and "yes" in listing and "objects" in listing
    shell.run_line_magic("remote_disconnect", "extra")
    assert "extra" not in remote_magics.registry.targets
    assert not km.is_alive()


def test_connecting_to_a_missing_connection_file_says_what_to_give(shell):
    with pytest.raises(RemoteMagicsError, match="connection file"):
        remote_magics.connect("/nonexistent/kernel-123.json", name="missing")


def test_malformed_connection_file_is_reported(tmp_path):
    bad = tmp_path / "kernel-bad.json"
    bad.write_text(json.dumps({"ip": "127.0.0.1"}))
    with pytest.raises(RemoteMagicsError, match="cannot read the connection file"):
        remote_magics.connect(str(bad), name="bad")
    assert "bad" not in remote_magics.registry.targets


@pytest.mark.parametrize("how", ["exit", "killed"])
def test_kernels_we_started_end_when_the_notebook_process_ends(how):
    import signal
    import subprocess

    import psutil

    script = ("import sys, remote_magics\nt = remote_magics.connect()\n"
              "print(t.details['pid'], flush=True)\nsys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        engine = psutil.Process(int(proc.stdout.readline()))
        assert engine.is_running()
        if how == "exit":
            proc.stdin.write("\n")
            proc.stdin.flush()
        else:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        engine.wait(timeout=15)  # raises TimeoutExpired if the engine outlives its notebook
        assert not engine.is_running()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
