"""The HENet chapter's recipe and training notebook: the parameters cell is the recipe, every variant is
documented, a tiny run through papermill writes a valid record of the variant it names (its losses, RPE in
the pipeline, the test-time size), run names follow the overrides, a wrong variant stops early."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from reidlib.engine.build import build_run_transforms
from reidlib.engine.records import read_record
from reidlib.models.henet import HENetConfig
from reidlib.papers import henet
from reidlib.papers.henet import RECIPE, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "book" / "henet" / "train.ipynb"
TINY = dict(dataset="synthped", synthped_preset="tiny", variant="base+both", backbone="resnet18", pretrained=False,
            height=64, width=32, epochs=2, P=4, K=4, warmup_epochs=1, milestones="[1]", eval_every=2,
            max_steps_per_epoch=2, device="cpu", num_threads=1, run_name="tiny", progress=False)


def test_the_notebook_is_its_parameters_and_one_call_to_the_recipe():
    cells = RECIPE.check_notebook(NOTEBOOK)  # the parameters cell is the recipe's defaults, then train(...)
    code = [c for c in cells if c.cell_type == "code"]
    assert "henet.train(" in code[1].source and len(code) == 3
    assert all(f"`{v}`" in cells[0].source for v in VARIANTS), "the introduction lists every variant"


def test_config_routes_the_variant_into_model_losses_and_pipeline():
    cfg = henet.config(variant="base+both")
    assert cfg.model == "henet" and cfg.model_options == asdict(VARIANTS["base+both"])
    assert (cfg.random_erasing, cfg.random_polygon_erasing, cfg.polygon_options) == (0.5, 0.5, {"n": 20})
    assert (cfg.height, cfg.width) == henet.PART_IMAGE_SIZE and cfg.eval_metric == "euclidean"
    assert cfg.criterion_options["extra_terms"]["oim"]["scalar"] == 30.0
    names = [type(t).__name__ for t in build_run_transforms(cfg)[0].transforms]
    assert names.index("RandomErasing") < names.index("RandomPolygonErasing")
    plain = henet.config(variant="p1-4")
    assert (plain.random_erasing, plain.random_polygon_erasing) == (0.0, 0.0)
    assert "RandomPolygonErasing" not in [type(t).__name__ for t in build_run_transforms(plain)[0].transforms]


def test_run_names_follow_the_overrides_and_the_triplet():
    assert henet.config().name == "base+both_cosine_m0.1_efficientnet_lite0-imagenet_192x64_e6_s0"
    assert henet.config(variant="p1-4", rpe=0.25, rpe_points=40).name == \
        "p1-4_rpe0.25_n40_efficientnet_lite0-imagenet_192x64_e6_s0"
    # a variant without the triplet names no triplet form; the paper's preset trains the chapter's paper triplet
    assert henet.config(variant="base").name == "base_efficientnet_lite0-imagenet_192x64_e6_s0"
    preset = henet.config(variant="base+losses", paper_preset=True)
    assert preset.name == "base+losses_resnet50-imagenet_384x128_e200_s0"
    assert (preset.P, preset.K, preset.milestones, preset.lr) == (4, 4, (160,), 2e-4)
    assert (preset.criterion_options["metric"], preset.criterion_options["margin"]) == ("euclidean", 1.2)


@pytest.mark.parametrize("given, match", [
    ({"variant": "henet"}, "unknown HENet variant 'henet'"),
    ({"rpe": 2.0}, r"rpe \(a probability\)"),
    ({"rpe_points": "many"}, "parameter 'rpe_points' must be an integer"),
    ({"triplet_metric": "manhattan"}, "parameter 'triplet_metric' must be one of"),
    ({"oim": 1}, "unknown parameter"),
])
def test_bad_parameters_are_named(given, match):
    with pytest.raises(ValueError, match=match):
        henet.config(**given)


@pytest.mark.slow
def test_papermill_tiny_henet_run_writes_a_valid_record(tmp_path):
    import papermill as pm

    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"),
                        parameters=dict(TINY, output_dir="results", occlusion=[40]), cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)
    record = read_record(tmp_path / "results" / "henet" / "synthped" / "tiny.json")  # validates
    cfg = record["config"]
    assert record["notebook"] == "book/henet/train.ipynb" and record["variant"] == "base+both"
    assert cfg["model"] == "henet" and HENetConfig(**cfg["model_options"]) == VARIANTS["base+both"]
    assert cfg["random_polygon_erasing"] == 0.5 and cfg["eval_metric"] == "euclidean"
    assert {"r16/reconstruction", "p4_1/oim", "g1/triplet"} <= set(record["epochs"][0]["losses"])
    assert record["efficiency"]["feature_dim"] == 2560
    assert 0 < record["efficiency"]["test_params"] < record["efficiency"]["params"]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and 0 <= record["final"]["mAP"] <= 1
    # Fig. 5: the occluded queries against the clean gallery, rectangles and polygons, the same valid queries
    for name in ("occluded@re40", "occluded@rpe40"):
        occluded = record["final"][name]
        assert occluded["num_valid_queries"] == record["final"]["num_valid_queries"]
        assert occluded["per_query"]["AP"] != record["final"]["per_query"]["AP"], "occlusion changes the ranking"
    from reidlib.papers.henet import occlusion_curve, records_frame

    runs = records_frame(tmp_path / "results")
    assert sorted(runs.variant) == ["base+both", "base+both:occluded@re40", "base+both:occluded@rpe40"]
    curve = occlusion_curve(runs)
    from reidlib.papers.henet import erasing_label

    trained = erasing_label(cfg["random_erasing"], cfg["random_polygon_erasing"], 20)
    assert trained == "RE+RPE(20)"  # +Both: the losses, RE and RPE
    assert list(curve.index) == [(trained, o, a) for o in ("re", "rpe") for a in (0, 40)]
    assert curve.loc[(trained, "rpe", 40), "mAP"] == 100 * record["final"]["occluded@rpe40"]["mAP"]
    assert curve.loc[(trained, "re", 0), "mAP"] == curve.loc[(trained, "rpe", 0), "mAP"] == 100 * record["final"]["mAP"]


@pytest.mark.slow
def test_papermill_unknown_variant_stops_at_the_first_cell(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=dict(TINY, variant="henet"),
                            cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    assert err.value.ename == "ValueError" and "unknown HENet variant 'henet'" in err.value.evalue
    assert not list(tmp_path.glob("**/*.json"))


def test_the_occlusion_parameter_names_its_evaluations_and_refuses_bad_values():
    from reidlib.papers import henet

    cfg = henet.config()
    assert henet.final_evaluations(henet.RECIPE.parameters({}), cfg) == []
    hooks = henet.final_evaluations(henet.RECIPE.parameters({"occlusion": [10, 30]}), cfg)
    assert list(hooks[0].evaluations) == ["occluded@re10", "occluded@rpe10", "occluded@re30", "occluded@rpe30"]
    for bad in ([0], [100], [30, 30]):
        with pytest.raises(ValueError, match="parameter 'occlusion' must list distinct percentages of the image area"):
            henet.final_evaluations(henet.RECIPE.parameters({"occlusion": bad}), cfg)


def test_fig_4s_rows_are_named_by_their_erasing_and_its_claims_name_planned_rows():
    from reidlib.papers import henet, regime

    assert henet.erasing_label(0.5, 0.5, 20) == "RE+RPE(20)" and henet.erasing_label(0, 0.25, 20) == "RPE(20) p0.25"
    assert henet.erasing_label(0.5, 0, 20) == "RE p0.5" and henet.erasing_label(0, 0, 20) == "none"
    planned = set()
    for p in regime.PLAN["henet_rpe"]:
        m = henet.config(**{k: v for k, v in p.items() if k != "recipe"}).model_options
        planned.add(henet.erasing_label(m["random_erasing"], m["rpe"], m["rpe_points"]))
    assert {v for claim in henet.FIG4_CLAIMS for v in claim[1:]} <= planned
