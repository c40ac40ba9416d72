"""Speed of reidlib.eval.evaluate on a Market-1501-size problem (a script, not a test).

3,368 queries x 15,913 gallery items with the real Market-1501 query/gallery identities and
cameras (../shared/realdata/market1501_labels: the 19,732 gallery entries minus the 3,819
labelled -1, the detections the official protocol ignores; the 2,798 distractors, label 0,
stay). Two float32 distance matrices:

* ``random``: uniform random distances, the worst case (nothing is far from every match);
* ``model-like``: Euclidean distances between simulated 128-d features (identity centre +
  camera shift + noise) that give mAP ~0.9, as a trained model does.

For each, measured in the same run (best of ``--repeats``, interleaved):

* ``evaluate`` (the fast implementation),
* one ``np.argsort(distmat, axis=1)`` of the same matrix (target: evaluate <= argsort),
* the per-query reference loop ``evaluate_reference`` (target: evaluate >= 50x faster),
  timed on ``--ref-queries`` random queries and scaled to all 3,368 (it is linear in them).

Usage: python benchmarks/bench_evaluate.py [--repeats 5] [--ref-queries 500] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from reidlib.eval import distance, evaluate, evaluate_reference  # noqa: E402

LABELS = Path(os.environ.get("REIDLIB_REALDATA", ROOT.parent / "shared" / "realdata")) / "market1501_labels"


def market_labels() -> tuple[np.ndarray, ...]:
    from reidlib.eval.protocols import load_market_test_labels

    if not LABELS.exists():
        sys.exit(f"Market-1501 label files not found at {LABELS} (see ../shared/realdata/README.md)")
    return load_market_test_labels(LABELS, junk=False)


def model_like_distances(q_pids, g_pids, q_cams, g_cams, rng, dim=128, sigma=1.0) -> np.ndarray:
    """Distances between simulated features: identity centre + camera shift + noise;
    distractors (pid 0) are unrelated random points."""
    centres = rng.standard_normal((int(max(q_pids.max(), g_pids.max())) + 1, dim)).astype(np.float32)
    shifts = 0.3 * rng.standard_normal((int(max(q_cams.max(), g_cams.max())) + 1, dim)).astype(np.float32)

    def feats(pids, cams):
        f = centres[pids] + shifts[cams] + sigma * rng.standard_normal((pids.size, dim)).astype(np.float32)
        f[pids == 0] = 1.2 * rng.standard_normal((int((pids == 0).sum()), dim)).astype(np.float32)
        return f

    return distance(feats(q_pids, q_cams), feats(g_pids, g_cams))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(name, distmat, labels, sub, repeats):
    q_pids, g_pids, q_cams, g_cams = labels
    t_fast, t_sort, t_ref = [], [], []
    for _ in range(repeats):          # interleaved, so that load changes hit all three
        t_fast.append(timed(lambda: evaluate(distmat, q_pids, g_pids, q_cams, g_cams)))
        t_sort.append(timed(lambda: np.argsort(distmat, axis=1)))
        t_ref.append(timed(lambda: evaluate_reference(distmat[sub], q_pids[sub], g_pids, q_cams[sub], g_cams))
                     * q_pids.size / sub.size)
    fast, sort, ref = min(t_fast), min(t_sort), min(t_ref)
    res = evaluate(distmat, q_pids, g_pids, q_cams, g_cams)
    a = evaluate(distmat[sub], q_pids[sub], g_pids, q_cams[sub], g_cams)
    b = evaluate_reference(distmat[sub], q_pids[sub], g_pids, q_cams[sub], g_cams)
    agree = max(abs(a["mAP"] - b["mAP"]), abs(a["mINP"] - b["mINP"]), float(np.abs(a["cmc"] - b["cmc"]).max()))
    print(f"\n[{name}] mAP {res['mAP']:.4f}  rank-1 {res['cmc'][0]:.4f}  mINP {res['mINP']:.4f}  "
          f"valid queries {res['num_valid_queries']}  excluded {res['num_excluded_queries']}  "
          f"|fast - reference| on {sub.size} queries: {agree:.1e}")
    print(f"  {'method':<46}{'seconds':>9}{'/ evaluate':>12}")
    print(f"  {'evaluate':<46}{fast:>9.3f}{1.0:>12.2f}")
    print(f"  {'np.argsort(distmat, axis=1)':<46}{sort:>9.3f}{sort / fast:>12.2f}")
    print(f"  {f'evaluate_reference ({sub.size} queries, scaled)':<46}{ref:>9.3f}{ref / fast:>12.2f}")
    print(f"  target evaluate <= argsort: {'met' if fast <= sort else 'NOT met'}; "
          f"target reference >= 50x evaluate: {'met' if ref >= 50 * fast else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="timings per method; the best is kept")
    ap.add_argument("--ref-queries", type=int, default=500, help="queries timed for the reference loop")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    labels = market_labels()
    rng = np.random.default_rng(0)
    nq, ng = labels[0].size, labels[1].size
    sub = np.sort(rng.choice(nq, size=min(args.ref_queries, nq), replace=False))
    print(f"distmat {nq:,} x {ng:,} float32, real Market-1501 identities and cameras; "
          f"torch threads {torch.get_num_threads()}; best of {args.repeats}")
    bench("random distances", rng.random((nq, ng), dtype=np.float32), labels, sub, args.repeats)
    bench("model-like distances", model_like_distances(*labels, rng), labels, sub, args.repeats)


if __name__ == "__main__":
    main()
