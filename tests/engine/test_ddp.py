"""The same trainer under torchrun with DistributedDataParallel: 2 CPU processes (gloo, loopback)
give the same loss curve and weights as 1 process on the same global batch.

The model uses GroupNorm, not BatchNorm: BatchNorm statistics are per process unless SyncBN,
and torch's SyncBatchNorm runs on CUDA only. Dropout is off (its masks are drawn per process);
the augmentation is on -- each sample's seed depends on its position in the global batch, so
both runs draw the same augmentations. The loss is the ID loss (batch-hard triplet mining
would see only each process's half of the batch)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reidlib.engine.distributed import free_port

ROOT = Path(__file__).resolve().parents[2]

WORKER = r"""
import sys, torch
torch.set_num_threads(1)
from reidlib.engine.distributed import init_distributed, all_reduce_mean, cleanup
from reidlib.engine.trainer import LambdaHook
from test_engine_toys import make_trainer

info = init_distributed("cpu")
steps = []
hook = LambdaHook(on_step_end=lambda t, losses: steps.append(losses["total"]))
t = make_trainer(None, epochs=2, batch=8, norm="gn", dropout=0.0, rank=info.rank, world_size=info.world_size,
                 hooks=[hook], sampler="toy")
assert t.world_size == info.world_size and t.rank == info.rank
history = t.fit()
curve = all_reduce_mean(torch.stack(steps))
if info.is_main:
    torch.save({"curve": curve, "model": t.module.state_dict(), "epoch_losses": [h["losses"]["total"] for h in history],
                "backend": info.backend, "world_size": info.world_size}, sys.argv[1])
cleanup()
"""


def _run(tmp: Path, nproc: int) -> dict:
    script = tmp / "worker.py"
    script.write_text(WORKER)
    out = tmp / f"out{nproc}.pt"
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "engine")])
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script), str(out)]
    p = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    return torch.load(out, weights_only=True)


def _one_process() -> dict:
    """The reference: 1 process, in this one, with the workers' thread count."""
    from test_engine_toys import make_trainer

    from reidlib.engine.trainer import LambdaHook

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps = []
        t = make_trainer(None, epochs=2, batch=8, norm="gn", dropout=0.0, sampler="toy",
                         hooks=[LambdaHook(on_step_end=lambda t, losses: steps.append(losses["total"]))])
        history = t.fit()
    finally:
        torch.set_num_threads(threads)
    return {"curve": torch.stack(steps), "model": t.module.state_dict(), "world_size": t.world_size,
            "epoch_losses": [h["losses"]["total"] for h in history]}


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path):
    two, one = _run(tmp_path, 2), _one_process()
    assert one["world_size"] == 1 and two["world_size"] == 2 and two["backend"] == "gloo"
    assert len(one["curve"]) == len(two["curve"]) == 8  # 2 epochs x 4 global batches of 8
    torch.testing.assert_close(two["curve"], one["curve"], rtol=1e-5, atol=1e-6)
    assert two["epoch_losses"] == pytest.approx(one["epoch_losses"], rel=1e-5)
    for k in one["model"]:
        torch.testing.assert_close(two["model"][k], one["model"][k], rtol=1e-4, atol=1e-6)
    # and the test can fail: the loss did change over training
    assert not torch.allclose(one["curve"][0], one["curve"][-1])


def test_sync_bn_on_the_cpu_is_refused_with_a_reason():
    from reidlib.engine.distributed import DistInfo, wrap_model

    with pytest.raises(ValueError, match="sync_bn=True needs CUDA"):
        wrap_model(torch.nn.BatchNorm2d(3), DistInfo(rank=0, world_size=2), sync_bn=True)


def test_single_process_info_without_torchrun(monkeypatch):
    from reidlib.engine.distributed import init_distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
