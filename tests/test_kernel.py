"""The remote kernel, driven as a frontend drives it: execute_requests to the installed kernelspec.

The kernelspec is installed by the command line into a temporary prefix, never the user's own
Jupyter directories; one kernel (and the engine its first cell starts) serves the module.
"""
from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from remote_magics.cells.local_cell import names_read
from remote_magics.wire.in_place import update_in_place
from remote_magics.kernel import route, spec_manager, start_kernel
from tests.conftest import plain

TIMEOUT = 120


def execute(kc, code: str, timeout: float = TIMEOUT) -> tuple[dict, list[dict]]:
    """Send one execute_request; its reply content and the iopub messages it produced."""
    msg_id = kc.execute(code)
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                break
            continue
        outputs.append(msg)
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], outputs


def text_of(outputs: list[dict]) -> str:
    parts = []
    for msg in outputs:
        content = msg["content"]
        if msg["msg_type"] == "stream":
            parts.append(content["text"])
        elif msg["msg_type"] == "error":
            parts.append("\n".join(content["traceback"]) + "\n")
        elif "data" in content:
            parts.append(content["data"].get("text/plain", "") + "\n")
    return plain("".join(parts))


def install(prefix, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "remote_magics", "install-kernel", "--prefix",
                    str(prefix), *args], check=True, capture_output=True, timeout=60)


class Frontend:
    """A kernel started from an installed kernelspec, and a client talking to it (started
    again on new ports if it ends as it starts: :func:`remote_magics.kernel.start_kernel`)."""

    def __init__(self, prefix, kernel_name: str, cwd) -> None:
        self.km, self.kc = start_kernel(kernel_name, str(prefix), cwd=str(cwd), timeout=60)

    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid

    def run(self, code: str, timeout: float = TIMEOUT) -> tuple[dict, str]:
        reply, outputs = execute(self.kc, code, timeout)
        return reply, text_of(outputs)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)
        self.km.cleanup_resources()


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    path = tmp_path_factory.mktemp("jupyter-prefix")
    install(path, "--name", "tk", "--download", "small", "--bytes", "10kB")
    return path


@pytest.fixture(scope="module")
def frontend(prefix, tmp_path_factory):
    front = Frontend(prefix, "remote-tk", tmp_path_factory.mktemp("remote-kernel-cwd"))
    yield front
    front.close()


def engine_pid(front: Frontend) -> int:
    reply, text = front.run("%%local\nimport remote_magics\n"
                            "print('engine', remote_magics.registry.get().details['pid'])")
    assert reply["status"] == "ok", text
    return int(text.split("engine", 1)[1].split()[0])


def test_kernelspec_is_listed_by_jupyter_with_remote_display_name(prefix):
    specs = spec_manager(prefix).get_all_specs()
    spec = specs["remote-tk"]["spec"]
    assert spec["display_name"] == "Python 3 (remote: tk)"
    assert spec["argv"][:3] == [sys.executable, "-m", "remote_magics.kernel"]
    assert "--RemoteMagics.bytes=10000" in spec["argv"]
    assert spec["metadata"]["remote_magics"]["target"] == "local"


def test_kernel_info_names_the_remote_kernel(frontend):
    frontend.kc.kernel_info()
    reply = frontend.kc.get_shell_msg(timeout=30)
    assert reply["content"]["implementation"] == "remote_magics.kernel"
    assert reply["content"]["language_info"]["name"] == "python"
    assert "target 'tk'" in reply["content"]["banner"]


def test_plain_cell_runs_on_the_target_and_its_names_come_back(frontend):
    reply, text = frontend.run("import os\nprint('remote pid', os.getpid())\nanswer = 6 * 7")
    assert reply["status"] == "ok", text
    remote_pid = int(text.split("remote pid")[1].split()[0])
    assert remote_pid != frontend.pid
    assert psutil.Process(remote_pid).ppid() == frontend.pid  # the engine the kernel started

    reply, text = frontend.run("%%local\nimport os\nprint('local', os.getpid(), answer)")
    assert reply["status"] == "ok", text
    assert text.strip() == f"local {frontend.pid} 42"


