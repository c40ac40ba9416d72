"""Records -> tables and claims, shared by the results pages: the verdict rule of the book."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reidlib.papers.results import difference_interval, judge_claims, paper_beside_ours


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "seed": s, "mAP": m} for v, ms in values.items() for s, m in enumerate(ms)])


def test_interval_is_welchs_t():
    a, b = np.array([60.0, 62.0, 61.0, 63.0]), np.array([55.0, 58.0, 56.0])
    diff, low, high = difference_interval(a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert diff == pytest.approx(a.mean() - b.mean()) and (low, high) == pytest.approx((ci.low, ci.high))


def test_verdicts_follow_the_rules():
    runs = _runs({"a": [60, 61, 62], "b": [50, 51, 52], "c": [60, 70, 50], "d": [80], "e": [40, 41, 39]})
    claims = judge_claims([("a beats b", "a", "b"), ("a beats c", "a", "c"), ("d beats b", "d", "b"),
                           ("e beats a", "e", "a"), ("x beats a", "x", "a")], runs)
    assert claims.verdict.tolist() == ["held (seeds only)", "undecided (seeds only)", "undecided (< 3 seeds)",
                                       "did not hold (seeds only)", "no run"]
    assert claims.loc["d beats b", "difference"] == pytest.approx(29.0)  # shown, but one seed decides nothing
    assert claims.loc["a beats b", "seeds"] == "3 / 3"


def test_paper_row_beside_ours_with_aliases():
    paper = pd.DataFrame({"mAP": [80.0, 85.0, 88.0]}, index=["Base", "X", "Y"])
    runs = _runs({"base": [50, 52, 54], "x": [55], "x2": [57]})
    t = paper_beside_ours({"Base": "base", "X": ("x", "x2"), "Y": None}, paper, "mAP", runs, base="base",
                          paper_base=80.0)
    assert t.loc["X", "ours mAP"] == 56 and t.loc["X", "ours Δ vs Base"] == 4 and t.loc["X", "seeds"] == 2
    assert t.loc["X", "paper Δ vs Base"] == 5 and np.isnan(t.loc["Y", "ours mAP"]) and t.loc["Y", "seeds"] == 0


def _runs_with_queries(per_query: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "seed": s, "mAP": float(q.mean()), "per-query AP": q}
                         for v, qs in per_query.items() for s, q in enumerate(qs)])


def test_a_claim_needs_both_intervals_above_zero():
    rng = np.random.default_rng(0)
    base = rng.uniform(20, 80, size=300)
    # "a" beats "b" by 5 points on every query: both intervals lie above 0
    # "c" beats "b" by 5 points on average, but only on a few queries (huge query noise): undecided
    spiky = np.zeros(300)
    spiky[:3] = 500.0
    runs = _runs_with_queries({
        "b": [base + d for d in (-0.1, 0.0, 0.1)],
        "a": [base + 5 + d for d in (-0.1, 0.0, 0.1)],
        "c": [base + spiky + d for d in (-0.1, 0.0, 0.1)],
    })
    claims = judge_claims([("a beats b", "a", "b"), ("c beats b", "c", "b"), ("b beats a", "b", "a"),
                           ("b beats b", "b", "b")], runs)
    assert claims.loc["c beats b", "95% low"] > 0  # over seeds alone it would hold
    assert claims.loc["c beats b", "queries 95% low"] <= 0
    assert claims.verdict.tolist() == ["held", "undecided", "did not hold", "undecided"]
    assert claims.loc["b beats b", ["queries 95% low", "queries 95% high"]].tolist() == [0.0, 0.0]


def _runs_by_dataset(values: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    return pd.concat([_runs(v).assign(dataset=d) for d, v in values.items()], ignore_index=True)


def test_claims_by_dataset_never_mix_the_datasets():
    # a beats b by 10 points on each dataset, seed for seed; pooled, the gap between the datasets swamps it
    runs = _runs_by_dataset({"synthped": {"a": [60, 61, 62], "b": [50, 51, 52]},
                             "cuhk03_np": {"a": [20, 21, 22], "b": [10, 11, 12], "c": [30, 31, 32]},
                             "market1501": {"b": [40, 41, 42]}})
    claims = [("a beats b", "a", "b"), ("c beats a", "c", "a")]
    pooled = judge_claims(claims, runs)
    assert pooled.loc["a beats b", "verdict"] == "undecided (seeds only)" and pooled.loc["a beats b", "seeds"] == "6 / 9"
    t = judge_claims(claims, runs, by="dataset")
    assert t.index.names == ["dataset", "claim"]
    assert t.index.tolist() == [(d, c) for d in ("synthped", "cuhk03_np", "market1501") for c in ("a beats b", "c beats a")]
    assert t.verdict.tolist() == ["held (seeds only)", "no run", "held (seeds only)", "held (seeds only)", "no run", "no run"]
    assert t.loc[("synthped", "a beats b"), ["mAP A", "mAP B", "seeds"]].tolist() == [61.0, 51.0, "3 / 3"]
    assert t.loc[("cuhk03_np", "a beats b"), ["mAP A", "mAP B"]].tolist() == [21.0, 11.0]
    assert t.loc[("cuhk03_np", "c beats a"), "difference"] == pytest.approx(10.0)
    # each dataset's table is the claims judged on that dataset's runs alone
    for d in ("synthped", "cuhk03_np", "market1501"):
        alone = judge_claims(claims, runs[runs.dataset == d])
        pd.testing.assert_frame_equal(t.loc[d], alone)


def test_claims_by_dataset_pair_the_queries_within_a_dataset():
    rng = np.random.default_rng(1)
    per_query = {}
    # test sets of different sizes (pooled, nothing pairs) and levels (pooled, the seeds disagree)
    for d, n, level in (("synthped", 300, 0.0), ("cuhk03_np", 200, -30.0)):
        base = rng.uniform(20, 80, size=n) + level
        per_query[d] = _runs_with_queries({"b": [base + e for e in (-0.1, 0.0, 0.1)],
                                           "a": [base + 5 + e for e in (-0.1, 0.0, 0.1)]}).assign(dataset=d)
    runs = pd.concat(per_query.values(), ignore_index=True)
    claims = [("a beats b", "a", "b")]
    assert judge_claims(claims, runs).verdict.tolist() == ["undecided (seeds only)"]
    t = judge_claims(claims, runs, by="dataset")
    assert t.verdict.tolist() == ["held", "held"]
    assert (t["queries 95% low"] > 0).all() and (t["queries 95% high"] < 10).all()


def test_claims_by_a_column_other_than_dataset():
    runs = _runs_by_dataset({"x": {"a": [60, 61, 62], "b": [50, 51, 52]}}).assign(protocol="p1")
    t = judge_claims([("a beats b", "a", "b")], runs, by="protocol")
    assert t.index.names == ["protocol", "claim"] and t.loc[("p1", "a beats b"), "verdict"] == "held (seeds only)"


def test_protocol_names_the_start_and_a_triplet_other_than_the_papers():
    from reidlib.papers import esnet
    from reidlib.papers.results import protocol_of

    old = {"config": {"backbone": "resnet18", "pretrained": False, "height": 64, "width": 32, "epochs": 32,
                      "eval_metric": "euclidean", "criterion_options": {"margin": 0.3, "triplet_weight": 1.0}}}
    assert protocol_of(old) == "resnet18 64x32 32 ep euclidean"  # the first release's records keep theirs
    # in the CPU regime a variant without the triplet and one with it compare: one protocol
    base, full = (protocol_of({"config": esnet.config(variant=v).to_dict()}) for v in ("base", "esnet"))
    assert base == full == "efficientnet_lite0-imagenet 128x64 6 ep cosine, triplet cosine m0.1"
    paper = protocol_of({"config": esnet.config(triplet_metric="euclidean", margin=0.3).to_dict()})
    assert paper == "efficientnet_lite0-imagenet 128x64 6 ep cosine"


def test_check_notebook_names_what_differs(tmp_path):
    """A training notebook whose parameters cell drifts from its recipe is refused, naming the parameter."""
    import nbformat

    from reidlib.papers import reid_done_right
    from reidlib.paths import project_root

    recipe = reid_done_right.RECIPE

    nb = nbformat.read(project_root() / recipe.notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[0].source = code[0].source.replace("top = 25", "top = 20")
    nbformat.write(nb, tmp_path / "train.ipynb")
    with pytest.raises(ValueError, match=r"differs from the recipe's defaults in \['top'\]"):
        recipe.check_notebook(tmp_path / "train.ipynb")
    code[0].metadata["tags"] = []
    nbformat.write(nb, tmp_path / "untagged.ipynb")
    with pytest.raises(ValueError, match="tagged 'parameters'"):
        recipe.check_notebook(tmp_path / "untagged.ipynb")
