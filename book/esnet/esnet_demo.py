"""A small trained ES-Net for the chapter's pages (page glue, not library code).

``load_demo()`` returns the chapter's trained model when ``make results`` (or ``train.ipynb``) left
a finished run of the variant (its record in ``results/esnet/synthped/`` and its checkpoint under
``runs/``), and otherwise trains a small model on
synthped's ``tiny`` preset with reidlib's Trainer (about a minute on one CPU core) and caches it
under ``$REIDLIB_DATA/esnet-demo`` (default ``~/.cache/reidlib/esnet-demo``), so that later
executions of the pages only load it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from reidlib.data import ImageDataset, ReIDDataset, build_dataset, synthped
from reidlib.data.samplers import PKSampler
from reidlib.data.transforms import build_transforms
from reidlib.engine.checkpoint import load_checkpoint, save_checkpoint
from reidlib.engine.trainer import LambdaHook, Trainer
from reidlib.models.esnet import ESNet, ESNetLoss

ROOT = Path(__file__).resolve().parents[2]
HEIGHT, WIDTH = 128, 64
DEMO_VERSION = 1


@dataclass
class Demo:
    """``model`` (eval mode), the ``dataset`` it was trained on, the test ``transform``, and where
    the weights came from (``source``)."""

    model: ESNet
    dataset: ReIDDataset
    transform: object
    source: str
    variant: str

    def images(self, records) -> torch.Tensor:
        """Normalised test-time images ``(N, 3, 128, 64)`` of some records."""
        ds = ImageDataset(list(records), self.transform)
        return torch.stack([ds[i][0] for i in range(len(ds))])


def _cache_dir() -> Path:
    return Path(os.environ.get("REIDLIB_DATA", "~/.cache/reidlib")).expanduser() / "esnet-demo"


def _chapter_run(variant: str) -> tuple[Path, str] | None:
    """(checkpoint, synthped preset) of the newest finished chapter run of ``variant`` at 128x64 with
    ResNet-18 and no overrides: a run record exists (written after training) and its checkpoint too."""
    from reidlib.engine.records import read_records

    found = []
    root = ROOT / "results" / "esnet"
    for rec in (read_records(root) if root.is_dir() else []):
        p, c = rec.get("parameters") or {}, rec["config"]
        plain = all(p.get(k) is None for k in ("erasing_ratio", "erasing_prob", "saliency_layer", "esb_pooling",
                                               "aib_pooling", "descriptor"))
        if (p.get("variant") == variant and plain and c["dataset"] == "synthped" and c["backbone"] == "resnet18"
                and (c["height"], c["width"]) == (HEIGHT, WIDTH)):
            ckpt = Path(c["checkpoint_dir"] or ROOT / "runs" / "esnet" / rec["dataset"] / rec["run_name"]) / "last.pt"
            ckpt = ckpt if ckpt.is_absolute() else ROOT / ckpt
            if ckpt.is_file():
                found.append((rec["date"], ckpt, c["synthped_preset"]))
    return max(found)[1:] if found else None


def _train(model: ESNet, ds: ReIDDataset, steps: int, seed: int) -> None:
    train_tf = build_transforms(HEIGHT, WIDTH, train=True, random_erasing=model.config.data_random_erasing)
    sampler = PKSampler([r.pid for r in ds.train], 8, 4, seed=seed)
    epochs = -(-steps // len(sampler))
    hook = LambdaHook(on_batch_start=lambda t, b: t.module.set_targets(b.pids))
    criterion = ESNetLoss(ds.num_train_pids, triplet=model.config.triplet)
    Trainer(model, lambda out, batch: criterion(out, batch), torch.optim.Adam(model.parameters(), lr=1e-3,
            weight_decay=5e-4), ImageDataset(ds.train, train_tf), sampler, epochs=epochs, hooks=[hook],
            seed=seed, progress=False).fit()


def load_demo(variant: str = "esnet", *, steps: int = 48, seed: int = 0) -> Demo:
    """The demo model of ``variant`` (trained once, then cached), in eval mode."""
    run = _chapter_run(variant)
    if run is not None:
        ds = build_dataset("synthped", synthped.ensure(run[1]))
        torch.manual_seed(seed)
        model = ESNet(ds.num_train_pids, variant, backbone="resnet18")
        try:
            model.load_state_dict(load_checkpoint(run[0])["model"])
            return Demo(model.eval(), ds, build_transforms(HEIGHT, WIDTH, train=False),
                        f"chapter checkpoint {run[0].relative_to(ROOT)}", variant)
        except (RuntimeError, KeyError):  # an incompatible checkpoint: fall back to the demo model
            pass
    ds = build_dataset("synthped", synthped.ensure("tiny"))
    torch.manual_seed(seed)
    model = ESNet(ds.num_train_pids, variant, backbone="resnet18")
    cached = _cache_dir() / f"{variant}-tiny-s{seed}-{steps}steps-v{DEMO_VERSION}.pt"
    if cached.is_file():
        model.load_state_dict(load_checkpoint(cached)["model"])
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _train(model, ds, steps, seed)
        finally:
            torch.set_num_threads(threads)
        save_checkpoint({"model": model.state_dict()}, cached)
    source = f"{steps} training steps on synthped 'tiny' (cached at {cached.name})"
    return Demo(model.eval(), ds, build_transforms(HEIGHT, WIDTH, train=False), source, variant)
