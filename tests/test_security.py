"""Attacks on real sockets on loopback: replayed messages, one client against another, Curve strangers.

A replay is a message captured on the way and sent again byte for byte (no key needed); the
second client holds the kernel's key and sees everything on iopub; the Curve stranger has the
served engine's public key (it is in the URL) and a key pair of its own.
"""
from __future__ import annotations

import fcntl
import logging
import mmap
import os
import time

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

import remote_magics
from remote_magics import channels, jobs
from remote_magics.client.connection import Connection
from remote_magics.engine import curve
from remote_magics.targets import served
from remote_magics.wire import protocol, serialize, shared, streaming
from tests.conftest import fake_kernel_sockets, network_path
from tests.test_serve import curve_engine  # noqa: F401 - a served engine of this module's own
from tests.test_targets import _plain_kernel

MB = 1 << 20


@pytest.fixture(scope="module")
def owned(shell):
    """An engine we start: our requests take the engine's own fast dispatch."""
    target = remote_magics.connect(name="security")
    with network_path(target):  # these tests watch the chunks of the network path
        yield target
    jobs.shutdown(target)
    remote_magics.disconnect("security")


@pytest.fixture(scope="module")
def attached(shell):
    """A plain ipykernel with the engine installed: our requests take ipykernel's dispatch."""
    km = _plain_kernel()
    target = remote_magics.connect(km.connection_file, name="security-attached")
    yield target
    remote_magics.disconnect("security-attached")
    km.shutdown_kernel(now=True)
    km.cleanup_resources()


@pytest.fixture
def capture(monkeypatch):
    """``capture(conn)``: from then on, the exact frames of every message ``conn`` sends, as an
    eavesdropper on the wire would record them: [(msg_type, frames)]."""
    def start(conn: Connection) -> list:
        sent = []
        real = conn.session.serialize

        def spy(msg, ident=None):
            frames = real(msg, ident)  # Session.send appends the buffers to this very list
            sent.append((msg["header"]["msg_type"], frames))
            return frames
        monkeypatch.setattr(conn.session, "serialize", spy)
        return sent
    return start


def _counter_cell(path) -> str:
    return f"with open({str(path)!r}, 'a') as out:\n    out.write('x')\nn = len(blob)"


