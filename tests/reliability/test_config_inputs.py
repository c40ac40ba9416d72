"""Bad inputs at the training entry points (TrainConfig, the recipes' notebook parameters, models, saliency):
each is refused with the exception type asserted and a message that names the argument and what was expected."""
from __future__ import annotations

import pytest
import torch

from reidlib.engine.config import TrainConfig
from reidlib.papers import baseline, esnet

CONFIG_CASES = [
    ({"backbone": "resnet-18"}, "backbone must be one of .*'resnet18'.*got 'resnet-18'"),
    ({"P": 1}, r"P must be >= 2 \(parameter 'P' = 1\)"),
    ({"K": 1}, r"K must be >= 2 \(parameter 'K' = 1\)"),
    ({"dataset_options": {"spilt": "labeled"}}, r"unknown dataset_options key\(s\) \['spilt'\] for 'synthped'"),
    ({"model_options": {"poolng": "gem"}}, r"unknown model_options key\(s\) \['poolng'\].*known: \['pooling'"),
    ({"epochs": 30, "milestones": (40, 70)}, r"milestones \[40, 70\] include \[40, 70\].*epochs=30"),
    ({"epochs": 10, "milestones": (5, 10)}, r"include \[10\], at or past the last epoch"),
    ({"resume": "False "}, None),  # parsed, not an error: see test_booleans_given_as_text_are_parsed
    ({"resume": "no"}, r"parameter 'resume' must be True or False .*got 'no'"),
    ({"amp": 1}, r"parameter 'amp' must be True or False"),
    ({"pretrained": "yes"}, r"parameter 'pretrained' must be True or False"),
    ({"flip_test": "0"}, r"parameter 'flip_test' must be True or False"),
    ({"model": "esnett"}, r"model must be one of \['baseline', 'esnet', 'good_practices', 'henet', 'mgo_fusion', "
                          r"'ssr_hashing'\].*got 'esnett'"),
    ({"eval_metric": "l1"}, r"eval_metric must be one of \['euclidean', 'cosine'\], got 'l1'"),
    ({"padding": 2.5}, r"padding must be an integer >= 0, got 2.5"),
    ({"model_options": "pooling=gem"}, "model_options must be a dict of options, got 'pooling=gem'"),
]


@pytest.mark.parametrize("values, message", CONFIG_CASES)
def test_train_config_refuses(values, message):
    if message is None:
        TrainConfig(**values)
        return
    with pytest.raises(ValueError, match=message):
        TrainConfig(**values)


def test_booleans_given_as_text_are_parsed():
    cfg = TrainConfig(resume="False", amp="TRUE", pretrained="false", flip_test="True")
    assert (cfg.resume, cfg.amp, cfg.pretrained, cfg.flip_test) == (False, True, False, True)
    assert TrainConfig(epochs=30, milestones=(40,), milestones_past_end=True).milestones == (40,)


RECIPE_CASES = [
    (esnet, {"erasing_ratio": "lots"}, r"parameter 'erasing_ratio' must be a number, got 'lots'"),
    (esnet, {"dataset_options": "split=detected"}, r"parameter 'dataset_options' must be a dict"),
    (esnet, {"dataset_options": '{"spilt": "x"}'}, r"unknown dataset_options key\(s\) \['spilt'\]"),
    (esnet, {"variant": "esnet2"}, r"unknown ES-Net variant 'esnet2' \(parameter 'variant'\)"),
    (esnet, {"esb_pooling": "avg"}, r"ESNetConfig.esb_pooling='avg'; expected one of"),
    (esnet, {"resume": "False?"}, r"parameter 'resume' must be True or False"),
    (esnet, {"epochs": "ten"}, r"parameter 'epochs' must be an integer, got 'ten'"),
    (esnet, {"epochs": 2.5}, r"parameter 'epochs' must be an integer, got 2.5"),
    (esnet, {"milestones": "[20, x]"}, r"parameter 'milestones' must be a list of integers"),
    (esnet, {"milestones": [40.5, 70]}, r"must be a list of integers such as \[40, 70\], got \[40.5, 70\]"),
    (esnet, {"milestones": [True]}, r"parameter 'milestones' must be a list of integers"),
    (esnet, {"paper_preset": "market"}, r"paper_preset must be None or one of \['person', 'vehicle'\]"),
    (esnet, {"probe_every": 0}, None),  # accepted by the parameters; the probe refuses it when switched on
    (esnet, {"lerning_rate": 1e-3}, r"unknown parameter\(s\) \['lerning_rate'\] for book/esnet/train.ipynb"),
    (baseline, {"split": 3}, r"parameter 'split' must be a text, got 3"),
    (baseline, {"lr": "fast"}, r"parameter 'lr' must be a number, got 'fast'"),
    (baseline, {"num_workers": -1}, r"num_workers must be an integer >= 0, got -1"),
    (baseline, {"dataset": "market1501"}, r"data_root is required for dataset 'market1501'"),
]


@pytest.mark.parametrize("recipe, given, message", RECIPE_CASES)
def test_recipe_parameters_are_converted_or_refused(recipe, given, message):
    if message is None:
        recipe.config(**given)
        return
    with pytest.raises(ValueError, match=message):
        recipe.config(**given)


