"""Attribute BCE (hashing paper Eq. (3)-(5)): the two-way softmax of Eq. (3)-(4) equals one logit + BCE, unknown
labels (NaN or mask) count for nothing, float64 gradcheck, Eq. (5)'s code and the flip that leaves Hamming
distances unchanged, the criterion's "attributes" term and its contract, bad input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reidlib.losses import AttributeTerm, attribute_code, attribute_loss, build_criterion, ssr_distillation


def _data(b=5, a=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, a, generator=g, dtype=torch.float64)
    targets = (torch.rand(b, a, generator=g) > 0.5).double()
    return logits, targets


def test_two_way_softmax_of_eq3_is_one_logit_with_bce():
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    t = (torch.rand(6, 4, generator=g) > 0.5).long()
    # Eq. (3)-(4): softmax over [z_0, z_1] per attribute, CE, mean over attributes and batch
    eq4 = F.cross_entropy(torch.stack([z0, z1], dim=-1).reshape(-1, 2), t.reshape(-1))
    torch.testing.assert_close(attribute_loss(z1 - z0, t.double()), eq4, rtol=1e-12, atol=1e-14)
    # the brief's special case: logits [0, z] against BCE with logits on z, and p(yes) = sigmoid(z)
    z = z1
    two_way = torch.stack([torch.zeros_like(z), z], dim=-1)
    torch.testing.assert_close(F.cross_entropy(two_way.reshape(-1, 2), t.reshape(-1)),
                               F.binary_cross_entropy_with_logits(z, t.double()), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(torch.softmax(two_way, -1)[..., 1], torch.sigmoid(z), rtol=1e-12, atol=1e-14)
    # and the gradients agree: d/dz of both is sigmoid(z) - t, over the count
    zs = z.clone().requires_grad_()
    zc = z.clone().requires_grad_()
    attribute_loss(zs, t.double()).backward()
    F.cross_entropy(torch.stack([torch.zeros_like(zc), zc], -1).reshape(-1, 2), t.reshape(-1)).backward()
    torch.testing.assert_close(zs.grad, zc.grad, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(zs.grad, (torch.sigmoid(z) - t) / z.numel(), rtol=1e-12, atol=1e-14)


def test_without_unknowns_it_is_the_mean_bce():
    logits, targets = _data()
    torch.testing.assert_close(attribute_loss(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))
    torch.testing.assert_close(attribute_loss(logits, targets.bool()), F.binary_cross_entropy_with_logits(logits, targets))
    torch.testing.assert_close(attribute_loss(logits, targets, torch.ones_like(targets, dtype=torch.bool)),
                               F.binary_cross_entropy_with_logits(logits, targets))


def test_unknown_labels_are_the_same_as_dropping_them():
    logits, targets = _data()
    nan = targets.clone()
    nan[0, 1] = nan[3, :] = float("nan")
    mask = torch.ones_like(targets, dtype=torch.bool)
    mask[1, 2] = mask[4, 5] = False
    known = ~torch.isnan(nan) & mask
    dropped = F.binary_cross_entropy_with_logits(logits[known], targets[known])
    torch.testing.assert_close(attribute_loss(logits, nan, mask), dropped)
    # a masked-out placeholder is not read (any value); changing it changes nothing, its gradient is 0
    placeholder = nan.clone()
    placeholder[1, 2], placeholder[4, 5] = -1.0, 7.0
    z = logits.clone().requires_grad_()
    loss = attribute_loss(z, placeholder, mask)
    loss.backward()
    torch.testing.assert_close(loss, dropped)
    assert (z.grad[~known] == 0).all() and (z.grad[known] != 0).all()
    assert torch.isfinite(z.grad).all()


def test_nothing_known_gives_zero_with_a_zero_gradient():
    z = torch.randn(3, 4, requires_grad=True)
    loss = attribute_loss(z, torch.full((3, 4), float("nan")))
    loss.backward()
    assert loss.item() == 0.0 and loss.dim() == 0 and (z.grad == 0).all()


def test_gradcheck_float64_with_unknowns():
    logits, targets = _data(4, 5, seed=2)
    targets[1, 3] = float("nan")
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[2, 0] = False
    logits.requires_grad_()
    assert torch.autograd.gradcheck(lambda z: attribute_loss(z, targets, mask), (logits,))


@pytest.mark.parametrize(("logits", "targets", "mask", "match"), [
    (torch.randn(4), torch.ones(4), None, r"attribute_loss: expected logits \(one per attribute\) of shape \(B, A\)"),
    (torch.randn(4, 3), torch.ones(4, 2), None, r"targets must have logits' shape \(4, 3\), got \(4, 2\)"),
    (torch.randn(4, 3), torch.ones(4, 3, 1), None, r"expected targets of shape \(B, A\), got shape \(4, 3, 1\)"),
    (torch.randn(4, 3), torch.ones(4, 3), torch.ones(3, 4, dtype=torch.bool), r"mask must have logits' shape"),
    (torch.randn(4, 3), torch.ones(4, 3), torch.ones(4, 3), r"mask must be a bool tensor .* got dtype torch.float32"),
    (torch.tensor([[0.0, float("nan")]]), torch.ones(1, 2), None, r"logits must be finite numbers, got NaN at \(0, 1\)"),
    (torch.zeros(2, 2), torch.tensor([[0.0, 1.0], [2.0, 0.0]]), None,
     r"targets must be 0 \(no\), 1 \(yes\) or NaN \(unknown\), got 2.0 at \(1, 0\)"),
    (torch.zeros(1, 2), torch.tensor([[-1.0, 1.0]]), None, r"got -1.0 at \(0, 0\)"),
    (torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2), None, r"logits must be floating point"),
])
def test_bad_input_is_named(logits, targets, mask, match):
    with pytest.raises(ValueError, match=match):
        attribute_loss(logits, targets, mask)


def test_attribute_code_conventions_and_the_flip_leaves_hamming_unchanged():
    z = torch.tensor([[2.0, -1.0, 0.0, 1e-9]], requires_grad=True)
    present = attribute_code(z)
    assert present.tolist() == [[1.0, -1.0, -1.0, 1.0]] and not present.requires_grad
    assert attribute_code(z, convention="paper").tolist() == [[-1.0, 1.0, -1.0, -1.0]]  # Eq. (5): +1 = "no" more probable
    with pytest.raises(ValueError, match="convention must be 'present' or 'paper'"):
        attribute_code(z, convention="yes")
    logits, _ = _data(9, 30, seed=3)
    codes, paper = attribute_code(logits), attribute_code(logits, convention="paper")
    assert torch.equal(paper, -codes)  # no exact ties in random logits: a flip of every bit

    def hamming(b):
        return (b.shape[1] - b @ b.T) / 2

    torch.testing.assert_close(hamming(paper), hamming(codes))
    torch.testing.assert_close(hamming(codes), (codes[:, None, :] != codes[None, :, :]).sum(-1).double())


# --- the criterion's "attributes" term ----------------------------------------------------------------------
PIDS = torch.tensor([0, 0, 1, 1, 2, 2])


def _outputs(seed=0, attrs=4, bits=6, classes=3):
    """Teacher and student global branches with attribute heads, local branches without, targets on top."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    branches = {name: {"logits": rand(6, classes), "feat": rand(6, bits)} for name in ("t_g", "s_g", "t_l1", "s_l1")}
    for name in ("t_g", "s_g"):
        branches[name]["attribute_logits"] = rand(6, attrs)
    targets = (torch.rand(6, attrs, generator=g) > 0.5).double()
    targets[2, 1] = float("nan")
    return {"branches": branches, "attribute_targets": targets}


