"""The hashing paper (Jin et al. 2021): the named variants of Tables 6-8, Eq. (14)'s losses, the attribute hook,
and ``train(**parameters)``.

Every row is one :class:`~reidlib.models.hashing.HashingConfig` of the one network
(``build_model("ssr_hashing", N, **asdict(config))``), named in :data:`VARIANTS`:

* ``full``: baseline(SSR)+AAB, the paper's model (SSR with BN, AAB, 30 attribute bits, 2048 ID bits);
* Table 6: ``<relaxation>`` and ``<relaxation>+bn`` for sigmoid, hardsigmoid, tanh, hardtanh, DSH and SSR (the
  SSR runs give both the teacher row and the student row); every row inside the AAB + attribute framework,
  as the spec infers from the student-with-BN row equalling the full model;
* Table 7: ``mode-a`` .. ``mode-d``: attribute learning x AAB (``mode-d`` is ``full``);
* code lengths: ``full-512``, ``full-256``, ``full-128`` (Tables 1-3's internal rows and Table 8's shorter codes);
* ``baseline-sigmoid``: Table 1's baseline(Sigmoid), one branch, no BN, no AAB, no attributes.

Eq. (14)'s weights as the criterion's (it sums over branches, Eq. (14) averages): ID and triplet ``1/n`` with
``n`` the vectors (14 with a teacher, 7 without), SSR ``alpha / 7``, attributes ``beta / g`` with ``g`` the global
vectors (2 or 1), DSH's regulariser ``0.01 / n`` (its weight averaged like the other per-vector terms).
``alpha`` defaults to 0.3 with BN and 0.7 without (Sec. 7.4), ``beta`` to 0.3 (Sec. 7.5.1).

Evaluation: the student's ±1 code, Euclidean distance (the Hamming ranking, ties by gallery index), **no
flip averaging** (a choice: the mean of two ±1 codes is not a code; the paper does not flip). The
:class:`HashingEvaluation` hook adds to the final metrics the teacher's code (``teacher``), the student's
real-valued vector (``float``), the attribute accuracy on the test images (``attributes``) and Fig. 7's AFR
sweep (``afr``: mAP and rank-1 against w, :func:`afr_curve`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any, get_args

import numpy as np
import pandas as pd
import torch

from reidlib.engine.trainer import Hook
from reidlib.losses import register_term
from reidlib.models.hashing import HashingConfig
from reidlib.models.quantize import DSH_WEIGHT, dsh_regulariser
from reidlib.nn import Metric

from ._recipe import Recipe, imagenet_start, named_variant
from .baseline import CPU_PROTOCOL, PART_IMAGE_SIZE

__all__ = ["afr_frame", "ALPHA_BN", "ALPHA_NO_BN", "BETA", "CANONICAL", "CLAIMS", "HashingEvaluation", "PAPER_PRESET", "RECIPE",
           "SAME_NETWORK", "TABLE_OF", "TRIPLET_MARGIN", "VARIANTS", "afr_curve", "afr_windows", "config",
           "criterion_options", "model_config", "paper_rows", "records_frame", "run_name", "teacher_view", "train", "TABLE_BASE",
           "majority_attribute_rate"]

ALPHA_BN, ALPHA_NO_BN, BETA = 0.3, 0.7, 0.3
#: The paper gives no triplet margin: 0.3, the common value with BN features (spec 1.7), for the paper preset.
TRIPLET_MARGIN = 0.3
_RELAXATIONS = ("sigmoid", "hardsigmoid", "tanh", "hardtanh", "dsh", "ssr")
_LABELS = {"sigmoid": "Sigmoid", "hardsigmoid": "HardSigmoid", "tanh": "Tanh", "hardtanh": "Hardtanh", "dsh": "DSH",
           "ssr": "SSR"}

_FULL = HashingConfig("baseline(SSR)+AAB")
_TABLES: dict[str, dict[str, HashingConfig]] = {
    "model": {"full": _FULL, "baseline-sigmoid": HashingConfig("baseline(Sigmoid)", relaxation="sigmoid", bn=False,
                                                               aab=False, attributes=0)},
    "6": {f"{r}{'+bn' if bn else ''}": HashingConfig(f"{_LABELS[r]}{' + BN' if bn else ''}", relaxation=r, bn=bn)
          for bn in (False, True) for r in _RELAXATIONS},
    "7": {f"mode-{m}": HashingConfig(f"mode {m}", aab=aab, attributes=30 if attr else 0)
          for m, attr, aab in (("a", False, False), ("b", False, True), ("c", True, False), ("d", True, True))},
    "bits": {f"full-{b}": replace(_FULL, label=f"baseline(SSR)+AAB, {b} bits", bits=b) for b in (512, 256, 128)},
}
#: Every named row.
VARIANTS: dict[str, HashingConfig] = {v: c for rows in _TABLES.values() for v, c in rows.items()}
#: The table each variant is a row of (``"model"``, ``"6"``, ``"7"``, ``"bits"``).
TABLE_OF: dict[str, str] = {v: t for t, rows in _TABLES.items() for v in rows}
#: Rows that are one network trained one way: the full model is Table 6's SSR + BN and Table 7's mode d.
SAME_NETWORK: list[tuple[str, str]] = [("full", "ssr+bn"), ("full", "mode-d")]
CANONICAL: dict[str, str] = {b: a for a, b in SAME_NETWORK}

#: The paper's claims, each "A beats B" (canonical names; ``:teacher`` reads a run's teacher code), judged on
#: our runs by the results page.
CLAIMS: list[tuple[str, str, str]] = [
    ("the SSR student beats its teacher (Table 6, with BN)", "full", "full:teacher"),
    ("SSR beats Tanh (Table 6, with BN)", "full", "tanh+bn"),
    ("SSR beats DSH (Table 6, with BN)", "full", "dsh+bn"),
    ("BN hurts Sigmoid (Table 6)", "sigmoid", "sigmoid+bn"),
    ("AAB helps attribute learning (Table 7, d > c)", "full", "mode-c"),
    ("attribute learning alone hurts (Table 7, a > c)", "mode-a", "mode-c"),
    ("2048 bits beat 128 (Table 1)", "full", "full-128"),
]


def model_config(variant: str = "full", **overrides: Any) -> HashingConfig:
    """The :class:`HashingConfig` of a named row with some fields changed (validated by the config)."""
    return named_variant(VARIANTS, variant, overrides, "hashing")


@register_term("dsh")
def dsh_term(num_classes: int) -> Any:
    """DSH's regulariser on a branch's relaxed vector ``feat`` (weight 1 here; the criterion's weight is DSH's)."""
    return lambda out, pids, outputs: dsh_regulariser(out["feat"], weight=1.0)


def criterion_options(model: HashingConfig, alpha: float | None = None, beta: float = BETA, margin: float = 0.1,
                      metric: str = "cosine") -> dict[str, Any]:
    """Eq. (14) as ``ReIDCriterion`` options (see the module docstring): ID and triplet on every vector of every
    branch, SSR on the student's vectors, attributes on the global vectors, DSH's regulariser with ``dsh``."""
    alpha = (ALPHA_BN if model.bn else ALPHA_NO_BN) if alpha is None else float(alpha)
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not 0 <= value:
            raise ValueError(f"criterion_options: {name} must be >= 0, got {value!r}")
    names = model.branch_names
    n = len(names)
    globals_ = [b for b in names if b.endswith("_g")]
    branch_terms: dict[str, list[str]] = {}
    for b in names:
        terms = ["id", "triplet"]
        if model.distilled and b.startswith("s_"):
            terms.append("ssr")
        if model.attributes and b in globals_:
            terms.append("attributes")
        if model.relaxation == "dsh":
            terms.append("dsh")
        branch_terms[b] = terms
    extra: dict[str, dict[str, Any]] = {}
    if model.distilled:
        extra["ssr"] = {"weight": alpha / len(model.vector_bits)}
    if model.attributes:
        extra["attributes"] = {"weight": beta / len(globals_)}
    if model.relaxation == "dsh":
        extra["dsh"] = {"weight": DSH_WEIGHT / n}
    return {"id_weight": 1 / n, "triplet_weight": 1 / n, "label_smoothing": 0.0, "margin": float(margin),
            "metric": metric, "branch_terms": branch_terms, "extra_terms": extra or None}


def _attribute_matrix(dataset: Any, split: str, columns: int) -> tuple[np.ndarray, list[str]]:
    """``(N, A)`` float 0/1 attribute labels of a split's records, NaN where unknown, and the column names."""
    if getattr(dataset, "attributes", None) is None:
        raise ValueError(f"the hashing network has {columns} attribute heads but {dataset.name} at {dataset.root} has "
                         "no attribute labels: train with attributes=0 (a variant without attributes, e.g. mode-a)")
    table = dataset.attribute_targets(split).drop(columns="pid")
    if table.shape[1] != columns:
        raise ValueError(f"the hashing network has {columns} attribute heads but {dataset.name} has {table.shape[1]} "
                         f"binary attributes ({list(table.columns)}): set the model's attributes={table.shape[1]}")
    return table.to_numpy(dtype=float, na_value=np.nan), list(table.columns)


