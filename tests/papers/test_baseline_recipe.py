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
TINY = dict(dataset="synthped", synthped_preset="tiny", backbone="resnet18", height=64, width=32, epochs=2,
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
