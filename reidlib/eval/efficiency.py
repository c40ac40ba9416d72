"""Efficiency figures of a model: feature dimension, parameters, size, FLOPs, throughput.

* ``feature_dim``: size of the per-image output of ``model.eval()(x)`` (the test descriptor).
* ``params``: number of parameter elements (trainable or not).
* ``size_mb``: bytes of parameters and buffers over ``2**20`` (MB = MiB, as HENet's Table 1 and
  the hashing paper's storage figures count).
* ``test_params``, ``test_size_mb``: the parameters of the modules the eval forward runs (classifiers,
  decoders and other training-only parts excluded; found by hooks on one forward), and their size as
  fp32 in MiB -- what HENet's Table 1 column V is taken to count (see the HENet chapter).
* ``flops``: floating-point operations of one image's eval forward, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts 2; only matmuls and
  convolutions are counted). Papers that quote "FLOPs" for ResNet-50 (4.1 G at 224x224) mean
  multiply-adds, i.e. ``flops / 2`` here.
* ``images_per_s``: eval forwards under :func:`torch.inference_mode` at the given batch, after
  warm-up, timed with a wall clock (CUDA synchronised).

and HENet's **Efficiency Score** of a set of models (:func:`efficiency_score`, Eq. 10-11), which
combines accuracy with FD, size and speed.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["efficiency", "count_flops", "count_params", "model_size_mb", "images_per_second", "test_time_params",
           "ES_COLUMNS", "efficiency_score", "efficiency_score_terms"]


def count_params(model: nn.Module) -> int:
    """Number of parameter elements of ``model``."""
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module) -> float:
    """Bytes of parameters and buffers, in MB = 2**20 bytes."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def test_time_params(model: nn.Module, x: Tensor) -> int:
    """Number of parameter elements of the modules that ``model.eval()(x)`` runs (each module's own
    parameters, counted once): what a deployed model needs. The model's modes are restored."""
    ran: set[int] = set()
    handles = [m.register_forward_pre_hook(lambda module, args: ran.add(id(module))) for m in model.modules()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for module, training in modes:
            module.training = training
    seen: set[int] = set()
    total = 0
    for m in model.modules():
        if id(m) in ran:
            for p in m.parameters(recurse=False):
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
    return total


def _first_tensor(out: object) -> Tensor:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], Tensor):
        return out[0]
    raise TypeError(f"efficiency: the model's eval output must be a tensor (the descriptor), got {type(out).__name__}")


def count_flops(model: nn.Module, x: Tensor) -> int:
    """FLOPs of ``model(x)`` (in its current mode) with torch's flop counter."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())


def images_per_second(model: nn.Module, x: Tensor, *, warmup: int = 2, iters: int = 5) -> float:
    """Images per second of ``model(x)`` under inference mode, after ``warmup`` untimed forwards."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            model(x)
        sync()
        elapsed = time.perf_counter() - start
    return x.shape[0] * iters / elapsed


def _model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def efficiency(
    model: nn.Module,
    height: int,
    width: int,
    *,
    batch: int = 32,
    device: str | torch.device | None = None,
    warmup: int = 2,
    iters: int = 5,
    channels: int = 3,
) -> dict[str, float | int | str]:
    """Efficiency figures of ``model`` on images ``(batch, channels, height, width)``.

    ``device=None`` measures where the model is; another device measures a copy moved there
    (the model itself is not moved). The model's train/eval mode is restored afterwards.

    Returns ``dict(feature_dim, params, size_mb, test_params, test_size_mb, flops, images_per_s, batch,
    height, width, device)``;
    ``flops`` is per image (see the module docstring).
    """
    for name, value in (("height", height), ("width", width), ("batch", batch), ("iters", iters), ("channels", channels)):
        if int(value) < 1:
            raise ValueError(f"efficiency: {name} must be >= 1, got {value!r}")
    if int(warmup) < 0:
        raise ValueError(f"efficiency: warmup must be >= 0, got {warmup!r}")
    device = _model_device(model) if device is None else torch.device(device)
    modes = [(m, m.training) for m in model.modules()]  # restored one by one (frozen parts may be in eval)
    measured = model if _model_device(model) == device else copy.deepcopy(model).to(device)
    measured.eval()
    try:
        dtype = next((p.dtype for p in measured.parameters() if p.is_floating_point()), torch.float32)
        one = torch.randn(1, channels, height, width, device=device, dtype=dtype)
        with torch.inference_mode():
            feature_dim = _first_tensor(measured(one))[0].numel()
        flops = count_flops(measured, one)
        test_params = test_time_params(measured, one)
        x = torch.randn(batch, channels, height, width, device=device, dtype=dtype)
        ips = images_per_second(measured, x, warmup=warmup, iters=iters)
    finally:
        for module, training in modes:
            module.training = training
    return {
        "feature_dim": int(feature_dim),
        "params": count_params(model),
        "size_mb": model_size_mb(model),
        "test_params": int(test_params),
        "test_size_mb": test_params * 4 / 2**20,
        "flops": flops,
        "images_per_s": ips,
        "batch": int(batch),
        "height": int(height),
        "width": int(width),
        "device": str(device),
    }


# ---- HENet's Efficiency Score ------------------------------------------------------------------------

#: The columns :func:`efficiency_score` reads: rank-1 and mAP (in %), feature dimension, size V (MB),
#: speed S (images/s).
ES_COLUMNS = ("R1", "mAP", "FD", "V", "S")


