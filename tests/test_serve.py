"""Served engines: `remote-magics serve`, tcp:// URLs, CurveZMQ on a second loopback address."""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading

import pytest
import zmq
from zmq.utils import z85

import remote_magics
from remote_magics import serve
from remote_magics.engine import host
from remote_magics.targets import served
from remote_magics.wire import protocol
from remote_magics.errors import ConnectionRefused, HostUnreachable


class Served:
    """A `remote-magics serve` process and what it printed."""

    def __init__(self, *args: str, connection_file: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "remote_magics.serve", *args,
             "--connection-file", connection_file],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        self.connection_file = connection_file
        self.printed = ""
        done = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                self.printed += line
                if "Stop with" in line:
                    done.set()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        if not done.wait(60) or "Stop with" not in self.printed:
            self.stop()
            pytest.fail(f"remote-magics serve did not start: {self.printed}")
        self.url = re.search(r"%remote_connect (\S+)", self.printed).group(1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def plain_engine(tmp_path_factory):
    served = Served("--ip", "127.0.0.1",
                    connection_file=str(tmp_path_factory.mktemp("serve") / "plain.json"))
    yield served
    served.stop()


@pytest.fixture(scope="module")
def curve_engine(tmp_path_factory):
    served = Served("--ip", "127.0.0.2", "--curve",
                    connection_file=str(tmp_path_factory.mktemp("serve") / "curve.json"))
    yield served
    served.stop()


def _round_trip(shell, line: str, name: str) -> None:
    registry = remote_magics.registry
    previous = registry.current
    shell.run_line_magic("remote_connect", f"{line} --name {name}")
    try:
        shell.user_ns["served_in"] = 20
        res = shell.run_cell(f"%%remote --target {name}\nserved_out = served_in * 2 + 2",
                             store_history=False)
        assert res.error_in_exec is None
        assert shell.user_ns["served_out"] == 42
    finally:
        shell.run_line_magic("remote_disconnect", name)
        registry.current = previous if previous in registry.targets else registry.current
    assert name not in registry.targets


def test_serve_on_loopback_connect_run_disconnect(shell, plain_engine):
    assert plain_engine.url.startswith("tcp://127.0.0.1:") and "curve=" not in plain_engine.url
    _round_trip(shell, plain_engine.url, "served")
    _round_trip(shell, plain_engine.url, "served")  # the engine outlives a client


def test_serve_with_curve_on_a_second_loopback_address(shell, curve_engine):
    assert curve_engine.url.startswith("tcp://127.0.0.2:") and "&curve=" in curve_engine.url
    assert "Server public key (Curve)" in curve_engine.printed
    _round_trip(shell, curve_engine.url, "served_curve")


def test_a_curve_served_engine_opens_no_data_port_and_keeps_big_frames_encrypted(curve_engine):
    """The side connection is not encrypted: big frames stay in the Curve-encrypted chunks."""
    import numpy as np

    from remote_magics.wire import protocol, streaming

    target = remote_magics.connect(curve_engine.url, name="served_no_port")
    try:
        conn = target.connection
        info = conn.request(protocol.INFO_REQUEST, conn.offer(), timeout=30).content
        assert info[protocol.DATA_PORT] is None and conn.data_address is None
        conn.shared_send = conn.shared_receive = False  # as from another host
        before = dict(streaming.stats)
        ns = {"payload": np.ones(20_000_000 // 8)}
        target.run("back = payload + 1", ns, download="all")
        assert np.array_equal(ns["back"], np.full(20_000_000 // 8, 2.0))
        assert streaming.stats["streamed_received"] - before.get("streamed_received", 0) \
            == 20_000_000
        assert streaming.stats["ported_sent"] == before.get("ported_sent", 0)
    finally:
        remote_magics.disconnect("served_no_port")


def test_connection_file_is_private_and_works_too(shell, curve_engine):
    mode = stat.S_IMODE(os.stat(curve_engine.connection_file).st_mode)
    assert mode == 0o600
    info = json.loads(open(curve_engine.connection_file).read())
    assert info["ip"] == "127.0.0.2" and info["curve_publickey"] and info["curve_secretkey"]
    _round_trip(shell, curve_engine.connection_file, "served_file")


def test_client_without_curve_key_is_refused(curve_engine):
    without = curve_engine.url.split("&curve=")[0]
    with pytest.raises(ConnectionRefused, match="requires CurveZMQ"):
        remote_magics.connect(without, name="refused", timeout=10)
    assert "refused" not in remote_magics.registry.targets


def test_client_with_wrong_curve_key_is_refused(curve_engine):
    stranger = z85.decode(zmq.curve_keypair()[0]).hex()
    wrong = curve_engine.url.split("&curve=")[0] + "&curve=" + stranger
    with pytest.raises(ConnectionRefused, match="not this engine's"):
        remote_magics.connect(wrong, name="refused", timeout=10)


def test_wrong_hmac_key_is_dropped_by_the_engine(plain_engine, curve_engine):
    url = re.sub(r"key=[0-9a-f]+", "key=" + "0" * 64, plain_engine.url)
    with pytest.raises(remote_magics.ConnectionLost, match="key"):
        remote_magics.connect(url, name="refused", timeout=3)
    # with Curve, the client's key pair is made from key=, so the handshake already refuses it
    url = re.sub(r"key=[0-9a-f]+", "key=" + "0" * 64, curve_engine.url)
    with pytest.raises(ConnectionRefused, match="key= is not this engine's"):
        remote_magics.connect(url, name="refused", timeout=3)


def test_nothing_served_there_is_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HostUnreachable, match="remote-magics serve"):
        remote_magics.connect(f"tcp://127.0.0.1:{port}?key=abc", name="refused", timeout=2)


def test_non_loopback_address_requires_curve(capsys):
    assert serve.main(["--ip", "0.0.0.0"]) == 2
    assert "--curve" in capsys.readouterr().err


def test_port_range_in_use_is_reported(capsys):
    ports = host.pick_ports("127.0.0.1")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["iopub_port"]))
        status = serve.main(["--ip", "127.0.0.1",
                             "--port-range", f"{ports['shell_port']}-{ports['hb_port']}"])
    assert status == 3
    assert f"in use: {ports['iopub_port']}" in capsys.readouterr().err


def test_url_round_trip_carries_ports_key_and_server_key():
    public, secret = zmq.curve_keypair()
    info = {"transport": "tcp", "ip": "10.1.2.3", "key": "k&y", "signature_scheme": "hmac-sha256",
            "curve_publickey": public.decode(), "curve_secretkey": secret.decode(),
            **{name: 6000 + i for i, name in enumerate(protocol.PORT_NAMES)}}
    url = served.format_url("gpu-box", info)
    assert secret.decode() not in url
    back = served.parse_url(url)
    assert back["ip"] == "gpu-box" and back["key"] == "k&y"
    assert back["curve_publickey"] == public.decode()
    assert [back[n] for n in protocol.PORT_NAMES] == [6000, 6001, 6002, 6003, 6004]
    with pytest.raises(ValueError):
        served.parse_url("tcp://host:1?token=x")


def test_port_range_parsing():
    assert host.parse_port_range(None) == (0, 0)
    assert host.parse_port_range("50000-50010") == (50000, 50010)
    with pytest.raises(ValueError, match="at least 5"):
        host.parse_port_range("50000-50002")
    assert host.is_loopback("127.0.0.2") and not host.is_loopback("0.0.0.0")


def test_cli_serve_subcommand_uses_this_module():
    from remote_magics import cli

    args = cli.build_parser().parse_args(["serve", "--ip", "127.0.0.2", "--curve"])
    assert args.run is serve.run and args.curve and args.ip == "127.0.0.2"
    assert isinstance(args, argparse.Namespace)


def test_served_kernel_ends_when_serve_is_killed(tmp_path):
    import psutil

    served = Served("--ip", "127.0.0.1", connection_file=str(tmp_path / "killed.json"))
    kernel = psutil.Process(served.process.pid).children()[0]
    served.process.kill()
    served.process.wait(10)
    kernel.wait(timeout=30)


def test_a_lost_served_engine_is_not_said_to_restart_with_the_magic(plain_engine):
    target = remote_magics.connect(plain_engine.url, name="served_stopped", timeout=30)
    pid = target.details["pid"]
    timer = threading.Timer(0.5, os.kill, (pid, signal.SIGSTOP))
    timer.start()
    try:
        with pytest.raises(remote_magics.ConnectionLost, match="heartbeat") as info:
            target.run("import time\ntime.sleep(4)", {})
    finally:
        timer.cancel()
        os.kill(pid, signal.SIGCONT)
        remote_magics.disconnect("served_stopped")
    assert "--restart" not in str(info.value)  # it works only for kernels we started
    assert "restart it where it runs" in str(info.value)
