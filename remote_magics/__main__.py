"""``python -m remote_magics``: the ``remote-magics`` command line."""
import sys

from .cli import main

sys.exit(main())
