"""No weights or checkpoint file is ever unpickled with code execution: every load path of reidlib
reads files with ``torch.load(..., weights_only=True)`` and refuses a planted pickle with an error
naming the file.

A planted pickle here is one whose unpickling would create a marker file (``Path.touch``): a
control test shows that a plain ``torch.load`` does create it; every reidlib path must refuse the
file and leave no marker. No test touches the network: downloads are faked.
"""
from __future__ import annotations

import ast
import pathlib
import pickle
import re
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision
from torch import nn

import reidlib
from reidlib.engine.checkpoint import load_checkpoint
from reidlib.engine.features import FeatureExtractor
from reidlib.engine.trainer import Trainer
from reidlib.models import build_backbone, build_model
from reidlib.models.backbones import hub_cache_path, load_state_dict_file

RESNET18 = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
CACHE_NAME = "resnet18-f37072fd.pth"   # the file name of RESNET18.url, where torch hub caches it


class _RunsCode:
    """Unpickling this calls ``marker.touch()``: the stand-in for whatever code a planted pickle runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran"


def plant(path: Path, marker: Path, fmt: str = "torch.save", payload: str = "state dict") -> Path:
    """Write a file at ``path`` that runs code when unpickled: a ``torch.save`` zip file or a raw
    (legacy) pickle, holding a state dict or a training checkpoint with the payload inside."""
    evil = _RunsCode(marker)
    obj = ({"conv1.weight": evil, "bn1.weight": torch.ones(64)} if payload == "state dict"
           else {"format": 1, "model": {"fc.weight": evil}, "optimizer": {}})
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torch.save":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


FORMATS = ["torch.save", "raw pickle"]


@pytest.fixture(autouse=True)
def _offline_and_no_torchvision_loader(monkeypatch, tmp_path):
    """No network, an empty torch hub cache under tmp_path, and torchvision's loader (which
    unpickles without weights_only) made to fail loudly if anything still calls it."""
    def offline(url, *args, **kwargs):
        raise URLError(f"test is offline: refused {url}")

    def forbidden(*args, **kwargs):
        raise AssertionError("torchvision's load_state_dict_from_url was called: it unpickles without weights_only")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", forbidden)


def refused(err: BaseException) -> bool:
    return "refuses to unpickle" in str(err) and "weights_only=True" in str(err)


# ---------------------------------------------------------------- the control

@pytest.mark.parametrize("fmt", FORMATS)
def test_control_the_planted_file_does_run_code_without_weights_only(tmp_path, marker, fmt):
    """Without weights_only the planted file creates the marker: the tests below test something."""
    path = plant(tmp_path / "evil.pth", marker, fmt)
    try:
        torch.load(path, weights_only=False)
    except RuntimeError:   # a raw pickle: unpickled (code run) before torch checks its magic number
        assert fmt == "raw pickle"
    assert marker.exists()


# ---------------------------------------------------------------- every load path refuses it

@pytest.mark.parametrize("fmt", FORMATS)
def test_hub_cache_is_read_with_weights_only(tmp_path, marker, fmt):
    cache = tmp_path / "torch_home" / "hub" / "checkpoints" / CACHE_NAME
    assert hub_cache_path(RESNET18) == cache
    plant(cache, marker, fmt)
    with pytest.raises(RuntimeError) as info:
        build_backbone("resnet18", pretrained=True)
    message = str(info.value)
    assert str(cache) in message and "cached weights file" in message and refused(info.value)
    assert "delete it to download again" in message
    assert not marker.exists()


def test_downloaded_file_is_read_with_weights_only(tmp_path, marker, monkeypatch):
    """When the cache is empty the file is downloaded there (hash prefix from its name, as
    torchvision's check_hash does) and then read with weights_only like a cached one."""
    calls = []

    def download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        plant(Path(dst), marker)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    cache = tmp_path / "torch_home" / "hub" / "checkpoints" / CACHE_NAME
    with pytest.raises(RuntimeError) as info:
        build_backbone("resnet18", pretrained=True)
    assert calls == [(RESNET18.url, "f37072fd")]
    assert str(cache) in str(info.value) and refused(info.value)
    assert not marker.exists()


def test_download_with_a_wrong_hash_names_the_url_and_the_cache(tmp_path, monkeypatch):
    def download(url, dst, hash_prefix=None, progress=True):
        raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "0badc0de")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    cache = tmp_path / "torch_home" / "hub" / "checkpoints" / CACHE_NAME
    with pytest.raises(RuntimeError, match="does not match the SHA-256 prefix") as info:
        build_backbone("resnet18", pretrained=True)
    assert RESNET18.url in str(info.value) and str(cache) in str(info.value)
    assert not cache.exists()


def test_offline_error_says_where_to_copy_the_file(tmp_path):
    cache = tmp_path / "torch_home" / "hub" / "checkpoints" / CACHE_NAME
    with pytest.raises(RuntimeError) as info:
        build_backbone("resnet18", pretrained=True)
    message = str(info.value)
    assert f"weights_path='/path/to/{CACHE_NAME}'" in message and str(cache) in message
    assert "TORCH_HOME" in message and RESNET18.url in message
    assert isinstance(info.value.__cause__, OSError)


