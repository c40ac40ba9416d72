"""Test-time features: the model's descriptor of each image, averaged with that of its mirror,
and :class:`FeatureExtractor`, a trained run's model turned into an embedding function.

Flip augmentation (used by ES-Net, Sec. IV-A, and the strong baseline's code): the feature
of an image is ``(f(x) + f(flip(x))) / 2``, with ``flip`` the horizontal mirror.

    fx = FeatureExtractor.from_record("results/baseline/synthped/resnet18_64x32_e32_s0.json")
    gallery = fx(sorted(Path("my_gallery").glob("*.jpg")))     # (N, D)
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

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
        loader: yields ``(images (B, 3, H, W), pids (B,), camids (B,), ...)``; ``images`` may be a list of
            ``(3, H_i, W_i)`` tensors of different sizes (:func:`reidlib.data.collate_images`), for a model
            that takes such a list.
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
            nb = device.type == "cuda"
            if isinstance(images, (list, tuple)):  # variable-size images: the model forwards them one by one
                images = [im.to(device, non_blocking=nb) for im in images]
                mirrored = [torch.flip(im, dims=[2]) for im in images] if flip else None
            else:
                images = images.to(device, non_blocking=nb)
                if channels_last and nb:
                    images = images.contiguous(memory_format=torch.channels_last)
                mirrored = torch.flip(images, dims=[3]) if flip else None
            with autocast:
                f = model(images).float()
                if flip:
                    f = (f + model(mirrored).float()) / 2
            feats.append(f.cpu())
            pids.append(torch.as_tensor(pid))
            camids.append(torch.as_tensor(camid))
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("extract_features: the loader yielded no images")
    return torch.cat(feats), torch.cat(pids).long(), torch.cat(camids).long()


class _Images(torch.utils.data.Dataset):
    """Image paths or PIL images -> ``(image (3, H, W), 0, 0)`` through ``transform``."""

    def __init__(self, items: Sequence[Any], transform: Callable) -> None:
        self.items, self.transform = list(items), transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        from PIL import Image

        from reidlib.data.image_dataset import UnreadableImageError, read_image

        item = self.items[i]
        if isinstance(item, (str, os.PathLike)):
            path = Path(item)
            if not path.exists():
                raise FileNotFoundError(f"FeatureExtractor: image {path} does not exist (item {i})")
            try:
                item = read_image(path)  # the loader of the run's own evaluation (ImageDataset)
            except UnreadableImageError as e:
                raise ValueError(f"FeatureExtractor: cannot read image {path} (item {i}): {e}") from e
        elif isinstance(item, Image.Image):
            item = item.convert("RGB")
        else:
            raise TypeError(f"FeatureExtractor: item {i} is a {type(item).__name__}; expected an image path or a "
                            "PIL image (or pass one (N, 3, H, W) tensor)")
        return self.transform(item), 0, 0


class FeatureExtractor:
    """A trained model as an embedding function: images -> ``(N, D)`` descriptors, with the run's own
    test transform (resize to the run's ``height x width``, ImageNet normalisation) and flip averaging.

    ``extractor(images)`` takes image paths, PIL images, or an already normalised ``(N, 3, H, W)``
    tensor, batched by ``batch_size`` with a progress bar. Build one from a run record with
    :meth:`from_record` (the record names its config and checkpoint), or directly from a model.
    """

    def __init__(self, model: nn.Module, transform: Callable, *, flip: bool = True, device: str | torch.device = "cpu",
                 batch_size: int = 64, progress: bool = True, source: str = "") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.transform, self.flip, self.batch_size, self.progress = transform, flip, int(batch_size), progress
        self.source = source

    @classmethod
    def from_record(cls, record: str | os.PathLike | Mapping[str, Any], *, checkpoint: str | os.PathLike | None = None,
                    device: str | torch.device = "cpu", batch_size: int = 64, progress: bool = True
                    ) -> FeatureExtractor:
        """Rebuild the model of a run record (``config["model"]`` with its resolved ``model_options``,
        ``num_classes``), load its checkpoint (``weights_only=True``; ``checkpoint`` overrides the
        record's) and use the run's test transform and ``flip_test``.

        A missing checkpoint, or one whose weights do not fit the rebuilt model, is an error naming
        the path and the model expected.
        """
        from .build import build_run_model, build_run_transforms
        from .checkpoint import load_checkpoint, load_model_state
        from .config import TrainConfig
        from .records import read_record

        rec_path = None
        if not isinstance(record, Mapping):
            rec_path = Path(record)
            record = read_record(rec_path)
        where = str(rec_path or record.get("path") or "<record>")
        if "num_classes" not in record or "model" not in record.get("config", {}):
            raise ValueError(f"run record {where} has no num_classes / config['model'] (schema "
                             f"{record.get('schema_version')}): it predates FeatureExtractor; re-run its notebook")
        # the run is over: its schedule and data root are history, not something to validate again
        values = {k: v for k, v in record["config"].items() if k != "data_root"}
        cfg = TrainConfig.from_dict({**values, "milestones_past_end": True})
        ckpt = _resolve_checkpoint(checkpoint or record.get("checkpoint"), rec_path, where)
        model = build_run_model(cfg, int(record["num_classes"]), pretrained=False)
        state = load_checkpoint(ckpt)
        expected = f"{cfg.model!r} ({type(model).__name__}, backbone {cfg.backbone}, {record['num_classes']} classes)"
        if "model" not in state:
            raise ValueError(f"checkpoint {ckpt} holds no 'model' weights; expected those of {expected}")
        load_model_state(model, state["model"], source=f"{ckpt} (expected model {expected})")
        _, test_tf = build_run_transforms(cfg)
        return cls(model, test_tf, flip=cfg.flip_test, device=device, batch_size=batch_size, progress=progress,
                   source=str(ckpt))

    @torch.no_grad()
    def __call__(self, images: Sequence[Any] | torch.Tensor) -> torch.Tensor:
        """``(N, D)`` float32 descriptors on the CPU of ``images`` (paths, PIL images or ``(N, 3, H, W)``)."""
        if isinstance(images, torch.Tensor):
            if images.dim() != 4 or images.shape[1] != 3:
                raise ValueError(f"FeatureExtractor: a tensor input must be (N, 3, H, W) normalised images, "
                                 f"got shape {tuple(images.shape)}")
            data: torch.utils.data.Dataset = torch.utils.data.TensorDataset(
                images, torch.zeros(len(images)), torch.zeros(len(images)))
        else:
            if isinstance(images, (str, os.PathLike)):
                raise TypeError("FeatureExtractor: pass a list of image paths, not one path")
            data = _Images(images, self.transform)
        if len(data) == 0:
            raise ValueError("FeatureExtractor: no images given")
        loader = torch.utils.data.DataLoader(data, batch_size=self.batch_size, shuffle=False)
        feats, _, _ = extract_features(self.model, loader, device=self.device, flip=self.flip,
                                       progress=self.progress, desc="embedding")
        return feats

    def __repr__(self) -> str:
        return f"FeatureExtractor({type(self.model).__name__}, flip={self.flip}, device={self.device}, {self.source})"


def _resolve_checkpoint(path: str | os.PathLike | None, record_path: Path | None, where: str) -> Path:
    """A record's checkpoint reference: absolute, or relative to the project root, the record's
    folder or the working directory (first that exists)."""
    from reidlib.paths import project_root

    if not path:
        raise FileNotFoundError(f"run record {where} names no checkpoint (it ran without checkpoint_dir?)")
    p = Path(path).expanduser()
    candidates = [p] if p.is_absolute() else [
        *([project_root() / p] if project_root() is not None else []),
        *([record_path.parent / p] if record_path is not None else []), Path.cwd() / p]
    for c in candidates:
        if c.exists():  # a folder too: load_checkpoint says it is one and what file it expects
            return c
    raise FileNotFoundError(f"checkpoint of run record {where} not found: {path} (looked at "
                            f"{', '.join(str(c) for c in candidates)}); pass checkpoint=... if you moved it")


__all__ = ["extract_features", "FeatureExtractor"]
