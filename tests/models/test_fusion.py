"""The feature-fusion network (reidlib.models.fusion): FMR's channel arithmetic, SAM and CAM as gates, Table IX's
orders, MGO against the equal split in the network's output, the batched MPFE heads against a loop of plain
heads, the head parameter count against its closed form, the 10,752-d descriptor, and bad inputs."""
from __future__ import annotations

import copy

import pytest
import torch

from reidlib.models import build_model
from reidlib.models.fusion import (
    CAM,
    FMR,
    SAM,
    FusionConfig,
    MGOFusionNet,
    MPFEHead,
    MPFEHeads,
    fmr_channels,
    mgo_fusion,
    mpfe_parameter_count,
    parse_order,
)
from reidlib.models.parts import window_rows

IMAGES = (4, 3, 96, 32)  # last stride 1: stage-3/4 maps 6 x 2, one row per stripe


@pytest.fixture(scope="module")
def net18() -> MGOFusionNet:
    torch.manual_seed(0)
    return mgo_fusion(10, backbone="resnet18")


@pytest.mark.parametrize("backbone, stages, expected", [
    ("resnet50", (1, 2, 3, 4), 3840), ("resnet50", (1, 2), 768), ("resnet50", (1, 2, 3), 1792),
    ("resnet50", (2, 3, 4), 3584), ("resnet50", (4,), 2048),
    ("resnet18", (1, 2, 3, 4), 960), ("resnet18", (3, 4), 768),
    ("efficientnet_lite0", (1, 2, 3, 4), 24 + 40 + 112 + 1280), ("efficientnet_lite0", (1, 4), 24 + 1280),
])
def test_fmr_channel_sums(backbone, stages, expected):
    assert fmr_channels(backbone, stages) == expected


@pytest.mark.parametrize("stages", [(1, 2, 3, 4), (1, 2), (2, 4), (1,)])
def test_fused_map_has_the_channel_sum_at_the_stage_3_size(net18, stages):
    net = MGOFusionNet(10, backbone="resnet18", stages=stages).eval()
    with torch.no_grad():
        fused = net.fused_map(torch.randn(*IMAGES))
    assert tuple(fused.shape) == (4, fmr_channels("resnet18", stages), 6, 2) == (4, net.fmr.out_channels, 6, 2)
    assert ("layer4" in net.body) == (4 in stages) and "layer3" in net.body  # stage 3 always runs (FMR's size)


def test_fmr_max_pools_the_early_stages():
    torch.manual_seed(0)
    fmr = FMR({"layer1": 3, "layer2": 2}, (1, 2), sam=False, cam=False)
    a, b = torch.randn(2, 3, 8, 4), torch.randn(2, 2, 4, 2)
    out = fmr({1: a, 2: b}, (4, 2))
    assert torch.equal(out[:, :3], torch.nn.functional.max_pool2d(a, 2)) and torch.equal(out[:, 3:], b)


@pytest.mark.parametrize("stages", [(0,), (5,), (1, 5), ("layer1",), (2, 1), (), (3, 3)])
def test_unknown_or_bad_stages_are_named(stages):
    with pytest.raises(ValueError, match="stages"):
        fmr_channels("resnet18", stages)
    with pytest.raises(ValueError, match="stages"):
        FusionConfig(stages=stages)


def test_sam_and_cam_are_gates_in_0_1_of_the_right_shapes():
    torch.manual_seed(0)
    x = 3 * torch.randn(2, 32, 6, 4)
    sam, cam = SAM(), CAM(32, 16)
    gs, gc = sam.gate(x), cam.gate(x)
    assert gs.shape == (2, 1, 6, 4) and gc.shape == (2, 32, 1, 1)
    for g in (gs, gc):
        assert bool(((g > 0) & (g < 1)).all())
    assert torch.allclose(sam(x), gs * x) and torch.allclose(cam(x), gc * x) and sam(x).shape == x.shape
    assert sum(p.numel() for p in sam.parameters()) == 98  # 2 x 7 x 7, no bias
    assert sum(p.numel() for p in CAM(3840).parameters()) == 2 * 3840 * 240
    assert not torch.allclose(cam.gate(x, literal=True), gc)  # Eq. (2) literally differs from CBAM's form


