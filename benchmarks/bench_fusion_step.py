"""Cost of a feature-fusion training step, the 21-head model against the chapter's baseline on the same batch.

One step = forward (train mode) + the released code's losses (:func:`reidlib.papers.feature_fusion.criterion_options`:
21 ID losses and 6 level triplets for MGO, one of each for the baseline) + backward + Adam step. The rows are
variants of the one network ``mgo_fusion``: ``baseline`` (stage 4, one global descriptor, a BN head),
``bmm`` (MGO's 21 windows with their MPFE heads, batched), ``full`` (+ FMR of all stages, SAM, CAM). They are
timed round-robin on the same batch (these machines are noisy) and the median is reported as a ratio to the
baseline measured in the same run. Prints the table; asserts nothing (see DESIGN.md, Performance).
``benchmarks/bench_fusion_heads.py`` measures the heads alone, batched against a Python loop of 21.

    python benchmarks/bench_fusion_step.py                         # the CPU regime (EfficientNet-Lite0, 192x64)
    python benchmarks/bench_fusion_step.py --backbone resnet50 --height 384 --width 128 --p 16 --k 4 --device cuda

Issue 14, Speed: the 21-head model's step against the baseline's, printed.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from reidlib.engine.build import build_run_model
from reidlib.losses import build_criterion
from reidlib.papers import feature_fusion
from reidlib.papers.baseline import CPU_PROTOCOL

ROWS = ("baseline", "bmm", "full")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default=CPU_PROTOCOL["backbone"])
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--p", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--classes", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.p * args.k, 3, args.height, args.width, generator=g).to(device)
    y = torch.arange(args.p).repeat_interleave(args.k).to(device)

    setups = []
    for variant in ROWS:
        cfg = feature_fusion.config(variant=variant, backbone=args.backbone, pretrained=False, height=args.height,
                                    width=args.width)
        torch.manual_seed(0)
        model = build_run_model(cfg, args.classes).to(device).train()
        loss = build_criterion(cfg.criterion, args.classes, **cfg.criterion_options).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
        params = sum(p.numel() for p in model.parameters())
        setups.append((variant, model, loss, opt, params))

    def step(model, loss, opt) -> float:
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.total(model(x), y).backward()
        opt.step()
        _sync(device)
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {name: [] for name, *_ in setups}
    for r in range(args.warmup + args.rounds):
        for name, model, loss, opt, _ in setups:
            t = step(model, loss, opt)
            if r >= args.warmup:
                times[name].append(t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"feature-fusion step cost, {args.backbone} {args.height}x{args.width}, batch {args.p}x{args.k}, "
          f"{args.classes} ids, {dev}, median of {args.rounds} rounds")
    print(f"{'row':<12}{'parameters':>14}{'ms/step':>10}{'x baseline':>12}")
    for name, *_, params in setups:
        print(f"{name:<12}{params:>14,d}{1000 * med[name]:>10.1f}{med[name] / med['baseline']:>12.2f}")


if __name__ == "__main__":
    main()
