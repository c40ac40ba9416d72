"""Identity-level attribute labels of Market-1501 and DukeMTMC-reID (Lin et al., "Improving person
re-identification by attribute and identity learning", Pattern Recognition 2019).

The annotation files ``market_attribute.mat`` and ``duke_attribute.mat`` hold one struct per split
(``train``, ``test``) with one ``1 x N`` field per attribute and an ``image_index`` cell of 4-digit
identity strings. Labels are per identity, not per image. The fields come in a different order in
each split, so everything here indexes by field name, never by position.

Codes in the files: binary attributes are ``1`` = no / first value, ``2`` = yes / second value;
Market's ``age`` is ``1..4`` (young, teenager, adult, old).

**Unlabelled entries.** DukeMTMC-attribute's train field ``top`` is ``0`` for ids 0370 and 0679,
a code the annotation does not define. We read ``0`` as *unknown*: it becomes ``<NA>`` in the
tables (pandas nullable ``Int8``), the identity stays in the table, and
:func:`attribute_accuracy` leaves unknown targets out of that attribute's accuracy (its
denominator counts only labelled images). Guessing a value instead would put made-up labels into
training targets and accuracies.

Binary form (:func:`to_binary`): each two-valued field becomes one 0/1 column that is 1 for the
file's code 2, named for what 1 means (``gender`` -> ``female``, ``hair`` -> ``long_hair``, ...);
Market's ``age`` becomes four one-hot columns. Market thus gives the 30 binary attributes of the
hashing paper (Jin et al. 2021, Sec. 5.1: "we formulate the prediction of age as four binary
classification tasks ... Finally, we have 30 binary classifications"); Duke gives 23.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io

from .errors import AttributeFileMismatchError, DatasetLayoutError, DatasetNotFoundError
from .image_record import Record

__all__ = [
    "AGE_COLUMNS",
    "BINARY_NAMES",
    "DUKE_BINARY_COLUMNS",
    "DUKE_FIELDS",
    "FIELDS",
    "MARKET_BINARY_COLUMNS",
    "MARKET_FIELDS",
    "AttributeAccuracy",
    "attach_attributes",
    "attribute_accuracy",
    "majority_accuracy",
    "attributes_for_records",
    "binary_columns",
    "check_identities",
    "load_attribute_file",
    "load_attributes",
    "to_binary",
]

MARKET_UP = ("upblack", "upwhite", "upred", "uppurple", "upyellow", "upgray", "upblue", "upgreen")
MARKET_DOWN = ("downblack", "downwhite", "downpink", "downpurple", "downyellow", "downgray", "downblue",
               "downgreen", "downbrown")
#: Market-1501's 27 attribute fields, in the order of the annotation's README.
MARKET_FIELDS: tuple[str, ...] = ("gender", "hair", "up", "down", "clothes", "hat", "backpack", "bag",
                                  "handbag", "age") + MARKET_UP + MARKET_DOWN
DUKE_UP = ("upblack", "upwhite", "upred", "uppurple", "upgray", "upblue", "upgreen", "upbrown")
DUKE_DOWN = ("downblack", "downwhite", "downred", "downgray", "downblue", "downgreen", "downbrown")
#: DukeMTMC-reID's 23 attribute fields, in the order of the annotation's README.
DUKE_FIELDS: tuple[str, ...] = ("gender", "top", "boots", "hat", "backpack", "bag", "handbag",
                                "shoes") + DUKE_UP + DUKE_DOWN
FIELDS: dict[str, tuple[str, ...]] = {"market": MARKET_FIELDS, "duke": DUKE_FIELDS}
_VARIABLES = {"market_attribute": "market", "duke_attribute": "duke"}

#: Names of the 0/1 columns for the fields whose code 2 is not simply "yes".
BINARY_NAMES: dict[str, dict[str, str]] = {
    "market": {"gender": "female", "hair": "long_hair", "up": "short_sleeve", "down": "short_lower_body",
               "clothes": "pants"},
    "duke": {"gender": "female", "top": "long_top", "shoes": "light_shoes"},
}
#: Market ``age`` codes 1..4 one-hot.
AGE_COLUMNS: tuple[str, ...] = ("age_young", "age_teenager", "age_adult", "age_old")


def binary_columns(dataset: str) -> tuple[str, ...]:
    """The binary column names of ``dataset`` (``"market"``: 30, ``"duke"``: 23), in order."""
    names = BINARY_NAMES[dataset]
    cols: list[str] = []
    for field in FIELDS[dataset]:
        cols.extend(AGE_COLUMNS if field == "age" else [names.get(field, field)])
    return tuple(cols)


MARKET_BINARY_COLUMNS = binary_columns("market")
DUKE_BINARY_COLUMNS = binary_columns("duke")


# --------------------------------------------------------------------------------------------
# Loading


def _infer_dataset(path: Path, mat: Mapping[str, Any], dataset: str | None) -> tuple[str, str]:
    """Return ``(variable name, dataset key)`` of the annotation struct in ``mat``."""
    variables = [k for k in mat if not k.startswith("__")]
    if dataset is not None:
        if dataset not in FIELDS:
            raise ValueError(f"dataset must be one of {sorted(FIELDS)}, got {dataset!r}")
        wanted = f"{dataset}_attribute"
        other = [v for v in variables if v in _VARIABLES and v != wanted]
        if wanted not in mat and other:
            raise DatasetLayoutError(
                f"{path}: holds {other[0]!r} ({_VARIABLES[other[0]]} labels), not {wanted!r}: it is not a "
                f"{dataset} attribute file (dataset={dataset!r} was passed)")
        return (wanted if wanted in mat else variables[0] if len(variables) == 1 else wanted), dataset
    for var in variables:
        if var in _VARIABLES:
            return var, _VARIABLES[var]
    raise DatasetLayoutError(
        f"{path}: no variable 'market_attribute' or 'duke_attribute' (found {variables}); pass dataset='market'|'duke'")


def _split_table(path: Path, dataset: str, split: str, struct: Mapping[str, Any]) -> pd.DataFrame:
    fields = set(struct) - {"image_index"}
    expected = set(FIELDS[dataset])
    if "image_index" not in struct or fields != expected:
        raise DatasetLayoutError(
            f"{path}: split {split!r} has fields {sorted(fields)}; expected image_index plus "
            f"missing={sorted(expected - fields)} unexpected={sorted(fields - expected)}")
    index = np.atleast_1d(np.asarray(struct["image_index"], dtype=str))
    try:
        pids = np.array([int(s) for s in index])
    except ValueError as err:
        raise DatasetLayoutError(f"{path}: split {split!r} image_index holds a non-numeric id ({err})") from None
    if len(np.unique(pids)) != len(pids):
        raise DatasetLayoutError(f"{path}: split {split!r} image_index repeats identities")
    columns = {}
    for field in FIELDS[dataset]:  # by name: the two splits order their fields differently
        values = np.atleast_1d(np.asarray(struct[field])).astype(np.int64).ravel()
        if values.shape != pids.shape:
            raise DatasetLayoutError(f"{path}: split {split!r} field {field!r} has {values.size} entries, "
                                     f"image_index has {pids.size}")
        allowed = {0, 1, 2, 3, 4} if field == "age" else {0, 1, 2}
        if bad := set(np.unique(values).tolist()) - allowed:
            raise DatasetLayoutError(f"{path}: split {split!r} field {field!r} has codes {sorted(bad)}; "
                                     f"expected {sorted(allowed - {0})} (0 = unlabelled)")
        # 0 is no code of the annotation: unknown (see the module docstring).
        columns[field] = pd.array(np.where(values == 0, pd.NA, values), dtype="Int8")
    table = pd.DataFrame(columns, index=pd.Index(pids, name="pid"))
    table.attrs.update(dataset=dataset, split=split, source=str(path))
    return table


def load_attribute_file(path: str | os.PathLike[str], *, dataset: str | None = None) -> dict[str, pd.DataFrame]:
    """Load both splits of an attribute ``.mat`` file.

    Args:
        path: ``market_attribute.mat`` or ``duke_attribute.mat`` (or a file of the same structure).
        dataset: ``"market"`` or ``"duke"``; inferred from the variable name when ``None``.

    Returns:
        ``{"train": table, "test": table}``; each table is indexed by the integer identity
        (``pid``), has one nullable ``Int8`` column per field in :data:`FIELDS` order holding
        the file's codes, ``<NA>`` for unlabelled entries, and ``attrs`` with dataset/split/source.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"attribute file path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    path = Path(path).expanduser()
    if path.is_dir():
        names = sorted(q.name for q in path.glob("*_attribute.mat"))
        found = f" (it holds {', '.join(names)})" if names else ""
        raise DatasetNotFoundError(f"attribute file {path} is a folder{found}; expected the .mat file itself, "
                                   f"e.g. {path / 'market_attribute.mat'}")
    if not path.is_file():
        raise DatasetNotFoundError(f"attribute file {path} does not exist")
    try:
        mat = scipy.io.loadmat(path, simplify_cells=True)
    except Exception as err:  # scipy raises several types for non-MAT content
        raise DatasetLayoutError(f"{path}: not a readable MATLAB file ({err})") from None
    var, dataset = _infer_dataset(path, mat, dataset)
    if var not in mat or not isinstance(mat[var], Mapping):
        raise DatasetLayoutError(f"{path}: expected a struct variable {var!r} with fields train and test")
    tables = {}
    for split in ("train", "test"):
        if not isinstance(mat[var].get(split), Mapping):
            raise DatasetLayoutError(f"{path}: struct {var!r} has no split {split!r} (fields: {list(mat[var])})")
        tables[split] = _split_table(path, dataset, split, mat[var][split])
    return tables


