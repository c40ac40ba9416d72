"""The training loop, written once for every paper: extensions plug in through hooks.

A :class:`Trainer` runs ``epochs`` epochs of P x K batches. One step is::

    criterion.set_progress(share of training done) # a criterion that has it: loss curricula
    batch = on_batch_start(batch)                  # hooks may replace images (erasing, ...)
    outputs = model(batch.images)                  # dict in train mode; model(images, targets=pids)
                                                   # for a model whose `needs_targets` is true
    outputs = on_forward(batch, outputs)           # hooks may add extra branches
    losses = criterion(outputs, batch) | extra_losses(batch, outputs)   # dict of scalars
    (sum(losses) / accum_steps).backward()
    every accum_steps batches: after_backward(); optimizer.step(); scheduler.step()

Determinism and exact resumption: every sample's augmentation is drawn from a generator seeded
by ``(seed, epoch, step, position in the global batch)`` and every step's model randomness
(dropout, hooks) from one seeded by ``(seed, epoch, step, rank)``. A checkpoint (every epoch,
and every ``checkpoint_every_steps`` optimizer boundaries) holds the model, optimizer, scheduler,
grad scaler, sampler state at the start of the epoch, the position ``(epoch, step)``, the
running loss sums and the Python / NumPy / torch RNG states; ``fit(resume=True)`` continues a
killed run to the same weights, bit for bit, as an uninterrupted one (on the same machine and
thread count).

The loop keeps per-step overhead small: losses are summed as detached tensors and read back
(``.item()``) only every ``log_every`` steps for the progress bar and at the end of an epoch.
"""
from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .checkpoint import load_checkpoint, load_model_state, rng_state, save_checkpoint, set_rng_state, unwrap_model
from .schedules import Schedule, as_lr_scheduler

CHECKPOINT_FORMAT = "reidlib-trainer-1"
_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------
# seeds
def mix_seed(*values: int) -> int:
    """A 32-bit seed from integers (SplitMix64 finaliser over each value): distinct tuples give
    unrelated seeds, cheaply enough to call per sample."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & _MASK64
        h ^= h >> 29
    return h & 0xFFFFFFFF


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class SeededDataset(Dataset):
    """Wraps a dataset; item ``(index, seed)`` loads ``dataset[index]`` with every global RNG
    seeded by ``seed``, so a sample's augmentation depends only on its seed -- not on the worker
    that loads it nor on what was loaded before (exact resumption, DDP = 1 process)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        seed_everything(seed)
        return self.dataset[index]


class EpochBatches:
    """The batches of one epoch from ``batch_sampler`` (lists of indices), from step ``start``
    to ``stop``, each index paired with its sample seed. The trainer sets ``epoch``, ``start``
    and ``stop`` before each epoch; skipping replays the sampler without loading images."""

    def __init__(self, batch_sampler: Iterable[Sequence[int]], seed: int, rank: int = 0) -> None:
        self.batch_sampler = batch_sampler
        self.seed, self.rank = seed, rank
        self.epoch, self.start, self.stop = 0, 0, 0

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batches = itertools.islice(iter(self.batch_sampler), self.stop)
        for step, indices in enumerate(batches):
            if step < self.start:
                continue
            offset = self.rank * len(indices)
            yield [(int(i), mix_seed(self.seed, self.epoch, step, offset + j)) for j, i in enumerate(indices)]


# ---------------------------------------------------------------------------------------------
# batches and hooks
@dataclass
class Batch:
    """One training batch. Hooks may replace ``images`` or add entries to ``extra``.

    Attributes:
        images: ``(B, 3, H, W)`` float tensor, or a list of ``B`` ``(3, H_i, W_i)`` tensors when the images
            differ in size (aspect-preserving inputs, :func:`reidlib.data.collate_images`); a model that
            takes such a list forwards its images one by one.
        pids: ``(B,)`` train labels ``0..N-1``.
        camids: ``(B,)`` 0-based cameras.
        indices: ``(B,)`` positions in the training set.
        extra: anything a hook wants to pass on (e.g. the erasing masks).
    """

    images: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor
    indices: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_loader(cls, data: Any) -> Batch:
        """From a collated ``(images, pids, camids, indices)`` (what ``ImageDataset`` yields)."""
        if isinstance(data, Batch):
            return data
        if isinstance(data, Mapping):
            return cls(data["images"], data["pids"], data["camids"], data["indices"])
        images, pids, camids, indices = data[:4]
        return cls(images, pids, camids, indices)

    def to(self, device: torch.device, *, channels_last: bool = False) -> Batch:
        nb = device.type == "cuda"
        if isinstance(self.images, (list, tuple)):
            images = [im.to(device, non_blocking=nb) for im in self.images]
        else:
            images = self.images.to(device, non_blocking=nb)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
        return Batch(images, self.pids.to(device, non_blocking=nb), self.camids.to(device, non_blocking=nb),
                     self.indices.to(device, non_blocking=nb), self.extra)

    def __len__(self) -> int:
        return len(self.images) if isinstance(self.images, (list, tuple)) else int(self.images.shape[0])


