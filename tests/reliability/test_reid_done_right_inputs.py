"""The bad inputs the "Re-ID done right" issue names, each a ValueError naming its parameter: a pool smaller
than the batch, no positive for an anchor in the pool, a largest side smaller than the network's stride, a
cut-out schedule outside [0, 1]."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidlib.data.transforms import ProgressiveCutout, build_aspect_transforms
from reidlib.engine.mining import PoolMiningSampler
from reidlib.papers import reid_done_right as rdr


def test_a_pool_smaller_than_the_batch():
    with pytest.raises(ValueError, match=r"pool_size=20 is smaller than one batch's 24 images"):
        PoolMiningSampler(np.repeat(np.arange(10), 4), triplets_per_batch=8, batches_per_pool=2, pool_size=20)


def test_a_pool_where_no_anchor_has_a_positive():
    pids = np.arange(40)  # every identity once in the pool: no anchor has a positive
    pids[-2:] = 0  # (the training set has a triplet, the pool of the first 30 has none)
    sampler = PoolMiningSampler(pids, triplets_per_batch=2, batches_per_pool=1, pool_size=30,
                                embed=lambda idx: torch.nn.functional.normalize(torch.randn(len(idx), 4), dim=1))
    sampler.pool_indices = lambda epoch: np.arange(30)  # the unlucky draw
    with pytest.raises(ValueError, match="pool_size"):
        sampler.set_epoch(0)


@pytest.mark.parametrize("name", ["largest_side", "classification_size"])
def test_a_side_smaller_than_the_stride(name):
    with pytest.raises(ValueError, match=rf"parameter '{name}' = 16 is smaller than the network's stride"):
        rdr.config(**{name: 16})


def test_a_cutout_schedule_outside_0_1():
    cutout = ProgressiveCutout(1.0)
    for t in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"progress t must be in \[0, 1\]"):
            cutout.set_progress(t)
    with pytest.raises(ValueError, match="cutout_max"):
        rdr.config(cutout_max=0.0)
    with pytest.raises(ValueError, match="largest_side"):
        build_aspect_transforms(0, train=True)
