"""Checkpoints: atomic writes, weights_only loading, clear architecture-mismatch errors, RNG states."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from reidlib.engine import checkpoint as ck


def test_save_is_atomic_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ck.save_checkpoint({"a": torch.ones(3)}, path)

    def broken_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint({"a": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(ck.load_checkpoint(path)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_load_uses_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled arbitrary code",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(ValueError, match=r"cannot read checkpoint .*evil\.pt"):
        ck.load_checkpoint(path)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ck.load_checkpoint(tmp_path / "nope.pt")


def test_architecture_mismatch_names_file_keys_and_shapes(tmp_path):
    src = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 10))
    path = ck.save_checkpoint({"model": src.state_dict()}, tmp_path / "a.pt")
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 7), nn.Linear(7, 2))
    with pytest.raises(ck.CheckpointMismatchError) as err:
        ck.load_model_state(other, ck.load_checkpoint(path)["model"], source=path)
    msg = str(err.value)
    assert str(path) in msg and "missing keys: 3.bias, 3.weight" in msg
    assert "2.weight: model (7, 8) vs checkpoint (10, 8)" in msg


def test_ddp_prefix_is_stripped():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    ck.load_model_state(b, {f"module.{k}": v for k, v in a.state_dict().items()})
    assert torch.equal(a.weight, b.weight)


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # leave a cached gaussian in numpy's state
    path = ck.save_checkpoint({"rng": ck.rng_state()}, tmp_path / "r.pt")
    first = (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist())
    ck.set_rng_state(ck.load_checkpoint(path)["rng"])
    assert (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist()) == first


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the crash was CUDA-only)")
def test_resume_on_cuda(tmp_path):
    """A checkpoint is read to the CPU first: with map_location=cuda the saved RNG states became CUDA
    tensors and ``torch.set_rng_state`` failed on resume."""
    from test_engine_toys import make_trainer

    first = make_trainer(tmp_path, epochs=1, device="cuda")
    first.model.cuda()
    first.fit()
    again = make_trainer(tmp_path, epochs=2, device="cuda")
    again.model.cuda()
    again.fit(resume=True)
    assert again.epoch == 2 and len(again.history) == 2


def test_resume_reads_the_checkpoint_to_the_cpu(tmp_path, monkeypatch):
    """Where CUDA is absent, the same path: the trainer asks load_checkpoint for the CPU whatever its device."""
    from test_engine_toys import make_trainer

    from reidlib.engine import trainer as trainer_module

    make_trainer(tmp_path, epochs=1).fit()
    seen = []
    real = trainer_module.load_checkpoint
    monkeypatch.setattr(trainer_module, "load_checkpoint",
                        lambda path, map_location="cpu": seen.append(map_location) or real(path, map_location))
    t = make_trainer(tmp_path, epochs=2)
    t.device = torch.device("meta")  # a device the RNG states must never be mapped to
    t.load_checkpoint(tmp_path / "last.pt")
    assert seen == ["cpu"] and t.epoch == 1
