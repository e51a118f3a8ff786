"""capture.analyze: which notebook names a cell reads, writes and deletes (pure AST, no kernels)."""
from __future__ import annotations

import builtins
import contextlib
import dataclasses
import warnings
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_magics.cells.capture import CellNames, analyze


def case(name: str, code: str, reads: set[str], writes: set[str], deletes: set[str] = set(),
         marks=()):
    return pytest.param(dedent(code).strip() + "\n", reads, writes, deletes, id=name, marks=marks)


CASES = [
    # -- plain assignments ------------------------------------------------------------------
    case("simple_assign_writes_without_reading", "x = 1", set(), {"x"}),
    case("assign_from_name_reads_it", "y = x", {"x"}, {"y"}),
    case("self_referencing_assign_reads_before_binding", "x = x + 1", {"x"}, {"x"}),
    case("bound_then_read_is_not_a_read", "x = 1\nprint(x)", {"print"}, {"x"}),
    case("augmented_assign_reads_and_writes", "total += 1", {"total"}, {"total"}),
    case("augmented_assign_after_binding_reads_nothing", "n = 0\nn += 1", set(), {"n"}),
    case("tuple_unpacking_binds_every_name", "a, (b, c) = pairs", {"pairs"}, {"a", "b", "c"}),
    case("star_unpacking_binds_rest", "first, *rest = items", {"items"}, {"first", "rest"}),
    case("chained_assignment_binds_all_targets", "a = b = f()", {"f"}, {"a", "b"}),
    case("swap_reads_both_before_binding", "a, b = b, a", {"a", "b"}, {"a", "b"}),
    case("attribute_target_reads_object", "obj.attr = 1", {"obj"}, set()),
    case("subscript_target_reads_container_and_index", "table[key] = value",
         {"table", "key", "value"}, set()),
    case("augmented_attribute_reads_object", "counter.n += step", {"counter", "step"}, set()),
    case("annotated_assign_writes_and_reads_annotation", "x: int = 1",
         {"int", "__annotations__"}, {"x"}),
    case("bare_annotation_writes_nothing_but_reads_annotation", "x: List[int]",
         {"List", "int", "__annotations__"}, set()),
    case("bare_annotated_attribute_reads_object", "cfg.depth: int",
         {"cfg", "int", "__annotations__"}, set()),
    case("slice_reads_every_bound", "y = x[a:b:c]", {"x", "a", "b", "c"}, {"y"}),
    case("starred_call_arguments_are_read", "f(*args, **kwargs)", {"f", "args", "kwargs"}, set()),
    case("dict_display_with_unpacking_reads_both", 'd = {**base, "k": v}', {"base", "v"}, {"d"}),
    case("builtins_and_dunders_are_reported", "print(len(x), __name__)",
         {"print", "len", "x", "__name__"}, set()),
    case("top_level_global_statement_is_harmless", "global x\nx = 1", set(), {"x"}),
    case("fstring_reads_expressions_and_nested_format_spec",
         'msg = f"{name!r}: {value:{width}.{prec}f}"', {"name", "value", "width", "prec"}, {"msg"}),
    # -- conditional flow -------------------------------------------------------------------
    case("conditional_binding_then_read_is_a_read", """
        if c:
            y = 1
        print(y)
        """, {"c", "print", "y"}, {"y"}),
    case("binding_in_both_if_branches_is_definite", """
        if c:
            y = 1
        else:
            y = 2
        print(y)
        """, {"c", "print"}, {"y"}),
    case("elif_chain_without_else_is_conditional", """
        if a:
            y = 1
        elif b:
            y = 2
        print(y)
        """, {"a", "b", "print", "y"}, {"y"}),
    case("elif_chain_binding_in_every_branch_is_definite", """
        if a:
            y = 1
        elif b:
            y = 2
        else:
            y = 3
        y
        """, {"a", "b"}, {"y"}),
    case("read_inside_branch_after_binding_there_is_not_a_read", """
        if c:
            y = 1
            print(y)
        """, {"c", "print"}, {"y"}),
    case("conditional_expression_walrus_in_both_arms_is_definite",
         "v = (w := 1) if c else (w := 2)\nw", {"c"}, {"v", "w"}),
    case("short_circuit_walrus_is_conditional", "ok = c and (m := f())\nm",
         {"c", "f", "m"}, {"ok", "m"}),
    case("chained_comparison_evaluates_later_operands_conditionally",
         "r = a < (b := 2) < (d := 3)\nprint(b, d)", {"a", "print", "d"}, {"b", "d", "r"}),
    case("assert_walrus_is_conditional", "assert (z := check())\nz", {"check", "z"}, {"z"}),
    case("top_level_walrus_binds_for_later_reads", """
        if (n := len(items)) > 10:
            print(n)
        n
        """, {"len", "items", "print"}, {"n"}),
    # -- loops ------------------------------------------------------------------------------
    case("for_target_binds_only_conditionally", """
        for i in range(3):
            pass
        print(i)
        """, {"range", "print", "i"}, {"i"}),
    case("for_body_binding_is_conditional", """
        for i in items:
            last = i
        last
        """, {"items", "last"}, {"i", "last"}),
    case("for_body_reads_target_without_reading_global", """
        for i in items:
            print(i)
        """, {"items", "print"}, {"i"}),
    case("for_loop_accumulator_reads_initial_value", """
        for i in items:
            total = total + i
        """, {"items", "total"}, {"i", "total"}),
    case("for_loop_accumulator_initialised_first_reads_only_iterable", """
        total = 0
        for i in items:
            total += i
        """, {"items"}, {"total", "i"}),
    case("for_else_binding_is_conditional", """
        for i in items:
            break
        else:
            found = False
        found
        """, {"items", "found"}, {"i", "found"}),
    case("while_test_walrus_binds_definitely", """
        while (chunk := read()):
            handle(chunk)
        print(chunk)
        """, {"read", "handle", "print"}, {"chunk"}),
    case("while_body_binding_is_conditional", """
        while cond():
            x = 1
        x
        """, {"cond", "x"}, {"x"}),
    case("nested_loops_write_both_targets", """
        for i in range(n):
            for j in range(i):
                grid[i][j] = i * j
        """, {"range", "n", "grid"}, {"i", "j"}),
    # -- functions --------------------------------------------------------------------------
    case("isPrime_reads_nothing_its_locals_are_local", """
        def isPrime(p):
            x = 2
            while x*x <= p:
                if p % x == 0:
                    return 0
                x = x + 1
            return 1
        """, set(), {"isPrime"}),
    case("generator_sum_over_isPrime_reads_function_and_builtins",
         "result = sum(isPrime(x) for x in range(100_000))",
         {"sum", "isPrime", "range"}, {"result"}),
    case("isPrime_defined_and_used_in_one_cell_reads_only_builtins", """
        def isPrime(p):
            x = 2
            while x*x <= p:
                if p % x == 0:
                    return 0
                x = x + 1
            return 1
        result = sum(isPrime(x) for x in range(100_000))
        """, {"sum", "range"}, {"isPrime", "result"}),
    case("function_body_reads_free_global", """
        def f():
            return scale * 2
        """, {"scale"}, {"f"}),
    case("function_read_of_conditionally_bound_name_counts", """
        if c:
            y = 1
        def f():
            return y
        """, {"c", "y"}, {"y", "f"}),
    case("function_parameters_of_every_kind_are_local", """
        def f(a, /, b=1, *args, c, d=2, **kw):
            return a + b + c + d + len(args) + len(kw)
        """, {"len"}, {"f"}),
    case("function_read_of_name_bound_later_still_counts", """
        def f():
            return y
        y = 1
        f()
        """, {"y"}, {"f", "y"}),
    case("function_read_of_name_bound_before_def_is_not_a_read", """
        y = 1
        def f():
            return y
        """, set(), {"y", "f"}),
    case("name_assigned_anywhere_in_function_is_local", """
        def f():
            print(x)
            x = 1
        """, {"print"}, {"f"}),
    case("default_values_are_evaluated_at_def_time", """
        def f(a=default, *, b=other):
            return a
        """, {"default", "other"}, {"f"}),
    case("parameter_and_return_annotations_are_read_at_def_time", """
        def f(a: Tensor, *rest: Extra) -> Result:
            return a
        """, {"Tensor", "Extra", "Result"}, {"f"}),
    case("local_variable_annotation_is_never_evaluated", """
        def f():
            x: Missing = 1
            return x
        """, set(), {"f"}),
    case("decorator_is_read", """
        @cache
        def f():
            return 1
        """, {"cache"}, {"f"}),
    case("decorator_call_arguments_are_read", """
        @app.route(path)
        def index():
            return page
        """, {"app", "path", "page"}, {"index"}),
    case("recursive_function_does_not_read_its_own_name", """
        def fact(n):
            return 1 if n < 2 else n * fact(n - 1)
        """, set(), {"fact"}),
    case("decorated_recursive_function_reads_its_name", """
        @cache
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        """, {"cache", "fib"}, {"fib"}),
    case("global_declaration_makes_function_assignment_a_write", """
        def reset():
            global counter
            counter = 0
        """, set(), {"counter", "reset"}),
    case("global_augmented_assign_in_function_reads_and_writes", """
        def bump():
            global counter
            counter += 1
        """, {"counter"}, {"counter", "bump"}),
    case("global_bound_then_read_in_same_function_is_not_a_read", """
        def f():
            global g
            g = 1
            return g
        """, set(), {"g", "f"}),
    case("global_del_in_function_is_a_delete", """
        def drop():
            global cache
            del cache
        """, set(), {"cache", "drop"}, {"cache"}),
    case("nested_function_free_name_resolves_to_enclosing_local", """
        def outer():
            x = 1
            def inner():
                return x + y
            return inner
        """, {"y"}, {"outer"}),
    case("nonlocal_resolves_to_enclosing_function", """
        def counter():
            n = 0
            def inc():
                nonlocal n
                n += 1
                return n
            return inc
        """, set(), {"counter"}),
    case("global_declared_in_inner_function_is_a_cell_write", """
        def outer():
            def inner():
                global g
                g = 1
            inner()
        """, set(), {"g", "outer"}),
    case("inner_function_sees_outer_global_declaration", """
        def f():
            global g
            def h():
                return g
            g = 1
        """, {"g"}, {"g", "f"}),
    case("function_local_shadows_cell_global", """
        x = 1
        def f():
            x = 2
            return x
        x
        """, set(), {"x", "f"}),
    case("import_inside_function_is_local", """
        def f():
            import numpy as np
            return np.zeros(3)
        """, set(), {"f"}),
    case("async_def_body_reads_globals", """
        async def fetch(url):
            async with session.get(url) as r:
                return await r.json()
        """, {"session"}, {"fetch"}),
    case("lambda_body_reads_free_globals", "key = lambda item: item[field]", {"field"}, {"key"}),
    case("lambda_default_is_read_immediately", "f = lambda x=base: x + offset",
         {"base", "offset"}, {"f"}),
    case("lambda_closure_over_comprehension_variable", "fs = [lambda: i for i in range(3)]",
         {"range"}, {"fs"}),
    # -- comprehensions ---------------------------------------------------------------------
    case("list_comprehension_variable_does_not_leak", "squares = [x * x for x in xs]",
         {"xs"}, {"squares"}),
    case("set_comprehension_reads_condition_names", "s = {f(x) for x in xs if x > low}",
         {"f", "xs", "low"}, {"s"}),
    case("dict_comprehension_unpacks_pairs", "d = {k: v for k, v in pairs.items()}",
         {"pairs"}, {"d"}),
    case("generator_expression_variable_is_local", "total = sum(x for x in xs)",
         {"sum", "xs"}, {"total"}),
    case("nested_generators_inner_iterable_uses_outer_variable",
         "flat = [y for row in matrix for y in row]", {"matrix"}, {"flat"}),
    case("comprehension_nested_in_element", "t = [[row[i] for row in m] for i in range(n)]",
         {"m", "range", "n"}, {"t"}),
    case("comprehension_variable_shadowing_a_cell_name", "x = 5\nys = [x for x in range(x)]",
         {"range"}, {"x", "ys"}),
    case("comprehension_first_iterable_is_evaluated_outside", "x = [x for x in x]",
         {"x"}, {"x"}),
    case("async_comprehension_at_top_level", "results = [r async for r in stream()]",
         {"stream"}, {"results"}),
    case("generator_read_of_name_bound_later_counts", "g = (y for _ in range(2))\ny = 1",
         {"range", "y"}, {"g", "y"}),
    case("walrus_in_comprehension_binds_cell_name_conditionally", """
        hits = [y for x in data if (y := f(x))]
        print(y)
        """, {"data", "f", "print", "y"}, {"y", "hits"}),
    case("walrus_in_comprehension_read_later_in_same_iteration",
         "pairs = [((y := x * 2), y + 1) for x in xs]", {"xs"}, {"y", "pairs"}),
    case("walrus_in_comprehension_inside_function_is_local", """
        def f(xs):
            found = any((m := x) > 3 for x in xs)
            return m
        """, {"any"}, {"f"}),
    # -- imports ----------------------------------------------------------------------------
    case("import_dotted_binds_top_package", "import os.path", set(), {"os"}),
    case("import_dotted_as_binds_alias", "import numpy.linalg as la", set(), {"la"}),
    case("from_import_binds_names_and_aliases",
         "from collections import OrderedDict, defaultdict as dd", set(), {"OrderedDict", "dd"}),
    case("relative_imports_bind_names", "from . import sibling\nfrom ..pkg import mod as m",
         set(), {"sibling", "m"}),
    case("imported_module_use_is_not_a_read", "import math\nmath.sqrt(2)", set(), {"math"}),
    # -- del --------------------------------------------------------------------------------
    case("del_writes_and_deletes_without_reading", "del x", set(), {"x"}, {"x"}),
    case("del_of_attribute_and_subscript_reads_objects", "del a, b.c, d[0]",
         {"b", "d"}, {"a"}, {"a"}),
    case("read_after_del_is_not_a_read_of_the_old_value", "x = 1\ndel x\nprint(x)",
         {"print"}, {"x"}, {"x"}),
    case("conditional_del_then_read_is_a_read", """
        if c:
            del x
        print(x)
        """, {"c", "print", "x"}, {"x"}, {"x"}),
    # -- try --------------------------------------------------------------------------------
    case("try_body_binding_is_unsure_in_handler", """
        try:
            v = compute()
        except ValueError:
            print(v)
        """, {"compute", "ValueError", "print", "v"}, {"v"}),
    case("try_and_every_handler_binding_is_definite", """
        try:
            import numpy as np
        except ImportError:
            np = None
        np
        """, {"ImportError"}, {"np"}),
    case("handler_that_does_not_bind_leaves_name_unsure", """
        try:
            x = 1
        except E:
            pass
        x
        """, {"E", "x"}, {"x"}),
    case("try_else_sees_body_bindings", """
        try:
            v = compute()
        except Exception:
            pass
        else:
            print(v)
        """, {"compute", "Exception", "print"}, {"v"}),
    case("finally_binding_is_definite", """
        try:
            risky()
        finally:
            done = True
        print(done)
        """, {"risky", "print"}, {"done"}),
    case("finally_reads_name_the_body_may_not_have_bound", """
        try:
            f = open(p)
        finally:
            f.close()
        """, {"open", "p", "f"}, {"f"}),
    case("except_as_name_is_written_and_unbound_after_its_handler", """
        try:
            run()
        except Exception as err:
            log(err)
        """, {"run", "Exception", "log"}, {"err"}, {"err"}),
    case("except_star_group_is_written_and_unbound", """
        try:
            go()
        except* ValueError as eg:
            handle(eg)
        """, {"go", "ValueError", "handle"}, {"eg"}, {"eg"}),
    case("except_as_name_bound_again_after_the_handler_is_bound", """
        try:
            go()
        except KeyError as e:
            pass
        e = 2
        print(e)
        """, {"go", "KeyError", "print"}, {"e"}, {"e"}),
    case("except_as_name_in_a_function_is_its_local", """
        def f():
            try:
                go()
            except KeyError as e:
                return e
        """, {"go", "KeyError"}, {"f"}),
    case("del_of_subscript_in_loop_reads_container", """
        for k in keys:
            del cache[k]
        """, {"keys", "cache"}, {"k"}),
    # -- with -------------------------------------------------------------------------------
    case("a_string_annotation_reads_the_names_it_holds", """
        def f(a: 'Point', b: Optional['Node'] = None) -> 'List[Point]':
            return a
        class C:
            p: 'Shape'
        """, {"Point", "Optional", "Node", "List", "Shape"}, {"f", "C"}),
    case("with_body_may_be_cut_short_by_a_manager_that_suppresses", """
        with suppress(KeyError):
            v = d["k"]
        v
        """, {"suppress", "KeyError", "d", "v"}, {"v"}),
    case("with_body_of_a_manager_that_never_suppresses_runs_to_its_end", """
        with np.errstate(all='ignore'), gzip.open(path) as fh:
            v = fh.read()
        v
        """, {"np", "gzip", "path"}, {"fh", "v"}),
    case("with_target_and_body_are_unconditional", """
        with open(path) as fh:
            text = fh.read()
        print(text)
        """, {"open", "path", "print"}, {"fh", "text"}),
    case("with_several_items_and_tuple_target", """
        with a() as (x, y), b(x) as z:
            pass
        """, {"a", "b"}, {"x", "y", "z"}),
    case("async_with_at_top_level", """
        async with lock:
            n = 1
        """, {"lock"}, {"n"}),
    # -- classes ----------------------------------------------------------------------------
    case("class_level_name_does_not_leak_into_method", """
        class A:
            x = 2
            def m(self):
                return x
        """, {"x"}, {"A"}),
    case("method_reads_global_bound_before_class_not_class_attribute", """
        x = 1
        class A:
            x = 2
            def m(self):
                return x
        """, set(), {"x", "A"}),
    case("class_body_reads_global_before_its_own_binding", """
        class A:
            y = x
            x = 1
        """, {"x"}, {"A"}),
    case("class_body_reads_its_own_earlier_binding", """
        class A:
            x = 1
            y = x * 2
        """, set(), {"A"}),
    case("class_decorators_bases_and_keywords_are_read", """
        @register
        class Model(Base, metaclass=Meta):
            pass
        """, {"register", "Base", "Meta"}, {"Model"}),
    case("method_naming_its_class_reads_it_conservatively", """
        class Node:
            def clone(self):
                return Node()
        """, {"Node"}, {"Node"}),
    case("class_global_declaration_writes_cell_name", """
        class A:
            global registry
            registry = {}
        """, set(), {"registry", "A"}),
    case("class_conditional_binding_falls_back_to_global", """
        class A:
            if flag:
                size = 1
            doubled = size * 2
        """, {"flag", "size"}, {"A"}),
    case("class_name_deleted_in_body_falls_back_to_global", """
        class A:
            helper = 1
            x = helper
            del helper
            y = helper
        """, {"helper"}, {"A"}),
    case("class_body_sees_module_and_qualname", "class A:\n    where = __module__", set(), {"A"}),
    case("method_private_name_is_mangled", """
        class A:
            def m(self):
                return __secret
        """, {"_A__secret"}, {"A"}),
    case("method_calling_super_reads_builtin", """
        class B(A):
            def __init__(self):
                super().__init__()
        """, {"A", "super"}, {"B"}),
    case("comprehension_in_class_body_skips_class_scope", """
        class A:
            n = 3
            xs = [n for _ in range(2)]
        """, {"range", "n"}, {"A"}),
    case("comprehension_first_iterable_in_class_sees_class_names", """
        class A:
            n = 3
            xs = [i for i in range(n)]
        """, {"range"}, {"A"}),
    case("class_in_function_reads_enclosing_local", """
        def make():
            size = 3
            class Box:
                width = size
            return Box
        """, set(), {"make"}),
    case("class_in_function_binding_later_reads_global", """
        def make():
            size = 3
            class Box:
                w = size
                size = 4
            return Box
        """, {"size"}, {"make"}),
    case("lambda_in_class_body_skips_class_scope", """
        class A:
            k = 1
            f = lambda self: k
        """, {"k"}, {"A"}),
    case("class_global_declaration_of_private_name_writes_mangled_name", """
        class A:
            global __g
            __g = 1
        """, set(), {"_A__g", "A"}),
    case("class_del_inside_loop_may_have_run_on_earlier_iterations", """
        class A:
            x = 1
            for i in range(2):
                y = x
                del x
        """, {"range", "x"}, {"A"}),
    # -- match ------------------------------------------------------------------------------
    case("match_class_pattern_reads_class_and_binds_captures", """
        match p:
            case Point(x=a, y=0):
                print(a)
        """, {"p", "Point", "print"}, {"a"}),
    case("match_sequence_with_star_binds_rest", """
        match cmd:
            case [verb, *args]:
                run(verb, args)
        """, {"cmd", "run"}, {"verb", "args"}),
    case("match_mapping_binds_values_and_rest", """
        match cfg:
            case {"k": v, **kw}:
                pass
        """, {"cfg"}, {"v", "kw"}),
    case("match_as_binds_and_wildcard_binds_nothing", """
        match x:
            case [_, _] as z:
                pass
            case _:
                pass
        """, {"x"}, {"z"}),
    case("match_value_pattern_reads_dotted_name", """
        match color:
            case Color.RED:
                hit = 1
        """, {"color", "Color"}, {"hit"}),
    case("match_or_pattern_binds_shared_name", """
        match v:
            case [a] | (a, _):
                pass
        """, {"v"}, {"a"}),
    case("match_guard_reads_after_capture", """
        match n:
            case k if k > limit:
                pass
        """, {"n", "limit"}, {"k"}),
    case("match_capture_is_conditional_after_match", """
        match x:
            case [a]:
                pass
        print(a)
        """, {"x", "print", "a"}, {"a"}),
    # -- top-level await --------------------------------------------------------------------
    case("top_level_await_parses_and_reads", "data = await fetch(url)", {"fetch", "url"}, {"data"}),
    case("top_level_async_for", """
        async for item in stream:
            print(item)
        """, {"stream", "print"}, {"item"}),
]


