"""reidlib.eval.evaluate / evaluate_reference: hand-computed cases, properties, the real
Market-1501 label distributions, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import realdata_path
from hypothesis import given, settings
from hypothesis import strategies as st

import reidlib.eval.metrics as metrics
from reidlib.eval import evaluate, evaluate_reference

BOTH = [evaluate, evaluate_reference]


@pytest.fixture(params=["dense", "sparse"])
def path(request, monkeypatch):
    """Run evaluate's histogram (dense) or sorted-subset (sparse) counting path."""
    monkeypatch.setattr(metrics, "_SPARSE_FRACTION", -1.0 if request.param == "dense" else 2.0)
    return request.param


def assert_same(a: dict, b: dict, tol: float = 1e-9) -> None:
    assert a["num_valid_queries"] == b["num_valid_queries"]
    assert a["num_excluded_queries"] == b["num_excluded_queries"]
    assert abs(a["mAP"] - b["mAP"]) <= tol
    assert abs(a["mINP"] - b["mINP"]) <= tol
    np.testing.assert_allclose(a["cmc"], b["cmc"], atol=tol, rtol=0)
    if "AP" in a and "AP" in b:
        np.testing.assert_array_equal(a["valid"], b["valid"])
        np.testing.assert_array_equal(a["first_match_rank"], b["first_match_rank"])
        np.testing.assert_allclose(a["AP"], b["AP"], atol=tol, rtol=0)
        np.testing.assert_allclose(a["INP"], b["INP"], atol=tol, rtol=0)


# ----------------------------------------------------------------------------- by hand
@pytest.mark.parametrize("fn", BOTH)
def test_hand_computed_single_query(fn, path):
    # gallery:        0: match   1: other id  2: junk (same id, same cam)  3: match  4: other id
    dist = np.array([[0.3, 0.1, 0.05, 0.5, 0.4]])
    r = fn(dist, [7], [7, 2, 7, 7, 3], [0], [1, 1, 0, 2, 1], max_rank=5, per_query=True)
    # junk-free ranked list: other(0.1) match(0.3) other(0.4) match(0.5): matches at ranks 2, 4
    assert r["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert r["mINP"] == pytest.approx(2 / 4)
    np.testing.assert_array_equal(r["cmc"], [0, 1, 1, 1, 1])
    assert r["first_match_rank"][0] == 2
    assert (r["num_valid_queries"], r["num_excluded_queries"]) == (1, 0)


@pytest.mark.parametrize("fn", BOTH)
def test_ties_are_broken_by_gallery_index(fn, path):
    # All distances equal: the ranked list is the gallery order.
    g_pids = [5, 1, 5, 2]            # matches at gallery positions 0 and 2 -> ranks 1 and 3
    r = fn(np.ones((1, 4)), [5], g_pids, [0], [1, 1, 1, 1], max_rank=4)
    assert r["mAP"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert r["mINP"] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(r["cmc"], [1, 1, 1, 1])
    # The same gallery reversed: the matches now sit at ranks 2 and 4.
    r = fn(np.ones((1, 4)), [5], g_pids[::-1], [0], [1, 1, 1, 1], max_rank=4)
    assert r["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    np.testing.assert_array_equal(r["cmc"], [0, 1, 1, 1])


@pytest.mark.parametrize("fn", BOTH)
def test_tie_with_junk_and_partial_ties(fn, path):
    # d: match 0.2 (idx 0), junk 0.2 (idx 1), other 0.2 (idx 2), match 0.2 (idx 3), other 0.1 (idx 4)
    dist = np.array([[0.2, 0.2, 0.2, 0.2, 0.1]], dtype=np.float32)
    r = fn(dist, [1], [1, 1, 9, 1, 9], [0], [3, 0, 3, 3, 3], per_query=True)
    # ranked: other(4), match(0), [junk(1) removed], other(2), match(3) -> ranks 2 and 4
    assert r["AP"][0] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert r["INP"][0] == pytest.approx(2 / 4)


@pytest.mark.parametrize("fn", BOTH)
def test_query_without_valid_match_is_excluded_and_counted(fn, path):
    # query 0 (id 1, cam 0): its only gallery image is in cam 0 -> junk -> excluded.
    # query 1 (id 2, cam 0): one match at rank 1.
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.1, 0.2]])
    r = fn(dist, [1, 2], [1, 2, 3], [0, 0], [0, 1, 1], max_rank=3, per_query=True)
    assert (r["num_valid_queries"], r["num_excluded_queries"]) == (1, 1)
    assert r["mAP"] == 1.0 and r["mINP"] == 1.0
    np.testing.assert_array_equal(r["cmc"], [1, 1, 1])
    assert np.isnan(r["AP"][0]) and not r["valid"][0] and r["first_match_rank"][0] == 0


@pytest.mark.parametrize("fn", BOTH)
def test_all_matches_junk_raises(fn, path):
    dist = np.array([[0.1, 0.2], [0.2, 0.1]])
    with pytest.raises(ValueError, match="no query has a match"):
        fn(dist, [1, 2], [1, 2], [0, 1], [0, 1])


