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

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any, get_args

import numpy as np
import pandas as pd

from reidlib.models.henet import HENetConfig
from reidlib.nn import Metric

from ._recipe import Recipe, evaluation_with_transform, imagenet_start, named_variant, percent_list
from .baseline import CPU_PROTOCOL, PART_IMAGE_SIZE

__all__ = ["VARIANTS", "TABLE_OF", "SAME_NETWORK", "CANONICAL", "CLAIMS", "TABLE_3_MSE", "TABLE_RESULTS",
           "TABLE_BASE", "TRIPLET_MARGIN", "PAPER_PRESET", "RECIPE", "model_config", "criterion_options", "config",
           "run_name", "train", "final_evaluations", "OCCLUDERS", "OCCLUSION", "occlusion_curve", "erasing_label",
           "fig4_frame", "FIG4_CLAIMS", "table_1", "table_results", "TABLE_1_ES", "ES_EXPONENTS", "es_form",
           "neighbouring_forms", "forms_that_reproduce", "es_sweep", "SPLITS", "analytic_test_params", "size_table",
           "BOOK_CHAPTERS", "book_settings", "architecture_of", "build_architecture", "book_efficiency",
           "records_frame", "paper_table"]

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


#: The name a network trained under either of its rows is counted as (the first of each :data:`SAME_NETWORK`
#: pair): the regime plans the canonical names only, and the results page counts the other's runs with them.
CANONICAL: dict[str, str] = {b: a for a, b in SAME_NETWORK}

#: The paper's claims, each "row A beats row B" (canonical names), judged on our runs by the results page.
CLAIMS: list[tuple[str, str, str]] = [
    ("RPE helps the Base model (Table 1)", "base+rpe", "base"),
    ("the three losses help the Base model (Table 1)", "base+losses", "base"),
    ("RPE helps on top of the losses (Table 1)", "base+both", "base+losses"),
    ("a partial branch helps the global one, P(1,4) > P(1) (Tables 2, 3)", "g1+p4", "g1"),
    ("R16 helps G1 + P4 (Table 3)", "g1+p4+r16", "g1+p4"),
    ("OIM helps CE (Table 4)", "ce+oim", "ce"),
    ("the triplet helps CE (Table 4)", "ce+tri", "ce"),
    ("the reconstruction loss helps CE (Table 4)", "g1+p4+r16", "ce"),
    ("all three losses beat CE alone (Table 4)", "ce+oim+tri+mse", "ce"),
]


def model_config(variant: str = "base+losses", **overrides: Any) -> HENetConfig:
    """The :class:`HENetConfig` of a named row with some fields changed (validated by the config)."""
    return named_variant(VARIANTS, variant, overrides, "HENet")


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
        "max_steps_per_epoch": None, "eval_every": CPU_PROTOCOL["eval_every"], "occlusion": [],
        "device": "auto", "amp": True,
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


def erasing_label(re: float, rpe: float, n: int) -> str:
    """Fig. 4's name of a training erasing: ``RE``, ``RPE(20) p0.5``, ``RE+RPE(20)`` (p = 0.5 for both, the paper's
    combined setting), ``none``."""
    if re > 0 and rpe > 0:
        return f"RE+RPE({n})" if (re, rpe) == (0.5, 0.5) else f"RE{re:g}+RPE({n}) p{rpe:g}"
    if rpe > 0:
        return f"RPE({n}) p{rpe:g}"
    return f"RE p{re:g}" if re > 0 else "none"


