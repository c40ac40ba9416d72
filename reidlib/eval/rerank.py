"""The "re-rank" of Almazán et al., *Re-ID done right: towards good practices for person
re-identification* (2018), footnote 2: average query expansion (QE) and database-side
augmentation (DBA) of l2-normalised descriptors.

    "We expand both the query and the dataset by averaging the representation of the first
    5 and 10 closest neighbors, respectively."

This is *not* the k-reciprocal re-ranking of Zhong et al. (2017). The footnote leaves the
details open; this module reads it as follows (each item is a choice, made here):

* descriptors are rows of unit l2 norm (normalised on entry, see below) and similarity is
  the dot product (cosine);
* DBA, done first, on the gallery alone::

      d~_i = normalize( sum_{j in N10(d_i)} d_j )

  where ``N10(d_i)`` is ``d_i`` **itself** plus its 9 most similar *other* gallery items
  (``include_self=True``: the item always counts, even when duplicates of it tie with it);
* QE, done second, against the *augmented* gallery::

      q~ = normalize( q + sum_{j in N5(q)} d~_j )

  where ``N5(q)`` is the 5 items of ``d~`` most similar to ``q``; ``q`` counts in addition
  to its 5 (``include_query=True``);
* the re-ranked similarity is ``s(q, d_i) = q~ . d~_i``, the distance ``1 - s``;
* the means are unweighted (plain sums, then re-normalised: a mean and a sum have the same
  direction), and ``normalize`` divides by ``max(||x||, 1e-12)`` as
  ``torch.nn.functional.normalize`` does;
* ``k = 0`` switches a side off: its descriptors are used unexpanded, so
  ``qe_dba(q, g, qe_k=0, dba_k=0)`` is the plain dot-product matrix ``q @ g.T`` of the unit
  rows (``1 -`` it is ``reidlib.eval.distance(q, g, "cosine")``).

**Ties.** Neighbours are ranked by similarity, highest first, and among *equal* similarities
the **lower gallery index first**: the order of a stable descending sort of the row. A k-set
is the first k items of that order, so of two identical gallery rows that tie for the last
place, the one with the smaller index is taken. "Equal" means equal as computed, in the
compute dtype: where the arithmetic is exact (e.g. entries +-1/4) equal dot products are
equal numbers and the rule decides; a BLAS matmul may round two mathematically equal dot
products an ulp apart, and then the larger wins. Sums over a neighbour set are taken in
increasing gallery index, so they depend on the set only, not on how it was found.

**Exact and chunked.** Neighbour search is exhaustive (no approximate index): the (G, G)
similarity matrix of DBA and the (Q, G) matrix of QE are computed a block of rows at a time,
``chunk_size`` rows of ``x @ gallery.T`` followed by ``torch.topk`` on the block, so that no
dense matrix of those sizes is ever held; :func:`qe_dba` holds one dense (Q, G) matrix, its
result. Everything is computed in the inputs' float dtype (float32 or float64; mixed inputs
are promoted) on the inputs' device.

On a CPU with bfloat16 matrix instructions, large searches go through a **bf16 filter that
keeps them exact**: bf16 similarities (3-4x faster to compute) only propose each row's best
few dozen candidates; the candidates' similarities are recomputed in the compute dtype and
ranked with the tie rule, and the row is accepted only if a rigorous bound on the bf16
rounding error proves that no item left out could reach its k-th similarity (otherwise it is
searched again with more candidates, and then densely). The G x G search of DBA computes
each block of the symmetric matrix once and uses it for its rows and its columns. The
neighbour sets are those of the dense search, up to the float rounding of the similarities
themselves (two items within an ulp may swap).

**Input.** Rows must be finite; they are **l2-normalised on entry** (divided by their norm),
the choice made here rather than refusing rows that are not of unit norm: the paper's
descriptors are l2-normalised, but a flip-averaged descriptor ``(f(x) + f(flip x)) / 2`` of
unit ones (``reidlib.engine.extract_features``) has a norm below 1, and only its direction
matters. Rows already of unit norm change by at most an ulp. A row of norm below
:data:`MIN_NORM` (e.g. all zeros) has no direction and is refused.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from .metrics import as_tensor_view

__all__ = [
    "MIN_NORM",
    "nearest_neighbours",
    "database_augmentation",
    "average_query_expansion",
    "qe_dba",
]

#: Smallest accepted l2 norm of an input row (before it is normalised).
MIN_NORM = 1e-12

_CHUNK_BYTES = 64 << 20   # size of one (chunk_size, G) block of similarities when chunk_size is None
_NORM_EPS = 1e-12         # as torch.nn.functional.normalize


# --------------------------------------------------------------------------- input checks
def _as_descriptors(x, name: str) -> torch.Tensor:
    """``x`` as a 2-D float32/float64 tensor (no copy where possible), or a ValueError naming ``name``."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.asarray(x)
        if arr.dtype.kind != "f" or arr.dtype.itemsize not in (4, 8):
            raise ValueError(f"{name} must hold float32 or float64 descriptors, got dtype {arr.dtype}")
        t = as_tensor_view(arr)
    if t.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must hold float32 or float64 descriptors, got dtype {t.dtype}")
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_items, feature_dim), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty: expected at least one descriptor of at least one dimension, "
                         f"got shape {tuple(t.shape)}")
    return t


