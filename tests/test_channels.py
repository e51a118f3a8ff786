"""Channels: objects streamed between the notebook and a running remote cell, both ways."""
from __future__ import annotations

import contextlib
import os
import threading
import time

import numpy as np
import pytest

import remote_magics
from remote_magics import RemoteError, channels, jobs
from remote_magics.wire import protocol, shared, streaming
from tests.conftest import network_path


@pytest.fixture(scope="module")
def stream(shell):
    """A kernel of this module's own for the streaming tests."""
    target = remote_magics.connect(name="stream")
    yield target
    jobs.shutdown(target)
    remote_magics.disconnect("stream")


@pytest.fixture
def cell(shell, stream):
    remote_magics.registry.current = stream.name

    def _run(text: str):
        result = shell.run_cell(text, store_history=False)
        assert result.error_in_exec is None, result.error_in_exec
        return result
    return _run


def test_synchronous_cell_sends_and_the_notebook_receives_after(shell, cell):
    cell("%%remote --channel ch\nfor i in range(3):\n    ch.send({'i': i})\ndone = True")
    ch = shell.user_ns["ch"]
    assert [ch.receive(5) for _ in range(3)] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert ch.isclosed()
    with pytest.raises(EOFError):
        ch.receive(5)
    assert list(ch) == []


def test_async_producer_and_notebook_talk_both_ways(shell, cell):
    cell("%%remote --async -o echo --channel talk\n"
         "for word in talk:\n"
         "    if word == 'stop':\n"
         "        break\n"
         "    talk.send(word.upper())\n"
         "talk.send('bye')")
    talk = shell.user_ns["talk"]
    replies = []
    for word in ("alpha", "beta", "gamma"):
        talk.send(word)
        replies.append(talk.receive(30))
    talk.send("stop")
    assert replies == ["ALPHA", "BETA", "GAMMA"] and talk.receive(30) == "bye"
    talk.waitclose(30)
    assert shell.user_ns["echo"].result(30) is None


def test_notebook_may_send_before_the_queued_cell_starts(shell, cell):
    cell("%%remote --async -o wait_a_bit\nimport time\ntime.sleep(0.5)")
    cell("%%remote --async -o late --channel early\ngot = early.receive(30)")
    shell.user_ns["early"].send(np.arange(5))
    shell.user_ns["late"].result(30)
    assert shell.user_ns["got"].tolist() == [0, 1, 2, 3, 4]


def test_callback_gets_every_object_then_the_endmarker(shell, cell):
    cell("%%remote --async -o producer --channel feed\nfor i in range(100):\n    feed.send(i)")
    seen = []
    closed = threading.Event()

    def collect(item):
        seen.append(item)
        if item == "END":
            closed.set()
    shell.user_ns["feed"].setcallback(collect, endmarker="END")
    assert closed.wait(30)
    assert seen == [*range(100), "END"]
    shell.user_ns["producer"].result(30)


def test_remote_error_closes_the_channel_and_is_raised_locally(shell, cell):
    cell("%%remote --async -o failing --channel broken\nbroken.send(1)\nraise KeyError('nope')")
    broken = shell.user_ns["broken"]
    assert broken.receive(30) == 1
    with pytest.raises(KeyError) as caught:
        broken.receive(30)
    assert isinstance(caught.value, RemoteError)
    with pytest.raises(RemoteError):
        broken.waitclose(30)
    result = shell.run_cell("%%remote --channel sync_broken\nsync_broken.send(2)\n1/0",
                            store_history=False)
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert shell.user_ns["sync_broken"].receive(5) == 2
    with pytest.raises(ZeroDivisionError):
        shell.user_ns["sync_broken"].waitclose(5)


def test_receive_timeout_and_remote_receive_timeout(shell, cell):
    cell("%%remote --async -o quiet_one --channel silent\n"
         "try:\n    silent.receive(0.2)\nexcept TimeoutError:\n    timed_out = True\n"
         "import time\ntime.sleep(0.5)")
    with pytest.raises(TimeoutError):
        shell.user_ns["silent"].receive(0.1)
    shell.user_ns["quiet_one"].result(30)
    assert shell.user_ns["timed_out"] is True


