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
