"""Losses against brute-force references written with explicit Python loops."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.losses import (
    CrossEntropyLabelSmooth,
    TripletLoss,
    batch_hard_mining,
    easiest_positive,
    pairwise_distance,
)

# ---------------------------------------------------------------- label smoothing


def smoothed_ce_reference(logits: list[list[float]], targets: list[int], eps: float) -> float:
    """-1/B sum_i sum_k q_ik log p_ik, q = (1 - eps) onehot + eps / N, with plain floats."""
    total = 0.0
    for z, y in zip(logits, targets):
        n = len(z)
        log_norm = math.log(sum(math.exp(v) for v in z))
        for k, v in enumerate(z):
            q = (1 - eps) * (k == y) + eps / n
            total -= q * (v - log_norm)
    return total / len(logits)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 6), n=st.integers(2, 9), eps=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_label_smoothing_matches_formula(b, n, eps, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, n, generator=g, dtype=torch.float64) * 3
    targets = torch.randint(n, (b,), generator=g)
    loss = CrossEntropyLabelSmooth(n, eps)(logits, targets)
    assert loss.item() == pytest.approx(smoothed_ce_reference(logits.tolist(), targets.tolist(), eps), rel=1e-12, abs=1e-12)


def test_label_smoothing_gradient_is_p_minus_q():
    """d loss / d z_ik = (p_ik - q_ik) / B."""
    b, n, eps = 5, 7, 0.1
    logits = torch.randn(b, n, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(n, (b,))
    CrossEntropyLabelSmooth(n, eps)(logits, targets).backward()
    q = (1 - eps) * F.one_hot(targets, n).double() + eps / n
    torch.testing.assert_close(logits.grad, (logits.detach().softmax(1) - q) / b)
    assert torch.autograd.gradcheck(lambda z: CrossEntropyLabelSmooth(n, eps)(z, targets), (logits,))


def test_label_smoothing_zero_eps_is_cross_entropy_and_errors():
    logits, targets = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    torch.testing.assert_close(CrossEntropyLabelSmooth(3, 0.0)(logits, targets), F.cross_entropy(logits, targets))
    with pytest.raises(ValueError, match=r"expected logits of shape \(B, 5\)"):
        CrossEntropyLabelSmooth(5)(logits, targets)
    with pytest.raises(ValueError, match=r"expected targets of shape \(4,\)"):
        CrossEntropyLabelSmooth(3)(logits, targets[:2])
    with pytest.raises(ValueError, match="epsilon must be in"):
        CrossEntropyLabelSmooth(3, epsilon=1.5)


# ---------------------------------------------------------------- distances and mining


def dist_reference(x: list[list[float]], i: int, j: int, metric: str) -> float:
    if metric == "euclidean":
        return math.dist(x[i], x[j])
    dot = sum(a * b for a, b in zip(x[i], x[j]))
    return 1 - dot / (math.hypot(*x[i]) * math.hypot(*x[j]))


def pk_batch(p: int, k: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (P*K, D) in float64 and ids in a shuffled order (mining must not rely on grouping)."""
    g = torch.Generator().manual_seed(seed)
    pids = torch.arange(p).repeat_interleave(k) * 7 + 3
    pids = pids[torch.randperm(p * k, generator=g)]
    return torch.randn(p * k, d, generator=g, dtype=torch.float64), pids


# pairwise_distance itself (now in reidlib.nn) is tested in tests/test_nn.py.


@settings(max_examples=40, deadline=None)
@given(p=st.integers(2, 4), k=st.integers(2, 4), d=st.integers(3, 6), seed=st.integers(0, 10_000),
       metric=st.sampled_from(["euclidean", "cosine"]))
def test_batch_hard_mining_matches_loops(p, k, d, seed, metric):
    x, pids = pk_batch(p, k, d, seed)
    mined = batch_hard_mining(pairwise_distance(x, metric), pids)
    rows, ids = x.tolist(), pids.tolist()
    for a in range(len(rows)):
        positives = [j for j in range(len(rows)) if ids[j] == ids[a] and j != a]
        negatives = [j for j in range(len(rows)) if ids[j] != ids[a]]
        hard_p = max(positives, key=lambda j: dist_reference(rows, a, j, metric))
        easy_p = min(positives, key=lambda j: dist_reference(rows, a, j, metric))
        hard_n = min(negatives, key=lambda j: dist_reference(rows, a, j, metric))
        assert mined.hardest_positive[a] == hard_p
        assert mined.easiest_positive[a] == easy_p
        assert mined.hardest_negative[a] == hard_n
        assert mined.dist_ap[a].item() == pytest.approx(dist_reference(rows, a, hard_p, metric), abs=1e-12)
        assert mined.dist_an[a].item() == pytest.approx(dist_reference(rows, a, hard_n, metric), abs=1e-12)


