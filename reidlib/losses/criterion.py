"""One criterion for every network of the house: loss terms over named branches.

A model's training output follows one contract (see :mod:`reidlib.models`)::

    {"branches": {name: {"logits": (B, N), "feat": (B, D), "feat_bn": (B, D), ...}}, ...extras}

and the criterion sums, over the branches and the terms each branch takes,

    L = sum_b sum_t  w_t * L_t(branch b)                                   (ES-Net Eq. (1), BoT)

with the ID loss (cross-entropy with label smoothing on ``logits``) and the batch-hard triplet loss
(on ``feat``, the feature before the BNNeck) built in. A paper adds its own terms (OIM,
distillation, attribute BCE, reconstruction) by registering a term factory with
:func:`register_term` and naming it in ``extra_terms``; the core is not edited. A term whose state
differs per branch (OIM keeps one lookup table per part) sets ``takes_branch = True`` and is called
with the branch's name as a fourth argument.

``forward(outputs, target) -> {term name: weighted scalar}``: a term is named ``"<term>"`` for the
single branch ``"main"`` and ``"<branch>/<term>"`` otherwise (``"aib/id"``, ``"esb/triplet"``), so
the run record's curves keep the names of the losses that trained. ``target`` is the ids ``(B,)``
or a batch with ``.pids``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from reidlib.registry import Registry

from .softmax import CrossEntropyLabelSmooth
from .triplet import TripletLoss

__all__ = ["CRITERIA", "LOSS_TERMS", "ReIDCriterion", "build_criterion", "register_criterion", "register_term"]

# term factory: (num_classes, **options) -> fn(branch_output: dict, pids: (B,), outputs: dict) -> scalar
# (fn(branch_output, pids, outputs, branch) where fn.takes_branch is true)
LOSS_TERMS: Registry[Callable[..., Callable[[Mapping[str, Tensor], Tensor, Mapping[str, Any]], Tensor]]] = Registry(
    "loss term", hint="a paper registers its own with reidlib.losses.register_term")
CRITERIA: Registry[Callable[..., nn.Module]] = Registry("criterion")


def register_term(name: str) -> Callable:
    """Decorator on a term factory ``(num_classes, **options) -> fn(branch_out, pids, outputs) -> scalar``."""
    return LOSS_TERMS.register(name)


def register_criterion(name: str, *aliases: str) -> Callable:
    return CRITERIA.register(name, *aliases)


def build_criterion(name: str, num_classes: int, **options: Any) -> nn.Module:
    """The criterion ``name`` (``"reid"``) for ``num_classes`` identities; unknown names list the known ones."""
    return CRITERIA.build(name, num_classes, **options)


def _pids(target: Any) -> Tensor:
    pids = target if isinstance(target, Tensor) else getattr(target, "pids", None)
    if not isinstance(pids, Tensor):
        raise TypeError(f"the criterion's target must be the ids (B,) or a batch with .pids, got {type(target).__name__}")
    return pids


def branches_of(outputs: Mapping[str, Any]) -> Mapping[str, Mapping[str, Tensor]]:
    """The named branches of a training output (a bare ``{"logits", "feat", ...}`` dict is branch ``"main"``)."""
    if not isinstance(outputs, Mapping):
        raise TypeError(f"a model's training output must be a dict with 'branches', got {type(outputs).__name__}")
    branches = outputs.get("branches")
    if branches is None:
        if "logits" not in outputs:
            raise KeyError(f"the training output has neither 'branches' nor 'logits' (keys: {sorted(outputs)})")
        return {"main": outputs}
    return branches


class ReIDCriterion(nn.Module):
    """ID loss + batch-hard triplet loss over named branches, plus registered extra terms.

    Args:
        num_classes: training identities ``N``.
        id_weight, triplet_weight: the weight of each term (0 switches it off).
        label_smoothing: the ID loss's epsilon (BoT: 0.1; ES-Net: 0).
        margin, metric: the triplet loss's margin and distance (``"euclidean"`` or ``"cosine"``).
        soft_margin: the triplet's soft margin ``softplus(d_ap - d_an)`` instead of the hinge (scale-free
            in the sense that it never stops pulling: no margin to stop at).
        triplet_ramp: a fraction of training in ``[0, 1)``: the triplet weight rises linearly from 0 to
            ``triplet_weight`` over that first fraction (0: no ramp). The trainer drives it through
            :meth:`set_progress`; see the baseline chapter's page on the triplet question for why.
        triplet_feature: the branch output the triplet loss reads (``"feat"``, before the BNNeck's BN).
        branch_terms: which terms a branch takes, ``{branch: ["id", "triplet", ...]}`` (default: every
            branch takes every term with a weight > 0).
        extra_terms: ``{term: {"weight": w, **options}}`` for terms registered with :func:`register_term`.

    ``options`` holds the resolved arguments (what a run record stores as ``criterion_options``).
    """

    def __init__(self, num_classes: int, *, id_weight: float = 1.0, triplet_weight: float = 1.0,
                 label_smoothing: float = 0.1, margin: float = 0.3, metric: str = "euclidean",
                 soft_margin: bool = False, triplet_ramp: float = 0.0, triplet_feature: str = "feat",
                 branch_terms: Mapping[str, Sequence[str]] | None = None,
                 extra_terms: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        for name, w in (("id_weight", id_weight), ("triplet_weight", triplet_weight)):
            if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
                raise ValueError(f"ReIDCriterion: {name} must be a number >= 0, got {w!r}")
        if isinstance(triplet_ramp, bool) or not isinstance(triplet_ramp, (int, float)) or not 0 <= triplet_ramp < 1:
            raise ValueError(f"ReIDCriterion: triplet_ramp must be a fraction of training in [0, 1), got {triplet_ramp!r}")
        if not isinstance(soft_margin, bool):
            raise ValueError(f"ReIDCriterion: soft_margin must be True or False, got {soft_margin!r}")
        self.id_loss = CrossEntropyLabelSmooth(num_classes, epsilon=label_smoothing)
        self.triplet = TripletLoss(margin=margin, metric=metric, soft_margin=soft_margin)
        self.triplet_ramp, self._ramp_factor = float(triplet_ramp), 0.0 if triplet_ramp > 0 else 1.0
        self.weights: dict[str, float] = {"id": float(id_weight), "triplet": float(triplet_weight)}
        self._fns: dict[str, Callable] = {
            "id": lambda out, pids, outputs: self.id_loss(out["logits"], pids),
            "triplet": lambda out, pids, outputs: self._ramp_factor * self.triplet(out[triplet_feature], pids),
        }
        extra = {k: dict(v) for k, v in (extra_terms or {}).items()}
        for term, opts in extra.items():
            if term in self._fns:
                raise ValueError(f"ReIDCriterion: extra term {term!r} shadows a built-in term")
            opts = dict(opts)
            self.weights[term] = float(opts.pop("weight", 1.0))
            self._fns[term] = LOSS_TERMS.build(term, num_classes, **opts)
            if isinstance(self._fns[term], nn.Module):
                self.add_module(f"term_{term}", self._fns[term])
        self.branch_terms = {b: list(ts) for b, ts in (branch_terms or {}).items()}
        for b, ts in self.branch_terms.items():
            unknown = sorted(set(ts) - set(self._fns))
            if unknown:
                raise ValueError(f"ReIDCriterion: branch {b!r} names unknown term(s) {unknown}; "
                                 f"known: {sorted(self._fns)}")
        self.num_classes = int(num_classes)
        self.options: dict[str, Any] = {
            "id_weight": float(id_weight), "triplet_weight": float(triplet_weight),
            "label_smoothing": float(label_smoothing), "margin": float(margin), "metric": metric,
            "soft_margin": soft_margin, "triplet_ramp": float(triplet_ramp),
            "triplet_feature": triplet_feature, "branch_terms": self.branch_terms or None, "extra_terms": extra or None}

    def set_progress(self, fraction: float) -> None:
        """Training progress in ``[0, 1]`` (the trainer calls it before every step): sets the triplet
        ramp's factor ``min(1, fraction / triplet_ramp)``."""
        if self.triplet_ramp > 0:
            self._ramp_factor = min(1.0, max(0.0, float(fraction)) / self.triplet_ramp)

    def terms_of(self, branch: str) -> list[str]:
        names = self.branch_terms.get(branch, list(self._fns))
        return [t for t in names if self.weights[t] > 0]

    def forward(self, outputs: Mapping[str, Any], target: Any) -> dict[str, Tensor]:
        pids = _pids(target)
        losses: dict[str, Tensor] = {}
        for branch, out in branches_of(outputs).items():
            for term in self.terms_of(branch):
                key = term if branch == "main" else f"{branch}/{term}"
                fn = self._fns[term]
                value = fn(out, pids, outputs, branch) if getattr(fn, "takes_branch", False) else fn(out, pids, outputs)
                losses[key] = self.weights[term] * value
        if not losses:
            raise ValueError("ReIDCriterion: no loss term applies (every weight is 0?)")
        return losses

    def total(self, outputs: Mapping[str, Any], target: Any) -> Tensor:
        """The summed loss (``L_total`` of ES-Net's Eq. (1))."""
        return torch.stack(list(self(outputs, target).values())).sum()


@register_criterion("reid", "baseline")
def reid(num_classes: int, **options: Any) -> ReIDCriterion:
    """``build_criterion("reid", N, label_smoothing=..., triplet_weight=...)``."""
    return ReIDCriterion(num_classes, **options)
