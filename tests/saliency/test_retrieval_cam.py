"""Grad-CAM of retrieval descriptors (Almazán et al. 2018, Sec. 4.4): against the closed form of a
global-max-pooling -> FC -> l2 head in float64, linearity in the target, numpy orderings, masks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from reidlib.saliency import (
    attention_share,
    embedding_grad_cam,
    implicit_attention,
    l2_normalize_jacobian,
    matching_regions,
    max_pooled_channel_weights,
    pair_dimensions,
    single_dimension_maps,
    top_dimensions,
)

pytestmark = pytest.mark.usefixtures("one_thread")

D = 12


class GoodPractices(nn.Module):
    """The paper's head on a tiny trunk: conv-bn-relu | conv-relu (explained) | global max pool | FC | l2."""

    def __init__(self, dim: int = D, channels: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.layer = nn.Sequential(nn.Conv2d(4, channels, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(channels, dim)
        self.double()
        with torch.no_grad():  # non-trivial running statistics, so eval mode is visible
            self.stem[1].running_mean.uniform_(-0.2, 0.2)
            self.stem[1].running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc(self.pool(self.layer(self.stem(x))).flatten(1)), dim=1)


@pytest.fixture(scope="module")
def model() -> GoodPractices:
    return GoodPractices().eval()


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 8, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _dims(n: int, k: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, D, (n, k), generator=torch.Generator().manual_seed(seed))


# --- the exact property of max pooling ---------------------------------------------------------------

def test_l2_jacobian_matches_autograd():
    z = torch.randn(3, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for b in range(3):
        expected = torch.autograd.functional.jacobian(lambda v: F.normalize(v, dim=0), z[b])
        torch.testing.assert_close(l2_normalize_jacobian(z[b]), expected, rtol=0, atol=1e-13)
        torch.testing.assert_close(l2_normalize_jacobian(z)[b], expected, rtol=0, atol=1e-13)


def test_channel_weights_equal_closed_form(model):
    images, dims = _images(3), _dims(3, 2)
    w = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    res = embedding_grad_cam(model, images, "layer", dims, weights=w)
    act = res.activation
    hw = act.shape[2] * act.shape[3]
    # written out by hand here, independently of the library's closed form
    p = act.amax((2, 3))
    z = p @ model.fc.weight.t() + model.fc.bias
    x = z / z.norm(dim=1, keepdim=True)
    eye = torch.eye(D, dtype=torch.float64)
    dx_dp = torch.stack([(eye - torch.outer(x[b], x[b])) @ model.fc.weight / z[b].norm() for b in range(3)])
    expected = torch.stack([(w[b, :, None] * dx_dp[b, dims[b]]).sum(0) / hw for b in range(3)])
    torch.testing.assert_close(res.descriptors, x, rtol=0, atol=1e-13)
    torch.testing.assert_close(res.weights, expected, rtol=0, atol=1e-13)
    torch.testing.assert_close(max_pooled_channel_weights(p, model.fc.weight, model.fc.bias, dims, hw, w), expected,
                               rtol=0, atol=1e-13)
    # the gradient sits at one location per channel, one where the channel reaches its maximum
    grad = res.gradient.flatten(2)
    nonzero = grad != 0
    assert int(nonzero.sum(2).max()) <= 1
    assert torch.equal(act.flatten(2)[nonzero], p[:, :, None].expand_as(grad)[nonzero])
    torch.testing.assert_close(grad.sum(2), hw * expected, rtol=0, atol=1e-12)


def test_renormalising_a_normalised_descriptor_changes_nothing(model):
    images, dims = _images(2), _dims(2, 3)
    a = embedding_grad_cam(model, images, "layer", dims, normalize=True)
    b = embedding_grad_cam(model, images, "layer", dims, normalize=False)
    torch.testing.assert_close(a.weights, b.weights, rtol=0, atol=1e-14)
    torch.testing.assert_close(a.maps, b.maps, rtol=0, atol=1e-14)


# --- single dimensions, linearity ----------------------------------------------------------------------

def test_single_dimension_maps_equal_one_dim_grad_cam(model):
    images, dims = _images(3), _dims(3, 4)
    res = single_dimension_maps(model, images, model.layer, dims)
    assert res.maps.shape == (3, 4, 8, 6) and res.weights.shape == (3, 4, 6)
    assert bool((res.maps >= 0).all())
    for t in range(4):
        one = embedding_grad_cam(model, images, model.layer, dims[:, t:t + 1])
        torch.testing.assert_close(res.maps[:, t], one.maps, rtol=0, atol=1e-14)
        torch.testing.assert_close(res.weights[:, t], one.weights, rtol=0, atol=1e-14)


def test_shared_row_of_dims_is_broadcast(model):
    images = _images(3)
    a = single_dimension_maps(model, images, "layer", torch.tensor([0, 5]))
    b = single_dimension_maps(model, images, "layer", torch.tensor([[0, 5]] * 3))
    assert a.dims.shape == (3, 2)
    torch.testing.assert_close(a.maps, b.maps, rtol=0, atol=0)


def test_implicit_attention_weights_are_sums_of_single_dimension_weights(model):
    images = _images(3)
    res = implicit_attention(model, images, "layer", top=5)
    assert res.maps.shape == (3, 8, 6) and bool((res.maps >= 0).all())
    assert torch.equal(res.dims, top_dimensions(res.descriptors, 5).dims)
    single = single_dimension_maps(model, images, "layer", res.dims)
    # alpha is linear in the target: the sum target's weights are the sum of the dimensions' weights
    torch.testing.assert_close(res.weights, single.weights.sum(1), rtol=0, atol=1e-13)
    assert res.weights.abs().max() > 1e-6
    direct = embedding_grad_cam(model, images, "layer", res.dims)
    torch.testing.assert_close(res.maps, direct.maps, rtol=0, atol=1e-14)


def test_runs_under_no_grad_and_restores_modes(model):
    net = GoodPractices().train()
    stats = net.stem[1].running_mean.clone()
    with torch.no_grad():
        res = single_dimension_maps(net, _images(2), "layer", _dims(2, 2))
        imp = implicit_attention(net, _images(2), "layer", top=3)
    assert res.maps.shape == (2, 2, 8, 6) and imp.maps.shape == (2, 8, 6)
    assert net.training and net.stem[1].training
    assert torch.equal(net.stem[1].running_mean, stats)
    net.eval()
    torch.testing.assert_close(single_dimension_maps(net, _images(2), "layer", _dims(2, 2)).maps, res.maps,
                               rtol=0, atol=0)


# --- pair dimensions and matching regions (Fig. 5) ------------------------------------------------

@pytest.mark.parametrize("top", [1, 3, D])
def test_pair_dimensions_against_numpy(top):
    gen = torch.Generator().manual_seed(4)
    q = F.normalize(torch.randn(4, D, dtype=torch.float64, generator=gen), dim=1)
    d = F.normalize(torch.randn(4, D, dtype=torch.float64, generator=gen), dim=1)
    dims, contributions = pair_dimensions(q, d, top)
    prod = (q * d).numpy()
    order = np.argsort(-prod, axis=1)[:, :top]
    np.testing.assert_array_equal(dims.numpy(), order)
    np.testing.assert_allclose(contributions.numpy(), np.take_along_axis(prod, order, 1), rtol=0, atol=0)
    one_dims, one_values = pair_dimensions(q[1], d[1], top)
    np.testing.assert_array_equal(one_dims.numpy(), order[1])
    assert one_values.shape == (top,)
    if top == D:
        torch.testing.assert_close(contributions.sum(1), (q * d).sum(1), rtol=0, atol=1e-14)


@pytest.mark.parametrize("top", [1, 4, D])
def test_top_dimensions_against_numpy(top):
    x = torch.randn(3, D, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    dims, values = top_dimensions(x, top)
    order = np.argsort(-x.numpy(), axis=1)[:, :top]
    np.testing.assert_array_equal(dims.numpy(), order)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x.numpy(), order, 1))
    assert top_dimensions(x[0], top).dims.tolist() == order[0].tolist()


def test_top_dimensions_are_signed():
    x = torch.tensor([[-5.0, 0.1, 0.3, -0.2]])
    assert top_dimensions(x, 2).dims.tolist() == [[2, 1]]


def test_matching_regions(model):
    query, gallery = _images(3, seed=6), _images(3, seed=7)
    res = matching_regions(model, query, gallery, "layer", top=4)
    q, d = model(query).detach(), model(gallery).detach()
    torch.testing.assert_close(res.query_descriptors, q, rtol=0, atol=1e-13)
    torch.testing.assert_close(res.gallery_descriptors, d, rtol=0, atol=1e-13)
    torch.testing.assert_close(res.score, (q * d).sum(1), rtol=0, atol=1e-13)
    expected = pair_dimensions(q, d, 4)
    assert torch.equal(res.dims, expected.dims)
    torch.testing.assert_close(res.contributions, expected.values, rtol=0, atol=1e-13)
    assert res.query_maps.shape == res.gallery_maps.shape == (3, 4, 8, 6)
    assert bool((res.query_maps >= 0).all()) and bool((res.gallery_maps >= 0).all())
    for images, maps, weights in ((query, res.query_maps, res.query_weights), (gallery, res.gallery_maps, res.gallery_weights)):
        single = single_dimension_maps(model, images, "layer", res.dims)
        torch.testing.assert_close(maps, single.maps, rtol=0, atol=1e-13)
        torch.testing.assert_close(weights, single.weights, rtol=0, atol=1e-13)


# --- attention share ---------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5), st.integers(1, 5))
def test_attention_share_is_a_share(seed, h, w):
    gen = torch.Generator().manual_seed(seed)
    maps = torch.randn(3, h, w, dtype=torch.float64, generator=gen).abs() + 0.01
    masks = torch.rand(3, 10, 7, generator=gen) > 0.5
    share = attention_share(maps, masks)
    assert share.shape == (3,)
    assert bool(((share >= 0) & (share <= 1)).all())
    torch.testing.assert_close(attention_share(maps, torch.ones(3, 10, 7, dtype=torch.bool)),
                               torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-14)
    torch.testing.assert_close(share + attention_share(maps, ~masks), torch.ones(3, dtype=torch.float64),
                               rtol=0, atol=1e-14)


def test_attention_share_exact_by_hand():
    maps = torch.tensor([[[1.0, 2.0], [3.0, -4.0]]], dtype=torch.float64)  # negative part clamped away
    masks = torch.tensor([[[True, False], [True, True]]])
    torch.testing.assert_close(attention_share(maps, masks), torch.tensor([4.0 / 6.0], dtype=torch.float64))
    # a constant map stays constant when upsampled: the share is the mask's area fraction
    masks = torch.zeros(1, 8, 4, dtype=torch.bool)
    masks[0, :2, :3] = True
    torch.testing.assert_close(attention_share(torch.full((1, 1, 1), 0.7), masks), torch.tensor([6.0 / 32.0]))


def test_attention_share_of_an_empty_map_is_nan():
    maps = torch.stack([torch.zeros(3, 3), -torch.ones(3, 3), torch.ones(3, 3)])
    share = attention_share(maps, torch.ones(3, 6, 6, dtype=torch.bool))
    assert bool(share[:2].isnan().all()) and share[2].item() == pytest.approx(1.0)


# --- bad input -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda m: embedding_grad_cam(m, _images(2), "layer", torch.tensor([[0], [D]])), "dims"),
        (lambda m: embedding_grad_cam(m, _images(2), "layer", torch.tensor([[-1], [0]])), "dims"),
        (lambda m: embedding_grad_cam(m, _images(2), "layer", torch.zeros(2, 1)), "dims"),
        (lambda m: embedding_grad_cam(m, _images(2), "layer", torch.zeros(3, 1, dtype=torch.long)), "dims"),
        (lambda m: embedding_grad_cam(m, _images(2), "layer", torch.zeros(2, 0, dtype=torch.long)), "dims"),
        (lambda m: embedding_grad_cam(m, _images(2), "layer", _dims(2, 2), weights=torch.ones(2, 3)), "weights"),
        (lambda m: embedding_grad_cam(m, _images(2)[:, 0], "layer", _dims(2, 1)), "images"),
        (lambda m: embedding_grad_cam(m, _images(2)[:, :2], "layer", _dims(2, 1)), "images"),
        (lambda m: single_dimension_maps(m, _images(2), "layer", torch.tensor([D + 3])), "dims"),
        (lambda m: single_dimension_maps(m, _images(2)[0], "layer", _dims(2, 1)), "images"),
        (lambda m: implicit_attention(m, _images(2), "layer", top=0), "top"),
        (lambda m: implicit_attention(m, _images(2), "layer", top=D + 1), "top"),
        (lambda m: implicit_attention(m, _images(2).permute(0, 2, 3, 1), "layer"), "images"),
        (lambda m: matching_regions(m, _images(2), _images(2), "layer", top=0), "top"),
        (lambda m: matching_regions(m, _images(2), _images(2), "layer", top=D + 1), "top"),
        (lambda m: matching_regions(m, _images(2), _images(3), "layer"), "gallery_images"),
        (lambda m: matching_regions(m, _images(2)[:, 0], _images(2), "layer"), "query_images"),
        (lambda m: top_dimensions(torch.randn(2, D), top=0), "top"),
        (lambda m: top_dimensions(torch.randn(2, D), top=D + 1), "top"),
        (lambda m: top_dimensions(torch.randn(2, D, 1)), "x"),
        (lambda m: pair_dimensions(torch.randn(2, D), torch.randn(D)), "q and d"),
        (lambda m: pair_dimensions(torch.randn(D), torch.randn(D), top=D + 1), "top"),
        (lambda m: pair_dimensions(torch.randn(D), torch.randn(D), top=1.5), "top"),
        (lambda m: attention_share(torch.ones(2, 3, 3), torch.ones(3, 6, 6, dtype=torch.bool)), "masks"),
        (lambda m: attention_share(torch.ones(2, 3, 3), torch.ones(2, 6, 6)), "masks"),
        (lambda m: attention_share(torch.ones(2, 3, 3), torch.ones(2, 1, 6, 6, dtype=torch.bool)), "masks"),
        (lambda m: attention_share(torch.ones(2, 1, 3, 3), torch.ones(2, 6, 6, dtype=torch.bool)), "maps"),
    ],
)
def test_bad_input_names_the_parameter(model, call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call(model)
