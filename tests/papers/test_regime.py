"""The CPU regime's plan: three seeds per setting, one record path per run, only its recipe's
parameters; the dry run lists what is missing. And what the two pages read from the records: synthetic
records, copies of a real one with fields changed, written where :func:`reidlib.papers.results.load_records`
reads (and validates) them."""
from __future__ import annotations

import ast
import copy
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reidlib.papers import baseline, esnet, feature_fusion, hashing, henet, regime, reid_done_right

ALL = regime.planned(regime.PLAN)


def _setting(p: dict) -> str:
    return json.dumps({k: v for k, v in p.items() if k != "seed"}, sort_keys=True)


def _resolvable(p: dict, tmp_path) -> dict:
    """The CUHK03-NP runs point at ../shared/realdata: any existing folder gives the same record path."""
    return {**p, "data_root": str(tmp_path)} if p.get("data_root") else p


def test_every_setting_has_the_three_seeds():
    assert regime.SEEDS == (0, 1, 2)
    assert set(regime.PLAN) == {"pretraining", "triplet", "cuhk03", "ablation", "esnet", "esnet_sweep", "esnet_cuhk03",
                                "henet", "henet_ablation", "henet_rpe", "henet_cuhk03", "hashing", "hashing_sweep",
                                "hashing_cuhk03", "reid_done_right", "reid_done_right_size", "reid_done_right_cuhk03",
                                "feature_fusion", "feature_fusion_tables", "feature_fusion_cuhk03"}
    for group, runs in regime.PLAN.items():
        seeds = defaultdict(list)
        for p in runs:
            seeds[_setting(p)].append(p["seed"])
        assert seeds and all(sorted(s) == [0, 1, 2] for s in seeds.values()), (group, dict(seeds))


def test_every_planned_parameter_is_a_parameter_of_its_recipe():
    for planned_run in ALL:
        module, p = regime.recipe_of(planned_run)
        assert set(p) <= set(module.RECIPE.defaults), sorted(set(p) - set(module.RECIPE.defaults))
        module.RECIPE.parameters(p)  # and of the parameter's type
    assert {regime.recipe_of(p)[0] for p in ALL} == {baseline, esnet, feature_fusion, hashing, henet, reid_done_right}
    with pytest.raises(ValueError, match=r"unknown recipe 'fusion' \(key 'recipe' of a planned run\)"):
        regime.recipe_of({"recipe": "fusion"})


def test_the_hashing_plan_runs_every_claimed_row_once_and_the_reduced_sweeps():
    planned = [p["variant"] for p in regime.PLAN["hashing"]]
    claimed = {v.split(":")[0] for claim in hashing.CLAIMS for v in claim[1:]}
    assert set(planned) == claimed and not claimed & set(hashing.CANONICAL)
    names = [regime.record_path_of(p).stem for p in regime.PLAN["hashing"] + regime.PLAN["hashing_sweep"]]
    assert len(set(names)) == len(names) and all("_192x64_" in n for n in names)
    assert {n.split("_efficientnet")[0] for n in names if n.startswith("full_")} == {
        "full", "full_alpha0", "full_alpha0.7", "full_alpha1", "full_beta0.1", "full_beta0.5"}
    cuhk = regime.PLAN["hashing_cuhk03"]
    assert {regime.record_path_of(p).stem.split("_efficientnet")[0] for p in cuhk} == {"mode-a", "mode-a_b128"}
    assert all(p["dataset"] == "cuhk03_np" and hashing.VARIANTS[p["variant"]].attributes == 0 for p in cuhk)


def test_the_henet_plan_runs_table_1_every_claimed_row_and_fig_4():
    table_1 = {p["variant"] for p in regime.PLAN["henet"]}
    assert table_1 == {v for v in henet.VARIANTS if henet.TABLE_OF[v] == 1}
    planned = table_1 | {p["variant"] for p in regime.PLAN["henet_ablation"]}
    assert planned == {v for claim in henet.CLAIMS for v in claim[1:]}
    # only canonical names are planned: a network that is two rows trains once
    assert not planned & set(henet.CANONICAL)
    for group in ("henet", "henet_ablation", "henet_rpe"):
        runs = regime.PLAN[group]
        assert all(p["recipe"] == "henet" for p in runs) and len(runs) % 3 == 0
        names = [regime.record_path_of(p).stem for p in runs]
        assert len(set(names)) == len(names) and all("_192x64_" in n for n in names)
    fig4 = {(p.get("random_erasing"), p.get("rpe"), p.get("rpe_points")) for p in regime.PLAN["henet_rpe"]}
    assert (None, 0.5, 10) in fig4 and (0.5, 0.5, 20) in fig4 and len(fig4) == 7


