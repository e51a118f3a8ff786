"""ssh targets: an engine kernel started on another host over ssh, its ports tunnelled home.

``ssh://[user@]host[:port]`` runs the system ``ssh`` client, so ``~/.ssh/config`` (aliases,
ProxyJump, identities) and the ssh agent apply as they do in a terminal. One ssh connection
carries everything: it is started as a ControlMaster (``-M -S SOCKET``) whose own session runs
the remote half (:func:`remote_magics.engine.host.stdio`, shipped as source with the engine, so
the host needs only a Python with ipykernel and cloudpickle); the kernel binds the host's loopback, and
each of its five ports is forwarded to a loopback port here with ``ssh -S SOCKET -O forward -L``.
Closing the connection (``%remote_disconnect``, or this process dying) closes the remote half's
stdin, which stops the kernel. With ``--persist`` the remote half reaches (or starts) the
persistent engine of the target's name on the host instead, and leaves it running when the
connection closes; the engine's key comes back from the host, where its record keeps it.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import queue
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..client.handshake import shipped_sources
from ..engine.host import free_port
from ..errors import (
    AuthenticationRefused,
    ConnectionLost,
    HostUnreachable,
    NoSuchPython,
    RemoteKernelMissing,
    RemoteMagicsError,
    RemotePortInUse,
    SshError,
)
from ..wire import protocol
from .base import RELAUNCHES, Kind, Target, owned_connection, register_kind

log = logging.getLogger(__name__)

# Runs on the host: unpack the shipped package into a private temporary directory, then run
# its remote half (remote_magics.engine.host.stdio).
_LOADER = """\
import json, os, sys, tempfile
settings = json.loads(sys.stdin.readline())
workdir = tempfile.mkdtemp(prefix="remote_magics-")
for path, source in settings.pop("sources").items():
    file = os.path.join(workdir, *path.split("/"))
    os.makedirs(os.path.dirname(file), exist_ok=True)
    with open(file, "w") as out:
        out.write(source)
sys.path.insert(0, workdir)
try:  # the engine's connection file goes where Jupyter keeps them on that host
    from jupyter_core.paths import jupyter_runtime_dir
    settings["runtime_dir"] = jupyter_runtime_dir()
except Exception:
    pass
from remote_magics.engine import host
sys.exit(host.stdio(settings, workdir))
"""

_UNREACHABLE = re.compile(
    r"Connection refused|Could not resolve hostname|No route to host|Network is unreachable|"
    r"Connection timed out|Operation timed out|Name or service not known|"
    r"Connection closed by remote host|Connection reset")
_AUTH = re.compile(r"Permission denied|Too many authentication failures|"
                   r"Host key verification failed|No more authentication methods")


@dataclass
class SshAddress:
    """Where to ssh: ``user@host`` (either part may come from ~/.ssh/config) and a port."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, spec: str) -> "SshAddress":
        parts = urllib.parse.urlsplit(spec)
        if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/") \
                or parts.query:
            raise SshError(f"an ssh target is ssh://[user@]host[:port], not {spec!r}")
        try:
            port = parts.port
        except ValueError:
            raise SshError(f"the port in {spec!r} is not a number") from None
        return cls(parts.hostname, urllib.parse.unquote(parts.username or "") or None, port)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return f"ssh://{self.destination}" + (f":{self.port}" if self.port else "")


