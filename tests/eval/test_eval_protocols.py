"""Multi-query pooling (Market-1501 MQ) and the VehicleID protocol on small synthetic cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidlib.eval import (
    VEHICLEID_TEST_SIZES,
    distance,
    evaluate,
    evaluate_multi_query,
    evaluate_vehicleid,
    pool_multi_query,
    vehicleid_split,
)


# ----------------------------------------------------------------------------- multi-query
def test_pool_multi_query_by_hand():
    qf = np.array([[0.0, 0.0], [9.0, 9.0], [5.0, 5.0]], dtype=np.float32)
    q_pids, q_cams = [1, 1, 2], [0, 1, 0]
    mq = np.array([[1.0, 0.0], [3.0, 4.0], [7.0, 1.0], [2.0, 2.0]], dtype=np.float32)
    mq_pids, mq_cams = [1, 1, 1, 3], [0, 0, 1, 0]
    mean = pool_multi_query(qf, q_pids, q_cams, mq, mq_pids, mq_cams, pool="mean")
    np.testing.assert_allclose(mean, [[2.0, 2.0], [7.0, 1.0], [5.0, 5.0]])   # id 2 absent: own feature
    mx = pool_multi_query(qf, q_pids, q_cams, mq, mq_pids, mq_cams, pool="max")
    np.testing.assert_allclose(mx, [[3.0, 4.0], [7.0, 1.0], [5.0, 5.0]])
    # Without a pool: queries of the same id and camera pool among themselves.
    own = pool_multi_query(torch.tensor([[0.0, 2.0], [4.0, 0.0], [1.0, 1.0]]), [1, 1, 1], [0, 0, 1])
    np.testing.assert_allclose(own, [[2.0, 1.0], [2.0, 1.0], [1.0, 1.0]])


def test_multi_query_helps_a_noisy_query():
    # Gallery: id 1 at (0, 0) cam 1, id 2 at (1, 0) cam 1. The query of id 1 (cam 0) is
    # noisy, nearer id 2; two more images of id 1 in cam 0 pull the pooled query back.
    gf = np.array([[0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    qf = np.array([[0.9, 0.0]], dtype=np.float32)
    mq = np.array([[0.9, 0.0], [-0.5, 0.0], [-0.4, 0.1]], dtype=np.float32)
    single = evaluate(distance(qf, gf), [1], [1, 2], [0], [1, 1])
    multi = evaluate_multi_query(qf, gf, [1], [1, 2], [0], [1, 1],
                                 mq_feats=mq, mq_pids=[1, 1, 1], mq_camids=[0, 0, 0])
    assert single["cmc"][0] == 0.0 and multi["cmc"][0] == 1.0
    pooled = pool_multi_query(qf, [1], [0], mq, [1, 1, 1], [0, 0, 0])
    same = evaluate(distance(pooled, gf, "cosine"), [1], [1, 2], [0], [1, 1])
    via = evaluate_multi_query(qf, gf, [1], [1, 2], [0], [1, 1], mq_feats=mq, mq_pids=[1, 1, 1],
                               mq_camids=[0, 0, 0], metric="cosine")
    assert same["mAP"] == via["mAP"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(pool="median"), "pool must be"),
    (dict(mq_feats=np.zeros((2, 3))), "mq_feats must be"),
    (dict(mq_feats=np.zeros((2, 2))), "needs mq_pids"),
    (dict(mq_pids=[1]), "without mq_feats"),
    (dict(mq_feats=np.zeros((2, 2)), mq_pids=[1], mq_camids=[0, 0]), "mq_pids has 1 entries"),
])
def test_pool_multi_query_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pool_multi_query(np.zeros((1, 2)), [1], [0], **kwargs)


# ----------------------------------------------------------------------------- VehicleID
def test_vehicleid_split_one_gallery_image_per_id():
    pids = np.repeat(np.arange(10, 20), [1, 2, 3, 4, 5, 6, 2, 3, 4, 5])
    q, g = vehicleid_split(pids, seed=3)
    assert np.array_equal(np.sort(pids[g]), np.arange(10, 20))        # one per id
    assert np.intersect1d(q, g).size == 0 and q.size + g.size == pids.size
    q2, g2 = vehicleid_split(pids, seed=3)
    assert np.array_equal(g, g2) and np.array_equal(q, q2)            # seeded
    draws = {tuple(vehicleid_split(pids, seed=s)[1]) for s in range(20)}
    assert len(draws) > 1                                              # random


def test_vehicleid_split_test_size_subset():
    pids = np.repeat(np.arange(50), 3)
    q, g = vehicleid_split(pids, seed=0, test_size=20)
    assert g.size == 20 and np.unique(pids[g]).size == 20 and set(pids[q]) <= set(pids[g])
    assert q.size == 40
    with pytest.raises(ValueError, match="test_size=60"):
        vehicleid_split(pids, seed=0, test_size=60)
    with pytest.raises(ValueError, match="test_size must be one of"):
        vehicleid_split(pids, seed=0, test_size="huge")
    assert VEHICLEID_TEST_SIZES == {"small": 800, "medium": 1600, "large": 2400}


def test_evaluate_vehicleid_averages_seeded_trials():
    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(30), 4)
    feats = rng.standard_normal((30, 16))[pids] + 0.7 * rng.standard_normal((pids.size, 16))
    res = evaluate_vehicleid(feats, pids, num_trials=4, seed=5)
    assert len(res["trials"]) == 4 and res["test_size"] == 30
    # trial 0 by hand: the split with seed (5, 0), then the single-query protocol, no junk
    q, g = vehicleid_split(pids, seed=(5, 0))
    t0 = evaluate(distance(feats[q], feats[g]), pids[q], pids[g], np.zeros(q.size), np.ones(g.size))
    assert res["trials"][0]["mAP"] == t0["mAP"]
    assert res["mAP"] == pytest.approx(np.mean([t["mAP"] for t in res["trials"]]))
    np.testing.assert_allclose(res["cmc"], np.mean([t["cmc"] for t in res["trials"]], axis=0))
    assert res["trials"][0]["mAP"] != res["trials"][1]["mAP"]          # different draws
    assert 0 < res["mAP"] < 1


def test_evaluate_vehicleid_perfect_features():
    pids = np.repeat(np.arange(12), 3)
    feats = np.eye(12)[pids]
    res = evaluate_vehicleid(torch.from_numpy(feats), pids, num_trials=3, test_size=8)
    assert res["mAP"] == 1.0 and res["cmc"][0] == 1.0 and res["test_size"] == 8


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_trials=0), "num_trials must be"),
    (dict(test_size=0), "test_size must be a positive integer"),
])
def test_evaluate_vehicleid_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_vehicleid(np.zeros((4, 2)), [0, 0, 1, 1], **kwargs)


def test_evaluate_vehicleid_needs_queries():
    with pytest.raises(ValueError, match="single image"):
        evaluate_vehicleid(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match="pids has 2 entries"):
        evaluate_vehicleid(np.eye(3), [0, 1])


def test_market_test_labels_load_and_name_missing_files(tmp_path):
    from conftest import realdata_path

    from reidlib.eval.protocols import load_market_test_labels

    with pytest.raises(FileNotFoundError, match=r"\['queryID.mat', 'queryCam.mat', 'testID.mat', 'testCam.mat'\] "
                                                r"not found in"):
        load_market_test_labels(tmp_path)
    q, g, qc, gc = load_market_test_labels(realdata_path("market1501_labels"))
    assert (q.size, g.size, int((g == -1).sum())) == (3368, 19732, 3819) and qc.size == q.size and gc.size == g.size
    assert load_market_test_labels(realdata_path("market1501_labels"), junk=False)[1].size == 15913