def test_last_expression_is_the_cells_result(frontend):
    reply, outputs = execute(frontend.kc, "import os\nos.getpid(), 'from the engine'")
    assert reply["status"] == "ok"
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert len(results) == 1
    assert f"({engine_pid(frontend)}, 'from the engine')" == results[0]["content"]["data"]["text/plain"]
    assert results[0]["content"]["execution_count"] == reply["execution_count"]


def test_big_value_stays_remote_as_proxy_per_kernelspec_policy(frontend):
    reply, text = frontend.run("big = list(range(100_000))\nsmall = big[:3]")
    assert reply["status"] == "ok", text
    reply, outputs = execute(frontend.kc, "%%local\nprint(type(big).__name__, small)\nbig")
    assert reply["status"] == "ok"
    assert "RemoteObject [0, 1, 2]" in text_of(outputs)
    shown = [m["content"]["data"] for m in outputs if m["msg_type"] == "execute_result"]
    assert "RemoteObject" in shown[0]["text/html"] and "100,000" in shown[0]["text/plain"]
    reply, text = frontend.run("total = sum(big)")  # the proxy goes back as a reference
    assert reply["status"] == "ok", text
    reply, text = frontend.run("%%local\nprint(total)")
    assert text.strip() == str(sum(range(100_000)))


def test_explicit_remote_magic_runs_here_on_the_engines_names_and_target_magics_work(frontend):
    # on purpose: a %%remote cell is the magic, run in this kernel with the engine's names (as
    # %%local), so its proxy goes back into the engine as the object it points to
    reply, text = frontend.run("%%remote --download=none\ntiny = 5")
    assert reply["status"] == "ok", text
    reply, text = frontend.run("print(type(tiny).__name__, tiny + 1)")
    assert text.strip() == "int 6"
    reply, text = frontend.run("%remote_targets")
    assert reply["status"] == "ok", text
    assert "tk" in text and "yes" in text


def test_a_remote_cell_of_the_remote_kernel_does_not_ask_for_names_and_fails_plainly(frontend):
    """Fetch on first use is off here: the %%remote cell runs in this kernel with the engine's
    names it reads, so a name it reads unseen is a plain NameError, at once."""
    assert frontend.run("unseen_rk = 1")[0]["status"] == "ok"
    reply, text = frontend.run("%%local\nprint(get_ipython().magics_manager.registry["
                               "'RemoteMagics'].fetch_on_first_use)")
    assert text.strip() == "False", text
    reply, outputs = execute(frontend.kc, "%%remote\neval('unseen_' + 'rk')", TIMEOUT)
    assert reply["status"] == "error" and "NameError" in reply["ename"]
    assert "name 'unseen_rk' is not defined" in reply["evalue"]
    assert frontend.run("print(unseen_rk)")[1].strip() == "1"  # an ordinary cell sees it


def test_config_in_a_local_cell_changes_the_download_policy(frontend):
    assert frontend.run("%%local\n%config RemoteMagics.download = 'none'")[0]["status"] == "ok"
    try:
        assert frontend.run("z = [1]")[0]["status"] == "ok"
        reply, text = frontend.run("%%local\nprint(type(z).__name__)")
        assert text.strip() == "RemoteObject"
    finally:
        frontend.run("%%local\n%config RemoteMagics.download = 'small'")


def test_plot_arrives_as_png(frontend):
    reply, outputs = execute(frontend.kc, "import matplotlib.pyplot as plt\n"
                                          "plt.plot([1, 3, 2])\nplt.show()")
    assert reply["status"] == "ok", text_of(outputs)
    images = [m for m in outputs if m["msg_type"] == "display_data"
              and "image/png" in m["content"]["data"]]
    assert len(images) == 1


