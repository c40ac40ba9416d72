"""Hard-triplet mining from a pool of embedded training images.

Almazán et al., "Re-ID done right: towards good practices for person re-identification" (2018),
Sec. 3.2, following Gordo et al.'s deep image retrieval: training triplets are mined from a
*pool* embedded with the current model, and the pool is renewed every ``k`` updates.

1. Draw ``N`` training images at random (5,000 in the paper) and embed them with the current
   model: no gradient, eval mode, no augmentation (:func:`embed_indices`).
2. Score every triplet ``(q, p, n)`` of the pool (``p`` shares ``q``'s identity, ``n`` does not)
   by the loss of Eq. (1) on l2-normalised descriptors, ``L = max(0, m + q.d- - q.d+)``, m = 0.1.
3. A training triplet: a query uniformly at random among the pool images that have at least one
   positive in the pool, then one triplet uniformly among *that query's* ``top`` (25) triplets of
   largest loss (:func:`hardest_triplets`). A query with fewer than ``top`` triplets in all uses all
   it has; when fewer than ``top`` are active (loss > 0) zero-loss triplets may be drawn, the paper's
   literal rule -- the fraction of active triplets among those sampled is logged.
4. The pool serves ``k`` (16) updates, then a new one is drawn and embedded.

:class:`PoolMiningSampler` is the Trainer's ``batch_sampler``: one trainer epoch is one pool, so the
checkpoints written at epoch ends coincide with pool refreshes, and a mid-epoch resume replays the
stored pool and table instead of re-embedding with a later model.
"""
from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reidlib.data.samplers import _check_int, _pids_array  # the samplers' own checks

from .checkpoint import rng_state, set_rng_state

__all__ = ["HardTriplets", "PoolMiningSampler", "RandomTripletSampler", "embed_indices", "hardest_triplets"]

log = logging.getLogger(__name__)

STATE_VERSION = 1
# elements of one chunk of query rows x pool columns: with N = 5,000 a chunk is 838 rows (4.2 M
# similarities, plus the same count of masks and int64 prefix sums), well under one N x N matrix
_CHUNK_ELEMENTS = 1 << 22

Embed = Callable[[list[int]], torch.Tensor]


def _check_margin(margin: Any) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(margin)) or float(margin) < 0:
        raise ValueError(f"margin must be a finite number >= 0 (m of Eq. (1), 0.1 in the paper), got {margin!r}")
    return float(margin)


# ---------------------------------------------------------------------------------------------
# the per-query table of hardest triplets
@dataclass(frozen=True)
class HardTriplets:
    """Each valid query's ``top`` hardest triplets, hardest first (:func:`hardest_triplets`).

    Every index is a *pool position* (a row of the embeddings), not a dataset index. ``T = top``.

    Attributes:
        queries: ``(Q,)`` int64, the valid queries (an image with at least one positive and one
            negative in the pool), ascending.
        positives: ``(Q, T)`` int64, row ``i``'s positives; ``-1`` from column ``counts[i]`` on.
        negatives: ``(Q, T)`` int64, the matching negatives; ``-1`` from column ``counts[i]`` on.
        losses: ``(Q, T)`` float, ``max(0, m + q.n - q.p)``, non-increasing along a row; NaN from
            column ``counts[i]`` on.
        counts: ``(Q,)`` int64, ``min(top, |P(q)| * |N(q)|)``: how many columns of the row are triplets.
        top: ``T``.
        margin: ``m``.
    """

    queries: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    losses: torch.Tensor
    counts: torch.Tensor
    top: int
    margin: float

    def __len__(self) -> int:
        return int(self.queries.shape[0])

    @property
    def active(self) -> torch.Tensor:
        """``(Q, T)`` bool: a triplet with a positive loss (padding is never active)."""
        return self.losses > 0

    def to(self, device: str | torch.device) -> HardTriplets:
        return HardTriplets(self.queries.to(device), self.positives.to(device), self.negatives.to(device),
                            self.losses.to(device), self.counts.to(device), self.top, self.margin)


