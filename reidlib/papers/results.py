"""What every results page does with run records: records -> table, the paper's row beside ours,
and the paper's claims judged on our runs.

Pages call these with their own columns; nothing here knows a paper. Conventions: metrics in
percent (``mAP``, ``rank-1``, ``mINP``), one row per run, a ``variant`` column (the paper's row),
a ``protocol`` column (backbone, image size, epochs, metric: rows of different protocols are not
averaged together), and ``seed``.

A claim "A beats B" is judged as the book's honesty rules say (DESIGN.md): with at least
``min_seeds`` seeds of each, by two 95% intervals of the difference, and both must agree:

* over seeds: Welch's t interval of the difference of the means over seeds (training noise);
* over queries: the paired bootstrap over queries (:func:`reidlib.eval.paired_bootstrap_difference`)
  of the per-query AP (or rank-1 hit), each run's values averaged over its seeds first (the test set
  is a sample of queries too). Records written before per-query values were kept have none: their
  claims are judged over seeds only, and the table says so.

**held** when every interval lies above 0, **did not hold** when every one lies below, **undecided**
otherwise; with fewer seeds, **undecided** whatever the means say. One seed never decides a claim.
Tables also carry ``mAP (hard)``: the mAP over the queries of synthped's hard groups (identities that
share every coarse attribute), where a record has it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["load_records", "runs_table", "with_evaluations", "evaluation_rows", "summary", "provenance_table",
           "paper_beside_ours", "judge_claims", "paper_cell", "CLAIM_FORMAT", "COMPARE_COLUMNS", "PROVENANCE_COLUMNS",
           "QUERY_COLUMNS", "MIN_SEEDS"]

MIN_SEEDS = 3
COMPARE_COLUMNS = ("variant", "protocol", "seed", "mAP", "rank-1")
PROVENANCE_COLUMNS = ("run", "device", "device name", "train time (min)", "date", "commit")
#: Columns of :func:`runs_table` holding a run's per-query values (percent arrays; ``None`` in old records).
QUERY_COLUMNS = {"mAP": "per-query AP", "rank-1": "per-query rank-1"}


def load_records(chapter: str, results: str | Path | None = None) -> list[dict[str, Any]]:
    """Every run record of ``chapter`` (``<results>/<chapter>/**/*.json``; default: the project's
    ``results/``), each with its ``path``; ``[]`` where there is none."""
    from reidlib.engine.records import read_records
    from reidlib.paths import results_dir

    root = Path(results) if results is not None else results_dir()
    folder = root / chapter
    return read_records(folder) if folder.is_dir() else []


def protocol_of(record: Mapping[str, Any]) -> str:
    """``"resnet18 64x32 32 ep cosine"``, ``"efficientnet_lite0-imagenet 128x64 6 ep cosine, triplet cosine
    m0.1"``: what must match for two runs to be averaged together: backbone and its start, image size,
    epochs, ranking metric, and the triplet's form where it is not the paper's (Euclidean, margin 0.3), named
    by every run of that regime, with or without the triplet, so that its rows compare among themselves."""
    from ._recipe import imagenet_start

    c = record["config"]
    o = c.get("criterion_options", {})
    weights = "-imagenet" if imagenet_start(c) else ""
    # the paper's triplet (baseline.PAPER_TRIPLET, not imported: baseline reads this module); a record
    # without the keys predates them and trained it
    form = (o.get("metric", "euclidean"), float(o.get("margin", 0.3)))
    triplet = "" if form == ("euclidean", 0.3) else f", triplet {form[0]} m{form[1]:g}"
    return f"{c['backbone']}{weights} {c['height']}x{c['width']} {c['epochs']} ep {c['eval_metric']}{triplet}"


def runs_table(records: Iterable[Mapping[str, Any]],
               extra: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """One row per record: the columns a reader compares (:data:`COMPARE_COLUMNS`, plus ``mINP`` and what
    ``extra(record)`` adds) and provenance (:data:`PROVENANCE_COLUMNS`)."""
    rows = []
    for r in records:
        c, f = r["config"], r["final"]
        row = {"variant": r.get("variant") or c.get("variant") or c["model"], "protocol": protocol_of(r),
               "seed": c["seed"], "mAP": 100 * f["mAP"], "rank-1": 100 * f["rank1"], "mINP": 100 * f["mINP"],
               "mAP (hard)": 100 * f["mAP_hard"] if "mAP_hard" in f else np.nan}
        pq = f.get("per_query")
        row[QUERY_COLUMNS["mAP"]] = 100 * np.asarray(pq["AP"], float) if pq else None
        row[QUERY_COLUMNS["rank-1"]] = 100 * np.asarray(pq["rank1"], float) if pq else None
        row.update(extra(r) if extra else {})
        row.update({"run": r["run_name"], "dataset": r["dataset"], "device": r["device"],  # dataset: for filters
                    "device name": r["device_name"], "train time (min)": r.get("train_time_s", np.nan) / 60,
                    "date": r["date"][:10], "commit": r["git_commit"][:10]})
        rows.append(row)
    cols = [*COMPARE_COLUMNS, "mINP", "mAP (hard)", *QUERY_COLUMNS.values(), "dataset", *PROVENANCE_COLUMNS]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)


def with_evaluations(records: Iterable[Mapping[str, Any]], *, keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Each record, followed by one view of it per extra evaluation in its ``final`` (a dict with a ``mAP``:
    ``reranked``, ``misaligned@<p>``, ``occluded@<eraser><a>``, ``cross_domain``...; only ``keys`` where given):
    the record with ``final`` replaced by that evaluation and ``variant`` by ``<variant>:<name>``, the name
    ``→<dataset>`` for ``cross_domain``, so that :func:`runs_table` gives each a row and the claims compare
    them like any row."""
    out: list[dict[str, Any]] = []
    for r in records:
        out.append(dict(r))
        for key, metrics in r["final"].items():
            if isinstance(metrics, Mapping) and "mAP" in metrics and (keys is None or key in keys):
                name = f"→{metrics['dataset']}" if key == "cross_domain" else key
                out.append({**r, "variant": f"{r.get('variant')}:{name}", "final": dict(metrics)})
    return out


