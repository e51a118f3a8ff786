"""Big receive buffers used again (wire/recycle.py): never while anything refers to them, given
back to the system in time, and every byte of a frame received into them is the frame's."""
from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

from remote_magics.wire import recycle, shared, streaming
from tests.conftest import network_path

MB = 1 << 20
SIZE = 2 * recycle.MIN_BYTES + 4 * MB  # half of it is still big enough to keep


def _address(view: memoryview) -> int:
    return np.frombuffer(view, dtype=np.uint8).ctypes.data


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv(recycle.ENV, raising=False)
    recycle.release_all()
    gc.collect()
    yield
    recycle.release_all()


def test_memory_is_used_again_only_once_nothing_refers_to_it():
    view, warm = recycle.take(SIZE)
    assert not warm and len(view) == SIZE and not view.readonly
    where = _address(view)
    array = np.frombuffer(view, dtype=np.float64)  # a received frame's array keeps its memory
    array[:] = 7.0
    del view
    assert recycle.kept() == 0
    other, warm = recycle.take(SIZE)
    assert not warm and _address(other) != where, "memory an array still uses was handed out"
    other[:] = b"\x01" * SIZE
    assert (array == 7.0).all()
    del array
    assert recycle.kept() >= SIZE
    again, warm = recycle.take(SIZE - MB)  # a little smaller: the same memory serves
    assert warm and _address(again) == where and len(again) == SIZE - MB
    assert recycle.kept() == 0


def test_a_much_smaller_frame_or_a_small_one_gets_new_memory():
    view, _ = recycle.take(SIZE)
    del view
    half, warm = recycle.take(SIZE // 2)
    assert not warm, "a buffer twice the frame's size would waste half of itself"
    small, warm = recycle.take(MB)
    assert not warm and recycle.kept() == SIZE
    del half, small
    assert recycle.kept() == SIZE + SIZE // 2  # the small one was never kept


def test_kept_memory_goes_back_to_the_system_after_its_time(monkeypatch):
    monkeypatch.setattr(recycle, "KEEP_SECONDS", 0.3)
    view, _ = recycle.take(SIZE)
    del view
    assert recycle.kept() == SIZE
    deadline = time.monotonic() + 10
    while recycle.kept() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recycle.kept() == 0
    later, warm = recycle.take(SIZE)
    assert not warm


def test_kept_memory_never_passes_its_cap(monkeypatch):
    monkeypatch.setattr(recycle, "CAP_BYTES", 2 * SIZE + MB)
    assert recycle.cap() == 2 * SIZE + MB  # this machine has far more than 8 times that
    views = [recycle.take(SIZE)[0] for _ in range(3)]
    del views
    assert recycle.kept() == 2 * SIZE


def test_recycling_turned_off_by_its_variable(monkeypatch):
    monkeypatch.setenv(recycle.ENV, "0")
    view, _ = recycle.take(SIZE)
    del view
    assert recycle.kept() == 0
    assert not recycle.take(SIZE)[1]


def test_a_forked_child_starts_with_nothing_kept():
    view, _ = recycle.take(SIZE)
    del view
    assert recycle.kept() == SIZE
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: say what it keeps, and go without running any teardown
        os.write(write, str(recycle.kept()).encode())
        os._exit(0)
    os.close(write)
    try:
        said = os.read(read, 64)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert said == b"0" and recycle.kept() == SIZE


@pytest.mark.parametrize("reaper", [False, True])
def test_a_process_ending_with_a_received_array_still_held_exits(tmp_path, reaper):
    """At the interpreter's end the array's memory is not kept: a reaper thread started then
    never runs, and ``Thread.start`` would wait for it for ever (a kernel that never exits)."""
    import subprocess
    import sys

    script = tmp_path / "ends.py"
    script.write_text(
        "import numpy as np\n"
        "from remote_magics.wire import recycle\n"
        f"if {reaper!r}:\n"
        "    view, _ = recycle.take(recycle.MIN_BYTES)\n"
        "    del view  # kept: a reaper runs now\n"
        "view, _ = recycle.take(recycle.MIN_BYTES + 4096)\n"
        "held = np.frombuffer(view, dtype=np.uint8)\n"
        "del view\n"
        "print('done', flush=True)\n")
    ended = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=60, cwd=os.getcwd())
    assert ended.returncode == 0 and ended.stdout == "done\n", ended.stderr


# --- through a real engine ----------------------------------------------------------------

ENGINE_STATS = "from remote_magics.wire import recycle as _r\nstats = dict(_r.stats)"


def _engine_reused(target) -> int:
    return target.run(ENGINE_STATS, {}, download="all").values["stats"].get("reused", 0)


@pytest.mark.parametrize("path", ["same host", "data port", "chunks"])
def test_frames_received_into_used_memory_are_exactly_their_own_bytes(target, path,
                                                                      monkeypatch):
    """Uploads and downloads of one size, again and again: from the second on, both sides
    receive into memory an earlier frame used; an array still held keeps its bytes."""
    assert path != "same host" or target.connection.shared_send, "an engine sharing no memory"
    # a same-host reply is pulled (copied into our memory) only while a core is free, else it
    # comes as a sealed segment, mapped as it is: pulled here whatever else loads the machine
    # (that choice has its own test in test_streaming.py)
    monkeypatch.setenv(shared.PULL_ENV, "1")
    n = SIZE // 8
    context = network_path(target, port=path == "data port") if path != "same host" else None
    if context is not None:
        context.__enter__()
    try:
        rng = np.random.default_rng(3)
        held = []
        engine_before, here_before = _engine_reused(target), recycle.stats["reused"]
        for round_ in range(3):
            sent = rng.random(n)
            run = target.run("total = float(x.sum())\ny = x * 2", {"x": sent}, download="all")
            assert run.values["total"] == pytest.approx(float(sent.sum()), rel=1e-12)
            back = run.values["y"]
            assert np.array_equal(back, sent * 2)
            held.append((back, sent))
            if round_ == 0:
                held.clear()  # the first round's memory comes back for the later rounds
                gc.collect()
                target.run("x = y = None", {}, download="none")
        for back, sent in held:  # arrays still held were never written over
            assert np.array_equal(back, sent * 2)
        assert recycle.stats["reused"] > here_before, "downloads never used memory again"
        assert _engine_reused(target) > engine_before, "uploads never used memory again"
    finally:
        if context is not None:
            context.__exit__(None, None, None)
        target.run("x = y = total = None", {}, download="none")


def test_an_upload_is_pulled_into_used_memory_on_the_same_host(target, monkeypatch):
    assert target.connection.shared_send and shared.pull_supported()
    monkeypatch.setenv(shared.PULL_ENV, "1")
    before, engine_before = streaming.stats["shared_lent"], _engine_reused(target)
    payload = np.arange(SIZE // 8, dtype=np.float64)
    for value in (1.0, 2.0):
        payload[-1] = value
        run = target.run("last = float(x[-1])\nfirst = float(x[1])\nx = None", {"x": payload},
                         download="all")
        assert (run.values["last"], run.values["first"]) == (value, 1.0)
    assert streaming.stats["shared_lent"] - before == 2 * payload.nbytes
    assert _engine_reused(target) - engine_before >= payload.nbytes  # the second went there
