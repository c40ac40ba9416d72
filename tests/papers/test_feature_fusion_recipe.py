"""The feature-fusion recipe: every variant is a valid network and run config, the losses are the released
code's (21 label-smoothed ID losses and 6 level triplets, margin 1.0, averaged) through ReIDCriterion, run names,
the code's schedule as a preset, bad parameters named, and a tiny training run writes a record."""
from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from reidlib.engine.run import build_config_schedule
from reidlib.engine.schedules import lr_curve
from reidlib.losses import ReIDCriterion
from reidlib.losses.softmax import CrossEntropyLabelSmooth
from reidlib.losses.triplet import TripletLoss
from reidlib.models.fusion import FusionConfig, MGOFusionNet
from reidlib.papers import feature_fusion as ff
from reidlib.papers.feature_fusion import TABLE_ROWS, VARIANTS


def test_every_variant_is_a_valid_network_and_run_config():
    assert set().union(*map(set, TABLE_ROWS.values())) == set(VARIANTS)
    assert [len(TABLE_ROWS[t]) for t in (6, 7, 9, 10)] == [6, 6, 9, 8]
    for name, variant in VARIANTS.items():
        assert isinstance(variant, FusionConfig) and ff.TABLE_OF[name]
        cfg = ff.config(variant=name)
        assert cfg.model == "mgo_fusion" and FusionConfig(**cfg.model_options) == variant
    # the six orders of Table IX are the six permutations; Table X's subsets the printed ones
    orders = {VARIANTS[v].attention_order for v in TABLE_ROWS[9] if VARIANTS[v].stages == (1, 2, 3, 4)}
    assert len(orders) == 6
    assert [VARIANTS[v].stages for v in TABLE_ROWS[10]] == [(1,), (2,), (3,), (4,), (1, 2), (1, 2, 3), (2, 3, 4),
                                                           (1, 2, 3, 4)]
    base, full = VARIANTS["baseline"], VARIANTS["full"]
    assert (base.parts, base.head, base.stages, base.tricks, base.sam, base.cam) == ("global", "bn", (4,), False,
                                                                                  False, False)
    assert (full.parts, full.head, full.attention_order) == ("mgo", "mpfe", "S+cat+C")


def test_the_tricks_switch_erasing_warm_up_and_label_smoothing():
    with_tricks, without = ff.config(variant="tricks"), ff.config(variant="baseline")
    assert (with_tricks.random_erasing, with_tricks.criterion_options["label_smoothing"]) == (0.5, 0.1)
    assert with_tricks.warmup_epochs == ff.RECIPE.defaults["warmup_epochs"]
    assert (without.random_erasing, without.warmup_epochs, without.criterion_options["label_smoothing"]) == (0, 0, 0)
    assert with_tricks.padding == 0 and with_tricks.eval_metric == "cosine"


def test_criterion_options_are_the_code_means_of_21_id_and_6_level_triplet_losses():
    torch.manual_seed(0)
    options = ff.criterion_options(VARIANTS["full"])
    criterion = ReIDCriterion(6, **options)
    assert criterion.id_loss.epsilon == 0.1 and criterion.triplet.margin == 1.0 and criterion.triplet.metric == "euclidean"
    net = MGOFusionNet(6, backbone="resnet18")
    pids = torch.arange(6).repeat_interleave(2)
    outputs = net(torch.randn(12, 3, 96, 32))
    losses = criterion(outputs, pids)
    ids = [k for k in losses if k.endswith("/id")]
    triplets = [k for k in losses if k.endswith("/triplet")]
    assert len(ids) == 21 and len(triplets) == 6 and len(losses) == 27
    assert triplets == [f"level{p}/triplet" for p in range(1, 7)]
    b = outputs["branches"]
    ce, tri = CrossEntropyLabelSmooth(6, 0.1), TripletLoss(margin=1.0, metric="euclidean")
    mean_id = sum(ce(b[w]["logits"], pids) for w in VARIANTS["full"].window_names) / 21
    mean_tri = sum(tri(torch.cat([b[f"w{p}_{j}"]["feat"] for j in range(1, p + 1)], 1), pids)
                   for p in range(1, 7)) / 6
    assert torch.allclose(criterion.total(outputs, pids), mean_id + mean_tri)
    # the paper text's head takes the triplet before the last BN; the global model has one of each loss
    assert ff.criterion_options(FusionConfig(head_text=True))["triplet_feature"] == "feat_pre"
    single = ff.criterion_options(VARIANTS["baseline"])
    assert (single["id_weight"], single["triplet_weight"], single["label_smoothing"]) == (1.0, 1.0, 0.0)
    assert single["branch_terms"] == {"w1_1": ["id"], "level1": ["triplet"]}


