"""Stopping, timing out, losing the kernel, and bad input: never a hang, never a changed namespace."""
from __future__ import annotations

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest
from IPython.core.error import UsageError

import remote_magics
from remote_magics import (ConnectionLost, NotConnected, ProxyError, RemoteError,
                           RemoteKernelDied, RemoteObject, RemoteTimeout, SerializationError)
from remote_magics.wire import protocol, serialize
from remote_magics.targets import Registry
from tests.conftest import fake_kernel_sockets, network_path, plain
from tests.test_targets import _plain_kernel

SLEEP = "import time\nslept = 0\nfor _ in range(300):\n    time.sleep(0.1)\n    slept += 1\n"


def _after(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def _interrupt_me() -> None:
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def worker(shell):
    """A kernel of this module's own, which its tests interrupt and time out."""
    target = remote_magics.connect(name="worker")
    yield target
    remote_magics.disconnect("worker")


@pytest.fixture
def doomed(shell, request):
    """A kernel that the test is allowed to kill."""
    name = f"doomed-{request.node.name[:20]}"
    target = remote_magics.connect(name=name)
    yield target
    if name in remote_magics.registry.targets:
        remote_magics.disconnect(name)


@pytest.fixture(scope="module")
def attached(shell):
    """A plain ipykernel reached through its connection file (interrupts go on the control channel)."""
    km = _plain_kernel()
    target = remote_magics.connect(km.connection_file, name="attached")
    yield target, km
    if "attached" in remote_magics.registry.targets:
        remote_magics.disconnect("attached")
    km.shutdown_kernel(now=True)
    km.cleanup_resources()


def _interrupted_run(target, namespace):
    """Run :data:`SLEEP` on ``target`` and stop it as the stop button does (SIGINT here) 0.3 s
    after the cell said it started: under load, a fixed delay from the request could come
    before the cell bound anything (a full run failed so once). Seconds from the stop to the
    end."""
    stopped: list = []

    def on_output(msg: dict) -> None:
        if not stopped and msg["msg_type"] == "stream":
            stopped.append(time.monotonic() + 0.3)
            _after(0.3, _interrupt_me)

    with pytest.raises(KeyboardInterrupt):
        target.run("print('started', flush=True)\n" + SLEEP, namespace, on_output=on_output)
    return time.monotonic() - stopped[0]


@pytest.mark.parametrize("which", ["owned", "attached"])
def test_stop_interrupts_the_remote_cell_and_keeps_the_kernel(which, worker, attached):
    target = worker if which == "owned" else attached[0]
    namespace = {"keep": 1}
    elapsed = _interrupted_run(target, namespace)
    assert elapsed < 3  # the remote stopped well before its 30 s of sleep
    # as after a plain cell's interrupt: the names it bound before it stopped are here
    assert namespace["keep"] == 1 and 0 <= namespace["slept"] < 300
    again = target.run("after = keep + 1", namespace)
    assert namespace["after"] == 2 and again.values == {"after": 2}


@pytest.mark.parametrize("receiving", [False, True], ids=["sending", "receiving"])
def test_a_stop_between_two_parts_of_a_message_neither_cuts_it_nor_loses_the_next(
        worker, monkeypatch, receiving):
    """ZeroMQ takes a message's parts one call at a time. A stop pressed between two of them
    (seen under load in test_live_proxies' loop over a proxy) left half a request on the socket:
    the next request's parts went on after it, the engine dropped that as badly signed ("Invalid
    Signature: b'<IDS|MSG>'") and the notebook said it was lost. Now the message goes whole and
    the stop then stops the request as it runs; a stop while a reply comes in waits for its
    last part too."""
    import _thread

    import zmq

    real_send, real_recv = zmq.Socket.send, zmq.Socket.recv
    armed = [True]

    def stop_now(sock, flags):
        if armed and sock is worker.connection.shell and flags:
            armed.clear()
            _thread.interrupt_main()  # the stop button, between this part and the next

    def send(sock, data, flags=0, **kwargs):
        sent = real_send(sock, data, flags, **kwargs)
        stop_now(sock, not receiving and flags & zmq.SNDMORE)
        return sent

    def recv(sock, flags=0, **kwargs):
        part = real_recv(sock, flags, **kwargs)
        stop_now(sock, receiving and sock.rcvmore)
        return part

    monkeypatch.setattr(zmq.Socket, "send", send)
    monkeypatch.setattr(zmq.Socket, "recv", recv)
    started = time.monotonic()
    if receiving:  # the reply comes whole; the cell had finished, so its outcome stands
        ran = worker.run("x = 41 + 1", {})
        monkeypatch.undo()
        assert not armed and ran.values == {"x": 42}
    else:  # the request goes whole, and the stop stops it there
        with pytest.raises(KeyboardInterrupt) as stopped:
            worker.run("import time\nfor _ in range(100):\n    time.sleep(0.1)", {})
        monkeypatch.undo()
        assert not armed and time.monotonic() - started < 8  # stopped, not slept through
        assert isinstance(stopped.value, remote_magics.RemoteInterrupt)  # stopped remotely
    assert worker.run("after = 41 + 1", {}).values["after"] == 42  # the next one arrives whole


def test_timeout_interrupts_and_raises_remote_timeout(shell, worker):
    remote_magics.registry.current = "worker"
    shell.user_ns.pop("slept", None)
    started = time.monotonic()
    res = shell.run_cell("%%remote --timeout 1\n" + SLEEP)
    assert isinstance(res.error_in_exec, RemoteTimeout)
    assert "timeout of 1 s" in str(res.error_in_exec)
    assert time.monotonic() - started < 1 + 4
    assert 0 <= shell.user_ns["slept"] < 300  # what it did before the timeout is kept
    assert "names it bound before that are in the notebook" in str(res.error_in_exec)
    assert worker.run("ok = 1", {}).values == {"ok": 1}


def test_names_a_timed_out_cell_keeps_remote_stay_usable(shell, worker):
    # pytudes hunt (Beal, none mode): after an interrupt or a timeout, the proxies of the names
    # the cell bound were released by the engine at the next request (the reply counted as
    # never received), so the next cell's `print(k)` was a LookupError
    remote_magics.registry.current = "worker"
    res = shell.run_cell("%%remote --download=none --timeout 1\nk = [7]\ngen = iter(k)\n"
                         + SLEEP)
    assert isinstance(res.error_in_exec, RemoteTimeout)
    assert type(shell.user_ns["k"]).__name__ == "RemoteObject"
    res = shell.run_cell("%%remote --download=all\nseen = (k[0], next(gen))")
    assert res.error_in_exec is None, res.error_in_exec
    assert shell.user_ns["seen"] == (7, 7)
    for name in ("k", "gen", "seen", "slept"):
        shell.user_ns.pop(name, None)


def test_config_timeout_is_the_default(shell, worker):
    remote_magics.registry.current = "worker"
    shell.run_line_magic("config", "RemoteMagics.timeout = 1.0")
    try:
        res = shell.run_cell("%%remote\n" + SLEEP)
        assert isinstance(res.error_in_exec, RemoteTimeout)
    finally:
        shell.run_line_magic("config", "RemoteMagics.timeout = 0.0")


@pytest.mark.parametrize("how", ["os_exit", "sigkill", "segfault"])
def test_kernel_death_mid_cell_raises_remote_kernel_died(shell, doomed, how):
    pid = doomed.details["pid"]
    keep = doomed.run("kept = list(range(10))", {}, download="none").values["kept"]
    code = {
        "os_exit": "import os, time\ntime.sleep(0.3)\nos._exit(1)",
        "sigkill": SLEEP,
        "segfault": "import ctypes\nctypes.string_at(0)",
    }[how]
    timer = _after(0.5, lambda: os.kill(pid, signal.SIGKILL)) if how == "sigkill" else None
    started = time.monotonic()
    try:
        with pytest.raises(RemoteKernelDied) as info:
            doomed.run(code, {})
    finally:
        if timer:
            timer.cancel()
    assert time.monotonic() - started < 5 + 1
    message = str(info.value)
    assert doomed.name in message
    expected = {"os_exit": "exit status 1", "sigkill": "exit status -9",
                "segfault": "exit status -11"}[how]
    assert expected in message
    # Afterwards nothing waits: the proxy and the target say so at once.
    with pytest.raises(ProxyError, match="gone"):
        keep.fetch()
    card = keep._repr_html_()
    assert "gone" in card and "fetch()" not in card  # nothing left to use or fetch
    with pytest.raises(RemoteKernelDied) as later:
        doomed.run("x = 1", {})
    assert "died earlier" in str(later.value) and "did not run" in str(later.value)
    assert "while running" not in str(later.value)  # that cell never ran


def test_restart_tells_which_proxies_were_lost(shell, doomed, capsys):
    remote_magics.registry.current = doomed.name
    assert shell.run_cell("%%remote --download=none\nheld = [1, 2, 3]").error_in_exec is None
    assert isinstance(shell.user_ns["held"], RemoteObject)
    with pytest.raises(RemoteKernelDied):
        doomed.run("import os\nos._exit(3)", {})
    capsys.readouterr()
    shell.user_ns.update({"_": shell.user_ns["held"], "_11": shell.user_ns["held"]})  # Out[11]
    shell.run_line_magic("remote_connect", f"--restart {doomed.name}")
    out = capsys.readouterr().out
    assert "Restarted" in out and "held" in out
    lost = out.split("are lost: ")[1].split(".")[0].split(", ")
    assert lost == ["held"]  # IPython's output history names are not the user's
    with pytest.raises(ProxyError, match="restarted"):
        shell.user_ns["held"].fetch()
    res = shell.run_cell("%%remote\nfine = 5")
    assert res.error_in_exec is None and shell.user_ns["fine"] == 5
    res = shell.run_cell("%%remote\nagain = held")
    assert isinstance(res.error_in_exec, ProxyError)
    del shell.user_ns["held"], shell.user_ns["_11"]
    shell.user_ns["_"] = ""


def _stopped_gives_connection_lost(target, after: float) -> None:
    """Stop ``target``'s kernel (SIGSTOP) ``after`` s into a run: ConnectionLost, within the
    heartbeat's window."""
    pid = target.details["pid"]
    timer = _after(after, lambda: os.kill(pid, signal.SIGSTOP))
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionLost, match="heartbeat"):
            target.run(SLEEP, {})
        assert time.monotonic() - started < after + target.connection.heartbeat_timeout + 2
    finally:
        timer.cancel()
        os.kill(pid, signal.SIGCONT)


