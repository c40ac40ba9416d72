"""reidlib.eval.distance: against brute force, chunking, dtypes, memory, bad input."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.eval import distance


def brute(qf: np.ndarray, gf: np.ndarray, metric: str, squared: bool = False) -> np.ndarray:
    q, g = qf.astype(np.float64), gf.astype(np.float64)
    if metric == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    d2 = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    return d2 if squared else np.sqrt(d2)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 9), st.integers(1, 11), st.integers(1, 6), st.sampled_from(["euclidean", "cosine"]),
       st.booleans(), st.integers(1, 4), st.integers(0, 2 ** 32 - 1))
def test_matches_brute_force(nq, ng, dim, metric, squared, chunk, seed):
    rng = np.random.default_rng(seed)
    qf = rng.standard_normal((nq, dim)).astype(np.float32)
    gf = rng.standard_normal((ng, dim)).astype(np.float32)
    d = distance(qf, gf, metric, squared=squared, chunk_size=chunk)
    assert d.dtype == np.float32 and d.shape == (nq, ng)
    np.testing.assert_allclose(d, brute(qf, gf, metric, squared), atol=2e-3, rtol=1e-4)
    assert np.all(d >= 0)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_numpy_torch_float64_and_chunks_agree(metric):
    rng = np.random.default_rng(0)
    qf, gf = rng.standard_normal((23, 8)), rng.standard_normal((17, 8))
    ref = brute(qf, gf, metric)
    for a, b in [(qf, gf), (qf.astype(np.float32), gf.astype(np.float32)),
                 (torch.from_numpy(qf), torch.from_numpy(gf)), (torch.from_numpy(qf).float(), gf)]:
        for chunk in (None, 1, 5, 100):
            np.testing.assert_allclose(distance(a, b, metric, chunk_size=chunk), ref, atol=1e-4, rtol=1e-5)


def test_euclidean_is_not_squared_and_self_distance_small():
    x = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    d = distance(x, x)
    np.testing.assert_allclose(d, [[0, 5], [5, 0]], atol=1e-6)
    np.testing.assert_allclose(distance(x, x, squared=True), [[0, 25], [25, 0]], atol=1e-5)
    np.testing.assert_allclose(distance(x, x, "cosine")[1, 1], 0.0, atol=1e-6)


def test_writes_into_given_output():
    rng = np.random.default_rng(1)
    qf, gf = rng.standard_normal((7, 4)).astype(np.float32), rng.standard_normal((9, 4)).astype(np.float32)
    out = np.full((7, 9), -1.0, dtype=np.float32)
    res = distance(qf, gf, chunk_size=3, out=out)
    assert res is out
    np.testing.assert_allclose(out, brute(qf, gf, "euclidean"), atol=1e-5)


def test_peak_memory_is_one_float32_result():
    """A 3000 x 3000 matrix (36 MB) from float32 features: the process's peak memory grows
    by about the result's size, not a multiple of it (run in a fresh process)."""
    code = textwrap.dedent("""
        import resource, numpy as np, torch
        from reidlib.eval import distance
        torch.set_num_threads(1)
        rng = np.random.default_rng(0)
        qf = rng.standard_normal((3000, 64)).astype(np.float32)
        gf = rng.standard_normal((3000, 64)).astype(np.float32)
        distance(qf[:10], gf[:10])                      # warm up allocators and kernels
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        d = distance(qf, gf, chunk_size=256)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) * 1024, d.nbytes)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    grown, nbytes = map(int, out.stdout.split())
    assert grown < 1.35 * nbytes, f"peak memory grew by {grown / 2**20:.1f} MiB for a {nbytes / 2**20:.1f} MiB result"


@pytest.mark.parametrize("args, kwargs, message", [
    ((np.zeros(3), np.zeros((2, 3))), {}, "qf must be 2-D"),
    ((np.zeros((2, 3)), np.zeros((2, 3, 1))), {}, "gf must be 2-D"),
    ((np.zeros((0, 3)), np.zeros((2, 3))), {}, "qf is empty"),
    ((np.zeros((2, 3)), np.zeros((0, 3))), {}, "gf is empty"),
    ((np.zeros((2, 3)), np.zeros((2, 4))), {}, "same feature dimension"),
    ((np.array([[np.nan, 0.0]]), np.zeros((2, 2))), {}, "qf contains NaN or inf"),
    ((np.zeros((2, 2)), np.zeros((2, 2))), {"metric": "manhattan"}, "metric must be"),
    ((np.zeros((2, 2)), np.zeros((2, 2))), {"chunk_size": 0}, "chunk_size"),
    ((np.zeros((2, 2)), np.zeros((2, 2))), {"out": np.zeros((2, 2))}, "out must be"),
])
def test_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        distance(*args, **kwargs)
