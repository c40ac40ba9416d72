"""The recipes' shared helpers (:mod:`reidlib.papers._recipe`): a demo model is trained once, on one
thread, and later calls load it bit for bit; a failed training restores the thread count and caches nothing."""
from __future__ import annotations

import pytest
import torch

from reidlib.papers._recipe import trained_once


def _fit(model: torch.nn.Module, seen: list[int]) -> None:
    seen.append(torch.get_num_threads())
    with torch.no_grad():
        model.weight.add_(1.0)


def test_trained_once_trains_on_one_thread_caches_and_then_only_loads(tmp_path):
    cached = tmp_path / "demo" / "model.pt"
    torch.manual_seed(0)
    first, threads, seen = torch.nn.Linear(3, 2), torch.get_num_threads(), []
    trained_once(first, cached, lambda: _fit(first, seen))
    assert seen == [1] and torch.get_num_threads() == threads and cached.is_file()
    torch.manual_seed(1)
    again = torch.nn.Linear(3, 2)
    trained_once(again, cached, lambda: _fit(again, seen))
    assert seen == [1], "the second call loads the cache and does not train"
    assert torch.equal(again.weight, first.weight) and torch.equal(again.bias, first.bias)


def test_a_failed_training_restores_threads_and_leaves_no_cache(tmp_path):
    cached = tmp_path / "model.pt"
    threads = torch.get_num_threads()

    def boom() -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        trained_once(torch.nn.Linear(3, 2), cached, boom)
    assert torch.get_num_threads() == threads and not cached.exists()
