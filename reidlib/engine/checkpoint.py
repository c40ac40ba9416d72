"""Checkpoints: written atomically, loaded with ``weights_only=True``, checked against the model.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts -- nothing that needs
unpickling of arbitrary classes -- so ``torch.load(..., weights_only=True)`` reads it, and a
pickle that would run code is refused (with an error naming the file) instead of executed.
Every bad input says what was expected: a folder where a file was expected names the file
(``<dir>/last.pt``), an empty file says it is empty, a whole training checkpoint passed where
a model's state dict was expected says to pass ``state["model"]``.
"""
from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reidlib.models.backbones import explain_torch_load_error

# The file Trainer writes in its checkpoint_dir (see Trainer.checkpoint_path); named in errors.
LAST_CHECKPOINT = "last.pt"


class CheckpointMismatchError(ValueError):
    """A checkpoint's weights do not fit the model (another architecture or number of classes)."""


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, flushed and
    fsynced, then ``os.replace`` -- a reader (or a run killed mid-write) sees the old file or the
    new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Returns:
        the saved dict (a trainer checkpoint: ``format``, ``model``, ``optimizer``, ...).

    Raises:
        IsADirectoryError: ``path`` is a folder (the message names the file expected in it,
            ``<path>/last.pt``, and the ``*.pt`` files it holds).
        FileNotFoundError: no such file.
        ValueError: the file is empty (0 bytes), cannot be read with ``weights_only=True``
            (refused objects that could run code, corrupt, not a torch file), or holds no dict.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.pt"))
        holds = (f"; it holds {', '.join(found[:5])}" + (f" (+{len(found) - 5} more)" if len(found) > 5 else "")
                 if found else "; it holds no *.pt file")
        raise IsADirectoryError(f"checkpoint path {path} is a folder: expected a checkpoint file, e.g. "
                                f"{path / LAST_CHECKPOINT} (the file Trainer writes in checkpoint_dir){holds}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (expected a file written by save_checkpoint, "
                                f"e.g. <checkpoint_dir>/{LAST_CHECKPOINT})")
    if path.stat().st_size == 0:
        # torch.load raises EOFError('') here: an error with an empty reason
        raise ValueError(f"cannot read checkpoint {path}: the file is empty (0 bytes); expected a checkpoint "
                         "written by save_checkpoint (was the run killed while copying it, or the disk full?)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt file, or objects weights_only refuses
        raise ValueError(f"cannot read checkpoint {path}: {explain_torch_load_error(e)}") from e
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}: expected a dict as written by "
                         "save_checkpoint (e.g. Trainer.state_dict())")
    return state


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel wrappers."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def _strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def state_dict_differences(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> dict[str, list]:
    """Keys missing from ``found``, keys ``found`` has in excess, and keys whose shapes differ
    (``(key, expected_shape, found_shape)``)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [(k, tuple(expected[k].shape), tuple(found[k].shape)) for k in expected
              if k in found and tuple(expected[k].shape) != tuple(found[k].shape)]
    return {"missing": missing, "unexpected": unexpected, "shape": shapes}


def _describe(diff: dict[str, list], limit: int = 8) -> str:
    parts = []
    for name, items in (("missing keys", diff["missing"]), ("unexpected keys", diff["unexpected"])):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{name}: {', '.join(items[:limit])}{more}")
    if diff["shape"]:
        shown = "; ".join(f"{k}: model {e} vs checkpoint {f}" for k, e, f in diff["shape"][:limit])
        more = f" (+{len(diff['shape']) - limit} more)" if len(diff["shape"]) > limit else ""
        parts.append(f"shape mismatches: {shown}{more}")
    return "\n  ".join(parts)


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str | os.PathLike = "<state>") -> None:
    """Load ``state`` (a model's state dict: parameter name -> tensor) into ``model`` (unwrapping DDP
    on both sides), or raise :class:`CheckpointMismatchError` naming ``source`` and every differing
    key and shape.

    A whole training checkpoint (``{"format", "model", "optimizer", ...}`` from
    ``Trainer.state_dict()`` / :func:`load_checkpoint`) is not a state dict: it is refused with a
    :class:`CheckpointMismatchError` that says to pass ``state["model"]``. A ``state`` that is not
    a mapping raises TypeError.
    """
    target = unwrap_model(model)
    if not isinstance(state, Mapping):
        raise TypeError(f"load_model_state: state (from {source}) must be a state dict (a mapping of parameter "
                        f"names to tensors), got {type(state).__name__}")
    if isinstance(state.get("model"), Mapping):
        # a state dict's values are tensors: a mapping under "model" is a checkpoint's model weights
        raise CheckpointMismatchError(
            f"{source}: this is a training checkpoint (keys {', '.join(sorted(map(str, state))[:8])}), not a state "
            f"dict of {type(target).__name__}: pass state['model'] to load_model_state")
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CheckpointMismatchError(
            f"{source} is not a state dict of {type(target).__name__}: entries {', '.join(not_tensors[:8])} "
            "are not tensors (expected a mapping of parameter names to tensors, e.g. checkpoint['model'])")
    state = _strip_prefix(state)
    diff = state_dict_differences(target.state_dict(), state)
    if any(diff.values()):
        raise CheckpointMismatchError(
            f"checkpoint {source} does not fit the model {type(target).__name__} "
            f"(another architecture or number of classes?):\n  {_describe(diff)}")
    target.load_state_dict(state, strict=True)


# ---- RNG states as plain data (weights_only-loadable) ----

def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA where present) generator states as tensors and lists."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
                         "has_gauss": npst["has_gauss"], "gauss": npst["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


__all__ = ["CheckpointMismatchError", "LAST_CHECKPOINT", "save_checkpoint", "load_checkpoint", "load_model_state",
           "state_dict_differences", "unwrap_model", "rng_state", "set_rng_state"]
