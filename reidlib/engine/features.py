"""Test-time features: the model's descriptor of each image, averaged with that of its mirror.

Flip augmentation (used by ES-Net, Sec. IV-A, and the strong baseline's code): the feature
of an image is ``(f(x) + f(flip(x))) / 2``, with ``flip`` the horizontal mirror.
"""
from __future__ import annotations

import contextlib
from typing import Iterable

import torch
from torch import nn
from tqdm import tqdm


@torch.no_grad()
def extract_features(model: nn.Module, loader: Iterable, *, device: str | torch.device = "cpu", flip: bool = True,
                     amp: bool = False, channels_last: bool = False, progress: bool = True,
                     desc: str = "features") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Descriptors of every image ``loader`` yields.

    Args:
        model: in eval mode maps ``(B, 3, H, W)`` to ``(B, D)`` (put in eval mode here, and restored).
        loader: yields ``(images (B, 3, H, W), pids (B,), camids (B,), ...)``.
        flip: average each descriptor with its horizontal mirror's.
        amp: float16 autocast (CUDA only).

    Returns:
        ``features (N, D)`` float32 on the CPU, ``pids (N,)``, ``camids (N,)`` int64.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    autocast = torch.autocast("cuda", dtype=torch.float16) if amp and device.type == "cuda" else contextlib.nullcontext()
    feats, pids, camids = [], [], []
    try:
        for images, pid, camid, *_ in tqdm(loader, desc=desc, disable=not progress, leave=False, mininterval=1.0):
            images = images.to(device, non_blocking=device.type == "cuda")
            if channels_last and device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast:
                f = model(images).float()
                if flip:
                    f = (f + model(torch.flip(images, dims=[3])).float()) / 2
            feats.append(f.cpu())
            pids.append(torch.as_tensor(pid))
            camids.append(torch.as_tensor(camid))
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("extract_features: the loader yielded no images")
    return torch.cat(feats), torch.cat(pids).long(), torch.cat(camids).long()


__all__ = ["extract_features"]