def majority_attribute_rate(dataset: Any) -> Any:
    """The attribute accuracy that needs no image (:func:`reidlib.data.attributes.majority_accuracy`): each
    attribute's majority label among ``dataset``'s training images, scored on its labelled query and gallery
    images, the test images :class:`HashingEvaluation` scores the heads on. An
    :class:`~reidlib.data.attributes.AttributeAccuracy`."""
    from reidlib.data.attributes import majority_accuracy

    n = dataset.attribute_targets("train").shape[1] - 1 if getattr(dataset, "attributes", None) is not None else 0
    train, names = _attribute_matrix(dataset, "train", n)
    test = np.concatenate([_attribute_matrix(dataset, split, n)[0] for split in ("query", "gallery")])
    return majority_accuracy(train, test, columns=names)


class HashingEvaluation(Hook):
    """The hashing recipe's hook: the attribute targets of each training batch, and the extra evaluations.

    * ``on_forward``: ``outputs["attribute_targets"]`` = the batch's ``(B, A)`` labels (NaN unknown), which the
      criterion's ``"attributes"`` term reads (a model without attribute heads gets nothing).
    * ``on_epoch_end`` (epochs with an evaluation): one more pass over query and gallery with the model's
      :meth:`~reidlib.models.hashing.SSRHashing.encode` adds to ``log["metrics"]``: ``teacher`` (mAP, rank-1 and
      per-query values of the teacher's code; SSR only), ``float`` (the same for the student's real-valued
      vector, Euclidean), ``attributes`` (accuracy per attribute and their mean on the labelled test images,
      the student's heads, Lin et al.'s definition) and ``afr`` (:func:`afr_curve` of the student's codes).
    """

    def __init__(self, batch_size: int = 128, num_workers: int = 0) -> None:
        self.batch_size, self.num_workers = batch_size, num_workers
        self.train_targets: torch.Tensor | None = None
        self._test: Any = None

    def on_setup(self, dataset: Any, test_transform: Any) -> None:
        from torch.utils.data import DataLoader

        from reidlib.data import ImageDataset

        self._dataset = dataset
        records = list(dataset.query) + list(dataset.gallery)
        self._n_query = len(dataset.query)
        self._loader = DataLoader(ImageDataset(records, test_transform), batch_size=self.batch_size, shuffle=False,
                                  num_workers=self.num_workers)

    def _attributes(self, trainer: Any) -> int:
        return int(getattr(trainer.module, "config", HashingConfig()).attributes)

    def on_train_start(self, trainer: Any) -> None:
        n = self._attributes(trainer)
        if n:
            train, _ = _attribute_matrix(self._dataset, "train", n)
            self.train_targets = torch.as_tensor(train, dtype=torch.float32)
            query, names = _attribute_matrix(self._dataset, "query", n)
            gallery, _ = _attribute_matrix(self._dataset, "gallery", n)
            self._test = (np.concatenate([query, gallery]), names)

    def on_forward(self, trainer: Any, batch: Any, outputs: Any) -> Any:
        if self.train_targets is not None:
            outputs["attribute_targets"] = self.train_targets[batch.indices.cpu()].to(batch.images.device)
        return outputs

    @torch.no_grad()
    def _encode(self, trainer: Any) -> dict[str, torch.Tensor]:
        model = trainer.module
        was_training = model.training
        model.eval()
        parts: dict[str, list[torch.Tensor]] = {}
        try:
            for images, *_ in self._loader:
                for k, v in model.encode(images.to(trainer.device)).items():
                    parts.setdefault(k, []).append(v.float().cpu())
        finally:
            model.train(was_training)
        return {k: torch.cat(v) for k, v in parts.items()}

    def on_epoch_end(self, trainer: Any, epoch: int, log: dict[str, Any]) -> None:
        if "metrics" not in log or not trainer.is_main:
            return
        from reidlib.data.attributes import attribute_accuracy
        from reidlib.eval import distance, evaluate, valid_query_values

        out = self._encode(trainer)
        q, g = self._dataset.query, self._dataset.gallery
        ids = [np.array([getattr(r, key) for r in rs]) for rs in (q, g) for key in ("pid", "camid")]
        nq = self._n_query
        for name, key in (("teacher", "teacher_code"), ("float", "float")):
            if key in out:
                res = evaluate(distance(out[key][:nq], out[key][nq:], "euclidean"), ids[0], ids[2], ids[1], ids[3],
                               per_query=True)
                pq = valid_query_values(res)
                log["metrics"][name] = {"mAP": float(res["mAP"]), "rank1": float(res["cmc"][0]),
                                        "per_query": {"query_index": pq["query_index"].tolist(),
                                                      "AP": [round(float(a), 6) for a in pq["AP"]],
                                                      "rank1": pq["rank1"].astype(int).tolist()}}
        if "attribute_logits" in out and self._test is not None:
            targets, names = self._test
            acc = attribute_accuracy(torch.sigmoid(out["attribute_logits"]).numpy(), targets, columns=names)
            log["metrics"]["attributes"] = {"mean": float(acc.mean),
                                            "per_attribute": {k: float(v) for k, v in acc.per_attribute.items()}}
            log["metrics"]["afr"] = afr_curve(out["attribute_logits"][:nq], out["attribute_logits"][nq:],
                                              out["code"][:nq], out["code"][nq:], ids)


