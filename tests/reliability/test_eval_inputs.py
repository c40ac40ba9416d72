"""reidlib.eval.evaluate / evaluate_reference on the inputs of real datasets: gallery identity -1
is junk under the Market-1501 protocol (ignored by every query), and labels of the wrong dtype
(string ids such as "0001") are refused with an error naming the argument."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import reidlib.eval.metrics as metrics
from reidlib.eval import evaluate, evaluate_reference

BOTH = [evaluate, evaluate_reference]
LABELS = ["q_pids", "g_pids", "q_camids", "g_camids"]
GOOD = dict(distmat=np.zeros((2, 3)), q_pids=[1, 2], g_pids=[1, 2, 3], q_camids=[0, 0], g_camids=[1, 1, 1])


def assert_same(a: dict, b: dict, tol: float = 1e-9) -> None:
    assert a["num_valid_queries"] == b["num_valid_queries"]
    assert a["num_excluded_queries"] == b["num_excluded_queries"]
    assert abs(a["mAP"] - b["mAP"]) <= tol and abs(a["mINP"] - b["mINP"]) <= tol
    np.testing.assert_allclose(a["cmc"], b["cmc"], atol=tol, rtol=0)
    if "AP" in a and "AP" in b:
        np.testing.assert_array_equal(a["first_match_rank"], b["first_match_rank"])
        np.testing.assert_allclose(a["AP"], b["AP"], atol=tol, rtol=0)


@pytest.fixture(params=["dense", "sparse"])
def path(request, monkeypatch):
    """Run evaluate's histogram (dense) or sorted-subset (sparse) counting path."""
    monkeypatch.setattr(metrics, "_SPARSE_FRACTION", -1.0 if request.param == "dense" else 2.0)
    return request.param


# ---------------------------------------------------------------- label dtypes

def _as_strings(values) -> np.ndarray:
    return np.array([f"{v:04d}" for v in values])   # Market-style ids as file names spell them