def _raw_messages(sock: zmq.Socket, until: float) -> list[list[bytes]]:
    """Every multipart message ``sock`` receives until ``until`` (time.monotonic())."""
    got = []
    while (left := until - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            got.append(sock.recv_multipart())
    return got


# --- 1. replay ----------------------------------------------------------------------------------

def test_a_replayed_run_request_with_its_streamed_chunks_runs_once_and_gets_no_reply(
        owned, capture, tmp_path):
    """A run with a streamed upload, captured, is sent again from another socket byte for byte."""
    conn = owned.connection
    counter = tmp_path / "counter"
    refused = "refused = get_ipython().kernel._remote_magics_engine.history.refused"
    before = owned.run(refused, {}, download="all").values["refused"]
    sent = capture(conn)
    run = owned.run(_counter_cell(counter), {"blob": bytes(2 * protocol.STREAM_CHUNK + 1)},
                    download="all")
    assert run.values["n"] == 2 * protocol.STREAM_CHUNK + 1 and counter.read_text() == "x"
    replayed = sent[:[kind for kind, _ in sent].index(protocol.RUN_REQUEST) + 1]  # then releases
    assert [kind for kind, _ in replayed] == [protocol.CHUNK] * 3 + [protocol.RUN_REQUEST]
    request_id = conn.session.unpack(replayed[-1][1][2])["msg_id"]

    attacker = conn.context.socket(zmq.DEALER)  # no key: it only resends what it saw
    attacker.linger = 0
    attacker.connect(f"tcp://127.0.0.1:{conn.info['shell_port']}")
    try:
        for _, frames in replayed:
            attacker.send_multipart(frames)
        # the engine drops the replayed request with an idle status for it (as for any request
        # it drops), so that a client waiting on it would not wait for ever
        dropped = False
        deadline = time.monotonic() + 60
        while not dropped and time.monotonic() < deadline:
            if conn.iopub.poll(500):
                msg = conn._recv(conn.iopub)
                dropped = (msg is not None and msg["msg_type"] == "status"
                           and msg["parent_header"].get("msg_id") == request_id)
        assert dropped, "the engine never dropped the replayed request"
        assert not attacker.poll(1000), "the replay got a reply"
    finally:
        attacker.close(0)
    assert counter.read_text() == "x"
    after = owned.run(refused, {}, download="all").values["refused"]
    assert after - before == len(replayed)  # every chunk and the request


@pytest.mark.parametrize("which", ["owned", "attached"])
def test_a_request_resent_byte_for_byte_on_its_own_socket_runs_once(which, owned, attached,
                                                                    capture, tmp_path):
    """Our dispatch (owned) and ipykernel's (attached) both accept a request once only."""
    target = owned if which == "owned" else attached
    conn = target.connection
    counter = tmp_path / "counter"
    sent = capture(conn)
    target.run(_counter_cell(counter), {"blob": b"12345"}, download="all")
    frames = next(frames for kind, frames in sent if kind == protocol.RUN_REQUEST)
    assert counter.read_text() == "x"
    first = conn.session.unpack(frames[2])["msg_id"]
    conn.shell.send_multipart(frames)  # on the same socket, so it is handled before the next
    follow = conn.send(protocol.INFO_REQUEST, {})
    parents = []
    deadline = time.monotonic() + 60
    while follow not in parents and time.monotonic() < deadline:
        if conn.shell.poll(500):
            msg = conn._recv(conn.shell)
            parents.append(msg["parent_header"].get("msg_id") if msg else None)
    assert follow in parents
    assert first not in parents  # no second reply
    assert counter.read_text() == "x"  # the cell ran once


def test_a_replayed_channel_message_on_control_is_delivered_once(owned, capture):
    conn = owned.connection
    ch = channels.Channel(owned)
    sent = capture(conn)
    ch.send("first")
    frames = next(frames for kind, frames in sent if kind == protocol.CHANNEL_SEND)
    conn.control.send_multipart(frames)  # replayed, before the next one on the same socket
    ch.send("second")
    run = owned.run("got = []\nwhile not got or got[-1] != 'second':\n"
                    "    got.append(ch.receive(30))", {"ch": ch}, download="all")
    assert run.values["got"] == ["first", "second"]


def test_client_drops_a_chunk_and_output_that_come_twice(caplog):
    """A fake kernel on loopback sends a download's first chunk, and an output, twice."""
    from jupyter_client.session import Session

    session = Session(key=b"the-key")
    with fake_kernel_sockets(b"the-key") as (conn, socks):
        caplog.set_level("WARNING", logger="remote_magics.client.connection")
        outputs = []
        pending = conn.start(protocol.FETCH_REQUEST, {"id": "x"}, timeout=30,
                             on_output=outputs.append)
        assert socks["shell"].poll(10_000)
        idents, parts = session.feed_identities(socks["shell"].recv_multipart())
        request = session.deserialize(parts)
        value = bytes(range(256)) * (3 * protocol.STREAM_CHUNK // 256)
        out = streaming.Outgoing(session.key, [b"head", value])
        for i, (content, piece) in enumerate(out.chunks()):
            chunk = session.msg(protocol.CHUNK, content, parent=request)
            for _ in range(2 if i == 0 else 1):  # the same bytes again
                session.send(socks["shell"], chunk, ident=idents, buffers=[piece])
        printed = session.msg("stream", {"name": "stdout", "text": "once\n"}, parent=request)
        for _ in range(2):
            session.send(socks["iopub"], printed)
        session.send(socks["shell"], protocol.FETCH_REPLY,
                     out.seal({"status": "ok", "nframes": 2}), parent=request, ident=idents,
                     buffers=out.frames)
        session.send(socks["iopub"], protocol.OUTPUT_DONE, {}, parent=request)
        reply = pending.wait()
        assert bytes(reply.frames[1]) == value  # the duplicate did not break the transfer
        assert [m["content"]["text"] for m in outputs] == ["once\n"]
        assert caplog.text.count("a replay") == 2


def test_replay_history_forgets_the_oldest_first_and_counts_refusals():
    history = protocol.SignatureHistory(size=3)
    assert all(history.accept(s) for s in (b"a", b"b", b"c"))
    assert not history.accept(b"a") and history.refused == 1
    assert history.accept(b"d")  # "a" is forgotten now, and only "a"
    assert not history.accept(b"b") and not history.accept(b"d")
    assert history.accept(b"a") and len(history) == 3


def test_frames_that_are_not_a_jupyter_message_are_dropped_without_a_word_in_the_next_cell(
        shell, capfd):
    """A stray ``ping`` (a heartbeat socket of a kernel that was on this port before) or junk
    without Jupyter's delimiter: ipykernel let its ValueError reach the event loop, whose
    traceback came out of the engine's stderr into a notebook cell (seen in test_differential
    when two files ran side by side)."""
    target = remote_magics.connect(name="stray")  # started now: its stderr is captured
    try:
        conn = target.connection
        stray = conn.context.socket(zmq.DEALER)
        stray.linger = 0
        try:
            for port in ("shell_port", "control_port"):
                stray.connect(f"tcp://127.0.0.1:{conn.info[port]}")
                stray.send(b"ping")
                stray.send_multipart([b"junk", b"more junk"])
            time.sleep(0.5)  # handled before the next request, on both channels
        finally:
            stray.close(0)
        shown: list[dict] = []
        target.run("print('after')", {}, on_output=shown.append)
    finally:
        remote_magics.disconnect("stray")
    text = "".join(m["content"].get("text", "") for m in shown)
    assert text == "after\n", text  # the engine goes on
    engine_stderr = capfd.readouterr().err
    assert "Traceback" not in engine_stderr and "DELIM" not in engine_stderr, engine_stderr


# --- 2. one client against another -------------------------------------------------------------

def test_a_second_client_with_the_key_and_everything_on_iopub_cannot_touch_the_first_ones(owned):
    first = owned.connection
    eve = Connection(first.info, name="eve")  # holds the key: a client of the same engine
    try:
        assert eve.wait_ready(30)
        # the first client works: a proxy, output, a streamed upload, a live operation, a channel
        mine = owned.run("mine = [1, 2, 3]\nprint('hello from the first client')", {},
                         download="none").values["mine"]
        owned.run("n = len(blob)", {"blob": bytes(protocol.STREAM_CHUNK + 1)}, download="all")
        assert len(mine) == 3
        ch = channels.Channel(owned)
        job_names = {"ch": ch}
        job = jobs.submit(owned, "ch.send('ready')\ngot = ch.receive(60)", job_names,
                          download="all")
        assert ch.receive(60) == "ready"

        seen = _raw_messages(eve.iopub, time.monotonic() + 1.0)
        wire = b"".join(frame for msg in seen for frame in msg)
        assert first.client_secret.encode() not in wire  # the secret never shows on iopub
        parsed = [protocol.unpack_message(eve.session, eve.session.feed_identities(m)[1])
                  for m in seen]
        sessions = {m["parent_header"].get("session") for m in parsed} - {None, eve.session.session}
        assert sessions == {first.session.session}  # what iopub does show: the session id
        channel_ids = {m["content"]["channel"] for m in parsed
                       if m["msg_type"] == protocol.CHANNEL_DATA}
        assert channel_ids == {ch.id}
        eve.session.session = first.session.session  # copied

        # the cell holds the shell while it waits on its channel: meanwhile, on control
        evil = serialize.dumps("evil")
        eve.send(protocol.CHANNEL_SEND, {"channel": ch.id, "nframes": len(evil)}, evil,
                 channel="control")
        eve.send(protocol.CHANNEL_CLOSE, {"channel": ch.id}, channel="control")
        eve.send("kernel_info_request", {}, channel="control")  # answered after the two above
        assert eve.control.poll(30_000)
        ch.send("good")
        job.result(60)
        assert job_names["got"] == "good"  # neither the intruder's object nor an EOF

        fetch = eve.request(protocol.FETCH_REQUEST, {"id": mine._id}, timeout=30)
        assert fetch.content["status"] == "error" and "not held" in fetch.content["evalue"]
        op = eve.request(protocol.OP_REQUEST, {"id": mine._id, "op": "len", "nframes": 0},
                         timeout=30)
        assert op.content["status"] == "error" and "not held" in op.content["evalue"]
        item = serialize.dumps(mine)
        use = eve.request(protocol.RUN_REQUEST, {
            "code": "x = leaked", "inputs": [{"name": "leaked", "nframes": len(item)}],
            "outputs": ["x"], "download": "all", "bytes": MB}, item, timeout=30)
        assert use.content["status"] == "error" and "not held" in use.content["evalue"]
        release = eve.request(protocol.RELEASE_REQUEST, {"ids": [mine._id] * 3, "all": True},
                              timeout=30)
        assert release.content["released"] == 0
        assert eve.request(protocol.INFO_REQUEST, {}, timeout=30).content["objects"] == 0

        assert mine.fetch() == [1, 2, 3] and len(mine) == 3  # still held, still usable
        assert owned.run("y = mine + [4]", {"mine": mine}, download="all").values["y"] == [
            1, 2, 3, 4]
    finally:
        eve.close()


# --- 3. Curve: only clients that hold the URL's key get in --------------------------------------

def _stranger(context: zmq.Context, kind: int, info: dict,
              port: str) -> tuple[zmq.Socket, zmq.Socket]:
    """A socket with the server's public key and a key pair of its own, and its monitor."""
    sock = context.socket(kind)
    sock.linger = 0
    sock.curve_serverkey = info["curve_publickey"].encode()
    sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
    if kind == zmq.SUB:
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    monitor = sock.get_monitor_socket()
    sock.connect(f"tcp://{info['ip']}:{info[port]}")
    return sock, monitor


def _refused_by_zap(monitor: zmq.Socket, timeout: float = 30) -> bool:
    """Whether the monitored socket's handshake fails on the engine's authentication (ZAP 400)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not monitor.poll(int(left * 1000) + 1):
            break
        event = recv_monitor_message(monitor)
        if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            return False
        if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            return event["value"] == 400
    return False


def test_curve_stranger_with_the_public_key_reads_no_output_while_a_client_works(curve_engine):
    info = served.parse_url(curve_engine.url)
    context = zmq.Context()
    sub, monitor = _stranger(context, zmq.SUB, info, "iopub_port")
    try:
        assert _refused_by_zap(monitor)
        target = remote_magics.connect(curve_engine.url, name="curve-client", timeout=60)
        try:
            printed = []
            run = target.run("print('for the client only')\nanswer = 42", {}, download="all",
                             on_output=printed.append)
            assert run.values["answer"] == 42
            assert any("for the client only" in m["content"].get("text", "") for m in printed)
        finally:
            remote_magics.disconnect("curve-client")
        assert not sub.poll(500), "the stranger received iopub messages"
    finally:
        context.destroy(linger=0)


def test_curve_stranger_cannot_run_anything_or_reach_any_socket(curve_engine, tmp_path):
    from jupyter_client.session import Session

    info = served.parse_url(curve_engine.url)
    marker = tmp_path / "ran"
    context = zmq.Context()
    shell, shell_monitor = _stranger(context, zmq.DEALER, info, "shell_port")
    others = [_stranger(context, zmq.DEALER, info, port)
              for port in ("control_port", "stdin_port", "hb_port")]
    try:
        session = Session(key=info["key"].encode())  # it even has the HMAC key
        content = {"code": f"open({str(marker)!r}, 'w').close()", "inputs": [], "outputs": [],
                   "client": "stranger", "digest": protocol.frames_digest(session.key, [])}
        session.send(shell, protocol.RUN_REQUEST, content)
        others[-1][0].send(b"ping")
        assert _refused_by_zap(shell_monitor)
        assert all(_refused_by_zap(monitor) for _, monitor in others)
        assert not shell.poll(200) and not others[-1][0].poll(200)  # no reply, no heartbeat
        target = remote_magics.connect(curve_engine.url, name="curve-after", timeout=60)
        try:
            assert target.run("ok = 1", {}, download="all").values == {"ok": 1}
        finally:
            remote_magics.disconnect("curve-after")
        assert not marker.exists()
    finally:
        context.destroy(linger=0)


def test_curve_client_keys_come_from_the_url_key_alone():
    public, secret = curve.client_keys(b"the-key")
    assert (public, secret) == curve.client_keys(b"the-key")
    assert zmq.curve_public(secret) == public and len(public) == 40
    assert curve.client_keys(b"another-key")[0] != public


# --- 5. same host: shared-memory segments -------------------------------------------------------

def test_a_sent_segment_is_sealed_so_no_process_can_change_grow_or_shrink_it():
    """Tampering with a segment is impossible, not detected: the kernel refuses every change
    once it is sealed, before the message naming it leaves (so no digest over its bytes)."""
    segments = shared.Shared()
    fd = segments.put(memoryview(bytes(range(256)) * 40_000))
    try:
        assert fd is not None
        for flags in (os.O_RDWR, os.O_WRONLY):  # what another process of ours could open
            other = os.open(f"/proc/{os.getpid()}/fd/{fd}", flags)
            try:
                with pytest.raises(PermissionError):
                    os.pwrite(other, b"tampered", 0)
                with pytest.raises(PermissionError):
                    os.ftruncate(other, 10)  # a shrunk mapping would crash the receiver
                with pytest.raises(PermissionError):
                    os.ftruncate(other, 20_000_000)
            finally:
                os.close(other)
        with pytest.raises(PermissionError):
            mmap.mmap(fd, 10_240_000, flags=mmap.MAP_SHARED)  # no writable mapping either
        view = shared.open_shared(os.getpid(), fd, 10_240_000)
        assert bytes(view[:256]) == bytes(range(256))
    finally:
        segments.close()
    assert not segments.held


def test_a_segment_not_sealed_or_of_another_size_is_refused_by_the_receiver():
    fd = os.memfd_create("unsealed", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.write(fd, b"x" * 4096)
        with pytest.raises(streaming.StreamError, match="not sealed"):
            shared.open_shared(os.getpid(), fd, 4096)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW)
        with pytest.raises(streaming.StreamError, match="does not hold"):
            shared.open_shared(os.getpid(), fd, 8192)
        assert bytes(shared.open_shared(os.getpid(), fd, 4096)) == b"x" * 4096
    finally:
        os.close(fd)
    plain = os.open(os.devnull, os.O_RDONLY)  # a file that is no segment at all
    try:
        with pytest.raises(streaming.StreamError, match="not sealed"):
            shared.open_shared(os.getpid(), plain, 0)
    finally:
        os.close(plain)


def test_an_upload_in_a_segment_that_could_still_change_is_refused_and_nothing_runs(
        target, monkeypatch, tmp_path):
    """A client whose segment is not write-sealed (it could be changed after it was signed
    for): the engine drops the request, and the cell does not run."""
    from remote_magics import ConnectionLost, RemoteMagicsError
    from remote_magics.client import connection as waiting

    assert target.connection.shared_send
    monkeypatch.setattr(waiting, "REPLY_GRACE", 0.5)
    monkeypatch.setattr(shared, "_SEALS", fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    monkeypatch.setenv(shared.PULL_ENV, "0")  # a segment, not a buffer lent to be pulled
    counter = tmp_path / "counter"
    before = dict(streaming.stats)
    with pytest.raises((ConnectionLost, RemoteMagicsError)):
        target.run(_counter_cell(counter), {"blob": bytes(2 * protocol.STREAM_CHUNK)},
                   download="all")
    assert streaming.stats["shared_sent"] - before.get("shared_sent", 0) > 2 * protocol.STREAM_CHUNK
    assert not counter.exists()
    monkeypatch.undo()
    run = target.run(_counter_cell(counter), {"blob": bytes(2 * protocol.STREAM_CHUNK)},
                     download="all")
    assert run.values["n"] == 2 * protocol.STREAM_CHUNK and counter.read_text() == "x"


def _lent(payload: bytes) -> tuple[shared.Shared, dict]:
    """A buffer of ours lent as a message would name it: (its holder, the message's content)."""
    segments = shared.Shared()
    lending = shared.Lending(segments)
    ref = lending.put(memoryview(payload))
    assert ref in segments.lent
    return segments, {"shared": lending.listing([[1, ref, len(payload)]])}


def test_a_lent_buffer_is_copied_only_while_its_lease_stands():
    """A reader copies first and then checks the lease the lender ends before it lets the
    buffer go: bytes copied from memory taken back (maybe reused) are never used."""
    payload = os.urandom(3 * MB)
    segments, content = _lent(payload)
    frames = shared.attach_shared(content, [b"head", b""], os.getpid())
    assert bytes(frames[1]) == payload and not frames[1].readonly
    segments.close()  # taken back: its lease ends
    with pytest.raises(streaming.StreamError, match="taken back"):
        shared.attach_shared(content, [b"head", b""], os.getpid())


def test_a_lent_buffer_named_wrongly_is_refused():
    payload = os.urandom(3 * MB)
    segments, content = _lent(payload)
    pid, ((index, ref, nbytes, address, lease, token, done),) = (content["shared"]["pid"],
                                                                  content["shared"]["lent"])
    try:
        def named(**change) -> dict:
            entry = {**dict(index=index, ref=ref, nbytes=nbytes, address=address, lease=lease,
                            token=token, done=done), **change}
            return {"shared": {"pid": change.get("pid", pid), "frames": [],
                               "lent": [[entry[k] for k in ("index", "ref", "nbytes", "address",
                                                              "lease", "token", "done")]]}}

        ours = os.getpid()
        with pytest.raises(streaming.StreamError, match="taken back"):  # another lend's token
            shared.attach_shared(named(token="00" * 16), [b"head", b""], ours)
        with pytest.raises(streaming.StreamError, match="cannot be read"):  # nothing there
            shared.attach_shared(named(address=4096), [b"head", b""], ours)
        with pytest.raises(streaming.StreamError, match="cannot be read"):  # no such process
            shared.attach_shared(named(pid=2 ** 22 + 7), [b"head", b""], shared.ANY_LENDER)
        with pytest.raises(streaming.StreamError, match="never agreed"):  # not our peer's
            shared.attach_shared(named(), [b"head", b""], ours + 1)
        with pytest.raises(streaming.StreamError, match="never agreed"):  # lends not agreed
            shared.attach_shared(named(), [b"head", b""])
        with pytest.raises(streaming.StreamError, match="no place"):  # a frame with bytes
            shared.attach_shared(named(), [b"head", b"x"], ours)
        with pytest.raises(streaming.StreamError, match="not listed right"):
            shared.attach_shared(named(token="not hex"), [b"head", b""], ours)
        assert bytes(shared.attach_shared(named(), [b"head", b""], ours)[1]) == payload
    finally:
        segments.close()


def test_a_message_whose_lent_buffer_was_renamed_on_the_way_fails_its_digest():
    key = b"k" * 32
    segments = shared.Shared()
    try:
        out = streaming.Outgoing(key, [b"head", os.urandom(3 * protocol.STREAM_CHUNK)],
                                 shared=shared.Lending(segments))
        content = out.seal({})
        assert content["shared"]["lent"] and streaming.message_ok(key, content, out.frames)
        moved = {**content, "shared": {**content["shared"], "lent": [
            [*entry[:3], entry[3] + 4096, *entry[4:]] for entry in content["shared"]["lent"]]}}
        assert not streaming.message_ok(key, moved, out.frames)
    finally:
        segments.close()


def test_an_upload_lent_and_taken_back_before_the_engine_copied_it_is_refused_and_nothing_runs(
        target, monkeypatch, tmp_path):
    """A lend whose lease ended before the engine's copy (the notebook took its buffer back):
    the engine drops the request, and the cell does not run."""
    from remote_magics import ConnectionLost, RemoteMagicsError
    from remote_magics.client import connection as waiting

    assert target.connection.lend_send
    monkeypatch.setattr(waiting, "REPLY_GRACE", 0.5)
    monkeypatch.setenv(shared.PULL_ENV, "1")  # lent even while the cores are busy
    real = shared.Shared.listing

    def ended(self, placed):  # named in the message, then its lease ends at once
        field = real(self, placed)
        for ref in list(self.lent):
            self.lent[ref].end()
            del self.lent[ref], self.held[ref]
        return field

    monkeypatch.setattr(shared.Shared, "listing", ended)
    counter = tmp_path / "counter"
    before = dict(streaming.stats)
    with pytest.raises((ConnectionLost, RemoteMagicsError)):
        target.run(_counter_cell(counter), {"blob": bytes(2 * protocol.STREAM_CHUNK)},
                   download="all")
    assert streaming.stats["shared_lent"] - before.get("shared_lent", 0) > 2 * protocol.STREAM_CHUNK
    assert not counter.exists()
    monkeypatch.undo()
    run = target.run(_counter_cell(counter), {"blob": bytes(2 * protocol.STREAM_CHUNK)},
                     download="all")
    assert run.values["n"] == 2 * protocol.STREAM_CHUNK and counter.read_text() == "x"


def test_a_fifo_named_as_a_segment_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # ours open: /proc/self/fd/N names it
    try:
        with pytest.raises(streaming.StreamError, match="not sealed"):
            shared.open_shared(os.getpid(), fd, 4096)
    finally:
        os.close(fd)


def test_a_tampered_channel_message_from_the_engine_is_dropped(shell):
    """Each message of a same-host channel comes once as sent and three times altered on the
    way (a frame's bytes, the segment it names, the process that holds it): only the true one
    is delivered."""
    target = remote_magics.connect(name="security-channel")
    try:
        ch = channels.Channel(target)
        real = ch._deliver
        altered = []

        def tampering(msg, conn):
            content, buffers = msg["content"], list(msg["buffers"])
            flipped = bytearray(buffers[0])
            flipped[-2] ^= 1
            other_fd = {**content["shared"],
                        "frames": [[i, fd + 1, n] for i, fd, n in content["shared"]["frames"]]}
            for fake in ({**msg, "buffers": [bytes(flipped), *buffers[1:]]},
                         {**msg, "content": {**content, "shared": other_fd}},
                         {**msg, "content": {**content, "shared": {**content["shared"],
                                                                   "pid": os.getpid()}}}):
                altered.append(fake)
                real(fake, conn)
            real(msg, conn)
        ch._deliver = tampering
        job = jobs.submit(target, "import numpy as np\nch.send(np.arange(2_000_000))",
                          {"ch": ch})
        got = list(ch)
        job.result(60)
        assert len(altered) == 3 and ch.received == 1
        assert len(got) == 1 and got[0].tolist() == list(range(2_000_000))
    finally:
        jobs.shutdown(target)
        remote_magics.disconnect("security-channel")


def test_a_channel_message_whose_data_port_bytes_fail_their_digest_is_dropped(shell, caplog):
    """Across hosts a remote cell's big channel frames come by the data port: one whose bytes
    do not match the digest its signed message names (altered on the way) is refused, and the
    next message still arrives whole."""
    target = remote_magics.connect(name="security-channel-port")
    try:
        with network_path(target, port=True):
            ch = channels.Channel(target)
            real = ch._deliver
            refused = []

            def tampering(msg, conn):
                content = msg["content"]
                if content.get("ported") and not refused:  # the first: its bytes "altered"
                    digest = content["ported"]["digest"]
                    forged = digest[:-1] + ("0" if digest[-1] != "0" else "1")
                    msg = {**msg, "content": {**content,
                                              "ported": {**content["ported"], "digest": forged}}}
                    refused.append(msg)
                real(msg, conn)
            ch._deliver = tampering
            with caplog.at_level(logging.ERROR, logger="remote_magics.channels"):
                job = jobs.submit(target, "import numpy as np\nch.send(np.zeros(2_000_000))\n"
                                          "ch.send(np.arange(2_000_000))", {"ch": ch})
                got = list(ch)
                job.result(60)
        assert len(refused) == 1 and "digest" in caplog.text
        assert len(got) == 1 and got[0].tolist() == list(range(2_000_000))
    finally:
        jobs.shutdown(target)
        remote_magics.disconnect("security-channel-port")