def test_the_esnet_plan_runs_every_variant_its_claims_and_tables_compare():
    from reidlib.papers import esnet

    runs = regime.PLAN["esnet"]
    variants = [p["variant"] for p in runs]
    compared = {v for claim in esnet.CLAIMS for v in claim[1:]}
    rows = {v for table in esnet.TABLE_ROWS.values() for v in table.values() if v}
    assert set(variants) == compared | rows
    # the claims' variants run first: every claim can be decided before the other rows start
    assert set(variants[:3 * len(compared)]) == compared
    assert all(p.get("probe_erased_loss", False) == (p["variant"] == "esnet") for p in runs)
    sweep = {(p["variant"], p["erasing_ratio"]) for p in regime.PLAN["esnet_sweep"]}
    assert sweep == {("esb", 0.2), ("esb", 0.3), ("esnet", 0.1), ("esnet", 0.3)}
    # with the defaults (R = 10 % for ESB, 20 % for ES-Net) each sweep has three points
    assert {esnet.VARIANTS["esb"].ratio, esnet.VARIANTS["esnet"].ratio} == {0.1, 0.2}
    cuhk = regime.PLAN["esnet_cuhk03"]
    assert {p["variant"] for p in cuhk} == {"base", "esnet"}
    assert all(esnet.config(**{**regime.recipe_of(p)[1], "data_root": "."}).dataset_key == "cuhk03_np_labeled"
               for p in cuhk)


def test_the_runner_trains_each_run_with_its_own_recipe(tmp_path, monkeypatch, capsys):
    launched = []

    class Done:
        returncode = 0

        def poll(self):
            return 0

    def popen(argv):
        launched.append(argv[-1])
        return Done()

    monkeypatch.setattr(regime.subprocess, "Popen", popen)
    monkeypatch.setattr(regime.time, "sleep", lambda s: None)
    assert regime.main(["--group", "esnet_sweep", "--output-dir", str(tmp_path)]) == 0
    assert len(launched) == len(regime.PLAN["esnet_sweep"])
    assert all(code.startswith("import json; from reidlib.papers import esnet; esnet.train(") for code in launched)
    sent = [json.loads(ast.literal_eval(code[code.index("json.loads(") + 11:-2])) for code in launched]
    assert all("recipe" not in p and p["num_threads"] == 1 and p["device"] == "cpu" for p in sent)
    assert {p["output_dir"] for p in sent} == {str(tmp_path)}
    out = capsys.readouterr().out
    assert out.count("done in") == len(launched) and f"{tmp_path}/esnet/synthped/esb_ratio0.2" in out


def test_every_planned_run_has_its_own_record_path(tmp_path):
    paths = [regime.record_path_of(_resolvable(p, tmp_path), "out") for p in ALL]
    assert len(set(paths)) == len(paths) == len(ALL)
    chapters = [regime.recipe_of(p)[0].RECIPE.chapter for p in ALL]
    assert all(p.parts[:2] == ("out", c) and p.suffix == ".json" for p, c in zip(paths, chapters))
    # the path does not depend on where the data lie (the CUHK03-NP runs name ../shared/realdata)
    assert paths == [regime.record_path_of(p, "out") for p in ALL]
    names = {p.stem for p in paths}
    assert {"efficientnet_lite0-imagenet_128x64_e6_s0", "efficientnet_lite0-imagenet_128x64_e6_id-only_s0",
            "efficientnet_lite0_128x64_e6_ramp0.25_s2", "resnet18_128x64_e6_s1"} <= names


def test_the_plan_runs_the_triplet_question_on_lite0_with_the_probe():
    triplet = regime.PLAN["triplet"]
    settings = {(p["backbone"], p["pretrained"], p.get("triplet_ramp"), p.get("soft_margin"), p.get("triplet_metric"),
                 p.get("margin")) for p in triplet}
    # every run pins the triplet's form: the experiments are about the paper's (Euclidean, margin 0.3)
    assert settings == {("efficientnet_lite0", False, 0.25, None, "euclidean", 0.3),
                        ("efficientnet_lite0", True, 0.25, None, "euclidean", 0.3),
                        # the scale-free triplets, tried because the ramp did not recover
                        ("efficientnet_lite0", True, None, True, "euclidean", 0.3),
                        ("efficientnet_lite0", True, None, None, "cosine", 0.1)}
    pretraining = regime.PLAN["pretraining"]
    assert {(p["triplet_metric"], p["margin"]) for p in pretraining} == {("euclidean", 0.3)}
    assert {baseline.loss_of({"config": baseline.config(**p).to_dict()}) for p in pretraining} == {
        regime.ID_TRIPLET, regime.ID_ONLY}
    assert all(p["probe_triplet"] for p in triplet + regime.PLAN["pretraining"])
    losses = {baseline.loss_of({"config": baseline.config(**p).to_dict()}) for p in triplet}
    assert losses == {regime.RAMPED, regime.SOFT, regime.COSINE}


def test_the_real_data_runs_train_the_loss_the_pick_is_made_on():
    cuhk = regime.PLAN["cuhk03"]
    assert {baseline.loss_of({"config": baseline.config(**p).to_dict()}) for p in cuhk} == {regime.ID_ONLY}
    assert {(p["backbone"], p["pretrained"]) for p in cuhk} == {(b, pre) for _, b, pre in regime.BACKBONES}


