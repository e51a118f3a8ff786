"""Fetch on first use, and IPython's own help and namespace magics, inside %%remote cells.

A real InteractiveShell drives %%remote against the session's engine: a name the analysis of
the cell cannot see is asked of the notebook while the cell runs (issue 13 cause 4); ``x?``,
``%pinfo``, ``%whos``, ``%time``/``%%time`` and ``%timeit`` see the run's names (cause 5).
Where nobody listens (jobs, pools, the remote kernel) the cell fails as a plain cell would.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import remote_magics
from remote_magics import RemoteObject, jobs
from remote_magics.client.connection import Connection, LookupAnswer
from remote_magics.wire import protocol, serialize
from tests.conftest import plain

POLICIES = ["all", "small", "none"]


def local(value):
    """A value that came back, fetched when it stayed remote (download none)."""
    return value.fetch() if isinstance(value, RemoteObject) else value


@pytest.fixture
def asked(target, monkeypatch):
    """The names the engine asked the notebook for, in order, from now on."""
    names: list[str] = []
    real = Connection.answer_lookup

    def spy(conn, msg, on_lookup):
        names.append(msg["content"].get("name"))
        return real(conn, msg, on_lookup)

    monkeypatch.setattr(Connection, "answer_lookup", spy)
    return names


# --- fetch on first use -------------------------------------------------------------------------

@pytest.mark.parametrize("policy", POLICIES)
def test_a_name_only_a_computed_eval_string_reads_is_fetched_from_the_notebook(shell, run,
                                                                               asked, policy):
    shell.user_ns.update(hidden_x=41, which="hidden_" + "x")
    res = run(f"%%remote --download={policy}\ny_lookup = eval(which) + 1\n"
              "twice = eval(which) + eval(which)")
    assert res.error_in_exec is None, res.error_in_exec
    assert local(shell.user_ns["y_lookup"]) == 42 and local(shell.user_ns["twice"]) == 82
    assert asked == ["hidden_x"]  # once: then it is bound in the run
    assert "hidden_x" in shell.user_ns and shell.user_ns["hidden_x"] == 41  # not sent back


@pytest.mark.parametrize("policy", POLICIES)
def test_a_function_defined_in_the_cell_fetches_what_it_reads_by_a_computed_name(shell, run,
                                                                                 policy):
    shell.user_ns.update(scale_lookup=3, key_lookup="scale_" + "lookup")
    res = run(f"%%remote --download={policy}\ndef times(v):\n    return v * eval(key_lookup)\n"
              "tripled = [times(i) for i in range(3)]")
    assert res.error_in_exec is None, res.error_in_exec
    assert local(shell.user_ns["tripled"]) == [0, 3, 6]


@pytest.mark.parametrize("policy", POLICIES)
def test_a_file_run_with_exec_reads_the_notebooks_names(shell, run, tmp_path, policy):
    script = tmp_path / "helper.py"
    script.write_text("doubled_base = base_lookup * 2\n")
    shell.user_ns.update(base_lookup=np.arange(3), script_path=str(script))
    res = run(f"%%remote --download={policy}\nexec(open(script_path).read())\n"
              "from_script = doubled_base")
    assert res.error_in_exec is None, res.error_in_exec
    assert local(shell.user_ns["from_script"]).tolist() == [0, 2, 4]


def test_a_script_run_with_percent_run_i_reads_the_notebooks_names(shell, run, tmp_path):
    script = tmp_path / "report.py"
    script.write_text("print('report', base_run * 3)\n")
    shell.user_ns.update(base_run=14)
    with capture_output() as shown:
        res = run(f"%%remote\n%run -i {script}")
    assert res.error_in_exec is None, res.error_in_exec
    assert "report 42" in shown.stdout


@pytest.mark.parametrize("policy", POLICIES)
def test_globals_subscripted_by_a_constant_name_reads_and_binds_the_notebooks_name(
        shell, run, policy):
    shell.user_ns.update(glob_in=5)
    shell.user_ns.pop("glob_out", None)
    res = run(f"%%remote --download={policy}\nglobals()['glob_out'] = globals()['glob_in'] + 1")
    assert res.error_in_exec is None, res.error_in_exec
    assert local(shell.user_ns["glob_out"]) == 6


@pytest.mark.parametrize("policy", POLICIES)
def test_a_fetched_value_the_cell_changes_in_place_changes_in_the_notebook(shell, run, policy):
    """As an input the cell was given: under download none the changed value stays remote."""
    items, shipped = [1], [1]
    shell.user_ns.update(items_lookup=items, alias_lookup=items, shipped_lookup=shipped)
    res = run(f"%%remote --download={policy}\neval('items_' + 'lookup').append(2)\n"
              "shipped_lookup.append(2)")
    assert res.error_in_exec is None, res.error_in_exec
    fetched_now, shipped_now = shell.user_ns["items_lookup"], shell.user_ns["shipped_lookup"]
    assert type(fetched_now) is type(shipped_now)
    assert local(fetched_now) == local(shipped_now) == [1, 2]
    if policy != "none":
        assert fetched_now is items and shell.user_ns["alias_lookup"] == [1, 2]  # every alias


@pytest.mark.parametrize("policy", POLICIES)
def test_a_name_the_notebook_does_not_hold_either_fails_as_in_a_plain_cell(shell, run, asked,
                                                                            policy):
    shell.user_ns.pop("nowhere_lookup", None)
    cell = "eval('nowhere_' + 'lookup')"
    plain_error = run(cell).error_in_exec
    res = run(f"%%remote --download={policy}\n{cell}")
    assert isinstance(res.error_in_exec, NameError)
    assert res.error_in_exec.evalue == str(plain_error) == "name 'nowhere_lookup' is not defined"
    assert asked == ["nowhere_lookup"]


def test_code_run_in_globals_of_its_own_does_not_see_the_notebook_as_in_a_plain_cell(shell,
                                                                                       run):
    shell.user_ns.update(own_x=1)
    cell = "try:\n    exec('y = own_x', {})\nexcept NameError as err:\n    own_error = str(err)"
    shell.user_ns.pop("own_error", None)
    assert run(cell).error_in_exec is None
    plain_error = shell.user_ns.pop("own_error")
    res = run("%%remote --download=all\n" + cell + "\nfound = eval('own_' + 'x')")
    assert res.error_in_exec is None, res.error_in_exec
    assert shell.user_ns["own_error"] == plain_error == "name 'own_x' is not defined"
    assert shell.user_ns["found"] == 1  # the cell's own globals do fetch it


def test_a_function_the_cell_defines_with_lookups_works_in_the_notebook_afterwards(shell, run):
    shell.user_ns.update(fn_x=[1, 2])
    res = run("%%remote --download=all\ndef sized(v):\n    return len(v) + abs(-1)\n"
              "first = sized(eval('fn_' + 'x'))")
    assert res.error_in_exec is None, res.error_in_exec
    assert shell.user_ns["first"] == 3
    assert shell.user_ns["sized"]([1, 2, 3]) == 4  # its builtins here are the notebook's


def test_builtins_and_names_the_cell_was_given_are_never_asked_for(shell, run, asked):
    shell.user_ns.update(given_lookup=[3, 1, 2])
    res = run("%%remote\nprint(len(given_lookup), sorted(given_lookup), min(given_lookup))\n"
              "def f():\n    return max(given_lookup) + abs(-1)\nr_lookup = f()\n"
              "class K:\n    size = len(given_lookup)\nk_size = K.size")
    assert res.error_in_exec is None, res.error_in_exec
    assert shell.user_ns["r_lookup"] == 4 and shell.user_ns["k_size"] == 3
    assert asked == []


def test_only_a_cell_that_calls_eval_exec_or_globals_runs_with_the_builtins_that_ask(shell, run):
    """The others keep CPython's fastest global lookups in the functions they define."""
    shell.user_ns.pop("kinds", None)
    res = run("%%remote\ndef kind():\n    return type(__builtins__).__name__\nkinds = [kind()]")
    assert res.error_in_exec is None and shell.user_ns["kinds"] != ["Builtins"]
    res = run("%%remote\nkinds = [type(__builtins__).__name__, eval('len([])')]")
    assert res.error_in_exec is None and shell.user_ns["kinds"] == ["Builtins", 0]