@pytest.mark.parametrize("fn", BOTH)
@pytest.mark.parametrize("name", LABELS)
def test_string_labels_name_the_argument_and_the_dtype_expected(fn, name):
    kwargs = {**GOOD, name: _as_strings(GOOD[name])}
    with pytest.raises(ValueError) as info:
        fn(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{name} must hold integer labels (an integer dtype such as int64)")
    assert "<U4" in message and f"np.asarray({name}, dtype=np.int64)" in message
    assert "isfinite" not in message


@pytest.mark.parametrize("fn", BOTH)
@pytest.mark.parametrize("name, values, dtype", [
    ("q_pids", ["0001", "0002"], "<U4"),                     # a plain list of strings
    ("g_pids", np.array([b"1", b"2", b"3"]), "|S1"),         # bytes
    ("q_camids", np.array([1, None], dtype=object), "object"),
    ("g_camids", np.array([1 + 0j, 1, 1]), "complex128"),
])
def test_other_non_integer_dtypes_are_refused(fn, name, values, dtype):
    with pytest.raises(ValueError) as info:
        fn(**{**GOOD, name: values})
    assert f"{name} must hold integer labels" in str(info.value) and dtype in str(info.value)


def test_integer_like_labels_are_still_accepted():
    ref = evaluate(**GOOD)
    for kwargs in ({"q_pids": np.array([1.0, 2.0])}, {"g_pids": torch.tensor([1, 2, 3], dtype=torch.int32)},
                   {"g_camids": np.array([1, 1, 1], dtype=np.uint8)}):
        assert evaluate(**{**GOOD, **kwargs})["mAP"] == ref["mAP"]


# ---------------------------------------------------------------- junk identity -1, by hand

@pytest.mark.parametrize("fn", BOTH)
def test_gallery_minus_one_is_left_out_of_every_ranking(fn, path):
    # gallery: 0: junk -1 (nearest)  1: match  2: junk -1  3: other id  4: match
    dist = np.array([[0.0, 0.2, 0.3, 0.4, 0.5],
                     [0.0, 0.9, 0.1, 0.2, 0.3]])
    g_pids, g_cams = [-1, 7, -1, 8, 7], [1, 1, 2, 1, 2]
    r = fn(dist, [7, 7], g_pids, [0, 0], g_cams, max_rank=3, per_query=True)
    # query 0: junk-free list match(0.2) other(0.4) match(0.5) -> ranks 1, 3
    # query 1: junk-free list other(0.2) match(0.3) match(0.9) -> ranks 2, 3
    np.testing.assert_array_equal(r["first_match_rank"], [1, 2])
    np.testing.assert_allclose(r["AP"], [(1 / 1 + 2 / 3) / 2, (1 / 2 + 2 / 3) / 2])
    as_identity = fn(dist, [7, 7], [9, 7, 9, 8, 7], [0, 0], g_cams, max_rank=3, per_query=True)
    np.testing.assert_array_equal(as_identity["first_match_rank"], [2, 4])


@pytest.mark.parametrize("fn", BOTH)
def test_a_query_of_identity_minus_one_is_excluded(fn, path):
    r = fn(np.array([[0.1, 0.2], [0.3, 0.4]]), [-1, 5], [-1, 5], [0, 0], [1, 1])
    assert r["num_valid_queries"] == 1 and r["num_excluded_queries"] == 1


@pytest.mark.parametrize("fn", BOTH)
def test_an_all_junk_gallery_names_g_pids(fn):
    with pytest.raises(ValueError) as info:
        fn(np.zeros((2, 3)), [1, 2], [-1, -1, -1], [0, 0], [1, 1, 1])
    assert str(info.value).startswith("g_pids: all 3 gallery items have identity -1")


@pytest.mark.parametrize("fn", BOTH)
def test_a_nan_in_a_junk_column_is_still_an_error(fn):
    """Junk columns are dropped after the finiteness check: a NaN anywhere is reported, by both."""
    dist = np.array([[0.1, np.nan, 0.3], [0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match=r"row 0 .* nan") as info:
        fn(dist, [1, 2], [1, -1, 2], [0, 0], [1, 1, 1])
    assert "distmat must be finite" in str(info.value)


@pytest.mark.parametrize("chunk", [1, 3, None])
def test_fast_equals_reference_with_junk_on_random_problems(path, chunk):
    rng = np.random.default_rng(5)
    for _ in range(30):
        nq, ng = rng.integers(1, 8), rng.integers(2, 60)
        qp, gp = rng.integers(0, 4, nq), rng.integers(-1, 4, ng)    # about a fifth of the gallery is -1
        qc, gc = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
        dist = rng.integers(0, 4, (nq, ng)).astype(np.float32)      # many ties
        keep = gp != -1
        if not keep.any() or not ((qp[:, None] == gp[keep]) & (qc[:, None] != gc[keep])).any():
            continue
        ref = evaluate_reference(dist, qp, gp, qc, gc, max_rank=10, per_query=True)
        assert_same(evaluate(dist, qp, gp, qc, gc, max_rank=10, per_query=True, chunk_size=chunk), ref)
        removed = evaluate_reference(dist[:, keep], qp, gp[keep], qc, gc[keep], max_rank=10, per_query=True)
        assert_same(ref, removed)


# ---------------------------------------------------------------- junk identity -1, real Market-1501 labels

@pytest.fixture(scope="module")
def market_test_labels(realdata):
    """The real Market-1501 query and gallery labels, junk (-1) included."""
    from reidlib.eval.protocols import load_market_test_labels

    root = realdata / "market1501_labels"
    if not root.is_dir():
        pytest.skip(f"real data not available: {root} (see ../shared/realdata/README.md)")
    return load_market_test_labels(root)


@pytest.fixture(scope="module")
def market_problem(market_test_labels):
    """200 random real queries against the whole real gallery (19,732 items, junk included), with
    model-like distances (matches nearer) and the junk items placed among the nearest: where they
    count, they would push the matches down."""
    q_pids, g_pids, q_cams, g_cams = market_test_labels
    rng = np.random.default_rng(0)
    sub = rng.choice(q_pids.size, 200, replace=False)
    qp, qc = q_pids[sub], q_cams[sub]
    centres = rng.standard_normal((int(g_pids.max()) + 2, 16))
    qf = centres[qp] + 0.7 * rng.standard_normal((sub.size, 16))
    gf = centres[g_pids] + 0.7 * rng.standard_normal((g_pids.size, 16))
    dist = torch.cdist(torch.from_numpy(qf), torch.from_numpy(gf)).numpy().astype(np.float32)
    junk = g_pids == -1
    dist[:, junk] = rng.uniform(0, 0.5, (sub.size, int(junk.sum())))
    return dist, qp, g_pids, qc, g_cams


def test_real_market_gallery_holds_the_junk_items(market_test_labels):
    _, g_pids, _, _ = market_test_labels
    assert g_pids.size == 19732 and int((g_pids == -1).sum()) == 3819


@pytest.mark.parametrize("fn", BOTH)
def test_market_junk_present_equals_junk_removed(market_problem, fn, path):
    dist, qp, gp, qc, gc = market_problem
    keep = gp != -1
    with_junk = fn(dist, qp, gp, qc, gc, per_query=True)
    removed = fn(np.ascontiguousarray(dist[:, keep]), qp, gp[keep], qc, gc[keep], per_query=True)
    assert_same(with_junk, removed)
    assert with_junk["num_valid_queries"] == 200
    # the same numbers as treating -1 as one more identity would NOT give: junk nearest to every query
    as_identity = fn(dist, qp, np.where(gp == -1, gp.max() + 1, gp), qc, gc)
    assert as_identity["mAP"] < with_junk["mAP"] - 0.05
    assert as_identity["cmc"][0] < with_junk["cmc"][0]


def test_market_fast_equals_reference_with_junk(market_problem, path):
    dist, qp, gp, qc, gc = market_problem
    ref = evaluate_reference(dist, qp, gp, qc, gc, per_query=True)
    assert_same(evaluate(dist, qp, gp, qc, gc, per_query=True, chunk_size=64), ref)
    assert_same(evaluate(torch.from_numpy(dist), qp, gp, qc, gc, per_query=True), ref)


def test_market_string_ids_as_read_from_file_names_are_refused(market_test_labels):
    """Ids parsed from file names ("0001_c1s1_...") stay strings unless converted."""
    q_pids, g_pids, q_cams, g_cams = market_test_labels
    names = np.array([f"{p:04d}" for p in q_pids[:5]])
    with pytest.raises(ValueError) as info:
        evaluate(np.zeros((5, g_pids.size)), names, g_pids, q_cams[:5], g_cams)
    assert "q_pids must hold integer labels" in str(info.value) and "np.asarray(q_pids, dtype=np.int64)" in str(info.value)
