"""Hamming search over packed binary codes, on faiss' binary indexes.

For ±1 codes ``b_q, b_g`` of length ``L`` the Hamming distance is the number of places they differ.
Each agreeing place adds ``+1`` to their inner product and each disagreeing place ``-1``, so
``<b_q, b_g> = (L - d_H) - d_H`` and

    d_H(b_q, b_g) = (L - <b_q, b_g>) / 2.

:func:`hamming_from_signs` computes it that way (a matrix product, exact in float32 up to
``L = 2**24``); :func:`hamming_distances` from packed codes with XOR and popcount, the way the
indexes do. A search ranks by increasing distance, and **ties are broken by gallery index**, as
in :mod:`reidlib.eval.metrics` (faiss' heaps compare ids on equal distances, which the tests
check against a stable numpy sort).

* :class:`HammingIndex`: exact k-NN (``faiss.IndexBinaryFlat``, a linear scan of XOR + popcount).
* :class:`ApproximateHammingIndex`: sub-linear search (``faiss.IndexBinaryIVF``: k-means cells
  in Hamming space, ``nprobe`` of them scanned per query; or ``faiss.IndexBinaryHNSW``), which may
  miss neighbours: :func:`knn_recall` measures how many.
"""
from __future__ import annotations

import math

import faiss
import numpy as np
import torch

__all__ = ["ApproximateHammingIndex", "HammingIndex", "hamming_distances", "hamming_from_signs", "knn_recall"]


def _as_packed(packed, name: str, nbytes: int | None = None) -> np.ndarray:
    arr = packed.numpy() if isinstance(packed, torch.Tensor) else np.asarray(packed)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D uint8 array of packed codes (reidlib.retrieval.pack_codes), "
                         f"got dtype {arr.dtype} and shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has codes of 0 bytes (shape {arr.shape})")
    if nbytes is not None and arr.shape[1] != nbytes:
        raise ValueError(f"{name} holds codes of {arr.shape[1]} bytes ({8 * arr.shape[1]} bits), expected {nbytes} "
                         f"bytes ({8 * nbytes} bits) like the gallery")
    return np.ascontiguousarray(arr)


def _check_k(k: int, n: int, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"{name} must be an integer in [1, {n}] (the gallery size), got {k!r}")
    return int(k)


def hamming_distances(packed_queries, packed_gallery) -> np.ndarray:
    """All (Q, G) ``int32`` Hamming distances between packed codes of equal width (faiss ``hammings``)."""
    g = _as_packed(packed_gallery, "packed_gallery")
    q = _as_packed(packed_queries, "packed_queries", g.shape[1])
    out = np.empty((q.shape[0], g.shape[0]), np.int32)
    faiss.hammings(faiss.swig_ptr(q), faiss.swig_ptr(g), q.shape[0], g.shape[0], g.shape[1], faiss.swig_ptr(out))
    return out


def hamming_from_signs(query_codes: torch.Tensor, gallery_codes: torch.Tensor) -> torch.Tensor:
    """(Q, G) Hamming distances of ±1 codes (Q, L) and (G, L) as ``(L - q @ g.T) / 2`` (float; exact
    whole numbers while L <= 2**24 in float32)."""
    if query_codes.ndim != 2 or gallery_codes.ndim != 2 or query_codes.shape[1] != gallery_codes.shape[1]:
        raise ValueError(f"query_codes and gallery_codes must be (Q, L) and (G, L) with the same L, "
                         f"got {tuple(query_codes.shape)} and {tuple(gallery_codes.shape)}")
    length = query_codes.shape[1]
    return (length - query_codes @ gallery_codes.T) / 2


