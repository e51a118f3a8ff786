"""``magics.python_of``: a %%remote body becomes the same Python as IPython's own transform makes."""
from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_magics.magics import python_of

CELLS = [
    "x = 1\ny = x + 1",
    "a = b % 2\nprint(a)",
    "if a != b:\n    c = 1",
    "d = {'k': 1}\ne = d['k']",
    "%time x = 1\ny = 2",
    "x = 1\n%time y = 2",
    "files = !ls\nn = len(files)",
    "out = %pwd\nn = len(out)",
    "x = 1\nlen?",
    "x = 1\n?len",
    "!echo hi\nx = 1",
    ">>> x = 1\n>>> y = x",
    "In [1]: x = 1\n   ...: y = x",
    "    x = 1\n    y = 2",
    "\n\nx = 1\ny = 2",
    "x = [1\n, 2]\ny = x",
    "x = 1",
    "pwd",
    "s = '%s' % 3\nt = s",
    "def f(a):\n    return a % 3\nz = f(4)",
    "pass",
    "import os",
    "del x",
    "for i in range(3): print(i)",
    "with open('f') as f: pass\n",
]


def _same_python(shell, cell: str) -> None:
    try:
        ours, ipython = python_of(shell, cell), shell.transform_cell(cell)
        expected = ast.dump(ast.parse(ipython))
    except SyntaxError:  # IPython's tokenizer, or the parser after it, refuses the cell: so do we
        with pytest.raises(SyntaxError):
            ast.parse(python_of(shell, cell))
        return
    assert ast.dump(ast.parse(ours)) == expected, (cell, ours, ipython)


@pytest.mark.parametrize("cell", CELLS)
def test_body_becomes_the_python_ipython_would_run(shell, cell):
    _same_python(shell, cell)


def test_plain_python_body_skips_ipythons_tokenizer(shell, monkeypatch):
    calls = []
    monkeypatch.setattr(shell, "transform_cell", lambda cell: calls.append(cell) or cell)
    python_of(shell, "x = [v * 2 for v in range(10) if v % 2]\ny = sum(x)")
    assert calls == []
    python_of(shell, "n = len([a, b])")
    assert calls == []
    python_of(shell, "x = 1\n%time y = 2")
    assert len(calls) == 1


def test_a_registered_transformer_is_always_applied(shell):
    def shout(lines):
        return [line.replace("quiet", "loud") for line in lines]

    shell.input_transformers_post.append(shout)
    try:
        assert "loud" in python_of(shell, "quiet = 1\ny = quiet")
    finally:
        shell.input_transformers_post.remove(shout)


LINES = st.sampled_from([
    "x = 1", "y = x % 2", "z = x != y", "%time w = 1", "v = !echo", "u = %pwd", "len?",
    "  t = 1", ">>> s = 1", "...", "r = [1,", "  2]", "/print 1", ",print a", ";print a",
    "q = 'a?b'", "p = 3 / 2", "# comment % !", "def f():", "    return 1", "",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, min_size=1, max_size=6))
def test_any_body_becomes_the_python_ipython_would_run(shell, lines):
    _same_python(shell, "\n".join(lines))


def test_one_line_body_keeps_automagic(shell):
    assert "pwd" in python_of(shell, "pwd") and "get_ipython" in python_of(shell, "pwd")


def test_a_keyword_line_is_python_as_it_is_and_automagic_still_applies_to_others(shell,
                                                                                 monkeypatch):
    calls = []
    real = shell.prefilter_manager.prefilter_lines
    monkeypatch.setattr(shell.prefilter_manager, "prefilter_lines",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    assert python_of(shell, "pass") == "pass\n" and python_of(shell, "import os\n") == "import os\n"
    assert calls == []  # a keyword is never a magic's name, nor a callable to autocall
    assert "get_ipython" in python_of(shell, "pwd") and len(calls) == 1


def test_arguments_parsed_before_come_back_as_a_fresh_copy(shell):
    from remote_magics import magics

    remote = shell.magics_manager.registry["RemoteMagics"].remote
    first = magics.parse_arguments(remote, "--scatter a --download=all")
    assert first.scatter == ["a"] and first.download == "all"
    first.scatter.append("b")
    first.download = "none"
    again = magics.parse_arguments(remote, "--scatter a --download=all")
    assert again.scatter == ["a"] and again.download == "all"
    assert magics.parse_arguments(remote, "").scatter == []
    with pytest.raises(Exception, match="cannot read the arguments"):
        magics.parse_arguments(remote, "--target 'unclosed")