def test_a_value_that_cannot_be_sent_fails_the_cell_with_a_name_error_that_says_why(shell, run):
    shell.user_ns.update(lock_lookup=threading.Lock())
    res = run("%%remote\nheld = eval('lock_' + 'lookup')")
    assert isinstance(res.error_in_exec, NameError)
    message = str(res.error_in_exec)
    assert "'lock_lookup' could not be fetched from the notebook" in message
    assert "_thread.lock" in message and "create it inside the cell" in message


def test_a_proxy_of_the_same_target_is_fetched_as_the_remote_object_itself(shell, run):
    res = run("%%remote --download=none\nbig_lookup = list(range(5))")
    assert res.error_in_exec is None
    assert isinstance(shell.user_ns["big_lookup"], RemoteObject)
    res = run("%%remote --download=all\nsame = eval('big_' + 'lookup') is not None\n"
              "total_lookup = sum(eval('big_' + 'lookup'))")
    assert res.error_in_exec is None, res.error_in_exec
    assert shell.user_ns["total_lookup"] == 10


def test_lookups_can_be_turned_off_and_the_cell_then_fails_as_before(shell, run, asked):
    shell.user_ns.update(off_x=1)
    shell.run_line_magic("config", "RemoteMagics.fetch_on_first_use = False")
    try:
        res = run("%%remote\neval('off_' + 'x')")
    finally:
        shell.run_line_magic("config", "RemoteMagics.fetch_on_first_use = True")
    assert isinstance(res.error_in_exec, NameError) and asked == []


