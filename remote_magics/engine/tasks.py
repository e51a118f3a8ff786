"""Functions the notebook side runs in a target, as ordinary runs: shipped with the engine.

A run's namespace carries the function itself (it pickles by reference, so the remote side
imports it from here), and the cell is one call: ``pip_status = pip(command, requirements)``.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from typing import Any, Callable, Sequence

#: The note a failing item's exception carries in :func:`map_chunk`: its index.
MAP_ITEM_NOTE = "(remote_magics map item {index})"


def sync_files(root: str, files: dict[str, bytes], removed: Sequence[str]) -> None:
    """Mirror files of the local directory ``root`` into a private directory first on ``sys.path``.

    ``files``: relative POSIX path → content, written; ``removed``: relative paths, deleted.
    The modules they hold are dropped from ``sys.modules``, so the next import loads them anew.
    """
    roots = sys.__dict__.setdefault("_remote_magics_sync_roots", {})
    if root not in roots:
        roots[root] = tempfile.mkdtemp(prefix="remote_magics-sync-")
        sys.path.insert(0, roots[root])
    base = roots[root]
    for rel in [*files, *removed]:
        module = rel[:-3].replace("/", ".")
        for name in (module, module.removesuffix(".__init__")):
            sys.modules.pop(name, None)
    for rel, data in files.items():
        path = os.path.join(base, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(data)
    for rel in removed:
        try:
            os.remove(os.path.join(base, *rel.split("/")))
        except FileNotFoundError:
            pass
    importlib.invalidate_caches()


def satisfied(text: str) -> bool:
    """Whether the requirement ``text`` is already met in this environment (False when unsure)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        try:
            from pip._vendor.packaging.requirements import Requirement
        except ImportError:
            return False
    from importlib import metadata
    try:
        req = Requirement(text)
    except Exception:
        return False
    if req.url or req.extras:
        return False  # pip decides
    if req.marker is not None and not req.marker.evaluate():
        return True
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return False
    return req.specifier.contains(version, prereleases=True)


def pip(command: Sequence[str], requirements: Sequence[str]) -> tuple[int, str]:
    """Run ``python -m pip COMMAND REQUIREMENTS`` here, printing its output as it comes.

    Requirements already met are left out; when all are, pip does not run. Returns pip's exit
    status and the tail of its output.
    """
    todo = [r for r in requirements if not satisfied(r)]
    if requirements and not todo:
        return 0, ""
    process = subprocess.Popen(
        [sys.executable, "-m", "pip", *command, *todo], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail: list[str] = []
    for line in process.stdout:
        print(line, end="", flush=True)
        tail = (tail + [line])[-40:]
    status = process.wait()
    importlib.invalidate_caches()
    return status, "".join(tail)


def map_chunk(func: Callable[[Any], Any], items: Sequence, start: int) -> list:
    """``[func(x) for x in items]``; a failing item's exception notes its index (from ``start``)."""
    results = []
    for index, item in enumerate(items, start):
        try:
            results.append(func(item))
        except BaseException as error:
            error.add_note(MAP_ITEM_NOTE.format(index=index))
            raise
    return results