def test_stopped_kernel_gives_connection_lost_within_the_heartbeat_window(doomed):
    _stopped_gives_connection_lost(doomed, 0.5)


def test_pings_to_a_dead_kernel_never_reach_whatever_takes_its_port_later(shell):
    """A kernel reached through its connection file died mid-cell: we cannot know its exit
    status, so the heartbeat's silence tells, after about three pings. zmq queued those pings
    and kept reconnecting, so the next process to bind that port (CI: a plain kernel's shell
    port, a later test) got them, logged "DELIM not in msg_list" into the cell it was running,
    and that cell differed. Pings are now queued only to a heartbeat that is there."""
    import zmq
    km = _plain_kernel()
    target = remote_magics.connect(km.connection_file, name="ping-dead")
    target.connection.set_exit_status(lambda: None)  # as for a kernel on another host
    target.connection.heartbeat_timeout = 1.5  # (pings each second: one or two unanswered)
    context = zmq.Context()
    try:
        process = km.provisioner.process
        timer = _after(1.2, process.kill)
        started = time.monotonic()
        with pytest.raises((ConnectionLost, RemoteKernelDied)) as info:
            target.run(SLEEP, {})
        timer.cancel()
        process.wait(timeout=10)
        strangers = {}  # what takes the ports next, as a plain kernel's ROUTERs would
        for port_key in ("shell_port", "control_port", "hb_port"):
            sock = strangers[port_key] = context.socket(zmq.ROUTER)
            sock.linger = 0
            sock.bind(f"tcp://127.0.0.1:{target.connection.info[port_key]}")
        heard = []
        deadline = time.monotonic() + 1.5  # zmq reconnects every 0.1 s
        while time.monotonic() < deadline:
            for port_key, sock in strangers.items():
                while sock.poll(0):
                    heard.append((port_key, sock.recv_multipart()[1:]))
            time.sleep(0.05)
        assert heard == [], heard
    finally:
        context.destroy(linger=0)
        if "ping-dead" in remote_magics.registry.targets:
            remote_magics.disconnect("ping-dead")
        km.cleanup_resources()


