"""Dataset-specific evaluation protocols beyond Market-1501's single query.

VehicleID (Liu et al., CVPR 2016): the test lists have no query/gallery split and no
cameras. Each trial draws **one random image per test identity as the gallery**; all the
other images of those identities are the queries. Results are averaged over 10 draws.
The Small / Medium / Large test lists hold 800 / 1,600 / 2,400 identities.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .distance import distance
from .metrics import ArrayLike, _as_labels, evaluate

__all__ = ["VEHICLEID_TEST_SIZES", "vehicleid_split", "evaluate_vehicleid", "load_market_test_labels"]

VEHICLEID_TEST_SIZES: dict[str, int] = {"small": 800, "medium": 1600, "large": 2400}


def _test_size(test_size: int | str | None, num_ids: int) -> int:
    if test_size is None:
        return num_ids
    if isinstance(test_size, str):
        if test_size.lower() not in VEHICLEID_TEST_SIZES:
            raise ValueError(f"test_size must be one of {sorted(VEHICLEID_TEST_SIZES)} or an int, got {test_size!r}")
        test_size = VEHICLEID_TEST_SIZES[test_size.lower()]
    if isinstance(test_size, bool) or not isinstance(test_size, (int, np.integer)) or test_size < 1:
        raise ValueError(f"test_size must be a positive integer, got {test_size!r}")
    if test_size > num_ids:
        raise ValueError(f"test_size={test_size} but pids hold only {num_ids} distinct identities: "
                         "expected the features of a VehicleID test list with at least that many ids")
    return int(test_size)


def vehicleid_split(pids: ArrayLike, *, seed: int | Sequence[int], test_size: int | str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One VehicleID draw: ``(query_index, gallery_index)`` into ``pids``.

    The gallery holds one image per identity, picked uniformly at random with
    ``numpy.random.default_rng(seed)``; the queries are every other image of those
    identities (sorted indices). ``test_size`` (an int or "small"/"medium"/"large"): when it
    is smaller than the number of identities, the draw first picks that many identities at
    random; pass the official list's features (reidlib.data) to follow the protocol exactly.
    """
    arr = np.asarray(pids.detach().cpu().numpy() if isinstance(pids, torch.Tensor) else pids)
    if arr.ndim != 1:
        raise ValueError(f"pids must be 1-D (one identity per image), got shape {arr.shape}")
    p = _as_labels(arr, "pids", arr.shape[0], "len(pids)")
    if p.size == 0:
        raise ValueError("pids is empty: expected the identities of the test images")
    rng = np.random.default_rng(seed)
    ids = np.unique(p)
    size = _test_size(test_size, ids.size)
    if size < ids.size:
        ids = np.sort(rng.choice(ids, size=size, replace=False))
    members = np.flatnonzero(np.isin(p, ids))
    shuffled = members[rng.permutation(members.size)]
    _, first = np.unique(p[shuffled], return_index=True)   # first image of each id after shuffling
    gallery = np.sort(shuffled[first])
    is_gallery = np.zeros(p.size, bool)
    is_gallery[gallery] = True
    query = members[~is_gallery[members]]
    return query, gallery


def evaluate_vehicleid(feats, pids: ArrayLike, *, test_size: int | str | None = None,
                       num_trials: int = 10, seed: int = 0,
                       metric: Literal["euclidean", "cosine"] = "euclidean",
                       max_rank: int = 50) -> dict:
    """The VehicleID protocol: ``num_trials`` seeded gallery draws, each evaluated with
    :func:`reidlib.eval.evaluate` (there are no cameras, so nothing is junk), averaged.

    Args:
        feats: (N, D) features of the test list's images. pids: (N,) their identities.
        test_size: 800 / 1600 / 2400 or "small" / "medium" / "large" (see
            :func:`vehicleid_split`); default all identities in ``pids``.
        num_trials: gallery draws (the protocol uses 10); trial ``t`` uses seed ``(seed, t)``.
    Returns:
        dict with the means over trials of ``mAP``, ``mINP``, ``cmc`` (max_rank,), their
        standard deviations ``mAP_std`` and ``rank1_std``, ``num_trials``, ``test_size`` and
        ``trials`` (the per-trial result dicts).
    """
    f = feats if isinstance(feats, torch.Tensor) else torch.as_tensor(np.asarray(feats))
    if f.ndim != 2:
        raise ValueError(f"feats must be 2-D (num_images, feature_dim), got shape {tuple(f.shape)}")
    p = _as_labels(pids, "pids", f.shape[0], "feats.shape[0]")
    if isinstance(num_trials, bool) or not isinstance(num_trials, (int, np.integer)) or num_trials < 1:
        raise ValueError(f"num_trials must be a positive integer, got {num_trials!r}")
    if p.size == 0:
        raise ValueError("feats/pids are empty: expected the features of a VehicleID test list")
    size = _test_size(test_size, np.unique(p).size)
    trials = []
    for t in range(num_trials):
        query, gallery = vehicleid_split(p, seed=(seed, t), test_size=size)
        if query.size == 0:
            raise ValueError("every identity has a single image: VehicleID needs at least one query per draw")
        dist = distance(f[torch.from_numpy(query)], f[torch.from_numpy(gallery)], metric=metric)
        trials.append(evaluate(dist, p[query], p[gallery], np.zeros(query.size, np.int64),
                               np.ones(gallery.size, np.int64), max_rank=max_rank))
    maps = np.array([r["mAP"] for r in trials])
    r1 = np.array([r["cmc"][0] for r in trials])
    return {
        "mAP": float(maps.mean()),
        "mINP": float(np.mean([r["mINP"] for r in trials])),
        "cmc": np.mean([r["cmc"] for r in trials], axis=0),
        "mAP_std": float(maps.std()),
        "rank1_std": float(r1.std()),
        "num_trials": num_trials,
        "test_size": size,
        "trials": trials,
    }


def load_market_test_labels(folder: str | os.PathLike, *, junk: bool = True) -> tuple[np.ndarray, ...]:
    """The Market-1501 evaluation kit's label files in ``folder`` (``queryID.mat``, ``queryCam.mat``,
    ``testID.mat``, ``testCam.mat``) as ``(q_pids (3368,), g_pids (N,), q_camids, g_camids)`` int64 arrays.

    ``junk=False`` drops the gallery's junk items (identity -1; ``evaluate`` ignores them anyway), leaving the
    15,913 gallery items every query is ranked against; with ``junk=True`` the gallery has all 19,732.
    """
    from scipy.io import loadmat

    folder = Path(folder)
    files = {"queryID": "queryID", "queryCam": "queryCAM", "testID": "testID", "testCam": "testCAM"}
    missing = [f"{name}.mat" for name in files if not (folder / f"{name}.mat").is_file()]
    if missing:
        raise FileNotFoundError(f"Market-1501 label files {missing} not found in {folder} (the evaluation kit's "
                                f"queryID.mat, queryCam.mat, testID.mat, testCam.mat)")
    q_pids, q_cams, g_pids, g_cams = (loadmat(folder / f"{name}.mat")[key].ravel().astype(np.int64)
                                      for name, key in files.items())
    if not junk:
        keep = g_pids != -1
        g_pids, g_cams = g_pids[keep], g_cams[keep]
    return q_pids, g_pids, q_cams, g_cams
