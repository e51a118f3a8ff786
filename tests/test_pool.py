"""Pools: fan-out cells, scatter/gather and map over a real 2-member pool of engine kernels."""
from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pandas as pd
import psutil
import pytest
from IPython.utils.capture import capture_output

import remote_magics
from remote_magics import RemoteObject
from remote_magics.errors import FanOutError, MapError, NotConnected, RemoteMagicsError
from remote_magics.pool import PerMember, Pool, concat, resolve, split
from tests.conftest import IS_PRIME, plain


#: What connecting the module's pool did to the current target, and what it printed.
CONNECTED: dict = {}


@pytest.fixture(scope="module")
def pool(shell, target):
    """Two engine kernels as the group 'pool', for the whole module, beside the session's target."""
    remote_magics.registry.current = target.name
    with capture_output() as out:
        res = shell.run_cell("pool = %remote_connect local -n 2 --name pool", store_history=False)
    assert res.error_in_exec is None
    CONNECTED.update(before=target.name, after=remote_magics.registry.current, printed=out.stdout)
    made = shell.user_ns["pool"]
    yield made
    made.close()


@pytest.fixture
def run(shell, pool):
    def _run(cell: str):
        return shell.run_cell(cell, store_history=False)

    return _run


def pids(pool: Pool) -> list[int]:
    return [member.details["pid"] for member in pool]


# --- pools -----------------------------------------------------------------------------------


def test_connecting_a_pool_leaves_the_current_target_alone_and_says_so(shell, pool, target):
    assert CONNECTED["after"] == CONNECTED["before"] == target.name
    assert f"current target is '{target.name}' (unchanged)" in CONNECTED["printed"]
    held = target.run("held = [1, 2, 3]", {}, download="none").values["held"]
    shell.user_ns["held_here"] = held
    res = shell.run_cell("%%remote\nn_held = len(held_here)", store_history=False)
    assert res.error_in_exec is None and shell.user_ns["n_held"] == 3  # ran on the target
    del shell.user_ns["held_here"]


def test_pool_members_are_registered_addressable_and_listed(shell, pool, run):
    assert isinstance(pool, Pool) and len(pool) == 2
    assert [m.name for m in pool] == ["pool[0]", "pool[1]"]
    assert pool[0] is remote_magics.registry.targets["pool[0]"]
    assert remote_magics.registry.groups["pool"] is pool
    assert len(set(pids(pool))) == 2 and all(psutil.pid_exists(p) for p in pids(pool))
    with capture_output() as out:
        run("%remote_targets")
    lines = [line.split() for line in out.stdout.splitlines()]
    assert "group" in lines[0]
    for member in ("pool[0]", "pool[1]"):
        row = next(row for row in lines if member in row)
        assert row[row.index(member) + 1] == "pool"


def test_a_member_runs_alone_with_target(shell, pool, run):
    res = run("%%remote --target pool[1]\nimport os\nwho = os.getpid()")
    assert res.error_in_exec is None
    assert shell.user_ns["who"] == pids(pool)[1]


def test_connecting_the_same_pool_again_returns_it(pool):
    assert remote_magics.connect("local", n=2, name="pool") is pool
    with pytest.raises(RemoteMagicsError, match="already connected"):
        remote_magics.connect("local", n=3, name="pool")


# --- fan-out cells ---------------------------------------------------------------------------


def test_fan_out_binds_a_list_by_member_and_groups_output(shell, pool, run):
    shell.user_ns["base"] = 10
    with capture_output() as out:
        res = run("%%remote --targets pool\nimport os\nprint('hello from', os.getpid())\n"
                  "me = os.getpid()\nplus = base + 1\nme")
    assert res.error_in_exec is None
    assert shell.user_ns["me"] == pids(pool)
    assert shell.user_ns["plus"] == [11, 11]
    assert res.result == pids(pool)
    text = out.stdout
    first, second = text.index("[pool[0]]"), text.index("[pool[1]]")
    assert first < text.index(f"hello from {pids(pool)[0]}") < second
    assert second < text.index(f"hello from {pids(pool)[1]}")


