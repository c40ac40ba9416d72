"""ES-Net (Shen et al., "ES-Net: Erasing Salient Parts to Learn More in Re-Identification", IEEE TIP
2021) as the house runs it: the rows of its ablation tables as variants, its training presets, the
map from table rows to variants, its claims, ``train(**parameters)``, the demo model the chapter's
method pages use, and the records frame its results page reads.

The network is ``build_model("esnet", N, **ESNetConfig fields)`` (:mod:`reidlib.models.esnet`); a
variant is an :class:`~reidlib.models.esnet.ESNetConfig`, and a run record stores every field of the
one that trained (``record["config"]["model_options"]``). The losses are
``build_criterion("reid", N, label_smoothing=0, triplet_weight=1 or 0)`` (Eq. (1): ID + batch-hard
triplet per branch). Augmentation: flip and normalisation only (Sec. IV-A-2; no pad-and-crop),
plus Zhong et al.'s random erasing for the ``base+random-erasing`` row. Evaluation: cosine distance
for every variant (the chapter's one metric; a two-branch descriptor is the concatenation of the
two L2-normalised branch features).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

import torch

from reidlib.engine.schedules import WarmupMultiStep, register_schedule
from reidlib.engine.trainer import Hook
from reidlib.models.esnet import ESNet, ESNetConfig
from reidlib.nn import Metric

from ._recipe import Demo, Recipe, imagenet_start, named_variant, trained_once
from .baseline import CPU_PROTOCOL, PAPER_TRIPLET

__all__ = ["VARIANTS", "PRESETS", "TrainingPreset", "TABLE_ROWS", "ROW_ALIASES", "CLAIMS", "RECIPE", "Demo",
           "ErasedLossProbe", "PPoolingLog", "build", "config", "esnet_schedule", "load_demo", "model_config",
           "overridden_fields", "records_frame", "run_name", "sweep_frame", "train", "variant_table", "SWEEP_CLAIMS"]

EVAL_METRIC = "cosine"


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


def variant_table() -> Any:
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
    triplet_metric: str = "euclidean"
    ratio: float = 0.2
    prob: float = 0.5
    saliency_layer: str = "layer4"
    flip_train: bool = True
    flip_test: bool = True
    notes: str = ""

    def schedule_options(self) -> dict[str, Any]:
        """Options of ``WarmupMultiStep`` (``build_schedule("warmup_multistep", lr, **...)``): the paper's
        warm-up "from 0" with ``warmup_from_zero_step`` (epoch 0 trains at lr / 10, never at 0)."""
        return {"milestones": self.milestones, "gamma": self.gamma, "warmup_epochs": self.warmup_epochs,
                "warmup_start_lr": self.warmup_start_lr, "warmup_from_zero_step": True}

    def config_fields(self) -> dict[str, Any]:
        """The :class:`~reidlib.engine.config.TrainConfig` fields this preset sets (its own schedule in full)."""
        return {"height": self.height, "width": self.width, "epochs": self.epochs, "P": self.p, "K": self.k,
                "optimizer": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay,
                "schedule": "warmup_multistep", "schedule_options": self.schedule_options(),
                "flip_train": self.flip_train, "flip_test": self.flip_test}


PRESETS: dict[str, TrainingPreset] = {
    "person": TrainingPreset(384, 128, epochs=120, milestones=(40, 70),
                             notes="Adam, wd 5e-4, warm-up 0 -> 3.5e-4 over 10 epochs, x0.1 at 40 and 70"),
    "vehicle": TrainingPreset(256, 256, epochs=60, milestones=(20, 40),
                              notes="as person, 256x256, 60 epochs, x0.1 at 20 and 40"),
}




@register_schedule("esnet")
def esnet_schedule(base_lr: float = 3.5e-4) -> WarmupMultiStep:
    """ES-Net (Sec. IV-A): "linear warm-up in the first 10 epochs from 0 to 3.5e-4", constant to
    epoch 40, 3.5e-5 from 40, 3.5e-6 from 70, 120 epochs. Epoch e < 10 trains at
    ``base * (e + 1) / 10`` (our reading of "from 0": no epoch at rate 0)."""
    return WarmupMultiStep(base_lr, milestones=(40, 70), gamma=0.1, warmup_epochs=10,
                           warmup_start_lr=0.0, warmup_from_zero_step=True)


# ---- the paper's tables: rows -> variants (results page) ------------------------------------------
TABLE_ROWS: dict[int, dict[str, str | None]] = {
    2: {"Base": "base", "AIB": "aib", "ESB(R=10%, P=0.3)": "esb", "ESB(R=20%, P=0.5)": "esb-r20-p50",
        "AIB+ESB(R=10%, P=0.3)": "aib+esb-r10-p30", "AIB+ESB(R=20%, P=0.5)": "esnet"},
    3: {"Base": "base", "Base+BESM": "base+besm", "Base+BESM+P-pooling": "base+besm+ppool",
        "Base+BESM+P-pooling+Triplet Loss (ESB)": "esb"},
    4: {"Base+BESM+GAP": "base+besm", "Base+BESM+GMP": "base+besm+gmp", "Base+BESM+P-pooling": "base+besm+ppool",
        "ES-Net": "esnet"},
    5: {"Feature Dropping Branch [4]": None, "Base+Random Erasing [5]": "base+random-erasing",
        "Base+Grad-CAM Erasing": "base+gradcam-erasing", "Base+Feature Dropping Branch [4]": "base+bdb",
        "Base+BESM": "base+besm", "ES-Net": "esnet"},
    6: {"ES-Net (origin: GAP in AIB)": "esnet", "ES-Net (P-pooling in AIB and ESB)": "esnet-ppool-both"},
}
TABLE_TITLES = {2: "AIB and ESB", 3: "components of ESB", 4: "pooling after BESM", 5: "other erasing methods",
                6: "P-pooling in both branches"}
# two names of one network: Table III's last row is Table II's ESB(R=10%, P=0.3)
ROW_ALIASES = {"esb": ("esb", "base+besm+ppool+triplet")}

CLAIMS = [
    ("BESM helps the baseline (Table III)", "base+besm", "base"),
    ("P-pooling helps after BESM (Tables III, IV)", "base+besm+ppool", "base+besm"),
    ("P-pooling beats GMP after BESM (Table IV)", "base+besm+ppool", "base+besm+gmp"),
    ("the triplet loss helps ESB (Table III)", "esb", "base+besm+ppool"),
    ("ESB beats the baseline (Table II)", "esb", "base"),
    ("AIB+ESB beats ESB alone (Table II)", "esnet", "esb"),
    ("ES-Net beats the baseline (Table I)", "esnet", "base"),
    ("BESM beats random erasing (Table V)", "base+besm", "base+random-erasing"),
    ("BESM beats Grad-CAM erasing (Table V)", "base+besm", "base+gradcam-erasing"),
    ("BESM beats the feature dropping branch (Table V)", "base+besm", "base+bdb"),
]


# ---- variants -> models ---------------------------------------------------------------------------
_OVERRIDES = {"erasing_ratio": "ratio", "erasing_prob": "prob", "saliency_layer": "saliency_layer",
              "esb_pooling": "esb_pooling", "aib_pooling": "aib_pooling", "descriptor": "descriptor"}


def model_config(variant: str = "esnet", **overrides: Any) -> ESNetConfig:
    """The :class:`ESNetConfig` of a named row with some fields changed (validated)."""
    return named_variant(VARIANTS, variant, overrides, "ES-Net")


def build(variant: str = "esnet", num_classes: int = 751, **kwargs: Any) -> ESNet:
    """The ES-Net variant ``variant`` (a row name) for ``num_classes`` ids; ``kwargs``: backbone arguments
    and :class:`ESNetConfig` fields to override."""
    fields = {f.name for f in dataclasses.fields(ESNetConfig)}
    over = {k: v for k, v in kwargs.items() if k in fields}
    rest = {k: v for k, v in kwargs.items() if k not in fields}
    return ESNet(num_classes, model_config(variant, **over), **rest)


def criterion_options(model: ESNetConfig, label_smoothing: float = 0.0, metric: str = "euclidean",
                      margin: float = 0.3) -> dict[str, Any]:
    """Eq. (1) for a variant: ID loss (no label smoothing: the paper takes only last stride 1 and the BN
    layer from BoT) plus, where the variant has it, the batch-hard triplet loss: the paper's Euclidean with
    margin 0.3 by default; the CPU regime's recipe passes its cosine form (``metric``, ``margin``)."""
    return {"label_smoothing": label_smoothing, "margin": margin, "metric": metric,
            "triplet_weight": 1.0 if model.triplet else 0.0}


