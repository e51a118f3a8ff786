"""A cell behaves the same plainly, as a ``%%remote`` cell (each download policy) and in the
remote kernel: issue 13's reproductions, each run every way by the ``parity`` fixture
(tests/parity.py)."""
from __future__ import annotations

from tests.parity import parity, parity_kernel, run_shell  # noqa: F401 - the harness's fixtures


# -- cause 1: in-place changes come back ----------------------------------------------------------

def test_random_generator_state_advances_between_cells(parity):
    traces = parity(["import numpy as np\nrng = np.random.default_rng(1)",
                     "a = rng.integers(100, size=3)",
                     "b = rng.integers(100, size=3); (a == b).all()"])
    assert "False" in traces["plain"].cells[2].result


def test_array_element_set_in_place(parity):
    parity(["import numpy as np\nx2 = np.arange(6).reshape(2, 3)", "x2[0, 0] = 12", "x2"])


def test_new_dataframe_column_and_series_item(parity):
    parity(["import pandas as pd\ndata = pd.Series([0.25, 0.5], index=['a', 'b'])\n"
            "df = pd.DataFrame({1: [1.0, 2.0], 2: [3, 4]})",
            "data['e'] = 1.25", "df[3] = float('nan')", "data", "df"])


def test_an_attribute_set_by_hand_on_a_pandas_object_travels(parity):
    """Found on PythonDataScienceHandbook 03.11 (``data.columns = [...]`` on a Series): pandas
    pickles only its own fields, so the attribute was lost on the way back."""
    traces = parity(["import warnings\nwarnings.simplefilter('ignore')\nimport pandas as pd\n"
                     "df = pd.DataFrame({'a': [1, 2]})\ns = pd.Series([1.0, 2.0])",
                     "df.name = 'sales'\ns.columns = ['x']",
                     "print(getattr(df, 'name', 'NO ATTRIBUTE'), s.columns)",
                     "made = pd.DataFrame({'b': [3]})\nmade.note = 'kept'",
                     "print(made.note, made.b.sum())"])
    assert traces["plain"].cells[2].stdout == "sales ['x']\n"


def test_a_pandas_object_with_an_attribute_that_refuses_pickling_still_crosses(parity):
    """statsmodels' formula results hold frames on which patsy set ``design_info``, an object
    that refuses pickling (hunt 17 C2, ThinkBayes2 chap16): pandas' own pickle leaves such an
    attribute out, so plain pickling works, but the attributes we add made the whole value
    fail to cross, both ways (refused, or kept remote as a proxy)."""
    traces = parity(["import pandas as pd\nclass Spec:\n    def __getstate__(self):\n"
                     "        raise NotImplementedError('Sorry, pickling not yet supported')\n"
                     "df = pd.DataFrame({'a': [1, 2]})\ndf.design_info = Spec()\ndf.note = 'kept'",
                     "total = int(df.a.sum())\nprint(total, df.note, type(df).__name__)"])
    assert traces["plain"].cells[1].stdout == "3 kept DataFrame\n"


def test_loc_assignment_with_a_mask(parity):
    parity(["import pandas as pd\nmerged = pd.DataFrame({'state': [None, 'CA', None], "
            "'abbrev': ['PR', 'CA', 'USA']})",
            "mask = merged['abbrev'] == 'PR'\nmerged.loc[mask, 'state'] = 'Puerto Rico'",
            "merged"])


def test_index_names_set_in_place(parity):
    parity(["import pandas as pd\npop = pd.Series([1, 2], index=pd.MultiIndex.from_tuples("
            "[('CA', 2000), ('NY', 2010)]))",
            "pop.index.names = ['state', 'year']", "pop"])


def test_list_append_and_dict_item_reach_every_alias(parity):
    parity(["lst = [1, 2, 3]\nsame = lst\nd = {}\nk, v = 'key', 'value'",
            "lst.append(4)", "d[k] = v", "print(same, d)"], shared=[("lst", "same")])


def test_numpy_views_share_memory_with_their_array_both_ways(parity):
    """Found on PythonDataScienceHandbook 02.02: a subarray is a view, and writing through it
    changes the array, whichever side made the view and whichever side writes."""
    parity(["import numpy as np\nx2 = np.arange(9).reshape(3, 3)",
            "x2_sub = x2[:2, :2]", "x2_sub[0, 0] = 99\nprint(x2)", "x2_sub[1, 1] += 5\nx2",
            "col = x2[:, 1]\nrev = x2[::-1, ::-1]\ncol[0] = -1\nprint(rev[-1, -2])",
            "y = np.arange(12.0)\nv = y[2:8:2]\nv *= 10\ny",
            "flat = x2.ravel()\nflat[-1] = 7\nx2[2, 2]"])


def test_a_read_only_view_of_a_frame_still_follows_it_after_a_remote_write(parity):
    """Hunt 16 C2b: ``np.asarray(df['a'])`` is a read-only view of the frame's block (pandas'
    copy-on-write); a remote cell wrote the frame, and the view came back bound anew: right
    values, but a later plain write to the frame no longer showed in it."""
    parity(["# plain\nimport numpy as np, pandas as pd\ndf = pd.DataFrame({'a': [1.0, 2.0, 3.0]})"
            "\narr = np.asarray(df['a'])",
            "df.loc[0, 'a'] = 99.0\nprint(arr[0])",
            "# plain\nprint(np.shares_memory(arr, df['a'].to_numpy()), arr[0])\n"
            "df.loc[0, 'a'] = 7.0\nprint(arr[0])"])


def test_a_read_only_array_stays_read_only_both_ways(parity):
    """pandas 3 hands out read-only arrays, and a notebook may protect its data so (hunt 15
    C1): a small array copied so that it owns its memory came writeable, so a write that
    plainly raises went through, silently; a big one stays over its buffer; and one NumPy's
    pickle gathers into new memory (``np.broadcast_to``) came writeable too."""
    traces = parity(["import numpy as np\nro = np.arange(4)\nro.flags.writeable = False\n"
                     "big = np.zeros(300_000)\nbig.setflags(write=False)\nrw = np.ones(3)\n"
                     "spread = np.broadcast_to(np.arange(3), (2, 3))",
                     "for a in (ro, big, spread):\n    try:\n        a[0] = 9\n"
                     "    except ValueError as e:\n        print('refused:', e)",
                     "rw[0] = 5\nprint(ro.flags.writeable, big.flags.writeable, "
                     "rw.flags.writeable, ro, big[:2], rw)"])
    assert traces["plain"].cells[1].stdout.count("refused: assignment destination") == 3


def test_two_views_of_one_memory_come_back_as_views_of_each_other(parity):
    """Found on Python for Data Analysis ch. 04 (`arr = np.arange(15).reshape((3, 5)); arr.T`):
    two views of one unnamed array each went as a view of the other, a recursion without end,
    so both stayed remote as proxies ("excessively deep recursion")."""
    parity(["import numpy as np", "arr = np.arange(15).reshape((3, 5))\narr.T",
            "b = arr.T\nc = arr[:]\nd = arr.ravel()", "b[0, 0] = 99\nprint(arr[0, 0], c[0, 0], d[0])",
            "print(np.shares_memory(arr, b), np.shares_memory(c, d))"])


def test_a_magics_usage_error_is_one_line_as_plainly(parity):
    # pydata-book ch. 06 (`%store` misused): a remote UsageError showed a whole chained
    # traceback, as an error output, where IPython prints one line (not `kernel`: the remote
    # kernel's reply says error, as ipykernel's does, where this harness's plain shell does not)
    parity(["x = 1", "%timeit -badflag 1", "print('after')", "%time -q 1"],
           ways=("plain", "all", "small", "none"))


def test_an_unfinished_cell_is_incomplete_input_as_plainly(parity):
    # wtfpython (hunt 30 H30-5): the notebook parsed a remote cell without IPython's compiler
    # flags, so a cell that ends inside a bracket or a block said `'(' was never closed` or
    # raised an IndentationError where IPython says `SyntaxError: incomplete input`
    traces = parity(["print(max(1,\n          2)", "def pending(x):", "values = [1, 2,",
                     "print('after')"])
    assert [cell.error for cell in traces["plain"].cells[:3]] == ["SyntaxError"] * 3
    assert "incomplete input" in traces["plain"].cells[1].traceback


def test_a_bad_unindent_fails_as_ipythons_tokenizer_fails_it(parity):
    # wtfpython (hunt 34 H34-5): IPython's transform refuses such a cell before compiling it,
    # `(<tokenize>, line 3)`; a remote cell's error named the compiled file instead
    traces = parity(["def f():\n        x = 1\n    return x", "print('after')"])
    assert traces["plain"].cells[0].error == "IndentationError"
    assert "<tokenize>" in traces["plain"].cells[0].traceback


def test_xdel_in_a_remote_cell_deletes_the_notebooks_name(parity):
    # pydata-book appendix A: `%xdel a` was a NameError (the cell was not sent `a`), and `%xdel`
    # of a name bound in the same cell an AttributeError (no IPython last result there)
    parity(["a = [1, 2]\nb = 3", "%xdel a", "print('a' in dir(), b)",
            "big = [0] * 10\n%xdel big", "print('big' in dir())"])


def test_a_view_of_an_array_that_stays_remote_stays_remote_too(parity):
    # pydata-book appendix A under `small`: `sub = big[:5]` with `big` too big to come back
    # came back as a copy, so `sub[:] = 1` never reached `big`
    parity(["import numpy as np\nbig = np.zeros(200_000)", "sub = big[:5]", "sub[:] = 1",
            "print(big[:5].sum(), type(big).__name__, type(sub).__name__)",
            "part = big[10:20]\npart += 2\nhead = big[:3].copy()",
            "print(big[10:20].sum(), head)"])


def test_a_tuple_or_frozenset_the_cell_read_comes_back_as_the_notebooks_own(parity):
    # pytudes' Golomb-Puzzle: `empty = (0, 0)` as a sentinel tested with `is`; a grid a remote
    # cell built held copies, so `cell is empty` was False; a tuple whose list member changed
    # is still the notebook's, holding its own list
    parity(["empty = (0, 0)\nWALLS = frozenset({'a', 'b'})\npair = ([1], 2)\n"
            "def Square(n):\n    return [[empty] * n for _ in range(n)]",
            "g = Square(2)", "g[0][0] is empty", "h = [empty, WALLS]\nk = pair\npair[0].append(5)",
            "print(h[0] is empty, h[1] is WALLS, k is pair, pair)", "t2 = (pair[0], 3)"],
           shared=[("g[0][0]", "empty"), ("h[1]", "WALLS"), ("t2[0]", "pair[0]"), ("k", "pair")])


def test_small_immutable_values_a_none_cell_made_are_dict_keys_as_plainly(parity):
    # hunt 17 C10: under none a tuple, frozenset, date, Timestamp, Fraction or Decimal a remote
    # cell made was a proxy hashed as the proxy: `table[key]` raised KeyError, `key in table`
    # was False; they come back as numbers and strings do. A sentinel among them stays the
    # engine's own object there (`is` holds in later remote cells), and a tuple holding a list
    # can change: it stays remote under none
    parity(["import datetime, fractions, decimal\nimport pandas as pd\nkey = (1, 'a')\n"
            "fkey = frozenset({'x'})\nd = datetime.date(2021, 1, 2)\n"
            "ts = pd.Timestamp('2020-03-04 05:06')\nfr = fractions.Fraction(3, 4)\n"
            "dec = decimal.Decimal('2.5')\nnested = ((1, 2.5), (b'x', None, True))\n"
            "empty = (0, 0)\ngrid = [[empty] * 2 for _ in range(2)]",
            "# plain\ntable = {(1, 'a'): 1, frozenset({'x'}): 2, datetime.date(2021, 1, 2): 3, "
            "pd.Timestamp('2020-03-04 05:06'): 4, fractions.Fraction(3, 4): 5, "
            "decimal.Decimal('2.5'): 6, ((1, 2.5), (b'x', None, True)): 7}\n"
            "print([table.get(k, 'MISS') for k in (key, fkey, d, ts, fr, dec, nested)], "
            "key in table, table[fkey], f'{d:%d/%m} {ts:%Y}', round(fr, 1), divmod(dec, 1))",
            "grid[1][0] is empty", "pair = ([1], 2)\nmixed = (pair, empty)", "pair[0].append(3)",
            "print(mixed[0][0], mixed[1] is empty)",
            # hunt 18 C5: a column's dtype, which patsy and numpy take only as a dtype
            "import numpy as np\nkind = pd.Series([1, 2]).dtype",
            "# plain\nprint(np.zeros(2, dtype=kind), {kind: 'ints'}[np.dtype('int64')])",
            # hunt 19 H19-3: a named tuple's _asdict(), _replace() and _fields
            "from collections import namedtuple\nP = namedtuple('P', 'x y')\np = P(1, 'b')",
            "# plain\nprint(p._asdict(), p._replace(x=5), p._fields, "
            "{p: 1}[P(1, 'b')])"])


def test_a_remote_functions_name_doc_and_signature_as_plainly(parity):
    """Hunt 19 H19-31: under none, a function a remote cell defined is a proxy: pandas'
    ``s.apply(f)`` took it for a list of functions (an iterable proxy) and failed,
    ``f.__name__`` raised, and ``inspect.signature(f)`` and ``functools.wraps(f)`` gave the
    proxy's own; an Enum class still iterates."""
    parity(["import enum, functools, inspect\nimport pandas as pd\n"
            "def f(x, scale=2):\n    'Scale x.'\n    return x * scale\n"
            "def g(a: int, *rest, b: 'unit' = None, **kw) -> float:\n    return 1.0\n"
            "class Dog:\n    'A dog.'\n"
            "class Colour(enum.Enum):\n    RED = 1\n    BLUE = 2",
            "# plain\nprint(pd.Series(range(3)).apply(f).tolist(), "
            "pd.Series([1, 2]).map(f).tolist())\n"
            "print(f.__name__, f.__qualname__, f.__doc__, f.__module__, inspect.signature(f))\n"
            "print(inspect.signature(g), g.__doc__, Dog.__name__, Dog.__doc__)\n"
            "h = functools.wraps(f)(lambda *a: f(*a))\n"
            "print(h.__name__, h.__doc__, inspect.signature(h), h(4))\n"
            "print([c.name for c in Colour])\n"
            "try:\n    iter(f)\nexcept TypeError as err:\n    print('not iterable' in str(err))",
            # hunt 33 H33-9: help(f) showed no docstring (pydoc reads the proxy class's);
            # its title line names the proxy's class, the rest is as plainly
            "# plain\nimport pydoc\n"
            "print(pydoc.render_doc(f, renderer=pydoc.plaintext).splitlines()[2:])"])


def test_the_shell_a_remote_cell_binds_is_the_notebooks_own(parity):
    """Hunt 19 H19-14 (silent): ``ip = get_ipython()`` in a remote cell bound a proxy of the
    engine's shell ("cannot be pickled"), so a plain ``ip.run_cell('z = 5')`` defined ``z``
    in the engine, not in the notebook. The shell goes as the receiver's own, as a module
    goes by its name."""
    parity(["ip = get_ipython()\nshells = [ip]",
            "# plain\nip.run_cell('z = 5');\nprint('z' in globals(), ip is get_ipython(), "
            "shells[0] is ip)\ndel ip, shells"])  # (the harness compares no shells)


def test_a_dataclass_keeps_its_fields_both_ways(parity):
    """Hunt 20 H20-2 (silent): a dataclass that crossed had no fields: ``fields(P)`` was
    ``()``, ``asdict(pt)`` ``{}``, ``astuple(pt)`` ``()``. A field's kind is a sentinel
    ``fields()`` tests with ``is``, which went as a copy; it goes as the receiver's now. (Under
    none a class a remote cell defined is a proxy, which ``fields()`` refuses: hunt 19 H19-25.)"""
    parity(["import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\n"
            "    y: list = dataclasses.field(default_factory=list)\npt = P(1, [2])",
            "# plain\nprint(len(dataclasses.fields(P)), dataclasses.asdict(pt), "
            "dataclasses.astuple(pt), dataclasses.replace(pt, x=3))",
            "# plain\n@dataclasses.dataclass\nclass Q:\n    a: int = 0\nq = Q(5)",
            "print(dataclasses.asdict(q), len(dataclasses.fields(Q)), dataclasses.is_dataclass(q))",
            "# plain\nprint(dataclasses.asdict(q), [f.name for f in dataclasses.fields(Q)])"],
           ways=("plain", "all", "small", "kernel"))


def test_an_attribute_or_item_a_loop_or_with_stores_into_is_a_change(parity):
    """Hunt 20 H20-4 (silent): ``for model.lr in rates: ...``, ``for box[0] in ...``, ``with
    ... as cfg['ctx']`` and a comprehension's ``for cfg['k'] in ...`` store into a notebook
    object, which the analysis did not see: the notebook's objects kept their old values."""
    parity(["import contextlib\nclass Model:\n    lr = None\nmodel = Model()\nbox = [0]\n"
            "cfg = {}",
            "for model.lr in [0.5, 0.05]:\n    pass\nfor box[0] in range(3):\n    pass\n"
            "with contextlib.nullcontext(7) as cfg['ctx']:\n    pass\n[None for cfg['k'] in 'ab']",
            "print(model.lr, box, cfg)"])


def test_an_underscore_the_cell_binds_itself_is_bound_as_plainly(parity):
    """Hunt 20 H20-9: ``_ = 'mine'``, ``_ = plt.hist(x)`` (to hide the result), ``for _ in
    range(3)``: a remote cell's own ``_`` was dropped as IPython's history name, so ``_`` was
    still the last result, and ``_.append(11)`` in the next remote cell failed on it. Bound, it
    also stops IPython's results overwriting it, as plainly."""
    parity(["_ = 'mine'", "# plain\nprint(repr(_))", "for _ in range(3):\n    pass",
            "# plain\nprint(repr(_))", "7", "print(repr(_))"])
    parity(["_ = [10]", "_.append(11)", "# plain\nprint(repr(_))"],
           ways=("plain", "all", "small", "kernel"))


def test_a_result_is_formatted_before_the_figures_are_drawn_and_its_prints_come_first(parity):
    """Hunt 20 H20-8: the last line of many plotting cells, ``plt.ylabel('y')``, showed
    ``Text(23.9, 0.5, 'y')`` (the label as the drawing placed it), plainly ``Text(0, 0.5,
    'y')``: the engine drew the figures, then formatted the result. H20-7: what a result's
    repr printed showed after ``Out``, plainly before it."""
    parity(["# plain\nimport matplotlib.pyplot as plt\n"
            "class Noisy:\n    def __repr__(self):\n        print('repr called')\n"
            "        return 'Noisy()'",
            "plt.plot([1, 2, 3], [4, 5, 6])\nplt.ylabel('y')",
            "print('before')\nNoisy()"])


def test_a_sympy_expression_of_an_undefined_function_comes_back(parity):
    """Hunt 20 H20-16: ``f = sp.Function('f')`` over a notebook symbol made expressions that
    "cannot be pickled (AttributeError: 'NoneType' object has no attribute 'startswith')": the
    class of ``f(x)`` has ``__module__`` None, which the in-place update's kind tests did not
    expect; they stayed proxies, and ``sp.latex(expr)`` of one was the proxy's text."""
    parity(["# plain\nimport sympy as sp\nx = sp.symbols('x')",
            "f = sp.Function('f')\neq = sp.Eq(f(x).diff(x), f(x))\nexpr = f(x) ** 2 + sp.sin(x)",
            "# plain\nprint(type(eq).__name__, sp.dsolve(eq), sp.latex(expr), "
            "isinstance(expr, sp.Expr), expr.free_symbols)"],
           ways=("plain", "all", "small", "kernel"))


def test_what_a_definition_keeps_of_a_notebook_object_may_change_it(parity):
    """Hunt 20 H20-15 (silent): a notebook object a remote cell's definition kept (a default,
    ``def f(x, cache=memo)``; a lambda's; a class attribute, ``class C: items = shared``; a
    class keyword an ``__init_subclass__`` appends to) and then changed through it was not
    watched: the change was lost. A later call, plain, changes the notebook's object."""
    parity(["memo = {}\nlog = []\nshared = []\nreg = []\nclass Tracked:\n"
            "    def __init_subclass__(cls, registry=None, **kw):\n"
            "        super().__init_subclass__(**kw)\n"
            "        if registry is not None:\n            registry.append(cls.__name__)",
            "def f(x, cache=memo):\n    cache[x] = x * x\n    return cache[x]\nf(3)\n"
            "g = lambda x, acc=log: acc.append(x)\ng(1)\nclass C:\n    items = shared\n"
            "C().items.append('via class attr')\nclass Child(Tracked, registry=reg):\n    pass",
            "print(memo, log, shared, reg)", "# plain\nf(4)\ng(2)\nprint(memo, log)"],
           shared=[("f.__defaults__[0]", "memo")])


