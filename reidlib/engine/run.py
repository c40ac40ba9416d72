"""``run_training(config) -> record``: one training run of the strong baseline, end to end.

What every chapter's ``train.ipynb`` calls: build the dataset, the P x K loader, the model, the
losses, the optimizer and the schedule, train with :class:`~reidlib.engine.trainer.Trainer`
(evaluating every ``eval_every`` epochs), and write the run record
``<output_dir>/<chapter>/<dataset>/<run_name>.json``. Later chapters pass ``model`` /
``criterion`` factories and ``hooks`` to change what is new in their paper and keep the rest.

This module is the library's top-level glue: unlike the trainer it imports the evaluation
layer (``reidlib.eval``), which itself never imports the engine.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import unwrap_model
from .config import TrainConfig
from .distributed import DistInfo, barrier, init_distributed, wrap_model
from .features import extract_features
from .records import SCHEMA_VERSION, provenance, record_path, write_record
from .schedules import Schedule, WarmupMultiStep, build_schedule
from .trainer import Batch, Hook, Trainer, seed_everything

CMC_RANKS_KEPT = 20


class BaselineCriterion(nn.Module):
    """The strong baseline's losses (Luo et al. 2019): ID loss with label smoothing on the
    logits after the BNNeck, batch-hard triplet loss on the feature before it.

    ``forward(outputs, batch) -> {"id": L_id, "triplet": L_tri}``, each times its weight.
    """

    def __init__(self, num_classes: int, *, label_smoothing: float = 0.1, margin: float = 0.3,
                 metric: str = "euclidean", id_weight: float = 1.0, triplet_weight: float = 1.0) -> None:
        super().__init__()
        from reidlib.losses import CrossEntropyLabelSmooth, TripletLoss

        self.id_loss = CrossEntropyLabelSmooth(num_classes, epsilon=label_smoothing)
        self.triplet = TripletLoss(margin=margin, metric=metric)
        self.id_weight, self.triplet_weight = id_weight, triplet_weight

    def forward(self, outputs: Mapping[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        losses = {}
        if self.id_weight:
            losses["id"] = self.id_weight * self.id_loss(outputs["logits"], batch.pids)
        if self.triplet_weight:
            losses["triplet"] = self.triplet_weight * self.triplet(outputs["feat"], batch.pids)
        return losses


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD (momentum) over the trainable parameters, with ``cfg.weight_decay``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_config_schedule(cfg: TrainConfig) -> Schedule:
    """``warmup_multistep`` from the config's warm-up / milestone fields, or a paper's named schedule."""
    if cfg.schedule == "warmup_multistep":
        return WarmupMultiStep(cfg.lr, milestones=cfg.milestones, gamma=cfg.gamma, warmup_epochs=cfg.warmup_epochs,
                               warmup_start_lr=cfg.warmup_start_factor * cfg.lr)
    return build_schedule(cfg.schedule, cfg.lr)


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
                   device: torch.device) -> Callable[[nn.Module], dict[str, Any]]:
    """``model -> metrics``: flip-averaged features of query and gallery, distances, and
    mAP / mINP / CMC (``reidlib.eval.evaluate``, Market-1501 protocol)."""
    from reidlib.data import ImageDataset
    from reidlib.eval import distance, evaluate

    def loader(records: Sequence) -> DataLoader:
        return DataLoader(ImageDataset(records, transform), batch_size=cfg.test_batch_size, shuffle=False,
                          num_workers=cfg.num_workers, pin_memory=device.type == "cuda")

    q_loader, g_loader = loader(query), loader(gallery)
    use_amp = cfg.amp and device.type == "cuda"

    def evaluator(model: nn.Module) -> dict[str, Any]:
        kw = dict(device=device, flip=cfg.flip_test, amp=use_amp, channels_last=cfg.channels_last,
                  progress=cfg.progress)
        qf, qp, qc = extract_features(model, q_loader, desc="query", **kw)
        gf, gp, gc = extract_features(model, g_loader, desc="gallery", **kw)
        res = evaluate(distance(qf, gf, cfg.eval_metric), qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy())
        cmc = [float(x) for x in res["cmc"][:CMC_RANKS_KEPT]]
        return {"mAP": float(res["mAP"]), "mINP": float(res["mINP"]), "rank1": cmc[0], "rank5": cmc[4],
                "rank10": cmc[9], "cmc": cmc, "num_valid_queries": int(res["num_valid_queries"])}

    return evaluator


def run_training(config: TrainConfig | Mapping[str, Any], *, notebook: str | None = None,
                 parameters: Mapping[str, Any] | None = None, hooks: Sequence[Hook] = (),
                 model_factory: Callable[[TrainConfig, int], nn.Module] | None = None,
                 criterion_factory: Callable[[TrainConfig, int], Callable] | None = None,
                 notes: str = "") -> dict[str, Any]:
    """Train, evaluate and write the run record; returns the record (with its ``path``).

    Args:
        config: a :class:`TrainConfig` or a dict of its fields (validated: a wrong value raises
            ``ValueError`` naming the parameter before anything is built).
        notebook, parameters: the training notebook and its papermill parameters, stored in the
            record so that ``make results`` can re-run it.
        hooks: trainer hooks (later papers' erasing, extra branches, extra losses).
        model_factory: ``(cfg, num_classes) -> model`` (default: ``reidlib.models.Baseline``).
        criterion_factory: ``(cfg, num_classes) -> criterion`` (default: :class:`BaselineCriterion`).
    """
    t_start = time.perf_counter()
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
    from reidlib.data import ImageDataset, build_dataset
    from reidlib.data.samplers import PKSampler
    from reidlib.data.transforms import build_transforms
    from reidlib.models import Baseline, efficiency

    info = init_distributed(cfg.device)
    device = info.device
    if cfg.num_threads and device.type == "cpu":
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)

    ds = build_dataset(cfg.dataset, dataset_root(cfg, info), **cfg.dataset_options)
    train_tf = build_transforms(cfg.height, cfg.width, train=True, random_erasing=cfg.random_erasing)
    test_tf = build_transforms(cfg.height, cfg.width, train=False)
    sampler = PKSampler([r.pid for r in ds.train], cfg.P, cfg.K, seed=cfg.seed, rank=info.rank,
                        world_size=info.world_size)
    num_classes = ds.num_train_pids

    model = (model_factory(cfg, num_classes) if model_factory else
             Baseline(cfg.backbone, num_classes=num_classes, pooling=cfg.pooling, last_stride=cfg.last_stride,
                      pretrained=cfg.pretrained, weights_path=cfg.weights_path))
    model = wrap_model(model, info, sync_bn=cfg.sync_bn)
    criterion = (criterion_factory(cfg, num_classes) if criterion_factory else
                 BaselineCriterion(num_classes, label_smoothing=cfg.label_smoothing, margin=cfg.triplet_margin,
                                   metric=cfg.triplet_metric, id_weight=cfg.id_loss_weight,
                                   triplet_weight=cfg.triplet_loss_weight))
    optimizer = build_optimizer(model, cfg)
    evaluator = make_evaluator(ds.query, ds.gallery, test_tf, cfg, device)
    trainer = Trainer(model, criterion, optimizer, ImageDataset(ds.train, train_tf), sampler, epochs=cfg.epochs,
                      schedule=build_config_schedule(cfg), device=device, hooks=hooks, evaluator=evaluator,
                      eval_every=cfg.eval_every, checkpoint_dir=cfg.resolved_checkpoint_dir(),
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
        record = {
            "schema_version": SCHEMA_VERSION,
            "chapter": cfg.chapter,
            "dataset": cfg.dataset_key,
            "run_name": cfg.name,
            "config": cfg.to_dict(),
            "notebook": notebook,
            "parameters": dict(parameters) if parameters is not None else None,
            "dataset_summary": _summary(ds),
            "epochs": [_epoch_entry(h) for h in history],
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


def _epoch_entry(log: Mapping[str, Any]) -> dict[str, Any]:
    entry = dict(log)
    if "metrics" in entry:  # per-epoch metrics keep the scalars; the full CMC is in "final"
        entry["metrics"] = {k: v for k, v in entry["metrics"].items() if not isinstance(v, list)}
    return entry


def _summary(ds: Any) -> dict[str, Any]:
    """The dataset's summary table (images / ids / cameras per split) as plain data."""
    return json.loads(ds.summary().to_json(orient="index"))


__all__ = ["run_training", "BaselineCriterion", "build_optimizer", "build_config_schedule", "make_evaluator",
           "dataset_root"]
