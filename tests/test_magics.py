"""%%remote driven through a real InteractiveShell against a real engine kernel."""
from __future__ import annotations

import gc
import os
import re
import signal
import sys
import threading

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import remote_magics
from remote_magics import RemoteObject, SerializationError
from tests.conftest import IS_PRIME, plain


def test_isprime_example_downloads_all(shell, run):
    run(IS_PRIME)
    res = run("%%remote --download=all\nresult = sum(isPrime(x) for x in range(100_000))")
    assert res.error_in_exec is None
    assert shell.user_ns["result"] == 9594


def test_small_policy_keeps_big_list_remote_and_proxy_is_reused(shell, run, target):
    run(IS_PRIME)
    res = run("%%remote --download=small --bytes 100000\n"
              "primes = [x for x in range(500_000) if isPrime(x)]\nn = len(primes)")
    assert res.error_in_exec is None
    assert shell.user_ns["n"] == 41540 and type(shell.user_ns["n"]) is int
    primes = shell.user_ns["primes"]
    assert isinstance(primes, RemoteObject)
    text = repr(primes)
    assert "list" in text and "41,540" in text and "MB" in text and "'default'" in text
    assert "list" in primes._repr_html_()

    res = run("%%remote\nlast = primes[-100:]")
    assert res.error_in_exec is None
    assert shell.user_ns["last"][-1] == 499979 and len(shell.user_ns["last"]) == 100
    assert target.last_run.bytes_sent < 10_000  # the proxy went as a reference
    assert target.last_run.bytes_received < 10_000
    whole = primes.fetch()
    assert len(whole) == 41540 and whole[:4] == [0, 1, 2, 3]


def test_augmented_read_of_local_name(shell, run):
    shell.user_ns["x"] = 41
    assert run("%%remote\nx = x + 1").error_in_exec is None
    assert shell.user_ns["x"] == 42


def test_comprehension_and_lambda_read_notebook_names(shell, run):
    shell.user_ns.update(scale=3, offset=1)
    res = run("%%remote\nf = lambda v: v * scale\nys = [f(i) + offset for i in range(4)]")
    assert res.error_in_exec is None
    assert shell.user_ns["ys"] == [1, 4, 7, 10]
    assert shell.user_ns["f"](2) == 6


def test_function_calling_another_notebook_function(shell, run):
    run("def inner(v):\n    return v * 10\ndef outer(v):\n    return inner(v) + 1")
    assert run("%%remote\nz = outer(4)").error_in_exec is None
    assert shell.user_ns["z"] == 41


def test_notebook_class_and_instance_round_trip(shell, run):
    run("class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"
        "    def norm2(self):\n        return self.x ** 2 + self.y ** 2\np0 = Point(3, 4)")
    res = run("%%remote --download=all\np1 = Point(p0.x + 1, p0.y)\nd = p0.norm2()")
    assert res.error_in_exec is None
    assert shell.user_ns["d"] == 25
    p1 = shell.user_ns["p1"]
    assert (p1.x, p1.y, p1.norm2()) == (4, 4, 32)


@pytest.mark.parametrize("policy", ["all", "small", "none"])
def test_200mb_array_round_trip_under_each_policy(shell, run, target, policy):
    big = np.arange(25_000_000, dtype=np.float64)  # 200 MB
    shell.user_ns["big"] = big
    res = run(f"%%remote --download={policy}\nback = big * 1.0\nback[0] = -1.0")
    assert res.error_in_exec is None
    assert target.last_run.bytes_sent >= big.nbytes
    back = shell.user_ns.pop("back")
    if policy == "all":
        assert isinstance(back, np.ndarray)
        assert target.last_run.bytes_received >= big.nbytes
    else:
        assert isinstance(back, RemoteObject) and back.shape == (25_000_000,)
        assert "float64" in repr(back)
        back = back.fetch()
    assert back[0] == -1.0 and np.array_equal(back[1:], big[1:])
    del shell.user_ns["big"]


def test_last_expression_is_the_cells_result(shell, run):
    res = run("%%remote\n6 * 7")
    assert res.error_in_exec is None and res.result == 42


def test_trailing_semicolon_silences_the_result_as_in_a_plain_cell(shell, run):
    with capture_output() as shown:
        res = run("%%remote\nfrom itertools import count\nnext(count(3));")
    assert res.error_in_exec is None and res.result is None
    assert "3" not in shown.stdout and not shown.outputs  # no Out[n], as locally
    assert run("%%remote\nnext(iter([3]))").result == 3  # without the ';' it shows


def test_class_of_a_lazily_imported_module_comes_back_as_itself(shell, run):
    res = run("%%remote --download=all\nimport numpy as np\n"
              "r = np.zeros(2, dtype=[('age', int)]).view(np.recarray)\nr.age[1] = 7")
    assert res.error_in_exec is None
    assert type(shell.user_ns["r"]) is np.recarray
    assert shell.user_ns["r"]["age"].tolist() == [0, 7]


def test_output_streams_while_the_cell_runs(target):
    import time

    arrivals = []
    code = "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')"
    target.run(code, {}, on_output=lambda msg: arrivals.append((time.monotonic(), msg)))
    finished = time.monotonic()
    texts = [(t, m["content"].get("text", "")) for t, m in arrivals if m["msg_type"] == "stream"]
    first = next(t for t, text in texts if "first" in text)
    assert any("second" in text for _, text in texts)
    assert finished - first > 0.8  # 'first' arrived while the remote still slept


