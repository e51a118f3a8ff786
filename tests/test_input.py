"""``input()`` and ``getpass`` in a remote cell ask the notebook's frontend, as a plain cell's do.

Driven as a frontend drives a kernel: execute_requests with ``allow_stdin``, answering each
``input_request`` on the stdin channel. Every case runs the same cell plainly and as
``%%remote`` in one notebook kernel (and in the remote kernel) and compares what the frontend
saw: the prompts it was asked, the output, the error and the names afterwards.
"""
from __future__ import annotations

import queue
import re
import threading

import pytest

from tests.parity import parity_kernel  # noqa: F401 - the remote kernel fixture
from tests.test_kernel import text_of
from tests.test_targets import _plain_kernel

TIMEOUT = 120


def execute(kc, code: str, answers=(), allow_stdin: bool = True, on_ask=None,
            timeout: float = TIMEOUT) -> tuple[dict, list[dict], list[dict]]:
    """Run ``code``; answer its input requests in turn from ``answers``. Returns the reply's
    content, the iopub messages and the input requests' contents.

    ``on_ask(content)`` is called for each request instead, when given (it answers itself).
    """
    msg_id = kc.execute(code, allow_stdin=allow_stdin)
    answers = list(answers)
    asked: list[dict] = []
    outputs: list[dict] = []
    idle = False
    while not idle:
        try:
            request = kc.get_stdin_msg(timeout=0.05)
        except queue.Empty:
            request = None
        if request is not None and request["parent_header"].get("msg_id") == msg_id:
            asked.append(request["content"])
            if on_ask is not None:
                on_ask(request["content"])
            else:
                kc.input(answers.pop(0))
        try:
            msg = kc.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            idle = msg["content"]["execution_state"] == "idle"
        elif msg["msg_type"] != "execute_input":
            outputs.append(msg)
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], outputs, asked


def error_text(reply: dict) -> tuple[str, str]:
    return reply.get("ename"), reply.get("evalue")


@pytest.fixture(scope="module")
def notebook():
    """A plain notebook kernel with remote_magics loaded and a local engine connected."""
    km = _plain_kernel()
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply, outputs, _ = execute(kc, "%load_ext remote_magics\n%remote_connect --name inp")
        assert reply["status"] == "ok", text_of(outputs)
        yield km, kc
    finally:
        execute(kc, "%remote_disconnect inp")
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        km.cleanup_resources()


def both(kc, cell: str, answers=(), allow_stdin: bool = True):
    """The cell run plainly, then as ``%%remote``: (reply, output text, prompts) for each."""
    runs = []
    for code in (cell, "%%remote --download=all\n" + cell):
        reply, outputs, asked = execute(kc, code, answers, allow_stdin)
        prompts = [(a["prompt"], a["password"]) for a in asked]
        runs.append((reply, text_of(outputs), prompts))
    return runs


def names(kc, expression: str) -> str:
    reply, outputs, _ = execute(kc, f"print(repr({expression}))")
    assert reply["status"] == "ok", text_of(outputs)
    return text_of(outputs).strip()


def test_input_asks_the_frontend_and_the_answer_comes_back_as_in_a_plain_cell(notebook):
    _km, kc = notebook
    cell = "print('before')\nwho = input('Who? ')\nprint('hi', who)\nwho.upper()"
    (plain_reply, plain_text, plain_asked), (remote_reply, remote_text, remote_asked) = \
        both(kc, cell, answers=["Ada"])
    assert plain_reply["status"] == "ok", plain_text
    assert remote_reply["status"] == "ok", remote_text
    assert remote_asked == plain_asked == [("Who? ", False)]
    assert remote_text == plain_text == "before\nhi Ada\n'ADA'\n"
    assert names(kc, "who") == "'Ada'"


def test_getpass_asks_for_a_password_and_two_inputs_are_asked_in_turn(notebook):
    _km, kc = notebook
    cell = ("import getpass\nuser = input('user: ')\nsecret = getpass.getpass('pw: ')\n"
            "print(user, len(secret))")
    plain, remote = both(kc, cell, answers=["bob", "hunter2"])
    assert remote[0]["status"] == plain[0]["status"] == "ok", remote[1]
    assert remote[2] == plain[2] == [("user: ", False), ("pw: ", True)]
    assert remote[1] == plain[1] == "bob 7\n"
    assert names(kc, "(user, secret)") == "('bob', 'hunter2')"


