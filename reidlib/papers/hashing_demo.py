"""The demo model of the hashing chapter's method pages (Jin et al. 2021, Fig. 2): a small network of one
Table 6 row, trained briefly on synthped ``tiny`` with the chapter's own losses, cached on disk.

:func:`load_demo` builds ``build_model("ssr_hashing", N, backbone="resnet18", **asdict(VARIANTS[variant]))``
(from scratch, no ImageNet weights) at 96x32, trains it ``steps`` optimizer steps through
:class:`~reidlib.engine.trainer.Trainer` with Eq. (14)'s criterion (:func:`~reidlib.papers.hashing.criterion_options`,
the CPU protocol's triplet margin and metric) and the :class:`~reidlib.papers.hashing.HashingEvaluation` hook
(it supplies the attribute targets the criterion's ``"attributes"`` term reads), and caches the weights under
``reidlib.paths.cache_dir("hashing-demo")``; later calls only load them.

Choices, stated: 96x32 because 6 stripes need the stride-16 map height divisible by 6 (96 / 16 = 6 rows, one
per stripe; the chapter's runs use 192x64); ResNet-18 with last stride 1; Adam at 1e-3, weight decay 5e-4;
P x K = 6 x 4; flip and random erasing (p = 0.5) as the recipe; one thread while training, so the result does
not depend on the machine's core count. This is a tiny demo, not a run of the paper's schedule: its numbers
show shapes (e.g. how saturated a relaxation's outputs become), never accuracies.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from reidlib.models.hashing import SSRHashing
from reidlib.paths import cache_dir

from ._recipe import Demo, trained_once
from .baseline import CPU_PROTOCOL
from .hashing import VARIANTS, HashingEvaluation, criterion_options

__all__ = ["DEMO_HEIGHT", "DEMO_WIDTH", "DEMO_VERSION", "Demo", "demo_path", "load_demo"]

DEMO_HEIGHT, DEMO_WIDTH = 96, 32
DEMO_VERSION = 1
DEMO_P, DEMO_K, DEMO_LR = 6, 4, 1e-3


def demo_path(variant: str, steps: int, seed: int):
    """Where :func:`load_demo` caches the weights of ``variant`` after ``steps`` steps with ``seed``."""
    return cache_dir("hashing-demo") / f"{variant}-tiny-{DEMO_HEIGHT}x{DEMO_WIDTH}-s{seed}-{steps}steps-v{DEMO_VERSION}.pt"


def _build(variant: str, num_classes: int, seed: int) -> SSRHashing:
    from reidlib.models import build_model

    torch.manual_seed(seed)
    return build_model("ssr_hashing", num_classes, backbone="resnet18", **asdict(VARIANTS[variant]))


def _train(model: SSRHashing, ds: Any, test_tf: Any, steps: int, seed: int) -> None:
    from reidlib.data import ImageDataset
    from reidlib.data.samplers import PKSampler
    from reidlib.data.transforms import build_transforms
    from reidlib.engine.trainer import Trainer
    from reidlib.losses import build_criterion

    train_tf = build_transforms(DEMO_HEIGHT, DEMO_WIDTH, train=True, padding=0, random_erasing=0.5)
    sampler = PKSampler([r.pid for r in ds.train], DEMO_P, DEMO_K, seed=seed)
    options = criterion_options(model.config, margin=CPU_PROTOCOL["margin"], metric=CPU_PROTOCOL["triplet_metric"])
    criterion = build_criterion("reid", ds.num_train_pids, **options)
    hook = HashingEvaluation()
    hook.on_setup(ds, test_tf)  # the attribute targets of the training set
    per_epoch = min(steps, len(sampler))
    Trainer(model, criterion, torch.optim.Adam(model.parameters(), lr=DEMO_LR, weight_decay=5e-4),
            ImageDataset(ds.train, train_tf), sampler, epochs=-(-steps // per_epoch), hooks=[hook], seed=seed,
            max_steps_per_epoch=per_epoch, progress=False).fit()


def load_demo(variant: str, *, steps: int = 48, seed: int = 0) -> Demo:
    """The hashing network of the named row ``variant`` (a key of :data:`~reidlib.papers.hashing.VARIANTS`,
    e.g. ``"sigmoid"``, ``"tanh"``, ``"hardsigmoid"``, ``"ssr"``), trained ``steps`` steps on synthped ``tiny``
    (see the module docstring), in eval mode; trained once and cached (:func:`demo_path`)."""
    from reidlib.data import build_dataset, synthped
    from reidlib.data.transforms import build_transforms
    if variant not in VARIANTS:
        raise ValueError(f"load_demo: unknown hashing variant {variant!r}; expected one of {list(VARIANTS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"load_demo: steps must be an integer >= 1, got {steps!r}")
    ds = build_dataset("synthped", synthped.ensure("tiny"))
    test_tf = build_transforms(DEMO_HEIGHT, DEMO_WIDTH, train=False)
    model = _build(variant, ds.num_train_pids, seed)
    cached = demo_path(variant, steps, seed)
    trained_once(model, cached, lambda: _train(model, ds, test_tf, steps, seed))
    return Demo(model.eval(), ds, test_tf, f"{steps} training steps on synthped 'tiny' (cached at {cached.name})",
                       variant)
