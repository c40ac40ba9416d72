"""The hashing chapter's recipe and training notebook: the parameters cell is the recipe, every variant is
listed, Eq. (14)'s weights reach the criterion, the attribute labels reach the attribute loss, a tiny run through
papermill writes a record with the teacher, float and attribute evaluations, bad parameters are named."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from reidlib.engine.records import read_record
from reidlib.models.hashing import HashingConfig
from reidlib.papers import hashing
from reidlib.papers.hashing import RECIPE, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "book" / "hashing" / "train.ipynb"
TINY = dict(dataset="synthped", synthped_preset="tiny", variant="full", bits=128, backbone="resnet18",
            pretrained=False, height=96, width=32, epochs=2, P=4, K=4, warmup_epochs=1, milestones="[1]",
            eval_every=2, max_steps_per_epoch=2, device="cpu", num_threads=1, run_name="tiny", progress=False)


def test_the_notebook_is_its_parameters_and_one_call_to_the_recipe():
    cells = RECIPE.check_notebook(NOTEBOOK)  # the parameters cell is the recipe's defaults, then train(...)
    code = [c for c in cells if c.cell_type == "code"]
    assert "hashing.train(" in code[1].source and len(code) == 3
    assert all(f"`{v}`" in cells[0].source for v in VARIANTS), "the introduction lists every variant"


def test_eq14_weights_reach_the_criterion():
    full = hashing.criterion_options(VARIANTS["full"])
    assert full["id_weight"] == full["triplet_weight"] == pytest.approx(1 / 14)
    assert full["extra_terms"]["ssr"]["weight"] == pytest.approx(0.3 / 7)
    assert full["extra_terms"]["attributes"]["weight"] == pytest.approx(0.3 / 2)
    terms = full["branch_terms"]
    assert terms["s_g"] == ["id", "triplet", "ssr", "attributes"] and terms["t_g"] == ["id", "triplet", "attributes"]
    assert terms["s_l3"] == ["id", "triplet", "ssr"] and terms["t_l3"] == ["id", "triplet"]
    no_bn = hashing.criterion_options(VARIANTS["ssr"])
    assert no_bn["extra_terms"]["ssr"]["weight"] == pytest.approx(0.7 / 7), "alpha = 0.7 without BN"
    dsh = hashing.criterion_options(VARIANTS["dsh+bn"])
    assert dsh["id_weight"] == pytest.approx(1 / 7) and "ssr" not in dsh["extra_terms"]
    assert dsh["extra_terms"]["dsh"]["weight"] == pytest.approx(0.01 / 7)
    assert dsh["extra_terms"]["attributes"]["weight"] == pytest.approx(0.3) and terms.keys() > dsh["branch_terms"].keys()
    assert hashing.criterion_options(VARIANTS["mode-a"])["extra_terms"] == {"ssr": {"weight": pytest.approx(0.3 / 7)}}


def test_the_variants_are_the_tables_rows():
    assert VARIANTS["full"] == VARIANTS["ssr+bn"].__class__(**{**asdict(VARIANTS["ssr+bn"]), "label": "baseline(SSR)+AAB"})
    assert (VARIANTS["mode-c"].aab, VARIANTS["mode-c"].attributes) == (False, 30)
    assert [VARIANTS[f"full-{b}"].bits for b in (512, 256, 128)] == [512, 256, 128]
    base = VARIANTS["baseline-sigmoid"]
    assert (base.relaxation, base.bn, base.aab, base.attributes) == ("sigmoid", False, False, 0)
    assert len([v for v in VARIANTS if hashing.TABLE_OF[v] == "6"]) == 12


def test_config_run_names_and_the_paper_preset():
    cfg = hashing.config()
    assert cfg.model == "ssr_hashing" and cfg.model_options == asdict(VARIANTS["full"])
    assert (cfg.height, cfg.width, cfg.flip_test, cfg.eval_metric) == (192, 64, False, "euclidean")
    assert cfg.name == "full_efficientnet_lite0-imagenet_192x64_e6_s0"
    assert hashing.config(variant="full", bits=512, alpha=0.7).name == \
        "full_b512_alpha0.7_efficientnet_lite0-imagenet_192x64_e6_s0"
    preset = hashing.config(paper_preset=True)
    assert preset.name == "full_resnet50-imagenet_384x128_e350_s0"
    assert (preset.optimizer, preset.lr, preset.warmup_start_factor, preset.milestones) == ("sgd", 0.01, 0.1, (200, 300))
    assert (preset.criterion_options["metric"], preset.criterion_options["margin"]) == ("euclidean", 0.3)


@pytest.mark.parametrize("given, match", [
    ({"variant": "ssr-hash"}, "unknown hashing variant 'ssr-hash'"),
    ({"bits": 100}, "cannot be split"),
    ({"alpha": "much"}, "parameter 'alpha' must be a number"),
    ({"optimizer": "lbfgs"}, "parameter 'optimizer' must be one of"),
    ({"gamma": 1}, "unknown parameter"),
])
def test_bad_parameters_are_named(given, match):
    with pytest.raises(ValueError, match=match):
        hashing.config(**given)


def test_attribute_labels_must_exist_and_match_the_heads():
    no_labels = SimpleNamespace(name="cuhk03_np", root="/data", attributes=None)
    with pytest.raises(ValueError, match="no attribute labels: train with attributes=0"):
        hashing._attribute_matrix(no_labels, "train", 30)
    table = pd.DataFrame({"pid": [1, 2], "a": pd.array([1, None], dtype="Int8"), "b": pd.array([0, 1], dtype="Int8")})
    ds = SimpleNamespace(name="x", root="/x", attributes={}, attribute_targets=lambda split: table)
    values, names = hashing._attribute_matrix(ds, "train", 2)
    assert names == ["a", "b"] and values[0].tolist() == [1.0, 0.0] and values[1, 0] != values[1, 0]
    with pytest.raises(ValueError, match="set the model's attributes=2"):
        hashing._attribute_matrix(ds, "train", 30)


@pytest.mark.slow
def test_papermill_tiny_hashing_run_writes_a_valid_record(tmp_path):
    import papermill as pm

    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=dict(TINY, output_dir="results"),
                        cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    record = read_record(tmp_path / "results" / "hashing" / "synthped" / "tiny.json")  # validates
    cfg, final = record["config"], record["final"]
    assert record["notebook"] == "book/hashing/train.ipynb" and record["variant"] == "full"
    assert cfg["model"] == "ssr_hashing" and HashingConfig(**cfg["model_options"]).bits == 128
    assert {"s_g/ssr", "s_g/attributes", "t_g/attributes", "t_l6/triplet"} <= set(record["epochs"][0]["losses"])
    assert "t_l1/ssr" not in record["epochs"][0]["losses"]
    assert record["efficiency"]["feature_dim"] == 128
    assert 0 <= final["teacher"]["mAP"] <= 1 and 0 <= final["float"]["mAP"] <= 1
    assert len(final["teacher"]["per_query"]["AP"]) == final["num_valid_queries"]
    assert len(final["attributes"]["per_attribute"]) == 30 and 0 < final["attributes"]["mean"] < 1
    afr = final["afr"]
    gallery = record["dataset_summary"]["gallery"]["images"]
    assert [r["w"] for r in afr] == hashing.afr_windows(gallery, 128, 30) and afr[-1]["w"] == gallery
    # w = N is the plain search: AFR's mAP there is the record's own mAP of the student's code
    assert afr[-1]["mAP"] == pytest.approx(final["mAP"], abs=1e-9) and afr[-1]["attribute_cmc_at_w"] == 1.0
    assert all(r["mAP_truncated"] <= r["mAP"] + 1e-12 for r in afr)
    # the results page's frame: the run, and its teacher code as Table 6's teacher row
    frame = hashing.records_frame(tmp_path / "results").set_index("variant")
    assert list(frame.index) == ["full", "full:teacher"]
    assert frame.loc["full:teacher", "mAP"] == pytest.approx(100 * final["teacher"]["mAP"])
    assert frame.loc["full", "mAP"] == pytest.approx(100 * final["mAP"]) and frame.loc["full", "bits"] == 128
    curve = hashing.afr_frame(tmp_path / "results")
    assert curve.w.tolist() == [r["w"] for r in afr] and (curve["plain mAP"] == 100 * final["mAP"]).all()


def test_paper_rows_map_every_printed_row_to_a_variant():
    for table in ("1", "6", "7"):
        rows, paper, base = hashing.paper_rows(table)
        assert list(rows) == list(paper.index) and base in rows and rows[base] == "full"
        assert all(v.split(":")[0] in VARIANTS for v in rows.values())
    rows, paper, _ = hashing.paper_rows("6")
    assert rows["SSR + BN (teacher)"] == "full:teacher" and paper.loc["SSR + BN", "mAP"] == 86.0
    with pytest.raises(ValueError, match="table must be one of"):
        hashing.paper_rows("8")


def test_afr_windows_hold_the_ideal_windows_of_the_shorter_codes():
    ws = hashing.afr_windows(15_912, 2048, 30)
    assert {761, 1755, 3744} <= set(ws) and ws[0] == 10 and ws[-1] == 15_912 and ws == sorted(set(ws))
