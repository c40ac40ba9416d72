"""reidlib.eval: the re-ID evaluation protocol (CMC, mAP, mINP), distances, protocols, bootstrap intervals,
efficiency figures, HENet's Efficiency Score and the QE + DBA re-rank of Almazán et al. (2018).

Import layer: eval sits above data/models/losses/engine and must not import engine.
"""
from .bootstrap import bootstrap_interval, paired_bootstrap_difference, per_query_metrics, valid_query_values
from .distance import distance
from .efficiency import ES_COLUMNS, efficiency, efficiency_score, efficiency_score_terms
from .metrics import evaluate, evaluate_multi_query, evaluate_ranking, evaluate_reference, pool_multi_query
from .protocols import VEHICLEID_TEST_SIZES, evaluate_vehicleid, vehicleid_split
from .rerank import average_query_expansion, database_augmentation, nearest_neighbours, qe_dba

__all__ = [
    "distance",
    "efficiency",
    "efficiency_score",
    "efficiency_score_terms",
    "ES_COLUMNS",
    "evaluate",
    "evaluate_ranking",
    "evaluate_reference",
    "evaluate_multi_query",
    "pool_multi_query",
    "evaluate_vehicleid",
    "vehicleid_split",
    "VEHICLEID_TEST_SIZES",
    "per_query_metrics",
    "bootstrap_interval",
    "paired_bootstrap_difference",
    "valid_query_values",
    "qe_dba",
    "database_augmentation",
    "average_query_expansion",
    "nearest_neighbours",
]
