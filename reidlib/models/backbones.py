"""ResNet backbones for re-identification (torchvision ResNet-18/34/50/101/152).

A backbone maps images ``(B, 3, H, W)`` to the last feature map ``(B, C, h, w)``: the
classifier head of the ImageNet network (average pool + ``fc``) is dropped. ``last_stride=1``
(Luo et al., "Bag of tricks", Sec. 4.5 "Last stride") removes the down-sampling of ``layer4``,
so a 256x128 image gives a 16x8 map instead of 8x4 at no extra parameters.

Weights (``pretrained`` / ``weights_path``):

* ``pretrained=True`` loads torchvision's ImageNet weights (``IMAGENET1K_V1``, the weights the
  re-ID literature used) through torchvision's weights API, which downloads once into
  ``$TORCH_HOME/hub/checkpoints/`` (default ``~/.cache/torch``) and reuses that file offline.
  A string picks another torchvision weights entry, e.g. ``pretrained="IMAGENET1K_V2"``.
* ``weights_path=`` loads a local state-dict file, in torchvision's ResNet key layout
  (``conv1.weight``, ..., ``fc.*`` ignored) or in this backbone's own (``stem.conv1.weight``, ...).
"""
from __future__ import annotations

import http.client
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from urllib.error import URLError

import torch
import torchvision
from torch import Tensor, nn

__all__ = ["RESNETS", "ResNetBackbone", "build_backbone", "load_backbone_weights", "set_last_stride"]

RESNETS: dict[str, str] = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights",
    "resnet152": "ResNet152_Weights",
}


def set_last_stride(layer4: nn.Sequential, last_stride: int) -> None:
    """Set the stride of ``layer4``'s first block (its 3x3 conv and its downsample conv).

    Works for torchvision's BasicBlock (stride in ``conv1``) and Bottleneck (stride in ``conv2``).
    """
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
    for module in layer4[0].modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (last_stride, last_stride)


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without its pooling and ``fc``: ``(B, 3, H, W) -> (B, C, H/s, W/s)``.

    Stages ``stem`` (conv1, bn1, relu, maxpool), ``layer1`` .. ``layer4`` are attributes, so that a
    model can hook any of them or copy ``layer3``/``layer4`` for a second branch. ``out_channels``
    is ``C`` (512 for ResNet-18/34, 2048 for ResNet-50/101/152); ``s`` is 16 with
    ``last_stride=1`` and 32 with ``last_stride=2``.
    """

    def __init__(self, resnet: torchvision.models.ResNet, name: str = "resnet", last_stride: int = 1) -> None:
        super().__init__()
        self.name = name
        self.last_stride = last_stride
        self.stem = nn.Sequential(
            OrderedDict(conv1=resnet.conv1, bn1=resnet.bn1, relu=resnet.relu, maxpool=resnet.maxpool)
        )
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        set_last_stride(self.layer4, last_stride)
        self.out_channels: int = resnet.fc.in_features

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"{self.name}: expected images of shape (B, 3, H, W), got shape {tuple(x.shape)}")
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def extra_repr(self) -> str:
        return f"name={self.name}, last_stride={self.last_stride}, out_channels={self.out_channels}"


def _to_backbone_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """torchvision ResNet keys -> backbone keys (``conv1.*``/``bn1.*`` -> ``stem.*``, ``fc.*`` dropped)."""
    out = {}
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        if key.startswith(("conv1.", "bn1.")):
            key = "stem." + key
        out[key] = value
    return out


def load_backbone_weights(backbone: ResNetBackbone, state: Mapping[str, Tensor], source: str) -> None:
    """Load a state dict (torchvision or backbone layout) strictly; any mismatch names ``source``."""
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise RuntimeError(f"{source}: expected a state dict (a mapping of parameter names to tensors), "
                           f"got {type(state).__name__}")
    state = _to_backbone_keys(state)
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                   for k in own.keys() & state.keys() if state[k].shape != own[k].shape]
    if missing or unexpected or wrong_shape:
        def few(items: list[str]) -> str:
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")

        details = [f"{label} {len(items)}: {few(items)}" for label, items in
                   (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong_shape)) if items]
        raise RuntimeError(f"{source}: the weights do not fit the {backbone.name} backbone ("
                           + "; ".join(details) + "). Is it a state dict of the same ResNet depth?")
    backbone.load_state_dict(state, strict=True)


def _torchvision_weights(name: str, pretrained: bool | str) -> torchvision.models.WeightsEnum:
    enum = getattr(torchvision.models, RESNETS[name])
    key = "IMAGENET1K_V1" if pretrained is True else str(pretrained)
    try:
        return enum[key]
    except KeyError:
        raise ValueError(f"pretrained={pretrained!r}: no such torchvision weights for {name}; "
                         f"choose True or one of {[w.name for w in enum]}") from None


def _download_state(name: str, weights: torchvision.models.WeightsEnum) -> Mapping[str, Tensor]:
    filename = os.path.basename(weights.url)
    cache = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        return weights.get_state_dict(progress=True)
    except Exception as err:
        if cache.is_file() and not isinstance(err, (URLError, http.client.HTTPException)):
            raise RuntimeError(f"{name}: the cached weights file {cache} cannot be loaded ({err}); "
                               f"delete it to download again, or replace it with {weights.url}") from err
        if not isinstance(err, (URLError, OSError, http.client.HTTPException)):
            raise
        raise RuntimeError(
            f"{name}: could not get the ImageNet weights {weights} ({err}). Without network access, "
            f"provide them one of two ways: (1) pass weights_path='/path/to/{filename}' (a state dict "
            f"saved by torch.save, e.g. downloaded from {weights.url} on another machine), or "
            f"(2) place that file at {cache} (torchvision's cache; set TORCH_HOME to move it), then "
            f"pretrained=True finds it offline. Or use pretrained=False for random initialisation."
        ) from err


def build_backbone(
    name: str = "resnet50",
    *,
    last_stride: int = 1,
    pretrained: bool | str = False,
    weights_path: str | os.PathLike | None = None,
) -> ResNetBackbone:
    """A ResNet backbone ``(B, 3, H, W) -> (B, out_channels, h, w)``.

    Args:
        name: one of ``resnet18, resnet34, resnet50, resnet101, resnet152``.
        last_stride: stride of ``layer4`` (1 as in "Bag of tricks", 2 as in ImageNet ResNets).
        pretrained: ``True`` loads torchvision's ImageNet weights (``IMAGENET1K_V1``), a string
            another torchvision weights name; downloads once into the torch hub cache.
        weights_path: a local state-dict file (torchvision or backbone key layout); takes
            precedence over ``pretrained``.
    """
    if name not in RESNETS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(RESNETS)}")
    backbone = ResNetBackbone(getattr(torchvision.models, name)(weights=None), name=name, last_stride=last_stride)
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"weights_path={str(path)!r}: no such file (expected a state dict of {name})")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling errors have many types
            raise RuntimeError(f"{path}: cannot read it as a state dict with torch.load(weights_only=True): {err}") from err
        load_backbone_weights(backbone, state, str(path))
    elif pretrained:
        weights = _torchvision_weights(name, pretrained)
        load_backbone_weights(backbone, _download_state(name, weights), f"torchvision {weights}")
    return backbone
