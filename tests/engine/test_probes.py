"""TripletProbe: the feature statistics against a hand computation, the last-stage gradient ratio against
autograd, what it writes per epoch (also for the ID-only twin), that it leaves training unchanged, its
errors and its checkpoint state."""
from __future__ import annotations

import math
import statistics
from types import SimpleNamespace

import pytest
import torch
from test_engine_toys import ToyReIDData
from torch import nn

from reidlib.data.samplers import PKSampler
from reidlib.engine.probes import TripletProbe, feature_statistics, last_stage_parameters
from reidlib.engine.trainer import LambdaHook, Trainer
from reidlib.losses import ReIDCriterion, TripletLoss

KEYS = {"sqrt_eps", "feat_norm", "feat_spread", "dim_std", "d_ap", "d_an", "active", "grad_ratio"}


class ProbeNet(nn.Module):
    """stem -> ``layer4`` -> GAP = f_t -> BNNeck BN -> linear; train mode returns ``{"logits", "feat"}``."""

    def __init__(self, num_classes: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.layer4 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        f = self.pool(self.layer4(self.stem(x)))
        return {"logits": self.fc(self.bn(f)), "feat": f} if self.training else self.bn(f)


def _trainer(hooks=(), *, epochs=2, steps=4, criterion=None, seed=0) -> Trainer:
    torch.manual_seed(seed)
    data = ToyReIDData(augment=False)
    model = ProbeNet()
    return Trainer(model, criterion or ReIDCriterion(8), torch.optim.Adam(model.parameters(), 1e-3), data,
                   PKSampler(data.pids, 4, 2, seed=seed), epochs=epochs, max_steps_per_epoch=steps, hooks=hooks,
                   progress=False, seed=seed)


# ---- the statistics


def _hand_statistics(rows, ids, metric, margin):
    def dist(a, b):
        if metric == "euclidean":
            return math.dist(a, b)
        return 1 - sum(x * y for x, y in zip(a, b)) / (math.hypot(*a) * math.hypot(*b))

    n, d = len(rows), len(rows[0])
    mean = [sum(r[j] for r in rows) / n for j in range(d)]
    d_ap = [max(dist(rows[a], rows[p]) for p in range(n) if p != a and ids[p] == ids[a]) for a in range(n)]
    d_an = [min(dist(rows[a], rows[q]) for q in range(n) if ids[q] != ids[a]) for a in range(n)]
    return {
        "feat_norm": sum(math.hypot(*r) for r in rows) / n,
        "feat_spread": sum(math.dist(r, mean) for r in rows) / n,
        # the batch std of each dimension (n - 1 in the denominator, torch's default), median over D (odd here)
        "dim_std": statistics.median(statistics.stdev(r[j] for r in rows) for j in range(d)),
        "d_ap": sum(d_ap) / n,
        "d_an": sum(d_an) / n,
        "active": sum(margin + p - q > 0 for p, q in zip(d_ap, d_an)) / n,
    }


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("soft", [False, True])
def test_feature_statistics_match_a_hand_computation(metric, soft):
    feat = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.5], [3.0, 1.0, 0.0],
                         [2.5, 2.0, 0.5], [0.5, 3.0, 1.0], [1.0, 0.5, 2.5]], dtype=torch.float64)
    ids = [0, 0, 1, 1, 2, 2]
    margin = 0.3 if metric == "euclidean" else 0.05
    stats = feature_statistics(feat, torch.tensor(ids), TripletLoss(margin, metric, soft_margin=soft))
    expected = _hand_statistics(feat.tolist(), ids, metric, 0.0 if soft else margin)
    assert set(stats) == set(expected)
    for k, v in expected.items():
        assert stats[k] == pytest.approx(v, rel=1e-5, abs=1e-6), k  # measured in float32
    if not soft:
        assert 0 < stats["active"] < 1, "the batch mixes active and inactive hinges"