@pytest.mark.parametrize(("code", "reads", "writes", "deletes"), CASES)
def test_cell_names(code: str, reads: set[str], writes: set[str], deletes: set[str]) -> None:
    names = analyze(code)
    assert set(names.reads) == reads
    assert set(names.writes) == writes
    assert set(names.deletes) == deletes
    for field in (names.reads, names.writes, names.deletes):
        assert len(field) == len(set(field))


def test_attributes_set_on_classes_outside_functions_are_listed() -> None:
    names = analyze("import pandas as pd\n"
                    "@pd.api.extensions.register_series_accessor('phys')\nclass P:\n"
                    "    def __init__(self, obj):\n        self._obj = obj\n"
                    "pd.Series.total = lambda self: 1\nsetattr(pd.DataFrame, 'rows', 2)\n"
                    "del Series.old\nfor k in range(2):\n    Index.extra = k\n"
                    "def f():\n    pd.Index.inside = 1\ndf[0] = 1\n")
    assert set(names.class_attributes) == {
        ("pandas:Series", "phys"), ("pd.Series", "total"), ("pd.DataFrame", "rows"),
        ("Series", "old"), ("Index", "extra")}


def test_reads_and_writes_keep_first_seen_order() -> None:
    names = analyze("b = a\nc = d + a + b\na = e\nb = 2\ndel c")
    assert names.reads == ("a", "d", "e")
    assert names.writes == ("b", "c", "a")
    assert names.deletes == ("c",)


