"""Batch-hard triplet loss (Hermans, Beyer & Leibe, "In defense of the triplet loss", 2017).

For each anchor ``a`` of a P x K batch, the hardest positive (farthest sample of the same id,
``a`` itself excluded) and the hardest negative (nearest sample of another id):

    L = 1/B sum_a [ m + max_{p: y_p = y_a, p != a} D(a, p) - min_{n: y_n != y_a} D(a, n) ]_+     (margin)
    L = 1/B sum_a softplus( max_p D(a, p) - min_n D(a, n) )                                     (soft margin)

with ``D`` the Euclidean distance or the cosine distance ``1 - cos``. Because ``[.]_+`` and
softplus are increasing, each anchor's term is the largest term over all its (p, n) triplets.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import Metric, pairwise_distance  # moved to the bottom layer; re-exported here (old home)

__all__ = ["BatchHardMining", "TripletLoss", "batch_hard_mining", "easiest_positive", "pairwise_distance"]


class BatchHardMining(NamedTuple):
    """Result of :func:`batch_hard_mining`, all ``(B,)``.

    ``dist_ap``/``dist_an``: hardest positive/negative distances (differentiable);
    ``hardest_positive``/``hardest_negative``/``easiest_positive``: indices into the batch.
    """

    dist_ap: Tensor
    dist_an: Tensor
    hardest_positive: Tensor
    hardest_negative: Tensor
    easiest_positive: Tensor


def _masks(dist: Tensor, pids: Tensor) -> tuple[Tensor, Tensor]:
    if dist.dim() != 2 or dist.shape[0] != dist.shape[1] or pids.shape != dist.shape[:1]:
        raise ValueError(f"expected dist of shape (B, B) and pids of shape (B,), "
                         f"got {tuple(dist.shape)} and {tuple(pids.shape)}")
    pids = pids.to(dist.device)
    same = pids.view(-1, 1) == pids.view(1, -1)
    positive = same & ~torch.eye(len(pids), dtype=torch.bool, device=dist.device)
    negative = ~same
    for mask, what in ((positive, "another sample of its id (P x K sampling with K >= 2)"),
                       (negative, "a sample of another id (P >= 2)")):
        lonely = ~mask.any(1)
        if lonely.any():
            raise ValueError(f"batch-hard mining: every sample needs {what}; "
                             f"ids without one: {pids[lonely].unique().tolist()}")
    return positive, negative


def easiest_positive(dist: Tensor, pids: Tensor) -> Tensor:
    """Index of each sample's nearest same-id sample, itself excluded. ``(B, B), (B,) -> (B,)`` long."""
    positive, _ = _masks(dist, pids)
    return dist.detach().masked_fill(~positive, float("inf")).argmin(1)


def batch_hard_mining(dist: Tensor, pids: Tensor) -> BatchHardMining:
    """Hardest positive and negative of each anchor from a distance matrix ``(B, B)`` and ids ``(B,)``.

    Ties go to the lowest index. Raises ``ValueError`` when a sample has no positive or no negative.
    """
    positive, negative = _masks(dist, pids)
    dist_ap, hardest_p = dist.masked_fill(~positive, float("-inf")).max(1)
    dist_an, hardest_n = dist.masked_fill(~negative, float("inf")).min(1)
    easiest_p = dist.detach().masked_fill(~positive, float("inf")).argmin(1)
    return BatchHardMining(dist_ap, dist_an, hardest_p, hardest_n, easiest_p)


class TripletLoss(nn.Module):
    """Batch-hard triplet loss. ``forward(feats (B, D), pids (B,)) -> scalar``.

    Args:
        margin: ``m`` of the hinge (ignored with ``soft_margin=True``).
        metric: ``'euclidean'`` or ``'cosine'`` (``1 - cos``).
        soft_margin: use ``softplus(d_ap - d_an)`` instead of ``[m + d_ap - d_an]_+``.
    """

    def __init__(self, margin: float = 0.3, metric: Metric = "euclidean", soft_margin: bool = False) -> None:
        super().__init__()
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"TripletLoss: metric must be 'euclidean' or 'cosine', got {metric!r}")
        if not soft_margin and not margin >= 0:
            raise ValueError(f"TripletLoss: margin must be >= 0, got {margin!r}")
        self.margin, self.metric, self.soft_margin = float(margin), metric, bool(soft_margin)

    def forward(self, feats: Tensor, pids: Tensor) -> Tensor:
        mined = batch_hard_mining(pairwise_distance(feats, self.metric), pids)
        gap = mined.dist_ap - mined.dist_an
        return F.softplus(gap).mean() if self.soft_margin else F.relu(gap + self.margin).mean()

    def extra_repr(self) -> str:
        margin = "soft" if self.soft_margin else self.margin
        return f"margin={margin}, metric={self.metric!r}"
