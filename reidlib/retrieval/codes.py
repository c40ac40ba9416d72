"""Binary codes: ±1 (or {0, 1}) matrices to packed bits and back, and their storage.

A hashing network's test descriptor is a ±1 vector of ``L`` bits (Eq. (1) of Jin et al. 2021:
``+1`` where the real value is ``> 0``, ``-1`` where it is ``<= 0``). Stored and searched, it is
``L / 8`` bytes: bit ``j`` of a code is bit ``7 - (j % 8)`` of byte ``j // 8`` (``numpy.packbits``'
big-endian bit order, the layout faiss' binary indexes read). Both conventions map to the same
bits: ``+1`` and ``1`` are a set bit, ``-1`` and ``0`` a clear one, so a Hamming distance does
not depend on which convention a code was given in.

A code length that is not a multiple of 8 (the 30 attribute bits of the hashing paper's AFR) is
padded with clear bits up to the next byte. Padding is the same for queries and gallery, so it
adds nothing to any Hamming distance; :func:`unpack_codes` drops it again.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import torch

__all__ = ["MB", "code_bytes", "pack_codes", "storage_mb", "unpack_codes"]

#: One megabyte as the hashing paper counts it (Table 5: 2048-bit codes of 500,000 images = 122.1 MB).
MB = 2 ** 20

# bit pattern of float32 +-1.0 without its sign bit: anything else (0, 0.5, NaN, inf) is not a code
_FLOAT32_ONE = np.int32(0x3F800000)
_SIGN_BIT = np.uint32(0x80000000)
_MINUS_ONE_BITS = np.uint32(0xBF800000)
_ABS_MASK = np.int32(0x7FFFFFFF)
_BLOCK_ROWS = 64      # rows packed at a time: the block's bools stay in cache between the two passes


def code_bytes(bits: int) -> int:
    """Bytes of one packed code of ``bits`` bits: ``ceil(bits / 8)``."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 1:
        raise ValueError(f"bits must be a positive integer, got {bits!r}")
    return (int(bits) + 7) // 8


def storage_mb(n_codes: int, bits: int, *, exact: bool = False) -> float | Fraction:
    """Storage of ``n_codes`` codes of ``bits`` bits each, in MB of 2**20 bytes: ``n * bits / 8 / 2**20``.

    This is the hashing paper's storage column (Table 5), which counts ``bits / 8`` bytes per code
    (a float feature of ``d`` dimensions is ``bits = 32 * d``). ``exact=True`` returns the
    :class:`~fractions.Fraction`, for rounding the way the paper does (half up, not Python's
    half-to-even ``round``). Packed codes whose length is not a multiple of 8 take
    :func:`code_bytes` bytes each in memory, slightly more than this figure."""
    if isinstance(n_codes, bool) or not isinstance(n_codes, (int, np.integer)) or n_codes < 0:
        raise ValueError(f"n_codes must be a non-negative integer, got {n_codes!r}")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 1:
        raise ValueError(f"bits must be a positive integer, got {bits!r}")
    value = Fraction(int(n_codes) * int(bits), 8 * MB)
    return value if exact else float(value)


def _as_array(codes, name: str) -> np.ndarray:
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().cpu().numpy()
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, bits) matrix of +-1 or 0/1 codes, got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no bits (shape {arr.shape}): expected (N, bits) with bits >= 1")
    if arr.dtype == np.bool_:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold numbers (+-1 or 0/1), got dtype {arr.dtype}")
    return arr


def _bad_values(block: np.ndarray) -> int:
    """How many entries of ``block`` are neither -1, 0 nor +1 (NaN counts as bad)."""
    if block.dtype == np.float32:
        v = block.view(np.int32) & _ABS_MASK
        return int(np.count_nonzero((v != _FLOAT32_ONE) & (v != 0)))
    if np.issubdtype(block.dtype, np.floating):
        a = np.abs(block)
        return int(np.count_nonzero(~((a == 1) | (a == 0))))
    return int(np.count_nonzero((block != 1) & (block != 0) & (block != -1)))


