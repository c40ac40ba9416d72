"""Exact resumption: a CPU run killed with SIGKILL at a random step, then resumed, ends with
weights bitwise equal to an uninterrupted run -- data order, augmentation, dropout, BatchNorm
statistics, Adam moments, the warm-up schedule and the per-epoch loss logs included."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reidlib.engine.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
EPOCHS, STEPS = 3, 4  # ToyBatches(32, 8): 4 steps per epoch

SCRIPT = r"""
import sys, time, torch
torch.set_num_threads(1)
from reidlib.engine.trainer import LambdaHook
from test_engine_toys import make_trainer

ckdir, out, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "resume"
slow = LambdaHook(on_step_end=lambda t, losses: (print("step", t.global_step, flush=True), time.sleep(0.05)))
trainer = make_trainer(ckdir, epochs=EPOCHS, checkpoint_every_steps=1, eval_every=1, hooks=[slow],
                       evaluator=lambda m: {"norm": float(sum(p.abs().sum() for p in m.parameters()))})
trainer.fit(resume=resume)
torch.save({"model": trainer.module.state_dict(), "history": trainer.history}, out)
""".replace("EPOCHS", str(EPOCHS))


def _start(tmp: Path, ckdir: Path, out: Path, mode: str) -> subprocess.Popen:
    script = tmp / "run.py"
    script.write_text(SCRIPT)
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "engine")])
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script), str(ckdir), str(out), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)


def _finish(p: subprocess.Popen) -> None:
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err


def _reference(ckdir: Path) -> dict:
    """The uninterrupted run, in this process with the subprocesses' thread count."""
    from test_engine_toys import make_trainer

    from reidlib.engine.trainer import LambdaHook

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t = make_trainer(ckdir, epochs=EPOCHS, checkpoint_every_steps=1, eval_every=1,
                         hooks=[LambdaHook(on_step_end=lambda t, losses: None)],
                         evaluator=lambda m: {"norm": float(sum(p.abs().sum() for p in m.parameters()))})
        t.fit()
    finally:
        torch.set_num_threads(threads)
    return {"model": t.module.state_dict(), "history": t.history}


@pytest.mark.slow
def test_sigkill_then_resume_is_bitwise_equal(tmp_path):
    kill_after = random.Random().randint(1, EPOCHS * STEPS - 2)
    victim = _start(tmp_path, tmp_path / "ck", tmp_path / "killed.pt", "fresh")
    for line in victim.stdout:
        # the hook of step n fires before step n's checkpoint is written, so on seeing step
        # kill_after + 1 the checkpoint of step kill_after is on disk
        if int(line.split()[1]) > kill_after:
            os.kill(victim.pid, signal.SIGKILL)
            break
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, f"the run ended before it was killed (kill_after={kill_after})"
    assert not (tmp_path / "killed.pt").exists()
    pos = load_checkpoint(tmp_path / "ck" / "last.pt")["position"]
    done = pos["epoch"] * STEPS + pos["step"]
    assert 0 < done < EPOCHS * STEPS, f"kill_after={kill_after}, checkpoint at {pos}"

    resumed = _start(tmp_path, tmp_path / "ck", tmp_path / "resumed.pt", "resume")
    _finish(resumed)
    ref = _reference(tmp_path / "ck_ref")
    res = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert ref["model"].keys() == res["model"].keys()
    unequal = [k for k in ref["model"] if not torch.equal(ref["model"][k], res["model"][k])]
    assert not unequal, f"killed after step {kill_after}, resumed from {pos}: differing tensors {unequal}"
    strip = lambda h: [{k: v for k, v in e.items() if k != "time_s"} for e in h]  # noqa: E731
    assert strip(ref["history"]) == strip(res["history"])
    assert len(res["history"]) == EPOCHS and all("metrics" in e for e in res["history"])


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    from test_engine_toys import make_trainer

    t = make_trainer(tmp_path, epochs=1)
    t.fit()
    again = make_trainer(tmp_path, epochs=1)
    again.fit(resume=True)
    assert all(torch.equal(a, b) for a, b in zip(t.module.state_dict().values(), again.module.state_dict().values()))
    assert again.history == t.history


def test_resume_with_another_step_count_is_refused(tmp_path):
    from test_engine_toys import make_trainer

    make_trainer(tmp_path, epochs=1).fit()
    with pytest.raises(ValueError, match="steps_per_epoch=4.*steps_per_epoch=2"):
        make_trainer(tmp_path, epochs=2, batch=16).fit(resume=True)


def test_in_process_resume_matches_for_every_checkpoint_step(tmp_path):
    """Stop after every possible optimizer step (via a checkpoint copy), resume, compare."""
    from test_engine_toys import make_trainer

    ref = make_trainer(None, epochs=2)
    ref.fit()
    for stop in (1, 3, 4, 6):
        ck = tmp_path / f"s{stop}"

        class Stop(Exception):
            pass

        def halt(t, losses, stop=stop):
            if t.global_step == stop:
                raise Stop

        from reidlib.engine.trainer import LambdaHook
        first = make_trainer(ck, epochs=2, checkpoint_every_steps=1, hooks=[LambdaHook(on_step_end=halt)])
        with pytest.raises(Stop):
            first.fit()
        # the hook fires before the step's checkpoint: the last one is at stop - 1 (or the epoch end)
        second = make_trainer(ck, epochs=2, checkpoint_every_steps=1)
        second.fit(resume=True)
        for (k, a), b in zip(ref.module.state_dict().items(), second.module.state_dict().values()):
            assert torch.equal(a, b), f"stop={stop}: {k} differs"
