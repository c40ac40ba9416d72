"""reidlib.saliency: where a re-ID model looks, and erasing it (ES-Net: CG-RAM, BESM; Grad-CAM; Grad-CAM of
retrieval descriptors, Almazán et al. 2018 Sec. 4.4)."""
from reidlib.nn import capture_activation, model_mode  # their home is the bottom layer; importable here too

from .besm import BESMResult, besm, draw_selection, erase_top
from .cg_ram import (
    BatchCGRAMResult,
    CGRAMResult,
    batch_confidence_score,
    cg_ram,
    cg_ram_batch,
    confidence_score,
    easiest_positive,
    resolve_layer,
    saliency_map,
)
from .grad_cam import GradCAMResult, grad_cam, grad_cam_erasing
from .retrieval_cam import (
    EmbeddingGradCAMResult,
    MatchingRegionsResult,
    SingleDimensionResult,
    TopDimensions,
    attention_share,
    embedding_grad_cam,
    implicit_attention,
    l2_normalize_jacobian,
    matching_regions,
    max_pooled_channel_weights,
    pair_dimensions,
    single_dimension_maps,
    top_dimensions,
)

__all__ = [
    "BESMResult",
    "BatchCGRAMResult",
    "CGRAMResult",
    "EmbeddingGradCAMResult",
    "GradCAMResult",
    "MatchingRegionsResult",
    "SingleDimensionResult",
    "TopDimensions",
    "attention_share",
    "batch_confidence_score",
    "besm",
    "capture_activation",
    "cg_ram",
    "cg_ram_batch",
    "confidence_score",
    "draw_selection",
    "easiest_positive",
    "embedding_grad_cam",
    "erase_top",
    "grad_cam",
    "grad_cam_erasing",
    "implicit_attention",
    "l2_normalize_jacobian",
    "matching_regions",
    "max_pooled_channel_weights",
    "model_mode",
    "pair_dimensions",
    "resolve_layer",
    "saliency_map",
    "single_dimension_maps",
    "top_dimensions",
]