def test_fan_out_members_draw_their_own_random_numbers_and_leave_the_notebooks(
        shell, pool, run):
    """A single remote cell draws from the notebook's random stream, as in one process; a
    fan-out leaves each member its own, or every member of a Monte Carlo run would draw the
    same numbers, and the notebook's stream goes on where it was. A member's next single run
    draws from the notebook's stream again."""
    import random

    saved = random.getstate(), np.random.get_state()
    try:
        random.seed(5)
        np.random.seed(5)
        expected = [(random.random(), np.random.rand()) for _ in range(2)]
        random.seed(5)
        np.random.seed(5)
        assert run("%%remote --targets pool\nimport random, numpy as np\n"
                   "drawn = (random.random(), np.random.rand())").error_in_exec is None
        first, second = shell.user_ns["drawn"]
        assert first != second  # each member its own numbers
        assert (random.random(), np.random.rand()) == expected[0]  # ours went on as they were
        assert run("%%remote --target pool[0]\nimport random, numpy as np\n"
                   "drawn = (random.random(), np.random.rand())").error_in_exec is None
        assert shell.user_ns["drawn"] == expected[1]  # the notebook's stream, as in one process
        assert (random.random(), np.random.rand()) != expected[1]  # and it went on
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        shell.user_ns.pop("drawn", None)


def test_targets_list_keeps_the_given_order(shell, pool, run):
    res = run("%%remote --targets pool[1],pool[0]\nimport os\nwho = os.getpid()")
    assert res.error_in_exec is None
    assert shell.user_ns["who"] == pids(pool)[::-1]


def test_targets_all_includes_every_connected_target(shell, pool, target, run):
    res = run("%%remote --targets all\nimport os\nwho = os.getpid()")
    assert res.error_in_exec is None
    assert set(pids(pool)) <= set(shell.user_ns["who"])
    assert len(shell.user_ns["who"]) == len(remote_magics.registry.targets)


def test_targets_text_is_parsed_never_evaluated(shell, pool, run, tmp_path):
    marker = tmp_path / "evaluated"
    shell.user_ns["marker"] = str(marker)
    res = run("%%remote --targets open(marker,'w')\nx = 1")
    assert isinstance(res.error_in_exec, NotConnected)
    assert not marker.exists()
    assert isinstance(run("%%remote --targets nosuch,pool\nx = 1").error_in_exec, NotConnected)


def test_failure_on_some_members_lists_them_and_keeps_successes(shell, pool, run):
    shell.user_ns["bad_pid"] = pids(pool)[1]
    shell.user_ns.pop("ratio", None)
    res = run("%%remote --targets pool\nimport os\nratio = 1 / (os.getpid() - bad_pid)")
    err = res.error_in_exec
    assert isinstance(err, FanOutError)
    assert list(err.failures) == ["pool[1]"]
    assert isinstance(err.failures["pool[1]"], ZeroDivisionError)
    assert "pool[1]: ZeroDivisionError" in str(err) and "1 of 2" in str(err)
    ok = err.results[0]
    assert ok.target == "pool[0]" and ok.values["ratio"] == 1 / (pids(pool)[0] - pids(pool)[1])
    assert "ratio" not in shell.user_ns  # a failed run changes nothing
    assert "ZeroDivisionError" in plain("\n".join(err._render_traceback_()))


def test_download_none_gives_per_member_proxies_that_stay_on_their_member(shell, pool, run):
    res = run("%%remote --targets pool --download none\nimport os\nblob = [os.getpid()] * 1000")
    assert res.error_in_exec is None
    blob = shell.user_ns["blob"]
    assert isinstance(blob, PerMember) and blob.targets == ("pool[0]", "pool[1]")
    assert all(isinstance(p, RemoteObject) for p in blob)
    assert [p.target for p in blob] == ["pool[0]", "pool[1]"]
    res = run("%%remote --targets pool\nhead = blob[0]")
    assert res.error_in_exec is None
    assert shell.user_ns["head"] == pids(pool)  # each member read its own proxy, not a copy


# --- scatter / gather ------------------------------------------------------------------------


def test_pyfora_seed_runs_parallel_with_scatter_and_gather(shell, pool, run):
    run(IS_PRIME)
    shell.user_ns["xs"] = range(100_000)
    res = run("%%remote --targets pool --scatter xs --gather total\n"
              "total = [sum(isPrime(x) for x in xs)]\nseen = len(xs)")
    assert res.error_in_exec is None
    assert len(shell.user_ns["total"]) == 2 and sum(shell.user_ns["total"]) == 9594
    assert shell.user_ns["seen"] == [50_000, 50_000]
    assert shell.user_ns["xs"] == range(100_000)  # the local name is untouched


def test_scatter_and_gather_numpy_arrays(shell, pool, run):
    shell.user_ns["arr"] = np.arange(11, dtype=np.float64)
    res = run("%%remote --targets pool --scatter arr --gather arr\narr = arr * 2")
    assert res.error_in_exec is None
    np.testing.assert_array_equal(shell.user_ns["arr"], np.arange(11) * 2.0)


