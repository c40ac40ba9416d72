"""Query-to-gallery distance matrices, computed in row chunks into one float32 output.

``distance(qf, gf)`` never holds more than the (Q, G) float32 result plus one chunk of
work space, so a 20,000 x 20,000 matrix (1.6 GB) needs 1.6 GB, not a multiple of it.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = ["distance"]

_CHUNK_BYTES = 64 << 20   # work space per chunk when one is needed


def _as_features(x, name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_items, feature_dim), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty: expected at least one feature vector, got shape {tuple(t.shape)}")
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real features, got dtype {t.dtype}")
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf: expected finite features")
    return t


def distance(qf, gf, metric: Literal["euclidean", "cosine"] = "euclidean", *,
             squared: bool = False, chunk_size: int | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
    """Distances between every query and every gallery feature.

    Args:
        qf: (Q, D) query features, numpy or torch (any device; computed there).
        gf: (G, D) gallery features.
        metric: ``"euclidean"``: ``||q - g||_2`` (the distance, not its square, unless
            ``squared=True``), computed as ``sqrt(max(|q|^2 + |g|^2 - 2 q.g, 0))``: exact up to
            float rounding, which for nearly identical vectors leaves ~sqrt(eps)*|q| rather
            than 0. ``"cosine"``: ``1 - cos(q, g)`` in [0, 2] (vectors of norm below 1e-12
            count as that norm, like ``torch.nn.functional.normalize``).
        squared: return squared Euclidean distances (ignored for cosine).
        chunk_size: query rows per chunk (default: ~64 MB of work space).
        out: optional preallocated C-contiguous float32 (Q, G) array to write into.

    Returns:
        (Q, G) float32 numpy array (``out`` when given).
    """
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    q = _as_features(qf, "qf")
    g = _as_features(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"qf and gf must have the same feature dimension, got {q.shape[1]} and {g.shape[1]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    if g.device != q.device:
        g = g.to(q.device)
    q, g = q.to(dtype), g.to(dtype)
    nq, ng = q.shape[0], g.shape[0]
    if out is None:
        out = np.empty((nq, ng), dtype=np.float32)
    elif (not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (nq, ng)
          or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous float32 array of shape ({nq}, {ng})")
    out_t = torch.from_numpy(out)
    # Write straight into the output when the matmul can (float32 on the CPU); otherwise
    # compute a chunk in q's dtype/device and copy it over.
    direct = dtype == torch.float32 and q.device.type == "cpu"
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_BYTES // (ng * torch.finfo(dtype).bits // 8))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")

    if metric == "cosine":
        qn = q.norm(dim=1).clamp_min(1e-12)
        gn = g.norm(dim=1).clamp_min(1e-12)
    else:
        qn = q.pow(2).sum(1)
        gn = g.pow(2).sum(1)
    gt = g.t()
    for s in range(0, nq, chunk_size):
        e = min(nq, s + chunk_size)
        block = torch.mm(q[s:e], gt, out=out_t[s:e]) if direct else torch.mm(q[s:e], gt)
        if metric == "cosine":
            block.div_(qn[s:e, None]).div_(gn[None, :]).clamp_(-1.0, 1.0).neg_().add_(1.0)
        else:
            block.mul_(-2.0).add_(qn[s:e, None]).add_(gn[None, :]).clamp_min_(0.0)
            if not squared:
                block.sqrt_()
        if not direct:
            out_t[s:e].copy_(block)
    return out
