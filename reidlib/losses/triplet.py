"""Batch-hard triplet loss (Hermans, Beyer & Leibe, "In defense of the triplet loss", 2017).

For each anchor ``a`` of a P x K batch, the hardest positive (farthest sample of the same id,
``a`` itself excluded) and the hardest negative (nearest sample of another id):

    L = 1/B sum_a [ m + max_{p: y_p = y_a, p != a} D(a, p) - min_{n: y_n != y_a} D(a, n) ]_+     (margin)
    L = 1/B sum_a softplus( max_p D(a, p) - min_n D(a, n) )                                     (soft margin)

with ``D`` the Euclidean distance or the cosine distance ``1 - cos``. Because ``[.]_+`` and
softplus are increasing, each anchor's term is the largest term over all its (p, n) triplets.

Beside it, the three-stream triplet of Almazán et al., "Re-ID done right" (2018), Eq. (1): given triplets
(not P x K batches), a *dot-product* margin on l2-normalised descriptors,

    L(q, d+, d-) = max(0, m + q.d- - q.d+),      m = 0.1,

which for unit vectors (``q.d = 1 - ||q - d||^2 / 2``) is ``1/2 max(0, 2m + ||q - d+||^2 - ||q - d-||^2)``:
a *squared*-Euclidean margin 0.2 with the loss halved (:func:`dot_product_triplet`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import Metric, pairwise_distance  # moved to the bottom layer; re-exported here (old home)

__all__ = ["BatchHardMining", "DotProductTripletLoss", "TripletLoss", "batch_hard_mining", "dot_product_triplet",
           "easiest_positive", "pairwise_distance", "split_triplets"]


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


def split_triplets(feats: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(3b, D)`` rows ordered ``[q1, p1, n1, q2, p2, n2, ...]`` (what a triplet sampler yields) ->
    ``q, d+, d-``, each ``(b, D)``."""
    if feats.dim() != 2 or feats.shape[0] % 3 or feats.shape[0] == 0:
        raise ValueError(f"expected triplet features of shape (3b, D) ordered [q, d+, d-] per triplet, "
                         f"got shape {tuple(feats.shape)}")
    t = feats.view(-1, 3, feats.shape[1])
    return t[:, 0], t[:, 1], t[:, 2]


def dot_product_triplet(q: Tensor, pos: Tensor, neg: Tensor, margin: float = 0.1, *,
                        reduction: str = "mean") -> Tensor:
    """Eq. (1) of "Re-ID done right": ``max(0, m + q.d- - q.d+)`` per triplet, ``(b, D) x 3 -> (b,)`` or
    its mean (``reduction="mean"``, the *choice* for the 64 accumulated triplets: a sum would scale the
    learning rate by 64) or sum. The descriptors are expected l2-normalised (the model's last layer);
    on unit vectors the loss lies in ``[0, 2 + m]`` and, where active, ``dL/dq = d- - d+``,
    ``dL/dd+ = -q``, ``dL/dd- = q``."""
    if not q.shape == pos.shape == neg.shape or q.dim() != 2:
        raise ValueError(f"dot_product_triplet: q, d+ and d- must share one shape (b, D), got "
                         f"{tuple(q.shape)}, {tuple(pos.shape)}, {tuple(neg.shape)}")
    if not margin >= 0:
        raise ValueError(f"dot_product_triplet: margin must be >= 0, got {margin!r}")
    losses = F.relu(margin + (q * neg).sum(1) - (q * pos).sum(1))
    if reduction == "none":
        return losses
    if reduction not in ("mean", "sum"):
        raise ValueError(f"dot_product_triplet: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return losses.mean() if reduction == "mean" else losses.sum()


class DotProductTripletLoss(nn.Module):
    """Eq. (1) of "Re-ID done right" over a batch of triplets: ``forward(feats (3b, D)) -> scalar``, rows
    ordered ``[q, d+, d-]`` per triplet (:func:`split_triplets`); ``margin`` m (0.1 in the paper)."""

    def __init__(self, margin: float = 0.1) -> None:
        super().__init__()
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
            raise ValueError(f"DotProductTripletLoss: margin must be a number >= 0, got {margin!r}")
        self.margin = float(margin)

    def forward(self, feats: Tensor) -> Tensor:
        return dot_product_triplet(*split_triplets(feats), self.margin)

    def extra_repr(self) -> str:
        return f"margin={self.margin}"
