"""The training configuration: one dataclass, validated on creation.

Every field is a plain value (str, int, float, bool, None, tuple/dict of those), so a config
round-trips through JSON (run records) and papermill parameters. A wrong value raises
``ValueError`` naming the parameter, the value and what was expected.
"""
from __future__ import annotations

import ast
import dataclasses
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPTIMIZERS = ("adam", "adamw", "sgd")
DEVICES = ("auto", "cpu", "cuda")
EVAL_METRICS = ("euclidean", "cosine")
BOOL_FIELDS = ("pretrained", "amp", "channels_last", "sync_bn", "flip_test", "flip_train", "resume", "progress",
               "milestones_past_end")


def parse_bool(name: str, value: Any) -> bool:
    """``True``/``False``, or the text ``"true"``/``"false"`` (any case) that ``papermill -r`` or a
    quoted YAML value gives; anything else is a ``ValueError`` naming the parameter (a non-empty
    string such as ``"False"`` must never count as true: ``resume="False"`` would resume)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"parameter {name!r} must be True or False (or the text 'true'/'false'), got {value!r}")


# fields of the first release that moved into model_options / criterion_options: (where, new name)
LEGACY_FIELDS = {
    "pooling": ("model_options", "pooling"),
    "label_smoothing": ("criterion_options", "label_smoothing"),
    "triplet_margin": ("criterion_options", "margin"),
    "triplet_metric": ("criterion_options", "metric"),
    "id_loss_weight": ("criterion_options", "id_weight"),
    "triplet_loss_weight": ("criterion_options", "triplet_weight"),
}
SYNTHPED_PRESETS = ("tiny", "default", "large")


def canonical_dataset(name: str) -> str:
    """The registered name of dataset ``name`` (aliases and case allowed), or ``ValueError``
    listing the known datasets."""
    from reidlib.data import datasets

    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset must be a dataset name (str), got {name!r}; known: {sorted(datasets.DATASETS)}")
    try:
        return datasets.DATASETS.canonical(name)
    except ValueError:
        raise ValueError(f"unknown dataset {name!r} (parameter 'dataset'); expected one of "
                         f"{sorted(datasets.DATASETS)}") from None


def parse_int_list(name: str, text: str) -> list[int]:
    """``"[40, 70]"`` or ``"40,70"`` -> ``[40, 70]``, else a ValueError naming the parameter."""
    try:
        value = ast.literal_eval(text.strip()) if text.strip().startswith(("[", "(")) else \
            [int(v) for v in text.split(",") if v.strip()]
        return [int(v) for v in value]
    except (ValueError, SyntaxError, TypeError) as e:
        raise ValueError(f"{name} must be a list of epochs such as [40, 70], got {text!r}") from e


@dataclass
class TrainConfig:
    """Everything a training run depends on. Defaults: the strong baseline (Luo et al. 2019)
    at CPU scale -- ResNet-18, 128x64 images, 16x4 batches, Adam 3.5e-4 with warm-up.

    The network is ``model`` (a name of ``reidlib.models.MODELS``) with ``model_options``; the
    losses are ``criterion`` (``reidlib.losses.CRITERIA``) with ``criterion_options``. The run
    record stores the *resolved* options of what was trained (every field, defaults included).
    ``variant`` is a paper's ablation row (set by its recipe in ``reidlib.papers``), recorded.
    """

    # data
    dataset: str = "synthped"
    data_root: str | None = None           # None with synthped: synthped.ensure(synthped_preset)
    synthped_preset: str = "default"
    dataset_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"split": "labeled"}
    height: int = 128
    width: int = 64
    random_erasing: float = 0.5
    random_polygon_erasing: float = 0.0    # HENet's RPE (reidlib.data.RandomPolygonErasing), after random erasing
    polygon_options: dict[str, Any] = field(default_factory=dict)  # its n, sl, sh, r, fill
    padding: int | None = None             # pad + random crop; None: BoT's 10 px at width 128, scaled
    flip_train: bool = True
    P: int = 16
    K: int = 4
    num_workers: int = 1                   # measured fastest here (benchmarks/bench_workers.py)
    # model
    model: str = "baseline"
    model_options: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None
    backbone: str = "resnet18"
    pretrained: bool = False
    weights_path: str | None = None
    last_stride: int = 1
    # losses
    criterion: str = "reid"
    criterion_options: dict[str, Any] = field(default_factory=dict)
    # optimisation
    epochs: int = 30
    optimizer: str = "adam"
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    momentum: float = 0.9
    schedule: str = "warmup_multistep"
    schedule_options: dict[str, Any] = field(default_factory=dict)  # override the fields below, or a preset's
    warmup_epochs: int = 10
    warmup_start_factor: float = 0.1
    milestones: tuple[int, ...] = (20, 25)
    milestones_past_end: bool = False      # allow milestones >= epochs (a rate that never drops): only if asked
    gamma: float = 0.1
    accum_steps: int = 1
    max_steps_per_epoch: int | None = None   # cap batches per epoch (tiny smoke runs)
    # hardware
    device: str = "auto"
    amp: bool = True                       # CUDA only; ignored (recorded as False) on the CPU
    channels_last: bool = True             # CUDA only
    sync_bn: bool = False
    num_threads: int | None = None         # torch.set_num_threads on the CPU
    seed: int = 0
    # evaluation
    eval_every: int = 10
    eval_metric: str = "cosine"            # one metric per chapter, recorded (BoT and ES-Net: cosine)
    flip_test: bool = True
    test_batch_size: int = 128
    # output
    chapter: str = "baseline"
    output_dir: str = "results"
    run_name: str | None = None
    checkpoint_dir: str | None = None      # None: runs/<chapter>/<dataset>/<run_name>
    checkpoint_every_steps: int = 0        # 0: at the end of every epoch only
    resume: bool = False
    log_every: int = 20
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.milestones, str):  # papermill's `-p milestones "[40, 70]"` passes a string
            self.milestones = parse_int_list("milestones", self.milestones)
        self.milestones = tuple(self.milestones)
        for name in ("dataset_options", "model_options", "criterion_options", "schedule_options"):
            value = getattr(self, name)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ValueError(f"{name} must be a dict of options, got {value!r}")
            setattr(self, name, dict(value))
        if "variant" in self.dataset_options:  # the first release's name of the CUHK03 split
            warnings.warn("dataset_options['variant'] is now dataset_options['split']", DeprecationWarning,
                          stacklevel=3)
            self.dataset_options["split"] = self.dataset_options.pop("variant")
        for name in BOOL_FIELDS:
            setattr(self, name, parse_bool(name, getattr(self, name)))
        if self.padding is None and isinstance(self.width, int) and not isinstance(self.width, bool):
            self.padding = round(10 * self.width / 128)
        self.validate()

    # ---- validation ----
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first wrong parameter."""
        self.dataset = canonical_dataset(self.dataset)
        if self.data_root is None:
            if self.dataset != "synthped":
                raise ValueError(f"data_root is required for dataset {self.dataset!r} (parameter 'data_root' "
                                 "is None): point it at the folder that holds the dataset's own top folders")
        else:
            root = Path(os.fspath(self.data_root)).expanduser()
            if not root.is_dir():
                raise ValueError(f"data_root {str(self.data_root)!r} does not exist or is not a folder "
                                 f"(parameter 'data_root', dataset {self.dataset!r})")
            self.data_root = str(self.data_root)
        _choice("synthped_preset", self.synthped_preset, SYNTHPED_PRESETS)
        for name in ("epochs", "height", "width", "P", "K", "accum_steps", "test_batch_size", "log_every"):
            _int_at_least(name, getattr(self, name), 1)
        for name in ("num_workers", "eval_every", "checkpoint_every_steps", "warmup_epochs", "seed", "padding"):
            _int_at_least(name, getattr(self, name), 0)
        if self.K < 2:
            raise ValueError(f"K must be >= 2 (parameter 'K' = {self.K}): batch-hard triplet needs a positive per anchor")
        if self.max_steps_per_epoch is not None:
            _int_at_least("max_steps_per_epoch", self.max_steps_per_epoch, 1)
        if self.num_threads is not None:
            _int_at_least("num_threads", self.num_threads, 1)
        for name in ("lr", "gamma"):
            _positive(name, getattr(self, name))
        for name in ("weight_decay", "momentum", "warmup_start_factor"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        for name in ("random_erasing", "random_polygon_erasing"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} is a probability in [0, 1], got {value!r}")
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        from reidlib.losses import CRITERIA
        from reidlib.models import MODELS

        from .schedules import SCHEDULES

        _registered("schedule", self.schedule, SCHEDULES)
        _registered("model", self.model, MODELS)
        _registered("criterion", self.criterion, CRITERIA)
        _choice("device", self.device, DEVICES)
        _choice("eval_metric", self.eval_metric, EVAL_METRICS)
        if self.variant is not None and (not isinstance(self.variant, str) or not self.variant):
            raise ValueError(f"variant must be None or a paper's row name (str), got {self.variant!r}")
        _choice("last_stride", self.last_stride, (1, 2))
        if list(self.milestones) != sorted(self.milestones) or any(m < 0 for m in self.milestones):
            raise ValueError(f"milestones must be increasing epochs >= 0, got {self.milestones!r}")
        late = [m for m in self.milestones if m >= self.epochs]
        if (late and self.schedule == "warmup_multistep" and "milestones" not in self.schedule_options
                and not self.milestones_past_end):
            raise ValueError(f"milestones {list(self.milestones)} include {late}, at or past the last epoch "
                             f"(epochs={self.epochs}): the rate would never drop there; give milestones < epochs, "
                             "or milestones_past_end=True if that is meant")
        from reidlib.models.backbones import BACKBONES

        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES.names()} (parameter 'backbone'), got {self.backbone!r}")
        triplet = self.criterion_options.get("triplet_weight", 1.0)
        if self.P < 2 and triplet:
            raise ValueError(f"P must be >= 2 (parameter 'P' = {self.P}): the batch-hard triplet loss needs another "
                             "identity in the batch for its negatives")
        _check_options("dataset_options", self.dataset_options, datasets_parser(self.dataset))
        _check_options("model_options", self.model_options, MODELS.get(self.model),
                       skip=("backbone", "last_stride", "pretrained", "weights_path"))
        if self.weights_path is not None and not Path(self.weights_path).is_file():
            raise ValueError(f"weights_path {self.weights_path!r} is not a file (parameter 'weights_path')")
        for name in ("chapter", "output_dir"):
            if not isinstance(getattr(self, name), (str, os.PathLike)) or not str(getattr(self, name)):
                raise ValueError(f"{name} must be a non-empty path or name, got {getattr(self, name)!r}")
        self.output_dir = str(self.output_dir)
        if self.run_name is not None and (not self.run_name or "/" in self.run_name):
            raise ValueError(f"run_name must be a non-empty file name without '/', got {self.run_name!r}")

    # ---- derived values ----
    @property
    def name(self) -> str:
        """``run_name``, or one made of the backbone, image size, epochs and seed."""
        return self.run_name or f"{self.backbone}_{self.height}x{self.width}_e{self.epochs}_s{self.seed}"

    @property
    def dataset_key(self) -> str:
        """The results folder name: the dataset, plus its split where it has one (``cuhk03_np_labeled``)."""
        split = self.dataset_options.get("split")
        return f"{self.dataset}_{split}" if split else self.dataset

    def resolved_checkpoint_dir(self) -> Path:
        return Path(self.checkpoint_dir) if self.checkpoint_dir else Path("runs") / self.chapter / self.dataset_key / self.name

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """A config from ``values``; an unknown key is a ``ValueError`` naming it. The first release's
        loss and pooling fields (``label_smoothing``, ``triplet_margin``, ``pooling``, ...) are moved
        into ``criterion_options`` / ``model_options`` with a ``DeprecationWarning``."""
        values = dict(values)
        for old, (where, new) in LEGACY_FIELDS.items():
            if old in values:
                warnings.warn(f"TrainConfig field {old!r} is now {where}[{new!r}]", DeprecationWarning, stacklevel=2)
                values[where] = {new: values.pop(old), **(values.get(where) or {})}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> TrainConfig:
        """Deprecated (one release): a notebook's parameters now go to its paper's recipe,
        ``reidlib.papers.<paper>.train(**parameters)``, which builds the config. The old notebook
        parameter ``variant`` (the CUHK03 split) becomes ``dataset_options["split"]`` here."""
        warnings.warn("TrainConfig.from_parameters is deprecated: use reidlib.papers.<paper>.config(**parameters)",
                      DeprecationWarning, stacklevel=2)
        values = dict(parameters)
        split = values.pop("variant", None)
        if split is not None:
            values["dataset_options"] = {**values.get("dataset_options", {}), "split": split}
        return cls.from_dict(values)


def _choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def datasets_parser(name: str) -> Any:
    from reidlib.data import datasets

    return datasets.DATASETS.get(name)


def _check_options(name: str, options: Mapping[str, Any], fn: Any, skip: tuple[str, ...] = ()) -> None:
    """Unknown keys of ``options`` for ``fn`` (its keyword parameters after the first), named with the known
    ones; a function taking ``**kwargs`` is checked when it is built (``run_training`` builds the model first)."""
    from reidlib.registry import keyword_options

    options_of = keyword_options(fn)
    if options_of is None:
        return
    known = [p for p in options_of if p not in skip]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown {name} key(s) {unknown} for {getattr(fn, '__name__', fn)!r}; known: {known}")


def _registered(name: str, value: Any, reg: Any) -> None:
    if value not in reg:
        raise ValueError(f"{name} must be one of {reg.names()} (parameter {name!r}), got {value!r}"
                         + (f"; {reg.hint}" if reg.hint else ""))


def _int_at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")


__all__ = ["TrainConfig", "canonical_dataset", "OPTIMIZERS", "DEVICES", "EVAL_METRICS", "LEGACY_FIELDS"]