def fig4_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4's runs out of :func:`records_frame`'s ``runs``: P(1,4) (``g1+p4``) with its erasing settings, each
    run's ``variant`` replaced by :func:`erasing_label` (``RPE(20) p0.5``), the name :data:`FIG4_CLAIMS` use; its
    own evaluations only (no occluded rows)."""
    sweep = runs[runs.variant == "g1+p4"].copy()
    sweep["variant"] = [erasing_label(r.RE, r.rpe, r["rpe n"]) for _, r in sweep.iterrows()]
    return sweep


#: Fig. 4's findings as claims on :func:`fig4_frame`'s rows: more erasing probability helps RPE, the two
#: erasers together beat each alone, and RPE(20) beats RE and RPE(10) (the paper: RPE's effect grows with N,
#: is good at 20 and meets RE's at 40).
FIG4_CLAIMS: list[tuple[str, str, str]] = [
    ("RPE(20) improves with its probability, 0.75 > 0.25 (Fig. 4)", "RPE(20) p0.75", "RPE(20) p0.25"),
    ("RE + RPE(20) beats RE alone (Fig. 4)", "RE+RPE(20)", "RE p0.5"),
    ("RE + RPE(20) beats RPE(20) alone (Fig. 4)", "RE+RPE(20)", "RPE(20) p0.5"),
    ("RPE(20) beats RE (Fig. 4)", "RPE(20) p0.5", "RE p0.5"),
    ("RPE(20) beats RPE(10) (Fig. 4: more vertices help, up to 20)", "RPE(20) p0.5", "RPE(10) p0.5"),
]

#: The erasers Fig. 5's occluded test images are erased with: rectangles (random erasing) and polygons (RPE).
OCCLUDERS = {"re": "random_erasing", "rpe": "random_polygon_erasing"}
#: The occluded areas (percent of the image) the regime's runs of Fig. 5 are tested at.
OCCLUSION = (10, 30, 50)


def occlusion_curve(runs: pd.DataFrame) -> pd.DataFrame:
    """Fig. 5 from :func:`records_frame`'s ``runs``: mAP against the occluded area of the queries, per training
    erasing (``trained with``, :func:`erasing_label`) and occluder (``re``, ``rpe``), the
    unoccluded run at 0 % for both occluders; only runs with occluded evaluations. The mean over seeds with
    its 95 % t-interval (``mAP ±``, :func:`reidlib.papers.results.summary`), indexed by
    ``(trained with, occluder, area)``."""
    from .results import evaluation_rows, summary

    rows = []
    for _, r in evaluation_rows(runs, "occluded@").iterrows():
        trained = erasing_label(r.RE, r.rpe, r["rpe n"])
        if r.evaluation:
            short = "rpe" if r.evaluation.startswith("rpe") else "re"
            rows.append({**r, "trained with": trained, "occluder": short, "area": int(r.evaluation[len(short):])})
        else:
            rows += [{**r, "trained with": trained, "occluder": short, "area": 0} for short in OCCLUDERS]
    if not rows:
        return pd.DataFrame(columns=["mAP", "mAP ±", "seeds"],
                            index=pd.MultiIndex.from_tuples([], names=["trained with", "occluder", "area"]))
    return summary(pd.DataFrame(rows), by=("trained with", "occluder", "area"), metrics=("mAP",)).sort_index()


def final_evaluations(parameters: Mapping[str, Any], cfg: Any) -> list[Any]:
    """Fig. 5's occluded test images as extra evaluations (a :class:`~reidlib.engine.probes.FinalEvaluations`
    hook, or none): for each percentage ``a`` of the ``occlusion`` parameter and each eraser of
    :data:`OCCLUDERS`, ``occluded@<re|rpe><a>``: every *query* erased once, a region of ``a`` % of the image
    (:func:`reidlib.data.transforms.build_occluded_transforms`; RPE's polygon covers less than its box), against
    the clean gallery, the regions drawn from a seeded generator, the same in every run."""
    from reidlib.data.transforms import build_occluded_transforms
    from reidlib.engine.probes import FinalEvaluations
    from reidlib.models import input_normalization

    mean, std = input_normalization(cfg.backbone)
    evaluations = {}
    for area in percent_list("occlusion", parameters.get("occlusion"), "the image area"):
        for short, eraser in OCCLUDERS.items():
            tf = build_occluded_transforms(cfg.height, cfg.width, eraser, area / 100, mean=mean, std=std)
            evaluations[f"occluded@{short}{area}"] = evaluation_with_transform(cfg, tf, queries_only=True)
    return [FinalEvaluations(evaluations, seed=cfg.seed)] if evaluations else []


def train(**parameters: Any) -> dict[str, Any]:
    """Train a HENet variant with the notebook's ``parameters`` and write its run record (with Fig. 5's occluded
    evaluations of :func:`final_evaluations` in its ``final``)."""
    from reidlib.engine.run import run_training

    p = RECIPE.parameters(parameters)
    cfg = config(**parameters)
    return run_training(cfg, notebook=RECIPE.notebook, parameters=p, hooks=final_evaluations(p, cfg))


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


# ---- the Efficiency Score page: the reconstruction's neighbours, what it rewards, model sizes ---------------
#: Eq. (10)'s exponents as reconstructed: ``V**a * S**b * (T - T_M2 + thr)**c / FD**d`` with ``(a, b, c, d)``.
ES_EXPONENTS = (1, 2, 3, 1)


def es_form(table: pd.DataFrame, exponents: tuple[float, float, float, float] = ES_EXPONENTS, thr: float = 30.0,
            lam: float = 1.0, m1: Any = None, m2: Any = None) -> pd.Series:
    """The family around Eq. (10)-(11): ES with ``g = V**a S**b (T - T_M2 + thr)**c / FD**d``, normalised by
    M1's ``g``, averaged over R1 and mAP with weight ``lam``. ``ES_EXPONENTS`` gives
    :func:`reidlib.eval.efficiency_score`; other forms show that the reconstruction is pinned down. A model
    whose margin ``T - T_M2 + thr`` is <= 0 gets NaN (the form is undefined there). References as the paper:
    M1 the largest V, M2 the lowest R1, unless named."""
    a, b, c, d = exponents
    m1 = table["V"].idxmax() if m1 is None else m1
    m2 = table["R1"].idxmin() if m2 is None else m2
    scores = []
    for metric in ("R1", "mAP"):
        margin = (table[metric] - table.loc[m2, metric] + thr).where(lambda m: m > 0)
        g = table["V"] ** a * table["S"] ** b * margin**c / table["FD"] ** d
        scores.append(g / g.loc[m1])
    return ((scores[0] + lam * scores[1]) / (1 + lam)).rename("ES")


def _reproduced(es: pd.Series, printed: pd.Series) -> int:
    return int((es.round(2) == printed.reindex(es.index)).sum())


def neighbouring_forms(table: pd.DataFrame | None = None, printed: dict[str, float] | None = None) -> pd.DataFrame:
    """Each one-step change of the reconstruction (an exponent +-1, ``thr``, ``lam``, another M1 or M2) and
    how many of Table 1's eight ES values it still gives to two decimals, with its largest error; the first
    row is the reconstruction itself."""
    table = table_1() if table is None else table
    truth = pd.Series(TABLE_1_ES if printed is None else printed)
    forms: list[tuple[str, dict[str, Any]]] = [("the reconstruction", {})]
    for i, name in enumerate("abcd"):
        for step in (-1, 1):
            e = list(ES_EXPONENTS)
            e[i] += step
            if e[i] >= 0:
                forms.append((f"exponent {name} = {e[i]}", {"exponents": tuple(e)}))
    forms += [(f"thr = {t:g}", {"thr": t}) for t in (20, 29, 31, 40)]
    forms += [(f"lam = {v:g}", {"lam": v}) for v in (0.5, 2)]
    forms += [(f"M1 = {m} ({why})", {"m1": m}) for m, why in ((table["S"].idxmax(), "fastest"),
                                                              (table["FD"].idxmax(), "largest FD"))
              if m != table["V"].idxmax()]
    forms += [(f"M2 = {m} ({why})", {"m2": m}) for m, why in ((table["mAP"].idxmin(), "lowest mAP"),
                                                              (table["S"].idxmin(), "slowest"),
                                                              (table["V"].idxmin(), "smallest"))
              if m != table["R1"].idxmin()]
    rows = []
    for label, options in forms:
        es = es_form(table, **options)
        rows.append({"form": label, "reproduced (of 8)": _reproduced(es, truth),
                     "largest error": float((es - truth.reindex(es.index)).abs().max())})
    return pd.DataFrame(rows).set_index("form")


def forms_that_reproduce(table: pd.DataFrame | None = None, printed: dict[str, float] | None = None,
                         thrs: Any = None) -> tuple[int, list[tuple[Any, ...]]]:
    """A grid search of the family of :func:`es_form`: exponents ``a`` in 0..2, ``b`` in 0..3, ``c`` in 0..4,
    ``d`` in 0..2 and ``thr`` in ``thrs`` (default 10..50 by 0.5), M1/M2 by the paper's rule, ``lam = 1``.
    Returns the number of forms searched and those that give all eight printed values to two decimals."""
    table = table_1() if table is None else table
    truth = pd.Series(TABLE_1_ES if printed is None else printed).reindex(table.index).to_numpy()
    thrs = np.arange(10, 50.01, 0.5) if thrs is None else np.asarray(thrs, dtype=float)
    m1, m2 = table.index.get_loc(table["V"].idxmax()), table.index.get_loc(table["R1"].idxmin())
    cols = {k: table[k].to_numpy(float) for k in ("V", "S", "FD", "R1", "mAP")}
    found, searched = [], 0
    for a, b, c, d in np.ndindex(3, 4, 5, 3):
        base = cols["V"] ** a * cols["S"] ** b / cols["FD"] ** d
        for thr in thrs:
            searched += 1
            scores = []
            for metric in ("R1", "mAP"):
                margin = cols[metric] - cols[metric][m2] + thr
                g = base * np.where(margin > 0, margin, np.nan) ** c
                scores.append(g / g[m1])
            es = (scores[0] + scores[1]) / 2
            if np.all(np.round(es, 2) == truth):
                found.append((a, b, c, d, float(thr)))
    return searched, found


def es_sweep(table: pd.DataFrame, model: str, column: str, factors: Any) -> pd.DataFrame:
    """ES of ``model`` when its ``column`` (V, S, FD, R1 or mAP) is scaled by each of ``factors`` and the rest of
    the table is unchanged, with M1 and M2 held at the paper's references of the unscaled table (so that the
    curve is the formula's own dependence on that input)."""
    if column not in ("V", "S", "FD", "R1", "mAP"):
        raise ValueError(f"es_sweep: column must be one of V, S, FD, R1, mAP, got {column!r}")
    if model not in table.index:
        raise ValueError(f"es_sweep: model {model!r} is not a row of the table ({list(table.index)})")
    m1, m2 = table["V"].idxmax(), table["R1"].idxmin()
    if model in (m1, m2):
        raise ValueError(f"es_sweep: {model!r} is a reference model (M1 {m1!r}, M2 {m2!r}); sweep another row")
    rows = []
    for f in np.asarray(factors, dtype=float):
        t = table.astype(float)
        t.loc[model, column] = table.loc[model, column] * f
        rows.append({"factor": f, column: t.loc[model, column], "ES": es_form(t, m1=m1, m2=m2)[model]})
    return pd.DataFrame(rows)


