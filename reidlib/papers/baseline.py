"""The strong baseline (Luo et al., "Bag of tricks and a strong baseline for deep person re-ID",
CVPRW 2019) as the house runs it: its schedule, its presets, ``train(**parameters)``, and the
records frame of the chapter's results page.

The network is ``build_model("baseline", ...)`` (:mod:`reidlib.models.baseline`: ResNet with last
stride 1, GAP, BNNeck); the losses are ``build_criterion("reid", ...)`` with the paper's label
smoothing 0.1 and batch-hard triplet margin 0.3. Augmentation: flip, a 10-px pad + random crop at
256x128 -- at other widths the pad is scaled with the width (``round(10 * width / 128)``: 2 px at
64x32, where 10 px would be 31 % of the image) -- and random erasing with probability 0.5.
Evaluation: flip-averaged BN features ranked by cosine distance (the chapter's one metric).
"""
from __future__ import annotations

from typing import Any, get_args

from reidlib.engine.schedules import WarmupMultiStep, register_schedule
from reidlib.nn import Metric

from ._recipe import Recipe, imagenet_start

__all__ = ["RECIPE", "CPU_PROTOCOL", "PART_IMAGE_SIZE", "PAPER_PRESET", "PAPER_TRICKS", "PAPER_TRIPLET", "bag_of_tricks",
           "config", "train", "padding_for", "records_frame", "run_name"]

EVAL_METRIC = "cosine"


@register_schedule("bag_of_tricks")
def bag_of_tricks(base_lr: float = 3.5e-4) -> WarmupMultiStep:
    """Luo et al. (2019): ``lr = base * (0.1 + 0.9 * e / 10)`` for epochs e < 10 (3.5e-5 -> 3.5e-4),
    then ``base``, x0.1 at 40 and at 70."""
    return WarmupMultiStep(base_lr, milestones=(40, 70), gamma=0.1, warmup_epochs=10,
                           warmup_start_lr=0.1 * base_lr)


def padding_for(width: int) -> int:
    """BoT's 10-px pad at width 128, scaled with the width."""
    return round(10 * width / 128)


# The paper's scale (Sec. 4): ResNet-50, 256x128, 120 epochs, warm-up 10, x0.1 at 40 and 70.
PAPER_PRESET = {"backbone": "resnet50", "height": 256, "width": 128, "epochs": 120, "warmup_epochs": 10,
                "milestones": [40, 70], "pretrained": True, "triplet_metric": "euclidean", "margin": 0.3}

# The notebook's parameters cell, in its order: the CPU defaults. The CPU protocol (EfficientNet-Lite0
# with its ImageNet weights, 128x64, 6 epochs of 16 P x K batches) was picked by measurement: see the
# chapter's page "What pre-training changes" and CPU_PROTOCOL below.
RECIPE = Recipe(
    chapter="baseline",
    notebook="book/baseline/train.ipynb",
    defaults={
        "dataset": "synthped", "data_root": None, "split": None, "synthped_preset": "default",
        "backbone": "efficientnet_lite0", "pretrained": True, "weights_path": None,
        "height": 128, "width": 64, "epochs": 6, "P": 16, "K": 4, "lr": 3.5e-4, "warmup_epochs": 1,
        "milestones": [4, 5], "triplet_weight": 1.0, "triplet_ramp": 0.0, "soft_margin": False,
        # the CPU regime's triplet: the cosine distance, margin 0.1 (page "The triplet question": at this budget
        # the paper's Euclidean hinge, margin 0.3, dominates the ID loss and holds the pre-trained start near chance)
        "triplet_metric": "cosine", "margin": 0.1,
        "label_smoothing": 0.1, "random_erasing": 0.5, "neck": "bnneck", "last_stride": 1,
        "probe_triplet": False, "probe_every": 20, "device": "auto", "amp": True, "seed": 0,
        "output_dir": "results", "resume": False, "eval_every": 3, "num_workers": 1, "run_name": None,
        "max_steps_per_epoch": None, "num_threads": None, "checkpoint_dir": None, "progress": True,
    },
    types={"data_root": str, "split": str, "weights_path": str, "run_name": str, "max_steps_per_epoch": int,
           "num_threads": int, "checkpoint_dir": str},
    choices={"triplet_metric": get_args(Metric)},
)

#: The CPU regime every chapter's CPU runs share (issue 9): the recipe defaults above.
CPU_PROTOCOL = {k: RECIPE.defaults[k] for k in ("backbone", "pretrained", "height", "width", "epochs", "P", "K",
                                                  "lr", "warmup_epochs", "milestones", "eval_every", "triplet_metric",
                                                  "margin")}
#: The CPU image size of the part-based chapters (HENet's 1, 2, 3, 4 and 6 parts, 6-stripe models): at
#: stride 16 (last stride 1) its map is 12 high, which every one of those counts divides; 128x64 gives 8.
#: 3:1 is PCB's own aspect (384x128), halved twice. See the page "What pre-training changes".
PART_IMAGE_SIZE = (192, 64)

#: The strong baseline's tricks as its paper sets them (Luo et al. 2019): a run's name tags the tricks in
#: which it differs from these, not from the recipe's defaults, so that a change of the CPU defaults never
#: renames the records already written.
PAPER_TRICKS = {"triplet_weight": 1.0, "triplet_ramp": 0.0, "soft_margin": False, "triplet_metric": "euclidean",
                "margin": 0.3, "label_smoothing": 0.1, "random_erasing": 0.5, "neck": "bnneck", "last_stride": 1}
