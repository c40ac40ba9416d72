"""The good-practices model of Almazán et al., "Re-ID done right: towards good practices for person
re-identification" (arXiv 1801.05339, 2018, Sec. 3.1 and Fig. 2). The paper never names it.

    image (3, H, W) -> backbone -> A (C, h, w) -> global max pooling -> p (C,) -> FC -> y (D,) -> x = y / ||y||

No BN, no ReLU between the pooling and the FC, no BNNeck, output stride 32 (the paper never sets a last
stride of 1). Similarity is the dot product ``q^T d`` of the l2-normalised descriptors (cosine).

Two stages (Sec. 3.2, 3.3): in ``"classification"`` the pooled feature ``p`` feeds a linear classifier over
the training identities (the stage-1 head is not described in the paper: *choice*, a linear layer with bias
on the model's own pooling), and the FC is unused; :meth:`GoodPractices.set_stage` ``("ranking")`` discards
the classifier's role and re-initialises the FC (the paper: "randomly initialised" at the start of the
ranking stage), after which training returns the descriptor for the three-stream loss of Eq. (1)
(:func:`reidlib.losses.dot_product_triplet`).

BatchNorm with one image per forward (the paper processes triplets one image at a time, each at its own
size, and accumulates gradients): train-mode BN would normalise each image by its own statistics, so with
``frozen_bn`` the BN layers keep their running statistics (eval mode) whenever the model trains; their
affine parameters still train (*choice*). With frozen BN, per-image forwards and one batched forward give
the same descriptors and gradients (tested), so equal-size images may be batched for speed.

A list of images of different sizes is accepted in both modes: each is forwarded on its own and the
descriptors are stacked.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import check_images

from .backbones import backbone_module
from .pooling import build_pooling
from .registry import register_model

__all__ = ["GoodPractices", "good_practices", "STAGES"]

Stage = Literal["classification", "ranking"]
STAGES: tuple[str, ...] = ("classification", "ranking")


class GoodPractices(nn.Module):
    """Backbone -> global max pooling -> FC ``C -> dim`` -> l2 (Sec. 3.1).

    Args:
        backbone: a backbone name (:func:`~reidlib.models.build_backbone`; ResNet-101 in the paper) or a
            module ``(B, 3, H, W) -> (B, C, h, w)`` with ``out_channels``.
        num_classes: training identities ``N`` (the stage-1 classifier).
        pooling: ``"gmp"`` (the paper's) or ``"gap"`` (Table 3a's alternative).
        dim: descriptor dimension ``D`` (2,048 in the paper).
        bias: whether the FC has a bias (the paper does not say; *choice*: yes).
        frozen_bn: keep BatchNorm in eval mode while training (see the module docstring).
        stage: ``"classification"`` or ``"ranking"``.
        last_stride, pretrained, weights_path: for a backbone given by name (``last_stride=2``: stride 32).

    Forward, training: classification ``(B, 3, H, W) -> {"branches": {"main": {"logits": (B, N), "feat":
    (B, C)}}}``; ranking ``-> {"branches": {"main": {"feat": (B, D)}}}`` (``x``, unit rows). Eval: ranking
    ``-> x (B, D)``; in the classification stage (before the FC has trained) ``p / ||p||`` ``(B, C)``.
    """

    def __init__(self, backbone: str | nn.Module = "resnet101", num_classes: int | None = None, *,
                 pooling: str = "gmp", dim: int = 2048, bias: bool = True, frozen_bn: bool = True,
                 stage: Stage = "ranking", last_stride: int = 2, pretrained: bool | str = False,
                 weights_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        if num_classes is None or isinstance(num_classes, bool) or int(num_classes) < 1:
            raise ValueError(f"GoodPractices: num_classes (training identities) must be >= 1, got {num_classes!r}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"GoodPractices: dim (the descriptor size) must be an integer >= 1, got {dim!r}")
        if str(pooling).lower() not in ("gmp", "max", "gap", "avg"):
            raise ValueError(f"GoodPractices: pooling must be 'gmp' (the paper's) or 'gap' (Table 3a), got {pooling!r}")
        backbone = backbone_module(backbone, "GoodPractices", last_stride=last_stride, pretrained=pretrained,
                                   weights_path=weights_path)
        self.backbone = backbone
        self.pooling = build_pooling(pooling)
        self.feature_dim = int(backbone.out_channels)
        self.fc = nn.Linear(self.feature_dim, dim, bias=bias)
        self.classifier = nn.Linear(self.feature_dim, int(num_classes))
        self.num_classes, self.dim = int(num_classes), dim
        self.frozen_bn = bool(frozen_bn)
        self.stage: str = "ranking"
        self.set_stage(stage, reset_fc=False)
        self._options = {"pooling": str(pooling).lower().replace("max", "gmp").replace("avg", "gap"), "dim": dim,
                         "bias": bool(bias), "frozen_bn": self.frozen_bn}

    @property
    def options(self) -> dict[str, object]:
        """The options of ``build_model("good_practices", ...)`` that rebuild this architecture, with the stage."""
        return {**self._options, "stage": self.stage}

    def set_stage(self, stage: Stage, *, reset_fc: bool = True, generator: torch.Generator | None = None) -> None:
        """Switch to ``stage``; entering ``"ranking"`` with ``reset_fc`` re-initialises the FC (Sec. 3.2) as
        ``nn.Linear`` does (Kaiming-uniform weights, uniform bias), drawn from ``generator`` when given."""
        if stage not in STAGES:
            raise ValueError(f"GoodPractices: stage must be one of {list(STAGES)}, got {stage!r}")
        self.stage = stage
        if stage == "ranking" and reset_fc:
            bound = 1.0 / self.feature_dim ** 0.5  # nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            with torch.no_grad():
                self.fc.weight.uniform_(-bound, bound, generator=generator)
                if self.fc.bias is not None:
                    self.fc.bias.uniform_(-bound, bound, generator=generator)

    def train(self, mode: bool = True) -> GoodPractices:
        super().train(mode)
        # BN statistics of one image are not the population's: keep the running ones (module docstring)
        if mode and self.frozen_bn and self.stage == "ranking":
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def pooled(self, x: Tensor | Sequence[Tensor]) -> Tensor:
        """``p``: the pooled map ``(B, C)``; a list of ``(3, H_i, W_i)`` images is forwarded one by one."""
        if isinstance(x, (list, tuple)):
            if not x:
                raise ValueError("GoodPractices: got an empty list of images")
            return torch.cat([self.pooled(check_images(img.unsqueeze(0), "GoodPractices", reference=self))
                              for img in x])
        return self.pooling(self.backbone(x))

    def embed(self, p: Tensor) -> Tensor:
        """``x = (W p + b) / ||W p + b||``: ``(B, C) -> (B, D)``."""
        return F.normalize(self.fc(p), dim=1)

    def forward(self, x: Tensor | Sequence[Tensor]) -> dict[str, dict[str, dict[str, Tensor]]] | Tensor:
        if not isinstance(x, (list, tuple)):
            # one image per forward is the point of frozen BN: B = 1 is allowed then
            check_images(x, "GoodPractices", training=self.training and not self._bn_frozen(), reference=self)
        p = self.pooled(x)
        if self.stage == "classification":
            if not self.training:
                return F.normalize(p, dim=1)
            return {"branches": {"main": {"logits": self.classifier(p), "feat": p}}}
        feat = self.embed(p)
        return {"branches": {"main": {"feat": feat}}} if self.training else feat

    def _bn_frozen(self) -> bool:
        return self.frozen_bn and self.stage == "ranking"


@register_model("good_practices", "reid_done_right")
def good_practices(num_classes: int, *, backbone: str = "resnet101", last_stride: int = 2, pretrained: bool = False,
                   weights_path: str | os.PathLike | None = None, pooling: str = "gmp", dim: int = 2048,
                   bias: bool = True, frozen_bn: bool = True, stage: Stage = "ranking") -> GoodPractices:
    """The good-practices model (Almazán et al. 2018) by name: ``build_model("good_practices", N)``. A trained
    model is rebuilt in its ranking stage (the record stores ``stage``)."""
    return GoodPractices(backbone, num_classes, pooling=pooling, dim=dim, bias=bias, frozen_bn=frozen_bn, stage=stage,
                         last_stride=last_stride, pretrained=pretrained, weights_path=weights_path)