def test_an_array_a_remote_cell_makes_read_only_is_read_only_here(parity):
    """Hunt 20 H20-1 (silent): ``b.flags.writeable = False`` in a remote cell changed no byte,
    so the watch saw no change, and the flag did not cross: the notebook's ``b`` stayed
    writable and a later plain ``b[0] = 5`` wrote, where plainly it raises."""
    parity(["import numpy as np\nb = np.arange(4.)\nkeep = {'b': b}", "b.flags.writeable = False",
            "print(b.flags.writeable, keep['b'] is b)\ntry:\n    b[0] = 5\n"
            "except ValueError as err:\n    print('ValueError:', err)"],
           shared=[("keep['b']", "b")])


def test_a_cell_reads_the_notebooks_execution_count(parity):
    """Hunt 20 H20-18: ``get_ipython().execution_count`` in a remote cell was the engine's (1
    in every cell), so ``f'fig_{get_ipython().execution_count}.png'`` named every file alike
    and ``execution_count - len(In)`` was not what it is plainly."""
    parity(["n1 = get_ipython().execution_count - len(In)", "x = 1",
            "n2 = get_ipython().execution_count - len(In)\nprint(n1, n2)"])


def test_a_new_object_a_cell_puts_into_a_notebook_object_is_one_object(parity):
    """Hunt 20 H20-3 (silent, none): ``layer = Layer(); model.add(layer)`` gave the notebook
    ``model`` back (changed in place) holding a copy of the layer, and ``layer`` a proxy of the
    engine's: ``layer.frozen = True`` never reached the model. ``res`` put into two notebook
    containers likewise. The name is the object inside what went back."""
    parity(["# plain\nclass Layer:\n    def __init__(self, name):\n        self.name = name\n"
            "        self.frozen = False\nclass Model:\n    def __init__(self):\n"
            "        self.layers = []\n    def add(self, layer):\n        self.layers.append(layer)\n"
            "model = Model()\nresults = []\nby_name = {}",
            "layer = Layer('dense1')\nmodel.add(layer)\nres = {'name': 'run1', 'acc': 0.5}\n"
            "results.append(res)\nby_name['run1'] = res",
            "# plain\nlayer.frozen = True\nres['acc'] = 0.9\n"
            "print(model.layers[0].frozen, model.layers[0] is layer, results[0]['acc'], "
            "by_name['run1'] is res)",
            "print([l.frozen for l in model.layers])"],
           shared=[("model.layers[0]", "layer"), ("results[0]", "res")])


def test_a_class_registered_by_its_base_is_registered_once(parity):
    """Hunt 20 H20-21 (silent): a base whose ``__init_subclass__`` registers its subclasses
    (the plugin idiom) got each class again as it crossed: rebuilding the class ran the hook
    once more, on the registry that crossed with it. Both ways."""
    parity(["REG = []\nclass Base:\n    def __init_subclass__(cls, **kw):\n"
            "        super().__init_subclass__(**kw)\n        REG.append(cls.__name__)\n"
            "class A(Base):\n    pass\nclass B(A):\n    pass",
            "# plain\nprint(REG)",
            "# plain\nMINE = []\nclass Root:\n    def __init_subclass__(cls, **kw):\n"
            "        super().__init_subclass__(**kw)\n        MINE.append(cls.__name__)\n"
            "class C(Root):\n    pass",
            "print(MINE, C.__name__)\nclass D(C):\n    pass",
            "# plain\nprint(MINE, REG)"],
           ways=("plain", "all", "small", "kernel"))


def test_an_argparse_parser_that_crosses_parses_as_plainly(parity):
    """Hunt 20 H20-10 (silent): argparse tests ``argparse.SUPPRESS`` with ``is``; a parser that
    crossed held copies of it, so ``parse_args`` added ``help='==SUPPRESS=='`` (and the
    ``default=argparse.SUPPRESS`` arguments) to every Namespace, both ways. (Its ``prog``
    differs here, the test process not being a kernel: see test_differential.)"""
    parity(["# plain\nimport argparse\nparser = argparse.ArgumentParser(description='demo')\n"
            "parser.add_argument('--lr', type=float, default=0.1)\n"
            "parser.add_argument('--hidden', default=argparse.SUPPRESS)",
            "args = parser.parse_args(['--lr', '0.5'])\nprint(sorted(vars(args).items()))",
            "import argparse\np2 = argparse.ArgumentParser()\n"
            "p2.add_argument('--epochs', type=int, default=3)",
            "# plain\nprint(sorted(vars(p2.parse_args([])).items()))\ndel p2"],
           ways=("plain", "all", "small"))


def test_the_text_formatters_settings_cross_both_ways(parity):
    """Hunt 20 H20-12: the text formatter's ``max_seq_length`` (and ``max_width``, ``verbose``,
    ``newline``) set on one side did not hold on the other, where ``float_precision`` and
    ``%pprint`` did."""
    parity(["# plain\nshown = get_ipython().display_formatter.formatters['text/plain']\n"
            "shown.max_seq_length = 5",
            "list(range(10))",
            "get_ipython().display_formatter.formatters['text/plain'].max_seq_length = 3",
            "# plain\nprint(shown.max_seq_length)\nlist(range(10))",
            "# plain\nshown.max_seq_length = 1000\ndel shown"],
           ways=("plain", "all", "small", "none"))


def test_functions_of_two_cells_called_plainly_share_the_globals_one_rebinds(parity):
    """Hunt 20 H20-26 (silent, none; Norvig's BASIC interpreter could parse no line): a plain
    call of ``parse_line`` (a none cell's), which does ``global TOKENS; TOKENS = ...`` and calls
    ``pop`` (another cell's), ran each function in its own cell's namespace: ``pop`` read its
    own, old ``TOKENS``. The functions of one call share one namespace now, as plainly."""
    parity(["TOKENS = []\ndef pop():\n    return TOKENS.pop(0) if TOKENS else None",
            "def parse_line(line):\n    global TOKENS\n    TOKENS = line.split()\n"
            "    first = pop()\n    return first, list(TOKENS)",
            "print(parse_line('a b c'))",
            "# plain\nprint(parse_line('x y'), TOKENS)",
            "print(pop(), TOKENS)"])


def test_a_name_bound_to_another_names_object_is_that_object(parity):
    """``y = x`` leaves ``y is x``, so a later change through one shows in the other, and a
    change made through the new name in the same cell reaches the old one."""
    traces = parity(["import numpy as np\nx = [1, 2]\na = np.arange(4)\n"
                     "class M:\n    pass\nm1 = M()\nmodels = [m1, M()]",
                     "y = x\nb = a\nbest = models", "y.append(3)\nb[0] = 9",
                     "print(x, a, y is x, b is a, best is models, best[0] is m1)",
                     "z = x\nz.append(4)\nprint(x)"],
                    shared=[("x", "y"), ("a", "b"), ("models", "best")])
    assert traces["plain"].cells[3].stdout == "[1, 2, 3] [9 1 2 3] True True True True\n"


def test_in_place_change_of_a_value_too_big_to_come_back(parity):
    """Under ``small`` the array stays remote (a proxy): the change is made there, and seen."""
    parity(["import numpy as np\nbig = np.zeros(300_000)", "big[0] = 7\nbig[1:3] += 1",
            "big[:4]", "big.sum()"])


def test_fitted_model_keeps_what_its_method_set(parity):
    parity(["class Model:\n    def __init__(self):\n        self.coef_ = None\n"
            "    def fit(self, X, y):\n        self.coef_ = sum(y) / len(X)\n        return self\n"
            "    def __repr__(self):\n        return f'Model(coef_={self.coef_})'\n"
            "model = Model()",
            "model.fit([1, 2], [3, 5])", "model.coef_"])


# -- cause 4: names the AST cannot see (static analysis of strings and magic arguments) ----------

def test_query_and_pd_eval_see_the_names_their_strings_use(parity):
    parity(["import pandas as pd\ndf = pd.DataFrame({'a': [1, 5, 9]})\nlim = 4\n"
            "df1 = pd.DataFrame({'x': [1, 2]})\ndf2 = pd.DataFrame({'x': [10, 20]})",
            "df.query('a > @lim')", "pd.eval('df1 + df2')", "x = 3", "eval('x')"])


def test_time_and_timeit_see_the_cells_names_and_time_brings_its_names_back(parity):
    traces = parity(["import numpy as np\nx = np.arange(10)\ny = np.ones(4)",
                     "%timeit -n1 -r1 x.sum()",
                     "%time z = y.sum()", "z"])
    assert "4.0" in traces["plain"].cells[3].result


def test_time_cell_magic_brings_its_names_back(parity):
    traces = parity(["y = [1, 2, 3]", "%%time\nw = sum(y)\nv = w * 2", "w, v"])
    assert traces["plain"].cells[2].result == "text: (6, 12)"


def test_in_place_changes_made_by_code_in_strings_come_back(parity):
    """Found on PythonDataScienceHandbook 02.07 (``%timeit np.add.at(counts, i, 1)``)."""
    traces = parity(["xs, ys, zs, ws = [], [], [], []",
                     "%timeit -n1 -r1 xs.append(1)", "%time ys.append(1)",
                     "exec('zs.append(1)')", "eval(\"exec('ws.append(1)')\")",
                     "xs, ys, zs, ws"])
    assert traces["plain"].cells[5].result == "text: ([1], [1], [1], [1])"


def test_notebook_code_that_evals_a_name_sees_the_notebooks_names(parity):
    """Found on PythonDataScienceHandbook 03.06-03.08 (its ``display`` helper class): a method
    or function of the notebook that calls ``eval`` runs with the run's globals, so the run
    fetches the names it evaluates, in a result's ``__repr__`` too."""
    traces = parity(["class Show:\n    def __init__(self, name):\n        self.name = name\n"
                     "    def __repr__(self):\n        return repr(eval(self.name))\n"
                     "x = 5\nshow_x = Show('x')",
                     "Show('x')", "show_x", "def look(n):\n    return eval(n) * 2\ny = 4",
                     "look('y')", "f = lambda: globals()['y']\nf()"])
    assert [cell.result for cell in traces["plain"].cells[1:]] == [
        "text: 5", "text: 5", None, "text: 8", "text: 4"]


# -- cause 5: IPython's own features ---------------------------------------------------------------

def test_trailing_semicolon_shows_no_result(parity):
    traces = parity(["import matplotlib.pyplot as plt\nn = 5", "n;", "n",
                     "plt.plot([1, 2, 3]);"])
    plain = traces["plain"].cells
    assert plain[1].result is None and plain[2].result == "text: 5"
    assert plain[3].result is None and plain[3].displays == ("image",)


def test_figure_as_last_value_shows_as_an_image(parity):
    traces = parity(["import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
                     "ax.plot([1, 3, 2])\nplt.close(fig)", "fig"],
                    shared=[("fig.axes[0]", "ax")])
    assert traces["plain"].cells[1].result == "image"


def test_whos_in_the_remote_kernel_lists_the_notebooks_names(parity):
    """Issue 13 cause 5 is the remote kernel's. Inside a ``%%remote`` cell ``%whos`` lists the
    run's names (what the cell read and bound), as the README says: tests/test_lookup.py."""
    traces = parity(["whos_number = 12345\nwhos_text = 'hello'", "%whos"],
                    ways=("plain", "kernel"))
    assert "whos_number" in traces["plain"].cells[1].stdout


def test_timeit_leaves_no_stale_names(parity):
    parity(["%timeit -n1 -r1 q = 1", "print('q' in globals())"])


def test_a_result_too_big_to_come_back_shows_as_in_a_plain_cell(parity):
    """Under ``small`` the result stays remote (Out is its proxy), but the cell shows the same."""
    traces = parity(["import numpy as np\nimport pandas as pd\n"
                     "import matplotlib.pyplot as plt\n"
                     "frame = pd.DataFrame(np.arange(400000).reshape(-1, 4))",
                     "frame", "frame[0].plot()", "frame * 2"])
    assert traces["plain"].cells[2].displays == ("image",)
    assert traces["plain"].cells[2].result.startswith("text: <Axes")


def test_a_result_whose_repr_raises_shows_the_error_and_the_cell_goes_on(parity):
    """Found on PythonDataScienceHandbook 03.06: IPython's formatter shows the repr's error
    (an error output, not stderr text) and the cell itself does not fail."""
    traces = parity(["class Bad:\n    def __repr__(self):\n        raise ValueError('boom')",
                     "Bad()", "b = Bad()\nb", "print('after')"])
    plain = traces["plain"].cells
    assert plain[1].error == plain[2].error == "ValueError" and plain[1].stderr == ""
    assert plain[3].stdout == "after\n"


# -- cause 6: a failing cell keeps the names it bound before the error ----------------------------

def test_import_then_failing_import_keeps_the_first(parity):
    traces = parity(["import numpy as np\nimport not_installed_anywhere", "np.arange(3)"])
    assert traces["plain"].cells[0].error == "ModuleNotFoundError"


def test_computation_then_error_keeps_the_computed_names(parity):
    traces = parity(["total = sum(range(10 ** 6))\nsquares = [i * i for i in range(5)]\n"
                     "1 / 0", "total, squares"])
    assert traces["plain"].cells[0].error == "ZeroDivisionError"


# -- cause 7: classes of installed modules travel by reference ------------------------------------

def test_a_hard_mask_stays_hard(parity):
    """NumPy's pickle of a masked array forgets ``harden_mask()`` (hunt 15 C6): a write through
    a masked element then unmasked it, where plainly it stays masked."""
    traces = parity(["import numpy as np\nm = np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])\n"
                     "m.harden_mask()\nsoft = np.ma.masked_array([1.0, 2.0], mask=[1, 0])",
                     "m[1] = 20.0\nsoft[0] = 5.0\nprint(m, soft)",
                     "print(m.hardmask, soft.hardmask, m.mask.tolist())"])
    assert traces["plain"].cells[1].stdout == "[1.0 -- 3.0] [5.0 2.0]\n"


def test_an_array_taken_from_a_frame_stays_a_view_of_its_block(parity):
    """``np.asarray(df['a'])`` is a view of the frame's block (a read-only one under pandas'
    copy-on-write), so a later write to the frame shows through it (hunt 16 C2, ThinkDSP's
    ``Wave(df['Close'])``); made remotely, it came back as an array of its own. Under ``none``
    it stays remote, a view of the engine's frame (a proxy, by design)."""
    traces = parity(["import numpy as np, pandas as pd\n"
                     "df = pd.DataFrame({'a': [1.0, 2.0, 3.0], 'b': [4.0, 5.0, 6.0]})",
                     "arr = np.asarray(df['a'])\nrow = df.to_numpy()[1]",
                     "df.loc[0, 'a'] = 99.0\nprint(arr[0], arr.flags.writeable)"],
                    ways=("plain", "all", "small"))
    assert traces["plain"].cells[2].stdout.startswith("99.0 ")


def test_a_ufunc_made_of_a_notebook_function_crosses(parity):
    """``np.frompyfunc(add_elements, 2, 1)`` (Python for Data Analysis, appendix A; hunt 16
    C3): NumPy pickles a ufunc by its name, which this one lacks, so a cell reading it failed
    with SerializationError."""
    traces = parity(["import numpy as np\ndef add_elements(x, y):\n    return x + y\n"
                     "add_them = np.frompyfunc(add_elements, 2, 1)\n"
                     "maxed = np.frompyfunc(max, 2, 1, identity=0)",
                     "r1 = add_them(np.arange(4), np.arange(4))\nprint(r1, r1.dtype, add_them)",
                     "print(add_them.reduce(np.arange(5)), maxed.reduce([3, 9, 2]), maxed.identity)"])
    assert traces["plain"].cells[1].stdout.startswith("[0 2 4 6] object <ufunc 'add_elements")


def test_a_regex_match_and_a_memoryview_of_a_bytearray_cross(parity):
    """Hunt 16 C6: a match object (``m = re.search(...)``) cannot be pickled, so a cell reading
    it failed with SerializationError; a memoryview came as bytes, so writing through it failed
    and never reached its bytearray."""
    traces = parity(["import re\nm = re.search(r'(\\d+)-(\\d+)', 'range 10-20')\n"
                     "full = re.fullmatch('a|ab', 'ab')\nbuf = bytearray(b'hello')\n"
                     "mv = memoryview(buf)\nwords = memoryview(bytearray(8)).cast('I')",
                     "print(m.group(1), m.span(), m.pos, full.group())",
                     "mv[0] = ord('J')\nwords[1] = 7\nprint(bytes(mv[:2]), buf, words.tolist())",
                     "print(buf, mv.readonly, type(mv).__name__, words.format)"],
                    shared=[("mv.obj", "buf")], ways=("plain", "all", "small", "none"))
    assert traces["plain"].cells[2].stdout == "b'Je' bytearray(b'Jello') [0, 7]\n"


def test_views_of_an_array_the_cell_does_not_read_share_its_memory_and_keep_their_strides(
        parity):
    """Two views of one array the cell does not read went as two copies (hunt 16 C10, ThinkDSP's
    ``Wave(ys[::2])`` and ``Wave(ys[5:])``): a write through one was not seen through the other,
    and their write-backs overwrote each other in the notebook's array. A lone strided view came
    contiguous, so NumPy summed its dot product in another order (C8)."""
    traces = parity(["import numpy as np\nys = np.arange(10.0)\na = ys[::2]\nb = ys[5:]\n"
                     "M = np.arange(64.0).reshape(8, 8).T\nrow5 = M[5, :]",
                     "a *= 10\nprint(b, np.shares_memory(a, b))\nb += 100\n"
                     "print(row5.strides, row5.flags.c_contiguous)",
                     "print(ys)"], ways=("plain", "all", "small", "none"))
    assert traces["plain"].cells[1].stdout == "[ 5. 60.  7. 80.  9.] True\n(64,) False\n"
    assert traces["plain"].cells[2].stdout == \
        "[  0.   1.  20.   3.  40. 105. 160. 107. 180. 109.]\n"


def test_an_iterator_over_a_dict_stays_on_the_dict(parity):
    """Pickle makes an iterator over a dict one over a list of what is left (hunt 16 C5): a
    value set since was not seen, and the dict growing no longer stopped it."""
    traces = parity(["d = {'x': 1, 'y': 2, 'z': 3}\ndi = iter(d.items())\nki = iter(d)",
                     "print(next(di), next(ki))",
                     "d['y'] = 99\nprint(next(di), type(di).__name__, next(ki))",
                     "d['w'] = 0\ntry:\n    next(di)\nexcept RuntimeError as err:\n    print(err)",
                     "done = iter({}.values())\nprint(list(done), type(done).__name__)",
                     "st = {10, 20, 30}\nsti = iter(st)\nfirst = next(sti)",
                     "st.add(40)\ntry:\n    next(sti)\nexcept RuntimeError as err:\n    print(err)",
                     "from collections import OrderedDict\nod = OrderedDict(a=1, b=2, c=3)\n"
                     "ov = iter(od.values())\nrk = reversed(od)\nit = iter(od.items())\n"
                     "print(next(ov), next(rk), next(it))",
                     "od['b'] = 20\nprint(next(ov), next(rk), next(it), type(ov).__name__)"])
    assert traces["plain"].cells[2].stdout == "('y', 99) dict_itemiterator y\n"
    assert traces["plain"].cells[8].stdout == "20 b ('b', 20) odict_iterator\n"
    assert traces["plain"].cells[3].stdout == "dictionary changed size during iteration\n"


def test_annotations_at_cell_level_go_into_the_notebooks_annotations(parity):
    """A remote cell's ``x: int = 5`` went into the engine's own ``__annotations__`` (hunt 16
    C4): the notebook's had none of them, or had no ``__annotations__`` at all."""
    traces = parity(["xa: int = 5\nya: list",
                     "if True:\n    za: float = 1.0\nprint(__annotations__)",
                     "del xa\nwa: int\nprint(sorted(__annotations__))"])
    assert traces["plain"].cells[1].stdout == \
        "{'xa': <class 'int'>, 'ya': <class 'list'>, 'za': <class 'float'>}\n"


def test_recarray_made_remotely_works_locally(parity):
    parity(["import numpy as np\ndata = np.zeros(2, dtype={'names': ('name', 'age'), "
            "'formats': ('U10', 'i4')})\ndata['age'] = [25, 31]\nr = data.view(np.recarray)",
            "r['age']", "r.age", "type(r).__module__"])


