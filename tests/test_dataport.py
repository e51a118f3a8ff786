"""The engine's data port: big frames over an authenticated side TCP connection, both ways.

A link proves the key before anything else; a transfer is used only once the signed message
claims it and its digest is right; a tampered, replayed or unclaimed transfer is refused; a
stranger or garbage on the port is closed without harming the engine; chunks stay the fallback.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import weakref

import numpy as np
import pytest

from remote_magics import ConnectionLost, RemoteObject
from remote_magics.cells import display
from remote_magics.client import connection
from remote_magics.engine import host
from remote_magics.wire import dataport, protocol, streaming

from loopback import lonely_address

KEY = b"k" * 32
MB = 1_000_000


def _grew(before: dict, key: str) -> int:
    return streaming.stats[key] - before.get(key, 0)


@pytest.fixture
def pair():
    """A listener and a client link to it, in this process."""
    address = lonely_address()  # (a refused stranger is counted: none but ours reaches it)
    listener = dataport.Listener(KEY, address)
    link = dataport.connect((address, listener.port), KEY, "client-secret")
    try:
        yield listener, link, _engine_side(listener, link)
    finally:
        link.close()
        listener.close()


def _engine_side(listener: dataport.Listener, link: dataport.Link) -> dataport.Link:
    found = listener.link_for(link.id, "client-secret")  # listed before connect returns
    assert found is not None
    return found


def _message(link: dataport.Link, frames: list, scheme: str = protocol.HMAC_SHA256) -> dict:
    """What :func:`dataport.send` puts in a message's content, without the shell socket."""
    indexes = dataport.big_frames(frames, chunk=0)
    transfer, digest = link.send([memoryview(frames[i]).cast("B") for i in indexes], scheme)
    return {"ported": {"transfer": transfer, "digest": digest,
                       "frames": [[i, memoryview(frames[i]).nbytes] for i in indexes]}}


# --- the link itself (no kernel) ------------------------------------------------------------

@pytest.mark.parametrize("scheme", protocol.digest_schemes())
def test_frames_cross_a_link_both_ways_and_come_back_equal(pair, scheme):
    _, client, engine = pair
    up = [os.urandom(3 * MB + 7), np.arange(1000, dtype=np.float64)]
    content = _message(client, up, scheme)
    placed = engine.claim(content, [b"", b""])
    assert [bytes(f) for f in placed] == [bytes(f) for f in up]
    down = [b"head", os.urandom(MB)]
    content = _message(engine, [down[1]], scheme)
    content["ported"]["frames"] = [[1, MB]]
    assert bytes(client.claim(content, [b"head", b""])[1]) == down[1]


@pytest.mark.parametrize("scheme", protocol.digest_schemes())
def test_a_transfer_whose_bytes_differ_from_its_signed_digest_is_refused(pair, scheme):
    _, client, engine = pair
    content = _message(client, [os.urandom(MB)], scheme)
    digest = content["ported"]["digest"]
    content["ported"]["digest"] = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    with pytest.raises(streaming.StreamError, match="fails its digest"):
        engine.claim(content, [b""])


def test_a_message_whose_frame_sizes_differ_from_its_transfer_is_refused(pair):
    _, client, engine = pair
    content = _message(client, [os.urandom(MB)])
    content["ported"]["frames"] = [[0, MB - 1]]
    with pytest.raises(streaming.StreamError, match="do not match"):
        engine.claim(content, [b""])


def test_a_transfer_is_claimed_once(pair):
    _, client, engine = pair
    content = _message(client, [os.urandom(MB)])
    engine.claim(content, [b""])
    client.close()  # so the second claim does not wait for a transfer that never comes
    with pytest.raises(streaming.StreamError, match="did not arrive"):
        engine.claim(content, [b""])


def test_a_transfer_id_sent_again_on_a_link_is_a_replay_and_closes_it(pair, caplog):
    _, client, engine = pair
    head = (dataport.HEADER + b"\x01" * 16 + b"\x00" + (1).to_bytes(4, "little")
            + (10).to_bytes(8, "little"))
    with caplog.at_level(logging.WARNING, logger="remote_magics.wire.dataport"):
        client.sock.sendall(head + b"x" * 10)
        client.sock.sendall(head + b"x" * 10)  # the same transfer again
        content = {"ported": {"transfer": ("01" * 16), "digest": "", "frames": [[0, 10]]}}
        with pytest.raises(streaming.StreamError):  # its digest is wrong anyway
            engine.claim(content, [b""])
        with pytest.raises(streaming.StreamError, match="closed.*replay"):
            engine.claim({"ported": {"transfer": "02" * 16, "digest": "", "frames": []}}, [])
    assert engine.closed and "replay" in caplog.text


