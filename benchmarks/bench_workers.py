"""Training-loader throughput and training-step time against the number of DataLoader workers.

The data path is the Trainer's: ``DataLoader(SeededDataset(ImageDataset(...)), batch_sampler=EpochBatches(PKSampler))``
(as ``Trainer.__init__`` builds it) over synthped's ``default`` preset with the training transforms at
128x64 and P x K = 16 x 4 batches. For ``num_workers`` in 0, 1, 2 it measures

* the loader alone: seconds to the first batch (worker start-up) and images/s over the next batches;
* full training steps of the strong baseline (ResNet-18) through ``Trainer.fit``: seconds per step
  after the first one (a hook stamps the end of each step), so loading overlaps the step with workers.

Ratios are against ``num_workers=0`` measured in the same run (these machines are shared and noisy);
nothing is asserted. The CPU count is printed: with 2 cores, 2 workers compete with the training step.

    python benchmarks/bench_workers.py [--workers 0,1,2] [--loader-batches 8] [--steps 4] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reidlib.data import ImageDataset, build_dataset, synthped  # noqa: E402
from reidlib.data.samplers import PKSampler  # noqa: E402
from reidlib.data.transforms import build_transforms  # noqa: E402
from reidlib.engine.trainer import EpochBatches, Hook, SeededDataset, Trainer  # noqa: E402
from reidlib.models import Baseline  # noqa: E402


def criterion_for(num_classes: int):
    """The house criterion (ID + triplet); the older engine name where the new one is absent."""
    try:
        from reidlib.losses import build_criterion
    except ImportError:  # before the criterion moved to reidlib.losses
        from reidlib.engine.run import BaselineCriterion

        return BaselineCriterion(num_classes)
    return build_criterion("reid", num_classes)


def loader_run(train_set, pids, args, workers: int) -> tuple[float, float]:
    """(seconds to the first batch, images/s over the next ``loader_batches`` batches)."""
    sampler = PKSampler(pids, args.P, args.K, seed=0)
    batches = EpochBatches(sampler, seed=0)
    batches.epoch, batches.start, batches.stop = 0, 0, args.loader_batches + 1
    loader = DataLoader(SeededDataset(train_set), batch_sampler=batches, num_workers=workers,
                        persistent_workers=workers > 0)
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter() - t0
    t1, images = time.perf_counter(), 0
    for data in it:
        images += len(data[0])
    rate = images / (time.perf_counter() - t1)
    del it, loader  # stop the workers before the next configuration
    return first, rate


class StepClock(Hook):
    """Stamps the end of every training step."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_step_end(self, trainer, losses) -> None:
        self.stamps.append(time.perf_counter())


def train_run(train_set, pids, num_classes: int, args, workers: int) -> tuple[float, float]:
    """(seconds of the first step incl. start-up, median seconds per later step) through ``Trainer.fit``."""
    torch.manual_seed(0)
    model = Baseline("resnet18", num_classes=num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
    clock = StepClock()
    trainer = Trainer(model, criterion_for(num_classes), opt, train_set, PKSampler(pids, args.P, args.K, seed=0),
                      epochs=1, num_workers=workers, max_steps_per_epoch=args.steps + 1, hooks=[clock],
                      progress=False, checkpoint_dir=None)
    t0 = time.perf_counter()
    trainer.fit()
    steps = [b - a for a, b in zip(clock.stamps, clock.stamps[1:])]
    del trainer
    return clock.stamps[0] - t0, statistics.median(steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", default="0,1,2", help="comma-separated num_workers; the first is the reference")
    ap.add_argument("--loader-batches", type=int, default=8, help="batches timed per loader run (after the first)")
    ap.add_argument("--steps", type=int, default=4, help="training steps timed per run (after the first)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads of the main process")
    ap.add_argument("--P", type=int, default=16)
    ap.add_argument("--K", type=int, default=4)
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    root = synthped.ensure("default")
    ds = build_dataset("synthped", root)
    train_set = ImageDataset(ds.train, build_transforms(128, 64, train=True))
    pids = [r.pid for r in ds.train]
    num_classes = len(set(pids))
    setup = time.perf_counter() - t0

    loader = {w: loader_run(train_set, pids, args, w) for w in workers}
    train = {w: train_run(train_set, pids, num_classes, args, w) for w in workers}

    ref_rate, ref_step = loader[workers[0]][1], train[workers[0]][1]
    batch = args.P * args.K
    print(f"config: synthped default ({len(ds.train)} train images, {num_classes} ids), 128x64 train transforms, "
          f"batch {args.P}x{args.K}; loader {args.loader_batches} batches, train {args.steps} steps "
          f"(+1 warm-up each); ResNet-18 baseline, {args.threads} torch thread(s), {os.cpu_count()} CPU(s); "
          f"dataset ready in {setup:.1f} s")
    print(f"{'workers':>7} | {'1st batch s':>11} | {'loader img/s':>12} | {'x w0':>5} | {'1st step s':>10} | "
          f"{'s/step':>7} | {'train img/s':>11} | {'x w0':>5}")
    print("-" * 89)
    for w in workers:
        first, rate = loader[w]
        first_step, step = train[w]
        print(f"{w:>7} | {first:>11.2f} | {rate:>12.0f} | {rate / ref_rate:>5.2f} | {first_step:>10.2f} | "
              f"{step:>7.3f} | {batch / step:>11.1f} | {ref_step / step:>5.2f}")
    print(f"ratios 'x w0': loader images/s and training steps/s against num_workers={workers[0]}, same run; "
          f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
