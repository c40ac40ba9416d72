"""The baseline's training notebook under papermill: tiny parameters on tiny synthped write a
run record that validates; a wrong parameter stops the first cell after the parameters with a
message naming it."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from reidlib.engine.records import read_record

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "book" / "baseline" / "train.ipynb"
TINY = dict(dataset="synthped", synthped_preset="tiny", backbone="resnet18", pretrained=False, height=64, width=32, epochs=2,
            P=4, K=4, warmup_epochs=1, milestones=[], eval_every=1, max_steps_per_epoch=2, device="cpu",
            num_threads=1, run_name="tiny")


def _cells() -> list:
    return nbformat.read(NOTEBOOK, as_version=4).cells


def test_one_parameters_cell_then_the_config_cell():
    code = [c for c in _cells() if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], "the first code cell, and only it, is tagged 'parameters'"
    assert "baseline.train(" in code[1].source and len(code) == 3, "the parameters, one call, a short look"
    for name in ("dataset", "data_root", "backbone", "height", "width", "epochs", "P", "K", "lr", "device", "amp",
                 "seed", "output_dir", "resume", "eval_every", "num_workers", "run_name"):
        assert f"\n{name} = " in "\n" + code[0].source, f"parameter {name} missing"
    assert all(not c.get("outputs") for c in code), "notebooks are stored without outputs"


@pytest.mark.parametrize("override, message", [
    ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
    ({"epochs": -3}, "epochs must be an integer >= 1, got -3"),
    ({"dataset": "market1501"}, "data_root is required for dataset 'market1501'"),
])
def test_wrong_parameters_fail_in_the_config_cell(override, message):
    """The notebook's own parameters and config cells, run here without a kernel."""
    code = [c.source for c in _cells() if c.cell_type == "code"]
    scope: dict = {}
    exec(code[0], scope)
    scope.update(override)
    with pytest.raises(ValueError, match=message):
        exec(code[1], scope)


@pytest.mark.slow
def test_papermill_tiny_run_writes_a_valid_record(tmp_path):
    import papermill as pm

    params = dict(TINY, output_dir=str(tmp_path / "results"), checkpoint_dir=str(tmp_path / "ck"))
    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=params, cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)
    path = tmp_path / "results" / "baseline" / "synthped" / "tiny.json"
    record = read_record(path)  # validates against the schema
    assert record["notebook"] == "book/baseline/train.ipynb"
    assert record["parameters"]["epochs"] == 2 and record["device"] == "cpu"
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and all("metrics" in e for e in record["epochs"])
    assert 0 <= record["final"]["mAP"] <= 1 and record["efficiency"]["params"] > 0
    assert (tmp_path / "ck" / "last.pt").is_file() and Path(record["checkpoint"]) == (tmp_path / "ck" / "last.pt")
    cfg = record["config"]
    assert cfg["model"] == "baseline" and cfg["model_options"] == {"pooling": "gap", "neck": "bnneck",
                                                                   "test_feature": "after"}
    assert cfg["padding"] == 2 and cfg["eval_metric"] == "cosine"  # BoT's 10 px at width 128, scaled to 32

    # the user's loop: the record -> a feature extractor -> embeddings of the query and gallery images; the
    # metrics recomputed from them equal the ones the run's own evaluation wrote
    from reidlib import FeatureExtractor
    from reidlib.data import build_dataset, synthped
    from reidlib.eval import distance, evaluate

    fx = FeatureExtractor.from_record(path, progress=False)
    ds = build_dataset("synthped", synthped.ensure("tiny"))
    qf, gf = fx([r.path for r in ds.query]), fx([r.path for r in ds.gallery])
    assert qf.shape == (len(ds.query), record["efficiency"]["feature_dim"])
    res = evaluate(distance(qf, gf, cfg["eval_metric"]), [r.pid for r in ds.query], [r.pid for r in ds.gallery],
                   [r.camid for r in ds.query], [r.camid for r in ds.gallery])
    assert res["mAP"] == pytest.approx(record["final"]["mAP"], abs=1e-6)
    assert res["cmc"][0] == pytest.approx(record["final"]["rank1"], abs=1e-6)


