"""The CPU regime's plan: three seeds per setting, one record path per run, only the baseline recipe's
parameters; the dry run lists what is missing."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from reidlib.papers import regime
from reidlib.papers.baseline import RECIPE

ALL = regime.planned(regime.PLAN)


def _setting(p: dict) -> str:
    return json.dumps({k: v for k, v in p.items() if k != "seed"}, sort_keys=True)


def _resolvable(p: dict, tmp_path) -> dict:
    """The CUHK03-NP runs point at ../shared/realdata: any existing folder gives the same record path."""
    return {**p, "data_root": str(tmp_path)} if p.get("data_root") else p


def test_every_setting_has_the_three_seeds():
    assert regime.SEEDS == (0, 1, 2)
    assert set(regime.PLAN) == {"pretraining", "triplet", "cuhk03"}
    for group, runs in regime.PLAN.items():
        seeds = defaultdict(list)
        for p in runs:
            seeds[_setting(p)].append(p["seed"])
        assert seeds and all(sorted(s) == [0, 1, 2] for s in seeds.values()), (group, dict(seeds))


def test_every_planned_parameter_is_a_recipe_parameter():
    for p in ALL:
        assert set(p) <= set(RECIPE.defaults), sorted(set(p) - set(RECIPE.defaults))
        RECIPE.parameters(p)  # and of the parameter's type


def test_every_planned_run_has_its_own_record_path(tmp_path):
    paths = [regime.record_path_of(_resolvable(p, tmp_path), "out") for p in ALL]
    assert len(set(paths)) == len(paths) == len(ALL)
    assert all(p.parts[:2] == ("out", "baseline") and p.suffix == ".json" for p in paths)
    names = {p.stem for p in paths}
    assert {"efficientnet_lite0-imagenet_128x64_e6_s0", "efficientnet_lite0-imagenet_128x64_e6_id-only_s0",
            "efficientnet_lite0_128x64_e6_ramp0.25_s2", "resnet18_128x64_e6_s1"} <= names


def test_the_plan_runs_the_triplet_question_on_lite0_with_the_probe():
    triplet = regime.PLAN["triplet"]
    assert {(p["backbone"], p["pretrained"], p["triplet_ramp"]) for p in triplet} == {
        ("efficientnet_lite0", False, 0.25), ("efficientnet_lite0", True, 0.25)}
    assert all(p["probe_triplet"] for p in triplet + regime.PLAN["pretraining"])


def test_planned_rejects_an_unknown_group():
    with pytest.raises(ValueError, match=r"unknown group 'nope'; expected some of \['pretraining', 'triplet', 'cuhk03'\]"):
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