def test_unclaimed_transfers_beyond_a_few_and_beyond_the_channel_window_are_dropped(
        pair, monkeypatch):
    _, client, engine = pair
    monkeypatch.setattr(dataport, "KEEP_BYTES", 3000)  # a window of three 1,000-byte messages
    kept = [_message(client, [os.urandom(1000)]) for _ in range(3)]
    engine.claim(kept[-1], [b""])  # more than KEEP, within the window: all are kept
    for content in kept[:-1]:
        assert len(engine.claim(content, [b""])[0]) == 1000
    contents = [_message(client, [os.urandom(1000)]) for _ in range(5)]
    engine.claim(contents[-1], [b""])  # the newest arrived: all before it did too
    assert list(engine.done) == [c["ported"]["transfer"] for c in contents[2:4]]  # 3,000 bytes
    client.close()  # so the claim below does not wait for more
    with pytest.raises(streaming.StreamError, match="did not arrive"):
        engine.claim(contents[0], [b""])


def test_a_transfer_arriving_shows_its_progress_and_a_broken_one_lets_its_memory_go(pair):
    _, client, engine = pair
    total = 4 * MB
    head = (dataport.HEADER + os.urandom(16) + b"\x00" + (1).to_bytes(4, "little")
            + total.to_bytes(8, "little"))
    assert engine.progress() is None  # between transfers
    client.sock.sendall(head + b"x" * (total // 2))
    deadline = time.monotonic() + 30
    while engine.progress() != (total // 2, total):
        assert time.monotonic() < deadline, engine.progress()
        time.sleep(0.01)
    arriving = weakref.ref(engine.under_way)
    client.close()  # the peer goes mid-transfer: the link closes, and its buffers go with it
    while not engine.closed:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    engine._reader.join(timeout=30)
    assert engine.progress() is None and arriving() is None


def test_a_client_with_the_wrong_key_is_refused_by_the_engine_and_the_engine_goes_on(pair,
                                                                                     caplog):
    listener, _, _ = pair
    with caplog.at_level(logging.WARNING, logger="remote_magics.wire.dataport"):
        with pytest.raises(ConnectionError):
            dataport.connect(listener.sock.getsockname()[:2], b"wrong" * 8, "someone")
    assert listener.refused == 1 and "did not prove the connection key" in caplog.text
    again = dataport.connect(listener.sock.getsockname()[:2], KEY, "client-secret")
    again.close()


def test_an_engine_that_cannot_prove_the_key_is_refused_by_the_client():
    impostor = dataport.Listener(b"other" * 8, "127.0.0.1")
    try:
        with pytest.raises(ConnectionError):
            dataport.connect(("127.0.0.1", impostor.port), KEY, "client-secret")
    finally:
        impostor.close()


def test_a_stranger_who_says_nothing_is_closed_after_the_handshake_timeout(monkeypatch):
    monkeypatch.setattr(dataport, "HANDSHAKE_TIMEOUT", 0.5)
    address = lonely_address()
    listener = dataport.Listener(KEY, address)
    try:
        with socket.create_connection((address, listener.port), timeout=10) as stranger:
            assert stranger.recv(len(dataport.MAGIC) + dataport.NONCE)  # the engine's hello
            stranger.settimeout(10)
            assert stranger.recv(1) == b""  # closed by the engine, not by us
        assert listener.refused == 1 and not listener.links
    finally:
        listener.close()


def test_a_captured_handshake_replayed_on_a_new_connection_is_refused():
    """The engine's nonce is fresh each time, so a recorded proof proves nothing."""
    listener = dataport.Listener(KEY, "127.0.0.1")
    try:
        first = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
        hello = first.recv(len(dataport.MAGIC) + dataport.NONCE)
        client_nonce = os.urandom(dataport.NONCE)
        recorded = dataport.MAGIC + client_nonce + dataport._proof(
            KEY, b"client", hello[len(dataport.MAGIC):], client_nonce)
        first.sendall(recorded)
        first.close()
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as replay:
            replay.recv(len(dataport.MAGIC) + dataport.NONCE)
            replay.sendall(recorded)
            replay.settimeout(10)
            assert replay.recv(32) == b""  # no proof back: closed
    finally:
        listener.close()


# --- through a real engine ------------------------------------------------------------------

def test_a_100_mb_array_goes_up_and_down_and_is_fetched_over_the_data_port(data_port):
    target = data_port
    payload = np.random.default_rng(3).random(100 * MB // 8)
    before = dict(streaming.stats)
    ns = {"payload": payload}
    target.run("back = payload[::-1].copy()\nbig = payload * 2", ns, download="small",
               bytes=200 * MB)
    assert np.array_equal(ns["back"], payload[::-1])
    assert _grew(before, "ported_sent") == payload.nbytes
    assert _grew(before, "ported_received") == 2 * payload.nbytes
    target.run("huge = back * 3", ns, download="none")
    huge = ns["huge"]
    assert isinstance(huge, RemoteObject)
    assert np.array_equal(huge.fetch(), payload[::-1] * 3)
    assert _grew(before, "ported_received") == 3 * payload.nbytes
    assert _grew(before, "streamed_sent") == _grew(before, "streamed_received") == 0
    assert target.connection.link is not None and not target.connection.link.closed


def test_a_tampered_upload_over_the_data_port_is_refused_and_nothing_runs(data_port,
                                                                          monkeypatch):
    target = data_port
    real = dataport.Digest.update

    def tampered(self, view):  # the bytes the engine gets differ from those we sign
        changed = bytearray(view[:1])
        changed[0] ^= 1
        real(self, memoryview(bytes(changed) + bytes(view[1:])))

    monkeypatch.setattr(dataport.Digest, "update", tampered)
    with pytest.raises(ConnectionLost, match="dropped the request.*fails its digest"):
        target.run("ran_with_tampered = len(blob)", {"blob": bytearray(2 * protocol.STREAM_CHUNK)},
                   download="all")
    monkeypatch.undo()
    assert target.run("seen = 'ran_with_tampered' in dir()", {}).values == {"seen": False}
    assert target.run("n = len(blob)", {"blob": bytearray(2 * protocol.STREAM_CHUNK)},
                      download="all").values == {"n": 2 * protocol.STREAM_CHUNK}


def test_garbage_and_strangers_on_the_data_port_leave_the_engine_working(data_port):
    target = data_port
    address = target.connection.data_address
    with socket.create_connection(address, timeout=10) as stranger:
        stranger.recv(len(dataport.MAGIC) + dataport.NONCE)
        stranger.sendall(os.urandom(len(dataport.MAGIC) + dataport.NONCE + 32))
        stranger.settimeout(10)
        assert stranger.recv(32) == b""  # closed by the engine
    with pytest.raises(ConnectionError):
        dataport.connect(address, b"not the key", "x")
    before = dict(streaming.stats)
    ns = {"payload": np.ones(20 * MB // 8)}
    target.run("back = payload + 1", ns, download="all")
    assert np.array_equal(ns["back"], np.full(20 * MB // 8, 2.0))
    assert _grew(before, "ported_sent") == _grew(before, "ported_received") == 20 * MB


def test_an_unreachable_data_port_falls_back_to_chunks(target):
    conn = target.connection
    saved = (conn.shared_send, conn.shared_receive, conn.data_address, conn.link,
             conn.link_failed)
    conn.shared_send = conn.shared_receive = False
    conn.data_address, conn.link, conn.link_failed = ("127.0.0.1", host.free_port("127.0.0.1")), \
        None, False
    try:
        before = dict(streaming.stats)
        ns = {"payload": np.ones(20 * MB // 8)}
        target.run("back = payload * 2", ns, download="all")
        assert np.array_equal(ns["back"], np.full(20 * MB // 8, 2.0))
        assert conn.link_failed and conn.link is None
        assert _grew(before, "streamed_sent") == _grew(before, "streamed_received") == 20 * MB
        assert _grew(before, "ported_sent") == _grew(before, "ported_received") == 0
    finally:
        (conn.shared_send, conn.shared_receive, conn.data_address, conn.link,
         conn.link_failed) = saved


def test_a_local_engine_announces_its_data_port_at_its_kernels_ip(target):
    info = target.connection.request(protocol.INFO_REQUEST, target.connection.offer(),
                                     timeout=30).content
    assert isinstance(info[protocol.DATA_PORT], int)
    assert target.connection.data_address == ("127.0.0.1", info[protocol.DATA_PORT])


def test_an_upload_interrupted_on_the_data_port_leaves_the_next_cell_working(data_port):
    target = data_port
    conn = target.connection
    payload = np.random.default_rng(4).random(100 * MB // 8)

    def stop(direction: str, done: int, total: int) -> None:
        if direction == "upload" and done < total:
            raise KeyboardInterrupt  # the stop button, with part of the bytes sent

    with pytest.raises(KeyboardInterrupt):
        target.run("n = payload.size", {"payload": payload}, download="all", on_progress=stop)
    broken = conn.link
    assert broken is None or broken.closed  # the engine would wait for the rest: closed
    before = dict(streaming.stats)
    assert target.run("n = payload.size", {"payload": payload}, download="all").values == {
        "n": payload.size}
    assert conn.link is not broken and not conn.link.closed  # a new link
    assert _grew(before, "ported_sent") == payload.nbytes


def test_a_download_over_the_data_port_moves_its_bar_as_the_bytes_arrive(data_port, monkeypatch,
                                                                          capsys):
    target = data_port
    monkeypatch.setattr(connection, "PROGRESS_INTERVAL", 0.002)  # many looks at 200 MB
    ns: dict = {}
    with display.watching(relay=lambda m: None) as watch:
        target.run("import numpy as np\nback = np.ones(25_000_000)", ns, download="all",
                   on_output=watch.on_output, on_progress=watch.on_progress)
    assert ns["back"].nbytes == 200 * MB and ns["back"].sum() == 25_000_000
    done = [n for d, n in watch.updates if d == "download"]
    assert any(0 < n < 200 * MB for n in done), watch.updates  # before the reply came
    assert done == sorted(done)
    assert watch.bars == ["download"]  # the announced bar moved: no second one
    assert "200M/200M" in capsys.readouterr().err
    assert not target.connection.port_download  # nothing awaited once the reply is in
