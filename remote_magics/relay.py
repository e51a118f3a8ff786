"""Showing a remote cell's output in the notebook, as the remote kernel published it."""
from __future__ import annotations

import sys

from IPython.display import clear_output, publish_display_data


def show(msg: dict) -> None:
    """Re-publish one iopub message of a remote request in the local notebook."""
    kind = msg["msg_type"]
    content = msg["content"]
    if kind.startswith("remote_channel_"):  # objects a remote cell sent on a channel
        from .channels import deliver

        deliver(msg)
    elif kind == "stream":
        stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
        stream.write(content.get("text", ""))
        stream.flush()
    elif kind in ("display_data", "update_display_data", "execute_result"):
        publish_display_data(
            data=content.get("data", {}),
            metadata=content.get("metadata") or {},
            transient=content.get("transient") or None,
            update=kind == "update_display_data",
        )
    elif kind == "clear_output":
        clear_output(wait=bool(content.get("wait")))
    elif kind == "error":  # code that showed a traceback itself without raising
        sys.stderr.write("\n".join(content.get("traceback", [])) + "\n")
