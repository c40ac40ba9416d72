"""reidlib.eval.rerank: QE + DBA of Almazán et al. (2018, footnote 2) against a dense numpy reference,
chunking, the linear-operator form, the tie rule, the exact bf16 filter, properties, bad input, evaluation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.eval import (
    average_query_expansion,
    database_augmentation,
    distance,
    evaluate,
    nearest_neighbours,
    qe_dba,
    rerank,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def unit(rng: np.random.Generator, n: int, d: int, dtype=np.float32) -> np.ndarray:
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def ranked(sims: np.ndarray) -> np.ndarray:
    """Each row's columns by similarity, highest first, equal values by lower index (a stable sort)."""
    return np.argsort(-sims, axis=1, kind="stable")


def reference_qe_dba(q: np.ndarray, g: np.ndarray, qe_k: int, dba_k: int) -> np.ndarray:
    """Footnote 2 read as the module does, written out densely in float64 with argsort."""
    q, g = q.astype(np.float64), g.astype(np.float64)
    if dba_k:
        sims = g @ g.T
        np.fill_diagonal(sims, -np.inf)                 # d_i counts once, as itself
        others = ranked(sims)[:, : dba_k - 1]
        g_aug = normalize(g + g[others].sum(1))
    else:
        g_aug = g
    if qe_k:
        near = ranked(q @ g_aug.T)[:, :qe_k]
        q_aug = normalize(q + g_aug[near].sum(1))
    else:
        q_aug = q
    return q_aug @ g_aug.T


@pytest.fixture
def prefilter(monkeypatch):
    """Force the bf16 filter on (True) or off (False) for the neighbour searches of a test."""
    def force(on: bool) -> None:
        monkeypatch.setattr(rerank, "_PREFILTER", on)
    return force