def afr_windows(n_gallery: int, id_bits: int, attribute_bits: int, points: int = 12) -> list[int]:
    """The w of an AFR sweep over a gallery of ``n_gallery``: ``points`` geometric steps from 10 to N, and the
    time budget's ideal w (Sec. 7.5.2, :func:`~reidlib.retrieval.afr_window`) of each shorter code of
    :data:`~reidlib.models.hashing.BIT_SPLITS` (Table 8's comparison)."""
    from reidlib.models.hashing import BIT_SPLITS
    from reidlib.retrieval import afr_window

    ws = {int(round(w)) for w in np.geomspace(10, n_gallery, points)}
    ws |= {int(afr_window(b, attribute_bits, n_gallery, id_bits)) for b in BIT_SPLITS if attribute_bits < b < id_bits}
    return sorted(w for w in ws if 1 <= w <= n_gallery)


def afr_curve(query_attributes: torch.Tensor, gallery_attributes: torch.Tensor, query_codes: torch.Tensor,
              gallery_codes: torch.Tensor, ids: Any) -> list[dict[str, Any]]:
    """Fig. 7 on one model's test codes: AFR's mAP and rank-1 at each w of :func:`afr_windows`, with the full
    ranked list (:func:`~reidlib.retrieval.afr_ranking`: the non-candidates after the candidates) and truncated
    at w (``mAP_truncated``), and the attribute code's own rank-w CMC (the paper's dashed lines).

    Args:
        query_attributes, gallery_attributes: attribute logits ``(Q, A)``, ``(G, A)`` (codes: ``+1`` where > 0).
        query_codes, gallery_codes: ±1 ID codes ``(Q, L)``, ``(G, L)``.
        ids: ``[q_pids, q_camids, g_pids, g_camids]`` (numpy arrays).
    """
    from reidlib.eval import evaluate, evaluate_ranking
    from reidlib.losses.attributes import attribute_code
    from reidlib.retrieval import afr_ranking, hamming_distances, pack_codes

    qp, qc, gp, gc = ids
    attr = hamming_distances(pack_codes(attribute_code(query_attributes)), pack_codes(attribute_code(gallery_attributes)))
    dist = hamming_distances(pack_codes(query_codes), pack_codes(gallery_codes))
    attribute_cmc = evaluate(attr.astype(np.float64), qp, gp, qc, gc, max_rank=len(gp))["cmc"]
    rows = []
    for w in afr_windows(len(gp), query_codes.shape[1], query_attributes.shape[1]):
        ranking = afr_ranking(attr, dist, w)
        full = evaluate_ranking(ranking, qp, gp, qc, gc)
        cut = evaluate_ranking(ranking, qp, gp, qc, gc, depth=w)
        rows.append({"w": w, "mAP": float(full["mAP"]), "rank1": float(full["cmc"][0]),
                     "mAP_truncated": float(cut["mAP"]), "attribute_cmc_at_w": float(attribute_cmc[min(w, len(gp)) - 1])})
    return rows