def test_term_through_the_criterion_on_the_branches_with_heads():
    outputs = _outputs()
    crit = build_criterion("reid", 3, extra_terms={"attributes": {"weight": 0.3}})
    losses = crit(outputs, PIDS)
    for name in ("t_g", "s_g"):
        expected = 0.3 * attribute_loss(outputs["branches"][name]["attribute_logits"], outputs["attribute_targets"])
        torch.testing.assert_close(losses[f"{name}/attributes"], expected)
    for name in ("t_l1", "s_l1"):
        assert losses[f"{name}/attributes"].item() == 0.0
    crit = build_criterion("reid", 3, extra_terms={"attributes": {"weight": 0.3}},
                           branch_terms={"t_l1": ["id", "triplet"], "s_l1": ["id", "triplet"]})
    assert not {"t_l1/attributes", "s_l1/attributes"} & set(crit(outputs, PIDS))


def test_both_hashing_terms_together_and_branch_targets_take_precedence():
    outputs = _outputs()
    for part in ("g", "l1"):
        outputs["branches"][f"s_{part}"]["code"] = outputs["branches"][f"s_{part}"]["feat"]
        outputs["branches"][f"s_{part}"]["teacher_code"] = outputs["branches"][f"t_{part}"]["feat"]
    own = torch.zeros(6, 4, dtype=torch.float64)
    outputs["branches"]["s_g"]["attribute_targets"] = own
    crit = build_criterion("reid", 3, extra_terms={"ssr": {"weight": 0.3}, "attributes": {"weight": 0.3}})
    losses = crit(outputs, PIDS)
    s = outputs["branches"]["s_g"]
    torch.testing.assert_close(losses["s_g/attributes"], 0.3 * attribute_loss(s["attribute_logits"], own))
    torch.testing.assert_close(losses["s_g/ssr"], 0.3 * ssr_distillation(s["code"], s["teacher_code"]))
    assert {"s_g/id", "s_g/triplet", "t_g/attributes", "s_l1/ssr"} <= set(losses)
    assert torch.isfinite(crit.total(outputs, PIDS))


def test_contract_errors_are_named():
    crit = build_criterion("reid", 3, extra_terms={"attributes": {"weight": 0.3}})
    outputs = _outputs()
    del outputs["attribute_targets"]
    with pytest.raises(KeyError, match="holds 'attribute_logits' but the training output has no 'attribute_targets'"):
        crit(outputs, PIDS)
    outputs = _outputs()
    for b in outputs["branches"].values():
        b.pop("attribute_logits", None)
    with pytest.raises(KeyError, match="no branch of the training output holds 'attribute_logits'"):
        crit(outputs, PIDS)
    outputs = _outputs()
    outputs["attribute_targets"][0, 0] = 3.0
    with pytest.raises(ValueError, match=r"targets must be 0 \(no\), 1 \(yes\) or NaN"):
        crit(outputs, PIDS)
    with pytest.raises(ValueError, match="attributes term: targets must name an output entry"):
        AttributeTerm(targets=None)


def test_term_key_names_are_options():
    outputs = _outputs()
    outputs["attrs"] = outputs.pop("attribute_targets")
    for b in outputs["branches"].values():
        if "attribute_logits" in b:
            b["attr_z"] = b.pop("attribute_logits")
    crit = build_criterion("reid", 3, extra_terms={"attributes": {"weight": 1.0, "logits": "attr_z", "targets": "attrs"}})
    torch.testing.assert_close(crit(outputs, PIDS)["s_g/attributes"],
                               attribute_loss(outputs["branches"]["s_g"]["attr_z"], outputs["attrs"]))