def test_ten_thousand_small_messages_arrive_in_order(stream, capsys):
    ch = channels.Channel(stream)
    ns = {"ch": ch}
    started = time.perf_counter()
    job = jobs.submit(stream, "for i in range(10_000):\n    ch.send(i)", ns)
    received = list(ch)
    seconds = time.perf_counter() - started
    job.result(60)
    assert received == list(range(10_000))
    with capsys.disabled():
        print(f"\n[channels] 10,000 small messages: {10_000 / seconds:,.0f} messages/s")


def test_hundred_ten_megabyte_arrays_arrive_intact(stream, capsys):
    ch = channels.Channel(stream)
    ns = {"ch": ch}
    started = time.perf_counter()
    job = jobs.submit(stream, "import numpy as np\nblock = np.ones(10_000_000 // 8)\n"
                              "for i in range(100):\n    block[0] = i\n    ch.send(block)", ns)
    firsts, total = [], 0
    for block in ch:
        firsts.append(int(block[0]))
        total += block.nbytes
        assert block[1] == 1.0 and block.shape == (1_250_000,)
    seconds = time.perf_counter() - started
    job.result(60)
    assert firsts == list(range(100)) and total == 1_000_000_000  # a reused array is copied at send
    with capsys.disabled():
        print(f"\n[channels] 100 x 10 MB arrays: {total / 1e6 / seconds:,.0f} MB/s")


def test_big_arrays_from_a_same_host_cell_come_in_sealed_segments(stream):
    ch = channels.Channel(stream)
    before = streaming.stats["shared_received"]
    job = jobs.submit(stream, "import numpy as np\nblock = np.arange(2_000_000)\n"
                              "for i in range(5):\n    block[0] = -i\n    ch.send(block)", {"ch": ch})
    got = list(ch)
    job.result(60)
    assert [int(block[0]) for block in got] == [0, -1, -2, -3, -4]  # each as it was at send
    assert all(block[1:].tolist() == list(range(1, 2_000_000)) for block in got)
    assert streaming.stats["shared_received"] - before == 5 * got[0].nbytes


def test_big_arrays_over_the_network_path_come_whole_and_intact(shell, cell, stream):
    before = streaming.stats["shared_received"]
    with network_path(stream):
        cell("%%remote --channel wire\nimport numpy as np\nblock = np.arange(2_000_000)\n"
             "for i in range(3):\n    block[0] = -i\n    wire.send(block)")
    got = list(shell.user_ns["wire"])
    assert [int(block[0]) for block in got] == [0, -1, -2]
    assert all(block[1:].tolist() == list(range(1, 2_000_000)) for block in got)
    assert streaming.stats["shared_received"] == before


def test_big_arrays_by_the_data_port_come_once_by_the_relaying_connections_link(shell):
    """Across hosts a remote cell's big frames go by the data-port link of the connection that
    relays its run: intact (the cell may change an array it sent), counted once, and never on
    iopub, where the idle connection of an earlier --async job would get a copy of each."""
    target = remote_magics.connect(name="channels-port")
    try:
        with network_path(target, port=True):  # before the first job: its twin takes it too
            jobs.submit(target, "pass", {}).result(60)  # a job's connection, idle from now
            idle = target.job_queue.connection
            while idle.iopub.poll(0):
                idle.iopub.recv_multipart()
            ported_before = streaming.stats["ported_received"]
            result = shell.run_cell("%%remote --target channels-port --channel ch\n"
                                    "import numpy as np\nblock = np.arange(1_250_000)\n"
                                    "for i in range(8):\n    block[0] = -i\n    ch.send(block)",
                                    store_history=False)
            assert result.error_in_exec is None, result.error_in_exec
            got = list(shell.user_ns.pop("ch"))
            on_idle_iopub = 0
            while idle.iopub.poll(100):
                on_idle_iopub += sum(len(frame) for frame in idle.iopub.recv_multipart())
        assert [int(block[0]) for block in got] == [0, -1, -2, -3, -4, -5, -6, -7]
        assert all(np.array_equal(block[1:], np.arange(1, 1_250_000)) for block in got)
        assert streaming.stats["ported_received"] - ported_before == 8 * got[0].nbytes
        assert on_idle_iopub < 200_000, f"the idle connection got {on_idle_iopub} bytes"
    finally:
        jobs.shutdown(target)
        remote_magics.disconnect("channels-port")


# --- notebook → remote cell: shared memory, pacing, authentication ---------------------------