# ---- training -------------------------------------------------------------------------------------
#: Sec. 7.1.3: ResNet-50 from ImageNet, 384x128, flip + random erasing, SGD (momentum 0.9), batch 64, 350 epochs,
#: lr warmed up from 0.001 to 0.01 over 20 epochs. Not stated, chosen: P x K = 16 x 4, weight decay 5e-4, x0.1 at
#: epochs 200 and 300, random erasing p = 0.5, the triplet's Euclidean margin 0.3.
PAPER_PRESET = {"backbone": "resnet50", "pretrained": True, "height": 384, "width": 128, "P": 16, "K": 4,
                "epochs": 350, "optimizer": "sgd", "lr": 0.01, "weight_decay": 5e-4, "warmup_epochs": 20,
                "milestones": [200, 300], "random_erasing": 0.5, "triplet_metric": "euclidean",
                "margin": TRIPLET_MARGIN}

# The notebook's parameters cell, in its order: the CPU defaults (the shared CPU regime at the part chapters'
# 192x64, whose stride-16 map is 12 rows: 6 stripes of 2).
RECIPE = Recipe(
    chapter="hashing",
    notebook="book/hashing/train.ipynb",
    defaults={
        "dataset": "synthped", "data_root": None, "synthped_preset": "default", "dataset_options": {},
        "variant": "full", "bits": None, "alpha": None, "beta": BETA,
        "backbone": CPU_PROTOCOL["backbone"], "pretrained": CPU_PROTOCOL["pretrained"], "weights_path": None,
        "paper_preset": False, "height": PART_IMAGE_SIZE[0], "width": PART_IMAGE_SIZE[1], "P": CPU_PROTOCOL["P"],
        "K": CPU_PROTOCOL["K"], "epochs": CPU_PROTOCOL["epochs"], "optimizer": "adam", "lr": CPU_PROTOCOL["lr"],
        "weight_decay": 5e-4, "warmup_epochs": CPU_PROTOCOL["warmup_epochs"], "milestones": CPU_PROTOCOL["milestones"],
        "random_erasing": 0.5, "triplet_metric": CPU_PROTOCOL["triplet_metric"], "margin": CPU_PROTOCOL["margin"],
        "max_steps_per_epoch": None, "eval_every": CPU_PROTOCOL["eval_every"], "device": "auto", "amp": True,
        "num_threads": None, "num_workers": 1, "seed": 0, "output_dir": "results", "run_name": None,
        "resume": False, "progress": True,
    },
    types={"data_root": str, "bits": int, "alpha": float, "weights_path": str, "max_steps_per_epoch": int,
           "num_threads": int, "run_name": str},
    choices={"triplet_metric": get_args(Metric), "optimizer": ("adam", "adamw", "sgd")},
)
EVAL_METRIC = "euclidean"


