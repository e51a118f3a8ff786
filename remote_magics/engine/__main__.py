"""``python -m remote_magics.engine -f CONNECTION_FILE``: an ipykernel kernel with our engine."""
from .startup import leave_the_folder_off_the_path

leave_the_folder_off_the_path()  # before anything else is imported

from .core import main  # noqa: E402

main()
