"""Bootstrap confidence intervals over queries for mAP and rank-1, and the paired bootstrap of the
difference of two runs evaluated on the same queries.

**Method: percentile bootstrap over queries** (Efron). The mAP and rank-1 of a run are means of
per-query values (AP, and the rank-1 hit 0 / 1) over the valid queries (:func:`per_query_metrics`).
A bootstrap resample draws ``N`` queries with replacement from the ``N`` valid ones; its mean is
one draw of the bootstrap distribution of the metric. With ``n_boot`` resamples, the interval at
``level`` is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those ``n_boot`` means
(``np.quantile``, linear interpolation). The point estimate is the mean over the original queries,
so ``bootstrap_interval(per_query_metrics(...)["AP"])[0]`` is exactly ``evaluate(...)["mAP"]``.

**What it covers.** Resampling queries treats the gallery (and the trained model) as fixed: the
interval says how much the score could move with another draw of queries from the same
population, scored against this gallery. It does not cover a different gallery, nor another
training seed (for seeds, see :func:`reidlib.papers.results.difference_interval`). Queries are
resampled independently, as if independent; queries of the same identity share their matches in
the gallery and tend to be hard or easy together, so with several queries per identity the
interval can be somewhat narrower than the truth.

**Paired difference.** Two runs evaluated on the same queries (same labels, so the same valid
queries in the same order) are compared by resampling the queries once and scoring both runs on
the same draw: the bootstrap distribution of ``mean(a*) - mean(b*)``, which is the mean of the
per-query differences ``a - b`` over the draw. A query that is hard for both runs then moves both
means together and cancels out of the difference, so when the runs' per-query values are
positively correlated (the usual case) the paired interval is narrower than the one from
resampling the two runs independently.

Resamples are generated ``_MAX_ELEMENTS`` indices at a time (a few chunks of resamples, each a
single vectorised gather and row mean), from one ``np.random.Generator`` seeded by ``seed``: the
result depends on ``seed``, ``n_boot`` and the data only.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch

from .metrics import ArrayLike, evaluate

__all__ = ["per_query_metrics", "valid_query_values", "bootstrap_interval", "paired_bootstrap_difference"]

# Indices drawn (and values gathered) per chunk of resamples: 2**21 int64 + float64 = 32 MiB of work memory.
_MAX_ELEMENTS = 1 << 21


def per_query_metrics(distmat: np.ndarray | torch.Tensor, q_pids: ArrayLike, g_pids: ArrayLike,
                      q_camids: ArrayLike, g_camids: ArrayLike, *, chunk_size: int | None = None) -> dict:
    """Per-query AP, rank-1 hit and INP of the valid queries, under :func:`~reidlib.eval.evaluate`'s
    protocol (the Market-1501 one: gallery items of the query's identity and camera are junk,
    gallery identity -1 is junk for every query, a query left without a match is excluded).

    Args:
        distmat: (Q, G) query-to-gallery distances; q_pids, q_camids: (Q,); g_pids, g_camids: (G,).
            As for :func:`~reidlib.eval.evaluate`, which computes the values (``per_query=True``).
        chunk_size: passed to :func:`~reidlib.eval.evaluate`.

    Returns:
        dict of (V,) arrays, V = number of valid queries, in query order:
        ``AP`` (float64), ``rank1`` (float64, 1.0 where the first match is at rank 1, else 0.0),
        ``INP`` (float64) and ``query_index`` (int64, the rows of ``distmat`` they belong to).
        ``AP.mean()`` is exactly ``evaluate(...)["mAP"]``, ``rank1.mean()`` exactly its ``cmc[0]``
        and ``INP.mean()`` its ``mINP``. Which queries are valid depends on the labels only, so two
        runs scored on the same queries and gallery give aligned arrays (same ``query_index``),
        ready for :func:`paired_bootstrap_difference`.

    Raises:
        ValueError: as :func:`~reidlib.eval.evaluate` (bad shapes or labels, no valid query).
    """
    r = evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=1, per_query=True, chunk_size=chunk_size)
    return valid_query_values(r)


def valid_query_values(result: dict) -> dict:
    """The per-query values of the valid queries from an ``evaluate(..., per_query=True)`` result: the
    dict :func:`per_query_metrics` returns (``AP``, ``rank1``, ``INP``, ``query_index``), for a caller
    that already has the result (the training evaluator, which needs the full CMC too)."""
    valid = result["valid"]
    return {
        "AP": result["AP"][valid],
        "rank1": (result["first_match_rank"][valid] == 1).astype(np.float64),
        "INP": result["INP"][valid],
        "query_index": np.flatnonzero(valid).astype(np.int64),
    }


# --------------------------------------------------------------------------- checks
def _as_values(x, name: str) -> np.ndarray:
    """1-D finite float64 array of at least one value, or a ValueError naming ``name``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers (one value per query), got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per query), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: expected at least one query's value")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, but entry {int(np.flatnonzero(~np.isfinite(arr))[0])} is "
                         f"{arr[~np.isfinite(arr)][0]}: pass the valid queries only (evaluate's per-query AP is "
                         "NaN for excluded queries; per_query_metrics returns the valid ones)")
    return arr


