"""HENet (Zhang et al.): the paper's numbers the HENet chapter recomputes.

So far this module holds Table 1's efficiency columns, from which
:func:`reidlib.eval.efficiency_score` reproduces the table's Efficiency Score; the network, its
variants and ``train`` come with the chapter.
"""
from __future__ import annotations

import pandas as pd

__all__ = ["table_1", "TABLE_1_ES"]

# Table 1 (Market-1501 columns), the eight rows that print efficiency columns: R1 and mAP (%), feature
# dimension FD, size V (MB) and speed S (FPS, hardware and batch unstated), as printed.
_TABLE_1 = {
    "AlignedReID": (91.8, 79.3, 2048, 100, 207),
    "PCB": (93.1, 81.0, 1536, 102, 192),
    "HPM": (94.2, 82.7, 3840, 356, 82),
    "MGN": (95.7, 86.9, 2816, 263, 112),
    "HENet(Base)": (92.9, 79.6, 2048, 169, 160),
    "HENet(+RPE)": (93.6, 81.2, 2048, 169, 160),
    "HENet(+Losses)": (95.6, 86.8, 2560, 224, 138),
    "HENet(+Both)": (96.0, 87.2, 2560, 224, 138),
}

#: Table 1's printed Efficiency Score of the same rows (two decimals): what the reconstruction of
#: Eq. (10) must give back from the columns of :func:`table_1`.
TABLE_1_ES = {"AlignedReID": 2.55, "PCB": 3.45, "HPM": 1.00, "MGN": 2.42, "HENet(Base)": 2.76,
              "HENet(+RPE)": 3.08, "HENet(+Losses)": 3.41, "HENet(+Both)": 3.52}


def table_1() -> pd.DataFrame:
    """Table 1's efficiency rows: a DataFrame indexed by model with the columns ``R1, mAP, FD, V, S``
    (:data:`reidlib.eval.ES_COLUMNS`), Market-1501 accuracy, as printed."""
    frame = pd.DataFrame.from_dict(_TABLE_1, orient="index", columns=["R1", "mAP", "FD", "V", "S"])
    frame.index.name = "model"
    return frame