def run_name(variant: str, model: HashingConfig, backbone: str, height: int, width: int, epochs: int, seed: int,
             pretrained: bool = False, alpha: float | None = None, beta: float = BETA) -> str:
    """``full_efficientnet_lite0-imagenet_192x64_e6_s0``, with ``_b<bits>`` where the bits differ from the named
    row and ``_alpha<a>`` / ``_beta<b>`` where they differ from the paper's (Fig. 5 and 6 sweeps)."""
    tag = f"_b{model.bits}" if model.bits != VARIANTS[variant].bits else ""
    if alpha is not None and alpha != (ALPHA_BN if model.bn else ALPHA_NO_BN):
        tag += f"_alpha{alpha:g}"
    if beta != BETA:
        tag += f"_beta{beta:g}"
    weights = "-imagenet" if pretrained else ""
    return f"{variant}{tag}_{backbone}{weights}_{height}x{width}_e{epochs}_s{seed}"


def config(**parameters: Any):
    """The :class:`~reidlib.engine.config.TrainConfig` of the notebook's ``parameters`` (see the module
    docstring); ``paper_preset=True`` applies Sec. 7.1.3's schedule (:data:`PAPER_PRESET`)."""
    from reidlib.engine.config import TrainConfig

    p = RECIPE.parameters(parameters)
    if p["paper_preset"]:
        p.update(PAPER_PRESET)
    model = model_config(p["variant"], **({"bits": p["bits"]} if p["bits"] is not None else {}))
    name = p["run_name"] or run_name(p["variant"], model, p["backbone"], p["height"], p["width"], p["epochs"],
                                     p["seed"], pretrained=imagenet_start(p), alpha=p["alpha"], beta=p["beta"])
    warm = {"warmup_start_factor": 0.1} if p["paper_preset"] else {}
    return TrainConfig(
        dataset=p["dataset"], data_root=p["data_root"], synthped_preset=p["synthped_preset"],
        dataset_options=p["dataset_options"], random_erasing=p["random_erasing"], padding=0,
        model="ssr_hashing", model_options=asdict(model), variant=p["variant"], backbone=p["backbone"],
        pretrained=p["pretrained"], weights_path=p["weights_path"], criterion="reid",
        criterion_options=criterion_options(model, p["alpha"], p["beta"], p["margin"], p["triplet_metric"]),
        optimizer=p["optimizer"], height=p["height"], width=p["width"], P=p["P"], K=p["K"], epochs=p["epochs"],
        lr=p["lr"], weight_decay=p["weight_decay"], schedule="warmup_multistep", warmup_epochs=p["warmup_epochs"],
        milestones=tuple(p["milestones"]), max_steps_per_epoch=p["max_steps_per_epoch"], device=p["device"],
        amp=p["amp"], num_threads=p["num_threads"], num_workers=p["num_workers"], seed=p["seed"],
        eval_every=p["eval_every"], eval_metric=EVAL_METRIC, flip_test=False, chapter=RECIPE.chapter,
        output_dir=p["output_dir"], run_name=name, resume=p["resume"], progress=p["progress"], **warm)


