"""Speed and memory of reidlib.eval.qe_dba, the QE + DBA re-rank of Almazán et al. (2018, footnote 2),
on a Market-1501-size problem (a script, not a test).

3,368 queries x 15,913 gallery items, 2048-d random unit float32 rows (the exhaustive search costs
the same whatever the values; random rows are the hard case for the bf16 filter, whose candidate
lists must be longest when nothing stands out). Measured in the same run (best of ``--repeats``):

* the reference: the plain query-gallery distance matrix ``reidlib.eval.distance(q, g, "cosine")``,
  and beside it the bare ``q @ g.T`` it is made of;
* ``qe_dba(q, g)`` (qe_k=5, dba_k=10), the total (target: <= 2.0 x the reference);
* its two parts: per gallery, ``database_augmentation(g)`` (DBA: the G x G search, done once for
  a gallery and reusable for every query set), and per query set, ``average_query_expansion``
  plus the (Q, G) product ``q~ @ d~.T``;
* with ``--dense``, also qe_dba with the bf16 filter switched off (the exhaustive float32 search
  alone), to show what the filter saves.

Peak memory, two ways: the growth of the process's peak resident set (``ru_maxrss``) over the first
qe_dba call, which runs before anything else has allocated a (Q, G) matrix, and the analytic size
of the largest buffers qe_dba holds at once.

Usage: python benchmarks/bench_rerank.py [--small] [--threads 1] [--repeats 1] [--dense]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from reidlib.eval import average_query_expansion, database_augmentation, distance, qe_dba, rerank  # noqa: E402

MARKET = (3368, 15913, 2048)
SMALL = (500, 2400, 512)


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # KiB on Linux


def analytic_mb(nq: int, ng: int, d: int) -> dict[str, float]:
    """What qe_dba holds at once in each of its stages (MB, beyond the caller's q and g), from its
    default block sizes with the bf16 filter on; the peak is the largest."""
    f32, bf16, mb = 4, 2, 1e6
    block = min(ng, rerank._SYMMETRIC_BLOCK)
    qe_rows = min(nq, max(1, rerank._CHUNK_BYTES // (ng * bf16)))
    m1 = max(2 * 9, 9 + rerank._CANDIDATES_EXTRA)
    q_n, g_n = nq * d * f32, ng * d * f32           # the l2-normalised copies made on entry
    return {
        "DBA search (normalised q and g, bf16 g, a block and its transpose, candidate lists)":
            (q_n + g_n + ng * d * bf16 + 2 * block * block * bf16 + ng * m1 * (bf16 + 8) + rerank._GATHER_BYTES) / mb,
        "DBA means (normalised q and g, d~, a gather buffer)": (q_n + g_n + ng * d * f32 + (16 << 20)) / mb,
        "QE (normalised q, d~, bf16 d~ and q, a (rows, G) bf16 block, q~)":
            (q_n + ng * d * f32 + (ng + nq) * d * bf16 + qe_rows * ng * bf16 + nq * d * f32) / mb,
        "q~ . d~ (d~, q~, the (Q, G) result)": (ng * d * f32 + nq * d * f32 + nq * ng * f32) / mb,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help=f"a quick run: {SMALL[0]} x {SMALL[1]}, {SMALL[2]}-d")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 while the machine is busy)")
    ap.add_argument("--repeats", type=int, default=1, help="timings per method; the best is kept")
    ap.add_argument("--dense", action="store_true", help="also time qe_dba with the bf16 filter off")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nq, ng, d = SMALL if args.small else MARKET
    rng = np.random.default_rng(0)
    q, g = torch.from_numpy(unit_rows(rng, nq, d)), torch.from_numpy(unit_rows(rng, ng, d))
    print(f"queries {nq:,} x gallery {ng:,}, {d}-d random unit float32 rows; torch threads {torch.get_num_threads()}; "
          f"best of {args.repeats}; bf16 filter {'on' if rerank._bf16_fast() else 'off (no fast bf16 on this CPU)'}")

    # memory first, before any other (Q, G) matrix has raised the peak
    rss0 = maxrss_mb()
    t_first, s = timed(lambda: qe_dba(q, g))
    rss1 = maxrss_mb()
    del s

    t_ref, t_mm, t_total, t_dba, t_query, t_dense = [], [], [], [t_first], [], []
    t_total.append(t_first)
    for _ in range(args.repeats):        # interleaved, so that load changes hit all of them
        t_ref.append(timed(lambda: distance(q, g, "cosine"))[0])
        t_mm.append(timed(lambda: q @ g.T)[0])
        t_total.append(timed(lambda: qe_dba(q, g))[0])
        dt, g_aug = timed(lambda: database_augmentation(g, 10))
        t_dba.append(dt)
        t_query.append(timed(lambda g_aug=g_aug: average_query_expansion(q, g_aug, 5) @ g_aug.T)[0])
        if args.dense:
            rerank._PREFILTER = False
            t_dense.append(timed(lambda: qe_dba(q, g))[0])
            rerank._PREFILTER = None
    ref, mm, total, dba, per_query = min(t_ref), min(t_mm), min(t_total), min(t_dba), min(t_query)

    # the two-part computation is the same numbers as qe_dba (and a check that the filter changed nothing)
    s = qe_dba(q, g)
    split = average_query_expansion(q, g_aug, 5) @ g_aug.T
    diff = float((s - split).abs().max())
    del split
    if args.dense:
        rerank._PREFILTER = False
        diff_dense = float((s - qe_dba(q, g)).abs().max())
        rerank._PREFILTER = None

    print(f"\n  {'what':<58}{'seconds':>9}{'/ reference':>13}")
    rows = [
        ('reference: distance(q, g, "cosine")', ref),
        ("bare q @ g.T", mm),
        ("qe_dba(q, g), qe_k=5, dba_k=10: total", total),
        ("  per gallery (once): database_augmentation(g, 10)", dba),
        ("  per query set: average_query_expansion + q~ @ d~.T", per_query),
    ]
    if args.dense:
        rows.append(("qe_dba with the bf16 filter off (dense float32 search)", min(t_dense)))
    for name, t in rows:
        print(f"  {name:<58}{t:>9.3f}{t / ref:>13.2f}")
    print(f"\n  target qe_dba total <= 2.0 x reference: {'met' if total <= 2.0 * ref else 'not met'} "
          f"({total / ref:.2f}x); per query set alone, DBA amortised over the gallery's query sets: "
          f"{per_query / ref:.2f}x")
    print(f"  max |qe_dba - (DBA once, then per query)| = {diff:.1e}"
          + (f"; max |qe_dba - dense qe_dba| = {diff_dense:.1e}" if args.dense else ""))
    print("\n  peak memory of qe_dba:")
    print(f"    measured: ru_maxrss grew by {rss1 - rss0:,.0f} MB over the first call (process peak {rss1:,.0f} MB; "
          f"includes the (Q, G) result; {(nq * ng * 4) / 1e6:,.0f} MB)")
    parts = analytic_mb(nq, ng, d)
    print(f"    analytic: peak {max(parts.values()):,.0f} MB beyond the inputs q and g, by stage: "
          + "; ".join(f"{k} {v:,.0f}" for k, v in parts.items()))


if __name__ == "__main__":
    main()
