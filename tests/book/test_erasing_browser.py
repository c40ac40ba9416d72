"""The erasing explorer in a real browser: Voila serves the book page's notebook
(book/foundations/erasing.ipynb) on localhost, headless Chromium (driven by Playwright) moves the
seed slider with the keyboard, and the rendered erased image must change.

Skips with a reason where no chromium executable, Voila or Playwright is installed. Nothing but
localhost is reachable from the page (other requests are aborted)."""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import offline_tab

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "book" / "foundations" / "erasing.ipynb"
ERASED = "img.erasing-explorer-erased"



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def voila_url(tmp_path):
    if importlib.util.find_spec("voila") is None:
        pytest.skip("voila is not installed (pip install voila)")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log_path = tmp_path / "voila.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1", str(NOTEBOOK)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"voila exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"voila did not answer on {url} within 90 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.browser
@pytest.mark.slow
def test_moving_the_seed_slider_in_voila_changes_the_erased_image(voila_url, tmp_path):
    url, log_path = voila_url
    with offline_tab((url, "data:", "blob:", "ws://127.0.0.1"), width=1400, height=1000) as (tab, blocked):
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        tab.goto(url, timeout=60_000)
        try:  # Voila runs the whole page first, then renders the widgets
            tab.wait_for_function(f"() => document.querySelector('{ERASED}')?.src", timeout=180_000)
        except PlaywrightTimeout:
            tab.screenshot(path=str(tmp_path / "timeout.png"), full_page=True)
            pytest.fail(f"the explorer never rendered; voila log:\n{log_path.read_text()[-3000:]}")
        erased = tab.locator(ERASED)
        mask = tab.locator("img.erasing-explorer-mask")
        before = erased.get_attribute("src"), mask.get_attribute("src")
        readout = tab.locator(".erasing-explorer-seed .widget-readout")
        assert readout.inner_text().strip() == "0"

        handle = tab.locator(".erasing-explorer-seed .noUi-handle")
        handle.focus()
        for _ in range(3):
            tab.keyboard.press("ArrowRight")
        tab.wait_for_function("() => document.querySelector('.erasing-explorer-seed .widget-readout')"
                              ".innerText.trim() === '3'", timeout=30_000)
        tab.wait_for_function(f"(s) => document.querySelector('{ERASED}').src !== s", arg=before[0],
                              timeout=60_000)
        after = erased.get_attribute("src"), mask.get_attribute("src")
        shot = tmp_path / "erasing_explorer_seed3.png"
        tab.screenshot(path=str(shot), full_page=True)
    assert after[0] and after[0] != before[0], "the erased image did not change"
    assert after[1] and after[1] != before[1], "the mask did not change"
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}; requests refused (not localhost): {blocked}")