def _our_segments() -> int:
    """How many of our sealed segments this process holds open (its fds naming them)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(
                f"/memfd:{shared.SEGMENT_NAME}")
        except OSError:  # the fd listing itself, closed meanwhile
            pass
    return count


def _engine_stat(target, name: str) -> int:
    run = target.run(f"from remote_magics.wire import streaming\nn = streaming.stats[{name!r}]",
                     {}, download="all")
    return run.values["n"]


def test_big_arrays_to_a_same_host_cell_go_in_sealed_segments_and_are_closed_after(stream):
    ch = channels.Channel(stream)
    ns = {"ch": ch}
    open_before, sent_before = _our_segments(), streaming.stats["shared_sent"]
    mapped_before = _engine_stat(stream, "shared_received")
    job = jobs.submit(stream, "got = [ch.receive(60) for _ in range(5)]\n"
                              "firsts = [int(block[0]) for block in got]\n"
                              "intact = all(block[1:].tolist() == list(range(1, 2_000_000)) "
                              "for block in got)\ndel got", ns, download="all")
    block = np.arange(2_000_000)
    for i in range(5):
        block[0] = -i
        ch.send(block)  # the array is reused: each message holds it as it was at send
    job.result(60)
    assert ns["firsts"] == [0, -1, -2, -3, -4] and ns["intact"] is True
    assert streaming.stats["shared_sent"] - sent_before == 5 * block.nbytes
    assert _engine_stat(stream, "shared_received") - mapped_before == 5 * block.nbytes
    assert ch.isclosed() and _our_segments() == open_before  # every segment closed here


def test_big_arrays_to_a_cell_over_the_network_path_go_whole_and_intact(stream):
    ch = channels.Channel(stream)
    ns = {"ch": ch}
    with network_path(stream):
        sent_before = streaming.stats["shared_sent"]
        job = jobs.submit(stream, "got = [ch.receive(60) for _ in range(3)]\n"
                                  "firsts = [int(block[0]) for block in got]\n"
                                  "intact = all(block[1:].tolist() == list(range(1, 2_000_000))"
                                  " for block in got)", ns, download="all")
        block = np.arange(2_000_000)
        for i in range(3):
            block[0] = -i
            ch.send(block)
        job.result(60)
    assert ns["firsts"] == [0, -1, -2] and ns["intact"] is True
    assert streaming.stats["shared_sent"] == sent_before


@pytest.mark.parametrize("path", ["same host", "network"])
def test_small_and_big_objects_to_a_cell_arrive_in_the_order_sent(stream, path):
    ch = channels.Channel(stream)
    ns = {"ch": ch}
    context = network_path(stream) if path == "network" else contextlib.nullcontext()
    with context:
        job = jobs.submit(stream, "order = []\nfor _ in range(40):\n    item = ch.receive(60)\n"
                                  "    order.append(item if isinstance(item, int) "
                                  "else int(item[0]))", ns, download="all")
        for i in range(40):
            ch.send(i if i % 3 else np.full(1_200_000, i))  # 9.6 MB arrays between small ints
        job.result(60)
    assert ns["order"] == list(range(40))


def test_tampered_messages_to_the_cell_are_dropped_and_the_true_one_arrives(stream, monkeypatch):
    """Each message to a same-host cell leaves once as sent and three times altered (a frame's
    bytes, the segment it names, the process that holds it), each signed anew as a holder of
    the key would: only the true one reaches the cell."""
    ch = channels.Channel(stream)
    ns = {"ch": ch}
    job = jobs.submit(stream, "got = [ch.receive(60)]\n"
                              "try:\n    got.append(ch.receive(2))\nexcept TimeoutError:\n    pass",
                      ns, download="all")
    conn = stream.connection
    real = conn.session.send
    altered = []

    def tampering(sock, msg_type, content=None, *args, buffers=None, **kwargs):
        if msg_type == protocol.CHANNEL_SEND:
            flipped = bytearray(buffers[0])
            flipped[-2] ^= 1
            shared = content["shared"]
            for fake_content, fake_buffers in (
                    (content, [bytes(flipped), *buffers[1:]]),
                    ({**content, "shared": {**shared, "frames": [
                        [i, fd + 1, n] for i, fd, n in shared["frames"]]}}, buffers),
                    ({**content, "shared": {**shared, "pid": os.getpid() + 1}}, buffers)):
                altered.append(msg_type)
                real(sock, msg_type, fake_content, *args, buffers=fake_buffers, **kwargs)
        return real(sock, msg_type, content, *args, buffers=buffers, **kwargs)
    monkeypatch.setattr(conn.session, "send", tampering)
    ch.send(np.arange(2_000_000))
    monkeypatch.undo()
    job.result(60)
    assert len(altered) == 3
    assert len(ns["got"]) == 1 and ns["got"][0].tolist() == list(range(2_000_000))


def test_a_cell_that_does_not_read_holds_back_the_sender_and_memory_stays_bounded(stream,
                                                                                  monkeypatch):
    """The notebook keeps at most a window unacknowledged and the engine acknowledges only what
    the cell has room for: against a cell that reads nothing, ``send`` stops (here it gives up
    after its timeout) after a bounded number of bytes; once the cell reads, sending goes on."""
    data, go = channels.Channel(stream), channels.Channel(stream)
    ns = {"data": data, "go": go}
    block = np.zeros(10_000_000 // 8)
    monkeypatch.setattr(channels, "SEND_TIMEOUT", 3.0)
    started = jobs.submit(stream, "go.send('started')\ncount = go.receive(120)\n"
                                  "firsts = [int(data.receive(60)[0]) for _ in range(count)]",
                          ns, download="all")
    assert go.receive(60) == "started"
    sent = 0
    with pytest.raises(TimeoutError):
        for i in range(100):  # 1 GB, far more than both sides may hold
            block[0] = i
            data.send(block)
            sent += 1
    window = protocol.CHANNEL_WINDOW_BYTES
    assert 1 <= sent and sent * block.nbytes <= 2 * window + block.nbytes
    go.send(sent + 3)
    for i in range(sent, sent + 3):  # the cell reads now: room again
        block[0] = i
        data.send(block)
    started.result(60)
    assert ns["firsts"] == list(range(sent + 3))


def test_a_kernel_attached_by_connection_file_paces_and_maps_channel_messages_too(shell):
    """ipykernel's own control dispatch (not our engine kernel's) serves the channel: big
    arrays both ways by shared memory, and the acknowledgements that pace the notebook."""
    from tests.test_targets import _plain_kernel

    km = _plain_kernel()
    target = remote_magics.connect(km.connection_file, name="attached-channels")
    try:
        ch = channels.Channel(target)
        ns = {"ch": ch}
        sent_before = streaming.stats["shared_sent"]
        job = jobs.submit(target, "firsts = []\nfor _ in range(12):\n"
                                  "    block = ch.receive(60)\n    firsts.append(int(block[0]))\n"
                                  "    ch.send(block)", ns, download="all")
        block = np.zeros(10_000_000 // 8)
        for i in range(12):  # 120 MB: more than the window, so acknowledgements must come
            block[0] = i
            ch.send(block)
        back = [int(echoed[0]) for echoed in ch]
        job.result(60)
        assert ns["firsts"] == back == list(range(12))
        assert streaming.stats["shared_sent"] - sent_before == 12 * block.nbytes
    finally:
        jobs.shutdown(target)
        remote_magics.disconnect("attached-channels")
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


def _peak_growth_mb(fn) -> int:
    """How far this process's resident memory rose above its level before ``fn()`` (MB)."""
    def status(key: str) -> int:
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) // 1024 for line in lines if line.startswith(key))
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM starts again from here
    fn()
    return status("VmHWM") - before


def test_an_async_producer_read_on_the_notebooks_thread_does_not_pile_up_in_memory(shell):
    """The main connection subscribes to all of iopub, so on the network path an --async cell's
    messages (relayed by the job's connection) would queue there unread, the whole stream in
    memory; reading the channel on the notebook's thread drops them as it waits."""
    target = remote_magics.connect(name="channels-network")
    try:
        with network_path(target):  # before the first job: its connection takes the same path
            ch = channels.Channel(target)
            received = []
            shared_before = streaming.stats["shared_received"]

            def stream_600_mb() -> None:
                job = jobs.submit(target, "import numpy as np\nblock = np.ones(10_000_000 // 8)\n"
                                          "for i in range(60):\n    block[0] = i\n"
                                          "    ch.send(block)", {"ch": ch})
                received.extend(int(block[0]) for block in ch)  # each dropped once read
                job.result(60)
            growth = _peak_growth_mb(stream_600_mb)
        assert received == list(range(60))
        assert streaming.stats["shared_received"] == shared_before  # it came whole on iopub
        assert growth < 250, f"{growth} MB"
    finally:
        jobs.shutdown(target)
        remote_magics.disconnect("channels-network")
