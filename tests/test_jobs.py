"""%%remote --async: jobs are Futures, run in order per target, show their output where they started."""
from __future__ import annotations

import concurrent.futures
import threading

import pytest
from IPython.utils.capture import capture_output

import remote_magics
from remote_magics import RemoteError, jobs
from remote_magics.jobs import Job


@pytest.fixture(scope="module")
def busy(shell):
    """A kernel of this module's own (its jobs are interrupted and cancelled)."""
    target = remote_magics.connect(name="jobs")
    yield target
    jobs.shutdown(target)
    remote_magics.disconnect("jobs")
    assert not [t for t in threading.enumerate() if t.name.startswith("remote_magics-jobs-jobs")]


@pytest.fixture
def cell(shell, busy):
    remote_magics.registry.current = busy.name

    def _run(text: str):
        result = shell.run_cell(text, store_history=False)
        assert result.error_in_exec is None, result.error_in_exec
        return result
    return _run


SLOW = "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.3)\n"


def test_async_cell_returns_a_future_and_result_assigns_names_once(shell, cell):
    shell.user_ns["base"] = 20
    shell.user_ns.pop("answer", None)  # another file's test may have bound it in the session's shell
    cell(f"%%remote --async -o job\n{SLOW}answer = base + 22\nanswer * 2")
    job = shell.user_ns["job"]
    assert isinstance(job, concurrent.futures.Future) and isinstance(job, Job)
    assert not job.done() and "answer" not in shell.user_ns  # returned at once
    assert job.result(30) == 84
    assert shell.user_ns["answer"] == 42 and job.elapsed > 0.8
    shell.user_ns["answer"] = "changed locally"
    assert job.result() == 84 and shell.user_ns["answer"] == "changed locally"  # once only
    assert job.status == "done" and "tick 2" in job.output
    assert job.run.bytes_sent > 0


def test_default_job_name_and_failed_job_changes_nothing(shell, cell):
    shell.user_ns.pop("broken", None)
    cell("%%remote --async\nbroken = 1\n1 / 0")
    job = shell.user_ns["_remote_job"]
    concurrent.futures.wait([job], timeout=30)
    assert isinstance(job.exception(), ZeroDivisionError) and isinstance(job.exception(), RemoteError)
    with pytest.raises(ZeroDivisionError):
        job.result()
    assert "broken" not in shell.user_ns and job.status == "failed"
    assert "ZeroDivisionError" in repr(job)


def test_jobs_on_one_target_run_in_submission_order(shell, cell, busy):
    cell("%%remote --download none\norder = []")  # one remote list that every job appends to
    for i in range(4):
        cell(f"%%remote --async -o j{i} --download none\nimport time\ntime.sleep({0.2 if i == 0 else 0})\n"
             f"order.append({i})\norder_now = list(order)")
    shell.user_ns["j3"].result(30)
    assert [shell.user_ns[f"j{i}"].done() for i in range(4)] == [True] * 4
    assert shell.user_ns["order_now"].fetch() == [0, 1, 2, 3]


def test_synchronous_cell_waits_its_turn_and_says_so(shell, cell):
    cell("%%remote --download none\nflags = []")
    cell(f"%%remote --async -o slow\n{SLOW}flags.append('finished')")
    with capture_output() as captured:
        cell("%%remote\nafter = list(flags)")
    assert shell.user_ns["after"] == ["finished"]  # it ran after the job, not beside it
    # a plain note on stdout: stderr would show it as an error (pink in JupyterLab)
    assert "busy with job" in captured.stdout and "waiting for its turn" in captured.stdout
    assert "busy" not in captured.stderr
    assert shell.user_ns["slow"].done()
    with capture_output() as captured:
        cell(f"%%remote --async -o slow2\n{SLOW}")
        cell("%%remote --quiet\nx_quiet = 1")
    assert "busy" not in captured.stdout and "busy" not in captured.stderr


def test_cancel_interrupts_a_running_job_and_drops_a_queued_one(shell, cell, busy):
    cell("%%remote --async -o running\nimport time\nfor _ in range(600):\n    time.sleep(0.1)\n"
         "ran = True")
    cell("%%remote --async -o queued\nqueued_ran = True")
    running, queued = shell.user_ns["running"], shell.user_ns["queued"]
    concurrent.futures.wait([running], timeout=0.5)  # let it start
    assert queued.cancel() and queued.cancelled()
    assert running.cancel()
    done, _ = concurrent.futures.wait([running], timeout=30)
    assert running in done and running.cancelled() and running.status == "cancelled"
    with pytest.raises(concurrent.futures.CancelledError):
        running.result()
    assert running.elapsed < 20
    cell("%%remote\nalive = 'yes'")  # the kernel still runs cells
    assert shell.user_ns["alive"] == "yes"
    assert not queued.running() and "queued_ran" not in shell.user_ns


