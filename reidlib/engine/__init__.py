"""reidlib.engine: the training loop with hooks, LR schedules, checkpoints, DDP helpers, run records.

``run_training(config) -> record`` (in :mod:`reidlib.engine.run`) is what the chapters'
training notebooks call; :class:`Trainer` and :class:`Hook` are what later papers extend.
"""
from .checkpoint import CheckpointMismatchError, load_checkpoint, load_model_state, save_checkpoint
from .config import TrainConfig
from .distributed import DistInfo, init_distributed, wrap_model
from .features import extract_features
from .records import RUN_RECORD_SCHEMA, read_record, read_records, validate_record, write_record
from .run import BaselineCriterion, run_training
from .schedules import (ExponentialHalving, WarmupMultiStep, bag_of_tricks, build_schedule, esnet, feature_fusion,
                        reid_done_right)
from .trainer import Batch, Hook, LambdaHook, Trainer

__all__ = [
    "Batch", "BaselineCriterion", "CheckpointMismatchError", "DistInfo", "ExponentialHalving", "Hook", "LambdaHook",
    "RUN_RECORD_SCHEMA", "TrainConfig", "Trainer", "WarmupMultiStep", "bag_of_tricks", "build_schedule", "esnet",
    "extract_features", "feature_fusion", "init_distributed", "load_checkpoint", "load_model_state", "read_record",
    "read_records", "reid_done_right", "run_training", "save_checkpoint", "validate_record", "wrap_model",
    "write_record",
]
