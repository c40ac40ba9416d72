"""The activation-map page's measurement on an untrained feature-fusion network (the demo models train in the book):
stage-4 maps of the right shape, and their shares on synthped's part masks."""
from __future__ import annotations

import torch

from reidlib.data import build_dataset, synthped
from reidlib.data.transforms import build_transforms
from reidlib.engine.build import build_run_model
from reidlib.papers import feature_fusion
from reidlib.papers._recipe import Demo
from reidlib.papers.feature_fusion_demo import activation_maps, attention_on_parts


def test_stage_4_maps_and_their_shares_on_the_part_masks():
    ds = build_dataset("synthped", synthped.ensure("tiny"))
    cfg = feature_fusion.config(variant="full", backbone="resnet18", pretrained=False, height=96, width=32)
    torch.manual_seed(0)
    model = build_run_model(cfg, ds.num_train_pids).eval()
    demo = Demo(model, ds, build_transforms(96, 32, train=False), "untrained", "full")
    records = ds.query[:4]
    maps = activation_maps(demo, records)
    assert maps.shape == (4, 6, 2) and (maps >= 0).all()  # stride 16 at 96x32, last stride 1
    shares = attention_on_parts(demo, records)
    assert list(shares.columns) == ["share on details", "share on person", "area of details", "area of person"]
    valid = shares.dropna()
    assert ((valid >= 0) & (valid <= 1)).all().all() and (valid["share on details"] <= valid["share on person"]).all()
