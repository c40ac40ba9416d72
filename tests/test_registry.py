"""The house's one registry: register as a decorator, build by name, errors that list the names."""
from __future__ import annotations

import pytest

from reidlib.registry import Registry


def test_register_build_and_list():
    reg: Registry = Registry("widget", hint="papers add more")

    @reg.register("square", "sq")
    def square(x, power=2):
        return x ** power

    assert reg.build("square", 3) == 9 and reg.build("SQ", 2, power=3) == 8  # alias, any case
    assert "Square" in reg and "cube" not in reg and list(reg) == ["square"] and len(reg) == 1
    with pytest.raises(ValueError, match=r"unknown widget 'cube'; expected one of \['square'\] \(papers add more\)"):
        reg.get("cube")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("sq", abs)
    reg.add("square", abs, override=True)
    assert reg.build("square", -2) == 2


def test_datasets_models_criteria_schedules_erasers_share_it():
    from reidlib.data import DATASETS
    from reidlib.data.transforms import ERASERS, RandomPolygonErasing, build_eraser
    from reidlib.engine.schedules import SCHEDULES
    from reidlib.losses import CRITERIA
    from reidlib.models import MODELS

    for reg in (DATASETS, MODELS, CRITERIA, SCHEDULES, ERASERS):
        assert isinstance(reg, Registry)
    assert DATASETS.canonical("Market-1501") == "market1501" and DATASETS.canonical("CUHK03_NP") == "cuhk03_np"
    assert isinstance(build_eraser("random polygon erasing", p=1.0), RandomPolygonErasing)
    assert build_eraser("rpe", p=0.3).p == 0.3
    with pytest.raises(ValueError, match="unknown eraser 'cutmix'.*progressive_cutout"):
        build_eraser("cutmix")
