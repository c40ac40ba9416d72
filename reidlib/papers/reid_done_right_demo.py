"""The demo models of the "Re-ID done right" chapter's saliency page (Almazán et al. 2018, Sec. 4.4, Figs. 1,
4-6): the good-practices model and, for comparison, the strong baseline, each trained briefly on synthped
``tiny`` from the CPU regime's ImageNet EfficientNet-Lite0 at 128x64, cached on disk.

:func:`load_demo` trains the good-practices model through the chapter's own recipe
(:func:`reidlib.papers.reid_done_right.train`: both stages, pool mining, progressive cut-out) at
:data:`DEMO_PARAMETERS`, a shortened CPU scale, writes its record and checkpoint under
``reidlib.paths.cache_dir("reid-done-right-demo")`` and rebuilds the model from them (later calls only load).
:func:`load_baseline_demo` trains the baseline recipe's network (GAP, BNNeck, ID + the CPU protocol's
triplet) for the same number of training images. These are demos, not runs of either paper's schedule:
their maps show what the methods look at, never accuracies.
"""
from __future__ import annotations

from typing import Any

import torch

from reidlib.paths import cache_dir

from ._recipe import Demo, trained_once
from .baseline import CPU_PROTOCOL

__all__ = ["DEMO_PARAMETERS", "DEMO_VERSION", "load_demo", "load_baseline_demo", "attention_on_parts",
           "distractor_records", "distractor_descriptors", "draw_descriptors", "distractor_curve", "weights_fingerprint",
           "measure_distractor_curves", "load_distractor_record", "plot_distractor_curves", "MAX_DISTRACTOR_IMAGES"]

DEMO_VERSION = 1
#: The good-practices demo: synthped 'tiny', 24 classification batches of 32, 48 ranking updates of 8 triplets
#: (3 pools of 120 images, the rate halved every 6 updates), one thread.
DEMO_PARAMETERS = {"synthped_preset": "tiny", "variant": "full", "classification_iterations": 24,
                   "iterations": 48, "half_life": 6, "pool_size": 120, "qe_k": 0, "dba_k": 0, "device": "cpu",
                   "num_threads": 1, "num_workers": 0, "progress": False}
# the baseline demo sees the good-practices demo's training images: 24 x 32 + 48 x 24 = 1,920, 30 batches of 64
_BASELINE_STEPS, _BASELINE_P, _BASELINE_K = 30, 16, 4


def load_demo(*, seed: int = 0) -> Demo:
    """The good-practices model trained at :data:`DEMO_PARAMETERS` (see the module docstring), in eval mode;
    trained once and cached."""
    from reidlib.engine.features import FeatureExtractor

    from . import reid_done_right

    root = cache_dir("reid-done-right-demo")
    name = f"demo-v{DEMO_VERSION}-s{seed}"
    record = root / "results" / reid_done_right.RECIPE.chapter / "synthped" / f"{name}.json"
    if not record.is_file():
        threads = torch.get_num_threads()
        try:
            reid_done_right.train(**DEMO_PARAMETERS, seed=seed, run_name=name, output_dir=str(root / "results"),
                                  checkpoint_dir=str(root / "checkpoints" / name))
        finally:
            torch.set_num_threads(threads)
    fx = FeatureExtractor.from_record(record, progress=False)
    ds = _dataset()
    return Demo(fx.model.eval(), ds, fx.transform, f"the chapter's recipe at DEMO_PARAMETERS (cached at {name})",
                "full")


def _dataset() -> Any:
    from reidlib.data import build_dataset, synthped

    return build_dataset("synthped", synthped.ensure(DEMO_PARAMETERS["synthped_preset"]))


