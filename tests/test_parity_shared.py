"""Issue 13, causes 2 and 3: a %%remote cell against the same cell run plainly in the same shell.

Cause 3: all names of a run travel in one pickle stream each way, so two names for one object
stay one object (``a = [1, 2]; b = a``; ``fig, ax = plt.subplots()``), and a later cell that
changes one of them (``ax.plot(...)``) changes what every notebook name sees. Cause 2: functions
and classes resolve their globals in the namespace of the side they run on.

Each case runs its cells twice in one real InteractiveShell: plainly, then with the cells marked
remote run as ``%%remote --download=POLICY``; a probe expression evaluated locally afterwards must
give the same answer. Under ``--download=none`` every name is a proxy, so the probe runs in the
engine (a ``%%remote --download=all`` cell) and what is compared is what the engine sees.
"""
from __future__ import annotations

import gc

import pytest

from remote_magics import RemoteObject

POLICIES = ("all", "small", "none")

#: name → (cells: (where, code) with where "local" or "remote", the probe expression)
CASES = {
    "two names bound remotely come back as one object": (
        [("remote", "a_sh = [1, 2]\nb_sh = a_sh")],
        "(a_sh, b_sh, a_sh is b_sh)"),
    "two notebook names for one object are one object in the remote cell": (
        [("local", "a_sh = [1, 2]\nb_sh = a_sh"),
         ("remote", "b_sh.append(3)\nseen_sh = list(a_sh)\nsame_sh = a_sh is b_sh")],
        "(a_sh, b_sh is a_sh, seen_sh, same_sh)"),
    "a figure and its axes made remotely stay one figure": (
        [("remote", "import matplotlib.pyplot as plt_sh\nfig_sh, ax_sh = plt_sh.subplots()\n"
                    "plt_sh.close(fig_sh)")],
        "(fig_sh.axes[0] is ax_sh, ax_sh.figure is fig_sh)"),
    "a later cell drawing on the axes changes the notebook's figure": (
        [("remote", "import matplotlib.pyplot as plt_sh\nfig_sh, ax_sh = plt_sh.subplots()\n"
                    "plt_sh.close(fig_sh)"),
         ("remote", "ax_sh.plot([1, 2]);")],
        "(len(fig_sh.axes[0].lines), fig_sh.axes[0] is ax_sh, len(ax_sh.lines),"
        " ax_sh.figure is fig_sh)"),
    "a remote function reads the notebook's current globals": (
        [("remote", "scale_sh = 2\ndef f_sh(x):\n    return x * scale_sh"),
         ("local", "scale_sh = 10")],
        "f_sh(1)"),
    "a remote function finds a global bound later in the notebook": (
        [("local", "CONST_SH = None\ndel CONST_SH"),
         ("remote", "def g_sh():\n    return CONST_SH"),
         ("local", "CONST_SH = 5")],
        "g_sh()"),
    "a notebook function sees the names the remote cell binds before calling it": (
        [("local", "k_sh = 3\ndef h_sh(x):\n    return x * k_sh"),
         ("remote", "k_sh = 4\ny_sh = h_sh(1)")],
        "(y_sh, k_sh, h_sh(1))"),
    "a notebook class's method reads the remote cell's globals": (
        [("local", "label_sh = 'here'\nclass P_sh:\n"
                   "    def __repr__(self):\n        return str(eval('label_sh'))"),
         ("remote", "label_sh = 'there'\nshown_sh = repr(P_sh())")],
        "(shown_sh, repr(P_sh()))"),
    "a remote class's method reads the notebook's globals": (
        [("remote", "class Q_sh:\n    def __repr__(self):\n        return str(eval('tag_sh'))\n"
                    "q_sh = Q_sh()"),
         ("local", "tag_sh = 'here'")],
        "repr(q_sh)"),
    "a notebook object the cell passes on, unchanged, comes back as the notebook's own": (
        [("local", "class M_sh:\n    pass\nm_sh = M_sh()\nm_sh.w = [1.0]\nw_sh = m_sh.w"),
         ("remote", "res_sh = dict(model=m_sh)")],
        "(res_sh['model'] is m_sh, m_sh.w is w_sh, w_sh)"),
    "names bound before an error come back as one object": (
        [("remote", "a_sh = [1]\nb_sh = a_sh\nraise ValueError('stop')")],
        "(a_sh, a_sh is b_sh)"),
}

#: Cases whose probe cannot hold under --download=none. A function that stays remote runs with
#: the globals of the remote run that defined it (the notebook's later `scale = 10` never
#: reaches it), as README says; and a name read only inside a string (`eval('label_sh')`)
#: reaches a later remote cell only by the run namespace's lookup of missing names (issue 13,
#: cause 4, built apart from this).
#: And a value bound remotely that holds a notebook value holds the copy the engine got (it
#: stays there as a proxy, and the notebook's object stays here).
NOT_UNDER_NONE = {"a notebook object the cell passes on, unchanged, comes back as the "
                  "notebook's own",
                  "a remote function reads the notebook's current globals",
                  "a remote function finds a global bound later in the notebook",
                  "a remote class's method reads the notebook's globals",
                  "a notebook class's method reads the remote cell's globals"}

NAMES = ("a_sh", "b_sh", "seen_sh", "same_sh", "fig_sh", "ax_sh", "plt_sh", "scale_sh", "f_sh",
         "g_sh", "CONST_SH", "k_sh", "h_sh", "y_sh", "label_sh", "P_sh", "shown_sh", "Q_sh",
         "q_sh", "tag_sh", "probe_sh", "M_sh", "m_sh", "w_sh", "res_sh")