def _es_table(table: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"efficiency_score: table must be a pandas DataFrame indexed by model, got {type(table).__name__}")
    missing = [c for c in ES_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"efficiency_score: table lacks the column(s) {missing}; expected {list(ES_COLUMNS)} "
                         f"(got {list(table.columns)})")
    if len(table) < 2:
        raise ValueError(f"efficiency_score: table needs at least two models (the score is relative to a "
                         f"largest-size and a lowest-rank-1 model), got {len(table)}")
    if not table.index.is_unique:
        raise ValueError(f"efficiency_score: table's index (the models) has duplicates: "
                         f"{sorted(set(table.index[table.index.duplicated()]))}")
    t = table.loc[:, list(ES_COLUMNS)].astype(float)
    for column in ES_COLUMNS:
        bad = t.index[~np.isfinite(t[column]) | ((t[column] <= 0) if column in ("FD", "V", "S") else False)]
        if len(bad):
            expected = "positive" if column in ("FD", "V", "S") else "finite"
            raise ValueError(f"efficiency_score: column {column!r} must be {expected}; models "
                             f"{list(bad)} have {list(t.loc[bad, column])}")
    return t


def efficiency_score_terms(table: pd.DataFrame, *, thr: float = 30.0, lam: float = 1.0,
                           m1: object = None, m2: object = None) -> pd.DataFrame:
    """HENet's Efficiency Score with its two terms: a DataFrame ``Score_R1, Score_mAP, ES`` by model.

    Eq. (10) is garbled in the paper's text; read from its surrounding description, for a metric
    ``T`` in {R1, mAP} and a model ``c`` of the comparison set,

    ``Score^T_c = g_c / g_M1``,  ``g = V * S**2 * (T - T_M2 + thr)**3 / FD``,

    and Eq. (11) ``ES_c = (Score^R1_c + lam * Score^mAP_c) / (1 + lam)``, with ``thr = 30``,
    ``lam = 1``, ``M1`` the model with the largest size V and ``M2`` the model with the lowest
    rank-1; ``T_M2`` is M2's value of the same metric. This form reproduces all eight ES values of
    HENet's Table 1 from the table's own columns, and no neighbouring form does (the HENet chapter
    shows both). Units cancel in the ratio (V in MB, S in images/s, R1 and mAP in %).

    What it rewards, read off the formula: V sits in the *numerator* (at equal speed a bigger model
    scores higher, although Table 1 marks V "lower is better"); speed counts twice (``S**2``); the
    accuracy margin over M2 counts cubed; FD divides. The score is relative to the set: adding a
    model can change M1 and M2 and so every score.

    Args:
        table: one row per model (the index names it), columns :data:`ES_COLUMNS`; V, S and FD
            positive.
        thr, lam: Eq. (10)'s offset and Eq. (11)'s weight.
        m1, m2: the reference models by index label; default the paper's rule (first in table
            order on a tie).

    Raises:
        ValueError: a missing column, a non-positive V/S/FD, fewer than two models, an unknown
            ``m1``/``m2``, or a model whose accuracy is ``thr`` or more below M2's (its term
            ``(T - T_M2 + thr)**3`` would be <= 0 and the score meaningless).
    """
    t = _es_table(table)
    if not np.isfinite(thr) or not np.isfinite(lam) or lam < 0:
        raise ValueError(f"efficiency_score: thr must be finite and lam finite and >= 0, got thr={thr!r}, lam={lam!r}")
    for name, ref in (("m1", m1), ("m2", m2)):
        if ref is not None and ref not in t.index:
            raise ValueError(f"efficiency_score: {name}={ref!r} is not a model of the table ({list(t.index)})")
    m1 = t["V"].idxmax() if m1 is None else m1
    m2 = t["R1"].idxmin() if m2 is None else m2
    out = {}
    for metric in ("R1", "mAP"):
        margin = t[metric] - t.loc[m2, metric] + thr
        if (margin <= 0).any():
            bad = list(margin.index[margin <= 0])
            raise ValueError(f"efficiency_score: models {bad} have {metric} {thr} or more below M2 ({m2!r}, "
                             f"{metric} {t.loc[m2, metric]}): Eq. (10)'s term (T - T_M2 + thr)^3 would be <= 0")
        g = t["V"] * t["S"] ** 2 * margin**3 / t["FD"]
        out[f"Score_{metric}"] = g / g.loc[m1]
    terms = pd.DataFrame(out)
    terms["ES"] = (terms["Score_R1"] + lam * terms["Score_mAP"]) / (1 + lam)
    terms.attrs.update(m1=m1, m2=m2, thr=thr, lam=lam)
    return terms


def efficiency_score(table: pd.DataFrame, **options: float) -> pd.Series:
    """HENet's Efficiency Score (Eq. 10-11) of every model of ``table``: a Series by model.

    ``table`` is a DataFrame indexed by model with columns :data:`ES_COLUMNS`; ``options`` are those
    of :func:`efficiency_score_terms` (``thr``, ``lam``, ``m1``, ``m2``), whose docstring gives the
    formula and what it rewards. The references chosen are in the Series' ``attrs``.
    """
    terms = efficiency_score_terms(table, **options)
    es = terms["ES"].rename("ES")
    es.attrs.update(terms.attrs)
    return es
