"""Any picklable value comes back equal under every download policy."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from remote_magics import RemoteObject

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=20), st.binary(max_size=200))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=5), inner, max_size=5)), max_leaves=20)
numeric = arrays(dtype=st.sampled_from([np.float64, np.int32, np.uint8]),
                 shape=st.integers(0, 300))


def _round_trip(target, value, policy):
    ns = {"value": value}
    target.run("back = value", ns, download=policy, bytes=100)
    back = ns["back"]
    return back.fetch() if isinstance(back, RemoteObject) else back


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values, policy=st.sampled_from(["all", "small", "none"]))
def test_any_value_round_trips_under_every_policy(target, value, policy):
    assert _round_trip(target, value, policy) == value


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=numeric, policy=st.sampled_from(["all", "small", "none"]))
def test_any_array_round_trips_under_every_policy(target, value, policy):
    back = _round_trip(target, value, policy)
    assert back.dtype == value.dtype
    np.testing.assert_array_equal(back, value)  # NaN equals NaN here


def test_small_arrays_arrive_aligned_as_a_plain_arrays_memory_is(shell, run):
    """Hunt 13 C6 (silent, the last bits): ZeroMQ hands small messages over as slices of its
    receive buffer, so an 8×8 array arrived off an 8-byte boundary, and numpy computed
    ``GM.T @ x`` without BLAS, with other low bits than the plain run's (DSIRP pagerank)."""
    for n in (3, 8, 13, 40, 100):
        shell.user_ns["GM"] = np.random.default_rng(n).random((n, n))
        shell.user_ns["v"] = np.arange(n, dtype=np.int8)
        assert run("%%remote\nr = (GM.__array_interface__['data'][0] % 16,\n"
                   "     v.__array_interface__['data'][0] % 16, GM.flags.aligned,\n"
                   "     (GM.T @ GM[0]).tobytes())").error_in_exec is None
        assert shell.user_ns["r"] == (0, 0, True, (shell.user_ns["GM"].T @ shell.user_ns[
            "GM"][0]).tobytes()), n
    for name in ("GM", "v", "r"):
        shell.user_ns.pop(name, None)
