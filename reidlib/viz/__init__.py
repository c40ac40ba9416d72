"""reidlib.viz: figures and interactive widgets (the top layer: may import any other layer).

* :func:`erasing_explorer` — ipywidgets app over the erasing augmentations; methods are
  registered in :data:`ERASING_METHODS` with :func:`register_erasing_method`.
"""
from .widgets import (
    ERASING_METHODS,
    Control,
    ErasingExplorer,
    ErasingMethod,
    erasing_explorer,
    register_erasing_method,
)

__all__ = ["ERASING_METHODS", "Control", "ErasingExplorer", "ErasingMethod", "erasing_explorer",
           "register_erasing_method"]
