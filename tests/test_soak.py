"""Soak: thousands of %%remote cells leave no objects and no memory behind."""
from __future__ import annotations

import gc

import psutil
import pytest

import remote_magics

CELLS = 2000


@pytest.mark.slow
def test_2000_cells_creating_and_dropping_proxies_leak_nothing(shell):
    target = remote_magics.connect(name="soak")
    engine = psutil.Process(target.details["pid"])
    me = psutil.Process()
    try:
        remote_magics.registry.current = "soak"
        start_objects = target.info()["objects"]
        baseline = None
        for i in range(CELLS):
            if i % 10 == 0:  # a 10 MB array that stays remote, replacing the previous one
                cell = "%%remote --download=small\nimport numpy as np\nbig = np.full(1_250_000, 1.0)"
            elif i % 10 == 5:  # use the proxy remotely, bring a small value back
                cell = "%%remote\ntotal = float(big.sum())\nitems = [total] * 10"
            else:
                cell = f"%%remote --download=none\nheld = list(range({i % 50}))\ncount = {i}"
            res = shell.run_cell(cell, store_history=False)
            assert res.error_in_exec is None, (i, res.error_in_exec)
            if i == 99:
                gc.collect()
                baseline = (me.memory_info().rss, engine.memory_info().rss)
        for name in ("big", "held", "count", "total", "items", "np"):
            shell.user_ns.pop(name, None)
        gc.collect()
        end_objects = target.info()["objects"]
        local_growth = me.memory_info().rss - baseline[0]
        engine_growth = engine.memory_info().rss - baseline[1]
        print(f"\nsoak: {CELLS} cells; objects {start_objects} -> {end_objects}; "
              f"growth after cell 100: local {local_growth / 1e6:.1f} MB, "
              f"engine {engine_growth / 1e6:.1f} MB")
        assert end_objects == start_objects
        assert local_growth < 50e6 and engine_growth < 50e6
    finally:
        remote_magics.disconnect("soak")
