"""Pickling into frames: out-of-band buffers, the early stop, proxy references."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from remote_magics import serialize


def test_numpy_array_travels_out_of_band_without_a_copy():
    arr = np.arange(1_000_000, dtype=np.float64)
    frames = serialize.dumps(arr)
    assert len(frames) == 2
    assert len(frames[0]) < 1000  # the pickle stream holds no data
    assert memoryview(frames[1]).nbytes == arr.nbytes
    assert np.shares_memory(np.frombuffer(frames[1], dtype=np.float64), arr)  # zero copy on send
    back = serialize.loads(frames)
    assert np.array_equal(back, arr)
    assert np.shares_memory(back, np.frombuffer(frames[1], dtype=np.float64))  # nor on receive


def test_early_stop_raises_too_large_past_the_limit():
    with pytest.raises(serialize.TooLarge):
        serialize.dumps(list(range(1_000_000)), limit=10_000)
    with pytest.raises(serialize.TooLarge):
        serialize.dumps(np.zeros(10_000), limit=10_000)  # out-of-band bytes count too
    frames = serialize.dumps(list(range(100)), limit=10_000)
    assert serialize.loads(frames) == list(range(100))


def test_limit_is_the_serialized_size():
    value = b"x" * 5000
    size = serialize.nbytes(serialize.dumps(value))
    assert serialize.loads(serialize.dumps(value, limit=size)) == value
    with pytest.raises(serialize.TooLarge):
        serialize.dumps(value, limit=size - 1)


def test_non_contiguous_arrays_go_in_band():
    arr = np.arange(100.0)[::2]
    back = serialize.loads(serialize.dumps(arr))
    assert np.array_equal(back, arr)


def test_proxy_reference_needs_its_engine_to_resolve():
    class Fake:
        def __reduce__(self):
            return serialize.proxy_reference(self, "engine-1", "obj-1")

    with serialize.noting_proxies() as noted:
        frames = serialize.dumps([Fake(), {"k": Fake()}])
    assert len(noted) == 2
    with pytest.raises(pickle.UnpicklingError, match="fetch"):
        serialize.loads(frames)
    with serialize.resolving(lambda engine, oid: (engine, oid)):
        assert serialize.loads(frames) == [("engine-1", "obj-1"), {"k": ("engine-1", "obj-1")}]
