"""reidlib.retrieval: binary codes, Hamming search (faiss) and attribute-based fast retrieval (AFR)."""
from .afr import AFRIndex, afr_ranking, afr_window
from .codes import MB, code_bytes, pack_codes, storage_mb, unpack_codes
from .hamming import ApproximateHammingIndex, HammingIndex, hamming_distances, hamming_from_signs, knn_recall

__all__ = [
    "MB",
    "AFRIndex",
    "ApproximateHammingIndex",
    "HammingIndex",
    "afr_ranking",
    "afr_window",
    "code_bytes",
    "hamming_distances",
    "hamming_from_signs",
    "knn_recall",
    "pack_codes",
    "storage_mb",
    "unpack_codes",
]