@pytest.mark.parametrize("fn", BOTH)
def test_identity_not_in_gallery_is_excluded(fn, path):
    r = fn(np.array([[0.1, 0.2], [0.5, 0.1]]), [1, 4], [1, 2], [0, 0], [1, 1])
    assert (r["num_valid_queries"], r["num_excluded_queries"]) == (1, 1)


@pytest.mark.parametrize("fn", BOTH)
def test_cmc_longer_than_gallery_repeats_last_value(fn, path):
    r = fn(np.array([[0.2, 0.1, 0.3]]), [1], [1, 2, 3], [0], [1, 1, 1], max_rank=6)
    assert r["cmc"].shape == (6,)
    np.testing.assert_array_equal(r["cmc"], [0, 1, 1, 1, 1, 1])


def test_accepts_torch_and_float_dtypes(path):
    rng = np.random.default_rng(0)
    dist = rng.random((6, 30))
    q, g = rng.integers(0, 4, 6), rng.integers(0, 4, 30)
    qc, gc = rng.integers(0, 3, 6), rng.integers(0, 3, 30)
    ref = evaluate_reference(dist, q, g, qc, gc)
    for d in (dist, dist.astype(np.float32), torch.from_numpy(dist), torch.from_numpy(dist).half().float()):
        assert_same(evaluate(d, torch.as_tensor(q), list(g), qc, gc), evaluate_reference(d, q, g, qc, gc))
    assert_same(evaluate(dist, q, g, qc, gc), ref)


# ----------------------------------------------------------------------------- properties
def labelled_problem(draw, max_q=6, max_g=40, tie_levels=None):
    nq = draw(st.integers(1, max_q))
    ng = draw(st.integers(1, max_g))
    ids = draw(st.integers(1, 5))
    cams = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    q_cams, g_cams = rng.integers(0, cams, nq), rng.integers(0, cams, ng)
    if tie_levels is None:   # distinct distances
        dist = rng.permutation(nq * ng).reshape(nq, ng).astype(np.float64) / (nq * ng)
    else:
        dist = rng.integers(0, tie_levels, (nq, ng)).astype(np.float32)
    return dist, q_pids, g_pids, q_cams, g_cams


def has_valid_query(q_pids, g_pids, q_cams, g_cams) -> bool:
    return bool(((q_pids[:, None] == g_pids[None]) & (q_cams[:, None] != g_cams[None])).any())


@st.composite
def problems(draw, tie_levels=None):
    return labelled_problem(draw, tie_levels=tie_levels)


@settings(max_examples=60, deadline=None)
@given(problems(tie_levels=3), st.sampled_from([-1.0, 2.0]), st.integers(1, 7))
def test_fast_equals_reference_with_many_ties(prob, sparse_fraction, chunk):
    dist, qp, gp, qc, gc = prob
    if not has_valid_query(qp, gp, qc, gc):
        return
    old = metrics._SPARSE_FRACTION
    metrics._SPARSE_FRACTION = sparse_fraction
    try:
        fast = evaluate(dist, qp, gp, qc, gc, max_rank=10, per_query=True, chunk_size=chunk)
    finally:
        metrics._SPARSE_FRACTION = old
    assert_same(fast, evaluate_reference(dist, qp, gp, qc, gc, max_rank=10, per_query=True))


