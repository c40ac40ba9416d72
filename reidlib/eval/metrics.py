"""CMC, mAP and mINP under the Market-1501 protocol, fast and per-query reference.

The protocol, for a query ``q`` with identity ``p_q`` seen by camera ``c_q``:

* gallery items with the same identity **and** the same camera as the query are *junk*:
  they are removed from its ranked list (they are too easy: often the same tracklet);
* gallery items with identity ``-1`` (:data:`JUNK_PID`, Market-1501's junk detections:
  boxes too poor to count) are junk for *every* query: removed from every ranked list, so
  they are neither matches nor non-matches (the official Market-1501 evaluation code does
  the same; keeping them or dropping them from the gallery gives the same scores);
* the remaining gallery items with identity ``p_q`` are its *matches* (true positives);
* a query with no match left is *excluded* from every average and counted;
* the gallery is ranked by increasing distance; **ties are broken by gallery index**
  (the order of a stable sort of the row, ``np.argsort(row, kind="stable")``), so the
  result is deterministic and does not depend on the sorting algorithm.

With ``r_1 < r_2 < ... < r_n`` the 1-based ranks of the query's ``n`` matches in its
junk-free ranked list:

* ``AP = (1/n) * sum_k k / r_k`` -- non-interpolated average precision (precision at each
  hit, averaged over the hits), as in torchreid and the AGW code;
* ``CMC(m) = [r_1 <= m]`` -- a hit within the first ``m``; the reported curve is its mean;
* ``INP = n / r_n`` -- inverse negative penalty (Ye et al., AGW survey, TPAMI 2021):
  the fraction of the list up to the hardest match that is correct.

``evaluate`` computes these without sorting the gallery (see :func:`_positive_ranks`);
``evaluate_reference`` is the plain per-query loop that ``evaluate`` is tested against.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from .distance import distance

__all__ = [
    "JUNK_PID",
    "evaluate",
    "evaluate_ranking",
    "evaluate_reference",
    "pool_multi_query",
    "evaluate_multi_query",
]

ArrayLike = np.ndarray | torch.Tensor | Sequence[int]

# Gallery identity of Market-1501's junk images (file names "-1_c1s1_..."): ignored by every query.
JUNK_PID = -1


# --------------------------------------------------------------------------- input checks
def _as_labels(x: ArrayLike, name: str, length: int, length_name: str) -> np.ndarray:
    """1-D int64 label array of the given length, or a ValueError naming ``name``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per item), got shape {arr.shape}")
    if arr.shape[0] != length:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but {length_name} is {length}: "
            f"expected one label per row/column of distmat")
    # Checked before any arithmetic: strings ("0001") and objects made np.isfinite below fail with
    # numpy's "ufunc 'isfinite' not supported", which names neither the argument nor the fix.
    if arr.dtype.kind not in "iufb":
        hint = (f"; string ids such as '0001' must be converted first, e.g. np.asarray({name}, dtype=np.int64)"
                if arr.dtype.kind in "USO" else "")
        raise ValueError(f"{name} must hold integer labels (an integer dtype such as int64), "
                         f"got dtype {arr.dtype}{hint}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def as_tensor_view(arr: np.ndarray) -> torch.Tensor:
    """A numeric array as a tensor sharing its memory where it can: a non-native byte order is
    converted (torch has none), and a read-only array is accepted without torch's warning, since the
    evaluation functions never write their inputs."""
    if arr.dtype.byteorder not in "=|":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


def _as_distmat(distmat: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The distance matrix as a CPU tensor (no copy for a CPU array), shape checked."""
    if isinstance(distmat, torch.Tensor):
        d = distmat.detach()
    else:
        arr = np.asarray(distmat)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"distmat must be a numeric (Q, G) array, got dtype {arr.dtype}")
        d = as_tensor_view(arr)
    if d.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {tuple(d.shape)}")
    if d.shape[0] == 0:
        raise ValueError(f"distmat has no rows: expected at least one query, got shape {tuple(d.shape)}")
    if d.shape[1] == 0:
        raise ValueError(f"distmat has no columns: expected a non-empty gallery, got shape {tuple(d.shape)}")
    if d.is_complex() or d.dtype == torch.bool:
        raise ValueError(f"distmat must hold real distances, got dtype {d.dtype}")
    if not d.is_floating_point():
        d = d.to(torch.float64)
    elif d.dtype in (torch.float16, torch.bfloat16):
        d = d.to(torch.float32)
    return d


def _check_max_rank(max_rank: int) -> int:
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer, got {max_rank!r}")
    return int(max_rank)


def _nonfinite_error(row: int, values: torch.Tensor) -> ValueError:
    bad = values[~torch.isfinite(values)]
    return ValueError(
        f"distmat must be finite, but row {row} (query {row}) contains {bad[0].item()}: "
        "expected real distances without NaN or inf")


def _prepare(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    d = _as_distmat(distmat)
    nq, ng = d.shape
    qp = _as_labels(q_pids, "q_pids", nq, "distmat.shape[0] (number of queries)")
    gp = _as_labels(g_pids, "g_pids", ng, "distmat.shape[1] (gallery size)")
    qc = _as_labels(q_camids, "q_camids", nq, "distmat.shape[0] (number of queries)")
    gc = _as_labels(g_camids, "g_camids", ng, "distmat.shape[1] (gallery size)")
    if (gp == JUNK_PID).all():
        raise ValueError(f"g_pids: all {ng} gallery items have identity {JUNK_PID} (junk under the "
                         "Market-1501 protocol, ignored by every query): expected a gallery with real identities")
    return d, qp, gp, qc, gc, _check_max_rank(max_rank)


# --------------------------------------------------------------------------- summaries
def _summarise(ranks_first: np.ndarray, ap: np.ndarray, inp: np.ndarray, valid: np.ndarray,
               max_rank: int, per_query: bool) -> dict:
    """Average per-query AP / INP / first-hit ranks over the valid queries."""
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            "no query has a match in the gallery once same-camera matches and identity -1 (junk) are removed: "
            "expected query and gallery to share identities seen by different cameras "
            "(check q_pids/g_pids and q_camids/g_camids)")
    first = ranks_first[valid]
    hist = np.bincount(np.minimum(first, max_rank + 1) - 1, minlength=max_rank + 1)[:max_rank]
    cmc = np.cumsum(hist) / num_valid
    out = {
        "mAP": float(np.mean(ap[valid])),
        "mINP": float(np.mean(inp[valid])),
        "cmc": cmc.astype(np.float64),
        "num_valid_queries": num_valid,
        "num_excluded_queries": int(valid.size - num_valid),
    }
    if per_query:
        out["AP"] = np.where(valid, ap, np.nan)
        out["INP"] = np.where(valid, inp, np.nan)
        out["first_match_rank"] = np.where(valid, ranks_first, 0).astype(np.int64)
        out["valid"] = valid.copy()
    return out


# --------------------------------------------------------------------------- reference
def evaluate_reference(distmat, q_pids, g_pids, q_camids, g_camids, *, max_rank: int = 50,
                       per_query: bool = False) -> dict:
    """The Market-1501 protocol as a plain per-query loop: stable-sort each row, drop junk
    (same identity and camera as the query, or gallery identity -1), read off the ranks of the
    matches. Same inputs and outputs as :func:`evaluate`; slow (one full sort per query) and
    kept as the definition that ``evaluate`` must match."""
    d, qp, gp, qc, gc, max_rank = _prepare(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    dist = d.numpy() if d.device.type == "cpu" else d.cpu().numpy()
    nq = dist.shape[0]
    first = np.zeros(nq, np.int64)
    ap = np.zeros(nq)
    inp = np.zeros(nq)
    valid = np.zeros(nq, bool)
    for i in range(nq):
        row = dist[i]
        if not np.all(np.isfinite(row)):
            raise _nonfinite_error(i, torch.from_numpy(np.ascontiguousarray(row)))
        order = np.argsort(row, kind="stable")
        same = gp[order] == qp[i]
        # junk: same id and same camera, or a gallery item of identity -1 (junk for every query)
        keep = ~(same & (gc[order] == qc[i])) & (gp[order] != JUNK_PID)
        hit_ranks = np.flatnonzero(same[keep]) + 1      # 1-based ranks of the matches
        if hit_ranks.size == 0:
            continue
        n = hit_ranks.size
        valid[i] = True
        first[i] = hit_ranks[0]
        ap[i] = np.mean(np.arange(1, n + 1) / hit_ranks)
        inp[i] = n / hit_ranks[-1]
    return _summarise(first, ap, inp, valid, max_rank, per_query)


# --------------------------------------------------------------------------- fast path
def _same_pid_index(qp: np.ndarray, gp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query, where its identity's gallery items start and how many there are in
    ``g_order`` (the gallery sorted by pid, stable, so indices within a pid increase)."""
    g_order = np.argsort(gp, kind="stable")
    gp_sorted = gp[g_order]
    start = np.searchsorted(gp_sorted, qp, side="left")
    count = np.searchsorted(gp_sorted, qp, side="right") - start
    return g_order, start, count


_ITEMS_PER_BIN = 8


def _num_bins(num_gallery: int) -> int:
    """Histogram bins per row: a power of two, about ``_ITEMS_PER_BIN`` gallery items per bin."""
    per_bin = max(num_gallery, _ITEMS_PER_BIN) / _ITEMS_PER_BIN
    return int(min(1 << 16, max(16, 1 << int(np.ceil(np.log2(per_bin))))))


def _sorted_matches(x: torch.Tensor, same_idx: torch.Tensor, is_pos: torch.Tensor):
    """Each row's matches sorted by (distance, gallery index): a stable sort of their
    distances, gathered in increasing gallery order. Returns the distances of the row's
    same-identity items (c, S), the sorted match distances ``thr`` (c, K), their gallery
    indices ``thr_idx`` (c, K) and ``valid_k`` (c, K) (K = most matches in any row)."""
    d_same = x.gather(1, same_idx)
    d_pos = torch.where(is_pos, d_same, torch.full_like(d_same, float("inf")))
    d_sorted, order = torch.sort(d_pos, dim=1, stable=True)
    npos = is_pos.sum(1)
    kmax = max(int(npos.max()), 1)
    valid_k = torch.arange(kmax, device=x.device)[None, :] < npos[:, None]
    return d_same, d_sorted[:, :kmax], same_idx.gather(1, order)[:, :kmax], valid_k


# Adding 2**23 (2**52) to a float32 (float64) in [0, 2**23) rounds it to an integer that its
# bit pattern holds, offset by these constants: float -> int without a conversion pass.
_MAGIC = {torch.float32: (2.0 ** 23, 0x4B000000, torch.int32),
          torch.float64: (2.0 ** 52, 0x4330000000000000, torch.int64)}


def _bin_params(tv: torch.Tensor, nbins: int, dtype: torch.dtype) -> tuple[float, float, bool]:
    """Scalars of the monotone map ``bin = round(clamp(scale * d + base, 0, nbins + 1))``
    that spreads the chunk's match distances ``tv`` over bins 1..nbins (half a bin of margin
    against rounding; everything nearer / farther lands in bins 0 / nbins + 1)."""
    first, last = float(tv.min()), float(tv.max())
    span = last - first
    scale = (nbins - 1) * (1 - 1e-6) / span if span > 0 else 1.0
    scale = min(scale, float(torch.finfo(dtype).max) / 4)
    # x * scale + base loses ~ulp(|first| * scale) to rounding: subtract first when large.
    sub_first = abs(first) * scale > 2 ** 21 or not np.isfinite(abs(first) * scale)
    return scale, (first if sub_first else 1.5 - first * scale), sub_first


def _bins(vals: torch.Tensor, params: tuple[float, float, bool], nbins: int, out: torch.Tensor,
          row_off: torch.Tensor | None = None) -> torch.Tensor:
    """Apply the map of :func:`_bin_params` to ``vals`` (c, G) or (M,), writing into the float
    buffer ``out`` (same shape and dtype) and returning it reinterpreted as integer bins, plus
    ``row_off`` (broadcastable) when given. Monotone in ``vals``: every step is."""
    scale, base, sub_first = params
    magic, bits, itype = _MAGIC[vals.dtype]
    if sub_first:
        torch.sub(vals, base, out=out).mul_(scale).add_(1.5 + magic)
    else:
        torch.mul(vals, scale, out=out).add_(base + magic)
    out.clamp_(magic, magic + nbins + 1)     # now whole numbers: magic + bin
    ibin = out.view(itype)
    return ibin.sub_(bits) if row_off is None else ibin.add_(row_off.to(itype) - bits)


# Sort the items nearer than the last match when they are at most this fraction of a row
# (probed on a chunk's first rows); histogram the whole row otherwise.
_SPARSE_FRACTION = 0.05


def _before_sparse(x: torch.Tensor, last: torch.Tensor, tr: torch.Tensor, tpos: torch.Tensor,
                   bbuf: torch.Tensor) -> torch.Tensor:
    """#items before each match when few items are nearer than their row's last match:
    keep those, sort them by (row, distance, index) and read off the matches' positions."""
    c, ng = x.shape
    keep = bbuf[: c * ng].numpy().reshape(c, ng)
    np.less_equal(x.numpy(), last.numpy()[:, None], out=keep)
    pos = np.flatnonzero(keep)                                  # ascending: by row, then index
    rows = pos // ng
    order = np.argsort(x.numpy().reshape(-1)[pos], kind="stable")
    # then stably by row (a radix sort on small ints): order is by (row, distance, index)
    order = order[np.argsort(rows[order].astype(np.int16 if c < 2 ** 15 else np.int64), kind="stable")]
    place = np.empty_like(order)
    place[order] = np.arange(order.size)
    per_row = np.bincount(rows, minlength=c)
    row_start = np.cumsum(per_row) - per_row
    at = np.searchsorted(pos, tpos.numpy())
    return torch.from_numpy(place[at] - row_start[tr.numpy()])


def _before_dense(x: torch.Tensor, tv: torch.Tensor, ti: torch.Tensor, tpos: torch.Tensor,
                  nbins: int, fbuf: torch.Tensor, bbuf: torch.Tensor) -> torch.Tensor:
    """#items before each match by histogram: a monotone map sends every distance to one of
    ``nbins`` bins (per row: bin + row * stride); items in lower bins than the match's bin
    come before it (a cumulative sum), and only the few items sharing its bin are compared
    exactly (distance, then index). tv, ti, tpos: the matches' distances, gallery indices and
    flat positions, row-major and ascending within a row."""
    c, ng = x.shape
    nt = tv.numel()
    stride = nbins + 2
    row_off = torch.arange(c, dtype=torch.int64)[:, None] * stride
    flat_bin = _bins(x, _bin_params(tv, nbins, x.dtype), nbins, fbuf[: c * ng].view(c, ng), row_off).view(-1)
    counts = torch.bincount(flat_bin, minlength=c * stride)
    tb = flat_bin[tpos].long()                                  # the matches' own bins, sorted
    before = -counts[tb]
    before += counts.view(c, stride).cumsum_(1).view(-1)[tb]    # items in lower bins

    # Items sharing a bin with a match: a bin's matches are sorted, so an item comes before
    # a suffix [first, hi) of them. Count with +1 / -1 at the range ends and a cumsum.
    flags = torch.zeros(c * stride, dtype=torch.bool)
    flags[tb] = True
    in_flagged = bbuf[: c * ng]
    torch.index_select(flags, 0, flat_bin, out=in_flagged)
    cand = torch.from_numpy(np.flatnonzero(in_flagged.numpy()))
    if cand.numel():
        cb = flat_bin[cand].long()
        g = cand % ng
        v = x.reshape(-1)[cand]
        lo = torch.searchsorted(tb, cb)
        hi = torch.searchsorted(tb, cb, right=True)
        first = lo.clone()
        for step in range(int((hi - lo).max())):
            j = (lo + step).clamp(max=nt - 1)
            first += ((lo + step < hi) & ((v > tv[j]) | ((v == tv[j]) & (g >= ti[j])))).long()
        diff = torch.zeros(nt + 1, dtype=torch.int64)
        diff.index_add_(0, first, torch.ones_like(first))
        diff.index_add_(0, hi, -torch.ones_like(hi))
        before += torch.cumsum(diff, 0)[:nt]
    return before


def _positive_ranks(x: torch.Tensor, same_idx: torch.Tensor, same_mask: torch.Tensor,
                    is_pos: torch.Tensor, nbins: int, fbuf: torch.Tensor, bbuf: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranks of each query's matches in its junk-free ranked list, without sorting the gallery.

    x: (c, G) finite distances, contiguous on the CPU. same_idx / same_mask / is_pos: (c, S)
    gallery indices with the query's identity (increasing), which of them are real, which
    are matches (not junk). fbuf / bbuf: work buffers of at least c * G elements (x's dtype,
    bool). Returns ``ranks`` (c, K) int64, 1-based, ascending per row, and ``valid_k`` (c, K).

    Gallery item ``g`` comes before match ``k`` iff ``(d_g, g) < (d_k, i_k)`` (distance, then
    gallery index): the stable-sort order. So the rank of match k is
    ``1 + #{items before it} - #{junk items before it}``. Items farther than the row's last
    match never come before a match; when they are nearly all of the matrix (a good model)
    the rest is sorted (:func:`_before_sparse`), otherwise everything is histogrammed
    (:func:`_before_dense`). Junk items are few and compared directly.
    """
    c, ng = x.shape
    d_same, thr, thr_idx, valid_k = _sorted_matches(x, same_idx, is_pos)
    npos = valid_k.sum(1)
    tr, tk = torch.nonzero(valid_k, as_tuple=True)              # the matches, row-major
    if tr.numel() == 0:
        return torch.zeros(valid_k.shape, dtype=torch.int64), valid_k
    tv, ti = thr[tr, tk], thr_idx[tr, tk]
    tpos = tr * ng + ti
    last = torch.where(npos > 0, thr.gather(1, (npos - 1).clamp_min(0)[:, None]).squeeze(1),
                       torch.tensor(-float("inf"), dtype=x.dtype))   # each row's farthest match
    probe = min(c, 4)
    frac = np.count_nonzero(x[:probe].numpy() <= last[:probe, None].numpy()) / (probe * ng)
    if frac <= _SPARSE_FRACTION:
        before = _before_sparse(x, last, tr, tpos, bbuf)
    else:
        before = _before_dense(x, tv, ti, tpos, nbins, fbuf, bbuf)

    # Junk items (same id, same camera) before a match: subtract them. A junk item comes
    # before the matches of its row from the first one it precedes to the row's end.
    is_junk = same_mask & ~is_pos
    if bool(is_junk.any()):
        jr, js = torch.nonzero(is_junk, as_tuple=True)
        jv, jg = d_same[jr, js][:, None], same_idx[jr, js][:, None]
        n_after = (valid_k[jr] & ((thr[jr] < jv) | ((thr[jr] == jv) & (thr_idx[jr] < jg)))).sum(1)
        row_start = torch.cumsum(npos, 0) - npos
        diff = torch.zeros(tr.numel() + 1, dtype=torch.int64)
        diff.index_add_(0, row_start[jr] + n_after, torch.ones_like(jr))
        diff.index_add_(0, row_start[jr] + npos[jr], -torch.ones_like(jr))
        before -= torch.cumsum(diff, 0)[: tr.numel()]

    ranks = torch.zeros(valid_k.shape, dtype=torch.int64)
    ranks[tr, tk] = before + 1
    return ranks, valid_k


def evaluate(distmat: np.ndarray | torch.Tensor, q_pids: ArrayLike, g_pids: ArrayLike,
             q_camids: ArrayLike, g_camids: ArrayLike, *, max_rank: int = 50,
             per_query: bool = False, chunk_size: int | None = None) -> dict:
    """Re-ID evaluation under the Market-1501 protocol (see the module docstring).

    Args:
        distmat: (Q, G) query-to-gallery distances (numpy or torch, any float dtype);
            smaller is more similar. Must be finite. Not copied when it is a CPU array.
        q_pids, g_pids: (Q,), (G,) integer identities (an integer dtype, or floats holding
            whole numbers; strings such as "0001" are refused). Gallery items with identity
            -1 (:data:`JUNK_PID`) are junk for every query, as in the Market-1501 protocol:
            left out of every ranked list, like the same-identity same-camera items; a
            query of identity -1 has no match and is excluded.
        q_camids, g_camids: (Q,), (G,) integer camera ids.
        max_rank: length of the returned CMC curve. Ranks beyond the gallery size simply
            repeat the last value (every valid query has its first match within G).
        per_query: also return per-query ``AP``, ``INP`` (NaN for excluded queries),
            ``first_match_rank`` (0 for excluded) and the ``valid`` mask, each (Q,).
        chunk_size: query rows processed at a time (default: about 2M distances); work
            memory is about 6 bytes per distance of a chunk (float32) plus small arrays
            (plus a copy of the chunk without its identity -1 columns, when the gallery has any).

    Returns:
        dict with ``mAP`` and ``mINP`` (floats in [0, 1], means over the valid queries),
        ``cmc`` ((max_rank,) float64, ``cmc[m-1]`` = fraction of valid queries with a
        match within the first m), ``num_valid_queries`` and ``num_excluded_queries``.

    Ties are broken by gallery index (the stable-sort order), so ``evaluate`` equals
    :func:`evaluate_reference` exactly, up to float rounding of the averages.

    Raises:
        ValueError: distmat not 2-D, empty, or not finite; a label array of the wrong
            length or of a non-integer dtype; max_rank not a positive integer; every gallery
            identity -1; no query with a valid match.
    """
    d, qp, gp, qc, gc, max_rank = _prepare(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    nq, ng = d.shape
    # Gallery identity -1 is junk for every query: drop those columns from each chunk (after the
    # finiteness check, which covers the whole matrix as evaluate_reference's does). Order is
    # kept, so ties are still broken by the original gallery index.
    junk_cols = gp == JUNK_PID
    kept_cols = None
    if junk_cols.any():                      # not all: _prepare refuses an all-junk gallery
        kept_cols = torch.from_numpy(np.flatnonzero(~junk_cols))
        gp, gc = gp[~junk_cols], gc[~junk_cols]
        ng = gp.size
    g_order, start, count = _same_pid_index(qp, gp)
    nbins = _num_bins(ng)
    if chunk_size is None:
        chunk_size = max(1, (1 << 21) // ng)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    first = np.zeros(nq, np.int64)
    ap = np.zeros(nq)
    inp = np.zeros(nq)
    valid = np.zeros(nq, bool)
    g_order_t = torch.from_numpy(g_order)
    fbuf = torch.empty(min(chunk_size, nq) * ng, dtype=torch.float64 if d.dtype == torch.float64 else torch.float32)
    bbuf = torch.empty(min(chunk_size, nq) * ng, dtype=torch.bool)
    gc_t = torch.from_numpy(gc)
    for s in range(0, nq, chunk_size):
        e = min(nq, s + chunk_size)
        x = d[s:e]
        if x.device.type != "cpu":
            x = x.cpu()
        x = x.contiguous()
        # NaN and inf make the sum non-finite (so may huge finite values: then look closer).
        if not bool(torch.isfinite(x.sum())):
            bad = ~torch.isfinite(x).all(1)
            if bool(bad.any()):
                row = int(torch.nonzero(bad)[0])
                raise _nonfinite_error(s + row, x[row])
        if kept_cols is not None:
            x = x.index_select(1, kept_cols)     # contiguous (c, G') without the junk gallery items
        cnt = count[s:e]
        smax = int(cnt.max())
        if smax == 0:
            continue
        pos_in = np.arange(smax)[None, :]
        same_mask = torch.from_numpy(pos_in < cnt[:, None])
        same_idx = g_order_t[torch.from_numpy(np.minimum(start[s:e, None] + pos_in, ng - 1))]
        same_idx = torch.where(same_mask, same_idx, 0)
        is_pos = same_mask & (gc_t[same_idx] != torch.from_numpy(qc[s:e])[:, None])
        ranks, valid_k = _positive_ranks(x, same_idx, same_mask, is_pos, nbins, fbuf, bbuf)
        npos = valid_k.sum(1)
        ok = npos > 0
        k = torch.arange(1, ranks.shape[1] + 1, dtype=torch.float64)[None, :]
        prec = torch.where(valid_k, k / ranks.double(), 0.0)
        last = ranks.gather(1, (npos - 1).clamp_min(0)[:, None]).squeeze(1)
        ap[s:e] = torch.where(ok, prec.sum(1) / npos.clamp_min(1), 0.0).numpy()
        inp[s:e] = torch.where(ok, npos / last.double(), 0.0).numpy()
        first[s:e] = ranks[:, 0].numpy()
        valid[s:e] = ok.numpy()
    return _summarise(first, ap, inp, valid, max_rank, per_query)


# --------------------------------------------------------------------------- ranked lists
def evaluate_ranking(ranking: np.ndarray | torch.Tensor, q_pids: ArrayLike, g_pids: ArrayLike,
                     q_camids: ArrayLike, g_camids: ArrayLike, *, depth: int | None = None, max_rank: int = 50,
                     per_query: bool = False, chunk_size: int | None = None) -> dict:
    """The Market-1501 protocol on ranked lists given as gallery indices rather than distances: for
    retrieval whose order is not one sort of one distance (AFR's candidates, then the rest).

    Args:
        ranking: (Q, G) integer gallery indices, row ``i`` the ranked list of query ``i``, best first;
            each row a permutation of ``range(G)``.
        depth: when given, only the first ``depth`` entries of each list count as retrieved (a
            truncated list): matches further down are never found. AP is still divided by all of
            the query's matches, a first match beyond ``depth`` is a miss at every CMC rank
            (``first_match_rank`` G + 1), and INP is 0 unless every match is within ``depth``.
            Junk (same identity and camera, identity -1) is removed after the cut.
        q_pids, g_pids, q_camids, g_camids, max_rank, per_query, chunk_size: as for :func:`evaluate`.

    With ``ranking = np.argsort(distmat, axis=1, kind="stable")`` and no ``depth`` the result equals
    :func:`evaluate` on ``distmat``.

    Raises:
        ValueError: ranking not a 2-D integer array, a row not a permutation of the gallery, labels of
            the wrong length or dtype, depth or max_rank not a positive integer, no valid query.
    """
    r = ranking.detach().cpu().numpy() if isinstance(ranking, torch.Tensor) else np.asarray(ranking)
    if r.ndim != 2 or r.shape[0] == 0 or r.shape[1] == 0 or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"ranking must be a non-empty 2-D integer array (Q, G) of gallery indices, "
                         f"got dtype {r.dtype} and shape {r.shape}")
    nq, ng = r.shape
    qp = _as_labels(q_pids, "q_pids", nq, "ranking.shape[0] (number of queries)")
    gp = _as_labels(g_pids, "g_pids", ng, "ranking.shape[1] (gallery size)")
    qc = _as_labels(q_camids, "q_camids", nq, "ranking.shape[0] (number of queries)")
    gc = _as_labels(g_camids, "g_camids", ng, "ranking.shape[1] (gallery size)")
    max_rank = _check_max_rank(max_rank)
    if depth is None:
        depth = ng
    elif isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be a positive integer (or None for the whole list), got {depth!r}")
    if chunk_size is None:
        chunk_size = max(1, (1 << 21) // ng)
    first = np.zeros(nq, np.int64)
    ap = np.zeros(nq)
    inp = np.zeros(nq)
    valid = np.zeros(nq, bool)
    positions = np.arange(ng)[None, :]
    for s in range(0, nq, chunk_size):
        rows = r[s:s + chunk_size].astype(np.int64, copy=False)
        c = rows.shape[0]
        seen = np.zeros((c, ng), bool)
        inside = (rows >= 0) & (rows < ng)
        np.put_along_axis(seen, np.clip(rows, 0, ng - 1), True, axis=1)
        if not (inside.all() and seen.all()):
            bad = s + int(np.flatnonzero(~(inside.all(1) & seen.all(1)))[0])
            raise ValueError(f"ranking row {bad} is not a permutation of the {ng} gallery indices 0..{ng - 1}: "
                             "expected every gallery item exactly once per ranked list")
        same = gp[rows] == qp[s:s + c, None]
        keep = ~(same & (gc[rows] == qc[s:s + c, None])) & (gp[rows] != JUNK_PID)
        hit = same & keep
        rank = np.cumsum(keep, axis=1)                 # 1-based rank in the junk-free list
        found = hit & (positions < depth)
        n_all = hit.sum(1)
        k = np.cumsum(found, axis=1)
        ok = n_all > 0
        ap[s:s + c] = np.where(ok, np.where(found, k / np.maximum(rank, 1), 0.0).sum(1) / np.maximum(n_all, 1), 0.0)
        any_found = found.any(1)
        first_pos = np.argmax(found, axis=1)
        first[s:s + c] = np.where(any_found, rank[np.arange(c), first_pos], ng + 1)
        last_pos = ng - 1 - np.argmax(found[:, ::-1], axis=1)
        complete = found.sum(1) == n_all
        inp[s:s + c] = np.where(ok & complete & any_found, n_all / np.maximum(rank[np.arange(c), last_pos], 1), 0.0)
        valid[s:s + c] = ok
    return _summarise(first, ap, inp, valid, max_rank, per_query)


# --------------------------------------------------------------------------- multi-query
def pool_multi_query(qf: np.ndarray | torch.Tensor, q_pids: ArrayLike, q_camids: ArrayLike,
                     mq_feats: np.ndarray | torch.Tensor | None = None,
                     mq_pids: ArrayLike | None = None, mq_camids: ArrayLike | None = None,
                     *, pool: Literal["mean", "max"] = "mean") -> torch.Tensor:
    """Multi-query descriptors (Market-1501 "MQ", Zheng et al. ICCV 2015).

    Each query ``i`` is replaced by the mean (or element-wise max) of the features of all
    images with its identity and its camera: of ``mq_feats`` when given (Market-1501's
    ``gt_bbox`` images, which include the query images themselves), else of the query set.
    A query whose (identity, camera) group is absent from ``mq_feats`` keeps its own feature.

    Args:
        qf: (Q, D) query features. q_pids, q_camids: (Q,).
        mq_feats: (M, D) pool of multi-query features, with mq_pids / mq_camids (M,).
        pool: "mean" or "max".
    Returns:
        (Q, D) float tensor of pooled query features (on qf's device).
    """
    if pool not in ("mean", "max"):
        raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
    q = torch.as_tensor(qf)
    if q.ndim != 2 or q.shape[0] == 0:
        raise ValueError(f"qf must be a non-empty 2-D (Q, D) feature array, got shape {tuple(q.shape)}")
    q = q.float() if not q.is_floating_point() else q
    qp = _as_labels(q_pids, "q_pids", q.shape[0], "qf.shape[0]")
    qc = _as_labels(q_camids, "q_camids", q.shape[0], "qf.shape[0]")
    if mq_feats is None:
        if mq_pids is not None or mq_camids is not None:
            raise ValueError("mq_pids/mq_camids given without mq_feats: pass all three or none")
        m, mp, mc = q, qp, qc
    else:
        m = torch.as_tensor(mq_feats).to(device=q.device, dtype=q.dtype)
        if m.ndim != 2 or m.shape[1] != q.shape[1]:
            raise ValueError(f"mq_feats must be (M, {q.shape[1]}) like qf, got shape {tuple(m.shape)}")
        if mq_pids is None or mq_camids is None:
            raise ValueError("mq_feats needs mq_pids and mq_camids (one label per row)")
        mp = _as_labels(mq_pids, "mq_pids", m.shape[0], "mq_feats.shape[0]")
        mc = _as_labels(mq_camids, "mq_camids", m.shape[0], "mq_feats.shape[0]")
    # One group per (pid, camid) over pool and queries together; pool rows fill the groups.
    keys = np.concatenate([np.stack([mp, mc], 1), np.stack([qp, qc], 1)])
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = torch.from_numpy(inverse.reshape(-1)).to(q.device)
    pool_group, query_group = inverse[: m.shape[0]], inverse[m.shape[0]:]
    ngroups = int(inverse.max()) + 1
    sizes = torch.bincount(pool_group, minlength=ngroups)
    if pool == "mean":
        sums = torch.zeros(ngroups, q.shape[1], dtype=q.dtype, device=q.device).index_add_(0, pool_group, m)
        pooled = sums / sizes.clamp_min(1).to(q.dtype)[:, None]
    else:
        pooled = torch.full((ngroups, q.shape[1]), -torch.inf, dtype=q.dtype, device=q.device)
        pooled = pooled.scatter_reduce(0, pool_group[:, None].expand_as(m), m, reduce="amax")
    found = sizes[query_group] > 0
    return torch.where(found[:, None], pooled[query_group], q)


def evaluate_multi_query(qf, gf, q_pids, g_pids, q_camids, g_camids, *,
                         mq_feats=None, mq_pids=None, mq_camids=None,
                         pool: Literal["mean", "max"] = "mean",
                         metric: Literal["euclidean", "cosine"] = "euclidean",
                         max_rank: int = 50, per_query: bool = False) -> dict:
    """Market-1501 multi-query evaluation: pool each query with the images of its identity
    and camera (:func:`pool_multi_query`), then the single-query protocol (:func:`evaluate`)
    on the pooled descriptors against the gallery ``gf`` (G, D)."""
    pooled = pool_multi_query(qf, q_pids, q_camids, mq_feats, mq_pids, mq_camids, pool=pool)
    dist = distance(pooled, gf, metric=metric)
    return evaluate(dist, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, per_query=per_query)