def test_run_names_and_the_paper_preset():
    assert ff.config().name == "full_cosine_m0.1_adam_efficientnet_lite0-imagenet_192x64_e6_s0"
    assert ff.config(variant="C+S+cat", seed=2, pretrained=False).name == \
        "C+S+cat_cosine_m0.1_adam_efficientnet_lite0_192x64_e6_s2"
    preset = ff.config(paper_preset=True)
    assert preset.name == "full_resnet50-imagenet_384x128_e150_s0"
    assert (preset.optimizer, preset.lr, preset.momentum, preset.weight_decay, preset.P, preset.K) == \
        ("sgd", 0.01, 0.9, 5e-4, 16, 4)
    assert (preset.criterion_options["metric"], preset.criterion_options["margin"]) == ("euclidean", 1.0)
    lr = lr_curve(build_config_schedule(preset), 150)
    assert lr[0] == pytest.approx(3e-4) and lr[9] == pytest.approx(3e-4 + 0.0097 * 0.9) and lr[10] == 0.01
    assert (lr[59], lr[60], lr[90], lr[120], lr[149]) == pytest.approx((0.01, 0.005, 0.0025, 0.00125, 0.00125))
    plain = ff.config(variant="baseline", paper_preset=True)  # no tricks: no warm-up, the code's steps
    lr = lr_curve(build_config_schedule(plain), 150)
    assert (lr[0], lr[60], lr[120]) == pytest.approx((0.01, 0.005, 0.00125))


@pytest.mark.parametrize("given, match", [
    ({"variant": "mgn"}, "unknown feature-fusion variant 'mgn'"),
    ({"optimizer": "rmsprop"}, "parameter 'optimizer' must be one of"),
    ({"epochs": "many"}, "parameter 'epochs' must be an integer"),
    ({"triplet_metric": "manhattan"}, "parameter 'triplet_metric' must be one of"),
    ({"stripes": 4}, "unknown parameter"),
])
def test_bad_parameters_are_named(given, match):
    with pytest.raises(ValueError, match=match):
        ff.config(**given)


def test_model_config_overrides_are_checked():
    assert ff.model_config("bmm", stages=(1, 2, 3, 4)).stages == (1, 2, 3, 4)  # reading (B) of Table VI
    with pytest.raises(ValueError, match="unknown FusionConfig fields"):
        ff.model_config("full", fusion=True)
    assert asdict(ff.model_config("full")) == asdict(VARIANTS["full"])


def test_a_tiny_training_run_writes_a_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the checkpoint goes to runs/ under the working folder
    record = ff.train(dataset="synthped", synthped_preset="tiny", backbone="resnet18", pretrained=False, height=96,
                      width=32, epochs=1, P=4, K=2, milestones=[], max_steps_per_epoch=2, device="cpu",
                      num_threads=1, output_dir="results", progress=False)
    assert 0 <= record["final"]["mAP"] <= 1 and (tmp_path / "results" / "feature_fusion" / "synthped").is_dir()
    losses = record["epochs"][0]["losses"]
    assert {f"level{p}/triplet" for p in range(1, 7)} <= set(losses) and "w6_6/id" in losses
    assert record["config"]["model"] == "mgo_fusion" and record["variant"] == "full"
    assert record["efficiency"]["feature_dim"] == 10_752


def test_the_extra_evaluations_refuse_bad_parameters_naming_them():
    cfg = ff.config(variant="full")
    assert ff.final_evaluations(ff.RECIPE.parameters({}), cfg) == []
    for bad in ([0], [100], [10, 10], [12.5]):
        with pytest.raises(ValueError, match="misalignment"):
            ff.final_evaluations(ff.RECIPE.parameters({"misalignment": bad}), cfg)
    for spec, match in (({"name": "synthped"}, "'dataset'"), ({"dataset": "cuhk03_np"}, "needs a 'data_root'"),
                        ({"dataset": "synthped", "root": "x"}, "cross_domain")):
        with pytest.raises(ValueError, match=match):
            ff.final_evaluations(ff.RECIPE.parameters({"cross_domain": spec}), cfg)
    hooks = ff.final_evaluations(ff.RECIPE.parameters({"misalignment": [10, 25]}), cfg)
    assert len(hooks) == 1 and list(hooks[0].evaluations) == ["misaligned@10", "misaligned@25"]


def test_the_claims_compare_rows_of_the_tables_they_name():
    import re

    numbers = {"VI": 6, "VII": 7, "IX": 9, "X": 10}
    for claim, a, b in ff.CLAIMS:
        table = numbers[re.search(r"Table (VII|VI|IX|X)\b", claim).group(1)]
        assert a in TABLE_ROWS[table] and b in TABLE_ROWS[table], claim
