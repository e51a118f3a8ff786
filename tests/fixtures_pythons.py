"""Other Python environments on this machine, made once and kept for later test runs.

A virtualenv with ipykernel and cloudpickle but without remote_magics, as a user's conda env or
venv beside the notebook's would be. Each is built once (``python -m venv``, then pip from the
configured index) into a folder of the system's temporary directory named by what it holds,
and reused by later sessions: a rerun costs nothing. A lock keeps two test runs from building
the same one at once; a half-built one is never used (it is renamed into place when complete).
"""
from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CACHE = Path(tempfile.gettempdir()) / "remote_magics-test-pythons"


def _minor(python: str) -> str:
    return subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, timeout=60, check=True).stdout.strip()


def venv(base: str, requirements: list[str]) -> str:
    """The ``bin/python`` of a virtualenv of ``base`` with ``requirements`` (made once, cached)."""
    tag = hashlib.sha256(f"{os.path.realpath(base)}|{' '.join(requirements)}".encode())
    folder = CACHE / tag.hexdigest()[:16]
    python = folder / "bin" / "python"
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building it: wait for it
        if not python.exists():
            building = Path(tempfile.mkdtemp(prefix=f"{folder.name}-", dir=CACHE))
            try:
                subprocess.run([base, "-m", "venv", str(building)], check=True, timeout=300,
                               capture_output=True)
                done = subprocess.run(
                    [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet",
                     *requirements], capture_output=True, text=True, timeout=900)
                assert done.returncode == 0, f"pip install {requirements} failed:\n{done.stderr}"
                building.rename(folder)  # its python finds its packages wherever it lives
            finally:
                shutil.rmtree(building, ignore_errors=True)
    return str(python)


def other_minor_python() -> str:
    """An interpreter of another Python minor version than this one (3.10 or later)."""
    mine = "%d.%d" % sys.version_info[:2]
    candidates = sorted(glob.glob("/root/.pyenv/versions/3.1[0-9]*/bin/python3")
                        + glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin/python3"))
                        + glob.glob("/usr/bin/python3.1[0-9]"))
    for candidate in candidates:
        if os.access(candidate, os.X_OK) and _minor(candidate) != mine:
            return candidate
    raise AssertionError("these tests need a second Python (3.10 or later, another minor "
                         f"version than {mine}); none found under ~/.pyenv or /usr/bin")


def same_minor_python() -> str:
    """The interpreter this test run's virtualenv was made from."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _without_remote_magics(python: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run([python, "-c", "import remote_magics"], capture_output=True,
                           text=True, timeout=60, env=env, cwd=tempfile.gettempdir())
    assert found.returncode != 0 and "No module named 'remote_magics'" in found.stderr
    return python


@pytest.fixture(scope="session")
def other_python() -> str:
    """A virtualenv of another Python minor version, with this run's cloudpickle version."""
    import cloudpickle

    python = venv(other_minor_python(), ["ipykernel", f"cloudpickle=={cloudpickle.__version__}"])
    return _without_remote_magics(python)


def _other_cloudpickle() -> str:
    import cloudpickle

    return "3.0.0" if cloudpickle.__version__ != "3.0.0" else "3.1.0"


#: The cloudpickle that :func:`other_cloudpickle_python` has (not this run's).
OTHER_CLOUDPICKLE = _other_cloudpickle()


@pytest.fixture(scope="session")
def other_cloudpickle_python() -> str:
    """A virtualenv of this Python with another cloudpickle version, and no numpy."""
    python = venv(same_minor_python(), ["ipykernel", f"cloudpickle=={OTHER_CLOUDPICKLE}"])
    return _without_remote_magics(python)