def test_papermill_text_is_converted():
    """What ``papermill -r`` / ``-p`` hand a notebook: numbers, booleans and dicts as text."""
    cfg = esnet.config(erasing_ratio="0.3", erasing_prob="1", resume="false", epochs="4", milestones="[2, 3]",
                       dataset_options="{}", max_steps_per_epoch="None")
    assert cfg.model_options["ratio"] == 0.3 and cfg.model_options["prob"] == 1.0 and cfg.resume is False
    assert cfg.epochs == 4 and cfg.milestones == (2, 3) and cfg.max_steps_per_epoch is None
    with pytest.raises(ValueError, match="probe_every must be an integer >= 1, got 0"):
        esnet.ErasedLossProbe(0)


@pytest.fixture(scope="module")
def nets():
    from reidlib.models import build_model

    torch.manual_seed(0)
    return build_model("baseline", 4, backbone="resnet18"), esnet.build("esnet", 4, backbone="resnet18")


@pytest.mark.parametrize("make, message", [
    (lambda: torch.randn(2, 1, 64, 32), r"expected 3-channel RGB images .*got 1 channels"),
    (lambda: torch.randn(2, 4, 64, 32), r"got 4 channels"),
    (lambda: torch.randn(2, 64, 32, 3), r"channels last\? use images.permute"),
    (lambda: torch.zeros(2, 3, 64, 32, dtype=torch.uint8), r"expected float images normalised .*got dtype torch.uint8"),
    (lambda: torch.randn(2, 3, 64, 32, dtype=torch.float64), r"images are torch.float64 but the model's weights are "
                                                             r"torch.float32"),
    (lambda: torch.randn(3, 64, 32), r"expected images of shape \(B, 3, H, W\), got shape \(3, 64, 32\)"),
])
@pytest.mark.parametrize("which", ["Baseline", "ESNet"])
def test_models_check_their_images(nets, make, message, which):
    model = nets[0] if which == "Baseline" else nets[1]
    model.eval()
    with pytest.raises(ValueError, match=f"{which}: .*{message}"):
        model(make())


@pytest.mark.parametrize("which", ["Baseline", "ESNet"])
def test_a_training_batch_of_one_is_named(nets, which):
    model = (nets[0] if which == "Baseline" else nets[1]).train()
    with pytest.raises(ValueError, match=f"{which}: a training batch needs at least 2 images"):
        model(torch.randn(1, 3, 64, 32), **({"targets": torch.tensor([0])} if which == "ESNet" else {}))


def test_saliency_entry_points_name_their_arguments(nets):
    from reidlib.saliency import cg_ram_batch, grad_cam

    model = nets[0].train()
    x = torch.randn(4, 3, 64, 32)
    maps = cg_ram_batch(model, x, [0, 0, 1, 1], "backbone.layer4").maps  # a list of ids is fine
    assert maps.shape[0] == 4
    with pytest.raises(ValueError, match=r"pids must be integer identities \(B,\), got dtype torch.float32"):
        cg_ram_batch(model, x, torch.tensor([0.0, 0.0, 1.0, 1.0]), "backbone.layer4")
    with pytest.raises(ValueError, match=r"pids must be \(B,\) with B=4, got shape \(3,\)"):
        cg_ram_batch(model, x, torch.tensor([0, 0, 1]), "backbone.layer4")
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 4\).*got \[7\]"):
        grad_cam(model, x, torch.tensor([0, 1, 2, 7]), "backbone.layer4")
    with pytest.raises(ValueError, match=r"layer .* outputs shape \(4, 512\); saliency needs a convolutional layer"):
        cg_ram_batch(model, x, torch.tensor([0, 0, 1, 1]), "pooling")


@pytest.mark.parametrize("options, message", [
    ({"pooling": "gmpp"}, "gmpp"),
    ({"pooling": "gem", "neck": "bn"}, "neck must be 'bnneck' or 'none'"),
])
def test_run_training_refuses_a_model_option_before_anything_is_built(options, message, tmp_path, monkeypatch):
    """A pooling typo is refused by a small build with the run's options, before the dataset is read."""
    from reidlib.engine import run as run_module

    monkeypatch.setattr(run_module, "init_distributed", lambda *a: pytest.fail("got past the model check"))
    with pytest.raises(ValueError, match=message):
        run_module.run_training(TrainConfig(model_options=options, output_dir=str(tmp_path)))


@pytest.mark.parametrize("options, message", [
    ({"metric": "manhattan"}, r"metric must be 'euclidean' or 'cosine', got 'manhattan'"),
    ({"margin": -0.1}, r"margin must be >= 0, got -0.1"),
])
def test_run_training_refuses_a_criterion_option_before_anything_is_built(options, message, tmp_path, monkeypatch):
    """A triplet metric that does not exist, or a negative margin, is refused before the dataset is read."""
    from reidlib.engine import run as run_module

    monkeypatch.setattr(run_module, "init_distributed", lambda *a: pytest.fail("got past the criterion check"))
    with pytest.raises(ValueError, match=message):
        run_module.run_training(TrainConfig(criterion_options=options, output_dir=str(tmp_path)))


@pytest.mark.parametrize("recipe", ["baseline", "esnet"])
def test_a_recipe_refuses_a_triplet_metric_it_does_not_know_naming_the_parameter(recipe):
    import importlib

    module = importlib.import_module(f"reidlib.papers.{recipe}")
    with pytest.raises(ValueError, match=r"parameter 'triplet_metric' must be one of \['euclidean', 'cosine'\], "
                                         r"got 'manhattan'"):
        module.config(triplet_metric="manhattan")
    assert module.config(triplet_metric="euclidean").criterion_options["metric"] == "euclidean"
