"""Bad checkpoint and weights files get errors that name the file and what was expected: a folder
(and the file expected in it), an empty file, a truncated or foreign file, a file holding no dict,
and a whole training checkpoint passed where a model's state dict was expected."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from reidlib.engine.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from reidlib.engine.features import FeatureExtractor
from reidlib.engine.trainer import Trainer
from reidlib.models import build_backbone
from reidlib.models.backbones import load_state_dict_file


def _tiny_trainer(checkpoint_dir: Path | None = None) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    data = [(torch.zeros(4), 0, 0, i) for i in range(4)]
    return Trainer(model, lambda out, batch: {"id": out.sum()}, torch.optim.SGD(model.parameters(), 0.1), data,
                   [[0, 1], [2, 3]], epochs=1, checkpoint_dir=checkpoint_dir, progress=False)


def _truncated(path: Path) -> Path:
    save_checkpoint({"model": {"w": torch.ones(500)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# ---------------------------------------------------------------- load_checkpoint

def test_a_folder_says_it_is_a_folder_and_names_the_file_expected(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        load_checkpoint(folder)
    message = str(info.value)
    assert f"checkpoint path {folder} is a folder" in message
    assert str(folder / "last.pt") in message and "holds no *.pt file" in message
    assert "not found" not in message


def test_a_folder_lists_the_checkpoints_it_holds(tmp_path):
    folder = tmp_path / "run"
    for name in ("epoch3.pt", "best.pt"):
        save_checkpoint({"a": torch.ones(1)}, folder / name)
    with pytest.raises(IsADirectoryError, match=r"is a folder.*last\.pt.*it holds best\.pt, epoch3\.pt") as info:
        load_checkpoint(folder)
    assert str(folder) in str(info.value)


def test_an_empty_file_says_it_is_empty(tmp_path):
    path = tmp_path / "last.pt"
    path.touch()
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert f"cannot read checkpoint {path}: the file is empty (0 bytes)" in str(info.value)


def test_a_missing_file_names_it_and_what_was_expected(tmp_path):
    path = tmp_path / "run" / "last.pt"
    with pytest.raises(FileNotFoundError) as info:
        load_checkpoint(path)
    assert f"checkpoint not found: {path}" in str(info.value) and "save_checkpoint" in str(info.value)


@pytest.mark.parametrize("make, reason", [
    (_truncated, "corrupt or truncated"),
    (lambda p: p.write_bytes(b"not a checkpoint") and p, "not a file written by torch.save"),
    (lambda p: p.write_bytes(b"\x80\x02") and p, "ends early"),
])
def test_an_unreadable_file_gives_a_reason(tmp_path, make, reason):
    path = tmp_path / "last.pt"
    make(path)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert f"cannot read checkpoint {path}: " in message and reason in message
    assert not message.endswith(": ")


def test_a_file_holding_no_dict_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save([torch.ones(2)], path)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert f"checkpoint {path} holds a list" in str(info.value) and "expected a dict" in str(info.value)


def test_trainer_resume_from_an_empty_last_pt_names_it(tmp_path):
    (tmp_path / "last.pt").touch()
    with pytest.raises(ValueError) as info:
        _tiny_trainer(tmp_path).fit(resume=True)
    assert str(tmp_path / "last.pt") in str(info.value) and "empty (0 bytes)" in str(info.value)


def test_trainer_load_checkpoint_of_a_folder_names_last_pt(tmp_path):
    trainer = _tiny_trainer(tmp_path)
    with pytest.raises(IsADirectoryError) as info:
        trainer.load_checkpoint(tmp_path)
    assert str(tmp_path / "last.pt") in str(info.value)


def test_feature_extractor_with_an_empty_checkpoint_names_it(tmp_path):
    ckpt = tmp_path / "ck" / "last.pt"
    ckpt.parent.mkdir()
    ckpt.touch()
    record = {"config": {"model": "baseline", "backbone": "resnet18", "height": 32, "width": 16},
              "num_classes": 3, "checkpoint": str(ckpt), "schema_version": 2}
    with pytest.raises(ValueError) as info:
        FeatureExtractor.from_record(record, progress=False)
    assert str(ckpt) in str(info.value) and "empty (0 bytes)" in str(info.value)


# ---------------------------------------------------------------- load_model_state

def test_a_whole_training_checkpoint_says_pass_state_model(tmp_path):
    trainer = _tiny_trainer(tmp_path)
    path = trainer.save_checkpoint()
    state = load_checkpoint(path)
    assert {"format", "model", "optimizer"} <= set(state)
    with pytest.raises(CheckpointMismatchError) as info:
        load_model_state(trainer.model, state, source=path)
    message = str(info.value)
    assert str(path) in message and "this is a training checkpoint" in message
    assert "pass state['model']" in message and "another architecture" not in message
    assert isinstance(info.value, ValueError)   # callers that catch ValueError keep working
    load_model_state(trainer.model, state["model"], source=path)   # the advice works


def test_a_training_checkpoint_without_a_source_still_says_what_to_pass():
    model = nn.Linear(2, 2)
    with pytest.raises(CheckpointMismatchError, match=r"<state>: this is a training checkpoint .*pass state\['model'\]"):
        load_model_state(model, {"model": model.state_dict(), "epoch": 3})


def test_a_state_that_is_not_a_mapping_names_its_source():
    with pytest.raises(TypeError) as info:
        load_model_state(nn.Linear(2, 2), [torch.ones(2)], source="weights.pt")
    assert "state (from weights.pt) must be a state dict" in str(info.value) and "got list" in str(info.value)


def test_a_mapping_of_non_tensors_names_the_entries():
    with pytest.raises(CheckpointMismatchError) as info:
        load_model_state(nn.Linear(2, 2), {"weight": [1, 2], "bias": torch.zeros(2), "epoch": 3}, source="ck.pt")
    message = str(info.value)
    assert "ck.pt is not a state dict of Linear" in message and "entries epoch, weight are not tensors" in message


# ---------------------------------------------------------------- weights files (load_state_dict_file)

def test_weights_path_folder_says_it_is_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        build_backbone("resnet18", weights_path=tmp_path)
    assert f"weights_path={str(tmp_path)!r} is a folder" in str(info.value)
    assert "state dict of resnet18" in str(info.value)


def test_weights_path_empty_file_says_it_is_empty(tmp_path):
    path = tmp_path / "resnet18.pth"
    path.touch()
    with pytest.raises(RuntimeError) as info:
        build_backbone("resnet18", weights_path=path)
    assert f"weights_path={str(path)!r}: the file is empty (0 bytes)" in str(info.value)


def test_weights_path_given_a_training_checkpoint_says_so(tmp_path):
    path = save_checkpoint({"format": 1, "model": {"fc.weight": torch.ones(1)}, "optimizer": {}}, tmp_path / "last.pt")
    with pytest.raises(RuntimeError) as info:
        build_backbone("resnet18", weights_path=path)
    message = str(info.value)
    assert f"weights_path={str(path)!r}" in message and "training checkpoint" in message and "state['model']" in message


@pytest.mark.parametrize("make, error, text", [
    (lambda p: None, FileNotFoundError, "no such file"),
    (lambda p: p.mkdir(), IsADirectoryError, "is a folder"),
    (lambda p: p.touch(), RuntimeError, "empty (0 bytes)"),
    (_truncated, RuntimeError, "corrupt or truncated"),
    (lambda p: torch.save(torch.ones(3), p), RuntimeError, "expected a state dict"),
])
def test_load_state_dict_file_names_the_file(tmp_path, make, error, text):
    path = tmp_path / "efficientnet_lite0.pth"
    make(path)
    with pytest.raises(error) as info:
        load_state_dict_file(path)
    assert str(path) in str(info.value) and text in str(info.value)
