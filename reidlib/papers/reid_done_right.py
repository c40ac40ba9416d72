"""Almazán et al., "Re-ID done right: towards good practices for person re-identification" (2018), as
the house will run it. Its chapter is not written yet; for now this recipe holds the paper's
schedule, which the baseline chapter's schedule figure shows.
"""
from __future__ import annotations

from reidlib.engine.schedules import ExponentialHalving, register_schedule

__all__ = ["reid_done_right_schedule"]


@register_schedule("reid_done_right")
def reid_done_right_schedule(base_lr: float = 1e-3, *, half_life: int = 512) -> ExponentialHalving:
    """Almazán et al. (2018, Sec. 4): SGD from 1e-3, halved every 512 iterations (converges by ~4,096)."""
    return ExponentialHalving(base_lr, half_life=half_life)
