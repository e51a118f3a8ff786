"""Process settings both sides share (remote_magics.engine.settings), unit by unit; the whole
round trip through a notebook and its engine is in test_magics
(test_settings_a_plain_cell_makes_hold_in_remote_cells_and_back)."""
from __future__ import annotations

import sys
import types

import numpy as np

from remote_magics.engine import settings


def test_unchanged_settings_differ_in_nothing_and_a_change_is_found_by_its_key():
    before = settings.snapshot()
    assert settings.differing(settings.snapshot(), before) == {}
    saved = np.get_printoptions()
    try:
        np.set_printoptions(precision=3)
        assert settings.differing(settings.snapshot(), before) == {"numpy.precision": 3}
    finally:
        np.set_printoptions(**saved)
    everything = settings.differing(before, {})
    assert everything["sys.recursionlimit"] == sys.getrecursionlimit()


def test_settings_of_a_library_not_imported_wait_until_it_is(monkeypatch):
    module = types.ModuleType("fakelib")
    module.options = {"width": 80}
    monkeypatch.setitem(settings.LIBRARIES, "fakelib", (
        lambda m: tuple(m.options.items()), lambda m, state: dict(state),
        lambda m, name, value: m.options.__setitem__(name, value)))
    monkeypatch.delitem(sys.modules, "fakelib", raising=False)
    settings.take({"fakelib.width": 120})
    assert "fakelib" not in settings.snapshot()  # nothing imported for it
    assert settings._pending == {"fakelib": {"fakelib.width": 120}}
    monkeypatch.setitem(sys.modules, "fakelib", module)
    assert settings.snapshot()["fakelib"] == (("width", 120),)  # taken once it is imported
    assert settings._pending == {} and module.options == {"width": 120}


def test_a_value_the_other_side_cannot_read_is_left_out_alone():
    import base64
    import pickle

    assert settings.decode(settings.encode({"numpy.precision": 4, "fakelib.f": len})) == {
        "numpy.precision": 4, "fakelib.f": len}
    import threading  # a value that cannot be pickled stays behind, alone
    assert settings.decode(settings.encode({"numpy.precision": 4,
                                            "fakelib.lock": threading.Lock()})) == {
        "numpy.precision": 4}
    # a value of a class this side lacks (another version, a library it has not): that one only
    each = {"numpy.precision": pickle.dumps(4),
            "fakelib.formatter": b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c"
                                 b"\x07nowhere\x94\x8c\x01f\x94\x93\x94."}
    text = base64.b64encode(pickle.dumps(each)).decode()
    assert settings.decode(text) == {"numpy.precision": 4}
    assert settings.decode("not base64 at all!") == {}


def test_logging_crosses_levels_and_output_handlers_and_keeps_the_others_on_their_side(
        tmp_path):
    import logging

    logger = logging.getLogger("rm-settings-test")
    before = settings.snapshot()
    file_handler = logging.FileHandler(tmp_path / "log.txt")
    shown = logging.StreamHandler(sys.stderr)
    shown.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    try:
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(file_handler)
        logger.addHandler(shown)
        # filters go too (hunt 22 H22-1): a logger's and an output handler's, as copies
        logger.addFilter(logging.Filter("rm-settings-test.kept"))
        dropping = lambda record: "secret" not in record.getMessage()  # noqa: E731
        dropping.__module__ = "__main__"  # a cell's (a library's filter stays on its side)
        shown.addFilter(dropping)
        library = logging.Filter.__new__(type("RateLimit", (logging.Filter,), {}))
        logging.Filter.__init__(library)
        logger.addFilter(library)
        changed = settings.differing(settings.snapshot(), before)
        level, propagate, disabled, handlers, filters = changed["logging.logger.rm-settings-test"]
        assert (level, propagate, disabled) == (logging.DEBUG, False, False)
        assert [each.name for each in filters] == ["rm-settings-test.kept"]
        # the file's stays here; the other side stands in for it, if it forwards records
        assert [kind for kind, *_ in handlers] == ["forward", "stream"]
        crossed = settings.decode(settings.encode(changed))  # as the other side takes it
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        logger.filters.clear()
        settings.take(crossed)  # a side that forwards no records (a notebook): no stand-in
        assert logger.level == logging.DEBUG and not logger.propagate
        assert [each.name for each in logger.filters] == ["rm-settings-test.kept"]
        assert file_handler in logger.handlers and shown not in logger.handlers  # made again
        made = [h for h in logger.handlers if h is not file_handler]
        assert len(made) == 1 and made[0].stream is sys.stderr
        assert made[0].formatter._fmt == "%(levelname)s %(message)s"
        [dropping] = made[0].filters
        assert dropping(logging.makeLogRecord({"msg": "a secret"})) is False
        assert made[0].filter(logging.makeLogRecord({"msg": "plain"}))
        sent: list = []
        settings.log_forwarder = sent.append  # an engine's
        try:
            logger.setLevel(logging.NOTSET)
            settings.take(crossed)
            stand_in = [h for h in logger.handlers if isinstance(h, settings.Forwarding)]
            assert len(stand_in) == 1 and stand_in[0].logger_name == "rm-settings-test"
            assert "logging.logger.rm-settings-test" not in settings.differing(
                settings.snapshot(), settings.snapshot())
            logger.handlers.remove(shown) if shown in logger.handlers else None
            logger.getChild("part").info("made %d", 7)  # propagates to the stand-in
        finally:
            settings.log_forwarder = None
        logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, settings.Forwarding)]
        assert [item["record"]["msg"] for item in sent] == ["made 7"]
        file_handler.flush()  # (one process plays both sides: its file has the record)
        before_taking = (tmp_path / "log.txt").read_text()
        settings.take_log_record(sent[0])  # in the notebook: its file handler writes it
        file_handler.flush()
        assert (tmp_path / "log.txt").read_text() == before_taking + "made 7\n"
        logger.setLevel(logging.NOTSET)  # back to the defaults: that crosses too
        assert settings.differing(settings.snapshot(), settings.snapshot()) == {}
        now = settings.snapshot()
        logger.handlers.clear()
        logger.filters.clear()
        logger.propagate = True
        assert settings.differing(settings.snapshot(), now)["logging.logger.rm-settings-test"] \
            == (logging.NOTSET, True, False, (), ())
    finally:
        logger.handlers.clear()
        logger.filters.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        file_handler.close()


