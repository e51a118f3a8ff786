"""Big frames streamed as chunk messages: round trips through real kernels, moving progress bars,
chunks that fail their digest or come out of order are dropped, unclaimed uploads are forgotten."""
from __future__ import annotations

import os

import numpy as np
import pytest

from remote_magics import RemoteObject
from remote_magics.cells import display
from remote_magics.wire import protocol, recycle, shared, streaming
from tests.conftest import fake_kernel_sockets

KEY = b"k" * 32
MB = 1_000_000


def _chunks(frames: list, key: bytes = KEY) -> tuple[streaming.Outgoing, list]:
    out = streaming.Outgoing(key, frames)
    return out, list(out.chunks())


def _received(out: streaming.Outgoing, chunks: list, key: bytes = KEY) -> list:
    incoming = streaming.Incoming(key)
    for content, piece in chunks:
        incoming.add(content, [piece])
    content = out.seal({"status": "ok"})
    assert streaming.message_ok(key, content, out.frames)
    return incoming.claim(content, out.frames)


# --- faulting a fresh buffer in ahead of its bytes ----------------------------------------

def _prefault_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "remote_magics-prefault"]


@pytest.fixture
def cold():
    """Received frames get new memory (nothing kept from an earlier test): faulted in ahead."""
    recycle.release_all()


def test_a_prefaulted_buffer_is_let_go_once_finished(cold):
    buffer, warm = recycle.take(2 * streaming.Prefault.MIN)
    assert not warm
    prefault = streaming.Prefault(buffer)
    prefault.advance(streaming.Prefault.STEP)
    prefault.finish()
    assert not _prefault_threads()
    buffer.release()  # raises BufferError while the thread still holds the memory


def test_a_big_frame_by_chunks_arrives_whole_with_its_pages_faulted_in_ahead(cold):
    payload = np.random.default_rng(1).integers(0, 255, 3 * streaming.Prefault.MIN // 2,
                                                 dtype=np.uint8)
    out, chunks = _chunks([b"head", payload])
    frames = _received(out, chunks)
    assert np.array_equal(np.frombuffer(frames[1], dtype=np.uint8), payload)
    assert not _prefault_threads()


def test_an_abandoned_transfer_stops_faulting_in_its_frames(cold, monkeypatch):
    # ahead by less than the frame, so the thread waits for bytes that never come (on huge
    # pages it faults a frame within AHEAD in, whole, before the first check could see it)
    monkeypatch.setattr(streaming.Prefault, "AHEAD", streaming.Prefault.STEP)
    out, chunks = _chunks([b"head", os.urandom(2 * streaming.Prefault.MIN)])
    incoming = streaming.Incoming(KEY)
    for content, piece in chunks[:3]:
        incoming.add(content, [piece])
    assert _prefault_threads()  # a frame this big is faulted in ahead while it arrives
    incoming.clear()
    assert not _prefault_threads()


# --- the chunks themselves (no kernel) ------------------------------------------------------

def test_only_frames_longer_than_a_chunk_are_streamed_and_come_back_whole():
    big = os.urandom(protocol.STREAM_CHUNK * 2 + 12345)
    edge = bytes(protocol.STREAM_CHUNK)  # exactly one chunk long: stays in the message
    frames = [b"head", big, edge, memoryview(os.urandom(protocol.STREAM_CHUNK + 1))]
    out, chunks = _chunks(frames)
    assert [index for index, _ in out.streamed] == [1, 3]
    assert out.frames[1] == b"" and out.frames[2] is edge and out.frames[3] == b""
    assert len(chunks) == 3 + 2
    assert all(piece.nbytes <= protocol.STREAM_CHUNK for _, piece in chunks)
    received = _received(out, chunks)
    assert [bytes(f) for f in received] == [bytes(f) for f in frames]


def test_a_message_without_big_frames_is_sent_as_before():
    out, chunks = _chunks([b"head", b"x" * 1000])
    assert chunks == [] and "streamed" not in out.seal({})
    assert out.seal({})["digest"] == protocol.frames_digest(KEY, [b"head", b"x" * 1000])


