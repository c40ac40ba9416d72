"""reidlib.eval: the re-ID evaluation protocol (CMC, mAP, mINP), distances, protocols.

Import layer: eval sits above data/models/losses/engine and must not import engine.
"""
from .distance import distance
from .metrics import evaluate, evaluate_multi_query, evaluate_reference, pool_multi_query
from .protocols import VEHICLEID_TEST_SIZES, evaluate_vehicleid, vehicleid_split

__all__ = [
    "distance",
    "evaluate",
    "evaluate_reference",
    "evaluate_multi_query",
    "pool_multi_query",
    "evaluate_vehicleid",
    "vehicleid_split",
    "VEHICLEID_TEST_SIZES",
]