def test_warnings_filters_cross_exactly_python_s_own_string_ones_too():
    """Python's own default filters name their module as a plain string (``'__main__'``,
    matched exactly), filterwarnings' are regular expressions with flags: each crosses as it
    is (a string taken for "any module" showed every DeprecationWarning on the other side)."""
    import warnings

    saved = list(warnings.filters)
    try:
        warnings.filters.insert(0, ("default", None, DeprecationWarning, "__main__", 0))
        warnings.filterwarnings("ignore", message="noisy", category=UserWarning, module="x.y")
        crossed = settings.decode(settings.encode(settings.differing(settings.snapshot(), {})))
        expected = list(warnings.filters)
        warnings.resetwarnings()
        settings.take({key: value for key, value in crossed.items()
                       if key.startswith("warnings.")})
        assert list(warnings.filters) == expected
        assert warnings.filters[1][3] == "__main__"
    finally:
        warnings.filters[:] = saved
        warnings._filters_mutated()


def _random_changes(before: dict) -> set:
    return set(settings.differing(settings.snapshot(), before)) & settings.RANDOM_KEYS


def test_every_draw_and_seed_changes_the_random_setting_and_taking_it_draws_alike():
    """The generators' state is read as a fingerprint in place: it must change with every
    draw, seed and cached normal (a normal NumPy draws in pairs, and the second draw moves
    nothing but that cache), and the state taken on the other side must draw the same."""
    import random

    saved = random.getstate(), np.random.get_state()
    try:
        np.random.rand()  # numpy.random is imported lazily: its generator exists from now
        for change in (random.random, lambda: random.seed(4), lambda: random.gauss(0, 1),
                       np.random.rand, lambda: np.random.seed(4), np.random.normal):
            before = settings.snapshot()
            assert _random_changes(before) == set()
            change()
            assert _random_changes(before), change
        before = settings.snapshot()
        np.random.normal()  # the second of the pair: only the cache moved
        assert _random_changes(before) == {"numpy.random_state"}
        state = settings.decode(settings.encode(
            {key: value for key, value in settings.differing(settings.snapshot(), {}).items()
             if key in settings.RANDOM_KEYS}))
        drawn = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(),
                 np.random.normal())
        settings.take(state)
        assert (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(),
                np.random.normal()) == drawn
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])


def test_another_bit_generator_is_read_whole_and_still_crosses():
    bits = np.random.mtrand._rand._bit_generator
    try:
        np.random.set_bit_generator(np.random.PCG64(3))
        before = settings.snapshot()
        np.random.rand()
        assert _random_changes(before) == {"numpy.random_state"}
        state = settings.differing(settings.snapshot(), {})["numpy.random_state"]
        drawn = np.random.rand()
        settings.take({"numpy.random_state": state})
        assert np.random.rand() == drawn
    finally:
        np.random.set_bit_generator(bits)
