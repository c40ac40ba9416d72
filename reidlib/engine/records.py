"""Run records: one JSON file per training run, ``results/<chapter>/<dataset>/<run>.json``.

A record holds everything the book shows about a run and everything needed to repeat it: the
full config, the notebook and its parameters, per-epoch losses and metrics, the final mAP /
CMC / mINP, efficiency figures, and provenance (reidlib and torch versions, git commit, device,
wall time, date). :data:`RUN_RECORD_SCHEMA` is its JSON Schema; :func:`validate_record` checks a
record against it (``jsonschema``) and raises ``ValueError`` naming the file and the field.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

# 2: config holds model / model_options / criterion / criterion_options (resolved), the record names its
# checkpoint and num_classes. Version-1 records were migrated once (their "migrated" field says how).
SCHEMA_VERSION = 2

_number = {"type": "number"}
_metrics = {
    "type": "object",
    "required": ["mAP", "mINP", "rank1", "rank5", "rank10"],
    "properties": {k: {"type": "number", "minimum": 0, "maximum": 1}
                   for k in ("mAP", "mINP", "rank1", "rank5", "rank10")},
}

RUN_RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "reidlib run record",
    "type": "object",
    "required": ["schema_version", "chapter", "dataset", "run_name", "config", "epochs", "final",
                 "efficiency", "reidlib_version", "torch_version", "git_commit", "device", "device_name",
                 "wall_time_s", "date"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "chapter": {"type": "string", "minLength": 1},
        "dataset": {"type": "string", "minLength": 1},
        "run_name": {"type": "string", "minLength": 1},
        "config": {"type": "object",
                   "required": ["model", "model_options", "criterion", "criterion_options", "eval_metric"],
                   "properties": {"model": {"type": "string", "minLength": 1},
                                  "model_options": {"type": "object"},
                                  "criterion": {"type": "string", "minLength": 1},
                                  "criterion_options": {"type": "object"},
                                  "eval_metric": {"enum": ["euclidean", "cosine"]}}},
        "variant": {"type": ["string", "null"]},
        "num_classes": {"type": "integer", "minimum": 1},
        "checkpoint": {"type": ["string", "null"]},
        "migrated": {"type": "string"},
        "notebook": {"type": ["string", "null"]},
        "parameters": {"type": ["object", "null"]},
        "dataset_summary": {"type": "object"},
        "epochs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["epoch", "lr", "losses", "time_s", "steps"],
                "properties": {
                    "epoch": {"type": "integer", "minimum": 1},
                    "lr": _number,
                    "losses": {"type": "object", "additionalProperties": _number},
                    "time_s": {"type": "number", "minimum": 0},
                    "steps": {"type": "integer", "minimum": 0},
                    "metrics": _metrics,
                },
            },
        },
        "final": {
            "allOf": [_metrics, {"type": "object", "required": ["cmc", "num_valid_queries"],
                                 "properties": {"cmc": {"type": "array", "items": _number},
                                                "num_valid_queries": {"type": "integer", "minimum": 0}}}],
        },
        "efficiency": {"type": "object"},
        "reidlib_version": {"type": "string"},
        "torch_version": {"type": "string"},
        "git_commit": {"type": "string", "minLength": 1},
        "git_dirty": {"type": ["boolean", "null"]},
        "device": {"type": "string", "enum": ["cpu", "cuda", "mps"]},
        "device_name": {"type": "string"},
        "world_size": {"type": "integer", "minimum": 1},
        "wall_time_s": {"type": "number", "minimum": 0},
        "date": {"type": "string", "format": "date-time"},
        "platform": {"type": "string"},
        "notes": {"type": "string"},
    },
}


def validate_record(record: Mapping[str, Any], *, source: str = "<record>") -> None:
    """Raise ``ValueError`` naming ``source`` and the first failing field when ``record`` does
    not follow :data:`RUN_RECORD_SCHEMA`."""
    import jsonschema

    validator = jsonschema.Draft7Validator(RUN_RECORD_SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "<top level>"
        raise ValueError(f"run record {source} is invalid at {where}: {e.message}"
                         + (f" (+{len(errors) - 1} more errors)" if len(errors) > 1 else ""))


def git_commit(root: str | os.PathLike | None = None) -> str:
    """``git rev-parse HEAD`` of the repository containing ``root`` (default: this package), or
    ``'unknown'`` outside a git repository or without git."""
    cwd = Path(root) if root is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def git_dirty(root: str | os.PathLike | None = None) -> bool | None:
    """Whether the working tree differs from its commit (changed or new files; ``None`` outside git):
    a record from a dirty tree ran code its commit does not hold exactly."""
    cwd = Path(root) if root is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "status", "--porcelain"], cwd=cwd,
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def device_name(device: str | torch.device) -> str:
    """A human-readable name: the GPU's name on CUDA, the CPU model (and core count) on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"


def now_iso() -> str:
    """The current UTC time, ISO 8601 with offset."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def provenance(device: str | torch.device) -> dict[str, Any]:
    """The provenance fields of a record that depend only on the machine and the code."""
    import reidlib

    device = torch.device(device)
    return {
        "reidlib_version": reidlib.__version__,
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "device": device.type,
        "device_name": device_name(device),
        "date": now_iso(),
        "platform": platform.platform(),
    }


def record_path(output_dir: str | os.PathLike, chapter: str, dataset: str, run_name: str) -> Path:
    """``<output_dir>/<chapter>/<dataset>/<run_name>.json``."""
    return Path(output_dir) / chapter / dataset / f"{run_name}.json"


def _plain(obj: Any) -> Any:
    """JSON-ready copy: tensors and numpy scalars to numbers, paths to strings, tuples to lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    if hasattr(obj, "tolist"):  # numpy array
        return obj.tolist()
    return obj


def write_record(record: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Validate ``record`` and write it as indented JSON, atomically (temp file + ``os.replace``)."""
    path = Path(path)
    data = _plain(record)
    validate_record(data, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a record."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"run record {path} is not valid JSON: {e}") from e
    validate_record(record, source=str(path))
    return record


def read_records(root: str | os.PathLike, pattern: str = "**/*.json") -> list[dict[str, Any]]:
    """Every record under ``root`` (validated), each with its ``path`` added, sorted by path."""
    out = []
    for p in sorted(Path(root).glob(pattern)):
        rec = read_record(p)
        rec["path"] = str(p)
        out.append(rec)
    return out


__all__ = ["RUN_RECORD_SCHEMA", "SCHEMA_VERSION", "validate_record", "write_record", "read_record", "read_records",
           "git_commit", "git_dirty", "device_name", "provenance", "record_path", "now_iso"]