def test_feature_statistics_are_detached_and_float():
    feat = torch.randn(8, 4, requires_grad=True).half()
    stats = feature_statistics(feat, torch.arange(4).repeat_interleave(2), TripletLoss())
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())


# ---- the gradient ratio


def test_gradient_ratio_equals_autograd_over_the_last_stage():
    torch.manual_seed(0)
    model, crit = ProbeNet().train(), ReIDCriterion(8)
    x, pids = torch.randn(8, 3, 16, 8), torch.arange(4).repeat_interleave(2)
    out = model(x)
    ratio = TripletProbe().gradient_ratio(SimpleNamespace(module=model, criterion=crit), out, pids, crit.triplet)
    params = list(model.layer4.parameters())
    assert last_stage_parameters(model) == params

    def norm(loss):
        grads = torch.autograd.grad(loss, params, retain_graph=True)
        return torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()

    expected = norm(TripletLoss(0.3)(out["feat"], pids)) / norm(crit.id_loss(out["logits"], pids))
    assert math.isfinite(ratio) and ratio > 0
    assert ratio == pytest.approx(expected, rel=1e-6)
    crit.total(out, pids).backward()  # the graph is kept for the training step
    assert all(p.grad is not None for p in params)


def test_last_stage_parameters_of_every_branch_and_trainable_only():
    model = nn.ModuleDict({"aib": nn.ModuleDict({"layer4": nn.Linear(2, 2)}),
                           "esb": nn.ModuleDict({"layer4": nn.Linear(2, 3)}), "head": nn.Linear(2, 2)})
    assert len(last_stage_parameters(model)) == 4
    model["esb"]["layer4"].requires_grad_(False)
    assert last_stage_parameters(model) == list(model["aib"]["layer4"].parameters())
    with pytest.raises(ValueError, match="has no module named 'layer4'"):
        last_stage_parameters(nn.Linear(2, 2))


# ---- in a training run


def test_the_probe_logs_per_epoch_statistics_and_ratios_every_n_steps():
    probe = TripletProbe(every=2)
    per_step = []

    def spy(t, batch, outputs):  # after the probe: the statistics it averages
        per_step.append(feature_statistics(outputs["feat"], batch.pids, t.criterion.triplet))

    t = _trainer([probe, LambdaHook(on_forward=spy)], epochs=2, steps=4)
    assert t.steps_per_epoch == 4
    history = t.fit()
    for e, log in enumerate(history):
        p = log["probe"]
        assert set(p) == KEYS
        assert p["sqrt_eps"] == pytest.approx(math.sqrt(1e-5))
        assert [s for s, _ in p["grad_ratio"]] == [4 * e, 4 * e + 2]
        assert all(math.isfinite(r) and r > 0 for _, r in p["grad_ratio"])
        for k in KEYS - {"sqrt_eps", "grad_ratio"}:
            assert p[k] == pytest.approx(statistics.fmean(s[k] for s in per_step[4 * e:4 * e + 4]), rel=1e-6), k
        assert set(log["losses"]) == {"id", "triplet", "total"}


def test_the_probe_does_not_change_training():
    plain, probed = _trainer(steps=3), _trainer([TripletProbe(every=1)], steps=3)
    plain.fit()
    probed.fit()
    for a, b in zip(plain.module.parameters(), probed.module.parameters()):
        assert torch.equal(a, b)


def test_the_id_only_twin_is_probed_with_the_triplet_loss_it_would_have_had():
    t = _trainer([TripletProbe(every=1)], epochs=1, steps=2, criterion=ReIDCriterion(8, triplet_weight=0))
    log = t.fit()[0]
    assert set(log["losses"]) == {"id", "total"}
    assert set(log["probe"]) == KEYS and log["probe"]["d_ap"] > 0 and log["probe"]["d_an"] > 0
    assert [s for s, _ in log["probe"]["grad_ratio"]] == [0, 1]
    assert all(math.isfinite(r) and r > 0 for _, r in log["probe"]["grad_ratio"])