def test_remote_output_updates_the_display_of_the_cell_that_started_the_job(shell, cell):
    published = []
    original = shell.display_pub.publish

    def record(data, metadata=None, *args, **kwargs):
        published.append((data, kwargs.get("transient") or {}, kwargs.get("update", False)))
    shell.display_pub.publish = record
    try:
        cell(f"%%remote --async -o shown\n{SLOW}")
        shell.user_ns["shown"].result(30)
    finally:
        shell.display_pub.publish = original
    first_id = published[0][1]["display_id"]
    updates = [p for p in published if p[2]]
    assert updates and all(p[1]["display_id"] == first_id for p in updates)
    assert "tick 2" in updates[-1][0]["text/plain"] and "tick 2" in shell.user_ns["shown"]._repr_html_()
    assert "done" in updates[-1][0]["text/plain"]


def test_a_job_displayed_later_is_updated_in_place_as_its_status_changes(shell, cell):
    cell(f"%%remote --async -o later\n{SLOW}")
    job = shell.user_ns["later"]
    published = []
    original = shell.display_pub.publish

    def record(data, metadata=None, *args, **kwargs):
        published.append((data, kwargs.get("transient") or {}, kwargs.get("update", False)))
    shell.display_pub.publish = record
    try:
        cell("later")  # the job as a cell's last line, while it is queued or running
        shown = [p for p in published if not p[2]]  # not the updates of the job's first display
        job.result(30)
    finally:
        shell.display_pub.publish = original
    assert len(shown) == 1 and shown[0][1].get("display_id")  # a display id of its own
    assert any(word in shown[0][0]["text/plain"] for word in ("queued", "running"))
    display_id = shown[0][1]["display_id"]
    updates = [p for p in published if p[2] and p[1].get("display_id") == display_id]
    assert updates and "done" in updates[-1][0]["text/plain"]  # not frozen at "running"


def test_proxies_made_by_a_job_work_in_the_notebook_and_back(shell, cell):
    cell("%%remote --async -o maker --download none\nbig = list(range(10_000))")
    shell.user_ns["maker"].result(30)
    big = shell.user_ns["big"]
    assert len(big) == 10_000  # a job's proxy, used over the main connection
    cell("%%remote --async -o user\ntotal = sum(big)")
    assert shell.user_ns["user"].result(30) is None and shell.user_ns["total"] == 49_995_000


def test_result_from_another_thread_refuses_to_assign(busy):
    ns: dict = {}
    job = jobs.submit(busy, "v = 1", ns)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_try(job.result, 30)))
    worker.start()
    worker.join(30)
    assert isinstance(outcome[0], RuntimeError)
    assert job.result(30) is None and ns["v"] == 1


def _try(function, *args):
    try:
        return function(*args)
    except Exception as err:
        return err


def test_job_connection_message_ids_never_collide_with_the_main_ones(shell, cell, busy):
    cell("%%remote --async -o probe\nprobe_value = 1")
    shell.user_ns["probe"].result(30)
    worker = busy.job_queue
    ours = {worker.connection.session.msg_id for _ in range(1000)}
    main = {busy.connection.session.msg_id for _ in range(1000)}
    assert worker.connection.session.session == busy.connection.session.session  # one client
    assert not ours & main


def test_remote_targets_reports_a_busy_target_without_disturbing_its_job(shell, cell, capsys):
    cell("%%remote --async -o listed\nimport time\ntime.sleep(1.5)\nfinished = 'yes'")
    capsys.readouterr()
    shell.run_line_magic("remote_targets", "")
    listing = capsys.readouterr().out
    assert "busy: job" in listing
    job = shell.user_ns["listed"]
    job.result(30)
    assert shell.user_ns["finished"] == "yes"  # the listing neither waited for nor interrupted it


def test_api_calls_wait_for_the_targets_jobs(shell, cell, busy):
    cell("%%remote --async -o first\nimport time\ntime.sleep(1)\norder = ['job']")
    ns = {}
    busy.run("seen = 'api'", ns)  # queued behind the job, not interleaved with it
    assert shell.user_ns["first"].done()
    assert ns["seen"] == "api"