def evaluation_rows(runs: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """The rows of :func:`with_evaluations` runs (``variant`` ``<row>`` or ``<row>:<evaluation>``) that belong to a
    run with at least one evaluation named ``<prefix>...`` (``misaligned@``, ``occluded@``): the run's own row
    and those evaluations' rows, with ``row`` the variant without its suffix and ``evaluation`` the name after
    ``prefix`` (``""`` for the run's own row)."""
    names = runs.variant.str.split(":", n=1)
    extra = names.str[1].fillna("")
    tested = set(runs.run[extra.str.startswith(prefix)])
    keep = runs.run.isin(tested) & ((extra == "") | extra.str.startswith(prefix))
    return runs[keep].assign(row=names.str[0][keep], evaluation=extra[keep].str[len(prefix):])


def summary(frame: pd.DataFrame, by: Sequence[str],
            metrics: Sequence[str] = ("mAP", "rank-1", "mAP (hard)"), level: float = 0.95) -> pd.DataFrame:
    """Mean over seeds and its ``level`` t-interval (``<metric> ±``, the half-width) of each metric, per group of
    ``by`` (columns of ``frame``), with the group's number of runs (``seeds``)."""
    from scipy import stats

    rows = []
    for key, g in frame.groupby(list(by), sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for m in metrics:
            v = g[m].dropna().to_numpy(float)
            half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
            row[m] = v.mean() if len(v) else np.nan
            row[f"{m} ±"] = half
        row["seeds"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows).set_index(list(by))


def provenance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Where each run came from: run (its name holds the variant and protocol), device, time, date, commit
    (the second, collapsed table)."""
    return runs[[c for c in PROVENANCE_COLUMNS if c in runs]]


def _variant_rows(runs: pd.DataFrame, variant: str | Sequence[str]) -> pd.DataFrame:
    """The runs of ``variant`` (one name, or several that count as the same row)."""
    names = [variant] if isinstance(variant, str) else list(variant)
    return runs[runs.variant.isin(names)]


def _seed_values(runs: pd.DataFrame, variant: str | Sequence[str] | None, metric: str) -> np.ndarray:
    if variant is None or runs.empty:
        return np.array([])
    return _variant_rows(runs, variant)[metric].to_numpy(dtype=float)


def paper_beside_ours(rows: Mapping[str, str | Sequence[str] | None], paper: pd.DataFrame, paper_column: str,
                      runs: pd.DataFrame, *, base: str, paper_base: float, metric: str = "mAP") -> pd.DataFrame:
    """For each paper row (``{paper row: our variant(s) or None}``): the paper's number and its
    difference to its Base, our mean over seeds, our difference to our Base, our mean over the hard-group
    queries (``<metric> (hard)``, NaN where the records have none), and the seed count."""
    base_ours = _seed_values(runs, base, metric).mean() if len(_seed_values(runs, base, metric)) else np.nan
    out = []
    for method, variant in rows.items():
        vals = _seed_values(runs, variant, metric)
        mean = vals.mean() if len(vals) else np.nan
        shown = variant if isinstance(variant, str) or variant is None else variant[0]
        out.append({"paper row": method, "variant": shown or "(not run)",
                    f"paper {metric}": paper.loc[method, paper_column],
                    "paper Δ vs Base": paper.loc[method, paper_column] - paper_base,
                    f"ours {metric}": mean, "ours Δ vs Base": mean - base_ours,
                    f"ours {metric} (hard)": _seed_values(runs, variant, f"{metric} (hard)").mean()
                    if f"{metric} (hard)" in runs and len(vals) else np.nan, "seeds": len(vals)})
    return pd.DataFrame(out).set_index("paper row")


def paper_cell(frame: pd.DataFrame, column: str, table: str = "the table", **where: Any) -> float:
    """The one cell of ``column`` in the row of a paper's typed ``frame`` that matches ``where``
    (column=value); a ``LookupError`` naming ``table`` when no row or several rows match."""
    mask = np.ones(len(frame), bool)
    for k, v in where.items():
        mask &= (frame[k] == v).to_numpy()
    if mask.sum() != 1:
        raise LookupError(f"{table}: {where} matches {int(mask.sum())} rows, expected 1")
    return float(frame.loc[mask, column].iloc[0])


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


def _query_values(runs: pd.DataFrame, variant: str | Sequence[str] | None, metric: str) -> np.ndarray | None:
    """The per-query values of ``variant``'s runs averaged over its seeds, or ``None`` where a run lacks them."""
    column = QUERY_COLUMNS.get(metric)
    if variant is None or runs.empty or column not in runs:
        return None
    values = _variant_rows(runs, variant)[column].tolist()
    if not values or any(v is None or (np.ndim(v) == 0) for v in values) or len({len(v) for v in values}) != 1:
        return None
    return np.mean(np.stack(values), axis=0)


#: ``Styler.format`` of a :func:`judge_claims` table.
CLAIM_FORMAT = {"mAP A": "{:.1f}", "mAP B": "{:.1f}", "rank-1 A": "{:.1f}", "rank-1 B": "{:.1f}",
                "difference": "{:+.1f}", "95% low": "{:+.1f}", "95% high": "{:+.1f}",
                "queries 95% low": "{:+.1f}", "queries 95% high": "{:+.1f}"}


def judge_claims(claims: Sequence[tuple[str, str | Sequence[str], str | Sequence[str]]], runs: pd.DataFrame, *,
                 metric: str = "mAP", min_seeds: int = MIN_SEEDS, by: str | None = None) -> pd.DataFrame:
    """Each ``(claim, A, B)`` ("A beats B") judged on ``runs``: means, difference, its 95% intervals over
    seeds and over queries, seeds, and the verdict (held / did not hold / undecided / no run); see the
    module docstring. ``by`` (e.g. ``"dataset"``): judge every claim within each value of that column
    (runs of different datasets never share a claim), indexed by ``(value, claim)``."""
    if by is not None:
        parts = {value: judge_claims(claims, group, metric=metric, min_seeds=min_seeds)
                 for value, group in runs.groupby(by, sort=False)}
        return pd.concat(parts, names=[by]) if parts else judge_claims(claims, runs, metric=metric, min_seeds=min_seeds)
    from reidlib.eval import paired_bootstrap_difference

    rows = []
    for claim, a, b in claims:
        va, vb = _seed_values(runs, a, metric), _seed_values(runs, b, metric)
        diff, low, high = difference_interval(va, vb)
        qa, qb = _query_values(runs, a, metric), _query_values(runs, b, metric)
        paired = qa is not None and qb is not None and len(qa) == len(qb)
        q_low, q_high = paired_bootstrap_difference(qa, qb)[1:] if paired else (np.nan, np.nan)
        lows, highs = [low, q_low] if paired else [low], [high, q_high] if paired else [high]
        if not (len(va) and len(vb)):
            verdict = "no run"
        elif min(len(va), len(vb)) < min_seeds:
            verdict = f"undecided (< {min_seeds} seeds)"
        elif min(lows) > 0:
            verdict = "held"
        elif max(highs) < 0:
            verdict = "did not hold"
        else:
            verdict = "undecided"
        if verdict in ("held", "did not hold", "undecided") and not paired:
            verdict += " (seeds only)"
        rows.append({"claim": claim, f"{metric} A": va.mean() if len(va) else np.nan,
                     f"{metric} B": vb.mean() if len(vb) else np.nan, "difference": diff,
                     "95% low": low, "95% high": high, "queries 95% low": q_low, "queries 95% high": q_high,
                     "seeds": f"{len(va)} / {len(vb)}", "verdict": verdict})
    return pd.DataFrame(rows).set_index("claim")