def test_a_huge_transfer_takes_at_most_max_chunks_chunks():
    out = streaming.Outgoing(KEY, [b"h", memoryview(bytearray(10 * protocol.STREAM_CHUNK))],
                             chunk=protocol.STREAM_CHUNK // 100)
    chunks = list(out.chunks())
    assert len(chunks) <= streaming.MAX_CHUNKS < 10 * 100
    assert sum(piece.nbytes for _, piece in chunks) == 10 * protocol.STREAM_CHUNK


def test_the_assembled_buffer_unpickles_as_a_writable_numpy_array():
    from remote_magics.wire import serialize

    array = np.random.default_rng(0).random(3 * protocol.STREAM_CHUNK // 8)
    out, chunks = _chunks(serialize.dumps(array))
    back = serialize.loads(_received(out, chunks))
    assert np.array_equal(back, array) and back.flags.writeable


def test_a_chunk_with_a_tampered_digest_or_bytes_is_dropped_and_so_is_its_message():
    out, chunks = _chunks([b"head", os.urandom(3 * protocol.STREAM_CHUNK)])
    incoming = streaming.Incoming(KEY)
    incoming.add(*_as_message(chunks[0]))
    tampered = bytearray(chunks[1][1])
    tampered[100] ^= 1
    with pytest.raises(streaming.StreamError, match="digest"):
        incoming.add(chunks[1][0], [tampered])
    assert incoming.add(*_as_message(chunks[2])) == (0, 0)  # the rest is ignored quietly
    with pytest.raises(streaming.StreamError, match="did not all arrive"):
        incoming.claim(out.seal({}), out.frames)
    with pytest.raises(streaming.StreamError, match="digest"):
        streaming.Incoming(KEY).add(dict(chunks[0][0], digest="0" * 64), [chunks[0][1]])


def test_a_chunk_cannot_be_replayed_elsewhere_nor_out_of_order():
    out, chunks = _chunks([b"head", os.urandom(3 * protocol.STREAM_CHUNK)])
    other, _ = _chunks([b"head", os.urandom(3 * protocol.STREAM_CHUNK)])
    content, piece = chunks[1]
    moved = dict(content, offset=0)  # the second chunk claimed as the first
    with pytest.raises(streaming.StreamError, match="digest"):
        streaming.Incoming(KEY).add(moved, [piece])
    foreign = dict(chunks[0][0], transfer=other.transfer)  # into another transfer
    with pytest.raises(streaming.StreamError, match="digest"):
        streaming.Incoming(KEY).add(foreign, [chunks[0][1]])
    incoming = streaming.Incoming(KEY)
    incoming.add(*_as_message(chunks[0]))
    with pytest.raises(streaming.StreamError, match="out of order"):
        incoming.add(*_as_message(chunks[2]))  # a chunk skipped
    incoming = streaming.Incoming(KEY)
    incoming.add(*_as_message(chunks[0]))
    with pytest.raises(streaming.StreamError, match="out of order"):
        incoming.add(*_as_message(chunks[0]))  # the same chunk twice


def test_the_message_digest_binds_its_transfer_and_a_message_must_match_its_chunks():
    out, chunks = _chunks([b"head", os.urandom(2 * protocol.STREAM_CHUNK + 1)])
    content = out.seal({})
    swapped = dict(content, streamed=dict(content["streamed"], transfer="f" * 32))
    assert not streaming.message_ok(KEY, swapped, out.frames)
    incoming = streaming.Incoming(KEY)
    for chunk in chunks:
        incoming.add(*_as_message(chunk))
    wrong = dict(content, streamed=dict(content["streamed"], frames=[[1, 5]]))
    with pytest.raises(streaming.StreamError, match="does not match"):
        incoming.claim(wrong, out.frames)


def test_a_new_transfer_abandons_the_one_under_way():
    first, chunks = _chunks([b"head", os.urandom(2 * protocol.STREAM_CHUNK + 1)])
    second, others = _chunks([b"head", os.urandom(2 * protocol.STREAM_CHUNK + 1)])
    incoming = streaming.Incoming(KEY)
    incoming.add(*_as_message(chunks[0]))
    for chunk in others:
        incoming.add(*_as_message(chunk))
    with pytest.raises(streaming.StreamError):
        incoming.claim(first.seal({}), first.frames)
    assert incoming.frames == {}


def _as_message(chunk: tuple) -> tuple:
    content, piece = chunk
    return content, [piece]


def test_watch_progress_moves_a_bar_and_quiet_hides_it(capsys):
    with display.watching(relay=lambda m: None) as watch:
        for done in (20 * MB, 40 * MB, 60 * MB):
            watch.on_progress("download", done, 60 * MB)
        watch.on_progress("upload", 1 * MB, 2 * MB)  # small: no bar
    assert watch.bars == ["download"] and len(watch.updates) == 3
    assert "60.0M/60.0M" in capsys.readouterr().err
    with display.watching(quiet=True, relay=lambda m: None) as watch:
        watch.on_progress("download", 60 * MB, 60 * MB)
    assert watch.bars == [] and watch.updates == []


# --- through real kernels -------------------------------------------------------------------

def test_a_100_mb_array_goes_up_and_comes_back_equal_as_chunks(shell, run, network):
    payload = np.random.default_rng(1).random(100 * MB // 8)
    shell.user_ns["payload"] = payload
    try:
        # a new array comes back (`back = payload` is the notebook's own payload, as plainly)
        result = run("%%remote --download all --quiet\nback = payload + 0\n"
                     "first = float(payload[0])")
        assert result.error_in_exec is None
        assert shell.user_ns["first"] == payload[0]
        back = shell.user_ns["back"]
        assert back is not payload and np.array_equal(back, payload)
    finally:
        for name in ("payload", "back", "first"):
            shell.user_ns.pop(name, None)


def test_fetch_of_a_big_value_and_live_ops_stream_both_ways(network):
    target = network
    ns: dict = {}
    target.run("import numpy as np\nbig = np.arange(4_000_000, dtype=np.float64)\n"
               "pair = (np.ones(1_500_000), np.zeros(1_500_000))", ns,
               download="small", bytes=20 * MB)
    big = ns["big"]
    assert isinstance(big, RemoteObject)
    assert np.array_equal(big.fetch(), np.arange(4_000_000, dtype=np.float64))
    assert np.array_equal(big[:2_000_000], np.arange(2_000_000, dtype=np.float64))  # op reply
    total = big + np.ones(4_000_000)  # the argument goes up streamed; the result stays remote
    assert isinstance(total, RemoteObject)
    assert np.array_equal(total[:2_000_000], np.arange(1, 2_000_001, dtype=np.float64))
    ones, zeros = ns["pair"]  # two streamed frames in one reply
    assert ones.sum() == 1_500_000 and zeros.sum() == 0


def test_progress_bars_move_chunk_by_chunk_both_ways(network, capsys):
    target = network
    ns = {"payload": np.random.default_rng(2).random(200 * MB // 8)}
    with display.watching(relay=lambda m: None) as watch:
        target.run("back = payload + 0", ns, download="all", on_output=watch.on_output,
                   on_progress=watch.on_progress)
    assert np.array_equal(ns["back"], ns["payload"])
    for direction in ("upload", "download"):
        done = [n for d, n in watch.updates if d == direction]
        assert len(done) > 1, watch.updates
        assert done == sorted(done) and done[-1] > 200 * MB
    assert watch.bars == ["upload", "download"]
    err = capsys.readouterr().err
    assert "upload" in err and "download" in err and "200M/200M" in err


def test_an_upload_the_client_never_claims_is_dropped_by_its_next_request(target):
    conn = target.connection
    out = streaming.Outgoing(conn.key, [b"head", os.urandom(3 * protocol.STREAM_CHUNK)])
    for content, piece in list(out.chunks())[:2]:  # an upload interrupted after two chunks
        conn.session.send(conn.shell, protocol.CHUNK, dict(content, client=conn.client_secret),
                          buffers=[piece])
    client = conn.client_secret  # the engine keeps a client's chunks under its secret
    held = ("{k: v.received for k, v in get_ipython().kernel._remote_magics_engine"
            ".incoming.items() if v.transfer}")
    before = _engine_expression(conn, held)
    assert before.get(client) == 2 * protocol.STREAM_CHUNK
    target.info()  # any request of ours from this client
    assert client not in _engine_expression(conn, held)


def test_a_request_whose_upload_fails_its_digest_is_dropped_and_the_client_told(network,
                                                                               monkeypatch):
    target = network
    from remote_magics import ConnectionLost
    from remote_magics.client import connection as waiting

    monkeypatch.setattr(waiting, "REPLY_GRACE", 0.5)
    real = streaming.chunk_digest
    monkeypatch.setattr(streaming, "chunk_digest", lambda key, *args: real(key + b"?", *args))
    with pytest.raises(ConnectionLost, match="refused an upload.*digest"):
        target.run("n = len(blob)", {"blob": bytearray(2 * protocol.STREAM_CHUNK)}, download="all")
    monkeypatch.undo()
    assert target.run("n = len(blob)", {"blob": bytearray(2 * protocol.STREAM_CHUNK)},
                      download="all").values == {"n": 2 * protocol.STREAM_CHUNK}


def _engine_expression(conn, expression: str) -> dict:
    """Evaluate ``expression`` in the engine kernel (a plain execute_request, not one of ours)."""
    import ast

    reply = conn.request("execute_request", {
        "code": "", "silent": True, "store_history": False, "allow_stdin": False,
        "user_expressions": {"value": expression}}, timeout=30)
    value = reply.content["user_expressions"]["value"]
    assert value["status"] == "ok", value
    return ast.literal_eval(value["data"]["text/plain"])


# --- the client's side against a fake kernel ------------------------------------------------

@pytest.fixture
def fake_kernel():
    """A Connection to sockets we answer ourselves: connection, shell ROUTER, iopub, session."""
    from jupyter_client.session import Session

    with fake_kernel_sockets(b"the-key") as (conn, socks):
        yield conn, socks["shell"], socks["iopub"], Session(key=b"the-key")


def _request(shell, session) -> tuple:
    assert shell.poll(10_000)
    idents, parts = session.feed_identities(shell.recv_multipart())
    return idents, session.deserialize(parts)


def test_client_assembles_a_streamed_reply_and_reports_each_chunk(fake_kernel):
    conn, shell, iopub, session = fake_kernel
    value = os.urandom(3 * protocol.STREAM_CHUNK + 5)
    updates = []
    pending = conn.start(protocol.FETCH_REQUEST, {"id": "x"}, timeout=30,
                         on_progress=lambda *args: updates.append(args))
    idents, request = _request(shell, session)
    streaming.send(session, shell, protocol.FETCH_REPLY, {"status": "ok", "nframes": 2},
                   [b"head", value], session.key, parent=request, ident=idents)
    session.send(iopub, "status", {"execution_state": "idle"}, parent=request)
    reply = pending.wait()
    assert bytes(reply.frames[1]) == value and reply.bytes_received == len(value) + 4
    assert [done for _, done, _ in updates] == [protocol.STREAM_CHUNK * i for i in (1, 2, 3)] + [
        len(value), len(value) + 4]
    assert {direction for direction, _, _ in updates} == {"download"}


def test_client_fails_at_once_on_a_reply_whose_chunk_was_altered(fake_kernel, caplog):
    from remote_magics import ConnectionLost

    conn, shell, iopub, session = fake_kernel
    pending = conn.start(protocol.FETCH_REQUEST, {"id": "x"}, timeout=30)
    idents, request = _request(shell, session)
    out = streaming.Outgoing(session.key, [b"head", os.urandom(2 * protocol.STREAM_CHUNK + 1)])
    for i, (content, piece) in enumerate(out.chunks()):
        if i == 1:
            piece = bytes(piece[:-1]) + bytes([piece[-1] ^ 0xFF])  # (a "?" could be its own)
        session.send(shell, protocol.CHUNK, content, parent=request, ident=idents, buffers=[piece])
    session.send(shell, protocol.FETCH_REPLY, out.seal({"status": "ok", "nframes": 2}),
                 parent=request, ident=idents, buffers=out.frames)
    session.send(iopub, "status", {"execution_state": "idle"}, parent=request)
    with pytest.raises(ConnectionLost, match="arrived damaged"):
        pending.wait()
    assert "a chunk whose bytes fail their digest" in caplog.text


# --- same host: sealed shared-memory segments -------------------------------------------------

def _moved() -> dict:
    return dict(streaming.stats)


def _grew(before: dict, key: str) -> int:
    return streaming.stats[key] - before.get(key, 0)


def test_a_local_engine_and_its_client_agree_on_shared_memory_both_ways(target):
    conn = target.connection
    assert conn.shared_send and conn.shared_receive
    assert shared.probe_ok(shared.probe())
    offer = shared.probe()
    assert not shared.probe_ok(dict(offer, nonce="00" * 16))  # someone else's segment
    assert not shared.probe_ok(dict(offer, pid=2 ** 22 + 7))  # no such process here
    assert not shared.probe_ok(None)


def test_a_100_mb_array_goes_up_and_comes_back_by_shared_memory_writable_both_sides(shell, run):
    payload = np.random.default_rng(3).random(100 * MB // 8)
    shell.user_ns["payload"] = payload
    before = _moved()
    try:
        result = run("%%remote --download all --quiet\nback = payload\npayload[0] = -1.0\n"
                     "first = float(payload[0])")
        assert result.error_in_exec is None
        assert shell.user_ns["first"] == -1.0  # the engine's array is writable (copy on write)
        back = shell.user_ns["back"]
        # as in a plain cell: one object under both names, changed in place here too
        assert back is payload and back.flags.writeable and back[0] == -1.0
        back[1] = 7.0  # ours is writable too, and goes up as changed
        assert run("%%remote --download all --quiet\nsecond = float(back[1])"
                   ).error_in_exec is None
        assert shell.user_ns["second"] == 7.0
    finally:
        for name in ("payload", "back", "first", "second"):
            shell.user_ns.pop(name, None)
    assert _grew(before, "shared_sent") >= 2 * payload.nbytes  # payload, then back went up
    assert _grew(before, "shared_received") >= payload.nbytes  # back came down
    assert _grew(before, "streamed_sent") == _grew(before, "streamed_received") == 0


def test_fetch_of_a_big_value_maps_the_engines_segment_and_the_engine_then_closes_it(target):
    ns: dict = {}
    target.run("import numpy as np\nbig = np.arange(5_000_000, dtype=np.float64)", ns,
               download="none")
    before = _moved()
    value = ns["big"].fetch()
    assert np.array_equal(value, np.arange(5_000_000, dtype=np.float64))
    assert _grew(before, "shared_received") == value.nbytes
    held = "held = len(get_ipython().kernel._remote_magics_engine.shared.held)"
    assert target.run(held, {}, download="all").values["held"] == 0  # we said we took it
    ns.pop("big").release()


def test_a_view_of_a_proxied_array_comes_back_with_no_copy_made_at_the_engine(shell, run):
    """``y = big[:]``, ``big`` a proxy: the engine copied the view's 200 MB first (to write into
    a notebook array that is not there), so its peak memory grew by the payload and a 1 GB
    download ran at 200 MB/s on this VM, against 12 GB/s for ``big.fetch()`` of the same bytes."""
    peak = ("with open('/proc/self/status') as lines:\n"
            "    peak_mb = next(int(l.split()[1]) // 1024 for l in lines if l.startswith('VmHWM'))")
    try:
        assert run("%%remote --download none --quiet\nimport numpy as np\n"
                   "big = np.arange(25_000_000, dtype=np.float64)").error_in_exec is None
        assert run(f"%%remote --download all --quiet\n{peak}\n"
                   "open('/proc/self/clear_refs', 'w').write('5')").error_in_exec is None
        before = shell.user_ns["peak_mb"]  # its peak from here on is its resident memory now
        assert run("%%remote --download all --quiet\ny = big[1:]").error_in_exec is None
        y = shell.user_ns["y"]
        assert type(y) is np.ndarray and y.shape == (25_000_000 - 1,) and y[0] == 1.0
        assert y[-1] == 25_000_000 - 1 and y.flags.writeable
        assert run(f"%%remote --download all --quiet\n{peak}").error_in_exec is None
        assert shell.user_ns["peak_mb"] - before < 100  # the payload is 200 MB
    finally:
        for name in ("big", "y", "peak_mb"):
            shell.user_ns.pop(name, None)


def test_a_frame_larger_than_the_room_in_shared_memory_goes_by_the_network_path(
        target, monkeypatch):
    payload = np.random.default_rng(4).random(30 * MB // 8)
    monkeypatch.setenv(shared.SHARED_ENV, str(10 * MB))  # as a container's small /dev/shm
    before = _moved()
    ns = {"payload": payload, "small": np.ones(1_100_000)}  # 8.8 MB: past a chunk, it fits
    run = target.run("n = payload.size\nm = small.size", ns, download="all")
    assert run.values == {"n": payload.size, "m": 1_100_000}
    assert _grew(before, "streamed_sent") == payload.nbytes
    assert _grew(before, "shared_sent") == 8_800_000


def test_an_engine_that_cannot_use_shared_memory_works_by_the_network_path(shell, monkeypatch):
    import remote_magics

    monkeypatch.setenv(shared.SHARED_ENV, "0")  # the engine started now inherits it
    tgt = remote_magics.connect(name="no-shared-memory")
    try:
        monkeypatch.delenv(shared.SHARED_ENV)  # ours may: the engine's answer decides
        assert not tgt.connection.shared_send
        before = _moved()
        ns = {"payload": np.random.default_rng(5).random(20 * MB // 8)}
        run = tgt.run("back = payload * 2", ns, download="all")
        assert np.array_equal(run.values["back"], ns["payload"] * 2)
        # the network path: the engine's data port (chunks are its fallback)
        assert _grew(before, "ported_sent") == _grew(before, "ported_received") == 20 * MB
        assert _grew(before, "shared_sent") == _grew(before, "shared_received") == 0
    finally:
        remote_magics.disconnect("no-shared-memory")


def test_an_engine_with_less_room_than_a_reply_streams_it(shell, monkeypatch):
    import remote_magics

    monkeypatch.setenv(shared.SHARED_ENV, str(10 * MB))
    tgt = remote_magics.connect(name="small-shared-memory")
    try:
        monkeypatch.delenv(shared.SHARED_ENV)
        assert tgt.connection.shared_send and tgt.connection.shared_receive
        before = _moved()
        ns = {"payload": np.random.default_rng(6).random(20 * MB // 8)}
        run = tgt.run("back = payload + 1", ns, download="all")
        assert np.array_equal(run.values["back"], ns["payload"] + 1)
        assert _grew(before, "shared_sent") == 20 * MB  # up: our room is ample
        assert _grew(before, "streamed_received") == 20 * MB  # down: the engine's is not
    finally:
        remote_magics.disconnect("small-shared-memory")


# --- same host: buffers lent and copied out by the receiver (process_vm_readv) ---------------

ENGINE_LENDS = ("lent = len(get_ipython().kernel._remote_magics_engine.shared.lent)\n"
                "pulled = __import__('remote_magics.wire.streaming').wire.streaming"
                ".stats['shared_pulled']")


def test_a_local_engine_and_its_client_agree_to_copy_each_others_buffers_both_ways(target):
    conn = target.connection
    assert conn.lend_send and conn.pull_receive
    offer = shared.probe()
    assert shared.pull_ok(offer)
    assert not shared.pull_ok(dict(offer, nonce="00" * 16))  # other bytes at that address
    assert not shared.pull_ok(dict(offer, address=4096))  # nothing mapped there
    assert not shared.pull_ok(dict(offer, pid=2 ** 22 + 7))  # no such process here
    assert not shared.pull_ok({k: v for k, v in offer.items() if k != "address"})


def test_big_frames_are_copied_out_of_the_senders_memory_and_the_engine_takes_its_lends_back(
        target, monkeypatch):
    monkeypatch.setenv(shared.PULL_ENV, "1")  # pull even while other work keeps the cores busy
    payload = np.random.default_rng(7).random(40 * MB // 8)
    before = _moved()
    engine_before = target.run(ENGINE_LENDS, {}, download="all").values["pulled"]
    run = target.run("back = payload[::-1].copy()", {"payload": payload}, download="all")
    back = run.values["back"]
    assert np.array_equal(back, payload[::-1]) and back.flags.writeable
    assert _grew(before, "shared_lent") == payload.nbytes  # up: lent, copied by the engine
    assert _grew(before, "shared_pulled") == payload.nbytes  # down: copied by us
    assert _grew(before, "streamed_sent") == _grew(before, "streamed_received") == 0
    after = target.run(ENGINE_LENDS, {}, download="all").values
    assert after["pulled"] - engine_before == payload.nbytes
    assert after["lent"] == 0  # we said we were done: the engine took its buffer back


def test_with_pulls_turned_off_here_big_frames_go_in_sealed_segments(target, monkeypatch):
    monkeypatch.setenv(shared.PULL_ENV, "0")
    payload = np.random.default_rng(8).random(20 * MB // 8)
    before = _moved()
    run = target.run("back = payload + 1", {"payload": payload}, download="all")
    assert np.array_equal(run.values["back"], payload + 1)
    assert _grew(before, "shared_sent") == _grew(before, "shared_received") == payload.nbytes
    assert _grew(before, "shared_lent") == _grew(before, "shared_pulled") == 0


def test_an_engine_that_cannot_copy_our_memory_gets_sealed_segments(shell, monkeypatch):
    import remote_magics

    monkeypatch.setenv(shared.PULL_ENV, "0")  # the engine started now inherits it
    tgt = remote_magics.connect(name="no-pulls")
    try:
        monkeypatch.delenv(shared.PULL_ENV)
        conn = tgt.connection
        assert conn.shared_send and conn.shared_receive
        assert not conn.lend_send and not conn.pull_receive
        before = _moved()
        ns = {"payload": np.random.default_rng(9).random(20 * MB // 8)}
        run = tgt.run("back = payload * 2", ns, download="all")
        assert np.array_equal(run.values["back"], ns["payload"] * 2)
        assert _grew(before, "shared_sent") == _grew(before, "shared_received") == 20 * MB
        assert _grew(before, "shared_lent") == _grew(before, "shared_pulled") == 0
    finally:
        remote_magics.disconnect("no-pulls")


def test_a_client_pulls_uploads_always_and_replies_while_a_core_is_free(monkeypatch):
    assert shared.running_tasks() >= 1  # this test's own task at least
    cores = os.cpu_count() or 1
    monkeypatch.delenv(shared.PULL_ENV, raising=False)
    monkeypatch.setattr(shared, "running_tasks", lambda: cores + 1)  # every core busy
    assert not shared.pull_now(True), "a reply is sealed while every core is busy"
    assert shared.pull_now(False), "an upload is pulled whatever the load"
    monkeypatch.setattr(shared, "running_tasks", lambda: cores)  # no more than there are cores
    assert shared.pull_now(True) and shared.pull_now(False)
    monkeypatch.setattr(shared, "running_tasks", lambda: cores + 1)
    monkeypatch.setenv(shared.PULL_ENV, "1")
    assert shared.pull_now(True) and shared.pull_now(False)
    monkeypatch.setenv(shared.PULL_ENV, "0")
    assert not shared.pull_now(True) and not shared.pull_now(False)
    assert not shared.pull_supported()


def test_the_host_load_is_read_from_a_held_descriptor_that_survives_being_closed():
    def reference() -> int:
        with open("/proc/loadavg", "rb") as loadavg:
            return int(loadavg.read().split()[3].split(b"/")[0])

    first = shared.running_tasks()
    assert first >= 1 and abs(first - reference()) <= os.cpu_count() + 4  # the same count
    held = shared._loadavg_fd
    assert held >= 0 and shared.running_tasks() >= 1 and shared._loadavg_fd == held  # kept
    os.close(held)  # closed under it (a daemon closing every descriptor, say)
    assert shared.running_tasks() >= 1
    again = shared._loadavg_fd
    assert again >= 0 and os.readlink(f"/proc/self/fd/{again}") == "/proc/loadavg"
    with open(os.devnull, "rb") as foreign:  # its number taken by another file
        os.dup2(foreign.fileno(), again)
        assert shared.running_tasks() == 1 and shared._loadavg_fd == -1  # not trusted
        os.close(again)
    assert shared.running_tasks() >= 1 and shared._loadavg_fd >= 0


def test_a_message_looks_up_whether_it_may_lend_at_its_first_big_frame_only(monkeypatch):
    """Most messages have no big frame: placing one costs no look-up (a null cell's time)."""
    asked = []
    real = shared.pull_supported
    monkeypatch.setattr(shared, "pull_supported", lambda: asked.append(1) or real())
    segments = shared.Shared()
    frame = memoryview(bytes(4096))
    try:
        lending = shared.Lending(segments, True)
        assert not asked
        assert lending.put(frame) in segments.lent and len(asked) == 1  # asked at the frame
        assert shared.Lending(segments, False).put(frame) not in segments.lent  # not agreed
        monkeypatch.setenv(shared.PULL_ENV, "0")
        assert shared.Lending(segments, True).put(frame) not in segments.lent  # off here
    finally:
        segments.close()


def test_a_lend_nobody_reads_is_taken_back_at_its_timeout_and_a_declined_one_at_once():
    segments = shared.Shared()
    lending = shared.Lending(segments)
    view = memoryview(bytes(range(256)) * 40_000)
    ref = lending.put(view)
    assert ref in segments.lent
    assert not lending.wait(timeout=0.2)  # nobody said done: taken back all the same
    assert not segments.lent and not segments.held
    ref = lending.put(view)
    content = {"shared": lending.listing([[1, ref, view.nbytes]])}
    shared.decline(content, os.getpid() + 1)  # not the lender we agreed on: nothing said
    assert not lending.wait(timeout=0.2)
    ref = lending.put(view)
    content = {"shared": lending.listing([[1, ref, view.nbytes]])}
    shared.decline(content, os.getpid())  # a reply nobody waits for any more
    assert lending.wait(timeout=30.0)  # returns at once: the reader said it will not read
    assert not segments.lent


# --- the digest of big frames: AES-GMAC or keyed BLAKE3 when both sides have it -------------

def test_a_gmac_digest_is_keyed_bound_to_lengths_and_nonce_and_checked_by_its_prefix(
        monkeypatch):
    frames = [b"head", os.urandom(3 * MB)]
    gm = protocol.frames_digest(KEY, frames, protocol.GMAC)
    again = protocol.frames_digest(KEY, frames, protocol.GMAC)
    assert gm.startswith("gm:") and again.startswith("gm:") and gm != again  # a nonce each
    assert protocol.digest_ok(KEY, frames, gm) and protocol.digest_ok(KEY, frames, again)
    assert not protocol.digest_ok(b"another key", frames, gm)
    tampered = [b"head", frames[1][:MB] + bytes([frames[1][MB] ^ 1]) + frames[1][MB + 1:]]
    assert not protocol.digest_ok(KEY, tampered, gm)
    assert not protocol.digest_ok(KEY, [b"hea", b"d" + frames[1]], gm)  # re-split frames
    nonce = gm[3:27]
    other = nonce[:-1] + ("0" if nonce[-1] != "0" else "1")
    assert not protocol.digest_ok(KEY, frames, "gm:" + other + gm[27:])  # another nonce
    for garbage in ("gm:", "gm:zz", gm[:-2], gm + "00", gm.upper()):
        assert not protocol.digest_ok(KEY, frames, garbage)
    small = [b"head", b"x" * 100]  # below GMAC_MIN_BYTES: the HMAC, which is faster there
    assert protocol.frames_digest(KEY, small, protocol.GMAC) == protocol.frames_digest(KEY, small)
    monkeypatch.setattr(protocol, "_gcm_module", lambda: None)  # a kernel without cryptography
    assert protocol.GMAC not in protocol.digest_schemes()
    assert protocol.agreed_scheme([protocol.GMAC, protocol.HMAC_SHA256]) == protocol.HMAC_SHA256
    assert not protocol.digest_ok(KEY, frames, gm)  # it cannot check one: never accepted


def test_a_blake3_digest_is_keyed_bound_to_lengths_and_checked_by_its_prefix(monkeypatch):
    frames = [b"head", os.urandom(3 * MB)]
    b3 = protocol.frames_digest(KEY, frames, protocol.BLAKE3)
    assert b3.startswith("b3:") and b3 != protocol.frames_digest(KEY, frames)
    assert protocol.digest_ok(KEY, frames, b3)
    assert protocol.digest_ok(KEY, frames, protocol.frames_digest(KEY, frames))  # HMAC still
    assert not protocol.digest_ok(b"another key", frames, b3)
    tampered = [b"head", bytes([frames[1][0] ^ 1]) + frames[1][1:]]
    assert not protocol.digest_ok(KEY, tampered, b3)
    assert not protocol.digest_ok(KEY, [b"hea", b"d" + frames[1]], b3)  # re-split frames
    monkeypatch.setattr(protocol, "_blake3_module", lambda: None)  # a kernel without blake3
    monkeypatch.setattr(protocol, "_gcm_module", lambda: None)  # nor cryptography
    assert protocol.digest_schemes() == [protocol.HMAC_SHA256]
    assert protocol.agreed_scheme([protocol.BLAKE3, protocol.HMAC_SHA256]) == protocol.HMAC_SHA256
    assert not protocol.digest_ok(KEY, frames, b3)  # it cannot check one: never accepted


def test_chunks_to_and_from_the_engine_carry_gmac_digests(network, monkeypatch):
    assert network.connection.digest == protocol.GMAC  # both sides have cryptography
    made = []
    real = streaming.chunk_digest

    def spy(key, *args):
        made.append(real(key, *args))
        return made[-1]
    monkeypatch.setattr(streaming, "chunk_digest", spy)
    ns = {"payload": np.random.default_rng(9).random(20 * MB // 8)}
    run = network.run("back = payload - 1", ns, download="all")
    assert np.array_equal(run.values["back"], ns["payload"] - 1)
    assert made and all(digest.startswith("gm:") for digest in made)


@pytest.mark.parametrize("lacking, agreed", [
    (("cryptography",), protocol.BLAKE3),
    (("cryptography", "blake3"), protocol.HMAC_SHA256),
])
def test_an_engine_without_the_faster_macs_agrees_on_the_next_and_big_frames_still_go(
        shell, monkeypatch, tmp_path, lacking, agreed):
    import remote_magics

    for package in lacking:
        (tmp_path / f"{package}.py").write_text(f"raise ImportError('no {package} here')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    tgt = remote_magics.connect(name="no-fast-mac")
    try:
        monkeypatch.undo()
        assert tgt.run(f"import sys\nthere = [p for p in {list(lacking)} if p in sys.modules]",
                       {}, download="all").values["there"] == []
        assert tgt.connection.digest == agreed
        from tests.conftest import network_path

        for port in (False, True):  # streamed chunks on the shell, and the data port
            with network_path(tgt, port=port):
                ns = {"payload": np.random.default_rng(10).random(20 * MB // 8)}
                run = tgt.run("back = payload * 2", ns, download="all")
            assert np.array_equal(run.values["back"], ns["payload"] * 2)
    finally:
        remote_magics.disconnect("no-fast-mac")
