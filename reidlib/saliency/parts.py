"""Where a heat map falls on synthped's part masks: the identity-specific details (the small parts that tell apart
identities sharing every coarse attribute) and the person against the background. A measurement beyond the papers
(their figures show maps; synthped knows where the parts are), used by the "Re-ID done right" chapter's saliency
page and the feature-fusion chapter's activation maps (Fig. 8)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .retrieval_cam import attention_share, implicit_attention

__all__ = ["DETAILS", "part_masks", "attention_on_parts", "share_summary"]

#: synthped's identity-specific parts (the small details that tell apart identities sharing every attribute).
DETAILS = ("logo", "stripe", "shoes", "strap")


def part_masks(records: Any) -> dict[str, torch.Tensor]:
    """``{"details": (N, H, W), "person": (N, H, W)}`` bool masks of synthped records: the union of the
    identity-specific parts (:data:`DETAILS`) and of every part (the person against the background)."""
    from reidlib.data.synthped import load_part_masks

    masks = [load_part_masks(r.path) for r in records]
    details = np.stack([np.any([m[p] for p in DETAILS], axis=0) for m in masks])
    person = np.stack([np.any(list(m.values()), axis=0) for m in masks])
    return {"details": torch.from_numpy(details), "person": torch.from_numpy(person)}


def attention_on_parts(model: nn.Module, images: torch.Tensor, records: Any, layer: nn.Module | str, *,
                       top: int = 50) -> Any:
    """Per image: the share of ``model``'s implicit attention (Grad-CAM of its ``top`` strongest descriptor
    dimensions on ``layer``, :func:`~reidlib.saliency.implicit_attention`) that falls on the identity-specific
    details and on the person (:func:`part_masks` of ``records``, the images' synthped records), beside those
    masks' area (the share a uniform map would get). ``images``: ``(N, 3, H, W)``, normalised as the model
    expects. A DataFrame, one row per image (NaN where a map is empty)."""
    import pandas as pd

    maps = implicit_attention(model, images, layer, top=top).maps.detach()
    masks = part_masks(records)
    rows = {f"share on {k}": attention_share(maps, m).numpy() for k, m in masks.items()}
    rows.update({f"area of {k}": m.float().mean((1, 2)).numpy() for k, m in masks.items()})
    return pd.DataFrame(rows)


def share_summary(shares: dict[str, Any]) -> Any:
    """One row per model of ``{model: attention_on_parts(...) frame}``: the mean shares and areas over the
    images, and each share over its area (``details: share / area``, ``person: share / area``; 1 is what a
    uniform map gets)."""
    import pandas as pd

    table = pd.DataFrame({name: frame.mean() for name, frame in shares.items()}).T
    for part in ("details", "person"):
        table[f"{part}: share / area"] = table[f"share on {part}"] / table[f"area of {part}"]
    return table