@pytest.mark.parametrize("order, sam, cam, tokens", [
    ("S + © + C", True, True, ("S", "cat", "C")), ("cat+C+S", True, True, ("cat", "C", "S")),
    ("C+S+cat", True, True, ("C", "S", "cat")), (None, True, False, ("S", "cat")), ("", False, False, ("cat",)),
    (["cat", "C"], False, True, ("cat", "C")),
])
def test_attention_orders(order, sam, cam, tokens):
    assert parse_order(order, sam, cam) == tokens


@pytest.mark.parametrize("order, sam, cam", [
    ("S+cat", True, True), ("S+S+cat", True, False), ("S+cat+C", False, True), ("X+cat+C", True, True),
    ("S+C", True, True),
])
def test_an_order_that_is_not_a_permutation_is_named(order, sam, cam):
    with pytest.raises(ValueError, match="parameter 'order'"):
        parse_order(order, sam, cam)
    with pytest.raises(ValueError, match="parameter 'order'"):
        FusionConfig(order=order, sam=sam, cam=cam)


def test_the_order_places_attention_per_stage_or_on_the_fused_map():
    chans = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}
    before = FMR(chans, order="C+S+cat")
    assert [type(m).__name__ for m in before.pre["1"]] == ["CAM", "SAM"] and len(before.post) == 0
    assert before.pre["2"][0].channels == 128
    after = FMR(chans, order="cat+S+C")
    assert all(len(m) == 0 for m in after.pre.values()) and [type(m).__name__ for m in after.post] == ["SAM", "CAM"]
    assert after.post[1].channels == 960
    best = FMR(chans)  # S + (c) + C
    assert [type(m).__name__ for m in best.pre["4"]] == ["SAM"] and [type(m).__name__ for m in best.post] == ["CAM"]
    assert FusionConfig(sam=False).attention_order == "cat+C"


def test_mgo_windows_differ_from_the_equal_split_in_the_output(net18):
    mgo = copy.deepcopy(net18).eval()
    equal = MGOFusionNet(10, backbone="resnet18", parts="equal").eval()
    equal.load_state_dict(mgo.state_dict())  # the same weights: only the windows differ
    x = torch.randn(*IMAGES)
    with torch.no_grad():
        a, b = mgo.heads(mgo.windows(mgo.fused_map(x)))[1], equal.heads(equal.windows(equal.fused_map(x)))[1]
        da, db = mgo(x), equal(x)
    assert da.shape == db.shape == (4, 21 * 512) and not torch.allclose(da, db)
    # windows with the same rows give the same vector: level 1 (the whole map), level 6 (single stripes) and, at
    # a 6-row map, level 5, whose adaptive bins are MGO's 2-stripe windows; levels 2-4 differ
    rows_mgo, rows_eq = window_rows(6, 6, "mgo"), window_rows(6, 6, "equal", exact=False)
    same = [i for i, (r, q) in enumerate(zip(rows_mgo, rows_eq)) if r == q]
    assert same == [0, *range(10, 21)]
    assert torch.allclose(a[:, same], b[:, same], atol=1e-6)
    assert all(not torch.allclose(a[:, i], b[:, i]) for i in range(21) if i not in same)


def test_batched_heads_equal_a_loop_of_plain_heads_in_float64():
    torch.manual_seed(0)
    heads = [MPFEHead(24, 7, mid=8, dim=16).double() for _ in range(21)]
    batched = MPFEHeads.from_heads(copy.deepcopy(heads))
    assert batched.conv_weight.dtype == torch.float64
    z = torch.randn(5, 21, 24, dtype=torch.float64, requires_grad=True)
    for training in (True, False):
        for m in (batched, *heads):
            m.train(training)
        loop = [torch.stack(t, dim=1) for t in zip(*(h(z[:, i]) for i, h in enumerate(heads)))]
        for mine, ref in zip(batched(z), loop):
            assert mine.shape == ref.shape and torch.allclose(mine, ref, atol=1e-12)
    assert torch.allclose(batched.bn1.running_mean, torch.cat([h.bn1.running_mean for h in heads]))
    assert torch.allclose(batched.bn2.running_var, torch.cat([h.bn2.running_var for h in heads]))
    # the gradient too
    batched.train()
    for h in heads:
        h.train()
    g1 = torch.autograd.grad(batched(z)[2].square().sum(), z)[0]
    g2 = torch.autograd.grad(sum(h(z[:, i])[2].square().sum() for i, h in enumerate(heads)), z)[0]
    assert torch.allclose(g1, g2, atol=1e-12)