@pytest.mark.parametrize(("code", "expected"), [
    pytest.param("x = 1\nx", True, id="trailing_expression"),
    pytest.param("f(1)", True, id="call_statement"),
    pytest.param("await g()", True, id="top_level_await_expression"),
    pytest.param("x = 1", False, id="trailing_assignment"),
    pytest.param("x\npass", False, id="trailing_pass"),
    pytest.param("if c:\n    x", False, id="expression_inside_block"),
    pytest.param("", False, id="empty_cell"),
    pytest.param("# just a comment\n", False, id="comment_only"),
    pytest.param("plt.plot(x);", False, id="trailing_semicolon_silences"),
    pytest.param("f(1,\n  2);  # note", False, id="semicolon_before_comment"),
    pytest.param("x; y", True, id="semicolon_between_statements"),
    pytest.param("s = 'a;'\ns", True, id="semicolon_inside_a_string"),
    pytest.param("x  # ;", True, id="semicolon_inside_a_comment"),
])
def test_last_expr(code: str, expected: bool) -> None:
    assert analyze(code).last_expr is expected


def test_star_import_is_flagged_and_reads_still_reported() -> None:
    names = analyze("from math import *\nx = sqrt(2)")
    assert names.star_import
    assert names.reads == ("sqrt",)
    assert names.writes == ("x",)


