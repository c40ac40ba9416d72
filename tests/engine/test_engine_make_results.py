"""`make results`: which notebooks it re-runs, with which parameters, and what it skips."""
from __future__ import annotations

import copy

from test_engine_records import sample_record

from reidlib.engine import make_results as mr
from reidlib.engine.records import write_record


def _write(root, name, **changes):
    rec = copy.deepcopy(sample_record())
    rec.update(run_name=name, **changes)
    write_record(rec, root / "results" / "baseline" / "synthped" / f"{name}.json")


def test_planned_runs_use_cpu_defaults_and_drop_duplicates(tmp_path):
    _write(tmp_path, "a", parameters={"epochs": 2, "device": "cuda", "amp": True})
    _write(tmp_path, "b", parameters={"epochs": 2, "device": "cuda", "amp": True})  # same notebook + parameters
    _write(tmp_path, "c", parameters={"epochs": 3})
    _write(tmp_path, "d", notebook=None)
    runs = mr.planned_runs(tmp_path / "results")
    assert len(runs) == 2
    assert all(r.parameters["device"] == "cpu" and r.parameters["amp"] is False and r.parameters["resume"] is False
               for r in runs)
    assert sorted(r.parameters["epochs"] for r in runs) == [2, 3]


def test_dry_run_lists_and_skips_missing_data(tmp_path, capsys):
    _write(tmp_path, "real", parameters={"data_root": "no/such/dataset"})
    _write(tmp_path, "synth", parameters={"data_root": None})
    assert mr.main(["--root", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "real.json: skipped, data_root 'no/such/dataset' not found" in out
    assert "synth.json: {" in out and '"device": "cpu"' in out


def test_no_records_is_not_an_error(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    assert mr.main(["--root", str(tmp_path)]) == 0
    assert "no run records" in capsys.readouterr().out
