"""reidlib.losses: ID loss with label smoothing, batch-hard triplet loss, OIM, reconstruction (HENet Eq. 9),
the hashing paper's SSR distillation (Eq. 1-2) and attribute BCE (Eq. 3-5), and the one criterion over named
branches (:class:`ReIDCriterion`, ``build_criterion``) that every network of the house trains with."""
from .attributes import AttributeTerm, attribute_code, attribute_loss
from .criterion import CRITERIA, LOSS_TERMS, ReIDCriterion, build_criterion, register_criterion, register_term
from .distillation import SSRTerm, binarize, ssr_distillation
from .oim import UNLABELED, OIMLoss, OIMTerm
from .reconstruction import low_resolution, reconstruction_loss
from .softmax import CrossEntropyLabelSmooth
from .triplet import (
    BatchHardMining,
    DotProductTripletLoss,
    TripletLoss,
    batch_hard_mining,
    dot_product_triplet,
    easiest_positive,
    pairwise_distance,
    split_triplets,
)

__all__ = [
    "CRITERIA",
    "LOSS_TERMS",
    "ReIDCriterion",
    "build_criterion",
    "register_criterion",
    "register_term",
    "AttributeTerm",
    "attribute_code",
    "attribute_loss",
    "SSRTerm",
    "binarize",
    "ssr_distillation",
    "CrossEntropyLabelSmooth",
    "OIMLoss",
    "OIMTerm",
    "low_resolution",
    "reconstruction_loss",
    "UNLABELED",
    "BatchHardMining",
    "DotProductTripletLoss",
    "TripletLoss",
    "dot_product_triplet",
    "split_triplets",
    "batch_hard_mining",
    "easiest_positive",
    "pairwise_distance",
]
