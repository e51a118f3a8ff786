"""``make demo`` / ``remote-magics demo``: run the quick-start notebook headless and show its outputs."""
from __future__ import annotations

import sys
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parent.parent / "notebooks" / "01-quickstart.ipynb"


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    data = output.get("data", {})
    if "text/plain" in data:
        return data["text/plain"] + "\n"
    return f"[{', '.join(data)}]\n"


def main(path: str | Path = QUICKSTART, timeout: int = 600) -> int:
    """Execute the notebook at ``path`` on a fresh local kernel and print each cell and its output."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    status = 0
    try:
        client.execute()
    except CellExecutionError as err:
        status = 1
        print(f"demo failed: {err}", file=sys.stderr)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        print("".join(f">>> {line}\n" for line in cell.source.splitlines()), end="")
        for output in cell.get("outputs", []):
            print(_text(output), end="")
        print()
    return status


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