def test_scatter_and_gather_pandas_frames(shell, pool, run):
    shell.user_ns["df"] = pd.DataFrame({"a": range(7), "b": list("abcdefg")})
    res = run("%%remote --targets pool --scatter df --gather out\nout = df.assign(c=df.a * 10)")
    assert res.error_in_exec is None
    out = shell.user_ns["out"]
    assert list(out.index) == list(range(7)) and list(out.c) == [a * 10 for a in range(7)]


def test_gather_of_scalars_says_what_to_bind(shell, pool, run):
    res = run("%%remote --targets pool\nscalar = 3")
    assert res.error_in_exec is None
    res = run("%%remote --targets pool --gather scalar\nscalar = 3")
    assert isinstance(res.error_in_exec, TypeError)
    assert "scalar = [value]" in str(res.error_in_exec)


def test_scatter_needs_targets(shell, pool, run):
    from IPython.core.error import UsageError

    shell.user_ns["xs"] = [1, 2]
    with capture_output():
        res = run("%%remote --scatter xs\ny = xs")
    assert isinstance(res.error_in_exec, UsageError)


def test_split_and_concat_are_inverse_in_order():
    for value in ([1, 2, 3, 4, 5], (1, 2, 3), range(10), list(range(3))):
        for parts in (1, 2, 3, 4):
            chunks = split(value, parts)
            assert len(chunks) == parts
            assert list(concat(chunks)) == list(value)
    with pytest.raises(TypeError, match="cannot be split"):
        split(5, 2, "n")


# --- map -------------------------------------------------------------------------------------


def test_map_returns_results_in_order(shell, pool):
    shell.run_cell(IS_PRIME)
    func = shell.user_ns["isPrime"]
    items = list(range(5_000))
    assert pool.map(func, items, progress=False) == [func(x) for x in items]
    assert pool.map(func, [], progress=False) == []


def test_map_is_load_balanced(shell, pool):
    slow = pids(pool)[0]

    def where(x):
        import os
        import time

        if os.getpid() == slow:
            time.sleep(2)
        return os.getpid()

    ran_on = pool.map(where, range(12), chunksize=1, progress=False)
    assert ran_on.count(slow) < ran_on.count(pids(pool)[1])


def test_map_error_names_the_failing_index(shell, pool):
    with pytest.raises(MapError) as caught:
        pool.map(lambda v: 1 / (v - 13), range(40), chunksize=5, progress=False)
    err = caught.value
    assert err.index == 13 and err.item == 13
    assert isinstance(err.error, ZeroDivisionError)
    assert "item 13" in str(err)


def test_remote_map_magic_uses_the_only_pool(shell, pool, run):
    shell.user_ns["square"] = lambda v: v * v
    shell.user_ns["nums"] = list(range(30))
    res = run("squares = %remote_map square nums --chunksize 4 --no-progress")
    assert res.error_in_exec is None
    assert shell.user_ns["squares"] == [v * v for v in range(30)]


def test_interrupting_a_map_stops_every_member(shell, pool):
    def nap(x):
        import time

        time.sleep(60)
        return x

    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            pool.map(nap, range(4), chunksize=1, progress=False)
    finally:
        timer.cancel()
    # both members are free again: a run that needs each of them finishes within its timeout
    fan = remote_magics.pool.run_on(pool.members, "ok = 1", {}, timeout=20)
    assert [run.values["ok"] for run in fan.runs] == [1, 1]


def test_resolve_rejects_unknown_and_malformed_names(pool):
    assert resolve("pool") == pool.members
    assert resolve("pool[1]") == [pool[1]]
    with pytest.raises(NotConnected):
        resolve("pool[1] ; rm")
    with pytest.raises(NotConnected):
        resolve("pool,,pool")


def test_disconnecting_a_pool_shuts_its_kernels_down(shell):
    before = remote_magics.registry.current
    spare = remote_magics.connect("local", n=2, name="spare")
    remote_magics.registry.current = before
    procs = [psutil.Process(p) for p in pids(spare)]
    with capture_output() as out:
        shell.run_cell("%remote_disconnect spare", store_history=False)
    assert "Pool 'spare'" in out.stdout
    gone, alive = psutil.wait_procs(procs, timeout=15)
    assert not alive
    assert "spare" not in remote_magics.registry.groups
    assert not any(name.startswith("spare[") for name in remote_magics.registry.targets)
