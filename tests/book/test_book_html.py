"""The built book is offline: no page loads a script or stylesheet from the network, and in a real
browser with the network unreachable its math renders and its figures load.

These tests read `_build/html`, which `make test` builds first (`make book`). Run directly with
pytest and without a build, they skip with a reason; under CI (CI=true) a missing build fails.
"""
from __future__ import annotations

import functools
import http.server
import os
import threading
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import offline_tab

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
# Pages the browser test opens: the introduction and the evaluation chapter.
BROWSER_PAGES = ["book/intro.html", "book/foundations/evaluation.html"]


def _is_remote(url: str | None) -> bool:
    return bool(url) and url.strip().lower().startswith(("http://", "https://", "//"))


@pytest.fixture(scope="module")
def html_root() -> Path:
    if not (HTML / "index.html").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{HTML} has no built book: CI runs `make test`, which builds it first")
        pytest.skip(f"no built book in {HTML}: run `make book` first")
    return HTML


def remote_references(html_file: Path) -> list[str]:
    """Every <script>/<link> attribute of ``html_file`` that points at an http(s) URL."""
    soup = BeautifulSoup(html_file.read_text(encoding="utf-8"), "html.parser")
    found = []
    for tag in soup.find_all(["script", "link"]):
        for name, value in tag.attrs.items():
            values = value if isinstance(value, list) else [value]
            found += [f"<{tag.name} {name}={v}>" for v in values if _is_remote(v)]
    return found


def test_remote_reference_detector_catches_a_cdn_script(tmp_path):
    page = tmp_path / "p.html"
    page.write_text('<html><head><script src="https://cdn.example/x.js"></script>'
                    '<link rel="stylesheet" href="//fonts.example/f.css">'
                    '<script src="_static/local.js"></script></head></html>')
    assert len(remote_references(page)) == 2


def test_no_page_loads_anything_from_the_network(html_root):
    pages = sorted(html_root.rglob("*.html"))
    assert len(pages) >= 3, f"expected the book's pages under {html_root}, found {len(pages)}"
    offending = {str(p.relative_to(html_root)): refs for p in pages if (refs := remote_references(p))}
    assert not offending, f"pages that load from the network: {offending}"


def test_vendored_front_end_is_in_the_build(html_root):
    static = html_root / "_static" / "vendor"
    for rel in ["mathjax/tex-chtml.js", "require.js", "embed-amd.js"]:
        assert (static / rel).stat().st_size > 1000, f"missing vendored file {static / rel}"


@pytest.fixture(scope="module")
def server(html_root):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest's output readable
            pass

    handler = functools.partial(QuietHandler, directory=str(html_root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()



@pytest.mark.browser
@pytest.mark.parametrize("page", BROWSER_PAGES)
def test_page_renders_math_and_figures_offline(server, page, tmp_path):
    # the network is unreachable for the book: anything but the local server is recorded and refused
    with offline_tab((server, "data:")) as (tab, blocked):
        response = tab.goto(f"{server}/{page}", wait_until="load")
        assert response is not None and response.ok, f"{page} is not in the built book"
        tab.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
        tab.evaluate("MathJax.startup.promise")
        n_math = tab.locator("mjx-container").count()
        images = tab.evaluate(
            "Array.from(document.images).map(i => [i.currentSrc, i.complete, i.naturalWidth])")
        tab.screenshot(path=str(tmp_path / (page.replace("/", "_") + ".png")), full_page=True)
    assert n_math > 0, f"{page}: no MathJax output element (mjx-container) rendered"
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert not broken, f"{page}: images that did not load: {broken}"
    assert not blocked, f"{page}: requests to outside the book: {blocked}"


# ---------------------------------------------------------------------------------------------
# the explorers respond on the static pages: precomputed frames, picked by the sliders in the browser
# (page, the view whose image must change, the slider moved, its readout before, key presses, after)
EXPLORERS = [
    ("book/foundations/erasing.html", ".erasing-frames-erased", ".erasing-frames-seed", "0", 3, "3"),
    ("book/foundations/erasing.html", ".rpe-frames-rpe", ".rpe-frames-n", "20", 1, "60"),
    ("book/esnet/explore.html", ".besm-frames-erased", ".besm-frames-ratio", "0.2", 1, "0.3"),
]
LIVE = {"book/foundations/erasing.html": "book/foundations/erasing.ipynb", "book/esnet/explore.html": "book/esnet/explore.ipynb"}

# the bytes of the top image of a view (the frame shown now), read back from its blob: URL
_SHOWN = """async (sel) => {
  const imgs = document.querySelectorAll(sel + ' img');
  if (!imgs.length) return null;
  const img = imgs[imgs.length - 1];
  const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let h = 0;
  for (const b of buf) h = (Math.imul(h, 31) + b) >>> 0;
  return [buf.length, h];
}"""


def _shown_when(tab, view: str, accept, timeout: float = 10.0) -> list:
    """Poll the frame ``view`` shows until ``accept(frame)``; the last frame seen."""
    deadline = time.monotonic() + timeout
    while True:
        shown = tab.evaluate(_SHOWN, view)
        if accept(shown) or time.monotonic() > deadline:
            return shown
        tab.wait_for_timeout(100)


def _page(html_root: Path, page: str) -> Path:
    path = html_root / page
    if not path.exists():
        pytest.skip(f"{page} is not in the build {html_root}: run `make book`")
    return path


@pytest.mark.parametrize("page", sorted(LIVE))
def test_explorer_pages_say_how_to_go_live(html_root, page):
    text = " ".join(BeautifulSoup(_page(html_root, page).read_text(encoding="utf-8"), "html.parser").get_text().split())
    assert f"voila {LIVE[page]}" in text and f"jupyter lab {LIVE[page]}" in text, f"{page} does not say how to go live"
    assert "static=True" in text and "precomputed" in text


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("page, view, slider, start, presses, end", EXPLORERS)
def test_moving_a_slider_on_the_static_page_changes_the_image(server, html_root, page, view, slider, start, presses,
                                                             end, tmp_path):
    _page(html_root, page)
    with offline_tab((server, "data:", "blob:"), width=1400, height=1000) as (tab, blocked):
        response = tab.goto(f"{server}/{page}", wait_until="load")
        assert response is not None and response.ok
        tab.wait_for_selector(f"{view} img", timeout=60_000)   # the vendored widget manager rendered the state
        readout = tab.locator(f"{slider} .widget-readout")
        assert readout.inner_text().strip() == start
        before, shot_before = tab.evaluate(_SHOWN, view), tab.locator(view).screenshot()

        tab.locator(f"{slider} .noUi-handle").focus()
        for _ in range(presses):
            tab.keyboard.press("ArrowRight")
        tab.wait_for_function("([s, v]) => document.querySelector(s + ' .widget-readout').innerText.trim() === v",
                              arg=[slider, end], timeout=10_000)
        after = _shown_when(tab, view, lambda x: x is not None and x != before)
        shot_after = tab.locator(view).screenshot()
        tab.screenshot(path=str(tmp_path / "moved.png"), full_page=True)

        for _ in range(presses):                                # back: the first frame again
            tab.keyboard.press("ArrowLeft")
        tab.wait_for_function("([s, v]) => document.querySelector(s + ' .widget-readout').innerText.trim() === v",
                              arg=[slider, start], timeout=10_000)
        back = _shown_when(tab, view, lambda x: x == before)
    assert before is not None and after != before and shot_after != shot_before, \
        f"{page}: moving {slider} did not change {view}"
    assert back == before, f"{page}: moving {slider} back did not show the first frame again"
    assert not blocked, f"{page}: requests to outside the book: {blocked}"
