"""Engines on other local interpreters (``local --python``), and versions that differ.

The interpreters are real virtualenvs without remote_magics (:mod:`tests.fixtures_pythons`):
one of this Python with another cloudpickle version and no numpy, one of another Python minor version.
"""
from __future__ import annotations

import os
import sys

import psutil
import pytest

import remote_magics
from remote_magics import RemoteError, RemoteObject, SerializationError
from remote_magics.errors import NoSuchPython, ProxyError, RemoteKernelMissing
from tests.fixtures_pythons import (OTHER_CLOUDPICKLE, other_cloudpickle_python,  # noqa: F401
                                    other_minor_python, other_python)


def _double(x):
    return 2 * x


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def bump(self) -> int:
        self.n += 1
        return self.n


def _run(shell, cell: str):
    result = shell.run_cell(cell)
    return result.error_in_exec


def test_local_python_runs_the_engine_there_from_shipped_sources(shell, capsys,
                                                                 other_cloudpickle_python):
    shell.run_line_magic("remote_connect", f"local --python {other_cloudpickle_python} --name venv")
    said = capsys.readouterr().out
    target = remote_magics.registry.targets["venv"]
    pid = target.details["pid"]
    try:
        assert target.spec == f"local --python {other_cloudpickle_python}"
        # the connect line says what differs: cloudpickle, and numpy missing there
        assert f"cloudpickle {OTHER_CLOUDPICKLE}" in said and "numpy is not installed there" in said
        shell.user_ns.update(xs=[1, 2, 3], double=_double)
        error = _run(shell, "%%remote --target venv --download all\n"
                            "import sys, remote_magics\nexe = sys.executable\n"
                            "shipped = remote_magics.__path__[0]\n"
                            "try:\n    import remote_magics.magics\n    notebook_side = True\n"
                            "except ImportError:\n    notebook_side = False\n"
                            "total = sum(double(x) for x in xs)")
        assert error is None
        assert shell.user_ns["exe"] == other_cloudpickle_python
        assert os.path.basename(os.path.dirname(shell.user_ns["shipped"])).startswith(
            "remote_magics-engine-")
        assert shell.user_ns["notebook_side"] is False  # only the engine was shipped
        assert shell.user_ns["total"] == 12  # a notebook function went by value, same Python
        assert _run(shell, "%%remote --target venv --download none\nbig = list(range(10))") is None
        assert isinstance(shell.user_ns["big"], RemoteObject)
        assert shell.user_ns["big"].fetch() == list(range(10))
        shipped = os.path.dirname(shell.user_ns["shipped"])
        # connecting the same again reuses it
        assert remote_magics.connect("local", name="venv", python=other_cloudpickle_python) \
            is target
    finally:
        for name in ("xs", "double", "exe", "shipped", "notebook_side", "total", "big"):
            shell.user_ns.pop(name, None)
        remote_magics.disconnect("venv")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not os.path.exists(shipped)  # the shipped sources went with the kernel


def test_local_python_starts_a_pool_of_that_interpreter(shell, other_cloudpickle_python):
    pool = remote_magics.connect("local", n=2, name="vpool", python=other_cloudpickle_python)
    try:
        run = pool.run("import sys\nexe = sys.executable", {}, download="all")
        assert list(run.values["exe"]) == [other_cloudpickle_python] * 2
        assert pool.spec == f"local --python {other_cloudpickle_python}"
    finally:
        pool.close()


def test_local_python_that_cannot_run_an_engine_is_named():
    with pytest.raises(NoSuchPython, match="no-such-python"):
        remote_magics.connect("local", name="nopython", python="/nonexistent/no-such-python")
    bare = other_minor_python()  # a plain interpreter: no ipykernel there
    with pytest.raises(RemoteKernelMissing, match="ipykernel"):
        remote_magics.connect("local", name="bare", python=bare)
    assert "nopython" not in remote_magics.registry.targets
    assert "bare" not in remote_magics.registry.targets


@pytest.fixture(scope="module")
def older(shell, other_python):
    """An engine on another Python minor version."""
    target = remote_magics.connect("local", name="older", python=other_python)
    yield target
    remote_magics.disconnect("older")


def test_another_python_version_is_named_at_connect(shell, capsys, other_python):
    shell.run_line_magic("remote_connect", f"local --python {other_python} --name older2")
    try:
        said = capsys.readouterr().out
        there = remote_magics.registry.targets["older2"].details["python_version"]
        here = "%d.%d.%d" % sys.version_info[:3]
        assert f"Python {there}" in said and here in said
        assert "cannot travel by value" in said
        assert len([line for line in said.splitlines() if "remote_magics:" in line]) == 1
    finally:
        remote_magics.disconnect("older2")


@pytest.mark.parametrize("value", [_double, _Counter, _Counter()], ids=["function", "class",
                                                                        "instance"])
def test_code_by_value_to_another_python_version_is_refused_naming_both(older, value):
    here = "%d.%d.%d" % sys.version_info[:3]
    with pytest.raises(SerializationError) as caught:
        older.run("y = value", {"value": value})
    message = str(caught.value)
    assert older.details["python_version"] in message and here in message
    assert "Nothing ran remotely" in message


def test_a_value_that_does_not_load_in_another_python_names_both_versions(older):
    import enum

    here = "%d.%d.%d" % sys.version_info[:3]
    with pytest.raises(RemoteError) as caught:  # StrEnum is new in Python 3.11
        older.run("y = kind", {"kind": enum.StrEnum})
    message = str(caught.value)
    assert "could not be unpickled" in message
    assert f"Python {older.details['python_version']} there and {here} here" in message


def test_code_by_value_from_another_python_version_stays_remote_naming_both(older):
    here = "%d.%d.%d" % sys.version_info[:3]
    run = older.run("def g(x):\n    return x + 1\nn = g(1)\ndata = {'a': [1, 2.5, 'x']}",
                    {}, download="all")
    assert run.values["n"] == 2 and run.values["data"] == {"a": [1, 2.5, "x"]}
    assert isinstance(run.values["g"], RemoteObject)
    (note,) = run.notes
    assert "'g' stays remote" in note and older.details["python_version"] in note and here in note
    with pytest.raises(ProxyError, match=here):
        run.values["g"].fetch()
    assert older.run("m = g(41)", {"g": run.values["g"]}, download="all").values["m"] == 42


def test_over_ssh_a_function_for_another_python_version_is_refused_naming_both(shell, sshd,
                                                                                other_python):
    """The common case: an ssh host's Python is older than the notebook's."""
    target = remote_magics.connect("ssh://rmtest", name="ssh-older", python=other_python,
                                   ssh_options=sshd.options)
    try:
        here = "%d.%d.%d" % sys.version_info[:3]
        with pytest.raises(SerializationError, match=target.details["python_version"]) as caught:
            target.run("y = f(1)", {"f": _double})
        assert here in str(caught.value)
        assert target.run("y = x + 1", {"x": 1}, download="all").values == {"y": 2}
        # the engine's connection file is in the host's Jupyter runtime dir, private
        where = target.run("import os\nfrom ipykernel.kernelapp import IPKernelApp\n"
                           "from jupyter_core.paths import jupyter_runtime_dir\n"
                           "file = IPKernelApp.instance().abs_connection_file\n"
                           "runtime = jupyter_runtime_dir()\n"
                           "mode = os.stat(file).st_mode & 0o777", {}, download="all").values
        assert os.path.dirname(where["file"]) == where["runtime"] and where["mode"] == 0o600
    finally:
        remote_magics.disconnect("ssh-older")
    assert not os.path.exists(where["file"])  # this machine is the host: it is gone
