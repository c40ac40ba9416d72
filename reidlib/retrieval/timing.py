"""Search timings for the hashing chapter and ``benchmarks/bench_hamming.py``: one query (or a batch)
against a gallery, plain exact Hamming search, AFR at given windows, and float search.

Times are wall-clock medians of repeated calls on this machine, with ``faiss.omp_set_num_threads``
set by the caller. They are compared as ratios measured in the same run (DESIGN.md, Performance),
never asserted. The "paper" column of the book's tables is the authors' own CPU (a Xeon E5-2609 at
1.70 GHz and, by Table 8's figures, about 0.51 ns per gallery item and bit: a per-bit loop),
which is why absolute times here do not resemble theirs.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import faiss
import numpy as np

from .afr import AFRIndex
from .hamming import HammingIndex

__all__ = ["interleaved_medians", "median_seconds", "random_packed", "search_timings"]


def median_seconds(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1, number: int = 1) -> float:
    """Median over ``repeat`` rounds of the wall time of ``number`` calls of ``fn``, per call, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))


def interleaved_medians(fns: dict[str, Callable[[], object]], *, repeat: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, the functions timed in turn within each round, so a
    change of machine load falls on all of them alike (the ratios are what a benchmark reports)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def random_packed(n: int, bits: int, *, seed: int = 0) -> np.ndarray:
    """(n, ceil(bits / 8)) uniformly random packed codes (the padding bits of the last byte clear)."""
    rng = np.random.default_rng(seed)
    nbytes = (bits + 7) // 8
    out = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    if bits % 8:
        out[:, -1] &= np.uint8((0xFF << (8 - bits % 8)) & 0xFF)
    return out


def search_timings(id_codes: dict[int, np.ndarray], attribute_codes: np.ndarray | None = None, *,
                   query_index: Iterable[int] = (0,), k: int = 100, windows: Iterable[int] = (),
                   afr_bits: int = 2048, attribute_bits: int | None = None,
                   float_features: np.ndarray | None = None, repeat: int = 5, number: int = 1) -> list[dict]:
    """Per-query search times over one gallery, in milliseconds, as rows of a table.

    Args:
        id_codes: bits -> packed gallery codes (N, bits / 8), one gallery per code length.
        attribute_codes: packed attribute codes (N, ceil(A / 8)) for AFR (with ``id_codes[afr_bits]``);
            ``attribute_bits``: A, for the table (default: 8 bits per byte).
        query_index: gallery rows used as the queries (a search with a gallery item as query costs
            the same as any other query); their count is the batch size of each timed call.
        k: neighbours returned (top-k); ``windows``: AFR's w values (each at least ``k``).
        float_features: (N, D) float32 features for a float search (faiss ``IndexFlatIP``, exact).
        repeat, number: rounds of :func:`median_seconds` and calls per round.

    Returns:
        rows ``{"method", "code", "w", "queries", "ms_per_query"}``.
    """
    rows = []
    q = np.asarray(list(query_index))
    nq = len(q)

    def add(method: str, code: str, w, fn) -> None:
        t = median_seconds(fn, repeat=repeat, number=number)
        rows.append({"method": method, "code": code, "w": w, "queries": nq, "ms_per_query": 1e3 * t / nq})

    for bits, codes in id_codes.items():
        index = HammingIndex(codes, bits=bits)
        queries = codes[q]
        add("exact Hamming", f"{bits}/binary", None, lambda index=index, queries=queries: index.search(queries, k))
    if attribute_codes is not None:
        afr = AFRIndex(attribute_codes, id_codes[afr_bits])
        qa, qi = attribute_codes[q], id_codes[afr_bits][q]
        attr_bits = 8 * attribute_codes.shape[1] if attribute_bits is None else attribute_bits
        for w in windows:
            add("AFR", f"{attr_bits}+{afr_bits}/binary", int(w), lambda w=w: afr.search(qa, qi, int(w), k))
    if float_features is not None:
        flat = faiss.IndexFlatIP(float_features.shape[1])
        flat.add(float_features)
        fq = float_features[q]
        add("exact float (inner product)", f"{float_features.shape[1]}/float", None, lambda: flat.search(fq, k))
    return rows