def _unit_rows(t: torch.Tensor, name: str) -> torch.Tensor:
    """``t`` with each row divided by its l2 norm, or a ValueError naming ``name`` and the first
    row that is not finite or has no direction."""
    norms = torch.linalg.vector_norm(t, dim=1, keepdim=True)
    # one pass over the data: a NaN or inf makes its row's norm non-finite, and so may a huge
    # finite value whose square overflows: those rows are scaled down before their norm is taken
    if not bool(torch.isfinite(norms).all()):
        finite = torch.isfinite(t).all(1)
        if not bool(finite.all()):
            row = int(torch.nonzero(~finite)[0])
            raise ValueError(f"{name} contains NaN or inf (first in row {row}): expected finite descriptors")
        big = torch.nonzero(~torch.isfinite(norms[:, 0])).squeeze(1)
        scaled = t[big] / t[big].abs().amax(1, keepdim=True)       # same direction, largest entry 1
        t = t.clone()
        t[big] = scaled
        norms[big] = torch.linalg.vector_norm(scaled, dim=1, keepdim=True)
    tiny = norms[:, 0] < MIN_NORM
    if bool(tiny.any()):
        row = int(torch.nonzero(tiny)[0])
        raise ValueError(f"{name} row {row} has l2 norm {float(norms[row, 0]):.3g} (below {MIN_NORM:g}): "
                         "expected descriptors with a direction, each row is l2-normalised")
    return t / norms


def _check_k(k, name: str, limit: int, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"{name} must be a non-negative integer (0 switches it off), got {k!r}")
    if k < 0:
        raise ValueError(f"{name} must be a non-negative integer (0 switches it off), got {k}")
    if k > limit:
        raise ValueError(f"{name} must be at most {what} ({limit}), got {k}")
    return int(k)


def _check_chunk(chunk_size) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer (rows per block) or None, got {chunk_size!r}")
    return int(chunk_size)


