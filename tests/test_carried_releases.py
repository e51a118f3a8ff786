"""The engine's copy of a small value the notebook decoded is released with the next request,
not by a message of its own; a big one still goes at once; nothing is left behind."""
from __future__ import annotations

import pytest

import remote_magics
from remote_magics.wire import protocol


@pytest.fixture(scope="module")
def engine(shell):
    target = remote_magics.connect(name="carried")
    yield target
    if "carried" in remote_magics.registry.targets:
        remote_magics.disconnect("carried")


def test_a_small_value_is_released_by_the_next_request_without_a_message_of_its_own(engine):
    held = engine.info()["objects"]
    sent = []
    original = engine.connection.send

    def counting(msg_type, *args, **kwargs):
        sent.append(msg_type)
        return original(msg_type, *args, **kwargs)

    engine.connection.send = counting
    try:
        ns: dict = {}
        engine.run("s = 1.5", ns)
        assert ns["s"] == 1.5
        assert sent == [protocol.RUN_REQUEST]  # no release request after the run
        assert len(engine.connection.carried) == 1  # its release waits for the next request
        assert engine.info()["objects"] == held  # which carried it: released before the answer
        assert not engine.connection.carried
    finally:
        engine.connection.send = original


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