def run_name(variant: str, model: ESNetConfig, backbone: str, height: int, width: int, epochs: int, seed: int,
             pretrained: bool = False, metric: str = "euclidean", margin: float = 0.3) -> str:
    """``esnet_ratio0.2_prob0.5_layer4_cosine_m0.1_efficientnet_lite0-imagenet_128x64_e6_s0``: the erasing
    ratio and probability are spelt out (``P`` is the batch's identity count); a triplet other than the
    paper's (Euclidean, margin 0.3) is named where the variant has one; ``-imagenet`` marks ImageNet weights."""
    tag = (f"_ratio{model.ratio:g}_prob{model.prob:g}_{model.saliency_layer}" if model.erases_by_saliency else "")
    if model.triplet and {"triplet_metric": metric, "margin": margin} != PAPER_TRIPLET:
        tag += f"_{metric}_m{margin:g}"
    weights = "-imagenet" if pretrained else ""
    return f"{variant}{tag}_{backbone}{weights}_{height}x{width}_e{epochs}_s{seed}"


# ---- training -------------------------------------------------------------------------------------
RECIPE = Recipe(
    chapter="esnet",
    notebook="book/esnet/train.ipynb",
    defaults={
        "dataset": "synthped", "data_root": None, "synthped_preset": "default", "dataset_options": {},
        "variant": "esnet", "erasing_ratio": None, "erasing_prob": None, "saliency_layer": None, "esb_pooling": None,
        "aib_pooling": None, "descriptor": None, "probe_erased_loss": False, "probe_every": 5,
        # the CPU regime every chapter shares (reidlib.papers.baseline.CPU_PROTOCOL, picked on the baseline
        # chapter's page "What pre-training changes"); the first release's runs used ResNet-18 from scratch
        "backbone": CPU_PROTOCOL["backbone"], "pretrained": CPU_PROTOCOL["pretrained"], "weights_path": None,
        "paper_preset": None, "height": CPU_PROTOCOL["height"], "width": CPU_PROTOCOL["width"], "P": 16, "K": 4,
        "epochs": CPU_PROTOCOL["epochs"], "lr": 3.5e-4, "weight_decay": 5e-4, "warmup_epochs": CPU_PROTOCOL["warmup_epochs"],
        "warmup_start_factor": 0.1, "milestones": CPU_PROTOCOL["milestones"], "label_smoothing": 0.0,
        # the regime's triplet (cosine, margin 0.1; the baseline chapter's page "The triplet question");
        # paper_preset= trains the paper's, Euclidean with margin 0.3
        "triplet_metric": CPU_PROTOCOL["triplet_metric"], "margin": CPU_PROTOCOL["margin"],
        "max_steps_per_epoch": None, "eval_every": CPU_PROTOCOL["eval_every"], "device": "auto", "amp": True, "num_threads": None,
        "num_workers": 1, "seed": 0, "output_dir": "results", "run_name": None, "resume": False, "progress": True,
    },
    types={"data_root": str, "erasing_ratio": float, "erasing_prob": float, "saliency_layer": str, "esb_pooling": str,
           "aib_pooling": str, "descriptor": str, "weights_path": str, "paper_preset": str, "max_steps_per_epoch": int,
           "num_threads": int, "run_name": str},
    choices={"triplet_metric": get_args(Metric)},
)


