"""Cost of an ES-Net training step with BESM against a Base step on the same batch.

One step = forward (train mode) + Eq. (1) loss + backward + Adam step. BESM adds a forward of
the ESB without autograd up to its layer4, one backward from S_batch (Eq. (5)) to layer4 only,
and the erasing; ES-Net also has a second branch. Variants are timed round-robin on the same
batch (these machines are noisy) and the median is reported, as a ratio to Base measured in the
same run. Prints the table; asserts nothing (see DESIGN.md, Performance).

    python benchmarks/bench_esnet.py                      # the CPU default (EfficientNet-Lite0, 128x64, 4x4)
    python benchmarks/bench_esnet.py --backbone resnet50 --height 384 --width 128 --p 16 --k 4 --device cuda

Target (issue 5): a training step with BESM costs at most 1.6x the step without it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from reidlib.losses import build_criterion
from reidlib.papers.baseline import CPU_PROTOCOL
from reidlib.papers.esnet import build, criterion_options

# (row name, variant, overrides): what each row measures
ROWS = [
    ("Base", "base", {}),
    ("Base+BESM (P=0.3)", "base+besm", {}),
    ("Base+BESM (P=1, every image)", "base+besm", {"prob": 1.0}),
    ("AIB+ESB without BESM", "esnet", {"erasing": "none"}),
    ("ES-Net (BESM, P=0.5)", "esnet", {}),
    ("ES-Net (BESM, P=1, every image)", "esnet", {"prob": 1.0}),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default=CPU_PROTOCOL["backbone"])
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--p", type=int, default=4)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--classes", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.p * args.k, 3, args.height, args.width, generator=g).to(device)
    y = torch.arange(args.p).repeat_interleave(args.k).to(device)

    setups = []
    for name, variant, overrides in ROWS:
        torch.manual_seed(0)
        model = build(variant, args.classes, backbone=args.backbone, **overrides).to(device).train()
        loss = build_criterion("reid", args.classes, **criterion_options(model.config)).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
        setups.append((name, model, loss, opt))

    def step(model, loss, opt, seed: int) -> float:
        torch.manual_seed(seed)  # the same erasing draws for every variant
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.total(model(x, targets=y), y).backward()
        opt.step()
        _sync(device)
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {name: [] for name, *_ in setups}
    for r in range(args.warmup + args.rounds):
        for name, model, loss, opt in setups:
            t = step(model, loss, opt, seed=r)
            if r >= args.warmup:
                times[name].append(t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = med["Base"]
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"ES-Net step cost, {args.backbone} {args.height}x{args.width}, batch {args.p}x{args.k}, {dev}, "
          f"median of {args.rounds} rounds")
    print(f"{'step':<34}{'ms':>10}{'x Base':>9}")
    for name in med:
        print(f"{name:<34}{1000 * med[name]:>10.1f}{med[name] / base:>9.2f}")
    print()
    print("BESM overhead (same network with / without BESM):")
    print(f"  one branch : Base+BESM (P=0.3) / Base              = {med['Base+BESM (P=0.3)'] / base:.2f}")
    print(f"               Base+BESM (P=1) / Base                = {med['Base+BESM (P=1, every image)'] / base:.2f}")
    no_besm = med["AIB+ESB without BESM"]
    print(f"  ES-Net     : ES-Net (P=0.5) / AIB+ESB without BESM = {med['ES-Net (BESM, P=0.5)'] / no_besm:.2f}")
    print(f"               ES-Net (P=1) / AIB+ESB without BESM   = {med['ES-Net (BESM, P=1, every image)'] / no_besm:.2f}")
    print(f"  two branches vs Base: ES-Net (P=0.5) / Base          = {med['ES-Net (BESM, P=0.5)'] / base:.2f}")


if __name__ == "__main__":
    main()
