"""One place for the project root, the cache and the real-data folder."""
from __future__ import annotations

from pathlib import Path

from reidlib import paths


def test_root_cache_and_realdata(monkeypatch, tmp_path):
    root = paths.project_root()
    assert root is not None and (root / "reidlib" / "__init__.py").is_file() and (root / "pyproject.toml").is_file()
    assert paths.results_dir() == root / "results"
    monkeypatch.setenv("REIDLIB_DATA", str(tmp_path / "cache"))
    assert paths.cache_dir("esnet-demo") == tmp_path / "cache" / "esnet-demo"
    monkeypatch.delenv("REIDLIB_DATA")
    assert paths.cache_dir() == Path.home() / ".cache" / "reidlib"
    monkeypatch.setenv("REIDLIB_REALDATA", str(tmp_path / "real"))
    assert paths.realdata_dir("market1501_labels") == tmp_path / "real" / "market1501_labels"
    monkeypatch.delenv("REIDLIB_REALDATA")
    assert paths.realdata_dir() == root.parent / "shared" / "realdata"
    monkeypatch.setenv("REIDLIB_ROOT", str(tmp_path))
    assert paths.project_root() == tmp_path.resolve()
