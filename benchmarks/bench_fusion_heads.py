"""The feature-fusion network's 21 MPFE heads: batched (stacked weights, ``torch.bmm``) against a Python loop
of 21 plain heads (:class:`~reidlib.models.fusion.MPFEHead`), on one CPU batch of pooled windows.

One step = forward (train mode) + a loss on the 21 logits + backward. Both variants hold the same weights
(:meth:`MPFEHeads.from_heads`), are timed round-robin on the same batch (these machines are noisy), and the
median is reported as a ratio to the loop measured in the same run. Prints the table; asserts nothing (see
DESIGN.md, Performance).

    python benchmarks/bench_fusion_heads.py                           # ResNet-18's fused map (960 channels)
    python benchmarks/bench_fusion_heads.py --channels 3840 --batch 64  # ResNet-50's, the paper's PK 16 x 4

Target (issue 14, Speed): the 21 heads are not a Python loop of 21 small kernels where one batched op does it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from reidlib.models.fusion import MPFEHead, MPFEHeads


def _step(forward, z: torch.Tensor) -> None:
    z.grad = None
    logits = forward(z)
    logits.square().mean().backward()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=960, help="fused channels C (the heads take 2C)")
    ap.add_argument("--classes", type=int, default=751)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--heads", type=int, default=21)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    plain = torch.nn.ModuleList(MPFEHead(2 * args.channels, args.classes) for _ in range(args.heads)).train()
    batched = MPFEHeads.from_heads(list(plain)).train()
    z = torch.randn(args.batch, args.heads, 2 * args.channels, requires_grad=True)

    def loop(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([h(x[:, i])[2] for i, h in enumerate(plain)], dim=1)

    def fused(x: torch.Tensor) -> torch.Tensor:
        return batched(x)[2]

    variants = {"loop of 21 heads (reference)": loop, "batched (bmm)": fused}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():  # warm-up
        _step(fn, z)
    for _ in range(args.iters):
        for name, fn in variants.items():
            t = time.perf_counter()
            _step(fn, z)
            times[name].append(time.perf_counter() - t)
    ref = statistics.median(times["loop of 21 heads (reference)"])
    print(f"MPFE heads: {args.heads} x (2C={2 * args.channels} -> 256 -> 512 -> {args.classes}), batch {args.batch}, "
          f"{args.threads} thread(s), forward + backward, median of {args.iters}")
    print(f"{'variant':32s} {'ms/step':>9s} {'vs loop':>8s}")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:32s} {1000 * m:9.2f} {m / ref:8.2f}x")


if __name__ == "__main__":
    main()
