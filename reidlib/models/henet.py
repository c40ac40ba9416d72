"""HENet (Zhang et al.): a shared encoder, then global, partial and recovery branches (Sec. 3.1, Fig. 2).

A backbone (ResNet-50 in the paper; any ``build_backbone`` name) is shared up to ``layer3``; every
branch owns a copy of ``layer4`` (:func:`reidlib.models.branches.split_backbone` at ``layer4``: the
split HENet does not state and Table 1's model sizes support, see the HENet chapter). Branches:

* **P(k)**, a partial branch: its map ``GM`` is globally pooled to a 512-d feature ``f_G`` and cut into
  ``k`` equal horizontal bins, each pooled to a 256-d ``f_P^j`` (Eq. 1-2). ``P(1)`` has no bins: it is
  the global branch **G1**. HENet is ``P(1, 4)`` = G1 + P4; Table 2 varies the ``k`` of the branches.
* **R16**, the recovery branch: its map pooled to a 512-d ``f_R`` (Eq. 3-4), which a decoder
  (:class:`~reidlib.models.decoders.RecoveryDecoder`) turns back into a low-resolution image.

Every feature is ``Conv1x1 -> BN -> ReLU`` of its pooled vector and has its own identity classifier
(:class:`~reidlib.models.heads.ReductionHead`). The losses (routed by
:func:`reidlib.papers.henet.criterion_options`): CE on every feature, the triplet on the global
features, OIM on the bins, the reconstruction MSE on R16's decoder output.

Choices where the paper is silent (the chapter says them too): global **max** pooling (as MGN); one
last stride for every branch (default 1; parameter counts do not depend on it); the test descriptor is
the concatenation of every feature, ``[f_G1, f_G4, f_P4^1..4, f_R]`` (FD 2560; 2048 without R16),
ℓ2-normalised as a whole (as MGN-pytorch does), compared with the Euclidean distance.

Branch names in the training output: ``g1``; ``p<k>`` (the global feature of P(k)) and ``p<k>_<j>``
(its bins, ``j = 1..k``); ``r16``, whose dict also carries ``recovery`` (the decoder's image) and
``recovery_target`` (the input batch reduced to that size). The named variants of Tables 1-4 are in
:mod:`reidlib.papers.henet`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.losses.reconstruction import low_resolution
from reidlib.nn import check_images

from .backbones import build_backbone
from .branches import split_backbone
from .decoders import RECOVERY_SIZE, RecoveryDecoder
from .heads import ReductionHead
from .parts import Stripes
from .registry import register_model

__all__ = ["HENet", "HENetConfig", "henet", "SPLIT"]

SPLIT = "layer4"  # every branch owns its layer4 (res_conv5)
POOLINGS = ("max", "avg")


@dataclass(frozen=True)
class HENetConfig:
    """One variant of HENet (a row of Tables 1-4).

    Attributes:
        label: the paper's name of the row.
        partitions: the ``k`` of each partial branch ``P(k)``, distinct, increasing (``1`` = G1);
            may be empty when ``recovery`` is on (Table 3's R16 alone).
        recovery: the R16 branch is present.
        triplet, oim, mse: the losses beside CE (Table 4): the triplet on the global features of the
            partial branches, OIM on their bins, the reconstruction loss on R16 (needs ``recovery``;
            the decoder exists only with it).
        random_erasing: the probability of random erasing (Zhong et al.) in the data pipeline: 0.5 in every
            row of Table 1 ("in accordance with other methods", Sec. 4.3), 0 in Tables 2-4 (a choice: their
            numbers sit far below Table 1's, as a setting without erasing would).
        rpe, rpe_points: the probability of Random Polygon Erasing (0: off; Table 1's "+RPE" rows 0.5) and its
            number of sampled points ``n`` (20; Fig. 4 varies it). The model does not erase; the recipe
            reads these fields.
        pooling: ``max`` (the choice, as MGN) or ``avg``, for the global features and the bins.
        global_dim, part_dim, recovery_dim: 512, 256, 512 (Eq. 2, 4).
        recovery_size: the decoder's output ``(h, w)``.
    """

    label: str = "HENet(+Losses)"
    partitions: tuple[int, ...] = (1, 4)
    recovery: bool = True
    triplet: bool = True
    oim: bool = True
    mse: bool = True
    random_erasing: float = 0.5
    rpe: float = 0.0
    rpe_points: int = 20
    pooling: str = "max"
    global_dim: int = 512
    part_dim: int = 256
    recovery_dim: int = 512
    recovery_size: tuple[int, int] = RECOVERY_SIZE

    def __post_init__(self) -> None:
        # JSON (a run record) gives lists back: normalise, so that options round-trip
        object.__setattr__(self, "partitions", tuple(self.partitions))
        object.__setattr__(self, "recovery_size", tuple(self.recovery_size))
        p = self.partitions
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in p) or list(p) != sorted(set(p)):
            raise ValueError(f"HENetConfig.partitions must be distinct increasing integers >= 1 (1 = G1), got {p!r}")
        if not p and not self.recovery:
            raise ValueError("HENetConfig: no branch (partitions is empty and recovery is off)")
        if self.mse and not self.recovery:
            raise ValueError("HENetConfig: mse=True needs the recovery branch (recovery=True)")
        if self.oim and not any(k > 1 for k in p):
            raise ValueError(f"HENetConfig: oim=True needs a partial branch with bins (a k > 1), got partitions={p!r}")
        if self.triplet and not p:
            raise ValueError("HENetConfig: triplet=True needs a partial branch (its global feature takes the triplet)")
        if self.pooling not in POOLINGS:
            raise ValueError(f"HENetConfig.pooling={self.pooling!r}; expected one of {list(POOLINGS)}")
        for name in ("random_erasing", "rpe"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"HENetConfig.{name} (a probability) must be in [0, 1], got {getattr(self, name)!r}")
        if isinstance(self.rpe_points, bool) or not isinstance(self.rpe_points, int) or self.rpe_points < 3:
            raise ValueError(f"HENetConfig.rpe_points must be an integer >= 3 (a polygon), got {self.rpe_points!r}")
        for name in ("global_dim", "part_dim", "recovery_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"HENetConfig.{name} must be >= 1, got {getattr(self, name)!r}")

    @property
    def branch_names(self) -> tuple[str, ...]:
        """The branches that own a ``layer4``: ``g1``, ``p<k>``, ``r16``."""
        return tuple("g1" if k == 1 else f"p{k}" for k in self.partitions) + (("r16",) if self.recovery else ())

    @property
    def features(self) -> dict[str, int]:
        """Every feature, in descriptor order, with its size: ``{"g1": 512, "p4": 512, "p4_1": 256, ...}``."""
        out: dict[str, int] = {}
        for k in self.partitions:
            name = "g1" if k == 1 else f"p{k}"
            out[name] = self.global_dim
            for j in range(1, k + 1) if k > 1 else ():
                out[f"{name}_{j}"] = self.part_dim
        if self.recovery:
            out["r16"] = self.recovery_dim
        return out

    @property
    def global_features(self) -> tuple[str, ...]:
        return tuple("g1" if k == 1 else f"p{k}" for k in self.partitions)

    @property
    def part_features(self) -> tuple[str, ...]:
        return tuple(f for f in self.features if "_" in f)

    @property
    def feature_dim(self) -> int:
        """FD: the test descriptor's size (Tables 1-3)."""
        return sum(self.features.values())


class HENet(nn.Module):
    """HENet and its variants, one model (see the module docstring).

    Args:
        num_classes: training identities.
        config: an :class:`HENetConfig` (default: HENet(+Losses), G1 + P4 + R16 with every loss).
        backbone, last_stride, pretrained, weights_path: passed to ``reidlib.models.build_backbone``.
        **overrides: fields of the config to change.

    ``forward(images (B, 3, H, W))``: in train mode ``{"branches": {feature: {"logits", "feat",
    "feat_bn"}}}`` (``r16`` with ``recovery`` and ``recovery_target`` when ``mse``); in eval mode the
    test descriptor ``(B, FD)``. ``options``: every field of the resolved config.
    """

    def __init__(self, num_classes: int, config: HENetConfig | None = None, *, backbone: str = "resnet50",
                 last_stride: int = 1, pretrained: bool = False, weights_path: str | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        known = [f.name for f in fields(HENetConfig)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown HENetConfig fields {unknown}; known: {known}")
        self.config: HENetConfig = replace(config or HENetConfig(), **overrides)
        self.variant, self.num_classes = self.config.label, num_classes
        c = self.config
        net = build_backbone(backbone, last_stride=last_stride, pretrained=pretrained, weights_path=weights_path)
        channels = net.out_channels
        self.trunk, stages = split_backbone(net, SPLIT, c.branch_names)
        self.stage4 = nn.ModuleDict(stages)
        self.heads = nn.ModuleDict({f: ReductionHead(channels, dim, num_classes) for f, dim in c.features.items()})
        self.stripes = nn.ModuleDict({f"p{k}": Stripes(k, pool=c.pooling) for k in c.partitions if k > 1})
        self.decoder = RecoveryDecoder(c.recovery_dim, c.recovery_size) if c.mse else None
        self.out_dim = c.feature_dim

    @property
    def options(self) -> dict[str, Any]:
        """Every field of the resolved :class:`HENetConfig` (``build_model("henet", N, **options)`` rebuilds it)."""
        return asdict(self.config)

    def _pool(self, maps: Tensor) -> Tensor:
        return (F.adaptive_max_pool2d if self.config.pooling == "max" else F.adaptive_avg_pool2d)(maps, 1).flatten(1)

    def _pooled(self, images: Tensor) -> dict[str, Tensor]:
        """Each feature's pooled vector ``(B, C)``, by feature name, in descriptor order."""
        trunk = self.trunk(images)
        pooled: dict[str, Tensor] = {}
        for branch in self.config.branch_names:
            maps = self.stage4[branch](trunk)
            pooled[branch] = self._pool(maps)
            if branch in self.stripes:
                bins = self.stripes[branch](maps)  # (B, k, C)
                pooled.update({f"{branch}_{j + 1}": bins[:, j] for j in range(bins.shape[1])})
        return pooled

    def forward(self, images: Tensor) -> Any:
        check_images(images, "HENet", training=self.training, reference=self)
        pooled = self._pooled(images)
        if not self.training:
            descriptor = torch.cat([self.heads[f](pooled[f]) for f in self.config.features], dim=1)
            return F.normalize(descriptor, dim=1)
        branches: dict[str, dict[str, Tensor]] = {}
        for f in self.config.features:
            feat, feat_bn, logits = self.heads[f](pooled[f])
            branches[f] = {"logits": logits, "feat": feat, "feat_bn": feat_bn}
        if self.decoder is not None:
            recovery = self.decoder(branches["r16"]["feat"])
            branches["r16"]["recovery"] = recovery
            branches["r16"]["recovery_target"] = low_resolution(images, tuple(recovery.shape[-2:]))
        return {"branches": branches}


@register_model("henet")
def henet(num_classes: int, *, backbone: str = "resnet50", last_stride: int = 1, pretrained: bool = False,
          weights_path: str | None = None, **config: Any) -> HENet:
    """``build_model("henet", N, backbone=..., **HENetConfig fields)``; no field given: HENet(+Losses)."""
    return HENet(num_classes, None, backbone=backbone, last_stride=last_stride, pretrained=pretrained,
                 weights_path=weights_path, **config)