def test_a_kernel_found_gone_is_let_go_of_until_the_user_asks_for_it_again(shell):
    """Once a kernel is found gone, the connection lets go of its ports (CI after the fix
    above: four pings still reached a plain kernel's control port, which had taken a dead
    kernel's heartbeat port, because a later ping went to whatever was connected there).
    Nothing we do meanwhile reaches a stranger on those ports: asking whether it is alive,
    releases; the user's next request reaches for the kernel again, and when only a
    stranger is there it gets one ping at most, never the request, and the user is told."""
    import zmq
    km = _plain_kernel()
    target = remote_magics.connect(km.connection_file, name="let-go")
    target.connection.set_exit_status(lambda: None)  # as for a kernel on another host
    target.connection.heartbeat_timeout = 1.5
    context = zmq.Context()
    try:
        process = km.provisioner.process
        timer = _after(1.2, process.kill)
        with pytest.raises(ConnectionLost):
            target.run(SLEEP, {})
        timer.cancel()
        process.wait(timeout=10)
        strangers = {}
        for port_key in ("shell_port", "control_port", "hb_port"):
            sock = strangers[port_key] = context.socket(zmq.ROUTER)
            sock.linger = 0
            sock.bind(f"tcp://127.0.0.1:{target.connection.info[port_key]}")
        heard = []

        def listen(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for port_key, sock in strangers.items():
                    while sock.poll(0):
                        heard.append((port_key, sock.recv_multipart()[1:]))
                time.sleep(0.05)

        listen(0.5)  # zmq would have reconnected by now
        assert target.alive(timeout=1.0) is False
        target.release_later("some-object")
        target.flush_releases()
        listen(1.0)
        assert heard == [], heard
        started = time.monotonic()
        with pytest.raises(ConnectionLost) as info:  # the user's next cell
            target.run("x = 1", {})
        assert "found gone earlier" in str(info.value) and "nothing was sent" in str(info.value)
        assert time.monotonic() - started < 10
        listen(0.5)
        assert {port_key for port_key, _ in heard} <= {"hb_port"}, heard
        assert len(heard) <= 1, heard
    finally:
        context.destroy(linger=0)
        if "let-go" in remote_magics.registry.targets:
            remote_magics.disconnect("let-go")
        km.cleanup_resources()


def test_a_notebook_busy_longer_than_the_heartbeat_window_does_not_lose_the_reply(doomed):
    """Silence is a ping left unanswered, not time since the last answer: the notebook itself
    may be busy that long between two polls (a big reply taken in on a loaded machine, a slow
    output shown, a laptop asleep). The bench saw ConnectionLost after a 1 GB download so, with
    the engine alive and its reply already here: the run's work was thrown away."""
    doomed.connection.heartbeat_timeout = 1.0
    seen = []

    def slow_output(msg: dict) -> None:  # the notebook busy for longer than the window
        seen.append(msg.get("msg_type"))
        if len(seen) == 1:
            time.sleep(1.6)

    result = doomed.run("import sys, time\nprint('first')\nsys.stdout.flush()\n"
                        "time.sleep(0.5)\ndone = 7", {},
                        on_output=slow_output)
    assert result.values["done"] == 7 and seen[0] == "stream"
    _stopped_gives_connection_lost(doomed, 0.3)  # still told at once when it stops answering


def test_a_request_the_engine_never_received_is_reported_not_waited_for_for_ever(doomed):
    """A request whose signature fails is dropped without an answer (a forger learns nothing),
    and so would be one lost on the way: the heartbeat still answers, so the notebook waited
    for ever (hunt 16 C1). It asks the engine on control what it knows of the request: idle,
    and never saw it, means lost."""
    session = doomed.connection.session
    real, forged = session.sign, []

    def sign_once_wrongly(msg_list):  # the next request leaves with a signature that fails
        if not forged:
            forged.append(True)
            return b"0" * len(real(msg_list))
        return real(msg_list)

    session.sign = sign_once_wrongly
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionLost, match="never received this request") as info:
            doomed.run("ran_unsigned = 1", {})
    finally:
        del session.sign
    assert time.monotonic() - started < 15
    assert "Nothing ran there" in str(info.value)
    assert doomed.run("seen = 'ran_unsigned' in dir()", {}).values == {"seen": False}