class PPoolingLog(Hook):
    """Logs the learned P-pooling exponents (``<branch>/ppool_l``) after every epoch."""

    def on_epoch_end(self, trainer: Any, epoch: int, log: dict[str, Any]) -> None:
        log.update(trainer.module.training_stats())


class ErasedLossProbe(Hook):
    """The paper's Fig. 3: every ``every`` steps, the loss of the current model on the batch with its
    salient parts erased (BESM with P = 1), measured without training on it; the epoch's mean goes to
    the record as ``erased/<term>``. The loss is the run's own criterion (``trainer.criterion``)."""

    def __init__(self, every: int = 5) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"probe_every must be an integer >= 1, got {every!r}")
        self.every, self.probes = every, []

    def on_forward(self, trainer: Any, batch: Any, outputs: Any) -> None:
        if trainer.step % self.every == 0:
            self.probes.append(trainer.module.erased_batch_loss(batch.images, batch.pids, trainer.criterion))

    def on_epoch_end(self, trainer: Any, epoch: int, log: dict[str, Any]) -> None:
        if self.probes:
            log.update({k: sum(p[k] for p in self.probes) / len(self.probes) for k in self.probes[0]})
            self.probes.clear()


def config(**parameters: Any):
    """The :class:`~reidlib.engine.config.TrainConfig` of the notebook's ``parameters``: the variant's
    resolved model options, its criterion, its preset (``paper_preset``) or the CPU defaults."""
    from reidlib.engine.config import TrainConfig

    p = RECIPE.parameters(parameters)
    model = model_config(p["variant"], **{_OVERRIDES[k]: p[k] for k in _OVERRIDES if p[k] is not None})
    sizes = {"optimizer": "adam", **{k: p[k] for k in ("height", "width", "P", "K", "epochs", "lr", "weight_decay")}}
    schedule = {"schedule": "warmup_multistep", "warmup_epochs": p["warmup_epochs"],
                "warmup_start_factor": p["warmup_start_factor"], "milestones": p["milestones"]}
    if p["paper_preset"] is not None:
        if p["paper_preset"] not in PRESETS:
            raise ValueError(f"paper_preset must be None or one of {list(PRESETS)}, got {p['paper_preset']!r}")
        pre = PRESETS[p["paper_preset"]]
        sizes, schedule = pre.config_fields(), {"warmup_epochs": pre.warmup_epochs, "milestones": pre.milestones,
                                                "warmup_start_factor": pre.warmup_start_lr / pre.lr}
        p["triplet_metric"], p["margin"] = pre.triplet_metric, pre.margin
    name = p["run_name"] or run_name(p["variant"], model, p["backbone"], sizes["height"], sizes["width"],
                                     sizes["epochs"], p["seed"], pretrained=imagenet_start(p),
                                     metric=p["triplet_metric"], margin=p["margin"])
    return TrainConfig(
        dataset=p["dataset"], data_root=p["data_root"], synthped_preset=p["synthped_preset"],
        dataset_options=p["dataset_options"], random_erasing=model.data_random_erasing, padding=0,
        model="esnet", model_options=asdict(model), variant=p["variant"], backbone=p["backbone"],
        pretrained=p["pretrained"], weights_path=p["weights_path"], criterion="reid",
        criterion_options=criterion_options(model, p["label_smoothing"], p["triplet_metric"], p["margin"]),
        max_steps_per_epoch=p["max_steps_per_epoch"], device=p["device"], amp=p["amp"],
        num_threads=p["num_threads"], num_workers=p["num_workers"], seed=p["seed"], eval_every=p["eval_every"],
        eval_metric=EVAL_METRIC, chapter=RECIPE.chapter, output_dir=p["output_dir"], run_name=name,
        resume=p["resume"], progress=p["progress"], **{**sizes, **schedule})


