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