def test_plain_import_is_not_a_star_import() -> None:
    assert not analyze("from math import sqrt").star_import


@pytest.mark.parametrize("code", ["x = (", "def f(:\n    pass", "for in x: pass", "x = 1 +"])
def test_invalid_code_raises_syntax_error(code: str) -> None:
    with pytest.raises(SyntaxError):
        analyze(code)


def test_repeated_analysis_is_cached() -> None:
    code = "y = x + 1"
    assert analyze(code) is analyze(code)


def test_result_is_frozen() -> None:
    names = analyze("x = 1")
    assert isinstance(names, CellNames)
    with pytest.raises(dataclasses.FrozenInstanceError):
        names.reads = ()  # type: ignore[misc]


# -- properties ---------------------------------------------------------------------------

POOL = ["n0", "n1", "n2", "n3", "n4"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(POOL), st.sampled_from(POOL)), max_size=12))
def test_straight_line_assignments_read_names_used_before_first_binding(pairs) -> None:
    code = "".join(f"{target} = {source} + 1\n" for target, source in pairs)
    bound: list[str] = []
    reads: list[str] = []
    for target, source in pairs:
        if source not in bound and source not in reads:
            reads.append(source)
        if target not in bound:
            bound.append(target)
    names = analyze(code)
    assert names.reads == tuple(reads)
    assert names.writes == tuple(bound)