def _stable_top(values: torch.Tensor, valid: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest valid entries of each row, ordered by value (descending), ties by column
    (ascending) -- a deterministic order, where ``torch.topk`` leaves the choice among tied values open.

    Args:
        values: ``(R, M)`` finite floats.
        valid: ``(R, M)`` bool, which entries take part.

    Returns:
        ``columns (R, min(k, M))`` int64 (``-1`` past a row's count) and ``counts (R,)`` int64.
    """
    m = values.shape[1]
    k = min(k, m)
    neg_inf = torch.tensor(float("-inf"), dtype=values.dtype, device=values.device)
    v = torch.where(valid, values, neg_inf)
    top_v, cols = v.topk(k, dim=1, sorted=False)
    # the k-th largest value is well defined even where topk's choice among ties is not: where no
    # more than k valid entries reach it, topk's set is the only possible one
    kth = top_v.min(dim=1, keepdim=True).values
    reach = ((v >= kth) & valid).sum(dim=1)
    ambiguous = torch.nonzero(reach > k).flatten()
    if len(ambiguous):  # ties straddle the k-th place (equal similarities): decide them by column
        va, ka = v[ambiguous], kth[ambiguous]
        above = va > ka
        tied = va == ka
        take = above | (tied & (tied.cumsum(dim=1) <= k - above.sum(dim=1, keepdim=True)))
        # k taken per row, and nonzero lists them row-major, i.e. by column within a row
        cols[ambiguous] = torch.nonzero(take)[:, 1].reshape(len(ambiguous), k)
        top_v[ambiguous] = va.gather(1, cols[ambiguous])
    # order by value descending, ties by column: sort by column, then a stable sort by value; the
    # padding (-inf: a row with fewer than k valid entries) goes last
    cols, by_col = cols.sort(dim=1)
    top_v = top_v.gather(1, by_col)
    top_v, by_value = top_v.sort(dim=1, descending=True, stable=True)
    cols = cols.gather(1, by_value)
    return cols.masked_fill(top_v == neg_inf, -1), (top_v > neg_inf).sum(dim=1)


def hardest_triplets(embeddings: torch.Tensor | np.ndarray, pids: Sequence[int] | np.ndarray | torch.Tensor, *,
                     top: int = 25, margin: float = 0.1, normalize: bool = True,
                     chunk_size: int | None = None) -> HardTriplets:
    """Every valid query's ``top`` triplets of largest loss, Eq. (1) of Almazán et al. (2018):
    ``L(q, p, n) = max(0, m + q.n - q.p)`` on l2-normalised descriptors (dot products).

    A valid query has at least one positive (another pool image of its identity) and one negative
    in the pool; the others are left out of the table (the sampler never draws them).

    Order (the tie rule). A query's triplets are ranked by ``v = s_n - s_p`` (``s`` the dot product
    with the query), largest first: the clamped loss ``max(0, m + v)`` is a non-decreasing function
    of ``v``, so this is the order of the loss, with the zero-loss triplets -- drawn only when fewer
    than ``top`` are active -- ranked by how close they come to violating the margin. Equal ``v``:
    the harder positive first (lower ``s_p``, then lower pool position), then the harder negative
    (higher ``s_n``, then lower pool position).

    Exactness of the sub-grid. Rank a query's positives by ``(s_p ascending, position)`` -- rank
    ``rho(p)`` -- and its negatives by ``(s_n descending, position)`` -- rank ``nu(n)``; the order
    above is the lexicographic order of ``(-v(p, n), rho(p), nu(n))``. Claim: its first ``T = top``
    triplets all have ``rho < T`` and ``nu < T``, so scoring the ``T x T`` grid of the ``T`` lowest
    positives and ``T`` highest negatives, and keeping its first ``T`` in the same order, is exact.
    Proof: take ``(p, n)`` with ``rho(p) >= T``. Each of the ``T`` positives ``p'`` with
    ``rho(p') < T`` has ``s_p' <= s_p``, hence ``v(p', n) = fl(s_n - s_p') >= fl(s_n - s_p) = v(p, n)``
    (floating-point subtraction is monotone in each argument, so this holds for the computed
    values, not only in exact arithmetic), and where they are equal ``rho(p') < rho(p)`` decides:
    all ``T`` triplets ``(p', n)`` come strictly before ``(p, n)``, which is therefore not among the
    first ``T``. The same argument with ``s_n' >= s_n`` and ``nu`` rules out ``nu(n) >= T``. A query
    with fewer than ``T`` positives (or negatives) has every rank below ``T``. On the grid, the flat
    index ``rho * T + nu`` is the lexicographic order of ``(rho, nu)``, so a top-``T`` selection by
    ``v`` with ties to the lower flat index (:func:`_stable_top`) is the order above. The cost is
    ``O(N)`` per query for the two selections plus ``T^2`` for the grid, not ``|P| x |N|``.

    Args:
        embeddings: ``(N, D)`` pool descriptors (float tensor or array), on any device.
        pids: ``(N,)`` identity labels.
        top: triplets kept per query (25 in the paper).
        margin: ``m`` (0.1 in the paper); it sets the losses, not the order.
        normalize: l2-normalise the rows first (the model's eval descriptor need not be).
        chunk_size: query rows scored at once (default: ``2^22 / N`` rows; never more than ``N``,
            so at most one ``N x N`` similarity block exists at a time).

    Returns:
        :class:`HardTriplets` on the embeddings' device (``losses`` in their dtype; float32 for half precision).

    Raises:
        ValueError: embeddings not 2-D, not floating point, not finite, or not one row per pid;
            ``top`` < 1; ``margin`` < 0; ``chunk_size`` < 1.
    """
    top = _check_int("top", top, 1, " (triplets kept per query)")
    margin = _check_margin(margin)
    x = embeddings if isinstance(embeddings, torch.Tensor) else torch.as_tensor(np.asarray(embeddings))
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"embeddings must be floating point, got dtype {x.dtype}")
    labels = torch.as_tensor(_pids_array(pids), device=x.device)
    n = int(x.shape[0])
    if labels.shape[0] != n:
        raise ValueError(f"embeddings has {n} rows but pids has {labels.shape[0]} labels: one label per row")
    if n and not bool(torch.isfinite(x).all()):
        raise ValueError("embeddings contain NaN or infinite values (a diverged model?)")
    if chunk_size is not None:
        chunk_size = _check_int("chunk_size", chunk_size, 1)
    x = x.detach()
    if x.dtype in (torch.float16, torch.bfloat16):  # an AMP descriptor: rank in float32
        x = x.float()
    if normalize:
        x = F.normalize(x, dim=1)

    _, inverse, per_id = torch.unique(labels, return_inverse=True, return_counts=True)
    n_pos, n_neg = per_id[inverse] - 1, n - per_id[inverse]
    queries = torch.nonzero((n_pos >= 1) & (n_neg >= 1)).flatten()
    q_total = int(queries.shape[0])
    device = x.device
    positives = torch.full((q_total, top), -1, dtype=torch.long, device=device)
    negatives = torch.full((q_total, top), -1, dtype=torch.long, device=device)
    losses = torch.full((q_total, top), float("nan"), dtype=x.dtype, device=device)
    counts = torch.zeros(q_total, dtype=torch.long, device=device)
    step = max(1, min(n, chunk_size or _CHUNK_ELEMENTS // max(n, 1)))
    for lo in range(0, q_total, step):
        qs = queries[lo:lo + step]
        c = int(qs.shape[0])
        sims = x[qs] @ x.T  # (c, N)
        same = labels[qs][:, None] == labels[None, :]
        pos_mask = same.clone()
        pos_mask[torch.arange(c, device=device), qs] = False
        # the T hardest positives (lowest similarity) and negatives (highest), in rank order
        pcols, pcount = _stable_top(-sims, pos_mask, top)
        ncols, ncount = _stable_top(sims, ~same, top)
        kp, kn = pcols.shape[1], ncols.shape[1]
        s_p = sims.gather(1, pcols.clamp(min=0))
        s_n = sims.gather(1, ncols.clamp(min=0))
        v = (s_n[:, None, :] - s_p[:, :, None]).reshape(c, kp * kn)  # flat index rho * kn + nu: (rho, nu) order
        grid_valid = ((torch.arange(kp, device=device) < pcount[:, None])[:, :, None]
                      & (torch.arange(kn, device=device) < ncount[:, None])[:, None, :]).reshape(c, kp * kn)
        flat, count = _stable_top(v, grid_valid, top)
        width = flat.shape[1]
        ok = flat >= 0
        f = flat.clamp(min=0)
        positives[lo:lo + c, :width] = torch.where(ok, pcols.gather(1, f // kn), -1)
        negatives[lo:lo + c, :width] = torch.where(ok, ncols.gather(1, f % kn), -1)
        losses[lo:lo + c, :width] = torch.where(ok, (margin + v.gather(1, f)).clamp(min=0), float("nan"))
        counts[lo:lo + c] = count
    return HardTriplets(queries, positives, negatives, losses, counts, top, margin)


# ---------------------------------------------------------------------------------------------
# embedding the pool
def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def embed_indices(model: nn.Module, dataset: Any, indices: Sequence[int], *, batch_size: int = 128,
                  device: str | torch.device | None = None, seed: int = 0) -> torch.Tensor:
    """The model's eval-mode descriptors of ``dataset[i]`` for ``i`` in ``indices`` (step 1 of the
    mining procedure: no gradient, eval mode, no augmentation -- pass the training images under the
    *test* transform).

    The model is put in eval mode and given back in the mode it had (the Trainer calls the sampler's
    ``set_epoch`` after ``model.train()``). The global Python / NumPy / torch (and the device's CUDA)
    generators are saved and restored around the call, so that embedding a pool leaves the streams
    the Trainer's exact resumption depends on untouched; inside, they are seeded with ``seed``, so a
    dataset that does draw random augmentation still gives the same descriptors on every call.

    Args:
        model: maps ``(B, 3, H, W)`` to ``(B, D)`` in eval mode (the unwrapped module, not DDP's wrapper).
        dataset: items ``(image (3, H, W), pid, camid, index)`` (or anything whose first element is the image);
            images of different sizes in one batch are passed to the model as a list.
        indices: dataset positions.
        batch_size: images per forward pass.
        device: where the forward passes run; default: the model's (first parameter's) device.
        seed: the global generators' seed during the call.

    Returns:
        ``(len(indices), D)`` descriptors, on ``device``, in the model's output dtype.
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    device = _model_device(model) if device is None else torch.device(device)
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("embed_indices: indices is empty")
    saved = rng_state()
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            # seed the generators this call may touch; only the CPU torch generator and this device's
            # CUDA one (torch.manual_seed would queue a seed for CUDA devices not yet initialised)
            random.seed(seed)
            np.random.seed(seed)
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed(seed)
            nb = device.type == "cuda"
            for lo in range(0, len(indices), batch_size):
                images = [dataset[i][0] for i in indices[lo:lo + batch_size]]
                # one size: a (B, 3, H, W) batch; several (aspect-preserving inputs): the list, as
                # reidlib.data.collate_images gives the Trainer, for a model that takes one
                if all(im.shape == images[0].shape for im in images):
                    f = model(torch.stack(images).to(device, non_blocking=nb))
                else:
                    f = model([im.to(device, non_blocking=nb) for im in images])
                if not isinstance(f, torch.Tensor) or f.ndim != 2 or f.shape[0] != len(images):
                    got = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
                    raise ValueError(f"embed_indices: the model in eval mode must return (B, D) descriptors, got {got}")
                out.append(f)
    finally:
        model.train(was_training)
        set_rng_state(saved)
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
class PoolMiningSampler:
    """Batch sampler of hard triplets mined from a pool (Almazán et al., 2018, Sec. 3.2).

    Each batch is ``3 * triplets_per_batch`` dataset indices ordered ``[q1, p1, n1, q2, p2, n2, ...]``:
    a loss reshapes the batch's descriptors to ``(b, 3, D)`` (query, positive, negative).

    One epoch is one pool: ``len(sampler) == batches_per_pool``. :meth:`set_epoch` (the Trainer calls
    it at the start of every epoch, with the model in train mode) draws the pool of epoch ``e`` --
    ``pool_size`` distinct training images from a generator seeded by ``(seed, e, 0)``, in ascending
    index order -- embeds it with :attr:`embed` and mines :func:`hardest_triplets`; the iteration then
    draws each batch's queries (uniformly among the valid ones) and their triplets (uniformly among
    each query's ``top``) from a generator seeded by ``(seed, e, 1)``, so iterating twice yields the
    same batches. If the stored pool already belongs to epoch ``e`` (after :meth:`load_state_dict`)
    nothing is re-embedded: a resumed run replays the very triplets the interrupted one trained on.

    Args:
        pids: identity label of every training item (ints, array, tensor, or records with ``.pid``).
        triplets_per_batch: triplets per batch ``b``.
        batches_per_pool: batches mined from one pool (the refresh period ``k``, 16 in the paper,
            counted in batches: with gradient accumulation pass ``k * accum_steps``).
        pool_size: images per pool (5,000 in the paper).
        top: triplets kept per query (25).
        margin: ``m`` of Eq. (1) (0.1).
        seed: base seed (>= 0).
        embed: ``indices (list[int]) -> (len(indices), D)`` descriptors of those training items with
            the current model, e.g. ``functools.partial(embed_indices, model, train_set_with_test_transform)``;
            may be set later (``sampler.embed = ...``), before the first :meth:`set_epoch`.
        chunk_size: passed to :func:`hardest_triplets`.

    Figures for the run record: :attr:`last_embed_seconds`, :attr:`pools_embedded`,
    :attr:`images_embedded`, :attr:`active_fraction` (of the triplets the last pool's batches hold),
    and :meth:`stats`.

    Single process: under DDP every rank would mine the same pool and yield the same batches.
    """

    def __init__(self, pids: Any, triplets_per_batch: int, batches_per_pool: int, pool_size: int, *, top: int = 25,
                 margin: float = 0.1, seed: int = 0, embed: Embed | None = None, chunk_size: int | None = None) -> None:
        self.pids = _pids_array(pids)
        self.triplets_per_batch = _check_int("triplets_per_batch", triplets_per_batch, 1)
        self.batches_per_pool = _check_int("batches_per_pool", batches_per_pool, 1, " (the pool refresh period k)")
        self.pool_size = _check_int("pool_size", pool_size, 1)
        self.top = _check_int("top", top, 1, " (triplets kept per query)")
        self.margin = _check_margin(margin)
        self.seed = _check_int("seed", seed, 0)
        self.chunk_size = None if chunk_size is None else _check_int("chunk_size", chunk_size, 1)
        n = len(self.pids)
        if self.pool_size > n:
            raise ValueError(f"pool_size={self.pool_size} is larger than the training set ({n} images): "
                             f"use pool_size <= {n}")
        if self.pool_size < 3 * self.triplets_per_batch:
            raise ValueError(f"pool_size={self.pool_size} is smaller than one batch's {3 * self.triplets_per_batch} "
                             f"images (3 x triplets_per_batch={self.triplets_per_batch}): use a larger pool_size")
        ids, per_id = np.unique(self.pids, return_counts=True)
        if len(ids) < 2 or per_id.max() < 2:
            raise ValueError(f"pids: no triplet exists in the training set ({len(ids)} identities, at most "
                             f"{per_id.max()} image(s) each): mining needs an identity with two images and another identity")
        self.embed: Embed | None = embed
        self.digest = hashlib.sha1(self.pids.tobytes()).hexdigest()[:16]
        self.epoch = 0
        # the mined pool: its epoch (None: none yet), dataset indices (pool_size,), table on the CPU
        self.pool_epoch: int | None = None
        self.pool: np.ndarray | None = None
        self.table: HardTriplets | None = None
        # figures for the run record
        self.pools_embedded = 0
        self.images_embedded = 0
        self.last_embed_seconds = 0.0
        self.last_select_seconds = 0.0
        self.embed_seconds_total = 0.0
        self.active_fraction = float("nan")
        self.sampled_mean_loss = float("nan")

    def __len__(self) -> int:
        return self.batches_per_pool

    # ---- the pool ----
    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``: draw, embed and mine its pool unless the stored one is that epoch's."""
        self.epoch = _check_int("epoch", epoch, 0)
        if self.pool_epoch != self.epoch:
            self._mine(self.epoch)

    def pool_indices(self, epoch: int) -> np.ndarray:
        """The dataset indices of epoch ``epoch``'s pool, ascending (no embedding)."""
        rng = np.random.default_rng([self.seed, _check_int("epoch", epoch, 0), 0])
        return np.sort(rng.choice(len(self.pids), self.pool_size, replace=False))

    def _mine(self, epoch: int) -> None:
        if self.embed is None:
            raise ValueError("PoolMiningSampler.embed is not set: assign a callable indices -> (len, D) descriptors "
                             "(e.g. functools.partial(embed_indices, model, dataset)) before set_epoch or iterating")
        pool = self.pool_indices(epoch)
        pool_pids = self.pids[pool]
        _, inverse, per_id = np.unique(pool_pids, return_inverse=True, return_counts=True)
        if not ((per_id[inverse] >= 2) & (per_id[inverse] < len(pool))).any():
            raise ValueError(f"the pool of epoch {epoch} (pool_size={self.pool_size}) has no valid query: no identity "
                             f"has two images in it (and another identity beside it), so no anchor has a positive; "
                             f"use a larger pool_size (the training set has {len(self.pids)} images)")
        t0 = time.perf_counter()
        emb = self.embed(pool.tolist())
        t1 = time.perf_counter()
        shape = tuple(emb.shape) if hasattr(emb, "shape") else None
        if shape is None or len(shape) != 2 or shape[0] != len(pool):
            raise ValueError(f"embed returned {shape if shape is not None else type(emb).__name__} for "
                             f"{len(pool)} indices: expected ({len(pool)}, D), one descriptor row per index")
        table = hardest_triplets(emb, pool_pids, top=self.top, margin=self.margin, chunk_size=self.chunk_size).to("cpu")
        t2 = time.perf_counter()
        self.pool_epoch, self.pool, self.table = epoch, pool, table
        self.pools_embedded += 1
        self.images_embedded += len(pool)
        self.last_embed_seconds, self.last_select_seconds = t1 - t0, t2 - t1
        self.embed_seconds_total += t1 - t0
        self._sampled_figures()
        log.info("mined pool %d: %d images embedded in %.2fs, %d valid queries, selection %.2fs, "
                 "active triplets among those sampled %.3f", epoch, len(pool), t1 - t0, len(table), t2 - t1,
                 self.active_fraction)

    def _draws(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the table (queries, uniform) and columns (triplets, uniform among the row's count):
        two ``(batches_per_pool, triplets_per_batch)`` arrays."""
        assert self.table is not None
        counts = self.table.counts.numpy()
        rng = np.random.default_rng([self.seed, epoch, 1])
        rows = rng.integers(0, len(counts), size=(self.batches_per_pool, self.triplets_per_batch))
        cols = rng.integers(0, counts[rows])
        return rows, cols

    def _sampled_figures(self) -> None:
        assert self.table is not None and self.pool_epoch is not None
        rows, cols = self._draws(self.pool_epoch)
        losses = self.table.losses.numpy()[rows, cols]
        self.active_fraction = float((losses > 0).mean())
        self.sampled_mean_loss = float(losses.mean())

    def batch_triplets(self) -> np.ndarray:
        """This epoch's triplets as dataset indices, ``(batches_per_pool, triplets_per_batch, 3)``
        (query, positive, negative)."""
        if self.pool_epoch != self.epoch:
            self._mine(self.epoch)
        assert self.table is not None and self.pool is not None
        rows, cols = self._draws(self.epoch)
        t = self.table
        q = t.queries.numpy()[rows]
        p = t.positives.numpy()[rows, cols]
        n = t.negatives.numpy()[rows, cols]
        return self.pool[np.stack([q, p, n], axis=-1)]

    def __iter__(self) -> Iterator[list[int]]:
        # the whole epoch every time: the Trainer replays an epoch from its start and skips the
        # batches already trained
        for batch in self.batch_triplets().reshape(self.batches_per_pool, -1):
            yield batch.tolist()

    # ---- figures ----
    def stats(self) -> dict[str, Any]:
        """Plain figures for the run record."""
        return {"pool_size": self.pool_size, "top": self.top, "margin": self.margin,
                "triplets_per_batch": self.triplets_per_batch, "batches_per_pool": self.batches_per_pool,
                "pools_embedded": self.pools_embedded, "images_embedded": self.images_embedded,
                "last_embed_seconds": round(self.last_embed_seconds, 4),
                "last_select_seconds": round(self.last_select_seconds, 4),
                "embed_seconds_total": round(self.embed_seconds_total, 4),
                "pool_epoch": self.pool_epoch, "valid_queries": len(self.table) if self.table is not None else 0,
                "active_fraction": self.active_fraction, "sampled_mean_loss": self.sampled_mean_loss}

    # ---- resume ----
    _CONFIG = ("version", "seed", "triplets_per_batch", "batches_per_pool", "pool_size", "top", "margin",
               "num_samples", "pids_digest")
    _FIGURES = ("pools_embedded", "images_embedded", "last_embed_seconds", "last_select_seconds",
                "embed_seconds_total")

    def state_dict(self) -> dict[str, Any]:
        """Plain data and tensors (copies): the configuration, the epoch, the pool (dataset indices)
        and its mined table (pool positions as int32, the losses), and the figures. The
        batches of an epoch are a function of these; iteration always starts at the epoch's first batch."""
        state: dict[str, Any] = {
            "version": STATE_VERSION, "seed": self.seed, "triplets_per_batch": self.triplets_per_batch,
            "batches_per_pool": self.batches_per_pool, "pool_size": self.pool_size, "top": self.top,
            "margin": self.margin, "num_samples": len(self.pids), "pids_digest": self.digest, "epoch": self.epoch,
            "pool_epoch": self.pool_epoch, "figures": {k: getattr(self, k) for k in self._FIGURES}, "pool": None}
        if self.table is not None and self.pool is not None:
            t = self.table
            state.update(pool=torch.from_numpy(self.pool.copy()), queries=t.queries.to(torch.int32),
                         positives=t.positives.to(torch.int32), negatives=t.negatives.to(torch.int32),
                         losses=t.losses.clone(), counts=t.counts.to(torch.int32))
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; the configuration must match. A following ``set_epoch`` of the
        stored pool's epoch re-embeds nothing."""
        missing = set(self._CONFIG) | {"epoch", "pool_epoch", "pool", "figures"}
        missing -= set(state)
        if missing:
            raise ValueError(f"not a PoolMiningSampler state: missing {sorted(missing)}")
        for key in self._CONFIG:
            mine = len(self.pids) if key == "num_samples" else self.digest if key == "pids_digest" else \
                STATE_VERSION if key == "version" else getattr(self, key)
            if state[key] != mine:
                raise ValueError(f"sampler state was saved with {key}={state[key]!r}, this sampler has {key}={mine!r}: "
                                 "it would not continue the same sequence of batches")
        self.epoch = int(state["epoch"])
        for k in self._FIGURES:
            setattr(self, k, state["figures"][k])
        if state["pool"] is None:
            self.pool_epoch, self.pool, self.table = None, None, None
            self.active_fraction = self.sampled_mean_loss = float("nan")
            return
        self.pool = torch.as_tensor(state["pool"]).numpy().astype(np.int64)
        self.table = HardTriplets(*(torch.as_tensor(state[k]).long() for k in ("queries", "positives", "negatives")),
                                  torch.as_tensor(state["losses"]).clone(), torch.as_tensor(state["counts"]).long(),
                                  self.top, self.margin)
        self.pool_epoch = int(state["pool_epoch"])
        self._sampled_figures()

    def __repr__(self) -> str:
        return (f"PoolMiningSampler(pool_size={self.pool_size}, top={self.top}, margin={self.margin}, "
                f"triplets_per_batch={self.triplets_per_batch}, batches_per_pool={self.batches_per_pool}, "
                f"images={len(self.pids)}, seed={self.seed}, epoch={self.epoch}, pool_epoch={self.pool_epoch})")


# ---------------------------------------------------------------------------------------------
class RandomTripletSampler:
    """Batch sampler of random triplets, the baseline the pool mining is compared with: each triplet a
    query uniform among the training items whose identity has another item, a positive uniform among
    those others, a negative uniform among the items of other identities. Batches are ordered like
    :class:`PoolMiningSampler`'s, ``[q1, p1, n1, ...]``, ``len(sampler) == batches_per_epoch``; epoch ``e``'s
    draws come from a generator seeded by ``(seed, e)``, so no state but the epoch is needed to replay."""

    def __init__(self, pids: Any, triplets_per_batch: int, batches_per_epoch: int, *, seed: int = 0) -> None:
        self.pids = _pids_array(pids)
        self.triplets_per_batch = _check_int("triplets_per_batch", triplets_per_batch, 1)
        self.batches_per_epoch = _check_int("batches_per_epoch", batches_per_epoch, 1)
        self.seed = _check_int("seed", seed, 0)
        ids, inverse, counts = np.unique(self.pids, return_inverse=True, return_counts=True)
        if len(ids) < 2 or counts.max() < 2:
            raise ValueError(f"pids: no triplet exists in the training set ({len(ids)} identities, at most "
                             f"{counts.max()} image(s) each)")
        self._members = [np.flatnonzero(inverse == i) for i in range(len(ids))]
        self._inverse = inverse
        self._queries = np.flatnonzero(counts[inverse] >= 2)
        self.epoch = 0

    def __len__(self) -> int:
        return self.batches_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = _check_int("epoch", epoch, 0)

    def batch_triplets(self) -> np.ndarray:
        """The epoch's triplets as dataset indices ``(batches_per_epoch, b, 3)``."""
        rng = np.random.default_rng([self.seed, self.epoch])
        n = self.batches_per_epoch * self.triplets_per_batch
        q = rng.choice(self._queries, size=n)
        out = np.empty((n, 3), dtype=np.int64)
        out[:, 0] = q
        for t, qi in enumerate(q):
            own = self._members[self._inverse[qi]]
            others = own[own != qi]
            out[t, 1] = others[rng.integers(len(others))]
            neg = int(rng.integers(len(self.pids) - len(own)))  # the neg-th item outside q's identity
            out[t, 2] = np.delete(np.arange(len(self.pids)), own)[neg]
        return out.reshape(self.batches_per_epoch, self.triplets_per_batch, 3)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batch_triplets():
            yield [int(i) for i in batch.reshape(-1)]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set_epoch(int(state["epoch"]))

    def __repr__(self) -> str:
        return (f"RandomTripletSampler(triplets_per_batch={self.triplets_per_batch}, "
                f"batches_per_epoch={self.batches_per_epoch}, seed={self.seed})")
