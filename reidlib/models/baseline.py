"""The strong baseline of Luo et al., "Bag of tricks and a strong baseline for deep person re-ID"
(CVPRW 2019): a ResNet backbone with last stride 1, global pooling and a BNNeck.

    image (B, 3, H, W) -> backbone -> (B, C, h, w) -> pooling -> f_t (B, C) -> BNNeck -> f_i, logits

Training mode returns everything the losses need under the house contract, one branch named
``"main"``: ``{"branches": {"main": {"logits", "feat", "feat_bn"}}}`` (``feat`` = ``f_t`` for the
triplet loss, ``logits`` for the ID loss); eval mode returns the test descriptor ``(B, C)``
(``f_i``, after BN, by default). Registered as ``build_model("baseline", num_classes, ...)``.
"""
from __future__ import annotations

import os

from torch import Tensor, nn

from reidlib.nn import check_images

from .backbones import backbone_module
from .heads import BNNeck, LinearHead, TestFeature
from .pooling import build_pooling
from .registry import register_model

__all__ = ["Baseline", "baseline"]


class Baseline(nn.Module):
    """Backbone + pooling + BNNeck.

    Args:
        backbone: a backbone name (``reidlib.models.BACKBONES``: the ResNets, EfficientNet-Lite0/1/2; see
            :func:`~reidlib.models.build_backbone`) or a module mapping
            ``(B, 3, H, W) -> (B, C, h, w)`` with an ``out_channels`` attribute.
        num_classes: number of training identities ``N`` (required).
        pooling: ``'gap'``, ``'gmp'``, ``'gem'``, ``'p_pooling'`` or a module ``(B, C, h, w) -> (B, C)``.
        last_stride, pretrained, weights_path: passed to ``build_backbone`` (name only).
        neck: ``'bnneck'`` (default) or ``'none'`` (linear classifier with bias on ``f_t``).
        test_feature: eval-mode descriptor, ``'after'`` BN (default) or ``'before'``.

    Forward: training ``(B, 3, H, W) -> {"branches": {"main": {"logits": (B, N), "feat": (B, C),
    "feat_bn": (B, C)}}}``; eval ``(B, 3, H, W) -> (B, C)``. ``feature_dim`` is ``C``; ``options`` the
    resolved model options (``pooling``, ``neck``, ``test_feature``) a run record stores.
    """

    def __init__(
        self,
        backbone: str | nn.Module = "resnet50",
        num_classes: int | None = None,
        *,
        pooling: str | nn.Module = "gap",
        last_stride: int = 1,
        pretrained: bool | str = False,
        weights_path: str | os.PathLike | None = None,
        neck: str = "bnneck",
        test_feature: TestFeature = "after",
    ) -> None:
        super().__init__()
        if num_classes is None or int(num_classes) < 1:
            raise ValueError(f"Baseline: num_classes (the number of training identities) must be >= 1, got {num_classes!r}")
        backbone = backbone_module(backbone, "Baseline", last_stride=last_stride, pretrained=pretrained,
                                   weights_path=weights_path)
        self.backbone = backbone
        self.pooling = build_pooling(pooling)
        self.feature_dim = int(backbone.out_channels)
        if neck == "bnneck":
            self.neck: nn.Module = BNNeck(self.feature_dim, int(num_classes), test_feature)
        elif neck == "none":
            self.neck = LinearHead(self.feature_dim, int(num_classes), test_feature)
        else:
            raise ValueError(f"Baseline: neck must be 'bnneck' or 'none', got {neck!r}")
        self.num_classes = int(num_classes)
        self._options = {"pooling": pooling if isinstance(pooling, str) else type(pooling).__name__,
                         "neck": neck, "test_feature": test_feature}

    @property
    def options(self) -> dict[str, str]:
        """The model options of ``build_model("baseline", ...)`` that rebuild this architecture."""
        return dict(self._options)

    def pooled(self, x: Tensor) -> Tensor:
        """``f_t``: the pooled feature before the neck, ``(B, 3, H, W) -> (B, C)``."""
        return self.pooling(self.backbone(x))

    def forward(self, x: Tensor) -> dict[str, Tensor] | Tensor:
        check_images(x, "Baseline", training=self.training, reference=self)
        out = self.neck(self.pooled(x))
        if not self.training:
            return out
        feat, feat_bn, logits = out
        return {"branches": {"main": {"logits": logits, "feat": feat, "feat_bn": feat_bn}}}


@register_model("baseline", "bot")
def baseline(num_classes: int, *, backbone: str = "resnet50", last_stride: int = 1, pretrained: bool = False,
             weights_path: str | os.PathLike | None = None, pooling: str = "gap", neck: str = "bnneck",
             test_feature: TestFeature = "after") -> Baseline:
    """The strong baseline (Luo et al. 2019) by name: ``build_model("baseline", N, backbone="resnet18")``."""
    return Baseline(backbone, num_classes, pooling=pooling, last_stride=last_stride, pretrained=pretrained,
                    weights_path=weights_path, neck=neck, test_feature=test_feature)