def train(**parameters: Any) -> dict[str, Any]:
    """Train an ES-Net variant with the notebook's ``parameters`` and write its run record."""
    from reidlib.engine.run import run_training

    cfg = config(**parameters)
    p = RECIPE.parameters(parameters)
    hooks: list[Hook] = [PPoolingLog()]
    if p["probe_erased_loss"]:
        hooks.append(ErasedLossProbe(p["probe_every"]))
    return run_training(cfg, notebook=RECIPE.notebook, parameters=p, hooks=hooks)


# ---- the results page -----------------------------------------------------------------------------
def overridden_fields(variant: str | None, model_options: Mapping[str, Any]) -> str:
    """The :class:`ESNetConfig` fields in which ``model_options`` (a record's) differ from the named row
    ``variant``, comma-separated and sorted (``""``: the row itself; ``"variant"``: no such row)."""
    if variant not in VARIANTS:
        return "variant"
    named = asdict(VARIANTS[variant])
    return ", ".join(sorted(k for k in named.keys() | model_options.keys() if named.get(k) != model_options.get(k)))


def records_frame(results: Any = None):
    """The chapter's runs, one row each, with the resolved erasing settings read from each record's
    ``model_options`` (``R``, ``P (erasing)`` only where the variant erases by saliency) and whether the
    model differs from its named row (``overrides``) and in which fields (``overridden``, :func:`overridden_fields`)."""
    from .results import load_records, runs_table

    def extra(r: Mapping[str, Any]) -> dict[str, Any]:
        opts = r["config"]["model_options"]
        saliency = opts["erasing"] in ("besm", "gradcam")
        overridden = overridden_fields(r.get("variant"), opts)
        return {"R": opts["ratio"] if saliency else None, "P (erasing)": opts["prob"] if saliency else None,
                "metric": r["config"]["eval_metric"], "overrides": overridden != "", "overridden": overridden}

    return runs_table(load_records(RECIPE.chapter, results), extra=extra)


