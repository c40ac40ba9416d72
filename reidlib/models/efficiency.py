"""Efficiency figures of a model: feature dimension, parameters, size, FLOPs, throughput.

* ``feature_dim``: size of the per-image output of ``model.eval()(x)`` (the test descriptor).
* ``params``: number of parameter elements (trainable or not).
* ``size_mb``: bytes of parameters and buffers over ``2**20`` (MB = MiB, as HENet's Table 1 and
  the hashing paper's storage figures count).
* ``flops``: floating-point operations of one image's eval forward, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts 2; only matmuls and
  convolutions are counted). Papers that quote "FLOPs" for ResNet-50 (4.1 G at 224x224) mean
  multiply-adds, i.e. ``flops / 2`` here.
* ``images_per_s``: eval forwards under :func:`torch.inference_mode` at the given batch, after
  warm-up, timed with a wall clock (CUDA synchronised).
"""
from __future__ import annotations

import copy
import time

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["efficiency", "count_flops", "count_params", "model_size_mb", "images_per_second"]


def count_params(model: nn.Module) -> int:
    """Number of parameter elements of ``model``."""
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Bytes of parameters and buffers, in MB = 2**20 bytes."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def _first_tensor(out: object) -> Tensor:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], Tensor):
        return out[0]
    raise TypeError(f"efficiency: the model's eval output must be a tensor (the descriptor), got {type(out).__name__}")


def count_flops(model: nn.Module, x: Tensor) -> int:
    """FLOPs of ``model(x)`` (in its current mode) with torch's flop counter."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())


def images_per_second(model: nn.Module, x: Tensor, *, warmup: int = 2, iters: int = 5) -> float:
    """Images per second of ``model(x)`` under inference mode, after ``warmup`` untimed forwards."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            model(x)
        sync()
        elapsed = time.perf_counter() - start
    return x.shape[0] * iters / elapsed


def _model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def efficiency(
    model: nn.Module,
    height: int,
    width: int,
    *,
    batch: int = 32,
    device: str | torch.device | None = None,
    warmup: int = 2,
    iters: int = 5,
    channels: int = 3,
) -> dict[str, float | int | str]:
    """Efficiency figures of ``model`` on images ``(batch, channels, height, width)``.

    ``device=None`` measures where the model is; another device measures a copy moved there
    (the model itself is not moved). The model's train/eval mode is restored afterwards.

    Returns ``dict(feature_dim, params, size_mb, flops, images_per_s, batch, height, width, device)``;
    ``flops`` is per image (see the module docstring).
    """
    for name, value in (("height", height), ("width", width), ("batch", batch), ("iters", iters), ("channels", channels)):
        if int(value) < 1:
            raise ValueError(f"efficiency: {name} must be >= 1, got {value!r}")
    if int(warmup) < 0:
        raise ValueError(f"efficiency: warmup must be >= 0, got {warmup!r}")
    device = _model_device(model) if device is None else torch.device(device)
    modes = [(m, m.training) for m in model.modules()]  # restored one by one (frozen parts may be in eval)
    measured = model if _model_device(model) == device else copy.deepcopy(model).to(device)
    measured.eval()
    try:
        dtype = next((p.dtype for p in measured.parameters() if p.is_floating_point()), torch.float32)
        one = torch.randn(1, channels, height, width, device=device, dtype=dtype)
        with torch.inference_mode():
            feature_dim = _first_tensor(measured(one))[0].numel()
        flops = count_flops(measured, one)
        x = torch.randn(batch, channels, height, width, device=device, dtype=dtype)
        ips = images_per_second(measured, x, warmup=warmup, iters=iters)
    finally:
        for module, training in modes:
            module.training = training
    return {
        "feature_dim": int(feature_dim),
        "params": count_params(model),
        "size_mb": model_size_mb(model),
        "flops": flops,
        "images_per_s": ips,
        "batch": int(batch),
        "height": int(height),
        "width": int(width),
        "device": str(device),
    }