def test_a_traceback_through_the_notebooks_functions_shows_their_cells_and_lines(parity):
    parity(["def f(x):\n    y = x + 1\n    return 1 / (y - y)",
            "def g(x):\n    return [f(v) for v in range(x)]",
            "g(3)",
            "h = lambda: g(2)\nh()",
            "class C:\n    def m(self):\n        raise KeyError('nope')",
            "C().m()"])


def test_a_traceback_through_a_library_and_a_chained_error_show_as_plainly(parity):
    parity(["import json\ndef load(text):\n    try:\n        return json.loads(text)\n"
            "    except ValueError as err:\n        raise RuntimeError('bad input') from err",
            "load('{')",
            "x = 1\nx.append(2)"])


def test_syntax_errors_of_the_cell_and_raised_while_it_ran_show_as_plainly(parity):
    parity(["x = = 1", "def f(:\n    pass", "if True:\nprint(1)", "exec('y = = 2')",
            "import ast\nast.parse('(')"])


def test_sys_exit_shows_its_message_only_and_warns_as_plainly(parity):
    # not in ``kernel``: there IPython itself runs the cell, and warns once per kernel process
    # (so whether it warns here depends on the cells other tests ran in that kernel)
    parity(["raise SystemExit(3)", "import sys\nsys.exit('bye')", "print('still here')"],
           ways=("plain", "all", "small", "none"))


def test_a_changed_objects_reference_to_one_the_cell_only_read_stays_that_object(parity):
    # PDSH 04.06: after `ax.set_title(..)` and `fig` in one cell, the notebook's ax.figure was a
    # second copy of fig, and later pictures of fig came out shifted and clipped
    parity(["import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([0, 10], [0, 1])",
            "ax.set_title('a')\nfig", "ax.set_title('b')\nfig",
            "class Node:\n    pass\np = Node()\nc = Node()\nc.parent = p",
            "c.x = 1\np", "y = p\nc.x = 2"],
           # ax.bbox is made of fig's transform: a copy of it crops later pictures of fig
           shared=[("ax.figure", "fig"), ("fig.axes[0]", "ax"), ("ax.bbox._transform",
                                                                  "fig.transFigure"),
                   ("c.parent", "p"), ("y", "p")])


def test_lists_and_dicts_the_notebook_holds_stay_its_own_inside_what_comes_back(parity):
    parity(["p = [1]\nc = [p]", "c.append(2)",
            "q = {}\nd = {'parent': q}\nq['child'] = d", "d['x'] = 1",
            "lst = [1, 2]\nclass Model:\n    pass\nm = Model()",
            "res = dict(model=m, data=lst)", "conf = {'lr': 0.1}\nm.conf = conf",
            "conf['lr'] = 0.2\nm.seen = len(lst)"],
           shared=[("c[0]", "p"), ("d['parent']", "q"), ("q['child']", "d"),
                   ("res['data']", "lst"), ("res['model']", "m"), ("m.conf", "conf")])


def test_cd_in_a_cell_changes_directory_without_an_error(parity, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("cd"))
    parity([f"import os\nstart = os.getcwd()\nos.makedirs({base!r} + '/sub', exist_ok=True)\n"
            f"os.chdir({base!r})", "%cd -q sub", "print(os.path.basename(os.getcwd()))",
            "os.chdir(start)\ndel start"])


def test_a_cell_reads_the_notebooks_history_names(parity):
    # PDSH 01.04: `_`, `__`, `_N`, `Out[N]`, `In`, `_i` are IPython's own names, and a plain
    # cell reads them as any other
    parity(["1 + 1", "print(_)", "3 * 3", "print(_ + __)", "print(len(In) > 0)",
            "print(type(_i).__name__, type(_ih).__name__, type(Out).__name__)"])


def test_settings_bound_by_a_star_import_are_the_live_ones_every_way(parity):
    # jrjohansson Lecture-4: `from pylab import *`, then `rcParams[...] = ...` must reach the
    # settings matplotlib draws with (a copy of them changed nothing)
    parity(["from matplotlib.pylab import *", "rcParams['lines.linewidth'] = 7",
            "import matplotlib\nprint(rcParams is matplotlib.rcParams, "
            "matplotlib.rcParams['lines.linewidth'])",
            "rcParams['lines.linewidth'] = 1.5"])


def test_a_cells_figure_shows_after_its_result(parity):
    traces = parity(["import matplotlib.pyplot as plt", "print('drawn')\nplt.plot([1, 2, 3])"])
    shown = traces["plain"].cells[1]  # the case: a result, then the figure
    assert shown.displays == ("image",) and shown.shown_before_result == 0


def test_a_figure_that_fails_to_draw_after_the_cell_shows_an_error(parity):
    # jrjohansson Lecture-4: a title mathtext cannot parse fails when the figure is drawn, after
    # the cell ran; a plain cell shows that as an error
    parity(["import matplotlib.pyplot as plt", "plt.plot([1, 2])\nplt.title(r'$\\frac{1$');",
            "print('next')"])


def test_xmode_sets_how_later_errors_show_every_way(parity):
    # PDSH 01.06: %xmode Plain, then Verbose (with the frames' variables), as plainly
    cells = ["def f(x):\n    y = x * 2\n    return 1 / (y - y)", "%xmode Plain", "f(1)",
             "%xmode Verbose", "f(2)", "%xmode Context", "f(3)"]
    parity(cells)


# -- found by the differential hunt (PythonDataScienceHandbook 01, jrjohansson's lectures) -------

def test_shell_commands_and_magic_lines_expand_the_notebooks_names(parity, tmp_path):
    """D5: ``!cmd``, ``x = !cmd`` and a magic's line expand ``{expr}`` and ``$name`` from the
    notebook's names (IPython's ``var_expand``), so the cell reads the names they use; in a
    function too, whose globals are the run's."""
    traces = parity([f"message = 'hello'\nwhere = {str(tmp_path)!r}\n!rm -f {{where}}/note.txt",
                     "!echo {message} $message",
                     "files = !echo {message.upper()}\nprint(files)",
                     "%%writefile $where/note.txt\nsome text",
                     "!cat $where/note.txt",
                     # deleted after: a function calling get_ipython() does not come back
                     "def shout(word):\n    !echo {word.upper()} $message\nshout('hi')\n"
                     "del shout"])
    plain = traces["plain"].cells
    assert plain[1].stdout == "hello hello\r\n" and plain[2].stdout == "['HELLO']\n"
    assert plain[4].stdout == "some text\r\n" and plain[5].stdout == "HI hello\r\n"


def test_run_brings_back_every_name_the_script_defines(parity, tmp_path):
    """D6: ``%run script.py`` binds the script's names in the notebook, as ``import *`` does,
    with ``-n`` and ``-i`` too, and rebinds a name the cell read before."""
    script = tmp_path / "myscript.py"
    traces = parity([f"!rm -f {script}",
                     f"%%file {script}\nN = 3\ndef square(x):\n    return x ** 2",
                     f"%run {script}", "print(N, square(N))",
                     f"N = 10\n%run -n {script}\nprint(N)",
                     f"M = 4\n%run -i {script}", "print(M, N, square(M))",
                     "N = 7", f"print(N)\n%run {script}", "print(N)"])
    plain = traces["plain"].cells
    assert plain[3].stdout == "3 9\n" and plain[4].stdout == "3\n"
    assert plain[6].stdout == "4 3 16\n" and plain[9].stdout == "3\n"


def test_run_i_changes_the_notebooks_own_objects(parity, tmp_path):
    """``%run -i`` runs the script among the notebook's names (fetched on first use): one it
    changes in place is still the notebook's object after, shared with its other names."""
    script = tmp_path / "grow.py"
    traces = parity([f"!rm -f {script}", f"%%file {script}\nK.append(len(K))",
                     "K = [1]\nalias = K", f"%run -i {script}",
                     "print(K, alias, K is alias)"], shared=[("K", "alias")])
    assert traces["plain"].cells[4].stdout == "[1, 1] [1, 1] True\n"


def test_prun_and_capture_run_their_code_with_the_notebooks_names(parity):
    """D7: ``%prun`` and ``%%prun`` run code that reads and binds the notebook's names;
    ``%%capture NAME`` binds NAME and runs its body as a cell."""
    traces = parity(["def g(n):\n    return sum(range(n))",
                     "%prun -q g(10)",
                     "%prun -q -s cumulative -l 3 total = g(4)",
                     "%%prun -q\ncell_total = g(5)",
                     "%%capture cap\nprint(g(5))\ncaptured_value = g(3)",
                     "print(cap.stdout, total, cell_total, captured_value)",
                     "%%capture --no-stderr out2\n%time inner = g(6)\n!echo {inner}",
                     "print(out2.stdout.splitlines()[-1], inner)",
                     "quiet = 'before'", "%%capture quiet\nprint('hidden');",
                     "print('quiet' in globals())",
                     # hunt 19 H19-28: the body's result is captured, not the cell's own
                     "%%capture shown\nprint('hidden')\n40 + 2",
                     "print(len(shown.outputs), repr(shown.stdout))"])
    plain = traces["plain"].cells
    assert plain[5].stdout == "10\n 6 10 3\n"
    assert plain[7].stdout == "15 15\n" and plain[10].stdout == "False\n"
    assert plain[11].result is None and plain[12].stdout == "1 'hidden\\n'\n"


def test_except_as_unbinds_the_notebooks_name_as_plainly(parity):
    """D8: Python deletes an ``except ... as e`` name at the end of its handler: a notebook ``e``
    is gone after a cell whose handler ran, kept when no handler ran, rebound when the cell
    binds it again after."""
    traces = parity(["e = 2.718\nerr = 'kept'\nagain = 1",
                     "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    print('caught', e)",
                     "print('e' in globals())",
                     "try:\n    pass\nexcept ValueError as err:\n    pass",
                     "try:\n    {}['k']\nexcept KeyError as again:\n    pass\nagain = 2",
                     "print(err, again)"])
    plain = traces["plain"].cells
    assert plain[2].stdout == "False\n" and plain[5].stdout == "kept 2\n"


def test_a_function_that_runs_shell_commands_comes_back_and_runs_every_way(parity):
    # a `!cmd` (or %magic) inside a def calls get_ipython(): the function must still travel
    parity(["def greet(who):\n    !echo hello {who}", "greet('there')",
            "listed = callable(greet)"])


def test_a_figure_left_open_under_another_backend_is_not_shown_again(parity):
    # jrjohansson Lecture-4: with matplotlib.use('svg') nothing shows after the cell; the figure
    # that came back must not be taken up (and shown) by the notebook's inline backend
    parity(["import matplotlib\nbefore = matplotlib.get_backend()\nmatplotlib.use('svg')\n"
            "import matplotlib.pyplot as plt", "fig, ax = plt.subplots()\nax.plot([1, 2]);",
            "print(len(ax.lines))",
            "plt.close('all')\nmatplotlib.use(before)\ndel before"])


def test_annotations_are_evaluated_as_in_a_plain_cell(parity):
    # pytudes' Orderable Cards: the engine's own `from __future__ import annotations` must not
    # leak into the cells it compiles (annotations turned into strings)
    parity(["def f(x: int) -> list:\n    return [x]\nkinds = f.__annotations__",
            "try:\n    def g(x: Undefined):\n        pass\nexcept NameError as err:\n"
            "    print('NameError')",
            "from dataclasses import dataclass, fields\n@dataclass\nclass P:\n    x: int\n"
            "types = [f.type for f in fields(P)]"])


def test_builtins_are_the_builtins_module_as_in_a_plain_cell(parity):
    # pytudes' Snobol: vars(__builtins__), __builtins__.__name__, __builtin__
    parity(["same = vars(__builtins__)['len'] is len\nprint(__builtins__.__name__)",
            "print(__builtin__.__name__, __builtins__.abs(-2))",
            "print(eval('vars(__builtins__)[\"min\"](3, 4)'))"])


def test_globals_a_notebook_function_rebinds_or_changes_come_back(parity):
    # pytudes' Cheryl-and-Eve (`global DATES`), BASIC, Konane (`set_N(4)`): the everyday style
    # of a function that sets or fills the notebook's globals
    parity(["counter = 0\ndef inc():\n    global counter\n    counter += 1",
            "inc()", "counter",
            "def make():\n    global fresh\n    fresh = [1, 2]", "make()", "fresh",
            "seen = []\ndef visit(x):\n    seen.append(x)\ndef walk(xs):\n    for x in xs:\n"
            "        visit(x)", "walk([1, 2, 3])", "seen",
            "from collections import Counter\ntally = Counter()\n"
            "def count(word):\n    tally[word] += 1", "count('a'); count('a')", "tally"])




def test_class_attributes_a_cell_or_a_notebook_function_sets_come_back(parity):
    # a class attribute as a registry (`Reg.items.append`, `Reg.count += 1` in a function the
    # cell calls), set, replaced (a method) or deleted in the cell itself: the notebook's class
    # takes the change, and its objects stay its objects
    traces = parity(["class Reg:\n    items = []\n    count = 0\n    def size(self):\n"
                     "        return len(self.items)",
                     "def add(x):\n    Reg.items.append(x)\n    Reg.count += 1",
                     "r0 = Reg()", "add(1)", "Reg.items, Reg.count, r0.size(), isinstance(r0, Reg)",
                     "Reg.flag = 'set'\nReg.size = lambda self: -1", "Reg.flag, r0.size()",
                     "del Reg.flag", "hasattr(Reg, 'flag')", "r = Reg()\nr.items is Reg.items"],
                    shared=[("type(r0)", "Reg"), ("type(r)", "Reg")])
    assert traces["plain"].cells[4].result == "text: ([1], 1, 1, True)"


def test_an_augmented_assignment_changes_the_notebooks_object_in_place(parity):
    # `lst += [2]`, `a *= 2`, `s |= {2}`, an `__iadd__` of the notebook's: the cell assigns the
    # name the object it changed in place; its change was lost (the name counted as unchanged,
    # so the notebook kept its old object as it was) and every alias missed it
    traces = parity(["import numpy as np\nimport pandas as pd\nlst = [1]\nalias = lst\n"
                     "a = np.arange(3.0)\nb = a\ns = {1}\nc = s\ndf = pd.DataFrame({'x': [1, 2]})\n"
                     "class Acc:\n    def __init__(self):\n        self.n = 0\n"
                     "    def __iadd__(self, k):\n        self.n += k\n        return self\n"
                     "acc = Acc()\nacc2 = acc",
                     "lst += [2]\na *= 2\ns |= {2}\ndf += 1\nacc += 5\nt = (1,)\nt += (2,)",
                     "alias, b, c, df.x.tolist(), acc2.n, t", "x = 1\nx += 1", "x"],
                    shared=[("lst", "alias"), ("a", "b"), ("s", "c"), ("acc", "acc2")])
    assert traces["plain"].cells[2].result == \
        "text: ([1, 2], array([0., 2., 4.]), {1, 2}, [2, 3], 5, (1, 2))"


def test_a_name_bound_to_an_object_inside_what_the_cell_read_is_that_object(parity):
    # `row = grid[0]`, `inner = d['a']`, `node = tree.kids[0]`, `held = Reg.items`: plainly the
    # new name is the object inside, so a change through either shows in the other; before,
    # each came back as a copy
    traces = parity(["grid = [[0, 0], [0, 0]]\nd = {'a': {'x': 1}}\n"
                     "class Node:\n    def __init__(self, kids=()):\n        self.kids = list(kids)\n"
                     "        self.mark = 0\n"
                     "tree = Node([Node(), Node()])\nclass Reg:\n    items = []",
                     "row = grid[0]\ninner = d['a']\nnode = tree.kids[0]\nheld = Reg.items",
                     "row[0] = 5\ninner['y'] = 2\nnode.mark = 7\nheld.append(1)",
                     "grid, d, [k.mark for k in tree.kids], Reg.items",
                     "first = grid.pop(0)\nfirst.append(9)", "print(grid, row, first is row)",
                     "import numpy as np\ndata = {'X': np.arange(4.0)}\nnode.w = np.zeros(2)",
                     "X = data['X']\nw = node.w", "X *= 2\nw[0] = 1", "print(data, tree.kids[0].w)"],
                    shared=[("inner", "d['a']"), ("node", "tree.kids[0]"),
                            ("held", "Reg.items"), ("first", "row"), ("X", "data['X']"),
                            ("w", "node.w")])
    assert traces["plain"].cells[3].result == \
        "text: ([[5, 0], [0, 0]], {'a': {'x': 1, 'y': 2}}, [7, 0], [1])"


def test_a_default_or_a_lambda_taken_out_of_what_the_cell_read_is_the_notebooks_own(parity):
    # travel5's leftovers: `seen = calls.__defaults__[0]` and a lambda inside a dict came back
    # as copies (a later change through one did not reach the other; `k is opts['key']` False)
    traces = parity(["def calls(x, seen=[]):\n    seen.append(x)\n    return len(seen)\n"
                     "opts = {'key': lambda v: -v, 'n': 1}",
                     "seen = calls.__defaults__[0]\nk = opts['key']\ncalls(1)",
                     "seen.append(5)\nprint(calls(2), seen, k is opts['key'], k(3))"],
                    shared=[("seen", "calls.__defaults__[0]"), ("k", "opts['key']")])
    assert traces["plain"].cells[2].stdout == "3 [1, 5, 2] True -3\n"


def test_a_class_that_comes_back_changed_keeps_its_methods_and_the_lists_names_hold(
        shell, run, target):
    run("class Tally:\n    seen = []\n    def note(self, x):\n        Tally.seen.append(x)")
    ns = shell.user_ns
    method, held, obj = vars(ns["Tally"])["note"], ns["Tally"].seen, ns["Tally"]()
    ns["obj"] = obj
    res = run("%%remote --download=all\nobj.note(5)\nTally.total = 1")
    assert res.error_in_exec is None, res.error_in_exec
    assert ns["Tally"].seen == [5] and held is ns["Tally"].seen  # the notebook's list, filled
    assert vars(ns["Tally"])["note"] is method  # unchanged: the very function
    assert ns["Tally"].total == 1 and type(ns["obj"]) is ns["Tally"] and ns["obj"] is obj


def test_a_function_called_out_of_a_container_keeps_what_it_changes(parity):
    # pytudes hunt H2/H3: `actions['log'](1)` (its global LOG), `d['c']()` (its closure),
    # `fs[0](2)` (its default) lost their changes; `global X; del X` left X in the notebook
    parity(["LOG = []\nactions = {'log': lambda x: LOG.append(x)}", "actions['log'](1)", "LOG",
            "def make_counter():\n    n = [0]\n    def step():\n        n[0] += 1\n"
            "        return n[0]\n    return step\nd = {'c': make_counter()}",
            "d['c']()", "d['c']()",
            "def f(x, memo={}):\n    memo[x] = 1\n    return len(memo)\nfs = [f]",
            "fs[0](1)", "fs[0](2)", "f(4)",
            "X = 1\ndef drop():\n    global X\n    del X", "drop()", "print('X' in dir())",
            # called under another name: a loop's variable, map's argument
            "def g(x, memo={}):\n    memo[x] = 1\n    return len(memo)",
            "for h in [g]: h(1)", "g(2)", "list(map(g, [3, 4]))", "g(5)"])


def test_a_function_a_remote_cell_defined_sees_the_notebooks_globals_every_way(parity):
    # both hunts' largest remaining count (lispy, TwelveBalls, flipping, BASIC... in `none`): a
    # function that stayed remote read and set the globals of the run that defined it, so
    # `global counter` never came back, a changed `scale` was not seen, and a redefined
    # helper was not called
    parity(["counter = 0\ndef inc():\n    global counter\n    counter += 1\n    return counter",
            "inc()", "counter", "scale = 2\ndef times(x):\n    return x * scale", "times(3)",
            "scale = 10", "times(3)", "def make():\n    global fresh\n    fresh = [1, 2]", "make()",
            "fresh", "def helper(x):\n    return x + 1\ndef outer(x):\n    return helper(x) * 2",
            "outer(1)", "def helper(x):\n    return x + 100", "outer(1)"])