@settings(max_examples=40, deadline=None)
@given(problems(), st.integers(0, 2 ** 32 - 1))
def test_map_invariant_to_gallery_permutation(prob, seed):
    dist, qp, gp, qc, gc = prob
    if not has_valid_query(qp, gp, qc, gc):
        return
    perm = np.random.default_rng(seed).permutation(gp.size)
    a = evaluate(dist, qp, gp, qc, gc, max_rank=10)
    b = evaluate(dist[:, perm], qp, gp[perm], qc, gc[perm], max_rank=10)
    assert_same(a, b, tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_perfect_ranking_gives_map_one(prob):
    dist, qp, gp, qc, gc = prob
    if not has_valid_query(qp, gp, qc, gc):
        return
    # Every query's matches (and junk) nearer than every other gallery item.
    same = qp[:, None] == gp[None, :]
    perfect = dist + np.where(same, 0.0, 10.0)
    r = evaluate(perfect, qp, gp, qc, gc, max_rank=5)
    assert r["mAP"] == pytest.approx(1.0) and r["mINP"] == pytest.approx(1.0)
    np.testing.assert_array_equal(r["cmc"], np.ones(5))


@settings(max_examples=40, deadline=None)
@given(problems(tie_levels=5))
def test_cmc_monotone_and_metrics_in_unit_interval(prob):
    dist, qp, gp, qc, gc = prob
    if not has_valid_query(qp, gp, qc, gc):
        return
    r = evaluate(dist, qp, gp, qc, gc, max_rank=12)
    assert np.all(np.diff(r["cmc"]) >= 0)
    assert 0 <= r["cmc"][0] and r["cmc"][-1] <= 1
    assert 0 < r["mAP"] <= 1 and 0 < r["mINP"] <= 1


# ----------------------------------------------------------------------------- real labels
@pytest.fixture(scope="module")
def market_labels():
    from reidlib.eval.protocols import load_market_test_labels

    return load_market_test_labels(realdata_path("market1501_labels"), junk=False)


def test_market_label_counts(market_labels):
    q_pids, g_pids, q_cams, g_cams = market_labels
    assert q_pids.size == 3368 and g_pids.size == 15913
    assert np.unique(q_pids).size == 750 and np.unique(q_cams).size == 6


@pytest.fixture(scope="module")
def market_problems(market_labels):
    """120 random Market-1501 queries against the whole gallery, three kinds of distances,
    with the reference result computed once."""
    q_pids, g_pids, q_cams, g_cams = market_labels
    rng = np.random.default_rng(1)
    sub = rng.choice(q_pids.size, 120, replace=False)
    qp, qc = q_pids[sub], q_cams[sub]
    centres = rng.standard_normal((int(g_pids.max()) + 1, 16))
    qf = centres[qp] + 0.6 * rng.standard_normal((sub.size, 16))
    gf = centres[g_pids] + 0.6 * rng.standard_normal((g_pids.size, 16))
    dists = {
        "uniform": rng.random((sub.size, g_pids.size), dtype=np.float32),
        "ties": rng.integers(0, 200, (sub.size, g_pids.size)).astype(np.float32),
        "model-like": np.sqrt(((qf[:, None, :] - gf[None]) ** 2).sum(-1)),   # matches nearer
    }
    labels = (qp, g_pids, qc, g_cams)
    return {k: (d, labels, evaluate_reference(d, *labels, per_query=True)) for k, d in dists.items()}


@pytest.mark.parametrize("kind", ["uniform", "ties", "model-like"])
def test_fast_equals_reference_on_market_labels(market_problems, kind, path):
    dist, labels, ref = market_problems[kind]
    fast = evaluate(dist, *labels, per_query=True)
    assert_same(fast, ref)
    assert fast["num_valid_queries"] == 120


# ----------------------------------------------------------------------------- bad input
GOOD = dict(distmat=np.zeros((2, 3)), q_pids=[1, 2], g_pids=[1, 2, 3], q_camids=[0, 0], g_camids=[1, 1, 1])


@pytest.mark.parametrize("fn", BOTH)
@pytest.mark.parametrize("change, message", [
    (dict(q_pids=[1, 2, 3]), "q_pids has 3 entries"),
    (dict(g_pids=[1, 2]), "g_pids has 2 entries"),
    (dict(q_camids=[0]), "q_camids has 1 entries"),
    (dict(g_camids=[0, 0, 0, 0]), "g_camids has 4 entries"),
    (dict(q_pids=[[1, 2]]), "q_pids must be 1-D"),
    (dict(q_pids=[1.5, 2]), "q_pids must hold integer labels"),
    (dict(distmat=np.zeros(3)), "distmat must be 2-D"),
    (dict(distmat=np.zeros((2, 3, 1))), "distmat must be 2-D"),
    (dict(distmat=np.zeros((0, 3)), q_pids=[], q_camids=[]), "distmat has no rows"),
    (dict(distmat=np.zeros((2, 0)), g_pids=[], g_camids=[]), "distmat has no columns"),
    (dict(distmat=np.array([[0, np.nan, 0], [0, 0, 0]])), "row 0 .* nan"),
    (dict(distmat=np.array([[0, 0, 0], [0, 0, np.inf]])), "row 1 .* inf"),
    (dict(distmat=np.array([["a", "b", "c"], ["a", "b", "c"]])), "distmat must be a numeric"),
    (dict(max_rank=0), "max_rank must be a positive integer"),
])
def test_bad_input_names_the_argument(fn, change, message):
    kwargs = {**GOOD, **change}
    max_rank = kwargs.pop("max_rank", 50)
    with pytest.raises(ValueError, match=message):
        fn(**kwargs, max_rank=max_rank)


def test_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate(**GOOD, chunk_size=0)


def test_read_only_and_non_contiguous_distmat(path):
    rng = np.random.default_rng(3)
    dist = rng.random((40, 9))
    q, g = rng.integers(0, 3, 9), rng.integers(0, 3, 40)
    qc, gc = rng.integers(0, 2, 9), rng.integers(0, 2, 40)
    ref = evaluate_reference(np.ascontiguousarray(dist.T), q, g, qc, gc, per_query=True)
    ro = np.ascontiguousarray(dist.T)
    ro.flags.writeable = False
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(evaluate(ro, q, g, qc, gc, per_query=True), ref)
    assert_same(evaluate(dist.T, q, g, qc, gc, per_query=True, chunk_size=4), ref)   # a transposed view
