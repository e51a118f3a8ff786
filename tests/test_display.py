"""Progress bars for transfers over 50 MB; --quiet hides them; small transfers never show one."""
from __future__ import annotations

import nbformat
import numpy as np
from nbclient import NotebookClient

from remote_magics.cells import display
from remote_magics.wire import protocol
from tests.conftest import plain


def _transfer(direction: str, nbytes: int) -> dict:
    return {"msg_type": protocol.TRANSFER, "content": {"direction": direction, "nbytes": nbytes}}


def test_watch_shows_bars_only_for_big_transfers_and_relays_the_rest(capsys):
    relayed = []
    with display.watching(relay=relayed.append) as watch:
        watch.on_output(_transfer("upload", 60_000_000))
        watch.on_output(_transfer("download", 10_000))
        watch.on_output({"msg_type": "stream", "content": {"text": "hi"}})
        watch.on_output(_transfer("download", 70_000_000))
    assert watch.bars == ["upload", "download"]
    assert [m["msg_type"] for m in relayed] == ["stream"]
    err = capsys.readouterr().err
    assert "upload" in err and "60.0M/60.0M" in err and "download" in err and "70.0M/70.0M" in err
    assert "B/s" in err


def test_quiet_watch_shows_nothing(capsys):
    with display.watching(quiet=True, relay=lambda m: None) as watch:
        watch.on_output(_transfer("upload", 60_000_000))
    assert watch.bars == [] and "upload" not in capsys.readouterr().err


def test_big_cell_transfers_and_fetch_show_progress_and_quiet_hides_it(shell, run, capfd):
    shell.user_ns["payload"] = np.ones(8_000_000)  # 64 MB up
    assert run("%%remote --download all\nback = payload * 2").error_in_exec is None
    err = capfd.readouterr().err
    # the rate: MB/s through chunks, GB/s through shared memory (a local engine)
    assert "upload" in err and "download" in err and "64.0M/64.0M" in err and "B/s" in err
    assert run("%%remote --download all --quiet\nback = payload * 3").error_in_exec is None
    assert "upload" not in capfd.readouterr().err
    assert run("%%remote --download none\nremote_big = payload + 1").error_in_exec is None
    capfd.readouterr()
    fetched = shell.user_ns["remote_big"].fetch()
    assert fetched[0] == 2.0 and "download" in capfd.readouterr().err
    assert run("%%remote --download all\nsmall = 1").error_in_exec is None
    assert "download" not in capfd.readouterr().err
    for name in ("payload", "back", "remote_big"):
        shell.user_ns.pop(name, None)


def test_a_saved_notebook_keeps_where_each_widget_bar_ended_not_its_start(tmp_path):
    """nbclient, like nbconvert, has no widget manager: it saves the text a widget had when it
    was shown. A bar is shown at 0%; it is shown again when it ends, so the saved notebook says
    100% (before, every big transfer left a bar stuck at 0% in the saved output)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext remote_magics\n%remote_connect",
        "import numpy as np\nup = np.ones(7_000_000)",  # 56 MB each way: over PROGRESS_BYTES
        "%%remote --download=all\nback = up * 2",
        "float(back[-1])",
        "%remote_disconnect",
    )]
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    bars = [output for output in nb.cells[2].outputs
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    texts = [plain(output.data["text/plain"]) for output in bars]
    assert [text.split(":")[0] for text in texts] == ["upload", "download"], texts
    assert all("100%" in text and "56.0M/56.0M" in text for text in texts), texts
    assert nb.cells[3].outputs[0].data["text/plain"] == "2.0"
