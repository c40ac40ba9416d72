"""Online Instance Matching (OIM; Xiao et al., CVPR 2017), as HENet's Eq. (7)-(8) use it on its part features.

For an ℓ2-normalised feature ``x`` with label ``t``, a lookup table ``V`` (one ℓ2-normalised row
``v_j`` per training identity, ``P`` rows) and a circular queue ``U`` of features of *unlabeled*
persons (``Q`` rows ``u_k``),

    p_t = exp(v_t·x / τ) / (Σ_j exp(v_j·x / τ) + Σ_k exp(u_k·x / τ))          (HENet Eq. 7)

and the loss is ``L = -mean_x log p_t``. HENet's Eq. (8) prints ``E[log p_i]``, the OIM *objective*,
which is maximised; as a loss the sign flips. Neither ``V`` nor ``U`` is a parameter: after each
training forward the LUT row of each labeled ``x`` moves towards it and is renormalised,

    v_t <- (γ v_t + (1 - γ) x) / ||γ v_t + (1 - γ) x||,

sample by sample in batch order (as the reference does, so a class seen twice in a batch moves
twice), and each unlabeled ``x`` (label ``-1``) enters the queue, overwriting the oldest entry once
the queue is full. The gradient reaches ``x`` only: ``dL/dx = (1/τ)(Σ_j p_j v_j + Σ_k p_k u_k - v_t)``
per sample (before the normalisation's own Jacobian), with the tables as they were before the update.

Defaults, as the OIM authors' re-ID implementation (open-reid, ``reid/loss/oim.py`` with
``examples/oim_loss.py``) sets them; HENet gives none of them:

* ``scalar = 1/τ = 30`` (``--oim-scalar 30``), ``momentum γ = 0.5``;
* the LUT starts at zero (a class not seen yet has logit 0) and features are ℓ2-normalised
  (``normalize=True``; open-reid normalises in the model);
* ``queue_size = 0``. Person search (the paper OIM comes from) fills the queue with the detector's
  unlabeled boxes (5,000 on CUHK-SYSU). Re-ID training sets -- Market-1501, DukeMTMC-reID, CUHK03,
  synthped -- label every image, so there is nothing to put in it and HENet's "leverages extra
  unlabeled data" has nothing to act on. A label ``-1`` marks an unlabeled sample where a caller
  has some.

One difference from the person-search code, a choice: its queue starts as zero rows, which add
``exp(0)`` each to the denominator before any unlabeled feature arrived; here only filled entries
count, so an empty queue is exactly the labeled-only case.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import check_shape

from .criterion import register_term

__all__ = ["OIMLoss", "OIMTerm", "UNLABELED"]

#: the label of a sample without identity: it joins the queue and takes no loss term
UNLABELED = -1


class OIMLoss(nn.Module):
    """OIM loss (HENet Eq. 7-8 with the loss's sign). ``forward(x (B, D), targets (B,) long) -> scalar``.

    Args:
        num_classes: LUT rows ``P`` (training identities).
        feat_dim: ``D``.
        scalar: ``1/τ`` (open-reid: 30).
        momentum: the LUT's ``γ`` (open-reid: 0.5).
        queue_size: ``Q``, the circular queue of unlabeled features (0: none, the re-ID case).
        normalize: ℓ2-normalise ``x`` first (open-reid does it in the model).

    Buffers ``lut (P, D)``, ``queue (Q, D)`` and ``queue_filled`` / ``queue_next`` are part of the
    state dict, so a resumed run continues with its tables. The tables move only in training mode.
    A batch whose samples are all unlabeled gives a loss of 0 (and still fills the queue).
    """

    def __init__(self, num_classes: int, feat_dim: int, *, scalar: float = 30.0, momentum: float = 0.5,
                 queue_size: int = 0, normalize: bool = True) -> None:
        super().__init__()
        for name, value, low in (("num_classes", num_classes, 1), ("feat_dim", feat_dim, 1), ("queue_size", queue_size, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"OIMLoss: {name} must be an integer >= {low}, got {value!r}")
        if not scalar > 0:
            raise ValueError(f"OIMLoss: scalar (1/temperature) must be > 0, got {scalar!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"OIMLoss: momentum must be in [0, 1), got {momentum!r}")
        self.num_classes, self.feat_dim, self.queue_size = num_classes, feat_dim, queue_size
        self.scalar, self.momentum, self.normalize = float(scalar), float(momentum), bool(normalize)
        self.register_buffer("lut", torch.zeros(num_classes, feat_dim))
        self.register_buffer("queue", torch.zeros(queue_size, feat_dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_next", torch.zeros((), dtype=torch.long))

    def _check(self, x: Tensor, targets: Tensor) -> None:
        check_shape(x, "B D", who="OIMLoss", what="features", D=self.feat_dim)
        if not isinstance(targets, Tensor) or targets.shape != x.shape[:1] or targets.dtype not in (torch.long, torch.int):
            raise ValueError(f"OIMLoss: targets must be integer labels of shape ({x.shape[0]},), got "
                             f"{getattr(targets, 'dtype', type(targets).__name__)} {tuple(getattr(targets, 'shape', ()))}")
        bad = targets[(targets != UNLABELED) & ((targets < 0) | (targets >= self.num_classes))]
        if bad.numel():
            raise ValueError(f"OIMLoss: label {int(bad[0])} is outside the lookup table (0..{self.num_classes - 1}, "
                             f"or {UNLABELED} for an unlabeled sample)")

    def logits(self, x: Tensor) -> Tensor:
        """``(B, P + filled Q)``: ``[V x, U x] / τ`` against the tables as they are now."""
        tables = torch.cat([self.lut, self.queue[: int(self.queue_filled)]]).to(x.dtype)
        return self.scalar * x @ tables.T

    def forward(self, x: Tensor, targets: Tensor) -> Tensor:
        self._check(x, targets)
        targets = targets.long()  # cross_entropy takes int64 labels only
        if self.normalize:
            x = F.normalize(x, dim=1)
        logits = self.logits(x)  # the tables are copied by the cat: updating them below leaves autograd intact
        labeled = targets != UNLABELED
        loss = (F.cross_entropy(logits[labeled], targets[labeled]) if labeled.any()
                else logits.sum() * 0.0)  # keeps the graph (and the device) for an all-unlabeled batch
        if self.training:
            self.update(x.detach(), targets)
        return loss

    @torch.no_grad()
    def update(self, x: Tensor, targets: Tensor) -> None:
        """The LUT's momentum update and renormalisation (labeled rows, in batch order) and the queue's
        push (unlabeled rows); ``x`` as the loss saw it (normalised). A non-finite feature (an overflowing
        mixed-precision step) is skipped: written into the table it would stay there for good."""
        x = x.to(self.lut.dtype)
        finite = torch.isfinite(x).all(dim=1).tolist()
        for feature, t, ok in zip(x, targets.tolist(), finite):
            if not ok:
                continue
            if t != UNLABELED:
                row = self.momentum * self.lut[t] + (1.0 - self.momentum) * feature
                self.lut[t] = row / row.norm().clamp_min(1e-12)
            elif self.queue_size:
                self.queue[int(self.queue_next)] = feature
                self.queue_next.fill_((int(self.queue_next) + 1) % self.queue_size)
                self.queue_filled.fill_(min(int(self.queue_filled) + 1, self.queue_size))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, scalar={self.scalar}, "
                f"momentum={self.momentum}, queue_size={self.queue_size}, normalize={self.normalize}")


class OIMTerm(nn.Module):
    """The criterion's ``"oim"`` term: one :class:`OIMLoss` (its own lookup table) per branch it serves,
    on the branch's ``feature`` (HENet: the four 256-d part features, one table each).

    ``branches`` are fixed at construction, so that the tables are in the criterion's state dict from
    the start and a checkpoint restores them. Called as ``term(branch_output, pids, outputs, branch)``.
    """

    takes_branch = True

    def __init__(self, num_classes: int, *, branches: list[str] | tuple[str, ...], feat_dim: int,
                 feature: str = "feat", **options: float) -> None:
        super().__init__()
        if not branches or isinstance(branches, str):
            raise ValueError(f"OIMTerm: branches must name the branches the term serves, got {branches!r}")
        self.feature = feature
        # ModuleDict keys cannot hold dots; branch names are plain words ("p4_1")
        self.tables = nn.ModuleDict({b: OIMLoss(num_classes, feat_dim, **options) for b in branches})

    def forward(self, out, pids: Tensor, outputs, branch: str) -> Tensor:
        if branch not in self.tables:
            raise ValueError(f"OIMTerm: branch {branch!r} has no lookup table; the term was built for "
                             f"{list(self.tables)} (pass every branch that takes 'oim' as branches=)")
        return self.tables[branch](out[self.feature], pids)


@register_term("oim")
def oim_term(num_classes: int, **options) -> OIMTerm:
    """``extra_terms={"oim": {"weight": 1, "branches": [...], "feat_dim": 256, "scalar": 30, "momentum": 0.5}}``."""
    return OIMTerm(num_classes, **options)
