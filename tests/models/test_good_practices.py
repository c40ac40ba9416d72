"""The good-practices model (Almazán et al. 2018): max pooling -> FC -> l2, two stages, frozen BN."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from reidlib.models import build_model
from reidlib.models.good_practices import GoodPractices


class _TinyBackbone(nn.Sequential):
    out_channels = 8

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8))


def _tiny(**kw) -> GoodPractices:
    torch.manual_seed(0)
    m = GoodPractices(_TinyBackbone(), 5, dim=6, **kw)
    for bn in m.modules():  # non-trivial running statistics, so that frozen and batch statistics differ
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return m


def test_registry_shapes_and_options_rebuild():
    m = build_model("good_practices", 7, backbone="resnet18")
    assert m.options == {"pooling": "gmp", "dim": 2048, "bias": True, "frozen_bn": True, "stage": "ranking"}
    assert m.backbone.last_stride == 2  # output stride 32: the paper never sets last stride 1
    x = torch.randn(2, 3, 64, 32)
    m.eval()
    out = m(x)
    assert out.shape == (2, 2048)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    again = build_model("good_practices", 7, backbone="resnet18", **m.options)
    assert type(again) is type(m) and again.options == m.options


def test_stages_outputs():
    m = _tiny(stage="classification").train()
    out = m(torch.randn(4, 3, 16, 8))["branches"]["main"]
    assert out["logits"].shape == (4, 5) and out["feat"].shape == (4, 8)
    m.eval()
    torch.testing.assert_close(m(torch.randn(3, 3, 16, 8)).norm(dim=1), torch.ones(3))
    m.set_stage("ranking")
    m.train()
    feat = m(torch.randn(4, 3, 16, 8))["branches"]["main"]["feat"]
    assert set(m(torch.randn(4, 3, 16, 8))["branches"]["main"]) == {"feat"}
    torch.testing.assert_close(feat.norm(dim=1), torch.ones(4))


def test_fc_reset_is_seeded_and_changes_the_fc():
    a, b = _tiny(), _tiny()
    before = a.fc.weight.clone()
    a.set_stage("ranking", generator=torch.Generator().manual_seed(3))
    b.set_stage("ranking", generator=torch.Generator().manual_seed(3))
    assert not torch.equal(a.fc.weight, before)
    torch.testing.assert_close(a.fc.weight, b.fc.weight)
    bound = 1 / 8 ** 0.5
    assert a.fc.weight.abs().max() <= bound and a.fc.bias.abs().max() <= bound


def test_frozen_bn_keeps_running_statistics_in_training():
    m = _tiny().train()
    assert m.training and all(not bn.training for bn in m.modules() if isinstance(bn, nn.BatchNorm2d))
    stats = [bn.running_mean.clone() for bn in m.modules() if isinstance(bn, nn.BatchNorm2d)]
    m(torch.randn(4, 3, 16, 8))
    assert all(torch.equal(s, bn.running_mean) for s, bn in zip(stats, (b for b in m.modules()
                                                                     if isinstance(b, nn.BatchNorm2d))))
    m.set_stage("classification")
    m.train()  # stage 1 trains its BN normally (batches of 128)
    assert all(bn.training for bn in m.modules() if isinstance(bn, nn.BatchNorm2d))


def _grads(model: nn.Module, images: torch.Tensor, one_by_one: bool) -> list[torch.Tensor]:
    from reidlib.losses import DotProductTripletLoss

    model.zero_grad()
    loss_fn = DotProductTripletLoss(0.5)
    if one_by_one:  # the paper's regime: each image forwarded alone, gradients accumulated triplet by triplet
        b = images.shape[0] // 3
        for t in range(b):
            feats = torch.cat([model(images[3 * t + i:3 * t + i + 1])["branches"]["main"]["feat"] for i in range(3)])
            (loss_fn(feats) / b).backward()
    else:
        loss_fn(model(images)["branches"]["main"]["feat"]).backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_accumulated_one_by_one_gradients_equal_a_batched_step_with_frozen_bn():
    images = torch.randn(12, 3, 16, 8, dtype=torch.float64)
    m = _tiny().double().train()
    one, batched = _grads(m, images, True), _grads(m, images, False)
    assert len(one) == len(batched) > 0
    for a, b in zip(one, batched):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_without_frozen_bn_they_differ():
    images = torch.randn(12, 3, 16, 8, dtype=torch.float64)
    m = _tiny(frozen_bn=False).double().train()
    m.pooled(images)  # B = 1 forwards in train-mode BN would fail (one value per channel); batches of 3 work
    b = images.shape[0] // 3
    from reidlib.losses import DotProductTripletLoss

    m.zero_grad()
    for t in range(b):
        (DotProductTripletLoss(0.5)(m(images[3 * t:3 * t + 3])["branches"]["main"]["feat"]) / b).backward()
    per_triplet = [p.grad.clone() for p in m.parameters() if p.grad is not None]
    batched = _grads(m, images, False)
    assert any(not torch.allclose(a, c) for a, c in zip(per_triplet, batched))


def test_a_list_of_images_of_different_sizes():
    m = _tiny().train()
    images = [torch.randn(3, 16, 8), torch.randn(3, 20, 9), torch.randn(3, 12, 12)]
    feat = m(images)["branches"]["main"]["feat"]
    assert feat.shape == (3, 6)
    feat.sum().backward()
    assert m.fc.weight.grad is not None
    m.eval()
    for img, row in zip(images, m(images)):  # the same as forwarding each image alone
        torch.testing.assert_close(m(img.unsqueeze(0))[0], row)


def test_gradcheck_float64_max_pool_fc_l2():
    m = _tiny().double().eval()

    def head(a):
        return m.embed(m.pooling(a))

    a = torch.randn(2, 8, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(head, (a,))


@pytest.mark.parametrize("kw, match", [
    ({"pooling": "gem"}, "pooling"), ({"dim": 0}, "dim"), ({"stage": "pretrain"}, "stage"),
])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        GoodPractices(_TinyBackbone(), 3, **kw)


def test_bad_num_classes_and_empty_list():
    with pytest.raises(ValueError, match="num_classes"):
        GoodPractices(_TinyBackbone(), 0)
    with pytest.raises(ValueError, match="empty list"):
        _tiny()([])