def test_a_cached_function_of_the_notebook_runs_remotely_and_recurses_through_its_cache(parity):
    # D4 (41 of 114 pytudes notebooks): an lru_cache wrapper pickled by reference to __main__,
    # which a run's namespace is not; it travels as its function, cached again on the receiver
    traces = parity(["from functools import lru_cache, cache",
                     "@lru_cache\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
                     "fib(20)", "def twice(n):\n    return 2 * fib(n)", "twice(30)",
                     "@cache\ndef ways(n):\n    return 1 if n < 2 else ways(n - 1) + ways(n - 2)",
                     "print(ways(200), ways.cache_parameters(), fib.cache_parameters())",
                     "@lru_cache(maxsize=16, typed=True)\ndef sq(x):\n    return x * x",
                     "print(sq(3), sq(3.0), sq.cache_parameters(), sq.__name__, sq.__wrapped__(4))",
                     "class Grid:\n    @lru_cache(None)\n    def cells(self, n):\n        return n * n",
                     "print(Grid().cells(7))"])
    assert traces["plain"].cells[2].result == "text: 6765"
    for way in ("all", "small"):  # defined remotely, they come back: no proxies
        assert not traces[way].proxied & {"fib", "twice", "ways", "sq", "Grid"}


def test_a_function_that_comes_back_inside_a_value_is_the_notebooks_own(parity):
    # D5: a function the notebook sent comes back as the notebook's function, not a copy
    traces = parity(["def variable(x):\n    return x + 1", "h = [variable]\nd = {variable: 'v'}",
                     # (the harness compares a dict's keys by ==: a function only to itself)
                     "print(h[0] is variable, d[variable])\ndel d",
                     "table = {variable: 1}", "for key in table:\n    table[key] += 1",
                     "print(table[variable])\ndel table"], shared=[("h[0]", "variable")])
    assert traces["plain"].cells[2].stdout == "True v\n"


def test_a_slotted_object_changed_remotely_is_updated_in_place(parity):
    # D7: an object of a class with __slots__ has no __dict__ to replace (its __eq__: the
    # harness compares an object without a __dict__ by ==)
    traces = parity(["class S:\n    __slots__ = ('v', 'w')\n    def __init__(self):\n"
                     "        self.v = 1\n    def __eq__(self, other):\n        return [getattr("
                     "self, k, None) for k in S.__slots__] == [getattr(other, k, None) for k in "
                     "S.__slots__]", "s = S()\nalias = s", "s.v = 5\ns.w = [s.v]",
                     "print(s.v, alias.v, alias.w, alias is s)"], shared=[("s", "alias")])
    assert traces["plain"].cells[3].stdout == "5 5 [5] True\n"


def test_a_function_defined_again_remotely_is_a_new_function_as_plainly(parity):
    # D5's other side: a def run again makes a new function (new defaults), even of one code
    traces = parity(["def acc(x, seen=[]):\n    seen.append(x)\n    return len(seen)",
                     "first = acc\nacc(1)", "def acc(x, seen=[]):\n    seen.append(x)\n"
                     "    return len(seen)", "print(acc(2), first is acc, first(3))",
                     "again = [acc]\nprint(again[0] is acc, acc(4))"], shared=[("again[0]", "acc")])
    assert traces["plain"].cells[3].stdout == "1 False 2\n"


def test_a_function_that_keeps_state_keeps_it_when_called_remotely(parity):
    # D5's price: a function that comes back is the notebook's own, so what a call changes in
    # it (a default list, a nonlocal, an attribute) must come back into it
    traces = parity(["def counter():\n    count = 0\n    def inc():\n        nonlocal count\n"
                     "        count += 1\n        return count\n    return inc",
                     "inc = counter()\nalias = inc", "inc()", "inc()",
                     "def calls(x, seen=[]):\n    seen.append(x)\n    calls.n = len(seen)\n"
                     "    return len(seen)", "calls(1)", "calls(2)",
                     "print(inc(), alias(), calls(3), calls.n)"], shared=[("inc", "alias")])
    assert traces["plain"].cells[7].stdout == "3 4 3 3\n"


def test_a_class_with_a_cached_property_comes_back(parity):
    # Python 3.11's cached_property holds a lock: the class, and its objects, stayed proxies
    traces = parity(["from functools import cached_property",
                     "class Area:\n    def __init__(self, side):\n        self.side = side\n"
                     "    @cached_property\n    def area(self):\n        return self.side ** 2",
                     "square = Area(3)\nsquare.area", "print(square.area, vars(square))"])
    for way in ("all", "small"):
        assert not traces[way].proxied & {"Area", "square"}


def test_interactivity_all_last_and_assign_show_what_a_plain_cell_shows(parity):
    # pydata-book appendix B (`InteractiveShell.ast_node_interactivity = 'all'`, a common tip):
    # a remote cell showed only its last value. Set by a cell, every way: in the remote ways
    # and the remote kernel the cell runs in the engine, which then shows as its shell says
    set_to = "get_ipython().ast_node_interactivity = {!r}".format
    try:
        traces = parity([set_to("all"), "x = 5\nx\nprint('between')\nx * 2",
                         "for i in range(2):\n    i\nx + 1", "x\nx;",
                         "x = 1\ny = [x]", set_to("last_expr_or_assign"), "y = 7",
                         "y += 1", set_to("last"), "for i in range(2):\n    i * 3",
                         "x\ny", set_to("none"), "x\ny", set_to("last_expr")])
    finally:  # never left set for later tests, whatever failed
        parity([set_to("last_expr")], ways=("plain", "all", "kernel"))
    cells = traces["plain"].cells
    assert cells[1].earlier_results == ("text: 5",) and cells[1].result == "text: 10"
    assert cells[1].stdout == "between\n"
    assert cells[2].earlier_results == ("text: 0", "text: 1") and cells[2].result == "text: 6"
    assert cells[3].result is None and cells[3].earlier_results == ()
    assert cells[6].result == "text: 7" and cells[7].result == "text: 8"
    assert cells[9].earlier_results == ("text: 0",) and cells[9].result == "text: 3"
    assert cells[10].earlier_results == () and cells[10].result == "text: 8"
    assert cells[12].result is None


def test_the_notebooks_own_interactivity_reaches_its_remote_cells(shell, target):
    # set in the notebook (a config file, a plain cell): the engine shows as the notebook says
    from tests.parity import run_shell

    cells = ["x = 5\nx\nprint('between')\nx * 2", "for i in range(2):\n    i", "x\nx;"]
    shell.ast_node_interactivity = "all"
    try:
        plain = run_shell(shell, cells, "plain")
        remote = run_shell(shell, cells, "small", target.name)
    finally:
        shell.ast_node_interactivity = "last_expr"
    assert plain.cells == remote.cells
    assert remote.cells[0].earlier_results == ("text: 5",) and remote.cells[0].result == "text: 10"
    assert remote.cells[1].earlier_results == ("text: 0",) and remote.cells[1].result == "text: 1"
    assert remote.cells[2].result is None and remote.cells[2].earlier_results == ()


def test_a_cached_function_keeps_its_entries_from_cell_to_cell(parity):
    # pytudes Countdown: each remote cell started its cache empty, so work cached by an earlier
    # cell was done again (13 s: the cell timed out), a miss that prints printed again, and
    # cache_info() counted differently
    traces = parity([
        "from functools import lru_cache, cache\ncalls = []",
        "@cache\ndef slow(n):\n    calls.append(n)\n    print('computing', n)\n    return n * n",
        "slow(3)", "slow(3)", "print(slow.cache_info(), calls)",
        "K = 10\n@lru_cache(maxsize=None)\ndef scaled(x):\n    return x * K", "scaled(2)",
        "K = 100\nscaled(2), scaled(3)", "slow.cache_clear()\nslow(3)",
        "@cache\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)", "fib(300)",
        "print(fib.cache_info().currsize, fib(299) + fib(298) == fib(300))",
        "@lru_cache(maxsize=2)\ndef few(n):\n    print('miss', n)\n    return n",
        "few(1), few(2), few(1)", "few(3), few(2), few(1)",
        "print(few.cache_info())"])
    cells = traces["plain"].cells
    assert cells[2].stdout == "computing 3\n" and cells[3].stdout == ""
    assert cells[4].stdout == ("CacheInfo(hits=1, misses=1, maxsize=None, currsize=1) [3]\n")
    assert cells[7].result == "text: (20, 300)" and cells[8].stdout == "computing 3\n"
    assert cells[11].stdout == "301 True\n"
    assert cells[14].stdout == "miss 3\nmiss 2\nmiss 1\n"


def test_a_deep_recursion_through_a_cache_that_finishes_plainly_finishes_every_way(parity):
    # pytudes Socks (hunt 29 H29-8): under a raised recursion limit, 15,000 levels of an
    # lru_cache finished plainly and killed the engine with SIGSEGV: the engine's cache calls a
    # cell function through a partial, a C call a level more (656 bytes of C stack against 512).
    # 13,500 levels: about 6.9 MB plainly, 8.9 MB in the engine, past its 8 MiB before the fix
    traces = parity([
        "import sys\nfrom functools import lru_cache\nbefore = sys.getrecursionlimit()",
        "@lru_cache(None)\ndef depth(n):\n    return 0 if n == 0 else depth(n - 1) + 1",
        "sys.setrecursionlimit(30_000)\nprint(depth(13_500))",  # a C call and a frame a level
        "sys.setrecursionlimit(before)\ndel before\nprint(depth.cache_info().currsize)"])
    assert traces["plain"].cells[2].stdout == "13500\n"
    assert traces["plain"].cells[3].stdout == "13501\n"


def test_a_class_a_remote_cell_defined_sees_the_notebooks_names_every_way(parity):
    # PythonDataScienceHandbook 03.06-03.08 (its `display` class: `eval(name)` in
    # `_repr_html_`): under `none` the class stays remote, and its methods read the names of
    # the run that defined it, so names bound later were a NameError and changed ones stale
    traces = parity([
        "class Show:\n    def __init__(self, *names):\n        self.names = names\n"
        "    def __repr__(self):\n        return '; '.join(f'{n}={eval(n)!r}' for n in self.names)",
        "a = 1\nb = [2]", "Show('a', 'b')",
        "scale = 2\nclass Scaled:\n    def __init__(self, x):\n        self.x = x\n"
        "    def value(self):\n        return self.x * scale\n    @property\n"
        "    def doubled(self):\n        return 2 * self.x * scale\n    @staticmethod\n"
        "    def unit():\n        return scale\n    @classmethod\n    def make(cls):\n"
        "        global made\n        made = cls(scale)\n        return made",
        "s = Scaled(3)", "scale = 10\nprint(s.value(), s.doubled, Scaled.unit(), Scaled(1).value())",
        "Scaled.make().x", "made.value()",
        "class Wider(Scaled):\n    def value(self):\n        return super().value() + scale",
        "scale = 100\nWider(1).value()",
        "tag = 'old'\nclass Tagged:\n    def __repr__(self):\n        return eval('tag')",
        "tag = 'new'", "Tagged()"])
    cells = traces["plain"].cells
    assert cells[2].result == "text: a=1; b=[2]" and cells[5].stdout == "30 60 10 10\n"
    assert cells[6].result == "text: 10" and cells[7].result == "text: 100"
    assert cells[9].result == "text: 200" and cells[12].result == "text: new"


def test_a_change_inside_a_tuple_or_through_a_bound_method_comes_back(parity):
    # hunt 8 (WhirlwindTourOfPython probes), silent: a tuple's list changed in place, and an
    # object changed through a bound method held under another name, kept their old values
    traces = parity([
        "import numpy as np\nfrom collections import namedtuple\nPair = namedtuple('Pair', 'a b')\n"
        "t = ([1],)\npr = Pair([1], [2])\narrs = (np.zeros(2),)\naa = [1, 2]\nboth = (aa, aa)\n"
        "nested = (1, ('x', {'k': 1}))",
        "t[0].append(2)\npr.a.append(9)\narrs[0][0] = 1\nboth[0].append(3)\nnested[1][1]['k'] = 2",
        "print(t, pr, arrs, aa, both, nested)",
        "class Acc:\n    total = 0\n    def add(self, v):\n        self.total += v\n"
        "acc = Acc()\nadd = acc.add", "add(5)", "acc.total", "add(2)\nadd.__self__.total",
        "class Counter2:\n    n = 0\n    @classmethod\n    def bump(cls):\n        cls.n += 1\n"
        "bump = Counter2.bump", "bump()", "Counter2.n"],
        shared=[("t[0]", "t[0]"), ("both[0]", "aa"), ("both[1]", "aa"), ("add.__self__", "acc")])
    cells = traces["plain"].cells
    assert cells[2].stdout == ("([1, 2],) Pair(a=[1, 9], b=[2]) (array([1., 0.]),) [1, 2, 3] "
                               "([1, 2, 3], [1, 2, 3]) (1, ('x', {'k': 2}))\n")
    assert cells[5].result == "text: 5" and cells[6].result == "text: 7"
    assert cells[9].result == "text: 1"


def test_the_global_random_generators_stay_the_processes_own_inside_other_values(parity):
    # hunt 8, silent: `from numpy.random import rand` (a bound method of numpy's global
    # RandomState) and `from random import randint` crossed as copies of their generator, so
    # `rand()` gave the same number every cell and `seed(1)` no longer governed them; a scipy
    # frozen distribution's random_state likewise (scientific-python-lectures 3)
    traces = parity([
        "import random\nimport numpy as np\nfrom random import randint\n"
        "from numpy.random import rand, seed\nholder = {'gen': random.random}",
        "random.seed(1)\nnp.random.seed(1)", "randint(0, 10**6)", "rand()", "rand()",
        "seed(2)\nrand()", "holder['gen']()",
        "print(rand.__self__ is np.random.mtrand._rand, randint.__self__ is random._inst)"])
    cells = traces["plain"].cells
    assert cells[3].result != cells[4].result and cells[7].stdout == "True True\n"


def test_a_result_changed_in_place_through_the_history_changes_its_names(parity):
    # hunt 8, silent: `x` shown, then `_.append(2)`: the notebook's x kept [1]
    traces = parity(["x = [1]\nx", "_.append(2)", "x", "d = {'k': 1}\nd", "_['j'] = 2", "d"])
    cells = traces["plain"].cells
    assert cells[2].result == "text: [1, 2]" and cells[5].result == "text: {'k': 1, 'j': 2}"


def test_functions_of_one_closure_still_share_its_variables_after_crossing(parity):
    # hunt 8, silent: `inc, get = make()` sharing `nonlocal n`: after crossing each had its own
    # copy of n, so `inc()` then `get()` gave 0 (a counting decorator's `count()` likewise)
    traces = parity([
        "def make():\n    n = 0\n    def inc():\n        nonlocal n\n        n += 1\n"
        "    def get():\n        return n\n    return inc, get\ninc, get = make()",
        "inc()", "get()", "print(inc.__closure__[0] is get.__closure__[0])",
        "def counted(f):\n    calls = 0\n    def wrapper(x):\n        nonlocal calls\n"
        "        calls += 1\n        return f(x)\n    wrapper.count = lambda: calls\n    return wrapper\n"
        "@counted\ndef sq(x):\n    return x * x",
        "sq(2), sq(3)", "sq.count()",
        "def rec():\n    def again(k):\n        return k if k < 1 else again(k - 1)\n    return again\n"
        "again = rec()", "again(3)"])
    cells = traces["plain"].cells
    assert cells[2].result == "text: 1" and cells[6].result == "text: 2"


def test_an_exception_kept_in_a_name_keeps_its_chain_and_its_message(parity):
    # hunt 8, silent: an exception kept (`except ... as e: err = e`) lost __cause__ and
    # __context__ when it crossed, and one whose class has its own __init__ grew its message
    # at every crossing ('code 3' → 'code code 3')
    traces = parity([
        "try:\n    raise ValueError('x') from KeyError('k')\nexcept ValueError as e:\n    err = e\n"
        "try:\n    {}['missing']\nexcept KeyError:\n    try:\n        1 / 0\n"
        "    except ZeroDivisionError as e:\n        during = e",
        "print(repr(err.__cause__), err.__suppress_context__, repr(during.__context__))",
        "class MyErr(Exception):\n    def __init__(self, code):\n        super().__init__(f'code {code}')\n"
        "        self.code = code\nme = MyErr(3)", "str(me), me.code", "errors = [me, err]",
        "str(errors[0]), errors[1].__cause__"])
    cells = traces["plain"].cells
    assert cells[1].stdout == "KeyError('k') True KeyError('missing')\n"
    assert cells[3].result == "text: ('code 3', 3)"


def test_a_deque_or_an_array_changed_in_place_is_still_every_names(parity):
    # hunt 8, silent: a deque (and an array.array) the cell changed was bound anew, so another
    # name holding it kept the old one
    traces = parity([
        "import array\nfrom collections import deque\nq = deque()\nholder = [q]\n"
        "bounded = deque([1, 2], maxlen=2)\nnums = array.array('i', [1])\n"
        "kept = {'q': q, 'nums': nums}",
        "q.append(1)\nbounded.append(3)\nnums.append(2)",
        "print(holder, bounded, kept['nums'])", "print(kept['q'] is q, kept['nums'] is nums)"],
        shared=[("holder[0]", "q"), ("kept['nums']", "nums"), ("kept['q']", "q")])
    assert traces["plain"].cells[3].stdout == "True True\n"


def test_a_dict_view_still_shows_its_dicts_changes(parity):
    # hunt 8, silent: `ks = d.keys()` crossed as a view of a copy of d
    traces = parity(["d = {'a': 1}\nks = d.keys()\nvs = d.values()\nits = d.items()",
                     "d['b'] = 2", "print(ks, vs, its)", "views = [ks]\nd['c'] = 3",
                     "print(views[0], len(ks))"])
    assert traces["plain"].cells[2].stdout == (
        "dict_keys(['a', 'b']) dict_values([1, 2]) dict_items([('a', 1), ('b', 2)])\n")


def test_reset_in_a_remote_cell_clears_the_notebooks_names(parity):
    # pydata-book appendix B: `%reset -f` in a remote cell cleared only the run's names there
    # (and sent back IPython's `exit` as a proxy): the notebook kept every name
    traces = parity([
        "a = 1\nb = [2]\ndef f():\n    return a", "%reset -f\nc = 3",
        "print(sorted(n for n in globals() if not n.startswith('_') and n not in "
        "('In', 'Out', 'exit', 'quit', 'get_ipython', 'open')))", "c + 1"])
    cells = traces["plain"].cells
    assert cells[1].stderr == "" and cells[2].stdout == "['c']\n"
    assert set(traces["plain"].names) == {"c"}


def test_changes_through_a_with_a_decorator_or_a_defaultdict_read_come_back(parity):
    # hunt 9, silent: a defaultdict filled by a read (and its default_factory set), attributes
    # set on a dict's or list's subclass, what __enter__/__exit__ did to a notebook object, and
    # a class attribute a classmethod decorator changed were all lost
    traces = parity([
        "from collections import defaultdict\ndd = defaultdict(list)\n"
        "class Tagged(dict):\n    pass\ntg = Tagged(a=1)\nclass Box(list):\n    pass\nbx = Box([1])",
        "dd['a']", "dd.default_factory = int", "dd['b']", "print(dict(dd), dd.default_factory)",
        "tg.meta = 2\ntg['b'] = 2", "print(tg, tg.meta)", "bx.tag = 'x'\nbx.append(2)",
        "print(bx, bx.tag)",
        "class Ctx:\n    def __init__(self):\n        self.entered = 0\n    def __enter__(self):\n"
        "        self.entered += 1\n        return self\n    def __exit__(self, *exc):\n"
        "        self.exited = True\nctx = Ctx()", "with ctx:\n    pass",
        "print(ctx.entered, ctx.exited)",
        "class Reg:\n    handlers = []\n    @classmethod\n    def on(cls, f):\n"
        "        cls.handlers.append(f.__name__)\n        return f",
        "@Reg.on\ndef hello():\n    pass", "Reg.handlers"])
    cells = traces["plain"].cells
    assert cells[4].stdout == "{'a': [], 'b': 0} <class 'int'>\n"
    assert cells[6].stdout == "{'a': 1, 'b': 2} 2\n" and cells[8].stdout == "[1, 2] x\n"
    assert cells[11].stdout == "1 True\n" and cells[14].result == "text: ['hello']"