def test_remote_exception_is_an_error_reply_with_remote_traceback(frontend):
    reply, outputs = execute(frontend.kc, "def ratio(a, b):\n    return a / b\nr = ratio(1, 0)")
    assert reply["status"] == "error"
    assert "ZeroDivisionError" in reply["ename"]
    errors = [m for m in outputs if m["msg_type"] == "error"]
    assert len(errors) == 1
    traceback = plain("\n".join(errors[0]["content"]["traceback"]))
    assert "return a / b" in traceback and "division by zero" in traceback
    reply, text = frontend.run("%%local\nprint('r' in globals())")
    assert text.strip() == "False"


def test_local_with_arguments_is_a_usage_error(frontend):
    reply, text = frontend.run("%%local now\nx = 1")
    assert reply["status"] == "error"
    assert "%%local takes no arguments" in text


def test_interrupt_reaches_the_remote_cell_and_kernel_goes_on(frontend):
    msg_id = frontend.kc.execute(
        "import time\ntry:\n    print('started', flush=True)\n    for _ in range(1200):\n"
        "        time.sleep(0.1)\nexcept KeyboardInterrupt:\n"
        "    print('remote interrupted', flush=True)\n    raise\nfinished = True")
    seen = []
    while True:
        msg = frontend.kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(msg)
        if msg["msg_type"] == "stream" and "started" in msg["content"]["text"]:
            frontend.km.interrupt_kernel()  # SIGINT to the remote kernel, as the stop button
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = frontend.kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert "remote interrupted" in text_of(seen)
    reply, text = frontend.run("%%local\nprint('finished' in globals())")
    assert text.strip() == "False"
    reply, text = frontend.run("print('still', 1 + 1)")
    assert reply["status"] == "ok" and text.strip() == "still 2"


def results_of(outputs: list[dict]) -> list[dict]:
    return [m["content"] for m in outputs if m["msg_type"] == "execute_result"]


def test_functions_read_the_notebooks_current_globals(frontend):
    assert frontend.run("scale = 2\ndef f(x): return x * scale")[0]["status"] == "ok"
    assert frontend.run("scale = 10")[0]["status"] == "ok"
    reply, outputs = execute(frontend.kc, "f(1)")
    assert [r["data"]["text/plain"] for r in results_of(outputs)] == ["10"]


def test_in_place_changes_and_shared_objects_persist(frontend):
    assert frontend.run("lst = [1, 2]\nalias = lst")[0]["status"] == "ok"
    assert frontend.run("lst.append(3)")[0]["status"] == "ok"
    reply, outputs = execute(frontend.kc, "lst, alias is lst")
    assert [r["data"]["text/plain"] for r in results_of(outputs)] == ["([1, 2, 3], True)"]


def test_random_generator_state_advances_between_cells(frontend):
    assert frontend.run("import numpy as np\nrng = np.random.default_rng(1)")[0]["status"] == "ok"
    first = frontend.run("print(rng.integers(100, size=3))")[1]
    second = frontend.run("print(rng.integers(100, size=3))")[1]
    assert first.strip() and second.strip() and first != second


def test_trailing_semicolon_shows_no_result(frontend):
    assert frontend.run("x = 5")[0]["status"] == "ok"
    reply, outputs = execute(frontend.kc, "x;")
    assert reply["status"] == "ok"
    assert [m["msg_type"] for m in outputs] == ["execute_input"]
    reply, outputs = execute(frontend.kc, "x")
    assert [r["data"]["text/plain"] for r in results_of(outputs)] == ["5"]


def test_whos_lists_the_notebooks_variables(frontend):
    assert frontend.run("whos_number = 12345\nwhos_text = 'hello'")[0]["status"] == "ok"
    reply, text = frontend.run("%whos")
    assert reply["status"] == "ok", text
    rows = {line.split()[0]: line.split()[1] for line in text.splitlines()[2:] if line.strip()}
    assert rows["whos_number"] == "int" and rows["whos_text"] == "str"


