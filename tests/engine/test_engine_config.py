"""TrainConfig: a wrong parameter is a ValueError that names it; the run's transforms normalise for its backbone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reidlib.engine.config import TrainConfig


@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="imagenet"), r"unknown dataset 'imagenet' \(parameter 'dataset'\)"),
    (dict(epochs=-1), r"epochs must be an integer >= 1, got -1"),
    (dict(dataset="market1501"), r"data_root is required for dataset 'market1501'"),
    (dict(data_root="/no/such/folder"), r"data_root '/no/such/folder' does not exist"),
    (dict(P=0), r"P must be an integer >= 1"),
    (dict(K=1), r"K must be >= 2"),
    (dict(lr=-0.1), r"lr must be a number > 0"),
    (dict(optimizer="lbfgs"), r"optimizer must be one of"),
    (dict(device="tpu"), r"device must be one of"),
    (dict(random_erasing=1.5), r"random_erasing is a probability"),
    (dict(random_polygon_erasing=-0.5), r"random_polygon_erasing is a probability in \[0, 1\], got -0.5"),
    (dict(random_polygon_erasing=True), r"random_polygon_erasing is a probability"),
    (dict(height=12.5), r"height must be an integer"),
    (dict(milestones=(70, 40)), r"milestones must be increasing"),
    (dict(run_name="a/b"), r"run_name must be"),
])
def test_wrong_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_defaults_aliases_and_round_trip(tmp_path):
    cfg = TrainConfig(dataset="CUHK03-NP", data_root=str(tmp_path), dataset_options={"variant": "labeled"})
    assert cfg.dataset == "cuhk03_np" and cfg.dataset_key == "cuhk03_np_labeled"
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.name == "resnet18_128x64_e30_s0"
    assert str(cfg.resolved_checkpoint_dir()) == "runs/baseline/cuhk03_np_labeled/resnet18_128x64_e30_s0"


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match=r"unknown training parameter\(s\) \['lr_decay'\]"):
        TrainConfig.from_dict({"lr_decay": 0.1})


def test_the_cuhk03_split_is_split_and_names_the_results_folder(tmp_path):
    cfg = TrainConfig(dataset="cuhk03_np", data_root=str(tmp_path), dataset_options={"split": "detected"})
    assert cfg.dataset_key == "cuhk03_np_detected"
    with pytest.warns(DeprecationWarning, match="split"):  # the first release's name
        old = TrainConfig(dataset="cuhk03_np", data_root=str(tmp_path), dataset_options={"variant": "labeled"})
    assert old.dataset_options == {"split": "labeled"}


def test_model_criterion_and_schedule_are_registry_names():
    cfg = TrainConfig(model="esnet", model_options={"ratio": 0.1}, criterion_options={"label_smoothing": 0.0})
    assert (cfg.model, cfg.criterion, cfg.eval_metric) == ("esnet", "reid", "cosine")
    for field, value, listed in (("model", "resnet", "'baseline', 'esnet'"), ("criterion", "arcface", "'reid'"),
                                 ("schedule", "cosine_annealing", "'warmup_multistep'")):
        with pytest.raises(ValueError, match=f"{field} must be one of .*{listed}.*got '{value}'"):
            TrainConfig(**{field: value})
    with pytest.raises(ValueError, match="model_options must be a dict"):
        TrainConfig(model_options="pooling=gem")


def test_legacy_loss_fields_move_into_criterion_options():
    with pytest.warns(DeprecationWarning, match="criterion_options"):
        cfg = TrainConfig.from_dict({"label_smoothing": 0.0, "triplet_margin": 0.5, "pooling": "gem"})
    assert cfg.criterion_options == {"label_smoothing": 0.0, "margin": 0.5}
    assert cfg.model_options == {"pooling": "gem"}


def test_padding_is_recorded_and_scaled_with_the_width():
    assert TrainConfig(width=128).padding == 10 and TrainConfig(width=32).padding == 2
    assert TrainConfig(width=32, padding=0).padding == 0 and TrainConfig().to_dict()["padding"] == 5
    with pytest.raises(ValueError, match="padding must be an integer >= 0"):
        TrainConfig(padding=-1)


def test_milestones_given_as_text_by_papermill_are_parsed():
    """``papermill -p milestones "[40, 70]"`` hands the notebook a string."""
    assert TrainConfig(milestones="[3, 5]").milestones == (3, 5)
    assert TrainConfig(milestones="3, 5").milestones == (3, 5)
    with pytest.raises(ValueError, match="milestones must be a list of epochs.*'\\[a\\]'"):
        TrainConfig(milestones="[a]")


def _transformed(transform, image):
    torch.manual_seed(0)
    return transform(image)


def test_run_transforms_normalise_with_the_backbones_mean_and_std():
    """A constant grey 127 is Lite's zero ((x - 127) / 128); the ImageNet mean colour is the ResNets' zero."""
    from reidlib.data.transforms import IMAGENET_MEAN
    from reidlib.engine.build import build_run_transforms

    grey = Image.fromarray(np.full((32, 16, 3), 127, dtype=np.uint8))
    imagenet_mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1).expand(3, 32, 16).clone()  # float image in [0, 1]
    common = dict(height=32, width=16, padding=0, random_erasing=0.0)
    lite = build_run_transforms(TrainConfig(backbone="efficientnet_lite0", **common))
    resnet = build_run_transforms(TrainConfig(backbone="resnet18", **common))
    for train, test in (lite, resnet):
        assert _transformed(test, grey).shape == _transformed(train, grey).shape == (3, 32, 16)
    for tf in lite:
        assert _transformed(tf, grey).abs().max() <= 1 / 255
    for tf in resnet:
        assert _transformed(tf, imagenet_mean).abs().max() <= 1e-6
        assert _transformed(tf, grey).abs().max() > 0.05  # ImageNet's statistics, not Lite's
    assert _transformed(lite[1], imagenet_mean).abs().max() > 0.05


def test_run_transforms_erase_with_the_backbones_mean_colour():
    """Random erasing fills with the backbone's mean: erased pixels normalise to 0 for Lite0."""
    from reidlib.engine.build import build_run_transforms

    light = Image.fromarray(np.full((32, 16, 3), 255, dtype=np.uint8))
    train, _ = build_run_transforms(TrainConfig(backbone="efficientnet_lite0", height=32, width=16, padding=0,
                                                random_erasing=1.0))
    x = _transformed(train, light)
    erased = (x.abs() <= 1 / 255).all(0)
    assert erased.any() and not erased.all()
    assert (x[:, ~erased] - 128 / 128).abs().max() <= 1 / 255  # (255 - 127) / 128 = 1 elsewhere
