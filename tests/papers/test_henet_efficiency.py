"""The Efficiency Score page's helpers: the family of forms around Eq. (10) (the reconstruction is the
library's score; its neighbours and the grid do not reproduce Table 1), the sweep's exact ratios, the analytic
sizes of the split choices, and ES over the book's own records."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from reidlib.eval import efficiency_score
from reidlib.papers import henet
from reidlib.paths import results_dir


def test_the_reconstruction_is_the_librarys_score():
    t = henet.table_1()
    pd.testing.assert_series_equal(henet.es_form(t), efficiency_score(t), check_names=False)


def test_only_the_reconstruction_reproduces_table_1():
    forms = henet.neighbouring_forms()
    assert forms.index[0] == "the reconstruction" and forms["reproduced (of 8)"].iloc[0] == 8
    assert (forms["reproduced (of 8)"].iloc[1:] < 8).all() and len(forms) >= 15
    searched, found = henet.forms_that_reproduce(thrs=[25, 30, 35])
    assert searched == 3 * 4 * 5 * 3 * 3 and found == [(1, 2, 3, 1, 30.0)]
    # a printed table that is not Table 1 is reproduced by no form of the grid
    _, none = henet.forms_that_reproduce(printed={**henet.TABLE_1_ES, "PCB": 3.46}, thrs=[30])
    assert none == []


def test_a_non_positive_margin_has_no_score():
    t = henet.table_1().astype(float)
    t.loc["PCB", "R1"] = 50.0  # 41.8 points below M2 (AlignedReID's 91.8)
    es = henet.es_form(t, m2="AlignedReID")
    assert np.isnan(es["PCB"]) and np.isfinite(es.drop("PCB")).all()


def test_sweep_ratios_and_errors():
    t = henet.table_1()
    for column, ratio in (("V", 2.0), ("S", 4.0), ("FD", 0.5)):
        es = henet.es_sweep(t, "MGN", column, [1, 2])["ES"].to_numpy()
        assert es[1] / es[0] == pytest.approx(ratio)
    with pytest.raises(ValueError, match="column must be one of"):
        henet.es_sweep(t, "MGN", "size", [1])
    with pytest.raises(ValueError, match="is a reference model"):
        henet.es_sweep(t, "HPM", "V", [1])
    with pytest.raises(ValueError, match="is not a row"):
        henet.es_sweep(t, "OSNet", "V", [1])


def test_sizes_of_the_split_choices():
    sizes = henet.size_table()
    assert round(sizes.loc["HENet(+Losses)", "split layer4"]) == 224
    assert round(sizes.loc["HENet(Base)", "split layer4 + classifiers"]) == 169 != round(
        sizes.loc["HENet(Base)", "split layer4"])
    # the MGN-style split is bigger than both printed sizes
    assert (sizes["split layer3.1"] > sizes["Table 1 V"] + 10).all()
    with pytest.raises(ValueError, match="split must be one of"):
        henet.analytic_test_params(henet.VARIANTS["base"], split="layer3")


def test_book_efficiency_reads_the_records_and_measures_the_architecture(tmp_path):
    folder = results_dir() / "baseline" / "synthped"
    src = [folder / f"efficientnet_lite0-imagenet_128x64_e6{tag}_s{s}.json" for tag in ("", "_id-only") for s in range(3)]
    src = [p for p in src if p.is_file()]
    if len(src) < 6:
        pytest.skip("the regime's baseline records are not in this checkout")
    dest = tmp_path / "baseline" / "synthped"
    dest.mkdir(parents=True)
    for p in src:
        shutil.copy(p, dest)
    book = henet.book_efficiency(tmp_path, iters=1, batch=2)
    assert set(book.index) == {"baseline: default", "baseline: id-only"} and (book["seeds"] == 3).all()
    assert (book["FD"] == 1280).all() and (book["V"] > 10).all() and (book["S"] > 0).all()
    assert book.loc[book.attrs["m2"], "R1"] == book["R1"].min()
    assert book.loc[book.attrs["m1"], "ES"] == pytest.approx(1.0)
    # nothing of another regime is read
    assert henet.book_efficiency(tmp_path, start="resnet18").empty
