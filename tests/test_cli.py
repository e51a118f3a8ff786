"""The ``remote-magics`` command line, run as a user runs it: the console script and ``-m``.

Kernelspecs go to temporary prefixes (or a temporary JUPYTER_DATA_DIR for ``--user``), never the
real user's Jupyter directories.
"""
from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from jupyter_client.manager import KernelManager

import remote_magics
from tests.conftest import first_engine_finds_a_port_taken
from remote_magics.kernel import engine_spec, remote_spec, spec_manager

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(sys.executable).parent / "remote-magics")
COMMANDS = ["install-kernel", "uninstall-kernel", "list", "serve", "demo"]


def cli(*args: str, env: dict | None = None, timeout: float = 120,
        script: bool = False) -> subprocess.CompletedProcess:
    command = [SCRIPT] if script else [sys.executable, "-m", "remote_magics"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_of_each_command(command):
    done = cli(*([command] if command else []), "--help", script=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: remote-magics{' ' + command if command else ''}")
    if command is None:
        assert all(name in done.stdout for name in COMMANDS)


@pytest.mark.parametrize("args, complaint", [
    ([], "required: COMMAND"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["install-kernel", "--download", "most"], "invalid choice: 'most'"),
    (["install-kernel", "--bytes", "lots"], "--bytes takes a size"),
    (["install-kernel", "--timeout", "-3"], "positive number of seconds"),
    (["install-kernel", "--name", "two words"], "a kernel name uses letters"),
    (["install-kernel", "--user", "--prefix", "/tmp/x"], "not allowed with argument"),
    (["uninstall-kernel"], "required: name"),
    (["list", "extra"], "unrecognized arguments: extra"),
])
def test_bad_arguments_are_a_usage_error_exit_2(args, complaint):
    done = cli(*args)
    assert done.returncode == 2
    assert "usage: remote-magics" in done.stderr and complaint in done.stderr
    assert "Traceback" not in done.stderr


def test_install_list_uninstall_round_trip_in_a_prefix(tmp_path):
    done = cli("install-kernel", "--name", "BigBox", "--target", "local", "--download", "all",
               "--bytes", "2MiB", "--timeout", "30", "--prefix", str(tmp_path), script=True)
    assert done.returncode == 0, done.stderr
    assert "Installed kernelspec 'remote-bigbox' (Python 3 (remote: BigBox))" in done.stdout
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "remote-bigbox"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec == remote_spec("BigBox", "local", download="all", bytes=2 * 1024**2, timeout=30)
    assert (spec_dir / "logo-64x64.png").exists()
    assert spec_manager(str(tmp_path)).get_kernel_spec("remote-bigbox").display_name == \
        "Python 3 (remote: BigBox)"

    listed = cli("list", "--prefix", str(tmp_path))
    assert listed.returncode == 0
    assert re.search(r"remote-bigbox\s+Python 3 \(remote: BigBox\)\s+local\s+" + re.escape(
        str(spec_dir)), listed.stdout)

    gone = cli("uninstall-kernel", "BigBox", "--prefix", str(tmp_path))
    assert gone.returncode == 0, gone.stderr
    assert not spec_dir.exists()
    assert "No remote_magics kernelspecs installed" in cli("list", "--prefix", str(tmp_path)).stdout

    again = cli("uninstall-kernel", "BigBox", "--prefix", str(tmp_path))
    assert again.returncode == 1
    assert "no remote_magics kernelspec named 'BigBox'" in again.stderr


def test_connection_file_target_is_stored_as_absolute_path(tmp_path):
    (tmp_path / "kernel-7.json").write_text("{}")
    done = subprocess.run([sys.executable, "-m", "remote_magics", "install-kernel", "--name", "cf",
                           "--target", "kernel-7.json", "--prefix", "prefix"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    spec = json.loads((tmp_path / "prefix/share/jupyter/kernels/remote-cf/kernel.json").read_text())
    assert f"--RemoteKernel.target={tmp_path / 'kernel-7.json'}" in spec["argv"]


def test_user_install_goes_to_jupyter_data_dir(tmp_path):
    env = {"JUPYTER_DATA_DIR": str(tmp_path / "data")}
    done = cli("install-kernel", "--name", "mine", env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "kernels" / "remote-mine" / "kernel.json").exists()
    assert "remote-mine" in cli("list", env=env).stdout
    assert cli("uninstall-kernel", "remote-mine", env=env).returncode == 0
    assert not (tmp_path / "data" / "kernels" / "remote-mine").exists()


def test_templates_match_what_install_kernel_writes():
    remote = json.loads((ROOT / "kernelspec" / "remote" / "kernel.json").read_text())
    engine = json.loads((ROOT / "kernelspec" / "engine" / "kernel.json").read_text())
    assert remote == remote_spec("local", python="python3")
    assert engine == engine_spec(python="python3")


def test_engine_kernelspec_starts_an_engine_a_notebook_can_connect_to(tmp_path):
    done = cli("install-kernel", "--engine", "--prefix", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Installed kernelspec 'remote-magics-engine'" in done.stdout
    assert "(engine)" in cli("list", "--prefix", str(tmp_path)).stdout

    km = KernelManager(kernel_name="remote-magics-engine",
                       kernel_spec_manager=spec_manager(str(tmp_path)))
    km.start_kernel(cwd=str(tmp_path))
    try:
        target = remote_magics.connect(km.connection_file, name="from-engine-spec", timeout=60)
        try:
            namespace = {"base": 20}
            target.run("total = base + 22\nimport os\npid = os.getpid()", namespace,
                       on_output=None)
            assert namespace["total"] == 42
            assert namespace["pid"] == km.provisioner.process.pid
        finally:
            remote_magics.registry.remove("from-engine-spec")
    finally:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


def _read_until(process: subprocess.Popen, pattern: str, timeout: float) -> tuple[re.Match, str]:
    """Read ``process``'s stdout until it matches ``pattern``; the match and all read so far."""
    seen = b""
    deadline = time.monotonic() + timeout
    fd = process.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while selector.select(timeout=max(deadline - time.monotonic(), 0)):
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
            match = re.search(pattern, seen.decode())
            if match:
                return match, seen.decode()
    raise AssertionError(f"no {pattern!r} in the output of {process.args}:\n{seen.decode()}")


def test_serve_prints_how_to_connect_and_stops_on_ctrl_c(tmp_path):
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    # started with SIGINT ignored, as a shell script's `&` job is (and pytest run so): Python
    # keeps that, and before, Ctrl-C did not stop it
    process = subprocess.Popen(["/bin/sh", "-c", f"trap '' INT; exec {SCRIPT} serve"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        match, said = _read_until(process, r"connection file (\S+)\n", 60)
        assert re.search(r"%remote_connect \S+", said)
        path = match.group(1)
        engine = psutil.Process(process.pid).children()[0]
        target = remote_magics.connect(path, name="served", timeout=60)
        try:
            namespace: dict = {}
            target.run("import os\npid = os.getpid()", namespace, on_output=None)
            assert namespace["pid"] == engine.pid
        finally:
            remote_magics.registry.remove("served")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        engine.wait(timeout=30)
        assert not engine.is_running()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()


def test_serve_starts_the_engine_again_when_a_port_is_taken_as_it_starts(tmp_path):
    """serve picks free ports, then its engine binds them: another program may take one in
    between (CI: the engine ended, and serve with it, exit status 1 and nothing printed). It
    picks again and starts another engine. Here the first engine's own start takes its iopub
    port first (a ``sitecustomize`` on the path serve passes on)."""
    hook, marker = first_engine_finds_a_port_taken(tmp_path)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(p for p in (str(hook), path) if p)}
    process = subprocess.Popen([SCRIPT, "serve"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=env)
    try:
        match, _ = _read_until(process, r"connection file (\S+)\n", 60)
        assert marker.exists()  # the first engine did find its port taken
        target = remote_magics.connect(match.group(1), name="served_again", timeout=60)
        try:
            assert target.run("x = 6 * 7", {}, on_output=None).values["x"] == 42
        finally:
            remote_magics.registry.remove("served_again")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()


def test_serve_refuses_a_public_address_without_curve():
    done = cli("serve", "--ip", "10.255.255.1")  # refused before anything binds
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr and "--curve" in done.stderr


def test_demo_runs_the_quick_start(tmp_path):
    done = cli("demo", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "9594" in done.stdout
