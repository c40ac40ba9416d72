"""A trunk shared up to a stage, and branches that own copies of the later stages.

Three of the house's networks split one backbone into a shared trunk and several branches:
ES-Net before ``layer3`` (AIB and ESB), the hashing network after ``layer2`` (teacher and
student), HENet before ``layer4`` (G1, P4, R16). A backbone here is any module with the five
stages ``stem, layer1, layer2, layer3, layer4`` as attributes (strides 4, 4, 8, 16, 32 with
``last_stride=2``) -- the ResNets of :mod:`reidlib.models.backbones` and anything registered
with the same stages.

    trunk, stages = split_backbone(backbone, "layer3", ["aib", "esb"])
    # trunk: stem, layer1, layer2 (shared); stages["aib"], stages["esb"]: layer3, layer4 each
    x = stages["esb"](trunk(images))              # (B, C4, h, w)

The first branch keeps the backbone's own modules (its pretrained weights), the others get deep
copies, so every branch starts from the same weights and then trains its own.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["STAGES", "Stages", "split_backbone", "stage_channels"]

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


def _check_split(split: str) -> int:
    if split not in STAGES[1:]:
        raise ValueError(f"split must be the first stage a branch owns, one of {list(STAGES[1:])}, got {split!r}")
    return STAGES.index(split)


class Stages(nn.Module):
    """Consecutive backbone stages run in order, each kept as an attribute under its own name
    (``self.layer3``, ``self.layer4``), so that hooks and saliency can name them and a checkpoint's
    keys read ``<branch>.layer3.0.conv1.weight``. ``(B, C_in, h, w) -> (B, C_out, h', w')``."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        super().__init__()
        self.stage_names = tuple(modules)
        for name, module in modules.items():
            setattr(self, name, module)

    def forward(self, x: Tensor) -> Tensor:
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x


def stage_channels(backbone: nn.Module) -> dict[str, int]:
    """The output channels of each stage of ``backbone`` (``backbone.stage_channels`` where it has them,
    else the ``num_features`` of the stage's last BatchNorm)."""
    known = getattr(backbone, "stage_channels", None)
    if known:
        return dict(known)
    out = {}
    for name in STAGES:
        bns = [m for m in getattr(backbone, name).modules() if isinstance(m, nn.BatchNorm2d)]
        if not bns:
            raise ValueError(f"cannot tell the channels of stage {name!r} of {type(backbone).__name__}: "
                             "give the backbone a stage_channels dict")
        out[name] = bns[-1].num_features
    return out


def split_backbone(backbone: nn.Module, split: str, branches: Sequence[str]) -> tuple[Stages, dict[str, Stages]]:
    """``(trunk, {branch: its stages})``: the trunk holds the stages before ``split``, each branch
    the stages from ``split`` on (the first branch the backbone's own modules, the others deep
    copies).

    Args:
        backbone: a module with attributes ``stem, layer1, ..., layer4``.
        split: the first stage the branches own (``"layer1"`` ... ``"layer4"``).
        branches: the branch names, at least one, all distinct.
    """
    i = _check_split(split)
    missing = [s for s in STAGES if not isinstance(getattr(backbone, s, None), nn.Module)]
    if missing:
        raise ValueError(f"{type(backbone).__name__} has no stage(s) {missing}: a backbone for split_backbone needs "
                         f"the attributes {list(STAGES)}")
    names = list(branches)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"branches must be distinct names, at least one, got {names}")
    trunk = Stages({s: getattr(backbone, s) for s in STAGES[:i]})
    later = {s: getattr(backbone, s) for s in STAGES[i:]}
    own = {name: Stages(later if k == 0 else copy.deepcopy(later)) for k, name in enumerate(names)}
    return trunk, own