# Random cells over a few names, run for real: a test that the analysis never misses a read.
NAMES = ["a", "b", "c", "d"]


def _expression(draw, depth: int) -> str:
    def sub() -> str:
        return _expression(draw, depth - 1)

    kinds = ["name", "int"]
    if depth:
        kinds += ["add", "walrus", "comp", "lambda", "ifexp", "boolop", "compare"]
    kind = draw(st.sampled_from(kinds))
    name = draw(st.sampled_from(NAMES))
    if kind == "name":
        return name
    if kind == "int":
        return str(draw(st.integers(0, 2)))
    if kind == "add":
        return f"({sub()} + {sub()})"
    if kind == "walrus":
        return f"({name} := {sub()})"
    if kind == "comp":
        return f"len([{sub()} for {name} in range({draw(st.integers(0, 2))}) if {sub()}])"
    if kind == "lambda":
        return f"(lambda {name}={sub()}: {sub()})()"
    if kind == "ifexp":
        return f"({sub()} if {sub()} else {sub()})"
    if kind == "compare":
        return f"({sub()} < {sub()} <= {sub()})"
    return f"({sub()} {draw(st.sampled_from(['and', 'or']))} {sub()})"


def _block(draw, depth: int, top: bool, indent: str) -> list[str]:
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        lines += _statement(draw, depth, top, indent)
    return lines


