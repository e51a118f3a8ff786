"""The processes a benchmark talks to: our engine, raw pyzmq, a plain ipykernel, ipyparallel,
execnet and Dask, each started on 127.0.0.1 as a context manager that stops what it started.

Use one at a time (``with peers.dask() as d: ...``) so idle peers do not steal the CPU or memory
of another's measurement. Each object has ``pid``: the remote process whose memory is reported.
"""
from __future__ import annotations

import contextlib
import logging
import os
import selectors
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Iterator

log = logging.getLogger(__name__)

#: Seconds any single wait on a peer may take before the benchmark gives up on it.
TIMEOUT = 120.0


# --- remote_magics ------------------------------------------------------------------------

def shell():
    """This process's InteractiveShell, with remote_magics loaded (created once)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    if "remote" not in ip.magics_manager.magics["cell"]:
        ip.run_line_magic("load_ext", "remote_magics")
    return ip


class Ours:
    """A local remote_magics engine kernel, its Target, and the shell that drives ``%%remote``."""

    def __init__(self, target, ip) -> None:
        self.target = target
        self.shell = ip
        self.pid = int(target.details["pid"])

    def network(self) -> "Ours":
        """Big frames go by the network path both ways (the engine's data port, chunks where
        there is none), as to a target on another host, not by the shared memory this same-host
        target agreed on."""
        self.target.connection.shared_send = self.target.connection.shared_receive = False
        return self

    def cell(self, text: str) -> None:
        """Run a notebook cell through the shell; raise what it raised."""
        result = self.shell.run_cell(text, store_history=False, silent=False)
        if not result.success:
            raise RuntimeError(f"cell failed: {result.error_before_exec or result.error_in_exec!r}")


@contextlib.contextmanager
def ours(name: str = "bench") -> Iterator[Ours]:
    import remote_magics

    ip = shell()
    target = remote_magics.connect(name=name, timeout=TIMEOUT)
    try:
        yield Ours(target, ip)
    finally:
        remote_magics.registry.remove(target.name)


class Sshd:
    """A test OpenSSH sshd on 127.0.0.1 and the client config that names it ``rmtest``."""

    def __init__(self, directory: str, port: int) -> None:
        self.directory = directory
        self.port = port
        self.config = os.path.join(directory, "ssh_config")


@contextlib.contextmanager
def sshd() -> Iterator[Sshd]:
    """An sshd of our own on a free port of 127.0.0.1, with generated keys (as the tests')."""
    import shutil
    import socket

    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    with tempfile.TemporaryDirectory(prefix="bench-sshd-") as directory:
        os.chmod(directory, 0o700)
        for key in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            os.path.join(directory, key)], check=True, timeout=30)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with open(os.path.join(directory, "user_key.pub")) as pub, \
                open(os.path.join(directory, "authorized_keys"), "w") as auth:
            auth.write(pub.read())
        with open(os.path.join(directory, "host_key.pub")) as pub, \
                open(os.path.join(directory, "known_hosts"), "w") as known:
            known.write(f"[127.0.0.1]:{port} {pub.read()}")
        with open(os.path.join(directory, "sshd_config"), "w") as config:
            config.write(f"Port {port}\nListenAddress 127.0.0.1\n"
                         f"HostKey {directory}/host_key\n"
                         f"AuthorizedKeysFile {directory}/authorized_keys\nPidFile none\n"
                         "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
                         "PasswordAuthentication no\nAllowTcpForwarding yes\n"
                         "MaxStartups 50\nSubsystem sftp internal-sftp\n")  # scp uses sftp
        user = os.environ.get("USER") or __import__("getpass").getuser()
        with open(os.path.join(directory, "ssh_config"), "w") as config:
            config.write(f"Host rmtest\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n"
                         f"  IdentityFile {directory}/user_key\n  IdentitiesOnly yes\n"
                         f"  UserKnownHostsFile {directory}/known_hosts\n"
                         "  StrictHostKeyChecking yes\n  LogLevel ERROR\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        process = subprocess.Popen([binary, "-D", "-e", "-f", os.path.join(directory,
                                                                           "sshd_config")],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + TIMEOUT
            with selectors.DefaultSelector() as sel:
                sel.register(process.stderr, selectors.EVENT_READ)
                while "Server listening" not in (line := (process.stderr.readline()
                                                          if sel.select(1) else "")):
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the benchmark's sshd did not start: {line}")
            yield Sshd(directory, port)
        finally:
            _end(process)


