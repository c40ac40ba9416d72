"""The hashing chapter's search-time measurements: Table 5 (Market-1501+500k) and Table 8 (equal-time AFR)
redone on this machine with random codes, written as a table the book's page reads.

An exact scan costs the same whatever the codes' values, so random codes time it faithfully. The record
(``results/hashing/search_times/<name>.csv``: CSV, not JSON, so that it is not taken for a run record)
holds three tables, told apart by its ``table`` column, each row a per-query time in ms, with the
machine, threads, commit and date on every row:

* ``scale``: one query against the 515,913 codes of Market-1501's gallery plus the 500,000 distractors:
  exact Hamming search at 128 / 512 / 2048 bits, AFR (30 attribute bits + 2048 ID bits) at the paper's
  w values, float 2048-d exact search, and the batch of 3,368 queries at 2048 bits;
* ``afr_curve``: AFR's time as w grows, at both gallery sizes, beside the time of gathering w random
  rows of 2048-bit codes (stage 2's memory access) and of the plain scan;
* ``table8``: at Market's own gallery (N = 15,912, the paper's figure in Sec. 7.5.2) the plain search
  at 128 / 256 / 512 bits, from which :func:`equal_time_windows` reads the w at which AFR takes as
  long, beside the time-budget formula's ideal ``(b - A) N / L``.

    python -m reidlib.papers.hashing_search --out results/hashing/search_times/cpu.csv
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from reidlib.engine.records import provenance
from reidlib.paths import results_dir
from reidlib.retrieval import AFRIndex, HammingIndex, afr_window, median_seconds, random_packed, search_timings

__all__ = ["ATTRIBUTE_BITS", "DISTRACTORS", "ID_BITS", "MARKET_GALLERY", "PAPER_WINDOWS", "afr_breakeven", "equal_time_windows",
           "from_frame", "load_search_records", "measure_search", "scale_beside_paper", "search_frame", "to_frame"]

#: Market-1501's gallery without its junk images (Sec. 7.1.1: 15,913; Sec. 7.5.2's derivation uses 15,912).
MARKET_GALLERY = 15_913
#: The distractors of Market-1501+500k.
DISTRACTORS = 500_000
ATTRIBUTE_BITS = 30
ID_BITS = 2048
#: AFR's w in Tables 5 and 8 (Market-1501: 553 / 1067 / 3105 for Table 8, 1e5 for Table 5) and the ideal 761.
PAPER_WINDOWS = (553, 761, 1067, 3105, 100_000)


def _galleries(n: int, seed: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    codes = {bits: random_packed(n, bits, seed=seed + i) for i, bits in enumerate((128, 256, 512, ID_BITS))}
    return codes, random_packed(n, ATTRIBUTE_BITS, seed=seed + 9)


def _gather_and_scan(codes: np.ndarray, w: int, repeat: int, rng: np.random.Generator) -> tuple[float, float]:
    """ms of gathering w random rows (sorted, as AFR gathers them) and of one exact top-100 scan of them."""
    rows = np.sort(rng.choice(len(codes), w, replace=False))
    out = np.empty((w, codes.shape[1]), np.uint8)
    t_gather = median_seconds(lambda: np.take(codes, rows, axis=0, out=out), repeat=repeat, number=_number(w))
    t_scan = median_seconds(lambda: faiss.knn_hamming(codes[:1], out, min(100, w)), repeat=repeat, number=_number(w))
    return 1e3 * t_gather, 1e3 * t_scan


def _number(w: int) -> int:
    """Calls per timed round: enough that a round lasts well above the timer's resolution."""
    return int(np.clip(2_000_000 // max(w, 1), 1, 200))


def measure_search(*, n_gallery: int = MARKET_GALLERY + DISTRACTORS, market_gallery: int = MARKET_GALLERY - 1,
                   queries: int = 3368, curve: Sequence[int] | None = None, repeat: int = 5, threads: int = 1,
                   seed: int = 0, float_search: bool = True) -> dict[str, Any]:
    """Time the searches (see the module docstring) on ``threads`` faiss threads; returns the record."""
    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(seed)
    tables: dict[str, list[dict[str, Any]]] = {"scale": [], "afr_curve": [], "table8": []}
    codes, attrs = _galleries(n_gallery, seed)
    windows = [w for w in PAPER_WINDOWS if w <= n_gallery]
    big = {b: c for b, c in codes.items() if b != 256}
    for r in search_timings(big, attrs, windows=windows, attribute_bits=ATTRIBUTE_BITS, repeat=repeat):
        tables["scale"].append({"N": n_gallery, **r})
    batch = codes[ID_BITS][rng.integers(0, n_gallery, queries)]
    index = HammingIndex(codes[ID_BITS])
    t = median_seconds(lambda: index.search(batch, 100), repeat=max(1, repeat // 2), warmup=0)
    tables["scale"].append({"N": n_gallery, "method": "exact Hamming, batch", "code": f"{ID_BITS}/binary", "w": None,
                            "queries": queries, "ms_per_query": 1e3 * t / queries})
    if float_search:
        feats = np.where(rng.random((n_gallery, ID_BITS), dtype=np.float32) > 0.5, np.float32(1), np.float32(-1))
        for r in search_timings({}, float_features=feats, repeat=repeat):
            tables["scale"].append({"N": n_gallery, **r})
        del feats
    curve = list(curve) if curve is not None else sorted({int(w) for w in np.geomspace(100, 200_000, 15)})
    for n in (market_gallery, n_gallery):
        sub = {b: c[:n] for b, c in codes.items()}
        afr = AFRIndex(attrs[:n], sub[ID_BITS])
        plain = search_timings({ID_BITS: sub[ID_BITS]}, repeat=repeat, number=_number(n))[0]["ms_per_query"]
        for w in [w for w in curve if w <= n] + ([n] if n not in curve else []):
            t_afr = median_seconds(lambda w=w, afr=afr, q=sub[ID_BITS][:1]: afr.search(attrs[:1], q, w, min(100, w)),
                                   repeat=repeat, number=_number(w))
            gather, scan = _gather_and_scan(sub[ID_BITS], w, repeat, rng)
            tables["afr_curve"].append({"N": n, "w": w, "afr_ms": 1e3 * t_afr, "gather_ms": gather,
                                        "scan_of_candidates_ms": scan, "plain_2048_ms": plain})
        if n == market_gallery:
            for r in search_timings({b: sub[b] for b in (128, 256, 512)}, repeat=repeat, number=_number(n)):
                bits = int(r["code"].split("/")[0])
                tables["table8"].append({"N": n, "bits": bits, "plain_ms": r["ms_per_query"],
                                         "ideal_w": afr_window(bits, ATTRIBUTE_BITS, n, ID_BITS)})
    return {"kind": "search_times", "threads": threads, "n_gallery": n_gallery, "market_gallery": market_gallery,
            **provenance("cpu"), "tables": tables}


def equal_time_windows(record: dict[str, Any]) -> pd.DataFrame:
    """Table 8 redone: for each shorter code b, the w at which AFR (at Market's gallery) takes as long as
    the plain b-bit search, read off the measured AFR curve by linear interpolation in w (NaN when AFR
    is slower at every measured w, or faster at every one), beside the formula's ideal w."""
    curve = pd.DataFrame(record["tables"]["afr_curve"])
    t8 = pd.DataFrame(record["tables"]["table8"])
    curve = curve[curve.N == record["market_gallery"]].sort_values("w")
    rows = []
    for _, r in t8.iterrows():
        w = _crossing(curve.w.to_numpy(float), curve.afr_ms.to_numpy(float), r.plain_ms)
        w = float("nan") if w == 0.0 else w       # slower at every measured w: no equal-time window
        rows.append({"bits": int(r.bits), "plain_ms": r.plain_ms, "ideal_w": r.ideal_w, "equal_time_w": w})
    return pd.DataFrame(rows)


def _crossing(w: np.ndarray, t: np.ndarray, level: float) -> float:
    """The w at which the increasing-in-w time curve ``t`` first rises above ``level`` (linear in w between the
    measured points); NaN if it never does, 0 if it is above at the first point."""
    above = t > level
    if not above.any():
        return float("nan")
    j = int(np.argmax(above))
    if j == 0:
        return 0.0
    return float(w[j - 1] + (level - t[j - 1]) * (w[j] - w[j - 1]) / (t[j] - t[j - 1]))


def afr_breakeven(record: dict[str, Any]) -> pd.DataFrame:
    """Where AFR stops paying on this machine, per gallery size N of the record's AFR curve: the w at which AFR
    becomes slower than the plain 2048-bit search of the same codes (``break-even w``), and the parts of AFR's
    time at the smallest measured w: the whole, the gather and scan of the candidates, and stage 1 (the rest:
    the attribute scan and the selection of w), beside the plain search."""
    curve = search_frame(record, "afr_curve")
    rows = []
    for n, c in curve.groupby("N"):
        c = c.sort_values("w")
        first = c.iloc[0]
        rows.append({"N": int(n), "plain 2048 ms": float(first.plain_2048_ms),
                     "break-even w": _crossing(c.w.to_numpy(float), c.afr_ms.to_numpy(float), first.plain_2048_ms),
                     "smallest w": int(first.w), "AFR ms at smallest w": float(first.afr_ms),
                     "stage 1 ms (AFR - gather - scan)": float(first.afr_ms - first.gather_ms
                                                               - first.scan_of_candidates_ms),
                     "gather ms at w = N": float(c.gather_ms.iloc[-1]),
                     "scan ms at w = N": float(c.scan_of_candidates_ms.iloc[-1])})
    return pd.DataFrame(rows).set_index("N")


def scale_beside_paper(record: dict[str, Any]) -> pd.DataFrame:
    """The record's one-query searches at Market-1501+500k beside the paper's (Tables 5 and 9,
    :func:`reidlib.papers.hashing_tables.search_times`): ms per query here and there, and each as a multiple of
    its own exact 2048-bit Hamming search (the two machines differ; the ratios compare)."""
    from .hashing_tables import search_times

    scale = search_frame(record, "scale")
    ours = scale[scale.queries == 1].set_index(["method", "code", "w"])["ms_per_query"].rename("ms here")
    frame = ours.to_frame().join(search_times()[["paper rows", "paper ms"]], how="outer")
    plain = ("exact Hamming", f"{ID_BITS}/binary", np.nan)
    frame["here / plain 2048"] = frame["ms here"] / frame.loc[plain, "ms here"]
    frame["paper / plain 2048"] = frame["paper ms"] / frame.loc[plain, "paper ms"]
    return frame[["ms here", "here / plain 2048", "paper ms", "paper / plain 2048", "paper rows"]]


def to_frame(record: dict[str, Any]) -> pd.DataFrame:
    """The record as one long table: its rows with a ``table`` column and the provenance on each row."""
    meta = {k: v for k, v in record.items() if k != "tables"}
    return pd.DataFrame([{"table": name, **meta, **row} for name, rows in record["tables"].items() for row in rows])


def from_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """Inverse of :func:`to_frame` (the provenance read from the first row)."""
    tables = {}
    meta_cols = [c for c in ("kind", "threads", "n_gallery", "market_gallery", "reidlib_version", "torch_version",
                             "git_commit", "git_dirty", "device", "device_name", "date", "platform") if c in frame]
    for name, g in frame.groupby("table", sort=False):
        rows = g.drop(columns=["table", *meta_cols]).dropna(axis=1, how="all")
        tables[name] = rows.to_dict("records")
    return {**frame.iloc[0][meta_cols].to_dict(), "tables": tables}


def load_search_records(results: str | Path | None = None) -> list[dict[str, Any]]:
    """Every search-time record under ``<results>/hashing/search_times/`` (default: the project's), each
    with its ``path``; ``[]`` where there is none."""
    root = Path(results) if results is not None else results_dir()
    out = []
    for path in sorted((root / "hashing" / "search_times").glob("*.csv")):
        out.append({**from_frame(pd.read_csv(path)), "path": str(path)})
    return out


def search_frame(record: dict[str, Any], table: str) -> pd.DataFrame:
    """One of the record's tables (``scale``, ``afr_curve``, ``table8``) as a DataFrame."""
    if table not in record["tables"]:
        raise ValueError(f"table must be one of {sorted(record['tables'])}, got {table!r}")
    return pd.DataFrame(record["tables"][table])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the record to write (JSON)")
    ap.add_argument("--n", type=int, default=MARKET_GALLERY + DISTRACTORS, help="gallery size of the scale table")
    ap.add_argument("--queries", type=int, default=3368)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-float", action="store_true", help="skip the float search (4.2 GB at full scale)")
    args = ap.parse_args(argv)
    record = measure_search(n_gallery=args.n, market_gallery=min(MARKET_GALLERY - 1, args.n), queries=args.queries,
                            repeat=args.repeat, threads=args.threads, float_search=not args.no_float)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    to_frame(record).to_csv(args.out, index=False)
    print(pd.DataFrame(record["tables"]["scale"]).to_string(index=False))
    print(equal_time_windows(record).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