def test_a_thread_the_cell_left_running_is_not_answered_after_the_run(shell, run, target):
    """Nobody listens once the run is over: a late read fails at once, it does not wait."""
    shell.user_ns.update(late_x=1)
    res = run("%%remote --download=none\nimport threading\ngo = threading.Event()\n"
              "late = {}\ndef read():\n    go.wait(60)\n    try:\n"
              "        late['value'] = eval('late_' + 'x')\n    except NameError as err:\n"
              "        late['error'] = str(err)\n"
              "reader = threading.Thread(target=read)\nreader.start()")
    assert res.error_in_exec is None, res.error_in_exec
    res = run("%%remote --download=all\ngo.set()\nreader.join(60)\nlate_seen = dict(late)")
    assert res.error_in_exec is None, res.error_in_exec
    assert shell.user_ns["late_seen"] == {"error": "name 'late_x' is not defined"}


@pytest.fixture(scope="module")
def attached(shell):
    """A plain ipykernel with the engine installed: its control thread is ipykernel's own."""
    from tests.test_targets import _plain_kernel

    km = _plain_kernel()
    target = remote_magics.connect(km.connection_file, name="lookup-attached")
    yield target
    remote_magics.disconnect("lookup-attached")
    km.shutdown_kernel(now=True)
    km.cleanup_resources()


def test_an_attached_kernel_fetches_on_first_use_and_shows_help_too(shell, run, attached):
    shell.user_ns.update(att_x=np.arange(3), att_name="att_" + "x")
    res = run("%%remote --target lookup-attached --download=all\n"
              "att_sum = int(eval(att_name).sum())")
    assert res.error_in_exec is None, res.error_in_exec
    assert shell.user_ns["att_sum"] == 3
    with capture_output() as here:
        run("att_x?")
    with capture_output() as there:
        assert run("%%remote --target lookup-attached\natt_x?").error_in_exec is None
    assert plain(there.stdout) == plain(here.stdout)


# --- where nobody listens: a plain NameError, at once ------------------------------------------

def test_an_async_job_does_not_ask_and_fails_with_a_name_error(shell, target, asked):
    names = {"async_x": 1}
    job = jobs.submit(target, "eval('async_' + 'x')", names, download="all")
    with pytest.raises(NameError, match="name 'async_x' is not defined"):
        job.result(60)
    assert asked == []


def test_a_detached_job_does_not_ask_and_fails_with_a_name_error(shell, target):
    names = {"detached_x": 1}
    job = jobs.detach(target, "eval('detached_' + 'x')", names, download="all")
    with pytest.raises(NameError, match="name 'detached_x' is not defined"):
        job.result(60)


