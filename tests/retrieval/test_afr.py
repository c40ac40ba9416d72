"""AFR: the time-budget window, the two-stage search, the full ranked list and its evaluation."""
import numpy as np
import pytest

from reidlib.eval import evaluate, evaluate_ranking
from reidlib.retrieval import AFRIndex, HammingIndex, afr_ranking, afr_window, hamming_distances, pack_codes


def test_afr_window_is_the_papers_761():
    assert afr_window(128, 30, 15_912, 2048) == pytest.approx(761.4140625, abs=0)
    # equal cost: b N = A N + L w
    w = afr_window(512, 30, 15_912, 2048)
    assert 512 * 15_912 == pytest.approx(30 * 15_912 + 2048 * w)


@pytest.mark.parametrize("args, match", [((30, 30, 100, 2048), "b > A"), ((128, 0, 100, 2048), "A must be"),
                                         ((128, 30, -1, 2048), "N must be"), ((128, 30, 100, True), "L must be")])
def test_afr_window_checks(args, match):
    with pytest.raises(ValueError, match=match):
        afr_window(*args)


def _gallery(rng, n=600, a_bits=12, id_bits=64):
    attrs = np.where(rng.random((n, a_bits)) > 0.5, 1, -1)
    ids = np.where(rng.random((n, id_bits)) > 0.5, 1, -1)
    return attrs, ids


@pytest.mark.parametrize("heap_max_w", [2048, 40, 0])
def test_afr_search_is_the_head_of_the_full_ranking(heap_max_w):
    rng = np.random.default_rng(0)
    attrs, ids = _gallery(rng)
    qa, qi = attrs[:30], ids[:30]
    index = AFRIndex(pack_codes(attrs), pack_codes(ids))
    index.heap_max_w = heap_max_w          # both stage-1 selections
    da = hamming_distances(pack_codes(qa), pack_codes(attrs))
    di = hamming_distances(pack_codes(qi), pack_codes(ids))
    for w in (1, 50, 333, 600):
        ranking = afr_ranking(da, di, w)
        for k in (1, min(w, 20), w):
            dist, idx = index.search(pack_codes(qa), pack_codes(qi), w, k)
            assert np.array_equal(idx, ranking[:, :k])
            assert np.array_equal(dist, np.take_along_axis(di, idx, 1))


def test_afr_ranking_follows_its_stated_rules():
    rng = np.random.default_rng(1)
    attrs, ids = _gallery(rng, n=300, a_bits=6)
    da = hamming_distances(pack_codes(attrs[:10]), pack_codes(attrs))
    di = hamming_distances(pack_codes(ids[:10]), pack_codes(ids))
    w = 77
    ranking = afr_ranking(da, di, w)
    for q in range(10):
        stage1 = sorted(range(300), key=lambda g: (da[q, g], g))[:w]     # cut at exactly w, ties by index
        rest = sorted(set(range(300)) - set(stage1), key=lambda g: (da[q, g], di[q, g], g))
        assert ranking[q].tolist() == sorted(stage1, key=lambda g: (di[q, g], g)) + rest


def test_afr_with_the_whole_gallery_is_plain_retrieval():
    rng = np.random.default_rng(2)
    attrs, ids = _gallery(rng, n=400)
    da = hamming_distances(pack_codes(attrs[:25]), pack_codes(attrs))
    di = hamming_distances(pack_codes(ids[:25]), pack_codes(ids))
    assert np.array_equal(afr_ranking(da, di, 400), np.argsort(di, axis=1, kind="stable"))
    _, plain = HammingIndex(pack_codes(ids)).search(pack_codes(ids[:25]), 400)
    _, afr = AFRIndex(pack_codes(attrs), pack_codes(ids)).search(pack_codes(attrs[:25]), pack_codes(ids[:25]), 400, 400)
    assert np.array_equal(afr, plain)


