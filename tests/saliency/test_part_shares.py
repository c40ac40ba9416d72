"""The share of a heat map on synthped's part masks (reidlib.saliency.parts): the summary's ratios."""
from __future__ import annotations

import pandas as pd
import pytest

from reidlib.saliency.parts import share_summary


def test_the_share_summary_divides_each_mean_share_by_its_mean_area():
    frame = pd.DataFrame({"share on details": [0.1, 0.3], "share on person": [0.5, 0.7],
                          "area of details": [0.05, 0.05], "area of person": [0.3, 0.3]})
    table = share_summary({"a": frame, "b": frame.assign(**{"share on details": [0.05, 0.05]})})
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "details: share / area"] == pytest.approx(0.2 / 0.05)
    assert table.loc["a", "person: share / area"] == pytest.approx(0.6 / 0.3)
    assert table.loc["b", "details: share / area"] == pytest.approx(1.0)
