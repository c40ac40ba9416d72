"""OIM (HENet Eq. 7-8): the gradient against its closed form and float64 gradcheck, the LUT update,
the circular queue, the empty queue as the labeled-only case, bad input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidlib.losses import UNLABELED, OIMLoss


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def _loaded(num_classes=5, dim=4, queue=0, seed=0, **kw) -> OIMLoss:
    oim = OIMLoss(num_classes, dim, queue_size=queue, **kw).double()
    oim.lut.copy_(_unit(num_classes, dim, seed=seed))
    return oim


def test_gradient_is_the_closed_form():
    # dL/dx = (1/τ)(Σ_j p_j v_j + Σ_k p_k u_k - v_t) / B on normalised x (normalize=False: x taken as is)
    oim = _loaded(queue=3, normalize=False).eval()
    oim.queue.copy_(_unit(3, 4, seed=1))
    oim.queue_filled.fill_(3)
    x = _unit(6, 4, seed=2).requires_grad_()
    t = torch.tensor([0, 1, 1, 4, 2, 0])
    oim(x, t).backward()
    tables = torch.cat([oim.lut, oim.queue])
    p = torch.softmax(oim.scalar * x.detach() @ tables.T, dim=1)
    expected = oim.scalar * (p @ tables - oim.lut[t]) / len(t)
    torch.testing.assert_close(x.grad, expected, rtol=1e-10, atol=1e-12)


def test_gradcheck_float64_with_normalisation():
    oim = _loaded(queue=2).eval()
    oim.queue[:1] = _unit(1, 4, seed=3)
    oim.queue_filled.fill_(1)
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: oim(x, torch.tensor([0, 3, 3, 1, 4])), (x,))


def test_loss_is_the_hand_written_softmax():
    oim = _loaded().eval()
    x, t = torch.randn(4, 4, dtype=torch.float64), torch.tensor([2, 0, 4, 2])
    xn = x / x.norm(dim=1, keepdim=True)
    logits = 30.0 * xn @ oim.lut.T
    by_hand = -(logits.gather(1, t[:, None]).squeeze(1) - logits.exp().sum(1).log()).mean()
    torch.testing.assert_close(oim(x, t), by_hand)


def test_lut_moves_sample_by_sample_and_stays_unit():
    oim = _loaded(momentum=0.5).train()
    before = oim.lut.clone()
    x = _unit(3, 4, seed=5)
    oim(x, torch.tensor([1, 3, 1]))
    row = F.normalize(0.5 * before[1] + 0.5 * x[0], dim=0)  # class 1 seen twice: moved twice, in order
    row = F.normalize(0.5 * row + 0.5 * x[2], dim=0)
    torch.testing.assert_close(oim.lut[1], row)
    torch.testing.assert_close(oim.lut[3], F.normalize(0.5 * before[3] + 0.5 * x[1], dim=0))
    torch.testing.assert_close(oim.lut[[0, 2, 4]], before[[0, 2, 4]])
    torch.testing.assert_close(oim.lut.norm(dim=1), torch.ones(5, dtype=torch.float64))


def test_the_gradient_uses_the_tables_before_the_update():
    trained, frozen = _loaded().train(), _loaded().eval()
    x1 = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    t = torch.tensor([0, 1, 2, 0])
    trained(x1, t).backward()
    frozen(x2, t).backward()
    assert not torch.equal(trained.lut, frozen.lut)
    torch.testing.assert_close(x1.grad, x2.grad)


def test_eval_mode_leaves_the_tables_alone():
    oim = _loaded(queue=2).eval()
    state = {k: v.clone() for k, v in oim.state_dict().items()}
    oim(torch.randn(3, 4, dtype=torch.float64), torch.tensor([0, UNLABELED, 2]))
    assert all(torch.equal(v, oim.state_dict()[k]) for k, v in state.items())


def test_queue_wraps():
    oim = _loaded(queue=3).train()
    x = _unit(5, 4, seed=7)
    oim(x[:2], torch.tensor([UNLABELED, UNLABELED]))
    assert int(oim.queue_filled) == 2 and int(oim.queue_next) == 2
    oim(x[2:], torch.tensor([UNLABELED, UNLABELED, UNLABELED]))
    assert int(oim.queue_filled) == 3 and int(oim.queue_next) == 2
    torch.testing.assert_close(oim.queue, x[[3, 4, 2]])  # the two oldest overwritten, in order


def test_empty_queue_is_the_labeled_only_case_and_a_filled_one_enlarges_the_denominator():
    x, t = torch.randn(4, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    labeled_only = _loaded(queue=0).eval()(x, t)
    with_queue = _loaded(queue=4).eval()
    torch.testing.assert_close(with_queue(x, t), labeled_only)
    with_queue.queue[:2] = F.normalize(x[:2], dim=1)
    with_queue.queue_filled.fill_(2)
    assert with_queue(x, t) > labeled_only


def test_unlabeled_samples_take_no_loss_term():
    oim = _loaded(queue=4).eval()
    x = torch.randn(3, 4, dtype=torch.float64)
    t = torch.tensor([1, UNLABELED, 2])
    torch.testing.assert_close(oim(x, t), oim(x[[0, 2]], t[[0, 2]]))
    only = oim.train()(x[1:2].clone().requires_grad_(), torch.tensor([UNLABELED]))
    assert only.item() == 0.0 and int(oim.queue_filled) == 1


def test_state_dict_round_trip_keeps_the_tables():
    a = _loaded(queue=2).train()
    a(_unit(2, 4, seed=9), torch.tensor([0, UNLABELED]))
    b = OIMLoss(5, 4, queue_size=2).double()
    b.load_state_dict(a.state_dict())
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("x, t, match", [
    (torch.randn(2, 4), torch.tensor([0, 5]), r"label 5 is outside the lookup table \(0..4"),
    (torch.randn(2, 4), torch.tensor([0, -2]), "label -2 is outside"),
    (torch.randn(2, 3), torch.tensor([0, 1]), r"expected features of shape \(B, 4\)"),
    (torch.randn(2, 4), torch.tensor([0.0, 1.0]), "targets must be integer labels"),
    (torch.randn(2, 4), torch.tensor([0, 1, 2]), r"targets must be integer labels of shape \(2,\)"),
])
def test_bad_input_is_named(x, t, match):
    with pytest.raises(ValueError, match=match):
        OIMLoss(5, 4)(x, t)


@pytest.mark.parametrize("kw, match", [({"scalar": 0}, "scalar"), ({"momentum": 1.0}, "momentum"),
                                       ({"queue_size": -1}, "queue_size")])
def test_bad_options_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        OIMLoss(5, 4, **kw)


def test_int32_labels_are_taken():
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    a, b = OIMLoss(5, 8), OIMLoss(5, 8)
    t = torch.tensor([0, 1, 2, 1])
    torch.testing.assert_close(a(x, t.int()), b(x, t))
    torch.testing.assert_close(a.lut, b.lut)


def test_a_non_finite_feature_never_enters_the_tables():
    loss = OIMLoss(3, 4, queue_size=2)
    x = torch.tensor([[1.0, 0, 0, 0], [float("inf"), 0, 0, 0], [0, float("nan"), 0, 0], [0, 1.0, 0, 0]])
    loss(x, torch.tensor([0, 1, UNLABELED, UNLABELED]))
    assert torch.isfinite(loss.lut).all() and torch.isfinite(loss.queue).all()
    assert loss.lut[1].abs().sum() == 0 and int(loss.queue_filled) == 1  # only the finite unlabeled row
    torch.testing.assert_close(loss.lut[0], torch.tensor([1.0, 0, 0, 0]))
