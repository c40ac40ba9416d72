"""Heads on a pooled descriptor: BNNeck (Luo et al., "Bag of tricks", Sec. 4.6, Fig. 5).

BNNeck puts a BatchNorm layer between the pooled feature ``f_t`` and the classifier:
the triplet loss sees ``f_t`` (before BN), the ID loss sees ``W f_i`` with ``f_i = BN(f_t)``,
and retrieval uses ``f_i`` (after BN). The BN's bias (shift) is frozen at 0 and the classifier
has no bias, so that the ID loss's decision boundaries pass through the origin of ``f_i`` and
suit the cosine metric. Initialisation as in the authors' code: BN weight 1, bias 0;
classifier weights ``N(0, 0.001^2)``.
"""
from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from reidlib.nn import check_shape

__all__ = ["BNNeck", "LinearHead", "ReductionHead"]

TestFeature = Literal["after", "before"]


def _check_dims(in_dim: int, num_classes: int, test_feature: str, who: str) -> None:
    if int(in_dim) < 1 or int(num_classes) < 1:
        raise ValueError(f"{who}: in_dim and num_classes must be >= 1, got in_dim={in_dim}, num_classes={num_classes}")
    if test_feature not in ("after", "before"):
        raise ValueError(f"{who}: test_feature must be 'after' or 'before', got {test_feature!r}")


class BNNeck(nn.Module):
    """BatchNorm neck + bias-free linear classifier.

    Args:
        in_dim: ``D``, the pooled feature's size.
        num_classes: ``N``, the number of training identities.
        test_feature: which feature :meth:`forward` returns in eval mode: ``'after'`` BN
            (default, as in the paper) or ``'before'``.

    Shapes: training ``(B, D) -> (feat (B, D), feat_bn (B, D), logits (B, N))``;
    eval ``(B, D) -> (B, D)``.
    """

    def __init__(self, in_dim: int, num_classes: int, test_feature: TestFeature = "after") -> None:
        super().__init__()
        _check_dims(in_dim, num_classes, test_feature, "BNNeck")
        self.in_dim, self.num_classes, self.test_feature = int(in_dim), int(num_classes), test_feature
        self.bn = nn.BatchNorm1d(self.in_dim)
        self.bn.bias.requires_grad_(False)  # no shift: Sec. 4.6
        self.classifier = nn.Linear(self.in_dim, self.num_classes, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor, Tensor] | Tensor:
        check_shape(feat, "B D", who="BNNeck", what="features", D=self.in_dim)
        feat_bn = self.bn(feat)
        if not self.training:
            return feat_bn if self.test_feature == "after" else feat
        return feat, feat_bn, self.classifier(feat_bn)

    def extra_repr(self) -> str:
        return f"test_feature={self.test_feature!r}"


class LinearHead(nn.Module):
    """No neck (the "Bag of tricks" ablation without BNNeck): a linear classifier with bias on ``f_t``.

    Same interface as :class:`BNNeck`; ``feat_bn`` is ``feat`` itself. Shapes: training
    ``(B, D) -> (feat, feat, logits (B, N))``; eval ``(B, D) -> (B, D)``.
    """

    def __init__(self, in_dim: int, num_classes: int, test_feature: TestFeature = "before") -> None:
        super().__init__()
        _check_dims(in_dim, num_classes, test_feature, "LinearHead")
        self.in_dim, self.num_classes, self.test_feature = int(in_dim), int(num_classes), test_feature
        self.classifier = nn.Linear(self.in_dim, self.num_classes)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor, Tensor] | Tensor:
        check_shape(feat, "B D", who="LinearHead", what="features", D=self.in_dim)
        if not self.training:
            return feat
        return feat, feat, self.classifier(feat)


class ReductionHead(nn.Module):
    """A pooled feature reduced by a 1x1 convolution -> BN -> ReLU, then a linear classifier (MGN's head, Wang
    et al. 2018, as its widely used re-implementation ``seathiefwang/MGN-pytorch`` builds it; HENet's Eq. 2
    and 4, ``f = Conv1x1(pooled)``).

    The reduced feature ``f`` is what the triplet loss, OIM and the test descriptor read; the classifier
    (bias, Kaiming init as MGN-pytorch) is used in training only. There is no BNNeck: ``feat_bn`` is ``f``.
    Shapes: training ``(B, C) -> (f (B, D), f, logits (B, N))``; eval ``(B, C) -> f (B, D)``.
    """

    def __init__(self, in_dim: int, out_dim: int, num_classes: int) -> None:
        super().__init__()
        _check_dims(in_dim, num_classes, "before", "ReductionHead")
        if int(out_dim) < 1:
            raise ValueError(f"ReductionHead: out_dim must be >= 1, got {out_dim}")
        self.in_dim, self.out_dim, self.num_classes = int(in_dim), int(out_dim), int(num_classes)
        self.reduction = nn.Sequential(nn.Conv2d(self.in_dim, self.out_dim, 1, bias=False),
                                       nn.BatchNorm2d(self.out_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(self.out_dim, self.num_classes)
        nn.init.kaiming_normal_(self.reduction[0].weight, mode="fan_in")
        nn.init.kaiming_normal_(self.classifier.weight, mode="fan_out")
        nn.init.zeros_(self.classifier.bias)

    def forward(self, pooled: Tensor) -> tuple[Tensor, Tensor, Tensor] | Tensor:
        check_shape(pooled, "B C", who="ReductionHead", what="pooled features", C=self.in_dim)
        f = self.reduction(pooled[:, :, None, None]).flatten(1)
        if not self.training:
            return f
        return f, f, self.classifier(f)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, num_classes={self.num_classes}"