def _pair(query, gallery, qname: str, gname: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and gallery descriptors checked and l2-normalised, on one device, in their promoted float dtype."""
    q = _as_descriptors(query, qname)
    g = _as_descriptors(gallery, gname)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"{qname} and {gname} must have the same feature dimension D, "
                         f"got {q.shape[1]} and {g.shape[1]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    return _unit_rows(q.to(dtype), qname), _unit_rows(g.to(device=q.device, dtype=dtype), gname)


def _rows_per_chunk(chunk_size: int | None, width: int, dtype: torch.dtype) -> int:
    if chunk_size is not None:
        return chunk_size
    return max(1, _CHUNK_BYTES // (width * torch.finfo(dtype).bits // 8))


# --------------------------------------------------------------------------- neighbour search
def _stable_topk(sim: torch.Tensor, k: int) -> torch.Tensor:
    """(R, k) column indices of the k largest entries of each row of ``sim`` (R, N), ranked by
    value, highest first, equal values by lower column index first.

    ``torch.topk`` makes no promise about which of several equal values it returns, so it is
    asked for k + 1: a row whose (k+1)-th value is below its k-th has exactly k entries at or
    above the k-th, the ones returned; a row where they are equal takes its entries above the
    k-th value and then the lowest-indexed entries equal to it."""
    r, n = sim.shape
    if k >= n:
        idx = torch.arange(n, device=sim.device).expand(r, n).contiguous()
    else:
        vals, idx = torch.topk(sim, k + 1, dim=1)
        idx = idx[:, :k].contiguous()
        tied = vals[:, k] == vals[:, k - 1]
        if bool(tied.any()):
            rows = torch.nonzero(tied).squeeze(1)
            sub, v = sim[rows], vals[rows, k - 1:k]
            above = sub > v
            at = sub == v
            take = above | (at & (torch.cumsum(at, 1) <= k - above.sum(1, keepdim=True)))
            idx[rows] = torch.nonzero(take)[:, 1].view(-1, k)   # row-major: each row's k columns, ascending
    # rank the k: by column index, then a stable sort by value (descending) keeps equal values in index order
    idx, _ = torch.sort(idx, dim=1)
    _, order = torch.sort(sim.gather(1, idx), dim=1, descending=True, stable=True)
    return idx.gather(1, order)


def _neighbours(x: torch.Tensor, base: torch.Tensor, k: int, exclude_self: bool, chunk_size: int | None) -> torch.Tensor:
    """(N, k) int64 indices into ``base`` of the k rows most similar (dot product) to each row of
    ``x``, ranked as :func:`_stable_topk`; row ``i`` of ``x`` is ``base[i]`` and is left out of
    its own list when ``exclude_self``. Checked inputs, 1 <= k <= the rows available."""
    if _prefilter_wanted(x, base, k, exclude_self):
        return _neighbours_prefiltered(x, base, k, exclude_self, chunk_size)
    return _neighbours_dense(x, base, k, exclude_self, chunk_size, torch.arange(x.shape[0], device=x.device))


def _neighbours_dense(x: torch.Tensor, base: torch.Tensor, k: int, exclude_self: bool, chunk_size: int | None,
                      rows: torch.Tensor) -> torch.Tensor:
    """The exhaustive search, exactly as defined: (len(rows), k) neighbours of ``x[rows]``, one
    (chunk, G) block of similarities in x's dtype at a time."""
    n, g = rows.numel(), base.shape[0]
    out = torch.empty((n, k), dtype=torch.int64, device=x.device)
    step = _rows_per_chunk(chunk_size, g, x.dtype)
    bt = base.t()
    for s in range(0, n, step):
        r = rows[s:s + step]
        sim = x[r] @ bt
        if exclude_self:
            # -inf ranks below every finite similarity, and k <= G - 1 leaves enough finite ones
            sim[torch.arange(r.numel(), device=x.device), r] = -torch.inf
        out[s:s + step] = _stable_topk(sim, k)
    return out


# ----------------------------------------------------------------- exact search through a bf16 filter
# On CPUs with bfloat16 matrix instructions a bf16 matmul is ~3-4x faster than a float32 one, and
# DBA's G x G search is most of qe_dba's time. The filter keeps the search exact: bf16
# similarities only *propose* candidates; the candidates' similarities are recomputed in the
# input dtype and ranked with the tie rule, and a row is accepted only when a rigorous bound on
# the bf16 error proves that no item left out could reach its k-th similarity; other rows are
# searched again with more candidates, then, if still unproven, by the dense search.
#
# The bound, for rows a (of x) and b (of base), hats their bf16 roundings, r = a - a^:
#   a.b - a^.b^ = r_a.b^ + a.r_b                     |.| <= |r_a| |b^| + |a| |r_b|
#   the matmul sums exact bf16 products in float32:    |y - a^.b^| <= gamma_D |a^| |b^|
#   and rounds its output y to bf16 (2^-7 covers round-to-nearest and truncation):
#                                                      |s^ - y| <= u' |s^|,  u' = 2^-7 / (1 - 2^-7)
#   the float32 recomputation of a candidate adds     gamma_D |a| |b|,  gamma_D = D 2^-24 / (1 - D 2^-24)
# so an item left out, whose bf16 similarity is at most t (the lowest one taken), has a computed
# similarity of at most t + u'|t| + e_a, and the row is proven when its k-th recomputed
# similarity is strictly above that: no item outside can equal or beat it, so neither ties nor
# values change the answer. (Subnormals flushed to zero move each term by < 2^-126: the 1e-30.)
_PREFILTER: bool | None = None       # None: automatic; True / False force the filter on / off (CPU only)
_PREFILTER_MIN_WORK = 1 << 31        # multiply-adds (N x G x D) below which the dense search is as fast
_BF16_FAST: bool | None = None       # whether this CPU has fast bf16 matmuls (asked once)
_CANDIDATES_EXTRA = 24               # candidates per row, first try: max(2k, k + 24)
_CANDIDATES_GROW = 4                 # second try, for the rows the first did not prove
_GATHER_BYTES = 2 << 20              # (rows, candidates, D) buffer of one recomputation: small enough for L2


def _bf16_fast() -> bool:
    global _BF16_FAST
    if _BF16_FAST is None:
        try:
            _BF16_FAST = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            _BF16_FAST = False
    return _BF16_FAST


def _prefilter_wanted(x: torch.Tensor, base: torch.Tensor, k: int, exclude_self: bool) -> bool:
    # CPU only: on CUDA, bf16 matmuls may reduce in reduced precision, which the bound does not cover
    if x.device.type != "cpu" or _PREFILTER is False:
        return False
    available = base.shape[0] - exclude_self
    if max(2 * k, k + _CANDIDATES_EXTRA) >= available:   # would recompute (nearly) every item anyway
        return False
    if _PREFILTER:
        return True
    return _bf16_fast() and x.shape[0] * base.shape[0] * base.shape[1] >= _PREFILTER_MIN_WORK


def _rounding(t: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """bf16 copy of ``t`` and, per row, ||t||, ||t^||, ||t - t^|| (float64), computed a block at a time."""
    tb = t.to(torch.bfloat16)
    norms = torch.empty((3, t.shape[0]), dtype=torch.float64, device=t.device)
    for s in range(0, t.shape[0], chunk):
        a, ab = t[s:s + chunk], tb[s:s + chunk].to(t.dtype)
        norms[0, s:s + chunk] = torch.linalg.vector_norm(a, dim=1)
        norms[1, s:s + chunk] = torch.linalg.vector_norm(ab, dim=1)
        norms[2, s:s + chunk] = torch.linalg.vector_norm(a - ab, dim=1)    # a - a^ is exact in t's dtype
    return tb, norms[0], norms[1], norms[2]


def _recompute_topk(x: torch.Tensor, base: torch.Tensor, cand: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For rows ``x`` (R, D) and candidate indices ``cand`` (R, M): the k best candidates by their
    similarity recomputed in x's dtype, ranked with the tie rule, and each row's k-th similarity."""
    r, m = cand.shape
    cand, _ = torch.sort(cand, dim=1)              # index order, so the stable sort below breaks ties by index
    sims = torch.empty((r, m), dtype=x.dtype, device=x.device)
    step = max(1, _GATHER_BYTES // (m * base.shape[1] * x.element_size()))
    for s in range(0, r, step):
        e = min(r, s + step)
        rows = base.index_select(0, cand[s:e].reshape(-1)).view(e - s, m, -1)
        sims[s:e] = torch.linalg.vecdot(rows, x[s:e, None, :])      # a batched gemv is ~2x slower here
    vals, order = torch.sort(sims, dim=1, descending=True, stable=True)
    return cand.gather(1, order[:, :k]), vals[:, k - 1]


def _merge_candidates(run_v: torch.Tensor, run_i: torch.Tensor, sim: torch.Tensor, col0: int) -> None:
    """Fold the best entries of a block ``sim`` (R, C) of bf16 similarities, whose columns start at
    ``col0``, into the running top-M lists ``run_v``/``run_i`` (R, M) of its rows, in place."""
    v, i = torch.topk(sim, min(run_v.shape[1], sim.shape[1]), dim=1)
    v, p = torch.topk(torch.cat([run_v, v], 1), run_v.shape[1], dim=1)
    run_i.copy_(torch.cat([run_i, i + col0], 1).gather(1, p))
    run_v.copy_(v)


def _candidates_within(base_b: torch.Tensor, m: int, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The m largest bf16 similarities of each gallery row to the *other* rows, and their indices,
    from the upper triangle of blocks only: a (B, B) block serves its rows and, transposed, its
    columns, so the G x G search costs about half of G^2 D."""
    n = base_b.shape[0]
    run_v = torch.full((n, m), -torch.inf, dtype=base_b.dtype, device=base_b.device)
    run_i = torch.zeros((n, m), dtype=torch.int64, device=base_b.device)
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        rows = base_b[i0:i1]
        for j0 in range(i0, n, block):
            j1 = min(n, j0 + block)
            sim = rows @ base_b[j0:j1].t()
            if j0 == i0:
                sim.fill_diagonal_(-torch.inf)        # an item is not its own candidate
            _merge_candidates(run_v[i0:i1], run_i[i0:i1], sim, j0)
            if j0 != i0:
                _merge_candidates(run_v[j0:j1], run_i[j0:j1], sim.t().contiguous(), i0)
    return run_v, run_i


def _candidates_across(x_b: torch.Tensor, base_b: torch.Tensor, m: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The m largest bf16 similarities of each row of x to the base, and their indices, (step, G) rows at a time."""
    n = x_b.shape[0]
    run_v = torch.empty((n, m), dtype=base_b.dtype, device=base_b.device)
    run_i = torch.empty((n, m), dtype=torch.int64, device=base_b.device)
    bt = base_b.t()
    for s in range(0, n, step):
        e = min(n, s + step)
        run_v[s:e], run_i[s:e] = torch.topk(x_b[s:e] @ bt, m, dim=1)
    return run_v, run_i


# rows and columns of one block of the G x G search through the filter (32 MB in bf16): torch.topk
# of a few dozen out of a row is ~3x faster on rows of 4096 than on rows of 1024
_SYMMETRIC_BLOCK = 4096


def _neighbours_prefiltered(x: torch.Tensor, base: torch.Tensor, k: int, exclude_self: bool,
                            chunk_size: int | None) -> torch.Tensor:
    n, g, d = x.shape[0], base.shape[0], base.shape[1]
    available = g - exclude_self
    base_b, base_n, base_bn, base_rn = _rounding(base)
    if exclude_self:
        x_b, x_n, x_bn, x_rn = base_b, base_n, base_bn, base_rn
    else:
        x_b, x_n, x_bn, x_rn = _rounding(x)
    gamma = d * 2.0 ** -24 / (1 - d * 2.0 ** -24)
    u_out = 2.0 ** -7 / (1 - 2.0 ** -7)
    bhat, bmax, rbmax = float(base_bn.max()), float(base_n.max()), float(base_rn.max())
    err = (x_rn * bhat + x_n * rbmax + gamma * (x_bn * bhat + x_n * bmax)) * 1.001 + 1e-30
    m1 = max(2 * k, k + _CANDIDATES_EXTRA)
    m2 = min(available, _CANDIDATES_GROW * m1)
    step = _rows_per_chunk(chunk_size, g, torch.bfloat16)

    def proven(t: torch.Tensor, kth: torch.Tensor, rows: torch.Tensor, m: int) -> torch.Tensor:
        t = t.double()
        return (kth.double() > t + t.abs() * u_out + err[rows]) | (m >= available)

    if exclude_self:
        cand_v, cand_i = _candidates_within(base_b, m1, chunk_size or _SYMMETRIC_BLOCK)
    else:
        cand_v, cand_i = _candidates_across(x_b, base_b, m1, step)
    out = torch.empty((n, k), dtype=torch.int64, device=x.device)
    ok = torch.empty(n, dtype=torch.bool, device=x.device)
    for s in range(0, n, step):
        e = min(n, s + step)
        out[s:e], kth = _recompute_topk(x[s:e], base, cand_i[s:e], k)
        ok[s:e] = proven(cand_v[s:e, -1], kth, torch.arange(s, e, device=x.device), m1)
    del cand_v, cand_i
    # second try for the rows not proven: their bf16 rows again, with 4x the candidates
    again = torch.nonzero(~ok).squeeze(1)
    bt = base_b.t()
    unproven = []
    for s in range(0, again.numel(), step):
        rows = again[s:s + step]
        sim = x_b[rows] @ bt
        if exclude_self:
            sim[torch.arange(rows.numel(), device=x.device), rows] = -torch.inf
        tv, cand = torch.topk(sim, m2, dim=1)
        idx, kth = _recompute_topk(x[rows], base, cand, k)
        out[rows] = idx
        unproven.append(rows[~proven(tv[:, -1], kth, rows, m2)])
    # and the dense search for what is left (rows whose neighbours are packed within the bf16 error)
    if unproven and (rows := torch.cat(unproven)).numel():
        out[rows] = _neighbours_dense(x, base, k, exclude_self, chunk_size, rows)
    return out


def nearest_neighbours(query, gallery, k: int, *, exclude_self: bool = False,
                       chunk_size: int | None = None) -> torch.Tensor:
    """The k gallery items most similar to each query, by exhaustive search.

    Args:
        query: (Q, D) descriptors, numpy or torch, float32 or float64 (l2-normalised on entry).
        gallery: (G, D) descriptors, l2-normalised on entry.
        k: neighbours per query, ``1 <= k <= G`` (``<= G - 1`` with ``exclude_self``).
        exclude_self: ``query`` is ``gallery`` (Q == G): row i is gallery item i and is left
            out of its own list (DBA's search of the gallery within itself).
        chunk_size: query rows per (chunk_size, G) block of similarities (default: a block
            of about 64 MB); the G x G search through the bf16 filter (``exclude_self``, see
            the module docstring) uses (chunk_size, chunk_size) blocks (default 4096 x 4096).
            The neighbours do not depend on it, up to float rounding.

    Returns:
        (Q, k) int64 tensor of gallery indices, on the query's device, each row ranked by
        similarity ``q . d``, highest first; **equal similarities rank the lower gallery index
        first** (the order of a stable descending sort of the row).
    """
    q, g = _pair(query, gallery, "query", "gallery")
    if exclude_self and q.shape[0] != g.shape[0]:
        raise ValueError(f"exclude_self needs query to be the gallery itself (as many rows), "
                         f"got {q.shape[0]} query and {g.shape[0]} gallery rows")
    limit = g.shape[0] - 1 if exclude_self else g.shape[0]
    k = _check_k(k, "k", limit, "the number of other gallery items" if exclude_self else "the gallery size G")
    if k == 0:
        raise ValueError("k must be at least 1 for a neighbour search, got 0")
    return _neighbours(q, g, k, exclude_self, _check_chunk(chunk_size))


# --------------------------------------------------------------------------- QE and DBA
def _sum_rows(rows: torch.Tensor, idx: torch.Tensor, first: torch.Tensor | None, chunk: int) -> torch.Tensor:
    """``first + sum_j rows[idx[:, j]]`` per output row (``first`` may be None), normalised.
    The indices are sorted first, so each sum runs in increasing index order and depends on
    the neighbour set only."""
    idx, _ = torch.sort(idx, dim=1)
    n, k = idx.shape
    out = torch.empty((n, rows.shape[1]), dtype=rows.dtype, device=rows.device)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        acc = rows.index_select(0, idx[s:e].reshape(-1)).view(e - s, k, -1).sum(1)
        if first is not None:
            acc = first[s:e] + acc
        out[s:e] = torch.nn.functional.normalize(acc, dim=1, eps=_NORM_EPS)
    return out


def _gather_chunk(k: int, d: int, dtype: torch.dtype) -> int:
    # rows per (rows, k, D) gather: 16 MB keeps it small beside the (N, D) result it fills
    return max(1, (16 << 20) // max(1, k * d * torch.finfo(dtype).bits // 8))


def _dba(g: torch.Tensor, k: int, include_self: bool, chunk_size: int | None) -> torch.Tensor:
    """DBA of unit rows ``g`` (a tensor of our own: returned as it is for k = 0)."""
    others = k - 1 if include_self else k
    if k == 0 or others == 0:                        # off, or N1 = {d_i}: d~_i = normalize(d_i) = d_i
        return g
    ng = g.shape[0]
    chunk = _gather_chunk(k, g.shape[1], g.dtype)
    nb = _neighbours(g, g, others, True, chunk_size)
    if include_self:
        nb = torch.cat([torch.arange(ng, device=g.device)[:, None], nb], 1)
    return _sum_rows(g, nb, None, chunk)


def _aqe(q: torch.Tensor, g: torch.Tensor, k: int, include_query: bool, chunk_size: int | None) -> torch.Tensor:
    """QE of unit rows ``q`` (a tensor of our own: returned as it is for k = 0) against unit rows ``g``."""
    if k == 0:
        return q
    nb = _neighbours(q, g, k, False, chunk_size)
    return _sum_rows(g, nb, q if include_query else None, _gather_chunk(k, g.shape[1], g.dtype))


def database_augmentation(gallery, k: int = 10, *, include_self: bool = True,
                          chunk_size: int | None = None) -> torch.Tensor:
    """Database-side augmentation (DBA), Almazán et al. 2018, footnote 2 (the "10" of "5 and 10").

    ``d~_i = normalize(sum_{j in N_k(d_i)} d_j)``: each gallery descriptor replaced by the
    re-normalised mean of its k nearest gallery items. ``N_k(d_i)`` *includes d_i itself*
    (``include_self=True``, the choice made here: ``d_i`` plus its k - 1 most similar other
    items; ``d_i`` counts even when duplicates of it tie with it at similarity 1); with
    ``include_self=False`` it is the k most similar *other* items. Neighbours are ranked with
    the tie rule of :func:`nearest_neighbours` (equal similarities: lower index first).

    Args:
        gallery: (G, D) descriptors, numpy or torch, float32 or float64 (l2-normalised on entry).
        k: neighbourhood size; 0 switches DBA off (the l2-normalised gallery is returned).
            At most G (``include_self``) or G - 1 (without).
        include_self: whether d_i is one of its own k.
        chunk_size: gallery rows per (chunk_size, G) block of the exhaustive G x G search
            (default: a block of about 64 MB; through the bf16 filter, (chunk_size, chunk_size)
            blocks, default 4096 x 4096).

    Returns:
        (G, D) tensor of augmented descriptors, unit rows, in the gallery's dtype and device.
    """
    g = _unit_rows(_as_descriptors(gallery, "gallery"), "gallery")
    ng = g.shape[0]
    k = _check_k(k, "k", ng if include_self else ng - 1,
                 "the gallery size G" if include_self else "the number of other gallery items G - 1")
    return _dba(g, k, include_self, _check_chunk(chunk_size))


def average_query_expansion(query, gallery, k: int = 5, *, include_query: bool = True,
                            chunk_size: int | None = None) -> torch.Tensor:
    """Average query expansion (QE), Almazán et al. 2018, footnote 2 (the "5" of "5 and 10").

    ``q~ = normalize(q + sum_{j in N_k(q)} d_j)``: each query replaced by the re-normalised
    mean of itself and its k nearest gallery items (``include_query=True``, the choice made
    here: the query counts in addition to its k; ``include_query=False``: the k alone). In
    :func:`qe_dba` the gallery passed here is the DBA-augmented one, so that QE averages
    augmented descriptors. Neighbours are ranked with the tie rule of
    :func:`nearest_neighbours` (equal similarities: lower gallery index first).

    Args:
        query: (Q, D) descriptors, numpy or torch, float32 or float64 (l2-normalised on entry).
        gallery: (G, D) descriptors (e.g. the output of :func:`database_augmentation`), l2-normalised on entry.
        k: neighbours averaged in, 0 <= k <= G; 0 switches QE off (the l2-normalised queries are returned).
        include_query: whether q itself is part of its mean.
        chunk_size: query rows per (chunk_size, G) block of similarities (default: about 64 MB).

    Returns:
        (Q, D) tensor of expanded queries, unit rows, in the promoted dtype on the query's device.
    """
    q, g = _pair(query, gallery, "query", "gallery")
    k = _check_k(k, "k", g.shape[0], "the gallery size G")
    return _aqe(q, g, k, include_query, _check_chunk(chunk_size))


def qe_dba(query, gallery, *, qe_k: int = 5, dba_k: int = 10, chunk_size: int | None = None,
           return_: Literal["similarity", "distance"] = "similarity") -> torch.Tensor:
    """The re-rank of Almazán et al. 2018, footnote 2: DBA on the gallery, then QE of the
    queries against the augmented gallery, then ``s(q, d_i) = q~ . d~_i``.

    The paper's setting is the default, ``qe_k=5`` (QE: the query plus its 5 nearest
    augmented gallery items) and ``dba_k=10`` (DBA: each gallery item and its 9 nearest other
    items, 10 in all); see the module docstring for each choice. ``qe_k=0`` / ``dba_k=0``
    switch QE / DBA off; both 0 give the plain dot products of the unit rows, the cosine
    similarities.

    DBA depends on the gallery only: for many query sets against one gallery, compute
    ``gallery_aug = database_augmentation(gallery, dba_k)`` once and then, per query set,
    ``average_query_expansion(query, gallery_aug, qe_k) @ gallery_aug.T`` (the same result).

    Args:
        query: (Q, D) descriptors, numpy or torch, float32 or float64 (l2-normalised on entry).
        gallery: (G, D) descriptors, l2-normalised on entry.
        qe_k: 0 <= qe_k <= G. dba_k: 0 <= dba_k <= G.
        chunk_size: rows per (chunk_size, G) block of every similarity matrix computed on the
            way (default: blocks of about 64 MB; DBA's search through the bf16 filter uses
            (chunk_size, chunk_size) blocks, default 4096 x 4096). The result does not depend
            on it, up to float rounding.
        return_: ``"similarity"`` (``q~ . d~``, in [-1, 1]) or ``"distance"`` (``1 - q~ . d~``,
            in [0, 2], smaller is more similar: pass it straight to :func:`reidlib.eval.evaluate`).

    Returns:
        (Q, G) tensor in the promoted float dtype, on the query's device.
    """
    if return_ not in ("similarity", "distance"):
        raise ValueError(f"return_ must be 'similarity' or 'distance', got {return_!r}")
    q, g = _pair(query, gallery, "query", "gallery")
    ng = g.shape[0]
    qe_k = _check_k(qe_k, "qe_k", ng, "the gallery size G")
    dba_k = _check_k(dba_k, "dba_k", ng, "the gallery size G")
    chunk_size = _check_chunk(chunk_size)
    nq = q.shape[0]
    g_aug = _dba(g, dba_k, True, chunk_size)
    del g                                            # the normalised copy: not needed once augmented
    q_aug = _aqe(q, g_aug, qe_k, True, chunk_size)
    del q
    out = torch.empty((nq, ng), dtype=q_aug.dtype, device=q_aug.device)
    rows = _rows_per_chunk(chunk_size, ng, q_aug.dtype)
    gt = g_aug.t()
    for s in range(0, nq, rows):
        e = min(nq, s + rows)
        block = torch.mm(q_aug[s:e], gt, out=out[s:e])
        if return_ == "distance":
            block.neg_().add_(1.0)
    return out
