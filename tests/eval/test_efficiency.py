"""Efficiency figures against torchvision's own numbers and exact recounts."""
from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from reidlib.eval import efficiency
from reidlib.eval.efficiency import count_flops
from reidlib.models import Baseline, build_backbone

META = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta


@pytest.fixture(scope="module")
def baseline():
    torch.manual_seed(0)
    return Baseline("resnet18", num_classes=11)


def test_params_match_torchvision_exactly(baseline):
    tv = torchvision.models.resnet18(weights=None)
    assert efficiency(tv, 32, 32, batch=1, iters=1, warmup=0)["params"] == META["num_params"] == 11_689_512
    # the baseline: torchvision's ResNet-18 without fc (512 x 1000 + 1000), plus BN (2 x 512) and classifier (512 x 11)
    expected = META["num_params"] - (512 * 1000 + 1000) + 2 * 512 + 512 * 11
    assert efficiency(baseline, 32, 16, batch=1, iters=1, warmup=0)["params"] == expected


def test_size_mb_counts_parameters_and_buffers(baseline):
    fig = efficiency(baseline, 32, 16, batch=1, iters=1, warmup=0)
    bn_layers = [m for m in baseline.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    buffer_bytes = sum(2 * 4 * m.num_features + 8 for m in bn_layers)  # running mean/var (float32) + int64 counter
    assert fig["size_mb"] == pytest.approx((4 * fig["params"] + buffer_bytes) / 2**20, rel=1e-12)


def test_test_time_params_leave_out_what_eval_does_not_run(baseline):
    # the baseline's eval forward skips its classifier (512 x 11, no bias), and nothing else
    fig = efficiency(baseline, 32, 16, batch=1, iters=1, warmup=0)
    assert fig["test_params"] == fig["params"] - 512 * 11
    assert fig["test_size_mb"] == pytest.approx(fig["test_params"] * 4 / 2**20)
    assert baseline.training  # the hooks' forward restored the mode


def test_flops_match_torchvision_ops():
    """torch's counter counts a multiply-add as 2; torchvision's `_ops` are GMACs at 224 x 224."""
    tv = torchvision.models.resnet18(weights=None).eval()
    assert count_flops(tv, torch.randn(1, 3, 224, 224)) / 2e9 == pytest.approx(META["_ops"], abs=5e-4)


def test_flops_scale_with_image_area(baseline):
    small = efficiency(baseline, 32, 16, batch=1, iters=1, warmup=0)
    large = efficiency(baseline, 64, 32, batch=1, iters=1, warmup=0)
    assert small["flops"] > 0
    # every conv's output area grows exactly 4x (even sizes at each stride); the eval forward
    # returns the descriptor and never runs the classifier, the one size-independent layer
    assert large["flops"] == 4 * small["flops"]
    tv = torchvision.models.resnet18(weights=None).eval()
    fc_flops = 2 * 512 * 1000
    # last stride 2: the same FLOPs as torchvision's ResNet-18 without its fc
    strided = Baseline("resnet18", num_classes=11, last_stride=2)
    assert efficiency(strided, 32, 16, batch=1, iters=1, warmup=0)["flops"] == count_flops(
        tv, torch.randn(1, 3, 32, 16)) - fc_flops


def test_feature_dim_and_throughput(baseline):
    baseline.train()
    fig = efficiency(baseline, 32, 16, batch=3, iters=2, warmup=1)
    with torch.no_grad():
        descriptor = baseline.eval()(torch.randn(2, 3, 32, 16))
    assert fig["feature_dim"] == descriptor.shape[1] == baseline.feature_dim == 512
    assert math.isfinite(fig["images_per_s"]) and fig["images_per_s"] > 0
    assert (fig["batch"], fig["height"], fig["width"], fig["device"]) == (3, 32, 16, "cpu")
    backbone = build_backbone("resnet18")
    assert efficiency(backbone, 64, 32, batch=1, iters=1, warmup=0)["feature_dim"] == 512 * 4 * 2  # a (C, h, w) map


def test_modes_restored_and_model_not_moved():
    torch.manual_seed(0)
    m = Baseline("resnet18", num_classes=3)
    m.train()
    m.backbone.layer1.eval()  # a frozen part stays frozen
    efficiency(m, 32, 16, batch=1, iters=1, warmup=0, device="cpu")
    assert m.training and m.neck.training and not m.backbone.layer1.training
    assert next(m.parameters()).device.type == "cpu"


def test_bad_arguments(baseline):
    with pytest.raises(ValueError, match="height must be >= 1"):
        efficiency(baseline, 0, 32)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        efficiency(baseline, 64, 32, batch=0)
    with pytest.raises(TypeError, match="must be a tensor"):
        efficiency(nn.Sequential(nn.Flatten(), _ReturnsString()), 4, 4, batch=1, iters=1)


class _ReturnsString(nn.Module):
    def forward(self, x):
        return "not a tensor"
