"""AAB = SAAB + CAAB (reidlib.models.attention), the hashing paper's Eqs. (8)-(10): shapes, softmax rows,
identity at initialisation, an independent einsum recomputation, the parameter count, gradcheck, errors."""
from __future__ import annotations

import pytest
import torch

from reidlib.models.attention import AAB, CAAB, SAAB, aab_parameter_count

pytestmark = pytest.mark.usefixtures("one_thread")


def fmap(b: int, c: int, h: int, w: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def randomise_raising(module: torch.nn.Module, seed: int = 1) -> None:
    """Give every raising conv random weights and biases (they start at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (SAAB, CAAB)):
                m.raising.weight.copy_(torch.randn(m.raising.weight.shape, generator=g, dtype=m.raising.weight.dtype))
                m.raising.bias.copy_(torch.randn(m.raising.bias.shape, generator=g, dtype=m.raising.bias.dtype))


def reduce_by_hand(conv: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv as an einsum over channels: (B, C, H, W) -> (B, C', X)."""
    return torch.einsum("dc,bcx->bdx", conv.weight[:, :, 0, 0], x.flatten(2)) + conv.bias[None, :, None]


def softmax_by_hand(e: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax written as Eq. (8)/(9): exp(e_ij) / sum_p exp(e_ip) (shifted by the row max)."""
    z = torch.exp(e - e.amax(-1, keepdim=True))
    return z / z.sum(-1, keepdim=True)


def saab_by_hand(block: SAAB, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b, c, h, w = x.shape
    f1, f2, f3 = (reduce_by_hand(conv, x) for conv in (block.reduce1, block.reduce2, block.reduce3))
    rel = softmax_by_hand(torch.einsum("bdi,bdj->bij", f1, f2))  # R^S_ij from f_i of F^S1, f_j of F^S2
    agg = torch.einsum("bdj,bij->bdi", f3, rel)  # F^S3 (R^S)^T
    out = torch.einsum("cd,bdx->bcx", block.raising.weight[:, :, 0, 0], agg) + block.raising.bias[None, :, None]
    return out.reshape(b, c, h, w), rel


def caab_by_hand(block: CAAB, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b, c, h, w = x.shape
    f1, f2, f3 = (reduce_by_hand(conv, x) for conv in (block.reduce1, block.reduce2, block.reduce3))
    rel = softmax_by_hand(torch.einsum("bnx,bmx->bnm", f2, f1))  # R^C_nm from row n of F^C2, row m of F^C1
    agg = torch.einsum("bnm,bmx->bnx", rel, f3)  # R^C F^C3
    out = torch.einsum("cd,bdx->bcx", block.raising.weight[:, :, 0, 0], agg) + block.raising.bias[None, :, None]
    return out.reshape(b, c, h, w), rel


def test_shapes_and_relations():
    x = fmap(2, 16, 5, 3, dtype=torch.float32)
    aab = AAB(16, reduction=4)
    out, rels = aab(x, return_relation=True)
    assert out.shape == x.shape
    assert set(rels) == {"position", "channel"}
    assert rels["position"].shape == (2, 15, 15)  # X x X, X = H * W
    assert rels["channel"].shape == (2, 4, 4)  # C/r x C/r
    for block, shape in ((SAAB(16, 4), (2, 15, 15)), (CAAB(16, 4), (2, 4, 4))):
        y, rel = block(x, return_relation=True)
        assert y.shape == x.shape and rel.shape == shape
        torch.testing.assert_close(block.relation(x), rel)
        assert block(x).shape == x.shape
    torch.testing.assert_close(aab.relation(x)["channel"], rels["channel"])
    assert aab.saab.reduced == 4 and aab.caab.reduced == 4


def test_softmax_rows_sum_to_one_float64():
    x = fmap(3, 12, 4, 3, seed=2) * 3  # larger inputs: sharper rows
    aab = AAB(12, reduction=3).double()
    for name, rel in aab.relation(x).items():
        assert (rel >= 0).all(), name
        torch.testing.assert_close(rel.sum(-1), torch.ones(rel.shape[:-1], dtype=torch.float64), rtol=0, atol=1e-12)
        # rows, not columns: the column sums are not all 1
        assert not torch.allclose(rel.sum(-2), torch.ones(rel.shape[:-1], dtype=torch.float64)), name


def test_identity_at_initialisation():
    x = fmap(2, 8, 4, 2, seed=3, dtype=torch.float32)
    aab = AAB(8, reduction=2)
    for block in (aab.saab, aab.caab):
        assert (block.raising.weight == 0).all() and (block.raising.bias == 0).all()
        assert (block(x) == 0).all()
    assert torch.equal(aab(x), x)
    assert torch.equal(AAB(8, 2, position=False)(x), x) and torch.equal(AAB(8, 2, channel=False)(x), x)
    # and it trains from there: the raising convs get gradient at once
    (aab(x) * fmap(2, 8, 4, 2, seed=4, dtype=torch.float32)).sum().backward()
    assert aab.saab.raising.weight.grad.abs().sum() > 0 and aab.caab.raising.weight.grad.abs().sum() > 0


def test_blocks_match_einsum_recomputation_float64():
    x = fmap(2, 12, 3, 4, seed=5)
    saab, caab = SAAB(12, 3).double(), CAAB(12, 3).double()
    randomise_raising(saab, 6)
    randomise_raising(caab, 7)
    with torch.no_grad():
        for block, by_hand in ((saab, saab_by_hand), (caab, caab_by_hand)):
            out, rel = block(x, return_relation=True)
            out_ref, rel_ref = by_hand(block, x)
            torch.testing.assert_close(rel, rel_ref, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(out, out_ref, rtol=1e-10, atol=1e-10)
            assert out.abs().max() > 1e-3  # not trivially zero


def test_aab_matches_eq10_float64():
    x = fmap(2, 8, 3, 3, seed=8)
    aab = AAB(8, 2).double()
    randomise_raising(aab, 9)
    with torch.no_grad():
        s, _ = saab_by_hand(aab.saab, x)
        c, _ = caab_by_hand(aab.caab, x)
        torch.testing.assert_close(aab(x), (s + c) * x + x, rtol=1e-10, atol=1e-10)
        # one block alone (Table 7's ablations need neither; the option exists for inspection)
        only_s = AAB(8, 2, channel=False).double()
        only_s.saab.load_state_dict(aab.saab.state_dict())
        assert only_s.caab is None and set(only_s.relation(x)) == {"position"}
        torch.testing.assert_close(only_s(x), s * x + x, rtol=1e-10, atol=1e-10)


def test_samples_are_independent_and_positions_permute():
    x = fmap(3, 8, 4, 3, seed=10)
    aab = AAB(8, 2).double()
    randomise_raising(aab, 11)
    with torch.no_grad():
        out = aab(x)
        torch.testing.assert_close(aab(x[1:2]), out[1:2], rtol=1e-12, atol=1e-12)  # no mixing across the batch
        # both attentions are equivariant to a permutation of the positions
        perm = torch.randperm(12, generator=torch.Generator().manual_seed(12))
        xp = x.flatten(2)[:, :, perm].reshape(x.shape)
        torch.testing.assert_close(aab(xp), out.flatten(2)[:, :, perm].reshape(x.shape), rtol=1e-10, atol=1e-10)


def test_parameter_count_at_2048_r8():
    C, r = 2048, 8
    expected = 6 * (C * C // r + C // r) + 2 * (C // r * C + C)
    assert expected == 4_199_936  # "4.20 M per AAB" (spec 1.6)
    aab = AAB(C, r)
    assert sum(p.numel() for p in aab.parameters()) == expected == aab_parameter_count(C, r)
    half = sum(p.numel() for p in AAB(C, r, channel=False).parameters())
    assert half == expected // 2 == aab_parameter_count(C, r, channel=False)


def test_gradcheck_float64():
    aab = AAB(8, 2).double()
    randomise_raising(aab, 13)
    with torch.no_grad():  # small weights keep the softmax away from saturation, so finite differences are clean
        for p in aab.parameters():
            p.mul_(0.5)
    x = fmap(2, 8, 3, 2, seed=14).requires_grad_()
    assert torch.autograd.gradcheck(aab, (x,))


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match=r"AAB: channels must be divisible by reduction.*channels=10, reduction=4"):
        AAB(10, 4)
    with pytest.raises(ValueError, match="SAAB: reduction must be >= 1"):
        SAAB(8, 0)
    with pytest.raises(ValueError, match="CAAB: channels must be >= 1"):
        CAAB(0, 1)
    with pytest.raises(ValueError, match="reduction must be an integer"):
        AAB(8, 2.0)
    with pytest.raises(ValueError, match="at least one of position"):
        AAB(8, 2, position=False, channel=False)
    aab = AAB(8, 2)
    with pytest.raises(ValueError, match=r"AAB: expected a feature map of shape \(B, 8, H, W\), got shape \(8, 3, 3\)"):
        aab(torch.rand(8, 3, 3))
    with pytest.raises(ValueError, match=r"AAB: expected a feature map of shape \(B, 8, H, W\), got shape \(2, 4, 3, 3\)"):
        aab(torch.rand(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"SAAB: .*\(B, 8, H, W\)"):
        SAAB(8, 2).relation(torch.rand(2, 6, 3, 3))
    with pytest.raises(ValueError, match=r"CAAB: .*\(B, 8, H, W\)"):
        CAAB(8, 2)(torch.rand(2, 8, 3))
