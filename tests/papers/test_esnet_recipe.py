"""The ES-Net chapter's training notebook under papermill: a tiny ES-Net run on tiny synthped
(with the Fig. 3 probe on) writes a run record that validates, logs the P-pooling exponent and
the erased-batch losses; a wrong variant stops the first cell after the parameters."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from reidlib.engine.records import read_record
from reidlib.papers.esnet import RECIPE, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "book" / "esnet" / "train.ipynb"
TINY = dict(dataset="synthped", synthped_preset="tiny", variant="esnet", height=64, width=32, epochs=2, P=4, K=4,
            warmup_epochs=1, milestones="[1]", eval_every=2, max_steps_per_epoch=2, device="cpu", num_threads=1,
            probe_erased_loss=True, probe_every=1, run_name="tiny", progress=False)


def test_the_parameters_cell_names_the_variant_knobs_and_every_variant_is_documented():
    code = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    for name in ("dataset", "data_root", "variant", "erasing_ratio", "erasing_prob", "saliency_layer", "esb_pooling",
                 "paper_preset", "epochs", "P", "K", "device", "seed", "output_dir", "resume"):
        assert f"\n{name} = " in "\n" + code[0].source, f"parameter {name} missing"
    intro = nbformat.read(NOTEBOOK, as_version=4).cells[0].source
    assert all(f"`{v}`" in intro for v in VARIANTS), "the notebook's introduction lists every variant"


def test_the_notebook_is_its_parameters_and_one_call_to_the_recipe():
    """The parameters cell holds exactly the recipe's parameters with its defaults, in its order; the next
    cell calls ``esnet.train``; nothing else trains."""
    code = [c for c in RECIPE.check_notebook(NOTEBOOK) if c.cell_type == "code"]
    assert "esnet.train(" in code[1].source and len(code) == 3
    assert not any("run_training" in c.source or "Trainer" in c.source for c in code)


@pytest.mark.slow
def test_papermill_tiny_esnet_run_writes_a_valid_record(tmp_path):
    import papermill as pm

    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=dict(TINY, output_dir="results"),
                        cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    record = read_record(tmp_path / "results" / "esnet" / "synthped" / "tiny.json")  # validates
    assert record["notebook"] == "book/esnet/train.ipynb" and record["parameters"]["variant"] == "esnet"
    # the record says which model trained: every resolved ESNetConfig field, the criterion, the metric
    from dataclasses import asdict

    cfg = record["config"]
    assert record["variant"] == "esnet" and cfg["model"] == "esnet"
    assert cfg["model_options"] == asdict(VARIANTS["esnet"]) and cfg["model_options"]["ratio"] == 0.2
    assert cfg["criterion_options"]["label_smoothing"] == 0.0 and cfg["criterion_options"]["triplet_weight"] == 1.0
    assert cfg["padding"] == 0 and cfg["eval_metric"] == "cosine" and record["final"]["metric"] == "cosine"
    assert (tmp_path / record["checkpoint"]).is_file() or Path(record["checkpoint"]).is_file()
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and "metrics" in record["epochs"][-1]
    assert all("esb/ppool_l" in e for e in record["epochs"]), record["epochs"][0].keys()
    assert any(k.startswith("erased/") for k in record["epochs"][0]), record["epochs"][0].keys()
    assert 0 <= record["final"]["mAP"] <= 1


@pytest.mark.slow
def test_papermill_unknown_variant_stops_at_the_first_cell(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=dict(TINY, variant="esnet2"),
                            cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    assert err.value.ename == "ValueError" and "unknown ES-Net variant 'esnet2'" in err.value.evalue
    assert not list(tmp_path.glob("**/*.json"))


def test_the_cpu_regimes_triplet_reaches_the_branches_and_names_the_run():
    from reidlib.losses import build_criterion
    from reidlib.papers import esnet

    cfg = esnet.config(variant="esnet")
    assert (cfg.criterion_options["metric"], cfg.criterion_options["margin"]) == ("cosine", 0.1)
    assert cfg.name == "esnet_ratio0.2_prob0.5_layer4_cosine_m0.1_efficientnet_lite0-imagenet_128x64_e6_s0"
    crit = build_criterion(cfg.criterion, 8, **cfg.criterion_options)
    assert (crit.triplet.metric, crit.triplet.margin) == ("cosine", 0.1)
    # a variant without the triplet names no triplet form
    assert esnet.config(variant="base").name == "base_efficientnet_lite0-imagenet_128x64_e6_s0"
    # the paper's triplet: by parameter, or with the paper's preset
    paper = esnet.config(variant="esnet", triplet_metric="euclidean", margin=0.3)
    assert paper.name == "esnet_ratio0.2_prob0.5_layer4_efficientnet_lite0-imagenet_128x64_e6_s0"
    preset = esnet.config(variant="esnet", paper_preset="person", backbone="resnet50", pretrained=False)
    assert (preset.criterion_options["metric"], preset.criterion_options["margin"]) == ("euclidean", 0.3)


def test_overridden_fields_name_what_a_records_model_changes_from_its_row():
    from dataclasses import asdict

    from reidlib.papers.esnet import config, overridden_fields

    row = config(variant="esb").to_dict()["model_options"]
    assert overridden_fields("esb", row) == ""
    swept = config(variant="esb", erasing_ratio=0.2).to_dict()["model_options"]
    assert overridden_fields("esb", swept) == "ratio"
    both = config(variant="esnet", erasing_ratio=0.3, erasing_prob=0.1).to_dict()["model_options"]
    assert overridden_fields("esnet", both) == "prob, ratio"
    assert overridden_fields("no-such-row", asdict(VARIANTS["esb"])) == "variant"


def test_the_sweep_frame_labels_ratios_and_judges_fig_4s_claims():
    """Only rows that differ from esb/esnet in R at most enter the sweep, relabelled by R; a ratio whose
    three seeds all beat the other's by far holds, and the reverse claim does not."""
    import pandas as pd

    from reidlib.papers.esnet import SWEEP_CLAIMS, sweep_frame
    from reidlib.papers.results import judge_claims

    rows = [{"variant": "esnet", "R": r, "overridden": "" if r == 0.2 else "ratio", "seed": s,
             "mAP": base + s * 0.5, "rank-1": base, "per-query AP": None}
            for r, base in ((0.1, 30.0), (0.2, 40.0), (0.3, 35.0)) for s in range(3)]
    rows += [{"variant": "esnet", "R": 0.2, "overridden": "prob, ratio", "seed": 0, "mAP": 99.0, "rank-1": 99.0,
              "per-query AP": None},
             {"variant": "base", "R": None, "overridden": "", "seed": 0, "mAP": 10.0, "rank-1": 10.0, "per-query AP": None}]
    sweep = sweep_frame(pd.DataFrame(rows))
    assert sorted(sweep.variant.unique()) == ["esnet@R10", "esnet@R20", "esnet@R30"]
    assert set(sweep.branches) == {"esnet"} and 99.0 not in sweep.mAP.values
    claims = judge_claims(SWEEP_CLAIMS, sweep)
    ours = claims.loc[[c for c in claims.index if c.startswith("AIB+ESB")]]
    assert ours.verdict.str.startswith("held").all()
    assert claims.loc[[c for c in claims.index if c.startswith("ESB")]].verdict.eq("no run").all()
    reverse = judge_claims([("R = 10 % beats R = 20 %", "esnet@R10", "esnet@R20")], sweep)
    assert reverse.verdict.iloc[0].startswith("did not hold")
