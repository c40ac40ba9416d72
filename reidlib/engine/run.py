"""``run_training(config) -> record``: one training run, end to end, for any registered network.

What every paper's recipe (``reidlib.papers.<paper>.train``) calls: build the dataset, the P x K
loader, the model (``build_model(config.model, N, **config.model_options)``), the criterion
(``build_criterion(config.criterion, N, **config.criterion_options)``), the optimizer and the
schedule, train with :class:`~reidlib.engine.trainer.Trainer` (evaluating every ``eval_every``
epochs with ``config.eval_metric``), and write the run record
``<output_dir>/<chapter>/<dataset>/<run_name>.json``. The record's ``config`` holds the *resolved*
options of the model and criterion that trained, and ``checkpoint`` names the weights that
:class:`~reidlib.engine.features.FeatureExtractor` loads. A paper changes what is new in it
through its registered model/criterion and ``hooks``; nothing here names a paper.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from reidlib.losses import ReIDCriterion

from .build import build_run_model, build_run_transforms
from .checkpoint import unwrap_model
from .config import TrainConfig
from .distributed import DistInfo, barrier, init_distributed, wrap_model
from .features import extract_features
from .records import SCHEMA_VERSION, provenance, record_path, write_record
from .schedules import Schedule, WarmupMultiStep, build_schedule
from .trainer import Hook, Trainer, seed_everything

CMC_RANKS_KEPT = 20


class BaselineCriterion(ReIDCriterion):
    """Deprecated (one release): :class:`reidlib.losses.ReIDCriterion` with the strong baseline's
    defaults (label smoothing 0.1, batch-hard triplet margin 0.3). Use ``build_criterion("reid", N)``."""

    def __init__(self, num_classes: int, **options: Any) -> None:
        warnings.warn("BaselineCriterion is deprecated; use reidlib.losses.build_criterion('reid', ...)",
                      DeprecationWarning, stacklevel=2)
        super().__init__(num_classes, **options)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD (momentum) over the trainable parameters, with ``cfg.weight_decay``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_config_schedule(cfg: TrainConfig) -> Schedule:
    """The config's schedule: ``warmup_multistep`` from the warm-up / milestone fields (with
    ``schedule_options`` overriding them), or a registered schedule with ``schedule_options``."""
    if cfg.schedule == "warmup_multistep":
        options = {"milestones": cfg.milestones, "gamma": cfg.gamma, "warmup_epochs": cfg.warmup_epochs,
                   "warmup_start_lr": cfg.warmup_start_factor * cfg.lr, **cfg.schedule_options}
        return WarmupMultiStep(cfg.lr, **options)
    return build_schedule(cfg.schedule, cfg.lr, **cfg.schedule_options)


def dataset_root(cfg: TrainConfig, info: DistInfo | None = None) -> str:
    """``cfg.data_root``, or the synthped cache of ``cfg.synthped_preset`` (generated once, by rank 0)."""
    if cfg.data_root is not None:
        return cfg.data_root
    from reidlib.data import synthped

    if info is None or info.is_main:
        root = synthped.ensure(cfg.synthped_preset)
    barrier()
    if info is not None and not info.is_main:
        root = synthped.ensure(cfg.synthped_preset)
    return str(root)


def make_evaluator(query: Sequence, gallery: Sequence, transform: Callable, cfg: TrainConfig,
                   device: torch.device, hard_pids: Iterable[int] = (), *, collate_fn: Callable | None = None,
                   rerank: Callable | None = None, query_transform: Callable | None = None
                   ) -> Callable[[nn.Module], dict[str, Any]]:
    """``model -> metrics``: flip-averaged features of query and gallery, distances, and
    mAP / mINP / CMC (``reidlib.eval.evaluate``, Market-1501 protocol).

    Also ``per_query`` (``AP``, ``rank1`` and ``query_index`` of the valid queries, for the bootstrap
    intervals and paired differences of :mod:`reidlib.eval.bootstrap`) and, where ``hard_pids`` is not
    empty (synthped's hard groups), ``mAP_hard`` / ``rank1_hard`` / ``num_hard_queries``: the same
    metrics over the queries of those identities.

    ``collate_fn`` batches the images (:func:`reidlib.data.collate_images` for images of different sizes);
    ``rerank``, ``(query features, gallery features) -> distance matrix``, adds the same metrics after that
    re-ranking under ``"reranked"`` (a paper's query expansion); ``query_transform`` replaces ``transform``
    for the queries alone (occluded queries against a clean gallery)."""
    from reidlib.data import ImageDataset
    from reidlib.eval import distance, evaluate, valid_query_values

    hard = frozenset(int(p) for p in hard_pids)

    def loader(records: Sequence, tf: Callable) -> DataLoader:
        return DataLoader(ImageDataset(records, tf), batch_size=cfg.test_batch_size, shuffle=False,
                          num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                          **({"collate_fn": collate_fn} if collate_fn else {}))

    q_loader, g_loader = loader(query, query_transform or transform), loader(gallery, transform)
    use_amp = cfg.amp and device.type == "cuda"

    def evaluator(model: nn.Module) -> dict[str, Any]:
        kw = dict(device=device, flip=cfg.flip_test, amp=use_amp, channels_last=cfg.channels_last,
                  progress=cfg.progress)
        qf, qp, qc = extract_features(model, q_loader, desc="query", **kw)
        gf, gp, gc = extract_features(model, g_loader, desc="gallery", **kw)
        out = metrics_of(distance(qf, gf, cfg.eval_metric), qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy())
        if rerank is not None:
            out["reranked"] = metrics_of(rerank(qf, gf), qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy())
        return out

    def metrics_of(dist: Any, qp: np.ndarray, gp: np.ndarray, qc: np.ndarray, gc: np.ndarray) -> dict[str, Any]:
        res = evaluate(dist, qp, gp, qc, gc, per_query=True)
        cmc = [float(x) for x in res["cmc"][:CMC_RANKS_KEPT]]
        pq = valid_query_values(res)
        valid, ap, hit = pq["query_index"], pq["AP"], pq["rank1"]
        out = {"metric": cfg.eval_metric, "mAP": float(res["mAP"]), "mINP": float(res["mINP"]), "rank1": cmc[0],
               "rank5": cmc[4], "rank10": cmc[9], "cmc": cmc, "num_valid_queries": int(res["num_valid_queries"])}
        if hard:
            is_hard = np.isin(qp[valid], sorted(hard))
            if is_hard.any():
                out.update(mAP_hard=float(ap[is_hard].mean()), rank1_hard=float(hit[is_hard].mean()),
                           num_hard_queries=int(is_hard.sum()))
        out["per_query"] = {"query_index": valid.tolist(), "AP": [round(float(a), 6) for a in ap],
                            "rank1": hit.astype(int).tolist()}
        return out

    return evaluator


def run_training(config: TrainConfig | Mapping[str, Any], *, notebook: str | None = None,
                 parameters: Mapping[str, Any] | None = None, hooks: Sequence[Hook] = (),
                 notes: str = "") -> dict[str, Any]:
    """Train, evaluate and write the run record; returns the record (with its ``path``).

    Args:
        config: a :class:`TrainConfig` or a dict of its fields (validated: a wrong value raises
            ``ValueError`` naming the parameter before anything is built).
        notebook, parameters: the training notebook and its papermill parameters, stored in the
            record so that ``make results`` can re-run it.
        hooks: trainer hooks (a paper's probes, extra losses, curricula).
    """
    t_start = time.perf_counter()
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
    from reidlib.data import ImageDataset, build_dataset
    from reidlib.data.samplers import PKSampler
    from reidlib.eval import efficiency
    from reidlib.losses import build_criterion
    from reidlib.models import input_normalization, model_options

    # every model and criterion option is checked before anything is built: small builds with the same
    # options (no ImageNet weights fetched) raise on a pooling typo, an unknown ESNetConfig field, a triplet
    # metric that does not exist or a negative margin, before the dataset is read
    build_run_model(cfg, 2, pretrained=False)
    build_criterion(cfg.criterion, 2, **cfg.criterion_options)
    info = init_distributed(cfg.device)
    device = info.device
    if cfg.num_threads and device.type == "cpu":
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)

    ds = build_dataset(cfg.dataset, dataset_root(cfg, info), **cfg.dataset_options)
    train_tf, test_tf = build_run_transforms(cfg)
    sampler = PKSampler([r.pid for r in ds.train], cfg.P, cfg.K, seed=cfg.seed, rank=info.rank,
                        world_size=info.world_size)
    num_classes = ds.num_train_pids

    model = build_run_model(cfg, num_classes)
    resolved_model = model_options(model)
    criterion = build_criterion(cfg.criterion, num_classes, **cfg.criterion_options)
    resolved_criterion = dict(getattr(criterion, "options", cfg.criterion_options))
    model = wrap_model(model, info, sync_bn=cfg.sync_bn)
    optimizer = build_optimizer(model, cfg)
    evaluator = make_evaluator(ds.query, ds.gallery, test_tf, cfg, device, hard_pids=ds.hard_pids)
    for h in hooks:
        h.on_setup(ds, test_tf)
    checkpoint_dir = cfg.resolved_checkpoint_dir()
    trainer = Trainer(model, criterion, optimizer, ImageDataset(ds.train, train_tf), sampler, epochs=cfg.epochs,
                      schedule=build_config_schedule(cfg), device=device, hooks=hooks, evaluator=evaluator,
                      eval_every=cfg.eval_every, checkpoint_dir=checkpoint_dir,
                      checkpoint_every_steps=cfg.checkpoint_every_steps, accum_steps=cfg.accum_steps, amp=cfg.amp,
                      channels_last=cfg.channels_last, seed=cfg.seed, num_workers=cfg.num_workers,
                      max_steps_per_epoch=cfg.max_steps_per_epoch, log_every=cfg.log_every, progress=cfg.progress)
    history = trainer.fit(resume=cfg.resume)
    # the trainer evaluates after the last epoch (rank 0 holds the metrics)
    final = history[-1].get("metrics") if info.is_main else None
    if info.is_main and final is None:
        raise RuntimeError(f"the last epoch of run {cfg.name!r} has no evaluation: cannot write its record")

    record: dict[str, Any] = {}
    if info.is_main:
        module = unwrap_model(model)
        config_dict = cfg.to_dict()
        config_dict["model_options"] = resolved_model
        config_dict["criterion_options"] = resolved_criterion
        record = {
            "schema_version": SCHEMA_VERSION,
            "chapter": cfg.chapter,
            "dataset": cfg.dataset_key,
            "run_name": cfg.name,
            "variant": cfg.variant,
            "config": config_dict,
            "num_classes": num_classes,
            "checkpoint": checkpoint_reference(trainer.checkpoint_path),
            "notebook": notebook,
            "parameters": dict(parameters) if parameters is not None else None,
            "dataset_summary": dataset_summary(ds),
            "normalization": dict(zip(("mean", "std"), map(list, input_normalization(cfg.backbone)))),
            "epochs": [epoch_entry(h) for h in history],
            "final": final,
            "efficiency": efficiency(module, cfg.height, cfg.width, batch=min(32, cfg.test_batch_size),
                                     device=device),
            **provenance(device),
            "world_size": info.world_size,
            "amp": trainer.amp,
            "channels_last": trainer.channels_last,
            "train_time_s": round(trainer.train_time_s, 2),
            "wall_time_s": round(time.perf_counter() - t_start, 2),
            "resumed": bool(cfg.resume),
            "notes": notes,
        }
        path = write_record(record, record_path(cfg.output_dir, cfg.chapter, cfg.dataset_key, cfg.name))
        record["path"] = str(path)
    barrier()
    return record


def checkpoint_reference(path: str | os.PathLike | None) -> str | None:
    """How a record names its checkpoint: relative to the project root when it lies inside it
    (records are committed; absolute paths of one machine mean nothing on another), else absolute."""
    if path is None:
        return None
    from reidlib.paths import project_root

    full = Path(path).expanduser().resolve()
    root = project_root()
    if root is not None:
        try:
            return full.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(full)


def epoch_entry(log: Mapping[str, Any]) -> dict[str, Any]:
    """A trainer's epoch log as a run record keeps it: per-epoch metrics without their lists and dicts."""
    entry = dict(log)
    if "metrics" in entry:  # per-epoch metrics keep the scalars; the CMC and per-query values are in "final"
        entry["metrics"] = {k: v for k, v in entry["metrics"].items() if not isinstance(v, (list, dict))}
    return entry


def dataset_summary(ds: Any) -> dict[str, Any]:
    """The dataset's summary table (images / ids / cameras per split) as plain data."""
    return json.loads(ds.summary().to_json(orient="index"))


__all__ = ["run_training", "BaselineCriterion", "build_optimizer", "build_config_schedule", "build_run_model",
           "build_run_transforms", "checkpoint_reference", "make_evaluator", "dataset_root", "dataset_summary", "epoch_entry"]
