"""A torch ``Dataset`` over records: loads each image with PIL as RGB and applies a transform."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F
from tqdm.auto import tqdm

from .datasets import DatasetLayoutError, DatasetNotFoundError
from .image_record import Record

__all__ = ["ImageDataset", "UnreadableImageError", "collate_images", "read_image", "verify_images"]


class UnreadableImageError(DatasetLayoutError):
    """An image file exists but PIL cannot decode it."""


def read_image(path: str | Path) -> Image.Image:
    """Open ``path`` as an RGB PIL image, fully decoded.

    Raises :class:`DatasetNotFoundError` for a missing file and :class:`UnreadableImageError`
    (naming the file) for one PIL cannot decode: empty, truncated, or not an image.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"read_image: path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    path = Path(path)
    if path.is_dir():
        raise UnreadableImageError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # convert() decodes the whole file, so truncation shows here
    except FileNotFoundError:
        raise DatasetNotFoundError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(
            f"{path}: cannot read the image ({type(err).__name__}: {err}); expected a JPEG/PNG file "
            f"of the dataset ({path.stat().st_size if path.exists() else 0} bytes on disk)") from None


def _to_tensor(image: Any) -> torch.Tensor:
    # float32 in [0, 1], (3, H, W): what a missing transform or a PIL-only transform leaves.
    return F.to_dtype(F.to_image(image), torch.float32, scale=True)


class ImageDataset(Dataset):
    """Images of ``records`` as ``(image, pid, camid, index)``.

    Args:
        records: the records of one split (``ds.train``, ``ds.query``...).
        transform: applied to the RGB PIL image (torchvision v1 or v2 pipelines); a PIL image it
            returns (or no transform) becomes a float tensor ``(3, H, W)`` in ``[0, 1]``.

    Returns per item: ``image`` the transformed tensor ``(3, H, W)``, ``pid`` and ``camid``
    (ints of the record) and ``index`` (position in ``records``: look up ``extra`` with it).
    """

    def __init__(self, records: Sequence[Record], transform: Callable[[Any], Any] | None = None) -> None:
        if hasattr(records, "train") and hasattr(records, "gallery"):  # a ReIDDataset
            raise TypeError("ImageDataset takes the records of one split: pass ds.train, ds.query or ds.gallery, "
                            "not the ReIDDataset")
        if isinstance(records, (str, bytes, os.PathLike)) or not hasattr(records, "__iter__"):
            raise TypeError(f"ImageDataset: records must be a sequence of Record, got {type(records).__name__}")
        self.records = list(records)
        for i, r in enumerate(self.records):
            if not all(hasattr(r, a) for a in ("path", "pid", "camid")):
                raise TypeError(f"ImageDataset: records[{i}] is a {type(r).__name__} ({r!r:.80}), not a Record with "
                                "path, pid and camid (build the records with build_dataset or Record(path, pid, camid))")
        if transform is not None and not callable(transform):
            raise TypeError(f"ImageDataset: transform must be callable (e.g. build_transforms(...)) or None, "
                            f"got {type(transform).__name__}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int]:
        if isinstance(index, torch.Tensor) and index.dim() == 0:
            index = int(index)
        if not isinstance(index, int) and not hasattr(index, "__index__"):
            raise TypeError(f"ImageDataset index must be an int, got {type(index).__name__} {index!r}")
        if not -len(self.records) <= index < len(self.records):
            raise IndexError(f"ImageDataset index {index} is out of range: the dataset has {len(self.records)} images")
        record = self.records[index]
        image: Any = read_image(record.path)
        if self.transform is not None:
            image = self.transform(image)
        if not isinstance(image, torch.Tensor):
            image = _to_tensor(image)
        return image, record.pid, record.camid, index

    def __repr__(self) -> str:
        return f"ImageDataset({len(self)} images, transform={self.transform!r})"


def verify_images(records: Sequence[Record], *, progress: bool = True) -> None:
    """Decode every image of ``records`` and raise on the first unreadable one (naming the file)."""
    for record in tqdm(records, desc="verify images", disable=not progress):
        read_image(record.path)


def collate_images(items: Sequence[tuple]) -> tuple:
    """Collate ``(image (3, H, W), pid, camid, index)`` items: images stacked to ``(B, 3, H, W)`` when they
    share one size, else kept as a list of ``B`` tensors (aspect-preserving inputs,
    :func:`reidlib.data.transforms.build_aspect_transforms`); the labels as ``(B,)`` long tensors."""
    if not items:
        raise ValueError("collate_images: got an empty batch")
    images = [it[0] for it in items]
    same = all(im.shape == images[0].shape for im in images)
    labels = [torch.as_tensor([int(it[k]) for it in items], dtype=torch.long) for k in (1, 2, 3)]
    return (torch.stack(images) if same else images, *labels)
