"""reidlib.nn, the bottom layer's tensor helpers: shape checks, distances, model modes, activation capture."""
from __future__ import annotations

import importlib
import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from reidlib.nn import capture_activation, check_shape, model_mode, pairwise_distance

# ---------------------------------------------------------------- check_shape


def test_check_shape_returns_the_shape_and_accepts_matches():
    assert check_shape(torch.zeros(2, 3, 4, 5), "B C H W", who="GAP") == (2, 3, 4, 5)
    assert check_shape(torch.zeros(2, 8), "B D", who="BNNeck", D=8) == (2, 8)
    assert check_shape(torch.zeros(2, 3, 4, 5), "B 3 H W", who="backbone") == (2, 3, 4, 5)
    assert check_shape(torch.zeros(4, 4), "B B", who="dist") == (4, 4)
    assert check_shape(torch.zeros(4, 4), "B, B", who="dist") == (4, 4)  # commas are allowed


@pytest.mark.parametrize(
    ("shape", "spec", "sizes", "message"),
    [
        ((2, 3), "B C H W", {}, r"^GAP: expected a tensor of shape \(B, C, H, W\), got shape \(2, 3\)$"),
        ((2, 7), "B D", {"D": 8}, r"^GAP: expected a tensor of shape \(B, 8\), got shape \(2, 7\)$"),
        ((2, 1, 4, 4), "B 3 H W", {}, r"^GAP: expected a tensor of shape \(B, 3, H, W\), got shape \(2, 1, 4, 4\)$"),
        ((3, 4), "B B", {}, r"^GAP: expected a tensor of shape \(B, B\), got shape \(3, 4\)$"),
        ((), "B D", {}, r"got shape \(\)$"),
    ],
)
def test_check_shape_error_names_caller_expected_and_got(shape, spec, sizes, message):
    with pytest.raises(ValueError, match=message):
        check_shape(torch.zeros(shape), spec, who="GAP", **sizes)


def test_check_shape_bad_arguments():
    with pytest.raises(TypeError, match=r"GAP: expected a feature map of shape \(B, C, H, W\) as a torch.Tensor, "
                                        r"got list"):
        check_shape([1, 2], "B C H W", who="GAP", what="a feature map")
    with pytest.raises(ValueError, match=r"sizes \['K'\] are not dimensions of spec 'B D'"):
        check_shape(torch.zeros(2, 3), "B D", who="x", K=3)
    with pytest.raises(ValueError, match="spec must name at least one dimension"):
        check_shape(torch.zeros(2), "", who="x")


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=5), ndim=st.integers(1, 5))
def test_check_shape_accepts_exactly_the_tensors_with_that_many_dims(shape, ndim):
    spec = " ".join(f"D{i}" for i in range(ndim))
    x = torch.zeros(shape)
    if len(shape) == ndim:
        assert check_shape(x, spec, who="f") == tuple(shape)
    else:
        got = re.escape(str(tuple(shape)))
        with pytest.raises(ValueError, match=rf"^f: expected a tensor of shape \(.*\), got shape {got}$"):
            check_shape(x, spec, who="f")


def test_modules_use_the_shared_check():
    from reidlib.models.heads import BNNeck
    from reidlib.models.p_pooling import PPooling
    from reidlib.models.pooling import GAP, GMP, GeM

    for module, who in ((GAP(), "GAP"), (GMP(), "GMP"), (GeM(), "GeM"), (PPooling(), "PPooling")):
        with pytest.raises(ValueError, match=rf"^{who}: expected a feature map of shape \(B, C, H, W\), "
                                             rf"got shape \(2, 3\)$"):
            module(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"^BNNeck: expected features of shape \(B, 8\), got shape \(2, 4\)$"):
        BNNeck(8, 3)(torch.zeros(2, 4))


# ---------------------------------------------------------------- pairwise_distance


def dist_reference(x: list[list[float]], i: int, j: int, metric: str) -> float:
    if metric == "euclidean":
        return math.dist(x[i], x[j])
    dot = sum(a * b for a, b in zip(x[i], x[j]))
    return 1 - dot / (math.hypot(*x[i]) * math.hypot(*x[j]))


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 6), d=st.integers(1, 5), seed=st.integers(0, 10_000),
       metric=st.sampled_from(["euclidean", "cosine"]))
def test_pairwise_distance_matches_loops(b, d, seed, metric):
    x = torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    dist = pairwise_distance(x, metric)
    rows = x.tolist()
    expected = [[dist_reference(rows, i, j, metric) for j in range(b)] for i in range(b)]
    torch.testing.assert_close(dist, torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0)


