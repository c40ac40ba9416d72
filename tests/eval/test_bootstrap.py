"""reidlib.eval.bootstrap: per-query metrics agree with evaluate exactly; the percentile bootstrap over
queries and its paired version for two runs (properties with hypothesis, a normal-theory check, bad input)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import reidlib.eval.bootstrap as bootstrap
from reidlib.eval import (
    bootstrap_interval,
    evaluate,
    evaluate_reference,
    paired_bootstrap_difference,
    per_query_metrics,
)

SEEDS = st.integers(0, 2 ** 32 - 1)
UNIT = st.floats(0.0, 1.0, allow_nan=False)


def width(interval: tuple[float, float, float]) -> float:
    return interval[2] - interval[1]


@st.composite
def problems(draw):
    """A small labelled problem with ties, same-camera junk and gallery identity -1 (junk for all)."""
    nq, ng = draw(st.integers(1, 12)), draw(st.integers(1, 40))
    ids, cams = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(SEEDS))
    q_pids, g_pids = rng.integers(0, ids, nq), rng.integers(-1, ids, ng)   # -1: Market-1501's junk
    q_cams, g_cams = rng.integers(0, cams, nq), rng.integers(0, cams, ng)
    dist = rng.integers(0, draw(st.sampled_from([3, 1000])), (nq, ng)).astype(np.float32)
    return dist, q_pids, g_pids, q_cams, g_cams


def has_valid_query(q_pids, g_pids, q_cams, g_cams) -> bool:
    return bool(((q_pids[:, None] == g_pids[None]) & (q_cams[:, None] != g_cams[None])).any())


# ----------------------------------------------------------------------------- per-query metrics
@settings(max_examples=80, deadline=None)
@given(problems())
def test_per_query_means_equal_evaluate_exactly(prob):
    dist, qp, gp, qc, gc = prob
    assume(has_valid_query(qp, gp, qc, gc))
    full = evaluate(dist, qp, gp, qc, gc, per_query=True)
    pq = per_query_metrics(dist, qp, gp, qc, gc)
    assert set(pq) == {"AP", "rank1", "INP", "query_index"}
    n = full["num_valid_queries"]
    assert all(v.shape == (n,) for v in pq.values())
    assert pq["AP"].dtype == pq["rank1"].dtype == pq["INP"].dtype == np.float64
    assert pq["query_index"].dtype == np.int64
    np.testing.assert_array_equal(pq["query_index"], np.flatnonzero(full["valid"]))
    assert set(np.unique(pq["rank1"])) <= {0.0, 1.0}
    assert np.mean(pq["AP"]) == full["mAP"]          # exactly: the bootstrap's estimate is evaluate's number
    assert np.mean(pq["rank1"]) == full["cmc"][0]
    assert np.mean(pq["INP"]) == full["mINP"]
    assert bootstrap_interval(pq["AP"], n_boot=10)[0] == full["mAP"]
    assert bootstrap_interval(pq["rank1"], n_boot=10)[0] == full["cmc"][0]
    ref = evaluate_reference(dist, qp, gp, qc, gc, per_query=True)   # the definition, query by query
    np.testing.assert_allclose(pq["AP"], ref["AP"][ref["valid"]], atol=1e-12, rtol=0)
    np.testing.assert_array_equal(pq["rank1"], ref["first_match_rank"][ref["valid"]] == 1)


def test_per_query_metrics_by_hand():
    # query 0 (id 7, cam 0): gallery 0 junk (same id, same cam), 2 is identity -1 (junk), matches 3 and 4
    # query 1 (id 8): no gallery item of id 8 -> excluded
    # query 2 (id 2, cam 1): match at gallery 1, first in its list
    dist = np.array([[0.1, 0.2, 0.05, 0.3, 0.5],
                     [0.1, 0.2, 0.3, 0.4, 0.5],
                     [0.9, 0.1, 0.2, 0.3, 0.4]])
    g_pids, g_cams = [7, 2, -1, 7, 7], [0, 0, 1, 1, 2]
    pq = per_query_metrics(dist, [7, 8, 2], g_pids, [0, 1, 1], g_cams)
    np.testing.assert_array_equal(pq["query_index"], [0, 2])
    # query 0's junk-free list: id 2 (0.2), match (0.3), match (0.5): matches at ranks 2 and 3
    np.testing.assert_allclose(pq["AP"], [(1 / 2 + 2 / 3) / 2, 1.0])
    np.testing.assert_array_equal(pq["rank1"], [0.0, 1.0])
    np.testing.assert_allclose(pq["INP"], [2 / 3, 1.0])


def test_per_query_metrics_refuses_what_evaluate_refuses():
    with pytest.raises(ValueError, match="no query has a match"):
        per_query_metrics(np.ones((1, 2)), [1], [1, 2], [0], [0, 0])
    with pytest.raises(ValueError, match="g_pids"):
        per_query_metrics(np.ones((1, 2)), [1], [1, 2, 3], [0], [1, 1])


def test_paired_on_two_runs_same_queries():
    """Two runs on the same queries and gallery give aligned per-query arrays; a run that is
    better on most queries is judged better by the paired interval."""
    rng = np.random.default_rng(0)
    nq, ng, ids = 200, 600, 100
    q_pids, g_pids = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng) + 3 * (rng.random(ng) < 0.1)
    same = q_pids[:, None] == g_pids[None]
    hardness = rng.random((nq, 1)) * 2                                  # per query, shared by both runs
    noise = rng.random((nq, ng))
    run_a = noise + hardness * rng.random((nq, ng)) - 0.6 * same        # A separates the matches better
    run_b = noise + hardness * rng.random((nq, ng)) - 0.4 * same
    pa = per_query_metrics(run_a, q_pids, g_pids, q_cams, g_cams)
    pb = per_query_metrics(run_b, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(pa["query_index"], pb["query_index"])
    diff, low, high = paired_bootstrap_difference(pa["AP"], pb["AP"])
    ea = evaluate(run_a, q_pids, g_pids, q_cams, g_cams)["mAP"]
    eb = evaluate(run_b, q_pids, g_pids, q_cams, g_cams)["mAP"]
    assert diff == pytest.approx(ea - eb, abs=1e-12)
    assert 0 < low <= diff <= high
    means_a = bootstrap._bootstrap_means(pa["AP"], 2000, np.random.default_rng(1))
    means_b = bootstrap._bootstrap_means(pb["AP"], 2000, np.random.default_rng(2))
    unpaired = np.quantile(means_a - means_b, [0.025, 0.975])
    assert high - low < unpaired[1] - unpaired[0]


# ----------------------------------------------------------------------------- the interval
@settings(max_examples=100, deadline=None)
@given(st.lists(UNIT, min_size=1, max_size=300), SEEDS, st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_interval_contains_the_estimate(values, seed, level):
    est, low, high = bootstrap_interval(values, level=level, seed=seed)
    assert est == np.mean(values)
    assert low <= est <= high
    assert min(values) - 1e-12 <= low and high <= max(values) + 1e-12    # resample means round too


@settings(max_examples=30, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(1, 500), SEEDS)
def test_equal_values_give_a_point_interval(x, n, seed):
    est, low, high = bootstrap_interval(np.full(n, x), n_boot=50, seed=seed)
    assert est == low == high == np.mean(np.full(n, x))


@settings(max_examples=60, deadline=None)
@given(st.lists(UNIT, min_size=1, max_size=300), SEEDS)
def test_a_run_against_itself_differs_by_exactly_zero(values, seed):
    assert paired_bootstrap_difference(values, values, seed=seed) == (0.0, 0.0, 0.0)
    arr = np.asarray(values)
    assert paired_bootstrap_difference(arr, arr.copy(), n_boot=7, seed=seed) == (0.0, 0.0, 0.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(UNIT, min_size=2, max_size=40), SEEDS)
def test_interval_shrinks_with_more_queries_same_distribution(values, seed):
    """The same empirical distribution over 16x as many queries: the width falls about 4x (1/sqrt(N))."""
    assume(np.ptp(values) > 0.05)
    small = bootstrap_interval(values, seed=seed)
    large = bootstrap_interval(np.tile(values, 16), seed=seed)
    assert width(large) < 0.5 * width(small)


@settings(max_examples=30, deadline=None)
@given(SEEDS, st.floats(0.3, 0.7))
def test_interval_shrinks_with_more_queries_fresh_draws(seed, p):
    """Rank-1 hits drawn from one Bernoulli(p): 100 vs 1600 queries (expected width ratio 1/4; the
    sample of 100 has a hit rate within 0.15 of p except with probability < 1e-3)."""
    rng = np.random.default_rng(seed)
    small = bootstrap_interval(rng.random(100) < p, seed=seed)
    large = bootstrap_interval(rng.random(1600) < p, seed=seed)
    assert width(large) < 0.5 * width(small)


def test_width_matches_normal_theory_for_a_large_sample():
    """For a mean of many values, the 95% percentile interval is about mean +- 1.96 sd / sqrt(N)."""
    values = np.random.default_rng(3).beta(2, 5, 3000)
    est, low, high = bootstrap_interval(values, n_boot=4000)
    half = 1.96 * values.std() / np.sqrt(values.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.08)
    assert (low + high) / 2 == pytest.approx(est, abs=0.15 * half)


@settings(max_examples=30, deadline=None)
@given(st.lists(UNIT, min_size=2, max_size=100), SEEDS)
def test_lower_levels_nest_inside_higher_ones(values, seed):
    outer = bootstrap_interval(values, level=0.95, seed=seed)
    inner = bootstrap_interval(values, level=0.5, seed=seed)
    assert outer[1] <= inner[1] <= inner[2] <= outer[2]


def test_seeded_and_independent_of_the_chunking(monkeypatch):
    values = np.random.default_rng(4).random(37)
    ref = bootstrap_interval(values, n_boot=300, seed=11)
    assert bootstrap_interval(values, n_boot=300, seed=11) == ref
    assert bootstrap_interval(values, n_boot=300, seed=np.random.default_rng(11)) == ref
    assert bootstrap_interval(values, n_boot=300, seed=12) != ref
    for elements in (1, 37, 100, 37 * 300 + 1):      # one resample per chunk ... all in one chunk
        monkeypatch.setattr(bootstrap, "_MAX_ELEMENTS", elements)
        assert bootstrap_interval(values, n_boot=300, seed=11) == ref


def test_the_percentiles_of_the_resample_means():
    """The definition, written out: N queries drawn with replacement, n_boot times, the level's quantiles."""
    values = np.random.default_rng(5).random(25)
    idx = np.random.default_rng(9).integers(0, 25, (500, 25))
    expected = np.quantile(values[idx].mean(1), [0.05, 0.95])
    est, low, high = bootstrap_interval(values, n_boot=500, level=0.9, seed=9)
    np.testing.assert_allclose([low, high], expected, rtol=0, atol=1e-15)


