"""Images of different sizes through the engine: a batch holding a list of images moves to the device and
counts its images, the trainer steps on it, and the feature extractor embeds (and flips) each image alone."""
from __future__ import annotations

import torch
from torch import nn

from reidlib.data import collate_images
from reidlib.engine.features import extract_features
from reidlib.engine.trainer import Batch
from reidlib.models.good_practices import GoodPractices


class _Trunk(nn.Sequential):
    out_channels = 6

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU())


def _model() -> GoodPractices:
    torch.manual_seed(0)
    return GoodPractices(_Trunk(), 3, dim=5)


def _items():
    sizes = [(16, 8), (20, 10), (12, 12), (16, 8)]
    return [(torch.rand(3, h, w), i % 2, i % 3, i) for i, (h, w) in enumerate(sizes)]


def test_a_batch_of_a_list_moves_and_counts():
    images, pids, camids, idx = collate_images(_items())
    batch = Batch.from_loader((images, pids, camids, idx)).to(torch.device("cpu"))
    assert isinstance(batch.images, list) and len(batch) == 4


def test_extract_features_embeds_each_image_alone_and_its_mirror():
    items = _items()
    loader = [collate_images(items[:3]), collate_images(items[3:])]
    model = _model().eval()
    feats, pids, camids = extract_features(model, loader, flip=True, progress=False)
    assert feats.shape == (4, 5) and pids.tolist() == [0, 1, 0, 1] and camids.tolist() == [0, 1, 2, 0]
    with torch.no_grad():
        for (img, *_), row in zip(items, feats):
            alone = (model(img[None]) + model(torch.flip(img, dims=[2])[None])) / 2
            torch.testing.assert_close(alone[0], row)
    assert model.training is False


def test_a_training_step_on_a_list_of_images():
    from reidlib.losses import DotProductTripletLoss

    model = _model().train()
    images, *_ = collate_images(_items()[:3])
    feats = model(images)["branches"]["main"]["feat"]
    DotProductTripletLoss(0.5)(feats).backward()
    assert model.fc.weight.grad is not None and model.backbone[0].weight.grad.abs().sum() > 0