def clear(shell) -> None:
    for name in NAMES:
        shell.user_ns.pop(name, None)


def run_case(shell, run, cells, probe: str, policy: str | None):
    """Run ``cells`` (plainly when ``policy`` is None) and return the probe's value."""
    clear(shell)
    for where, code in cells:
        if where == "remote" and policy is not None:
            code = f"%%remote --download={policy}\n{code}"
        res = run(code)
        if res.error_in_exec is not None:  # the one case that raises, on purpose
            err = res.error_in_exec
            assert getattr(err, "ename", type(err).__name__) == "ValueError", err
    if policy == "none":
        res = run(f"%%remote --download=all\nprobe_sh = {probe}")
        assert res.error_in_exec is None, res.error_in_exec
        return shell.user_ns["probe_sh"]
    res = run(f"probe_sh = {probe}")
    assert res.error_in_exec is None, res.error_in_exec
    return shell.user_ns["probe_sh"]


@pytest.mark.parametrize("case, policy", [(case, policy) for case in sorted(CASES)
                                          for policy in POLICIES
                                          if not (policy == "none" and case in NOT_UNDER_NONE)])
def test_a_remote_cell_gives_what_the_plain_cell_gives(shell, run, case, policy):
    cells, probe = CASES[case]
    expected = run_case(shell, run, cells, probe, None)
    got = run_case(shell, run, cells, probe, policy)
    assert got == expected
    clear(shell)


def test_two_names_for_one_object_that_stays_remote_are_one_proxy(shell, run, target):
    clear(shell)
    res = run("%%remote --download=none\na_sh = [1, 2]\nb_sh = a_sh")
    assert res.error_in_exec is None
    assert isinstance(shell.user_ns["a_sh"], RemoteObject)
    assert shell.user_ns["a_sh"] is shell.user_ns["b_sh"]
    gc.collect()
    target.flush_releases()
    before = target.info()["objects"]
    shell.user_ns["a_sh"].release()
    assert target.info()["objects"] == before - 1  # held once, released once
    clear(shell)


def test_a_big_value_stays_remote_while_the_names_it_shares_with_come_back(shell, run):
    clear(shell)
    res = run("%%remote --download=small --bytes 10kB\na_sh = [1, 2]\n"
              "big_sh = [a_sh, list(range(100_000))]\nb_sh = a_sh")
    assert res.error_in_exec is None
    assert isinstance(shell.user_ns.pop("big_sh"), RemoteObject)
    assert shell.user_ns["a_sh"] == [1, 2] and shell.user_ns["a_sh"] is shell.user_ns["b_sh"]
    clear(shell)


def test_a_name_that_cannot_pickle_stays_remote_and_the_others_still_share(shell, run):
    clear(shell)
    res = run("%%remote --download=all\nimport threading\na_sh = [1, 2]\n"
              "b_sh = [a_sh, threading.Lock()]\nseen_sh = a_sh")
    assert res.error_in_exec is None
    assert isinstance(shell.user_ns.pop("b_sh"), RemoteObject)
    assert shell.user_ns["a_sh"] is shell.user_ns["seen_sh"]
    clear(shell)


# --- the remote kernel: %%local cells move the engine's names, the same way round ------------

#: Cells of a notebook under the remote kernelspec, the last of each printing what it sees.
KERNEL_CASES = {
    "a local cell sees two engine names for one object as one object, and so does the engine": [
        "a_k = [1, 2]\nb_k = a_k",
        "%%local\nb_k.append(3)\nseen_k = list(a_k)\nsame_k = a_k is b_k\nc_k = [0]\nd_k = c_k",
        "print(a_k, a_k is b_k, seen_k, same_k, c_k is d_k)"],
    "a function from the engine reads the local cell's globals, and one from a local cell the "
    "engine's": [
        "scale_k = 2\ndef f_k(x):\n    return x * scale_k",
        "%%local\nscale_k = 10\nres_k = f_k(1)\ndef g_k():\n    return CONST_K",
        "CONST_K = 5\nprint(res_k, g_k())"],
    "a local cell drawing on the engine's axes changes the engine's figure": [
        "import matplotlib.pyplot as plt_k\nfig_k, ax_k = plt_k.subplots()\nplt_k.close(fig_k)",
        "%%local\nax_k.plot([1, 2]);",
        "print(len(fig_k.axes[0].lines), fig_k.axes[0] is ax_k, len(ax_k.lines),"
        " ax_k.figure is fig_k)"],
}


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    from tests.test_kernel import Frontend, install

    prefix = tmp_path_factory.mktemp("jupyter-prefix-shared")
    install(prefix, "--name", "tks", "--download", "all")  # %%local cells get values
    front = Frontend(prefix, "remote-tks", tmp_path_factory.mktemp("remote-kernel-cwd"))
    yield front
    front.close()


@pytest.mark.parametrize("case", sorted(KERNEL_CASES))
def test_the_remote_kernel_gives_what_the_plain_cells_give(frontend, shell, case):
    from IPython.utils.capture import capture_output

    cells = KERNEL_CASES[case]
    for cell in cells:  # what the last cell prints is compared
        with capture_output() as plain_run:
            result = shell.run_cell(cell.removeprefix("%%local\n"), store_history=False)
        assert result.error_in_exec is None, result.error_in_exec
    for cell in cells:
        reply, text = frontend.run(cell)
        assert reply["status"] == "ok", text
    assert text.split() == plain_run.stdout.split()
