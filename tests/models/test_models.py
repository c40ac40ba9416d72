"""Backbones, pooling, BNNeck and the strong baseline (random init only: no test downloads)."""
from __future__ import annotations

import copy
import os
from urllib.error import URLError

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from reidlib.models import GAP, GMP, RESNETS, Baseline, BNNeck, GeM, LinearHead, PPooling, build_backbone, build_pooling
from reidlib.models.pooling import gem

H, W = 64, 32


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any download attempt fails as it would offline."""
    def offline(url, *args, **kwargs):
        raise URLError(f"test is offline: refused {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


@pytest.fixture(scope="module")
def resnet18_tv_state():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).state_dict()


# ---------------------------------------------------------------- backbones

@pytest.mark.parametrize("name,channels,last_stride", [
    ("resnet18", 512, 1), ("resnet18", 512, 2), ("resnet34", 512, 1), ("resnet50", 2048, 1),
    ("resnet50", 2048, 2), ("resnet101", 2048, 1), ("resnet152", 2048, 1)])
def test_backbone_structure(name, channels, last_stride):
    """BasicBlock (18/34) and Bottleneck (50/101/152) ResNets: stages, C, and the stride of layer4."""
    b = build_backbone(name, last_stride=last_stride)
    assert b.out_channels == channels
    for stage in ("stem", "layer1", "layer2", "layer3", "layer4"):
        assert isinstance(getattr(b, stage), nn.Module)
    strides = {m.stride for m in b.layer4[0].modules() if isinstance(m, nn.Conv2d)}
    assert strides == ({(1, 1)} if last_stride == 1 else {(1, 1), (2, 2)})
    assert not hasattr(b, "fc")


@pytest.mark.parametrize("name,last_stride,scale", [("resnet18", 1, 16), ("resnet18", 2, 32), ("resnet50", 1, 16)])
def test_backbone_output_shape(name, last_stride, scale):
    b = build_backbone(name, last_stride=last_stride).eval()
    with torch.no_grad():
        out = b(torch.randn(2, 3, H, W))
    assert out.shape == (2, b.out_channels, H // scale, W // scale)


def test_backbone_matches_torchvision_forward(resnet18_tv_state):
    """The stages run in torchvision's order: same map as the torchvision net cut before avgpool."""
    tv = torchvision.models.resnet18(weights=None)
    tv.load_state_dict(resnet18_tv_state)
    b = build_backbone("resnet18", last_stride=2)
    b.load_state_dict({("stem." + k if k.startswith(("conv1.", "bn1.")) else k): v
                       for k, v in resnet18_tv_state.items() if not k.startswith("fc.")})
    tv.eval(), b.eval()
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        expected = nn.Sequential(*list(tv.children())[:-2])(x)
        torch.testing.assert_close(b(x), expected)


def test_backbone_layers_can_be_copied_and_hooked():
    b = build_backbone("resnet18").eval()
    branch = copy.deepcopy(b.layer4)
    seen = {}
    b.layer3.register_forward_hook(lambda m, i, o: seen.setdefault("layer3", o))
    x = torch.randn(1, 3, H, W)
    with torch.no_grad():
        out = b(x)
        torch.testing.assert_close(branch(seen["layer3"]), out)
    assert seen["layer3"].shape == (1, 256, H // 16, W // 16)


def test_backbone_bad_arguments():
    assert set(RESNETS) == {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}
    with pytest.raises(ValueError, match="unknown backbone 'resnet19'"):
        build_backbone("resnet19")
    with pytest.raises(ValueError, match="last_stride must be 1 or 2, got 3"):
        build_backbone("resnet18", last_stride=3)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        build_backbone("resnet18")(torch.randn(3, H, W))


@pytest.mark.parametrize("layout", ["torchvision", "backbone"])
def test_weights_path_loads_both_layouts(tmp_path, resnet18_tv_state, layout):
    if layout == "torchvision":
        state = resnet18_tv_state
    else:
        src = build_backbone("resnet18")
        state = src.state_dict()
    path = tmp_path / "w.pth"
    torch.save(state, path)
    b = build_backbone("resnet18", weights_path=path)
    torch.testing.assert_close(b.stem.conv1.weight, state["conv1.weight" if layout == "torchvision" else "stem.conv1.weight"])
    torch.testing.assert_close(b.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])