#: How the branches may leave the shared trunk: every branch owns ``layer4`` (the chapter's choice), or, as
#: MGN, ``layer3[1:]`` and ``layer4``.
SPLITS = ("layer4", "layer3.1")


def analytic_test_params(config: HENetConfig, split: str = "layer4", classifiers: bool = False,
                         num_classes: int = 751) -> int:
    """Parameters of HENet ``config`` on torchvision's ResNet-50, counted from torchvision's own modules: the
    shared trunk, one copy per branch of what ``split`` gives each branch, a 1x1 conv (no bias) + BN per feature,
    and (``classifiers``) a ``num_classes``-way linear layer with bias per feature. The decoder is training-only
    and never counted."""
    import torchvision

    if split not in SPLITS:
        raise ValueError(f"analytic_test_params: split must be one of {list(SPLITS)}, got {split!r}")
    net = torchvision.models.resnet50()

    def count(*modules: Any) -> int:
        return sum(p.numel() for m in modules for p in m.parameters())

    own = count(net.layer4) + (count(*list(net.layer3)[1:]) if split == "layer3.1" else 0)
    dims = config.features.values()
    total = count(net) - count(net.fc) + (len(config.branch_names) - 1) * own + sum(2048 * d + 2 * d for d in dims)
    return total + (sum(d * num_classes + num_classes for d in dims) if classifiers else 0)


