"""The package's layers: who may import whom, and what the shipped engine may import at all.

Fast and static (every import statement, also those inside functions and under
``TYPE_CHECKING``), plus one real engine kernel that must not load the notebook side.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "remote_magics"

#: Bottom to top. A module imports only from its own layer or a lower one.
LAYERS = ("errors", "wire", "engine", "client", "cells", "targets", "")  # "": the top-level modules
#: The folders shipped to kernels and hosts that lack remote_magics.
SHIPPED = ("wire", "engine")
#: What shipped code may import besides itself: the standard library and these.
#: (zmq: ipykernel's own dependency; engine.curve runs a ZAP handler for Curve-served engines.)
SHIPPED_MAY_IMPORT = {"cloudpickle", "ipykernel", "zmq"}
#: Imports that shipped code makes only to learn whether something is there, never needing it.
OPTIONAL = {"packaging", "pip",  # tasks.satisfied: a requirement's check, with a fallback
            "jupyter_core",  # persist.runtime_dir: Jupyter's runtime dir, with a fallback
            "blake3", "cryptography"}  # protocol.frames_digest: faster MACs when both sides have them


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> list[tuple[str, int]]:
    """Every module ``name`` imports (absolute names, package modules resolved), with its line."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full if full in MODULES else base, node.lineno))
    return found


def internal_edges() -> dict[str, set[str]]:
    """Module → the package modules it imports (a package's own ``__init__`` not counted)."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for target, _ in imports_of(name):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges[name].add(target)
    return edges


def layer_of(name: str) -> int:
    parts = name.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return LAYERS.index("")


def test_every_module_is_in_a_known_layer():
    folders = {p.parent.name for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE}
    assert folders <= set(LAYERS), f"folders without a layer: {folders - set(LAYERS)}"


def test_no_module_imports_a_higher_layer():
    climbing = [f"{name} ({LAYERS[layer_of(name)] or 'top'}) imports {target} "
                f"({LAYERS[layer_of(target)] or 'top'})"
                for name, targets in internal_edges().items() for target in targets
                if layer_of(target) > layer_of(name)]
    assert not climbing, "\n".join(climbing)


def test_no_modules_import_each_other_in_a_circle():
    edges = internal_edges()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    circles: list[list[str]] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(edges[name]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("folder", SHIPPED)
def test_shipped_code_imports_only_the_standard_library_cloudpickle_and_ipykernel(folder):
    wrong = []
    for name in MODULES:
        if not name.startswith(f"remote_magics.{folder}"):
            continue
        for target, line in imports_of(name):
            top = target.split(".")[0]
            if top == "remote_magics":
                if target.split(".")[1:2] not in ([f] for f in SHIPPED):
                    wrong.append(f"{name}:{line} imports {target}, which is not shipped")
            elif top not in sys.stdlib_module_names | SHIPPED_MAY_IMPORT | OPTIONAL:
                wrong.append(f"{name}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_shipped_sources_are_exactly_the_shipped_folders():
    from remote_magics.client.handshake import shipped_sources

    sources = shipped_sources()
    expected = {str(p.relative_to(PACKAGE.parent)) for folder in SHIPPED
                for p in (PACKAGE / folder).glob("*.py")}
    assert set(sources) == expected | {"remote_magics/__init__.py"}
    assert "import" not in sources["remote_magics/__init__.py"]  # the API is not shipped


def test_the_package_imports_nothing_until_asked():
    import subprocess

    code = ("import sys, remote_magics\n"
            "print(sorted(m for m in sys.modules if m.startswith('remote_magics.')))\n"
            "remote_magics.RemoteError\n"
            "print('IPython' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out == ["[]", "False"]


def test_a_running_engine_loads_no_notebook_side_module(shell):
    """A real engine (``python -m remote_magics.engine``) after a run with a proxy, a task
    function and a channel imports only the shipped folders and errors."""
    import remote_magics
    from remote_magics.channels import Channel
    from remote_magics.engine.tasks import map_chunk

    target = remote_magics.connect(name="layers")
    try:
        ns = {"xs": list(range(10))}
        target.run("big = list(range(10))", ns, download="none")
        ns.update(ch=Channel(target), map_chunk=map_chunk)
        target.run("doubled = map_chunk(lambda x: 2 * x, big, 0)\nch.close()\n"
                   "import sys\nloaded = sorted(m for m in sys.modules "
                   "if m.startswith('remote_magics'))", ns, download="all")
        assert ns["doubled"] == [2 * x for x in range(10)]
        outside = [m for m in ns["loaded"] if m.split(".")[1:2] not in (["wire"], ["engine"])
                   and m not in ("remote_magics", "remote_magics.errors")]
        assert not outside, outside
        assert "remote_magics.engine.core" in ns["loaded"]
    finally:
        remote_magics.disconnect("layers")