class HammingIndex:
    """Exact Hamming k-NN over a gallery of packed codes (N, bytes) (``faiss.IndexBinaryFlat``).

    ``search`` returns (Q, k) distances (``int32``) and gallery indices (``int64``), in increasing
    distance, ties broken by gallery index.

    faiss spreads a search over threads by query, so one query (or fewer queries than threads) runs on one
    core whatever the thread count. With ``threads`` > 1 (default: faiss' ``omp_get_max_threads()``) such a
    search instead splits the gallery into ``threads`` contiguous blocks, scans each on its own thread
    (``faiss.knn_hamming`` releases the GIL) and merges the blocks' top-k by (distance, gallery index), which
    gives exactly the single scan's result; galleries under :attr:`split_min` codes are not split (the threads
    cost more than they save)."""

    #: the smallest gallery a search of few queries is split over threads for
    split_min = 65_536

    def __init__(self, packed_codes, *, bits: int | None = None, threads: int | None = None):
        codes = _as_packed(packed_codes, "packed_codes")
        if bits is not None and (bits + 7) // 8 != codes.shape[1]:
            raise ValueError(f"packed_codes has {codes.shape[1]} bytes per code, expected {(bits + 7) // 8} "
                             f"for bits={bits}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be an integer >= 1 or None (faiss' thread count), got {threads!r}")
        self.nbytes = codes.shape[1]
        self.bits = 8 * self.nbytes if bits is None else int(bits)
        self.threads = threads
        self.codes = codes
        self.index = faiss.IndexBinaryFlat(8 * self.nbytes)
        self.index.add(codes)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, packed_queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_packed(packed_queries, "packed_queries", self.nbytes)
        k = _check_k(k, self.ntotal)
        if type(self) is HammingIndex:  # the sub-linear indexes search their own structure
            threads = self.threads or faiss.omp_get_max_threads()
            if threads > 1 and len(q) < threads and self.ntotal >= max(self.split_min, threads * k):
                return self._split_search(q, k, threads)
        return self.index.search(q, k)

    def _split_search(self, q: np.ndarray, k: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
        from concurrent.futures import ThreadPoolExecutor

        bounds = np.linspace(0, self.ntotal, threads + 1).astype(np.int64)
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda ab: faiss.knn_hamming(q, self.codes[ab[0]:ab[1]], k),
                                  zip(bounds[:-1], bounds[1:])))
        dist = np.concatenate([d for d, _ in parts], axis=1).astype(np.int64)
        idx = np.concatenate([i + a for (_, i), a in zip(parts, bounds[:-1])], axis=1)
        order = np.argsort(dist * (self.ntotal + 1) + idx, axis=1)[:, :k]  # keys are unique: (distance, index)
        return np.take_along_axis(dist, order, 1).astype(np.int32), np.take_along_axis(idx, order, 1)


class ApproximateHammingIndex(HammingIndex):
    """Sub-linear Hamming k-NN: ``kind="ivf"`` (``faiss.IndexBinaryIVF``: the gallery split into
    ``nlist`` k-means cells, trained on the gallery itself; a query scans its ``nprobe`` nearest
    cells) or ``kind="hnsw"`` (``faiss.IndexBinaryHNSW`` with ``M`` links per node and search
    breadth ``ef_search``). Results may miss true neighbours (measure with :func:`knn_recall`);
    within what it finds, the order is by distance, ties by gallery index.

    Defaults: ``nlist = round(4 * sqrt(N))``, the usual rule of thumb, and ``nprobe = 16``."""

    def __init__(self, packed_codes, *, bits: int | None = None, kind: str = "ivf", nlist: int | None = None,
                 nprobe: int = 16, M: int = 16, ef_search: int = 64, seed: int = 0):
        codes = _as_packed(packed_codes, "packed_codes")
        if kind not in ("ivf", "hnsw"):
            raise ValueError(f"kind must be 'ivf' or 'hnsw', got {kind!r}")
        self.nbytes = codes.shape[1]
        self.bits = 8 * self.nbytes if bits is None else int(bits)
        self.kind = kind
        d = 8 * self.nbytes
        if kind == "ivf":
            nlist = max(1, round(4 * math.sqrt(len(codes)))) if nlist is None else nlist
            _check_k(nlist, len(codes), "nlist")
            self.quantizer = faiss.IndexBinaryFlat(d)
            self.index = faiss.IndexBinaryIVF(self.quantizer, d, int(nlist))
            self.index.cp.seed = seed
            self.index.train(codes)
            self.index.nprobe = _check_k(nprobe, int(nlist), "nprobe")
        else:
            self.index = faiss.IndexBinaryHNSW(d, int(M))
            self.index.hnsw.efSearch = int(ef_search)
        self.index.add(codes)

    def search(self, packed_queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        distances, indices = super().search(packed_queries, k)
        # cells are scanned in probe order, so equal distances need re-sorting by index; misses are -1
        key = np.where(indices < 0, np.iinfo(np.int64).max, distances.astype(np.int64) * (self.ntotal + 1) + indices)
        order = np.argsort(key, axis=1, kind="stable")
        return np.take_along_axis(distances, order, 1), np.take_along_axis(indices, order, 1)


def knn_recall(exact_distances: np.ndarray, approximate_distances: np.ndarray) -> float:
    """Recall of an approximate k-NN search against the exact one, tie-aware: for each query the size
    of the multiset intersection of the two lists of k distances, over k, averaged over queries.
    (Neighbours at the same distance are interchangeable, so ids are not compared.) Missing results
    (faiss returns id -1 with a huge distance) never match."""
    exact = np.asarray(exact_distances)
    approx = np.asarray(approximate_distances)
    if exact.shape != approx.shape or exact.ndim != 2:
        raise ValueError(f"exact_distances and approximate_distances must be (Q, k) of one shape, "
                         f"got {exact.shape} and {approx.shape}")
    q, k = exact.shape
    top = int(max(exact.max(initial=0), 0)) + 2
    e = np.apply_along_axis(np.bincount, 1, np.clip(exact, 0, top - 1), minlength=top)
    a = np.apply_along_axis(np.bincount, 1, np.clip(approx, 0, top - 1), minlength=top)
    a[:, top - 1] = 0                      # beyond every exact distance, or missing: no match
    return float(np.minimum(e, a).sum() / (q * k))
