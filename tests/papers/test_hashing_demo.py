"""The hashing pages' demo model (reidlib.papers.hashing_demo): trained once through the Trainer, cached, reused."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import reidlib.engine.trainer as trainer_module
from reidlib.papers import hashing_demo
from reidlib.papers.hashing import VARIANTS


@pytest.fixture
def demo_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo's cache in a temporary folder (synthped 'tiny' itself stays in the shared cache)."""
    monkeypatch.setattr(hashing_demo, "cache_dir", lambda *parts: tmp_path.joinpath(*parts))
    return tmp_path / "hashing-demo"


def test_load_demo_writes_then_reuses_the_cache(demo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fits = []
    fit = trainer_module.Trainer.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(self.steps_per_epoch * self.epochs)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(trainer_module.Trainer, "fit", counting_fit)
    first = hashing_demo.load_demo("sigmoid", steps=2)
    path = hashing_demo.demo_path("sigmoid", 2, 0)
    assert path.parent == demo_cache and path.is_file()
    assert fits == [2]  # trained through the Trainer, exactly `steps` steps
    mtime = path.stat().st_mtime_ns

    second = hashing_demo.load_demo("sigmoid", steps=2)
    assert fits == [2]  # loaded, not trained again
    assert path.stat().st_mtime_ns == mtime
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), name

    model = second.model
    assert not model.training and model.config == VARIANTS["sigmoid"]
    assert second.variant == "sigmoid" and "2 training steps" in second.source
    images = second.images(second.dataset.query[:2])
    assert images.shape == (2, 3, hashing_demo.DEMO_HEIGHT, hashing_demo.DEMO_WIDTH)
    with torch.no_grad():
        out = model.encode(images)
    assert out["float"].shape == (2, VARIANTS["sigmoid"].bits)
    assert ((out["float"] >= 0) & (out["float"] <= 1)).all()  # a sigmoid's outputs
    assert set(out["code"].unique().tolist()) <= {-1.0, 1.0}


def test_load_demo_rejects_bad_arguments(demo_cache: Path) -> None:
    with pytest.raises(ValueError, match="unknown hashing variant"):
        hashing_demo.load_demo("sigmoidd")
    with pytest.raises(ValueError, match="steps"):
        hashing_demo.load_demo("sigmoid", steps=0)
    assert not demo_cache.exists()


def test_demo_size_gives_six_equal_stripes() -> None:
    assert (hashing_demo.DEMO_HEIGHT // 16) % 6 == 0 and hashing_demo.DEMO_HEIGHT % 16 == 0
