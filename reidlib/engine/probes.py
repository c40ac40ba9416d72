"""Trainer probes: hooks that measure a run without changing it.

:class:`TripletProbe` instruments the question the baseline chapter's page "The triplet question"
decides: why, trained from scratch, every run with the batch-hard triplet loss ended far below its
ID-only twin. Per epoch it logs, under ``log["probe"]`` of the run record, statistics of the feature
the triplet loss reads (``f_t``, before the BNNeck's BatchNorm, ``(B, D)``):

* ``feat_norm``: mean ``||f_t||``; ``feat_spread``: mean distance of a sample's ``f_t`` to the
  batch mean (how spread the batch is); ``dim_std``: median over the D dimensions of the per-dimension
  batch standard deviation, beside ``sqrt_eps`` (the square root of the BNNeck BatchNorm's ``eps``):
  a dimension whose std falls towards it is one the BN can no longer rescale faithfully;
* ``d_ap`` / ``d_an``: mean hardest-positive / hardest-negative distance (the criterion's metric);
  ``active``: share of anchors whose hinge ``m + d_ap - d_an`` is > 0 (whose triplet term still pulls);
* at the steps 0, ``every``, 2 ``every``, ... of each epoch (counted within the epoch), ``grad_ratio``:
  ``||dL_tri/dθ|| / ||dL_id/dθ||`` over the parameters θ of the
  last backbone stage (``layer4``), both losses unweighted, as ``[global step, ratio]`` pairs.

The statistics are measured on the training batch, detached, also when the run's triplet weight is 0
(the ID-only twin): the probe then computes the triplet loss it would have had.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from reidlib.losses.criterion import branches_of
from reidlib.losses.triplet import TripletLoss, batch_hard_mining
from reidlib.nn import pairwise_distance

from .trainer import Hook

__all__ = ["FinalEvaluations", "TripletProbe", "feature_statistics", "last_stage_parameters"]

_STATS = ("feat_norm", "feat_spread", "dim_std", "d_ap", "d_an", "active")


def last_stage_parameters(model: nn.Module, stage: str = "layer4") -> list[nn.Parameter]:
    """The trainable parameters of the modules named ``stage`` (every branch's copy, for a multi-branch model)."""
    params = [p for name, m in model.named_modules() if name.split(".")[-1] == stage
              for p in m.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"TripletProbe: {type(model).__name__} has no module named {stage!r} with trainable parameters")
    return params


def feature_statistics(feat: Tensor, pids: Tensor, triplet: TripletLoss) -> dict[str, float]:
    """The per-batch statistics of :class:`TripletProbe` for ``feat`` ``(B, D)`` and ids ``(B,)``."""
    f = feat.detach().float()
    mined = batch_hard_mining(pairwise_distance(f, triplet.metric), pids)
    margin = 0.0 if triplet.soft_margin else triplet.margin
    return {
        "feat_norm": f.norm(dim=1).mean().item(),
        "feat_spread": (f - f.mean(0, keepdim=True)).norm(dim=1).mean().item(),
        "dim_std": f.std(0).median().item(),
        "d_ap": mined.dist_ap.mean().item(),
        "d_an": mined.dist_an.mean().item(),
        "active": (mined.dist_ap - mined.dist_an + margin > 0).float().mean().item(),
    }


def _bn_eps(model: nn.Module) -> float:
    bns = [m for name, m in model.named_modules() if isinstance(m, nn.BatchNorm1d)]
    return float(bns[0].eps) if bns else 1e-5


class TripletProbe(Hook):
    """Logs :func:`feature_statistics` of the ``"main"`` branch (or ``branch``) every step, averaged per
    epoch, and the last-stage gradient ratio of triplet to ID loss every ``every`` steps.

    Args:
        every: steps between gradient-ratio measurements (each costs two backward passes through the
            head and the last stage).
        branch: the branch of the training output whose feature is probed.
        feature: the branch output the triplet loss reads (``"feat"``: before the BNNeck's BN).
    """

    def __init__(self, every: int = 20, branch: str = "main", feature: str = "feat") -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"TripletProbe: every must be an integer >= 1, got {every!r}")
        self.every, self.branch, self.feature = every, branch, feature
        self._stats: list[dict[str, float]] = []
        self._ratios: list[list[float]] = []

    def _triplet(self, trainer: Any) -> TripletLoss:
        triplet = getattr(trainer.criterion, "triplet", None)
        return triplet if isinstance(triplet, TripletLoss) else TripletLoss()

    def on_forward(self, trainer: Any, batch: Any, outputs: Any) -> None:
        branches = branches_of(outputs)
        if self.branch not in branches:
            raise KeyError(f"TripletProbe: the training output has no branch {self.branch!r} "
                           f"(branches: {sorted(branches)})")
        out: Mapping[str, Tensor] = branches[self.branch]
        triplet = self._triplet(trainer)
        self._stats.append(feature_statistics(out[self.feature], batch.pids, triplet))
        if trainer.step % self.every == 0:
            self._ratios.append([trainer.epoch * trainer.steps_per_epoch + trainer.step,
                                 self.gradient_ratio(trainer, out, batch.pids, triplet)])

    def gradient_ratio(self, trainer: Any, out: Mapping[str, Tensor], pids: Tensor, triplet: TripletLoss) -> float:
        """``||dL_tri/dθ|| / ||dL_id/dθ||`` over the last stage's parameters θ (graph kept for the step)."""
        params = last_stage_parameters(trainer.module)
        id_loss = getattr(trainer.criterion, "id_loss", None) or nn.CrossEntropyLoss()
        norms = []
        for loss in (triplet(out[self.feature], pids), id_loss(out["logits"], pids)):
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            norms.append(math.sqrt(sum(float(g.detach().float().pow(2).sum()) for g in grads if g is not None)))
        return norms[0] / norms[1] if norms[1] > 0 else math.inf

    def on_epoch_end(self, trainer: Any, epoch: int, log: dict[str, Any]) -> None:
        probe: dict[str, Any] = {"sqrt_eps": math.sqrt(_bn_eps(trainer.module))}
        if self._stats:
            probe.update({k: sum(s[k] for s in self._stats) / len(self._stats) for k in _STATS})
        probe["grad_ratio"] = [list(r) for r in self._ratios]
        log["probe"] = probe
        self._stats, self._ratios = [], []

    def state_dict(self) -> dict[str, Any]:
        return {"stats": [dict(s) for s in self._stats], "ratios": [list(r) for r in self._ratios]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._stats = [dict(s) for s in state.get("stats", [])]
        self._ratios = [list(r) for r in state.get("ratios", [])]


class FinalEvaluations(Hook):
    """More evaluations of the trained model after the last epoch, kept beside the run's own: ``evaluations``
    maps a name to ``build(dataset, test_transform, device) -> evaluator``, where ``dataset`` and
    ``test_transform`` are the run's (:meth:`Hook.on_setup`) and the evaluator, ``model -> metrics`` (e.g.
    :func:`reidlib.engine.run.make_evaluator` on another test set or transform), is built when first needed.
    Each result lands in the last epoch's ``log["metrics"][name]``, i.e. the record's ``final[name]``.

    Each evaluation runs under a forked random state seeded with ``seed``, so that what it draws (the offsets
    of a misaligned box) is the same in every run and the training's streams are left as they were."""

    def __init__(self, evaluations: Mapping[str, Any], *, seed: int = 0) -> None:
        if not evaluations:
            raise ValueError("FinalEvaluations: evaluations must name at least one evaluation")
        self.evaluations, self.seed = dict(evaluations), int(seed)
        self._setup: tuple[Any, Any] | None = None

    def on_setup(self, dataset: Any, test_transform: Any) -> None:
        self._setup = (dataset, test_transform)

    def on_epoch_end(self, trainer: Any, epoch: int, log: dict[str, Any]) -> None:
        if epoch != trainer.epochs - 1 or "metrics" not in log:
            return
        if self._setup is None:
            raise RuntimeError("FinalEvaluations: on_setup was not called (pass the hook to run_training)")
        for name, build in self.evaluations.items():
            with torch.random.fork_rng(devices=[trainer.device] if trainer.device.type == "cuda" else []):
                torch.manual_seed(self.seed)
                log["metrics"][name] = build(*self._setup, trainer.device)(trainer.module)
