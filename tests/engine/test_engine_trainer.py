"""The trainer: hooks (order, batch replacement, extra branches and losses), gradient
accumulation, schedules per epoch, evaluation cadence, flip-averaged features."""
from __future__ import annotations

import pytest
import torch
from test_engine_toys import ToyNet, make_trainer
from torch import nn

from reidlib.engine.features import extract_features
from reidlib.engine.schedules import WarmupMultiStep
from reidlib.engine.trainer import Batch, Hook, LambdaHook, mix_seed


class Recorder(Hook):
    def __init__(self):
        self.calls = []

    def on_train_start(self, t):
        self.calls.append("train_start")

    def on_epoch_start(self, t, epoch):
        self.calls.append(f"epoch_start{epoch}")

    def on_batch_start(self, t, batch):
        self.calls.append("batch")

    def on_forward(self, t, batch, outputs):
        self.calls.append("forward")

    def extra_losses(self, t, batch, outputs):
        self.calls.append("extra")

    def after_backward(self, t):
        self.calls.append("after_backward")

    def on_step_end(self, t, losses):
        self.calls.append("step_end")

    def on_epoch_end(self, t, epoch, log):
        self.calls.append(f"epoch_end{epoch}")
        log["seen_by_hook"] = True

    def on_train_end(self, t):
        self.calls.append("train_end")


def test_hooks_are_called_in_order_and_may_extend_the_log():
    rec = Recorder()
    t = make_trainer(epochs=2, hooks=[rec], max_steps_per_epoch=2)
    history = t.fit()
    step = ["batch", "forward", "extra", "after_backward", "step_end"]
    assert rec.calls == (["train_start", "epoch_start0"] + step * 2 + ["epoch_end0", "epoch_start1"] + step * 2
                         + ["epoch_end1", "train_end"])
    assert all(h["seen_by_hook"] for h in history)


def test_on_batch_start_replaces_the_images_the_model_sees():
    seen = []
    erase = LambdaHook(on_batch_start=lambda t, b: Batch(torch.zeros_like(b.images), b.pids, b.camids, b.indices))
    spy = LambdaHook(on_forward=lambda t, b, out: seen.append(b.images.abs().sum().item()))
    make_trainer(epochs=1, hooks=[erase, spy], max_steps_per_epoch=2).fit()
    assert seen == [0.0, 0.0]


def test_extra_branch_and_extra_loss_enter_the_total_and_the_gradient():
    head = nn.Linear(8, 3)

    class Branch(Hook):
        def on_forward(self, t, batch, outputs):
            return {**outputs, "aux": head(outputs["feat"])}

        def extra_losses(self, t, batch, outputs):
            return {"aux": outputs["aux"].pow(2).mean()}

    t = make_trainer(epochs=1, hooks=[Branch()], max_steps_per_epoch=1, dropout=0.0)
    head.weight.grad = None
    grads = []
    t.hooks.append(LambdaHook(after_backward=lambda tr: grads.append(head.weight.grad.clone())))
    log = t.fit()[0]
    assert set(log["losses"]) == {"id", "aux", "total"}
    assert log["losses"]["total"] == pytest.approx(log["losses"]["id"] + log["losses"]["aux"], rel=1e-6)
    assert grads and grads[0].abs().sum() > 0


