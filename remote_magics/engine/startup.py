"""What a kernel process does first, before it imports anything else.

Standard library only: shipped with the engine.
"""
from __future__ import annotations

import os
import sys


def leave_the_folder_off_the_path() -> None:
    """Take the working folder off the front of ``sys.path``, as ipykernel's launcher does.

    ``python -m`` puts it there (``-c``: as ``''``), ahead of the standard library, so a
    notebook folder's ``random.py`` or ``statistics.py`` was imported instead of the standard
    module: by the engine itself while it started (it died: "cannot import name 'SystemRandom'")
    and by a cell's ``import statistics`` (hunt 23, H23-13). IPython puts ``''`` back after the
    standard library, as in a kernel Jupyter started. Looks at the first two entries: the
    shipped engine's loader puts its sources' folder first.
    """
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:  # the folder is gone: nothing in it can shadow anything
        here = None
    for index, entry in enumerate(sys.path[:2]):
        if entry == "" or (here is not None and os.path.realpath(entry) == here):
            del sys.path[index]
            return
