"""ES-Net (Shen et al., IEEE TIP 2021): All Information Branch + Erasing Salient Branch, and its ablations.

Architecture (Sec. III-A, Fig. 2): a ResNet-50 (any ``build_backbone`` name) with last stride 1.
The layers before ``res_conv4`` (``stem``, ``layer1``, ``layer2``) form a shared trunk; the All
Information Branch (AIB, whole images, GAP) and the Erasing Salient Branch (ESB, BESM-erased
images, P-pooling) each own a copy of ``layer3`` (res_conv4) and ``layer4`` (res_conv5), a
pooling and a BNNeck. In training, BESM locates the saliency of the current batch with CG-RAM
at the ESB's ``layer4`` (on the whole images), erases the top-``R`` pixels of each image with
probability ``P``, and the ESB is trained on the erased batch. Loss, Eq. (1):
``L = L_ESB^id + L_ESB^triplet + L_AIB^id + L_AIB^triplet`` (:class:`ESNetLoss`).

Every ablation of Tables II-VI is one :class:`ESNetConfig` of this one model: which branches
exist, their poolings, how the second branch erases (BESM, Grad-CAM erasing, random erasing,
batch feature dropping, or not at all), ``R``, ``P``, the saliency layer and whether the triplet
loss is used. The named rows of the paper's tables (``VARIANTS``), its training presets and its
recipe live in :mod:`reidlib.papers.esnet`; this module holds only the network's composition,
registered as ``build_model("esnet", num_classes, **ESNetConfig fields)``.

The trunk/branch split is :func:`reidlib.models.branches.split_backbone` at ``layer3``; the
training forward needs the batch's ids (BESM pairs each image with its easiest positive), so
the model declares ``needs_targets`` and the trainer calls ``model(images, targets=pids)``.

Test descriptor (the paper does not state it): the BN features of both branches, each
L2-normalised, concatenated. Then the squared Euclidean distance of two descriptors is
``2 (2 - S_AIB - S_ESB)``: a ranking by the sum of the two branches' cosine confidence scores
(Eq. (2)), each branch one equal vote whatever its feature scale (P-pooled features are larger
than GAP ones). Both branches see whole images at test time; the ESB contributes the
complementary cues it was forced to learn, the AIB the salient ones (Sec. IV: "the two
branches reinforce each other"). ``descriptor='aib'``/``'esb'`` give one branch alone.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.losses.criterion import ReIDCriterion
from reidlib.nn import check_images, model_mode
from reidlib.saliency import besm, cg_ram_batch, draw_selection, erase_top, grad_cam

from .backbones import build_backbone
from .branches import Stages, split_backbone
from .heads import BNNeck
from .p_pooling import PPooling
from .pooling import build_pooling
from .registry import register_model

__all__ = ["ESNet", "ESNetConfig", "ESNetLoss", "batch_drop_mask", "esnet"]

SPLIT = "layer3"  # the branches own res_conv4 and res_conv5 (Sec. III-A)

ERASINGS = ("besm", "gradcam", "random", "bdb", "none")
POOLINGS = ("gap", "gmp", "gem", "ppool")
SALIENCY_LAYERS = ("stem", "layer1", "layer2", "layer3", "layer4")
DESCRIPTORS = ("concat", "aib", "esb")


@dataclass(frozen=True)
class ESNetConfig:
    """One variant of ES-Net (a row of Tables II-VI).

    Attributes:
        label: the paper's name of the row.
        aib: the All Information Branch (whole images) is present.
        esb: the second branch (the one that erases) is present.
        aib_pooling, esb_pooling: ``gap``, ``gmp``, ``gem`` or ``ppool`` (P-pooling, Eq. (6)).
        erasing: what the second branch does to its input: ``besm`` (Algorithm 1 with CG-RAM),
            ``gradcam`` (Algorithm 1 with Grad-CAM), ``random`` (Random Erasing [5]: applied by the data
            pipeline before normalisation, see :attr:`data_random_erasing`),
            ``bdb`` (Batch DropBlock [4]: one block dropped from the feature maps of the whole batch),
            ``none``.
        ratio, prob: erasing ratio ``R`` and probability ``P`` of Algorithm 1.
        triplet: add the batch-hard triplet loss (margin 0.3) to each branch's ID loss.
        saliency_layer: where BESM locates saliency: ``layer4`` (the ESB's res_conv5, the paper's
            choice), ``layer3`` (the ESB's res_conv4) or a shared trunk stage.
        descriptor: test descriptor, ``concat`` (both branches, see the module docstring), ``aib``, ``esb``.
        bdb_height, bdb_width: the dropped block as fractions of the feature map (BDB's 0.3 x 1.0).
        fill: the value erased pixels get in the normalised batch (0 = the mean colour).
        ppool_l: initial P-pooling exponent.
        table: where the row comes from in the paper.
    """

    label: str = "ES-Net"
    aib: bool = True
    esb: bool = True
    aib_pooling: str = "gap"
    esb_pooling: str = "ppool"
    erasing: str = "besm"
    ratio: float = 0.2
    prob: float = 0.5
    triplet: bool = True
    saliency_layer: str = "layer4"
    descriptor: str = "concat"
    bdb_height: float = 0.3
    bdb_width: float = 1.0
    fill: float = 0.0
    ppool_l: float = 3.0
    table: str = ""

    def __post_init__(self) -> None:
        checks = [
            ("aib_pooling", self.aib_pooling, POOLINGS),
            ("esb_pooling", self.esb_pooling, POOLINGS),
            ("erasing", self.erasing, ERASINGS),
            ("saliency_layer", self.saliency_layer, SALIENCY_LAYERS),
            ("descriptor", self.descriptor, DESCRIPTORS),
        ]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"ESNetConfig.{name}={value!r}; expected one of {list(allowed)}")
        if not (self.aib or self.esb):
            raise ValueError("ESNetConfig: at least one of aib, esb must be True")
        if not self.esb and self.erasing != "none":
            raise ValueError(f"ESNetConfig: erasing={self.erasing!r} needs the second branch (esb=True)")
        if not 0.0 <= self.ratio <= 1.0 or not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"ESNetConfig: R and P must be in [0, 1], got ratio={self.ratio}, prob={self.prob}")
        if self.descriptor == "aib" and not self.aib or self.descriptor == "esb" and not self.esb:
            raise ValueError(f"ESNetConfig: descriptor={self.descriptor!r} but that branch is absent")

    @property
    def data_random_erasing(self) -> float:
        """Random Erasing probability for ``reidlib.data.transforms.build_transforms``: 0.5 (Zhong et al.'s
        default) for the ``random`` variant, else 0 (ES-Net's augmentation is flip + normalisation only)."""
        return 0.5 if self.erasing == "random" else 0.0

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(name for name, on in (("aib", self.aib), ("esb", self.esb)) if on)

    @property
    def erases_by_saliency(self) -> bool:
        return self.erasing in ("besm", "gradcam")


def batch_drop_mask(h: int, w: int, height_ratio: float, width_ratio: float, *,
                    generator: torch.Generator | None = None, device: Any = None) -> Tensor:
    """Batch DropBlock [4]: a ``(h, w)`` 0/1 mask with one block of ``round(hr h) x round(wr w)`` zeros at a
    random position, the same for every sample of the batch."""
    bh, bw = max(1, round(height_ratio * h)), max(1, round(width_ratio * w))
    top = int(torch.randint(0, h - bh + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - bw + 1, (1,), generator=generator))
    mask = torch.ones(h, w, device=device)
    mask[top:top + bh, left:left + bw] = 0
    return mask


def _pooling(name: str, l: float) -> nn.Module:
    return PPooling(l=l) if name == "ppool" else build_pooling(name)


class Branch(nn.Module):
    """One branch: its own ``layer3`` (res_conv4) and ``layer4`` (res_conv5), pooling, BNNeck.

    ``(B, C2, h, w)`` trunk maps -> in train mode ``{"logits", "feat", "feat_bn"}``, in eval ``feat_bn (B, D)``.
    """

    def __init__(self, stages: Stages, pooling: nn.Module, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.stage_names = stages.stage_names
        for name in self.stage_names:  # kept as attributes: keys read "esb.layer4...", hooks name them
            setattr(self, name, getattr(stages, name))
        self.pool = pooling
        self.neck = BNNeck(in_dim, num_classes)

    def feature_maps(self, x: Tensor) -> Tensor:
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def head(self, maps: Tensor) -> Any:
        out = self.neck(self.pool(maps))
        if self.training:
            feat, feat_bn, logits = out
            return {"logits": logits, "feat": feat, "feat_bn": feat_bn}
        return out

    def forward(self, x: Tensor, drop_mask: Tensor | None = None) -> Any:
        maps = self.feature_maps(x)
        if drop_mask is not None:
            maps = maps * drop_mask
        return self.head(maps)


class ESNet(nn.Module):
    """ES-Net and its ablations, one model (see the module docstring).

    Args:
        num_classes: training identities.
        config: an :class:`ESNetConfig` (default: ES-Net itself; the paper's named rows are
            ``reidlib.papers.esnet.VARIANTS``).
        backbone, last_stride, pretrained, weights_path: passed to ``reidlib.models.build_backbone``.
        **overrides: fields of the config to change (``ratio``, ``prob``, ``saliency_layer``,
            ``esb_pooling``, ``descriptor``, ...).

    ``forward(images (B, 3, H, W), targets (B,) | None)``: in train mode
    ``{"branches": {"aib": {"logits", "feat", "feat_bn"}, "esb": {...}}, "erasing": BESMResult | None}``;
    erasing variants need ``targets`` (the trainer passes them: ``needs_targets``). In eval mode the
    test descriptor ``(B, D)``. ``options``: every field of the resolved config (what a run record stores).
    """

    def __init__(self, num_classes: int, config: ESNetConfig | None = None, *, backbone: str = "resnet50",
                 last_stride: int = 1, pretrained: bool = False, weights_path: str | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        if isinstance(config, str):
            raise TypeError(f"ESNet(config={config!r}): pass an ESNetConfig; the named rows of the paper are "
                            "reidlib.papers.esnet.VARIANTS (or use reidlib.papers.esnet.build(variant, ...))")
        known = [f.name for f in fields(ESNetConfig)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown ESNetConfig fields {unknown}; known: {known}")
        self.config: ESNetConfig = replace(config or ESNetConfig(), **overrides)
        self.variant = self.config.label
        self.num_classes = num_classes
        net = build_backbone(backbone, last_stride=last_stride, pretrained=pretrained, weights_path=weights_path)
        dim = net.out_channels
        c = self.config
        self.out_dim = dim * (2 if c.descriptor == "concat" and len(c.branches) == 2 else 1)
        self.trunk, stages = split_backbone(net, SPLIT, c.branches)
        if c.aib:
            self.aib = Branch(stages["aib"], _pooling(c.aib_pooling, c.ppool_l), dim, num_classes)
        if c.esb:
            self.esb = Branch(stages["esb"], _pooling(c.esb_pooling, c.ppool_l), dim, num_classes)

    @property
    def needs_targets(self) -> bool:
        """The training forward needs the batch's ids (saliency-guided erasing)."""
        return self.config.erases_by_saliency

    @property
    def options(self) -> dict[str, Any]:
        """Every field of the resolved :class:`ESNetConfig` (``build_model("esnet", N, **options)`` rebuilds it)."""
        return asdict(self.config)

    # -- saliency ---------------------------------------------------------------------------------
    def saliency_layer(self) -> nn.Module:
        """The module whose output BESM explains (the ESB's ``layer4`` by default)."""
        name = self.config.saliency_layer
        return getattr(self.esb, name) if name in ("layer3", "layer4") else getattr(self.trunk, name)

    def saliency(self, images: Tensor, pids: Tensor, trunk_maps: Tensor | None = None, *,
                 method: str | None = None) -> Tensor:
        """Saliency maps ``(B, h, w)`` of the ESB on whole ``images`` at the configured layer.

        ``method``: ``"cg_ram"`` (Eq. (5), the training-time CG-RAM; default for BESM) or ``"grad_cam"``.
        ``trunk_maps`` (the trunk's output on ``images``, if already computed) saves the trunk pass.
        The model keeps its mode; BatchNorm statistics are left as they were.
        """
        method = method or ("grad_cam" if self.config.erasing == "gradcam" else "cg_ram")
        if method not in ("cg_ram", "grad_cam"):
            raise ValueError(f"method must be 'cg_ram' or 'grad_cam', got {method!r}")
        # the saliency's extra backward runs in float32 even under AMP: fp16 gradients of the
        # confidence score underflow, and the top-R selection would rank noise
        with torch.autocast(images.device.type, enabled=False):
            return self._saliency(images.float(), pids, None if trunk_maps is None else trunk_maps.float(), method)

    def _saliency(self, images: Tensor, pids: Tensor, trunk_maps: Tensor | None, method: str) -> Tensor:
        layer = self.saliency_layer()
        if self.config.saliency_layer in ("layer3", "layer4"):
            if trunk_maps is None:
                with torch.no_grad(), model_mode(self, "keep"):
                    trunk_maps = self.trunk(images)
            fn, inputs = self.esb, trunk_maps.detach()
        else:
            fn, inputs = (lambda x: self.esb(self.trunk(x))), images
        with model_mode(self, "keep"):
            if method == "cg_ram":
                return cg_ram_batch(fn, inputs, pids, layer).maps
            return grad_cam(fn, inputs, pids, layer).maps

    def erased_batch_loss(self, images: Tensor, pids: Tensor, criterion: Any, *, ratio: float | None = None
                          ) -> dict[str, float]:
        """The motivation experiment of the paper's Fig. 3: the loss of the current model on the batch with its
        salient parts erased (BESM with ``P = 1``), measured without training on it.

        Saliency: CG-RAM (Eq. (5)) of the first branch at its ``layer4`` (the AIB's for Base). Runs in the
        model's current mode without touching parameters, gradients or BatchNorm statistics; returns the
        loss terms as floats (``"erased/<term>"``).
        """
        branch_name = self.config.branches[0]
        branch = getattr(self, branch_name)
        with model_mode(self, "keep"):
            with torch.no_grad():
                trunk_maps = self.trunk(images)
            maps = cg_ram_batch(branch, trunk_maps, pids, branch.layer4).maps
            erased, _ = erase_top(images, maps, self.config.ratio if ratio is None else ratio, fill=self.config.fill)
            with torch.no_grad():
                out = branch(self.trunk(erased))
                terms = criterion({"branches": {branch_name: out}}, pids)
        return {f"erased/{k}": float(v) for k, v in terms.items()}

    def training_stats(self) -> dict[str, float]:
        """Scalars worth logging each epoch: the learned P-pooling exponents."""
        return {f"{name}/ppool_l": float(branch.pool.l.detach())
                for name in self.config.branches
                if isinstance((branch := getattr(self, name)).pool, PPooling)}

    # -- forward ----------------------------------------------------------------------------------
    def descriptor(self, images: Tensor) -> Tensor:
        """The test descriptor ``(B, out_dim)`` (see the module docstring)."""
        t = self.trunk(images)
        c = self.config
        if c.descriptor == "concat" and len(c.branches) == 2:
            return torch.cat([F.normalize(self.aib(t), dim=1), F.normalize(self.esb(t), dim=1)], dim=1)
        return getattr(self, c.descriptor)(t)

    def erase(self, images: Tensor, pids: Tensor | None, trunk_maps: Tensor | None = None) -> Any:
        """The second branch's input for this batch: ``(images or erased images, BESMResult | None)``."""
        c = self.config
        if c.erases_by_saliency:
            if pids is None:
                raise ValueError(f"variant {self.variant!r} erases by saliency and needs the batch's ids: "
                                 f"call model(images, targets=pids) (the Trainer does, see needs_targets)")
            selected = draw_selection(images.shape[0], c.prob, device=images.device)
            if not bool(selected.any()):
                return images, None
            maps = self.saliency(images, pids, trunk_maps)
            res = besm(images, maps, c.ratio, c.prob, selected=selected, fill=c.fill)
            return res.images, res
        return images, None  # "random": done by the data pipeline, see ESNetConfig.data_random_erasing

    def forward(self, images: Tensor, targets: Tensor | None = None) -> Any:
        check_images(images, "ESNet", training=self.training, reference=self)
        if not self.training:
            return self.descriptor(images)
        pids = targets
        c = self.config
        branches: dict[str, dict[str, Tensor]] = {}
        trunk_maps = self.trunk(images) if c.aib or c.erasing in ("bdb", "none") else None
        if c.aib:
            branches["aib"] = self.aib(trunk_maps)
        erasing = None
        if c.esb:
            if c.erasing == "bdb":
                maps = self.esb.feature_maps(trunk_maps)
                mask = batch_drop_mask(*maps.shape[-2:], c.bdb_height, c.bdb_width, device=maps.device)
                branches["esb"] = self.esb.head(maps * mask)
            else:
                x_esb, erasing = self.erase(images, pids, trunk_maps)
                if x_esb is images and trunk_maps is not None:
                    branches["esb"] = self.esb(trunk_maps)
                else:
                    branches["esb"] = self.esb(self.trunk(x_esb))
        return {"branches": branches, "erasing": erasing}


class ESNetLoss(ReIDCriterion):
    """Deprecated (one release): ``reidlib.losses.ReIDCriterion`` with ES-Net's options, Eq. (1):
    the sum over branches of ``L^id + L^triplet``, no label smoothing, triplet margin 0.3 on ``feat``.
    Use ``build_criterion("reid", N, label_smoothing=0.0, triplet_weight=1.0 or 0.0)``."""

    def __init__(self, num_classes: int, *, triplet: bool = True, margin: float = 0.3, epsilon: float = 0.0) -> None:
        warnings.warn("ESNetLoss is deprecated; use reidlib.losses.build_criterion('reid', ...)", DeprecationWarning,
                      stacklevel=2)
        super().__init__(num_classes, label_smoothing=epsilon, margin=margin, triplet_weight=1.0 if triplet else 0.0)


@register_model("esnet", "es-net")
def esnet(num_classes: int, *, backbone: str = "resnet50", last_stride: int = 1, pretrained: bool = False,
          weights_path: str | None = None, **config: Any) -> ESNet:
    """``build_model("esnet", N, backbone=..., **ESNetConfig fields)``; no field given: ES-Net itself."""
    return ESNet(num_classes, None, backbone=backbone, last_stride=last_stride, pretrained=pretrained,
                 weights_path=weights_path, **config)
