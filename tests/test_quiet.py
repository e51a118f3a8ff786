"""A request that made no output gets a ``quiet`` reply and no end-of-output marker; output of
every kind is never lost to that shortcut, nor shown under a later cell.

The engines here watch their file descriptors as in a notebook: pytest's own marker, which
turns ipykernel's watch off, is kept out of their environment.
"""
from __future__ import annotations

import pytest

import remote_magics
from remote_magics.client.connection import LATE_MARKER
from remote_magics.wire import protocol

#: Cells of each kind per test: a lost or late output shows up in some of them if it can happen.
ROUNDS = 25


@pytest.fixture(scope="module")
def engine(shell):
    """A kernel of this module's own, started as a notebook would start it (fd output watched)."""
    mp = pytest.MonkeyPatch()
    mp.delenv("PYTEST_CURRENT_TEST", raising=False)
    try:
        target = remote_magics.connect(name="quiet")
    finally:
        mp.undo()
    yield target
    if "quiet" in remote_magics.registry.targets:
        remote_magics.disconnect("quiet")


def _run(target, code: str, ns: dict | None = None) -> tuple[dict, str]:
    """Run ``code``; the reply's content and the text of the stream output it showed."""
    shown: list = []
    ns = {} if ns is None else ns
    pending = target.start_run(code, ns, on_output=shown.append)
    pending.wait()
    target.finish_run(pending, ns)
    text = "".join(m["content"].get("text", "") for m in shown if m["msg_type"] == "stream")
    return pending.reply.content, text


def test_a_cell_that_outputs_nothing_gets_a_quiet_reply(engine):
    _run(engine, "pass")  # after whatever came before (its marker is output of a kind)
    for _ in range(3):
        content, text = _run(engine, "x = 1 + 1")
        assert content.get(protocol.QUIET) is True
        assert text == ""


def test_the_engine_watches_its_file_descriptors_as_in_a_notebook(engine):
    content, _ = _run(engine, "import sys\nwatched = sys.stdout._fid is not None", ns := {})
    assert ns["watched"] is True  # else the C-output tests below would prove nothing


@pytest.mark.parametrize("code, expected", [
    ("print('py {i}')", "py {i}\n"),
    ("import sys\nsys.stderr.write('err {i}\\n')", "err {i}\n"),
    ("import os\nos.write(1, b'fd1 {i}\\n')", "fd1 {i}\n"),  # as C code writes: no Python stream
    ("import os\nos.write(2, b'fd2 {i}\\n')", "fd2 {i}\n"),
    ("import subprocess\nsubprocess.run(['echo', 'child {i}'], check=True)", "child {i}\n"),
    ("import threading\nt = threading.Thread(target=print, args=('thread {i}',))\n"
     "t.start()\nt.join()", "thread {i}\n"),
])
def test_output_of_every_kind_is_shown_under_its_own_cell_and_never_quiet(engine, code, expected):
    for i in range(ROUNDS):
        content, text = _run(engine, code.format(i=i))
        assert expected.format(i=i) in text, f"round {i}: {text!r}, {content}"
        assert LATE_MARKER not in text  # nothing of an earlier round came late
        assert content.get(protocol.QUIET) is not True


def test_displayed_data_makes_the_reply_not_quiet_and_is_shown(engine):
    for i in range(ROUNDS):
        shown: list = []
        ns: dict = {}
        pending = engine.start_run(f"from IPython.display import display\ndisplay({{'n': {i}}})",
                                   ns, on_output=shown.append)
        pending.wait()
        engine.finish_run(pending, ns)
        assert pending.reply.content.get(protocol.QUIET) is not True
        assert any(m["msg_type"] == "display_data" and str(i) in str(m["content"]["data"])
                   for m in shown)


def test_a_fork_during_the_cell_makes_its_reply_not_quiet(engine):
    content, _ = _run(engine, "import os\nchild = os.fork()\nif child == 0:\n    os._exit(0)\n"
                              "os.waitpid(child, 0)")
    assert content.get(protocol.QUIET) is not True


def test_streams_the_cell_replaced_make_no_quiet_reply(engine):
    content, text = _run(engine, "import io, sys\nsaved = sys.stdout\nsys.stdout = io.StringIO()\n"
                                 "try:\n    pass\nfinally:\n    replaced = sys.stdout\n"
                                 "sys.stdout = saved\nsys.stdout = replaced", ns := {})
    try:
        assert content.get(protocol.QUIET) is not True
    finally:
        _run(engine, "sys.stdout = saved", ns)
    assert _run(engine, "pass")[0].get(protocol.QUIET) is True  # ours again: quiet again


def _thread_output_kept(engine) -> dict:
    """A remote cell's thread prints after its cell ended, during a request that shows nothing:
    the connection keeps that output (it is its first cell's). The names, ``done`` a proxy."""
    ns: dict = {}
    engine.run("import threading\ngo, done = threading.Event(), threading.Event()\n"
               "def later():\n    go.wait(60)\n    print('printed by the thread')\n    done.set()\n"
               "threading.Thread(target=later, daemon=True).start()", ns, download="none")
    engine.run("go.set()\ndone.wait(60)", ns, on_output=None)
    return ns


def test_a_quiet_cell_shows_late_output_the_connection_kept(engine):
    _thread_output_kept(engine)
    engine.info()
    content, text = _run(engine, "pass")
    assert LATE_MARKER + "printed by the thread\n" in text


def test_a_plain_cell_calling_a_proxy_shows_late_output_the_connection_kept(engine, capsys):
    """A live operation shows what it prints (hunt 13 C2), so late output kept until then shows
    in that cell too, marked late, as it would under the next remote cell."""
    ns = _thread_output_kept(engine)
    capsys.readouterr()
    assert ns["done"].is_set() is True  # a live operation: the kept output shows with it
    assert LATE_MARKER + "printed by the thread\n" in capsys.readouterr().out
    assert LATE_MARKER not in _run(engine, "pass")[1]  # shown once


def test_a_kernel_we_attach_to_still_ends_output_with_its_marker(engine):
    """A plain ipykernel's streams prove nothing: its replies are never quiet, output arrives."""
    import sys

    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class Specs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"], display_name="plain", language="python")

    km = KernelManager(kernel_name="plain", kernel_spec_manager=Specs())
    km.start_kernel()
    try:
        target = remote_magics.connect(km.connection_file, name="quiet-attached")
        try:
            for i in range(5):
                content, text = _run(target, f"print('attached {i}')")
                assert f"attached {i}\n" in text
                assert content.get(protocol.QUIET) is not True
            assert _run(target, "pass")[0].get(protocol.QUIET) is not True
        finally:
            remote_magics.disconnect("quiet-attached")
    finally:
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


def test_output_a_thread_wrote_between_cells_is_shown_under_the_next_cell(engine):
    """Written between cells (the stream flushes its buffer every 0.2 s): the next cell shows
    it, marked late, whether a request in between kept it or the cell did."""
    ns: dict = {}
    _run(engine, "import threading\ngo = threading.Event()\n"
                 "def later():\n    go.wait(60)\n    print('between cells')\n"
                 "thread = threading.Thread(target=later, daemon=True)\nthread.start()", ns)
    # it has printed: the text waits in the buffer, or is on its way
    engine.run("go.set()\nthread.join(60)", ns, on_output=None)
    content, text = _run(engine, "pass")
    assert LATE_MARKER + "between cells\n" in text
