"""HENet: the network's branches and descriptor against Tables 1-3's FD cells, its test-time size against
the analytic count and Table 1's V, the loss routing of Sec. 3.2, one training step, the recovery decoder,
and bad configurations."""
from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch
import torch.nn.functional as F
import torchvision

from reidlib.eval.efficiency import test_time_params as params_that_run
from reidlib.losses import OIMTerm, build_criterion, low_resolution, reconstruction_loss
from reidlib.models import build_model
from reidlib.models.decoders import RecoveryDecoder
from reidlib.models.henet import HENet, HENetConfig
from reidlib.papers import henet as paper

N_CLASSES = 5
H, W = 192, 64  # the part chapters' CPU size: a 12-high map at stride 16, which 1, 2, 3, 4 and 6 divide

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(variant: str = "base+losses", **kw) -> HENet:
    torch.manual_seed(0)
    return build_model("henet", N_CLASSES, backbone="resnet18", **{**asdict(paper.VARIANTS[variant]), **kw})


def _batch(seed: int = 0, p: int = 2, k: int = 2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(p * k, 3, H, W, generator=g), torch.arange(p).repeat_interleave(k)


def _printed_fd() -> dict[str, int]:
    t1 = paper.table_1()
    fd = {v: int(t1.loc[c.label, "FD"]) for v, c in paper.VARIANTS.items() if paper.TABLE_OF[v] == 1}
    fd.update({v: int(r["FD"]) for v, r in paper.TABLE_RESULTS.items() if "FD" in r})
    return fd


@pytest.mark.parametrize("variant", list(_printed_fd()))
def test_the_descriptor_has_the_printed_feature_dimension(variant):
    # every FD cell of Tables 1-3 (2048, 2560, 512, 1536, ...), from the network's eval output
    model = _model(variant).eval()
    with torch.no_grad():
        out = model(_batch()[0])
    assert out.shape == (4, _printed_fd()[variant]) == (4, paper.VARIANTS[variant].feature_dim)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))


def test_fd_cells_cover_tables_1_to_3():
    assert len(_printed_fd()) == 4 + 7 + 7


def _analytic_test_params(config: HENetConfig) -> int:
    """ResNet-50 without its fc, one extra layer4 per extra branch, and each feature's 1x1 conv (no bias) + BN:
    counted from torchvision's modules, not from ours."""
    net = torchvision.models.resnet50()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    shared = count(net) - count(net.fc)
    heads = sum(2048 * d + 2 * d for d in config.features.values())
    return shared + (len(config.branch_names) - 1) * count(net.layer4) + heads


@pytest.mark.parametrize("variant, printed_v", [("base+losses", 224), ("base", 169)])
def test_test_time_size_against_the_analytic_count_and_table_1(variant, printed_v):
    torch.manual_seed(0)
    config = paper.VARIANTS[variant]
    model = build_model("henet", 751, backbone="resnet50", **asdict(config))
    n = params_that_run(model, torch.randn(1, 3, 64, 32))
    assert n == _analytic_test_params(config)
    mib = n * 4 / 2**20
    classifiers = sum(p.numel() for h in model.heads.values() for p in h.classifier.parameters()) * 4 / 2**20
    if variant == "base+losses":
        assert round(mib) == printed_v  # 223.9 MiB: the full model's V is its test-time fp32 parameters
    else:
        # Base's 169 needs its 751-way classifiers counted (162.8 -> 168.6 MiB), unlike the full model's
        # 224: the two sizes follow no one rule (the chapter shows it)
        assert round(mib) != printed_v and round(mib + classifiers) == printed_v


def test_training_output_names_the_features_and_the_recovery():
    model = _model().train()
    images, _ = _batch()
    out = model(images)["branches"]
    assert list(out) == ["g1", "p4", "p4_1", "p4_2", "p4_3", "p4_4", "r16"]
    for name, dim in paper.VARIANTS["base+losses"].features.items():
        assert out[name]["feat"].shape == (4, dim) and out[name]["logits"].shape == (4, N_CLASSES)
    assert out["r16"]["recovery"].shape == (4, 3, 48, 16)
    torch.testing.assert_close(out["r16"]["recovery_target"], F.avg_pool2d(images, 4))  # 192x64 -> 48x16: 4x4 blocks


def test_no_decoder_without_the_reconstruction_loss():
    assert _model("ce").decoder is None and _model("ce+mse").decoder is not None
    assert "recovery" not in _model("ce").train()(_batch()[0])["branches"]["r16"]


@pytest.mark.parametrize("variant, expected", [
    ("base", {f"{f}/id" for f in ("g1", "p4", "p4_1", "p4_2", "p4_3", "p4_4")}),
    ("base+losses", {f"{f}/id" for f in ("g1", "p4", "p4_1", "p4_2", "p4_3", "p4_4", "r16")}
     | {"g1/triplet", "p4/triplet", "r16/reconstruction"} | {f"p4_{j}/oim" for j in range(1, 5)}),
    ("ce+tri+mse", {f"{f}/id" for f in ("g1", "p4", "p4_1", "p4_2", "p4_3", "p4_4", "r16")}
     | {"g1/triplet", "p4/triplet", "r16/reconstruction"}),
    ("r16", {"r16/id", "r16/reconstruction"}),
])
def test_losses_go_to_the_features_of_fig_2(variant, expected):
    model = _model(variant).train()
    criterion = build_criterion("reid", N_CLASSES, **paper.criterion_options(model.config))
    images, pids = _batch()
    assert set(criterion(model(images), pids)) == expected