def test_afr_inputs_are_checked():
    rng = np.random.default_rng(3)
    attrs, ids = _gallery(rng, n=50)
    index = AFRIndex(pack_codes(attrs), pack_codes(ids))
    with pytest.raises(ValueError, match=r"w must be an integer in \[1, 50\]"):
        index.search(pack_codes(attrs[:2]), pack_codes(ids[:2]), 51, 1)
    with pytest.raises(ValueError, match="k \\(at most w\\)"):
        index.search(pack_codes(attrs[:2]), pack_codes(ids[:2]), 5, 6)
    with pytest.raises(ValueError, match="id_queries holds codes of 16 bytes"):
        index.search(pack_codes(attrs[:2]), pack_codes(np.ones((2, 128))), 5, 2)
    with pytest.raises(ValueError, match="id_codes has 49"):
        AFRIndex(pack_codes(attrs), pack_codes(ids[:49]))
    with pytest.raises(ValueError, match="one shape"):
        afr_ranking(np.zeros((2, 5), int), np.zeros((2, 6), int), 2)
    with pytest.raises(ValueError, match="non-negative integer"):
        afr_ranking(np.zeros((2, 5)), np.zeros((2, 5), int), 2)


def _labels(rng, nq, ng, ids=40):
    return (rng.integers(0, ids, nq), rng.integers(-1, ids, ng), rng.integers(0, 3, nq), rng.integers(0, 3, ng))


def test_evaluate_ranking_equals_evaluate_on_a_full_sort():
    rng = np.random.default_rng(4)
    labels = _labels(rng, 60, 500)
    dist = rng.integers(0, 30, (60, 500)).astype(np.float64)       # integer distances: many ties
    ranking = np.argsort(dist, axis=1, kind="stable")
    a = evaluate(dist, *labels, per_query=True)
    b = evaluate_ranking(ranking, *labels, per_query=True, chunk_size=7)
    assert a["mAP"] == pytest.approx(b["mAP"], abs=1e-12) and a["mINP"] == pytest.approx(b["mINP"], abs=1e-12)
    assert np.array_equal(a["cmc"], b["cmc"]) and np.array_equal(a["valid"], b["valid"])
    assert np.array_equal(a["first_match_rank"], b["first_match_rank"])


def test_evaluate_ranking_with_depth_by_hand():
    # one query (id 1, camera 0); list: junk(same cam), hit, miss, hit, miss, hit
    g_pids = np.array([1, 1, 2, 1, 3, 1])
    g_cams = np.array([0, 1, 1, 1, 1, 1])
    ranking = np.arange(6)[None, :]
    full = evaluate_ranking(ranking, [1], g_pids, [0], g_cams, max_rank=5, per_query=True)
    assert full["mAP"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3)
    assert full["mINP"] == pytest.approx(3 / 5)
    cut = evaluate_ranking(ranking, [1], g_pids, [0], g_cams, depth=4, max_rank=5, per_query=True)
    assert cut["mAP"] == pytest.approx((1 / 1 + 2 / 3) / 3)       # divided by all 3 matches
    assert cut["mINP"] == 0.0                                       # the hardest match was not retrieved
    miss = evaluate_ranking(np.array([[0, 2, 4, 1, 3, 5]]), [1], g_pids, [0], g_cams, depth=3, max_rank=5,
                            per_query=True)
    assert miss["mAP"] == 0.0 and miss["cmc"].tolist() == [0.0] * 5 and miss["first_match_rank"][0] == 7


def test_evaluate_ranking_checks_its_lists():
    labels = ([1], [1, 2, 1], [0], [1, 1, 1])
    with pytest.raises(ValueError, match="row 0 is not a permutation"):
        evaluate_ranking(np.array([[0, 0, 1]]), *labels)
    with pytest.raises(ValueError, match="row 0 is not a permutation"):
        evaluate_ranking(np.array([[0, 1, 3]]), *labels)
    with pytest.raises(ValueError, match="integer array"):
        evaluate_ranking(np.array([[0.0, 1.0, 2.0]]), *labels)
    with pytest.raises(ValueError, match="depth"):
        evaluate_ranking(np.array([[0, 1, 2]]), *labels, depth=0)
    with pytest.raises(ValueError, match="g_pids has 2 entries"):
        evaluate_ranking(np.array([[0, 1, 2]]), [1], [1, 2], [0], [1, 1, 1])