def test_paired_uses_the_same_draw_for_both_runs():
    rng = np.random.default_rng(6)
    a, b = rng.random(30), rng.random(30)
    idx = np.random.default_rng(8).integers(0, 30, (400, 30))
    expected = np.quantile(a[idx].mean(1) - b[idx].mean(1), [0.025, 0.975])
    diff, low, high = paired_bootstrap_difference(a, b, n_boot=400, seed=8)
    assert diff == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    np.testing.assert_allclose([low, high], expected, rtol=0, atol=1e-14)
    assert (diff, low, high) == bootstrap_interval(a - b, n_boot=400, seed=8)


@settings(max_examples=40, deadline=None)
@given(SEEDS, st.floats(0.7, 0.99), st.integers(100, 1000))
def test_paired_interval_is_narrower_for_positively_correlated_runs(seed, rho, n):
    """Per-query values sharing a per-query difficulty (correlation rho): the paired interval is narrower
    (by about sqrt(1 - rho)) than the one from resampling each run on its own."""
    rng = np.random.default_rng(seed)
    hard = rng.standard_normal(n)
    a = np.sqrt(rho) * hard + np.sqrt(1 - rho) * rng.standard_normal(n)
    b = np.sqrt(rho) * hard + np.sqrt(1 - rho) * rng.standard_normal(n) - 0.1
    paired = paired_bootstrap_difference(a, b, seed=seed)
    means_a = bootstrap._bootstrap_means(a, 2000, np.random.default_rng([seed, 1]))
    means_b = bootstrap._bootstrap_means(b, 2000, np.random.default_rng([seed, 2]))
    low, high = np.quantile(means_a - means_b, [0.025, 0.975])
    assert width(paired) < 0.85 * (high - low)


