"""A torch ``Dataset`` over records: loads each image with PIL as RGB and applies a transform."""
from __future__ import annotations

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

__all__ = ["ImageDataset", "UnreadableImageError", "read_image", "verify_images"]


class UnreadableImageError(DatasetLayoutError):
    """An image file exists but PIL cannot decode it."""


def read_image(path: str | Path) -> Image.Image:
    """Open ``path`` as an RGB PIL image, fully decoded.

    Raises :class:`DatasetNotFoundError` for a missing file and :class:`UnreadableImageError`
    (naming the file) for one PIL cannot decode: empty, truncated, or not an image.
    """
    path = Path(path)
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
        self.records = list(records)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int]:
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
