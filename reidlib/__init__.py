"""reidlib: the library under the Re-ID Reproduction Book.

Layers, one direction only: ``data -> models, losses -> engine -> eval, retrieval -> viz``.
A lower layer never imports a higher one.
"""

__version__ = "0.1.0"