def test_accepts_tensors_and_booleans():
    hits = torch.tensor([True, False, True, True])
    assert bootstrap_interval(hits)[0] == 0.75
    assert paired_bootstrap_difference(torch.tensor([0.5, 1.0]), np.array([0.5, 0.5]))[0] == 0.25


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("kwargs", "name"), [
    ({"n_boot": 0}, "n_boot"), ({"n_boot": -3}, "n_boot"), ({"n_boot": 2.5}, "n_boot"), ({"n_boot": True}, "n_boot"),
    ({"level": 0}, "level"), ({"level": 1}, "level"), ({"level": 95}, "level"), ({"level": -0.5}, "level"),
    ({"level": float("nan")}, "level"), ({"level": "0.95"}, "level"),
])
def test_bad_options_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        bootstrap_interval([0.1, 0.2], **kwargs)
    with pytest.raises(ValueError, match=name):
        paired_bootstrap_difference([0.1, 0.2], [0.3, 0.4], **kwargs)


@pytest.mark.parametrize(("values", "match"), [
    ([], "per_query_values is empty"), (np.zeros((2, 2)), "per_query_values must be 1-D"),
    ([0.5, np.nan], "per_query_values must be finite.*entry 1"), ([np.inf], "per_query_values must be finite"),
    (["0.5"], "per_query_values must hold real numbers"), (0.5, "per_query_values must be 1-D"),
])
def test_bad_values_name_the_argument(values, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_interval(values)


def test_paired_bad_values_name_the_argument():
    with pytest.raises(ValueError, match="values_a has 3 values but values_b has 2"):
        paired_bootstrap_difference([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="values_a is empty"):
        paired_bootstrap_difference([], [])
    with pytest.raises(ValueError, match="values_b is empty"):
        paired_bootstrap_difference([0.1], [])
    with pytest.raises(ValueError, match="values_b must be finite"):
        paired_bootstrap_difference([0.1], [np.nan])
