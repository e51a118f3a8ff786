"""``--sync-path DIR``: mirror a local directory's Python files to a target.

Functions from local modules already travel by value when a cell uses them (see
:func:`remote_magics.wire.serialize.own_modules`); this is for cells that ``import mylib`` by name. The
files go to a private directory on the target that is put first on its ``sys.path``. Before every
run, files that changed here since the last run are sent again (and files deleted here are
deleted there); a changed module is dropped from the target's ``sys.modules`` so the next import
loads the new code.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .engine.tasks import sync_files
from .errors import RemoteMagicsError
from .targets.base import Target

log = logging.getLogger(__name__)

#: Files larger than this are not mirrored (a data file with a .py name is a mistake).
MAX_FILE_BYTES = 10 * 1024 * 1024

class Mirror:
    """One local directory mirrored to one target; :meth:`push` sends what changed."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.root = Path(directory).expanduser().resolve()
        if not self.root.is_dir():
            raise RemoteMagicsError(f"--sync-path {directory}: no such directory here. Give the "
                                    "local directory whose Python files the target should import.")
        self.sent: dict[str, tuple[int, int]] = {}  # relative path → (mtime_ns, size) sent
        self._pushing = False

    def scan(self) -> dict[str, tuple[int, int]]:
        """The directory's Python files: relative POSIX path → (mtime_ns, size)."""
        found = {}
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    path = Path(folder, name)
                    stat = path.stat()
                    if stat.st_size <= MAX_FILE_BYTES:
                        found[path.relative_to(self.root).as_posix()] = (stat.st_mtime_ns,
                                                                          stat.st_size)
        return found

    def covers(self, module: str) -> bool:
        """Whether the module ``module`` (dotted) is one of the directory's files."""
        path = self.root.joinpath(*module.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    def push(self, target: Target) -> int:
        """Send the files that changed since the last push; returns how many were sent."""
        if self._pushing:  # the push is itself a run; it must not push again
            return 0
        now = self.scan()
        changed = {rel: (self.root / rel).read_bytes() for rel, stamp in now.items()
                   if self.sent.get(rel) != stamp}
        removed = [rel for rel in self.sent if rel not in now]
        if not changed and not removed:
            return 0
        self._pushing = True
        try:
            namespace = {"sync_files": sync_files, "root": str(self.root), "files": changed,
                         "removed": removed}
            target.run("sync_files(root, files, removed)", namespace, download="none",
                       on_output=None)
        finally:
            self._pushing = False
        self.sent = now
        log.debug("synced %d files of %s to %s", len(changed), self.root, target.name)
        return len(changed)


def mirror(target: Target, directory: str | os.PathLike) -> Mirror:
    """Mirror ``directory`` to ``target`` now and before each of its runs."""
    m = Mirror(directory)
    m.push(target)
    target.before_run.append(m.push)
    target.mirrored.append(m.covers)
    return m
