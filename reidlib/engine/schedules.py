"""Learning-rate schedule *shapes*, as pure functions of the training position.

A schedule maps a position in training -- ``epoch`` (0-based) and ``iteration`` within the
epoch -- to a learning rate. :func:`as_lr_scheduler` turns one into a
``torch.optim.lr_scheduler.LambdaLR`` stepped once per batch, so that resuming restores it with
``state_dict()`` / ``load_state_dict()`` like any torch scheduler.

The shapes (by name in :data:`SCHEDULES`, ``build_schedule(name, base_lr, **options)``):
``warmup_multistep`` (linear warm-up, then steps at milestones), ``constant``,
``exponential_halving`` (halved every ``half_life`` iterations), ``piecewise`` and
``linear_warmup_then``. No paper's name lives here: each paper's preset (Luo et al.'s, ES-Net's,
the feature-fusion paper's, Almazan et al.'s) is a shape with its options, registered by its
recipe in :mod:`reidlib.papers`.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from reidlib.registry import Registry


class Schedule(Protocol):
    """What every schedule offers: its base learning rate and ``lr_at(epoch, iteration, iters_per_epoch)``."""

    base_lr: float

    def lr_at(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1) -> float: ...


@dataclass(frozen=True)
class WarmupMultiStep:
    """Linear warm-up, then a constant rate multiplied by ``gamma`` at each milestone epoch.

    With ``warmup_per_iteration=False`` (the papers' choice) the rate is constant within an
    epoch: epoch ``e < warmup_epochs`` gets
    ``warmup_start_lr + (base_lr - warmup_start_lr) * (e + 1) / warmup_epochs`` when
    ``warmup_from_zero_step`` is ``True`` (so that a warm-up "from 0" never trains a whole
    epoch at rate 0), and ``warmup_start_lr + (base_lr - warmup_start_lr) * e / warmup_epochs``
    otherwise (Luo et al.'s code: epoch 0 trains at ``warmup_start_lr``). With
    ``warmup_per_iteration=True`` the same line is followed per iteration.
    From epoch ``warmup_epochs`` on the rate is ``base_lr * gamma ** (number of milestones <= epoch)``.
    """

    base_lr: float
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    warmup_start_lr: float = 0.0
    warmup_per_iteration: bool = False
    warmup_from_zero_step: bool = False

    def __post_init__(self) -> None:
        if not self.base_lr > 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing, got {self.milestones}")
        if self.milestones and self.milestones[0] < self.warmup_epochs:
            raise ValueError(f"milestones {self.milestones} must not fall inside the {self.warmup_epochs} warm-up epochs")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")

    def lr_at(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1) -> float:
        if epoch < self.warmup_epochs:
            if self.warmup_per_iteration:
                t = (epoch + iteration / max(iters_per_epoch, 1)) / self.warmup_epochs
            else:
                t = (epoch + (1 if self.warmup_from_zero_step else 0)) / self.warmup_epochs
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * t
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


@dataclass(frozen=True)
class ExponentialHalving:
    """``base_lr * 0.5 ** (i / half_life)`` at global iteration ``i`` (``floor(i / half_life)``
    in the exponent when ``staircase``): a "logarithmic rate that halves the learning rate every
    512 iterations" (Almazan et al. 2018, Sec. 4) -- linear in log(lr), hence per iteration."""

    base_lr: float
    half_life: int = 512
    staircase: bool = False

    def __post_init__(self) -> None:
        if not self.base_lr > 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")
        if self.half_life <= 0:
            raise ValueError(f"half_life must be a positive number of iterations, got {self.half_life}")

    def lr_at(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1) -> float:
        i = epoch * iters_per_epoch + iteration
        exponent = i // self.half_life if self.staircase else i / self.half_life
        return self.base_lr * 0.5 ** exponent


@dataclass(frozen=True)
class PiecewiseConstant:
    """A rate per epoch from a list of ``(first_epoch, lr)`` pieces (used to show a paper's
    equation exactly as printed)."""

    pieces: tuple[tuple[int, float], ...]

    @property
    def base_lr(self) -> float:
        return max(lr for _, lr in self.pieces)

    def lr_at(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1) -> float:
        starts = [s for s, _ in self.pieces]
        return self.pieces[max(bisect.bisect_right(starts, epoch) - 1, 0)][1]


@dataclass(frozen=True)
class LinearWarmupThen:
    """Epoch-wise linear warm-up over ``warmup_epochs`` epochs from ``warmup_start_lr`` to
    ``after.lr_at(warmup_epochs)``, then ``after``."""

    after: WarmupMultiStep | PiecewiseConstant
    warmup_epochs: int
    warmup_start_lr: float

    @property
    def base_lr(self) -> float:
        return self.after.base_lr

    def lr_at(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1) -> float:
        if epoch < self.warmup_epochs:
            end = self.after.lr_at(self.warmup_epochs, 0, iters_per_epoch)
            return self.warmup_start_lr + (end - self.warmup_start_lr) * epoch / self.warmup_epochs
        return self.after.lr_at(epoch, iteration, iters_per_epoch)


SCHEDULES: Registry[Callable[..., Schedule]] = Registry(
    "schedule", hint="the papers' presets are registered by reidlib.papers")


def register_schedule(name: str, *aliases: str) -> Callable:
    """Decorator on ``fn(base_lr, **options) -> Schedule``."""
    return SCHEDULES.register(name, *aliases)


@register_schedule("warmup_multistep")
def warmup_multistep(base_lr: float, **options: Any) -> WarmupMultiStep:
    return WarmupMultiStep(base_lr, **options)


@register_schedule("constant")
def constant(base_lr: float) -> WarmupMultiStep:
    return WarmupMultiStep(base_lr)


@register_schedule("exponential_halving")
def exponential_halving(base_lr: float, **options: Any) -> ExponentialHalving:
    return ExponentialHalving(base_lr, **options)


def build_schedule(name: str, base_lr: float, **options: Any) -> Schedule:
    """The schedule ``name`` (a shape, or a paper's preset once :mod:`reidlib.papers` is imported) with
    its base rate; an unknown name lists the known ones."""
    return SCHEDULES.build(name, base_lr, **options)


def lr_curve(schedule: Schedule, epochs: int, iters_per_epoch: int = 1) -> list[float]:
    """The rate at every iteration of ``epochs`` epochs (for plots and tests)."""
    return [schedule.lr_at(e, i, iters_per_epoch) for e in range(epochs) for i in range(iters_per_epoch)]


def as_lr_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule,
                    iters_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepped once per batch that follows ``schedule``.

    Each parameter group's rate is ``lr_at(...) * group.get('lr_mult', 1.0)`` (a group may carry
    its own multiplier, e.g. a new head trained 10x faster). The lambda is a plain closure: ``state_dict()``
    then holds only integers and floats (loadable with ``weights_only=True``).
    """
    if iters_per_epoch <= 0:
        raise ValueError(f"iters_per_epoch must be > 0, got {iters_per_epoch}")
    base = schedule.base_lr

    def factor(step: int) -> float:
        epoch, it = divmod(step, iters_per_epoch)
        return schedule.lr_at(epoch, it, iters_per_epoch) / base

    for group in optimizer.param_groups:
        group["initial_lr"] = base * group.get("lr_mult", 1.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


__all__ = ["Schedule", "WarmupMultiStep", "ExponentialHalving", "PiecewiseConstant", "LinearWarmupThen",
           "build_schedule", "register_schedule", "lr_curve", "as_lr_scheduler", "SCHEDULES"]