def train(**parameters: Any) -> dict[str, Any]:
    """Train a hashing variant with the notebook's ``parameters`` and write its run record."""
    from reidlib.engine.run import run_training

    cfg = config(**parameters)
    return run_training(cfg, notebook=RECIPE.notebook, parameters=RECIPE.parameters(parameters),
                        hooks=[HashingEvaluation(cfg.test_batch_size)])


def teacher_view(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record's teacher metrics (``final["teacher"]``), or ``None`` for a network without a teacher."""
    return (record.get("final") or {}).get("teacher")


# ---- the results page -----------------------------------------------------------------------------------------
def records_frame(results: Any = None) -> pd.DataFrame:
    """The chapter's runs, one row each (:func:`reidlib.papers.results.runs_table`), the variant under its canonical
    name (:data:`CANONICAL`), with the attribute accuracy (``attr. acc.``, %) and the real-valued student's mAP
    (``mAP (float)``); and for each SSR run one more row, variant ``<variant>:teacher``, with the teacher code's
    mAP, rank-1 and per-query values (Table 6's teacher rows; the claims compare them like any row)."""
    from .results import load_records, runs_table

    def extra(r: Mapping[str, Any]) -> dict[str, Any]:
        f = r["final"]
        return {"bits": r["config"]["model_options"]["bits"],
                "attr. acc.": 100 * f["attributes"]["mean"] if "attributes" in f else np.nan,
                "mAP (float)": 100 * f["float"]["mAP"] if "float" in f else np.nan}

    records = load_records(RECIPE.chapter, results)
    teachers = []
    for r in records:
        t = teacher_view(r)
        if t is not None:
            final = {**r["final"], "mAP": t["mAP"], "rank1": t["rank1"], "per_query": t["per_query"], "mINP": np.nan}
            for key in ("mAP_hard", "attributes", "float", "afr"):  # the student's, not the teacher's
                final.pop(key, None)
            teachers.append({**r, "variant": f"{CANONICAL.get(r['variant'], r['variant'])}:teacher", "final": final})
    frame = runs_table([*records, *teachers], extra=extra)
    if len(frame):
        frame["variant"] = frame["variant"].map(lambda v: CANONICAL.get(v, v))
    return frame


#: Each table's reference row for the "difference to Base" columns (canonical variants): Table 6 and 7 the full
#: model, the code lengths the full model at 2048 bits.
TABLE_BASE = {"1": "full", "6": "full", "7": "full"}


def paper_rows(table: str) -> tuple[dict[str, str], pd.DataFrame, str]:
    """``(rows, paper, base)`` for :func:`reidlib.papers.results.paper_beside_ours`: each printed row of Table
    ``table`` (``"1"``: the code lengths of the paper's own rows, ``"6"``, ``"7"``; its label) -> our canonical
    variant (a run's teacher code is ``<variant>:teacher``), the printed Market-1501 ``mAP`` and ``R1`` by label,
    and the label of the reference row."""
    from .hashing_tables import paper_table

    if table not in TABLE_BASE:
        raise ValueError(f"paper_rows: table must be one of {list(TABLE_BASE)}, got {table!r}")
    if table == "1":
        t = paper_table(1)
        t = t[t.method.isin(["baseline(Sigmoid)", "baseline(SSR)+AAB"])]
        names = {("baseline(SSR)+AAB", 2048): "full", ("baseline(Sigmoid)", 2048): "baseline-sigmoid",
                 **{("baseline(SSR)+AAB", b): f"full-{b}" for b in (128, 512)}}
        t = t[[(m, b) in names for m, b in zip(t.method, t.bits)]]
        labels = [f"{m}, {b} bits" for m, b in zip(t.method, t.bits)]
        variants = [names[(m, b)] for m, b in zip(t.method, t.bits)]
        base = "baseline(SSR)+AAB, 2048 bits"
    else:
        t = paper_table(int(table))
        if table == "6":
            labels = [f"{r}{' + BN' if bn else ''}{' (teacher)' if d == 'teacher' else ''}"
                      for r, bn, d in zip(t.relaxation, t.BN, t.descriptor)]
            base = "SSR + BN"
        else:
            labels = [f"mode {m}" for m in t["mode"]]
            base = "mode d"
        variants = [":".join([CANONICAL.get(v.split(":")[0], v.split(":")[0]), *v.split(":")[1:]]) for v in t.variant]
    paper = pd.DataFrame({"mAP": t["Market mAP"].to_numpy(), "R1": t["Market R1"].to_numpy()}, index=labels)
    return dict(zip(labels, variants)), paper, base


def afr_frame(results: Any = None) -> pd.DataFrame:
    """Fig. 7 from the records: one row per (run, w) of every run's ``final["afr"]`` sweep (:func:`afr_curve`):
    ``variant`` (canonical), ``seed``, ``dataset``, ``w``, ``mAP``, ``rank-1``, ``mAP (truncated)``,
    ``attribute CMC@w`` (%), and ``plain mAP``, the run's own mAP of the student's code."""
    from .results import load_records

    rows = []
    for r in load_records(RECIPE.chapter, results):
        for a in (r.get("final") or {}).get("afr", []):
            rows.append({"variant": CANONICAL.get(r["variant"], r["variant"]), "seed": r["config"]["seed"],
                         "dataset": r["dataset"], "w": a["w"], "mAP": 100 * a["mAP"], "rank-1": 100 * a["rank1"],
                         "mAP (truncated)": 100 * a["mAP_truncated"],
                         "attribute CMC@w": 100 * a["attribute_cmc_at_w"], "plain mAP": 100 * r["final"]["mAP"]})
    columns = ["variant", "seed", "dataset", "w", "mAP", "rank-1", "mAP (truncated)", "attribute CMC@w", "plain mAP"]
    return pd.DataFrame(rows, columns=columns)
