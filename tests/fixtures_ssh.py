"""Session fixtures for ssh targets: a real OpenSSH sshd on 127.0.0.1, and one ssh target.

The sshd runs from a test-only sshd_config (generated host key, generated user key, a free
port on 127.0.0.1); the system's sshd configuration is never touched. Clients reach it through a
generated ssh_config that names it ``rmtest``, as a user's ~/.ssh/config would.
"""
from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class Sshd:
    """A running test sshd and what a client needs to log in to it."""

    port: int
    directory: Path
    config: Path  # the client's ssh_config, with Host rmtest
    user_key: Path
    log: list = field(default_factory=list)

    @property
    def options(self) -> list[str]:
        return ["-F", str(self.config)]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "remote_magics test",
                    "-f", str(path)], check=True, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_client_config(directory: Path, port: int, key: Path, name: str = "ssh_config") -> Path:
    """An ssh_config naming the test sshd ``rmtest``, logging in with ``key``."""
    config = directory / name
    config.write_text(
        "Host rmtest\n"
        "  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        "  User root\n"
        f"  IdentityFile {key}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {directory / 'known_hosts'}\n"
        "  StrictHostKeyChecking yes\n"
        "  LogLevel ERROR\n")
    return config


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """OpenSSH's sshd on 127.0.0.1 (a free port), accepting our generated user key for root."""
    if not os.path.exists(SSHD):
        pytest.fail("sshd is not installed: apt-get install openssh-server openssh-client "
                    "(.ci/run does this)")
    directory = tmp_path_factory.mktemp("sshd")
    directory.chmod(0o700)
    _keygen(directory / "host_key")
    _keygen(directory / "user_key")
    (directory / "authorized_keys").write_text((directory / "user_key.pub").read_text())
    port = _free_port()
    (directory / "known_hosts").write_text(
        f"[127.0.0.1]:{port} {(directory / 'host_key.pub').read_text()}")
    (directory / "sshd_config").write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
        "PidFile none\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "AllowTcpForwarding yes\n"
        "MaxStartups 50\n"
        "LogLevel INFO\n")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(directory / "sshd_config")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    server = Sshd(port, directory, write_client_config(directory, port, directory / "user_key"),
                  directory / "user_key")
    try:
        _wait_listening(process, server.log, timeout=30)
        threading.Thread(target=lambda: server.log.extend(process.stderr), daemon=True).start()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_listening(process: subprocess.Popen, log: list, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                continue
            line = process.stderr.readline()
            if not line:
                break
            log.append(line)
            if "Server listening" in line:
                return
    process.kill()
    pytest.fail("the test sshd did not start: " + "".join(log))


@pytest.fixture(scope="session")
def ssh_target(shell, sshd):
    """One engine on the test sshd's host, connected with the line a user types."""
    import remote_magics

    registry = remote_magics.registry
    previous = registry.current
    shell.run_line_magic(
        "remote_connect",
        f"ssh://rmtest --name ssh --python {sys.executable} --ssh-config {sshd.config}")
    target = registry.get("ssh")
    registry.current = previous if previous in registry.targets else target.name
    yield target
    if "ssh" in registry.targets:
        registry.remove("ssh")