def test_pool_members_do_not_ask_and_fail_with_a_name_error(shell, run, target, asked):
    shell.user_ns.update(pool_x=1)
    res = run(f"%%remote --targets {target.name}\neval('pool_' + 'x')")
    assert "default: NameError: name 'pool_x' is not defined" in str(res.error_in_exec)
    assert asked == []


# --- x?, %pinfo, %whos, %time and %timeit see the run's names ---------------------------------

@pytest.mark.parametrize("cell", ["np.add?", "np.add??", "%pinfo zz_help", "zz_help?",
                                  "%pdoc np.add", "missing_help?"])
def test_help_inside_a_remote_cell_is_the_help_a_plain_cell_shows(shell, run, cell):
    shell.user_ns.update(np=np, zz_help=np.arange(5))
    shell.user_ns.pop("missing_help", None)
    with capture_output() as here:
        assert run(cell).error_in_exec is None
    with capture_output() as there:
        res = run("%%remote\n" + cell)
    assert res.error_in_exec is None, res.error_in_exec
    assert plain(there.stdout) == plain(here.stdout)
    assert "not found" not in here.stdout or cell == "missing_help?"


def test_help_paged_by_a_remote_cell_does_not_wait_for_the_engines_next_cell(target, run):
    run("%%remote\nlen?")
    left = target.run("pages = len(get_ipython().payload_manager.read_payload())", {},
                      download="all").values["pages"]
    assert left == 0


def test_whos_inside_a_remote_cell_lists_what_a_plain_cell_lists(shell, run):
    hidden = shell.user_ns_hidden
    saved = {n: v for n, v in shell.user_ns.items()
             if not n.startswith("_") and not (n in hidden and hidden[n] is v)}
    for name in saved:  # only this test's names: what other tests left may not travel
        del shell.user_ns[name]
    try:
        shell.user_ns.update(read_whos=np.arange(3), other_whos={"a": 1}, n_whos=7)
        with capture_output() as plain:
            shell.run_cell("made_whos = 1\nalso = read_whos\n%whos")
        del shell.user_ns["made_whos"], shell.user_ns["also"]
        with capture_output() as shown:
            res = run("%%remote\nmade_whos = 1\nalso = read_whos\n%whos")
        assert res.error_in_exec is None, res.error_in_exec
        listed = {line.split()[0] for line in shown.stdout.splitlines()[2:] if line.strip()}
        assert listed == {"made_whos", "also", "read_whos", "other_whos", "n_whos"}
        assert shown.stdout == plain.stdout  # the same table, line for line
    finally:
        for name in ("read_whos", "other_whos", "n_whos", "made_whos", "also"):
            shell.user_ns.pop(name, None)
        shell.user_ns.update(saved)


@pytest.mark.parametrize("policy", POLICIES)
def test_time_and_timeit_inside_a_remote_cell_see_and_bind_the_runs_names(shell, run, target,
                                                                          policy):
    shell.user_ns.update(arr_time=np.arange(5))
    for name in ("line_time", "cell_time"):
        shell.user_ns.pop(name, None)
    res = run(f"%%remote --download={policy}\n%time line_time = arr_time.sum()\n"
              "%timeit -n1 -r1 arr_time.sum()")
    assert res.error_in_exec is None, res.error_in_exec
    res = run(f"%%remote --download={policy}\n%%time\ncell_time = arr_time.sum() + 1")
    assert res.error_in_exec is None, res.error_in_exec
    assert local(shell.user_ns["line_time"]) == 10 and local(shell.user_ns["cell_time"]) == 11
    leftover = target.run("names = sorted(n for n in get_ipython().user_ns if n.endswith("
                          "'_time'))", {}, download="all").values["names"]
    assert leftover == []  # nothing the magics bound stays in the kernel's own namespace


# --- the answer on the wire --------------------------------------------------------------------

def _ask_and_answer(target, code: str, namespace: dict, answer_with):
    """Run ``code`` with lookups, answering each ask with ``answer_with(conn, msg, real)``,
    where ``real()`` sends the notebook's own answer."""
    conn = target.connection
    real = conn.answer_lookup

    def answer(msg, on_lookup):
        answer_with(conn, msg, lambda: real(msg, on_lookup))

    conn.answer_lookup = answer
    try:
        return target.run(code, namespace, download="all", lookup=True)
    finally:
        del conn.answer_lookup