def load_baseline_demo(*, seed: int = 0) -> Demo:
    """The strong baseline (``build_model("baseline", ...)``: GAP, BNNeck; ID loss + the CPU protocol's
    triplet) from the same ImageNet start, trained on as many images as :func:`load_demo`'s model, cached."""
    from reidlib.data import ImageDataset
    from reidlib.data.samplers import PKSampler
    from reidlib.data.transforms import build_transforms
    from reidlib.engine.trainer import Trainer
    from reidlib.losses import build_criterion
    from reidlib.models import build_model, input_normalization

    ds = _dataset()
    mean, std = input_normalization(CPU_PROTOCOL["backbone"])
    test_tf = build_transforms(128, 64, train=False, mean=mean, std=std)
    torch.manual_seed(seed)
    model = build_model("baseline", ds.num_train_pids, backbone=CPU_PROTOCOL["backbone"],
                        pretrained=CPU_PROTOCOL["pretrained"])
    cached = cache_dir("reid-done-right-demo") / f"baseline-v{DEMO_VERSION}-s{seed}.pt"

    def train() -> None:
        sampler = PKSampler([r.pid for r in ds.train], _BASELINE_P, _BASELINE_K, seed=seed)
        per_epoch = min(_BASELINE_STEPS, len(sampler))
        criterion = build_criterion("reid", ds.num_train_pids, margin=CPU_PROTOCOL["margin"],
                                    metric=CPU_PROTOCOL["triplet_metric"])
        train_tf = build_transforms(128, 64, train=True, mean=mean, std=std)
        Trainer(model, criterion, torch.optim.Adam(model.parameters(), lr=CPU_PROTOCOL["lr"], weight_decay=5e-4),
                ImageDataset(ds.train, train_tf), sampler, epochs=-(-_BASELINE_STEPS // per_epoch), seed=seed,
                max_steps_per_epoch=per_epoch, progress=False).fit()

    trained_once(model, cached, train)
    return Demo(model.eval(), ds, test_tf, f"{_BASELINE_STEPS} batches of 64 on synthped 'tiny' (cached at {cached.name})",
                "baseline")


def attention_on_parts(demo: Demo, records: Any, *, top: int = 50) -> Any:
    """:func:`reidlib.saliency.parts.attention_on_parts` of a demo model on its backbone's last map: per image of
    ``records``, the share of its implicit attention on synthped's identity-specific details and on the person,
    beside those masks' area."""
    from reidlib.saliency.parts import attention_on_parts as on_parts

    return on_parts(demo.model, demo.images(records), records, demo.model.backbone, top=top)


#: At most this many distractor images (:func:`distractor_records`): 20 seeds of the ``distractors`` preset.
MAX_DISTRACTOR_IMAGES = 100_000
_DISTRACTOR_SEEDS = 20


def distractor_records(count: int) -> list[Any]:
    """The first ``count`` distractor images (pid 0000): those of synthped's ``distractors`` preset at seed 0
    by file name, then at seed 1, and so on (each seed draws other passers-by, about 5,500 each), generated
    once per seed as needed. ``count`` lies in ``[0, MAX_DISTRACTOR_IMAGES]``."""
    from reidlib.data import build_dataset, synthped

    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_DISTRACTOR_IMAGES:
        raise ValueError(f"count (distractor images) must be an integer in [0, {MAX_DISTRACTOR_IMAGES}], got {count!r}")
    out: list[Any] = []
    for seed in range(_DISTRACTOR_SEEDS):
        if len(out) >= count:
            break
        ds = build_dataset("synthped", synthped.ensure("distractors", seed=seed))
        out += sorted((r for r in ds.gallery if r.pid == 0), key=lambda r: str(r.path))
    if len(out) < count:
        raise ValueError(f"count {count} exceeds the {len(out)} distractor images of {_DISTRACTOR_SEEDS} seeds of "
                         "synthped's 'distractors' preset")
    return out[:count]


def distractor_descriptors(demo: Demo, count: int, *, progress: bool = False) -> torch.Tensor:
    """The demo model's descriptors ``(count, D)`` of the first ``count`` distractor images
    (:func:`distractor_records`), embedded once (a tqdm bar with ``progress``) and cached beside the demo's
    weights."""
    from tqdm.auto import tqdm

    from reidlib.engine.checkpoint import load_checkpoint, save_checkpoint

    records = distractor_records(count)
    cached = cache_dir("reid-done-right-demo") / f"distractors-{demo.variant}-v{DEMO_VERSION}-{count}.pt"
    if cached.is_file():
        return load_checkpoint(cached)["descriptors"]
    out = []
    with torch.no_grad():
        for s in tqdm(range(0, count, 256), desc=f"embed distractors ({demo.variant})", disable=not progress):
            out.append(demo.model(demo.images(records[s:s + 256])).float())
    feats = torch.cat(out) if out else torch.empty(0, 0)
    save_checkpoint({"descriptors": feats}, cached)
    return feats


def draw_descriptors(sample: torch.Tensor, count: int, *, rank: int = 64, seed: int = 0,
                     block: int = 16384) -> Any:
    """``count`` synthetic descriptors drawn from a Gaussian fitted to ``sample`` ``(n, D)``: its mean, its
    top-``rank`` principal directions with their variances, and an isotropic residual of the remaining
    variance (a *choice*: a full ``D x D`` covariance is not determined by a few thousand samples), each row
    then scaled to the sample's mean norm (the models' descriptors are unit or near-unit vectors). Yields
    ``(block, D)`` float32 blocks (the last one shorter), so that 500,000 of them are never held at once."""
    if sample.dim() != 2 or len(sample) < 2:
        raise ValueError(f"sample must be (n >= 2, D) descriptors, got shape {tuple(sample.shape)}")
    x = sample.double()
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    k = min(rank, len(s))
    scale = (s[:k] / (len(x) - 1) ** 0.5).float()
    total = (x - mean).pow(2).sum() / (len(x) - 1)
    residual = float(((total - scale.double().pow(2).sum()).clamp(min=0) / x.shape[1]).sqrt())
    norm, mean, basis = float(x.norm(dim=1).mean()), mean.float(), vh[:k].float()
    g = torch.Generator().manual_seed(seed)
    for s0 in range(0, count, block):
        n = min(block, count - s0)
        y = mean + (torch.randn(n, k, generator=g) * scale) @ basis + residual * torch.randn(n, x.shape[1], generator=g)
        yield y * (norm / y.norm(dim=1, keepdim=True))


def distractor_curve(demo: Demo, image_counts: Any = (0, 500, 1000, 2000, 5000),
                     drawn_counts: Any = (10_000, 50_000, 100_000, 500_000), *, cache: bool = True,
                     progress: bool = False) -> Any:
    """mAP and rank-1 of the demo's test queries as distractors join its gallery (Fig. 7's protocol): first
    synthped distractor *images* (:func:`distractor_descriptors`), then *drawn* descriptors
    (:func:`draw_descriptors`, fitted to the distractor images' descriptors) added to all of them. Each point
    is timed: the query-distractor distances (computed block by block as the descriptors are drawn, the
    drawing included) and the Market protocol, the distractors as non-matches. A DataFrame, one row per
    point; with ``cache`` it is computed once per demo model and counts, and kept (times included) beside
    the demo's weights."""
    import time

    import numpy as np
    import pandas as pd

    key = f"{demo.variant}-v{DEMO_VERSION}-{'-'.join(map(str, [*image_counts, *drawn_counts]))}"
    cached = cache_dir("reid-done-right-demo") / f"distractor-curve-{key}.csv"
    if cache and cached.is_file():
        return pd.read_csv(cached)

    from reidlib.eval import evaluate

    ds = demo.dataset
    with torch.no_grad():
        qf, gf = demo.model(demo.images(ds.query)).float(), demo.model(demo.images(ds.gallery)).float()
    qf, gf = torch.nn.functional.normalize(qf, dim=1), torch.nn.functional.normalize(gf, dim=1)
    qp, qc = np.array([r.pid for r in ds.query]), np.array([r.camid for r in ds.query])
    gp, gc = np.array([r.pid for r in ds.gallery]), np.array([r.camid for r in ds.gallery])
    images = torch.nn.functional.normalize(distractor_descriptors(demo, max(image_counts), progress=progress), dim=1)
    base = 1 - qf @ gf.T  # cosine distances to the test gallery
    rows = []

    def point(kind: str, extra: torch.Tensor, seconds: float) -> None:
        t0 = time.perf_counter()
        pids = np.concatenate([gp, np.zeros(extra.shape[1], int)])  # pid 0: a distractor, never a match
        cams = np.concatenate([gc, np.full(extra.shape[1], -1)])  # no query's camera: never junk
        res = evaluate(torch.cat([base, extra], 1), qp, pids, qc, cams)
        rows.append({"distractors": kind, "added": extra.shape[1], "gallery": len(gp) + extra.shape[1],
                     "mAP": 100 * res["mAP"], "rank-1": 100 * res["cmc"][0],
                     "seconds": seconds + time.perf_counter() - t0})

    for n in image_counts:
        t0 = time.perf_counter()
        point("synthped images", 1 - qf @ images[:n].T, time.perf_counter() - t0)
    t0, drawn, done = time.perf_counter(), [1 - qf @ images.T], len(images)
    targets = sorted(n for n in drawn_counts if n > len(images))
    for block in draw_descriptors(images, max(targets, default=len(images)) - len(images)):
        drawn.append(1 - qf @ block.T)
        done += len(block)
        while targets and done >= targets[0]:
            point("drawn descriptors", torch.cat(drawn, 1)[:, :targets.pop(0)], time.perf_counter() - t0)
    frame = pd.DataFrame(rows)
    if cache:
        frame.to_csv(cached, index=False)
    return frame


def plot_distractor_curves(curves: Any) -> Any:
    """mAP and rank-1 (two panels) against the distractors added, one line per ``model`` of ``curves`` (a
    :func:`distractor_curve` frame with a ``model`` column), log scale with 0 drawn at 100 and a dotted line
    where the synthped images end and the drawn descriptors begin. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True)
    last_image = curves.loc[curves.distractors == "synthped images", "added"].max()
    for ax, metric in zip(axes, ("mAP", "rank-1")):
        for name, group in curves.groupby("model", sort=False):
            ax.plot(group["added"].clip(lower=100), group[metric], marker="o", label=name)
        ax.axvline(last_image, color="grey", lw=0.8, ls=":")
        ax.set(xscale="log", xlabel="distractors added (0 drawn at 100; right of the dotted line: drawn descriptors)",
               ylabel=f"{metric} (%)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def weights_fingerprint(model: torch.nn.Module) -> str:
    """The first 12 hex digits of the SHA-256 of a model's state (names, shapes and bytes, in order): two
    models with the same fingerprint hold the same weights."""
    import hashlib

    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:12]


#: The recorded curve (``python -m reidlib.papers.reid_done_right_demo``): Fig. 7's 0 to 50,000 distractor
#: images, then drawn descriptors to 500,000.
RECORD_IMAGE_COUNTS = (0, 1000, 2000, 5000, 10_000, 20_000, 50_000)
RECORD_DRAWN_COUNTS = (100_000, 200_000, 500_000)


def measure_distractor_curves(image_counts: Any = RECORD_IMAGE_COUNTS, drawn_counts: Any = RECORD_DRAWN_COUNTS,
                              *, seed: int = 0, progress: bool = False) -> Any:
    """:func:`distractor_curve` of both demo models (``model``: good-practices, baseline), uncached, each row
    with the model's ``source`` and :func:`weights_fingerprint` and the provenance of the run
    (:func:`reidlib.engine.records.provenance`): the record the distractors page reads."""
    import pandas as pd

    from reidlib.engine.records import provenance

    frames = []
    for name, demo in (("good-practices", load_demo(seed=seed)), ("baseline", load_baseline_demo(seed=seed))):
        curve = distractor_curve(demo, image_counts, drawn_counts, cache=False, progress=progress)
        frames.append(curve.assign(model=name, source=demo.source, weights=weights_fingerprint(demo.model)))
    out = pd.concat(frames, ignore_index=True)
    for k, v in provenance("cpu").items():
        out[k] = v
    out["threads"] = torch.get_num_threads()
    return out


def load_distractor_record(results: Any = None) -> Any:
    """The recorded curves (``<results>/reid_done_right/distractor_curve/*.csv``, default: the project's
    ``results/``), one DataFrame with a ``record`` column (the file's stem), or ``None`` where there is none."""
    from pathlib import Path

    import pandas as pd

    from reidlib.paths import results_dir

    root = Path(results) if results is not None else results_dir()
    paths = sorted((root / "reid_done_right" / "distractor_curve").glob("*.csv"))
    return pd.concat([pd.read_csv(p).assign(record=p.stem) for p in paths], ignore_index=True) if paths else None


def main(argv: list[str] | None = None) -> int:
    """``python -m reidlib.papers.reid_done_right_demo --out results/reid_done_right/distractor_curve/cpu.csv``:
    measure both demo models' curves (:data:`RECORD_IMAGE_COUNTS`, :data:`RECORD_DRAWN_COUNTS`) and write them."""
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description="The distractor curves of the Re-ID done right chapter's demo models.")
    ap.add_argument("--out", required=True, help="the CSV to write")
    ap.add_argument("--images", type=int, nargs="+", default=list(RECORD_IMAGE_COUNTS), help="distractor images")
    ap.add_argument("--drawn", type=int, nargs="+", default=list(RECORD_DRAWN_COUNTS), help="drawn descriptors")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    frame = measure_distractor_curves(tuple(args.images), tuple(args.drawn), progress=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(out)
    print(frame[["model", "distractors", "added", "mAP", "rank-1", "seconds"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
