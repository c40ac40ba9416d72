"""CG-RAM, ES-Net Eqs. (2)-(5): against finite differences of S on a tiny float64 model."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from reidlib.saliency import (
    batch_confidence_score,
    cg_ram,
    cg_ram_batch,
    confidence_score,
    easiest_positive,
    grad_cam,
    saliency_map,
)


class Tiny(nn.Module):
    """conv-bn-relu | conv-relu (the explained layer) | conv | GAP -> (B, D); dict of logits in train mode."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.layer = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Conv2d(6, 8, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.fc = nn.Linear(8, num_classes)
        self.double()
        with torch.no_grad():  # non-trivial running statistics
            for bn in (self.stem[1], self.head[1]):
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 2.0)

    def after_layer(self, a: torch.Tensor) -> torch.Tensor:
        return self.head(a).mean((2, 3))

    def forward(self, x: torch.Tensor):
        feat = self.after_layer(self.layer(self.stem(x)))
        if self.training:
            return {"feat": feat, "feat_bn": feat, "logits": self.fc(feat)}
        return feat


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 6, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _finite_difference(fn, a: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(a)
    flat, gflat = a.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        up = fn(a)
        flat[i] = old - eps
        down = fn(a)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def test_cg_ram_matches_finite_difference_of_S():
    model = Tiny().train()  # cg_ram switches to eval for the pass and back
    q, g = _images(2, 1), _images(2, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = cg_ram(model, q, g, "layer")
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())
    assert not model.layer._forward_hooks

    model.eval()
    with torch.no_grad():
        a = model.layer(model.stem(torch.cat([q, g])))
        torch.testing.assert_close(res.activation, a)

        def score(a_: torch.Tensor) -> float:
            f = model.after_layer(a_)
            return float(confidence_score(f[:2], f[2:]).sum())

        phi = _finite_difference(score, a.clone())
        torch.testing.assert_close(res.score, confidence_score(model(q), model(g)))
    torch.testing.assert_close(res.gradient, phi, rtol=1e-6, atol=1e-8)
    m = torch.relu((phi * a).sum(1))  # Eq. (4)
    torch.testing.assert_close(torch.cat([res.query_map, res.gallery_map]), m, rtol=1e-6, atol=1e-8)
    assert res.query_map.shape == (2, 6, 5)


def test_cg_ram_pair_maps_are_independent_of_other_pairs():
    model = Tiny().eval()
    q, g = _images(3, 3), _images(3, 4)
    both = cg_ram(model, q, g, model.layer)
    one = cg_ram(model, q[1:2], g[1:2], model.layer)
    torch.testing.assert_close(both.query_map[1:2], one.query_map)
    torch.testing.assert_close(both.gallery_map[1:2], one.gallery_map)


def test_cg_ram_any_layer_and_frozen_model():
    model = Tiny().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    res = cg_ram(model, _images(2, 5), _images(2, 6), "stem")  # a different layer, frozen weights
    assert res.query_map.shape == (2, 6, 5) and torch.isfinite(res.query_map).all()
    assert res.gradient.abs().sum() > 0


def test_cg_ram_bad_input():
    model = Tiny().eval()
    with pytest.raises(ValueError, match="not a submodule"):
        cg_ram(model, _images(2), _images(2), "layer9")
    with pytest.raises(ValueError, match="equal shape"):
        cg_ram(model, _images(2), _images(3), "layer")
    with pytest.raises(TypeError, match="output_fn"):
        cg_ram(lambda x: (model(x),), _images(2), _images(2), model.layer, mode="keep")
    with pytest.raises(ValueError, match="mode='keep'"):
        cg_ram(lambda x: model(x), _images(2), _images(2), model.layer)  # cannot switch a function to eval


def _pk(p: int, k: int) -> torch.Tensor:
    return torch.arange(p).repeat_interleave(k)


def test_batch_score_is_eq5():
    feats = torch.randn(8, 4, dtype=torch.float64)
    pids = _pk(4, 2)
    s_batch, pos, pair = batch_confidence_score(feats, pids)
    expect = sum(
        torch.exp(torch.cosine_similarity(feats[i], feats[int(pos[i])], dim=0))
        * torch.cosine_similarity(feats[i], feats[int(pos[i])], dim=0)
        for i in range(8)
    )
    torch.testing.assert_close(s_batch, expect)
    assert (pids[pos] == pids).all() and (pos != torch.arange(8)).all()


def test_cg_ram_batch_matches_finite_difference_of_S_batch():
    model = Tiny().train()  # train-mode BN: the batch statistics couple the samples; FD sees the same
    x, pids = _images(6, 7), _pk(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = cg_ram_batch(model, x, pids, "layer")
    for k, v in model.state_dict().items():  # running statistics restored
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        a = model.layer(model.stem(x))

        def score(a_: torch.Tensor) -> float:
            s, pos, _ = batch_confidence_score(model.after_layer(a_), pids)
            assert torch.equal(pos, res.positive)  # the pairing does not move under the perturbation
            return float(s)

        phi = _finite_difference(score, a.clone())
    torch.testing.assert_close(res.activation, a)
    torch.testing.assert_close(res.gradient, phi, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(res.maps, saliency_map(a, phi), rtol=1e-6, atol=1e-8)


def test_cg_ram_batch_needs_two_samples_per_id():
    model = Tiny().train()
    with pytest.raises(ValueError, match="K >= 2"):
        cg_ram_batch(model, _images(3), torch.tensor([0, 0, 1]), "layer")


@settings(max_examples=30, deadline=None)
@given(p=st.integers(2, 5), k=st.integers(2, 4), d=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_easiest_positive_is_nearest_same_id_other_sample(p, k, d, seed):
    g = torch.Generator().manual_seed(seed)
    pids = _pk(p, k)[torch.randperm(p * k, generator=g)]
    feats = torch.randn(p * k, d, generator=g, dtype=torch.float64)
    dist = torch.cdist(feats, feats)
    got = easiest_positive(dist, pids)
    for i in range(p * k):
        cands = [j for j in range(p * k) if j != i and pids[j] == pids[i]]
        best = min(cands, key=lambda j: float(dist[i, j]))
        assert int(got[i]) == best
    # itself is never its easiest positive even though dist[i, i] = 0 is the smallest entry
    assert (got != torch.arange(p * k)).all()


def test_grad_cam_is_channel_mean_of_classification_gradient():
    model = Tiny().train()
    x, y = _images(4, 9), torch.tensor([0, 1, 2, 3])
    res = grad_cam(model, x, y, "layer")
    with torch.no_grad():
        a = model.layer(model.stem(x))

        def loss(a_: torch.Tensor) -> float:
            logits = model.fc(model.after_layer(a_))
            return float(-torch.nn.functional.cross_entropy(logits, y, reduction="sum"))

        phi = _finite_difference(loss, a.clone())
    torch.testing.assert_close(res.gradient, phi, rtol=1e-6, atol=1e-8)
    alpha = phi.mean((2, 3))
    torch.testing.assert_close(res.maps, torch.relu((alpha[:, :, None, None] * a).sum(1)), rtol=1e-6, atol=1e-8)
