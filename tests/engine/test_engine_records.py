"""Run records: the schema accepts what the engine writes and rejects what the book could not read."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from reidlib.engine import records as rr

ROOT = Path(__file__).resolve().parents[2]


def sample_record() -> dict:
    metrics = {"mAP": 0.5, "mINP": 0.2, "rank1": 0.6, "rank5": 0.8, "rank10": 0.9}
    return {
        "schema_version": rr.SCHEMA_VERSION, "chapter": "baseline", "dataset": "synthped", "run_name": "r",
        "config": {"epochs": 2, "model": "baseline", "model_options": {"pooling": "gap"}, "criterion": "reid",
                   "criterion_options": {"label_smoothing": 0.1}, "eval_metric": "cosine"},
        "notebook": "book/baseline/train.ipynb", "parameters": {"epochs": 2},
        "epochs": [{"epoch": 1, "lr": 1e-3, "losses": {"id": 2.0, "total": 2.0}, "time_s": 1.5, "steps": 3},
                   {"epoch": 2, "lr": 1e-3, "losses": {"id": 1.0, "total": 1.0}, "time_s": 1.5, "steps": 3,
                    "metrics": metrics}],
        "final": {**metrics, "cmc": [0.6, 0.7], "num_valid_queries": 10},
        "efficiency": {"params": 10}, "reidlib_version": "0.1.0", "torch_version": torch.__version__,
        "git_commit": "unknown", "device": "cpu", "device_name": "x", "wall_time_s": 3.0,
        "date": rr.now_iso(),
    }


def test_a_complete_record_validates_and_round_trips(tmp_path):
    path = rr.write_record(sample_record(), rr.record_path(tmp_path, "baseline", "synthped", "r"))
    assert path == tmp_path / "baseline" / "synthped" / "r.json"
    assert rr.read_record(path) == json.loads(path.read_text())
    [rec] = rr.read_records(tmp_path)
    assert rec["path"] == str(path)


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r.pop("git_commit"), "'git_commit' is a required property"),
    (lambda r: r["final"].update(mAP=1.5), "final"),
    (lambda r: r["epochs"][0].update(epoch=0), "epochs/0/epoch"),
    (lambda r: r["epochs"][1]["metrics"].pop("rank5"), "epochs/1/metrics"),
    (lambda r: r.update(device="tpu"), "device"),
    (lambda r: r["epochs"][0]["losses"].update(id="high"), "epochs/0/losses/id"),
    (lambda r: r["config"].pop("model_options"), "'model_options' is a required property"),
    (lambda r: r["config"].update(eval_metric="manhattan"), "config/eval_metric"),
])
def test_schema_rejects_broken_records(mutate, where):
    rec = copy.deepcopy(sample_record())
    mutate(rec)
    with pytest.raises(ValueError, match="invalid") as err:
        rr.validate_record(rec, source="x.json")
    assert where in str(err.value) and "x.json" in str(err.value)


def test_writing_an_invalid_record_leaves_nothing(tmp_path):
    rec = sample_record()
    rec["final"]["mAP"] = float("nan")
    with pytest.raises(ValueError):
        rr.write_record(rec, tmp_path / "a.json")
    assert not list(tmp_path.iterdir())


def test_git_commit_inside_and_outside_a_repository(tmp_path):
    assert rr.git_commit(tmp_path) == "unknown"
    commit = rr.git_commit(ROOT)
    assert commit == "unknown" or (len(commit) == 40 and int(commit, 16) >= 0)


def test_provenance_names_the_cpu():
    p = rr.provenance("cpu")
    assert p["device"] == "cpu" and "torch threads" in p["device_name"]
    assert p["reidlib_version"] and p["date"].endswith("+00:00")


def test_shipped_records_validate():
    for path in sorted((ROOT / "results").glob("**/*.json")):
        rr.read_record(path)


def test_every_committed_record_is_schema_2_and_names_its_model():
    """The book's records say which model trained (resolved options), its criterion and its metric."""
    records = rr.read_records(ROOT / "results")
    assert records, "the book reads committed run records"
    for r in records:
        assert r["schema_version"] == 2 and r["config"]["model"] in ("baseline", "esnet", "ssr_hashing",
                                                                          "good_practices"), r["path"]
        assert r["num_classes"] == r["dataset_summary"]["train"]["ids"], r["path"]
        if r["config"]["model"] == "esnet":
            from dataclasses import fields

            from reidlib.models.esnet import ESNetConfig

            assert set(r["config"]["model_options"]) == {f.name for f in fields(ESNetConfig)}, r["path"]
            assert "_P0" not in r["run_name"], "P is the batch's identity count, never the erasing probability"
        if r["config"]["model"] == "ssr_hashing":
            from dataclasses import fields

            from reidlib.models.hashing import HashingConfig

            assert set(r["config"]["model_options"]) == {f.name for f in fields(HashingConfig)}, r["path"]
