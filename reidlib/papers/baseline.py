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

from typing import Any

from reidlib.engine.schedules import WarmupMultiStep, register_schedule

from ._recipe import Recipe

__all__ = ["RECIPE", "PAPER_PRESET", "bag_of_tricks", "config", "train", "padding_for", "records_frame"]

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
                "milestones": [40, 70], "pretrained": True}

# The notebook's parameters cell, in its order: the CPU defaults (small images, few epochs).
RECIPE = Recipe(
    chapter="baseline",
    notebook="book/baseline/train.ipynb",
    defaults={
        "dataset": "synthped", "data_root": None, "split": None, "synthped_preset": "default",
        "backbone": "resnet18", "pretrained": False, "weights_path": None,
        "height": 64, "width": 32, "epochs": 32, "P": 16, "K": 4, "lr": 3.5e-4, "warmup_epochs": 3,
        "milestones": [24, 29], "device": "auto", "amp": True, "seed": 0, "output_dir": "results",
        "resume": False, "eval_every": 4, "num_workers": 1, "run_name": None, "max_steps_per_epoch": None,
        "num_threads": None, "checkpoint_dir": None, "progress": True,
    },
    types={"data_root": str, "split": str, "weights_path": str, "run_name": str, "max_steps_per_epoch": int,
           "num_threads": int, "checkpoint_dir": str},
)


def config(**parameters: Any):
    """The :class:`~reidlib.engine.config.TrainConfig` of the notebook's ``parameters``."""
    from reidlib.engine.config import TrainConfig

    p = RECIPE.parameters(parameters)
    split = p.pop("split")
    return TrainConfig(
        model="baseline", model_options={"pooling": "gap"},
        criterion="reid", criterion_options={"label_smoothing": 0.1, "margin": 0.3},
        dataset_options={"split": split} if split else {}, padding=padding_for(p["width"]),
        random_erasing=0.5, eval_metric=EVAL_METRIC, chapter=RECIPE.chapter, **p)


def train(**parameters: Any) -> dict[str, Any]:
    """Train the strong baseline with the notebook's ``parameters`` and write its run record."""
    from reidlib.engine.run import run_training

    cfg = config(**parameters)
    return run_training(cfg, notebook=RECIPE.notebook, parameters=RECIPE.parameters(parameters))


def records_frame(results: Any = None):
    """The chapter's runs, one row each (:func:`reidlib.papers.results.runs_table`)."""
    from .results import load_records, runs_table

    return runs_table(load_records(RECIPE.chapter, results), extra=lambda r: {
        "backbone": r["config"]["backbone"], "image": f"{r['config']['height']}x{r['config']['width']}",
        "epochs": len(r["epochs"]), "metric": r["config"]["eval_metric"],
        "rank-5": 100 * r["final"]["rank5"], "rank-10": 100 * r["final"]["rank10"]})
