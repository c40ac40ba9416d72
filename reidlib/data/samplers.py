"""The P x K batch sampler of batch-hard triplet training (Hermans et al., 2017).

Each batch holds ``P`` distinct identities with ``K`` images each. An epoch is a pure function
of ``(seed, epoch, rank, world_size)`` and the dataset's pids, so training can resume at any
batch of any epoch and see the same remaining batches.

How an epoch is built (numpy generator seeded with ``(seed, epoch)``, the same on every rank):

1. Each identity's images are shuffled and cut into ``c_i = max(1, n_i // K)`` chunks of ``K``
   (an identity with fewer than ``K`` images fills its one chunk by drawing extra copies of its
   images with replacement; the ``n_i mod K`` left-over images of the others wait for another epoch).
2. The number of global batches is the largest ``B`` with ``sum_i min(c_i, B) >= P B`` (no identity
   can appear twice in a batch, so one identity serves at most ``B`` batches); usually
   ``B = floor(sum_i c_i / P)``. Chunks beyond that are dropped at random.
3. Batches are drawn one after another: the identities whose remaining chunks equal the batches
   left must be in this batch; the others are drawn without replacement with probability
   proportional to their remaining chunks. This never gets stuck, so every epoch has exactly
   ``B`` batches.
4. Under ``torch.distributed`` rank ``r`` takes global batches ``r, r + W, r + 2W, ...`` (``W`` the
   world size; ``B`` truncated to a multiple of ``W``): each rank gets whole P x K batches and no
   image index appears in two batches of an epoch, so the ranks' batches are disjoint.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["PKSampler", "max_pk_batches"]

STATE_VERSION = 1


def max_pk_batches(chunks: Sequence[int] | np.ndarray, p: int) -> int:
    """Largest ``B`` with ``sum_i min(c_i, B) >= p B``: how many batches of ``p`` distinct
    identities the per-identity chunk counts ``c_i`` can fill."""
    c = np.asarray(chunks, dtype=np.int64)
    lo, hi = 0, int(c.sum()) // p  # feasible set is {0..B*}: sum min(c, B) - pB is concave in B
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if int(np.minimum(c, mid).sum()) >= p * mid:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(name: str, value: Any, low: int, what: str = "") -> int:
    if not _is_int(value) or int(value) < low:
        raise ValueError(f"{name} must be an int >= {low}{what}, got {value!r}")
    return int(value)


def _pids_array(pids: Any) -> np.ndarray:
    if hasattr(pids, "records") and not isinstance(pids, (np.ndarray, torch.Tensor)):  # an ImageDataset
        pids = pids.records
    if isinstance(pids, torch.Tensor):
        pids = pids.detach().cpu().numpy()
    elif isinstance(pids, (str, bytes)) or not hasattr(pids, "__len__") or not hasattr(pids, "__getitem__"):
        raise ValueError(f"pids must be a 1-D sequence of integer identity labels (or records with .pid), "
                         f"got {type(pids).__name__}")
    elif len(pids) and hasattr(pids[0], "pid"):  # records
        pids = [r.pid for r in pids]
    arr = np.asarray(pids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"pids must be a 1-D sequence of integer identity labels (or records with .pid), "
                         f"got shape {arr.shape} dtype {arr.dtype}")
    return arr.astype(np.int64)


def _dist_defaults(rank: int | None, world_size: int | None) -> tuple[int, int]:
    import torch.distributed as dist
    initialised = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if world_size is None:
        world_size = dist.get_world_size() if initialised else 1
    return int(rank), int(world_size)


class PKSampler(Sampler[list[int]]):
    """Batch sampler yielding lists of ``P * K`` dataset indices: ``P`` distinct identities,
    ``K`` images each (identity by identity: ``K`` indices of the first, then the next...).

    Args:
        pids: identity label of every dataset item (ints, array, tensor, or records with ``.pid``).
        p: identities per batch ``P``.
        k: images per identity ``K``.
        seed: base seed (>= 0); an epoch's batches depend only on ``(seed, epoch)``.
        rank, world_size: this process's share under ``torch.distributed``; default: from the
            initialised process group, else ``0`` and ``1``.

    ``len(sampler)`` is the number of batches per epoch on this rank. Call :meth:`set_epoch`
    before each epoch. :meth:`state_dict` records the epoch and how many batches of it this
    sampler has yielded; after :meth:`load_state_dict` the next iteration yields the remaining
    batches of that epoch (then whole epochs again). Under a DataLoader with workers the sampler
    runs ahead of training by the prefetched batches: store the state at the start of the epoch
    and skip the batches already trained (what :class:`reidlib.engine.trainer.Trainer` does), or
    take the state where training really stands.
    """

    def __init__(self, pids: Any, p: int, k: int, *, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None) -> None:
        self.pids = _pids_array(pids)
        if not (_is_int(p) and _is_int(k) and p >= 1 and k >= 1):
            raise ValueError(f"P and K must be ints >= 1 (p: identities per batch, k: images per identity), "
                             f"got p={p!r}, k={k!r}")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.p, self.k, self.seed = int(p), int(k), int(seed)
        for name, value in (("rank", rank), ("world_size", world_size)):
            if value is not None and not _is_int(value):
                raise ValueError(f"{name} must be an int (or None: from torch.distributed), got {value!r}")
        self.rank, self.world_size = _dist_defaults(rank, world_size)
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={self.rank}, world_size={self.world_size}")
        self.identities, inverse = np.unique(self.pids, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(self.identities)))[:-1]
        self.indices_by_id: list[np.ndarray] = np.split(order, bounds) if len(order) else []
        self.chunks = np.array([max(1, len(ix) // self.k) for ix in self.indices_by_id], dtype=np.int64)
        if len(self.pids) == 0:
            raise ValueError("pids is empty: PKSampler needs the identity labels of a non-empty dataset")
        if len(self.identities) < self.p:
            raise ValueError(f"P={self.p} identities per batch, but the dataset has only {len(self.identities)} "
                             "identities: lower p")
        self.global_batches = max_pk_batches(self.chunks, self.p) // self.world_size * self.world_size
        if self.global_batches == 0:
            raise ValueError(f"no P x K batch fits: {len(self.identities)} identities, {len(self.pids)} images, "
                             f"p={self.p}, k={self.k}, world_size={self.world_size}")
        self.digest = hashlib.sha1(self.pids.tobytes()).hexdigest()[:16]
        self.epoch = 0
        self._yielded = 0
        self._resume = 0

    def __len__(self) -> int:
        return self.global_batches // self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch the next iteration yields; a different epoch than the current one
        drops any pending resume position."""
        epoch = _check_int("epoch", epoch, 0)
        if int(epoch) != self.epoch:
            self._yielded = self._resume = 0
        self.epoch = int(epoch)

    def epoch_batches(self, epoch: int | None = None, rank: int | None = None) -> list[np.ndarray]:
        """All batches of ``epoch`` (default: the current one) for ``rank`` (default: this one),
        each an array of ``P * K`` indices."""
        epoch = self.epoch if epoch is None else _check_int("epoch", epoch, 0)
        rank = self.rank if rank is None else _check_int("rank", rank, 0)
        if rank >= self.world_size:
            raise ValueError(f"rank must be in 0..{self.world_size - 1} (world_size={self.world_size}), got {rank!r}")
        batches = self._global_epoch(epoch)
        return batches[rank::self.world_size]

    def _global_epoch(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        p, k, B = self.p, self.k, self.global_batches
        chunks: list[np.ndarray] = []
        for ix in self.indices_by_id:
            ix = rng.permutation(ix)
            if len(ix) < k:  # with replacement for the missing ones
                ix = np.concatenate([ix, rng.choice(ix, k - len(ix), replace=True)])
            chunks.append(ix[: len(ix) // k * k].reshape(-1, k))
        # keep exactly p*B chunk slots, at most B per identity
        slots = np.repeat(np.arange(len(chunks)), np.minimum(self.chunks, B))
        remaining = np.bincount(rng.permutation(slots)[: p * B], minlength=len(chunks))
        taken = np.zeros(len(chunks), dtype=np.int64)
        batches = []
        for b in range(B):
            left = B - b
            forced = np.flatnonzero(remaining == left)
            others = np.flatnonzero((remaining > 0) & (remaining < left))
            m = p - len(forced)
            assert 0 <= m <= len(others), "PK invariant broken"
            if m:
                w = remaining[others].astype(np.float64)
                forced = np.concatenate([forced, rng.choice(others, m, replace=False, p=w / w.sum())])
            ids = rng.permutation(forced)
            batches.append(np.concatenate([chunks[i][taken[i]] for i in ids]))
            taken[ids] += 1
            remaining[ids] -= 1
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.epoch_batches()
        start, self._resume = self._resume, 0
        self._yielded = start
        for batch in batches[start:]:
            self._yielded += 1
            yield batch.tolist()

    # ---- resume ----
    def state_dict(self) -> dict[str, Any]:
        """Plain data: the epoch, the batches of it yielded so far on this rank (the same on every
        rank: ranks step together) and what identifies the configuration."""
        return {"version": STATE_VERSION, "seed": self.seed, "epoch": self.epoch, "yielded": self._yielded,
                "p": self.p, "k": self.k, "world_size": self.world_size, "num_samples": len(self.pids),
                "pids_digest": self.digest}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`: the next iteration yields the batches of ``state['epoch']``
        after the first ``state['yielded']``. The configuration must match."""
        missing = {"version", "seed", "epoch", "yielded", "p", "k", "world_size", "num_samples",
                   "pids_digest"} - set(state)
        if missing:
            raise ValueError(f"not a PKSampler state: missing {sorted(missing)}")
        mine = self.state_dict()
        for key in ("version", "seed", "p", "k", "world_size", "num_samples", "pids_digest"):
            if state[key] != mine[key]:
                raise ValueError(f"sampler state was saved with {key}={state[key]!r}, this sampler has "
                                 f"{key}={mine[key]!r}: it would not continue the same sequence of batches")
        if not 0 <= int(state["yielded"]) <= len(self):
            raise ValueError(f"sampler state has yielded={state['yielded']}, expected 0..{len(self)}")
        self.epoch = int(state["epoch"])
        self._yielded = self._resume = int(state["yielded"])

    def __repr__(self) -> str:
        return (f"PKSampler(p={self.p}, k={self.k}, identities={len(self.identities)}, images={len(self.pids)}, "
                f"batches={len(self)}, rank={self.rank}/{self.world_size}, seed={self.seed}, epoch={self.epoch})")