def test_changes_through_a_loops_variable_or_a_part_passed_to_a_call_come_back(parity):
    # hunt 9, silent (teaching code's commonest shapes): `for row in grid: row.append(0)` brought
    # back only the last row's change; a part passed to a call (`shuffle(deck.cards)`,
    # `heappush(h['q'], x)`, `map(acc.add, xs)`) and a comprehension's (`[m.sort() for m in
    # mats]`) changes were lost
    traces = parity([
        "import heapq, random\nrandom.seed(3)\ngrid = [[1], [2]]\npeople = [{'age': 1}, {'age': 2}]\n"
        "mats = [[3, 1], [2, 0]]\nh = {'q': []}\nclass Deck:\n    def __init__(self):\n"
        "        self.cards = list(range(6))\ndeck = Deck()\nclass Acc:\n    total = 0\n"
        "    def add(self, v):\n        self.total += v\nacc = Acc()\n"
        "accounts = [Acc(), Acc()]",
        "for row in grid:\n    row.append(0)", "for p in people:\n    p['age'] += 1",
        "[m.sort() for m in mats]", "heapq.heappush(h['q'], 5)", "random.shuffle(deck.cards)",
        "list(map(acc.add, [1, 2]))", "for a in accounts:\n    a.add(10)",
        "print(grid, people, mats, h, acc.total, [a.total for a in accounts])",
        "print(sorted(deck.cards))"])
    assert traces["plain"].cells[8].stdout == (
        "[[1, 0], [2, 0]] [{'age': 2}, {'age': 3}] [[1, 3], [0, 2]] {'q': [5]} 3 [10, 10]\n")


def test_next_of_an_exhausted_generator_is_a_stop_iteration_every_way(parity):
    # hunt 9 (Complete-Python-3-Bootcamp 11-01): a remote cell's StopIteration came out as
    # "RuntimeError: coroutine raised StopIteration" (the engine runs cells in a coroutine)
    traces = parity(["def gen():\n    yield 1", "g = gen()\nnext(g)", "next(g)", "next(iter([]))",
                     "print('after')"], ways=("plain", "none", "kernel"))  # (all: a note)
    assert traces["plain"].cells[2].error == "StopIteration"


def test_a_typing_named_tuple_class_of_a_cell_travels(parity):
    # hunt 9: `class Emp(typing.NamedTuple)` could not be made in the notebook ("Cannot
    # overwrite NamedTuple attribute __slots__"), so it stayed remote with a note
    traces = parity(["import typing\nclass Emp(typing.NamedTuple):\n    name: str\n    id: int = 3\n"
                     "e = Emp('a')", "e._asdict(), e.id, Emp._fields"])
    assert traces["plain"].cells[1].result == "text: ({'name': 'a', 'id': 3}, 3, ('name', 'id'))"


def test_a_typed_dict_made_by_a_call_comes_back_from_a_remote_cell(parity):
    # hunt 23 H23-12: `TypedDict('TD', {...})` made remotely could not be made in the notebook
    # before Python 3.12 ("cannot inherit from both a TypedDict type and a non-TypedDict base
    # class"): it stayed remote with a note, and a plain cell's TD.__required_keys__ failed
    traces = parity(["from typing import TypedDict\nTD = TypedDict('TD', {'a': int})\n"
                     "td = TD(a=1)\nclass Movie(TypedDict):\n    title: str",
                     "# plain\nprint(TD(a=2), TD.__required_keys__, type(TD).__name__, td, "
                     "Movie.__required_keys__)",
                     "TD.__annotations__, TD.__total__"],
                    ways=("plain", "all", "small", "kernel"))  # none: a proxy has no dunders
    assert traces["plain"].cells[1].stdout == \
        "{'a': 2} frozenset({'a'}) _TypedDictMeta {'a': 1} frozenset({'title'})\n"


def test_a_module_made_at_run_time_is_one_module_on_both_sides(parity):
    # hunt 23 H23-10: a module a plain cell made (types.ModuleType put in sys.modules, as plugin
    # and config loaders do) went by name: a remote cell reading it failed with "No module named
    # ..., install it there". It has no file: it goes by value, one module on each side, and
    # what a remote cell sets in it comes back to the notebook's
    parity(["# plain\nimport sys, types\nfm = types.ModuleType('made_at_run_time_h23')\n"
            "fm.val = 1\nsys.modules['made_at_run_time_h23'] = fm",
            "print(fm.val)\nfm.val += 1\nimport made_at_run_time_h23\n"
            "print(made_at_run_time_h23 is fm, made_at_run_time_h23.val)",
            "# plain\nprint(fm.val, sys.modules['made_at_run_time_h23'] is fm)",
            "mm = types.ModuleType('made_remotely_h23')\nmm.items = [1]\n"
            "sys.modules['made_remotely_h23'] = mm",
            "mm.items.append(2)\nprint(mm.items)",
            "# plain\nimport made_remotely_h23\nprint(made_remotely_h23 is mm, mm.items)",
            "del fm, mm, sys.modules['made_at_run_time_h23'], sys.modules['made_remotely_h23']"],
           ways=("plain", "all", "small", "kernel"))  # none: a proxy has no module's identity


def test_a_global_a_function_changes_comes_back_when_the_cell_also_reads_it(parity):
    # hunt 24 H24-2: a global the cell read only by `in` or a truth test was not watched, so
    # what the notebook's function the cell called did to it was lost (the visited set of a
    # search, an error list): the remote cell saw it, the notebook's stayed empty. Also one a
    # notebook class's method changes (a property appending to `seen`), read through its object
    parity(["# plain\ngraph = {0: [1, 2], 1: [3], 2: [], 3: []}\nvisited = set()\n"
            "def dfs(n):\n    visited.add(n)\n    for m in graph[n]:\n"
            "        if m not in visited:\n            dfs(m)\n"
            "errors = []\ndef check_value(v):\n    if v < 0:\n        errors.append(v)\n"
            "queue = [3, 2]\ndef work():\n    return queue.pop()\n"
            "seen = []\nclass Node:\n    def __init__(self, v):\n        self.v = v\n"
            "    @property\n    def value(self):\n        seen.append(self.v)\n"
            "        return self.v\nn = Node(3)\n"
            "held = {'v': visited, 'e': errors, 'q': queue, 's': seen}",
            "dfs(0)\nprint(3 in visited)\nfor v in [1, -2]:\n    check_value(v)\n"
            "if errors:\n    print('some errors')\nwhile queue:\n    print(work())\n"
            "x = n.value\nif seen:\n    print('seen', x)",
            "# plain\nprint(sorted(visited), errors, queue, seen, held)"],
           shared=[("held['v']", "visited"), ("held['e']", "errors"), ("held['q']", "queue"),
                   ("held['s']", "seen")])


def test_a_cell_metaclass_that_registers_its_classes_registers_each_once(parity):
    # hunt 24 H24-1: a notebook class of a cell's metaclass was made again as it crossed, so
    # the metaclass's __new__ (and __init__) registered it again: ['Base', 'Base', 'A']. A
    # library metaclass after the cell's (ABCMeta) still does its part: abstract stays abstract
    parity(["# plain\nimport abc\nclass Meta(abc.ABCMeta):\n    registry = []\n"
            "    def __new__(mcs, name, bases, ns):\n"
            "        cls = super().__new__(mcs, name, bases, ns)\n"
            "        mcs.registry.append(name)\n        return cls\n"
            "    def __init__(cls, name, bases, ns):\n        super().__init__(name, bases, ns)\n"
            "        cls.made = getattr(cls, 'made', 0) + 1\n"
            "class Base(metaclass=Meta):\n    @abc.abstractmethod\n    def run(self): ...",
            "class A(Base):\n    def run(self):\n        return 'ran'\n"
            "print(Meta.registry, Base.made, A.made, A().run())\n"
            "try:\n    Base()\nexcept TypeError as err:\n    print('abstract:', err)",
            "# plain\nprint(Meta.registry, Base.made, A.made, isinstance(A(), Base))"],
           ways=("plain", "all", "small", "kernel"))  # none: a class made there is a proxy


def test_pythons_own_records_come_back_as_themselves_every_way(parity):
    # hunt 24 H24-7: `sys.version_info` (a real notebook's cell) could not come back: pickle
    # made the receiver call the object sys.version_info, a note said it stayed remote, and
    # the name (and `_`) was a proxy; under none such a record was a proxy too
    parity(["import sys, time, os\nsys.version_info",
            "v = sys.version_info\nfi = sys.float_info\nfl = sys.flags\n"
            "st = time.gmtime(0)\nsr = os.stat('.')\nprint(v >= (3, 8), fi.dig)",
            "# plain\nprint(v.major, v >= (3, 8), type(v).__name__, type(_).__name__, "
            "v is sys.version_info, fi is sys.float_info, fl is sys.flags, st.tm_year, "
            "type(st).__name__, type(sr).__name__, sr.st_mode == os.stat('.').st_mode)",
            "del v, fi, fl, st, sr"])


def test_attributes_a_remote_cell_sets_on_a_partial_reach_the_notebooks_partial(parity):
    # hunt 24 H24-5: a partial's attributes (`__name__`, which pandas names a column by) were
    # lost: the notebook's partial took the new state, then cleared it with its old dict
    parity(["# plain\nimport functools\ndef power(base, exp):\n    return base ** exp\n"
            "square = functools.partial(power, exp=2)\nfs = [square]",
            "square.__name__ = 'square'\nsquare.calls = 0\nsquare.keywords['exp'] = 3\n"
            "print(square.__name__, square(2))",
            "# plain\nprint(getattr(square, '__name__', None), getattr(square, 'calls', None), "
            "square(2), fs[0] is square)"], shared=[("fs[0]", "square")])


def test_equal_objects_put_in_another_order_remotely_keep_their_names_every_way(parity):
    # hunt 24 H24-6: a cell that only rotated a list of empty queues, a deque of workers in one
    # state, swapped two equal dict values or put an equal copy in a list's place pickled as
    # before, so it seemed unchanged: the notebook kept the old order, and a later change
    # through another name showed at the wrong place
    parity(["# plain\nfrom collections import deque\nqueues = [[], [], []]\nfirst = queues[0]\n"
            "class Worker:\n    def __init__(self):\n        self.jobs = 0\n"
            "    def __repr__(self):\n        return f'W{self.jobs}'\n"
            "ws = deque([Worker(), Worker()])\nw0 = ws[0]\nobjs = {'p': [], 'q': []}\n"
            "p = objs['p']\nrows = [{'a': 1}, {'a': 2}]\nr0 = rows[0]",
            "queues.append(queues.pop(0))\nws.rotate(1)\n"
            "objs['p'], objs['q'] = objs['q'], objs['p']\nrows[0] = dict(rows[0])",
            "# plain\nfirst.append('job')\nw0.jobs += 1\np.append(1)\nr0['a'] = 99\n"
            "print(queues, [w.jobs for w in ws], objs, rows)"],
           shared=[("queues[2]", "first"), ("ws[1]", "w0"), ("objs['q']", "p")])


def test_changes_through_a_comprehensions_items_reach_the_notebooks_objects(parity):
    # hunt 24 H24-9: a comprehension gave the analysis no source, so a change through what it
    # bound (`by_name['a'].score = 5`) was lost under none, where the new name stays remote
    parity(["# plain\nclass Player:\n    def __init__(self, name):\n        self.name = name\n"
            "        self.score = 0\n    def __repr__(self):\n"
            "        return f'{self.name}:{self.score}'\n"
            "players = [Player('a'), Player('b')]\npa = players[0]\nrows = [[1], [2]]\nr0 = rows[0]",
            "by_name = {p.name: p for p in players}\nby_name['a'].score = 5\n"
            "for q in (p for p in players if p.name == 'b'):\n    q.score += 1\n"
            "copy_rows = [r for r in rows]\ncopy_rows[0].append(9)",
            "# plain\nprint(pa.score, players, r0, rows)", "del by_name, copy_rows"],
           shared=[("players[0]", "pa"), ("rows[0]", "r0")])


def test_fields_a_remote_cell_renames_are_renamed_in_the_notebooks_array(parity):
    # hunt 24 H24-4: the array went back as "the notebook's, with these values", its dtype
    # told by `dtype.str`, which leaves a structured dtype's field names out: they stayed
    parity(["# plain\nimport numpy as np\nrec = np.zeros(2, dtype=[('x', 'i4'), ('y', 'f8')])\n"
            "keep = [rec]",
            "rec.dtype.names = ('u', 'v')\nrec['u'][0] = 7\nprint(rec.dtype.names)",
            "# plain\nprint(keep[0].dtype.names, rec['u'], keep[0] is rec)"],
           shared=[("keep[0]", "rec")])


def test_a_functions_name_and_doc_a_remote_cell_sets_reach_the_notebooks_function(parity):
    # hunt 24 H24-11: what a cell sets on a function outside its __dict__ (a decorator written
    # by hand, "functions are objects" lessons) was lost: not in its digest, nor sent back
    parity(["# plain\ndef f(x):\n    return x\ndef f2(x):\n    return x\nf2.calls = 0\nfs = [f]",
            "f.__doc__ = 'documented'\nf.__name__ = 'renamed'\nf.__qualname__ = 'Q.renamed'\n"
            "f.__annotations__ = {'x': int}\nf.__module__ = 'mymod'\nf2.__doc__ = 'doc2'\n"
            "print(f.__name__)",
            "# plain\nprint(f.__doc__, f.__name__, f.__qualname__, f.__annotations__, "
            "f.__module__, f2.__doc__, fs[0] is f)"])


def test_a_list_changed_through_a_partial_or_a_bound_method_comes_back(parity):
    # hunt 24 H24-2's third shape: `p = partial(add, lst)` or `bound = box.items.append`
    # called by the cell, which also reads the list: the change went back as the unchanged
    # list (only lists, dicts and objects' attributes were looked through for it)
    parity(["# plain\nimport functools\nlst = []\ndef add(target, x):\n    target.append(x)\n"
            "p = functools.partial(add, lst)\nclass Box:\n    def __init__(self, items):\n"
            "        self.items = items\nshared = []\nbox = Box(shared)\n"
            "bound = box.items.append",
            "p(1)\nfirst = lst[0]\nbound(2)\nn = shared[0]",
            "# plain\nprint(lst, shared, box.items is shared, p.args[0] is lst)"],
           shared=[("p.args[0]", "lst"), ("box.items", "shared"), ("bound.__self__", "shared")])


def test_attributes_of_an_immutable_values_subclass_object_change_in_place(parity):
    # hunt 24 H24-12: an attribute a remote cell set on an object of a frozenset subclass was
    # lost (not watched), and on a named tuple's or date's subclass, or an exception, the name
    # was bound anew, its other holders keeping the old object
    parity(["# plain\nimport collections, datetime\nclass FS(frozenset):\n    pass\n"
            "P = collections.namedtuple('P', 'x y')\nclass P2(P):\n    pass\n"
            "class When(datetime.date):\n    pass\nfs = FS({1})\nfs.tag = 'old'\n"
            "p = P2(1, 2)\np.note = 'old'\nw = When(2020, 1, 1)\nw.note = 'old'\n"
            "holder = [fs, p, w]",
            "fs.tag = 'new'\np.note = 'new'\nw.note = 'new'",
            "# plain\nclass AppError(Exception):\n    def __init__(self, msg, code):\n"
            "        super().__init__(msg)\n        self.code = code\n"
            "        self.handled = False\nerr = AppError('boom', 7)\nerrs = [err]",
            "err.handled = True",
            "# plain\nprint(fs.tag, p.note, w.note, [holder[0].tag, holder[1].note, "
            "holder[2].note], err.handled, errs[0].handled)"],
           shared=[("holder[0]", "fs"), ("holder[1]", "p"), ("holder[2]", "w"), ("errs[0]", "err")])


def test_asarray_of_an_array_with_its_own_dtype_is_the_array_every_way(parity):
    # hunt 24 H24-14 (a real notebook's "asarray makes no copy" check): a received array had
    # an unpickled dtype object, not numpy's own, so np.asarray(a, dtype=np.float32) was a view
    parity(["# plain\nimport numpy as np\na = np.array([1.5, -3], dtype=np.float32)\n"
            "m = np.arange(6.0).reshape(2, 3)",
            "b = np.asarray(a, dtype=np.float32)\nv = np.asarray(m, dtype=float)\n"
            "print(b is a, v is m, a.dtype is np.dtype(np.float32))", "del b, v"])


def test_a_random_subclass_with_its_own_state_crosses_whole_every_way(parity):
    # hunt 24 H24-13 (a textbook OOP example): Random's own reduction calls __init__ with no
    # arguments (`Die(seed)` could not be sent) and leaves attributes out (its roll count was
    # wiped, in the notebook too)
    parity(["# plain\nimport random\nclass Die(random.Random):\n    def __init__(self, seed):\n"
            "        super().__init__(seed)\n        self.rolls = 0\n    def roll(self):\n"
            "        self.rolls += 1\n        return self.randint(1, 6)\n"
            "die = Die(7)\ndice = [die]\nprint(die.roll())",
            "r = die.roll()\nprint(r, die.rolls)",
            "# plain\nprint(die.roll(), die.rolls, dice[0] is die)"], shared=[("dice[0]", "die")])


def test_a_cached_property_computed_remotely_stays_computed(parity):
    # hunt 9: reading a cached_property remotely stored it on the engine's copy only: each
    # remote cell computed it again (and printed again)
    traces = parity(["from functools import cached_property\nclass Area:\n    def __init__(self, s):\n"
                     "        self.s = s\n    @cached_property\n    def area(self):\n"
                     "        print('computing')\n        return self.s ** 2\nsq = Area(3)",
                     "sq.area", "sq.area", "'area' in vars(sq)"])
    cells = traces["plain"].cells
    assert cells[1].stdout == "computing\n" and cells[2].stdout == ""


def test_an_iterator_moved_on_by_a_loop_keeps_its_place(parity):
    # hunt 9, silent: `for v in cit: break` over an iterator of a notebook class lost its
    # position (and a list iterator likewise)
    traces = parity([
        "class Count:\n    def __init__(self):\n        self.cur = 0\n    def __iter__(self):\n"
        "        return self\n    def __next__(self):\n        self.cur += 1\n        return self.cur\n"
        "cit = Count()\nit = iter([1, 2, 3])",
        "for v in cit:\n    if v == 2:\n        break", "for v in it:\n    break", "cit.cur, next(it)",
        "del it  # (the harness compares a list iterator by identity only)"])
    assert traces["plain"].cells[3].result == "text: (2, 2)"


def test_a_name_held_by_a_variable_or_an_attribute_stays_interned(parity):
    """CPython interns the names in code, and code compares them with ``is``: aima-python's
    unifier (``x.op is y.op``) found no match once a knowledge base had crossed, as pickle makes
    plain copies of strings (hunt 12 C5). A name bound to a variable or held by an object's
    attribute stays interned both ways; one a remote cell changed and sent back too."""
    parity(["class E:\n    def __init__(self, op):\n        self.op = op\n        self.n = 0\n"
            "e = E('Enemy')\nop = 'Hostile'",
            "f = E('Enemy')\ng = E('Hostile')\nprint(e.op is f.op, op is g.op)",
            "e.n += 1\nprint(e.op is E('Enemy').op)",
            "print(f.op is E('Enemy').op, g.op is op, e.op is E('Enemy').op, e.n)",
            "made = ''.join(['En', 'emy'])\nh = E(made)",
            "print(h.op == 'Enemy')"])


def test_an_array_and_a_view_of_it_inside_one_object_stay_one_memory(parity):
    """Hunt 13 C4 (silent data loss; ThinkComplexity2's cells holding an array and a row of
    it): an object holding an array and a view of it crossed as two arrays, so a change
    through the view did not reach the array, and the view's stale copy, written back,
    undid the change a remote cell made to that row. A view bound to a name whose array an
    object holds (``r = w.array[0]``) is its view too."""
    parity(["import numpy as np\nclass World:\n    def __init__(self):\n"
            "        self.array = np.zeros((3, 3), int)\n        self.row = self.array[0]\n"
            "w = World()\nd = {'a': np.zeros((3, 3), int)}\nd['r'] = d['a'][0]\n"
            "r = w.array[1]",
            "w.row[:] = 5\nr[:] = 7\nprint(w.array[:2])",
            "w.array += 1\nd['a'] += 1",
            "print(w.array, w.row, d['a'][0], d['r'], r)",
            "print(np.shares_memory(w.row, w.array), np.shares_memory(d['r'], d['a']))"])


def test_a_namespace_or_a_counter_a_remote_cell_changes_is_the_notebooks_own_after(parity):
    """Hunt 13 C3 (silent): a ``types.SimpleNamespace``, an ``itertools.count`` and an
    ``io.StringIO`` that a remote cell changed came back as new objects, so another holder
    (``model.cfg``, a dict holding the id counter, a logger's stream) kept the old one, and the
    counter handed out duplicates."""
    parity(["import io, itertools, types\ncfg = types.SimpleNamespace(lr=0.5)\n"
            "class Model:\n    def __init__(self, cfg):\n        self.cfg = cfg\n"
            "model = Model(cfg)\nids = itertools.count(10)\nholder = {'ids': ids}\n"
            "buf = io.StringIO()\nlog = {'out': buf}",
            "cfg.epochs = 1\nnext(ids)\nbuf.write('one\\n')",
            "print('two', file=log['out'])\n"
            "print(model.cfg is cfg, holder['ids'] is ids, model.cfg.epochs, next(holder['ids']),\n"
            "      log['out'] is buf, repr(buf.getvalue()))"],
           ways=("plain", "all", "small"))