def size_table() -> pd.DataFrame:
    """Table 1's HENet sizes V (MB) beside the fp32 MiB of Base and the full model under each split, counted
    with and without the classifiers: which counting the printed sizes support."""
    printed = table_1()["V"]
    rows = []
    for variant in ("base", "base+losses"):
        c = VARIANTS[variant]
        row = {"model": c.label, "Table 1 V": float(printed[c.label])}
        for split in SPLITS:
            for cls in (False, True):
                n = analytic_test_params(c, split, classifiers=cls)
                row[f"split {split}{' + classifiers' if cls else ''}"] = n * 4 / 2**20
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


# ---- ES for every model the book trains ----------------------------------------------------------------------
#: The chapters whose records the table reads (a chapter without records adds no row).
BOOK_CHAPTERS = ("baseline", "esnet", "hashing", "feature_fusion", "reid_done_right", "henet")


def book_settings(results: Any = None, start: str = "efficientnet_lite0-imagenet",
                  dataset: str = "synthped") -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The records of every chapter on ``dataset`` whose protocol starts with ``start``, grouped by
    ``(chapter, setting)``, a setting being a run name without its seed."""
    import re

    from .results import load_records, protocol_of

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for chapter in BOOK_CHAPTERS:
        for r in load_records(chapter, results):
            if r["dataset"] == dataset and protocol_of(r).startswith(start + " "):
                groups.setdefault((chapter, re.sub(r"_s\d+$", "", r["run_name"])), []).append(r)
    return groups


def architecture_of(record: Mapping[str, Any]) -> tuple[str, Any, int]:
    """``(key, TrainConfig, num_classes)`` of a record's network: runs with equal keys have the same
    architecture at the same input size (and so the same FD, V and S)."""
    from reidlib.engine.config import TrainConfig

    c = record["config"]
    key = repr((c["model"], sorted(c["model_options"].items()), c["backbone"], c.get("last_stride"),
                c["height"], c["width"], record["num_classes"]))
    values = {k: v for k, v in c.items() if k != "data_root"}
    return key, TrainConfig.from_dict({**values, "milestones_past_end": True}), int(record["num_classes"])


def build_architecture(cfg: Any, num_classes: int) -> Any:
    """An untrained copy (seed 0, no ImageNet fetch) of a run's network, for measuring it."""
    import torch

    from reidlib.engine.build import build_run_model

    torch.manual_seed(0)
    return build_run_model(cfg, num_classes, pretrained=False)