def test_planned_rejects_an_unknown_group():
    known = (r"\['pretraining', 'triplet', 'cuhk03', 'ablation', 'esnet', 'esnet_sweep', 'esnet_cuhk03', 'henet', "
             r"'henet_ablation', 'henet_rpe', 'henet_cuhk03', 'hashing', 'hashing_sweep', 'hashing_cuhk03', 'reid_done_right', "
             r"'reid_done_right_size', 'feature_fusion', 'feature_fusion_tables', 'feature_fusion_cuhk03', "
             r"'reid_done_right_cuhk03'\]")
    with pytest.raises(ValueError, match=r"unknown group 'nope'; expected some of " + known):
        regime.planned(["nope"])


def test_dry_run_lists_the_missing_runs(tmp_path, capsys, monkeypatch):
    done = regime.PLAN["triplet"][0]
    path = regime.record_path_of(done, str(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    assert regime.main(["--group", "triplet", "--output-dir", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{len(regime.PLAN['triplet']) - 1} runs to do"
    listed = [json.loads(line) for line in lines[1:]]
    assert done not in listed and len(listed) == len(regime.PLAN["triplet"]) - 1
    assert [p["seed"] for p in listed] == sorted(p["seed"] for p in listed)  # seed by seed


# ------------------------------------------------------------------------------------------
# reading the records

REAL_RECORD = Path(__file__).resolve().parents[2] / "results" / "baseline" / "synthped" / "resnet18_64x32_e32_s0.json"
REAL = json.loads(REAL_RECORD.read_text())
REGIME_CONFIG = {"backbone": "efficientnet_lite0", "pretrained": False, "height": 128, "width": 64, "epochs": 6}


def _record(name: str, *, chapter: str = "baseline", dataset: str = "synthped", config: dict | None = None,
            criterion: dict | None = None, model: dict | None = None, final: dict | None = None,
            epochs: list[dict] | None = None, **top) -> dict:
    """The real record (ResNet-18 64x32, 32 epochs, ID + triplet, bnneck, ls 0.1, re 0.5) with fields changed;
    ``config`` / ``criterion`` / ``model`` / ``final`` update config, its criterion and model options, final."""
    r = copy.deepcopy(REAL)
    r.update(chapter=chapter, dataset=dataset, run_name=name, **top)
    r["config"].update({"dataset": dataset, "chapter": chapter, **(config or {})})
    r["config"]["criterion_options"].update(criterion or {})
    r["config"]["model_options"].update(model or {})
    r["final"].update(final or {})
    r["epochs"] = copy.deepcopy(REAL["epochs"][:2]) if epochs is None else epochs
    return r


def _regime(name: str, **kw) -> dict:
    """A run of the regime (128x64, every trick on): Lite0 from scratch, ID + triplet unless changed."""
    return _record(name, **{**kw, "config": {**REGIME_CONFIG, **kw.get("config", {})}})


def _write(root: Path, *records: dict) -> Path:
    for r in records:
        path = root / r["chapter"] / r["dataset"] / f"{r['run_name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    return root


def _epoch(epoch: int, losses: dict, probe: dict | None = None) -> dict:
    e = {"epoch": epoch, "lr": 3.5e-4, "losses": losses, "time_s": 1.0, "steps": 16}
    return {**e, "probe": probe} if probe is not None else e


def test_the_synthetic_records_are_valid_records(tmp_path):
    from reidlib.engine.records import read_records

    _write(tmp_path, _regime("a"), _record("b", chapter="esnet"))
    assert [r["run_name"] for r in read_records(tmp_path)] == ["a", "b"]  # validated on reading


def _with_config(**config) -> dict:
    r = copy.deepcopy(REAL)
    r["config"].update(config)
    return r


@pytest.mark.parametrize("backbone, pretrained, weights_path, start", [
    ("resnet18", False, None, "ResNet-18, scratch"),
    ("efficientnet_lite0", False, None, "Lite0, scratch"),
    ("efficientnet_lite0", True, None, "Lite0, ImageNet"),
    ("efficientnet_lite0", False, "weights.pt", "Lite0, ImageNet"),  # weights from a file count as pre-trained
    ("resnet18", True, None, "resnet18, ImageNet"),  # not one of the three starts: backbone, weights
    ("resnet50", False, None, "resnet50, scratch"),
])
def test_start_of(backbone, pretrained, weights_path, start):
    assert regime.start_of(_with_config(backbone=backbone, pretrained=pretrained, weights_path=weights_path)) == start


@pytest.mark.parametrize("options, loss", [
    ({}, regime.ID_TRIPLET),  # the real record: triplet weight 1, no ramp or soft margin key
    ({"triplet_weight": 1.0, "triplet_ramp": 0.0, "soft_margin": False}, "ID + triplet"),
    ({"triplet_weight": 0.0}, "ID only"),
    ({"triplet_weight": 0, "triplet_ramp": 0.25, "soft_margin": True}, "ID only"),  # weight 0 wins
    ({"soft_margin": True}, "ID + soft-margin triplet"),
    ({"soft_margin": True, "triplet_ramp": 0.25}, "ID + soft-margin triplet"),
    ({"triplet_ramp": 0.25}, "ID + triplet, ramped"),
    ({"triplet_weight": 0.5, "triplet_ramp": 0.0}, "ID + triplet"),
])
def test_loss_of(options, loss):
    r = copy.deepcopy(REAL)
    r["config"]["criterion_options"].update(options)
    assert regime.loss_of(r) == loss


def test_loss_of_defaults_the_triplet_weight_to_one():
    r = copy.deepcopy(REAL)
    del r["config"]["criterion_options"]["triplet_weight"]
    assert regime.loss_of(r) == regime.ID_TRIPLET


def test_records_frame_keeps_the_regime_runs_only(tmp_path):
    per_query = {"query_index": [0, 1, 2], "AP": [0.5, 0.25, 1.0], "rank1": [1, 0, 1]}
    _write(tmp_path,
           _regime("in_lite0", final={"mAP": 0.4, "rank1": 0.5, "mAP_hard": 0.2, "per_query": per_query}),
           _regime("in_imagenet_id_only", config={"pretrained": True, "seed": 1}, criterion={"triplet_weight": 0.0}),
           _regime("in_resnet_cuhk", dataset="cuhk03_np", config={"backbone": "resnet18"}),
           _regime("in_neck_default", model={"neck": None}),  # replaced below: no neck key means bnneck
           _regime("out_neck", model={"neck": "none"}),
           _regime("out_ls0", criterion={"label_smoothing": 0.0}),
           _regime("out_re0", config={"random_erasing": 0.0}),
           _regime("out_192x64", config={"height": 192}),
           _record("out_64x32"),  # the first release's protocol
           _regime("out_other_chapter", chapter="esnet"))
    path = tmp_path / "baseline" / "synthped" / "in_neck_default.json"
    r = json.loads(path.read_text())
    del r["config"]["model_options"]["neck"]
    path.write_text(json.dumps(r))

    frame = regime.records_frame(tmp_path).set_index("run")
    assert sorted(frame.index) == ["in_imagenet_id_only", "in_lite0", "in_neck_default", "in_resnet_cuhk"]
    assert frame.loc["in_lite0", "variant"] == "Lite0, scratch | ID + triplet"
    assert frame.loc["in_imagenet_id_only", "variant"] == "Lite0, ImageNet | ID only"
    assert frame.loc["in_resnet_cuhk", "variant"] == "ResNet-18, scratch | ID + triplet"
    assert (frame["variant"] == frame["start"] + " | " + frame["loss"]).all()
    assert frame.loc["in_resnet_cuhk", "dataset"] == "cuhk03_np" and frame.loc["in_imagenet_id_only", "seed"] == 1
    assert frame.loc["in_lite0", "mAP"] == pytest.approx(40.0) and frame.loc["in_lite0", "rank-1"] == pytest.approx(50.0)
    assert frame.loc["in_lite0", "mAP (hard)"] == pytest.approx(20.0)
    assert np.isnan(frame.loc["in_imagenet_id_only", "mAP (hard)"])
    np.testing.assert_allclose(frame.loc["in_lite0", "per-query AP"], [50.0, 25.0, 100.0])
    np.testing.assert_allclose(frame.loc["in_lite0", "per-query rank-1"], [100.0, 0.0, 100.0])
    assert frame.loc["in_imagenet_id_only", "per-query AP"] is None


def test_records_frame_without_records(tmp_path):
    assert regime.records_frame(tmp_path).empty
    _write(tmp_path, _record("out_64x32"))
    assert regime.records_frame(tmp_path).empty


def _summary_frame() -> pd.DataFrame:
    rows = [{"dataset": "synthped", "start": "Lite0, scratch", "loss": "ID only", "seed": s, "mAP": m, "rank-1": r,
             "mAP (hard)": h} for s, (m, r, h) in enumerate([(40.0, 50.0, 20.0), (44.0, 53.0, np.nan), (45.0, 56.0, 30.0)])]
    rows += [{"dataset": "synthped", "start": "Lite0, ImageNet", "loss": "ID only", "seed": 0, "mAP": 70.0, "rank-1": 80.0,
              "mAP (hard)": np.nan}]
    return pd.DataFrame(rows)


def test_summary_is_the_t_interval_over_seeds():
    table = regime.summary(_summary_frame())
    assert table.index.names == ["dataset", "start", "loss"]
    row = table.loc[("synthped", "Lite0, scratch", "ID only")]
    for metric, values in (("mAP", [40.0, 44.0, 45.0]), ("rank-1", [50.0, 53.0, 56.0]), ("mAP (hard)", [20.0, 30.0])):
        v = np.array(values)
        low, high = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        assert row[metric] == pytest.approx(v.mean()) == pytest.approx((low + high) / 2)
        assert row[f"{metric} ±"] == pytest.approx((high - low) / 2)
    # by hand, mAP: mean 43, sd sqrt(7), t(0.975, 2 dof) = 4.3027
    assert row["mAP ±"] == pytest.approx(4.302653 * math.sqrt(7) / math.sqrt(3), rel=1e-6)
    assert row["seeds"] == 3  # the runs, also where a metric lacks a value
    one = table.loc[("synthped", "Lite0, ImageNet", "ID only")]
    assert one["mAP"] == 70.0 and np.isnan(one["mAP ±"]) and one["seeds"] == 1
    assert np.isnan(one["mAP (hard)"]) and np.isnan(one["mAP (hard) ±"])


def test_summary_by_other_columns_and_level():
    table = regime.summary(_summary_frame(), by=("start",), metrics=("mAP",), level=0.9)
    assert list(table.columns) == ["mAP", "mAP ±", "seeds"] and table.index.name == "start"
    v = np.array([40.0, 44.0, 45.0])
    assert table.loc["Lite0, scratch", "mAP ±"] == pytest.approx(stats.t.ppf(0.95, 2) * v.std(ddof=1) / np.sqrt(3))


def _probed_epochs() -> list[dict]:
    return [_epoch(1, {"id": 4.8, "triplet": 0.9, "total": 5.7},
                   {"sqrt_eps": 0.00316, "feat_norm": 12.5, "active": 0.75, "grad_ratio": [[0, 0.5], [10, 0.4]]}),
            _epoch(2, {"id": 4.0, "triplet": 0.6, "total": 4.6},
                   {"sqrt_eps": 0.00316, "feat_norm": 13.0, "active": 0.5, "grad_ratio": [[20, 0.3]]}),
            _epoch(3, {"id": 3.5, "triplet": 0.5, "total": 4.0})]  # no probe this epoch


def _probed_results(root: Path) -> Path:
    return _write(root,
                  _regime("probed", config={"seed": 2}, epochs=_probed_epochs()),
                  _regime("probed_cuhk", dataset="cuhk03_np", epochs=_probed_epochs()),  # not synthped
                  _record("probed_64x32", epochs=_probed_epochs()))  # not a regime run


def test_probe_frame_is_long_form(tmp_path):
    probes = regime.probe_frame(_probed_results(tmp_path))
    assert list(probes.columns) == ["start", "loss", "seed", "epoch", "statistic", "value"]
    assert set(probes.start) == {"Lite0, scratch"} and set(probes["loss"]) == {"ID + triplet"} and set(probes.seed) == {2}
    got = {(e, s): v for e, s, v in probes[["epoch", "statistic", "value"]].itertuples(index=False)}
    want = {}
    for e in _probed_epochs():
        scalars = {k: v for k, v in e.get("probe", {}).items() if k != "grad_ratio"}
        want.update({(e["epoch"], k): v for k, v in scalars.items()})
        want.update({(e["epoch"], f"loss/{k}"): v for k, v in e["losses"].items()})
    assert got == want and len(probes) == len(want) == 6 + 6 + 3
    assert "grad_ratio" not in set(probes.statistic)


def test_grad_ratio_frame_lists_the_pairs(tmp_path):
    ratios = regime.grad_ratio_frame(_probed_results(tmp_path))
    assert list(ratios.columns) == ["start", "loss", "seed", "step", "ratio"]
    assert ratios[["seed", "step", "ratio"]].values.tolist() == [[2, 0, 0.5], [2, 10, 0.4], [2, 20, 0.3]]
    assert ratios.start.tolist() == ["Lite0, scratch"] * 3 and ratios["loss"].tolist() == ["ID + triplet"] * 3


def test_probe_frames_without_probes(tmp_path):
    _write(tmp_path, _regime("unprobed"))
    assert regime.grad_ratio_frame(tmp_path).empty
    assert set(regime.probe_frame(tmp_path).statistic) == {"loss/id", "loss/triplet", "loss/total"}
    empty = tmp_path / "nothing"
    assert regime.probe_frame(empty).empty and list(regime.grad_ratio_frame(empty).columns) == [
        "start", "loss", "seed", "step", "ratio"]


def _pick_frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": d, "start": s, "loss": loss, "mAP": m} for d, s, loss, m in rows])


SYNTHPED_RUNS = [("synthped", "Lite0, scratch", regime.ID_TRIPLET, 60.0),
                 ("synthped", "Lite0, scratch", regime.ID_TRIPLET, 62.0),
                 ("synthped", "Lite0, ImageNet", regime.ID_TRIPLET, 55.0),
                 ("synthped", "Lite0, ImageNet", regime.ID_TRIPLET, 56.0),
                 ("synthped", "ResNet-18, scratch", regime.ID_ONLY, 90.0)]  # the best mAP, but ID only


def test_pick_default_picks_on_the_real_data_when_there_are_runs():
    real = [("cuhk03_np", "Lite0, scratch", regime.ID_TRIPLET, 10.0), ("cuhk03_np", "Lite0, scratch", regime.ID_TRIPLET, 30.0),
            ("cuhk03_np", "Lite0, ImageNet", regime.ID_TRIPLET, 21.0), ("cuhk03_np", "Lite0, ImageNet", regime.ID_TRIPLET, 22.0),
            ("cuhk03_np", "ResNet-18, scratch", regime.ID_ONLY, 50.0)]  # the best mAP, but not ID + triplet
    # synthped prefers from scratch; on CUHK03-NP, ImageNet's mean (21.5) beats scratch's (20) though scratch has the best run
    assert regime.pick_default(_pick_frame(SYNTHPED_RUNS + real)) == ("Lite0, ImageNet", "cuhk03_np")


def test_pick_default_falls_back_on_synthped():
    assert regime.pick_default(_pick_frame(SYNTHPED_RUNS)) == ("Lite0, scratch", "synthped")
    only_id_only_real = [("cuhk03_np", "Lite0, ImageNet", regime.ID_ONLY, 99.0)]
    assert regime.pick_default(_pick_frame(SYNTHPED_RUNS + only_id_only_real)) == ("Lite0, scratch", "synthped")


def test_pick_default_needs_an_id_triplet_run():
    frame = _pick_frame([("synthped", "Lite0, scratch", regime.ID_ONLY, 60.0),
                         ("cuhk03_np", "Lite0, scratch", regime.RAMPED, 9.0)])
    with pytest.raises(ValueError, match=r"no ID \+ triplet run of the regime"):
        regime.pick_default(frame)


def test_pick_default_on_records(tmp_path):
    _write(tmp_path, *[_regime(f"lite0_s{s}", config={"seed": s}, final={"mAP": m}) for s, m in enumerate((0.3, 0.32, 0.34))],
           *[_regime(f"imagenet_s{s}", config={"seed": s, "pretrained": True}, final={"mAP": m})
             for s, m in enumerate((0.5, 0.52, 0.54))])
    assert regime.pick_default(regime.records_frame(tmp_path)) == ("Lite0, ImageNet", "synthped")


def test_map_heights_of_the_part_image_size():
    heights = regime.map_heights(sizes=((128, 64), regime.PART_IMAGE_SIZE))
    assert regime.PART_IMAGE_SIZE == (192, 64)
    assert list(heights.index) == ["128x64", "192x64"] and heights.index.name == "image"
    assert heights["map height"].tolist() == [8, 12]
    assert list(heights.columns) == ["map height", "1 parts", "2 parts", "3 parts", "4 parts", "6 parts"]
    assert heights.loc["128x64"].drop("map height").tolist() == [True, True, False, True, False]
    assert heights.loc["192x64"].drop("map height").tolist() == [True] * 5


def test_first_release_anomaly(tmp_path):
    n = 10  # ln 10 = 2.303: at chance above 0.95 ln 10 = 2.187
    at_chance = [_epoch(1, {"id": 2.30, "triplet": 0.40, "total": 2.7}), _epoch(2, {"id": 2.20, "triplet": 0.30, "total": 2.5}),
                 _epoch(3, {"id": 2.10, "triplet": 0.35, "total": 2.45}), _epoch(4, {"id": 1.00, "triplet": 0.50, "total": 1.5})]
    # ES-Net's branches: mean of aib/id and esb/id (not the sum, not the max; "total" is not an ID loss)
    branches = [_epoch(1, {"aib/id": 2.40, "esb/id": 2.30, "aib/triplet": 0.6, "esb/triplet": 0.2, "total": 9.0}),
                _epoch(2, {"aib/id": 2.40, "esb/id": 1.80, "aib/triplet": 0.1, "esb/triplet": 0.5, "total": 9.0}),
                _epoch(3, {"aib/id": 1.00, "esb/id": 1.00, "aib/triplet": 0.4, "esb/triplet": 0.4, "total": 9.0})]
    id_only = [_epoch(1, {"id": 2.25, "total": 2.25}), _epoch(2, {"id": 1.5, "total": 1.5})]
    no_num_classes = _record("from_summary", final={"mAP": 0.1}, epochs=[_epoch(1, {"id": 4.7, "triplet": 1.0, "total": 5.7})])
    del no_num_classes["num_classes"]  # then the train ids of the dataset summary: 128, ln 128 = 4.852, 0.95 of it 4.61
    _write(tmp_path,
           _record("tri", num_classes=n, final={"mAP": 0.25}, epochs=at_chance),
           _record("id_only", num_classes=n, final={"mAP": 0.5}, criterion={"triplet_weight": 0.0}, epochs=id_only),
           no_num_classes,
           _record("esnet_run", chapter="esnet", num_classes=n, final={"mAP": 0.3}, epochs=branches),
           _record("other_chapter", chapter="hen", num_classes=n),
           _record("cuhk", dataset="cuhk03_np", num_classes=n),
           _record("e6", num_classes=n, config={"epochs": 6}),
           _record("lite0", num_classes=n, config={"backbone": "efficientnet_lite0"}),
           _regime("regime", num_classes=n))
    table = regime.first_release_anomaly(tmp_path)
    assert list(table.columns) == ["chapter", "run", "triplet loss", "mAP", "epochs at chance", "lowest triplet loss"]
    assert table[["chapter", "run"]].values.tolist() == [["baseline", "from_summary"], ["baseline", "id_only"],
                                                         ["baseline", "tri"], ["esnet", "esnet_run"]]
    t = table.set_index("run")
    assert t.loc["tri", "epochs at chance"] == 2 and t.loc["tri", "lowest triplet loss"] == pytest.approx(0.30)
    assert t.loc["tri", "triplet loss"] and t.loc["tri", "mAP"] == pytest.approx(25.0)
    assert t.loc["id_only", "epochs at chance"] == 1 and not t.loc["id_only", "triplet loss"]
    assert np.isnan(t.loc["id_only", "lowest triplet loss"])
    assert t.loc["from_summary", "epochs at chance"] == 1
    assert t.loc["esnet_run", "epochs at chance"] == 1  # epoch 2's mean 2.10 is not at chance
    assert t.loc["esnet_run", "lowest triplet loss"] == pytest.approx(0.30)  # epoch 2's mean, not its 0.1
    assert t.loc["esnet_run", "mAP"] == pytest.approx(30.0)


def test_first_release_anomaly_without_records(tmp_path):
    table = regime.first_release_anomaly(tmp_path)
    assert table.empty and "epochs at chance" in table


def test_baseline_records_frame_columns(tmp_path):
    _write(tmp_path,
           _record("old"),  # ResNet-18 from scratch, 64x32, 2 epochs kept, euclidean
           _regime("imagenet", config={"pretrained": True, "eval_metric": "cosine"}, criterion={"triplet_weight": 0.0},
                   final={"rank5": 0.75, "rank10": 0.875}),
           _regime("from_file", config={"weights_path": "lite0.pt"}, criterion={"triplet_ramp": 0.25}),
           _regime("esnet", chapter="esnet"))  # another chapter
    frame = baseline.records_frame(tmp_path).set_index("run")
    assert sorted(frame.index) == ["from_file", "imagenet", "old"]
    assert frame.loc["old", ["backbone", "image", "loss", "epochs", "metric"]].tolist() == [
        "resnet18", "64x32", "ID + triplet", 2, "euclidean"]
    assert frame.loc["imagenet", ["backbone", "image", "loss", "metric"]].tolist() == [
        "efficientnet_lite0-imagenet", "128x64", "ID only", "cosine"]
    assert frame.loc["from_file", ["backbone", "loss"]].tolist() == ["efficientnet_lite0-imagenet", "ID + triplet, ramped"]
    assert frame.loc["imagenet", "rank-5"] == pytest.approx(75.0) and frame.loc["imagenet", "rank-10"] == pytest.approx(87.5)
    assert frame.loc["old", "mAP"] == pytest.approx(100 * REAL["final"]["mAP"])


def test_the_ablation_adds_one_trick_at_a_time_to_a_plain_network():
    plain = {"triplet_weight": 0.0, "label_smoothing": 0.0, "random_erasing": 0.0, "neck": "none", "last_stride": 2}
    settings = {tuple(sorted((k, p[k]) for k in plain)) for p in regime.PLAN["ablation"]}
    assert tuple(sorted(plain.items())) in settings
    for trick in plain:  # the plain network plus exactly this trick
        one = {**plain, trick: regime.baseline.RECIPE.defaults[trick]}
        assert tuple(sorted(one.items())) in settings
    assert len(settings) == len(plain) + 1 and len(regime.PLAN["ablation"]) == 3 * len(settings)
    missing = regime.missing_runs(groups=["ablation"])
    assert set(missing.group) <= {"ablation"}


def test_the_ablation_adds_each_trick_alone_to_a_plain_network_with_the_recipes_triplet():
    losses = [baseline.loss_of({"config": baseline.config(**p).to_dict()}) for p in regime.PLAN["ablation"]]
    # 3 seeds of the triplet's run, in the recipe's form (cosine, margin 0.1); every other run is ID only
    assert losses.count(regime.COSINE) == 3 and losses.count(regime.ID_ONLY) == 15
    plain = baseline.config(**regime.PLAN["ablation"][0])
    assert (plain.criterion_options["label_smoothing"], plain.random_erasing, plain.model_options["neck"],
            plain.last_stride) == (0.0, 0.0, "none", 2)


# ------------------------------------------------------------------------------------------
# the bag-of-tricks ablation

def test_every_planned_ablation_run_is_its_own_setting_and_other_runs_are_none():
    settings = [regime.trick_setting({"config": baseline.config(**p).to_dict()}) for p in regime.PLAN["ablation"]]
    expected = [regime.PLAIN] + [f"+ {t}" for t in regime.TRICKS]
    assert sorted(set(settings)) == sorted(expected) and all(settings.count(s) == 3 for s in expected)
    # the recipe's defaults are every trick; the paper's Euclidean triplet, a ramp, another start: not the ablation
    assert regime.trick_setting({"config": baseline.config().to_dict()}) == regime.ALL_TRICKS
    for other in ({"triplet_metric": "euclidean", "margin": 0.3}, {"triplet_ramp": 0.25}, {"pretrained": False},
                  {"height": 192}, {"label_smoothing": 0.0, "random_erasing": 0.0}):
        assert regime.trick_setting({"config": baseline.config(**other).to_dict()}) is None, other


def test_the_ablation_frame_judges_each_trick_against_the_plain_network(tmp_path):
    def run(name, seed, m, **given):
        cfg = baseline.config(seed=seed, **given).to_dict()
        return _record(name, config=cfg, criterion=cfg["criterion_options"], model=cfg["model_options"],
                       final={"mAP": m, "rank1": m}, seed=seed)

    plain = regime.PLAN["ablation"][0]
    plain = {k: v for k, v in plain.items() if k != "seed"}
    recs = [run(f"plain_s{s}", s, 0.20 + 0.01 * s, **plain) for s in range(3)]
    recs += [run(f"ls_s{s}", s, 0.40 + 0.01 * s, **{**plain, "label_smoothing": 0.1}) for s in range(3)]
    recs += [run("euclidean_s0", 0, 0.9, triplet_metric="euclidean", margin=0.3)]  # not the ablation's
    frame = regime.ablation_frame(_write(tmp_path, *recs))
    assert sorted(frame.variant.unique()) == sorted([regime.PLAIN, "+ label smoothing"]) and len(frame) == 6
    from reidlib.papers.results import judge_claims

    verdict = judge_claims(regime.CLAIMS_ABLATION, frame).verdict
    # the stand-in records keep no per-query values: judged over seeds only, which the verdict says
    assert verdict["label smoothing helps a plain network"] == "held (seeds only)"
    assert verdict["triplet helps a plain network"] == "no run"


def test_esnet_runs_give_the_claims_their_seeds_first():
    order = [(p["variant"], p["seed"]) for p in regime.run_order(["esnet"])]
    assert len(order) == len(regime.PLAN["esnet"]) and set(order) == {(p["variant"], p["seed"])
                                                                       for p in regime.PLAN["esnet"]}
    compared = {v for claim in esnet.CLAIMS for v in claim[1:]}
    first = [v for v, _ in order[:3 * len(compared)]]
    assert set(first) == compared  # every variant a claim compares, with all its seeds, before any other row
    tables_1_4 = {v for claim in esnet.CLAIMS if "Table V" not in claim[0] for v in claim[1:]}
    assert {v for v, _ in order[:3 * len(tables_1_4)]} == tables_1_4
    tier = [regime.ESNET_TIER[v] for v, _ in order]
    assert tier == sorted(tier)
    for t in set(tier):  # within a tier, seed by seed
        seeds = [s for (v, s), k in zip(order, tier) if k == t]
        assert seeds == sorted(seeds)


def test_the_reid_done_right_plan_runs_every_claimed_row_and_the_full_recipe_on_cuhk03():
    rows = {p["variant"] for p in regime.PLAN["reid_done_right"]}
    assert {v for claim in reid_done_right.CLAIMS for v in claim[1:]} <= rows
    cuhk = regime.PLAN["reid_done_right_cuhk03"]
    assert {(p["variant"], p["dataset"], p["dataset_options"]["split"]) for p in cuhk} == {("full", "cuhk03_np", "labeled")}
    paths = [regime.record_path_of(p) for p in cuhk]
    assert len(set(paths)) == 3 and all(path.parent.name == "cuhk03_np_labeled" for path in paths)
    synthped = {regime.record_path_of(p).name for p in regime.PLAN["reid_done_right"] if p["variant"] == "full"}
    assert {path.name for path in paths} == synthped  # the same run, on the other data


def test_the_feature_fusion_plan_runs_every_row_once_and_its_extra_evaluations_where_claims_need_them():
    compared = {v for claim in feature_fusion.CLAIMS for v in claim[1:]}
    main, tables = regime.PLAN["feature_fusion"], regime.PLAN["feature_fusion_tables"]
    assert {p["variant"] for p in main} == compared
    assert {p["variant"] for p in main} | {p["variant"] for p in tables} == set(feature_fusion.VARIANTS)
    assert not {p["variant"] for p in main} & {p["variant"] for p in tables}
    extra = {f"{p['variant']}:misaligned@{m}" for p in main for m in p.get("misalignment", [])}
    extra |= {f"{p['variant']}:→cuhk03_np_labeled" for p in main if "cross_domain" in p}
    extra |= {f"{p['variant']}:→synthped" for p in regime.PLAN["feature_fusion_cuhk03"]}
    needed = {v for claim in [*feature_fusion.MISALIGNMENT_CLAIMS, *feature_fusion.TRANSFER_CLAIMS] for v in claim[1:]}
    assert needed <= extra, "every row a misalignment or transfer claim compares is evaluated so"
    assert all(p["dataset"] == "cuhk03_np" for p in regime.PLAN["feature_fusion_cuhk03"])


def test_fig_5s_occluded_queries_ride_on_the_re_rpe_and_both_runs():
    occluded = [p for p in regime.PLAN["henet_rpe"] if "occlusion" in p]
    settings = {(p.get("random_erasing", 0), p.get("rpe", 0)) for p in occluded}
    assert settings == {(0.5, 0), (0, 0.5), (0.5, 0.5)} and len(occluded) == 9
    assert all(p["occlusion"] == list(henet.OCCLUSION) and p.get("rpe_points", 20) == 20 for p in occluded)
