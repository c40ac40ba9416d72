"""A run record back as a model: rebuild, load, embed; and the errors that name the path and the model."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from reidlib import FeatureExtractor
from reidlib.engine.checkpoint import CheckpointMismatchError, save_checkpoint
from reidlib.engine.config import TrainConfig
from reidlib.engine.features import extract_features
from reidlib.models import build_model


def _record(tmp_path, num_classes=3, model="baseline", **options):
    cfg = TrainConfig(model=model, model_options=options, height=32, width=16, flip_test=True)
    torch.manual_seed(0)
    net = build_model(model, num_classes, backbone=cfg.backbone, **options)
    path = save_checkpoint({"model": net.state_dict()}, tmp_path / "ck" / "last.pt")
    config = cfg.to_dict() | {"model_options": net.options}
    return {"config": config, "num_classes": num_classes, "checkpoint": str(path), "schema_version": 2}, net


def test_embeds_paths_pil_and_tensors_like_the_runs_evaluation(tmp_path):
    record, net = _record(tmp_path)
    fx = FeatureExtractor.from_record(record, progress=False)
    files = []
    for i in range(3):
        Image.new("RGB", (20, 40), (40 * i, 90, 200 - 50 * i)).save(tmp_path / f"{i}.jpg")
        files.append(tmp_path / f"{i}.jpg")
    by_path = fx(files)
    by_pil = fx([Image.open(f) for f in files])
    images = torch.stack([fx.transform(Image.open(f).convert("RGB")) for f in files])
    loader = [(images, torch.zeros(3), torch.zeros(3))]
    reference, _, _ = extract_features(net.eval(), loader, flip=True, progress=False)
    assert by_path.shape == (3, 512)
    torch.testing.assert_close(by_path, reference)
    torch.testing.assert_close(by_pil, reference)
    torch.testing.assert_close(fx(images), reference)


def test_missing_or_mismatched_checkpoint_names_the_path_and_the_model(tmp_path):
    record, _ = _record(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"checkpoint of run record .* not found: .*nowhere\.pt"):
        FeatureExtractor.from_record(record | {"checkpoint": str(tmp_path / "nowhere.pt")})
    wrong, _ = _record(tmp_path / "other", num_classes=5)
    with pytest.raises(CheckpointMismatchError, match=r"last\.pt \(expected model 'baseline' \(Baseline, backbone "
                                                      r"resnet18, 3 classes\)\)"):
        FeatureExtractor.from_record(record | {"checkpoint": wrong["checkpoint"]})
    with pytest.raises(ValueError, match="predates FeatureExtractor"):
        FeatureExtractor.from_record({"config": {"backbone": "resnet18"}, "schema_version": 1})


def test_bad_inputs_name_what_was_expected(tmp_path):
    record, _ = _record(tmp_path)
    fx = FeatureExtractor.from_record(record, progress=False)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*got shape \(2, 32, 16\)"):
        fx(torch.zeros(2, 32, 16))
    with pytest.raises(FileNotFoundError, match="missing.jpg does not exist"):
        fx([tmp_path / "missing.jpg"])
    with pytest.raises(TypeError, match="item 0 is a int"):
        fx([3])
    with pytest.raises(TypeError, match="list of image paths, not one path"):
        fx(str(tmp_path / "0.jpg"))
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image .*bad.jpg"):
        fx([tmp_path / "bad.jpg"])
