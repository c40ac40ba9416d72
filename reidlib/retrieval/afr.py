"""Attribute-based fast retrieval, AFR (Jin et al. 2021, Sec. 5.1 and 7.5.2).

Each image has an ``A``-bit attribute code (Market-1501: A = 30 binary attributes) and an ``L``-bit
ID code (L = 2048). AFR searches in two stages:

1. rank the whole gallery of N by attribute Hamming distance (Eq. 6) and keep the first ``w``;
2. rank those ``w`` candidates by ID-code Hamming distance (Eq. 7).

**Time budget.** With ``T`` the cost of one bit compared, a plain search of ``b``-bit codes costs
``b N T``; AFR costs ``A N T + L w T``. AFR is as fast as the shorter code when
``b N = A N + L w``, i.e. at :func:`afr_window` ``w* = (b - A) N / L`` (761.4 for b = 128, A = 30,
N = 15,912, L = 2048). It is an upper bound: stage 1's selection and stage 2's gather of ``w``
scattered rows cost extra (the paper then lowers w by measurement).

Choices the paper leaves open (stated on the book's pages):

* **Ties at the cut-off.** A 30-bit distance takes 31 values, so the w-th place almost always
  falls inside a tie. Stage 1 is a stable sort by (attribute distance, gallery index) cut at
  exactly ``w``.
* **Ties in stage 2** are broken by gallery index, so that ``w = N`` is exactly the plain exact
  search of the ID codes (the paper: "AFR equals plain retrieval when w = N").
* **The non-candidates.** :func:`afr_ranking` returns the full ranked list for evaluation: the
  ``w`` candidates in stage-2 order, then the other ``N - w`` sorted by (attribute distance,
  ID distance, gallery index). Standard mAP over that list
  (:func:`reidlib.eval.evaluate_ranking`) is the "full" variant; ``depth=w`` there gives the
  "truncated" variant, with AP over the top w only but divided by all true matches.
"""
from __future__ import annotations

import faiss
import numpy as np

from .hamming import HammingIndex, _as_packed, _check_k

__all__ = ["AFRIndex", "afr_ranking", "afr_window"]


