"""Code by value keeps where it was written: file name, a cell's lines and its label."""
from __future__ import annotations

import linecache
import subprocess
import sys
import textwrap

import pytest

from remote_magics.wire import serialize, sources

CELL = "/tmp/ipykernel_0/remote_magics_test_cell.py"
SOURCE = "def f(x):\n    y = x + 1\n    return 1 / (y - y)\n"


class _Compiler:
    """What IPython's shell compiler offers for labels: ``format_code_name``."""

    def __init__(self, known: dict[str, int]) -> None:
        self.known = known

    def format_code_name(self, name: str):
        return ("Cell", f"In[{self.known[name]}]") if name in self.known else None


def _cell_function(filename: str = CELL, source: str = SOURCE):
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - a test cell
    return namespace["f"]


def _load_elsewhere(payload: bytes, script: str) -> str:
    """Unpickle ``payload`` in a fresh Python that never saw the cell; what ``script`` prints."""
    code = textwrap.dedent("""
        import pickle, sys, linecache
        from remote_magics.wire import serialize, sources
        value = serialize.loads([sys.stdin.buffer.read()])
    """) + textwrap.dedent(script)
    done = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True,
                          timeout=60, check=True)
    return done.stdout.decode()


def test_a_cells_function_arrives_with_its_file_name_lines_and_label():
    saved = list(sources._own)
    sources.label_cells(_Compiler({CELL: 3}))
    try:
        f = _cell_function()
        payload = b"".join(bytes(part) for part in serialize.dumps(f))
    finally:
        sources._own[:] = saved
    out = _load_elsewhere(payload, """
        import traceback
        code = value.__code__
        print(code.co_filename)
        print(linecache.getline(code.co_filename, 3).strip())
        print(sources.label(code.co_filename))
        try:
            value(1)
        except ZeroDivisionError as err:
            print(traceback.format_exception(err)[-2].splitlines()[1].strip())  # its line
    """)
    assert out.splitlines() == [CELL, "return 1 / (y - y)", "('Cell', 'In[3]')",
                                "return 1 / (y - y)"]


def test_a_hooked_shell_compiler_labels_arrived_cells_and_keeps_its_own_first():
    class Shell:
        def __init__(self) -> None:
            self.compile = _Compiler({"own.py": 7})

    shell, saved, arrived = Shell(), list(sources._own), dict(sources._arrived)
    try:
        sources.label_cells(shell.compile)
        hooked = shell.compile.format_code_name
        sources.label_cells(shell.compile)  # twice: one hook
        assert shell.compile.format_code_name is hooked
        sources.code_at(_reduce(), "arrived.py", ["x = 1\n"], ("Cell", "In[2]"))
        sources.code_at(_reduce(), "own.py", ["other\n"], ("Cell", "In[99]"))
        assert shell.compile.format_code_name("arrived.py") == ("Cell", "In[2]")
        assert shell.compile.format_code_name("own.py") == ("Cell", "In[7]")  # not the peer's
        assert shell.compile.format_code_name("unknown.py") is None
    finally:
        sources._own[:] = saved
        sources._arrived.clear()
        sources._arrived.update(arrived)
        linecache.cache.pop("arrived.py", None)


def _reduce() -> tuple:
    """cloudpickle's arguments for a small code object."""
    import cloudpickle

    code = compile("y = 2\n", "<reduced>", "exec")
    return cloudpickle.CloudPickler.dispatch_table[type(code)](code)[1]


@pytest.mark.parametrize("lines, named", [
    ("not a list", ["Cell", "In[1]"]),
    ([b"bytes\n"], ["Cell", "In[1]"]),
    ([1, 2], ("Cell",)),
    (None, ("Cell", 3)),
])
def test_lines_and_labels_of_the_wrong_shape_are_ignored_and_the_code_still_loads(lines, named):
    code = sources.code_at(_reduce(), "odd.py", lines, named)
    try:
        assert code.co_filename == "odd.py"
        assert "odd.py" not in linecache.cache and sources.label("odd.py") is None
    finally:
        linecache.cache.pop("odd.py", None)
        sources._arrived.pop("odd.py", None)


def test_a_real_files_lines_are_its_own_and_are_not_sent(tmp_path):
    path = tmp_path / "module_file.py"
    path.write_text(SOURCE)
    namespace: dict = {}
    exec(compile(SOURCE, str(path), "exec"), namespace)  # noqa: S102 - a file's code
    linecache.checkcache(str(path))
    linecache.getlines(str(path))  # cached with its mtime: a real file's entry
    assert sources.in_memory_lines(str(path)) is None
    code = sources.code_at(_reduce(), str(path), ["not the file\n"], None)
    assert code.co_filename == str(path)
    assert linecache.getline(str(path), 1) == "def f(x):\n"  # the file's, not the peer's


def test_code_by_value_is_still_refused_where_bytecode_may_not_go():
    f = _cell_function()
    with pytest.raises(serialize.BytecodeByValue):
        serialize.dumps(f, bytecode=False)
    frames = serialize.dumps(f)
    with pytest.raises(serialize.BytecodeByValue):
        serialize.loads(frames, bytecode=False)
