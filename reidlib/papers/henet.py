"""HENet (Zhang et al.): the named variants of Tables 1-4, their losses, and the paper's numbers.

Every row of Tables 1-4 is one :class:`~reidlib.models.henet.HENetConfig` of the one network
(``build_model("henet", N, **asdict(config))``), named in :data:`VARIANTS`:

* Table 1: ``base`` (G1 + P4, CE), ``base+rpe``, ``base+losses`` (G1 + P4 + R16 with the triplet, OIM and
  the reconstruction loss), ``base+both``; random erasing on in all four, as the paper says.
* Table 2: ``p1``, ``p1-2``, ... ``p1-6``: P(1), P(1,2), ... P(1,6), the partial-branch configurations, CE only.
* Table 3: the seven branch combinations of G1, P4 and R16, CE only, R16 with its reconstruction loss
  (a choice, see :data:`TABLE_3_MSE`).
* Table 4: ``ce`` ... ``ce+oim+tri+mse``, the loss subsets on G1 + P4 + R16, in the column order the
  spec reconstructs (the check marks are lost in the text).

The settings of Tables 2-4 are not stated; here they train without erasing (their numbers sit far below
Table 1's). Some rows of different tables are the same network (:data:`SAME_NETWORK`).
"""
from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, get_args

import pandas as pd

from reidlib.models.henet import HENetConfig
from reidlib.nn import Metric

from ._recipe import Recipe, imagenet_start
from .baseline import CPU_PROTOCOL, PART_IMAGE_SIZE

__all__ = ["VARIANTS", "TABLE_OF", "SAME_NETWORK", "TABLE_3_MSE", "TABLE_RESULTS", "TRIPLET_MARGIN", "PAPER_PRESET",
           "RECIPE", "model_config", "criterion_options", "config", "run_name", "train", "table_1", "table_results",
           "TABLE_1_ES"]

#: The triplet margin: the paper gives none; 1.2 is the margin of ``seathiefwang/MGN-pytorch`` (Adam, lr 2e-4,
#: 4 x 4 batches, 384x128), the recipe HENet's resembles. Euclidean distance on ``f_G``.
TRIPLET_MARGIN = 1.2

_CE = {"triplet": False, "oim": False, "mse": False, "random_erasing": 0.0}

#: Table 3's R16 rows keep the reconstruction loss (a choice): without it R16 is a second G1, yet Table 3
#: prints R16 alone 10 mAP below G1 alone; and its G1 + P4 + R16 row (90.62 / 70.97) sits beside Table 4's
#: MSE-only row (90.43 / 71.65), not its CE-only row (88.72 / 69.69).
TABLE_3_MSE = True


def _partial(label: str, *ks: int) -> HENetConfig:
    return HENetConfig(label, partitions=ks, recovery=False, **_CE)


def _branches(label: str, g1: bool, p4: bool, r16: bool) -> HENetConfig:
    parts = (1,) * g1 + (4,) * p4
    return HENetConfig(label, partitions=parts, recovery=r16, **{**_CE, "mse": r16 and TABLE_3_MSE})


def _losses(label: str, oim: bool, tri: bool, mse: bool) -> HENetConfig:
    return HENetConfig(label, partitions=(1, 4), recovery=True, **{**_CE, "oim": oim, "triplet": tri, "mse": mse})


_BASE = HENetConfig("HENet(Base)", recovery=False, triplet=False, oim=False, mse=False)
_TABLES: dict[int, dict[str, HENetConfig]] = {
    1: {"base": _BASE, "base+rpe": replace(_BASE, label="HENet(+RPE)", rpe=0.5),
        "base+losses": HENetConfig("HENet(+Losses)"), "base+both": HENetConfig("HENet(+Both)", rpe=0.5)},
    2: {"p" + "-".join(map(str, ks)): _partial(f"P({','.join(map(str, ks))})", *ks)
        for ks in ((1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), (1, 3), (1, 4), (1, 6))},
    3: {"+".join(n for n, on in zip(("g1", "p4", "r16"), flags) if on):
        _branches(" + ".join(n for n, on in zip(("G1", "P4", "R16"), flags) if on), *flags)
        for flags in ((True, False, False), (False, True, False), (False, False, True), (True, True, False),
                      (True, False, True), (False, True, True), (True, True, True))},
    4: {"+".join(["ce", *(n for n, on in zip(("oim", "tri", "mse"), flags) if on)]):
        _losses(" + ".join(["CE", *(n for n, on in zip(("OIM", "Tri", "MSE"), flags) if on)]), *flags)
        for flags in ((False, False, False), (True, False, False), (False, True, False), (False, False, True),
                      (True, True, False), (True, False, True), (False, True, True), (True, True, True))},
}
#: Every named row, Table 1 to 4 in the paper's row order.
VARIANTS: dict[str, HENetConfig] = {v: c for rows in _TABLES.values() for v, c in rows.items()}
#: The table each variant is a row of.
TABLE_OF: dict[str, int] = {v: t for t, rows in _TABLES.items() for v in rows}