class Hook:
    """Base class of trainer extensions; override what you need. All methods get the trainer
    (``trainer.model``, ``trainer.module`` (unwrapped), ``trainer.epoch``, ``trainer.step``,
    ``trainer.optimizer``, ``trainer.device`` ...)."""

    def on_setup(self, dataset: Any, test_transform: Any) -> None:
        """Called by :func:`~reidlib.engine.run.run_training` once the dataset is built, before the trainer
        exists: ``dataset`` the :class:`~reidlib.data.ReIDDataset` (the training set's indices are positions
        in ``dataset.train``), ``test_transform`` the evaluation transform. For hooks that read labels beside
        the ids (attributes) or evaluate more than the descriptor."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Once per :meth:`Trainer.fit`, after a resume has been loaded."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before the first step of ``epoch`` (0-based), also when resuming mid-epoch."""

    def on_batch_start(self, trainer: Trainer, batch: Batch) -> Batch | None:
        """May return a new batch (e.g. with salient parts erased); runs under the step's seed."""

    def on_forward(self, trainer: Trainer, batch: Batch, outputs: Any) -> Any | None:
        """May return new outputs (e.g. with extra branches added)."""

    def extra_losses(self, trainer: Trainer, batch: Batch, outputs: Any) -> Mapping[str, torch.Tensor] | None:
        """Extra scalar losses added to the criterion's, by name."""

    def after_backward(self, trainer: Trainer) -> None:
        """Gradients complete (and unscaled under AMP), just before ``optimizer.step()``."""

    def on_step_end(self, trainer: Trainer, losses: Mapping[str, torch.Tensor]) -> None:
        """After each batch; ``losses`` are detached (do not ``.item()`` them every step)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, log: dict[str, Any]) -> None:
        """After the epoch's evaluation; ``log`` (the run record's epoch entry) may be extended."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch."""

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint (plain data and tensors)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class LambdaHook(Hook):
    """A hook from plain functions: ``LambdaHook(on_batch_start=lambda t, b: ...)``."""

    _NAMES = ("on_train_start", "on_epoch_start", "on_batch_start", "on_forward", "extra_losses",
              "after_backward", "on_step_end", "on_epoch_end", "on_train_end")

    def __init__(self, **functions: Callable[..., Any]) -> None:
        unknown = sorted(set(functions) - set(self._NAMES))
        if unknown:
            raise ValueError(f"unknown hook method(s) {unknown}; expected some of {list(self._NAMES)}")
        for name, fn in functions.items():
            setattr(self, name, fn)


Criterion = Callable[[Any, Batch], Mapping[str, torch.Tensor]]