def test_a_request_behind_another_clients_cell_is_waited_for_not_called_lost(doomed):
    """The engine busy with another client's cell has not read our request yet: it says it is
    busy, and we wait (the request is not lost)."""
    other = remote_magics.connect(doomed.kernel_manager.connection_file, name="other-client")
    try:
        assert other.connection.answers_status and doomed.connection.answers_status
        busy = threading.Thread(target=other.run, args=("import time\ntime.sleep(5)", {}))
        busy.start()
        time.sleep(0.5)
        started = time.monotonic()
        assert doomed.run("after = 2", {}).values == {"after": 2}
        assert time.monotonic() - started > 3  # it waited behind the other cell
        busy.join(30)
    finally:
        remote_magics.disconnect("other-client")


def test_attached_kernel_killed_is_reported_as_died(shell):
    km = _plain_kernel()
    try:
        target = remote_magics.connect(km.connection_file, name="attached-doomed")
        timer = _after(0.5, lambda: os.kill(km.provisioner.process.pid, signal.SIGKILL))
        with pytest.raises(RemoteKernelDied, match="attached-doomed"):
            target.run(SLEEP, {})
        timer.cancel()
    finally:
        if "attached-doomed" in remote_magics.registry.targets:
            remote_magics.disconnect("attached-doomed")
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("line", ["--download=bogus", "--bytes lots", "--timeout -1",
                                  "--no-such-option", "--async --targets default",
                                  "--channel ch --targets default", '"unterminated'])
def test_bad_magic_arguments_are_usage_errors_and_nothing_runs(shell, target, line):
    shell.user_ns.pop("ran", None)
    res = shell.run_cell(f"%%remote {line}\nran = True")
    assert isinstance(res.error_in_exec, UsageError)
    assert "ran" not in shell.user_ns


def test_unknown_target_names_the_connected_ones(shell, target):
    res = shell.run_cell("%%remote --target nosuch\nx = 1")
    assert isinstance(res.error_in_exec, NotConnected)
    assert "nosuch" in str(res.error_in_exec) and "default" in str(res.error_in_exec)


def test_remote_before_any_connect_says_to_run_remote_connect(shell, monkeypatch):
    monkeypatch.setattr(remote_magics.targets, "registry", Registry())
    res = shell.run_cell("%%remote\nx = 1")
    assert isinstance(res.error_in_exec, NotConnected)
    assert "%remote_connect" in str(res.error_in_exec)


def test_wrong_key_in_connection_file_is_named(attached, tmp_path):
    _, km = attached
    info = json.loads(open(km.connection_file).read())
    info["key"] = "not-the-key"
    wrong = tmp_path / "kernel-wrong.json"
    wrong.write_text(json.dumps(info))
    with pytest.raises(ConnectionLost, match="key"):
        remote_magics.connect(str(wrong), name="wrongkey", timeout=3)
    assert "wrongkey" not in remote_magics.registry.targets


def test_module_missing_remotely_is_named_with_its_target(shell, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nclass _Block:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'numpy':\n"
        "            raise ModuleNotFoundError(\"No module named 'numpy'\", name='numpy')\n"
        "sys.meta_path.insert(0, _Block())\n")
    km = _plain_kernel({"PYTHONPATH": str(site)})
    try:
        target = remote_magics.connect(km.connection_file, name="nonumpy")
        import numpy as np

        with pytest.raises(RemoteError) as info:
            target.run("y = np.zeros(3)", {"np": np})
        assert isinstance(info.value, ImportError)
        assert "numpy" in str(info.value) and "nonumpy" in str(info.value)
        assert "install it there" in str(info.value)
    finally:
        if "nonumpy" in remote_magics.registry.targets:
            remote_magics.disconnect("nonumpy")
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


def test_remote_memory_error_is_reported_and_the_session_survives(worker):
    with pytest.raises(RemoteError) as info:
        worker.run("huge = bytearray(2 ** 60)", {})
    assert isinstance(info.value, MemoryError)
    assert worker.run("small = 1", {}).values == {"small": 1}


UNPICKLABLE_HERE = '''
import os
_home = os.getpid()
def _rebuild(home):
    import os
    if os.getpid() != home:
        raise MemoryError("too large for this kernel")
    return Thing()
class Thing:
    def __reduce__(self):
        return (_rebuild, (_home,))
thing = Thing()
'''


