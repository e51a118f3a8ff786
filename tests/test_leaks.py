"""Nothing left behind, nothing lost: results of replies that never arrived, connection files,
and output printed after its cell ended (by a thread it started, or a forked child)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import remote_magics
from remote_magics import ConnectionLost
from remote_magics.client.connection import LATE_MARKER
from tests.conftest import network_path


@pytest.fixture(scope="module")
def engine(shell):
    """A kernel of this module's own, whose object count the tests read."""
    target = remote_magics.connect(name="leaks")
    yield target
    if "leaks" in remote_magics.registry.targets:
        remote_magics.disconnect("leaks")


@pytest.fixture
def doomed(shell, request):
    """A kernel the test may stop with SIGSTOP."""
    name = f"leaks-{request.node.name[:20]}"
    target = remote_magics.connect(name=name)
    yield target
    os.kill(target.details["pid"], signal.SIGCONT)
    if name in remote_magics.registry.targets:
        remote_magics.disconnect(name)


def _texts(messages: list) -> str:
    return "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")


# --- item 10: results whose reply never reached the client ----------------------------------

@pytest.mark.parametrize("download", ["none", "all"])
def test_results_of_a_run_given_up_on_are_released_by_the_next_request(engine, download):
    held = engine.info()["objects"]
    pending = engine.start_run("a = list(range(10))\nb = {'k': 1}\na", {}, download=download)
    del pending  # what a second press of stop leaves: the reply is never read
    assert engine.info()["objects"] == held  # the next request released what it held


def test_a_proxy_that_dies_while_releases_are_being_flushed_is_released_without_a_hang(engine):
    """A collection can run inside the target's release lock (flush_releases makes a new list
    there) and free a proxy in a reference cycle: its __del__ queues a release in that same
    thread. The lock is reentrant: no hang, and the release still goes."""
    import threading

    held = engine.info()["objects"]
    holder = [engine.run("gone = list(range(10))", {}, download="none").values["gone"]]
    assert engine.info()["objects"] == held + 1
    finished = threading.Event()

    def flushing_while_it_dies() -> None:
        with engine._releases_lock:  # where flush_releases is when the collection runs
            holder.clear()  # the proxy's last reference: __del__ runs here
        finished.set()

    worker = threading.Thread(target=flushing_while_it_dies, daemon=True)
    worker.start()
    worker.join(10)
    assert finished.is_set(), "a release queued inside the release lock hung its thread"
    engine.flush_releases()
    assert engine.info()["objects"] == held


def test_results_of_a_run_whose_reply_arrived_stay_held(engine):
    held = engine.info()["objects"]
    kept = engine.run("kept = list(range(10))", {}, download="none").values["kept"]
    assert engine.info()["objects"] == held + 1
    assert kept.fetch() == list(range(10))
    kept.release()
    assert engine.info()["objects"] == held


def test_a_reply_cut_short_by_a_stopped_kernel_leaves_nothing_held(doomed):
    """SIGSTOP mid-download, then SIGCONT: the 150 MB value the reply held is released."""
    pid = doomed.details["pid"]
    stopped = []

    def on_progress(direction: str, done: int, total: int) -> None:
        if direction == "download" and not stopped:  # the first chunk is here
            os.kill(pid, signal.SIGSTOP)
            stopped.append(done)

    with network_path(doomed), pytest.raises(ConnectionLost, match="heartbeat"):  # in chunks
        doomed.run("big = bytes(150_000_000)", {}, download="all", on_progress=on_progress)
    assert stopped
    os.kill(pid, signal.SIGCONT)
    assert doomed.info()["objects"] == 0
    assert doomed.run("x = 1", {}, download="all").values == {"x": 1}  # and it works on


# --- item 11: connection files ----------------------------------------------------------------

@pytest.mark.parametrize("how", ["exit", "killed"])
def test_engine_connection_file_is_private_in_the_runtime_dir_and_goes_with_the_notebook(
        tmp_path, how):
    runtime = tmp_path / "runtime"
    script = ("import sys, remote_magics\nt = remote_magics.connect()\n"
              "print(t.details['pid'], t.kernel_manager.connection_file, flush=True)\n"
              "sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)})
    try:
        pid, path = proc.stdout.readline().split()
        engine = psutil.Process(int(pid))
        assert os.path.dirname(path) == str(runtime)
        assert os.stat(path).st_mode & 0o777 == 0o600
        if how == "exit":
            proc.stdin.write("\n")
            proc.stdin.flush()
        else:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        engine.wait(timeout=15)  # the engine ends with its notebook
        assert not os.path.exists(path)
        assert list(runtime.iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# --- item 12: output after its cell ended -----------------------------------------------------

THREAD = """
import threading
go, done = threading.Event(), threading.Event()
def later():
    go.wait(60)
    print("printed by the thread")
    done.set()
threading.Thread(target=later, daemon=True).start()
"""


def test_a_threads_output_between_cells_is_shown_marked_late_under_the_next_cell(engine):
    ns: dict = {}
    engine.run(THREAD, ns, download="none")
    # a request that shows nothing: the thread prints during it, or after it (a live
    # operation would show it now: a plain cell calling a proxy shows its output)
    engine.run("go.set()", ns, on_output=None)
    shown: list = []
    engine.run("done.wait(60)", ns, on_output=shown.append)
    text = _texts(shown)
    assert LATE_MARKER + "printed by the thread\n" in text


def test_a_threads_output_during_a_later_cell_is_marked_as_an_earlier_cells(engine):
    ns: dict = {}
    engine.run(THREAD, ns, download="none")
    shown: list = []
    engine.run("go.set()\ndone.wait(60)\nprint('printed by the cell')", ns,
               on_output=shown.append)
    text = _texts(shown)
    assert LATE_MARKER + "printed by the thread\n" in text
    assert "printed by the cell\n" in text
    assert text.count("printed by the thread") == 1


def test_a_forked_childs_output_after_its_cell_reaches_the_notebook_marked_late(engine):
    ns: dict = {}
    engine.run("import os\nr, w = os.pipe()\nchild = os.fork()\n"
               "if child == 0:\n    os.read(r, 1)\n    print('printed by the child')\n"
               "    os._exit(0)\n", ns, download="all")
    shown: list = []
    engine.run("os.write(w, b'x')\nos.waitpid(child, 0)", ns, on_output=shown.append)
    deadline = time.monotonic() + 30
    while "printed by the child" not in _texts(shown) and time.monotonic() < deadline:
        engine.run("pass", {}, on_output=shown.append)  # the parent relays it on its own time
    assert LATE_MARKER + "printed by the child\n" in _texts(shown)


def test_late_output_waits_for_a_request_that_shows_output(engine):
    ns: dict = {}
    engine.run(THREAD, ns, download="none")
    engine.run("go.set()\ndone.wait(60)", ns, on_output=None)  # shows nothing: it keeps it
    engine.info()
    shown: list = []
    engine.run("pass", {}, on_output=shown.append)
    assert LATE_MARKER + "printed by the thread\n" in _texts(shown)


def test_late_output_is_kept_while_a_cell_waits_for_the_targets_jobs(engine):
    from remote_magics import jobs

    ns: dict = {}
    engine.run(THREAD, ns, download="none")
    job = jobs.submit(engine, "go.set()\ndone.wait(60)\nimport time\ntime.sleep(1)", ns)
    shown: list = []
    engine.run("pass", {}, on_output=shown.append)  # waits for the job, then runs
    job.result(60)
    assert LATE_MARKER + "printed by the thread\n" in _texts(shown)
    assert "printed by the thread" not in job.output  # not the job's: its cell did not start it
