"""ssh:// targets against a real OpenSSH sshd on 127.0.0.1 (see tests/fixtures_ssh.py)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import psutil
import pytest
from IPython.utils.capture import capture_output

import remote_magics
from remote_magics import RemoteKernelDied, RemoteTimeout
from remote_magics.engine import host
from remote_magics.targets import ssh
from remote_magics.wire import protocol
from remote_magics.errors import (
    AuthenticationRefused,
    ConnectionLost,
    HostUnreachable,
    NoSuchPython,
    RemoteKernelMissing,
    RemotePortInUse,
    SshError,
)
from tests.conftest import first_engine_finds_a_port_taken
from tests.fixtures_ssh import write_client_config


def test_ssh_address_parses_user_host_and_port():
    address = ssh.SshAddress.parse("ssh://alice@gpu-box:2222")
    assert (address.user, address.host, address.port) == ("alice", "gpu-box", 2222)
    assert address.destination == "alice@gpu-box" and str(address) == "ssh://alice@gpu-box:2222"
    assert ssh.SshAddress.parse("ssh://alias").destination == "alias"
    with pytest.raises(SshError, match=r"ssh://\[user@\]host"):
        ssh.SshAddress.parse("ssh://host/path")


def test_ssh_target_runs_a_cell_and_streams_its_output(shell, ssh_target):
    shell.user_ns["base"] = 41
    with capture_output() as out:
        res = shell.run_cell("%%remote --target ssh\nimport os\nprint('hello from', os.getpid())\n"
                             "answer = base + 1", store_history=False)
    assert res.error_in_exec is None
    assert shell.user_ns["answer"] == 42
    assert f"hello from {ssh_target.details['pid']}" in out.stdout
    assert ssh_target.details["pid"] != os.getpid()


def test_ssh_kernel_binds_only_the_hosts_loopback_and_is_reached_through_tunnels(ssh_target):
    ns: dict = {}
    ssh_target.run("import ipykernel\ninfo = ipykernel.get_connection_info(unpack=True)", ns,
                   download="all", on_output=None)
    remote = ns["info"]
    assert remote["ip"] == "127.0.0.1" and remote.get("transport", "tcp") == "tcp"
    local = ssh_target.connection.info
    assert local["ip"] == "127.0.0.1"
    names = (*protocol.PORT_NAMES, protocol.DATA_PORT)  # the engine's data port too
    remote_ports = {remote[name] for name in names}
    assert remote_ports == set(ssh_target.kernel_manager.remote["ready"].values())
    assert not remote_ports & {local[name] for name in names}  # tunnelled, not direct
    listeners = {c.laddr.port: c.laddr.ip for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port in remote_ports}
    assert listeners and set(listeners.values()) == {"127.0.0.1"}


def test_a_big_array_crosses_the_ssh_tunnels_both_ways_as_chunks(ssh_target):
    """As to a host that is really another: shared memory off, every byte through the tunnels."""
    import numpy as np

    from remote_magics.wire import streaming
    from tests.conftest import network_path

    payload = np.random.default_rng(7).random(60_000_000 // 8)
    before = dict(streaming.stats)
    with network_path(ssh_target):
        ns = {"payload": payload}
        ssh_target.run("back = payload[::-1].copy()", ns, download="all", on_output=None)
    assert np.array_equal(ns["back"], payload[::-1])
    for key in ("streamed_sent", "streamed_received"):
        assert streaming.stats[key] - before.get(key, 0) == payload.nbytes


def test_a_big_array_crosses_the_forwarded_data_port_both_ways(ssh_target):
    """Shared memory off: big frames go by the engine's data port, through its own tunnel."""
    import numpy as np

    from remote_magics.wire import streaming
    from tests.conftest import network_path

    conn = ssh_target.connection
    remote_port = ssh_target.kernel_manager.remote["ready"][protocol.DATA_PORT]
    assert conn.data_address == ("127.0.0.1", conn.info[protocol.DATA_PORT])
    assert conn.info[protocol.DATA_PORT] != remote_port  # the tunnel's local end, not the engine's
    payload = np.random.default_rng(9).random(60_000_000 // 8)
    before = dict(streaming.stats)
    with network_path(ssh_target, port=True):
        ns = {"payload": payload}
        ssh_target.run("back = payload[::-1].copy()", ns, download="all", on_output=None)
    assert np.array_equal(ns["back"], payload[::-1])
    for key in ("ported_sent", "ported_received"):
        assert streaming.stats[key] - before.get(key, 0) == payload.nbytes
    assert streaming.stats["streamed_sent"] == before.get("streamed_sent", 0)


def test_an_ssh_target_on_this_very_host_is_detected_and_uses_shared_memory(ssh_target):
    """The test sshd's host is this one, as the probes find: big frames skip the tunnels."""
    import numpy as np

    from remote_magics.wire import streaming

    assert ssh_target.connection.shared_send and ssh_target.connection.shared_receive
    payload = np.random.default_rng(8).random(60_000_000 // 8)
    before = dict(streaming.stats)
    ns = {"payload": payload}
    ssh_target.run("back = payload * 3", ns, download="all", on_output=None)
    assert np.array_equal(ns["back"], payload * 3)
    for key in ("shared_sent", "shared_received"):
        assert streaming.stats[key] - before.get(key, 0) == payload.nbytes


def test_engine_source_is_shipped_to_the_host(ssh_target):
    ns: dict = {}
    ssh_target.run("import remote_magics.engine as e\npath = e.__file__", ns, on_output=None)
    assert "remote_magics-" in ns["path"]  # the shipped copy in a private temporary directory
    assert not ns["path"].startswith(os.path.dirname(os.path.dirname(remote_magics.__file__)))


def test_heartbeat_and_interrupt_work_through_the_tunnel(ssh_target):
    assert ssh_target.alive()
    with pytest.raises(RemoteTimeout):
        ssh_target.run("import time\ntime.sleep(60)", {}, timeout=1.5, on_output=None)
    ns: dict = {}
    ssh_target.run("after = 'still here'", ns, on_output=None)
    assert ns["after"] == "still here"


def test_disconnect_stops_the_remote_kernel_and_the_tunnel(shell, sshd):
    shell.run_line_magic("remote_connect", f"ssh://rmtest --name ssh_stop --python "
                                           f"{sys.executable} --ssh-config {sshd.config}")
    target = remote_magics.registry.get("ssh_stop")
    kernel = psutil.Process(int(target.details["pid"]))
    master = psutil.Process(target.kernel_manager.process.pid)
    tunnel_port = target.connection.info["shell_port"]
    shell.run_line_magic("remote_disconnect", "ssh_stop")
    kernel.wait(timeout=20)
    master.wait(timeout=20)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", tunnel_port), timeout=2).close()


def test_a_remote_kernel_that_dies_is_reported(sshd):
    target = remote_magics.connect("ssh://rmtest", name="ssh_die", python=sys.executable,
                                   ssh_options=sshd.options, timeout=60)
    try:
        with pytest.raises((RemoteKernelDied, ConnectionLost)):
            target.run("import os\nos._exit(3)", {}, on_output=None, timeout=60)
        assert not target.alive()
    finally:
        remote_magics.registry.remove("ssh_die")


def test_restart_gives_a_new_kernel_on_the_same_host(sshd):
    target = remote_magics.connect("ssh://rmtest", name="ssh_restart", python=sys.executable,
                                   ssh_options=sshd.options, timeout=60)
    try:
        old = target.details["pid"]
        target.restart(timeout=60)
        ns: dict = {}
        target.run("import os\npid = os.getpid()", ns, on_output=None)
        assert ns["pid"] != old and ns["pid"] == target.details["pid"]
    finally:
        remote_magics.registry.remove("ssh_restart")


# --- the errors a user meets, each naming its cause -------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_unreachable_host_is_named():
    with pytest.raises(HostUnreachable, match="cannot reach .*Connection refused"):
        remote_magics.connect(f"ssh://root@127.0.0.1:{_closed_port()}", name="ssh_err",
                              python=sys.executable, timeout=20)
    assert "ssh_err" not in remote_magics.registry.targets


def test_refused_authentication_is_named(sshd, tmp_path):
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True, timeout=30)
    (tmp_path / "known_hosts").write_text((sshd.directory / "known_hosts").read_text())
    config = write_client_config(tmp_path, sshd.port, stranger)
    with pytest.raises(AuthenticationRefused, match="refused to authenticate.*Permission denied"):
        remote_magics.connect("ssh://rmtest", name="ssh_err", python=sys.executable,
                              ssh_options=["-F", str(config)], timeout=20)


def test_missing_python_is_named(sshd):
    with pytest.raises(NoSuchPython, match="no Python at '/no/such/python3'.*--python"):
        remote_magics.connect("ssh://rmtest", name="ssh_err", python="/no/such/python3",
                              ssh_options=sshd.options, timeout=20)


def test_python_without_ipykernel_says_what_to_install(sshd, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True,
                   timeout=120)
    python = str(bare / "bin" / "python")
    with pytest.raises(RemoteKernelMissing) as caught:
        remote_magics.connect("ssh://rmtest", name="ssh_err", python=python,
                              ssh_options=sshd.options, timeout=20)
    assert "ipykernel" in caught.value.missing
    assert f"{python} -m pip install ipykernel cloudpickle" in str(caught.value)


def test_remote_port_in_use_is_named(sshd):
    ports = host.pick_ports("127.0.0.1")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["control_port"]))
        squatter.listen()
        with pytest.raises(RemotePortInUse, match=f"in use: {ports['control_port']}"):
            remote_magics.connect(
                "ssh://rmtest", name="ssh_err", python=sys.executable, ssh_options=sshd.options,
                port_range=f"{ports['shell_port']}-{ports['hb_port']}", timeout=20)
    assert "ssh_err" not in remote_magics.registry.targets