def _statement(draw, depth: int, top: bool, indent: str) -> list[str]:
    def expr() -> str:
        return _expression(draw, 2)

    def body() -> list[str]:
        return _block(draw, depth - 1, False, inner)

    kinds = ["assign", "augassign", "del", "expr"]
    if depth:
        kinds += ["if", "for", "try", "with", "def", "class", "match"]
    if top:
        kinds += ["call"]
    kind = draw(st.sampled_from(kinds))
    name = draw(st.sampled_from(NAMES))
    inner = indent + "    "
    if kind == "assign":
        return [f"{indent}{name} = {expr()}"]
    if kind == "augassign":
        return [f"{indent}{name} += {expr()}"]
    if kind == "del":
        return [f"{indent}del {name}"]
    if kind == "expr":
        return [f"{indent}{expr()}"]
    if kind == "call":  # calls only at top level, so no function recurses
        return [f"{indent}{name}({expr() if draw(st.booleans()) else ''})"]
    if kind == "if":
        return [f"{indent}if {expr()}:", *body(), f"{indent}else:", *body()]
    if kind == "for":
        return [f"{indent}for {name} in range({draw(st.integers(0, 2))}):", *body()]
    if kind == "try":
        tail = [f"{indent}finally:", *body()] if draw(st.booleans()) else []
        return [f"{indent}try:", *body(), f"{indent}except Exception:", *body(), *tail]
    if kind == "with":
        return [f"{indent}with nullcontext({expr()}) as {name}:", *body()]
    if kind == "class":
        return [f"{indent}class {name}:", *body()]
    if kind == "match":
        capture = draw(st.sampled_from(NAMES))
        return [f"{indent}match {expr()}:", f"{inner}case 0:", *_block(draw, 0, False, inner + "    "),
                f"{inner}case {capture} if {expr()}:", *_block(draw, 0, False, inner + "    ")]
    param = draw(st.sampled_from(NAMES))
    declared = draw(st.sampled_from([n for n in NAMES if n != param] + [None]))
    head = [f"{inner}global {declared}"] if declared else []
    return [f"{indent}def {name}({param}={expr()}):", *head, *body(), f"{inner}return {expr()}"]


@st.composite
def programs(draw) -> str:
    return "\n".join(_block(draw, 2, True, "")) + "\n"


class _Recorder(dict):
    """Cell globals that note every look-up answered with the notebook's original value."""

    def __init__(self, initial: dict) -> None:
        super().__init__(initial)
        self.initial = dict(initial)
        self.reads: set[str] = set()

    def __getitem__(self, name: str):
        value = super().__getitem__(name)
        if name in self.initial and value is self.initial[name]:
            self.reads.add(name)
        return value


@settings(max_examples=400, deadline=None)
@given(programs())
def test_every_read_and_write_seen_at_run_time_is_predicted(code: str) -> None:
    names = analyze(code)
    # Distinct int objects: arithmetic works, and identity tells the notebook's values apart.
    initial = {name: int(f"{10**12 + i}") for i, name in enumerate(NAMES)}
    initial["__builtins__"] = {**vars(builtins), "nullcontext": contextlib.nullcontext}
    namespace = _Recorder(initial)
    try:
        exec(compile(code, "<cell>", "exec", dont_inherit=True), namespace)
    except Exception:
        pass  # what ran before the error still counts
    assert namespace.reads <= set(names.reads)
    changed = {n for n in NAMES if dict.get(namespace, n, None) is not initial[n]}
    assert changed <= set(names.writes)
    removed = {n for n in NAMES if n not in namespace}
    assert removed <= set(names.deletes)