# ---------------------------------------------------------------------------------------------
class Trainer:
    """Trains ``model`` with ``criterion`` on ``train_set`` batched by ``batch_sampler``.

    Args:
        model: in train mode returns what ``criterion`` reads (``Baseline``: a dict with
            ``logits``, ``feat``, ``feat_bn``); may be wrapped in DistributedDataParallel.
        criterion: ``(outputs, batch) -> {name: scalar loss}``; the total is their sum.
        optimizer: any torch optimizer over the model's parameters.
        train_set: items ``(image (3, H, W), pid, camid, index)`` (``reidlib.data.ImageDataset``).
        batch_sampler: yields lists of indices (``PKSampler``); optional ``set_epoch``,
            ``state_dict`` and ``load_state_dict`` are used when present.
        epochs: number of epochs.
        schedule: a :mod:`~reidlib.engine.schedules` schedule (stepped per optimizer step) or a
            ready ``torch.optim.lr_scheduler.LRScheduler`` stepped once per optimizer step.
        device: where to train; AMP (float16 autocast + GradScaler) and channels_last only apply on CUDA.
        hooks: :class:`Hook` instances, called in order.
        evaluator: ``model -> {metric: value}`` (the unwrapped model, in eval mode, under no_grad),
            run every ``eval_every`` epochs and after the last one (rank 0 only).
        checkpoint_dir: where ``last.pt`` is written every epoch (and every
            ``checkpoint_every_steps`` optimizer steps); ``None`` disables checkpoints.
        accum_steps: batches per optimizer step (gradient accumulation).
        max_steps_per_epoch: cap on batches per epoch.
        log_every: progress-bar refresh in steps (one host sync each).
    """

    def __init__(self, model: nn.Module, criterion: Criterion, optimizer: torch.optim.Optimizer,
                 train_set: Dataset, batch_sampler: Iterable[Sequence[int]], *, epochs: int,
                 schedule: Schedule | torch.optim.lr_scheduler.LRScheduler | None = None,
                 device: str | torch.device = "cpu", hooks: Sequence[Hook] = (),
                 evaluator: Callable[[nn.Module], Mapping[str, Any]] | None = None, eval_every: int = 0,
                 checkpoint_dir: str | Path | None = None, checkpoint_every_steps: int = 0,
                 accum_steps: int = 1, amp: bool = False, channels_last: bool = False, seed: int = 0,
                 num_workers: int = 0, max_steps_per_epoch: int | None = None, log_every: int = 20,
                 progress: bool = True, collate_fn: Callable | None = None) -> None:
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        if accum_steps < 1:
            raise ValueError(f"accum_steps must be >= 1, got {accum_steps}")
        self.device = torch.device(device)
        self.model, self.criterion, self.optimizer = model, criterion, optimizer
        if isinstance(criterion, nn.Module):  # a criterion with state (OIM's lookup table) lives on the device
            criterion.to(device)
        self.hooks = list(hooks)
        self.epochs, self.seed = epochs, seed
        self.evaluator, self.eval_every = evaluator, eval_every
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every_steps = checkpoint_every_steps
        self.accum_steps, self.log_every, self.progress = accum_steps, max(1, log_every), progress
        cuda = self.device.type == "cuda"
        self.amp, self.channels_last = amp and cuda, channels_last and cuda
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.rank, self.world_size = _rank_world()
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

        self.batch_sampler = batch_sampler
        n = len(batch_sampler)  # type: ignore[arg-type]
        self.steps_per_epoch = min(n, max_steps_per_epoch) if max_steps_per_epoch else n
        if self.steps_per_epoch == 0:
            raise ValueError("the batch sampler yields no batch per epoch (too few identities for P x K?)")
        self.optimizer_steps_per_epoch = -(-self.steps_per_epoch // accum_steps)
        if schedule is None or isinstance(schedule, torch.optim.lr_scheduler.LRScheduler):
            self.scheduler = schedule
        else:
            self.scheduler = as_lr_scheduler(optimizer, schedule, self.optimizer_steps_per_epoch)
        self._batches = EpochBatches(batch_sampler, seed, self.rank)
        self.loader = DataLoader(SeededDataset(train_set), batch_sampler=self._batches, num_workers=num_workers,
                                 pin_memory=cuda, persistent_workers=num_workers > 0,
                                 **({"collate_fn": collate_fn} if collate_fn else {}))

        # position and logs (all checkpointed)
        self.epoch, self.step, self.global_step = 0, 0, 0
        self.history: list[dict[str, Any]] = []
        self.train_time_s = 0.0
        self._sums: dict[str, torch.Tensor] = {}
        self._epoch_lr = 0.0
        self._epoch_time = 0.0
        self._epoch_sampler_state: Any = None

    # ---- properties ----
    @property
    def module(self) -> nn.Module:
        """The model without its DDP wrapper."""
        return unwrap_model(self.model)

    @property
    def needs_targets(self) -> bool:
        """Whether the model's training forward takes the batch's ids (``model.needs_targets``: ES-Net's
        BESM, a hashing teacher, an OIM queue)."""
        return bool(getattr(self.module, "needs_targets", False))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None

    # ---- training ----
    def fit(self, resume: bool = False) -> list[dict[str, Any]]:
        """Train to ``epochs`` (continuing from ``checkpoint_dir/last.pt`` when ``resume`` and it
        exists); returns the per-epoch logs."""
        if resume:
            if self.checkpoint_path is None:
                raise ValueError("resume=True needs a checkpoint_dir")
            if self.checkpoint_path.is_file():
                self.load_checkpoint(self.checkpoint_path)
        self._call("on_train_start")
        while self.epoch < self.epochs:
            self._train_epoch(self.epoch)
            log = self._end_epoch(self.epoch)
            self._call("on_epoch_end", self.epoch, log)
            self.history.append(log)
            self.epoch, self.step = self.epoch + 1, 0
            self._sums = {}
            if self.checkpoint_dir is not None:
                self.save_checkpoint()
        self._call("on_train_end")
        return self.history

    def _train_epoch(self, epoch: int) -> None:
        self.model.train()
        sampler = self.batch_sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        if self.step == 0:
            self._epoch_sampler_state = sampler.state_dict() if hasattr(sampler, "state_dict") else None
            self._epoch_lr = self.optimizer.param_groups[0]["lr"]
            self._epoch_time = 0.0
        self._batches.epoch, self._batches.start, self._batches.stop = epoch, self.step, self.steps_per_epoch
        self._call("on_epoch_start", epoch)
        t0 = time.perf_counter()
        bar = tqdm(total=self.steps_per_epoch, initial=self.step, desc=f"epoch {epoch + 1}/{self.epochs}",
                   disable=not (self.progress and self.is_main), leave=False, mininterval=1.0, dynamic_ncols=True)
        try:
            for data in self.loader:
                losses = self._train_step(epoch, self.step, Batch.from_loader(data))
                self.step += 1
                self.global_step += 1
                self._accumulate(losses)
                self._call("on_step_end", losses)
                bar.update(1)
                if self.step % self.log_every == 0 and bar.disable is False:
                    bar.set_postfix(loss=f"{(self._sums['total'] / self.step).item():.4f}",
                                    lr=f"{self.optimizer.param_groups[0]['lr']:.2e}", refresh=False)
                if (self.checkpoint_every_steps and self.checkpoint_dir is not None
                        and self.step < self.steps_per_epoch and self._at_boundary(self.step)
                        and (self.step // self.accum_steps) % self.checkpoint_every_steps == 0):
                    self._epoch_time += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self.save_checkpoint()
        finally:
            bar.close()
        self._epoch_time += time.perf_counter() - t0

    def progress_fraction(self, epoch: int, step: int) -> float:
        """The share of training done before batch ``step`` of ``epoch`` (0-based), in ``[0, 1)``."""
        return (epoch * self.steps_per_epoch + step) / (self.epochs * self.steps_per_epoch)

    def _at_boundary(self, step: int) -> bool:
        """Whether an optimizer step happens after ``step`` batches of the epoch."""
        return step % self.accum_steps == 0 or step == self.steps_per_epoch

    def _train_step(self, epoch: int, step: int, batch: Batch) -> dict[str, torch.Tensor]:
        batch = batch.to(self.device, channels_last=self.channels_last)
        seed_everything(mix_seed(self.seed, epoch, step, 1_000_003 + self.rank))
        if hasattr(self.criterion, "set_progress"):  # loss curricula (a triplet ramp) read the progress
            self.criterion.set_progress(self.progress_fraction(epoch, step))
        for h in self.hooks:
            batch = h.on_batch_start(self, batch) or batch
        boundary = self._at_boundary(step + 1)
        sync = contextlib.nullcontext() if boundary or not hasattr(self.model, "no_sync") else self.model.no_sync()
        with sync:
            with torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext():
                if self.needs_targets:
                    outputs = self.model(batch.images, targets=batch.pids)
                else:
                    outputs = self.model(batch.images)
                for h in self.hooks:
                    new = h.on_forward(self, batch, outputs)
                    outputs = outputs if new is None else new
                losses = dict(self.criterion(outputs, batch))
                for h in self.hooks:
                    losses.update(h.extra_losses(self, batch, outputs) or {})
                if not losses:
                    raise ValueError("the criterion and hooks returned no loss")
                total = sum(losses.values())
            loss = total / self.accum_steps if self.accum_steps > 1 else total
            self.scaler.scale(loss).backward() if self.amp else loss.backward()
        if boundary:
            self._optimizer_step()
        detached = {k: v.detach() for k, v in losses.items()}
        detached["total"] = total.detach()
        return detached

    def _optimizer_step(self) -> None:
        if self.amp:
            self.scaler.unscale_(self.optimizer)
        self._call("after_backward")
        if self.amp:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()

    def _accumulate(self, losses: Mapping[str, torch.Tensor]) -> None:
        sums = self._sums
        for k, v in losses.items():
            v = v.float()
            sums[k] = sums[k] + v if k in sums else v.clone()

    def _end_epoch(self, epoch: int) -> dict[str, Any]:
        names = sorted(self._sums)
        values = torch.stack([self._sums[k] for k in names]) / max(self.step, 1)
        if self.world_size > 1:
            import torch.distributed as dist
            dist.all_reduce(values)
            values /= self.world_size
        losses = dict(zip(names, values.tolist()))
        self.train_time_s += self._epoch_time
        log: dict[str, Any] = {"epoch": epoch + 1, "lr": self._epoch_lr, "losses": losses,
                               "time_s": round(self._epoch_time, 3), "steps": self.step}
        last = epoch + 1 == self.epochs
        if self.evaluator is not None and (last or (self.eval_every and (epoch + 1) % self.eval_every == 0)):
            metrics = self.evaluate()
            if metrics is not None:
                log["metrics"] = metrics
        return log

    def evaluate(self) -> dict[str, Any] | None:
        """Run the evaluator on rank 0 (others wait); the model goes back to train mode."""
        if self.evaluator is None:
            return None
        metrics = None
        if self.is_main:
            was_training = self.module.training
            self.module.eval()
            try:
                with torch.no_grad():
                    metrics = dict(self.evaluator(self.module))
            finally:
                self.module.train(was_training)
        if self.world_size > 1:
            import torch.distributed as dist
            dist.barrier()
        return metrics

    def _call(self, name: str, *args: Any) -> None:
        for h in self.hooks:
            getattr(h, name)(self, *args)

    # ---- checkpoints ----
    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, as plain data and tensors."""
        sampler = self.batch_sampler
        # mid-epoch: the sampler as it was at the epoch's start (the epoch is replayed to `step`)
        sampler_state = (self._epoch_sampler_state if self.step > 0
                         else sampler.state_dict() if hasattr(sampler, "state_dict") else None)
        return {
            "format": CHECKPOINT_FORMAT,
            "model_class": type(self.module).__name__,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.amp else None,
            "sampler": sampler_state,
            "position": {"epoch": self.epoch, "step": self.step, "global_step": self.global_step},
            "meta": {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch, "seed": self.seed,
                     "accum_steps": self.accum_steps, "world_size": self.world_size},
            "running": {"sums": dict(self._sums), "epoch_lr": self._epoch_lr, "epoch_time": self._epoch_time},
            "history": self.history,
            "train_time_s": self.train_time_s,
            "hooks": [h.state_dict() for h in self.hooks],
            # a criterion's buffers (OIM's lookup table and queue) are training state too
            "criterion": self.criterion.state_dict() if isinstance(self.criterion, nn.Module) else None,
            "rng": rng_state(),
        }

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write :meth:`state_dict` atomically (rank 0 only) to ``path`` or ``checkpoint_dir/last.pt``."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: pass one or set checkpoint_dir")
        state = self.state_dict()
        if self.is_main:
            save_checkpoint(state, path)
        if self.world_size > 1:
            import torch.distributed as dist
            dist.barrier()
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` (all ranks read it)."""
        # to the CPU: the saved RNG states must stay CPU ByteTensors for set_rng_state (a CUDA
        # map_location moved them to the GPU and resuming crashed); the modules' load_state_dict,
        # the optimizer's and the running sums below move their tensors where they belong
        state = load_checkpoint(path, map_location="cpu")
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a trainer checkpoint (format {state.get('format')!r}, "
                             f"expected {CHECKPOINT_FORMAT!r})")
        meta = state["meta"]
        for key, mine in (("steps_per_epoch", self.steps_per_epoch), ("seed", self.seed),
                          ("accum_steps", self.accum_steps), ("world_size", self.world_size)):
            if meta[key] != mine:
                raise ValueError(f"checkpoint {path} was written with {key}={meta[key]}, this run has {key}={mine}: "
                                 "resuming would not continue the same run (use another checkpoint_dir)")
        load_model_state(self.model, state["model"], source=path)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.amp and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        if state["sampler"] is not None and hasattr(self.batch_sampler, "load_state_dict"):
            self.batch_sampler.load_state_dict(state["sampler"])
        pos = state["position"]
        self.epoch, self.step, self.global_step = pos["epoch"], pos["step"], pos["global_step"]
        running = state["running"]
        self._sums = {k: v.to(self.device) for k, v in running["sums"].items()}
        self._epoch_lr, self._epoch_time = running["epoch_lr"], running["epoch_time"]
        self._epoch_sampler_state = state["sampler"] if self.step > 0 else None
        self.history = list(state["history"])
        self.train_time_s = state["train_time_s"]
        for h, hs in zip(self.hooks, state["hooks"]):
            h.load_state_dict(hs)
        if isinstance(self.criterion, nn.Module) and state.get("criterion") is not None:  # older checkpoints lack it
            load_model_state(self.criterion, state["criterion"], source=f"{path} (criterion)")
        set_rng_state(state["rng"])


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


__all__ = ["Trainer", "Hook", "LambdaHook", "Batch", "SeededDataset", "EpochBatches", "mix_seed", "seed_everything",
           "CHECKPOINT_FORMAT"]
