"""Every example notebook runs top to bottom under nbclient on a fresh kernel, with its key outputs.

A notebook added to ``notebooks/`` runs here as it is: it must finish, and only cells tagged
``raises-exception`` may raise. Its entry in ``EXPECTED`` adds the texts its outputs must show
(streams, plain-text results and error tracebacks), the MIME types it must display, and how many
cells raise.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import plain

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))

EXPECTED: dict[str, dict] = {
    "01-quickstart": {
        "texts": [r"counted in process \d+", r"^9594$", r"^148935$", r"^<RemoteObject list",
                  r"1999993\]", r"plotting 148935 primes", r"Target 'default' shut down"],
        "mime": ["text/html", "image/png"],
        "errors": 0,
    },
    "02-proxies": {
        "texts": [r"\{'n': 1000000, 'mean': 0\.5\}",
                  r"<RemoteObject numpy\.ndarray shape=1000000 dtype=float64 8\.0 MB",
                  r"\d+ values above 0\.99; the largest is 0\.99", r"\(\(1000000,\), dtype\('float64'\)\)",
                  r"RemoteObject \[0, 1, 4, 9, 16, 25, 36, 49, 64, 81\]",
                  r"default .* yes\s+2\n", r"default .* yes\s+0\n"],
        "mime": ["text/html"],
        "errors": 0,
    },
    "03-output-and-errors": {
        "texts": [r"step 0\nstep 1\nstep 2", r"a note on stderr", r"ZeroDivisionError",
                  r"return a / b", r"^False$",
                  r"caught locally: .* is a ZeroDivisionError: True",
                  r"past its timeout of 2 s", r"the remote kernel still answers"],
        "mime": ["image/png"],
        "errors": 2,
    },
    "04-remote-kernel": {
        "texts": [r"Installed kernelspec 'remote-demo' \(Python 3 \(remote: demo\)\)",
                  r"remote-demo\s+Python 3 \(remote: demo\)\s+local",
                  r"the cell ran in pid \d+", r"answers\s+list\s+n=2",
                  r"local side, pid \d+ - answer = 42", r"^\[42, 43, 0\] 3$",
                  r"\*\s+demo .* yes", r"Removed kernelspec .*remote-demo"],
        "mime": [],
        "errors": 0,
    },
    "05-async-and-channels": {
        "texts": [r"step 2", r"the notebook is free while the job is (running|queued)",
                  r"^total = 45 - the job ran", r"got \{'i': 4, 'square': 16\}",
                  r"alpha -> ALPHA\nbeta -> BETA", r"channel closed: True",
                  r"^\(100000,\s+\['w0', 'w1', 'w2'\],\s+True,\s+42\)",
                  r"Target 'default' shut down"],
        "mime": ["text/html"],
        "errors": 0,
    },
    "06-fan-out": {
        "texts": [r"Connected pool 'pool' of 2", r"pool\[1\]\s+pool\s+local engine",
                  r"\[pool\[0\]\]\nhello from \d+\n\[pool\[1\]\]\nhello from \d+", r"^True$",
                  r"primes counted: 17986", r"failed on 1 of 2 targets",
                  r"failed: \['pool\[1\]'\]", r"pool\[0\] got flaky = True",
                  r"^20000 2264$", r"remote_magics map item 3",
                  r"Pool 'pool' \(2 kernels\) shut down"],
        "mime": [],
        "errors": 2,
    },
    "07-long-jobs": {
        "texts": [r"(Connected|Reconnected) target 'longjobs'.* persistent engine pid \d+",
                  r"job \d+ is (queued|running|done) - the notebook is free",
                  r"Target 'longjobs' disconnected; its persistent engine runs on",
                  r"Reconnected target 'longjobs' to its persistent engine",
                  r"id\s+status\s+started\s+elapsed\s+names\s+cell\n\d+\s+(running|done)",
                  r"^epoch 0: loss 1\.0\nepoch 1: loss 0\.5\nepoch 2: loss 0\.333\n"
                  r"epoch 3: loss 0\.25\nepoch 4: loss 0\.2$",
                  r"^\{'epochs': 5, 'loss': 0\.2\}$", r"\d+\s+done\s+.*collected\s+import time",
                  r"total = 499999500000 - saved on disk: True",
                  r"Target 'longjobs' shut down: its persistent engine has ended"],
        "mime": ["text/html"],
        "errors": 0,
    },
}


def _texts(nb) -> list[str]:
    """Per code cell, the text of its outputs, joined (live streams arrive in pieces)."""
    found = []
    for cell in nb.cells:
        parts = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type == "error":
                parts.append("\n".join(output.traceback) + "\n")
            elif "text/plain" in output.get("data", {}):
                parts.append(output.data["text/plain"] + "\n")
        found.append(plain("".join(parts)))
    return found


def test_every_expectation_names_a_notebook_and_notebooks_are_small():
    assert set(EXPECTED) <= {path.stem for path in PATHS}
    for path in PATHS:
        assert path.stat().st_size < 100_000, f"{path.name} is large: commit it without outputs"


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_notebook_runs_and_shows_its_key_outputs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError for an unexpected error

    expected = EXPECTED.get(path.stem, {"texts": [], "mime": [], "errors": None})
    texts = _texts(nb)
    for pattern in expected["texts"]:
        assert any(re.search(pattern, text, re.M) for text in texts), \
            f"{path.name}: no output matches {pattern!r}; outputs were:\n" + "\n---\n".join(texts)
    shown = {mime for cell in nb.cells for output in cell.get("outputs", [])
             for mime in output.get("data", {})}
    for mime in expected["mime"]:
        assert mime in shown, f"{path.name} displayed no {mime}"
    errors = [cell for cell in nb.cells
              if any(o.output_type == "error" for o in cell.get("outputs", []))]
    if expected["errors"] is not None:
        assert len(errors) == expected["errors"]
    assert all("raises-exception" in cell.metadata.get("tags", []) for cell in errors)
