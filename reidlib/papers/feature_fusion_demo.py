"""The demo models of the feature-fusion chapter's activation-map page (Fig. 8): the full model (S + © + C, MGO's
21 windows, MPFE) and the chapter's baseline (stage 4, one global descriptor, a BN head), each trained briefly on
synthped ``tiny`` through the chapter's own recipe (:func:`reidlib.papers.feature_fusion.config` at
:data:`DEMO_PARAMETERS`: the CPU regime's ImageNet EfficientNet-Lite0 at 192x64), its record and checkpoint under
``reidlib.paths.cache_dir("feature-fusion-demo")``; later calls only load them. These are demos, not runs of the
paper's schedule: their maps show what the two look at, never accuracies.

Fig. 8 shows Grad-CAM at stage 4; the descriptor of a re-ID model has no class score at test time, so the maps here
are the implicit attention of the descriptor (:func:`reidlib.saliency.implicit_attention`: Grad-CAM of its 50
strongest dimensions) on the stage-4 map (``body.layer4``), the same for both models.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from reidlib.paths import cache_dir

from ._recipe import Demo

__all__ = ["DEMO_PARAMETERS", "DEMO_VERSION", "STAGE_4", "load_demo", "activation_maps", "attention_on_parts"]

DEMO_VERSION = 1
#: The demo runs: synthped 'tiny', 4 epochs of 8 batches of 8 x 4 at 192x64, one thread, one evaluation at the end.
DEMO_PARAMETERS = {"synthped_preset": "tiny", "epochs": 4, "milestones": [3], "warmup_epochs": 1, "P": 8, "K": 4,
                   "max_steps_per_epoch": 8, "eval_every": 4, "device": "cpu", "amp": False, "num_threads": 1,
                   "num_workers": 0, "progress": False}
#: The stage-4 map of every variant of ``mgo_fusion`` (the map Fig. 8 shows).
STAGE_4 = "body.layer4"


def load_demo(variant: str = "full", *, seed: int = 0) -> Demo:
    """The feature-fusion variant ``variant`` (``"full"`` or ``"baseline"``, or any row of
    :data:`~reidlib.papers.feature_fusion.VARIANTS`) trained at :data:`DEMO_PARAMETERS`, in eval mode; trained once
    and cached (record and checkpoint under ``cache_dir("feature-fusion-demo")``)."""
    from reidlib.data import build_dataset, synthped
    from reidlib.engine.features import FeatureExtractor
    from reidlib.engine.run import run_training

    from . import feature_fusion

    root = cache_dir("feature-fusion-demo")
    name = f"{variant}-v{DEMO_VERSION}-s{seed}"
    record = root / "results" / feature_fusion.RECIPE.chapter / "synthped" / f"{name}.json"
    if not record.is_file():
        cfg = feature_fusion.config(**DEMO_PARAMETERS, variant=variant, seed=seed, run_name=name,
                                    output_dir=str(root / "results"))
        threads = torch.get_num_threads()
        try:
            run_training(replace(cfg, checkpoint_dir=str(root / "checkpoints" / name)), notebook=None,
                         parameters=feature_fusion.RECIPE.parameters({**DEMO_PARAMETERS, "variant": variant}))
        finally:
            torch.set_num_threads(threads)
    fx = FeatureExtractor.from_record(record, progress=False)
    ds = build_dataset("synthped", synthped.ensure(DEMO_PARAMETERS["synthped_preset"]))
    return Demo(fx.model.eval(), ds, fx.transform, f"the chapter's recipe at DEMO_PARAMETERS (cached at {name})", variant)


def activation_maps(demo: Demo, records: Any, *, top: int = 50) -> torch.Tensor:
    """``(N, h, w)`` stage-4 maps of the demo model on ``records``' images: the implicit attention of its
    descriptor (see the module docstring), as Grad-CAM gives it (ReLU'd, unscaled: overlays normalise)."""
    from reidlib.saliency import implicit_attention

    return implicit_attention(demo.model, demo.images(records), STAGE_4, top=top).maps.detach()


def attention_on_parts(demo: Demo, records: Any, *, top: int = 50) -> Any:
    """:func:`reidlib.saliency.parts.attention_on_parts` of a demo model on its stage-4 map: per image of
    ``records``, the share of its maps on synthped's identity-specific details and on the person, beside those
    masks' area."""
    from reidlib.saliency.parts import attention_on_parts as on_parts

    return on_parts(demo.model, demo.images(records), records, STAGE_4, top=top)