def test_gradient_accumulation_equals_the_big_batch():
    """Two half batches accumulated = one whole batch (per-sample loss, no batch statistics)."""
    kw = dict(epochs=1, norm="gn", dropout=0.0, augment=False, optimizer="sgd", sampler="toy")
    big = make_trainer(batch=16, **kw)
    small = make_trainer(batch=8, accum_steps=2, **kw)
    # same sample order: a batch of 16 = two consecutive batches of 8 of the same permutation
    big.fit()
    small.fit()
    for a, b in zip(big.module.parameters(), small.module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert small.optimizer_steps_per_epoch == big.steps_per_epoch == 2


def test_lr_follows_the_schedule_per_epoch():
    sched = WarmupMultiStep(0.01, milestones=(2,), gamma=0.1, warmup_epochs=1, warmup_start_lr=0.001)
    t = make_trainer(epochs=3, schedule=sched)
    assert [h["lr"] for h in t.fit()] == pytest.approx([0.001, 0.01, 0.001])


def test_evaluation_every_n_epochs_and_after_the_last():
    calls = []

    def evaluator(model):
        assert not model.training
        calls.append(1)
        return {"mAP": 0.5}

    t = make_trainer(epochs=5, evaluator=evaluator, eval_every=2, max_steps_per_epoch=1)
    history = t.fit()
    assert [("metrics" in h) for h in history] == [False, True, False, True, True]
    assert t.module.training


def test_each_step_is_seeded_by_seed_epoch_step():
    assert mix_seed(0, 1, 2, 3) != mix_seed(0, 1, 3, 2)
    a = make_trainer(epochs=1, seed=5)
    b = make_trainer(epochs=1, seed=5)
    c = make_trainer(epochs=1, seed=6)
    a.fit(), b.fit(), c.fit()
    assert torch.equal(a.module.fc.weight, b.module.fc.weight)
    assert not torch.equal(a.module.fc.weight, c.module.fc.weight)


def test_amp_and_channels_last_are_off_on_the_cpu():
    t = make_trainer(epochs=1, amp=True, channels_last=True)
    assert not t.amp and not t.channels_last


def test_flip_features_average_the_image_and_its_mirror():
    model = ToyNet().eval()
    x = torch.randn(6, 3, 16, 8)
    loader = [(x[:4], torch.arange(4), torch.zeros(4)), (x[4:], torch.arange(4, 6), torch.ones(2))]
    f, pids, camids = extract_features(model, loader, progress=False)
    with torch.no_grad():
        expected = (model(x) + model(x.flip(3))) / 2
    torch.testing.assert_close(f, expected)
    assert pids.tolist() == list(range(6)) and camids.tolist() == [0, 0, 0, 0, 1, 1]
    g, _, _ = extract_features(model, loader, flip=False, progress=False)
    torch.testing.assert_close(g, model(x).detach())


def test_a_criterion_without_losses_is_an_error():
    t = make_trainer(epochs=1, criterion=lambda out, b: {})
    with pytest.raises(ValueError, match="no loss"):
        t.fit()


def test_baseline_criterion_is_id_plus_triplet():
    from reidlib.engine.run import BaselineCriterion
    from reidlib.losses import CrossEntropyLabelSmooth, TripletLoss

    torch.manual_seed(0)
    out = {"logits": torch.randn(8, 5), "feat": torch.randn(8, 4)}
    pids = torch.arange(4).repeat_interleave(2)
    batch = Batch(torch.zeros(8, 3, 2, 2), pids, pids, pids)
    losses = BaselineCriterion(5, label_smoothing=0.1, margin=0.3, triplet_weight=2.0)(out, batch)
    assert set(losses) == {"id", "triplet"}
    torch.testing.assert_close(losses["id"], CrossEntropyLabelSmooth(5, 0.1)(out["logits"], pids))
    torch.testing.assert_close(losses["triplet"], 2.0 * TripletLoss(0.3)(out["feat"], pids))
    assert set(BaselineCriterion(5, triplet_weight=0.0)(out, batch)) == {"id"}


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_optimizer_and_schedule_from_the_config(name, cls):
    from reidlib.engine.config import TrainConfig
    from reidlib.engine.run import build_config_schedule, build_optimizer

    cfg = TrainConfig(optimizer=name, lr=0.01, weight_decay=1e-4, warmup_epochs=2, milestones=(5,), gamma=0.5)
    opt = build_optimizer(ToyNet(), cfg)
    assert isinstance(opt, cls) and opt.param_groups[0]["weight_decay"] == 1e-4
    sched = build_config_schedule(cfg)
    assert [sched.lr_at(e) for e in (0, 1, 2, 5)] == pytest.approx([0.001, 0.0055, 0.01, 0.005])
    assert build_config_schedule(TrainConfig(schedule="esnet", lr=3.5e-4)).lr_at(40) == pytest.approx(3.5e-5)


class ProgressCriterion:
    """The toy ID loss, with a ``set_progress`` that records what the trainer tells it."""

    def __init__(self, events):
        self.events = events

    def set_progress(self, fraction):
        self.events.append(("progress", fraction))

    def __call__(self, outputs, batch):
        self.events.append(("loss", None))
        return {"id": nn.functional.cross_entropy(outputs["logits"], batch.pids)}


def test_the_criterion_hears_the_share_of_training_done_before_every_step():
    events = []
    hook = LambdaHook(on_batch_start=lambda t, b: events.append(("batch", None)))
    t = make_trainer(epochs=2, max_steps_per_epoch=3, criterion=ProgressCriterion(events), hooks=[hook])
    n = t.epochs * t.steps_per_epoch
    assert n == 6
    t.fit()
    assert [f for kind, f in events if kind == "progress"] == [i / n for i in range(n)]
    # before the hooks and the loss of its step
    assert [kind for kind, _ in events] == ["progress", "batch", "loss"] * n
    assert [t.progress_fraction(e, s) for e in range(2) for s in range(3)] == [i / n for i in range(n)]


def test_the_trainer_drives_the_triplet_ramp_of_the_criterion():
    from reidlib.losses import ReIDCriterion

    triplet = []
    spy = LambdaHook(on_step_end=lambda t, losses: triplet.append(float(losses["triplet"])))
    c = ReIDCriterion(8, triplet_ramp=0.5, margin=5.0)  # margin 5: the hinge is active, the term > 0 unramped
    make_trainer(epochs=2, max_steps_per_epoch=2, criterion=c, hooks=[spy]).fit()
    assert triplet[0] == 0.0 and all(v > 0 for v in triplet[1:])  # progress 0, 1/4, 2/4, 3/4