#: Fig. 4's finding as claims: the paper's best erasing ratio R (10 % for ESB alone, 20 % for AIB+ESB)
#: beats each other R of the sweep, on runs labelled by :func:`sweep_frame`.
SWEEP_CLAIMS = [
    ("ESB: R = 10 % beats R = 20 % (Fig. 4)", "esb@R10", "esb@R20"),
    ("ESB: R = 10 % beats R = 30 % (Fig. 4)", "esb@R10", "esb@R30"),
    ("AIB+ESB: R = 20 % beats R = 10 % (Fig. 4)", "esnet@R20", "esnet@R10"),
    ("AIB+ESB: R = 20 % beats R = 30 % (Fig. 4)", "esnet@R20", "esnet@R30"),
]
SWEEP_VARIANTS = ("esb", "esnet")


def sweep_frame(runs: Any) -> Any:
    """Fig. 4's runs out of :func:`records_frame`'s ``runs``: those of ``esb`` and ``esnet`` whose model
    differs from the named row in the erasing ratio at most (the row itself, and the regime's
    ``esnet_sweep`` runs with ``erasing_ratio`` set), with ``variant`` relabelled ``"<variant>@R<percent>"``
    (``esb@R10``) so that :data:`SWEEP_CLAIMS` and :func:`reidlib.papers.results.judge_claims` compare the
    ratios; ``branches`` keeps the row's name (``esb``, ``esnet``)."""
    if runs.empty:
        return runs.assign(branches=[])
    keep = runs.variant.isin(SWEEP_VARIANTS) & runs.overridden.isin(["", "ratio"]) & runs.R.notna()
    sweep = runs[keep].copy()
    sweep["branches"] = sweep.variant
    sweep["variant"] = [f"{v}@R{round(100 * r):d}" for v, r in zip(sweep.variant, sweep.R)]
    return sweep