@pytest.mark.parametrize(("code", "reads", "writes"), [
    pytest.param("get_ipython().run_line_magic('timeit', '-n1 -r 2 x.sum()')", {"x"}, set(),
                 id="timeit_statement_after_its_options"),
    pytest.param("get_ipython().run_line_magic('time', 'z = y.sum()')", {"y"}, {"z"},
                 id="time_binds_in_the_cell"),
    pytest.param("get_ipython().run_cell_magic('time', '', 'w = v + 1\\n')", {"v"}, {"w"},
                 id="cell_magic_body"),
    pytest.param("get_ipython().run_cell_magic('timeit', 'setup = s0', 'f(setup)')",
                 {"s0", "f"}, set(), id="timeit_setup_line_binds_in_its_own_function"),
    pytest.param("get_ipython().run_line_magic('timeit', 'k = 1')", set(), set(),
                 id="timeit_assigns_nothing_here"),
    pytest.param("df.query('a > @lim and b < @top')", {"df", "lim", "top"}, set(),
                 id="query_at_names"),
    pytest.param("pd.eval('df1 + df2')", {"pd", "df1", "df2"}, set(), id="pandas_eval"),
    # patsy looks a formula's names up in the caller's namespace (pydata-book ch. 12, hunt 15 C7)
    pytest.param("y, X = patsy.dmatrices('y ~ x0 + np.log(np.abs(x1) + 1)', data)",
                 {"patsy", "data", "y", "x0", "np", "x1"}, {"y", "X"}, id="patsy_formula"),
    pytest.param("m = smf.ols(formula='out ~ double(x0) + C(g)', data=df)",
                 {"smf", "df", "out", "double", "x0", "C", "g"}, {"m"},
                 id="statsmodels_formula_keyword"),
    pytest.param("m = model.fit('y is not a formula')", {"model"}, {"m"},
                 id="other_calls_strings_are_text"),
    pytest.param("eval('x')", {"x"}, set(), id="builtin_eval"),
    pytest.param("exec('q = p')", {"p"}, {"q"}, id="builtin_exec"),
    pytest.param("print('data')", set(), set(), id="other_strings_are_text"),
    pytest.param("df.eval('c = a + b')", {"df"}, set(), id="column_names_are_not_variables"),
    pytest.param("get_ipython().run_line_magic('pwd', '')", set(), set(), id="other_magics"),
    pytest.param("get_ipython().run_line_magic('pinfo', 'np.add')", {"np"}, set(),
                 id="question_mark_describes_its_object"),
    pytest.param("get_ipython().run_line_magic('pinfo2', 'zz[0].sum')", {"zz"}, set(),
                 id="double_question_mark"),
    pytest.param("get_ipython().run_line_magic('pdoc', 'f')", {"f"}, set(), id="pdoc"),
    pytest.param("y = globals()['x']", {"x"}, {"y"}, id="globals_item_read"),
    pytest.param("globals()['made'] = 1", set(), {"made"}, id="globals_item_bound"),
    pytest.param("def f():\n    globals()['inner'] = 1\nf()", set(), {"f", "inner"},
                 id="globals_item_bound_from_a_function"),
    pytest.param("x = 1\ny = globals()['x']", set(), {"x", "y"}, id="globals_item_bound_before"),
    pytest.param("y = globals()[key]", {"key"}, {"y"}, id="globals_computed_key_is_not_a_name"),
    # what IPython's var_expand evaluates in a shell command or a magic's line
    pytest.param("get_ipython().system('echo {message} $message $$literal')", {"message"}, set(),
                 id="shell_command_braces_and_dollars"),
    pytest.param("files = get_ipython().getoutput('ls {base.upper()}/${sub}')", {"base", "sub"},
                 {"files"}, id="getoutput_expressions"),
    pytest.param("get_ipython().system(\"awk '{print $1}' $path\")", {"path"}, set(),
                 id="shell_syntax_in_braces_and_quotes_is_no_name"),
    pytest.param("get_ipython().system('echo {[v for v in items]} {d[1:2]}')", {"items", "d"},
                 set(), id="comprehension_and_slice_in_braces"),
    pytest.param("def f(word):\n    get_ipython().system('echo {word} $glob')", {"glob"}, {"f"},
                 id="a_functions_locals_expand_too"),
    pytest.param("get_ipython().run_cell_magic('writefile', '$where/a.txt', 'text {nope}\\n')",
                 {"where"}, set(), id="cell_magic_line_expands_not_its_body"),
    pytest.param("get_ipython().run_line_magic('cd', '{base}')", {"base"}, set(),
                 id="line_magic_expands"),
    pytest.param("get_ipython().run_line_magic('timeit', '-n1 {x: 1 for x in ys}')", {"ys"},
                 set(), id="no_var_expand_magics_are_code_only"),
    # %prun, %%prun, %%capture, %debug run code in the notebook's namespace
    pytest.param("get_ipython().run_line_magic('prun', '-q -s cumulative -l 3 t = g(4)')", {"g"},
                 {"t"}, id="prun_statement_after_its_options"),
    pytest.param("r = get_ipython().run_line_magic('prun', '-r -q g(1)')", {"g"}, {"r"},
                 id="prun_r_returns_stats"),
    pytest.param("get_ipython().run_cell_magic('prun', '-q -T out.txt first = a', 'b = first')",
                 {"a"}, {"first", "b"}, id="prun_cell_runs_its_line_then_its_body"),
    pytest.param("get_ipython().run_cell_magic('capture', '--no-stderr cap', 'v = w\\n')", {"w"},
                 {"v", "cap"}, id="capture_binds_its_name_after_its_body"),
    pytest.param("get_ipython().run_cell_magic('capture', 'cap', '!echo $m\\n%time q = m\\n')",
                 {"m"}, {"q", "cap"}, id="capture_body_is_ipython_syntax"),
    pytest.param("get_ipython().run_line_magic('debug', '--breakpoint f.py:3 h(z)')", {"h", "z"},
                 set(), id="debug_statement"),
])
def test_names_in_strings_whose_meaning_is_known(code: str, reads: set, writes: set) -> None:
    names = analyze(code)
    assert set(names.reads) - {"get_ipython", "eval", "exec", "print", "globals"} == reads
    assert set(names.writes) == writes