def test_reconstruction_term_is_eq_9_on_the_decoder_output():
    model = _model().train()
    criterion = build_criterion("reid", N_CLASSES, **paper.criterion_options(model.config))
    images, pids = _batch()
    out = model(images)
    r16 = out["branches"]["r16"]
    expected = ((r16["recovery"] - low_resolution(images, (48, 16))) ** 2).mean()
    torch.testing.assert_close(criterion(out, pids)["r16/reconstruction"], expected)


def test_one_training_step_updates_every_trained_part():
    model = _model().train()
    criterion = build_criterion("reid", N_CLASSES, **paper.criterion_options(model.config))
    images, pids = _batch()
    luts = {b: t.lut.clone() for b, t in criterion.term_oim.tables.items()}
    loss = criterion.total(model(images), pids)
    assert torch.isfinite(loss)
    loss.backward()
    for name in ("trunk", "stage4", "heads", "decoder"):
        grads = [p.grad for p in getattr(model, name).parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
    # the decoder's gradient comes from the reconstruction term alone
    assert all(not torch.equal(luts[b], t.lut) for b, t in criterion.term_oim.tables.items())


def test_options_rebuild_the_variant_and_survive_json():
    model = _model("p1-2-3")
    rebuilt = build_model("henet", N_CLASSES, backbone="resnet18", **json.loads(json.dumps(model.options)))
    assert rebuilt.config == model.config and rebuilt.config.partitions == (1, 2, 3)


@pytest.mark.parametrize("a, b", paper.SAME_NETWORK)
def test_rows_of_different_tables_that_are_one_network(a, b):
    assert replace(paper.VARIANTS[a], label="") == replace(paper.VARIANTS[b], label="")


def test_table_4_varies_only_the_losses_of_the_full_structure():
    rows = [c for v, c in paper.VARIANTS.items() if paper.TABLE_OF[v] == 4]
    assert len(rows) == 8 and len({(c.oim, c.triplet, c.mse) for c in rows}) == 8
    assert {(c.partitions, c.recovery, c.feature_dim) for c in rows} == {((1, 4), True, 2560)}


@pytest.mark.parametrize("fields, match", [
    ({"partitions": (4, 1)}, "distinct increasing"),
    ({"partitions": (1, 1)}, "distinct increasing"),
    ({"partitions": (0,)}, "distinct increasing"),
    ({"partitions": (), "recovery": False, "mse": False, "triplet": False, "oim": False}, "no branch"),
    ({"recovery": False}, "mse=True needs the recovery branch"),
    ({"partitions": (1,), "mse": False}, "oim=True needs a partial branch with bins"),
    ({"partitions": (), "oim": False}, "triplet=True needs a partial branch"),
    ({"pooling": "mean"}, "pooling='mean'"),
    ({"rpe": 1.5}, r"rpe \(a probability\)"),
    ({"random_erasing": -0.1}, r"random_erasing \(a probability\)"),
    ({"rpe_points": 2}, "rpe_points must be an integer >= 3"),
    ({"part_dim": 0}, "part_dim must be >= 1"),
])
def test_bad_configurations_are_named(fields, match):
    with pytest.raises(ValueError, match=match):
        HENetConfig(**fields)


def test_unknown_fields_and_variants_are_named():
    with pytest.raises(ValueError, match=r"unknown HENetConfig fields \['parts'\]"):
        build_model("henet", N_CLASSES, backbone="resnet18", parts=4)
    with pytest.raises(ValueError, match="unknown HENet variant 'p1-5'"):
        paper.model_config("p1-5")
    with pytest.raises(ValueError, match="table must be 2, 3 or 4"):
        paper.table_results(1)


def test_decoder_shapes_and_bad_sizes():
    dec = RecoveryDecoder(512, (48, 16))
    assert dec(torch.randn(2, 512)).shape == (2, 3, 48, 16)
    assert RecoveryDecoder(64, (32, 32), widths=(8, 8)).seed_size == (8, 8)
    for size in ((40, 16), (48,), (8, 16)):
        with pytest.raises(ValueError, match="out_size must be"):
            RecoveryDecoder(512, size)
    with pytest.raises(ValueError, match="features"):
        dec(torch.randn(2, 256))


def test_reconstruction_loss_and_target_errors():
    with pytest.raises(ValueError, match="target must have pred's shape"):
        reconstruction_loss(torch.zeros(2, 3, 48, 16), torch.zeros(2, 3, 24, 8))
    with pytest.raises(ValueError, match="no larger than the images"):
        low_resolution(torch.zeros(1, 3, 24, 8), (48, 16))


def test_oim_term_refuses_a_branch_it_has_no_table_for():
    term = OIMTerm(N_CLASSES, branches=["p4_1"], feat_dim=8)
    out = {"feat": torch.randn(2, 8)}
    assert torch.isfinite(term(out, torch.tensor([0, 1]), {}, "p4_1"))
    with pytest.raises(ValueError, match="branch 'p4_2' has no lookup table"):
        term(out, torch.tensor([0, 1]), {}, "p4_2")
    with pytest.raises(ValueError, match="branches must name"):
        OIMTerm(N_CLASSES, branches="p4_1", feat_dim=8)
