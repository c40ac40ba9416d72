"""reidlib.models: backbones, pooling, heads, shared blocks, the house's networks, and the registry.

``build_model(name, num_classes, **options)`` builds a registered network (``baseline``,
``esnet``, ``ssr_hashing``, ``henet``, ``mgo_fusion``, ``good_practices``; the papers' recipes in
:mod:`reidlib.papers` register more). Every network follows one
contract:

* **train mode**: ``model(images (B, 3, H, W))`` -- or ``model(images, targets=pids)`` for a model
  whose ``needs_targets`` is true -- returns
  ``{"branches": {name: {"logits": (B, N), "feat": (B, D), "feat_bn": (B, D), ...}}, ...extras}``;
  a single-branch model has the one branch ``"main"``. :class:`reidlib.losses.ReIDCriterion` reads it.
* **eval mode**: ``model(images)`` returns the test descriptor ``(B, D)``.
* ``model.options``: the resolved model options (plain data), stored in the run record.

Shared blocks: :mod:`~reidlib.models.branches` (a trunk shared up to a stage, branches owning copies of
the later stages), :mod:`~reidlib.models.parts` (stripes and windows), :mod:`~reidlib.models.decoders`
(HENet's recovery decoder), :mod:`~reidlib.models.attention` (the hashing paper's AAB = SAAB + CAAB),
:mod:`~reidlib.models.quantize` (Eq. (1) ``sign``, the Table 6 relaxations, the hash head; its functions are
imported from the submodule, ``from reidlib.models.quantize import quantize, sign``, so that the name
``reidlib.models.quantize`` stays the module).
"""
# the house's networks register themselves on import (one line each)
from . import (
    esnet,  # noqa: E402,F401  (ES-Net: AIB + ESB)
    fusion,  # noqa: E402,F401  (the feature-fusion paper: FMR, SAM + CAM, MGO, MPFE)
    good_practices,  # noqa: E402,F401  ("Re-ID done right": max pooling, FC, l2)
    hashing,  # noqa: E402,F401  (the hashing paper: SSR teacher + student, AAB, attributes)
    henet,  # noqa: E402,F401  (HENet: G1 + P4 + R16)
)
from .attention import AAB, CAAB, SAAB
from .backbones import BACKBONES, RESNETS, ResNetBackbone, build_backbone, input_normalization
from .baseline import Baseline
from .good_practices import GoodPractices
from .heads import BNNeck, LinearHead, ReductionHead
from .p_pooling import PPooling
from .pooling import GAP, GMP, GeM, build_pooling
from .quantize import RELAXATIONS, HashHead
from .registry import MODELS, build_model, model_options, register_model

__all__ = [
    "BACKBONES",
    "MODELS",
    "RESNETS",
    "ResNetBackbone",
    "build_backbone",
    "input_normalization",
    "build_model",
    "model_options",
    "register_model",
    "Baseline",
    "GoodPractices",
    "BNNeck",
    "LinearHead",
    "ReductionHead",
    "GAP",
    "GMP",
    "GeM",
    "build_pooling",
    "PPooling",
    "AAB",
    "CAAB",
    "SAAB",
    "RELAXATIONS",
    "HashHead",
]
