"""Packing of ±1 / {0,1} codes and the storage column of the hashing paper's Table 5."""
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reidlib.retrieval import code_bytes, pack_codes, storage_mb, unpack_codes


@settings(max_examples=60, deadline=None)
@given(st.tuples(st.integers(1, 9), st.integers(1, 40)).flatmap(
    lambda shape: arrays(np.int8, shape, elements=st.sampled_from([-1, 1]))))
def test_pack_then_unpack_is_identity(codes):
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (codes.shape[0], (codes.shape[1] + 7) // 8)
    assert np.array_equal(unpack_codes(packed, codes.shape[1]), codes)
    assert np.array_equal(unpack_codes(packed, codes.shape[1], signed=False), (codes > 0).astype(np.int8))


def test_bit_order_is_numpy_packbits_big_endian():
    codes = -np.ones((1, 16), np.float32)
    codes[0, 0] = 1      # first bit -> the most significant bit of byte 0
    codes[0, 15] = 1     # last bit -> the least significant bit of byte 1
    assert pack_codes(codes).tolist() == [[0b1000_0000, 0b0000_0001]]


def test_both_conventions_and_dtypes_give_the_same_bits():
    rng = np.random.default_rng(0)
    pm = np.where(rng.random((7, 24)) > 0.5, 1, -1)
    expected = pack_codes(pm.astype(np.int8))
    for codes in (pm.astype(np.float32), pm.astype(np.float64), torch.from_numpy(pm).float(), (pm > 0).astype(np.uint8),
                  pm > 0, torch.from_numpy(pm > 0)):
        assert np.array_equal(pack_codes(codes), expected)


def test_zero_in_signed_codes_is_a_clear_bit_like_eq1():
    x = torch.tensor([[0.0, 1.0, -1.0, 0.0, 1.0, 1.0, -1.0, -1.0]])
    assert pack_codes(torch.sign(x)).tolist() == [[0b0100_1100]]


def test_packed_size_is_n_bits_over_8_bytes():
    codes = np.ones((1000, 2048), np.float32)
    assert pack_codes(codes).nbytes == 1000 * 2048 // 8
    assert code_bytes(30) == 4 and code_bytes(2048) == 256


@pytest.mark.parametrize("bad", [0.5, np.nan, np.inf, 2.0, -0.999])
def test_real_values_are_refused_with_the_row(bad):
    codes = np.ones((130, 16), np.float32)
    codes[97, 3] = bad
    with pytest.raises(ValueError, match=r"codes must hold only \+-1.*row 97"):
        pack_codes(codes)


def test_bad_shapes_and_dtypes_are_refused():
    with pytest.raises(ValueError, match="2-D"):
        pack_codes(np.ones(8))
    with pytest.raises(ValueError, match="no bits"):
        pack_codes(np.ones((3, 0)))
    with pytest.raises(ValueError, match="numbers"):
        pack_codes(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="gallery_codes must hold only"):
        pack_codes(np.full((2, 8), 3, np.int64), name="gallery_codes")
    with pytest.raises(ValueError, match="4 bytes per code for 30 bits"):
        unpack_codes(np.zeros((2, 3), np.uint8), 30)


def _half_up(x: Fraction) -> Decimal:
    return (Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def test_storage_reproduces_table_5_pure_id_rows():
    # Table 5 counts the 500,000 distractors; a float dimension is 32 bits
    assert storage_mb(500_000, 2048) == pytest.approx(122.0703125)
    rows = {4096 * 32: "7812.5", 2048 * 32: "3906.3", 128 * 32: "244.1", 2048: "122.1"}
    for bits, printed in rows.items():
        assert str(_half_up(storage_mb(500_000, bits, exact=True))) == printed
    # round() rounds half to even: 3906.25 -> 3906.2, which is not the paper's 3906.3
    assert round(storage_mb(500_000, 2048 * 32), 1) == 3906.2


def test_storage_of_the_plus_30_bit_rows_matches_27_or_28_bits_not_30():
    printed = ("123.7", "3907.9")        # 2048 bits + A attribute bits; 2048 floats + A bits
    matches = [a for a in range(1, 64) if (str(_half_up(storage_mb(500_000, 2048 + a, exact=True))),
                                              str(_half_up(storage_mb(500_000, 2048 * 32 + a, exact=True)))) == printed]
    assert matches == [27, 28]


def test_storage_arguments_are_checked():
    with pytest.raises(ValueError, match="n_codes"):
        storage_mb(-1, 8)
    with pytest.raises(ValueError, match="bits"):
        storage_mb(10, 0)


@pytest.mark.parametrize("threads", [1, 3])
def test_parallel_packing_is_the_same_and_reports_the_first_bad_row(threads):
    rng = np.random.default_rng(5)
    codes = np.where(rng.random((5000, 72)) > 0.5, 1, -1).astype(np.float32)
    codes[17, :] = 0.0                     # zeros (torch.sign(0)) leave the fast path: still clear bits
    expected = np.packbits(codes > 0, axis=1)
    assert np.array_equal(pack_codes(codes, threads=threads), expected)
    codes[4000, 5] = 0.25
    codes[2500, 1] = np.nan
    with pytest.raises(ValueError, match="row 2500"):
        pack_codes(codes, threads=threads)
