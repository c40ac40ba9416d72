"""The "Re-ID done right" chapter's recipe and training notebook: the parameters cell is the recipe, every
variant is documented, the config routes a variant into the model, the losses and the pipeline, a tiny
two-stage run writes one record with both stages' curves, an interrupted run resumes to the same weights in
either stage, and bad parameters are named."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reidlib.engine.checkpoint import load_checkpoint
from reidlib.engine.records import read_record
from reidlib.engine.trainer import Trainer
from reidlib.papers import reid_done_right as rdr
from reidlib.papers.reid_done_right import RECIPE, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "book" / "reid_done_right" / "train.ipynb"
TINY = dict(dataset="synthped", synthped_preset="tiny", backbone="resnet18", pretrained=False, largest_side=64,
            classification_size=32, classification_iterations=3, classification_batch=16, iterations=4, refresh=2,
            triplets=4, half_life=2, pool_size=48, top=5, device="cpu", num_threads=1, num_workers=0, progress=False)


def test_the_notebook_is_its_parameters_and_one_call_to_the_recipe():
    cells = RECIPE.check_notebook(NOTEBOOK)  # the parameters cell is the recipe's defaults, then train(...)
    code = [c for c in cells if c.cell_type == "code"]
    assert "reid_done_right.train(" in code[1].source and len(code) == 3
    assert all(f"`{v}`" in cells[0].source for v in VARIANTS), "the introduction lists every variant"


def test_config_routes_the_variant():
    cfg = rdr.config()
    assert (cfg.model, cfg.criterion, cfg.optimizer, cfg.last_stride) == ("good_practices", "ranking", "adam", 2)
    assert rdr.config(**rdr.PAPER_PRESET).optimizer == "sgd" and rdr.config(**rdr.PAPER_PRESET).lr == 1e-3
    assert cfg.model_options == {"pooling": "gmp", "dim": 2048, "frozen_bn": True, "stage": "ranking"}
    assert (cfg.height, cfg.width, cfg.flip_test, cfg.eval_metric) == (128, 64, False, "cosine")
    assert cfg.epochs == 128 // 16 and cfg.schedule_options == {"half_life": 16}
    assert cfg.name == "full_efficientnet_lite0-imagenet_L128_T128_s0"
    assert rdr.config(variant="avg-pooling").model_options["pooling"] == "gap"
    assert rdr.config(variant="crop").padding > 0 and rdr.config().padding == 0
    assert rdr.config(variant="batch-hard").criterion_options["mining"] == "batch_hard"


def test_schedules_follow_the_paper_shape():
    s = rdr.stage_schedules(dict(RECIPE.defaults))
    t1 = RECIPE.defaults["classification_iterations"]
    lr1, lr2 = RECIPE.defaults["classification_lr"], RECIPE.defaults["lr"]
    assert s["classification"].lr_at(0) == pytest.approx(lr1)
    assert s["classification"].lr_at(0, t1) == pytest.approx(lr1 / 100)  # 1e-2 -> 1e-4 in the paper
    assert s["ranking"].lr_at(0, 16) == pytest.approx(lr2 / 2) and s["ranking"].lr_at(0, 128) == pytest.approx(lr2 / 2 ** 8)
    paper = rdr.stage_schedules({**RECIPE.defaults, **rdr.PAPER_PRESET})
    assert paper["ranking"].lr_at(0, 512) == pytest.approx(5e-4) and paper["ranking"].lr_at(0, 4096) == pytest.approx(3.90625e-6)


def test_ranking_criterion_is_one_hinge_in_both_minings():
    """Batch-hard on the cosine distance of unit vectors is Eq. (1) on each anchor's hardest (p, n)."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(8, 5, dtype=torch.float64), dim=1)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    out = {"branches": {"main": {"feat": feats}}}
    got = rdr.RankingCriterion(margin=0.1, mining="batch_hard")(out, SimpleNamespace(pids=pids))["ranking"]
    sim = feats @ feats.T
    want = []
    for a in range(8):
        pos = [j for j in range(8) if pids[j] == pids[a] and j != a]
        neg = [j for j in range(8) if pids[j] != pids[a]]
        want.append(max(0.0, 0.1 + max(sim[a, neg]).item() - min(sim[a, pos]).item()))
    assert got.item() == pytest.approx(sum(want) / 8)


@pytest.mark.parametrize("given, match", [
    ({"variant": "ours"}, "parameter 'variant' must be one of"),
    ({"iterations": 100}, "multiple of 'refresh'"),
    ({"triplets": 10, "accum_steps": 4}, "multiple of 'accum_steps'"),
    ({"largest_side": 16}, "smaller than the network's stride"),
    ({"cutout_max": 1.5}, "cutout_max"),
    ({"margin": -0.1}, "margin"),
    ({"qe_k": -1}, "qe_k"),
    ({"pool": 10}, "unknown parameter"),
])
def test_bad_parameters_are_named(given, match):
    with pytest.raises(ValueError, match=match):
        rdr.config(**given)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path, map_location="cpu")["model"]


@pytest.mark.slow
def test_papermill_tiny_run_writes_one_record_with_both_stages(tmp_path):
    import papermill as pm

    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=dict(TINY, run_name="tiny"),
                        cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    record = read_record(tmp_path / "results" / "reid_done_right" / "synthped" / "tiny.json")  # validates
    stages = [e["stage"] for e in record["epochs"]]
    assert stages.count("ranking") == 2 and stages[0] == "classification"
    assert record["stages"]["classification"]["iterations"] == 3 and record["stages"]["ranking"]["iterations"] == 4
    ranking = [e for e in record["epochs"] if e["stage"] == "ranking"]
    assert set(ranking[0]["losses"]) >= {"ranking"} and ranking[-1]["mining"]["pools_embedded"] == 2
    assert 0 <= record["final"]["mAP"] <= 1 and 0 <= record["final"]["reranked"]["mAP"] <= 1
    assert record["config"]["model_options"]["stage"] == "ranking"
    assert record["efficiency"]["feature_dim"] == 2048
    frame = rdr.records_frame(tmp_path / "results")
    assert sorted(frame["variant"]) == ["full@L64", "full@L64:reranked"]
    plain, reranked = (frame.set_index("variant").loc[v] for v in ("full@L64", "full@L64:reranked"))
    assert plain["mAP"] == pytest.approx(100 * record["final"]["mAP"])
    assert reranked["mAP"] == pytest.approx(100 * record["final"]["reranked"]["mAP"])
    assert len(reranked["per-query AP"]) == record["final"]["num_valid_queries"]
    assert plain["protocol"] == "resnet18 T4" and plain["mAP (stage 1)"] >= 0 and plain["pool minutes"] > 0


class _Interrupt(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [2, 6], ids=["in-classification", "in-ranking"])
def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch, stop_after):
    monkeypatch.chdir(tmp_path)  # the checkpoints go to ./runs
    full = rdr.train(**TINY, output_dir=str(tmp_path / "a"), run_name="a")
    steps = {"n": 0}
    original = Trainer._train_step

    def counting(self, *args):
        steps["n"] += 1
        if steps["n"] > stop_after:
            raise _Interrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_train_step", counting)
    with pytest.raises(_Interrupt):
        rdr.train(**TINY, output_dir=str(tmp_path / "b"), run_name="b")
    monkeypatch.setattr(Trainer, "_train_step", original)
    resumed = rdr.train(**TINY, output_dir=str(tmp_path / "b"), run_name="b", resume=True)
    a, b = _weights(Path(full["checkpoint"])), _weights(Path(resumed["checkpoint"]))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert resumed["final"]["mAP"] == full["final"]["mAP"]
