"""reidlib.losses: ID loss with label smoothing, batch-hard triplet loss."""
from .softmax import CrossEntropyLabelSmooth
from .triplet import BatchHardMining, TripletLoss, batch_hard_mining, easiest_positive, pairwise_distance

__all__ = [
    "CrossEntropyLabelSmooth",
    "BatchHardMining",
    "TripletLoss",
    "batch_hard_mining",
    "easiest_positive",
    "pairwise_distance",
]