@contextlib.contextmanager
def ours_ssh(server: Sshd, name: str = "bench-ssh") -> Iterator[Ours]:
    """An engine on the sshd's host, reached through ssh tunnels as a remote host would be."""
    import remote_magics

    ip = shell()
    ip.run_line_magic("remote_connect", f"ssh://rmtest --name {name} --python {sys.executable} "
                                        f"--ssh-config {server.config}")
    target = remote_magics.registry.get(name)
    try:
        yield Ours(target, ip)
    finally:
        remote_magics.registry.remove(name)


# --- raw pyzmq ----------------------------------------------------------------------------

class ZmqPeer:
    """A DEALER connected to the ROUTER of :mod:`benchmarks._zmq_peer` in its own process."""

    def __init__(self, process: subprocess.Popen, port: int) -> None:
        import zmq

        self.process = process
        self.pid = process.pid
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(f"tcp://127.0.0.1:{port}")

    def _wait(self, copy: bool = True) -> list:
        if not self.sock.poll(int(TIMEOUT * 1000)):
            raise TimeoutError("the raw pyzmq peer did not answer")
        return self.sock.recv_multipart(copy=copy)

    def call(self, *frames, copy: bool = True) -> list:
        self.sock.send_multipart(list(frames), copy=copy)
        return self._wait()

    def roundtrip(self) -> None:
        self.call(b"echo")

    def upload(self, array) -> None:
        self.call(b"up", array, copy=False)

    def download(self):
        import numpy as np

        self.sock.send(b"down")
        (frame,) = self._wait(copy=False)
        return np.frombuffer(frame, dtype="float64")

    def close(self) -> None:
        try:
            self.call(b"quit")
        except Exception:  # the process is ended below either way
            pass
        self.context.destroy(linger=0)
        _end(self.process)


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    with selectors.DefaultSelector() as sel:
        sel.register(process.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError("the peer process did not start in time")
    return process.stdout.readline().decode().strip()


@contextlib.contextmanager
def raw_zmq() -> Iterator[ZmqPeer]:
    process = subprocess.Popen([sys.executable, "-m", "benchmarks._zmq_peer"],
                               stdout=subprocess.PIPE, cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        peer = ZmqPeer(process, int(_read_line(process, TIMEOUT)))
    except BaseException:
        _end(process)
        raise
    try:
        peer.roundtrip()
        yield peer
    finally:
        peer.close()


# --- a plain ipykernel --------------------------------------------------------------------

class PlainKernel:
    """A plain ipykernel (not our engine) and a blocking client, as jupyter_client users have."""

    def __init__(self, km, kc) -> None:
        self.km = km
        self.client = kc
        self.pid = km.provisioner.pid if km.provisioner else None

    def execute(self, code: str = "pass") -> None:
        """``execute_request`` and wait for its reply and its idle status, like a frontend."""
        kc = self.client
        msg_id = kc.execute(code)
        replied = idle = False
        deadline = time.monotonic() + TIMEOUT
        while not (replied and idle):
            if not replied:
                reply = kc.get_shell_msg(timeout=max(deadline - time.monotonic(), 0.001))
                replied = reply["parent_header"].get("msg_id") == msg_id
            while not idle:
                msg = kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.001))
                idle = (msg["parent_header"].get("msg_id") == msg_id
                        and msg["msg_type"] == "status"
                        and msg["content"]["execution_state"] == "idle")