def afr_window(b: float, A: float, N: float, L: float) -> float:
    """The AFR window ``w* = (b - A) N / L`` at which AFR (A attribute bits over all N gallery codes,
    then L-bit ID codes over w candidates) costs as many bit comparisons as a plain search of b-bit
    codes over the N: from ``b N = A N + L w``."""
    for name, v in (("b", b), ("A", A), ("N", N), ("L", L)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not v > 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if not b > A:
        raise ValueError(f"the shorter code must have more bits than the attribute code (b > A), got b={b}, A={A}: "
                         "AFR cannot match a search cheaper than its own first stage")
    return (b - A) * N / L


def _check_window(w: int, n: int) -> int:
    if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not 1 <= w <= n:
        raise ValueError(f"w must be an integer in [1, {n}] (the gallery size), got {w!r}")
    return int(w)


class AFRIndex:
    """Two-stage search over a gallery's packed attribute codes (N, ceil(A / 8)) and packed ID codes
    (N, L / 8), both as :func:`reidlib.retrieval.pack_codes` returns them.

    ``search(attribute_queries, id_queries, w, k)`` returns (Q, k) ID distances and gallery indices
    of the best ``k`` of the ``w`` candidates (``k <= w``): stage 1 on a faiss exact index of the
    attribute codes (ties by gallery index), stage 2 a gather of the candidates' ID codes (in gallery
    order) and a faiss top-k of their Hamming distances (ties by gallery index).

    The gather is why the time budget's ``w*`` is an upper bound: ``w`` scattered rows cost more per
    byte than the plain search's sequential scan."""

    #: stage 1 keeps the first w with a faiss heap up to this w, with faiss' counting sort above it
    heap_max_w = 256

    def __init__(self, attribute_codes, id_codes):
        attrs = _as_packed(attribute_codes, "attribute_codes")
        ids = _as_packed(id_codes, "id_codes")
        if len(attrs) != len(ids):
            raise ValueError(f"attribute_codes has {len(attrs)} codes but id_codes has {len(ids)}: expected one of "
                             "each per gallery image")
        self.attributes = HammingIndex(attrs)
        self.attributes_codes = attrs
        self.id_codes = ids

    @property
    def ntotal(self) -> int:
        return len(self.id_codes)

    def search(self, attribute_queries, id_queries, w: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        w = _check_window(w, self.ntotal)
        k = _check_k(k, w, "k (at most w)")
        qa = _as_packed(attribute_queries, "attribute_queries", self.attributes.nbytes)
        qi = _as_packed(id_queries, "id_queries", self.id_codes.shape[1])
        if len(qa) != len(qi):
            raise ValueError(f"attribute_queries has {len(qa)} codes but id_queries has {len(qi)}")
        dist = np.empty((len(qi), k), np.int32)
        found = np.empty((len(qi), k), np.int64)
        gathered = np.empty((w, self.id_codes.shape[1]), np.uint8)
        for i in range(len(qi)):
            cand = np.sort(self.candidates(qa[i:i + 1], w))
            np.take(self.id_codes, cand, axis=0, out=gathered)
            # faiss' heap keeps the lower position on equal distances: positions follow gallery indices
            d, pos = faiss.knn_hamming(qi[i:i + 1], gathered, k)
            dist[i], found[i] = d[0], cand[pos[0]]
        return dist, found

    def candidates(self, attribute_query: np.ndarray, w: int) -> np.ndarray:
        """Stage 1 for one packed query (1, bytes): the gallery indices of the first ``w`` by (attribute
        distance, gallery index). faiss' heap for ``w <= heap_max_w``; above it faiss' counting sort
        (``knn_hamming(..., variant="mc")``: a 30-bit distance takes 31 values), which is faster for
        large w on this machine's measurements. Both keep the lower index on a tie (tested)."""
        if w <= self.heap_max_w:
            return self.attributes.search(attribute_query, w)[1][0]
        return faiss.knn_hamming(attribute_query, self.attributes_codes, w, variant="mc")[1][0]


def afr_ranking(attribute_distances: np.ndarray, id_distances: np.ndarray, w: int) -> np.ndarray:
    """The full AFR ranked lists, (Q, N) gallery indices, from (Q, N) attribute and ID Hamming
    distances: the ``w`` candidates of stage 1 (stable order of attribute distance, cut at exactly
    ``w``) sorted by (ID distance, gallery index), then the other ``N - w`` by (attribute distance,
    ID distance, gallery index). ``w = N`` gives the stable sort of ``id_distances``."""
    attr = np.asarray(attribute_distances)
    ids = np.asarray(id_distances)
    if attr.ndim != 2 or attr.shape != ids.shape:
        raise ValueError(f"attribute_distances and id_distances must be (Q, N) of one shape, got {attr.shape} "
                         f"and {ids.shape}")
    for name, a in (("attribute_distances", attr), ("id_distances", ids)):
        if not np.issubdtype(a.dtype, np.integer) or (a.size and a.min() < 0):
            raise ValueError(f"{name} must hold non-negative integer Hamming distances, got dtype {a.dtype}")
    q, n = attr.shape
    w = _check_window(w, n)
    stage1 = np.argsort(attr, axis=1, kind="stable")
    candidate = np.zeros((q, n), bool)
    np.put_along_axis(candidate, stage1[:, :w], True, axis=1)
    a = attr.astype(np.int64)
    d = ids.astype(np.int64)
    span = int(max(a.max(initial=0), d.max(initial=0))) + 1
    idx = np.arange(n, dtype=np.int64)[None, :]
    # one unique integer key per (query, item) in list order: candidates first (key_in < span * n)
    key_in = d * n + idx
    key_out = span * span * n + (a * span + d) * n + idx
    return np.argsort(np.where(candidate, key_in, key_out), axis=1)