def test_a_class_made_under_another_name_changes_the_notebooks_class(parity):
    """Hunt 13 C5 (silent): a notebook class whose ``__init__`` counts and registers its
    instances, made in a remote cell through a subclass the cell defines or through a
    variable, came back unchanged (only ``Base('b')`` itself was seen to change it)."""
    parity(["class Base:\n    count = 0\n    registry = []\n    def __init__(self, name):\n"
            "        self.name = name\n        Base.count += 1\n        Base.registry.append(name)",
            "class Sub(Base):\n    pass\ns = Sub('a')",
            "objs = [cls('c') for cls in [Base]]",
            "print(Base.count, Base.registry, isinstance(s, Base))"],
           ways=("plain", "all", "small", "kernel"))


def test_a_class_holding_a_lock_or_a_weak_cache_can_be_used_remotely(parity):
    """Hunt 13 C7 (loud): a notebook class with a lock guarding its instances, or an interning
    cache (a ``WeakValueDictionary``) as a class attribute, could not be used by any remote
    cell: its class goes by value, and no pickle takes a lock or a weak reference. Now a lock
    crosses as a new one of its kind, a weak mapping with its live items."""
    parity(["import threading, weakref\nclass Counter:\n    _lock = threading.Lock()\n"
            "    def __init__(self):\n        self.n = 0\n    def inc(self):\n"
            "        with self._lock:\n            self.n += 1\nc = Counter()\n"
            "class Interned:\n    _cache = weakref.WeakValueDictionary()\n"
            "    def __new__(cls, name):\n        obj = cls._cache.get(name)\n"
            "        if obj is None:\n            obj = super().__new__(cls)\n"
            "            obj.name = name\n            cls._cache[name] = obj\n        return obj\n"
            "a = Interned('a')",
            "c.inc()\nprint(c.n)",
            "b = Interned('b')\nprint(b.name, Interned('a') is a)",
            "print(c.n, b.name, Interned('b') is b, type(Counter._lock).__name__)"],
           ways=("plain", "all", "small", "kernel"))


def test_a_long_linked_list_crosses_both_ways(parity):
    """Hunt 13 C1 (loud): pickle recurses once per link, so a linked list of a few hundred
    nodes (DSIRP's linked lists and deques) could not go to the engine (excessively deep
    recursion), nor come back. It is pickled again on a thread with a deep stack."""
    parity(["class Node:\n    def __init__(self, v, nxt=None):\n        self.v, self.next = v, nxt\n"
            "def make(n):\n    head = None\n    for i in range(n):\n        head = Node(i, head)\n"
            "    return head\ndef length(node):\n    n = 0\n    while node is not None:\n"
            "        n, node = n + 1, node.next\n    return n\nhead = make(5000)",
            "tail = head.next\nhead.v = -1\nmade = make(4000)\nprint(length(head), length(made))",
            "print(length(head), length(made), head.v, tail is head.next)"],
           ways=("plain", "all", "small", "none"))


def test_a_subclass_a_remote_cell_defines_is_the_one_its_base_registered(parity):
    """Hunt 13 R1 (silent, a regression of the C5 fix): a base class registering its
    subclasses in ``__init_subclass__``; a remote cell defines one. The base changed, and came
    back after the subclass, whose bases held the base's state holding the subclass again:
    the registry held a second copy, so ``registry['CSV']()`` made objects that were not
    ``isinstance(..., CSV)``."""
    parity(["class Plugin:\n    registry = {}\n    def __init_subclass__(cls, **kw):\n"
            "        super().__init_subclass__(**kw)\n        Plugin.registry[cls.__name__] = cls",
            "class CSV(Plugin):\n    pass",
            "print(sorted(Plugin.registry), Plugin.registry['CSV'] is CSV,\n"
            "      isinstance(Plugin.registry['CSV'](), CSV))"],
           ways=("plain", "all", "small", "kernel"))



def test_compile_time_warnings_show_as_often_as_in_ipythons_own_shell(shell, target):
    """IPython's own shell (a terminal's) compiles a cell as ``<>`` once before it runs it,
    asking whether it awaits, and that compile shows the compiler's warnings; a remote cell
    showed only the engine's own compile's lines. (The cell file's name differs here, the test
    shell naming it by the raw cell: test_differential compares whole texts under ipykernel.)"""
    # the same text run again warns again as often (the count starts over each cell)
    cells = ["x = 'ab'\nif x is 'ab':\n    print('same')", "assert (x, 'never empty')\ny = 1",
             "assert (x, 'never empty')\ny = 1"]

    def asked(trace) -> list[list[str]]:
        return [[line for line in cell.stderr.splitlines() if line.startswith("<>:")]
                for cell in trace.cells]

    plain = asked(run_shell(shell, cells, "plain"))
    assert [len(lines) for lines in plain] == [1, 1, 1]
    assert plain[0][0].startswith('<>:2: SyntaxWarning: "is" with')  # 3.12: with 'str' literal
    assert plain[1][0].startswith("<>:1: SyntaxWarning: assertion is always true")
    for way in ("all", "none"):
        assert asked(run_shell(shell, cells, way, target.name)) == plain, way


def test_a_first_attribute_set_on_a_function_comes_back(parity):
    """Hunt 14 C1 (silent; ModSimPy's run_solve_ivp sets ``event_func.terminal = True`` on the
    notebook's event function): a function with no attributes, closure or changeable default
    was not watched, so an attribute a remote cell gave it was lost."""
    parity(["def event_func(t, y):\n    return y",
            "def run_solve(event, direction=0):\n    if not hasattr(event, 'terminal'):\n"
            "        event.terminal = True\n    run_solve.calls = 1\n    return event.terminal",
            "run_solve(event_func)",
            "getattr(event_func, 'terminal', 'missing'), getattr(run_solve, 'calls', 'missing')",
            "def later():\n    pass\nlater.__defaults__ = ()\nevent_func.__defaults__ = (1,)",
            "event_func.__defaults__"])


def test_an_array_in_a_permuted_axis_order_crosses(parity):
    """Hunt 18 C12 (statsmodels' ARIMA results): numpy 2.4 pickles an array contiguous in a
    permuted axis order with one more argument, which our rebuild did not pass on: an object
    holding one, changed remotely, stayed remote as a proxy ("cannot be unpickled")."""
    parity(["# plain\nimport numpy as np\nclass Holder:\n    pass\nh = Holder()\n"
            "h.t = np.arange(24.).reshape(2, 3, 4).transpose(1, 0, 2)",
            "h.n = 1\nt2 = np.arange(60.).reshape(3, 4, 5).transpose(2, 0, 1)",
            "# plain\nprint(type(h).__name__, h.n, h.t.strides, t2.strides, t2[1, 2, 3])"])


def test_a_small_array_that_crossed_owns_its_memory(parity):
    """Hunt 14 C4 (loud; the Kalman book's arrays): an array rebuilt over a received buffer did
    not own its memory, so ``arr.resize(12)`` raised "cannot resize this array: it does not own
    its data", and a view the cell made of it had another ``base``."""
    parity(["import numpy as np\narr = np.arange(10.)\nview = arr[2:5]\ngrown = np.arange(4.)",
            "arr.flags.owndata, arr.flags.writeable, view.base is arr",
            "grown.resize(6, refcheck=False)\ngrown",
            "m = np.ones((3, 4), order='F')\nm.flags.f_contiguous, m.flags.owndata"],
           # not in ``kernel``: the harness brings its names in a pickle of its own, where a
           # view goes as a copy (the cells' own answers there are compared all the same)
           shared=[("view.base", "arr")], ways=("plain", "all", "small", "none"))


def test_an_index_two_pandas_objects_share_keeps_a_name_set_through_one(parity):
    """Hunt 14 C5 (silent; ModSimPy's TimeSeries names its index): pandas objects share an Index
    (``b = a * 2``); a remote ``a.index.name = 'Time'`` gave ``a`` a new Index and left ``b``'s
    without the name. (Not under ``none``: a changed object stays remote there.)"""
    parity(["import pandas as pd\na = pd.Series([1.0, 2.0, 3.0])\nb = a * 2",
            "a.index.name = 'Time'",
            "a.index is b.index, b.index.name",
            "frame = pd.DataFrame({'x': [1, 2]})\ncolumns = frame.columns",
            "frame.columns.names = ['what']\nframe['y'] = 3"],
           shared=[("a.index", "b.index")], ways=("plain", "all", "small", "kernel"))


def test_a_class_of_another_metaclass_a_remote_cell_changes_comes_back(parity):
    """Hunt 14 C11 (silent): a notebook class with a metaclass of its own, a Protocol or an Enum
    was taken for one that cannot change, and a remote cell's ``Model.registry.append('a')``,
    ``Model.count = 5`` were lost."""
    parity(["import enum\nfrom typing import Protocol\nclass Meta(type):\n    pass\n"
            "class Model(metaclass=Meta):\n    registry = []\n    count = 0\n"
            "class Sized(Protocol):\n    calls = 0\n    def size(self) -> int: ...\n"
            "class Color(enum.Enum):\n    RED = 1\nColor.hits = []",
            "Model.registry.append('a')\nModel.count = 5\nSized.calls = 3\nColor.hits.append(1)",
            "Model.registry, Model.count, Sized.calls, Color.hits, Color.RED is Color(1)"])


def test_a_masked_array_matrix_or_record_array_over_an_array_writes_into_it(parity):
    """A masked array, matrix or record array made over a notebook array without a copy, and
    written by a remote cell, came back with its own memory (hunt 16 C11): the write no longer
    reached the array it was made over, and later writes went only one way."""
    traces = parity(["import numpy as np\nx = np.arange(5.0)\n"
                     "m = np.ma.masked_array(x, mask=[0, 1, 0, 0, 0])\ny = np.arange(5.0)\n"
                     "M = np.asmatrix(y.reshape(1, 5))\n"
                     "s = np.zeros(3, dtype=[('a', float), ('b', int)])\n"
                     "rec = s.view(np.recarray)\n"
                     "class InfoArray(np.ndarray):\n    pass\n"
                     "info = x[1:].view(InfoArray)\ninfo.note = 'made here'",
                     "m[0] = 100\nM[0, 1] = 200\nrec.a[0] = 7.5\ninfo.note = 'changed'",
                     "print(x, y, s['a'], m.data[0], np.shares_memory(m.data, x), "
                     "np.shares_memory(M, y), info.note)",
                     "m[2] = -1\nprint(x[2], info[1], m, m.mask.tolist())",
                     "x[3] = 33\nprint(m[3], info[2], type(info).__name__)"],
                    ways=("plain", "all", "small", "none"))
    assert traces["plain"].cells[2].stdout == (
        "[100.   1.   2.   3.   4.] [  0. 200.   2.   3.   4.] [7.5 0.  0. ] 100.0 True True "
        "changed\n")
    assert traces["plain"].cells[4].stdout == "33.0 33.0 InfoArray\n"


def test_a_library_object_held_by_a_notebook_object_stays_one_object(parity):
    """A random generator or a deque held by a notebook object and by a name, changed by a
    remote cell through the holder (``sim.rng.random()``), came back as a second object (hunt
    17 C7): the notebook then drew every random number twice, and the log split in two."""
    traces = parity(["# plain\nimport numpy as np, collections\nclass Sim:\n"
                     "    def __init__(self, rng, log):\n        self.rng, self.log = rng, log\n"
                     "rng = np.random.default_rng(3)\nlog = collections.deque([1], maxlen=10)\n"
                     "tally = collections.Counter('ab')\nsim = Sim(rng, log)\nsim.tally = tally\n"
                     "import types\nclass Red:\n    def __init__(self, v=0):\n        self.v = v\n"
                     "    def __reduce__(self):\n        return (Red, (self.v,))\n"
                     "ns, red = types.SimpleNamespace(n=0), Red()\nsim.more = [ns, red]",
                     "x = sim.rng.random()\nsim.log.append(2)\nsim.tally['c'] += 1\n"
                     "sim.more[0].n += 1\nsim.more[1].v = 5",
                     "# plain\nprint(round(rng.random(), 6), round(sim.rng.random(), 6), sim.log, "
                     "tally['c'], ns.n, red.v)"],
                    shared=[("sim.rng", "rng"), ("sim.log", "log"), ("sim.tally", "tally"),
                            ("sim.more[0]", "ns"), ("sim.more[1]", "red")])
    first, second = traces["plain"].cells[2].stdout.split()[:2]
    assert first != second


def test_a_masked_array_inside_a_value_changed_remotely_stays_the_notebooks(parity):
    """A masked array held by a name and inside a notebook object, changed by a remote cell
    through the holder, came back as a second array (hunt 17 C7b): the name no longer saw the
    change. Its hard mask stays too. So do an array of numpy's ``StringDType`` and one of
    objects, which numpy pickles with a state (hunt 18 C13)."""
    parity(["# plain\nimport numpy as np\nclass Box:\n    pass\n"
            "mm = np.ma.masked_array([1., 2., 3.], mask=[0, 0, 1])\nmm.harden_mask()\n"
            "words = np.array(['a', 'bb'], dtype=np.dtypes.StringDType())\n"
            "things = np.array([[1], 'x'], dtype=object)\n"
            "box = Box()\nbox.items = {'mm': mm, 'words': words, 'things': things}",
            "it = box.items\nit['mm'][0] = 7.\nit['mm'][2] = 5.\nit['words'][0] = 'zz'\n"
            "it['things'][1] = 'y'",
            "# plain\nprint(mm, mm.hardmask, box.items['mm'] is mm, words, things)"],
           shared=[("box.items['mm']", "mm"), ("box.items['words']", "words"),
                   ("box.items['things']", "things")])


def test_numpy_bit_generators_and_seed_sequences_stay_shared_after_a_remote_draw(parity):
    """A second Generator over a generator's bit generator (``Generator(rng.bit_generator)``)
    and a SeedSequence held by a name and by a Generator: after a remote cell drew from and
    spawned from them, the notebook's ``bg`` and ``ss`` were copies (hunt 17 C7, C7c): the next
    plain ``rng.spawn(1)`` handed out a child stream that repeated an earlier one."""
    traces = parity(["# plain\nimport numpy as np\nss = np.random.SeedSequence(1234)\n"
                     "rng = np.random.default_rng(ss)\nbg = rng.bit_generator\n"
                     "other = np.random.Generator(bg)\nclass Sim:\n    pass\nsim = Sim()\n"
                     "sim.rng = np.random.default_rng(np.random.SeedSequence(7))",
                     "x = rng.random()\nkids = ss.spawn(2)\nkid_rngs = rng.spawn(2)\n"
                     "more = sim.rng.spawn(2)",
                     "# plain\nprint(rng.bit_generator is bg, rng.bit_generator.seed_seq is ss, "
                     "ss.n_children_spawned, other.random() == rng.random(), "
                     "rng.spawn(1)[0].integers(100), sim.rng.bit_generator.seed_seq."
                     "n_children_spawned)"],
                    shared=[("rng.bit_generator", "bg"), ("rng.bit_generator.seed_seq", "ss")])
    assert traces["plain"].cells[2].stdout.startswith("True True 4 False")


def test_what_an_objects_own_getstate_leaves_out_stays_after_a_remote_change(parity):
    """An object whose ``__getstate__`` leaves a lock and a generator out, and whose
    ``__setstate__`` makes them anew: changed by a remote cell, the notebook's object took the
    engine copy's new lock and ``None`` for the generator (hunt 17 C3)."""
    traces = parity(["# plain\nimport threading\nclass Holder:\n    def __init__(self):\n"
                     "        self.data = [1, 2, 3]\n        self.lock = threading.Lock()\n"
                     "        self.gen = (i for i in range(3))\n    def __getstate__(self):\n"
                     "        d = dict(self.__dict__)\n        del d['lock'], d['gen']\n"
                     "        return d\n    def __setstate__(self, d):\n"
                     "        self.__dict__.update(d)\n        self.lock = threading.Lock()\n"
                     "        self.gen = None\nh = Holder()\nlk = h.lock",
                     "h.data.append(4)",
                     "# plain\nprint(h.data, h.gen is not None, h.lock is lk, next(h.gen))"],
                    shared=[("h.lock", "lk")], ways=("plain", "all", "small"))
    assert traces["plain"].cells[2].stdout == "[1, 2, 3, 4] True True 0\n"


def test_an_object_picklable_by_a_copyreg_reducer_takes_a_remote_change(parity):
    """A class made picklable by ``copyreg.pickle(Conn, reducer)`` (it holds a lock the reducer
    leaves out): the engine lacked the registration, so its copy did not pickle there, and a
    change a remote cell made to it was silently dropped (hunt 17 C11)."""
    traces = parity(["# plain\nimport copyreg, threading\nclass Conn:\n"
                     "    def __init__(self, url):\n        self.url, self.hits = url, 0\n"
                     "        self.lock = threading.Lock()\ndef _rebuild(url, hits):\n"
                     "    c = Conn(url)\n    c.hits = hits\n    return c\n"
                     "reducer = lambda c: (_rebuild, (c.url, c.hits))\n"
                     "copyreg.pickle(Conn, reducer)\nc = Conn('db://x')",
                     "c.hits += 1\nprint(c.url, c.hits)",
                     "# plain\nprint(c.hits, copyreg.dispatch_table[Conn] is reducer)"],
                    ways=("plain", "all", "small", "none"))
    assert traces["plain"].cells[2].stdout == "1 True\n"


def test_the_last_error_is_in_sys_for_a_remote_cell_as_for_a_plain_one(parity):
    """``sys.last_value`` / ``last_type`` (what ``%tb``, ``%debug`` and ``pdb.pm()`` read) did not
    exist in a remote cell, after a plain cell's error or its own (hunt 17 C5)."""
    traces = parity(["1 / 0", "import sys\nprint(type(sys.last_value).__name__)",
                     "# plain\nint('x')",
                     "import sys\nprint(type(sys.last_value).__name__, sys.last_type.__name__)"],
                    ways=("plain", "all", "small", "none"))
    assert traces["plain"].cells[3].stdout == "ValueError ValueError\n"


def test_a_class_made_remotely_is_registered_once_by_a_notebook_metaclass_or_base(parity):
    """A class a remote cell defines, whose metaclass or base's ``__init_subclass__`` adds it to
    a notebook list (a plugin registry), was listed twice: the list came back with it, then
    rebuilding the class here added it again (hunt 17 C6)."""
    traces = parity(["# plain\nclass Meta(type):\n    made = []\n"
                     "    def __new__(mcls, name, bases, ns):\n"
                     "        c = super().__new__(mcls, name, bases, ns)\n"
                     "        mcls.made.append(name)\n        return c\nclass Plugin:\n"
                     "    subclasses = []\n    def __init_subclass__(cls, **kw):\n"
                     "        super().__init_subclass__(**kw)\n"
                     "        Plugin.subclasses.append(cls.__name__)",
                     "class M1(metaclass=Meta):\n    pass\nclass B(Plugin):\n    pass",
                     "# plain\nprint(Meta.made, Plugin.subclasses)"],
                    ways=("plain", "all", "small", "none"))
    assert traces["plain"].cells[2].stdout == "['M1'] ['B']\n"


def test_a_dict_whose_attributes_are_its_items_stays_so(parity):
    """The "AttrDict" of configs (``self.__dict__ = self``): pickle gave it a ``__dict__`` of its
    own, so a remote ``cfg.lr = 0.1`` did not change ``cfg['lr']`` (hunt 17 C16)."""
    traces = parity(["# plain\nclass AttrDict(dict):\n    def __init__(self, *a, **k):\n"
                     "        super().__init__(*a, **k)\n        self.__dict__ = self\n"
                     "cfg = AttrDict(lr=0.01)",
                     "cfg.lr = 0.1\ncfg['epochs'] = 3\nprint(cfg.lr, cfg['lr'])",
                     "# plain\nprint(cfg.lr, cfg['lr'], cfg.epochs, cfg.__dict__ is cfg)",
                     "c2 = AttrDict(a=1)\nc2.b = 2",
                     "# plain\nc2.z = 9\nprint(c2.__dict__ is c2, c2['b'], c2['z'])"],
                    ways=("plain", "all", "small"))  # (under none c2 is a proxy: its own dict)
    assert traces["plain"].cells[1].stdout == "0.1 0.1\n"
    assert traces["plain"].cells[4].stdout == "True 2 9\n"


