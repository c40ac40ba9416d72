"""What the step benchmarks share: timing one training step on a device, and timing several variants round-robin
on the same batch (these machines are noisy: a slow moment then hits every variant alike), keeping the median."""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer measures it (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_step(step: Callable[[], None], device: torch.device) -> float:
    """Seconds of one call of ``step`` on ``device``."""
    sync(device)
    t0 = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - t0


def round_robin(steps: Mapping[str, Callable[[int], float]], rounds: int, warmup: int) -> dict[str, float]:
    """Median seconds of each variant: ``steps[name](round)`` times one step and returns its seconds; every
    round runs each variant once, in order; the first ``warmup`` rounds are not kept."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(warmup + rounds):
        for name, step in steps.items():
            t = step(r)
            if r >= warmup:
                times[name].append(t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def step_parser(description: str, *, height: int, width: int, p: int, k: int, classes: int, rounds: int,
                warmup: int) -> argparse.ArgumentParser:
    """The step benchmarks' command line: backbone (the CPU default), image size, batch P x K, classes, rounds,
    warm-up rounds, threads and device, with these defaults."""
    from reidlib.papers.baseline import CPU_PROTOCOL

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--backbone", default=CPU_PROTOCOL["backbone"])
    ap.add_argument("--height", type=int, default=height)
    ap.add_argument("--width", type=int, default=width)
    ap.add_argument("--p", type=int, default=p)
    ap.add_argument("--k", type=int, default=k)
    ap.add_argument("--classes", type=int, default=classes)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap


def step_batch(args: argparse.Namespace) -> tuple[torch.device, torch.Tensor, torch.Tensor]:
    """``(device, images, labels)``: the thread count set, one fixed random batch of ``P x K`` images of the
    asked size and its labels (``K`` images of each of ``P`` identities), on the device."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.p * args.k, 3, args.height, args.width, generator=g).to(device)
    y = torch.arange(args.p).repeat_interleave(args.k).to(device)
    return device, x, y
