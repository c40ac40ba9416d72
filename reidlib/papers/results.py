"""What every results page does with run records: records -> table, the paper's row beside ours,
and the paper's claims judged on our runs.

Pages call these with their own columns; nothing here knows a paper. Conventions: metrics in
percent (``mAP``, ``rank-1``, ``mINP``), one row per run, a ``variant`` column (the paper's row),
a ``protocol`` column (backbone, image size, epochs, metric: rows of different protocols are not
averaged together), and ``seed``.

A claim "A beats B" is judged as the book's honesty rules say (DESIGN.md): with at least
``min_seeds`` seeds of each, by the 95% interval of the difference of the means over seeds
(Welch's t): **held** when the interval lies above 0, **did not hold** when below, **undecided**
otherwise; with fewer seeds, **undecided** whatever the means say. One seed never decides a claim.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["load_records", "runs_table", "provenance_table", "paper_beside_ours", "judge_claims",
           "COMPARE_COLUMNS", "PROVENANCE_COLUMNS", "MIN_SEEDS"]

MIN_SEEDS = 3
COMPARE_COLUMNS = ("variant", "protocol", "seed", "mAP", "rank-1")
PROVENANCE_COLUMNS = ("run", "device", "device name", "train time (min)", "date", "commit")


def load_records(chapter: str, results: str | Path | None = None) -> list[dict[str, Any]]:
    """Every run record of ``chapter`` (``<results>/<chapter>/**/*.json``; default: the project's
    ``results/``), each with its ``path``; ``[]`` where there is none."""
    from reidlib.engine.records import read_records
    from reidlib.paths import results_dir

    root = Path(results) if results is not None else results_dir()
    folder = root / chapter
    return read_records(folder) if folder.is_dir() else []


def protocol_of(record: Mapping[str, Any]) -> str:
    """``"resnet18 64x32 32 ep cosine"``: what must match for two runs to be averaged together."""
    c = record["config"]
    return f"{c['backbone']} {c['height']}x{c['width']} {c['epochs']} ep {c['eval_metric']}"


def runs_table(records: Iterable[Mapping[str, Any]],
               extra: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """One row per record: the columns a reader compares (:data:`COMPARE_COLUMNS`, plus ``mINP`` and what
    ``extra(record)`` adds) and provenance (:data:`PROVENANCE_COLUMNS`)."""
    rows = []
    for r in records:
        c, f = r["config"], r["final"]
        row = {"variant": r.get("variant") or c.get("variant") or c["model"], "protocol": protocol_of(r),
               "seed": c["seed"], "mAP": 100 * f["mAP"], "rank-1": 100 * f["rank1"], "mINP": 100 * f["mINP"]}
        row.update(extra(r) if extra else {})
        row.update({"run": r["run_name"], "dataset": r["dataset"], "device": r["device"],  # dataset: for filters
                    "device name": r["device_name"], "train time (min)": r.get("train_time_s", np.nan) / 60,
                    "date": r["date"][:10], "commit": r["git_commit"][:10]})
        rows.append(row)
    cols = [*COMPARE_COLUMNS, "mINP", "dataset", *PROVENANCE_COLUMNS]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)


def provenance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Where each run came from: run (its name holds the variant and protocol), device, time, date, commit
    (the second, collapsed table)."""
    return runs[[c for c in PROVENANCE_COLUMNS if c in runs]]


def _seed_values(runs: pd.DataFrame, variant: str | Sequence[str] | None, metric: str) -> np.ndarray:
    if variant is None or runs.empty:
        return np.array([])
    names = [variant] if isinstance(variant, str) else list(variant)
    return runs.loc[runs.variant.isin(names), metric].to_numpy(dtype=float)


def paper_beside_ours(rows: Mapping[str, str | Sequence[str] | None], paper: pd.DataFrame, paper_column: str,
                      runs: pd.DataFrame, *, base: str, paper_base: float, metric: str = "mAP") -> pd.DataFrame:
    """For each paper row (``{paper row: our variant(s) or None}``): the paper's number and its
    difference to its Base, our mean over seeds, our difference to our Base, and the seed count."""
    base_ours = _seed_values(runs, base, metric).mean() if len(_seed_values(runs, base, metric)) else np.nan
    out = []
    for method, variant in rows.items():
        vals = _seed_values(runs, variant, metric)
        mean = vals.mean() if len(vals) else np.nan
        shown = variant if isinstance(variant, str) or variant is None else variant[0]
        out.append({"paper row": method, "variant": shown or "(not run)",
                    f"paper {metric}": paper.loc[method, paper_column],
                    "paper Δ vs Base": paper.loc[method, paper_column] - paper_base,
                    f"ours {metric}": mean, "ours Δ vs Base": mean - base_ours, "seeds": len(vals)})
    return pd.DataFrame(out).set_index("paper row")


def difference_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean(a) - mean(b), low, high)``: Welch's t interval of the difference of two means over seeds
    (NaN bounds with fewer than 2 values on a side)."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a.mean() - b.mean() if len(a) and len(b) else np.nan
    if len(a) < 2 or len(b) < 2:
        return diff, np.nan, np.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stats.t.ppf(0.5 + level / 2, dof) * se
    return diff, diff - half, diff + half


def judge_claims(claims: Sequence[tuple[str, str | Sequence[str], str | Sequence[str]]], runs: pd.DataFrame, *,
                 metric: str = "mAP", min_seeds: int = MIN_SEEDS) -> pd.DataFrame:
    """Each ``(claim, A, B)`` ("A beats B") judged on ``runs``: means, difference, its 95% interval,
    seeds, and the verdict (held / did not hold / undecided / no run); see the module docstring."""
    rows = []
    for claim, a, b in claims:
        va, vb = _seed_values(runs, a, metric), _seed_values(runs, b, metric)
        diff, low, high = difference_interval(va, vb)
        if not (len(va) and len(vb)):
            verdict = "no run"
        elif min(len(va), len(vb)) < min_seeds:
            verdict = f"undecided (< {min_seeds} seeds)"
        elif low > 0:
            verdict = "held"
        elif high < 0:
            verdict = "did not hold"
        else:
            verdict = "undecided"
        rows.append({"claim": claim, f"{metric} A": va.mean() if len(va) else np.nan,
                     f"{metric} B": vb.mean() if len(vb) else np.nan, "difference": diff,
                     "95% low": low, "95% high": high, "seeds": f"{len(va)} / {len(vb)}", "verdict": verdict})
    return pd.DataFrame(rows).set_index("claim")