@contextlib.contextmanager
def plain_kernel() -> Iterator[PlainKernel]:
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class Specs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}", "--IPKernelApp.log_level=ERROR"],
                              display_name="plain", language="python", resource_dir="")

    km = KernelManager(kernel_name="plain", kernel_spec_manager=Specs(), ip="127.0.0.1")
    km.start_kernel()
    kc = km.blocking_client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=TIMEOUT)
        yield PlainKernel(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


# --- ipyparallel --------------------------------------------------------------------------

class Ipp:
    def __init__(self, cluster, rc) -> None:
        self.cluster = cluster
        self.rc = rc
        self.view = rc[0]
        self.pid = self.view.apply_sync(os.getpid)


@contextlib.contextmanager
def ipyparallel() -> Iterator[Ipp]:
    import ipyparallel as ipp

    profile_dir = tempfile.mkdtemp(prefix="bench-ipp-")
    cluster = ipp.Cluster(n=1, controller_ip="127.0.0.1", profile_dir=profile_dir,
                          cluster_id=f"bench-{uuid.uuid4().hex[:8]}", log_level=40,
                          shutdown_atexit=True, engine_timeout=TIMEOUT)
    try:
        rc = cluster.start_and_connect_sync(activate=False)
        rc.wait_for_engines(1, timeout=TIMEOUT)
        try:
            yield Ipp(cluster, rc)
        finally:
            rc.close()
    finally:
        cluster.stop_cluster_sync()
        import shutil

        shutil.rmtree(profile_dir, ignore_errors=True)


# --- execnet ------------------------------------------------------------------------------

_EXECNET_SERVER = """
import os
data = None
while True:
    command = channel.receive()
    if command == "echo":
        channel.send(None)
    elif command == "up":
        payload = channel.receive()
        channel.send(len(payload))
        del payload
    elif command == "alloc":
        data = None
        data = os.urandom(channel.receive())
        channel.send(None)
    elif command == "down":
        channel.send(data)
    elif command == "pid":
        channel.send(os.getpid())
    else:
        break
"""


class Execnet:
    """An execnet popen gateway, and a channel to a loop that takes and serves bytes."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway
        self.channel = gateway.remote_exec(_EXECNET_SERVER)
        self.channel.send("pid")
        self.pid = self.channel.receive(TIMEOUT)

    def null(self) -> None:
        """``remote_exec`` of a tiny piece of code and the receive of its answer."""
        channel = self.gateway.remote_exec("channel.send(None)")
        channel.receive(TIMEOUT)

    def upload(self, payload: bytes) -> None:
        self.channel.send("up")
        self.channel.send(payload)
        self.channel.receive(TIMEOUT)

    def download(self):
        import numpy as np

        self.channel.send("down")
        return np.frombuffer(self.channel.receive(TIMEOUT), dtype="float64")

    def call(self, *messages):
        for message in messages:
            self.channel.send(message)
        return self.channel.receive(TIMEOUT)


@contextlib.contextmanager
def execnet() -> Iterator[Execnet]:
    import execnet as _execnet

    group = _execnet.Group()
    try:
        gateway = group.makegateway(f"popen//python={sys.executable}")
        peer = Execnet(gateway)
        try:
            yield peer
        finally:
            peer.channel.send("quit")
    finally:
        group.terminate(timeout=10)


# --- Dask ---------------------------------------------------------------------------------

class Dask:
    def __init__(self, cluster, client) -> None:
        self.cluster = cluster
        self.client = client
        self.pid = next(iter(client.run(os.getpid).values()))


@contextlib.contextmanager
def dask() -> Iterator[Dask]:
    import dask as _dask
    from distributed import Client, LocalCluster

    # Compression would flatter Dask on compressible data; the payloads are random anyway.
    with _dask.config.set({"distributed.comm.compression": None,
                           "distributed.worker.memory.target": False,
                           "distributed.worker.memory.spill": False,
                           "distributed.worker.memory.pause": False,
                           "distributed.worker.memory.terminate": False,
                           "distributed.comm.timeouts.connect": f"{TIMEOUT:.0f}s"}):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, memory_limit=0,
                               silence_logs=logging.ERROR)
        try:
            client = Client(cluster, timeout=TIMEOUT)
            try:
                yield Dask(cluster, client)
            finally:
                client.close(timeout=30)
        finally:
            cluster.close(timeout=30)