def _pack_rows(arr: np.ndarray, out: np.ndarray, start: int, stop: int, name: str) -> None:
    """Pack rows ``start:stop`` of ``arr`` into ``out``, block by block, checking the values."""
    float32 = arr.dtype == np.float32
    for s in range(start, stop, _BLOCK_ROWS):
        block = arr[s:min(s + _BLOCK_ROWS, stop)]
        if float32:
            # fast path: every entry exactly +-1.0 (one bit pattern once the sign bit is set)
            u = block.view(np.uint32)
            if np.count_nonzero((u | _SIGN_BIT) == _MINUS_ONE_BITS) == block.size:
                out[s:s + len(block)] = np.packbits(u < _SIGN_BIT, axis=1)
                continue
        if _bad_values(block):
            ok = (block == 1) | (block == 0) | (block == -1)
            row = s + int(np.flatnonzero(~ok.all(1))[0])
            values = np.unique(block[row - s][~ok[row - s]])[:5]
            raise ValueError(f"{name} must hold only +-1 (or 0/1) codes: row {row} holds {values.tolist()} "
                             "(quantize real-valued descriptors first, e.g. with reidlib.models.quantize.sign)")
        out[s:s + len(block)] = np.packbits(block > 0, axis=1)


def pack_codes(codes, *, name: str = "codes", threads: int | None = None) -> np.ndarray:
    """Pack a (N, bits) matrix of ±1 or {0, 1} codes (numpy or torch, any numeric or bool dtype) into
    a C-contiguous (N, ceil(bits / 8)) ``uint8`` array: +1 / 1 is a set bit, -1 / 0 a clear one.

    ``threads`` (default ``torch.get_num_threads()``) pack row ranges in parallel: numpy releases the
    GIL inside its loops, and one core alone cannot read 515,913 x 2048 float32 codes (4.2 GB) in
    a second.

    A 0 inside a ±1 matrix (``torch.sign(0)``) is a clear bit, i.e. -1: the same as Eq. (1)'s ``0 -> -1``.

    Raises:
        ValueError: ``codes`` (named ``name`` in the message) is not 2-D, has no bits, is not numeric,
            or holds a value other than -1, 0 and 1 (real-valued descriptors must be quantized first,
            e.g. with :func:`reidlib.models.quantize.sign`).
    """
    arr = _as_array(codes, name)
    n, bits = arr.shape
    out = np.empty((n, code_bytes(bits)), np.uint8)
    if arr.dtype == np.bool_:
        out[:] = np.packbits(arr, axis=1)
        return out
    threads = max(1, torch.get_num_threads() if threads is None else int(threads))
    if threads == 1 or n < 16 * _BLOCK_ROWS:
        _pack_rows(arr, out, 0, n, name)
        return out
    # contiguous row ranges, each a whole number of blocks; the first error (lowest row) is raised
    step = -(-n // threads // _BLOCK_ROWS) * _BLOCK_ROWS
    with ThreadPoolExecutor(threads) as pool:
        jobs = [pool.submit(_pack_rows, arr, out, s, min(n, s + step), name) for s in range(0, n, step)]
    for job in jobs:
        job.result()
    return out


def unpack_codes(packed, bits: int, *, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_codes`: (N, ceil(bits / 8)) ``uint8`` -> (N, bits) ``int8`` codes, ±1 when
    ``signed`` (the default) else 0/1. The padding bits of the last byte are dropped."""
    nbytes = code_bytes(bits)
    arr = np.asarray(packed.numpy() if isinstance(packed, torch.Tensor) else packed)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != nbytes:
        raise ValueError(f"packed must be a 2-D uint8 array of {nbytes} bytes per code for {bits} bits, "
                         f"got dtype {arr.dtype} and shape {arr.shape}")
    bits01 = np.unpackbits(arr, axis=1, count=int(bits)).astype(np.int8)
    return 2 * bits01 - 1 if signed else bits01