def test_timeit_works_and_leaves_no_names_behind(frontend):
    reply, text = frontend.run("%timeit -n1 -r1 sum(range(10))")
    assert reply["status"] == "ok" and "per loop" in text, text
    reply, text = frontend.run("%timeit -n1 -r1 timeit_made = sum(range(10))")
    assert reply["status"] == "ok" and "per loop" in text, text
    reply, text = frontend.run("print('timeit_made' in globals())")
    assert text.strip() == "False"


def test_question_mark_shows_the_object_info(frontend):
    assert frontend.run("zz = 1")[0]["status"] == "ok"
    reply, outputs = execute(frontend.kc, "zz?")
    assert reply["status"] == "ok"
    pages = [plain(p["data"]["text/plain"]) for p in reply["payload"] if p["source"] == "page"]
    assert len(pages) == 1
    assert "Type:" in pages[0] and "int" in pages[0] and "String form: 1" in pages[0]


def test_figure_as_last_value_shows_as_an_image(frontend):
    reply, text = frontend.run("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
                               "ax.plot([1, 3, 2])\nplt.close(fig)")
    assert reply["status"] == "ok", text
    reply, outputs = execute(frontend.kc, "fig")
    assert reply["status"] == "ok"
    results = results_of(outputs)
    assert len(results) == 1 and "image/png" in results[0]["data"]
    assert results[0]["execution_count"] == reply["execution_count"]


def test_in_and_out_and_the_execution_count_are_the_engines(frontend):
    reply, outputs = execute(frontend.kc, "41 + 1")
    count = reply["execution_count"]
    inputs = [m["content"]["execution_count"] for m in outputs if m["msg_type"] == "execute_input"]
    assert inputs == [count]
    reply, text = frontend.run(f"print(In[{count}], Out[{count}], _{count}, _i{count})")
    assert text.split() == ["41", "+", "1", "42", "42", "41", "+", "1"]
    assert reply["execution_count"] == count + 1


def test_local_cell_reads_engine_values_and_what_it_binds_goes_back(frontend):
    assert frontend.run("base = 20\nshared = [1]\nsame = shared")[0]["status"] == "ok"
    reply, outputs = execute(frontend.kc, "%%local\nimport os\nderived = base + 1\n"
                                          "local_pid = os.getpid()\nshared.append(2)\nderived")
    assert reply["status"] == "ok", text_of(outputs)
    assert [r["data"]["text/plain"] for r in results_of(outputs)] == ["21"]
    count = reply["execution_count"]
    reply, text = frontend.run("import os\nprint(derived, local_pid == os.getpid(), same, "
                               f"Out[{count}], In[{count}].splitlines()[0])")
    assert reply["status"] == "ok", text
    assert text.split() == ["21", "False", "[1,", "2]", "21", "%%local"]
    reply, text = frontend.run("%%local\nprint(local_pid == os.getpid())")
    assert text.strip() == "True"


def test_local_cell_changes_an_engine_array_in_place(frontend):
    assert frontend.run("import numpy as np\narr = np.zeros(3)\nview = arr[:]")[0]["status"] == "ok"
    reply, text = frontend.run("%%local\narr[0] = 5")
    assert reply["status"] == "ok", text
    reply, text = frontend.run("print(view[0], view.base is arr)")
    assert text.split() == ["5.0", "True"]


def test_a_local_cell_asks_for_the_words_of_its_code_and_strings_not_its_comments():
    code = "x = y + 1  # about zed\n%timeit q.sum()\ndf.query('a > @lim')"
    words = names_read(code, "x = y + 1")
    assert words[:1] == ["y"]
    assert {"q", "df", "lim", "timeit"} <= set(words) and "zed" not in words


