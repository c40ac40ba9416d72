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

import torch
from _timing import round_robin, step_batch, step_parser, timed_step

from reidlib.losses import build_criterion
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


def main() -> None:
    args = step_parser(__doc__.splitlines()[0], height=128, width=64, p=4, k=4, classes=32, rounds=7, warmup=2).parse_args()
    device, x, y = step_batch(args)

    setups = []
    for name, variant, overrides in ROWS:
        torch.manual_seed(0)
        model = build(variant, args.classes, backbone=args.backbone, **overrides).to(device).train()
        loss = build_criterion("reid", args.classes, **criterion_options(model.config)).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
        setups.append((name, model, loss, opt))

    def step(model, loss, opt, seed: int) -> None:
        torch.manual_seed(seed)  # the same erasing draws for every variant
        opt.zero_grad(set_to_none=True)
        loss.total(model(x, targets=y), y).backward()
        opt.step()

    med = round_robin({name: (lambda r, m=model, lo=loss, o=opt: timed_step(lambda: step(m, lo, o, r), device))
                       for name, model, loss, opt in setups}, args.rounds, args.warmup)
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