# ---- the demo model of the method pages -----------------------------------------------------------
DEMO_HEIGHT, DEMO_WIDTH = 128, 64
DEMO_VERSION = 2  # 2: trained through the recipe's criterion, without pad-and-crop


def _chapter_checkpoint(variant: str) -> tuple[Path, str] | None:
    """(checkpoint, synthped preset) of the newest finished chapter run of the named row ``variant``
    exactly (its resolved model options equal the row's), ResNet-18 at 128x64 on synthped."""
    from reidlib.engine.features import _resolve_checkpoint

    from .results import load_records

    found = []
    for rec in load_records(RECIPE.chapter):
        c = rec["config"]
        if (rec.get("variant") == variant and c["model_options"] == asdict(VARIANTS[variant])
                and c["dataset"] == "synthped" and c["backbone"] == "resnet18"
                and (c["height"], c["width"]) == (DEMO_HEIGHT, DEMO_WIDTH) and rec.get("checkpoint")):
            try:
                found.append((rec["date"], _resolve_checkpoint(rec["checkpoint"], Path(rec["path"]), rec["path"]),
                              c["synthped_preset"]))
            except FileNotFoundError:
                continue
    return max(found)[1:] if found else None


def _train_demo(model: ESNet, ds: Any, steps: int, seed: int) -> None:
    from reidlib.data import ImageDataset
    from reidlib.data.samplers import PKSampler
    from reidlib.data.transforms import build_transforms
    from reidlib.engine.trainer import Trainer
    from reidlib.losses import build_criterion

    train_tf = build_transforms(DEMO_HEIGHT, DEMO_WIDTH, train=True, padding=0,
                                random_erasing=model.config.data_random_erasing)
    sampler = PKSampler([r.pid for r in ds.train], 8, 4, seed=seed)
    criterion = build_criterion("reid", ds.num_train_pids, **criterion_options(model.config))
    Trainer(model, criterion, torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4),
            ImageDataset(ds.train, train_tf), sampler, epochs=-(-steps // len(sampler)), seed=seed,
            progress=False).fit()


def load_demo(variant: str = "esnet", *, steps: int = 48, seed: int = 0) -> Demo:
    """The chapter's trained model of ``variant`` where ``make results`` left its checkpoint, otherwise
    a small model trained for ``steps`` steps on synthped ``tiny`` (about a minute on one core), cached
    under ``reidlib.paths.cache_dir("esnet-demo")`` so later executions of the pages only load it."""
    from reidlib.data import build_dataset, synthped
    from reidlib.data.transforms import build_transforms
    from reidlib.engine.checkpoint import CheckpointMismatchError, load_checkpoint, load_model_state
    from reidlib.paths import cache_dir

    test_tf = build_transforms(DEMO_HEIGHT, DEMO_WIDTH, train=False)
    run = _chapter_checkpoint(variant)
    if run is not None:
        ds = build_dataset("synthped", synthped.ensure(run[1]))
        torch.manual_seed(seed)
        model = build(variant, ds.num_train_pids, backbone="resnet18")
        try:
            load_model_state(model, load_checkpoint(run[0])["model"], source=run[0])
            return Demo(model.eval(), ds, test_tf, f"chapter checkpoint {run[0].name}", variant)
        except (CheckpointMismatchError, KeyError):  # an older architecture: fall back to the demo model
            pass
    ds = build_dataset("synthped", synthped.ensure("tiny"))
    torch.manual_seed(seed)
    model = build(variant, ds.num_train_pids, backbone="resnet18")
    cached = cache_dir("esnet-demo") / f"{variant}-tiny-s{seed}-{steps}steps-v{DEMO_VERSION}.pt"
    trained_once(model, cached, lambda: _train_demo(model, ds, steps, seed))
    return Demo(model.eval(), ds, test_tf, f"{steps} training steps on synthped 'tiny' (cached at {cached.name})",
                variant)
