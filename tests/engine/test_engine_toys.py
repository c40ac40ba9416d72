"""Tiny stand-ins shared by the engine tests (and the subprocess scripts they start): a
tensor-backed re-ID dataset with random augmentation from all three global RNGs, a tiny
network with BatchNorm and dropout, and a trainer factory. Each runs in milliseconds."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reidlib.engine.trainer import Trainer


class ToyReIDData(torch.utils.data.Dataset):
    """``n_ids * per_id`` random (3, 16, 8) images; items ``(image, pid, camid, index)``.
    Augmentation draws from Python's random (flip), NumPy (brightness) and torch (noise)."""

    def __init__(self, n_ids: int = 8, per_id: int = 4, seed: int = 0, augment: bool = True) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n_ids * per_id, 3, 16, 8, generator=g)
        self.pids = [i // per_id for i in range(n_ids * per_id)]
        self.augment = augment

    def __len__(self) -> int:
        return len(self.pids)

    def __getitem__(self, i: int):
        x = self.x[i]
        if self.augment:
            if random.random() < 0.5:
                x = x.flip(-1)
            x = x + 0.1 * torch.randn_like(x) + float(np.random.rand())
        return x, self.pids[i], i % 2, i


class ToyBatches:
    """Shuffled fixed-size batches, reshuffled per epoch from ``(seed, epoch)``; with
    ``world_size`` > 1 each rank gets its contiguous slice of every global batch."""

    def __init__(self, n: int, batch: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.batch, self.seed, self.rank, self.world_size, self.epoch = n, batch, seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.batch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        local = self.batch // self.world_size
        for b in range(len(self)):
            glob = perm[b * self.batch:(b + 1) * self.batch]
            yield glob[self.rank * local:(self.rank + 1) * local]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]


class ToyNet(nn.Module):
    """conv -> norm -> ReLU -> GAP -> dropout -> linear; train mode returns ``{"logits", "feat"}``,
    eval mode the feature ``(B, 8)``. ``norm='bn'`` has batch-dependent statistics, ``'gn'`` not."""

    def __init__(self, num_classes: int = 8, norm: str = "bn", dropout: float = 0.3) -> None:
        super().__init__()
        layer = nn.BatchNorm2d(8) if norm == "bn" else nn.GroupNorm(2, 8)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), layer, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        f = self.body(x)
        return {"logits": self.fc(self.drop(f)), "feat": f} if self.training else f


def id_loss(outputs, batch):
    return {"id": nn.functional.cross_entropy(outputs["logits"], batch.pids)}


def make_trainer(checkpoint_dir: str | Path | None = None, *, epochs: int = 3, batch: int = 8, norm: str = "bn",
                 dropout: float = 0.3, augment: bool = True, optimizer: str = "adam", rank: int = 0,
                 world_size: int = 1, seed: int = 0, sampler: str = "pk", **kwargs) -> Trainer:
    """A trainer of :class:`ToyNet` on :class:`ToyReIDData`; ``sampler='pk'`` uses the real
    ``PKSampler`` (P = batch / 2, K = 2), ``'toy'`` :class:`ToyBatches` (global batches split by rank)."""
    from reidlib.papers.baseline import bag_of_tricks

    torch.manual_seed(seed)
    data = ToyReIDData(augment=augment)
    model = ToyNet(norm=norm, dropout=dropout)
    if world_size > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = (torch.optim.Adam(model.parameters(), 1e-2, weight_decay=5e-4) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), 0.1))
    if sampler == "pk":
        from reidlib.data.samplers import PKSampler

        batches = PKSampler(data.pids, batch // 2, 2, seed=seed, rank=rank, world_size=world_size)
    else:
        batches = ToyBatches(len(data), batch, seed=seed, rank=rank, world_size=world_size)
    kwargs.setdefault("schedule", bag_of_tricks(1e-2) if optimizer == "adam" else None)
    return Trainer(model, kwargs.pop("criterion", id_loss), opt, data, batches, epochs=epochs,
                   checkpoint_dir=checkpoint_dir, progress=False, seed=seed, **kwargs)


# ---- the toys themselves ----
def test_toy_sampler_slices_the_global_batch():
    whole = list(ToyBatches(32, 8))
    halves = [list(ToyBatches(32, 8, rank=r, world_size=2)) for r in range(2)]
    assert [a + b for a, b in zip(*halves)] == whole
    assert sorted(i for b in whole for i in b) == list(range(32))


def test_toy_augmentation_depends_on_all_three_rngs():
    data = ToyReIDData()
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    a = data[3][0]
    random.seed(0)
    np.random.seed(1)
    torch.manual_seed(0)
    b = data[3][0]
    assert not torch.equal(a, b)