# ---- errors and state


def test_a_missing_branch_is_named():
    out = {"branches": {"aib": {"logits": torch.randn(4, 3), "feat": torch.randn(4, 2)}}}
    batch = SimpleNamespace(pids=torch.tensor([0, 0, 1, 1]))
    trainer = SimpleNamespace(criterion=ReIDCriterion(3), step=0, epoch=0, steps_per_epoch=1)
    with pytest.raises(KeyError, match=r"no branch 'esb' \(branches: \['aib'\]\)"):
        TripletProbe(branch="esb").on_forward(trainer, batch, out)
    with pytest.raises(KeyError, match=r"no branch 'esb' \(branches: \['main'\]\)"):  # a bare output is "main"
        _trainer([TripletProbe(branch="esb")], epochs=1, steps=1).fit()


@pytest.mark.parametrize("every", [0, -3, True, 2.5, "20", None])
def test_every_must_be_a_positive_integer(every):
    with pytest.raises(ValueError, match=r"TripletProbe: every must be an integer >= 1"):
        TripletProbe(every=every)


def test_state_dict_round_trip_mid_epoch():
    probe = TripletProbe(every=1)
    t = _trainer([probe], epochs=1, steps=2)
    t.fit()  # leaves nothing behind: the epoch's end consumed the statistics
    assert probe.state_dict() == {"stats": [], "ratios": []}
    feats, pids = torch.randn(4, 8, 3, requires_grad=True), torch.arange(4).repeat_interleave(2)
    probe._stats = [feature_statistics(f, pids, TripletLoss()) for f in feats]
    probe._ratios = [[0, 1.5], [1, 2.5]]
    state = probe.state_dict()
    again = TripletProbe(every=1)
    again.load_state_dict(state)
    assert again.state_dict() == state
    state["stats"][0]["feat_norm"] = -1.0  # a copy, not the probe's own lists
    assert probe.state_dict()["stats"][0]["feat_norm"] != -1.0
    logs = [{}, {}]
    for p, log in zip((probe, again), logs):
        p.on_epoch_end(SimpleNamespace(module=t.module), 0, log)
    assert logs[0] == logs[1] and logs[0]["probe"]["grad_ratio"] == [[0, 1.5], [1, 2.5]]


def test_final_evaluations_run_once_after_the_last_epoch_seeded_and_leave_the_rng_alone():
    from types import SimpleNamespace

    from reidlib.engine.probes import FinalEvaluations

    built = []

    def build(dataset, transform, device):
        built.append((dataset, transform, device.type))
        return lambda model: {"mAP": float(torch.rand(()))}

    hook = FinalEvaluations({"shifted": build}, seed=3)
    hook.on_setup("the dataset", "the transform")
    trainer = SimpleNamespace(epochs=2, device=torch.device("cpu"), module=torch.nn.Linear(2, 2))
    first = {"metrics": {"mAP": 0.5}}
    hook.on_epoch_end(trainer, 0, first)
    assert "shifted" not in first["metrics"] and not built, "not before the last epoch"
    torch.manual_seed(11)
    expected_next = torch.rand(()).item()
    torch.manual_seed(11)
    logs = [{"metrics": {"mAP": 0.5}}, {"metrics": {"mAP": 0.5}}]
    for log in logs:
        hook.on_epoch_end(trainer, 1, log)
    assert torch.rand(()).item() == expected_next, "the training's random stream is untouched"
    assert logs[0]["metrics"]["shifted"] == logs[1]["metrics"]["shifted"], "seeded: the same draw every time"
    assert built[0] == ("the dataset", "the transform", "cpu")
    hook.on_epoch_end(trainer, 1, {"losses": {}})  # a last epoch without an evaluation: nothing to add to
    with pytest.raises(ValueError, match="at least one"):
        FinalEvaluations({})