def test_weights_path_mismatch_names_the_file(tmp_path, resnet18_tv_state):
    path = tmp_path / "resnet18_weights.pth"
    torch.save(resnet18_tv_state, path)
    with pytest.raises(RuntimeError, match=r"resnet18_weights\.pth.*do not fit the resnet34 backbone.*missing"):
        build_backbone("resnet34", weights_path=path)
    bad = dict(resnet18_tv_state)
    bad["layer1.0.conv1.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(bad, path)
    with pytest.raises(RuntimeError, match=r"resnet18_weights\.pth.*shape mismatch.*layer1\.0\.conv1\.weight"):
        build_backbone("resnet18", weights_path=path)
    torch.save([1, 2, 3], path)
    with pytest.raises(RuntimeError, match=r"resnet18_weights\.pth.*expected a state dict"):
        build_backbone("resnet18", weights_path=path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"junk\.pth.*weights_only=True"):
        build_backbone("resnet18", weights_path=tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match=r"weights_path=.*nope\.pth"):
        build_backbone("resnet18", weights_path=tmp_path / "nope.pth")


def test_pretrained_offline_says_how_to_provide_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        build_backbone("resnet18", pretrained=True)
    message = str(info.value)
    assert "weights_path=" in message and "TORCH_HOME" in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert isinstance(info.value.__cause__, OSError)


def test_pretrained_uses_cached_file_offline(tmp_path, monkeypatch, resnet18_tv_state):
    """A file placed in $TORCH_HOME/hub/checkpoints is what pretrained=True loads, with no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(resnet18_tv_state, cache / os.path.basename(url))
    b = build_backbone("resnet18", pretrained=True)
    torch.testing.assert_close(b.layer2[0].conv1.weight, resnet18_tv_state["layer2.0.conv1.weight"])
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        build_backbone("resnet18", pretrained="IMAGENET9K")
    (cache / os.path.basename(url)).write_bytes(b"truncated download")
    with pytest.raises(RuntimeError, match=r"cached weights file .*resnet18-f37072fd\.pth cannot be loaded"):
        build_backbone("resnet18", pretrained=True)


# ---------------------------------------------------------------- pooling

def test_gap_gmp_values():
    x = torch.randn(3, 5, 4, 2)
    torch.testing.assert_close(GAP()(x), x.flatten(2).mean(2))
    torch.testing.assert_close(GMP()(x), x.flatten(2).max(2).values)


def test_gem_limits_and_formula():
    x = torch.rand(2, 4, 6, 3, dtype=torch.float64) + 0.01
    torch.testing.assert_close(gem(x, 1.0), GAP()(x))
    torch.testing.assert_close(GeM(p=3.0).double()(x), (x**3).mean((2, 3)) ** (1 / 3))
    torch.testing.assert_close(gem(x, 200.0), GMP()(x), rtol=0.03, atol=0)
    zeros = torch.zeros(1, 2, 3, 3)
    torch.testing.assert_close(GeM(eps=1e-6)(zeros), torch.full((1, 2), 1e-6))


@settings(max_examples=30, deadline=None)
@given(p=st.floats(1.0, 8.0), seed=st.integers(0, 10_000))
def test_gem_between_mean_and_max(p, seed):
    """Power-mean inequality: GAP <= GeM_p <= GMP for p >= 1 and positive inputs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 4, 2, generator=g, dtype=torch.float64) + 1e-3
    y = gem(x, p)
    assert (GAP()(x) <= y + 1e-12).all() and (y <= GMP()(x) + 1e-12).all()


def test_gem_gradcheck():
    x = (torch.rand(2, 3, 4, 2, dtype=torch.float64) + 0.1).requires_grad_()
    p = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, p: gem(x, p), (x, p))


def test_gem_learnable_p_gets_gradient():
    pool = GeM()
    pool(torch.rand(2, 3, 4, 4)).sum().backward()
    assert pool.p.grad is not None and pool.p.grad != 0
    assert "p" in dict(GeM(learnable=False).named_buffers())


def test_build_pooling():
    assert isinstance(build_pooling("gap"), GAP) and isinstance(build_pooling("max"), GMP)
    assert isinstance(build_pooling("gem", p=4.0), GeM)
    assert isinstance(build_pooling("p_pooling"), PPooling)
    module = GMP()
    assert build_pooling(module) is module
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        build_pooling("median")
    with pytest.raises(ValueError, match=r"GeM: expected .*\(B, C, H, W\)"):
        GeM()(torch.rand(2, 3))


# ---------------------------------------------------------------- BNNeck

def test_bnneck_structure_and_init():
    torch.manual_seed(0)
    neck = BNNeck(256, 1000)
    assert not neck.bn.bias.requires_grad and neck.bn.weight.requires_grad
    assert neck.classifier.bias is None
    assert (neck.bn.weight == 1).all() and (neck.bn.bias == 0).all()
    assert abs(neck.classifier.weight.std().item() - 0.001) < 5e-5


def test_bnneck_train_and_eval_outputs():
    neck = BNNeck(8, 5)
    feat = torch.randn(6, 8) * 3 + 1
    before, after, logits = neck(feat)
    assert before is feat
    expected = (feat - feat.mean(0)) / torch.sqrt(feat.var(0, unbiased=False) + neck.bn.eps)
    torch.testing.assert_close(after, expected)
    torch.testing.assert_close(logits, after @ neck.classifier.weight.t())
    logits.sum().backward()
    assert neck.bn.bias.grad is None and neck.bn.weight.grad is not None
    neck.eval()
    torch.testing.assert_close(neck(feat), neck.bn(feat))
    neck.test_feature = "before"
    assert neck(feat) is feat
    with pytest.raises(ValueError, match=r"BNNeck: expected features of shape \(B, 8\)"):
        neck(torch.randn(6, 7))
    with pytest.raises(ValueError, match="test_feature must be 'after' or 'before'"):
        BNNeck(8, 5, test_feature="middle")


