"""The schedule shapes and the papers' presets (registered by their recipes), value by value, and their torch
scheduler form."""
from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.engine.schedules import ExponentialHalving, WarmupMultiStep, as_lr_scheduler, build_schedule, lr_curve
from reidlib.papers.baseline import bag_of_tricks
from reidlib.papers.esnet import esnet_schedule as esnet
from reidlib.papers.feature_fusion import feature_fusion_schedule as feature_fusion
from reidlib.papers.reid_done_right import reid_done_right_schedule as reid_done_right


def test_esnet_schedule_follows_section_4a():
    s = esnet()
    assert s.lr_at(0) == pytest.approx(3.5e-5)          # warm-up from 0: first epoch at base/10
    assert s.lr_at(4) == pytest.approx(3.5e-4 * 5 / 10)
    assert s.lr_at(9) == pytest.approx(3.5e-4)
    assert s.lr_at(10) == s.lr_at(39) == pytest.approx(3.5e-4)
    assert s.lr_at(40) == s.lr_at(69) == pytest.approx(3.5e-5)
    assert s.lr_at(70) == s.lr_at(119) == pytest.approx(3.5e-6)


def test_bag_of_tricks_warmup_starts_at_a_tenth():
    s = bag_of_tricks()
    assert [s.lr_at(e) for e in (0, 5, 10)] == pytest.approx([3.5e-5, 3.5e-5 + 0.5 * 3.15e-4, 3.5e-4])


def test_feature_fusion_follows_the_code_and_eq6_as_printed_jumps():
    s = feature_fusion()
    assert s.lr_at(0) == pytest.approx(3e-4)
    assert s.lr_at(5) == pytest.approx(3e-4 + (0.01 - 3e-4) * 0.5)
    assert [s.lr_at(e) for e in (10, 59, 60, 89, 90, 119, 120, 149)] == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025, 0.00125, 0.00125])
    printed = feature_fusion(as_printed=True)
    assert printed.lr_at(9) == pytest.approx(3e-4)       # Eq. (6): lr(10) = 3e-4 * 10 / 10
    assert printed.lr_at(10) / printed.lr_at(9) == pytest.approx(0.01 / 3e-4)  # the 33x jump
    assert [printed.lr_at(e) for e in (60, 90, 120)] == pytest.approx([0.005, 0.0025, 0.00125])


def test_reid_done_right_halves_every_512_iterations_per_iteration():
    s = reid_done_right()
    assert s.lr_at(0, 0, 100) == pytest.approx(1e-3)
    assert s.lr_at(5, 12, 100) == pytest.approx(5e-4)     # global iteration 512
    assert s.lr_at(0, 256, 1000) == pytest.approx(1e-3 / 2 ** 0.5)
    assert s.lr_at(40, 96, 100) == pytest.approx(1e-3 / 256)  # 4,096 iterations
    stair = ExponentialHalving(1e-3, 512, staircase=True)
    assert stair.lr_at(0, 511, 1000) == 1e-3 and stair.lr_at(0, 512, 1000) == 5e-4


@settings(max_examples=30, deadline=None)
@given(base=st.floats(1e-5, 1.0), warm=st.integers(0, 10), gamma=st.floats(0.05, 0.9),
       m=st.lists(st.integers(0, 60), max_size=3, unique=True))
def test_warmup_multistep_rises_then_never_increases(base, warm, gamma, m):
    s = WarmupMultiStep(base, tuple(sorted(x + warm for x in m)), gamma, warmup_epochs=warm, warmup_start_lr=0.1 * base)
    lrs = [s.lr_at(e) for e in range(80)]
    assert all(a <= b + 1e-15 for a, b in zip(lrs[:warm], lrs[1:warm]))
    assert all(b <= a + 1e-15 for a, b in zip(lrs[warm:], lrs[warm + 1:]))
    assert max(lrs) <= base * (1 + 1e-12)


def test_lambda_lr_follows_the_schedule_per_optimizer_step_and_reloads_weights_only():
    s = esnet()
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=123.0)  # the schedule sets the rate, whatever the optimizer said
    sched = as_lr_scheduler(opt, s, iters_per_epoch=3)
    seen = []
    for _ in range(3 * 45):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx(lr_curve(s, 45, 3))
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt2 = torch.optim.Adam([p], lr=1.0)
    sched2 = as_lr_scheduler(opt2, s, iters_per_epoch=3)
    sched2.load_state_dict(state)
    sched2.step()
    sched.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_lr_mult_groups_keep_their_multiplier():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr_mult": 10.0}], lr=0.1)
    as_lr_scheduler(opt, WarmupMultiStep(0.01), iters_per_epoch=1)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.1])


@pytest.mark.parametrize("bad, match", [
    (dict(base_lr=0.0), "base_lr"), (dict(base_lr=1e-3, milestones=(5, 3)), "milestones"),
    (dict(base_lr=1e-3, warmup_epochs=-1), "warmup_epochs"),
    (dict(base_lr=1e-3, warmup_epochs=10, milestones=(5,)), "inside the 10 warm-up epochs")])
def test_bad_schedule_arguments_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        WarmupMultiStep(**bad)


def test_build_schedule_names():
    assert build_schedule("esnet", 3.5e-4) == esnet()
    assert build_schedule("warmup_multistep", 0.1, milestones=(2,)).lr_at(2) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        build_schedule("cosine", 0.1)


def test_no_paper_name_in_the_engine():
    """The engine holds shapes only: every paper's schedule is registered by its recipe."""
    import ast
    from pathlib import Path

    import reidlib.engine as engine

    for path in Path(engine.__file__).parent.glob("*.py"):
        names = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not names & {"bag_of_tricks", "esnet", "feature_fusion", "reid_done_right"}, path