def test_value_that_fails_to_unpickle_locally_stays_a_proxy_with_the_reason(worker):
    run = worker.run(UNPICKLABLE_HERE, {}, download="all")
    thing = run.values["thing"]
    assert isinstance(thing, RemoteObject)
    assert any("thing" in note and "MemoryError" in note for note in run.notes)
    assert worker.run("ok = type(thing).__name__", {"thing": thing}).values["ok"] == "Thing"


# --- security -------------------------------------------------------------------------------

def test_a_frame_altered_in_flight_is_refused_and_nothing_runs(worker, tmp_path):
    from remote_magics.cells import runner

    marker = tmp_path / "ran"
    namespace = {"blob": bytearray(b"x" * 200_000), "marker_path": str(marker)}
    request = runner.prepare("open(marker_path, 'w').close()\nn = len(blob)", namespace, worker,
                             download="all", limit=1 << 20)
    conn = worker.connection
    content = dict(request.content, digest=protocol.frames_digest(conn.key, request.frames),
                   client=conn.client_secret)
    frames = [bytes(f) for f in request.frames]
    assert len(frames) >= 2  # the bytearray travels out of band
    big = max(range(len(frames)), key=lambda i: len(frames[i]))  # the bytearray's own frame
    altered = bytearray(frames[big])
    altered[100] ^= 0xFF
    frames[big] = bytes(altered)
    msg = conn.session.msg(protocol.RUN_REQUEST, content)
    conn.session.send(conn.shell, msg, buffers=frames)  # signed header and content, bad frame
    deadline = time.monotonic() + 3
    replies = []
    while time.monotonic() < deadline:
        if conn.shell.poll(100):
            reply = conn._recv(conn.shell)
            if reply and reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                replies.append(reply)
    assert replies == [] and not marker.exists()
    assert worker.run("still = 1", {}).values == {"still": 1}


def test_message_signed_with_another_key_is_dropped(worker, tmp_path):
    from jupyter_client.session import Session


    marker = tmp_path / "ran"
    forger = Session(key=b"someone-else")
    content = {"code": f"open({str(marker)!r}, 'w').close()", "inputs": [], "outputs": [],
               "digest": protocol.frames_digest(b"someone-else", [])}
    msg = forger.msg(protocol.RUN_REQUEST, content)
    forger.send(worker.connection.shell, msg)
    assert worker.run("after = 1", {}).values == {"after": 1}  # runs after the forged one
    assert not marker.exists()


def test_connection_files_are_private_and_sockets_bind_loopback(worker):
    mode = os.stat(worker.kernel_manager.connection_file).st_mode & 0o777
    assert mode == 0o600
    listening = [c for c in psutil.Process(worker.details["pid"]).net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN]
    assert len(listening) >= 5
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}


def test_two_clients_cannot_touch_each_others_objects(worker):
    other = remote_magics.connect(worker.kernel_manager.connection_file, name="other-client")
    try:
        mine = worker.run("mine = [1, 2]", {}, download="none").values["mine"]
        theirs = other.run("theirs = [3, 4]", {}, download="none").values["theirs"]
        assert other.info()["objects"] == 1
        assert other.info()["total_objects"] >= 2
        with pytest.raises(ProxyError):
            other.fetch(mine._id)
        other.connection.send("remote_release_request", {"ids": [mine._id]})
        assert mine.fetch() == [1, 2]  # their release of my id did nothing
        with pytest.raises(SerializationError, match="worker"):
            other.run("x = leaked", {"leaked": mine})  # the client refuses another's proxy
        item = serialize.dumps(mine)  # the engine refuses it too, if a client sends it anyway
        content = {"code": "x = leaked", "inputs": [{"name": "leaked", "nframes": len(item)}],
                   "outputs": ["x"], "download": "all", "bytes": 1 << 20}
        reply = other.connection.request(protocol.RUN_REQUEST, content, item, timeout=30)
        assert reply.content["status"] == "error" and "not held" in reply.content["evalue"]
        gc.collect()  # earlier tests' dropped proxies are released now, not mid-count
        total = worker.info()["total_objects"]
        del theirs
    except BaseException:
        remote_magics.disconnect("other-client")
        raise
    remote_magics.disconnect("other-client")  # a client that leaves releases what it held
    # its release goes as it leaves, unanswered: another client's request may be read first
    deadline = time.monotonic() + 10
    while worker.info()["total_objects"] != total - 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.info()["total_objects"] == total - 1


# --- no leaks -------------------------------------------------------------------------------

#: Run in a process of its own: in the test process, the teardown of earlier tests' engines and
#: connections (zmq's reaper, jupyter_client's loops) opens and closes descriptors meanwhile, and
#: a full run once counted one such zmq socket as this test's leak.
LEAK_CHECK = r"""
import gc, json, os, sys, time
import psutil
import remote_magics
from remote_magics import ConnectionLost

def footprint():
    gc.collect()  # what is left for the collector goes now, not during the check
    me = psutil.Process()
    return me.num_threads(), me.num_fds(), len(me.children(recursive=True))

def open_files():
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
    return found

def grew(now, before):
    return any(a > b for a, b in zip(now, before))

remote_magics.connect(name="leakcheck").run("x = 1", {})
remote_magics.disconnect("leakcheck")  # warm up: imports, lazily created helpers
time.sleep(0.5)
before, fds = footprint(), open_files()
remote_magics.connect(name="leakcheck").run("x = 1", {})
remote_magics.disconnect("leakcheck")
try:
    remote_magics.connect(sys.argv[1], name="deadfile", timeout=1)
    failed = "no ConnectionLost"
except ConnectionLost:
    failed = None
deadline = time.monotonic() + 10
now = footprint()
while grew(now, before) and time.monotonic() < deadline:
    time.sleep(0.1)  # zmq's io threads end asynchronously after a context is destroyed
    now = footprint()
new = {fd: name for fd, name in open_files().items() if fds.get(fd) != name}
print(json.dumps({"before": before, "now": now, "new": new, "failed": failed}))
"""


