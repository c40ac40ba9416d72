"""Cost of one hard-triplet mining round against one training update (Almazán et al., 2018, Sec. 3.2).

A mining round embeds a pool of training images with the current model (eval mode, no gradient:
:func:`reidlib.engine.mining.embed_indices`) and selects each query's 25 hardest triplets
(:func:`reidlib.engine.mining.hardest_triplets`). The reference, measured in the same run: one
training update of the same model (the library's EfficientNet-Lite0 baseline, random weights --
pretraining does not change the time) in train mode, forward + backward + Adam step of ``3 b``
images (``b`` triplets). Rounds of the two alternate (the machine is shared and noisy); the script
prints medians, the ratio mining round / update, and the ratio amortised over the refresh period
(the pool serves ``k`` updates): ``round / k / update``, the mining overhead per update.

    python benchmarks/bench_mining.py [--pool 5000] [--size 128x64] [--triplets 32] [--refresh 16]
                                      [--threads 1] [--rounds 3] [--small]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from reidlib.engine.mining import embed_indices, hardest_triplets
from reidlib.models import build_model


class RandomImages:
    """``n`` items ``(image, pid, camid, index)`` served from a small bank of random images (the cost
    of a forward pass does not depend on the pixels; the bank keeps memory low at pool 5,000)."""

    def __init__(self, n: int, ids: int, height: int, width: int, bank: int = 256) -> None:
        g = torch.Generator().manual_seed(0)
        self.bank = torch.randn(min(bank, n), 3, height, width, generator=g)
        self.pids = np.random.default_rng(0).integers(0, ids, size=n)

    def __len__(self) -> int:
        return len(self.pids)

    def __getitem__(self, i: int):
        return self.bank[i % len(self.bank)], int(self.pids[i]), 0, i


def update_seconds(model, opt, images: torch.Tensor) -> float:
    """One training update on ``images`` (3 b of them, read as consecutive triplets)."""
    t0 = time.perf_counter()
    feat = model(images)["branches"]["main"]["feat"]
    q, p, n = F.normalize(feat, dim=1).reshape(-1, 3, feat.shape[1]).unbind(1)
    loss = (0.1 + (q * n).sum(1) - (q * p).sum(1)).clamp(min=0).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=5000, help="images per pool (5,000 in the paper)")
    ap.add_argument("--size", default="128x64", help="image size HxW")
    ap.add_argument("--triplets", type=int, default=32, help="triplets per update b (3 b images)")
    ap.add_argument("--refresh", type=int, default=16, help="updates per pool k (16 in the paper)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--ids", type=int, default=751, help="identities (Market-1501's training set: 751)")
    ap.add_argument("--embed-batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--updates", type=int, default=3, help="updates timed per round (median)")
    ap.add_argument("--small", action="store_true", help="a quick check: pool 400, 64x32, b 8, 2 rounds")
    args = ap.parse_args()
    if args.small:
        args.pool, args.size, args.triplets, args.rounds, args.updates, args.ids = 400, "64x32", 8, 2, 2, 100
    height, width = (int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = build_model("baseline", args.ids, backbone="efficientnet_lite0", pretrained=False)
    opt = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    data = RandomImages(args.pool, args.ids, height, width)
    pool = list(range(args.pool))
    batch = torch.randn(3 * args.triplets, 3, height, width, generator=torch.Generator().manual_seed(1))

    # warm-up (allocator, kernels)
    model.train()
    update_seconds(model, opt, batch)
    embed_indices(model, data, pool[: args.embed_batch], batch_size=args.embed_batch)

    embed_s, select_s, update_s, queries = [], [], [], 0
    for _ in range(args.rounds):
        model.train()  # the Trainer's state when the sampler's set_epoch runs
        t0 = time.perf_counter()
        emb = embed_indices(model, data, pool, batch_size=args.embed_batch)
        t1 = time.perf_counter()
        table = hardest_triplets(emb, data.pids, top=args.top)
        t2 = time.perf_counter()
        embed_s.append(t1 - t0)
        select_s.append(t2 - t1)
        queries = len(table)
        update_s.append(statistics.median(update_seconds(model, opt, batch) for _ in range(args.updates)))
    e, s, u = statistics.median(embed_s), statistics.median(select_s), statistics.median(update_s)
    mining = e + s
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    print(f"config: EfficientNet-Lite0 baseline (random weights), pool {args.pool} at {height}x{width}, "
          f"embed batch {args.embed_batch}, {queries} valid queries, top {args.top}; update: 3 x {args.triplets} images; "
          f"{args.rounds} rounds, {args.threads} thread(s), CPU")
    print(f"embed pool        : {e:8.3f} s   (median; rounds: {fmt(embed_s)})  = {e / args.pool * 1e3:.2f} ms/image")
    print(f"select top-{args.top:<3d}    : {s:8.3f} s   (median; rounds: {fmt(select_s)})")
    print(f"one update        : {u:8.3f} s   (median of {args.updates} per round; rounds: {fmt(update_s)})")
    print(f"ratio mining round / update          : {mining / u:8.2f}  (embed {e / u:.2f} + select {s / u:.2f})")
    print(f"amortised per update (refresh {args.refresh:>3d})   : {mining / args.refresh / u:8.3f}  "
          f"(training with mining takes {1 + mining / args.refresh / u:.2f} x the updates' time)")


if __name__ == "__main__":
    main()
