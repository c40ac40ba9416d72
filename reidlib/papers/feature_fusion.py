"""The multi-resolution feature-fusion paper (FMR, SAM + CAM, MGO, MPFE; code:
libraflower/MutipleFeature-for-PRID) as the house will run it. Its chapter is not written yet;
for now this recipe holds the paper's schedule, which the baseline chapter's schedule figure shows.
"""
from __future__ import annotations

from reidlib.engine.schedules import LinearWarmupThen, PiecewiseConstant, Schedule, WarmupMultiStep, register_schedule

__all__ = ["feature_fusion_schedule"]


@register_schedule("feature_fusion")
def feature_fusion_schedule(base_lr: float = 0.01, *, as_printed: bool = False) -> Schedule:
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
