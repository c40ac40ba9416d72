"""ES-Net (Shen et al., IEEE TIP 2021): All Information Branch + Erasing Salient Branch, and its ablations.

Architecture (Sec. III-A, Fig. 2): a ResNet-50 (any ``build_backbone`` name) with last stride 1.
The layers before ``res_conv4`` (``stem``, ``layer1``, ``layer2``) form a shared trunk; the All
Information Branch (AIB, whole images, GAP) and the Erasing Salient Branch (ESB, BESM-erased
images, P-pooling) each own a copy of ``layer3`` (res_conv4) and ``layer4`` (res_conv5), a
pooling and a BNNeck. In training, BESM locates the saliency of the current batch with CG-RAM
at the ESB's ``layer4`` (on the whole images), erases the top-``R`` pixels of each image with
probability ``P``, and the ESB is trained on the erased batch. Loss, Eq. (1):
``L = L_ESB^id + L_ESB^triplet + L_AIB^id + L_AIB^triplet`` (:class:`ESNetLoss`).

Every ablation of Tables II-VI is a named variant of this one model (:data:`VARIANTS`); a
variant is an :class:`ESNetConfig`: which branches exist, their poolings, how the second branch
erases (BESM, Grad-CAM erasing, random erasing, batch feature dropping, or not at all), ``R``,
``P``, the saliency layer and whether the triplet loss is used.

Test descriptor (the paper does not state it): the BN features of both branches, each
L2-normalised, concatenated. Then the squared Euclidean distance of two descriptors is
``2 (2 - S_AIB - S_ESB)``: a ranking by the sum of the two branches' cosine confidence scores
(Eq. (2)), each branch one equal vote whatever its feature scale (P-pooled features are larger
than GAP ones). Both branches see whole images at test time; the ESB contributes the
complementary cues it was forced to learn, the AIB the salient ones (Sec. IV: "the two
branches reinforce each other"). ``descriptor='aib'``/``'esb'`` give one branch alone.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.saliency import besm, cg_ram_batch, draw_selection, erase_top, grad_cam, model_mode

from .p_pooling import PPooling

__all__ = [
    "ESNet",
    "ESNetConfig",
    "ESNetLoss",
    "VARIANTS",
    "PRESETS",
    "TrainingPreset",
    "batch_drop_mask",
    "build_esnet",
    "variant_table",
]

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

    label: str
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


def _single(label: str, pooling: str, erasing: str, triplet: bool, table: str, **kw: Any) -> ESNetConfig:
    """A one-branch network (the paper's "Base + ..."): the branch that erases, alone."""
    return ESNetConfig(label, aib=False, esb=True, esb_pooling=pooling, erasing=erasing, triplet=triplet,
                       descriptor="esb", table=table, **kw)


# R = 10 %, P = 0.3 for the one-branch rows (Tables II-V: the ESB row of Table III equals
# ESB(R=10%, P=0.3) of Table II, and Sec. IV-A-2 states these values); R = 20 %, P = 0.5 for
# ES-Net (Table II's best AIB+ESB row is the ES-Net of Table I).
_R1, _P1 = 0.1, 0.3
VARIANTS: dict[str, ESNetConfig] = {
    "base": ESNetConfig("Base", esb=False, erasing="none", triplet=False, descriptor="aib", table="I-V"),
    "aib": ESNetConfig("AIB", esb=False, erasing="none", descriptor="aib", table="II"),
    "esb": _single("ESB(R=10%, P=0.3)", "ppool", "besm", True, "II, III", ratio=_R1, prob=_P1),
    "esb-r20-p50": _single("ESB(R=20%, P=0.5)", "ppool", "besm", True, "II", ratio=0.2, prob=0.5),
    "aib+esb-r10-p30": ESNetConfig("AIB+ESB(R=10%, P=0.3)", ratio=_R1, prob=_P1, table="II"),
    "esnet": ESNetConfig("ES-Net = AIB+ESB(R=20%, P=0.5)", ratio=0.2, prob=0.5, table="I, II"),
    "base+besm": _single("Base+BESM (= Base+BESM+GAP)", "gap", "besm", False, "III, IV, V", ratio=_R1, prob=_P1),
    "base+besm+gmp": _single("Base+BESM+GMP", "gmp", "besm", False, "IV", ratio=_R1, prob=_P1),
    "base+besm+ppool": _single("Base+BESM+P-pooling", "ppool", "besm", False, "III, IV", ratio=_R1, prob=_P1),
    "base+besm+ppool+triplet": _single("Base+BESM+P-pooling+Triplet Loss (ESB)", "ppool", "besm", True, "III",
                                       ratio=_R1, prob=_P1),
    "base+random-erasing": _single("Base+Random Erasing", "gap", "random", False, "V", ratio=_R1, prob=0.5),
    "base+gradcam-erasing": _single("Base+Grad-CAM Erasing", "gap", "gradcam", False, "V", ratio=_R1, prob=_P1),
    "base+bdb": ESNetConfig("Base+Feature Dropping Branch", esb_pooling="gmp", erasing="bdb", triplet=False,
                            table="V"),
    "esnet-ppool-both": ESNetConfig("ES-Net (P-pooling in AIB and ESB)", aib_pooling="ppool", ratio=0.2, prob=0.5,
                                    table="VI"),
}


def variant_table() -> "Any":
    """The variants as a ``pandas.DataFrame`` (one row per name), for the book."""
    import pandas as pd

    return pd.DataFrame([{"variant": k, **asdict(v)} for k, v in VARIANTS.items()]).set_index("variant")


@dataclass(frozen=True)
class TrainingPreset:
    """The paper's training schedule (Sec. IV-A-2 person, IV-B-1 vehicle)."""

    height: int
    width: int
    epochs: int
    milestones: tuple[int, ...]
    p: int = 16
    k: int = 4
    optimizer: str = "adam"
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    warmup_start_lr: float = 0.0
    gamma: float = 0.1
    margin: float = 0.3
    ratio: float = 0.2
    prob: float = 0.5
    saliency_layer: str = "layer4"
    flip_train: bool = True
    flip_test: bool = True
    notes: str = ""

    def schedule_options(self) -> dict[str, Any]:
        """Options of ``reidlib.engine.schedules.WarmupMultiStep`` (``build_schedule('warmup_multistep', lr, **...)``)."""
        return {"milestones": self.milestones, "gamma": self.gamma, "warmup_epochs": self.warmup_epochs,
                "warmup_start_lr": self.warmup_start_lr, "warmup_from_zero_step": True}


PRESETS: dict[str, TrainingPreset] = {
    "person": TrainingPreset(384, 128, epochs=120, milestones=(40, 70),
                             notes="Adam, wd 5e-4, warm-up 0 -> 3.5e-4 over 10 epochs, x0.1 at 40 and 70"),
    "vehicle": TrainingPreset(256, 256, epochs=60, milestones=(20, 40),
                              notes="as person, 256x256, 60 epochs, x0.1 at 20 and 40"),
}


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
    if name == "ppool":
        return PPooling(l=l)
    from reidlib import models

    return {"gap": models.GAP, "gmp": models.GMP, "gem": models.GeM}[name]()


class Trunk(nn.Module):
    """The layers shared by both branches: ``stem``, ``layer1``, ``layer2`` (everything before res_conv4)."""

    def __init__(self, stem: nn.Module, layer1: nn.Module, layer2: nn.Module) -> None:
        super().__init__()
        self.stem, self.layer1, self.layer2 = stem, layer1, layer2

    def forward(self, x: Tensor) -> Tensor:
        return self.layer2(self.layer1(self.stem(x)))


class Branch(nn.Module):
    """``layer3`` (res_conv4), ``layer4`` (res_conv5), pooling, BNNeck.

    ``(B, C2, h, w)`` trunk maps -> in train mode ``{"logits", "feat", "feat_bn"}``, in eval ``feat_bn (B, D)``.
    """

    def __init__(self, layer3: nn.Module, layer4: nn.Module, pooling: nn.Module, in_dim: int, num_classes: int) -> None:
        super().__init__()
        from reidlib.models import BNNeck

        self.layer3, self.layer4, self.pool = layer3, layer4, pooling
        self.neck = BNNeck(in_dim, num_classes)

    def feature_maps(self, x: Tensor) -> Tensor:
        return self.layer4(self.layer3(x))

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
        variant: a key of :data:`VARIANTS` or an :class:`ESNetConfig`.
        backbone, last_stride, pretrained, weights_path: passed to ``reidlib.models.build_backbone``.
        **overrides: fields of the variant's config to change (``ratio``, ``prob``, ``saliency_layer``,
            ``esb_pooling``, ``descriptor``, ...).

    ``forward(images (B, 3, H, W), pids (B,) | None)``: in train mode a dict with each branch's
    ``{"logits", "feat", "feat_bn"}`` under ``"branches"``, the first branch's at the top level, and
    ``"erasing"`` (the :class:`~reidlib.saliency.BESMResult`, or None); erasing variants need ``pids``
    (or :meth:`set_targets` called before). In eval mode the test descriptor ``(B, D)``.
    """

    def __init__(self, num_classes: int, variant: str | ESNetConfig = "esnet", *, backbone: str = "resnet50",
                 last_stride: int = 1, pretrained: bool = False, weights_path: str | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        from reidlib.models import build_backbone

        if isinstance(variant, str):
            if variant not in VARIANTS:
                raise ValueError(f"unknown ES-Net variant {variant!r}; expected one of {list(VARIANTS)}")
            config = VARIANTS[variant]
        else:
            config = variant
        unknown = set(overrides) - set(ESNetConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown ESNetConfig fields {sorted(unknown)}; known: {list(ESNetConfig.__dataclass_fields__)}")
        self.config: ESNetConfig = replace(config, **overrides)
        self.variant = variant if isinstance(variant, str) else config.label
        self.num_classes = num_classes
        net = build_backbone(backbone, last_stride=last_stride, pretrained=pretrained, weights_path=weights_path)
        dim = net.out_channels
        self.out_dim = dim * (2 if self.config.descriptor == "concat" and len(self.config.branches) == 2 else 1)
        self.trunk = Trunk(net.stem, net.layer1, net.layer2)
        two = self.config.aib and self.config.esb
        if self.config.aib:
            self.aib = Branch(net.layer3, net.layer4, _pooling(self.config.aib_pooling, self.config.ppool_l), dim,
                              num_classes)
        if self.config.esb:
            l3, l4 = (copy.deepcopy(net.layer3), copy.deepcopy(net.layer4)) if two else (net.layer3, net.layer4)
            self.esb = Branch(l3, l4, _pooling(self.config.esb_pooling, self.config.ppool_l), dim, num_classes)
        self._targets: Tensor | None = None

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
            if method == "grad_cam":
                return grad_cam(fn, inputs, pids, layer).maps
        raise ValueError(f"method must be 'cg_ram' or 'grad_cam', got {method!r}")

    def erased_batch_loss(self, images: Tensor, pids: Tensor, criterion: "ESNetLoss", *, ratio: float | None = None
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

    def set_targets(self, pids: Tensor | None) -> None:
        """Ids of the next training batch, for engines that call ``model(images)`` only.

        With ``reidlib.engine.Trainer``: ``LambdaHook(on_batch_start=lambda t, b: t.module.set_targets(b.pids))``.
        """
        self._targets = pids

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
        if c.erasing in ("besm", "gradcam"):
            if pids is None:
                raise ValueError(f"variant {self.variant!r} erases by saliency and needs the batch's ids: "
                                 f"call model(images, pids) or model.set_targets(pids) first")
            selected = draw_selection(images.shape[0], c.prob, device=images.device)
            if not bool(selected.any()):
                return images, None
            maps = self.saliency(images, pids, trunk_maps)
            res = besm(images, maps, c.ratio, c.prob, selected=selected, fill=c.fill)
            return res.images, res
        return images, None  # "random": done by the data pipeline, see ESNetConfig.data_random_erasing

    def forward(self, images: Tensor, pids: Tensor | None = None) -> Any:
        if images.dim() != 4:
            raise ValueError(f"ESNet expects images (B, 3, H, W), got shape {tuple(images.shape)}")
        if not self.training:
            return self.descriptor(images)
        pids = pids if pids is not None else self._targets
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
        first = branches[c.branches[0]]
        return {**first, "branches": branches, "erasing": erasing}


class ESNetLoss(nn.Module):
    """Eq. (1): the sum over branches of ``L^id + L^triplet``.

    ID loss: cross-entropy with label smoothing ``epsilon`` (0 by default: the paper takes only
    last stride 1 and the BN layer from [27]); triplet: batch-hard, margin 0.3, on the features
    before the BNNeck's BN (``feat``). ``forward(outputs, target)`` returns the terms by name
    (``"aib/id"``, ``"aib/triplet"``, ``"esb/id"``, ...), the engine's criterion contract;
    ``target`` is the ids ``(B,)`` or a batch with ``.pids``. :meth:`total` sums them.
    """

    def __init__(self, num_classes: int, *, triplet: bool = True, margin: float = 0.3, epsilon: float = 0.0) -> None:
        super().__init__()
        from reidlib.losses import CrossEntropyLabelSmooth, TripletLoss

        self.id_loss = CrossEntropyLabelSmooth(num_classes, epsilon=epsilon)
        self.triplet = TripletLoss(margin=margin) if triplet else None

    def forward(self, outputs: dict[str, Any], target: Any) -> dict[str, Tensor]:
        pids = target if isinstance(target, Tensor) else target.pids
        branches = outputs.get("branches") or {"main": outputs}
        terms: dict[str, Tensor] = {}
        for name, out in branches.items():
            terms[f"{name}/id"] = self.id_loss(out["logits"], pids)
            if self.triplet is not None:
                terms[f"{name}/triplet"] = self.triplet(out["feat"], pids)
        return terms

    def total(self, outputs: dict[str, Any], target: Any) -> Tensor:
        """``L_total`` of Eq. (1)."""
        return torch.stack(list(self(outputs, target).values())).sum()


def build_esnet(variant: str = "esnet", num_classes: int = 751, **kwargs: Any) -> tuple[ESNet, ESNetLoss]:
    """An ES-Net variant and its Eq. (1) loss (triplet on or off as the variant says)."""
    model = ESNet(num_classes, variant, **kwargs)
    return model, ESNetLoss(num_classes, triplet=model.config.triplet)
