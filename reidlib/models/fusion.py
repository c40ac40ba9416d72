"""The multi-resolution feature-fusion network: FMR, SAM + CAM, MGO and the MPFE heads (Secs. III.A-III.D).

Code: libraflower/MutipleFeature-for-PRID (its released model has no attention; SAM and CAM follow its
``CBAM.py``). With ``F_s`` the output of backbone stage ``s`` (``layer1..layer4``):

* **FMR** (fusion of multiple resolutions, Sec. III.A): stages 1-2 are adaptive-*max*-pooled to the map size
  of stage 3 (= stage 4's with last stride 1) and all fused stages are concatenated along the channels::

      F = [MP(F_1); MP(F_2); F_3; F_4]  in R^{3840 x 24 x 8}   (ResNet-50, 384x128: 256 + 512 + 1024 + 2048)

  Any subset of the stages may be fused (Table X): the channel sum is :func:`fmr_channels` (ResNet-18:
  64 + 128 + 256 + 512 = 960; EfficientNet-Lite0: 24 + 40 + 112 + 1280 = 1456). The target size is the
  smallest map among stage 3 and the fused stages (**choice** for subsets without stage 3 and for
  ``last_stride=2``; with last stride 1 it is always stage 3's, the paper's 24x8), so stage 3 always runs.
* **SAM** (Eq. 1, CBAM's spatial attention): ``M_SAM(F) = sigmoid(f^{7x7}([AvgPool_c(F); MaxPool_c(F)]))``
  ``(B, 1, H, W)``, ``F' = M_SAM(F) * F``. 7x7 conv, padding 3, no bias, 2 -> 1 channels (98 parameters);
  ``[avg; max]`` as CBAM (the extraction prints both orders). One SAM per stage, not shared (**choice**),
  applied after FMR's pooling by default (``attention_before_pool`` switches; the paper does not say).
* **CAM** (Eq. 2 in CBAM's form, not the literal MLP(avg + max)): ``M_CAM(F) = sigmoid(W_1 relu(W_0 GAP(F))
  + W_1 relu(W_0 GMP(F)))`` ``(B, C, 1, 1)``, ``W_0: C -> C/r``, ``W_1: C/r -> C``, shared by both pools,
  no biases, ``r = 16`` (``CBAM.py``; 3840 -> 240 -> 3840, 1,843,200 parameters). ``C/r`` is at least 1.
* **Attention order** (Table IX): the operations in the order written, ``S`` = SAM, ``C`` = CAM, ``cat`` =
  the concatenation (``©`` is accepted for it). An attention before ``cat`` runs on every stage (its own
  module per stage), after ``cat`` once on the fused map. The full model is ``S+cat+C``.
* **MGO** (Sec. III.C): the fused map cut into 6 stripes; level ``p`` takes the ``p`` *overlapping* windows
  of ``7 - p`` consecutive stripes, 21 windows (:class:`~reidlib.models.parts.Windows`). Ablations:
  ``parts="global"`` (one window, the whole map) and ``parts="equal"`` (PCB/MGN's ``p`` equal parts per level,
  also 21, with adaptive-pooling bins, since the CPU maps -- 6 or 12 rows -- are not multiples of 60).
  A map height not divisible by the stripes is ``parts.py``'s ``ValueError``.
* **MPFE** (Sec. III.D), one independent head per window: ``z = [GMP(G); GAP(G)]`` (2C) -> 1x1 conv to 256
  (no bias) -> BN -> LeakyReLU(0.1) -> linear to 512 (no bias) -> BN = ``t`` (the triplet's and the test's
  feature, as the code) -> linear classifier (no bias). ``head_text=True`` is the paper text's variant: ReLU,
  and the triplet on the 512-d vector before the last BN (``feat_pre``; the recipe routes it). The 21 heads
  run **batched** (:class:`MPFEHeads`: stacked weights, ``torch.bmm``); :class:`MPFEHead` is one plain head,
  the reference the batched heads are tested against. Parameters: :func:`mpfe_parameter_count`
  (2,098,688 per head at C = 3840, 44,072,448 for 21).
* ``head="bn"`` (the ablations' head without MPFE; **choice**, the paper does not describe its baseline's
  head): GAP of the window -> BN -> linear classifier, batched the same way.

Training output (the house contract)::

    {"branches": {"w<p>_<j>": {"logits" (B, K), "feat" (B, 512), "feat_bn" (B, 512), "feat_pre" (B, 512)},
                  "level<p>": {"feat" (B, 512 p), "feat_pre" (B, 512 p)}}}

one branch per window, ``p`` its level (1..6) and ``j`` its position at that level, top to bottom (``w1_1``
is the whole map; ``w6_j`` the single stripes); ``feat`` = ``feat_bn`` = ``t``, the post-BN vector. The
``level<p>`` branches hold the concatenated features of a level's windows (no logits): the released code's
6 triplet losses take them (:func:`reidlib.papers.feature_fusion.criterion_options` routes the ID loss to
the windows and the triplet to the levels). Eval output: the test descriptor, the 21 ``t`` concatenated
(21 x 512 = 10,752-d) and l2-normalised. The code sums the image's and its mirror's descriptors before
normalising; here that is the evaluator's flip averaging (``TrainConfig.flip_test``), which averages the two
normalised descriptors (the same direction when the two norms agree).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import check_images, check_shape

from .backbones import build_backbone
from .branches import stage_channels
from .parts import Windows
from .registry import register_model

__all__ = ["CAM", "FMR", "SAM", "FusionConfig", "MGOFusionNet", "MPFEHead", "MPFEHeads", "BNHeads", "ORDER_TOKENS",
           "PARTS", "HEADS", "check_stages", "fmr_channels", "mpfe_parameter_count", "parse_order", "mgo_fusion"]

STAGE_LAYERS = {1: "layer1", 2: "layer2", 3: "layer3", 4: "layer4"}
#: The tokens of an attention order: SAM, the concatenation of the stages, CAM.
ORDER_TOKENS = ("S", "cat", "C")
PARTS = ("mgo", "global", "equal")
HEADS = ("mpfe", "bn")


def check_stages(stages: Any, who: str = "FMR") -> tuple[int, ...]:
    """The fused stages as an increasing tuple of distinct integers in 1..4, else a ``ValueError`` naming
    the parameter ``stages``."""
    try:
        values = tuple(stages)
    except TypeError:
        raise ValueError(f"{who}: stages must be a sequence of backbone stages in 1..4, got {stages!r}") from None
    bad = [s for s in values if isinstance(s, bool) or not isinstance(s, int) or s not in STAGE_LAYERS]
    if bad:
        raise ValueError(f"{who}: stages names unknown stage(s) {bad}; the backbone's stages are 1, 2, 3, 4 "
                         f"(layer1..layer4), got stages={stages!r}")
    if not values or list(values) != sorted(set(values)):
        raise ValueError(f"{who}: stages must be distinct increasing stages in 1..4, at least one, got {stages!r}")
    return values


def fmr_channels(channels: Mapping[str, int] | nn.Module | str, stages: Sequence[int] = (1, 2, 3, 4)) -> int:
    """FMR's fused channels: the sum of the fused stages' channels.

    ``channels``: a backbone name (built without weights), a backbone module or its ``stage_channels`` dict
    (``{"layer1": 256, ...}``). ``fmr_channels("resnet50") == 3840``, ``fmr_channels("resnet18") == 960``,
    ``fmr_channels("resnet50", (2, 3, 4)) == 3584``.
    """
    stages = check_stages(stages, "fmr_channels")
    if isinstance(channels, str):
        channels = build_backbone(channels, last_stride=1, pretrained=False)
    if isinstance(channels, nn.Module):
        channels = stage_channels(channels)
    return sum(int(channels[STAGE_LAYERS[s]]) for s in stages)


def parse_order(order: str | Sequence[str] | None, sam: bool = True, cam: bool = True) -> tuple[str, ...]:
    """An attention order (Table IX) as tokens, e.g. ``"S + © + C" -> ("S", "cat", "C")``.

    ``order`` is a ``+``-separated text (or a sequence) of ``S``, ``C`` and ``cat`` (or ``©``); it must be a
    permutation of the modules present: ``cat`` always, ``S`` when ``sam``, ``C`` when ``cam``, else a
    ``ValueError`` naming the parameter ``order``. ``None`` or ``""``: the paper's best order, ``S+cat+C``,
    of the present modules.
    """
    present = [t for t in ORDER_TOKENS if t == "cat" or (t == "S" and sam) or (t == "C" and cam)]
    if order is None or (isinstance(order, str) and not order.strip()):
        return tuple(present)
    raw = order.split("+") if isinstance(order, str) else list(order)
    alias = {"s": "S", "sam": "S", "c": "C", "cam": "C", "cat": "cat", "©": "cat", "(c)": "cat"}
    tokens = tuple(alias.get(str(t).strip().lower(), str(t).strip()) for t in raw)
    if sorted(tokens) != sorted(present):
        raise ValueError(f"order {order!r} is not a permutation of the modules present {present} (parameter 'order': "
                         f"S = SAM (sam={sam}), C = CAM (cam={cam}), cat = the concatenation, e.g. 'S+cat+C')")
    return tokens


class SAM(nn.Module):
    """Spatial attention, Eq. (1): ``F' = sigmoid(conv_kxk([mean_c(F); max_c(F)])) * F``.

    Args:
        kernel_size: the conv's ``k`` (7, as ``CBAM.py``; odd), padding ``k // 2``, no bias, 2 -> 1 channels.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``; :meth:`gate` returns the map ``M_SAM`` ``(B, 1, H, W)`` in (0, 1).
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"SAM: kernel_size must be an odd integer >= 1, got {kernel_size!r}")
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def gate(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W", who="SAM", what="a feature map")
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # [avg; max]
        return torch.sigmoid(self.conv(pooled))

    def forward(self, x: Tensor) -> Tensor:
        return self.gate(x) * x

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class CAM(nn.Module):
    """Channel attention, Eq. (2) in CBAM's form: ``F' = sigmoid(MLP(GAP(F)) + MLP(GMP(F))) * F``.

    Args:
        channels: ``C``.
        reduction: ``r`` (16, as ``CBAM.py``): the shared MLP is ``C -> max(1, C // r) -> C``, ReLU between,
            no biases (1x1 convs).

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``; :meth:`gate` returns ``M_CAM`` ``(B, C, 1, 1)`` in (0, 1).
    ``literal=True`` in :meth:`gate` gives Eq. (2) as extracted, ``sigmoid(MLP(GAP + GMP))``, for comparison.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("reduction", reduction)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CAM: {name} must be an integer >= 1, got {value!r}")
        self.channels, self.reduction = channels, reduction
        self.hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, self.hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(self.hidden, channels, 1, bias=False))

    def gate(self, x: Tensor, literal: bool = False) -> Tensor:
        check_shape(x, "B C H W", who="CAM", what="a feature map", C=self.channels)
        avg, mx = x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.mlp(avg + mx) if literal else self.mlp(avg) + self.mlp(mx))

    def forward(self, x: Tensor) -> Tensor:
        return self.gate(x) * x

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}, hidden={self.hidden}"


def _attention(tokens: Sequence[str], channels: int, kernel_size: int, reduction: int) -> nn.Sequential:
    return nn.Sequential(*[SAM(kernel_size) if t == "S" else CAM(channels, reduction) for t in tokens])


class FMR(nn.Module):
    """Fusion of multiple resolutions with the attention of Table IX's order.

    Args:
        stage_channels: the channels of each stage, ``{"layer1": C_1, ..., "layer4": C_4}``
            (:func:`reidlib.models.branches.stage_channels`).
        stages: the fused stages (Table X), e.g. ``(1, 2, 3, 4)``.
        sam, cam: use SAM / CAM.
        order: the attention order (:func:`parse_order`; default ``S+cat+C`` of the present modules).
        attention_before_pool: run the per-stage attention (before ``cat``) on the stage's own map, before
            FMR's max-pooling (default False: after, at the fused size).
        kernel_size, reduction: SAM's ``k`` (7) and CAM's ``r`` (16).

    ``forward(maps, size)``: ``maps`` ``{stage: (B, C_s, H_s, W_s)}`` holding at least the fused stages,
    ``size`` the target ``(h, w)``; returns ``(B, out_channels, h, w)``, ``out_channels`` the sum of the fused
    stages' channels. ``pre[str(s)]`` holds stage ``s``'s attention before ``cat``, ``post`` the fused map's.
    """

    def __init__(self, stage_channels: Mapping[str, int], stages: Sequence[int] = (1, 2, 3, 4), *, sam: bool = True,
                 cam: bool = True, order: str | Sequence[str] | None = None, attention_before_pool: bool = False,
                 kernel_size: int = 7, reduction: int = 16) -> None:
        super().__init__()
        self.stages = check_stages(stages, "FMR")
        self.order = parse_order(order, sam, cam)
        cut = self.order.index("cat")
        before, after = self.order[:cut], self.order[cut + 1:]
        self.attention_before_pool = bool(attention_before_pool)
        self.channels = {s: int(stage_channels[STAGE_LAYERS[s]]) for s in self.stages}
        self.out_channels = sum(self.channels.values())
        self.pre = nn.ModuleDict({str(s): _attention(before, c, kernel_size, reduction) for s, c in self.channels.items()})
        self.post = _attention(after, self.out_channels, kernel_size, reduction)

    def forward(self, maps: Mapping[int, Tensor], size: tuple[int, int]) -> Tensor:
        missing = [s for s in self.stages if s not in maps]
        if missing:
            raise ValueError(f"FMR: the maps of stage(s) {missing} are missing (given {sorted(maps)})")
        out = []
        for s in self.stages:
            x = maps[s]
            check_shape(x, "B C H W", who="FMR", what=f"the map of stage {s}", C=self.channels[s])
            if self.attention_before_pool:
                x = self.pre[str(s)](x)
            if tuple(x.shape[-2:]) != tuple(size):
                x = F.adaptive_max_pool2d(x, size)
            if not self.attention_before_pool:
                x = self.pre[str(s)](x)
            out.append(x)
        return self.post(torch.cat(out, dim=1) if len(out) > 1 else out[0])

    def extra_repr(self) -> str:
        return (f"stages={self.stages}, order={'+'.join(self.order)!r}, out_channels={self.out_channels}, "
                f"attention_before_pool={self.attention_before_pool}")


# ---------------------------------------------------------------- the MPFE heads


def mpfe_parameter_count(channels: int, num_classes: int = 0, heads: int = 1, mid: int = 256, dim: int = 512) -> int:
    """Parameters of ``heads`` MPFE heads on a ``channels``-channel map (BN: weight + bias, no running stats):
    ``heads * (2C * mid + 2 mid + mid * dim + 2 dim + dim * K)``. ``mpfe_parameter_count(3840) == 2_098_688``;
    21 heads without classifiers: 44,072,448."""
    return heads * (2 * channels * mid + 2 * mid + mid * dim + 2 * dim + dim * num_classes)


def _init_bn(bn: nn.BatchNorm1d) -> None:
    nn.init.normal_(bn.weight, 1.0, 0.02)   # the code's weights_init_kaiming for BatchNorm1d
    nn.init.zeros_(bn.bias)


class MPFEHead(nn.Module):
    """One MPFE head as plain modules (the reference of :class:`MPFEHeads`): ``z (B, 2C)`` ->
    ``(feat_pre (B, dim), feat (B, dim), logits (B, K))``.

    ``z`` is the window's ``[GMP; GAP]``; ``conv`` the 1x1 conv (no bias, PyTorch's default init, as the
    code), ``bn1``, LeakyReLU(0.1) (ReLU with ``negative_slope=0``), ``fc`` (Kaiming normal, fan_out),
    ``bn2`` (weight N(1, 0.02)), ``classifier`` (N(0, 0.001^2)); no biases but the BNs'.
    """

    def __init__(self, in_dim: int, num_classes: int, mid: int = 256, dim: int = 512,
                 negative_slope: float = 0.1) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.conv = nn.Conv2d(in_dim, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(mid)
        self.fc = nn.Linear(mid, dim, bias=False)
        self.bn2 = nn.BatchNorm1d(dim)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_out")
        _init_bn(self.bn1)
        _init_bn(self.bn2)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.conv(z[:, :, None, None]).flatten(1)
        h = F.leaky_relu(self.bn1(h), self.negative_slope)
        feat_pre = self.fc(h)
        feat = self.bn2(feat_pre)
        return feat_pre, feat, self.classifier(feat)


class MPFEHeads(nn.Module):
    """``P`` independent MPFE heads run as batched matrix products (no Python loop over the heads).

    Args:
        heads: ``P`` (21 for MGO).
        in_dim: the input size per head, ``2C`` for ``[GMP; GAP]``.
        num_classes: ``K``.
        mid, dim: 256 and 512 (the code's).
        negative_slope: 0.1 (LeakyReLU, the code); 0 gives the paper text's ReLU.

    Weights are stacked: ``conv_weight (P, mid, in_dim)``, ``fc_weight (P, dim, mid)``, ``cls_weight (P, K, dim)``;
    the BNs are one ``BatchNorm1d(P * mid)`` and one ``BatchNorm1d(P * dim)``, head ``i`` owning the slice
    ``[i * mid, (i + 1) * mid)``, exactly 21 separate BNs (statistics per channel). Initialised per head as
    :class:`MPFEHead`; :meth:`from_heads` copies a list of plain heads (what the tests compare against).

    Shapes: ``z (B, P, in_dim) -> (feat_pre (B, P, dim), feat (B, P, dim), logits (B, P, K))``.
    """

    def __init__(self, heads: int, in_dim: int, num_classes: int, mid: int = 256, dim: int = 512,
                 negative_slope: float = 0.1) -> None:
        super().__init__()
        for name, value in (("heads", heads), ("in_dim", in_dim), ("num_classes", num_classes), ("mid", mid),
                            ("dim", dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MPFEHeads: {name} must be an integer >= 1, got {value!r}")
        self.heads, self.in_dim, self.num_classes, self.mid, self.dim = heads, in_dim, num_classes, mid, dim
        self.negative_slope = float(negative_slope)
        self.conv_weight = nn.Parameter(torch.empty(heads, mid, in_dim))
        self.bn1 = nn.BatchNorm1d(heads * mid)
        self.fc_weight = nn.Parameter(torch.empty(heads, dim, mid))
        self.bn2 = nn.BatchNorm1d(heads * dim)
        self.cls_weight = nn.Parameter(torch.empty(heads, num_classes, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in_dim)  # nn.Conv2d's default (kaiming_uniform_, a = sqrt(5)) per head
        nn.init.uniform_(self.conv_weight, -bound, bound)
        nn.init.normal_(self.fc_weight, std=math.sqrt(2.0 / self.dim))  # kaiming_normal_, fan_out = dim
        _init_bn(self.bn1)
        _init_bn(self.bn2)
        nn.init.normal_(self.cls_weight, std=0.001)

    @classmethod
    def from_heads(cls, heads: Sequence[MPFEHead]) -> MPFEHeads:
        """Batched heads holding copies of the weights and BN states of ``heads``."""
        first = heads[0]
        out = cls(len(heads), first.conv.in_channels, first.classifier.out_features, first.conv.out_channels,
                  first.fc.out_features, first.negative_slope)
        out = out.to(dtype=first.conv.weight.dtype)
        with torch.no_grad():
            out.conv_weight.copy_(torch.stack([h.conv.weight[:, :, 0, 0] for h in heads]))
            out.fc_weight.copy_(torch.stack([h.fc.weight for h in heads]))
            out.cls_weight.copy_(torch.stack([h.classifier.weight for h in heads]))
            for big, name in ((out.bn1, "bn1"), (out.bn2, "bn2")):
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(big, key).copy_(torch.cat([getattr(getattr(h, name), key) for h in heads]))
        return out

    @staticmethod
    def _bmm(x: Tensor, weight: Tensor) -> Tensor:
        """``(B, P, i)`` times each head's ``(o, i)`` -> ``(B, P, o)`` in one batched product."""
        return torch.bmm(x.transpose(0, 1), weight.transpose(1, 2)).transpose(0, 1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b = check_shape(z, "B P D", who="MPFEHeads", what="the pooled windows", P=self.heads, D=self.in_dim)[0]
        h = self.bn1(self._bmm(z, self.conv_weight).reshape(b, -1)).view(b, self.heads, self.mid)
        h = F.leaky_relu(h, self.negative_slope)
        feat_pre = self._bmm(h, self.fc_weight)
        feat = self.bn2(feat_pre.reshape(b, -1)).view(b, self.heads, self.dim)
        return feat_pre, feat, self._bmm(feat, self.cls_weight)

    def extra_repr(self) -> str:
        return (f"heads={self.heads}, in_dim={self.in_dim}, mid={self.mid}, dim={self.dim}, "
                f"num_classes={self.num_classes}, negative_slope={self.negative_slope}")


class BNHeads(nn.Module):
    """``P`` batched plain heads, the ablations' head without MPFE: ``z (B, P, C)`` (the window's GAP) -> BN
    (one per head, N(1, 0.02) weight) -> linear classifier (no bias, N(0, 0.001^2)). Returns
    ``(feat_pre = z, feat = BN(z), logits (B, P, K))``."""

    def __init__(self, heads: int, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.heads, self.in_dim, self.num_classes, self.dim = heads, in_dim, num_classes, in_dim
        self.bn = nn.BatchNorm1d(heads * in_dim)
        self.cls_weight = nn.Parameter(torch.empty(heads, num_classes, in_dim))
        _init_bn(self.bn)
        nn.init.normal_(self.cls_weight, std=0.001)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b = check_shape(z, "B P D", who="BNHeads", what="the pooled windows", P=self.heads, D=self.in_dim)[0]
        feat = self.bn(z.reshape(b, -1)).view(b, self.heads, self.in_dim)
        return z, feat, MPFEHeads._bmm(feat, self.cls_weight)


# ---------------------------------------------------------------- the network


@dataclass(frozen=True)
class FusionConfig:
    """One variant of the feature-fusion network (a row of Tables VI, VII, IX, X).

    Attributes:
        label: the paper's name of the row.
        stages: the stages FMR fuses (Table X), increasing, in 1..4.
        sam, cam: SAM (Eq. 1) and CAM (Eq. 2) on or off.
        order: the attention order (Table IX), ``+``-separated ``S``, ``cat``, ``C`` (normalised to those
            tokens); ``""`` (default): ``S+cat+C`` of the modules present (:attr:`attention_order`), so that
            switching ``sam`` or ``cam`` keeps a valid order.
        attention_before_pool: per-stage attention before FMR's max-pooling (default after; the paper is silent).
        parts: ``"mgo"`` (21 overlapping windows), ``"global"`` (one descriptor of the whole map) or
            ``"equal"`` (PCB/MGN's equal split per level, adaptive bins).
        stripes: ``k`` (6): the stripes of MGO and the levels of both multi-level splits.
        head: ``"mpfe"`` or ``"bn"`` (the ablations' plain head, see the module docstring).
        head_text: the paper text's MPFE (ReLU; the triplet on the pre-BN vector) instead of the code's.
        mid_dim, feat_dim: MPFE's 256 and 512.
        sam_kernel, cam_reduction: 7 and 16 (``CBAM.py``).
        tricks: the bag of tricks (random erasing 0.5, warm-up, label smoothing 0.1; Sec. III.F). The model
            does not read it; the recipe does.
    """

    label: str = "S + © + C"
    stages: tuple[int, ...] = (1, 2, 3, 4)
    sam: bool = True
    cam: bool = True
    order: str = ""
    attention_before_pool: bool = False
    parts: str = "mgo"
    stripes: int = 6
    head: str = "mpfe"
    head_text: bool = False
    mid_dim: int = 256
    feat_dim: int = 512
    sam_kernel: int = 7
    cam_reduction: int = 16
    tricks: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", check_stages(self.stages, "FusionConfig"))
        for name in ("sam", "cam", "attention_before_pool", "head_text", "tricks"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"FusionConfig.{name} must be True or False, got {getattr(self, name)!r}")
        tokens = parse_order(self.order, self.sam, self.cam)  # validated; an explicit order is normalised
        if self.order:
            object.__setattr__(self, "order", "+".join(tokens))
        if self.parts not in PARTS:
            raise ValueError(f"FusionConfig.parts must be one of {list(PARTS)} (parameter 'parts'), got {self.parts!r}")
        if self.head not in HEADS:
            raise ValueError(f"FusionConfig.head must be one of {list(HEADS)} (parameter 'head'), got {self.head!r}")
        for name in ("stripes", "mid_dim", "feat_dim", "cam_reduction", "sam_kernel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FusionConfig.{name} must be an integer >= 1, got {value!r}")

    @property
    def attention_order(self) -> str:
        """The resolved order, e.g. ``"S+cat+C"`` (``order``, or the default of the modules present)."""
        return "+".join(parse_order(self.order, self.sam, self.cam))

    @property
    def levels(self) -> tuple[int, ...]:
        """The level of each window, in output order (``(1, 2, 2, 3, 3, 3, ...)``; ``(1,)`` for ``global``)."""
        k = 1 if self.parts == "global" else self.stripes
        return tuple(p for p in range(1, k + 1) for _ in range(p))

    @property
    def window_names(self) -> tuple[str, ...]:
        """The window branches, ``w<level>_<j>``: ``w1_1, w2_1, w2_2, ..., w6_6``."""
        names, seen = [], {}
        for p in self.levels:
            seen[p] = seen.get(p, 0) + 1
            names.append(f"w{p}_{seen[p]}")
        return tuple(names)

    @property
    def level_names(self) -> tuple[str, ...]:
        """The level branches (the triplet's concatenated features): ``level1 .. level6``."""
        return tuple(f"level{p}" for p in sorted(set(self.levels)))

    def head_dim(self, channels: int) -> int:
        """The size of one window's vector: ``feat_dim`` for MPFE, the fused ``channels`` for the BN head."""
        return self.feat_dim if self.head == "mpfe" else channels


class MGOFusionNet(nn.Module):
    """The feature-fusion network and its ablations (see the module docstring).

    Args:
        num_classes: training identities ``K``.
        config: a :class:`FusionConfig` (default the full model, S + © + C with MGO and MPFE).
        backbone, last_stride, pretrained, weights_path: ``reidlib.models.build_backbone``'s.
        **overrides: fields of the config to change.

    Attributes: ``fmr`` (:class:`FMR`), ``windows`` (:class:`~reidlib.models.parts.Windows`), ``heads``
    (:class:`MPFEHeads` or :class:`BNHeads`), ``out_dim`` (the descriptor's size: 10,752 for the full model).
    """

    def __init__(self, num_classes: int, config: FusionConfig | None = None, *, backbone: str = "resnet50",
                 last_stride: int = 1, pretrained: bool = False, weights_path: str | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        known = [f.name for f in fields(FusionConfig)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown FusionConfig fields {unknown}; known: {known}")
        self.config: FusionConfig = replace(config or FusionConfig(), **overrides)
        self.variant, self.num_classes = self.config.label, int(num_classes)
        c = self.config
        net = build_backbone(backbone, last_stride=last_stride, pretrained=pretrained, weights_path=weights_path)
        channels = stage_channels(net)
        self.depth = max(max(c.stages), 3)  # stage 3 always runs: it gives FMR's size
        self.body = nn.ModuleDict({"stem": net.stem, **{STAGE_LAYERS[s]: getattr(net, STAGE_LAYERS[s])
                                                         for s in range(1, self.depth + 1)}})
        self.fmr = FMR(channels, c.stages, sam=c.sam, cam=c.cam, order=c.attention_order,
                       attention_before_pool=c.attention_before_pool, kernel_size=c.sam_kernel,
                       reduction=c.cam_reduction)
        fused = self.fmr.out_channels
        pool = "max|avg" if c.head == "mpfe" else "avg"
        if c.parts == "global":
            self.windows = Windows(1, pool=pool)
        else:
            self.windows = Windows(c.stripes, pool=pool, scheme=c.parts, exact=c.parts == "mgo")
        parts = len(c.levels)
        if c.head == "mpfe":
            self.heads: nn.Module = MPFEHeads(parts, 2 * fused, self.num_classes, c.mid_dim, c.feat_dim,
                                              0.0 if c.head_text else 0.1)
        else:
            self.heads = BNHeads(parts, fused, self.num_classes)
        self.out_dim = parts * c.head_dim(fused)

    @property
    def options(self) -> dict[str, Any]:
        """Every field of the resolved :class:`FusionConfig` (``build_model("mgo_fusion", K, **options)``)."""
        return asdict(self.config)

    def fused_map(self, images: Tensor) -> Tensor:
        """FMR's output ``(B, C_fused, h, w)``, attention included."""
        x = self.body["stem"](images)
        maps: dict[int, Tensor] = {}
        for s in range(1, self.depth + 1):
            x = self.body[STAGE_LAYERS[s]](x)
            maps[s] = x
        keys = set(self.config.stages) | {3}
        size = (min(maps[s].shape[-2] for s in keys), min(maps[s].shape[-1] for s in keys))
        return self.fmr(maps, size)

    def forward(self, images: Tensor) -> Any:
        check_images(images, "MGOFusionNet", training=self.training, reference=self)
        feat_pre, feat, logits = self.heads(self.windows(self.fused_map(images)))
        if not self.training:
            return F.normalize(feat.flatten(1), dim=1)
        c = self.config
        branches: dict[str, dict[str, Tensor]] = {
            name: {"logits": logits[:, i], "feat": feat[:, i], "feat_bn": feat[:, i], "feat_pre": feat_pre[:, i]}
            for i, name in enumerate(c.window_names)}
        for p, name in zip(sorted(set(c.levels)), c.level_names):
            index = [i for i, q in enumerate(c.levels) if q == p]
            lo, hi = index[0], index[-1] + 1
            branches[name] = {"feat": feat[:, lo:hi].flatten(1), "feat_pre": feat_pre[:, lo:hi].flatten(1)}
        return {"branches": branches}


@register_model("mgo_fusion")
def mgo_fusion(num_classes: int, *, backbone: str = "resnet50", last_stride: int = 1, pretrained: bool = False,
               weights_path: str | None = None, **config: Any) -> MGOFusionNet:
    """``build_model("mgo_fusion", K, backbone=..., **FusionConfig fields)``; no field: the full model."""
    return MGOFusionNet(num_classes, None, backbone=backbone, last_stride=last_stride, pretrained=pretrained,
                        weights_path=weights_path, **config)