def test_engine_updates_a_changed_value_in_place_where_its_type_allows():
    import numpy as np

    class Plain:
        pass

    old_list, old_dict, old_array, old_plain = [1], {"a": 1}, np.zeros(2), Plain()
    new_plain = Plain()
    new_plain.value = 3
    assert update_in_place(old_list, [1, 2]) and old_list == [1, 2]
    assert update_in_place(old_dict, {"b": 2}) and old_dict == {"b": 2}
    assert update_in_place(old_array, np.ones(2)) and old_array.tolist() == [1.0, 1.0]
    assert update_in_place(old_plain, new_plain) and old_plain.value == 3
    assert not update_in_place(old_array, np.ones(3))  # another shape: bound anew
    moved, fresh = np.random.default_rng(1), np.random.default_rng(2)
    assert update_in_place(moved, fresh)  # a generator takes the other's state
    assert moved.integers(1000) == np.random.default_rng(2).integers(1000)
    assert not update_in_place((1,), (2,))


def test_a_read_only_view_of_writable_memory_takes_the_values_through_that_memory():
    """``np.asarray(df['a'])`` under pandas' copy-on-write is a read-only view of the frame's
    writable block (hunt 16 C2b); an array read-only through and through is never written."""
    import numpy as np

    block = np.zeros(4)
    view = block[1:3]
    view.flags.writeable = False
    assert update_in_place(view, np.array([5.0, 6.0]))
    assert block.tolist() == [0.0, 5.0, 6.0, 0.0] and not view.flags.writeable
    owned = np.zeros(2)
    owned.flags.writeable = False  # its own memory, protected by the notebook: bound anew
    assert not update_in_place(owned, np.ones(2)) and owned.tolist() == [0.0, 0.0]
    frozen = np.zeros(4)
    frozen.flags.writeable = False
    over_frozen = frozen[:2]  # a view of memory whose owner is read-only: numpy refuses
    assert not update_in_place(over_frozen, np.ones(2)) and frozen.tolist() == [0.0] * 4
    spread = np.broadcast_to(np.zeros(3), (2, 3))  # one row in memory: never written
    assert not update_in_place(spread, np.ones((2, 3)))
    assert update_in_place(spread, np.zeros((2, 3)))  # equal already: nothing to do


def test_local_value_that_cannot_travel_stays_here_and_says_so(frontend):
    reply, text = frontend.run("%%local\nimport threading\nlock = threading.Lock()")
    assert reply["status"] == "ok"
    assert "'lock' stays in this kernel only" in text
    reply, text = frontend.run("%%local\nprint(type(lock).__name__)")
    assert text.strip() == "lock"
    reply, text = frontend.run("print('lock' in globals())")
    assert text.strip() == "False"


def test_failing_cell_keeps_the_names_bound_before_the_error(frontend):
    reply, text = frontend.run("import math as kept_math\nimport not_installed_module_xyz")
    assert reply["status"] == "error" and reply["ename"] == "ModuleNotFoundError"
    reply, text = frontend.run("print(kept_math.floor(2.5))")
    assert text.strip() == "2"


def test_completion_and_inspection_see_the_engines_names(frontend):
    assert frontend.run("remote_only_value = 7")[0]["status"] == "ok"
    msg_id = frontend.kc.complete("remote_only_v", 13)
    reply = frontend.kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert "remote_only_value" in reply["content"]["matches"]
    msg_id = frontend.kc.inspect("remote_only_value", 17)
    reply = frontend.kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["content"]["found"] is True
    assert "int" in plain(reply["content"]["data"]["text/plain"])
    frontend.kc.complete("%remote_tar", 11)  # our own magics complete here
    reply = frontend.kc.get_shell_msg(timeout=TIMEOUT)
    assert "%remote_targets" in reply["content"]["matches"]


