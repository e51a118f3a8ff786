"""Pickling into frames: out-of-band buffers, the early stop, proxy references."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from remote_magics.wire import serialize


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


def test_small_items_share_one_frame_and_come_back_in_order():
    values = [1, "two", np.arange(100_000), None, [3.0] * 10, b"x" * (serialize.PACK_BYTES + 1)]
    items, frames = [], []
    for value in values:
        item = serialize.dumps(value)
        items.append({"nframes": len(item)})
        frames.extend(item)
    items.append({"kind": "proxy"})  # a description without frames keeps its place
    packed_frames, packed = serialize.pack(items, frames)
    assert packed
    shared = [item for item in items if "at" in item]
    assert len(shared) == 4  # 1, "two", None and the list; the array and the big bytes keep theirs
    assert len(packed_frames) == len(frames) - len(shared) + 1
    found = serialize.unpack(items, packed_frames, packed)
    assert found[-1] == []
    back = [serialize.loads(own) for own in found[:-1]]
    assert back[:2] == [1, "two"] and back[3:5] == [None, [3.0] * 10]
    assert np.array_equal(back[2], values[2]) and back[5] == values[5]


def test_nothing_small_leaves_frames_as_they_are():
    item = serialize.dumps(np.arange(100_000))
    items = [{"nframes": len(item)}]
    assert serialize.pack(items, item) == (item, False)
    assert serialize.unpack(items, item, False) == [item]


def test_class_of_a_module_not_yet_imported_travels_by_reference():
    """numpy.rec is imported lazily; its recarray must not be pickled by value (a look-alike)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\nfrom remote_magics.wire import serialize\n"
            "r = np.zeros(2, dtype=[('age', int)]).view(np.recarray)\n"
            "assert 'numpy.rec' not in sys.modules\n"
            "frames = serialize.dumps(r)\n"
            "back = serialize.loads(frames)\n"
            "print(type(back) is np.recarray, back['age'].tolist(), len(frames[0]) < 1000)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert out == "True [0, 0] True"