def test_port_range_is_honoured_on_the_host(sshd):
    # Here both "hosts" share one port space: the notebook's own tunnel ends may take a port of
    # the range picked as free a moment before. That race is the test's, not the product's (on
    # two machines they never meet): a range found taken is picked again, three times at most.
    for attempt in range(3):
        ports = host.pick_ports("127.0.0.1")
        try:
            target = remote_magics.connect(
                "ssh://rmtest", name="ssh_ports", python=sys.executable,
                ssh_options=sshd.options,
                port_range=f"{ports['shell_port']}-{ports['hb_port']}", timeout=60)
            break
        except RemotePortInUse:
            if attempt == 2:
                raise
    try:
        assert target.kernel_manager.remote["ready"] == ports
    finally:
        remote_magics.registry.remove("ssh_ports")


def test_an_engine_whose_port_is_taken_as_it_starts_is_started_again(sshd, tmp_path):
    """The host chooses the engine's ports free, then the engine binds them: another program may
    take one in between (on one machine also this notebook's own tunnel ends: CI, RemotePortInUse
    in the disconnect test above). Where the ports were ours to choose (no --port-range), the
    connect starts the engine again on others instead of failing. Here the first engine's own
    start takes its iopub port first (a ``sitecustomize`` on the path the host gives it)."""
    hook, marker = first_engine_finds_a_port_taken(tmp_path)
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={hook}${{PYTHONPATH:+:$PYTHONPATH}} "
                      f"exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    target = remote_magics.connect("ssh://rmtest", name="ssh_taken", python=str(python),
                                   ssh_options=sshd.options, timeout=60)
    try:
        assert marker.exists()  # the first engine did find its port taken
        assert target.run("x = 6 * 7", {}, download="all").values["x"] == 42
    finally:
        remote_magics.registry.remove("ssh_taken")


def test_remote_kernel_ends_when_the_notebook_process_is_killed(sshd, tmp_path):
    script = tmp_path / "notebook.py"
    script.write_text(
        "import sys, remote_magics\n"
        f"t = remote_magics.connect('ssh://rmtest', python=sys.executable, "
        f"ssh_options={sshd.options!r}, timeout=60)\n"
        "print(t.details['pid'], flush=True)\n"
        "sys.stdin.read()\n")
    notebook = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    try:
        remote_pid = int(notebook.stdout.readline())
        kernel = psutil.Process(remote_pid)
    finally:
        notebook.kill()
        notebook.wait(10)
    kernel.wait(timeout=30)
