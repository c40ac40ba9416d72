"""Learning-rate schedules of the papers, as pure functions of the training position.

A schedule maps a position in training -- ``epoch`` (0-based) and ``iteration`` within the
epoch -- to a learning rate. :func:`as_lr_scheduler` turns one into a
``torch.optim.lr_scheduler.LambdaLR`` stepped once per batch, so that resuming restores it with
``state_dict()`` / ``load_state_dict()`` like any torch scheduler.

* :func:`bag_of_tricks` -- Luo et al. (2019): warm-up from 3.5e-5 to 3.5e-4 over 10 epochs,
  x0.1 at epochs 40 and 70.
* :func:`esnet` -- ES-Net (Shen et al. 2021, Sec. IV-A): warm-up from 0 to 3.5e-4 over 10
  epochs, x0.1 at 40 and 70, 120 epochs.
* :func:`feature_fusion` -- the multi-resolution feature-fusion paper, Eq. (6) and its released
  code: 10 warm-up epochs from 3e-4 to 0.01, x0.5 at 60, 90 and 120, 150 epochs. Eq. (6) as
  printed is inconsistent (see the function).
* :func:`reid_done_right` -- Almazan et al. (2018, Sec. 4): 1e-3 halved every 512 iterations,
  a per-iteration schedule.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable, Protocol

import torch


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


def bag_of_tricks(base_lr: float = 3.5e-4) -> WarmupMultiStep:
    """Luo et al. (2019): ``lr = base * (0.1 + 0.9 * e / 10)`` for epochs e < 10 (3.5e-5 -> 3.5e-4),
    then ``base``, x0.1 at 40 and at 70."""
    return WarmupMultiStep(base_lr, milestones=(40, 70), gamma=0.1, warmup_epochs=10,
                           warmup_start_lr=0.1 * base_lr)


def esnet(base_lr: float = 3.5e-4) -> WarmupMultiStep:
    """ES-Net (Sec. IV-A): "linear warm-up in the first 10 epochs from 0 to 3.5e-4", constant to
    epoch 40, 3.5e-5 from 40, 3.5e-6 from 70, 120 epochs. Epoch e < 10 trains at
    ``base * (e + 1) / 10`` (our reading of "from 0": no epoch at rate 0)."""
    return WarmupMultiStep(base_lr, milestones=(40, 70), gamma=0.1, warmup_epochs=10,
                           warmup_start_lr=0.0, warmup_from_zero_step=True)


def feature_fusion(base_lr: float = 0.01, *, as_printed: bool = False) -> Schedule:
    """The feature-fusion paper's schedule: Eq. (6) with the released code's warm-up.

    Eq. (6) as printed reads ``lr(e) = 3e-4 * e / 10`` for ``e <= 10`` -- a warm-up that ends at
    3e-4, then jumps by 33x to 0.01 at epoch 11 -- while the text says the initial rate is 0.01
    and the released code warms up linearly from 3e-4 to 0.01 over 10 epochs. We follow the
    code (``as_printed=False``): epoch-wise linear 3e-4 -> 0.01 for epochs 0..9, then 0.01,
    x0.5 at 60, 90 and 120 (0.005, 0.0025, 0.00125). ``as_printed=True`` returns Eq. (6)
    literally, with the paper's 1-based epochs shifted to our 0-based ones, to show the jump.
    """
    if as_printed:
        pieces = tuple((e - 1, 3e-4 * e / 10) for e in range(1, 11))
        pieces += ((10, base_lr), (60, base_lr / 2), (90, base_lr / 4), (120, base_lr / 8))
        return PiecewiseConstant(pieces)
    return LinearWarmupThen(WarmupMultiStep(base_lr, milestones=(60, 90, 120), gamma=0.5),
                            warmup_epochs=10, warmup_start_lr=3e-4)


def reid_done_right(base_lr: float = 1e-3, *, half_life: int = 512) -> ExponentialHalving:
    """Almazan et al. (2018): SGD from 1e-3, halved every 512 iterations (converges by ~4,096)."""
    return ExponentialHalving(base_lr, half_life=half_life)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "bag_of_tricks": bag_of_tricks,
    "esnet": esnet,
    "feature_fusion": feature_fusion,
    "reid_done_right": reid_done_right,
}


def build_schedule(name: str, base_lr: float, **options) -> Schedule:
    """A named schedule (``bag_of_tricks``, ``esnet``, ``feature_fusion``, ``reid_done_right``,
    ``warmup_multistep``, ``constant``) with its base rate."""
    if name == "warmup_multistep":
        return WarmupMultiStep(base_lr, **options)
    if name == "constant":
        return WarmupMultiStep(base_lr)
    if name not in SCHEDULES:
        known = sorted([*SCHEDULES, "warmup_multistep", "constant"])
        raise ValueError(f"unknown schedule {name!r}; expected one of {known}")
    return SCHEDULES[name](base_lr, **options)


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
           "bag_of_tricks", "esnet", "feature_fusion", "reid_done_right", "build_schedule", "lr_curve",
           "as_lr_scheduler", "SCHEDULES"]