def test_local_cells_before_the_engine_starts_and_a_dying_engine(prefix, tmp_path):
    front = Frontend(prefix, "remote-tk", tmp_path)
    try:
        reply, text = front.run("%%local\nearly = 7")
        assert reply["status"] == "ok" and reply["execution_count"] == 1, text
        reply, outputs = execute(front.kc, "early * 2")
        assert [r["data"]["text/plain"] for r in results_of(outputs)] == ["14"]
        assert reply["execution_count"] == 2
        reply, text = front.run("import os\nos._exit(3)")
        assert reply["status"] == "error" and reply["ename"] == "RemoteKernelDied", text
        assert "died" in text and "%remote_connect --restart tk" in text
        reply, text = front.run("1 + 1")
        assert reply["ename"] == "RemoteKernelDied"
        reply, text = front.run("%%local\nprint('local still works')")
        assert reply["ename"] == "RemoteKernelDied"  # its names would come from the dead engine
        reply, text = front.run("%remote_connect --restart tk")
        assert reply["status"] == "ok", text
        reply, text = front.run("print('early' in globals())")
        assert text.strip() == "False"  # a new engine starts empty, as a restarted kernel
    finally:
        front.close()


def test_unreachable_target_fails_the_cell_with_advice_and_kernel_lives(tmp_path):
    missing = tmp_path / "kernel-gone.json"
    missing.write_text(json.dumps({"shell_port": 1}))  # no key: not a usable connection file
    install(tmp_path, "--name", "gone", "--target", str(missing))
    front = Frontend(tmp_path, "remote-gone", tmp_path)
    try:
        reply, text = front.run("x = 1")
        assert reply["status"] == "error"
        assert "cannot read the connection file" in text and str(missing) in text
        reply, text = front.run("%%local\nprint('alive')")
        assert reply["status"] == "ok" and text.strip() == "alive"
    finally:
        front.close()


def test_shutdown_stops_the_engine_it_started(prefix, tmp_path):
    front = Frontend(prefix, "remote-tk", tmp_path)
    try:
        assert front.run("y = 1")[0]["status"] == "ok"
        engine = psutil.Process(engine_pid(front))
    finally:
        front.close()
    engine.wait(timeout=30)  # raises TimeoutExpired if the engine outlives its kernel
    assert not engine.is_running()


@pytest.mark.parametrize("cell, where, code", [
    ("x = 1", "engine", "x = 1"),
    ("%%local\nx = 1\n", "local", "x = 1\n"),
    ("\n%%local  \nprint(1)", "local", "print(1)"),
    ("%%local now\nx = 1", "here", "%%local now\nx = 1"),
    ("%%remote --download=all\nx = 1", "local", "%%remote --download=all\nx = 1"),
    ("%remote_targets", "here", "%remote_targets"),
    ("# which targets?\n%remote_connect f.json --name b\n%remote_targets", "here",
     "# which targets?\n%remote_connect f.json --name b\n%remote_targets"),
    ("%remote_targets\nx = 1", "engine", "%remote_targets\nx = 1"),
    ("%%time\nx = 1", "engine", "%%time\nx = 1"),
    ("%pip install thing", "engine", "%pip install thing"),
    ("zz?", "engine", "zz?"),
    ("", "here", ""),
    ("  \n", "here", "  \n"),
])
def test_cell_routing(cell, where, code):
    assert route(cell) == (where, code)


def test_a_cell_with_a_top_level_await_runs_as_plainly(frontend):
    """Hunt 20 H20-17: every cell with a top-level ``await`` failed with ConnectionLost after
    an engine traceback (ipykernel's async path asked the shell channel thread the engine does
    without for its parent thread); the code had run."""
    reply, text = frontend.run("import asyncio\nasync def main():\n    await asyncio.sleep(0)\n"
                               "    return 42\nr = await main()\nprint('got', r)")
    assert reply["status"] == "ok", text
    assert text.strip() == "got 42", text
    reply, text = frontend.run("print(r + 1)")
    assert reply["status"] == "ok" and text.strip() == "43", text
