"""reidlib.data: dataset parsers, attribute labels and the image dataset.

``build_dataset(name, root, **options)`` parses a dataset's standard layout into a
:class:`ReIDDataset` of :class:`Record` lists; :class:`ImageDataset` loads their images.
Further submodules (``reidlib.data.synthped``, ``reidlib.data.samplers``,
``reidlib.data.transforms``) are imported by name: ``from reidlib.data import synthped``.
"""
from __future__ import annotations

from typing import Any

from . import attributes
from .datasets import (
    DATASETS,
    ReIDDataset,
    build_dataset,
    parse_filename,
    register_dataset,
)
from .errors import DatasetLayoutError, DatasetNotFoundError
from .image_record import Record

__all__ = [
    "DATASETS",
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "ImageDataset",
    "Record",
    "ReIDDataset",
    "UnreadableImageError",
    "attributes",
    "collate_images",
    "build_dataset",
    "parse_filename",
    "register_dataset",
]


def __getattr__(name: str) -> Any:
    # The image dataset needs torch; import it on first use so that parsing stays light.
    if name in ("ImageDataset", "UnreadableImageError", "collate_images"):
        from . import image_dataset
        return getattr(image_dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