#: Rows of different tables that are one network trained one way (their labels differ): G1 is P(1), G1 + P4
#: is P(1,4) (``p1``, ``p1-4``); Table 3's G1 + P4 + R16 is Table 4's MSE-only row under :data:`TABLE_3_MSE`.
SAME_NETWORK: list[tuple[str, str]] = [("g1", "p1"), ("g1+p4", "p1-4"), ("g1+p4+r16", "ce+mse")]


def model_config(variant: str = "base+losses", **overrides: Any) -> HENetConfig:
    """The :class:`HENetConfig` of a named row with some fields changed (validated by the config)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown HENet variant {variant!r} (parameter 'variant'); expected one of {list(VARIANTS)}")
    from dataclasses import fields

    known = [f.name for f in fields(HENetConfig)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"unknown HENetConfig fields {unknown}; known: {known}")
    return replace(VARIANTS[variant], **overrides)


def criterion_options(config: HENetConfig, margin: float = TRIPLET_MARGIN, metric: str = "euclidean",
                      oim: dict[str, Any] | None = None) -> dict[str, Any]:
    """The losses of Sec. 3.2 routed to the features (Fig. 2's caption), as ``ReIDCriterion`` options:
    CE (Eq. 5, no label smoothing, mean over the batch) on every feature; the batch-hard triplet (Eq. 6) on
    the global features ``f_G``; OIM (Eq. 7-8) on the part features ``f_P^j``, one lookup table each; the
    reconstruction loss (Eq. 9) on R16. Every weight is 1 (the paper gives none). ``oim``: options of
    :class:`~reidlib.losses.OIMLoss` (default its open-reid defaults: scalar 30, momentum 0.5, no queue)."""
    branch_terms: dict[str, list[str]] = {}
    for f in config.features:
        extra = ("triplet" if config.triplet else None) if f in config.global_features else \
            ("oim" if config.oim else None) if f in config.part_features else \
            ("reconstruction" if config.mse else None)
        branch_terms[f] = ["id"] + ([extra] if extra else [])
    extra_terms: dict[str, dict[str, Any]] = {}
    if config.oim:
        extra_terms["oim"] = {"branches": list(config.part_features), "feat_dim": config.part_dim, **(oim or {})}
    if config.mse:
        extra_terms["reconstruction"] = {}
    return {"label_smoothing": 0.0, "margin": float(margin), "metric": metric,
            "triplet_weight": 1.0 if config.triplet else 0.0, "branch_terms": branch_terms,
            "extra_terms": extra_terms or None}

# Table 1 (Market-1501 columns), the eight rows that print efficiency columns: R1 and mAP (%), feature
# dimension FD, size V (MB) and speed S (FPS, hardware and batch unstated), as printed.
_TABLE_1 = {
    "AlignedReID": (91.8, 79.3, 2048, 100, 207),
    "PCB": (93.1, 81.0, 1536, 102, 192),
    "HPM": (94.2, 82.7, 3840, 356, 82),
    "MGN": (95.7, 86.9, 2816, 263, 112),
    "HENet(Base)": (92.9, 79.6, 2048, 169, 160),
    "HENet(+RPE)": (93.6, 81.2, 2048, 169, 160),
    "HENet(+Losses)": (95.6, 86.8, 2560, 224, 138),
    "HENet(+Both)": (96.0, 87.2, 2560, 224, 138),
}

#: Table 1's printed Efficiency Score of the same rows (two decimals): what the reconstruction of
#: Eq. (10) must give back from the columns of :func:`table_1`.
TABLE_1_ES = {"AlignedReID": 2.55, "PCB": 3.45, "HPM": 1.00, "MGN": 2.42, "HENet(Base)": 2.76,
              "HENet(+RPE)": 3.08, "HENet(+Losses)": 3.41, "HENet(+Both)": 3.52}


# ---- training -------------------------------------------------------------------------------------
#: Sec. 4.1: ResNet-50 from ImageNet, 384x128, 4 ids x 4 images, Adam (0.9, 0.999), weight decay 5e-4, lr 2e-4
#: for 200 epochs, x0.1 at epoch 160 (the second decay "at 200" is the end of training); no warm-up stated.
PAPER_PRESET = {"backbone": "resnet50", "pretrained": True, "height": 384, "width": 128, "P": 4, "K": 4,
                "epochs": 200, "lr": 2e-4, "warmup_epochs": 0, "milestones": [160], "triplet_metric": "euclidean",
                "margin": TRIPLET_MARGIN}
#: the fields of HENetConfig a run may change beside its variant
_OVERRIDES = ("random_erasing", "rpe", "rpe_points")

# The notebook's parameters cell, in its order: the CPU defaults. The CPU regime every chapter shares
# (reidlib.papers.baseline.CPU_PROTOCOL: EfficientNet-Lite0 from ImageNet, 6 epochs, the cosine triplet with
# margin 0.1) at the part chapters' image size, 192x64; the paper's learning rate and weight decay.
RECIPE = Recipe(
    chapter="henet",
    notebook="book/henet/train.ipynb",
    defaults={
        "dataset": "synthped", "data_root": None, "synthped_preset": "default", "dataset_options": {},
        "variant": "base+both", "random_erasing": None, "rpe": None, "rpe_points": None,
        "oim_scalar": 30.0, "oim_momentum": 0.5,
        "backbone": CPU_PROTOCOL["backbone"], "pretrained": CPU_PROTOCOL["pretrained"], "weights_path": None,
        "paper_preset": False, "height": PART_IMAGE_SIZE[0], "width": PART_IMAGE_SIZE[1], "P": CPU_PROTOCOL["P"],
        "K": CPU_PROTOCOL["K"], "epochs": CPU_PROTOCOL["epochs"], "lr": 2e-4, "weight_decay": 5e-4,
        "warmup_epochs": CPU_PROTOCOL["warmup_epochs"], "milestones": CPU_PROTOCOL["milestones"],
        "triplet_metric": CPU_PROTOCOL["triplet_metric"], "margin": CPU_PROTOCOL["margin"],
        "max_steps_per_epoch": None, "eval_every": CPU_PROTOCOL["eval_every"], "device": "auto", "amp": True,
        "num_threads": None, "num_workers": 1, "seed": 0, "output_dir": "results", "run_name": None,
        "resume": False, "progress": True,
    },
    types={"data_root": str, "random_erasing": float, "rpe": float, "rpe_points": int, "weights_path": str,
           "max_steps_per_epoch": int, "num_threads": int, "run_name": str},
    choices={"triplet_metric": get_args(Metric)},
)
#: the descriptor is l2-normalised (the model's eval output), so the Euclidean and cosine rankings coincide
EVAL_METRIC = "euclidean"


def run_name(variant: str, model: HENetConfig, backbone: str, height: int, width: int, epochs: int, seed: int,
             pretrained: bool = False, metric: str = "euclidean", margin: float = TRIPLET_MARGIN) -> str:
    """``base+both_cosine_m0.1_efficientnet_lite0-imagenet_192x64_e6_s0``: the erasing settings where they differ
    from the named row (``_re0.5``, ``_rpe0.25``, ``_n40``), the triplet where the variant has one and it is not
    the paper's choice (Euclidean, margin 1.2), ``-imagenet`` for ImageNet weights."""
    row = VARIANTS[variant]
    tag = "".join(f"_{short}{getattr(model, f):g}" for f, short in (("random_erasing", "re"), ("rpe", "rpe"),
                                                                     ("rpe_points", "n"))
                  if getattr(model, f) != getattr(row, f))
    if model.triplet and (metric, margin) != ("euclidean", TRIPLET_MARGIN):
        tag += f"_{metric}_m{margin:g}"
    weights = "-imagenet" if pretrained else ""
    return f"{variant}{tag}_{backbone}{weights}_{height}x{width}_e{epochs}_s{seed}"


def config(**parameters: Any):
    """The :class:`~reidlib.engine.config.TrainConfig` of the notebook's ``parameters``: the variant's model
    options (with the erasing overrides), its losses (:func:`criterion_options`), RE and RPE in the data
    pipeline, and the CPU defaults or, with ``paper_preset=True``, Sec. 4.1's schedule (:data:`PAPER_PRESET`)."""
    from reidlib.engine.config import TrainConfig

    p = RECIPE.parameters(parameters)
    if p["paper_preset"]:
        p.update(PAPER_PRESET)
    model = model_config(p["variant"], **{k: p[k] for k in _OVERRIDES if p[k] is not None})
    oim = {"scalar": p["oim_scalar"], "momentum": p["oim_momentum"]}
    name = p["run_name"] or run_name(p["variant"], model, p["backbone"], p["height"], p["width"], p["epochs"],
                                     p["seed"], pretrained=imagenet_start(p), metric=p["triplet_metric"],
                                     margin=p["margin"])
    return TrainConfig(
        dataset=p["dataset"], data_root=p["data_root"], synthped_preset=p["synthped_preset"],
        dataset_options=p["dataset_options"], random_erasing=model.random_erasing,
        random_polygon_erasing=model.rpe, polygon_options={"n": model.rpe_points}, padding=0,
        model="henet", model_options=asdict(model), variant=p["variant"], backbone=p["backbone"],
        pretrained=p["pretrained"], weights_path=p["weights_path"], criterion="reid",
        criterion_options=criterion_options(model, p["margin"], p["triplet_metric"], oim),
        optimizer="adam", height=p["height"], width=p["width"], P=p["P"], K=p["K"], epochs=p["epochs"], lr=p["lr"],
        weight_decay=p["weight_decay"], schedule="warmup_multistep", warmup_epochs=p["warmup_epochs"],
        milestones=tuple(p["milestones"]), max_steps_per_epoch=p["max_steps_per_epoch"], device=p["device"],
        amp=p["amp"], num_threads=p["num_threads"], num_workers=p["num_workers"], seed=p["seed"],
        eval_every=p["eval_every"], eval_metric=EVAL_METRIC, chapter=RECIPE.chapter, output_dir=p["output_dir"],
        run_name=name, resume=p["resume"], progress=p["progress"])


def train(**parameters: Any) -> dict[str, Any]:
    """Train a HENet variant with the notebook's ``parameters`` and write its run record."""
    from reidlib.engine.run import run_training

    return run_training(config(**parameters), notebook=RECIPE.notebook, parameters=RECIPE.parameters(parameters))


# Tables 2-4 (Market-1501, %), as printed: R1, R5, R10, mAP; FD of Tables 2-3 printed too.
TABLE_RESULTS: dict[str, dict[str, float]] = {
    **{v: dict(zip(("FD", "R1", "R5", "R10", "mAP"), row)) for v, row in {
        "p1": (512, 87.92, 95.46, 96.97, 68.48), "p1-2": (1536, 90.15, 95.52, 97.08, 70.03),
        "p1-2-3": (2816, 90.41, 95.64, 97.09, 71.43), "p1-2-3-4": (4352, 90.81, 95.84, 97.48, 72.39),
        "p1-3": (1792, 90.08, 95.64, 97.12, 70.12), "p1-4": (2048, 90.17, 95.68, 97.30, 70.39),
        "p1-6": (2560, 90.24, 95.78, 97.39, 70.72),
        "g1": (512, 87.92, 95.46, 96.97, 68.48), "p4": (1536, 89.67, 95.81, 96.97, 69.55),
        "r16": (512, 84.29, 93.65, 95.96, 58.69), "g1+p4": (2048, 90.17, 95.68, 97.30, 70.39),
        "g1+r16": (1024, 88.98, 95.28, 96.91, 70.42), "p4+r16": (2048, 90.15, 95.89, 97.16, 70.34),
        "g1+p4+r16": (2560, 90.62, 96.21, 97.52, 70.97)}.items()},
    **{v: dict(zip(("R1", "R5", "R10", "mAP"), row)) for v, row in {
        "ce": (88.72, 95.43, 97.12, 69.69), "ce+oim": (91.33, 96.02, 97.74, 73.42),
        "ce+tri": (92.62, 96.91, 98.15, 78.02), "ce+mse": (90.43, 95.90, 97.18, 71.65),
        "ce+oim+tri": (92.90, 97.30, 98.25, 80.04), "ce+oim+mse": (91.65, 96.56, 97.83, 74.37),
        "ce+tri+mse": (93.20, 97.68, 98.40, 79.90), "ce+oim+tri+mse": (93.67, 97.84, 98.63, 80.60)}.items()},
}


def table_results(table: int) -> pd.DataFrame:
    """Table 2, 3 or 4 as printed (:data:`TABLE_RESULTS`), indexed by variant, with the row's label."""
    if table not in (2, 3, 4):
        raise ValueError(f"table_results: table must be 2, 3 or 4 (Table 1: table_1()), got {table!r}")
    rows = [{"variant": v, "label": VARIANTS[v].label, **TABLE_RESULTS[v]} for v in VARIANTS if TABLE_OF[v] == table]
    return pd.DataFrame(rows).set_index("variant")


def table_1() -> pd.DataFrame:
    """Table 1's efficiency rows: a DataFrame indexed by model with the columns ``R1, mAP, FD, V, S``
    (:data:`reidlib.eval.ES_COLUMNS`), Market-1501 accuracy, as printed."""
    frame = pd.DataFrame.from_dict(_TABLE_1, orient="index", columns=["R1", "mAP", "FD", "V", "S"])
    frame.index.name = "model"
    return frame
