"""The committed run records and the recipes agree: each record's own parameters, through its chapter's
recipe, plan the same run (name, resolved model options, criterion, metric) -- what ``make results``
re-runs is what the book shows."""
from __future__ import annotations

import pytest

from reidlib.engine.records import read_records
from reidlib.papers.regime import RECIPES
from reidlib.paths import results_dir

RECORDS = read_records(results_dir())


@pytest.mark.parametrize("record", RECORDS, ids=[r["run_name"] for r in RECORDS])
def test_record_replans_through_its_recipe(record, tmp_path):
    recipe = RECIPES[record["chapter"]]
    params = dict(record["parameters"], device="cpu", amp=False, resume=False)
    if params.get("data_root"):
        params["data_root"] = str(tmp_path)  # the real data is not needed to plan the run
    cfg = recipe.config(**params)
    assert cfg.name == record["run_name"]
    assert cfg.model == record["config"]["model"] and cfg.variant == record["variant"]
    if record["chapter"] in ("esnet", "henet", "hashing"):
        options = record["config"]["model_options"]
        if record["chapter"] == "henet":  # JSON gives lists where the config holds tuples
            from reidlib.models.henet import HENetConfig

            assert HENetConfig(**cfg.model_options) == HENetConfig(**options)
        elif record["chapter"] == "hashing":
            from reidlib.models.hashing import HashingConfig

            assert HashingConfig(**cfg.model_options) == HashingConfig(**options)
        else:
            assert cfg.model_options == options
        assert cfg.criterion_options["triplet_weight"] == record["config"]["criterion_options"]["triplet_weight"]
    # the triplet's form: re-running a record trains the distance and margin it trained with, whatever the
    # recipe's default has become since
    ran = record["config"]["criterion_options"]
    if record["chapter"] == "reid_done_right":  # Eq. (1)'s dot-product margin, and how the triplets were drawn
        assert cfg.criterion_options == {"margin": ran["margin"], "mining": ran["mining"]}
        return
    assert (cfg.criterion_options["metric"], cfg.criterion_options["margin"]) == (
        ran.get("metric", "euclidean"), ran["margin"])
