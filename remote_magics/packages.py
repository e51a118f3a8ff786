"""Packages in a target's environment: ``%%remote --packages`` and ``%remote_pip``.

pip runs in the target, as ``sys.executable -m pip`` of its kernel, so packages land where that
kernel imports from; its output is printed there line by line, and so streams to the notebook
as the install goes. ``--packages`` installs a requirement once per target (per kernel: a
restarted kernel is asked again), and a requirement the target already satisfies costs no pip
run at all (checked with ``importlib.metadata`` and pip's own ``packaging``).
"""
from __future__ import annotations

import re
import shlex
from typing import Callable, Sequence

from .cells import display
from .engine.tasks import pip as remote_pip
from .errors import PackageInstallError
from .targets.base import Target

#: Requirements already handled, per engine (a new kernel gets a new engine id).
_satisfied: dict[str, set[str]] = {}

def parse_requirements(text: str) -> list[str]:
    """``"pytz>=2023,numpy"`` → ``["pytz>=2023", "numpy"]``; ``"x>=1,<2"`` stays one requirement."""
    found: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if found and re.match(r"^(<|>|=|!|~)", piece):  # a version clause of the last one
            found[-1] += "," + piece
        else:
            found.append(piece)
    return found


def _run_pip(target: Target, command: list[str], requirements: list[str], what: str,
             on_output: Callable[[dict], None] | None) -> int:
    namespace = {"pip": remote_pip, "command": command, "requirements": requirements}
    target.run("pip_status = pip(command, requirements)", namespace, download="all",
               on_output=on_output)
    status, tail = namespace["pip_status"]
    if status != 0:
        raise PackageInstallError(target.name, what, status, tail)
    return status


def ensure(target: Target, requirements: Sequence[str], *, pip_options: Sequence[str] = (),
           on_output: Callable[[dict], None] | None = display.show) -> list[str]:
    """Install what ``target`` lacks of ``requirements``; the requirements that were checked.

    Raises :class:`~remote_magics.errors.PackageInstallError` with pip's output when pip fails.
    """
    done = _satisfied.setdefault(target.engine_id, set())
    todo = [r for r in requirements if r not in done]
    if todo:
        _run_pip(target, ["install", "--disable-pip-version-check", *pip_options], todo,
                 " ".join(todo), on_output)
        done.update(todo)
    return todo


def pip(target: Target, args: str | Sequence[str], *,
        on_output: Callable[[dict], None] | None = display.show) -> None:
    """Run ``pip ARGS`` in ``target``'s environment, its output streaming here."""
    argv = shlex.split(args) if isinstance(args, str) else list(args)
    if not argv:
        raise ValueError("pip needs a command, such as: install pytz")
    _run_pip(target, [*argv, "--disable-pip-version-check"] if argv[0] != "--version" else argv,
             [], " ".join(argv), on_output)
