"""Small tensor helpers shared by every layer of reidlib (layer 0: imports only torch, numpy, stdlib).

* :func:`check_shape`: one shape check with one error message, ``"GAP: expected a feature map of
  shape (B, C, H, W), got shape (2, 3)"``, instead of a hand-rolled check per module.
* :func:`pairwise_distance`: Euclidean or cosine distances between the rows of ``(B, D)``.
* :func:`model_mode`: run a block with a model in train/eval mode and leave no trace (modes and
  BatchNorm running statistics restored).
* :func:`capture_activation`: read a layer's output ``A`` as an autograd leaf from a forward that
  otherwise runs without autograd (CG-RAM and Grad-CAM differentiate with respect to ``A`` only).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Metric", "Mode", "capture_activation", "check_images", "check_shape", "model_mode", "pairwise_distance",
           "scalar_parameter"]

Metric = Literal["euclidean", "cosine"]
Mode = Literal["train", "eval", "keep"]


def check_shape(x: Any, spec: str, who: str, what: str = "a tensor", **sizes: int) -> tuple[int, ...]:
    """Check that ``x`` has the shape ``spec`` describes; return ``tuple(x.shape)``.

    ``spec`` names the dimensions, separated by spaces (``"B C H W"``, ``"B D"``, ``"B 3 H W"``):
    a number must match exactly, a name given in ``sizes`` (``D=512``) must have that size, and a
    name used twice (``"B B"``) must have equal sizes; other names match any size.

    Raises:
        TypeError: ``x`` is not a tensor.
        ValueError: naming ``who``, the expected shape (bound sizes filled in, e.g. ``(B, 512)``)
            and the shape it got, e.g. ``"BNNeck: expected features of shape (B, 512), got shape (4, 256)"``.
    """
    names = spec.replace(",", " ").split()
    if not names:
        raise ValueError(f"check_shape: spec must name at least one dimension, got {spec!r}")
    unknown = sorted(set(sizes) - set(names))
    if unknown:
        raise ValueError(f"check_shape: sizes {unknown} are not dimensions of spec {spec!r}")
    expected = "(" + ", ".join(str(sizes.get(n, n)) for n in names) + ")"
    if not isinstance(x, Tensor):
        raise TypeError(f"{who}: expected {what} of shape {expected} as a torch.Tensor, got {type(x).__name__}")
    shape = tuple(x.shape)
    ok = len(shape) == len(names)
    seen: dict[str, int] = {}
    for name, size in zip(names, shape) if ok else ():
        want = int(name) if name.isdigit() else sizes.get(name, seen.setdefault(name, size))
        if size != int(want):
            ok = False
            break
    if not ok:
        raise ValueError(f"{who}: expected {what} of shape {expected}, got shape {shape}")
    return shape


def pairwise_distance(x: Tensor, metric: Metric = "euclidean") -> Tensor:
    """Distances between all rows of ``x`` ``(B, D)``: ``(B, B)``.

    ``'euclidean'``: ``|x_i - x_j|`` (exact differences, not the ``|x|^2 + |y|^2 - 2xy`` expansion,
    so near duplicates keep accurate small distances); ``'cosine'``: ``1 - <x_i, x_j>/(|x_i||x_j|)``.
    Half-precision inputs are computed in float32.
    """
    check_shape(x, "B D", who="pairwise_distance", what="features")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # AMP features: distances and the loss in float32
    if metric == "euclidean":
        return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    if metric == "cosine":
        normed = F.normalize(x, dim=1)
        return 1 - normed @ normed.t()
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


@contextmanager
def model_mode(model: Any, mode: Mode) -> Iterator[None]:
    """Run a block with ``model`` in ``mode``; restore each submodule's mode; leave BatchNorm statistics as they were.

    ``mode``: ``'train'``, ``'eval'`` or ``'keep'`` (the modes stay as they are, only the BatchNorm
    statistics are protected). BatchNorm layers get ``momentum = 0`` for the block, so a pass in
    train mode normalises with the batch statistics but does not move the running statistics (they
    are not rewritten in place either, so graphs of earlier forwards that saved them stay valid).
    ``model`` may be a plain function only with ``mode='keep'``.
    """
    if mode not in ("train", "eval", "keep"):
        raise ValueError(f"mode must be 'train', 'eval' or 'keep', got {mode!r}")
    if not isinstance(model, nn.Module):
        if mode != "keep":
            raise ValueError(
                f"mode={mode!r} needs the model as an nn.Module to switch; for a plain function "
                f"({type(model).__name__}) set the mode of its modules yourself (e.g. with model_mode(net, 'train'):) "
                f"and pass mode='keep'"
            )
        yield
        return
    flags = {m: m.training for m in model.modules()}
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0
    if mode != "keep":
        model.train(mode == "train")
    try:
        yield
    finally:
        for m, flag in flags.items():
            m.training = flag
        with torch.no_grad():
            for m, (momentum, tracked) in zip(bns, saved):
                m.momentum = momentum
                if tracked is not None:
                    m.num_batches_tracked.copy_(tracked)


@contextmanager
def capture_activation(layer: nn.Module) -> Iterator[list[Tensor]]:
    """Hook ``layer`` so that a forward run inside ``torch.no_grad()`` records autograd from it on.

    The hook stores the layer's output ``A`` (a tensor, e.g. ``(B, C, h, w)``) as a leaf that
    requires grad (appended to the yielded list), switches autograd on for the rest of the forward
    (the enclosing ``no_grad`` restores the previous state on exit), and passes a copy downstream so
    in-place ops there cannot touch ``A``. The hook is removed on exit.
    """

    store: list[Tensor] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> Tensor:
        if not isinstance(output, Tensor):
            raise TypeError(
                f"capture_activation needs the layer's output to be a tensor (B, C, h, w); "
                f"{type(module).__name__} returned {type(output).__name__}"
            )
        if store:
            raise RuntimeError(f"layer {type(module).__name__} ran twice in one forward; pick a layer used once")
        torch.set_grad_enabled(True)
        leaf = output.detach().requires_grad_(True)
        store.append(leaf)
        return leaf.clone()

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def check_images(x: Any, who: str, *, training: bool = False, reference: Any = None) -> Tensor:
    """Check a batch of images at a model's entry: a floating tensor ``(B, 3, H, W)`` (normalised,
    channels first), of the dtype of ``reference`` (a module's parameters) where given, and ``B >= 2`` in
    training (BatchNorm needs two samples per channel). Returns ``x``; raises a ValueError naming ``who``,
    what was given and what is expected."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{who}: expected images as a tensor (B, 3, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{who}: expected images of shape (B, 3, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != 3:
        hint = " (channels last? use images.permute(0, 3, 1, 2))" if x.shape[-1] == 3 else ""
        raise ValueError(f"{who}: expected 3-channel RGB images (B, 3, H, W), got {x.shape[1]} channels "
                         f"in shape {tuple(x.shape)}{hint}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{who}: expected float images normalised with the ImageNet mean/std "
                         f"(reidlib.data.transforms.build_transforms), got dtype {x.dtype}")
    if reference is not None:
        param = next((p for p in reference.parameters() if p.dtype.is_floating_point), None)
        if param is not None and param.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(f"{who}: images are {x.dtype} but the model's weights are {param.dtype}; "
                             f"convert one of them (e.g. images.to({param.dtype}))")
    if training and x.shape[0] < 2:
        raise ValueError(f"{who}: a training batch needs at least 2 images (BatchNorm statistics), got {x.shape[0]}")
    return x


def scalar_parameter(module: nn.Module, name: str, value: float, learnable: bool) -> None:
    """Give ``module`` a scalar ``name``: an ``nn.Parameter`` when ``learnable`` (GeM's p, P-pooling's l
    are learned with the network), else a buffer (fixed, but saved with the state dict and moved with it)."""
    tensor = torch.tensor(float(value))
    if learnable:
        setattr(module, name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)
