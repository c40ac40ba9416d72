"""The feature-fusion chapter's training notebook: the parameters cell is the recipe's defaults, the introduction
lists every variant, a tiny papermill run writes a valid record with the 10,752-d descriptor, and an unknown variant
stops at the first cell of ours."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from reidlib.engine.records import read_record
from reidlib.papers.feature_fusion import RECIPE, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "book" / "feature_fusion" / "train.ipynb"
TINY = dict(dataset="synthped", synthped_preset="tiny", backbone="resnet18", pretrained=False, height=96, width=32,
            epochs=1, milestones="[]", P=4, K=2, max_steps_per_epoch=2, device="cpu", num_threads=1, run_name="tiny",
            progress=False)


def test_the_notebook_is_its_parameters_and_one_call_to_the_recipe():
    cells = RECIPE.check_notebook(NOTEBOOK)  # the parameters cell is the recipe's defaults, then train(...)
    code = [c for c in cells if c.cell_type == "code"]
    assert "from reidlib.papers import feature_fusion" in code[1].source
    assert "feature_fusion.train(**feature_fusion.RECIPE.notebook_parameters(globals()))" in code[1].source
    assert len(code) == 3 and all(not c.get("outputs") for c in code)
    assert all(f"`{v}`" in cells[0].source for v in VARIANTS), "the introduction lists every variant"


@pytest.mark.slow
def test_papermill_tiny_run_writes_a_valid_record(tmp_path):
    import papermill as pm

    extra = {"misalignment": [25], "cross_domain": {"dataset": "synthped", "synthped_preset": "tiny"}}
    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=dict(TINY, output_dir="results", **extra),
                        cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    record = read_record(tmp_path / "results" / "feature_fusion" / "synthped" / "tiny.json")  # validates
    assert record["notebook"] == "book/feature_fusion/train.ipynb" and record["variant"] == "full"
    assert record["config"]["model"] == "mgo_fusion" and record["config"]["backbone"] == "resnet18"
    assert record["efficiency"]["feature_dim"] == 21 * 512 == 10_752
    final = record["final"]
    assert 0 <= final["mAP"] <= 1 and 0 <= final["rank1"] <= 1
    # the "other" test set is the run's own here: its evaluation must reproduce the run's metrics exactly
    assert final["cross_domain"]["dataset"] == "synthped"
    assert final["cross_domain"]["mAP"] == final["mAP"] and final["cross_domain"]["cmc"] == final["cmc"]
    shifted = final["misaligned@25"]
    assert 0 <= shifted["mAP"] <= 1 and shifted["num_valid_queries"] == final["num_valid_queries"]
    assert shifted["per_query"]["AP"] != final["per_query"]["AP"], "misaligned boxes change the ranking"
    # the results page's frame: one row per evaluation, the curve of the misaligned ones
    from reidlib.papers.feature_fusion import misalignment_curve, records_frame

    runs = records_frame(tmp_path / "results")
    assert sorted(runs.variant) == ["full", "full:misaligned@25", "full:→synthped"]
    assert (runs["trained on"] == "synthped").all()
    curve = misalignment_curve(runs)
    assert list(curve.index) == [("full", 0), ("full", 25)]
    assert curve.loc[("full", 25), "mAP"] == 100 * shifted["mAP"] and curve.loc[("full", 0), "seeds"] == 1


@pytest.mark.slow
def test_papermill_unknown_variant_stops_at_the_first_cell(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"),
                            parameters=dict(TINY, variant="s+c", output_dir="results"), cwd=str(tmp_path),
                            kernel_name="python3", progress_bar=False)
    assert err.value.ename == "ValueError" and "s+c" in err.value.evalue
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    code = [c for c in out.cells if c.cell_type == "code"]
    failed = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    tags = [c.metadata.get("tags", []) for c in code]
    # parameters, papermill's injected parameters, then the call: the first cell of ours
    assert failed and "injected-parameters" in tags[failed[0] - 1], json.dumps(tags)
    assert not list(tmp_path.glob("**/*.json"))