def test_the_borg_idioms_shared_state_stays_shared_by_every_instance(parity):
    """The Borg idiom (``self.__dict__ = self._shared``, by ``__init__`` or ``__new__``, or a
    global dict): pickle gave each instance a ``__dict__`` of its own, so a remote ``b = Borg();
    b.mode = 'slow'`` left ``a.mode`` alone, and ``b`` came back apart from ``Borg._shared``
    (hunt 17 C16). A class sent again keeps its dict's object there too (an instance the engine
    holds stays in it)."""
    traces = parity(["# plain\nclass Borg:\n    _shared = {}\n    def __init__(self):\n"
                     "        self.__dict__ = self._shared\nclass Borg2:\n    _state = {}\n"
                     "    def __new__(cls, *args):\n        obj = super().__new__(cls)\n"
                     "        obj.__dict__ = cls._state\n        return obj\n"
                     "common = {}\nclass Borg3:\n    def __init__(self):\n"
                     "        self.__dict__ = common\n"
                     "a = Borg()\na.mode = 'fast'\nholder = {'a': a, 'x': Borg2()}\nm = Borg3()\n"
                     "m.k = 1",
                     "b = Borg()\nb.mode = 'slow'\nprint(a.mode, b.mode)\na.level = 2\n"
                     "n = Borg3()\nn.k = 2\nprint(m.k)",
                     "holder['a'].mode = 'mid'\nholder['x'].v = 1",
                     "print(b.mode, b.__dict__ is Borg._shared, holder['a'].__dict__ is Borg._shared)",
                     "# plain\nc = Borg()\nprint(a.mode, c.mode, a.level, c.level, "
                     "a.__dict__ is Borg._shared, c.__dict__ is Borg._shared, holder['a'] is a, "
                     "Borg2().v, holder['x'].__dict__ is Borg2._state, m.k, Borg3().k, "
                     "m.__dict__ is common)"],
                    shared=[("a.__dict__", "Borg._shared"), ("b.__dict__", "Borg._shared"),
                            ("holder['x'].__dict__", "Borg2._state"), ("m.__dict__", "common"),
                            ("n.__dict__", "common")])
    assert traces["plain"].cells[1].stdout == "slow slow\n2\n"
    assert traces["plain"].cells[3].stdout == "mid True True\n"
    assert traces["plain"].cells[4].stdout == "mid mid 2 2 True True True 1 True 2 2 True\n"


def test_a_tree_of_dict_nodes_naming_their_parent_keeps_its_nodes(parity):
    """A tree of dict-subclass nodes whose children name their parent (``parent[name] = self``),
    changed by a remote cell: the notebook's nodes were updated in place only after the new
    nodes were built, and those were what the parents held, so ``root['a'] is a`` and ``b.parent
    is a`` no longer held; a list subclass so too."""
    traces = parity(["# plain\nclass Node(dict):\n    def __init__(self, name, parent=None):\n"
                     "        super().__init__()\n        self.name, self.parent = name, parent\n"
                     "        if parent is not None:\n            parent[name] = self\n"
                     "class Kids(list):\n    pass\n"
                     "root = Node('root')\na = Node('a', root)\nb = Node('b', a)\n"
                     "kids = Kids([a])\nkids.owner = root\nroot.kids = kids",
                     "Node('c', b)\nb.name = 'bee'\nkids.append(b)",
                     "a['b'].name = 'B'\nroot['a']['x'] = Node('x')\nroot.kids.owner = a",
                     "# plain\nprint(root['a'] is a, a['b'] is b, b.parent is a, b['c'].parent is b, "
                     "b.name, sorted(a), root.kids is kids, kids[1] is b, kids.owner is a)"],
                    shared=[("root['a']", "a"), ("a['b']", "b"), ("b.parent", "a"),
                            ("b['c'].parent", "b"), ("kids[0]", "a"), ("root.kids", "kids")])
    assert traces["plain"].cells[3].stdout == \
        "True True True True B ['b', 'x'] True True True\n"


def test_a_pil_images_pixel_access_and_draw_still_reach_it_after_a_remote_change(parity):
    """A PIL image changed in place by a remote cell took a new C core in the notebook, so a
    ``px = img.load()`` or ``ImageDraw.Draw(img)`` made plainly before no longer read or wrote
    it (hunt 17 C12); a palette image keeps its palette, one inside a list is the same image."""
    traces = parity(["# plain\nfrom PIL import Image, ImageDraw\nimg = Image.new('L', (4, 4), 0)\n"
                     "px = img.load()\ndraw = ImageDraw.Draw(img)\n"
                     "pal = Image.new('P', (2, 2), 1)\npal.putpalette([0, 0, 0, 9, 8, 7] * 128)\n"
                     "ppx = pal.load()\nframes = [img, pal]",
                     "img.putpixel((0, 0), 200)\nframes[1].putpixel((1, 1), 0)",
                     "# plain\nprint(img.getpixel((0, 0)), px[0, 0])\npx[2, 2] = 50\n"
                     "draw.point((3, 3), fill=77)\n"
                     "print(img.getpixel((2, 2)), img.getpixel((3, 3)), ppx[1, 1], ppx[0, 0], "
                     "pal.getpalette()[3:6], frames[1] is pal)"],
                    shared=[("frames[0]", "img"), ("frames[1]", "pal")],
                    ways=("plain", "all", "small", "none"))  # (px, draw: no pickle to compare)
    assert traces["plain"].cells[2].stdout == "200 200\n50 77 0 1 [9, 8, 7] True\n"


def test_a_change_through_a_second_name_for_a_notebook_object_comes_back(parity):
    """``it = box; it['l'].append(2)`` in a remote cell: ``box`` was not watched (the change
    went through another name), so it came back unchanged and the change was lost; under
    ``none`` ``it`` (and then ``box``) became a proxy of the engine's copy."""
    parity(["# plain\nimport numpy as np\ny = np.zeros(3)\nl = [1]\nbox = {'y': y, 'l': l}",
            "it = box\nit['y'][0] = 7.\nit['l'].append(2)",
            "# plain\nprint(y, l, box['y'] is y, it is box, type(box).__name__)"],
           shared=[("it", "box"), ("box['y']", "y"), ("box['l']", "l")])


def test_an_unevaluated_sympy_expression_stays_unevaluated(parity):
    """SymPy's pickle builds an expression anew, evaluated: ``Add(x, 0, evaluate=False)``,
    ``Eq(x, x, evaluate=False)`` and what ``with evaluate(False):`` built came back ``x`` and
    ``True``, and ``q.lhs`` then raised (hunt 17 C14; SymPy tutorials show steps so)."""
    traces = parity(["import sympy as sp\nx = sp.Symbol('x', positive=True)\n"
                     "a = sp.Add(x, 0, evaluate=False)\nq = sp.Eq(x, x, evaluate=False)\n"
                     "with sp.evaluate(False):\n    h = x + x\nm = sp.Mul(2, 3, evaluate=False)",
                     "print(sp.srepr(a), q.lhs, sp.srepr(h), sp.srepr(m))",
                     "e = (x + 1)**2\nprint(sp.expand(e), a.doit(), q.doit())"])
    assert traces["plain"].cells[1].stdout == (
        "Add(Symbol('x', positive=True), Integer(0)) x Add(Symbol('x', positive=True), "
        "Symbol('x', positive=True)) Mul(Integer(2), Integer(3))\n")



def test_a_submodule_a_plain_cell_imported_is_there_for_a_remote_cell(parity):
    """``import xml.dom.minidom`` in a plain cell, then ``xml.dom.minidom.parseString(...)`` in
    a remote one: the engine imported ``xml`` alone, so it raised AttributeError (hunt 17 C18,
    the cookbook's ``statsmodels.datasets.heart``)."""
    traces = parity(["# plain\nimport xml.dom.minidom\nimport email.mime.text",
                     "doc = xml.dom.minidom.parseString('<a><b/></a>')\n"
                     "print(doc.documentElement.tagName, "
                     "email.mime.text.MIMEText('hi').get_payload())"],
                    ways=("plain", "all", "small", "none"))
    assert traces["plain"].cells[1].stdout == "a hi\n"


def test_a_librarys_own_instance_inside_a_value_stays_the_librarys(parity):
    """A library's module-level instance inside a value a remote cell made (scipy's ``norm``,
    ``dataclasses.MISSING``, ``decimal.DefaultContext``) came back a copy: ``is`` tests and
    dicts keyed by it missed (hunt 17 C13)."""
    traces = parity(["import dataclasses, decimal\n"
                     "picked = [dataclasses.MISSING, decimal.DefaultContext, 3]",
                     "# plain\nimport dataclasses, decimal\n"
                     "print(picked[0] is dataclasses.MISSING, picked[1] is decimal.DefaultContext,"
                     " {dataclasses.MISSING: 'unset'}.get(picked[0], 'MISS'))"],
                    ways=("plain", "all", "small"))  # (none: a part read through a proxy)
    assert traces["plain"].cells[1].stdout == "True True unset\n"


def test_a_change_through_one_name_comes_back_when_the_cell_also_returns_another_name_for_it(
        parity):
    """Hunt 19 H19-1: ``y = x`` in the notebook, then a remote cell ``x[0] = 1`` that also
    showed or bound ``y``: the object went back as the notebook's unchanged one (the name only
    read won), and the change was lost without a word."""
    parity(["# plain\nimport numpy as np\nx = np.zeros(3)\ny = x\nl = [1]\nm = l\nh = {}\ng = h\n"
            "grid = [[1], [2]]\nrow = grid[0]",
            "x[0] = 1\nl.append(2)\nh['y'] = 2\ngrid[0].append(9)\ny, m, g, row",
            "l.append(3)\nf = m",
            "# plain\nprint(x, y, l, m, h, g, f, grid, row)"],
           shared=[("x", "y"), ("l", "m"), ("h", "g"), ("f", "l"), ("row", "grid[0]")])


def test_augmented_assignment_through_a_loop_variable_or_an_alias_changes_the_object(parity):
    """Hunt 19 H19-2: ``for a in arrays: a += 5`` and ``q = x; q *= 2`` change the objects in
    place plainly; remotely the change was lost (all but the loop's last element, and ``q``
    came back as the notebook's unchanged ``x``)."""
    parity(["# plain\nimport numpy as np\narrays = [np.zeros(2), np.ones(2)]\n"
            "grid = [[1], [2]]\nx = np.arange(3.)\nl = [1]",
            "for a in arrays:\n    a += 5\nfor row in grid:\n    row += [0]\n"
            "q = x\nq *= 2\nr = l\nr += [2]",
            "# plain\nprint(arrays, grid, x, q, l, r)"],
           shared=[("q", "x"), ("r", "l"), ("a", "arrays[1]"), ("row", "grid[1]")])


def test_changes_through_a_literal_a_choice_or_an_unpacking_of_notebook_objects_come_back(
        parity):
    """Hunt 19 H19-10: ``for df in [train, test]: df['b'] = ...`` (feature engineering on
    both frames, in many Kaggle notebooks) lost the new column in both; so did a change through
    ``fill([l1, l2])``, ``left, right = la, lb``, ``cfg = user or defaults``, ``a if c else b``
    and ``(y := x)``, without a word."""
    parity(["# plain\nimport numpy as np\nimport pandas as pd\n"
            "train = pd.DataFrame({'a': [1, 2]})\ntest = pd.DataFrame({'a': [3]})\n"
            "A1, A2 = np.zeros(2), np.ones(2)\nl1, l2 = [1], [2]\nla, lb = [0], [0]\n"
            "user, defaults, d1 = {}, {'x': 1}, {}\nwl = [0]\n"
            "def fill(pair):\n    pair[0].append(9)",
            "for frame in [train, test]:\n    frame['b'] = frame['a'] * 2\n"
            "for arr in (A1, A2):\n    arr[0] = 5\nfill([l1, l2])\n"
            "left, right = la, lb\nright.append(7)\ncfg = user or defaults\ncfg['y'] = 2\n"
            "for k, dct in {'k': d1}.items():\n    dct['new'] = k\n"
            "pick = l1 if len(l1) > 5 else l2\npick.append(3)\n(w := A1)[1] = 4\n"
            "(v := wl)[0] = 6",
            "# plain\nprint(list(train.columns), list(test.columns), A1, A2, l1, l2, la, lb, "
            "user, defaults, d1, wl)"])


def test_the_notebooks_object_shown_by_a_cell_is_its_own_result(parity):
    """Hunt 19 H19-16: under none, ``x.append(3); x`` showed the value, but ``_`` was a proxy
    of the engine's copy: ``_ is x`` was False and ``_.append(4)`` changed the copy."""
    parity(["# plain\nx = [1, 2]", "x.append(3)\nx", "# plain\nprint(_ is x)\n_.append(4)\nx"])


def test_a_star_imports_objects_go_by_reference_in_a_cell_sent_every_name(parity):
    """Hunt 19 H19-11 (scientific-python-lectures, Lecture 5): after ``from sympy import *``,
    every remote cell sent every name (``%who_ls``, ``dir()``, an unknown magic) failed:
    ``sympy.test``, an object of a class local to a function, went by value and could not load
    there. It goes as ``sympy.test`` now, as a name the cell reads does."""
    parity(["# plain\nfrom sympy import *\nx = Symbol('x')", "%who_ls Symbol",
            "n = len(dir()) > 10\nn"])


def test_changes_through_globals_or_eval_of_a_name_come_back(parity):
    """Hunt 19 H19-12: ``globals()['la'].append(0)``, ``eval('xa').fill(3)`` and
    ``globals()[n].append(0)`` read the notebook's object but did not watch it: the change was
    lost."""
    parity(["# plain\nimport numpy as np\nla = [1]\nlb = [2]\nxa = np.zeros(2)",
            "globals()['la'].append(0)\neval('xa').fill(3)",
            "for n in ['lb']:\n    globals()[n].append(0)",
            "# plain\nprint(la, lb, xa)"])


def test_a_change_through_a_name_the_cell_then_rebinds_reaches_the_notebooks_object(parity):
    """Hunt 19 H19-24: ``current.append(1); current = []`` (flush a buffer, start a new one)
    with ``history = [current]`` in the notebook: the old buffer's change was lost, and so was
    ``x.append(2); x = [0]`` for ``y = x``, and ``Z -= Z.mean(); Z = Z / 2`` for ``box = [Z]``
    (H19-39). A name bound before it is changed is not watched
    (``df = df.dropna()``, ``for ...: x = []; x.append(i)``). Hunt 23 H23-1: a store into the
    object (``X[0] = 0``, ``s[2:] = 0``, ``o.v = 1``) then a new binding or ``del``: the
    store's target was taken for a binding of the name, and the change was lost."""
    parity(["# plain\nimport numpy as np\ncurrent = []\nhistory = [current]\nx = [1]\ny = x\n"
            "a = np.zeros(2)\nb = a\nZ = np.array([1., 2., 3.])\nbox = [Z]\n"
            "X = np.array([1., 2., 3.])\ndata = {'X': X}\ns = np.arange(6)\nview = s[2:]\n"
            "class O:\n    v = 0\no = O()\nkeep = o\nl = [1, 2, 3]\nother = l",
            "current.append(1)\ncurrent = []\nx.append(2); x = [0]\na[0] = 5\na = None\n"
            "Z -= Z.mean()\nZ = Z / 2\nX[0] = 0\nX = X / X.max()\ns[2:] = 0\ndel s\n"
            "o.v = 1\no = None\nl[0], l[1] = 9, 8\nl = None",
            "# plain\nprint(history, current, x, y, a, b, Z, box, data['X'], view, keep.v, other)"],
           shared=[("history[0] is not current", "True")])


def test_an_arrays_shape_or_dtype_set_remotely_is_set_on_the_notebooks_array(parity):
    """Hunt 23 H23-9: ``arr.shape = (3, 2)`` and ``arr2.dtype = np.int32`` in a remote cell
    bound the names to new arrays: the notebook's lists and dicts kept the old ones, with the
    old shape, and later changes went to one of them only."""
    parity(["# plain\nimport numpy as np\narr = np.arange(6)\nholder = [arr]\n"
            "arr2 = np.arange(4, dtype=np.int64)\nh2 = {'a': arr2}",
            "arr.shape = (3, 2)\narr2.dtype = np.int32",
            "# plain\nprint(holder[0].shape, arr.shape, h2['a'].dtype, h2['a'].shape)"],
           shared=[("holder[0] is arr", "True"), ("h2['a'] is arr2", "True")])


def test_changes_through_a_match_capture_or_a_conditional_receiver_come_back(parity):
    """Hunt 23 H23-8: a name a ``case`` pattern captured (``case Point(0, y) as s``, ``case
    [first, *rest]``, a mapping pattern's value) holds the subject or a part of it, and ``(a if
    flag else b).append(1)`` changes one of two objects, and an annotated name (``row: list =
    grid[1]``) holds a part as a plain one does: their changes were lost."""
    parity(["# plain\nclass Point:\n    __match_args__ = ('x', 'y')\n"
            "    def __init__(self, x, y):\n        self.x = x; self.y = y; self.tags = []\n"
            "shape = Point(0, 5)\nrows = [[1], [2]]\na = []\nb = []\nflag = True\n"
            "grid = [[1], [2]]\n"
            "d = {'pt': Point(0, 1)}",
            "match shape:\n    case Point(0, yy) as s:\n        s.tags.append('on-axis')\n"
            "match rows:\n    case [first, *rest]:\n        first.append(10)\n"
            "match d:\n    case {'pt': Point(x=0) as p}:\n        p.tags.append('in d')\n"
            "(a if flag else b).append(1)\nrow: list = grid[1]\nrow.append(20)",
            "# plain\nprint(shape.tags, rows, a, b, d['pt'].tags, grid)"])


def test_a_class_changed_after_its_objects_crossed_pickles_as_it_is_now(parity):
    """Hunt 23 H23-7: what the pickler found once about a class (its state is its
    ``__dict__``; it does not delegate with ``__getattr__``) was kept after a later cell gave
    it a ``__getstate__`` or a ``__getattr__``: the next remote cell could not unpickle its
    object ("intern() argument must be str, not None", RecursionError)."""
    parity(["# plain\nclass C:\n    def __init__(self):\n        self.v = 1\n"
            "        self.status = 'open'\nc = C()\nclass Inner:\n    def __init__(self):\n"
            "        self.size = 3\nclass Wrapper:\n    def __init__(self):\n"
            "        self.inner = Inner()\n        self.n = 0\nw = Wrapper()",
            "print(c.v)\nw.n += 1",
            "# plain\ndef _getstate(self):\n    s = dict(self.__dict__)\n    del s['status']\n"
            "    return s\ndef _setstate(self, s):\n    self.__dict__.update(s, status='open')\n"
            "C.__getstate__ = _getstate\nC.__setstate__ = _setstate\n"
            "def _ga(self, attr):\n    return getattr(self.inner, attr)\nWrapper.__getattr__ = _ga",
            "print(c.v, c.status)\nw.n += 1\nprint(w.size, w.n)",
            "# plain\nprint(c.v, w.n, w.size)"])


def test_a_proxys_card_runs_none_of_a_cells_len_or_properties(parity):
    """Hunt 23 H23-16: a proxy's card asked the object for its length, shape and dtype: a
    cell's ``__len__`` that counts and a ``shape`` property that loads ran for a value no cell
    looked at (under none, every value a cell binds is a proxy)."""
    parity(["# plain\nclass Lazy:\n    def __init__(self):\n        self.loads = 0\n"
            "        self.lens = 0\n        self.data = None\n    @property\n    def shape(self):\n"
            "        if self.data is None:\n            self.loads += 1\n"
            "            print('loading...')\n            self.data = list(range(10))\n"
            "        return (len(self.data),)\n    def __len__(self):\n        self.lens += 1\n"
            "        return 10",
            "ds = Lazy()",
            "# plain\nprint(ds.loads, ds.lens, ds.data is None)"])


def test_xdel_in_a_remote_cell_deletes_every_name_of_the_object(parity):
    """Hunt 23 H23-15: IPython's ``%xdel a`` deletes every name bound to ``a``'s object; a
    remote one deleted ``a`` alone (the other names were not sent), and the change the cell
    made before was lost with it; so was a change before ``del globals()['d']``."""
    parity(["# plain\narr_l = [5]\nkeep2 = arr_l\nother = [1]\nd = {'a': 1}\nkeep3 = d",
            "arr_l.append(6)\n%xdel arr_l",
            "# plain\nprint('keep2' in dir(), 'arr_l' in dir(), globals().get('keep2'), other)",
            "d['b'] = 2\ndel globals()['d']",  # changed, then deleted through globals()
            "# plain\nprint(keep3, 'd' in dir())"])


