"""Where things are: the project root, the cache folder, the real-data folder.

One place for what was found three different ways (``parents[2]`` in the engine, ``Path.cwd()``
walks in the book, an environment variable in the tests):

* :func:`project_root`: the checkout that holds ``reidlib/`` and ``results/`` (``$REIDLIB_ROOT``
  overrides; ``None`` for an installed package outside a checkout).
* :func:`cache_dir`: ``$REIDLIB_DATA`` or ``~/.cache/reidlib`` (synthped presets, demo models).
* :func:`realdata_dir`: ``$REIDLIB_REALDATA`` or ``<root>/../shared/realdata`` (real annotation
  files and the CUHK03-NP subset used by tests and runs; never committed).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "cache_dir", "realdata_dir", "results_dir"]


def _is_root(path: Path) -> bool:
    return (path / "reidlib" / "__init__.py").is_file() and (path / "pyproject.toml").is_file()


def project_root() -> Path | None:
    """The project checkout: ``$REIDLIB_ROOT``, else the folder above this package when it is a
    checkout (``pip install -e .``), else the nearest parent of the working directory that is one."""
    env = os.environ.get("REIDLIB_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve().parents[1]
    if _is_root(here):
        return here
    cwd = Path.cwd().resolve()
    return next((p for p in (cwd, *cwd.parents) if _is_root(p)), None)


def results_dir() -> Path:
    """``<project root>/results`` (the run records the book reads), or ``./results`` outside a checkout."""
    root = project_root()
    return (root if root is not None else Path.cwd()) / "results"


def cache_dir(*parts: str) -> Path:
    """``$REIDLIB_DATA`` (or ``~/.cache/reidlib``) joined with ``parts``; not created here."""
    env = os.environ.get("REIDLIB_DATA")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "reidlib"
    return base.joinpath(*parts)


def realdata_dir(*parts: str) -> Path:
    """``$REIDLIB_REALDATA`` (or ``<project root>/../shared/realdata``) joined with ``parts``.
    The path may not exist: callers check, and tests skip where it is absent."""
    env = os.environ.get("REIDLIB_REALDATA")
    if env:
        base = Path(env).expanduser()
    else:
        root = project_root()
        base = (root.parent if root is not None else Path.cwd()) / "shared" / "realdata"
    return base.joinpath(*parts)