def test_disconnect_and_failed_connect_leave_nothing_behind(tmp_path):
    """A connection that ends, and one that fails, leave no thread, descriptor or child."""
    bad = tmp_path / "kernel-dead.json"
    bad.write_text(json.dumps({"ip": "127.0.0.1", "transport": "tcp", "key": "k",
                               "signature_scheme": "hmac-sha256", "shell_port": 1,
                               "iopub_port": 2, "stdin_port": 3, "control_port": 4,
                               "hb_port": 5}))
    script = tmp_path / "leakcheck.py"
    script.write_text(LEAK_CHECK)
    done = subprocess.run([sys.executable, str(script), str(bad)], capture_output=True,
                          text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["failed"] is None, found
    # fewer is not a leak (a helper thread of the warm-up may end meanwhile)
    assert not any(a > b for a, b in zip(found["now"], found["before"])), found


def test_client_drops_and_logs_a_reply_with_a_bad_signature(caplog):
    """A fake kernel on loopback answers once with the wrong key, then with the right one."""
    from jupyter_client.session import Session

    key = b"the-right-key"
    good, forger = Session(key=key), Session(key=b"a-wrong-key")

    def answer(session):
        assert socks["shell"].poll(10_000)
        idents, parts = good.feed_identities(socks["shell"].recv_multipart())
        request = good.deserialize(parts)
        content = {"status": "ok", "objects": 0, "digest": protocol.frames_digest(key, [])}
        session.send(socks["shell"], protocol.INFO_REPLY, content, parent=request, ident=idents)
        session.send(socks["iopub"], "status", {"execution_state": "idle"}, parent=request)

    with fake_kernel_sockets(key) as (conn, socks):
        caplog.set_level("WARNING", logger="remote_magics.client.connection")
        pending = conn.start(protocol.INFO_REQUEST, {}, patience=2)
        answer(forger)
        with pytest.raises(RemoteTimeout, match="did not answer"):
            pending.wait()
        assert "failed its signature check" in caplog.text
        pending = conn.start(protocol.INFO_REQUEST, {}, patience=10)
        answer(good)
        assert pending.wait().content["status"] == "ok"


# --- every request gets a reply, whatever user objects do -----------------------------------

MISBEHAVING = {
    "nbytes": "class Odd:\n    @property\n    def nbytes(self):\n        raise ValueError('no size')\n",
    "shape": "class Odd:\n    @property\n    def shape(self):\n        raise ValueError('no shape')\n",
    "KeyboardInterrupt": "class Odd:\n    def __reduce__(self):\n        raise KeyboardInterrupt\n",
    "SystemExit": "class Odd:\n    def __reduce__(self):\n        raise SystemExit(3)\n",
}


@pytest.mark.parametrize("how", list(MISBEHAVING))
def test_a_value_that_cannot_be_described_or_encoded_never_costs_the_reply(worker, how):
    pid = worker.info()["pid"]
    code = MISBEHAVING[how] + "odd = Odd()\n"
    run = worker.run(code, {}, download="all", timeout=30)
    odd = run.values["odd"]
    if how in ("KeyboardInterrupt", "SystemExit"):  # it cannot be pickled: it stays remote
        assert isinstance(odd, RemoteObject)
        assert [note for note in run.notes if "'odd' stays remote" in note and how in note]
        with pytest.raises(ProxyError, match=how):
            odd.fetch(timeout=30)  # the fetch gets an answer too
        assert worker.run("back = odd", {"odd": odd}, timeout=30).values["back"] is not None
    else:  # pickles fine; only its descriptor could not be read
        assert type(odd).__name__ == "Odd"
        proxy = worker.run(code + "odd = Odd()", {}, download="none", timeout=30).values["odd"]
        assert isinstance(proxy, RemoteObject) and proxy._descriptor["shape"] is None
        # the value's own attribute, as plainly: its `shape` or `nbytes` raises (hunt 14 C3)
        with pytest.raises(ValueError, match="no shape" if how == "shape" else "no size"):
            getattr(proxy, how)
    assert worker.info()["pid"] == pid  # the same engine, still answering


def test_live_operation_results_that_cannot_be_pickled_stay_remote(worker):
    made = worker.run(MISBEHAVING["SystemExit"] + "class Maker:\n    pad = bytes(2_000_000)\n"
                      "    def make(self):\n        return Odd()\nmaker = Maker()", {},
                      download="small", bytes=1000, timeout=30)
    result = made.values["maker"].make()  # by the proxy's policy, small: it would come back
    assert isinstance(result, RemoteObject) and "SystemExit" in result.reason
    assert worker.run("ok = 1", {}).values == {"ok": 1}


def test_an_error_whose_message_raises_keyboard_interrupt_still_gets_a_reply(worker):
    code = ("class Mute(Exception):\n    def __str__(self):\n        raise KeyboardInterrupt\n"
            "raise Mute()")
    with pytest.raises(RemoteError) as info:
        worker.run(code, {}, timeout=30)
    assert info.value.ename == "Mute"
    assert worker.run("ok = 1", {}).values == {"ok": 1}


def test_a_deep_recursion_error_arrives_collapsed(worker):
    code = ("import sys\nsys.setrecursionlimit(200_000)\ndef down(n):\n    return down(n + 1)\n"
            "down(0)")
    with pytest.raises(RemoteError) as info:
        worker.run(code, {}, timeout=60)  # IPython's formatter alone would take minutes
    assert isinstance(info.value, RecursionError)
    lines = plain("\n".join(info.value.traceback)).splitlines()
    assert len(lines) < 30
    skipped = [line for line in lines if "skipping similar frames: down at line 4" in line]
    assert len(skipped) == 1 and int(skipped[0].split("(")[1].split()[0].replace(",", "")) > 190_000
    assert lines[-1].startswith("RecursionError")


# --- interrupts that do not stop the cell ---------------------------------------------------

IGNORES_INTERRUPTS = ("import time\ndeadline = time.monotonic() + {seconds}\n"
                      "while time.monotonic() < deadline:\n    try:\n        time.sleep(0.05)\n"
                      "    except KeyboardInterrupt:\n        pass\nfinished = True\n")


@pytest.mark.parametrize("how", ["timeout", "stop"])
def test_a_cell_that_ignores_the_interrupt_is_said_to_be_still_running(shell, worker, monkeypatch,
                                                                       capsys, how):
    from remote_magics.client import connection

    monkeypatch.setattr(connection, "INTERRUPT_GRACE", 2.0)
    remote_magics.registry.current = "worker"
    shell.user_ns.pop("finished", None)
    line = "--timeout 1" if how == "timeout" else ""
    timer = _after(1.0, _interrupt_me) if how == "stop" else None
    try:
        res = shell.run_cell(f"%%remote {line}\n" + IGNORES_INTERRUPTS.format(seconds=8))
    finally:
        if timer:
            timer.cancel()
    err = res.error_in_exec
    assert isinstance(err, RemoteTimeout if how == "timeout" else KeyboardInterrupt)
    assert "still running" in str(err) and "--restart worker" in str(err)
    assert "finished" not in shell.user_ns
    capsys.readouterr()
    res = shell.run_cell("%%remote\nafter = 1")  # waits for the cell that did not stop
    assert res.error_in_exec is None and shell.user_ns["after"] == 1
    out = capsys.readouterr().out
    assert "still running the cell that did not stop" in out and "waits" in out
    res = shell.run_cell("%%remote\nagain = 2")  # nothing left to wait for: no note
    assert res.error_in_exec is None and "still running" not in capsys.readouterr().out


# --- errors that say the right thing --------------------------------------------------------

def test_a_negative_or_too_short_connect_timeout_says_so(shell):
    res = shell.run_cell("%remote_connect --timeout -5 --name shortwait")
    assert isinstance(res.error_in_exec, UsageError)
    assert "positive" in str(res.error_in_exec)
    with pytest.raises(ConnectionLost) as info:
        remote_magics.connect(name="shortwait", timeout=0.01)
    assert "too short" in str(info.value) and "key" not in str(info.value)
    assert "shortwait" not in remote_magics.registry.targets


def test_kernel_killed_during_an_upload_is_reported_as_died(doomed):
    import numpy as np

    pid = doomed.details["pid"]
    big = np.ones(25_000_000)  # 200 MB: streamed in chunks that the engine acknowledges
    killed = []

    def on_progress(direction, done, total):
        if direction == "upload" and done > total // 8 and not killed:
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    with network_path(doomed), pytest.raises(RemoteKernelDied) as info:  # chunks, not memfd
        doomed.run("n = len(big)", {"big": big}, on_progress=on_progress)
    assert "exit status -9" in str(info.value) and "did not run" in str(info.value)


def test_a_kernel_whose_port_is_taken_while_it_starts_is_launched_again(shell):
    """jupyter_client chooses a kernel's ports free, then the kernel binds them: on a busy
    machine another process may take one in between, and the kernel exits ("Address already
    in use"). The target launches it again, on new ports, instead of failing the connect."""
    from remote_magics.targets import local

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    managers = []

    def launch_one(name):
        km = local.engine_kernel_manager()
        if not managers:  # the first launch's shell port is one taken by now
            km.cache_ports = False  # else jupyter_client's provisioner chooses them itself
            km.shell_port = blocker.getsockname()[1]
        managers.append(km)
        return local.launch(name, km, "local", cwd=None)

    targets = []
    try:
        targets = local.start_all(["relaunched"], launch_one, timeout=60, install=False)
        assert len(managers) == 2 and not managers[0].is_alive()
        assert targets[0].run("x = 6 * 7", {}, download="all").values["x"] == 42
    finally:
        for target in targets:
            target.close(shutdown=True)
        blocker.close()


@pytest.mark.parametrize("module", ["remote_magics.engine", "remote_magics.kernel"])
@pytest.mark.parametrize("taken", ["iopub_port", "hb_port"])
def test_an_engine_that_cannot_bind_its_ports_ends_at_once(tmp_path, taken, module):
    """A port jupyter_client chose free was taken before the kernel bound it (seen under load:
    "Address already in use"): the kernel kept running, held by a thread ipykernel had started,
    so %remote_connect waited out its whole timeout instead of launching another. It ends now,
    saying why, and the launcher's relaunch takes over.

    The heartbeat binds in a thread of its own: when its port was taken (CI, stop 45), that
    thread died, the kernel answered every request, and the first cell longer than the
    heartbeat's timeout ended in ConnectionLost.

    The remote kernel too (``remote_magics.kernel``): it hung the same way (CI, notebook 04's
    start: "Kernel didn't respond in 60 seconds"), and JupyterLab's restarter, which starts a
    kernel that died on new ports, never saw it die."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    probes = [socket.socket() for _ in range(5)]
    for probe in probes:  # all open at once: five different ports
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in probes]
    for probe in probes:
        probe.close()
    connection = tmp_path / "kernel.json"
    chosen = dict(shell_port=ports[0], iopub_port=ports[1], stdin_port=ports[2],
                  control_port=ports[3], hb_port=ports[4])
    chosen[taken] = busy.getsockname()[1]
    connection.write_text(json.dumps(dict(
        chosen, ip="127.0.0.1", key="k" * 32, transport="tcp", signature_scheme="hmac-sha256",
        kernel_name="")))
    process = subprocess.Popen([sys.executable, "-m", module, "-f",
                                str(connection)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"{module} kept running after it failed to bind its ports")
    finally:
        busy.close()
    assert process.returncode == 1
    assert "Address already in use" in err


def test_a_restart_whose_kernel_cannot_bind_its_port_restarts_on_others():
    """A restart keeps the kernel's ports, which another process may take between the old
    kernel's end and the new one's bind (seen under load, test_uploads' restart: "Address
    already in use"): the new kernel ended at once and the restart failed with
    RemoteKernelDied. It restarts on new ports instead."""
    target = remote_magics.connect(name="rel-restart-port")
    km = target.kernel_manager
    blocker = socket.socket()
    start = km._async_start_kernel  # (what restart_kernel calls)
    taken = []

    async def start_with_the_heartbeat_port_taken(**kwargs):
        if not taken:  # the first restart: its heartbeat port is another process's now
            blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            blocker.bind(("127.0.0.1", km.hb_port))
            blocker.listen(1)
            taken.append(km.hb_port)
        return await start(**kwargs)

    km._async_start_kernel = start_with_the_heartbeat_port_taken
    try:
        target.restart(timeout=60)
        assert taken and km.hb_port != taken[0]
        namespace: dict = {}
        target.run("x = 41 + 1", namespace)
        assert namespace["x"] == 42
    finally:
        km._async_start_kernel = start
        blocker.close()
        remote_magics.registry.remove("rel-restart-port")


def test_a_request_whose_reply_never_came_stops_being_waited_for(worker, capsys):
    """The client stops waiting for a request an interrupt did not stop, and says so before each
    later one until its reply comes in; if that reply was lost (one cut short is dropped), every
    later cell said the target was still running it. A reply to a later request says it has
    finished too (the engine answers one request at a time, in order)."""
    worker.connection.abandon("a request whose reply was lost")
    capsys.readouterr()
    assert worker.run("first = 1", {}, timeout=30).values == {"first": 1}
    assert "still running the cell that did not stop" in capsys.readouterr().out
    assert worker.run("second = 2", {}, timeout=30).values == {"second": 2}
    assert "still running" not in capsys.readouterr().out


def test_an_error_whose_text_utf8_cannot_encode_keeps_what_the_cell_bound(shell, run):
    """Hunt 26 H26-24: a lone surrogate in an error's message (half an emoji, from scraped
    text) made the reply unsendable: after ten seconds ConnectionLost, and the names the cell
    bound were lost. The reply goes with that text escaped. (A plain ipykernel drops such an
    error's display and shows nothing; we show it, escaped, rather than hide an error.)"""
    try:
        started = time.monotonic()
        result = run("%%remote\nimport json\ntweet = json.loads('\"broken \\\\ud83d emoji\"')\n"
                     "rows = 10\nraise ValueError(f'cannot clean {tweet}')")
        assert time.monotonic() - started < 8
        assert isinstance(result.error_in_exec, ValueError), result.error_in_exec
        assert "\\ud83d" in str(result.error_in_exec)
        assert shell.user_ns["rows"] == 10 and shell.user_ns["tweet"] == "broken \ud83d emoji"
    finally:
        for name in ("json", "tweet", "rows"):
            shell.user_ns.pop(name, None)


def test_no_frame_of_a_small_message_is_freed_where_a_stop_would_be_lost(target, monkeypatch):
    """pyzmq checks for signals as it frees a received frame, and a KeyboardInterrupt raised
    there is lost ("Exception ignored in: Frame.__dealloc__"): CI's stop-button test saw its
    stop do nothing. A message's frames are let go of while a stop is held, and its small
    buffers are copies, so no frame of theirs is freed later, outside it."""
    import zmq
    from remote_magics.client.connection import Connection

    taken: list = []
    original = Connection._recv

    def recording(self, sock):
        msg = original(self, sock)
        if msg is not None:
            taken.append(msg)
        return msg

    monkeypatch.setattr(Connection, "_recv", recording)
    ns: dict = {}
    target.run("small = list(range(100))", ns, download="all")
    assert ns["small"] == list(range(100))
    buffers = [buffer for msg in taken for buffer in msg["buffers"]]
    assert buffers, "the reply carried its value in a buffer"
    assert not any(isinstance(buffer.obj, zmq.Frame) for buffer in buffers)