def _check_options(n_boot, level) -> tuple[int, float]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer (the number of bootstrap resamples), got {n_boot!r}")
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1) (e.g. 0.95 for a 95% interval), got {level!r}")
    return int(n_boot), float(level)


# --------------------------------------------------------------------------- bootstrap
def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot,) means of resamples of ``values`` (N,) drawn with replacement, N per resample.

    Each row mean sums its N values in the order drawn, as ``np.mean`` does a 1-D array, so a
    resample that repeats the sample (all values equal) has exactly the sample's mean."""
    n = values.size
    per_chunk = max(1, _MAX_ELEMENTS // n)
    means = np.empty(n_boot)
    for s in range(0, n_boot, per_chunk):     # a few chunks of resamples, not one iteration per resample
        e = min(n_boot, s + per_chunk)
        idx = rng.integers(0, n, size=(e - s, n))
        means[s:e] = np.take(values, idx).mean(axis=1)
    return means


def _interval(values: np.ndarray, n_boot: int, level: float, seed) -> tuple[float, float, float]:
    means = _bootstrap_means(values, n_boot, np.random.default_rng(seed))
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(np.mean(values)), float(low), float(high)


def bootstrap_interval(per_query_values: ArrayLike, *, n_boot: int = 2000, level: float = 0.95,
                       seed: int | np.random.Generator | None = 0) -> tuple[float, float, float]:
    """Percentile bootstrap interval over queries of a mean of per-query values (mAP from the
    per-query AP, rank-1 from the per-query rank-1 hits; see the module docstring).

    Args:
        per_query_values: (N,) finite values of the N valid queries (e.g. ``per_query_metrics(...)["AP"]``).
        n_boot: number of resamples (each of N queries drawn with replacement).
        level: coverage of the interval, in (0, 1).
        seed: seed of the ``np.random.default_rng`` that draws the resamples (or a Generator).

    Returns:
        ``(estimate, low, high)``: the mean over the N queries, and the ``(1 - level) / 2`` and
        ``(1 + level) / 2`` quantiles of the ``n_boot`` resample means. Resampling queries treats
        the gallery as fixed. Same units as the values (fractions for AP and hits).

    Raises:
        ValueError: per_query_values empty, not 1-D, not real or not finite; n_boot < 1 or not an
            integer; level outside (0, 1).
    """
    values = _as_values(per_query_values, "per_query_values")
    n_boot, level = _check_options(n_boot, level)
    return _interval(values, n_boot, level, seed)


def paired_bootstrap_difference(values_a: ArrayLike, values_b: ArrayLike, *, n_boot: int = 2000,
                                level: float = 0.95,
                                seed: int | np.random.Generator | None = 0) -> tuple[float, float, float]:
    """Paired percentile bootstrap interval of ``mean(values_a) - mean(values_b)`` for two runs
    evaluated on the same queries: every resample draws N queries with replacement and takes both
    runs' values of the *same* queries (see the module docstring).

    Args:
        values_a, values_b: (N,) finite per-query values of run A and run B, entry ``i`` of both
            belonging to the same query (e.g. ``per_query_metrics(...)["AP"]`` of each run on the
            same query and gallery sets: their ``query_index`` arrays agree).
        n_boot, level, seed: as for :func:`bootstrap_interval`.

    Returns:
        ``(difference, low, high)``: the mean over the queries of ``values_a - values_b`` (the
        difference of the two means, up to float rounding) and the ``(1 - level) / 2`` and
        ``(1 + level) / 2`` quantiles of its ``n_boot`` paired resamples. A run against itself
        gives exactly ``(0.0, 0.0, 0.0)``. Resampling queries treats the gallery as fixed.

    Raises:
        ValueError: either input empty, not 1-D, not real or not finite; different lengths;
            n_boot < 1 or not an integer; level outside (0, 1).
    """
    a = _as_values(values_a, "values_a")
    b = _as_values(values_b, "values_b")
    if a.size != b.size:
        raise ValueError(f"values_a has {a.size} values but values_b has {b.size}: a paired bootstrap needs "
                         "both runs' values on the same queries, in the same order")
    n_boot, level = _check_options(n_boot, level)
    # mean(a*) - mean(b*) over one draw of queries is the mean of a - b over that draw.
    return _interval(a - b, n_boot, level, seed)
