"""Hamming distances and search: faiss against numpy popcount, ties by gallery index, recall."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.retrieval import (
    ApproximateHammingIndex,
    HammingIndex,
    hamming_distances,
    hamming_from_signs,
    knn_recall,
    pack_codes,
    unpack_codes,
)


def _popcount_reference(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.bitwise_count(q[:, None, :] ^ g[None, :, :]).sum(-1)


def _codes(rng, n, bits):
    return np.where(rng.random((n, bits)) > 0.5, 1, -1).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 100), st.integers(0, 2**31))
def test_hamming_is_half_of_length_minus_inner_product(bits, seed):
    rng = np.random.default_rng(seed)
    q, g = _codes(rng, 5, bits), _codes(rng, 9, bits)
    by_inner = hamming_from_signs(torch.from_numpy(q).double(), torch.from_numpy(g).double()).numpy()
    by_count = (q[:, None, :] != g[None, :, :]).sum(-1)
    assert np.array_equal(by_inner, by_count)
    assert np.array_equal(hamming_distances(pack_codes(q), pack_codes(g)), by_count)


@pytest.mark.parametrize("bits", [8, 30, 128, 2048])
def test_exact_search_matches_a_stable_numpy_sort(bits):
    rng = np.random.default_rng(bits)
    # few bits and many items: most distances tie, so the tie rule is what is tested
    g = pack_codes(_codes(rng, 3000, bits))
    q = pack_codes(_codes(rng, 40, bits))
    ref = _popcount_reference(q, g)
    for k in (1, 17, 3000):
        dist, idx = HammingIndex(g, bits=bits).search(q, k)
        order = np.argsort(ref, axis=1, kind="stable")[:, :k]
        assert dist.dtype == np.int32 and idx.dtype == np.int64
        assert np.array_equal(idx, order)
        assert np.array_equal(dist, np.take_along_axis(ref, order, 1))


@pytest.mark.parametrize("threads", [2, 3])
def test_a_split_gallery_search_is_the_single_scan_ties_included(threads, monkeypatch):
    rng = np.random.default_rng(threads)
    # 16-bit codes: nearly every distance ties, across the blocks' boundaries too
    g = pack_codes(_codes(rng, 5000, 16))
    q = pack_codes(_codes(rng, 1, 16))
    monkeypatch.setattr(HammingIndex, "split_min", 1000)
    split = HammingIndex(g, threads=threads)
    calls = []
    monkeypatch.setattr(split, "_split_search", lambda *a, _f=split._split_search: calls.append(1) or _f(*a))
    ref = _popcount_reference(q, g)
    for k in (1, 100, 1600):
        dist, idx = split.search(q, k)
        order = np.argsort(ref, axis=1, kind="stable")[:, :k]
        assert np.array_equal(idx, order) and np.array_equal(dist, np.take_along_axis(ref, order, 1))
        assert dist.dtype == np.int32 and idx.dtype == np.int64
    assert len(calls) == 3, "one query on several threads takes the split path"
    single = HammingIndex(g, threads=1)
    assert np.array_equal(single.search(q, 50)[1], split.search(q, 50)[1])
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        HammingIndex(g, threads=0)


def test_search_inputs_are_checked():
    g = pack_codes(np.ones((10, 64)))
    index = HammingIndex(g)
    with pytest.raises(ValueError, match="packed_queries holds codes of 16 bytes.*expected 8"):
        index.search(pack_codes(np.ones((2, 128))), 3)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 10\]"):
        index.search(g[:2], 11)
    with pytest.raises(ValueError, match="uint8"):
        HammingIndex(np.ones((10, 8), np.float32))
    with pytest.raises(ValueError, match="expected 4 for bits=30"):
        HammingIndex(g, bits=30)
    with pytest.raises(ValueError, match="same L"):
        hamming_from_signs(torch.ones(2, 8), torch.ones(3, 9))


def test_padding_of_short_codes_adds_no_distance():
    rng = np.random.default_rng(1)
    q, g = _codes(rng, 4, 30), _codes(rng, 50, 30)
    expected = (q[:, None, :] != g[None, :, :]).sum(-1)
    assert np.array_equal(hamming_distances(pack_codes(q), pack_codes(g)), expected)
    assert np.array_equal(unpack_codes(pack_codes(q), 30), q)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_finds_most_neighbours_and_orders_them(kind):
    rng = np.random.default_rng(2)
    # clustered codes, as trained codes are: 40 centres, each bit flipped with probability 0.1
    centres = _codes(rng, 40, 128)
    flips = np.where(rng.random((4000, 128)) < 0.1, -1, 1)
    g = pack_codes(centres[rng.integers(0, 40, 4000)] * flips)
    q = g[:50]
    exact_d, _ = HammingIndex(g).search(q, 10)
    approx_d, approx_i = ApproximateHammingIndex(g, kind=kind).search(q, 10)
    recall = knn_recall(exact_d, approx_d)
    assert 0.5 < recall <= 1.0
    ref = _popcount_reference(q, g)
    found = approx_i >= 0
    assert np.array_equal(np.take_along_axis(ref, np.where(found, approx_i, 0), 1)[found], approx_d[found])
    key = np.where(found, approx_d.astype(np.int64) * 10_000 + approx_i, np.iinfo(np.int64).max)
    assert (np.diff(key, axis=1) > 0).all()          # by distance, ties by index


def test_knn_recall_is_tie_aware_and_counts_misses():
    exact = np.array([[0, 1, 1, 2]])
    assert knn_recall(exact, np.array([[0, 1, 1, 2]])) == 1.0
    assert knn_recall(exact, np.array([[0, 1, 2, 3]])) == 0.75
    missing = np.array([[0, 1, 1, np.iinfo(np.int32).max]])
    assert knn_recall(exact, missing) == 0.75
    with pytest.raises(ValueError, match="one shape"):
        knn_recall(exact, exact[:, :2])