def book_efficiency(results: Any = None, start: str = "efficientnet_lite0-imagenet", dataset: str = "synthped",
                    batch: int = 16, iters: int = 5, threads: int = 1) -> pd.DataFrame:
    """Table 1's columns for the models the book has trained in one regime, and their Efficiency Score.

    One row per setting (:func:`book_settings`: every chapter's records on ``dataset`` whose protocol starts
    with ``start``, by default the CPU regime, ImageNet-initialised EfficientNet-Lite0): the mean R1 and mAP
    (%) over its seeds, and FD, V (MiB of the fp32 parameters the eval forward runs) and S (images/s, eval
    forward, batch ``batch``, ``threads`` CPU threads, ``iters`` timed batches) measured here, now, on a
    rebuilt untrained copy of the architecture (weights do not change these), once per architecture. ES is
    Eq. (10)-(11) within this set (its M1 and M2 in the frame's ``attrs``).
    """
    import torch

    from reidlib.eval import efficiency, efficiency_score

    measured: dict[str, dict[str, Any]] = {}
    rows = []
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for (chapter, setting), recs in book_settings(results, start, dataset).items():
            key, cfg, num_classes = architecture_of(recs[0])
            if key not in measured:
                measured[key] = efficiency(build_architecture(cfg, num_classes), cfg.height, cfg.width,
                                           batch=batch, iters=iters, warmup=1, device="cpu")
            e = measured[key]
            regime = f"{cfg.backbone}-imagenet_{cfg.height}x{cfg.width}_e{cfg.epochs}"
            short = setting.replace(regime, "").replace("__", "_").strip("_") or "default"
            rows.append({"model": f"{chapter}: {short}", "setting": setting, "chapter": chapter,
                         "variant": recs[0].get("variant"), "seeds": len(recs),
                         "R1": 100 * float(np.mean([x["final"]["rank1"] for x in recs])),
                         "mAP": 100 * float(np.mean([x["final"]["mAP"] for x in recs])), "FD": e["feature_dim"],
                         "V": e["test_size_mb"], "S": e["images_per_s"], "image size": f"{cfg.height}x{cfg.width}"})
    finally:
        torch.set_num_threads(old_threads)
    frame = pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame(
        columns=["setting", "chapter", "variant", "seeds", "R1", "mAP", "FD", "V", "S", "image size", "ES"])
    if len(frame) >= 2:
        es = efficiency_score(frame[["R1", "mAP", "FD", "V", "S"]])
        frame["ES"] = es
        frame.attrs.update(es.attrs)
    return frame