def test_who_and_whos_list_every_notebook_name() -> None:
    for line in ("get_ipython().run_line_magic('whos', '')",
                 "get_ipython().run_line_magic('who', 'int')",
                 "x = get_ipython().run_line_magic('who_ls', '')"):
        assert analyze(line).lists_names, line
    assert not analyze("get_ipython().run_line_magic('time', 'x.sum()')").lists_names
    assert not analyze("whos()").lists_names


def test_run_binds_the_scripts_names_as_a_star_import() -> None:
    for line in ("get_ipython().run_line_magic('run', 'script.py')",
                 "get_ipython().run_line_magic('run', '-n -i script.py arg')",
                 "get_ipython().run_cell_magic('capture', '', \"%run -m mod\\n\")"):
        assert analyze(line).star_import, line
    assert not analyze("get_ipython().run_line_magic('time', 'run(1)')").star_import
    assert set(analyze("get_ipython().run_line_magic('run', '$script')").reads) == {
        "get_ipython", "script"}


def test_capture_with_a_quiet_body_deletes_its_name() -> None:
    """IPython's ``%%capture out`` deletes ``out`` instead when its body ends with ``;``."""
    names = analyze("get_ipython().run_cell_magic('capture', 'out', 'x = 1;\\n')")
    assert set(names.writes) == {"x", "out"} and set(names.deletes) == {"out"}


def test_a_name_bound_to_another_names_object_may_change_it() -> None:
    """``it = box; it['l'].append(2)`` changes ``box``: a remote cell so lost the change (box
    was not watched, and came back as the notebook's unchanged object)."""
    assert "box" in analyze("it = box\nit['l'].append(2)").maybe_changed
    assert "src" in analyze("a = b = src\nb.x = 1").maybe_changed
    assert "box" not in analyze("it = box\nv = it['l']").maybe_changed


def test_the_in_place_change_walk_meets_every_inner_node_in_ast_walks_order() -> None:
    """``_maybe_changed`` walks without ``ast.walk``'s generators: it must miss no node."""
    import ast
    import inspect

    from remote_magics.cells import capture

    odd = dedent("""\
        match cmd:
            case [x, *rest] if f(x): lst.append(rest)
            case {"k": v, **kw}: d[v] = kw
            case Point(x=0) | None: pass
        try:
            g(h := q)
        except* ValueError as e:
            del obj.attr[e]
        lam = lambda a=z.pop(): [w.add(i) for i in a]
        async def co(p: T = ann.x()):
            async with m(): await q.put(p)
        @deco(arg.m())
        class K(Base, meta=M):
            y: int = s.take()
            def m(self, *a, **k): global G; G += 1; super().m(*a, **k)
        aug.x += 1; r[::2] = [1]; print(*star, **kw2)
        """)
    for source in (odd, inspect.getsource(capture)):
        tree = ast.parse(source)
        expected = [n for n in ast.walk(tree) if type(n) not in capture._LEAVES
                    and not isinstance(n, (ast.expr_context, ast.operator, ast.boolop,
                                           ast.unaryop, ast.cmpop))]
        assert capture._inner_nodes(tree) == expected
    names = analyze(odd).maybe_changed
    assert {"lst", "d", "obj", "w", "z", "aug", "r", "q", "star", "kw2", "s"} <= set(names)



def test_the_analysis_shows_none_of_the_parsers_warnings():
    """The parser warns about ``"\\d"`` (a DeprecationWarning before Python 3.12, a
    SyntaxWarning since, shown as ``<cell>:2:``): the analysis of a remote cell must not add a
    line a plain cell does not show (IPython's checks and the run show theirs)."""
    code = r'''import re
pattern = re.compile("\d+")
get_ipython().run_line_magic("timeit", 're.compile("\\w")')
'''
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        names = analyze(code)
    assert "pattern" in names.writes
    assert [str(w.message) for w in shown] == []


@pytest.mark.parametrize("code, annotates", [
    ("x: int = 5", True),
    ("y: list", True),
    ("obj.a: int = 1", True),  # Python sets up __annotations__ for it, stores nothing
    ("if flag:\n    z: float = 1.0", True),
    ("try:\n    pass\nexcept Exception:\n    e: int = 1", True),
    ("match v:\n    case 1:\n        m: int = 1", True),
    ("def f():\n    local: int = 1", False),  # a function's own
    ("class C:\n    field: int = 1", False),  # the class's own
    ("x = 5", False),
])
def test_cell_level_annotations_read_and_change_the_namespaces_annotations(code, annotates):
    cell = analyze(code)
    assert cell.annotates is annotates
    assert ("__annotations__" in cell.reads) is annotates
    assert ("__annotations__" in cell.maybe_changed) is annotates


def test_code_handed_to_the_shell_in_a_made_text_is_unread_and_a_run_still_imports_all():
    """Hunt 26 H26-27: the shell's code in a text the cell makes may read any name; a `%run`
    of a made path is still a script whose names land in the notebook (review: the new check
    had split `%run`'s branch from the one before it)."""
    made_run = analyze("get_ipython().run_line_magic('run', script)")
    assert made_run.runs_unread_code and made_run.star_import
    assert analyze("get_ipython().ev(expr)").runs_unread_code
    assert not analyze("get_ipython().ev('x + 1')").runs_unread_code
    assert not analyze("get_ipython().run_line_magic('run', 'x.py')").runs_unread_code