# ---------------------------------------------------------------- Baseline

@pytest.fixture(scope="module")
def baseline18():
    torch.manual_seed(0)
    return Baseline("resnet18", num_classes=7)


def test_baseline_train_outputs(baseline18):
    baseline18.train()
    out = baseline18(torch.randn(4, 3, H, W))
    assert set(out) == {"branches"} and set(out["branches"]) == {"main"}  # the house's output contract
    out = out["branches"]["main"]
    assert set(out) == {"logits", "feat", "feat_bn"}
    assert out["logits"].shape == (4, 7) and out["feat"].shape == out["feat_bn"].shape == (4, 512)
    assert baseline18.feature_dim == 512
    assert (out["feat"] >= 0).all()  # GAP of a ReLU map
    torch.testing.assert_close(out["logits"], out["feat_bn"] @ baseline18.neck.classifier.weight.t())


def test_baseline_eval_descriptor(baseline18):
    baseline18.eval()
    x = torch.randn(3, 3, H, W)
    with torch.no_grad():
        desc = baseline18(x)
        feat = baseline18.backbone(x).mean((2, 3))
        torch.testing.assert_close(desc, baseline18.neck.bn(feat))
        baseline18.neck.test_feature = "before"
        torch.testing.assert_close(baseline18(x), feat)
    baseline18.neck.test_feature = "after"


def test_baseline_options():
    backbone = build_backbone("resnet18", last_stride=2)
    m = Baseline(backbone, 3, pooling="gem", neck="none", test_feature="before")
    assert m.backbone is backbone and isinstance(m.pooling, GeM) and isinstance(m.neck, LinearHead)
    out = m(torch.randn(2, 3, H, W))["branches"]["main"]
    assert out["feat"] is out["feat_bn"] and m.neck.classifier.bias is not None
    with pytest.raises(ValueError, match="num_classes"):
        Baseline("resnet18")
    with pytest.raises(ValueError, match="neck must be"):
        Baseline("resnet18", 3, neck="bn")
    with pytest.raises(ValueError, match="out_channels"):
        Baseline(nn.Identity(), 3)


def test_baseline_trains_one_step():
    """A step of ID + triplet loss changes the weights and leaves the frozen BN bias at 0."""
    from reidlib.losses import CrossEntropyLabelSmooth, TripletLoss

    torch.manual_seed(0)
    m = Baseline("resnet18", num_classes=2)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    before = m.neck.classifier.weight.detach().clone()
    pids = torch.tensor([0, 0, 1, 1])
    out = m(torch.randn(4, 3, H, W))["branches"]["main"]
    loss = CrossEntropyLabelSmooth(2)(out["logits"], pids) + TripletLoss()(out["feat"], pids)
    loss.backward()
    opt.step()
    assert not torch.equal(before, m.neck.classifier.weight)
    assert (m.neck.bn.bias == 0).all()


def test_build_model_registry():
    """``build_model`` builds one registered model by name, lists the names on a typo, names an unknown
    option, and the resolved ``options`` rebuild the same architecture."""
    from reidlib.models import MODELS, build_model

    assert {"baseline", "esnet"} <= set(MODELS)
    m = build_model("baseline", 5, backbone="resnet18", pooling="gem")
    assert isinstance(m, Baseline) and isinstance(m.pooling, GeM) and m.options["pooling"] == "gem"
    again = build_model("BoT", 5, backbone="resnet18", **m.options)  # alias, any case
    assert again.state_dict().keys() == m.state_dict().keys()
    with pytest.raises(ValueError, match=r"unknown model 'basline'.*'baseline', 'esnet'"):
        build_model("basline", 5)
    with pytest.raises(ValueError, match=r"poolng.*the options of 'baseline' are .*pooling"):
        build_model("baseline", 5, backbone="resnet18", poolng="gem")
    with pytest.raises(ValueError, match="num_classes"):
        build_model("baseline", 0)


@pytest.mark.parametrize("name, owner", [("baseline", "Baseline"), ("good_practices", "GoodPractices")])
def test_a_backbone_module_without_out_channels_is_refused_naming_the_model(name, owner):
    from reidlib.models import build_model

    with pytest.raises(ValueError, match=f"{owner}: a backbone module needs an `out_channels`"):
        build_model(name, 4, backbone=torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)))
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    conv.out_channels = 8
    assert build_model(name, 4, backbone=conv).backbone is conv