def test_run_cell_in_a_remote_cell_gives_its_result(parity):
    """Hunt 23 H23-18: ``get_ipython().run_cell('zz * 2')`` in a remote cell showed the value
    but its ``ExecutionResult.result`` was None: the engine's display hook took the value."""
    parity(["r = get_ipython().run_cell('zz = 5\\nzz * 2')\nprint(r.success, r.result)\n"
            "res = r.result\ndel r",
            "# plain\nprint(zz, res)"])


def test_what_a_notebook_classs_property_sets_when_read_remotely_stays(parity):
    """Hunt 19 H19-13: a property that loads into its object on first read (or counts its
    reads), read in a remote cell outside a call (``ds.data[0]``): the object's new state was
    lost, and the next plain read loaded again."""
    parity(["# plain\nclass Dataset:\n    def __init__(self):\n        self._data = None\n"
            "        self.reads = 0\n    @property\n    def data(self):\n"
            "        self.reads += 1\n        if self._data is None:\n"
            "            print('loading...')\n            self._data = [1, 2, 3]\n"
            "        return self._data\nds = Dataset()",
            "first = ds.data[0]", "# plain\nprint(ds.data[1], ds.reads)"])


def test_config_of_which_statements_show_holds_on_both_sides(parity):
    """Hunt 19 H19-20: ``%config InteractiveShell.ast_node_interactivity = 'all'`` in a remote
    cell configured only the engine: plain cells still showed their last value only."""
    try:
        parity(["%config InteractiveShell.ast_node_interactivity = 'all'", "# plain\n1\n2",
                "3\n4", "%config InteractiveShell.ast_node_interactivity = 'last_expr'",
                "# plain\n5\n6"])
    finally:
        from IPython import get_ipython
        get_ipython().ast_node_interactivity = "last_expr"


def test_what_a_notebook_objects_read_hooks_set_when_read_remotely_stays(parity):
    """Hunt 19 H19-29, H19-30: a notebook class's ``__getattr__`` that stores what it loads,
    a ``__getitem__`` that memoizes, a descriptor that caches into the object, and an
    ``__iter__`` that counts epochs and shuffles with the object's own generator: read or
    looped over by a remote cell, the objects' new state was lost."""
    parity(["# plain\nimport random\nclass Lazy:\n    def __getattr__(self, name):\n"
            "        if name.startswith('_'):\n            raise AttributeError(name)\n"
            "        print('loading', name)\n        setattr(self, name, name.upper())\n"
            "        return name.upper()\nclass Memo:\n    def __init__(self):\n"
            "        self.store = {}\n    def __getitem__(self, k):\n"
            "        if k not in self.store:\n            print('computing', k)\n"
            "            self.store[k] = k * k\n        return self.store[k]\n"
            "class lazy_attr:\n    def __init__(self, f):\n        self.f = f\n"
            "    def __get__(self, obj, kind):\n        value = obj.__dict__[self.f.__name__] = "
            "self.f(obj)\n        return value\nclass Model:\n    @lazy_attr\n"
            "    def weights(self):\n        print('computing weights')\n        return [1, 2]\n"
            "class Loader:\n    def __init__(self):\n        self.epoch = 0\n"
            "        self.rng = random.Random(0)\n    def __iter__(self):\n"
            "        self.epoch += 1\n        order = list(range(5))\n"
            "        self.rng.shuffle(order)\n        return iter(order)\n"
            "lz, mm, md, loader = Lazy(), Memo(), Model(), Loader()",
            "a = lz.alpha + '!'\nb = mm[4] + 1\nc = md.weights[0]\norder = [x for x in loader]\n"
            "for x in loader:\n    pass",
            "# plain\nprint(lz.alpha, mm[4], md.weights, loader.epoch, list(loader))"])


def test_the_conditions_decimal_arithmetic_met_are_flagged_on_both_sides(parity):
    """Hunt 21 H21-5: the decimal context's precision, rounding and traps crossed, its flags
    did not: ``flags[Inexact]`` after a division in a remote cell was still False here."""
    traces = parity(["# plain\nimport decimal\nfrom decimal import Decimal\n"
                     "decimal.getcontext().clear_flags()",
                     "x = Decimal(2) / 3",
                     "# plain\nctx = decimal.getcontext()\nprint(x, ctx.flags[decimal.Inexact], "
                     "ctx.flags[decimal.Rounded], ctx.flags[decimal.DivisionByZero])",
                     "ctx = decimal.getcontext()\nctx.clear_flags()\nprint(Decimal(1) / 4, "
                     "ctx.flags[decimal.Inexact])"])
    assert "True True False" in traces["plain"].cells[2].stdout


def test_a_read_only_view_of_a_mapping_still_shows_the_mapping_after_crossing(parity):
    """Hunt 21 H21-6: ``MappingProxyType(config)`` crossed as a view of a copy, so a remote
    cell's change to ``config`` did not show through it there."""
    parity(["from types import MappingProxyType\nconfig = {'a': 1}\nfrozen = MappingProxyType(config)",
            "config['b'] = 2\nprint(len(frozen), dict(frozen))",
            "view = MappingProxyType(config)\nconfig['c'] = 3\nprint(dict(view))",
            "# plain\nconfig['d'] = 4\nprint(dict(frozen), dict(view))"])


def test_a_named_tuple_of_a_class_an_earlier_none_cell_made_comes_back(parity):
    """Hunt 21 H21-1 (ThinkPython chap17): under none, ``p = Point(1, 2)`` of a namedtuple
    class an earlier none cell made came back by value (a short named tuple does) with its
    class as the notebook's, a proxy: it did not unpickle, stayed remote, and two notes said
    so. Its class goes by value, as when one cell makes both (hunt 19 H19-3)."""
    parity(["from collections import namedtuple\nPoint = namedtuple('Point', ['x', 'y'])",
            "p = Point(1, 2)\np", "q = (Point(3, 4), 5)\nprint(p.x + q[0].y, p._asdict())",
            "# plain\nprint(type(p).__name__, isinstance(p, tuple), p._replace(x=0), q[0].y)"])


def test_arrays_broadcast_arrays_made_cross_without_a_warning_of_ours(parity):
    """Hunt 21 H21-7 (handson-ml3's 3-D plots): reading ``flags.writeable`` of an array
    ``np.broadcast_arrays`` made warns (a FutureWarning); our pickler read it, so a remote
    cell printed a warning from our code, where a plain one prints nothing."""
    parity(["import warnings\nwarnings.simplefilter('always')\nimport numpy as np",
            "bx, by = np.broadcast_arrays(np.arange(3.), np.zeros((2, 1)))\nprint(bx.shape)",
            "print(bx.sum(), by.strides)"])


def test_a_figure_a_remote_cell_changed_keeps_its_callbacks(parity):
    """Hunt 21 H21-10: a remote cell's ``ax.set_title('t')`` brought the figure back into the
    notebook's objects with their callbacks as matplotlib pickles them, without the
    connections it cannot pickle: a colorbar made plainly stopped following its image, and a
    handler connected to the axes was never called again."""
    parity(["# plain\nimport matplotlib.pyplot as plt, numpy as np\nfig, ax = plt.subplots()\n"
            "im = ax.imshow(np.arange(16.).reshape(4, 4) / 16)\ncb = fig.colorbar(im)\n"
            "calls = []\ncid = ax.callbacks.connect('xlim_changed', lambda a: calls.append(1))\n"
            "plt.close(fig)",
            "ax.set_title('t')",
            "# plain\nim.set_clim(0, 0.5)\nfig.canvas.draw()\nprint('colorbar', cb.vmin, cb.vmax)\n"
            "n = len(calls)\nax.set_xlim(0, 2)\nprint('fired', len(calls) - n)\n"
            "del im, cb  # (compared by identity after the run: each way made its own)"])


def test_an_object_a_remote_cell_left_without_attributes_has_none_here(parity):
    """Hunt 21 H21-13: with no attribute left (``del e.z`` of its last, ``e.__dict__.clear()``,
    every slot deleted), pickle gives an object no state, and the notebook's object kept
    every attribute it had."""
    parity(["# plain\nclass O:\n    pass\nclass S:\n    __slots__ = ('a', 'b')\n"
            "e5 = O()\ne5.z = 1\ne6 = O()\ne6.a = 1\ne6.b = 2\nbox = [e5, e6]\ns = S()\ns.a = 1",
            "del e5.z", "e6.__dict__.clear()", "del s.a",
            "# plain\nprint(vars(e5), vars(e6), box[0] is e5, vars(box[1]), hasattr(s, 'a'))"])


def test_a_notebook_functions_pandas_strings_find_its_globals_remotely(parity):
    """Hunt 21 H21-15: ``frame.query('a > @lim')`` and ``pd.eval('x * 2')`` in a notebook
    function called by a remote cell raised UndefinedVariableError: pandas looks those names
    up in the function's globals, and they were not sent (not in its code's names)."""
    parity(["# plain\nimport pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3, 4]})\nlim = 2\n"
            "x = pd.Series([1, 2])\ndef big_rows(frame):\n    return frame.query('a > @lim').a.tolist()\n"
            "def doubled():\n    return pd.eval('x * 2').tolist()",
            "print(big_rows(df))", "print(doubled())"])


def test_a_weak_reference_crosses_to_the_object_that_crossed(parity):
    # hunt 22 H22-10: a tree node's `weakref.ref(parent)` could not be sent ("cannot pickle
    # 'weakref.ReferenceType'"); it points at the parent that crossed with it, both ways
    parity(["import weakref\nclass Node:\n    def __init__(self, name, parent=None):\n"
            "        self.name = name\n        self.children = []\n"
            "        self._parent = weakref.ref(parent) if parent is not None else None\n"
            "        if parent is not None:\n            parent.children.append(self)\n"
            "    @property\n    def parent(self):\n        return self._parent() if self._parent else None\n"
            "root = Node('root')\nchild = Node('child', root)\ngone = weakref.ref(Node('gone'))",
            "print(child.parent.name, child.parent is root, len(root.children), gone())",
            "second = Node('second', root)\nprint(len(root.children))",
            "print(second.parent is root, root.children[-1] is second)",
            "del Node, root, child, second, gone"])


def test_a_weak_method_and_a_weak_proxy_cross_to_the_object_that_crossed(parity):
    """Hunt 23 H23-5 and H23-6: an observer's ``weakref.WeakMethod`` could not be sent, and a
    ``weakref.proxy`` went as a copy of its object, so a change through it missed the object
    the other names hold, and it came back no longer a proxy."""
    parity(["# plain\nimport weakref\nclass Btn:\n    def __init__(self):\n"
            "        self.handlers = []\n    def on(self, m):\n"
            "        self.handlers.append(weakref.WeakMethod(m))\n    def fire(self):\n"
            "        return [h()() for h in self.handlers if h() is not None]\n"
            "class Ctl:\n    def __init__(self):\n        self.n = 0\n    def hit(self):\n"
            "        self.n += 1\n        return self.n\n"
            "btn = Btn()\nctl = Ctl()\nbtn.on(ctl.hit)\n"
            "class Owner:\n    def __init__(self, target):\n        self.p = weakref.proxy(target)\n"
            "ow = Owner(ctl)",
            "print(btn.fire())\now.p.n += 10\nprint(ctl.n, ow.p.n)",
            "# plain\nprint(ctl.n, btn.fire(), ow.p.n, type(ow.p).__name__)",
            "del btn, ow"])  # (the harness compares names by pickling: a WeakMethod plainly fails)


def test_an_async_generator_a_remote_cell_made_is_consumed_by_a_plain_cell(parity):
    """Hunt 24 H24-10 (loud): a plain cell's ``await anext(ag)`` or ``async for`` over an async
    generator a remote cell made failed ("cannot take a proxy"): its proxy had no ``__anext__``.
    Each item is awaited there, in the engine's event loop, where the cell's own ``await``
    ran; the end is ``StopAsyncIteration``. (all, small: the note that it stays remote.)"""
    traces = parity([
        "import asyncio\nasync def agen(n):\n    for i in range(n):\n        await asyncio.sleep(0)\n"
        "        yield {'i': i}\nag = agen(4)\nfirst = await ag.__anext__()\nshort = agen(1)",
        "# plain\nsecond = await anext(ag)\nrest = [x['i'] async for x in ag]\n"
        "print(first, second, rest)",
        "# plain\nprint(await anext(short))\ntry:\n    await anext(short)\n"
        "except StopAsyncIteration:\n    print('ended')\nprint(await anext(short, 'default'))",
    ], ways=("plain", "none", "kernel"))
    assert traces["plain"].cells[1].stdout == "{'i': 0} {'i': 1} [2, 3]\n"
    assert traces["plain"].cells[2].stdout == "{'i': 0}\nended\ndefault\n"


def test_exit_in_a_remote_cell_asks_the_notebooks_kernel_to_exit(parity, shell, monkeypatch):
    """Hunt 25 H25-1 (loud): ``exit()`` and ``quit()`` in a remote cell raised NameError. As in
    a plain cell, the call asks the notebook's kernel to exit (IPython's exit autocall: under
    ipykernel an ``ask_exit`` payload, and the kernel stops after the cell), and the cell goes
    on; the engine is not the notebook's kernel, and stays. (kernel: the engine is the kernel
    there, and stops.)"""
    asked = []
    monkeypatch.setattr(shell, "ask_exit", lambda: asked.append(True))
    parity(["x = 1", "exit()\ny = 2", "quit()\nprint(x, y)", "print(x + y)"],
           ways=("plain", "all", "small", "none"))
    assert asked == [True] * 8  # exit() and quit() once each way


def test_a_decimal_context_a_cell_makes_current_stays_the_current_one_every_way(parity):
    """Hunt 25 H25-3 (silent): after a remote ``decimal.setcontext(ctx)``, the notebook's
    current context took ctx's values but was another object than the one under ``ctx``, so a
    later ``ctx.prec = 4`` (the decimal docs' own way) changed nothing the cells computed with;
    and the engine's current context was not its copy of ``ctx`` when a cell read it. Which
    object is current now crosses by its name, both ways."""
    traces = parity([
        "import decimal\nctx = decimal.Context(prec=2)\ndecimal.setcontext(ctx)\n"
        "print(decimal.Decimal(1) / 3)",
        "# plain\nprint(decimal.getcontext() is ctx)\nctx.prec = 4\nprint(decimal.Decimal(1) / 3)",
        "print(decimal.Decimal(1) / 3)\nctx.prec = 6\n"
        "print(decimal.Decimal(1) / 3, decimal.getcontext() is ctx)",
        "# plain\nprint(decimal.Decimal(1) / 3, decimal.getcontext() is ctx, ctx.prec)\n"
        "decimal.setcontext(decimal.Context())",
    ], ways=("plain", "all", "small", "kernel"))  # (none: `ctx` is a proxy in the notebook)
    assert traces["plain"].cells[3].stdout == "0.333333 True 6\n"


def test_open_in_a_remote_cell_is_ipythons_which_refuses_the_standard_streams(parity):
    """Hunt 25 H25-1: a cell's ``open`` is IPython's, which refuses ``open(1)`` (a file on the
    standard streams' descriptors, a typo's usual result); a remote cell's was the builtin,
    which opened the engine's own stdout. A file opened by name is as before."""
    traces = parity([
        "try:\n    f = open(1)\nexcept ValueError as err:\n    print(str(err)[:40])",
        "import os, tempfile\nfolder = tempfile.mkdtemp()\n"
        "with open(os.path.join(folder, 'f.txt'), 'w') as out:\n    out.write('x')\n"
        "with open(os.path.join(folder, 'f.txt')) as out:\n    print(out.read(), 'open' in dir())\n"
        "del out\nos.remove(os.path.join(folder, 'f.txt'))\nos.rmdir(folder)\ndel folder",
    ])
    assert traces["plain"].cells[0].stdout == "IPython won't let you open fd=1 by defau\n"


def test_a_cells_new_type_crosses_both_ways(parity):
    """Hunt 25 H25-6 (loud): ``UserId = NewType('UserId', int)`` pickled as its name, which the
    other side's ``__main__`` lacks ("Can't get attribute 'UserId'"): no remote cell reading it
    could run, and one defined remotely could not come back. So did a ParamSpec and a
    TypeVarTuple."""
    traces = parity([
        "# plain\nfrom typing import NewType\nclass Money(float):\n    pass\n"
        "UserId = NewType('UserId', int)\nCash = NewType('Cash', Money)",
        "u = UserId(5)\nc = Cash(Money(2.5))\nOrderId = NewType('OrderId', UserId)\n"
        "print(u, UserId.__name__, UserId.__supertype__, type(c).__name__)",
        "# plain\nprint(OrderId(7), OrderId.__supertype__ is UserId, OrderId.__qualname__, "
        "OrderId.__module__, Cash.__supertype__ is Money)",
        "# plain\nfrom typing import ParamSpec, TypeVarTuple\nP = ParamSpec('P', bound=int)\n"
        "Ts = TypeVarTuple('Ts')",
        "Q = ParamSpec('Q')\nprint(P, P.__bound__, Ts, Q)",
        "# plain\nprint(Q, Q.__module__, [P, Q, Ts])",
    ], ways=("plain", "all", "small"))  # (kernel: the harness's own pickles go by name; none:
    #                                     `OrderId` is a proxy, without `__supertype__`)
    assert traces["plain"].cells[2].stdout == "7 True OrderId __main__ True\n"


def test_functions_lambdify_made_on_either_side_keep_their_own_source(parity):
    """Hunt 25 H25-7 (silent): SymPy's lambdify names each function's source file
    ``<lambdifygenerated-N>`` by a count of its own, which each side kept apart: a remote
    cell's function took the name of the notebook's, and ``inspect.getsource`` of the
    notebook's showed the other's code, on both sides. The count now goes on across them.
    (The first cells set both counts alike, as two fresh processes have them.)"""
    traces = parity([
        "# plain\nimport importlib, inspect\nimport sympy as sp\nx, y = sp.symbols('x y')\n"
        "importlib.import_module('sympy.utilities.lambdify')._lambdify_generated_counter = 500",
        "importlib.import_module('sympy.utilities.lambdify')._lambdify_generated_counter = 500",
        "# plain\nf = sp.lambdify(x, sp.sin(x) + x)\n"
        "print(inspect.getsource(f).splitlines()[1].strip())",
        "g = sp.lambdify((x, y), x * y)\nprint(inspect.getsource(g).splitlines()[1].strip(), "
        "inspect.getsource(f).splitlines()[1].strip())",
        "# plain\nprint(inspect.getsource(f).splitlines()[1].strip(), "
        "inspect.getsource(g).splitlines()[1].strip())",
        "print(inspect.getsource(f).splitlines()[1].strip())",
    ], ways=("plain", "all", "small", "kernel"))  # (none: `g` is a proxy)
    assert traces["plain"].cells[4].stdout == "return x + sin(x) return x*y\n"



def test_bases_a_remote_cell_gives_a_notebook_class_come_back(parity):
    """Hunt 25 H25-15 (silent): ``Child.__bases__ = (B,)`` in a remote cell was lost: the class
    came back with its attributes only, so its objects went on using ``A``'s methods."""
    traces = parity([
        "# plain\nclass A:\n    def hi(self):\n        return 'A'\nclass B:\n    def hi(self):\n"
        "        return 'B'\nclass Child(A):\n    pass\nc = Child()",
        "Child.__bases__ = (B,)\nprint(c.hi(), issubclass(Child, B))",
        "# plain\nprint(c.hi(), issubclass(Child, B), Child.__mro__[1].__name__)",
    ])
    assert traces["plain"].cells[2].stdout == "B True B\n"


def test_an_opener_a_cell_installs_stays_the_one_urlopen_uses_every_way(parity):
    """Hunt 25 H25-3 (silent, as for the decimal context): after a remote
    ``install_opener(opener)``, the notebook's installed opener was a copy beside the one
    under ``opener``, so a later ``opener.addheaders = [...]`` changed nothing ``urlopen``
    sends."""
    traces = parity([
        "# plain\nimport urllib.request\nopener = urllib.request.build_opener()",
        "urllib.request.install_opener(opener)",
        "# plain\nopener.addheaders = [('User-agent', 'notebook/1.0')]\n"
        "print(urllib.request._opener is opener, urllib.request._opener.addheaders)",
        "print(urllib.request._opener.addheaders)",
        "# plain\nurllib.request.install_opener(None)",
    ], ways=("plain", "all", "small", "kernel"))  # (none: `opener` is a proxy)
    assert traces["plain"].cells[2].stdout == "True [('User-agent', 'notebook/1.0')]\n"