def load_attributes(path: str | os.PathLike[str], split: str = "train", *, dataset: str | None = None) -> pd.DataFrame:
    """One split (``"train"`` or ``"test"``) of :func:`load_attribute_file`."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return load_attribute_file(path, dataset=dataset)[split]


def to_binary(table: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """The binary form of a coded table: Market -> 30 columns (age one-hot), Duke -> 23.

    Columns are :func:`binary_columns` (nullable ``Int8``: 1, 0 or ``<NA>`` where unlabelled).
    """
    dataset = dataset or table.attrs.get("dataset")
    if dataset not in FIELDS:
        raise ValueError(f"cannot tell the dataset of this table; pass dataset='market'|'duke' (got {dataset!r})")
    if missing := set(FIELDS[dataset]) - set(table.columns):
        raise ValueError(f"table lacks the {dataset} fields {sorted(missing)}")
    names = BINARY_NAMES[dataset]
    out: dict[str, pd.Series] = {}
    for field in FIELDS[dataset]:
        codes = table[field].astype("Int8")
        if field == "age":
            for code, col in enumerate(AGE_COLUMNS, 1):
                out[col] = (codes == code).astype("Int8")
        else:
            out[names.get(field, field)] = (codes - 1).astype("Int8")
    binary = pd.DataFrame(out, index=table.index)
    binary.attrs.update(table.attrs, form="binary")
    return binary


# --------------------------------------------------------------------------------------------
# Mapping onto images


def _record_pid(record: Record) -> int:
    # Train records carry the relabelled id; the tables are keyed by the file's id.
    return int(record.extra.get("orig_pid", record.pid))


def _check_table(table: Any, where: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{where}: table must be a pandas DataFrame indexed by pid (one split of "
                        f"load_attribute_file), got {type(table).__name__}")


def _ids(pids: Iterable[int]) -> str:
    return ", ".join(f"{p:04d}" for p in pids)


def check_identities(records: Iterable[Record], table: pd.DataFrame, *, what: str = "",
                     ignore: Iterable[int] = (0, -1)) -> None:
    """Check that every identity of ``records`` (their file ids: ``extra["orig_pid"]`` where
    present) has a row in ``table``; distractors (``0``) and junk (``-1``) are not checked.

    Raises :class:`~reidlib.data.errors.AttributeFileMismatchError` (a ``ValueError``) naming the
    table's file (``table.attrs["source"]``), how many identities are missing and a few of them:
    the usual cause is the attribute file of another dataset (Duke's on Market records, ...) or
    of the other split. ``what`` names the records in the message (e.g. ``"training"``).
    """
    _check_table(table, "check_identities")
    if problem := _identity_problem(records, table, what=what, ignore=ignore):
        source = table.attrs.get("source", "the attribute table")
        raise AttributeFileMismatchError(
            f"{source}: {problem}. Is it the attribute file of another dataset (market_attribute.mat "
            f"belongs to Market-1501, duke_attribute.mat to DukeMTMC-reID)?")


def _identity_problem(records: Iterable[Record], table: pd.DataFrame, *, what: str = "",
                      ignore: Iterable[int] = (0, -1)) -> str | None:
    """What :func:`check_identities` reports (without the file name), or ``None`` when all is well."""
    wanted = {_record_pid(r) for r in records} - {int(i) for i in ignore}
    have = {int(p) for p in table.index}
    missing = sorted(wanted - have)
    if not missing:
        return None
    split = table.attrs.get("split")
    labels = f"{table.attrs['dataset']}-attribute labels" if table.attrs.get("dataset") else "labels"
    span = f" ({min(have):04d}..{max(have):04d})" if have else ""
    kind = f"{what} " if what else ""
    return (f"{len(missing)} of the {len(wanted)} {kind}identities of the dataset are missing from the attribute "
            f"file{f' (its {split!r} split)' if split else ''}, e.g. {_ids(missing[:5])}; the file holds "
            f"{labels} of {len(have)} identities{span}")


def attributes_for_records(records: Sequence[Record], table: pd.DataFrame, *, strict: bool = False) -> pd.DataFrame:
    """One row per record (same order) with the attributes of its identity; ``<NA>`` rows for
    identities the table lacks (distractors, junk). Uses ``extra["orig_pid"]`` where present.

    ``strict``: raise (:func:`check_identities`) when an identity other than 0 / -1 is missing
    instead of giving it an ``<NA>`` row."""
    _check_table(table, "attributes_for_records")
    records = list(records)
    if strict:
        check_identities(records, table)
    pids = pd.Index([_record_pid(r) for r in records], name="pid")
    return table.reindex(pids).reset_index().rename_axis("record")


def attach_attributes(records: Iterable[Record], table: pd.DataFrame, *, strict: bool = False) -> list[Record]:
    """Copies of ``records`` with ``extra["attributes"]`` = the binary attributes of their identity
    (``{column: 0|1|None}``); records whose identity is not in the table are returned unchanged.

    ``strict``: raise (:func:`check_identities`) when an identity other than 0 / -1 is missing
    from the table instead of leaving its records unlabelled."""
    _check_table(table, "attach_attributes")
    records = list(records)
    if strict:
        check_identities(records, table)
    binary = to_binary(table) if "form" not in table.attrs else table
    values = binary.to_numpy(dtype=object, na_value=None)
    rows = {int(pid): {col: (None if v is None else int(v)) for col, v in zip(binary.columns, row)}
            for pid, row in zip(binary.index, values)}
    out = []
    for r in records:
        attrs = rows.get(_record_pid(r))
        out.append(r if attrs is None else Record(r.path, r.pid, r.camid, {**r.extra, "attributes": attrs}))
    return out


# --------------------------------------------------------------------------------------------
# Accuracy


@dataclass(frozen=True)
class AttributeAccuracy:
    """``mean`` accuracy over attributes and the ``per_attribute`` accuracies (a Series)."""

    mean: float
    per_attribute: pd.Series


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    if isinstance(x, (pd.DataFrame, pd.Series)):
        x = x.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(x, dtype=np.float64)


def attribute_accuracy(pred: Any, target: Any, *, threshold: float = 0.5,
                       columns: Sequence[str] | None = None) -> AttributeAccuracy:
    """Attribute recognition accuracy as Lin et al. (2019) define it: for each attribute, the share
    of test images whose predicted label equals the ground truth; then the mean over attributes.

    Args:
        pred: ``(N, A)`` predicted probabilities (thresholded at ``threshold``) or 0/1 labels.
        target: ``(N, A)`` ground-truth 0/1 labels; ``NaN``/``<NA>`` entries (unlabelled) are left
            out of their attribute's accuracy.
        columns: attribute names; taken from ``target`` when it is a DataFrame.

    Returns:
        :class:`AttributeAccuracy`; an attribute with no labelled image gets ``NaN`` and is left
        out of the mean.
    """
    if columns is None and isinstance(target, pd.DataFrame):
        columns = list(target.columns)
    p, t = _as_numpy(pred), _as_numpy(target)
    if p.ndim != 2 or p.shape != t.shape:
        raise ValueError(f"pred and target must both be (N, A); got {p.shape} and {t.shape}")
    if columns is None:
        columns = [f"attr{i}" for i in range(p.shape[1])]
    if len(columns) != p.shape[1]:
        raise ValueError(f"{len(columns)} column names for {p.shape[1]} attributes")
    labelled = ~np.isnan(t)
    if not np.isin(t[labelled], (0.0, 1.0)).all():
        raise ValueError("target must hold 0/1 labels (or NaN for unlabelled)")
    if np.isnan(p).any():
        raise ValueError("pred contains NaN")
    correct = ((p >= threshold) == (t == 1.0)) & labelled
    counts = labelled.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(counts > 0, correct.sum(axis=0) / np.maximum(counts, 1), np.nan)
    per = pd.Series(acc, index=pd.Index(list(columns), name="attribute"), name="accuracy")
    return AttributeAccuracy(float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"), per)


def majority_accuracy(train_target: Any, target: Any, *, columns: Sequence[str] | None = None) -> AttributeAccuracy:
    """The accuracy (:func:`attribute_accuracy`) of the predictor that ignores the image: each attribute's
    majority label among the labelled *training* images (1 on a tie), for every test image. An attribute
    recognition accuracy means something only beside it: on Market's 30 binary attributes most are rare (a
    hat, a backpack of one colour), and predicting "no" everywhere already scores high.

    Args:
        train_target: ``(M, A)`` training labels, 0/1 or NaN (unlabelled).
        target: ``(N, A)`` test labels, as :func:`attribute_accuracy`'s.
        columns: attribute names, as :func:`attribute_accuracy`'s.
    """
    tr, t = _as_numpy(train_target), _as_numpy(target)
    if tr.ndim != 2 or t.ndim != 2 or tr.shape[1] != t.shape[1]:
        raise ValueError(f"train_target and target must be (M, A) and (N, A) with the same A; got {tr.shape} and {t.shape}")
    labelled = (~np.isnan(tr)).sum(axis=0)
    share = np.where(labelled > 0, np.nansum(tr, axis=0) / np.maximum(labelled, 1), np.nan)
    majority = np.where(np.isnan(share), 1.0, (share >= 0.5).astype(float))
    if columns is None and isinstance(target, pd.DataFrame):
        columns = list(target.columns)
    return attribute_accuracy(np.broadcast_to(majority, t.shape), t, columns=columns)
