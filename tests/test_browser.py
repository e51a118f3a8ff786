"""End to end in a real browser: JupyterLab on 127.0.0.1, headless Debian Chromium via Playwright.

Runs the quick start as a person would (open it, Run All), then starts a new notebook on the
installed remote kernelspec from the launcher and runs cells in it. Screenshots go to the test's
tmp dir. Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run``), never a browser
that Playwright downloads.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
MINUTE = 60_000  # Playwright waits in milliseconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _ServerLog(threading.Thread):
    """Copies the server's stderr to a file (so the pipe never fills) and notices its URL."""

    def __init__(self, process: subprocess.Popen, path: Path, pattern: str) -> None:
        super().__init__(daemon=True)
        self.process, self.path, self.pattern = process, path, re.compile(pattern)
        self.ready = threading.Event()
        self.over = threading.Event()  # ready, or the server's stderr ended (it exited)

    def run(self) -> None:
        with self.path.open("w") as log:
            for line in iter(self.process.stderr.readline, b""):
                text = line.decode(errors="replace")
                log.write(text)
                log.flush()
                if self.pattern.search(text):
                    self.ready.set()
                    self.over.set()
        self.over.set()


def _write_setting(settings: Path, plugin: str, values: dict) -> None:
    """A JupyterLab user setting: start the notebook's kernel without asking, fetch no news."""
    path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, a temporary root and Jupyter dirs, our kernelspec."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "01-quickstart.ipynb", root)
    prefix = base / "prefix"
    subprocess.run([sys.executable, "-m", "remote_magics", "install-kernel", "--name", "browser",
                    "--prefix", str(prefix)], check=True, capture_output=True, timeout=120)
    settings = base / "settings"
    # windowing off: every cell stays in the page, also when Run All scrolls it out of view
    _write_setting(settings, "notebook-extension/tracker",
                   {"autoStartDefaultKernel": True, "windowingMode": "none"})
    _write_setting(settings, "apputils-extension/notification", {"fetchNews": "false"})
    env = {**os.environ,
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
           "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_DATA_DIR": str(base / "data"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime")}
    token = secrets.token_hex(16)
    for attempt in range(3):  # a free port may be taken before the server binds it (a kernel
        port = _free_port()  # the other test worker starts): then another one
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             f"--LabApp.workspaces_dir={base / 'workspaces'}", "--ServerApp.allow_root=True",
             "--LabApp.extension_manager=readonly",  # no package index, no update checks
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=root)
        log = _ServerLog(server, base / "server.log", rf"http://127\.0\.0\.1:{port}/lab")
        log.start()
        log.over.wait(timeout=120)
        if log.ready.is_set() or "is not available" not in (base / "server.log").read_text():
            break
        server.wait(timeout=30)
        log.join(timeout=30)
        server.stderr.close()
    try:
        assert log.ready.is_set(), (base / "server.log").read_text()
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "root": root}
    finally:
        descendants = psutil.Process(server.pid).children(recursive=True)
        server.terminate()  # Jupyter shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.join(timeout=30)
        server.stderr.close()
        _, alive = psutil.wait_procs(descendants, timeout=30)
        for process in alive:
            process.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$")).first.click()


def _type_cell(page, lines: list[str]) -> None:
    """Type a cell into the active notebook's active cell and run it with Shift+Enter."""
    editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content")
    editor.click()
    for i, line in enumerate(lines):
        if i:
            page.keyboard.press("Enter")
        page.keyboard.type(line)
    page.keyboard.press("Shift+Enter")


def _run_first_cell_until_it_answers(page, panel, text: str, tries: int = 6) -> None:
    """Run the first code cell until its output shows ``text``, as a person would retry it.

    JupyterLab silently skips a cell run while its kernel is still starting or its websocket is
    still connecting, and the page shows no reliable sign of that moment; the first cell here
    is idempotent, so running it again is harmless.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    found = panel.locator(".jp-OutputArea-output").filter(has_text=text)
    for _ in range(tries):
        panel.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            found.first.wait_for(timeout=MINUTE // 3)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the first cell never showed {text!r}")


def test_quickstart_and_remote_kernel_in_jupyterlab(lab, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab['url']}/lab/tree/01-quickstart.ipynb?token={lab['token']}")
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
            timeout=2 * MINUTE)
        outputs = panel.locator(".jp-OutputArea-output")
        _run_first_cell_until_it_answers(page, panel, "Connected target 'default'")
        _menu(page, "Run", "Run All Cells")
        outputs.filter(has_text=re.compile(r"counted in process \d+")).wait_for(timeout=MINUTE)
        quick_proxy = panel.locator(".jp-RenderedHTMLCommon .remote-magics-proxy")
        quick_proxy.first.wait_for(timeout=3 * MINUTE)
        assert "list" in quick_proxy.first.inner_text()
        outputs.filter(has_text="shut down").first.wait_for(timeout=3 * MINUTE)
        assert panel.locator(".jp-RenderedImage img").count() >= 1  # the remote plot
        assert outputs.filter(has_text=re.compile(r"^\s*9594\s*$")).count() == 1
        assert panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                             ).filter(has_text="Error").count() == 0
        page.screenshot(path=str(tmp_path / "quickstart.png"), full_page=True)

        _menu(page, "File", "New Launcher")
        card = page.locator(".jp-LauncherCard[data-category='Notebook']",
                            has_text="Python 3 (remote: browser)")
        card.click()
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
            timeout=2 * MINUTE)
        panel.locator(".jp-KernelName", has_text="remote: browser").wait_for(timeout=MINUTE)

        panel.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
        page.keyboard.type("import os; print('remote pid', os.getpid())")
        _run_first_cell_until_it_answers(page, panel, "remote pid")

        _type_cell(page, ["import matplotlib.pyplot as plt; plt.plot([1, 3, 2]); plt.show()"])
        panel.locator(".jp-RenderedImage img").first.wait_for(timeout=2 * MINUTE)

        _type_cell(page, ["big = list(range(300_000))"])
        _type_cell(page, ["%%local", "big"])
        proxy = panel.locator(".jp-RenderedHTMLCommon .remote-magics-proxy")
        proxy.first.wait_for(timeout=2 * MINUTE)
        assert "RemoteObject" in proxy.first.inner_text()
        assert "list" in proxy.first.inner_text()

        # input() in an engine cell asks here, in JupyterLab's own input box
        _type_cell(page, ["who = input('Your name? ')", "print('hello', who.upper())"])
        box = panel.locator(".jp-Stdin-input")
        box.wait_for(timeout=MINUTE)
        assert "Your name?" in panel.locator(".jp-Stdin-prompt").first.inner_text()
        box.fill("ada")
        box.press("Enter")
        outputs = panel.locator(".jp-OutputArea-output")
        outputs.filter(has_text="hello ADA").first.wait_for(timeout=MINUTE)
        page.screenshot(path=str(tmp_path / "remote-kernel.png"), full_page=True)
    finally:
        page.screenshot(path=str(tmp_path / "last.png"))  # what the page showed, also on failure
        page.close()
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