# --------------------------------------------------------------------------- against the reference
@pytest.mark.parametrize("qe_k, dba_k", [(5, 10), (0, 0), (5, 0), (0, 10), (1, 1), (3, 7), (61, 61)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_dense_reference(qe_k, dba_k, dtype):
    rng = np.random.default_rng(qe_k * 100 + dba_k)
    q, g = unit(rng, 37, 24, dtype), unit(rng, 61, 24, dtype)
    ref = reference_qe_dba(q, g, qe_k, dba_k)
    whole = qe_dba(q, g, qe_k=qe_k, dba_k=dba_k)
    assert whole.shape == (37, 61) and whole.dtype == torch.from_numpy(q).dtype
    np.testing.assert_allclose(whole.numpy(), ref, atol=1e-6 if dtype == np.float32 else 1e-12)
    for chunk in (1, 7, 13, 36):                      # none divides 37 or 61
        np.testing.assert_allclose(qe_dba(q, g, qe_k=qe_k, dba_k=dba_k, chunk_size=chunk).numpy(),
                                   whole.numpy(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("on", [False, True])
def test_filter_on_and_off_match_reference(prefilter, on):
    """The bf16 filter (forced on a problem small enough to check) changes no neighbour set."""
    prefilter(on)
    rng = np.random.default_rng(3)
    q, g = unit(rng, 45, 48), unit(rng, 230, 48)
    for chunk in (None, 17, 64):
        np.testing.assert_allclose(qe_dba(q, g, chunk_size=chunk).numpy(), reference_qe_dba(q, g, 5, 10), atol=1e-6)


def test_both_ks_zero_is_the_plain_dot_product():
    rng = np.random.default_rng(1)
    q, g = unit(rng, 19, 16), unit(rng, 33, 16)
    qt, gt = torch.from_numpy(q), torch.from_numpy(g)
    plain = qe_dba(q, g, qe_k=0, dba_k=0)
    np.testing.assert_allclose(plain.numpy(), (qt @ gt.T).numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(plain.numpy(), q.astype(np.float64) @ g.astype(np.float64).T, atol=1e-6)
    dist = qe_dba(q, g, qe_k=0, dba_k=0, return_="distance")
    np.testing.assert_allclose(dist.numpy(), 1 - plain.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(dist.numpy(), distance(q, g, "cosine"), atol=1e-6)
    # k = 0 returns the side unexpanded (re-normalised: an ulp at most for unit rows)
    np.testing.assert_allclose(database_augmentation(g, 0).numpy(), g, rtol=0, atol=1e-7)
    np.testing.assert_allclose(average_query_expansion(q, g, 0).numpy(), q, rtol=0, atol=1e-7)


def test_two_part_computation_equals_qe_dba():
    """DBA is per gallery: computed once and reused, it gives qe_dba's numbers."""
    rng = np.random.default_rng(2)
    q, g = unit(rng, 23, 20), unit(rng, 80, 20)
    g_aug = database_augmentation(g, 10)
    split = average_query_expansion(q, g_aug, 5) @ g_aug.T
    np.testing.assert_allclose(qe_dba(q, g).numpy(), split.numpy(), rtol=0, atol=1e-6)


def test_numpy_torch_dtypes_and_promotion():
    rng = np.random.default_rng(4)
    q, g = unit(rng, 12, 16, np.float64), unit(rng, 40, 16, np.float64)
    ref = qe_dba(q, g)
    assert ref.dtype == torch.float64
    for a, b, dtype in [(torch.from_numpy(q), torch.from_numpy(g), torch.float64),
                        (q.astype(np.float32), g.astype(np.float32), torch.float32),
                        (torch.from_numpy(q).float(), g, torch.float64)]:      # mixed: promoted
        out = qe_dba(a, b)
        assert out.dtype == dtype
        np.testing.assert_allclose(out.double().numpy(), ref.numpy(), atol=1e-5)
    ro = g.copy()
    ro.flags.writeable = False                         # read-only inputs are fine: they are never written
    np.testing.assert_allclose(qe_dba(q, ro).numpy(), ref.numpy(), atol=0)


# --------------------------------------------------------------------------- linear operator
@pytest.mark.parametrize("include", [True, False])
def test_dba_and_qe_are_a_neighbour_matrix_times_the_descriptors(include):
    """For fixed neighbour sets, the un-normalised expanded descriptors are A @ D, A a 0/1 matrix."""
    rng = np.random.default_rng(5)
    q, g = unit(rng, 14, 12, np.float64), unit(rng, 50, 12, np.float64)
    k = 6
    others = nearest_neighbours(g, g, k - 1 if include else k, exclude_self=True).numpy()
    a = np.zeros((50, 50))
    a[np.arange(50)[:, None], others] = 1
    if include:
        a[np.arange(50), np.arange(50)] = 1
    assert set(np.unique(a)) == {0.0, 1.0} and np.all(a.sum(1) == k)
    summed = a @ g                                     # the un-normalised DBA descriptors
    g_aug = database_augmentation(g, k, include_self=include).numpy()
    np.testing.assert_allclose(g_aug * np.linalg.norm(summed, axis=1, keepdims=True), summed, atol=1e-12)

    near = nearest_neighbours(q, g_aug, 4).numpy()
    b = np.zeros((14, 50))
    b[np.arange(14)[:, None], near] = 1
    summed_q = (q if include else 0) + b @ g_aug      # [I | B] @ [q; g~]: again linear for fixed sets
    q_aug = average_query_expansion(q, g_aug, 4, include_query=include).numpy()
    np.testing.assert_allclose(q_aug * np.linalg.norm(summed_q, axis=1, keepdims=True), summed_q, atol=1e-12)
    if include:
        np.testing.assert_allclose(qe_dba(q, g, qe_k=4, dba_k=k).numpy(), normalize(summed_q) @ normalize(summed).T,
                                   atol=1e-12)


# --------------------------------------------------------------------------- ties
def quarter_rows(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    """Rows of +-1/4 (unit norm for d = 16): every dot product is a multiple of 1/16 and exact in
    any summation order, so equal similarities are equal numbers whatever computes them."""
    return np.where(rng.random((n, d)) < 0.5, -0.25, 0.25)


def duplicated_gallery(rng: np.random.Generator, distinct: int, n: int) -> np.ndarray:
    """n rows drawn (with repeats, at scattered indices) from `distinct` +-1/4 patterns."""
    return quarter_rows(rng, distinct)[rng.integers(0, distinct, n)]


@pytest.mark.parametrize("on", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_rank_the_lower_gallery_index_first(prefilter, on, dtype):
    prefilter(on)
    rng = np.random.default_rng(6)
    g = duplicated_gallery(rng, 6, 90).astype(dtype)
    q = np.concatenate([g[:5], quarter_rows(rng, 5)]).astype(dtype)
    want = ranked(q.astype(np.float64) @ g.astype(np.float64).T)
    for k in (1, 4, 17, 40):
        for chunk in (None, 3, 7):
            got = nearest_neighbours(q, g, k, chunk_size=chunk).numpy()
            np.testing.assert_array_equal(got, want[:, :k])


@pytest.mark.parametrize("on", [False, True])
def test_dba_counts_the_item_itself_and_then_its_lowest_indexed_duplicates(prefilter, on):
    """Duplicates tie with an item at similarity 1; include_self keeps the item, then the lower indices."""
    prefilter(on)
    rng = np.random.default_rng(7)
    g = quarter_rows(rng, 60)
    copies = [2, 5, 9, 11, 20, 33, 41]
    g[copies] = g[copies[0]]
    others = nearest_neighbours(g, g, 2, exclude_self=True, chunk_size=8).numpy()
    for i in copies:
        assert others[i].tolist() == [c for c in copies if c != i][:2]
    sims = g @ g.T
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_array_equal(nearest_neighbours(g, g, 30, exclude_self=True).numpy(), ranked(sims)[:, :30])
    aug = database_augmentation(g, 3).numpy()
    np.testing.assert_allclose(aug[copies], g[copies], atol=1e-7)     # the mean of copies is the copy


def test_sums_depend_on_the_neighbour_set_only():
    """The same set in another order gives bit-identical sums (they run in index order)."""
    rng = np.random.default_rng(8)
    g = torch.from_numpy(unit(rng, 30, 8))
    idx = torch.from_numpy(rng.permutation(30)[:20].reshape(4, 5))
    a = rerank._sum_rows(g, idx, None, 2)
    b = rerank._sum_rows(g, idx.flip(1), None, 3)
    assert torch.equal(a, b)


# --------------------------------------------------------------------------- the exact bf16 filter
def test_filter_proves_or_falls_back_on_near_duplicates(prefilter, monkeypatch):
    """Clusters tighter than the bf16 error: the filter's first candidates cannot be proven; the
    second try (more candidates) settles small clusters, the dense search the large one."""
    rng = np.random.default_rng(9)
    centres = unit(rng, 4, 32, np.float64)
    # the first try takes 33 candidates, the second 4 x 33: the cluster of 60 needs the second,
    # the cluster of 150 the dense search
    sizes = [3, 8, 60, 150]
    g = np.concatenate([c + 1e-4 * rng.standard_normal((n, 32)) for c, n in zip(centres, sizes)])
    g = np.concatenate([normalize(g), unit(rng, 200, 32, np.float64)])
    calls = []
    dense = rerank._neighbours_dense
    monkeypatch.setattr(rerank, "_neighbours_dense", lambda *a: calls.append(set(a[-1].tolist())) or dense(*a))
    prefilter(True)
    # float64: the clusters' similarities are 1e-8 apart, far above float64 rounding, so the reference
    # is unambiguous (in float32 they would be ulp-level ties, which any two computations may order apart)
    got = nearest_neighbours(g, g, 9, exclude_self=True, chunk_size=64)
    starts = np.cumsum([0] + sizes)
    # the large cluster's rows went dense (with a few outsiders whose nearest are in it); the cluster of 60 did not
    assert len(calls) == 1 and set(range(starts[3], starts[4])) <= calls[0]
    assert not calls[0] & set(range(starts[2], starts[3])) and len(calls[0]) < len(g)
    sims = g @ g.T
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_array_equal(got.numpy(), ranked(sims)[:, :9])
    q = g[::5]
    np.testing.assert_array_equal(nearest_neighbours(q, g, 5).numpy(), ranked(q @ g.T)[:, :5])


@pytest.mark.parametrize("block", [5, 64, 1000])
def test_symmetric_candidate_search_sees_every_pair(block):
    """The upper triangle of blocks, each used for its rows and (transposed) its columns, gives each
    row the same best bf16 similarities as the full matrix."""
    rng = np.random.default_rng(11)
    gb = torch.from_numpy(unit(rng, 203, 16)).bfloat16()
    full = (gb @ gb.T).float()
    full.fill_diagonal_(-torch.inf)
    v, i = rerank._candidates_within(gb, 12, block)
    assert torch.equal(v.float(), torch.topk(full, 12, dim=1).values)
    assert torch.equal(full.gather(1, i), v.float())     # the indices carry those values
    assert not bool((i == torch.arange(203)[:, None]).any())


def test_filter_in_automatic_mode_matches_the_dense_search(prefilter):
    """A problem large enough for the automatic choice (where the CPU has fast bf16), default blocks."""
    rng = np.random.default_rng(12)
    g = unit(rng, 2500, 512)
    q = unit(rng, 300, 512)
    auto = database_augmentation(g), nearest_neighbours(q, g, 5)
    prefilter(False)
    dense = database_augmentation(g), nearest_neighbours(q, g, 5)
    np.testing.assert_allclose(auto[0].numpy(), dense[0].numpy(), rtol=0, atol=1e-6)
    assert torch.equal(auto[1], dense[1])


def test_filter_is_automatic_only_on_large_cpu_problems():
    x = torch.nn.functional.normalize(torch.randn(50, 8), dim=1)
    assert not rerank._prefilter_wanted(x, x, 9, True)          # small: the dense search
    big = torch.nn.functional.normalize(torch.randn(8000, 512), dim=1)
    assert rerank._prefilter_wanted(big, big, 9, True) == rerank._bf16_fast()
    assert not rerank._prefilter_wanted(big, big[:30], 9, False)   # 33 candidates of 30: no filter to speak of


# --------------------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 15), st.integers(1, 6), st.integers(0, 2 ** 32 - 1),
       st.data())
def test_unit_rows_and_similarity_range(nq, ng, dim, seed, data):
    rng = np.random.default_rng(seed)
    q, g = unit(rng, nq, dim), unit(rng, ng, dim)
    qe_k, dba_k = data.draw(st.integers(0, ng)), data.draw(st.integers(0, ng))
    chunk = data.draw(st.none() | st.integers(1, 5))
    s = qe_dba(q, g, qe_k=qe_k, dba_k=dba_k, chunk_size=chunk)
    assert s.shape == (nq, ng) and bool(torch.isfinite(s).all())
    assert float(s.abs().max()) <= 1 + 1e-6
    d = qe_dba(q, g, qe_k=qe_k, dba_k=dba_k, chunk_size=chunk, return_="distance")
    assert float(d.min()) >= -1e-6 and float(d.max()) <= 2 + 1e-6
    for aug in (database_augmentation(g, dba_k, chunk_size=chunk), average_query_expansion(q, g, qe_k, chunk_size=chunk)):
        norms = torch.linalg.vector_norm(aug, dim=1)
        # unit rows, or zero where the summed neighbours cancel exactly (e.g. d and -d in 1-D)
        assert bool(((norms - 1).abs() <= 1e-5).logical_or(norms == 0).all())


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70), st.integers(1, 6), st.integers(0, 2 ** 32 - 1), st.booleans(), st.data())
def test_tie_rule_on_exact_similarities(ng, distinct, seed, exclude_self, data):
    """With exact arithmetic (+-1/4 rows) every search, dense or filtered, chunked or not, equals a
    stable argsort of the row."""
    rng = np.random.default_rng(seed)
    g = duplicated_gallery(rng, distinct, ng)
    q = g if exclude_self else quarter_rows(rng, 6)
    limit = ng - 1 if exclude_self else ng
    if limit < 1:
        return
    k = data.draw(st.integers(1, limit))
    chunk = data.draw(st.none() | st.integers(1, 9))
    sims = q @ g.T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    want = ranked(sims)[:, :k]
    for on in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(rerank, "_PREFILTER", on)
            mp.setattr(rerank, "_CANDIDATES_EXTRA", 1)      # so that the filter runs on these small galleries
            got = nearest_neighbours(q, g, k, exclude_self=exclude_self, chunk_size=chunk).numpy()
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- bad input
def _q_g():
    rng = np.random.default_rng(10)
    return unit(rng, 4, 8), unit(rng, 12, 8)


BAD_CALLS = [
    # (call, words the message must contain)
    (lambda q, g: qe_dba(q[0], g), ["query", "2-D"]),
    (lambda q, g: qe_dba(q, g[None]), ["gallery", "2-D"]),
    (lambda q, g: qe_dba(q, g[:, :5]), ["query", "gallery", "feature dimension"]),
    (lambda q, g: qe_dba(q, g[:0]), ["gallery", "empty"]),
    (lambda q, g: qe_dba(q.astype(np.int64), g), ["query", "float32 or float64"]),
    (lambda q, g: qe_dba(torch.from_numpy(q).half(), g), ["query", "float32 or float64"]),
    (lambda q, g: qe_dba(q, g, qe_k=-1), ["qe_k", "non-negative integer"]),
    (lambda q, g: qe_dba(q, g, dba_k=-2), ["dba_k", "non-negative integer"]),
    (lambda q, g: qe_dba(q, g, qe_k=2.0), ["qe_k", "integer"]),
    (lambda q, g: qe_dba(q, g, dba_k="10"), ["dba_k", "integer"]),
    (lambda q, g: qe_dba(q, g, dba_k=True), ["dba_k", "integer"]),
    (lambda q, g: qe_dba(q, g, qe_k=13), ["qe_k", "at most the gallery size G (12)"]),
    (lambda q, g: qe_dba(q, g, dba_k=13), ["dba_k", "at most the gallery size G (12)"]),
    (lambda q, g: database_augmentation(g, 13), ["k", "at most the gallery size G (12)"]),
    (lambda q, g: database_augmentation(g, 12, include_self=False), ["k", "G - 1 (11)"]),
    (lambda q, g: database_augmentation(g, -1), ["k", "non-negative"]),
    (lambda q, g: average_query_expansion(q, g, 13), ["k", "at most the gallery size G (12)"]),
    (lambda q, g: average_query_expansion(q, g, 1.5), ["k", "integer"]),
    (lambda q, g: nearest_neighbours(q, g, 0), ["k", "at least 1"]),
    (lambda q, g: nearest_neighbours(q, g, 3, exclude_self=True), ["exclude_self", "gallery itself"]),
    (lambda q, g: nearest_neighbours(g, g, 12, exclude_self=True), ["k", "other gallery items"]),
    (lambda q, g: qe_dba(np.where(np.arange(8) == 3, np.nan, q), g), ["query", "NaN or inf", "row 0"]),
    (lambda q, g: qe_dba(q, np.concatenate([g[:5], np.full((1, 8), np.inf, np.float32), g[5:]])),
     ["gallery", "NaN or inf", "row 5"]),
    (lambda q, g: qe_dba(q, np.concatenate([g, np.zeros((1, 8), np.float32)])), ["gallery", "row 12", "norm 0"]),
    (lambda q, g: database_augmentation(np.concatenate([g[:3], 1e-13 * g[3:4]])), ["gallery", "row 3", "below 1e-12"]),
    (lambda q, g: nearest_neighbours(0 * q, g, 2), ["query", "row 0", "norm 0"]),
    (lambda q, g: qe_dba(q, g, return_="dist"), ["return_", "'similarity' or 'distance'"]),
    (lambda q, g: qe_dba(q, g, chunk_size=0), ["chunk_size", "positive integer"]),
]


@pytest.mark.parametrize("call, words", BAD_CALLS)
def test_bad_input_names_the_parameter(call, words):
    q, g = _q_g()
    with pytest.raises(ValueError) as info:
        call(q, g)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_rows_are_normalised_on_entry():
    """Only directions count: scaled rows, flip-averaged ones (norm < 1), huge ones give the unit rows' result."""
    rng = np.random.default_rng(13)
    q, g = unit(rng, 9, 16), unit(rng, 40, 16)
    ref = qe_dba(q, g).numpy()
    scales = rng.uniform(0.2, 5.0, (40, 1)).astype(np.float32)
    np.testing.assert_allclose(qe_dba(2.5 * q, scales * g).numpy(), ref, atol=1e-6)
    mirrored = normalize(g + 0.5 * unit(rng, 40, 16)).astype(np.float32)
    averaged = (g + mirrored) / 2                       # as extract_features' flip averaging: norm below 1
    assert np.linalg.norm(averaged, axis=1).max() < 0.999
    np.testing.assert_allclose(qe_dba(q, averaged).numpy(), qe_dba(q, normalize(averaged)).numpy(), atol=1e-6)
    huge = np.float32(1e30) * g                         # its squares overflow float32: scaled first
    np.testing.assert_allclose(qe_dba(q, huge).numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(database_augmentation(huge).numpy(), database_augmentation(g).numpy(), atol=1e-6)


# --------------------------------------------------------------------------- evaluation
def clustered_problem(seed: int, n_ids: int = 12, per_id: int = 12, per_query: int = 2, dim: int = 64,
                      sigma: float = 1.6, distractors: int = 40):
    """A few identities: descriptors are noisy copies of an identity centre; queries from camera 0,
    gallery from cameras 1-2 (so every same-identity gallery item is a match), plus distractors."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, dim))

    def descriptors(pids):
        return normalize(centres[pids] + sigma * rng.standard_normal((pids.size, dim))).astype(np.float32)

    g_pids = np.repeat(np.arange(n_ids), per_id)
    g_cams = 1 + np.arange(g_pids.size) % 2
    q_pids = np.repeat(np.arange(n_ids), per_query)
    gallery = np.concatenate([descriptors(g_pids), unit(rng, distractors, dim)])
    g_pids = np.concatenate([g_pids, 100 + np.arange(distractors)])
    g_cams = np.concatenate([g_cams, np.ones(distractors, np.int64)])
    return descriptors(q_pids), gallery, q_pids, g_pids, np.zeros_like(q_pids), g_cams


def test_reranked_distance_plugs_into_evaluate_and_does_not_lower_map():
    q, g, q_pids, g_pids, q_cams, g_cams = clustered_problem(seed=0)
    base = evaluate(distance(q, g, "cosine"), q_pids, g_pids, q_cams, g_cams)
    plain = evaluate(qe_dba(q, g, qe_k=0, dba_k=0, return_="distance"), q_pids, g_pids, q_cams, g_cams)
    assert plain["mAP"] == pytest.approx(base["mAP"], abs=1e-9)
    reranked = evaluate(qe_dba(q, g, return_="distance"), q_pids, g_pids, q_cams, g_cams)
    assert 0.5 < base["mAP"] < 0.9                      # a problem with room to improve
    assert reranked["mAP"] >= base["mAP"]
    assert reranked["cmc"][0] >= base["cmc"][0]
    for side in ({"qe_k": 5, "dba_k": 0}, {"qe_k": 0, "dba_k": 10}):   # each half alone, too
        assert evaluate(qe_dba(q, g, return_="distance", **side), q_pids, g_pids, q_cams, g_cams)["mAP"] >= base["mAP"]
