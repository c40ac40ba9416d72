"""reidlib: the library under the Re-ID Reproduction Book.

Layers, lowest first, one direction only: a module imports from its own layer or lower ones, never
from a higher one, and never in a circle; reidlib never imports ``book``. ``tests/test_layers.py``
enforces it (its ``LAYERS`` table is this list).

0. ``data``, ``nn``, ``paths``, ``registry``: dataset parsers, synthped, samplers, transforms and erasers;
   tensor helpers (shape checks, distances, model modes, activation capture); paths; the name registry.
1. ``losses``: ID, triplet and the other losses.
2. ``saliency``: CG-RAM, Grad-CAM, BESM.
3. ``models``: backbones, pooling, heads, parts and other blocks, one module per paper's network.
4. ``eval``, ``retrieval``: CMC/mAP/mINP, protocols, efficiency; binary codes and fast search.
5. ``engine``: the training loop with hooks, schedules, checkpoints, run records (no paper's name).
6. ``papers``: what each paper ran (variants, presets, registrations, ``train(**parameters)``).
7. ``viz``: figures, rank lists, saliency overlays, widgets.

This package root imports none of them at import time (``import reidlib`` stays light); it may
only import them lazily, inside a function.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # reidlib.FeatureExtractor: the trained-model API, imported on first use (it needs torch and the engine)
    if name == "FeatureExtractor":
        from reidlib.engine.features import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(f"module 'reidlib' has no attribute {name!r}")
