"""reidlib.engine: the training loop with hooks, schedule shapes, checkpoints, DDP helpers, run records,
and the trained-model feature extractor. No paper's name appears here: the papers' recipes
(:mod:`reidlib.papers`) call :func:`run_training` with their registered model and criterion.

``run_training(config) -> record`` trains, evaluates and writes a run record;
``FeatureExtractor.from_record(path)`` turns a record back into a model that embeds images;
:class:`Trainer` and :class:`Hook` are what papers extend.
"""
from .checkpoint import CheckpointMismatchError, load_checkpoint, load_model_state, save_checkpoint
from .config import TrainConfig
from .distributed import DistInfo, init_distributed, wrap_model
from .features import FeatureExtractor, extract_features
from .mining import HardTriplets, PoolMiningSampler, RandomTripletSampler, embed_indices, hardest_triplets
from .records import RUN_RECORD_SCHEMA, read_record, read_records, validate_record, write_record
from .run import BaselineCriterion, run_training
from .schedules import SCHEDULES, ExponentialHalving, WarmupMultiStep, build_schedule, register_schedule
from .trainer import Batch, Hook, LambdaHook, Trainer

__all__ = [
    "Batch", "BaselineCriterion", "HardTriplets", "PoolMiningSampler", "RandomTripletSampler", "embed_indices",
    "hardest_triplets", "CheckpointMismatchError", "DistInfo", "ExponentialHalving", "FeatureExtractor",
    "Hook", "LambdaHook", "RUN_RECORD_SCHEMA", "SCHEDULES", "TrainConfig", "Trainer", "WarmupMultiStep",
    "build_schedule", "extract_features", "init_distributed", "load_checkpoint", "load_model_state", "read_record",
    "read_records", "register_schedule", "run_training", "save_checkpoint", "validate_record", "wrap_model",
    "write_record",
]