def test_easiest_positive_function_and_errors():
    x, pids = pk_batch(3, 3, 4, seed=2)
    dist = pairwise_distance(x)
    assert torch.equal(easiest_positive(dist, pids), batch_hard_mining(dist, pids).easiest_positive)
    assert (easiest_positive(dist, pids) != torch.arange(9)).all()
    with pytest.raises(ValueError, match=r"another sample of its id.*\[5, 6\]"):
        batch_hard_mining(torch.zeros(4, 4), torch.tensor([5, 6, 7, 7]))
    with pytest.raises(ValueError, match="a sample of another id"):
        batch_hard_mining(torch.zeros(3, 3), torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match=r"dist of shape \(B, B\)"):
        batch_hard_mining(torch.zeros(4, 3), torch.tensor([1, 1, 2, 2]))


# ---------------------------------------------------------------- triplet loss


def triplet_reference(x: torch.Tensor, pids: torch.Tensor, metric: str, margin: float, soft: bool) -> float:
    """Mean over anchors of the largest term over ALL (anchor, positive, negative) triplets."""
    rows, ids = x.tolist(), pids.tolist()
    total = 0.0
    for a in range(len(rows)):
        worst = -math.inf
        for p in range(len(rows)):
            if p == a or ids[p] != ids[a]:
                continue
            for n in range(len(rows)):
                if ids[n] == ids[a]:
                    continue
                gap = dist_reference(rows, a, p, metric) - dist_reference(rows, a, n, metric)
                term = math.log1p(math.exp(gap)) if soft else max(0.0, gap + margin)
                worst = max(worst, term)
        total += worst
    return total / len(rows)


@settings(max_examples=40, deadline=None)
@given(p=st.integers(2, 4), k=st.integers(2, 4), d=st.integers(1, 6), seed=st.integers(0, 10_000),
       metric=st.sampled_from(["euclidean", "cosine"]), soft=st.booleans(), margin=st.floats(0.0, 2.0))
def test_triplet_loss_matches_all_triplets(p, k, d, seed, metric, soft, margin):
    x, pids = pk_batch(p, k, d, seed)
    loss = TripletLoss(margin=margin, metric=metric, soft_margin=soft)(x, pids)
    assert loss.item() == pytest.approx(triplet_reference(x, pids, metric, margin, soft), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("soft", [False, True])
def test_triplet_loss_gradcheck(metric, soft):
    x, pids = pk_batch(3, 3, 4, seed=3)
    x.requires_grad_()
    loss = TripletLoss(margin=5.0, metric=metric, soft_margin=soft)  # margin 5: every hinge active
    assert torch.autograd.gradcheck(lambda f: loss(f, pids), (x,))


def test_triplet_gradient_finite_for_duplicate_samples():
    """K copies of one image: the hardest positive sits at distance 0, where |x - y| has a kink."""
    a, b = torch.randn(2, 6)
    x = torch.stack([a, a, b, b]).requires_grad_()
    pids = torch.tensor([0, 0, 1, 1])
    for metric in ("euclidean", "cosine"):
        x.grad = None
        TripletLoss(metric=metric)(x, pids).backward()
        assert torch.isfinite(x.grad).all()


def test_triplet_loss_half_precision_features_in_float32():
    x, pids = pk_batch(2, 2, 8, seed=4)
    for metric in ("euclidean", "cosine"):
        loss = TripletLoss(metric=metric)(x.bfloat16(), pids)
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, TripletLoss(metric=metric)(x.bfloat16().float(), pids))


def test_triplet_loss_bad_arguments():
    with pytest.raises(ValueError, match="metric must be 'euclidean' or 'cosine'"):
        TripletLoss(metric="dot")
    with pytest.raises(ValueError, match="margin must be >= 0"):
        TripletLoss(margin=-1)
    with pytest.raises(ValueError, match="another sample of its id"):
        TripletLoss()(torch.randn(3, 4), torch.tensor([0, 1, 2]))
