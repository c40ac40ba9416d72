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

import torch
from _timing import round_robin, step_batch, step_parser, timed_step

from reidlib.engine.build import build_run_model
from reidlib.losses import build_criterion
from reidlib.papers import feature_fusion

ROWS = ("baseline", "bmm", "full")


def main() -> None:
    args = step_parser(__doc__.splitlines()[0], height=192, width=64, p=8, k=4, classes=128, rounds=5, warmup=1).parse_args()
    device, x, y = step_batch(args)

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

    def step(model, loss, opt) -> None:
        opt.zero_grad(set_to_none=True)
        loss.total(model(x), y).backward()
        opt.step()

    med = round_robin({name: (lambda r, m=model, lo=loss, o=opt: timed_step(lambda: step(m, lo, o), device))
                       for name, model, loss, opt, _ in setups}, args.rounds, args.warmup)
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"feature-fusion step cost, {args.backbone} {args.height}x{args.width}, batch {args.p}x{args.k}, "
          f"{args.classes} ids, {dev}, median of {args.rounds} rounds")
    print(f"{'row':<12}{'parameters':>14}{'ms/step':>10}{'x baseline':>12}")
    for name, *_, params in setups:
        print(f"{name:<12}{params:>14,d}{1000 * med[name]:>10.1f}{med[name] / med['baseline']:>12.2f}")


if __name__ == "__main__":
    main()
