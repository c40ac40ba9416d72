"""The record type every dataset parser returns: one image of one identity seen by one camera."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    """One image.

    Attributes:
        path: absolute path of the image file.
        pid: identity label as in the file name (Market-style ``0002`` -> 2; ``0`` = distractor).
        camid: camera index, 0-based (Market ``c1`` -> 0).
        extra: dataset-specific fields (e.g. ``{"attributes": {...}}``, ``{"frame": 46182}``).
    """

    path: str
    pid: int
    camid: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