def test_pairwise_distance_near_duplicates_and_half_precision_and_errors():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0 + 1e-6]], dtype=torch.float64)
    assert pairwise_distance(x)[0, 1].item() == pytest.approx(1e-6, rel=1e-6)  # no cancellation
    assert pairwise_distance(x.bfloat16()).dtype == torch.float32
    with pytest.raises(ValueError, match="metric must be"):
        pairwise_distance(x, "manhattan")
    with pytest.raises(ValueError, match=r"pairwise_distance: expected features of shape \(B, D\), got shape \(3,\)"):
        pairwise_distance(torch.zeros(3))


# ---------------------------------------------------------------- model_mode


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Conv2d(4, 2, 1))


def bn_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}


@pytest.mark.parametrize("mode", ["train", "eval", "keep"])
@pytest.mark.parametrize("start", [True, False])
def test_model_mode_switches_and_restores_modes_and_leaves_bn_statistics(mode, start):
    net = small_net().train(start)
    net[3].train(not start)  # a submodule in another mode than its parent must come back as it was
    flags = {name: m.training for name, m in net.named_modules()}
    before = bn_state(net)
    momentum = net[1].momentum
    with model_mode(net, mode):
        want = {"train": True, "eval": False}.get(mode)
        if want is not None:
            assert all(m.training == want for m in net.modules())
        else:
            assert {name: m.training for name, m in net.named_modules()} == flags
        net(torch.randn(4, 3, 6, 6))
    assert {name: m.training for name, m in net.named_modules()} == flags
    assert net[1].momentum == momentum
    for key, value in bn_state(net).items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)


def test_model_mode_in_train_mode_normalises_with_batch_statistics():
    net = small_net().eval()
    x = torch.randn(4, 3, 6, 6)
    with model_mode(net, "train"):
        out = net[:2](x)  # conv + BN with batch statistics: each channel has mean 0 over the batch
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)


def test_model_mode_restores_on_error_and_rejects_bad_modes():
    net = small_net().eval()
    with pytest.raises(RuntimeError, match="boom"), model_mode(net, "train"):
        raise RuntimeError("boom")
    assert not any(m.training for m in net.modules())
    assert net[1].momentum == 0.1
    with pytest.raises(ValueError, match="mode must be 'train', 'eval' or 'keep', got 'test'"):
        with model_mode(net, "test"):
            pass
    with pytest.raises(ValueError, match="needs the model as an nn.Module"):
        with model_mode(lambda x: x, "train"):
            pass
    with model_mode(lambda x: x, "keep"):  # a plain function is fine when nothing is switched
        pass


# ---------------------------------------------------------------- capture_activation


def test_capture_activation_records_autograd_from_the_layer_only():
    net = small_net().eval().double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    with torch.no_grad(), capture_activation(net[2]) as store:
        out = net(x)
    (a,) = store
    assert a.shape == (2, 4, 4, 4) and a.requires_grad and a.is_leaf
    assert out.requires_grad  # autograd was on after the layer
    (grad,) = torch.autograd.grad(out.sum(), a)
    # the layer after ReLU is dropout (identity in eval) then a 1x1 conv: d out.sum() / dA = sum of its weights
    expected = net[4].weight.sum(0).view(1, 4, 1, 1).expand_as(a)
    torch.testing.assert_close(grad, expected)
    assert not net[2]._forward_hooks  # the hook is gone


def test_capture_activation_a_copy_goes_downstream_and_errors():
    relu = nn.ReLU()
    net = nn.Sequential(nn.Identity(), relu, nn.ReLU(inplace=True))
    x = torch.randn(3, 2)
    with torch.no_grad(), capture_activation(net[0]) as store:
        net(x)
    torch.testing.assert_close(store[0], x)  # the in-place ReLU downstream did not touch A
    twice = nn.Sequential(relu, relu)
    with pytest.raises(RuntimeError, match="ran twice in one forward"), capture_activation(relu):
        twice(x)
    pair = Pair()
    with pytest.raises(TypeError, match="capture_activation needs the layer's output to be a tensor.*Pair returned"):
        with capture_activation(pair):
            pair(x)


class Pair(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


# ---------------------------------------------------------------- old homes


def test_old_import_paths_still_work():
    # importlib: the attribute reidlib.saliency.cg_ram is the function cg_ram, not the submodule
    home = importlib.import_module("reidlib.nn")
    for module, names in (("reidlib.saliency.cg_ram", ("model_mode", "capture_activation")),
                          ("reidlib.saliency", ("model_mode", "capture_activation")),
                          ("reidlib.losses.triplet", ("pairwise_distance",)),
                          ("reidlib.losses", ("pairwise_distance",))):
        for name in names:
            assert getattr(importlib.import_module(module), name) is getattr(home, name), (module, name)
