"""The one criterion over named branches: ID + triplet per branch, weights, branch filters, extra terms."""
from __future__ import annotations

import pytest
import torch

from reidlib.losses import LOSS_TERMS, CrossEntropyLabelSmooth, ReIDCriterion, TripletLoss, build_criterion, register_term


def _outputs(branches=("aib", "esb"), b=8, n=4, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {name: {"logits": torch.randn(b, n, generator=g, requires_grad=True),
                  "feat": torch.randn(b, d, generator=g, requires_grad=True)} for name in branches}
    return {"branches": out}, torch.arange(b // 2).repeat_interleave(2)


def test_sum_over_branches_of_id_and_triplet_with_weights():
    out, y = _outputs()
    c = build_criterion("reid", 4, label_smoothing=0.1, margin=0.3, triplet_weight=0.5)
    terms = c(out, y)
    assert set(terms) == {"aib/id", "aib/triplet", "esb/id", "esb/triplet"}
    ce, tri = CrossEntropyLabelSmooth(4, 0.1), TripletLoss(0.3)
    for b in ("aib", "esb"):
        torch.testing.assert_close(terms[f"{b}/id"], ce(out["branches"][b]["logits"], y))
        torch.testing.assert_close(terms[f"{b}/triplet"], 0.5 * tri(out["branches"][b]["feat"], y))
    torch.testing.assert_close(c.total(out, y), sum(terms.values()))


def test_single_branch_main_keeps_plain_names_and_zero_weight_drops_a_term():
    out, y = _outputs(("main",))
    assert set(ReIDCriterion(4)(out, y)) == {"id", "triplet"}
    assert set(ReIDCriterion(4, triplet_weight=0)(out, y)) == {"id"}
    bare = out["branches"]["main"]  # a model outside the contract: its dict is the branch "main"
    assert set(ReIDCriterion(4)(bare, y)) == {"id", "triplet"}


def test_branch_terms_and_errors():
    out, y = _outputs()
    c = ReIDCriterion(4, branch_terms={"aib": ["id"]})
    assert set(c(out, y)) == {"aib/id", "esb/id", "esb/triplet"}
    with pytest.raises(ValueError, match=r"branch 'aib' names unknown term\(s\) \['oim'\]"):
        ReIDCriterion(4, branch_terms={"aib": ["oim"]})
    with pytest.raises(ValueError, match="triplet_weight must be a number >= 0"):
        ReIDCriterion(4, triplet_weight=-1)
    with pytest.raises(TypeError, match="target must be the ids"):
        ReIDCriterion(4)(out, "ids")
    with pytest.raises(ValueError, match="unknown criterion 'arcface'.*'reid'"):
        build_criterion("arcface", 4)


def test_a_paper_adds_a_term_without_editing_the_core():
    name = "feat_norm_test"
    if name not in LOSS_TERMS:
        @register_term(name)
        def feat_norm(num_classes, scale=1.0):
            return lambda out, pids, outputs: scale * out["feat"].pow(2).sum(1).mean()

    out, y = _outputs(("main",))
    c = ReIDCriterion(4, extra_terms={name: {"weight": 2.0, "scale": 0.5}})
    terms = c(out, y)
    torch.testing.assert_close(terms[name], 2.0 * 0.5 * out["branches"]["main"]["feat"].pow(2).sum(1).mean())
    assert c.options["extra_terms"] == {name: {"weight": 2.0, "scale": 0.5}}
    with pytest.raises(ValueError, match="unknown loss term 'nope'"):
        ReIDCriterion(4, extra_terms={"nope": {}})


# ---- the triplet ramp and the soft margin


def _main_outputs(seed=0):
    out, y = _outputs(("main",), seed=seed)
    return out, y, out["branches"]["main"]["feat"]


@pytest.mark.parametrize("ramp, progress, factor", [
    (0.25, None, 0.0),  # before the first set_progress: the ramp starts at 0
    (0.25, 0.0, 0.0), (0.25, 0.125, 0.5), (0.25, 0.25, 1.0), (0.25, 1.0, 1.0),
    (0.0, None, 1.0), (0.0, 0.0, 1.0), (0.0, 0.5, 1.0),  # no ramp: always the full weight
])
def test_triplet_ramp_scales_the_triplet_term_by_min_1_progress_over_ramp(ramp, progress, factor):
    out, y, feat = _main_outputs()
    c = ReIDCriterion(4, triplet_weight=1.0, triplet_ramp=ramp)
    if progress is not None:
        c.set_progress(progress)
    terms = c(out, y)
    assert torch.equal(terms["triplet"], factor * TripletLoss(0.3)(feat, y))
    torch.testing.assert_close(terms["id"], CrossEntropyLabelSmooth(4, 0.1)(out["branches"]["main"]["logits"], y))


def test_triplet_ramp_rises_linearly_then_stays_at_the_weight():
    out, y, feat = _main_outputs(seed=1)
    c = ReIDCriterion(4, triplet_weight=2.0, triplet_ramp=0.5)
    full = 2.0 * TripletLoss(0.3)(feat, y)
    assert full > 0
    seen = []
    for t in (0.0, 0.1, 0.25, 0.4, 0.5, 0.75, 1.0):
        c.set_progress(t)
        seen.append((c(out, y)["triplet"] / full).item())
    assert seen == pytest.approx([0.0, 0.2, 0.5, 0.8, 1.0, 1.0, 1.0], abs=1e-6)


@pytest.mark.parametrize("kwargs, name", [
    (dict(triplet_ramp=True), "triplet_ramp"), (dict(triplet_ramp=-0.1), "triplet_ramp"),
    (dict(triplet_ramp=1.0), "triplet_ramp"), (dict(triplet_ramp="0.25"), "triplet_ramp"),
    (dict(soft_margin=1), "soft_margin"), (dict(soft_margin="yes"), "soft_margin"), (dict(soft_margin=None), "soft_margin"),
])
def test_invalid_ramp_or_soft_margin_is_named(kwargs, name):
    with pytest.raises(ValueError, match=f"ReIDCriterion: {name} must be"):
        ReIDCriterion(4, **kwargs)


def test_options_record_the_soft_margin_and_the_ramp():
    c = ReIDCriterion(4, soft_margin=True, triplet_ramp=0.25)
    assert c.options["soft_margin"] is True and c.options["triplet_ramp"] == 0.25
    d = build_criterion("reid", 4)
    assert d.options["soft_margin"] is False and d.options["triplet_ramp"] == 0.0


def test_soft_margin_is_the_mean_softplus_of_hardest_gaps():
    out, y, feat = _main_outputs(seed=2)
    terms = ReIDCriterion(4, soft_margin=True, margin=0.3)(out, y)
    f = feat.detach().double()
    gaps = []
    for a in range(len(y)):  # brute force: farthest positive, nearest negative of each anchor
        d = [torch.dist(f[a], f[j]).item() for j in range(len(y))]
        d_ap = max(d[j] for j in range(len(y)) if j != a and y[j] == y[a])
        d_an = min(d[j] for j in range(len(y)) if y[j] != y[a])
        gaps.append(d_ap - d_an)
    expected = torch.nn.functional.softplus(torch.tensor(gaps)).mean()
    assert terms["triplet"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert ReIDCriterion(4, soft_margin=True).triplet.soft_margin