@pytest.mark.slow
def test_papermill_wrong_parameter_stops_at_the_first_cell(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=dict(TINY, epochs=-1),
                            cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    assert err.value.ename == "ValueError" and "epochs must be an integer >= 1, got -1" in err.value.evalue
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    code = [c for c in out.cells if c.cell_type == "code"]
    failed = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    tags = [c.metadata.get("tags", []) for c in code]
    # parameters, papermill's injected parameters, then the config cell: the first cell of ours
    assert failed and "injected-parameters" in tags[failed[0] - 1], json.dumps(tags)
    assert not list(tmp_path.glob("**/*.json"))


# ---- run names and the config of the tricks


def _name(**given) -> str:
    from reidlib.papers.baseline import RECIPE, run_name

    return run_name(RECIPE.parameters(given))


# the paper's triplet (Euclidean, margin 0.3), which the regime's experiments pin; the recipe's is cosine, 0.1
EUC = {"triplet_metric": "euclidean", "margin": 0.3}


@pytest.mark.parametrize("given, name", [
    ({}, "efficientnet_lite0-imagenet_128x64_e6_cosine_m0.1_s0"),
    (EUC, "efficientnet_lite0-imagenet_128x64_e6_s0"),
    ({"pretrained": False, **EUC}, "efficientnet_lite0_128x64_e6_s0"),
    ({"backbone": "resnet18", "pretrained": False, "height": 64, "width": 32, "epochs": 3, "milestones": [2],
      "seed": 2, **EUC}, "resnet18_64x32_e3_s2"),
    ({"triplet_weight": 0.0}, "efficientnet_lite0-imagenet_128x64_e6_id-only_s0"),
    ({"triplet_weight": 0.5, **EUC}, "efficientnet_lite0-imagenet_128x64_e6_tri0.5_s0"),
    ({"triplet_ramp": 0.25, **EUC}, "efficientnet_lite0-imagenet_128x64_e6_ramp0.25_s0"),
    ({"soft_margin": True, **EUC}, "efficientnet_lite0-imagenet_128x64_e6_soft-margin_s0"),
    ({"label_smoothing": 0.0}, "efficientnet_lite0-imagenet_128x64_e6_cosine_m0.1_ls0_s0"),
    ({"random_erasing": 0.0, **EUC}, "efficientnet_lite0-imagenet_128x64_e6_re0_s0"),
    ({"neck": "none", **EUC}, "efficientnet_lite0-imagenet_128x64_e6_neck-none_s0"),
    ({"last_stride": 2, **EUC}, "efficientnet_lite0-imagenet_128x64_e6_stride2_s0"),
    ({"triplet_weight": 0, "random_erasing": 0, "seed": 1, "triplet_ramp": 0.25},
     "efficientnet_lite0-imagenet_128x64_e6_id-only_re0_s1"),
    ({"triplet_weight": 1, "label_smoothing": 0.1, "probe_triplet": True, "max_steps_per_epoch": 2},  # = defaults
     "efficientnet_lite0-imagenet_128x64_e6_cosine_m0.1_s0"),
])
def test_run_name_tags_the_tricks_that_differ_from_the_papers(given, name):
    from reidlib.papers import baseline

    assert _name(**given) == name
    assert baseline.config(**given).name == name


def test_an_explicit_run_name_wins_and_weights_from_a_file_are_imagenet(tmp_path):
    from reidlib.papers import baseline

    assert baseline.config(triplet_weight=0.0, run_name="mine").name == "mine"
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    assert baseline.config(pretrained=False, weights_path=str(weights)).name == \
        "efficientnet_lite0-imagenet_128x64_e6_cosine_m0.1_s0"


def test_config_maps_the_tricks_onto_criterion_model_and_transforms():
    from reidlib.losses import build_criterion
    from reidlib.papers import baseline

    default = baseline.config()
    assert default.criterion_options == {"label_smoothing": 0.1, "margin": 0.1, "metric": "cosine",
                                         "triplet_weight": 1.0, "triplet_ramp": 0.0, "soft_margin": False}
    assert default.model_options == {"pooling": "gap", "neck": "bnneck"} and default.random_erasing == 0.5
    cfg = baseline.config(triplet_weight=0.0, triplet_ramp=0.25, soft_margin=True, label_smoothing=0.0,
                          neck="none", random_erasing=0.0, last_stride=2, probe_triplet=True, probe_every=5, **EUC)
    assert cfg.criterion_options == {"label_smoothing": 0.0, "margin": 0.3, "metric": "euclidean",
                                     "triplet_weight": 0.0, "triplet_ramp": 0.25, "soft_margin": True}
    assert cfg.model_options == {"pooling": "gap", "neck": "none"}
    assert cfg.random_erasing == 0.0 and cfg.last_stride == 2
    # the probe is a hook of the run, not a training parameter
    assert "probe_triplet" not in cfg.to_dict() and "probe_every" not in cfg.to_dict()
    c = build_criterion(cfg.criterion, 4, **cfg.criterion_options)
    assert c.options["soft_margin"] is True and c.options["triplet_ramp"] == 0.25 and c.triplet.soft_margin
    # the scale-free cosine triplet (the recipe's): its distance and margin reach the loss, and name the run
    cos = baseline.config()
    c = build_criterion(cos.criterion, 4, **cos.criterion_options)
    assert (c.triplet.metric, c.triplet.margin) == ("cosine", 0.1)
    assert cos.name == "efficientnet_lite0-imagenet_128x64_e6_cosine_m0.1_s0"
    assert baseline.loss_of({"config": cos.to_dict()}) == baseline.COSINE
    assert baseline.loss_of({"config": baseline.config(**EUC).to_dict()}) == baseline.ID_TRIPLET
    # an ID-only run names no triplet form; the names follow the paper's tricks, not the recipe's defaults
    assert baseline.config(triplet_weight=0.0, triplet_metric="cosine", margin=0.1).name == \
        "efficientnet_lite0-imagenet_128x64_e6_id-only_s0"
    assert baseline.run_name({**baseline.RECIPE.defaults, **baseline.PAPER_TRICKS}) == \
        "efficientnet_lite0-imagenet_128x64_e6_s0"
    with pytest.raises(ValueError, match="metric"):
        build_criterion(cos.criterion, 4, **{**cos.criterion_options, "metric": "manhattan"})


# ---- a short real run with the triplet probe: what its record holds


@pytest.fixture(scope="module")
def probed_record(tmp_path_factory) -> dict:
    from reidlib.papers import baseline

    tmp = tmp_path_factory.mktemp("probed")
    return baseline.train(synthped_preset="tiny", epochs=2, milestones=[1], eval_every=1, probe_triplet=True, **EUC,
                          probe_every=1, output_dir=str(tmp / "results"), checkpoint_dir=str(tmp / "ck"), device="cpu",
                          num_threads=1, progress=False, max_steps_per_epoch=2, num_workers=0)


@pytest.mark.slow
def test_the_probed_run_names_its_backbone_weights_and_normalisation(probed_record):
    from reidlib.models.efficientnet_lite import LITE_MEAN, LITE_STD

    record = probed_record
    assert record["run_name"] == "efficientnet_lite0-imagenet_128x64_e2_s0"
    assert Path(record["path"]).name == "efficientnet_lite0-imagenet_128x64_e2_s0.json"
    assert read_record(record["path"])["run_name"] == record["run_name"]  # validates
    assert record["normalization"] == {"mean": list(LITE_MEAN), "std": list(LITE_STD)}
    assert record["parameters"]["probe_triplet"] is True and record["config"]["backbone"] == "efficientnet_lite0"
    assert record["config"]["criterion_options"]["triplet_ramp"] == 0.0


@pytest.mark.slow
def test_the_probed_run_logs_the_probe_every_epoch(probed_record):
    keys = {"sqrt_eps", "feat_norm", "feat_spread", "dim_std", "d_ap", "d_an", "active", "grad_ratio"}
    done = 0
    for e in probed_record["epochs"]:
        probe = e["probe"]
        assert set(probe) == keys
        assert [s for s, _ in probe["grad_ratio"]] == list(range(done, done + e["steps"]))  # probe_every=1
        assert all(r > 0 for _, r in probe["grad_ratio"]) and 0 <= probe["active"] <= 1
        done += e["steps"]


@pytest.mark.slow
def test_the_probed_run_keeps_per_query_values_in_final_only(probed_record):
    import numpy as np

    from reidlib.data import build_dataset, synthped

    for e in probed_record["epochs"]:
        assert not [k for k, v in e["metrics"].items() if isinstance(v, (list, dict))], e["metrics"]
        assert {"mAP", "rank1", "mAP_hard", "rank1_hard", "num_hard_queries"} <= set(e["metrics"])
    final = probed_record["final"]
    per_query = final["per_query"]
    ap, hit, index = per_query["AP"], per_query["rank1"], per_query["query_index"]
    assert len(ap) == len(hit) == len(index) == final["num_valid_queries"]
    assert np.mean(ap) == pytest.approx(final["mAP"], abs=1e-6)
    assert np.mean(hit) == pytest.approx(final["rank1"], abs=1e-9)
    # the hard-group metrics: the same values over the queries of synthped's hard identities
    ds = build_dataset("synthped", synthped.ensure("tiny"))
    hard = [i for i, q in enumerate(index) if ds.query[q].pid in ds.hard_pids]
    assert final["num_hard_queries"] == len(hard) > 0
    assert final["mAP_hard"] == pytest.approx(np.mean([ap[i] for i in hard]), abs=1e-6)
    assert final["rank1_hard"] == pytest.approx(np.mean([hit[i] for i in hard]), abs=1e-9)