def test_a_valid_cached_file_still_loads_offline(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    cache = tmp_path / "torch_home" / "hub" / "checkpoints" / CACHE_NAME
    cache.parent.mkdir(parents=True)
    torch.save(state, cache)
    b = build_backbone("resnet18", pretrained=True)
    torch.testing.assert_close(b.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_weights_path_refuses_a_planted_pickle(tmp_path, marker, fmt):
    path = plant(tmp_path / "resnet18_imagenet.pth", marker, fmt)
    with pytest.raises(RuntimeError) as info:
        build_backbone("resnet18", weights_path=path)
    assert f"weights_path={str(path)!r}" in str(info.value) and refused(info.value)
    assert not marker.exists()


def test_build_model_weights_path_refuses_a_planted_pickle(tmp_path, marker):
    """The registry's path to the backbone (what a run's config weights_path= reaches)."""
    path = plant(tmp_path / "imagenet.pth", marker)
    with pytest.raises(RuntimeError) as info:
        build_model("baseline", 3, backbone="resnet18", weights_path=path)
    assert str(path) in str(info.value) and refused(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_state_dict_file_refuses_a_planted_pickle(tmp_path, marker, fmt):
    """The helper every weights loader must use (the future EfficientNet-Lite weights included)."""
    path = plant(tmp_path / "efficientnet_lite0.pth", marker, fmt)
    with pytest.raises(RuntimeError) as info:
        load_state_dict_file(path)
    assert str(path) in str(info.value) and refused(info.value)
    assert not marker.exists()


def test_load_state_dict_file_reads_a_state_dict_to_the_cpu(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"a": torch.arange(3.0), "b": torch.ones(2, 2)}, path)
    state = load_state_dict_file(path)
    assert set(state) == {"a", "b"} and state["a"].device.type == "cpu"
    torch.testing.assert_close(state["a"], torch.arange(3.0))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("payload", ["state dict", "training checkpoint"])
def test_load_checkpoint_refuses_a_planted_pickle(tmp_path, marker, fmt, payload):
    path = plant(tmp_path / "last.pt", marker, fmt, payload)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert f"cannot read checkpoint {path}" in str(info.value) and refused(info.value)
    assert not marker.exists()


def _tiny_trainer(checkpoint_dir: Path) -> Trainer:
    model = nn.Linear(4, 2)
    data = [(torch.zeros(4), 0, 0, i) for i in range(4)]
    return Trainer(model, lambda out, batch: {"id": out.sum()}, torch.optim.SGD(model.parameters(), 0.1), data,
                   [[0, 1], [2, 3]], epochs=1, checkpoint_dir=checkpoint_dir, progress=False)


def test_trainer_resume_refuses_a_planted_last_pt(tmp_path, marker):
    """fit(resume=True) reads checkpoint_dir/last.pt: a planted one is refused before training."""
    ckpt = plant(tmp_path / "run" / "last.pt", marker, payload="training checkpoint")
    trainer = _tiny_trainer(tmp_path / "run")
    with pytest.raises(ValueError) as info:
        trainer.fit(resume=True)
    assert str(ckpt) in str(info.value) and refused(info.value)
    with pytest.raises(ValueError) as info:
        trainer.load_checkpoint(ckpt)
    assert str(ckpt) in str(info.value) and refused(info.value)
    assert not marker.exists() and trainer.epoch == 0


def test_feature_extractor_from_record_refuses_a_planted_checkpoint(tmp_path, marker):
    ckpt = plant(tmp_path / "ck" / "last.pt", marker, payload="training checkpoint")
    record = {"config": {"model": "baseline", "backbone": "resnet18", "height": 32, "width": 16},
              "num_classes": 3, "checkpoint": str(ckpt), "schema_version": 2}
    with pytest.raises(ValueError) as info:
        FeatureExtractor.from_record(record, progress=False)
    assert str(ckpt) in str(info.value) and refused(info.value)
    assert not marker.exists()


# ---------------------------------------------------------------- and stays that way

def _calls_in_reidlib():
    root = Path(reidlib.__file__).parent
    for file in sorted(root.rglob("*.py")):
        tree = ast.parse(file.read_text(), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                yield file.relative_to(root.parent), node


def test_every_torch_load_in_reidlib_passes_weights_only_true():
    loads = []
    for file, call in _calls_in_reidlib():
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "load" and ast.unparse(func.value) == "torch":
            kw = {k.arg: k.value for k in call.keywords}
            ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
            loads.append((f"{file}:{call.lineno}", ok))
    assert loads, "found no torch.load at all: has the loader moved?"
    assert [where for where, ok in loads if not ok] == []


def test_reidlib_never_uses_torchvision_or_hub_unpickling_loaders():
    """torchvision's WeightsEnum.get_state_dict / torch.hub.load_state_dict_from_url default to
    weights_only=False (and torch.hub.load runs a repository's hubconf.py)."""
    banned = re.compile(r"\b(get_state_dict|load_state_dict_from_url|hub\.load)\s*\(")
    root = Path(reidlib.__file__).parent
    hits = [f"{f.relative_to(root.parent)}:{i}" for f in sorted(root.rglob("*.py"))
            for i, line in enumerate(f.read_text().splitlines(), 1)
            if banned.search(line) and not line.lstrip().startswith("#")]
    assert hits == []