#: The paper's form of the triplet loss (the regime's experiments on it pin it; the CPU default differs).
PAPER_TRIPLET = {k: PAPER_TRICKS[k] for k in ("triplet_metric", "margin")}
# how the triplet is computed names nothing in a run without it
_TRIPLET_FORM = ("triplet_ramp", "soft_margin", "triplet_metric", "margin")

# Settings that name a run when they differ from the paper's (the bag-of-tricks ablation, the triplet
# question): parameter -> tag of its value.
_TAGS = {
    "triplet_weight": lambda v: "id-only" if v == 0 else f"tri{v:g}",
    "triplet_ramp": lambda v: f"ramp{v:g}",
    "soft_margin": lambda v: "soft-margin" if v else "hinge",
    "triplet_metric": lambda v: v,
    "margin": lambda v: f"m{v:g}",
    "label_smoothing": lambda v: f"ls{v:g}",
    "random_erasing": lambda v: f"re{v:g}",
    "neck": lambda v: f"neck-{v}",
    "last_stride": lambda v: f"stride{v}",
}


ID_TRIPLET, ID_ONLY, RAMPED, SOFT = "ID + triplet", "ID only", "ID + triplet, ramped", "ID + soft-margin triplet"
COSINE = "ID + cosine triplet"


def loss_of(record: Any) -> str:
    """Which losses trained a run (from its record's ``criterion_options``): ID only, ID + triplet,
    ramped, soft margin, or cosine (``1 - cos`` distance, whatever its margin)."""
    o = record["config"]["criterion_options"]
    if o.get("triplet_weight", 1.0) == 0:
        return ID_ONLY
    if o.get("soft_margin"):
        return SOFT
    if o.get("metric", "euclidean") == "cosine":
        return COSINE
    return RAMPED if o.get("triplet_ramp", 0.0) > 0 else ID_TRIPLET


def run_name(p: dict[str, Any]) -> str:
    """``<backbone>[-imagenet]_<H>x<W>_e<epochs>[_<tags>]_s<seed>``; the tags name the tricks that differ
    from the paper's (:data:`PAPER_TRICKS`: ``id-only``, ``ramp0.25``, ``soft-margin``, ``cosine_m0.1``, ``ls0``,
    ``re0``, ...); a run without the triplet loss carries no tag of the triplet's form."""
    tags = [_TAGS[k](p[k]) for k in _TAGS if p[k] != PAPER_TRICKS[k]
            and not (k in _TRIPLET_FORM and p["triplet_weight"] == 0)]
    weights = "-imagenet" if imagenet_start(p) else ""
    return "_".join([f"{p['backbone']}{weights}", f"{p['height']}x{p['width']}", f"e{p['epochs']}", *tags, f"s{p['seed']}"])


def config(**parameters: Any):
    """The :class:`~reidlib.engine.config.TrainConfig` of the notebook's ``parameters``."""
    from reidlib.engine.config import TrainConfig

    p = RECIPE.parameters(parameters)
    split = p.pop("split")
    tricks = {k: p.pop(k) for k in ("triplet_weight", "triplet_ramp", "soft_margin", "triplet_metric", "margin",
                                     "label_smoothing", "random_erasing", "neck")}
    for k in ("probe_triplet", "probe_every"):
        p.pop(k)
    p["run_name"] = p["run_name"] or run_name({**p, **tricks})
    return TrainConfig(
        model="baseline", model_options={"pooling": "gap", "neck": tricks["neck"]},
        criterion="reid", criterion_options={
            "label_smoothing": tricks["label_smoothing"], "margin": tricks["margin"],
            "metric": tricks["triplet_metric"], "triplet_weight": tricks["triplet_weight"],
            "triplet_ramp": tricks["triplet_ramp"], "soft_margin": tricks["soft_margin"]},
        dataset_options={"split": split} if split else {}, padding=padding_for(p["width"]),
        random_erasing=tricks["random_erasing"], eval_metric=EVAL_METRIC, chapter=RECIPE.chapter, **p)


def train(**parameters: Any) -> dict[str, Any]:
    """Train the strong baseline with the notebook's ``parameters`` and write its run record
    (``probe_triplet=True`` adds :class:`~reidlib.engine.probes.TripletProbe`'s per-epoch statistics)."""
    from reidlib.engine.probes import TripletProbe
    from reidlib.engine.run import run_training

    cfg = config(**parameters)
    p = RECIPE.parameters(parameters)
    hooks = [TripletProbe(p["probe_every"])] if p["probe_triplet"] else []
    return run_training(cfg, notebook=RECIPE.notebook, parameters=p, hooks=hooks)


def records_frame(results: Any = None):
    """The chapter's runs, one row each (:func:`reidlib.papers.results.runs_table`), with the backbone
    (``-imagenet`` where it started from ImageNet weights), image size, epochs, the losses that trained it
    (``ID + triplet``, ``ID only``, ``ID + triplet, ramped``, ...) and rank-5/10."""
    from .results import load_records, runs_table

    def extra(r):
        c = r["config"]
        weights = "-imagenet" if imagenet_start(c) else ""
        return {"backbone": c["backbone"] + weights, "image": f"{c['height']}x{c['width']}", "epochs": len(r["epochs"]),
                "loss": loss_of(r), "metric": c["eval_metric"], "rank-5": 100 * r["final"]["rank5"],
                "rank-10": 100 * r["final"]["rank10"]}

    return runs_table(load_records(RECIPE.chapter, results), extra=extra)