def test_remote_matplotlib_figure_comes_back_as_png(shell, run):
    with capture_output() as captured:
        res = run("%%remote\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    assert res.error_in_exec is None
    assert any("image/png" in out.data for out in captured.outputs)


def test_remote_html_repr_shows_as_html(shell, run):
    with capture_output() as captured:
        res = run("%%remote\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))")
    assert res.error_in_exec is None
    assert any(out.data.get("text/html") == "<b>hi</b>" for out in captured.outputs)


def test_remote_zero_division_is_caught_as_zero_division(shell, run):
    shell.user_ns.pop("never", None)
    res = run("%%remote\nnever = 1\n1/0")
    err = res.error_in_exec
    assert isinstance(err, ZeroDivisionError)
    assert isinstance(err, remote_magics.RemoteError)
    assert err.ename == "ZeroDivisionError"
    # a frontend is told what a plain cell tells it (ipykernel's ename, evalue)
    assert type(err).__name__ == "ZeroDivisionError" and str(err) == "division by zero"
    text = plain("\n".join(err._render_traceback_()))
    assert text.startswith("Remote error on target 'default':")
    assert re.search(r"Cell In\[\d+\], line 2\n      1 never = 1\n----> 2 1/0", text)
    assert shell.user_ns["never"] == 1  # bound before the error: kept, as in a plain cell


def test_a_remote_error_of_a_class_only_the_remote_side_has_is_named_as_there(shell, run):
    res = run("%%remote\nclass Refused(Exception):\n    pass\nraise Refused('no')")
    err = res.error_in_exec
    assert isinstance(err, remote_magics.RemoteError)
    assert type(err).__name__ == "Refused" and str(err) == "no" and err.target == "default"


def test_a_failing_cell_keeps_what_it_bound_before_the_error(shell, run):
    """Issue 13 cause 6: `import numpy as np` then `import not_installed` keeps np."""
    for name in ("np_kept", "total", "gone", "after"):
        shell.user_ns.pop(name, None)
    shell.user_ns["gone"] = "here"
    shell.user_ns["maybe"] = "stays"
    res = run("%%remote --download=all\nimport numpy as np_kept\n"
              "total = sum(range(10))\ndel gone\nimport not_installed_anywhere\n"
              "after = 1\ndel maybe")
    assert isinstance(res.error_in_exec, ModuleNotFoundError)
    assert shell.user_ns["np_kept"] is np and shell.user_ns["total"] == 45
    assert "gone" not in shell.user_ns  # deleted before the error
    assert "after" not in shell.user_ns and shell.user_ns["maybe"] == "stays"  # never reached


def test_a_star_import_brings_its_names_back(shell, run):
    shell.user_ns.pop("sqrt", None)
    res = run("%%remote --download=all\nfrom math import *")
    assert res.error_in_exec is None
    import math
    assert shell.user_ns["sqrt"] is math.sqrt and shell.user_ns["pi"] == math.pi


def test_magics_and_query_strings_inside_a_remote_cell_see_the_notebooks_names(shell, run,
                                                                               target):
    """Issue 13 cause 4: `%timeit x.sum()`, `%time z = y.sum()`, `df.query('a > @lim')`."""
    import pandas as pd

    shell.user_ns.update(xs_magic=np.arange(10), ys_magic=np.arange(5), lim_magic=2,
                         frame_magic=pd.DataFrame({"a": [1, 2, 3, 4]}))
    shell.user_ns.pop("zs_magic", None)
    res = run("%%remote --download=all\n%timeit -n1 -r1 xs_magic.sum()\n"
              "%time zs_magic = ys_magic.sum()\n"
              "picked = frame_magic.query('a > @lim_magic')\nevaluated = eval('lim_magic + 1')")
    assert res.error_in_exec is None
    assert shell.user_ns["zs_magic"] == 10
    assert shell.user_ns["picked"]["a"].tolist() == [3, 4] and shell.user_ns["evaluated"] == 3
    leftover = target.run("import sys\nshell_names = sorted(n for n in get_ipython().user_ns "
                          "if n.endswith('_magic'))", {}, download="all").values
    assert leftover["shell_names"] == []  # %timeit copied nothing into the kernel's own names


def test_values_a_cell_changes_in_place_change_in_the_notebook_for_every_alias(shell, run):
    """Issue 13 cause 1: in-place changes come back, into the same local objects."""
    import pandas as pd

    shell.user_ns.update(lst_ip=[1, 2, 3], d_ip={"a": 1}, x2_ip=np.zeros((2, 2)),
                         series_ip=pd.Series([1.0, 2.0], index=["a", "b"]))
    shell.user_ns["alias_lst"] = shell.user_ns["lst_ip"]
    shell.user_ns["alias_x2"] = shell.user_ns["x2_ip"]
    res = run("%%remote\nlst_ip.append(4)\nd_ip['k'] = 'v'\nx2_ip[0, 0] = 12\n"
              "series_ip['e'] = 1.25")
    assert res.error_in_exec is None
    assert shell.user_ns["alias_lst"] == [1, 2, 3, 4]  # the same list, changed
    assert shell.user_ns["lst_ip"] is shell.user_ns["alias_lst"]
    assert shell.user_ns["d_ip"] == {"a": 1, "k": "v"}
    assert shell.user_ns["alias_x2"][0, 0] == 12 and shell.user_ns["x2_ip"] is shell.user_ns["alias_x2"]
    assert shell.user_ns["series_ip"]["e"] == 1.25


def test_values_over_the_watch_limit_changed_in_place_come_back_too(shell, run, target):
    """Hunt 18 C9: a value whose pickle passed the engine's watch limit (64 MiB) was not
    watched, so four new columns of a 189 MB DataFrame were lost without a word. Its big
    buffers are now watched by their pages: a new column, a write into a block and a write
    into an array inside a dict each come back into the notebook's own objects; a cell that
    only reads them sends nothing back."""
    import pandas as pd

    from remote_magics.engine import core

    rows = core.WATCH_BYTES // 64 + 1  # 8 float64 columns: just over the limit
    frame = pd.DataFrame(np.ones((rows, 8)), columns=list("abcdefgh"))
    held = {"big": np.zeros(rows * 8), "n": 1}
    shell.user_ns.update(big_df=frame, alias_df=frame, held_c9=held)
    try:
        res = run("%%remote --download=all\nbig_df['new'] = big_df['a'] * 2\n"
                  "big_df.loc[3, 'b'] = -1.0\nheld_c9['big'][7] = 5.0")
        assert res.error_in_exec is None
        assert shell.user_ns["big_df"] is frame and shell.user_ns["alias_df"] is frame
        assert list(frame.columns)[-1] == "new" and frame["new"].iloc[-1] == 2.0
        assert frame.loc[3, "b"] == -1.0
        assert shell.user_ns["held_c9"] is held and held["big"][7] == 5.0
        # read only: nothing over the limit comes back
        res = run("%%remote --download=all\ntotal_c9 = float(big_df['b'].sum()) + "
                  "float(held_c9['big'].sum())")
        assert res.error_in_exec is None
        assert shell.user_ns["total_c9"] == rows - 2.0 + 5.0
        assert target.last_run.bytes_received < 1 << 20
        # a function that stays remote, called plainly with the big value, changes it too
        res = run("%%remote --download=none\ndef widen_c9(frame):\n    frame['z'] = 1.0")
        assert res.error_in_exec is None
        assert run("widen_c9(big_df)").error_in_exec is None
        assert shell.user_ns["big_df"] is frame and list(frame.columns)[-1] == "z"
    finally:
        for name in ("big_df", "alias_df", "held_c9", "total_c9", "widen_c9"):
            shell.user_ns.pop(name, None)


def test_a_name_sent_only_to_be_listed_that_cannot_load_there_is_left_out(shell, run):
    """A cell that lists every name (``%who_ls``) failed whole when one of them could not be
    unpickled in the engine; that name is left out, and the cell runs."""
    run("def _refuse():\n    raise RuntimeError('not here')\n"
        "class Refusing:\n    def __reduce__(self):\n        return _refuse, ()")
    run("refusing_ls = Refusing()\nlisted_ls = 1")
    try:
        res = run("%%remote\nnames_ls = %who_ls\nfound_ls = [n for n in names_ls if "
                  "n.endswith('_ls')]")
        assert res.error_in_exec is None
        assert shell.user_ns["found_ls"] == ["listed_ls"]
    finally:
        for name in ("_refuse", "Refusing", "refusing_ls", "listed_ls", "names_ls", "found_ls"):
            shell.user_ns.pop(name, None)


def test_a_colormap_a_remote_cell_registers_is_found_by_plain_cells(shell, run):
    """Hunt 19 H19-19: ``matplotlib.colormaps.register(...)`` in a remote cell, then a plain
    ``imshow(cmap='mine')`` raised ValueError: the registry is process state, as rcParams."""
    import matplotlib

    try:
        res = run("%%remote\nimport matplotlib\nfrom matplotlib.colors import ListedColormap\n"
                  "matplotlib.colormaps.register(ListedColormap(['r', 'g'], name='mine_h19'))")
        assert res.error_in_exec is None
        assert matplotlib.colormaps["mine_h19"].N == 2
    finally:
        run("%%remote\nimport matplotlib\nmatplotlib.colormaps.unregister('mine_h19')")
        if "mine_h19" in matplotlib.colormaps:
            matplotlib.colormaps.unregister("mine_h19")


def test_the_next_input_a_remote_cell_sets_is_the_notebooks(shell, run, tmp_path):
    """Hunt 19 H19-33: ``%load file.py`` (and ``set_next_input``) in a remote cell did nothing:
    the payload that puts the file's code in the cell stayed in the engine."""
    script = tmp_path / "loaded_h19.py"
    script.write_text("print('from the file')\n")
    shell.rl_next_input = None
    res = run(f"%%remote\n%load {script}")
    assert res.error_in_exec is None
    assert "print('from the file')" in (shell.rl_next_input or "")
    shell.rl_next_input = None
    assert run("%%remote\nget_ipython().set_next_input('hello')").error_in_exec is None
    assert shell.rl_next_input == "hello"
    shell.rl_next_input = None


def test_a_random_generator_used_remotely_moves_on_as_it_would_locally(shell, run):
    run("import numpy as np\nrng_ip = np.random.default_rng(1)")
    first = run("%%remote\na_ip = rng_ip.integers(100, size=3)")
    second = run("%%remote\nb_ip = rng_ip.integers(100, size=3)\nsame = bool((a_ip == b_ip).all())")
    assert first.error_in_exec is None and second.error_in_exec is None
    assert shell.user_ns["same"] is False
    expected = np.random.default_rng(1)
    assert shell.user_ns["a_ip"].tolist() == expected.integers(100, size=3).tolist()
    assert shell.user_ns["b_ip"].tolist() == expected.integers(100, size=3).tolist()


def test_objects_a_cell_only_reads_do_not_come_back(target):
    ns = {"read_only_ip": list(range(1000))}
    kept = ns["read_only_ip"]
    run = target.run("total_ip = sum(read_only_ip)\nn_ip = len(read_only_ip)", ns)
    assert ns["total_ip"] == 499500
    assert set(run.values) == {"total_ip", "n_ip"}  # the list was not sent back
    assert ns["read_only_ip"] is kept


def test_a_result_shows_as_the_remote_kernel_formats_it_with_the_options_set_there(shell, run):
    """pandas options set in a remote cell apply to how its results look, as in a plain kernel."""
    run("%%remote\nimport pandas as pd\npd.set_option('display.max_rows', 4)")
    with capture_output() as shown:
        res = run("%%remote\nimport pandas as pd\npd.Series(range(10))")
    assert res.error_in_exec is None
    assert res.result.tolist() == list(range(10))  # Out[n] is the value itself
    text = shown.stdout + "".join(o.data.get("text/plain", "") for o in shown.outputs)
    assert ".." in text and "Length: 10" in text  # truncated by the engine's max_rows
    run("%%remote\nimport pandas as pd\npd.reset_option('display.max_rows')")


def test_a_result_that_stays_remote_shows_as_a_plain_cell_shows_it_and_out_is_its_proxy(
        shell, run):
    with capture_output() as shown:
        res = run("%%remote --download=none\nclass Shown:\n    def __repr__(self):\n"
                  "        return '<shown remotely>'\nShown()")
    assert isinstance(res.result, RemoteObject)
    assert shell.user_ns["_"] is res.result
    text = shown.stdout + "".join(o.data.get("text/plain", "") for o in shown.outputs)
    assert "<shown remotely>" in text and "RemoteObject" not in text


def test_a_delete_that_does_not_run_leaves_the_name_alone(shell, run):
    shell.user_ns["kept_value"] = [1, 2]
    res = run("%%remote\nif False:\n    del kept_value\ndone = True")
    assert res.error_in_exec is None and shell.user_ns["done"] is True
    assert shell.user_ns["kept_value"] == [1, 2]  # not replaced by anything


def test_unpicklable_local_raises_serialization_error_before_running(shell, run, tmp_path):
    marker = tmp_path / "ran"
    shell.user_ns["lock"] = threading.Lock()
    shell.user_ns["marker_path"] = str(marker)
    res = run("%%remote\nopen(marker_path, 'w').close()\nheld = lock.locked()")
    err = res.error_in_exec
    assert isinstance(err, SerializationError)
    assert err.name == "lock" and "_thread.lock" in str(err)
    assert not marker.exists()
    del shell.user_ns["lock"]


def test_an_open_text_file_stays_where_it_was_opened(shell, run, tmp_path):
    # pydata-book ch. 03: a remote cell's open file came back as a StringIO copy of its text,
    # so its position moved on only here and writes through an r+ handle reached no file
    path = tmp_path / "notes.txt"
    path.write_text("Sueña el rico\nque mas\n", encoding="utf-8")
    shell.user_ns["notes_path"] = str(path)
    res = run("%%remote --download=all\nf1 = open(notes_path, encoding='utf-8')\nfirst = f1.read(3)\n"
              "fh = open(notes_path, 'r+', encoding='utf-8')")
    assert res.error_in_exec is None
    ns = shell.user_ns
    assert ns["first"] == "Sue" and isinstance(ns["f1"], RemoteObject)
    assert isinstance(ns["fh"], RemoteObject) and "TextIOWrapper" in ns["fh"].type_name
    res = run("%%remote --download=all\nf1.seek(3)\nnext_one = f1.read(1)\nat = f1.tell()\n"
              "fh.seek(0, 2)\nfh.write('world\\n')\nfh.flush()\nf1.close()\nfh.close()")
    assert res.error_in_exec is None
    assert (ns["next_one"], ns["at"]) == ("ñ", 5)  # the file's own position, as plainly
    assert path.read_text(encoding="utf-8") == "Sueña el rico\nque mas\nworld\n"
    with open(path, encoding="utf-8") as here:  # opened in the notebook: not sent, and it says so
        ns["here"] = here
        res = run("%%remote\nhere.read()")
        err = res.error_in_exec
        assert isinstance(err, SerializationError) and err.name == "here"
        assert "open it inside the cell, or pass its path" in str(err)
    for name in ("f1", "fh", "here"):
        ns.pop(name, None)


def test_a_memmap_open_for_writing_stays_where_it_was_opened(shell, run, tmp_path):
    # pydata-book appendix A: a remote cell's np.memmap came back as a copy of its values, so
    # writes through it in later cells never reached the file
    import numpy as np

    path = tmp_path / "mm.bin"
    shell.user_ns["mm_path"] = str(path)
    res = run("%%remote --download=all\nimport numpy as np\n"
              "m = np.memmap(mm_path, dtype='float64', mode='w+', shape=(4,))\nsection = m[:2]")
    assert res.error_in_exec is None
    ns = shell.user_ns
    assert isinstance(ns["m"], RemoteObject) and isinstance(ns["section"], RemoteObject)
    assert run("%%remote\nsection[:] = 7\nm.flush()").error_in_exec is None
    assert np.fromfile(path).tolist() == [7.0, 7.0, 0.0, 0.0]
    ns["mine"] = np.memmap(path, dtype="float64", mode="r+", shape=(4,))
    err = run("%%remote\nmine[0] = 1").error_in_exec
    assert isinstance(err, SerializationError) and "open it inside the cell" in str(err)
    ns["readonly"] = np.memmap(path, dtype="float64", mode="r", shape=(4,))
    assert run("%%remote --download=all\ntotal = float(readonly.sum())").error_in_exec is None
    assert ns["total"] == 14.0  # read-only: its values travel
    for name in ("m", "section", "mine", "readonly"):
        ns.pop(name, None)


def test_generator_result_stays_a_proxy_with_a_note(shell, run, capsys):
    res = run("%%remote --download=all\ngen = (i for i in range(3))")
    assert res.error_in_exec is None
    gen = shell.user_ns.pop("gen")
    assert isinstance(gen, RemoteObject) and "generator" in repr(gen)
    assert "gen" in capsys.readouterr().err


def test_releasing_a_proxy_drops_the_engine_object_count(shell, run, target):
    gc.collect()  # proxies that earlier tests dropped are released now, not during the test
    before = target.info()["objects"]
    assert run("%%remote --download=none\nheld = list(range(10))").error_in_exec is None
    assert target.info()["objects"] == before + 1
    del shell.user_ns["held"]
    gc.collect()
    assert target.info()["objects"] == before  # info() flushes the queued release first


def test_a_notebook_cache_lasts_at_the_engine_until_the_notebooks_copy_dies(shell, run,
                                                                             target):
    # a cache the notebook made: the engine's copy keeps its entries from one remote cell to
    # the next (a miss prints), and goes when the notebook's function does
    gc.collect()
    before = target.info()["objects"]
    run("from functools import cache\n@cache\ndef square(n):\n    print('miss', n)\n"
        "    return n * n")
    with capture_output() as first:
        assert run("%%remote\na = square(4)").error_in_exec is None
    with capture_output() as second:
        assert run("%%remote\nb = square(4) + square(5)\n"
                   "info = square.cache_info()").error_in_exec is None
    assert first.stdout == "miss 4\n" and second.stdout == "miss 5\n"
    assert shell.user_ns["b"] == 41 and shell.user_ns["info"].hits == 1
    assert target.info()["objects"] == before + 1  # the engine's cache, kept for this notebook
    run("def square(n):\n    return n * n")  # the cached function is gone: so is its cache there
    for name in ("a", "b", "info"):
        del shell.user_ns[name]
    gc.collect()
    assert target.info()["objects"] == before


SETTINGS_SHOWN = (
    "print(np.array([1 / 3]), len(repr(pd.Series(range(100))).splitlines()))\n"
    "print(decimal.Decimal(1) / 7, matplotlib.rcParams['lines.linewidth'])\n"
    "def deep(n):\n    return 0 if n == 0 else deep(n - 1) + 1\nprint(deep(4000))")


def test_settings_a_plain_cell_makes_hold_in_remote_cells_and_back(shell, run, target):
    # one process plainly: print options, pandas options, the decimal context, rcParams and
    # the recursion limit a plain cell sets hold in the remote cells after it, and those a
    # remote cell sets hold in the plain cells after it (pytudes Socks, Euler-Opus)
    import decimal

    import matplotlib
    import pandas as pd

    saved = (np.get_printoptions(), pd.get_option("display.max_rows"),
             decimal.getcontext().prec, sys.getrecursionlimit(),
             matplotlib.rcParams["lines.linewidth"])
    try:
        run("import numpy as np, pandas as pd, decimal, sys, matplotlib\n"
            "np.set_printoptions(precision=3)\npd.set_option('display.max_rows', 4)\n"
            "decimal.getcontext().prec = 5\nsys.setrecursionlimit(5000)\n"
            "matplotlib.rcParams['lines.linewidth'] = 7")
        with capture_output() as plain:
            assert run(SETTINGS_SHOWN).error_in_exec is None
        with capture_output() as remote:
            assert run("%%remote\n" + SETTINGS_SHOWN).error_in_exec is None
        assert plain.stdout == "[0.333] 6\n0.14286 7.0\n4000\n"  # 6 lines: 2 rows, 2 rows
        assert remote.stdout == plain.stdout
        assert run("%%remote\nnp.set_printoptions(precision=2)\n"
                   "pd.set_option('display.max_rows', 6)\ndecimal.getcontext().prec = 3")\
            .error_in_exec is None
        assert np.get_printoptions()["precision"] == 2
        assert pd.get_option("display.max_rows") == 6 and decimal.getcontext().prec == 3
        with capture_output() as after:  # and the engine's own, seen from a remote cell
            run("%%remote\nprint(np.get_printoptions()['precision'], sys.getrecursionlimit())")
        assert after.stdout == "2 5000\n"
    finally:  # as before, here and (with the next run) there
        options, rows, precision, limit, width = saved
        np.set_printoptions(**options)
        pd.set_option("display.max_rows", rows)
        decimal.getcontext().prec = precision
        sys.setrecursionlimit(limit)
        matplotlib.rcParams["lines.linewidth"] = width
        for name in ("deep", "pd", "decimal", "matplotlib"):
            shell.user_ns.pop(name, None)


def test_a_display_formatter_registered_on_one_side_shows_values_so_on_the_other(shell, run):
    """Kalman filters ch. 07 (``sympy.init_printing()`` in a plain cell, its matrices shown by
    remote ones): a printer registered for a type, by the class or by its module and name, shows
    the other side's results so too, as in one process; taken away again, it is gone there too."""
    formatters = shell.display_formatter.formatters

    def shown(cell: str) -> str:
        with capture_output() as out:
            assert run(cell).error_in_exec is None
        return out.stdout + "".join(o.data.get("text/plain", "") for o in out.outputs)

    try:
        run("class Dog:\n    def __init__(self, name):\n        self.name = name\n"
            "    def __repr__(self):\n        return f'Dog({self.name!r})'\nrex = Dog('Rex')")
        run("get_ipython().display_formatter.formatters['text/plain'].for_type("
            "Dog, lambda o, p, cycle: p.text(f'<Dog {o.name}>'))")
        assert "<Dog Rex>" in shown("%%remote\nrex")
        assert "<Dog Ada>" in shown("%%remote\nDog('Ada')")  # a new one, of the class there
        assert run("%%remote\nshown = get_ipython().display_formatter.formatters\n"
                   "shown['text/plain'].for_type(Dog, lambda o, p, cycle: p.text('[dog]'))\n"
                   "shown['text/plain'].for_type_by_name('fractions', 'Fraction', "
                   "lambda o, p, cycle: p.text('a fraction'))\ndel shown").error_in_exec is None
        assert "[dog]" in shown("rex") and "<Dog" not in shown("rex")
        assert "a fraction" in shown("import fractions\nfractions.Fraction(1, 3)")
        assert run("%%remote\nshown = get_ipython().display_formatter.formatters\n"
                   "shown['text/plain'].pop(Dog)\ndel shown").error_in_exec is None
        assert "Dog('Rex')" in shown("rex") and "[dog]" not in shown("rex")
        formatters["text/plain"].pop("fractions.Fraction")  # plainly: the next cell's too
        assert shown("%%remote\nimport fractions\nfractions.Fraction(1, 3)").endswith(
            "Fraction(1, 3)\n")
    finally:
        formatters["text/plain"].pop("fractions.Fraction", None)
        for name in ("Dog", "rex", "fractions"):
            shell.user_ns.pop(name, None)


def test_history_in_a_remote_cell_shows_the_notebooks_inputs(shell, run):
    """IPython's "Beyond Plain Python" (hunt 15 C5): ``%history`` in a remote cell showed the
    engine's session (nothing) or, with ``-l``, another session's last inputs."""
    try:
        for cell in ("hist_a = 1", "hist_b = hist_a + 1"):
            assert shell.run_cell(cell, store_history=True).error_in_exec is None
        with capture_output() as tail:
            assert shell.run_cell("%%remote\n%history -l 2", store_history=True)\
                .error_in_exec is None
        assert tail.stdout == "hist_a = 1\nhist_b = hist_a + 1\n"
        count = shell.execution_count
        with capture_output() as numbered:
            assert shell.run_cell("%%remote\n%history -n -l 1", store_history=True)\
                .error_in_exec is None
        assert numbered.stdout == f"{count - 1:>4}:\n%%remote\n%history -l 2\n"
    finally:
        for name in ("hist_a", "hist_b"):
            shell.user_ns.pop(name, None)


def test_history_with_outputs_in_a_remote_cell_shows_the_notebooks(shell, run):
    """Hunt 26 H26-2: ``%history -o -l 1`` in a remote cell raised ValueError (our tail gave
    lines where IPython unpacks input and output), and ``%history -o`` over a range showed no
    outputs (the engine's own, none). A remote cell's shows what the same plain cell shows."""
    try:
        assert shell.run_cell("hist_o = 6", store_history=True).error_in_exec is None
        assert shell.run_cell("hist_o * 7", store_history=True).error_in_exec is None
        count = shell.execution_count - 1  # the line with the output
        with capture_output() as last:  # as plainly: `-l` reads IPython's database, which
            assert shell.run_cell("%%remote\n%history -o -l 1", store_history=True)\
                .error_in_exec is None  # has no outputs unless it logs them
        assert last.stdout == "hist_o * 7\n"
        for magic in (f"%history -o -n {count - 1}-{count}", f"%history -o -p {count}"):
            with capture_output() as plain:
                assert shell.run_cell(magic, store_history=True).error_in_exec is None
            with capture_output() as remote:
                assert shell.run_cell(f"%%remote\n{magic}", store_history=True)\
                    .error_in_exec is None
            assert remote.stdout == plain.stdout, magic
        assert "42" in plain.stdout
    finally:
        shell.user_ns.pop("hist_o", None)


def test_deleting_a_local_name_remotely_deletes_it_locally(shell, run):
    shell.user_ns["doomed"] = 5
    assert run("%%remote\ndel doomed").error_in_exec is None
    assert "doomed" not in shell.user_ns


def test_percent_remote_before_connect_says_what_to_run(shell):
    from remote_magics.targets import Registry

    with pytest.raises(remote_magics.NotConnected, match="%remote_connect"):
        Registry().get()


def test_config_sets_default_download_policy_and_bytes(shell, run):
    shell.run_line_magic("config", "RemoteMagics.download = 'none'")
    try:
        assert run("%%remote\nsmall_one = [1]").error_in_exec is None
        assert isinstance(shell.user_ns.pop("small_one"), RemoteObject)
    finally:
        shell.run_line_magic("config", "RemoteMagics.download = 'small'")
    shell.run_line_magic("config", "RemoteMagics.bytes = 100")
    try:
        assert run("%%remote\nmid = b'x' * 1000").error_in_exec is None
        assert isinstance(shell.user_ns.pop("mid"), RemoteObject)
    finally:
        shell.run_line_magic("config", "RemoteMagics.bytes = 1048576")
    assert run("%%remote\nmid = b'x' * 1000").error_in_exec is None
    assert shell.user_ns.pop("mid") == b"x" * 1000


def test_bytes_option_accepts_units(shell, run):
    assert run("%%remote --bytes 2kB\nfits = b'x' * 1500\nspills = b'x' * 3000").error_in_exec is None
    assert shell.user_ns.pop("fits") == b"x" * 1500
    assert isinstance(shell.user_ns.pop("spills"), RemoteObject)


def test_proxies_inside_containers_travel_as_references(shell, run, target):
    assert run("%%remote --download=none\nblock = bytes(5_000_000)").error_in_exec is None
    shell.user_ns["bundle"] = [shell.user_ns["block"], {"again": shell.user_ns["block"]}]
    assert run("%%remote\nsizes = [len(bundle[0]), len(bundle[1]['again'])]").error_in_exec is None
    assert shell.user_ns["sizes"] == [5_000_000, 5_000_000]
    assert target.last_run.bytes_sent < 10_000
    del shell.user_ns["bundle"], shell.user_ns["block"]


def test_remote_traceback_names_the_cell_by_its_own_number(shell, run):
    res = shell.run_cell("%%remote\n1/0", store_history=True)
    text = plain("\n".join(res.error_in_exec._render_traceback_()))
    assert f"Cell In[{res.execution_count}], line 1" in text  # the notebook's In[N]


def test_stop_button_shows_a_short_interrupt_at_the_remote_line(shell, run):
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with capture_output() as shown:
            res = shell.run_cell("%%remote\nimport time\nfor _ in range(600):\n"
                                 "    time.sleep(0.1)", store_history=True)
    finally:
        timer.cancel()
    assert isinstance(res.error_in_exec, KeyboardInterrupt)
    text = plain(shown.stdout + shown.stderr)
    assert "KeyboardInterrupt" in text and "time.sleep(0.1)" in text
    assert f"Cell In[{res.execution_count}], line 3" in text
    assert "magics.py" not in text and "connection.py" not in text  # not the notebook's frames
    assert len(text.strip().splitlines()) < 20


def test_malformed_arguments_are_usage_errors(shell, run):
    res = run('%%remote --target "unterminated\nx = 1')
    assert isinstance(res.error_in_exec, UsageError)
    res = run("%remote_pip 'unterminated")
    assert isinstance(res.error_in_exec, UsageError)


def test_usage_line_of_the_cell_magic_says_percent_percent_remote(shell):
    usage = shell.find_cell_magic("remote").__doc__
    assert "%%remote [--download" in usage


def test_a_module_that_prints_when_imported_prints_once_either_way(shell, run):
    """Found on WhirlwindTourOfPython 00 (``import this``): the module came back by name and
    its import here printed the Zen a second time; read by a later cell, the engine's import
    printed it again too."""
    import sys

    sys.modules.pop("this", None)
    try:
        with capture_output() as shown:
            res = run("%%remote\nimport sys\nsys.modules.pop('this', None)\nimport this")
        assert res.error_in_exec is None and "this" in sys.modules
        assert shown.stdout.count("The Zen of Python") == 1, shown.stdout
        run("%%remote\nimport sys\nsys.modules.pop('this', None)")  # the engine forgets it
        with capture_output() as shown:
            res = run("%%remote\nfirst = this.s[:3]")  # goes up by name: imported there again
        assert res.error_in_exec is None and shell.user_ns["first"] == sys.modules["this"].s[:3]
        assert "Zen" not in shown.stdout, shown.stdout
    finally:
        shell.user_ns.pop("this", None)
        shell.user_ns.pop("first", None)



def test_a_plain_cell_failing_on_a_proxy_says_which_name_why_and_what_to_do(shell, run, capsys):
    """Hunt 19 H19-32: under the default policy a DataFrame over --bytes a remote cell made is
    a proxy, and ``pd.concat([df, df])``, ``pd.merge`` and seaborn fail on it with their own
    words only ("cannot concatenate object of type ... RemoteObject"). The notebook now says
    under the traceback which names are proxies, why they stayed remote and what to do; a
    plain cell that fails for another reason, or whose error names no proxy, gets nothing."""
    import pandas as pd

    shell.user_ns["pd"] = pd
    assert run("%%remote\nimport numpy as np\nimport pandas as pd\n"
               "frame = pd.DataFrame({'x': np.arange(200_000.)})\n"
               "none_made = [1, 2]").error_in_exec is None
    assert run("%%remote --download=none\nnone_made = [1, 2]").error_in_exec is None
    capsys.readouterr()
    result = run("both = pd.concat([frame, frame])")
    assert isinstance(result.error_in_exec, TypeError)
    err = capsys.readouterr().err
    assert "'frame' is a proxy of a remote pandas.DataFrame" in err
    assert "bigger than --bytes" in err and "frame.fetch()" in err and "%%remote" in err
    assert "both" not in shell.user_ns
    result = run("import json\njson.dumps(none_made)")
    assert isinstance(result.error_in_exec, TypeError)
    assert "ran with --download=none" in capsys.readouterr().err
    assert run("pd.concat([frame.fetch(), frame.fetch()]).shape").result == (400_000, 1)
    assert isinstance(run("1 / 0").error_in_exec, ZeroDivisionError)
    assert isinstance(run("len(frame) + 'a'").error_in_exec, TypeError)
    assert "remote_magics:" not in capsys.readouterr().err
    for name in ("frame", "none_made", "json"):
        shell.user_ns.pop(name, None)


def test_a_remote_cd_goes_into_the_notebooks_folder_history_from_this_host_only(target):
    # hunt 22 H22-6: `_dh` goes, watched, with a cell that runs %cd; not to an engine on
    # another host, whose folders are not this machine's (the notebook's folder stays)
    from remote_magics.cells import runner

    code = "get_ipython().run_line_magic('cd', '-q sub')"
    namespace = {"_dh": ["/start"]}
    request = runner.prepare(code, namespace, target, download="all", limit=1 << 20)
    assert "_dh" in request.content["watch"]
    saved = target.details.get("hostname")
    target.details["hostname"] = "another-host.invalid"
    try:
        request = runner.prepare(code, namespace, target, download="all", limit=1 << 20)
        assert "_dh" not in request.content["watch"] and "_dh" not in request.held
    finally:
        target.details["hostname"] = saved


def test_a_users_own_exception_handler_still_handles_its_exceptions_beside_ours(
        shell, run, capsys):
    # the handler that prints remote exception groups as they printed remotely sits in front
    # of IPython's custom_exceptions: the user's own, set before or after, still has its own
    seen = []

    def handler(shell_, etype, value, tb, tb_offset=None):
        seen.append(etype.__name__)
        return ["handled by the user"]

    before = (shell.custom_exceptions, shell.CustomTB)
    try:
        shell.run_line_magic("unload_ext", "remote_magics")
        shell.set_custom_exc((LookupError,), handler)
        shell.run_line_magic("load_ext", "remote_magics")
        capsys.readouterr()
        run("{}['missing']")
        res = run("%%remote\nraise ExceptionGroup('many', [ValueError('v')])")
        err = capsys.readouterr().err
        assert seen == ["KeyError"]
        assert type(res.error_in_exec).__name__ == "ExceptionGroup" and sys.last_value is \
            res.error_in_exec
        assert "| ExceptionGroup: many (1 sub-exception)" in err and "| ValueError: v" in err
        assert "remote_magics" not in err  # the cell's frames, none of the magic's
        res = run("%%remote\n{}['gone']")  # a remote error the user's handler covers: theirs
        assert seen == ["KeyError", "KeyError"]
    finally:
        shell.run_line_magic("unload_ext", "remote_magics")
        shell.custom_exceptions, shell.CustomTB = before
        shell.run_line_magic("load_ext", "remote_magics")


def test_a_plain_cells_error_through_a_remote_function_shows_both_sides_frames(shell, run):
    # hunt 26 H26-13: a function that stayed remote (none) failing in a plain cell showed the
    # error's last line alone; plainly: the cell's line, then the function's, then the error
    assert run("%%remote --download=none\ndef risky_h13(v):\n    return 1 / v"
               ).error_in_exec is None
    try:
        failed = shell.run_cell("x_h13 = 1\nrisky_h13(0)")
        shown = "\n".join(failed.error_in_exec._render_traceback_())
        plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
        assert isinstance(failed.error_in_exec, ZeroDivisionError)
        assert plain.count("Traceback (most recent call last)") == 1
        assert re.search(r"----> 2 risky_h13\(0\)", plain), plain  # the plain cell's own frame
        assert re.search(r"in risky_h13\(v\)\n.*\n----> 2     return 1 / v", plain), plain
        assert plain.rstrip().endswith("ZeroDivisionError: division by zero"), plain
        assert "ipython-input" not in plain and "remote_magics" not in plain, plain
        shell.run_cell("p_h13 = risky_h13")
        missing = shell.run_cell("p_h13.no_such_attribute").error_in_exec  # ours: the line alone
        assert "AttributeError" in re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(
            missing._render_traceback_()))
    finally:
        for name in ("risky_h13", "x_h13", "p_h13"):
            shell.user_ns.pop(name, None)
