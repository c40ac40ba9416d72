"""Speed S (images/s) of every network the book trains, at batch 1 and 64, and the cost of measuring it.

The networks: one per architecture of the run records of every chapter in one regime (by default the CPU
regime, ImageNet-initialised EfficientNet-Lite0 on synthped; see ``reidlib.papers.henet.book_settings``),
plus HENet's Base and full model at the part chapters' CPU size (192x64), which train on the chapter's
recipe whether or not their records exist yet. Each is an untrained copy (weights do not change the speed).

For each network and batch the eval forward is timed two ways in the same round: a bare loop
(``reidlib.eval.efficiency.images_per_second``: ``model(x)`` under ``torch.inference_mode``) and
``reidlib.eval.efficiency`` (which also counts FD, parameters and FLOPs). Rounds alternate the two
and the median of each is reported; ``overhead`` is bare / efficiency images per second. Prints the
table, with the image size, threads and device; writes it as CSV with ``--csv``. Asserts nothing (DESIGN.md, Performance).

    python benchmarks/bench_efficiency.py                  # this CPU, 2 threads
    python benchmarks/bench_efficiency.py --device cuda --threads 8 --csv results/efficiency/gpu.csv

Target (issue 12): the efficiency measurement adds at most 5 % over a bare timed forward loop (overhead
<= 1.05).
"""
from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict

import pandas as pd
import torch

from reidlib.eval import efficiency
from reidlib.eval.efficiency import images_per_second
from reidlib.models import build_model
from reidlib.papers import henet
from reidlib.papers.baseline import CPU_PROTOCOL


def networks(results: str | None, start: str) -> dict[str, tuple[torch.nn.Module, int, int]]:
    """name -> (untrained network in eval mode, height, width)."""
    out: dict[str, tuple[torch.nn.Module, int, int]] = {}
    seen: set[str] = set()
    for (chapter, setting), recs in henet.book_settings(results, start).items():
        key, cfg, num_classes = henet.architecture_of(recs[0])
        if key not in seen:
            seen.add(key)
            out[f"{chapter}: {setting}"] = (henet.build_architecture(cfg, num_classes).eval(), cfg.height, cfg.width)
    h, w = henet.PART_IMAGE_SIZE
    for variant in ("base", "base+losses"):
        torch.manual_seed(0)
        model = build_model("henet", 751, backbone=CPU_PROTOCOL["backbone"], **asdict(henet.VARIANTS[variant]))
        out[f"henet: {variant} (recipe, 751 ids)"] = (model.eval(), h, w)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=None, help="results folder (default: the project's)")
    ap.add_argument("--start", default="efficientnet_lite0-imagenet", help="the regime: a protocol prefix")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--iters", type=int, default=3, help="timed forwards per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for name, (model, h, w) in networks(args.results, args.start).items():
        model = model.to(device)
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(batch, 3, h, w, device=device)
            bare, measured = [], []
            for _ in range(args.rounds):
                bare.append(images_per_second(model, x, warmup=1, iters=args.iters))
                measured.append(efficiency(model, h, w, batch=batch, iters=args.iters, warmup=1)["images_per_s"])
            b, m = statistics.median(bare), statistics.median(measured)
            rows.append({"network": name, "image size": f"{h}x{w}", "batch": batch, "threads": args.threads,
                         "device": str(device), "S bare (img/s)": b, "S efficiency (img/s)": m, "overhead": b / m})
            print(f"{name:70s} {h}x{w} batch {batch:3d}: {m:8.1f} img/s (bare {b:8.1f}, overhead {b / m:.3f})",
                  flush=True)
        model.cpu()
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.round(3).to_string(index=False))
    print(f"largest overhead: {table['overhead'].max():.3f} (target <= 1.05); median {table['overhead'].median():.3f}")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