# ---- the results page -----------------------------------------------------------------------------------------
#: Each table's reference row for the "difference to Base" columns (paper's and ours).
TABLE_BASE = {1: "base", 2: "p1", 3: "g1", 4: "ce"}


def records_frame(results: Any = None) -> pd.DataFrame:
    """The chapter's runs, one row each (:func:`reidlib.papers.results.runs_table`), the variant under its
    canonical name (:data:`CANONICAL`; the name it ran under in ``row``), and whether its model differs from
    the named row (``overrides``: the Fig. 4 sweep's erasing settings, for one); and one more row per occluded
    evaluation (:func:`final_evaluations`), variant ``<variant>:occluded@<re|rpe><area>``."""
    from .results import load_records, runs_table, with_evaluations

    def extra(r: Mapping[str, Any]) -> dict[str, Any]:
        named = VARIANTS.get(r.get("variant"))
        opts = HENetConfig(**r["config"]["model_options"])
        return {"row": r.get("variant"), "overrides": named is None or replace(opts, label="") != replace(named, label=""),
                "rpe": opts.rpe, "rpe n": opts.rpe_points, "RE": opts.random_erasing}

    frame = runs_table(with_evaluations(load_records(RECIPE.chapter, results)), extra=extra)
    if len(frame):
        names = frame["variant"].str.split(":", n=1)
        frame["variant"] = [CANONICAL.get(n[0], n[0]) + (f":{n[1]}" if len(n) > 1 else "") for n in names]
    return frame


def paper_table(table: int) -> tuple[dict[str, str], pd.DataFrame]:
    """``(rows, paper)`` for :func:`reidlib.papers.results.paper_beside_ours`: each printed row of Table
    ``table`` (its label) -> our canonical variant, and the printed Market-1501 ``mAP`` and ``R1`` by label."""
    if table not in (1, 2, 3, 4):
        raise ValueError(f"paper_table: table must be 1, 2, 3 or 4, got {table!r}")
    variants = [v for v in VARIANTS if TABLE_OF[v] == table]
    if table == 1:
        printed = table_1().loc[[VARIANTS[v].label for v in variants], ["mAP", "R1"]]
    else:
        printed = pd.DataFrame([{k: TABLE_RESULTS[v][k] for k in ("mAP", "R1")} for v in variants],
                               index=[VARIANTS[v].label for v in variants])
    return {VARIANTS[v].label: CANONICAL.get(v, v) for v in variants}, printed
