"""reidlib.saliency: where a re-ID model looks, and erasing it (ES-Net: CG-RAM, BESM; Grad-CAM)."""
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

__all__ = [
    "BESMResult",
    "BatchCGRAMResult",
    "CGRAMResult",
    "GradCAMResult",
    "batch_confidence_score",
    "besm",
    "capture_activation",
    "cg_ram",
    "cg_ram_batch",
    "confidence_score",
    "draw_selection",
    "easiest_positive",
    "erase_top",
    "grad_cam",
    "grad_cam_erasing",
    "model_mode",
    "resolve_layer",
    "saliency_map",
]
