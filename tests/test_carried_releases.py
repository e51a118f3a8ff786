"""The engine's copy of a small value the notebook decoded is released with the next request,
not by a message of its own; a big one still goes at once; nothing is left behind. A kept
upload the notebook let go of is released by the next run, which carries its token."""
from __future__ import annotations

import contextlib
import gc

import pytest

import remote_magics
from remote_magics.wire import protocol, serialize


@pytest.fixture(scope="module")
def engine(shell):
    target = remote_magics.connect(name="carried")
    yield target
    if "carried" in remote_magics.registry.targets:
        remote_magics.disconnect("carried")


@contextlib.contextmanager
def messages_sent(engine):
    """The types of the messages the notebook sends the engine within the block, in order."""
    sent: list[str] = []
    original = engine.connection.send

    def counting(msg_type, *args, **kwargs):
        sent.append(msg_type)
        return original(msg_type, *args, **kwargs)

    engine.connection.send = counting
    try:
        yield sent
    finally:
        engine.connection.send = original


def test_a_small_value_is_released_by_the_next_request_without_a_message_of_its_own(engine):
    held = engine.info()["objects"]
    with messages_sent(engine) as sent:
        ns: dict = {}
        engine.run("s = 1.5", ns)
        assert ns["s"] == 1.5
        assert sent == [protocol.RUN_REQUEST]  # no release request after the run
        assert len(engine.connection.carried) == 1  # its release waits for the next request
        assert engine.info()["objects"] == held  # which carried it: released before the answer
        assert not engine.connection.carried


def test_a_big_value_is_released_at_once(engine):
    held = engine.info()["objects"]
    ns: dict = {}
    engine.run(f"b = bytes({protocol.CARRY_RELEASE_BYTES * 4})", ns, download="all")
    assert len(ns["b"]) == protocol.CARRY_RELEASE_BYTES * 4
    assert not engine.connection.carried  # its own release message went after the run
    assert engine.info()["objects"] == held


def test_many_cells_binding_small_values_leave_nothing_in_the_engine(engine):
    held = engine.info()["objects"]
    ns: dict = {}
    for i in range(50):
        engine.run(f"x = {i}\ny = [x] * 3", ns)
    assert ns["y"] == [49] * 3
    assert engine.info()["objects"] == held


def test_a_kept_upload_let_go_of_is_released_by_the_next_run_without_a_message_of_its_own(
        engine):
    kept_before = engine.info()["kept"][0]
    ns: dict = {"big": list(range(serialize.KEPT_MEMBERS * 2))}
    engine.run("n = len(big)", ns)
    assert ns["n"] == serialize.KEPT_MEMBERS * 2
    assert engine.info()["kept"][0] == kept_before + 1  # the engine keeps its copy
    with messages_sent(engine) as sent:
        del ns["big"]
        gc.collect()  # the notebook's list is gone: the engine's copy is to go
        engine.run("m = 2", ns)
        assert sent == [protocol.RUN_REQUEST]  # its release went with the run
        assert not engine.connection.carried_uploads
    assert engine.info()["kept"][0] == kept_before  # released
