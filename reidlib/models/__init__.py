"""reidlib.models: backbones, pooling, heads, the strong baseline, and efficiency figures."""
from .backbones import RESNETS, ResNetBackbone, build_backbone
from .baseline import Baseline
from .efficiency import efficiency
from .heads import BNNeck, LinearHead
from .pooling import GAP, GMP, GeM, build_pooling

# ES-Net (P-pooling) and later papers' modules: one import line each, below.
from .p_pooling import PPooling

__all__ = [
    "RESNETS",
    "ResNetBackbone",
    "build_backbone",
    "Baseline",
    "efficiency",
    "BNNeck",
    "LinearHead",
    "GAP",
    "GMP",
    "GeM",
    "build_pooling",
    "PPooling",
]
