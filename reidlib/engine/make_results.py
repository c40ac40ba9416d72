"""``make results``: re-run, with papermill, every training notebook whose records the book reads.

Every run record (``results/<chapter>/<dataset>/<run>.json``) names the notebook that wrote it
and the papermill parameters it got; this script runs each (notebook, parameters) pair again on
the CPU defaults (``device='cpu'``, ``amp=False``, ``resume=False``), which rewrites the record.
Runs whose ``data_root`` is absent on this machine (real datasets) are skipped with a message.

    python -m reidlib.engine.make_results [--results results] [--only GLOB] [--dry-run]
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reidlib.paths import project_root

from .records import read_records

ROOT = project_root() or Path.cwd()
CPU_DEFAULTS = {"device": "cpu", "amp": False, "resume": False}


@dataclass(frozen=True)
class PlannedRun:
    notebook: str
    parameters: dict[str, Any]
    record: str

    @property
    def key(self) -> str:
        return self.notebook + json.dumps(self.parameters, sort_keys=True)


def planned_runs(results: Path) -> list[PlannedRun]:
    """One run per distinct (notebook, parameters) among the records under ``results``."""
    runs: dict[str, PlannedRun] = {}
    for rec in read_records(results):
        if not rec.get("notebook") or rec.get("parameters") is None:
            print(f"skip {rec['path']}: the record names no notebook/parameters to re-run", file=sys.stderr)
            continue
        run = PlannedRun(rec["notebook"], {**rec["parameters"], **CPU_DEFAULTS}, rec["path"])
        runs.setdefault(run.key, run)
    return list(runs.values())


def _missing_data(run: PlannedRun, root: Path) -> str | None:
    data_root = run.parameters.get("data_root")
    if data_root and not (root / data_root).is_dir():
        return f"data_root {data_root!r} not found (relative to {root})"
    return None


def execute(run: PlannedRun, root: Path, log_dir: Path) -> Path:
    """Run ``run.notebook`` with papermill in ``root``; the executed copy goes to ``log_dir``."""
    import papermill as pm

    out = log_dir / (Path(run.record).stem + "." + Path(run.notebook).name)
    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(root / run.notebook), str(out), parameters=run.parameters, cwd=str(root),
                        kernel_name="python3", progress_bar=False, log_output=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=ROOT, help="project root (papermill runs there)")
    ap.add_argument("--results", type=Path, default=Path("results"), help="records folder, relative to --root")
    ap.add_argument("--only", default="*", help="glob on the record path, e.g. 'results/baseline/*'")
    ap.add_argument("--log-dir", type=Path, default=Path("runs/make_results"), help="executed notebooks go here")
    ap.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    runs = [r for r in planned_runs(root / args.results)
            if fnmatch.fnmatch(str(Path(r.record).relative_to(root)), args.only)]
    if not runs:
        print(f"no run records with a notebook under {root / args.results}")
        return 0
    failed = 0
    for i, run in enumerate(runs, 1):
        rel = Path(run.record).relative_to(root)
        why = _missing_data(run, root)
        head = f"[{i}/{len(runs)}] {run.notebook} -> {rel}"
        if why or args.dry_run:
            print(f"{head}: {'skipped, ' + why if why else json.dumps(run.parameters)}")
            continue
        print(head, flush=True)
        t0 = time.perf_counter()
        try:
            execute(run, root, root / args.log_dir)
            print(f"  done in {time.perf_counter() - t0:.0f} s")
        except Exception as e:  # keep going: report every failure at the end
            failed += 1
            print(f"  FAILED: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
