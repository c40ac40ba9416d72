"""Cross-entropy with label smoothing (Szegedy et al., CVPR 2016; Luo et al., "Bag of tricks", Sec. 4.3).

With ``N`` classes, target ``y`` and smoothing ``epsilon``, the target distribution is

    q_i = 1 - (N - 1)/N * epsilon   if i = y,   epsilon / N   otherwise,

i.e. ``q = (1 - epsilon) onehot(y) + epsilon / N``, and the loss is ``-sum_i q_i log p_i`` with
``p = softmax(logits)``, averaged over the batch. That is exactly torch's
``cross_entropy(..., label_smoothing=epsilon)``, which is what runs here.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import check_shape

__all__ = ["CrossEntropyLabelSmooth"]


class CrossEntropyLabelSmooth(nn.Module):
    """Label-smoothed cross-entropy. ``forward(logits (B, N), targets (B,) long) -> scalar``."""

    def __init__(self, num_classes: int, epsilon: float = 0.1) -> None:
        super().__init__()
        if int(num_classes) < 1:
            raise ValueError(f"CrossEntropyLabelSmooth: num_classes must be >= 1, got {num_classes!r}")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"CrossEntropyLabelSmooth: epsilon must be in [0, 1], got {epsilon!r}")
        self.num_classes, self.epsilon = int(num_classes), float(epsilon)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        check_shape(logits, "B N", who="CrossEntropyLabelSmooth", what="logits", N=self.num_classes)
        if targets.shape != logits.shape[:1]:
            raise ValueError(f"CrossEntropyLabelSmooth: expected targets of shape ({logits.shape[0]},), "
                             f"got {tuple(targets.shape)}")
        return F.cross_entropy(logits, targets, label_smoothing=self.epsilon)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, epsilon={self.epsilon}"
