"""Benchmark: synthped generation speed, in images per second (target: >= 300 at 128x64).

Generates a dataset per configuration (image size x worker processes) into a temporary folder
and prints images/s end to end, and again with the file writes skipped (drawing and encoding
alone). The reference, measured in the same run on the same disk, is the floor cost of the
output alone: JPEG-encoding a fixed image, PNG-encoding a fixed mask and writing both files,
per image; ``disk/ref`` near 1 means the disk, not the drawing, sets the pace.

    python benchmarks/bench_synthped.py [--train-ids 60 --test-ids 40 --sizes 128x64,256x128 --workers 1,2]

The temporary folder is made under the cache folder (``$REIDLIB_DATA`` or ``~/.cache/reidlib``),
or ``--dir``; a slow file system (small-file creates) shows up in the reference too.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reidlib.data import _synthped_draw as draw  # noqa: E402
from reidlib.data import synthped  # noqa: E402


def count_images(root: Path) -> int:
    c = json.loads((root / "manifest.json").read_text())["counts"]
    return c["train"]["images"] + c["query"]["images"] + c["gallery"]["images"] + c["junk"]["images"]


def reference(folder: Path, n: int, height: int, width: int) -> float:
    """Images/s of encoding + writing a fixed JPEG and PNG per image (no drawing)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    parts = rng.integers(0, 3, (height, width), dtype=np.uint8)
    folder.mkdir()
    t = time.perf_counter()
    for i in range(n):
        synthped._write(folder / f"{i:06d}.jpg", draw.encode_jpeg(rgb, 85))
        synthped._write(folder / f"{i:06d}.parts.png", draw.encode_parts(parts))
    rate = n / (time.perf_counter() - t)
    shutil.rmtree(folder)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-ids", type=int, default=60)
    ap.add_argument("--test-ids", type=int, default=40)
    ap.add_argument("--sizes", default="128x64,256x128")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeats", type=int, default=2, help="best of N runs per configuration")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    base = Path(args.dir) if args.dir else synthped.cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bench-synthped-", dir=base))
    print(f"# synthped generation: {args.train_ids} train + {args.test_ids} test ids, 6 cameras; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; folder {base}")
    print(f"{'size':>8} {'workers':>7} {'images':>7} {'to disk/s':>10} {'in memory/s':>12} {'reference/s':>12} "
          f"{'disk/ref':>9}")
    real_write = synthped._write
    try:
        for size in args.sizes.split(","):
            h, w = (int(x) for x in size.split("x"))
            for workers in (int(x) for x in args.workers.split(",")):
                disk = memory = ref = 0.0
                n = 0
                for r in range(args.repeats):  # interleaved, best of N: the machine is shared and noisy
                    for to_disk in (True, False):
                        root = tmp / f"{size}-{workers}-{r}-{to_disk}"
                        synthped._write = real_write if to_disk else (lambda path, data: None)
                        t = time.perf_counter()
                        synthped.generate(root, num_train_ids=args.train_ids, num_test_ids=args.test_ids,
                                          height=h, width=w, workers=workers, progress=False)
                        rate = (n := count_images(root)) / (time.perf_counter() - t)
                        synthped._write = real_write
                        shutil.rmtree(root)
                        if to_disk:
                            disk = max(disk, rate)
                        else:
                            memory = max(memory, rate)
                    ref = max(ref, reference(tmp / f"ref-{size}-{workers}-{r}", n, h, w))
                print(f"{size:>8} {workers:>7} {n:>7} {disk:>10.0f} {memory:>12.0f} {ref:>12.0f} {disk / ref:>9.2f}",
                      flush=True)
    finally:
        synthped._write = real_write
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# best of {args.repeats}, interleaved. to disk: generate() end to end (images + part masks + tables); "
          f"in memory: the same with the file writes skipped (drawing, camera effects, JPEG/PNG encoding); "
          f"reference: JPEG + PNG encode and write of a fixed image, per image, same disk. "
          f"Load average {os.getloadavg()[0]:.1f} at the end.")


if __name__ == "__main__":
    main()
