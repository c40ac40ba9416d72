"""reidlib.retrieval: binary codes, Hamming search (faiss) and attribute-based fast retrieval (AFR)."""
from .afr import AFRIndex, afr_ranking, afr_window
from .codes import MB, code_bytes, pack_codes, storage_mb, unpack_codes
from .hamming import ApproximateHammingIndex, HammingIndex, hamming_distances, hamming_from_signs, knn_recall
from .timing import interleaved_medians, median_seconds, random_packed, search_timings

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
    "interleaved_medians",
    "knn_recall",
    "median_seconds",
    "pack_codes",
    "random_packed",
    "search_timings",
    "storage_mb",
    "unpack_codes",
]
