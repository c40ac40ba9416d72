"""Per-step cost of the Trainer against a minimal hand-written PyTorch loop.

Same model (the strong baseline on the CPU default backbone, EfficientNet-Lite0; ``--backbone``),
same in-memory data, same P x K batches, same losses, optimizer and schedule; CPU, small config.
The two loops are timed in alternating rounds in the same process (the machine is shared and
noisy) and the script prints each one's median seconds per step and the ratio trainer / hand loop.
Target (issue 4): ratio <= 1.05.

    python benchmarks/bench_trainer.py [--steps 6] [--rounds 5] [--height 64 --width 32 --P 8 --K 4] [--backbone resnet18]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, Dataset

from reidlib.engine.schedules import as_lr_scheduler
from reidlib.engine.trainer import Batch, Trainer
from reidlib.losses import build_criterion
from reidlib.models import Baseline
from reidlib.papers.baseline import CPU_PROTOCOL, bag_of_tricks


class MemoryData(Dataset):
    """Random images in memory (no decoding: the comparison is about the loop, not the data)."""

    def __init__(self, n_ids: int, per_id: int, height: int, width: int) -> None:
        self.x = torch.randn(n_ids * per_id, 3, height, width)
        self.pids = [i // per_id for i in range(n_ids * per_id)]

    def __len__(self) -> int:
        return len(self.pids)

    def __getitem__(self, i: int):
        return self.x[i], self.pids[i], 0, i


class Batches:
    """Fixed P x K batches (the same for both loops)."""

    def __init__(self, per_id: int, p: int, k: int, steps: int) -> None:
        self.batches = [[(b * p + j) * per_id + i for j in range(p) for i in range(k)] for b in range(steps)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def setup(args, n_ids: int):
    torch.manual_seed(0)
    model = Baseline(args.backbone, num_classes=n_ids)
    crit = build_criterion("reid", n_ids)
    opt = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
    return model, crit, opt


def hand_loop(args, data, batches, n_ids) -> list[float]:
    model, crit, opt = setup(args, n_ids)
    sched = as_lr_scheduler(opt, bag_of_tricks(), len(batches))
    loader = DataLoader(data, batch_sampler=batches)
    model.train()
    times = []
    for images, pids, camids, idx in loader:
        t0 = time.perf_counter()
        out = model(images)
        losses = crit(out, Batch(images, pids, camids, idx))
        loss = sum(losses.values())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        times.append(time.perf_counter() - t0)
    return times


def trainer_loop(args, data, batches, n_ids) -> float:
    model, crit, opt = setup(args, n_ids)
    t = Trainer(model, crit, opt, data, batches, epochs=1, schedule=bag_of_tricks(), progress=True, log_every=20)
    t0 = time.perf_counter()
    t.fit()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--P", type=int, default=8)
    ap.add_argument("--K", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backbone", default=CPU_PROTOCOL["backbone"], help="the CPU default; resnet18 was the first release's")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n_ids = args.P * args.steps
    data = MemoryData(n_ids, args.K, args.height, args.width)
    batches = Batches(args.K, args.P, args.K, args.steps)
    hand_loop(args, data, batches, n_ids)  # warm-up (allocator, kernels)
    hand, trainer = [], []
    for _ in range(args.rounds):
        # the hand loop's time covers its data loading too, like the trainer's epoch
        t0 = time.perf_counter()
        hand_loop(args, data, batches, n_ids)
        hand.append((time.perf_counter() - t0) / args.steps)
        trainer.append(trainer_loop(args, data, batches, n_ids) / args.steps)
    h, t = statistics.median(hand), statistics.median(trainer)
    print(f"config: {args.backbone} baseline, batch {args.P}x{args.K} at {args.height}x{args.width}, {args.steps} steps x "
          f"{args.rounds} rounds, {args.threads} thread(s), CPU")
    print(f"hand-written loop : {h * 1e3:8.1f} ms/step (median; rounds: {', '.join(f'{x * 1e3:.0f}' for x in hand)})")
    print(f"Trainer           : {t * 1e3:8.1f} ms/step (median; rounds: {', '.join(f'{x * 1e3:.0f}' for x in trainer)})")
    print(f"ratio trainer / hand: {t / h:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
