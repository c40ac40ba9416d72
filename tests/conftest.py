"""Shared fixtures. Real data lives beside the project in ../shared/realdata (never committed);
tests that need it skip with a reason where it is absent, as on a user's machine."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("REIDLIB_REALDATA", ROOT.parent / "shared" / "realdata"))


def realdata_path(*parts: str) -> Path:
    """Path under ../shared/realdata, or skip the calling test where it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (see ../shared/realdata/README.md)")
    return path


@pytest.fixture(scope="session")
def realdata() -> Path:
    return realdata_path()


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


def chromium_executable() -> str:
    """The system Chromium the browser tests drive (Playwright cannot download its own here).
    Absent: a skip with a reason on a user's machine, a failure under CI (``CI`` set, as
    ``.ci/run`` does), so that CI never passes with its browser tests silently skipped."""
    import os
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        why = "no chromium executable (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return exe
