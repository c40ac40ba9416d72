"""The hashing paper's network (Jin et al. 2021, "Hashing person re-ID with self-distilling smooth relaxation",
Sec. 3-5, Fig. 1): a trunk shared up to ``layer2``, teacher and student copies of ``layer3``-``layer4``, per
branch 6 stripes and one AAB-refined global vector, each reduced to its bit budget, and 30 attribute heads.

Per branch (``t`` the teacher, ``s`` the student), on its ``layer4`` map ``F_In`` ``(B, C, h, w)``:

* 6 horizontal stripes of the **un-refined** map, average-pooled (PCB), ``(B, 6, C)``;
* the global vector: the average pool of the **AAB-refined** map (Eq. 10; :class:`~reidlib.models.attention.AAB`)
  or of ``F_In`` without AAB;
* each of the 7 vectors through its own :class:`~reidlib.models.quantize.HashHead` (a 1x1 conv as a linear map,
  optional BN, the relaxation's activation, **no ReLU**) to its bit budget, ``6 x 256 + 512 = 2048``,
  ``6 x 64 + 128 = 512``, ``6 x 16 + 32 = 128`` (:data:`BIT_SPLITS`; 256 bits as ``6 x 32 + 64``, a choice: the
  paper uses 256 bits in Table 8 only and does not split it);
* an identity classifier (a linear layer) on each reduced vector, and 30 binary attribute logits (one linear
  layer, Sec. 5.1) on the reduced global vector.

With ``relaxation="ssr"`` both branches exist: the teacher's vectors are quantized by Eq. (1) (no activation)
and the student is distilled towards them (:mod:`reidlib.losses.distillation`). Any other relaxation of
Table 6 (``sigmoid``, ``hardsigmoid``, ``tanh``, ``hardtanh``, ``dsh``) is a **single-branch** network, the
student alone with that activation (a choice: the paper's baseline(Sigmoid) "by the definition has no teacher").

Training output (the house contract): ``{"branches": {name: {...}}}`` with one branch per vector,
``t_l1``..``t_l6``, ``t_g``, ``s_l1``..``s_l6``, ``s_g``: each holds ``logits`` (B, N) and ``feat`` (B, bits_k),
the real-valued (relaxed) vector that the triplet and ID losses read and the test code quantizes. Student
branches of an SSR network also hold ``code`` (the same vector) and ``teacher_code`` (the teacher's matching
vector), which the ``"ssr"`` term reads; the global branches hold ``attribute_logits`` (B, A).

Eval output, by :attr:`SSRHashing.eval_output`: ``"student"`` (default), the student's ±1 code (B, bits)
quantized at its relaxation's threshold, the retrieval code of Tables 1-8; ``"teacher"``, the teacher's ±1 code
(Table 6's teacher rows); ``"float"``, the student's real-valued vector (Table 9's non-hashing descriptor);
``"attributes"``, the student's attribute logits (B, A) (a choice: the student, the retrieval branch, feeds AFR).
:meth:`SSRHashing.encode` returns all of them from one forward. ±1 codes compared by the Euclidean distance rank
exactly as by the Hamming distance (``||b_q - b_g||^2 = 4 d_H``), so the house's evaluator ranks them right.

Choices where the paper is silent, stated: the split after ``layer2`` (stem + ``layer1`` + ``layer2`` shared);
average pooling of stripes and global vector (PCB); last stride 1 (PCB); the attribute heads read the reduced
global vector (Eq. 4's ``S_i``); AAB's raising convolutions start at zero (the block starts as the identity).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import check_images

from .attention import AAB, DEFAULT_REDUCTION
from .backbones import build_backbone
from .branches import split_backbone
from .parts import Stripes
from .quantize import RELAXATIONS, HashHead, quantize
from .registry import register_model

__all__ = ["BIT_SPLITS", "EVAL_OUTPUTS", "SPLIT", "HashingConfig", "SSRHashing", "bit_split", "ssr_hashing"]

#: The first stage the teacher and student own ("after the second layer of the backbone", Sec. 3).
SPLIT = "layer3"
#: total ID bits -> (bits per stripe, bits of the global vector), 6 stripes (Sec. 7.1.3); 256 is a choice.
BIT_SPLITS: dict[int, tuple[int, int]] = {2048: (256, 512), 512: (64, 128), 256: (32, 64), 128: (16, 32)}
EVAL_OUTPUTS = ("student", "teacher", "float", "attributes")


def bit_split(bits: int, stripes: int = 6) -> tuple[int, int]:
    """``(bits per stripe, global bits)`` of a code of ``bits`` ID bits over ``stripes`` stripes + 1 global vector.

    The paper's totals (:data:`BIT_SPLITS`) with 6 stripes; any other total or stripe count is split in the same
    1 : 2 ratio (the global vector twice a stripe's), which must divide it: ``bits = (stripes + 2) * s``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bit_split: bits must be an integer >= 1, got {bits!r}")
    if stripes == 6 and bits in BIT_SPLITS:
        return BIT_SPLITS[bits]
    if isinstance(stripes, bool) or not isinstance(stripes, int) or stripes < 1 or bits % (stripes + 2):
        raise ValueError(f"bit_split: {bits} bits cannot be split as {stripes} stripes of s bits + a global vector of "
                         f"2s bits (bits must be a multiple of stripes + 2 = {stripes + 2}); the paper's totals are "
                         f"{sorted(BIT_SPLITS)} with 6 stripes")
    s = bits // (stripes + 2)
    return s, 2 * s


@dataclass(frozen=True)
class HashingConfig:
    """One variant of the hashing network (a row of Tables 6-8).

    Attributes:
        label: the paper's name of the row.
        bits: ID bits of the code (2048, 512, 256, 128), split by :func:`bit_split`.
        relaxation: ``"ssr"`` (teacher + student) or a single-branch relaxation of Table 6
            (:data:`~reidlib.models.quantize.RELAXATIONS`).
        bn: a BatchNorm after each reduction (Table 6's BN column).
        aab: the AAB on the global path (Table 7).
        attributes: the number of binary attribute logits on the global vectors (30 on Market, 0 = none).
        stripes: horizontal stripes (6, "following PCB").
        reduction: AAB's ``r`` (8).
    """

    label: str = "baseline(SSR)+AAB"
    bits: int = 2048
    relaxation: str = "ssr"
    bn: bool = True
    aab: bool = True
    attributes: int = 30
    stripes: int = 6
    reduction: int = DEFAULT_REDUCTION

    def __post_init__(self) -> None:
        if self.relaxation not in RELAXATIONS or self.relaxation == "none":
            raise ValueError(f"HashingConfig.relaxation must be one of {sorted(set(RELAXATIONS) - {'none'})}, "
                             f"got {self.relaxation!r}")
        bit_split(self.bits, self.stripes)  # raises with the reason
        if isinstance(self.attributes, bool) or not isinstance(self.attributes, int) or self.attributes < 0:
            raise ValueError(f"HashingConfig.attributes must be an integer >= 0 (0: no attribute heads), "
                             f"got {self.attributes!r}")
        for name in ("bn", "aab"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"HashingConfig.{name} must be True or False, got {getattr(self, name)!r}")

    @property
    def distilled(self) -> bool:
        """Whether the network has a teacher (SSR)."""
        return self.relaxation == "ssr"

    @property
    def branch_prefixes(self) -> tuple[str, ...]:
        return ("t", "s") if self.distilled else ("s",)

    @property
    def vector_bits(self) -> dict[str, int]:
        """The bits of each vector of one branch, in code order: ``{"l1": 256, ..., "l6": 256, "g": 512}``."""
        local, global_ = bit_split(self.bits, self.stripes)
        return {**{f"l{j}": local for j in range(1, self.stripes + 1)}, "g": global_}

    @property
    def branch_names(self) -> tuple[str, ...]:
        """Every branch of the training output: ``t_l1`` ... ``t_g``, ``s_l1`` ... ``s_g``."""
        return tuple(f"{p}_{v}" for p in self.branch_prefixes for v in self.vector_bits)


class _Branch(nn.Module):
    """One branch's heads on its ``layer4`` map: AAB, the 7 hash heads, the ID classifiers, the attribute head."""

    def __init__(self, channels: int, num_classes: int, c: HashingConfig, relaxation: str) -> None:
        super().__init__()
        self.relaxation = relaxation
        self.stripes = Stripes(c.stripes, pool="avg")
        self.aab = AAB(channels, c.reduction) if c.aab else None
        self.heads = nn.ModuleDict({v: HashHead(channels, b, relaxation, bn=c.bn) for v, b in c.vector_bits.items()})
        self.classifiers = nn.ModuleDict({v: nn.Linear(b, num_classes) for v, b in c.vector_bits.items()})
        for fc in self.classifiers.values():
            nn.init.normal_(fc.weight, std=0.001)
            nn.init.zeros_(fc.bias)
        self.attribute_head = nn.Linear(c.vector_bits["g"], c.attributes) if c.attributes else None

    def vectors(self, maps: Tensor) -> dict[str, Tensor]:
        """The 7 reduced (relaxed) vectors ``{"l1": (B, bits_1), ..., "g": (B, bits_g)}``."""
        stripes = self.stripes(maps)  # (B, 6, C), from the un-refined map
        refined = self.aab(maps) if self.aab is not None else maps
        pooled = {**{f"l{j + 1}": stripes[:, j] for j in range(stripes.shape[1])},
                  "g": F.adaptive_avg_pool2d(refined, 1).flatten(1)}
        return {v: self.heads[v](pooled[v]) for v in self.heads}


class SSRHashing(nn.Module):
    """The hashing network and its variants (see the module docstring).

    Args:
        num_classes: training identities.
        config: a :class:`HashingConfig` (default: baseline(SSR)+AAB, 2048 bits, BN, 30 attributes).
        backbone, last_stride, pretrained, weights_path: passed to ``reidlib.models.build_backbone``.
        **overrides: fields of the config to change.
    """

    def __init__(self, num_classes: int, config: HashingConfig | None = None, *, backbone: str = "resnet50",
                 last_stride: int = 1, pretrained: bool = False, weights_path: str | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        known = [f.name for f in fields(HashingConfig)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown HashingConfig fields {unknown}; known: {known}")
        self.config: HashingConfig = replace(config or HashingConfig(), **overrides)
        c = self.config
        self.variant, self.num_classes = c.label, num_classes
        net = build_backbone(backbone, last_stride=last_stride, pretrained=pretrained, weights_path=weights_path)
        channels = net.out_channels
        names = {"t": "teacher", "s": "student"}
        self.trunk, stages = split_backbone(net, SPLIT, [names[p] for p in c.branch_prefixes])
        self.stages = nn.ModuleDict(stages)
        # the teacher is quantized by Eq. (1) itself: no activation
        self.branches = nn.ModuleDict({names[p]: _Branch(channels, num_classes, c, "ssr" if p == "t" else c.relaxation)
                                       for p in c.branch_prefixes})
        self.out_dim = c.bits
        self.eval_output = "student"

    @property
    def options(self) -> dict[str, Any]:
        """Every field of the resolved :class:`HashingConfig` (``build_model("ssr_hashing", N, **options)``)."""
        return asdict(self.config)

    @property
    def eval_output(self) -> str:
        """What eval mode returns: ``"student"``, ``"teacher"``, ``"float"`` or ``"attributes"``."""
        return self._eval_output

    @eval_output.setter
    def eval_output(self, value: str) -> None:
        if value not in EVAL_OUTPUTS:
            raise ValueError(f"SSRHashing.eval_output must be one of {list(EVAL_OUTPUTS)}, got {value!r}")
        if value == "teacher" and not self.config.distilled:
            raise ValueError(f"SSRHashing.eval_output='teacher': the {self.config.relaxation!r} network has no teacher "
                             "(only relaxation='ssr' has one)")
        if value == "attributes" and not self.config.attributes:
            raise ValueError("SSRHashing.eval_output='attributes': this network has no attribute heads (attributes=0)")
        self._eval_output = value

    def _vectors(self, images: Tensor, branches: tuple[str, ...] | None = None) -> dict[str, dict[str, Tensor]]:
        trunk = self.trunk(images)
        names = tuple(self.branches) if branches is None else branches
        return {name: self.branches[name].vectors(self.stages[name](trunk)) for name in names}

    def encode(self, images: Tensor, *, teacher: bool = True) -> dict[str, Tensor]:
        """Everything test time needs from one forward (call in eval mode): ``code`` the student's ±1 code
        ``(B, bits)``, ``float`` its real-valued vector, ``teacher_code`` the teacher's ±1 code (SSR only, and
        only with ``teacher``: the teacher's stages run only for it), ``attribute_logits`` ``(B, A)`` (with
        attribute heads)."""
        check_images(images, "SSRHashing", training=self.training, reference=self)
        wanted = ("student", "teacher") if teacher and self.config.distilled else ("student",)
        vectors = self._vectors(images, wanted)
        student = torch.cat(list(vectors["student"].values()), dim=1)
        out = {"float": student, "code": quantize(student, self.config.relaxation)}
        if "teacher" in vectors:
            out["teacher_code"] = quantize(torch.cat(list(vectors["teacher"].values()), dim=1), "ssr")
        if self.config.attributes:
            out["attribute_logits"] = self.branches["student"].attribute_head(vectors["student"]["g"])
        return out

    def forward(self, images: Tensor) -> Any:
        if not self.training:
            if self.eval_output == "teacher":
                check_images(images, "SSRHashing", training=False, reference=self)
                vectors = self._vectors(images, ("teacher",))["teacher"]
                return quantize(torch.cat(list(vectors.values()), dim=1), "ssr")
            # the retrieval code runs the trunk and the student only: test time has no teacher
            key = {"student": "code", "float": "float", "attributes": "attribute_logits"}[self.eval_output]
            return self.encode(images, teacher=False)[key]
        check_images(images, "SSRHashing", training=True, reference=self)
        vectors = self._vectors(images)
        out: dict[str, dict[str, Tensor]] = {}
        for name, branch in self.branches.items():
            p = name[0]
            for v, vec in vectors[name].items():
                entry = {"logits": branch.classifiers[v](vec), "feat": vec}
                if p == "s" and "teacher" in vectors:
                    entry.update(code=vec, teacher_code=vectors["teacher"][v])
                if v == "g" and branch.attribute_head is not None:
                    entry["attribute_logits"] = branch.attribute_head(vec)
                out[f"{p}_{v}"] = entry
        return {"branches": out}


@register_model("ssr_hashing")
def ssr_hashing(num_classes: int, *, backbone: str = "resnet50", last_stride: int = 1, pretrained: bool = False,
                weights_path: str | None = None, **config: Any) -> SSRHashing:
    """``build_model("ssr_hashing", N, backbone=..., **HashingConfig fields)``; none given: baseline(SSR)+AAB."""
    return SSRHashing(num_classes, None, backbone=backbone, last_stride=last_stride, pretrained=pretrained,
                      weights_path=weights_path, **config)
