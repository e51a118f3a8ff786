"""``python -m remote_magics.engine -f CONNECTION_FILE``: an ipykernel kernel with our engine."""
from .core import main

main()
