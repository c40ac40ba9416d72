"""reidlib.data.samplers.PKSampler: P distinct ids x K images per batch, disjoint ranks, exact
resume, determinism."""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.data.image_record import Record
from reidlib.data.samplers import PKSampler, max_pk_batches


@st.composite
def datasets(draw):
    """(pids, p, k, world_size): 2-30 ids with 1-12 images each, shuffled."""
    counts = draw(st.lists(st.integers(1, 12), min_size=2, max_size=30))
    p = draw(st.integers(2, min(len(counts), 6)))
    k = draw(st.integers(1, 5))
    world = draw(st.integers(1, 3))
    labels = draw(st.permutations(range(len(counts))))  # identity labels need not be 0..N-1 in order
    pids = np.repeat(np.array(labels) * 7 + 3, counts)
    perm = np.random.default_rng(draw(st.integers(0, 1000))).permutation(len(pids))
    return pids[perm], p, k, world


def make(pids, p, k, world, rank=0, seed=0):
    try:
        return PKSampler(pids, p, k, seed=seed, rank=rank, world_size=world)
    except ValueError as err:
        assert "no P x K batch fits" in str(err)
        return None


@settings(max_examples=60, deadline=None)
@given(data=datasets(), epoch=st.integers(0, 5))
def test_every_batch_has_p_distinct_ids_times_k_and_ranks_are_disjoint(data, epoch):
    pids, p, k, world = data
    samplers = [make(pids, p, k, world, rank=r, seed=11) for r in range(world)]
    if samplers[0] is None:
        counts = np.unique(pids, return_counts=True)[1]
        assert max_pk_batches(np.maximum(1, counts // k), p) < world
        return
    sizes = Counter(pids.tolist())
    seen: list[int] = []
    for s in samplers:
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s) == len(samplers[0]) > 0
        for batch in batches:
            assert len(batch) == p * k
            ids = pids[batch]
            per_id = Counter(ids.tolist())
            assert len(per_id) == p and set(per_id.values()) == {k}
            # an id repeats an image only when it has fewer than K images
            for pid in per_id:
                chosen = [i for i in batch if pids[i] == pid]
                assert len(set(chosen)) == min(k, sizes[pid])
            seen.extend(set(batch))
    assert len(seen) == len(set(seen)), "an image index appears in two batches of an epoch (ranks not disjoint)"


@settings(max_examples=40, deadline=None)
@given(data=datasets(), epoch=st.integers(0, 3), cut=st.integers(0, 40))
def test_resume_from_state_gives_identical_remaining_batches(data, epoch, cut):
    pids, p, k, world = data
    a = make(pids, p, k, world, rank=world - 1, seed=5)
    if a is None:
        return
    a.set_epoch(epoch)
    full = [list(b) for b in a]
    cut = min(cut, len(full))
    a.set_epoch(epoch + 1)  # a fresh epoch, then re-enter `epoch`: position restarts
    a.set_epoch(epoch)
    it = iter(a)
    head = list(itertools.islice(it, cut))
    state = a.state_dict()
    assert state["epoch"] == epoch and state["yielded"] == cut
    b = PKSampler(pids, p, k, seed=5, rank=world - 1, world_size=world)
    b.load_state_dict(state)
    b.set_epoch(epoch)  # what a trainer does on resume: same epoch keeps the position
    rest = list(b)
    assert head + rest == full
    assert list(b) == full, "after the resumed epoch a new iteration yields whole epochs"
    b.set_epoch(epoch + 1)
    a.set_epoch(epoch + 1)
    assert list(b) == list(a)


def test_len_is_the_largest_feasible_number_of_batches():
    # one identity with many images cannot fill more than one slot per batch
    pids = np.repeat(np.arange(5), [40, 4, 4, 4, 4])
    s = PKSampler(pids, 2, 4)
    # 10 chunks of the big id, 1 for each other: min(10, B) + 4 >= 2B holds up to B = 4
    assert len(s) == 4
    batches = list(s)
    assert len(batches) == 4 and all(len(set(pids[b])) == 2 and 0 in pids[b] for b in batches)
    assert max_pk_batches([3, 3, 3], 3) == 3 and max_pk_batches([5, 1, 1], 2) == 2
    counts = np.random.default_rng(0).integers(2, 40, 751)
    s = PKSampler(np.repeat(np.arange(751), counts), 16, 4)
    assert len(s) == np.maximum(1, counts // 4).sum() // 16  # Market-like: floor(sum c_i / P)


def test_seed_and_epoch_change_the_batches_and_fix_them():
    pids = np.repeat(np.arange(20), 6)
    a, b, c = PKSampler(pids, 4, 3, seed=1), PKSampler(pids, 4, 3, seed=1), PKSampler(pids, 4, 3, seed=2)
    assert list(a) == list(b) and list(a) != list(c)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and a.epoch_batches(0)[0].tolist() == first[0]


def test_accepts_records_and_tensors():
    recs = [Record(f"{i}.jpg", pid=i // 4, camid=0, extra={}) for i in range(40)]
    s1, s2 = PKSampler(recs, 2, 2), PKSampler(torch.arange(40) // 4, 2, 2)
    assert list(s1) == list(s2)


def test_bad_arguments_and_mismatched_state_are_explained():
    pids = np.repeat(np.arange(4), 4)
    with pytest.raises(ValueError, match="only 4 identities"):
        PKSampler(pids, 5, 2)
    with pytest.raises(ValueError, match="P and K"):
        PKSampler(pids, 2, 0)
    with pytest.raises(ValueError, match="rank"):
        PKSampler(pids, 2, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="no P x K batch fits"):
        PKSampler(pids, 4, 4, world_size=2)
    with pytest.raises(ValueError, match="integer identity labels"):
        PKSampler(np.zeros((4, 2), dtype=int), 2, 2)
    state = PKSampler(pids, 2, 2, seed=1).state_dict()
    with pytest.raises(ValueError, match="seed=1"):
        PKSampler(pids, 2, 2, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="pids_digest"):
        PKSampler(pids[::-1].copy(), 2, 2, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        PKSampler(pids, 2, 2).load_state_dict({"epoch": 0})


def test_rank_and_world_size_default_from_torch_distributed(monkeypatch):
    import torch.distributed as dist
    pids = np.repeat(np.arange(12), 4)
    assert (PKSampler(pids, 2, 2).rank, PKSampler(pids, 2, 2).world_size) == (0, 1)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 3)
    s = PKSampler(pids, 2, 2)
    assert (s.rank, s.world_size) == (1, 3)
    assert s.epoch_batches()[0].tolist() == PKSampler(pids, 2, 2, rank=0, world_size=1).epoch_batches()[1].tolist()


def test_works_as_a_dataloader_batch_sampler():
    pids = np.repeat(np.arange(8), 5)
    data = torch.utils.data.TensorDataset(torch.arange(40), torch.from_numpy(pids))
    sampler = PKSampler(pids, 4, 2)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
    got = [(x.tolist(), y.tolist()) for x, y in loader]
    assert [x for x, _ in got] == list(sampler)
    assert all(len(set(y)) == 4 for _, y in got)