class SshKernel:
    """An engine kernel on an ssh host, reached through one multiplexed ssh connection.

    It offers the part of ``KernelManager`` that :class:`~remote_magics.targets.base.Target` uses
    for a kernel it owns: :meth:`is_alive`, :meth:`get_connection_info`, :meth:`interrupt_kernel`,
    :meth:`restart_kernel`, :meth:`shutdown_kernel`, :meth:`cleanup_resources`.
    """

    provisioner = None  # no local process to poll: exit_status comes from the remote half

    def __init__(self, address: SshAddress, *, python: str = "python3",
                 ssh_options: Sequence[str] = (), port_range: str | None = None,
                 cwd: str | None = None, persist: dict | None = None) -> None:
        self.address = address
        self.persist = persist  # {"name", "idle_timeout"}: a persistent engine, left running
        self.python = python
        self.ssh_options = list(ssh_options)
        self.port_range = port_range
        self.cwd = cwd
        self.timeout = 60.0
        self.process: subprocess.Popen | None = None
        self.info: dict = {}
        self.remote: dict = {}
        self.exit: dict | None = None
        self._dir = ""

    def _fresh(self) -> None:
        self.key = secrets.token_hex(32)
        self._dir = tempfile.mkdtemp(prefix="rm-ssh-")  # mode 0700; short, for the socket path
        self.control_path = os.path.join(self._dir, "ctl")
        self.messages: queue.Queue = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=60)
        self.exit: dict | None = None  # the remote half's report once the kernel has ended

    # --- the ssh command lines ------------------------------------------------------------------

    def _ssh(self, *args: str) -> list[str]:
        port = ["-p", str(self.address.port)] if self.address.port else []
        return ["ssh", *port, *self.ssh_options, "-S", self.control_path, *args,
                self.address.destination]

    def _remote_command(self) -> str:
        return " ".join(shlex.quote(part) for part in (self.python, "-u", "-c", _LOADER))

    # --- starting -----------------------------------------------------------------------------

    def start(self, timeout: float) -> dict:
        """Start the remote kernel and the tunnels; the connection info to reach it from here."""
        self._fresh()
        self.timeout = timeout
        settings = {"sources": shipped_sources(), "key": self.key,
                    "port_range": self.port_range, "cwd": self.cwd, "persist": self.persist,
                    "timeout": timeout}
        command = self._ssh("-M", "-T", "-o", "ControlPersist=no", "-o", "BatchMode=yes",
                            "-o", f"ConnectTimeout={max(int(timeout), 1)}")
        self.process = subprocess.Popen(
            [*command, self._remote_command()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # the notebook's stop button must not reach ssh
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        # written by a thread: ssh reads it only once logged in, which may never happen
        threading.Thread(target=self._send, args=((json.dumps(settings) + "\n").encode(),),
                         daemon=True).start()
        first = self._next_message(timeout)
        if "error" in first:
            self.shutdown_kernel()
            self._raise_remote(first)
        self.remote = first
        self.key = first.get("key") or self.key  # a persistent engine's own, from its record
        try:
            self.info = self._forward(first["ready"])
        except BaseException:
            self.shutdown_kernel()
            raise
        return self.info

    def _send(self, data: bytes) -> None:
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):  # ssh gave up (its stderr says why), or we closed
            pass

    def _read_stdout(self) -> None:
        for raw in self.process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                log.debug("ssh %s: %s", self.address, raw.decode(errors="replace").rstrip())
                continue
            if "exit" in message:
                self.exit = message
            self.messages.put(message)
        self.messages.put(None)  # the connection ended

    def _read_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.stderr_tail.append(line)
            log.debug("ssh %s: %s", self.address, line.rstrip())

    def _next_message(self, timeout: float) -> dict:
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            self.shutdown_kernel()
            raise SshError(
                f"{self.address} did not start an engine within {timeout:g} s. ssh said: "
                f"{self.stderr() or 'nothing'}. Try `ssh {self.address.destination}` in a "
                "terminal, or give more --timeout.") from None
        if message is None:
            self._raise_ssh_failure()
        return message

    def stderr(self) -> str:
        return "".join(self.stderr_tail).strip()

    def _raise_ssh_failure(self) -> None:
        """ssh ended before the remote half answered: say why, from its status and stderr."""
        try:
            status = self.process.wait(10)
        except subprocess.TimeoutExpired:
            status = None
        self._stderr_reader.join(5)  # ssh's last words
        said = self.stderr()
        self.cleanup_resources()
        if status == 255 and _AUTH.search(said):
            raise AuthenticationRefused(self.address, said)
        if status == 255 and _UNREACHABLE.search(said):
            raise HostUnreachable(self.address, said)
        if status in (126, 127) or re.search(r"not found|No such file", said):
            raise NoSuchPython(self.address, self.python, said)
        raise SshError(f"ssh to {self.address} ended (exit status {status}) before an engine "
                       f"started. ssh said: {said or 'nothing'}")

    def _raise_remote(self, message: dict) -> None:
        if message["error"] == "missing":
            raise RemoteKernelMissing(self.address, message["python"], message["missing"])
        if message["error"] == "start":
            raise SshError(f"the persistent engine on {self.address} did not start: "
                           f"{message.get('detail', '')}")
        raise RemotePortInUse(str(self.address), message.get("detail", ""))

    def _forward(self, remote_ports: dict) -> dict:
        """Forward each remote port to a free loopback port here, through the master connection."""
        # no data port unless the remote side chose one (forwarded below): the port an engine
        # announces is on its host, not this one
        info = protocol.connection_info("127.0.0.1", self.key, {protocol.DATA_PORT: None})
        for name, remote_port in remote_ports.items():
            for attempt in range(5):
                local_port = free_port("127.0.0.1")
                done = subprocess.run(
                    self._ssh("-O", "forward", "-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"),
                    capture_output=True, text=True, timeout=30)
                if done.returncode == 0:
                    info[name] = local_port
                    break
                log.debug("forward of %s failed: %s", name, done.stderr.strip())
            else:
                raise SshError(f"could not forward port {remote_port} of {self.address} to this "
                               f"machine: {done.stderr.strip()}. Does the sshd there allow TCP "
                               "forwarding (AllowTcpForwarding)?")
        return info

    # --- what Target asks of a kernel it owns --------------------------------------------------

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and self.exit is None

    def get_connection_info(self, session: bool = False) -> dict:
        """How to reach the kernel from here: its tunnelled loopback ports and its key."""
        return dict(self.info)

    def interrupt_kernel(self) -> None:
        """Ask the remote half to send SIGINT to the kernel."""
        if self.is_alive():
            try:
                self.process.stdin.write(b"interrupt\n")
                self.process.stdin.flush()
            except OSError:  # the connection is gone; the heartbeat will tell
                pass

    def restart_kernel(self, now: bool = True, **kwargs: object) -> None:
        """A new kernel on the same host, through a new ssh connection."""
        self.shutdown_kernel()
        self.cleanup_resources()
        self.start(self.timeout)

    def shutdown_kernel(self, now: bool = True, restart: bool = False) -> None:
        """Stop the remote kernel: closing stdin makes the remote half stop it; ssh then ends."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            log.warning("ssh to %s did not end after its kernel was told to stop; killing it",
                        self.address)
            process.kill()
            process.wait(5)

    def cleanup_resources(self, restart: bool = False) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def start(spec: str, name: str, *, timeout: float = 60.0, cwd: str | None = None,
          python: str | None = None, ssh_options: Sequence[str] = (),
          port_range: str | None = None, persist: bool = False,
          idle_timeout: float | None = None, **options: Any) -> tuple[list[Target], None]:
    """A target on a new engine at ``spec`` (``ssh://[user@]host[:port]``); see :func:`start_kernel`.

    With ``persist``, the host's persistent engine called ``name``, reached or started. A new
    engine whose ports were ours to choose (no ``port_range``) and which found one taken as it
    bound it is started again on others, :data:`.base.RELAUNCHES` times at most.
    """
    relaunches = 0
    while True:
        try:
            return [_start_one(spec, name, timeout=timeout, cwd=cwd, python=python,
                               ssh_options=ssh_options, port_range=port_range, persist=persist,
                               idle_timeout=idle_timeout)], None
        except RemotePortInUse:
            # the host chose them free, and another program took one before the engine bound
            # it (on one machine, also this notebook's own tunnel ends): choose again
            relaunches += 1
            if port_range is not None or persist or relaunches > RELAUNCHES:
                raise


def _start_one(spec: str, name: str, *, timeout: float, cwd: str | None, python: str | None,
               ssh_options: Sequence[str], port_range: str | None, persist: bool,
               idle_timeout: float | None) -> Target:
    """One try of :func:`start`."""
    kernel = start_kernel(spec, timeout=timeout, cwd=cwd, python=python, ssh_options=ssh_options,
                          port_range=port_range,
                          persist={"name": name, "idle_timeout": idle_timeout} if persist else None)
    try:
        target = Target(name, owned_connection(name, kernel), spec=str(kernel.address),
                        kernel_manager=kernel)
    except BaseException:
        kernel.shutdown_kernel()
        kernel.cleanup_resources()
        raise
    if persist:
        target.persistent = {"name": name}
        target.reconnected = bool(kernel.remote.get("persist", {}).get("reconnected"))
        target.connection.set_exit_status(persistent_status(kernel, name))
    try:
        target.ready(timeout)
    except RemoteMagicsError:
        if kernel.exit is not None and kernel.exit.get("port_in_use"):
            raise RemotePortInUse(str(kernel.address), "a port was taken as the kernel started") \
                from None
        if kernel.exit is not None:
            raise SshError(f"the engine on {kernel.address} exited while starting (status "
                           f"{kernel.exit['exit']}). Its last output:\n"
                           f"{kernel.exit.get('stderr', '').strip()}") from None
        raise
    return target


def persistent_status(kernel: SshKernel, name: str) -> Callable[[], Any]:
    """A persistent engine's exit status, as its host reported it; ConnectionLost once our link
    is gone, since the engine itself then runs on."""
    def status() -> Any:
        if kernel.exit is not None:
            return kernel.exit.get("exit", "unknown")
        if kernel.process is None or kernel.process.poll() is not None:
            raise ConnectionLost(
                f"the ssh connection to {kernel.address} has closed; the persistent engine "
                f"'{name}' there runs on. Reconnect with %remote_connect {kernel.address} "
                f"--name {name} --persist.")
        return None
    return status


def start_kernel(spec: str, *, python: str | None = None, ssh_options: Sequence[str] = (),
                 port_range: str | None = None, cwd: str | None = None,
                 timeout: float = 60.0, persist: dict | None = None) -> SshKernel:
    """Start an engine on the host of ``spec`` (``ssh://[user@]host[:port]``), its ports tunnelled.

    Returns the kernel handle; its ``info`` is the connection info of the tunnels on this machine.
    ``persist`` (``{"name", "idle_timeout"}``) reaches or starts the host's persistent engine.
    """
    if shutil.which("ssh") is None:
        raise SshError("no `ssh` command here: install the OpenSSH client (apt-get install "
                       "openssh-client) to use ssh:// targets.")
    kernel = SshKernel(SshAddress.parse(spec), python=python or "python3",
                       ssh_options=ssh_options, port_range=port_range, cwd=cwd, persist=persist)
    try:
        kernel.start(timeout)
    except BaseException:
        kernel.shutdown_kernel()
        kernel.cleanup_resources()
        raise
    return kernel


register_kind(Kind("ssh", start, persist=True))
