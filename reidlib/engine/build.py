"""A run's model and transforms, from its :class:`~reidlib.engine.config.TrainConfig`: what training
(:func:`reidlib.engine.run.run_training`) and a trained model's reuse
(:class:`reidlib.engine.features.FeatureExtractor`) both build, so the two can never disagree."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .config import TrainConfig

__all__ = ["build_run_model", "build_run_transforms"]


def build_run_model(cfg: TrainConfig, num_classes: int, *, pretrained: bool | None = None) -> nn.Module:
    """``build_model(cfg.model, num_classes, backbone=..., **cfg.model_options)`` (``pretrained``
    overrides the config's: a trained model is rebuilt without fetching ImageNet weights)."""
    from reidlib.models import build_model

    return build_model(cfg.model, num_classes, backbone=cfg.backbone, last_stride=cfg.last_stride,
                       pretrained=cfg.pretrained if pretrained is None else pretrained,
                       weights_path=cfg.weights_path if pretrained is None else None, **cfg.model_options)


def build_run_transforms(cfg: TrainConfig) -> tuple[Callable, Callable]:
    """``(train, test)`` transforms of a run: resize to ``height x width``; in training flip (when
    ``flip_train``), ``padding`` px pad + random crop, random erasing with ``random_erasing`` (filled
    with the mean colour), random polygon erasing with ``random_polygon_erasing`` (``polygon_options``);
    then the backbone's input normalisation
    (:func:`~reidlib.models.backbones.input_normalization`: ImageNet's for the ResNets,
    ``(x - 127) / 128`` for EfficientNet-Lite)."""
    from reidlib.data.transforms import build_transforms
    from reidlib.models import input_normalization

    mean, std = input_normalization(cfg.backbone)
    train = build_transforms(cfg.height, cfg.width, train=True, random_erasing=cfg.random_erasing,
                             random_polygon_erasing=cfg.random_polygon_erasing,
                             polygon_options=dict(cfg.polygon_options) or None, padding=cfg.padding,
                             flip=0.5 if cfg.flip_train else 0.0, mean=mean, std=std)
    return train, build_transforms(cfg.height, cfg.width, train=False, mean=mean, std=std)
