"""reidlib.losses: ID loss with label smoothing, batch-hard triplet loss, and the one criterion over named
branches (:class:`ReIDCriterion`, ``build_criterion``) that every network of the house trains with."""
from .criterion import CRITERIA, LOSS_TERMS, ReIDCriterion, build_criterion, register_criterion, register_term
from .softmax import CrossEntropyLabelSmooth
from .triplet import BatchHardMining, TripletLoss, batch_hard_mining, easiest_positive, pairwise_distance

__all__ = [
    "CRITERIA",
    "LOSS_TERMS",
    "ReIDCriterion",
    "build_criterion",
    "register_criterion",
    "register_term",
    "CrossEntropyLabelSmooth",
    "BatchHardMining",
    "TripletLoss",
    "batch_hard_mining",
    "easiest_positive",
    "pairwise_distance",
]
