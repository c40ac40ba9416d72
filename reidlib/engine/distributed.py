"""Distributed data parallel helpers: the same :class:`~reidlib.engine.trainer.Trainer` runs
under ``torchrun`` with DistributedDataParallel (gloo on the CPU, NCCL on CUDA).

Under ``torchrun --nproc_per_node N`` each process reads ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` from its environment; :func:`init_distributed` joins the process group,
:func:`wrap_model` wraps the model (optionally converting BatchNorm to SyncBatchNorm, which
torch supports on CUDA only), and the sampler gives each rank its share of every global
batch (``PKSampler(..., rank=, world_size=)``). Rank 0 evaluates, logs and writes checkpoints.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, its ``local_rank`` and ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else the CPU; ``'cuda'`` without a GPU is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA GPU (parameter 'device'); use 'cpu' or 'auto'")
    return device


def init_distributed(device: str | torch.device = "auto", backend: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, or return a
    single-process :class:`DistInfo` when ``WORLD_SIZE`` is unset or 1.

    The backend defaults to NCCL on CUDA and gloo on the CPU; each CUDA process uses GPU
    ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device)
    if world_size <= 1:
        return DistInfo(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, device, backend)


def wrap_model(model: nn.Module, info: DistInfo, *, sync_bn: bool = False) -> nn.Module:
    """Move ``model`` to ``info.device`` and, when distributed, wrap it in DDP (BatchNorm
    converted to SyncBatchNorm first when ``sync_bn``; torch implements SyncBN on CUDA only)."""
    model = model.to(info.device)
    if not info.distributed:
        return model
    if sync_bn:
        if info.device.type != "cuda":
            raise ValueError("sync_bn=True needs CUDA: torch's SyncBatchNorm does not run on the CPU "
                             "(parameter 'sync_bn'); use sync_bn=False or a model without BatchNorm")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all processes (a copy; the tensor itself when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (call at the end of a ``torchrun`` script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for ``MASTER_PORT`` in tests and local runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


__all__ = ["DistInfo", "init_distributed", "wrap_model", "all_reduce_mean", "barrier", "cleanup", "free_port",
           "resolve_device"]
