"""The engine's error descriptions: bounded tracebacks, and messages whatever the exception does."""
from __future__ import annotations

import sys
import traceback

import pytest

from remote_magics.engine import tracebacks


def _raised(function, *args):
    try:
        function(*args)
    except BaseException as err:  # noqa: B036 - the tests raise KeyboardInterrupt on purpose
        return err
    raise AssertionError("nothing was raised")


def _down(n):
    if n == 0:
        raise ValueError("bottom")
    return _down(n - 1)


def _ping(n):
    if n == 0:
        raise ValueError("bottom")
    return _pong(n - 1)


def _pong(n):
    return _ping(n)


def _walked(tb) -> int:
    return len(list(traceback.walk_tb(tb)))


def test_a_long_recursion_is_collapsed_with_the_exact_count_of_frames_left_out():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        err = _raised(_down, 5_000)
    finally:
        sys.setrecursionlimit(limit)
    content = tracebacks.error_content(err, err.__traceback__)
    text = "\n".join(content["traceback"])
    line = _down.__code__.co_firstlineno + 3  # return _down(n - 1)
    recursing = _walked(err.__traceback__) - 2  # less _raised's frame and the one that raised
    assert recursing == 5_000
    assert f"skipping similar frames: _down at line {line} ({recursing - 3:,} times)" in text
    assert text.count(f"line {line}, in _down") == 3  # two shown before the note, one after
    assert text.rstrip().endswith("ValueError: bottom")
    assert content["ename"] == "ValueError" and content["evalue"] == "bottom"


def test_mutual_recursion_is_collapsed_as_a_cycle():
    err = _raised(_ping, 800)
    text = "\n".join(tracebacks.format_traceback(err, err.__traceback__))
    ping, pong = _ping.__code__.co_firstlineno + 3, _pong.__code__.co_firstlineno + 1
    assert f"skipping similar frames: _ping at line {ping}, _pong at line {pong} (" in text
    assert len(text.splitlines()) < 40


def test_a_short_traceback_is_formatted_in_full_and_chains_are_kept():
    def outer():
        try:
            _down(3)
        except ValueError as inner:
            raise KeyError("top") from inner

    err = _raised(outer)
    text = "\n".join(tracebacks.format_traceback(err, err.__traceback__))
    assert text == "".join(traceback.format_exception(err)).rstrip("\n")


def test_a_long_chained_traceback_keeps_the_cause_and_its_link():
    def outer():
        try:
            _down(500)
        except ValueError as inner:
            raise KeyError("top") from inner

    err = _raised(outer)
    text = "\n".join(tracebacks.format_traceback(err, err.__traceback__))
    assert "direct cause of the following exception" in text
    assert text.index("ValueError: bottom") < text.index("KeyError: 'top'")
    assert "skipping similar frames: _down" in text


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit, ValueError])
def test_an_exception_whose_message_raises_is_still_described(raised):
    class Mute(Exception):
        def __str__(self):
            raise raised("no message")

    err = _raised(lambda: (_ for _ in ()).throw(Mute()))
    content = tracebacks.error_content(err, err.__traceback__)
    assert content["ename"] == "Mute" and "could not be formatted" in content["evalue"]
    assert content["traceback"] and tracebacks.one_line(err).startswith("Mute: <Mute")


def test_a_formatter_that_is_interrupted_still_gives_a_reply():
    class Shell:
        class InteractiveTB:
            @staticmethod
            def structured_traceback(*args, **kwargs):
                raise KeyboardInterrupt  # the stop button, pressed while formatting

    err = _raised(_down, 2)
    content = tracebacks.error_content(err, err.__traceback__, shell=Shell())
    assert content["status"] == "error" and content["traceback"] == ["ValueError: bottom"]
