"""Shared fixtures: one IPython shell and one local engine kernel for the whole session."""
from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

import pytest

from tests.fixtures_ssh import ssh_target, sshd  # noqa: F401,E402 - session fixtures, shared

ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Kernels started by the tests must not pop up windows or pick a GUI backend.
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")


#: The pyfora seed's example function, as a notebook cell.
IS_PRIME = '''
def isPrime(p):
    x = 2
    while x*x <= p:
        if p % x == 0:
            return 0
        x = x + 1
    return 1
'''


def plain(text: str) -> str:
    """``text`` without ANSI colour codes."""
    return ANSI.sub("", text)


@contextlib.contextmanager
def fake_kernel_sockets(key: bytes):
    """A Connection to loopback sockets that the test answers itself; yields it and the sockets.

    For what a real kernel will not do on request: answer with a wrong key, or damage a reply.
    """
    import zmq

    from remote_magics.client.connection import Connection

    ctx = zmq.Context()
    info = {"ip": "127.0.0.1", "transport": "tcp", "key": key.decode(),
            "signature_scheme": "hmac-sha256"}
    socks = {}
    for name, kind in [("shell", zmq.ROUTER), ("iopub", zmq.PUB), ("control", zmq.ROUTER),
                       ("hb", zmq.ROUTER), ("stdin", zmq.ROUTER)]:
        socks[name] = ctx.socket(kind)
        socks[name].linger = 0
        info[f"{name}_port"] = socks[name].bind_to_random_port("tcp://127.0.0.1")
    conn = Connection(info, name="fake", heartbeat_timeout=60)
    try:
        yield conn, socks
    finally:
        conn.close()
        ctx.destroy(linger=0)


def first_engine_finds_a_port_taken(folder: Path) -> tuple[Path, Path]:
    """A folder holding a ``sitecustomize`` that, in the first kernel a process given it on its
    ``PYTHONPATH`` starts (``-f CONNECTION_FILE`` in its arguments), takes that kernel's iopub
    port before the kernel binds it, as another program may between the choice of free ports
    and their bind. ``(folder, marker)``: the marker file exists once it has."""
    hook, marker = folder / "port-taker", folder / "port-taken"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import json, os, socket, sys\n"
        f"if '-f' in sys.argv and not os.path.exists({str(marker)!r}):\n"
        "    with open(sys.argv[sys.argv.index('-f') + 1]) as f:\n"
        "        port = json.load(f)['iopub_port']\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    TAKEN = socket.socket()\n"
        "    TAKEN.bind(('127.0.0.1', port))\n"
        "    TAKEN.listen()\n")
    return hook, marker


@pytest.fixture(scope="session")
def shell():
    """A real InteractiveShell with the extension loaded, naming its cells' code as a
    notebook's kernel does (ipykernel's compiler: a file name that is never on disk, which is
    what sets how IPython formats a traceback's frames), so it is a notebook's reference."""
    from IPython.testing.globalipapp import start_ipython
    from ipykernel.compiler import XCachingCompiler

    ip = start_ipython()
    ip.compile = XCachingCompiler()
    # every kind of output, as a notebook's kernel formats it (a terminal keeps only text), for
    # the whole session: which formats the notebook shows crosses to the engine as a setting,
    # so a test that switched them for its cells and back turned the engine's image/png off
    # for every later test (a remote figure came back as text after the parity tests)
    ip.display_formatter.active_types = list(ip.display_formatter.formatters)
    ip.run_line_magic("load_ext", "remote_magics")
    yield ip


@pytest.fixture(scope="session")
def target(shell):
    """The session's local engine kernel, connected as 'default'."""
    import remote_magics

    tgt = remote_magics.connect(name="default")
    yield tgt
    remote_magics.registry.close_all()


@contextlib.contextmanager
def network_path(*targets, port: bool = False):
    """Big frames to and from these targets go as across hosts, not by shared memory (which
    same-host targets agree on at connection): by the engine's data port with ``port``, else as
    streamed chunks on the shell socket (the fallback path)."""
    conns = [t.connection for t in targets]
    saved = [(c.shared_send, c.shared_receive, c.use_data_port) for c in conns]
    for conn in conns:
        conn.shared_send = conn.shared_receive = False
        conn.use_data_port = port
    try:
        yield
    finally:
        for conn, (send, receive, use_port) in zip(conns, saved):
            conn.shared_send, conn.shared_receive, conn.use_data_port = send, receive, use_port


@pytest.fixture
def network(target):
    """The session's target with big frames streamed as chunks both ways (no shared memory)."""
    with network_path(target):
        yield target


@pytest.fixture
def data_port(target):
    """The session's target with big frames by its data port both ways (no shared memory)."""
    with network_path(target, port=True):
        yield target


@pytest.fixture
def run(shell, target):
    """Run a cell in the shell; return the ExecutionResult, raising nothing."""
    remote_magics_registry = __import__("remote_magics").registry
    remote_magics_registry.current = target.name

    def _run(cell: str):
        return shell.run_cell(cell, store_history=False)

    return _run


def pytest_configure(config):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