def test_lookup_answers_with_a_bad_signature_another_token_or_another_client_are_refused(
        target):
    eve = Connection(target.connection.info, name="eve")  # holds the key: a client of its own
    try:
        def intruders_first(conn, msg, real):
            token = msg["content"]["lookup"]
            evil = serialize.dumps("evil")
            fields = {"name": "wire_x", "found": True, "nframes": len(evil), "watch": False,
                      "error": None}
            # another client, with the very token it saw on iopub
            eve.send(protocol.LOOKUP_ANSWER, {"lookup": token, **fields}, evil,
                     channel="control")
            eve.send("kernel_info_request", {}, channel="control")  # answered after it
            assert eve.control.poll(30_000)
            # this client, for a lookup the engine is not waiting on (another run's)
            conn.send(protocol.LOOKUP_ANSWER, {"lookup": "0" * 32, **fields}, evil,
                      channel="control")
            # this client and token, but signed with the wrong key
            forged = conn.session.msg(protocol.LOOKUP_ANSWER, {
                "lookup": token, "client": conn.client_secret, **fields,
                "digest": protocol.frames_digest(b"wrong key", evil)})
            frames = conn.session.serialize(forged)
            frames[1] = b"0" * len(frames[1])  # the signature
            conn.control.send_multipart(frames + [bytes(f) for f in evil])
            real()

        run = _ask_and_answer(target, "got = eval('wire_' + 'x')", {"wire_x": "good"},
                              intruders_first)
        assert run.values["got"] == "good"
    finally:
        eve.close()


def test_a_notebook_that_never_answers_fails_the_cell_with_a_name_error_saying_so(target):
    set_timeout = "import remote_magics.wire.protocol as p\np.LOOKUP_TIMEOUT = {}"
    target.run(set_timeout.format(1.0), {})  # the engine's own module: one second, this once
    try:
        with pytest.raises(NameError) as caught:
            _ask_and_answer(target, "eval('mute_' + 'x')", {"mute_x": 1},
                            lambda conn, msg, real: None)
    finally:
        target.run(set_timeout.format(protocol.LOOKUP_TIMEOUT), {})
    assert "the notebook did not answer within 1 s" in str(caught.value)


@pytest.mark.parametrize("bad", ["frames", "name", "error"])
def test_a_malformed_lookup_answer_fails_the_cell_with_a_clear_error(target, bad):
    def malformed(conn, msg, real):
        item = serialize.dumps("value")
        content = {"lookup": msg["content"]["lookup"], "name": "odd_x", "found": True,
                   "nframes": len(item) + 1, "watch": False, "error": None}
        if bad == "name":
            content.update(name="other", nframes=len(item))
        elif bad == "error":
            content.update(found=False, nframes=0, error="it would not pickle")
            item = []
        conn.send(protocol.LOOKUP_ANSWER, content, item, channel="control")

    with pytest.raises(NameError) as caught:
        _ask_and_answer(target, "eval('odd_' + 'x')", {"odd_x": 1}, malformed)
    message = str(caught.value)
    assert {"frames": "malformed", "name": "for another name",
            "error": "could not be fetched from the notebook: it would not pickle"}[bad] in message


def test_a_malformed_ask_from_the_engine_is_dropped_and_a_run_without_lookups_answers_none(
        target):
    seen = []
    answer = remote_magics.targets.base.answerer({"x": 1}, {}, target)
    conn = target.connection
    real_send = conn.send
    conn.send = lambda *args, **kwargs: seen.append(args)
    try:
        conn.answer_lookup({"content": {"lookup": "t", "name": "not a name"}}, answer)
        conn.answer_lookup({"content": {"lookup": 5, "name": "x"}}, answer)
        assert seen == []
        conn.answer_lookup({"content": {"lookup": "t", "name": "x"}}, None)
    finally:
        conn.send = real_send
    (msg_type, content, frames), = [args[:3] for args in seen]
    assert msg_type == protocol.LOOKUP_ANSWER and content["found"] is False and frames == []
    assert answer("x").found and not answer("y").found
    assert LookupAnswer().found is False