def test_a_plain_call_of_a_function_that_stayed_remote_asks_the_frontend(notebook):
    """Hunt 32 H32-5: a function a `none` cell made, called from a plain cell, read the
    engine's own stdin (its prompt, then EOFError) where plainly the frontend is asked."""
    _km, kc = notebook
    reply, outputs, _ = execute(kc, "%%remote --download=none\n"
                                    "def ask():\n    return input('Pick: ') * 2\n"
                                    "class Game:\n    def turn(self):\n"
                                    "        return input('Move: ')\ngame = Game()")
    assert reply["status"] == "ok", text_of(outputs)
    assert "Remote" in names(kc, "type(ask).__name__")  # it stayed remote: a proxy
    reply, outputs, asked = execute(kc, "got = ask()\nmoved = game.turn()\nprint(got, moved)",
                                    answers=["ab", "e4"])
    assert reply["status"] == "ok", text_of(outputs)
    assert [a["prompt"] for a in asked] == ["Pick: ", "Move: "]
    assert text_of(outputs) == "abab e4\n"
    reply, outputs, _ = execute(kc, "ask()", allow_stdin=False)  # a frontend without stdin
    assert error_text(reply)[0] == "StdinNotImplementedError", text_of(outputs)


def test_end_of_input_raises_eof_error_as_in_a_plain_cell(notebook):
    _km, kc = notebook
    cell = "got = 'unset'\ntry:\n    got = input('> ')\nexcept EOFError:\n    got = 'EOF'\ngot"
    plain, remote = both(kc, cell, answers=["\x04"])
    assert remote[1] == plain[1] == "'EOF'\n"
    assert names(kc, "got") == "'EOF'"


def test_a_frontend_without_stdin_gets_the_plain_cells_error(notebook):
    _km, kc = notebook
    plain, remote = both(kc, "print('first')\nanswer = input('no one asks: ')",
                         allow_stdin=False)
    assert remote[2] == plain[2] == []  # nobody was asked, and nothing waits
    assert error_text(remote[0]) == error_text(plain[0]) == (
        "StdinNotImplementedError",
        "raw_input was called, but this frontend does not support input requests.")
    # the same traceback, through ipykernel's own raw_input, under the line saying where it ran
    def same(text: str) -> str:
        return re.sub(r"In\[\d+\]", "In[N]", text.replace("Remote error on target 'inp':\n", ""))
    assert "raw_input" in remote[1] and remote[1].startswith("first\n")
    assert same(remote[1]) == same(plain[1])


def test_the_stop_button_at_the_prompt_interrupts_the_cell_as_in_a_plain_cell(notebook):
    km, kc = notebook

    def stop(_content: dict) -> None:  # the user presses stop instead of typing
        threading.Timer(0.3, km.interrupt_kernel).start()

    runs = []
    for code in ("late = 1\nlate = input('wait: ')",
                 "%%remote --download=all\nlate = 2\nlate = input('wait: ')"):
        reply, outputs, asked = execute(kc, code, on_ask=stop)
        runs.append((reply, asked))
        assert error_text(reply) == ("KeyboardInterrupt", "Interrupted by user"), \
            text_of(outputs)
        assert [a["prompt"] for a in asked] == ["wait: "]
    assert names(kc, "late") == "2"  # what the cell bound before the prompt came back
    reply, outputs, _ = execute(kc, "%%remote\nprint('the engine goes on')")
    assert reply["status"] == "ok" and text_of(outputs) == "the engine goes on\n"


def test_a_pool_members_input_asks_the_notebook_too(notebook):
    _km, kc = notebook
    reply, outputs, asked = execute(kc, "%%remote --targets inp --download=all\n"
                                        "pooled = input('member? ')", answers=["yes"])
    assert reply["status"] == "ok", text_of(outputs)
    assert [a["prompt"] for a in asked] == ["member? "]
    assert "yes" in names(kc, "pooled")


def test_an_async_job_does_not_ask_and_says_why(notebook):
    _km, kc = notebook
    reply, outputs, asked = execute(
        kc, "%%remote --async -o job --download=all\njob_in = input('job? ')")
    assert reply["status"] == "ok", text_of(outputs)
    reply, outputs, more = execute(kc, "job.result(60)")
    assert asked == more == []
    assert error_text(reply) == (
        "StdinNotImplementedError",
        "raw_input was called, but this frontend does not support input requests.")


# --- the remote kernel: every cell runs in the engine --------------------------------------------

def test_the_remote_kernels_input_asks_its_frontend(parity_kernel):
    kc = parity_kernel.kc
    reply, outputs, asked = execute(kc, "print('k')\nkname = input('Name: ')\nkname * 2",
                                    answers=["Bo"])
    assert reply["status"] == "ok", text_of(outputs)
    assert [(a["prompt"], a["password"]) for a in asked] == [("Name: ", False)]
    assert text_of(outputs) == "k\n'BoBo'\n"
    reply, outputs, asked = execute(kc, "input('none: ')", allow_stdin=False)
    assert asked == []
    assert error_text(reply) == (
        "StdinNotImplementedError",
        "raw_input was called, but this frontend does not support input requests.")
