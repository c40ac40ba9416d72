"""Hamming search at Market-1501+500k scale (515,913 gallery codes): the hashing chapter's speed targets.

Random codes (the speed of an exact scan does not depend on the codes' values). In one run:

* packing: ``reidlib.retrieval.pack_codes`` on (N, 2048) float32 +-1 codes, beside bare
  ``numpy.packbits(codes > 0)`` (which checks nothing); target <= 1 s;
* one query, exact top-100 at 128 / 512 / 2048 bits: ``HammingIndex.search`` beside faiss'
  ``IndexBinaryFlat.search`` on the same codes (target <= 1.1x) and the paper's 521.1 ms for 2048 bits
  (target >= 40x faster); results identical to a numpy popcount reference on a subset; and at 2048 bits on
  each thread count > 1, the gallery split over the threads (faiss alone runs one query on one core);
* a batch of 3,368 queries (Market's query set) on 1 and 2 threads: time, and the rate
  gallery bytes x queries / time beside the read bandwidth of one numpy pass over the gallery;
* AFR (30 attribute bits, then 2048-bit ID codes) at w = 761 and w = 1e5 beside plain exact search;
* float 2048-d exact search (faiss ``IndexFlatIP``) of one query, for Table 5's float rows.

    python benchmarks/bench_hamming.py                       # the full scale, ~6 GB of memory
    python benchmarks/bench_hamming.py --n 50000 --queries 200 --csv results/hashing/search_times.csv

Prints the figures; asserts nothing (DESIGN.md, Performance).
"""
from __future__ import annotations

import argparse
import platform
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch

from reidlib.retrieval import (
    HammingIndex,
    hamming_distances,
    interleaved_medians,
    median_seconds,
    pack_codes,
    random_packed,
    search_timings,
)

PAPER_2048_MS = 521.1    # Table 5: one query over Market+500k, 2048-bit codes, the authors' CPU


def packing_and_float_search(n: int, rng: np.random.Generator, repeat: int):
    """Times of pack_codes and of bare packbits on (n, 2048) float32 +-1 codes, the packed codes, and the
    float search rows on the same matrix used as 2048-d features (freed on return: 4.2 GB at full scale)."""
    signs = np.where(rng.random((n, 2048), dtype=np.float32) > 0.5, np.float32(1), np.float32(-1))
    t = interleaved_medians({"ours": lambda: pack_codes(signs), "bare": lambda: np.packbits(signs > 0, axis=1)}, repeat=3)
    return t["ours"], t["bare"], pack_codes(signs), search_timings({}, float_features=signs, repeat=repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=515_913, help="gallery size")
    ap.add_argument("--queries", type=int, default=3368, help="batch size of the batched search")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--csv", default=None, help="write the table of times here")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    faiss.omp_set_num_threads(threads[0])
    torch.set_num_threads(threads[0])
    rng = np.random.default_rng(0)
    rows = []

    def row(**r) -> None:
        rows.append({"n": args.n, "threads": faiss.omp_get_max_threads(), **r})
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)

    t_pack, t_bare, packed_2048, float_rows = packing_and_float_search(args.n, rng, args.repeat)
    row(measure="pack 2048-bit codes", seconds=t_pack, reference="numpy.packbits(codes > 0)", ratio=t_pack / t_bare)
    codes = {2048: packed_2048, 512: random_packed(args.n, 512, seed=1), 128: random_packed(args.n, 128, seed=2)}

    for bits, packed in codes.items():
        ours = HammingIndex(packed, bits=bits)
        raw = faiss.IndexBinaryFlat(bits)
        raw.add(packed)
        q = packed[:1]
        t = interleaved_medians({"ours": lambda ours=ours, q=q: ours.search(q, 100),
                                 "raw": lambda raw=raw, q=q: raw.search(q, 100)}, repeat=args.repeat)
        t_ours, t_raw = t["ours"], t["raw"]
        row(measure=f"one query, top-100, {bits} bits", seconds=t_ours, reference="faiss IndexBinaryFlat", ratio=t_ours / t_raw)
        if bits == 2048:
            row(measure="paper / ours, one query, 2048 bits", seconds=t_ours, reference="paper 521.1 ms",
                ratio=PAPER_2048_MS / 1e3 / t_ours)
            for t in (t for t in threads if t > 1):
                # faiss threads over queries: one query runs on one core unless HammingIndex splits the gallery
                split = HammingIndex(packed, bits=bits, threads=t)
                assert np.array_equal(split.search(q, 100)[1], ours.search(q, 100)[1])
                tt = interleaved_medians({"split": lambda split=split, q=q: split.search(q, 100),
                                          "raw": lambda raw=raw, q=q: raw.search(q, 100)}, repeat=args.repeat)
                rows.append({"n": args.n, "threads": t, "measure": "one query, top-100, 2048 bits, gallery split",
                             "seconds": tt["split"], "reference": "faiss IndexBinaryFlat", "ratio": tt["split"] / tt["raw"]})
                print(rows[-1], flush=True)
                rows.append({**rows[-1], "measure": "paper / ours, one query, 2048 bits, gallery split",
                             "reference": "paper 521.1 ms", "ratio": PAPER_2048_MS / 1e3 / tt["split"]})
                print(rows[-1], flush=True)
        sub = packed[:20_000]
        qs = packed[100:105]
        ref = np.argsort(hamming_distances(qs, sub), axis=1, kind="stable")[:, :100]
        popcount = np.bitwise_count(qs[:, None, :] ^ sub[None]).sum(-1)
        same = np.array_equal(HammingIndex(sub).search(qs, 100)[1], np.argsort(popcount, axis=1, kind="stable")[:, :100])
        row(measure=f"identical to numpy popcount, {bits} bits", seconds=float("nan"), reference="numpy bitwise_count",
            ratio=float(same and np.array_equal(ref, np.argsort(popcount, axis=1, kind="stable")[:, :100])))

    batch = codes[2048][rng.integers(0, args.n, args.queries)]
    index = HammingIndex(codes[2048])
    for t in threads:
        faiss.omp_set_num_threads(t)
        t_batch = median_seconds(lambda: index.search(batch, 100), repeat=max(1, args.repeat // 2), warmup=0)
        t_read = median_seconds(lambda: codes[2048].view(np.uint64).sum(), repeat=3)
        rate = codes[2048].nbytes * args.queries / t_batch
        row(measure=f"batch of {args.queries}, 2048 bits: GB/s scanned", seconds=t_batch,
            reference="one numpy read of the gallery, GB/s", ratio=rate / (codes[2048].nbytes / t_read))
        rows[-1]["GB_per_s"] = rate / 1e9
    faiss.omp_set_num_threads(threads[0])

    attrs = random_packed(args.n, 30, seed=3)
    timed = search_timings({2048: codes[2048]}, attrs, windows=(761, min(100_000, args.n)), attribute_bits=30,
                           repeat=args.repeat)
    plain = timed[0]["ms_per_query"]
    for r in timed + float_rows:
        row(measure=f"{r['method']} {r['code']}" + (f" w={r['w']}" if r["w"] else ""), seconds=r["ms_per_query"] / 1e3,
            reference="exact Hamming 2048 bits", ratio=r["ms_per_query"] / plain)
    table = pd.DataFrame(rows)
    table["device"] = platform.processor() or platform.machine()
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