def test_mpfe_initialisation_follows_the_code():
    torch.manual_seed(0)
    heads = MPFEHeads(21, 7680, 751)
    assert abs(heads.cls_weight.std().item() - 0.001) < 1e-4
    assert abs(heads.fc_weight.std().item() - (2 / 512) ** 0.5) < 2e-3
    assert abs(heads.bn1.weight.mean().item() - 1) < 0.01 and heads.bn1.bias.abs().max() == 0
    assert heads.conv_weight.abs().max() <= 1 / 7680 ** 0.5


def test_head_parameters_on_resnet50_match_the_closed_form():
    net = MGOFusionNet(751, backbone="resnet50")
    heads = net.heads
    without_classifiers = sum(p.numel() for n, p in heads.named_parameters() if n != "cls_weight")
    assert without_classifiers == mpfe_parameter_count(3840, heads=21) == 21 * 2_098_688 == 44_072_448
    total = sum(p.numel() for p in heads.parameters())
    assert total == mpfe_parameter_count(3840, 751, heads=21) == 44_072_448 + 21 * 512 * 751
    one = MPFEHead(2 * 3840, 751)
    assert sum(p.numel() for p in one.parameters()) == mpfe_parameter_count(3840, 751)
    assert sum(p.numel() for p in net.fmr.parameters()) == 4 * 98 + 2 * 3840 * 240
    assert net.out_dim == 10_752
    assert mpfe_parameter_count(960) == 624_128  # the ResNet-18 head


def test_train_and_eval_outputs(net18):
    x = torch.randn(*IMAGES)
    net18.train()
    branches = net18(x)["branches"]
    windows = [f"w{p}_{j}" for p in range(1, 7) for j in range(1, p + 1)]
    assert list(branches) == windows + [f"level{p}" for p in range(1, 7)]
    w = branches["w3_2"]
    assert w["logits"].shape == (4, 10) and w["feat"].shape == (4, 512) and torch.equal(w["feat"], w["feat_bn"])
    for p in range(1, 7):
        level = torch.cat([branches[f"w{p}_{j}"]["feat"] for j in range(1, p + 1)], dim=1)
        assert torch.equal(branches[f"level{p}"]["feat"], level) and level.shape == (4, 512 * p)
    net18.eval()
    with torch.no_grad():
        d = net18(x)
    assert d.shape == (4, 10_752) and torch.allclose(d.norm(dim=1), torch.ones(4))
    net18.train()


def test_global_and_bn_head_variants():
    net = build_model("mgo_fusion", 10, backbone="resnet18", parts="global", head="bn", stages=(4,), sam=False,
                      cam=False).eval()
    assert net.out_dim == 512 and net.config.window_names == ("w1_1",) and net.config.level_names == ("level1",)
    with torch.no_grad():
        assert net(torch.randn(*IMAGES)).shape == (4, 512)


def test_build_model_round_trips_the_options(net18):
    again = build_model("mgo_fusion", 10, backbone="resnet18", **net18.options)
    assert again.config == net18.config and net18.options["stages"] == (1, 2, 3, 4)
    text = FusionConfig(order="S + © + C", stages=[1, 2, 3, 4])  # JSON gives lists back
    assert text.order == "S+cat+C" and text.stages == (1, 2, 3, 4)


def test_a_map_height_not_divisible_by_6_is_the_parts_error(net18):
    with pytest.raises(ValueError, match="not divisible by parts=6"):
        net18.eval()(torch.randn(2, 3, 128, 64))  # stage-3 map 8 rows
    net18.train()


@pytest.mark.parametrize("options, match", [
    ({"parts": "pcb"}, "parts"), ({"head": "mlp"}, "head"), ({"stripes": 0}, "stripes"), ({"sam": "yes"}, "sam"),
    ({"kernel": 7}, "unknown FusionConfig fields"),
])
def test_bad_options_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        MGOFusionNet(10, backbone="resnet18", **options)
