"""Shared fixtures. Real data lives beside the project in ../shared/realdata (never committed);
tests that need it skip with a reason where it is absent, as on a user's machine."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reidlib.paths import realdata_dir

ROOT = Path(__file__).resolve().parents[1]
REALDATA = realdata_dir()
# what the probe of this machine kind starts Chromium with: the background-networking flags keep it
# from calling a closed network
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def realdata_path(*parts: str) -> Path:
    """Path under ../shared/realdata, or skip the calling test where it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (see ../shared/realdata/README.md)")
    return path


@pytest.fixture(scope="session")
def realdata() -> Path:
    return realdata_path()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Small convolutions run faster on one thread, and CI shares its cores (``pytestmark =
    pytest.mark.usefixtures("one_thread")`` in a module of model tests)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


def chromium_executable() -> str:
    """The system Chromium the browser tests drive (Playwright cannot download its own here).
    Absent: a skip with a reason on a user's machine, a failure under CI (``CI`` set, as
    ``.ci/run`` does), so that CI never passes with its browser tests silently skipped."""
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        why = "no chromium executable (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return exe


@contextlib.contextmanager
def offline_tab(allowed: tuple[str, ...], *, width: int = 1280, height: int = 900) -> Iterator[tuple]:
    """``(tab, blocked)``: a headless Chromium page whose requests go through only when their URL starts
    with one of ``allowed`` (the local server, ``data:``...); every other URL is refused and listed in
    ``blocked``, so that a test can assert the page fetched nothing from the network."""
    exe = chromium_executable()
    sync_api = pytest.importorskip("playwright.sync_api")
    blocked: list[str] = []

    def only_local(route) -> None:
        if route.request.url.startswith(allowed):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": width, "height": height})
            ctx.route("**/*", only_local)
            yield ctx.new_page(), blocked
        finally:
            browser.close()
