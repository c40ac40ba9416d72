"""Quantization and relaxations (reidlib.models.quantize): Eq. (1) sign, Table 6's thresholds, the DSH
regulariser, the hash head (no ReLU, optional BN), and the errors."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.models.quantize import DSH_WEIGHT, RELAXATIONS, HashHead, dsh_regulariser, quantize, sign

finite64 = st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=40)


def test_sign_is_eq1_zero_to_minus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-30, 3.0])
    assert sign(x).tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0]
    assert sign(torch.zeros(1)).item() == -1.0 and torch.sign(torch.zeros(1)).item() == 0.0  # unlike torch.sign
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64, torch.int8):
        out = sign(torch.tensor([-3, 0, 2], dtype=dtype))
        assert out.dtype == dtype and out.tolist() == [-1, -1, 1]


def test_sign_has_no_gradient_path():
    x = torch.randn(4, 5, requires_grad=True)
    out = sign(x)
    assert not out.requires_grad and out.grad_fn is None
    # a loss on the target (the SSR teacher's sign) sends nothing back into x
    loss = (x * 0).sum() + (sign(x) * 2).sum()
    loss.backward()
    assert (x.grad == 0).all()


def test_relaxation_table():
    assert set(RELAXATIONS) == {"sigmoid", "hardsigmoid", "tanh", "hardtanh", "dsh", "ssr", "none"}
    thresholds = {name: r.threshold for name, r in RELAXATIONS.items()}
    assert thresholds == {"sigmoid": 0.5, "hardsigmoid": 0.5, "tanh": 0.0, "hardtanh": 0.0, "dsh": 0.0, "ssr": 0.0, "none": 0.0}
    z = torch.linspace(-5, 5, 101, dtype=torch.float64)
    for name in ("dsh", "ssr", "none"):
        activation, _ = RELAXATIONS[name]
        assert torch.equal(activation(z), z)
    for name, lo, hi in (("sigmoid", 0, 1), ("hardsigmoid", 0, 1), ("tanh", -1, 1), ("hardtanh", -1, 1)):
        activation, threshold = RELAXATIONS[name]
        a = activation(z)
        assert a.min() >= lo and a.max() <= hi, name
        assert activation(torch.zeros(1, dtype=torch.float64)).item() == threshold, name  # threshold = image of 0
        assert (a.diff() >= 0).all(), name


def test_quantize_thresholds():
    assert quantize(torch.tensor([0.4, 0.5, 0.6]), "sigmoid").tolist() == [-1.0, -1.0, 1.0]
    assert quantize(torch.tensor([0.4, 0.5, 0.6]), "hardsigmoid").tolist() == [-1.0, -1.0, 1.0]
    assert quantize(torch.tensor([-0.1, 0.0, 0.1]), "tanh").tolist() == [-1.0, -1.0, 1.0]
    assert quantize(torch.tensor([-0.1, 0.0, 0.1]), "hardtanh").tolist() == [-1.0, -1.0, 1.0]
    assert quantize(torch.tensor([-0.1, 0.0, 0.1])).tolist() == [-1.0, -1.0, 1.0]  # 'ssr' by default
    # the pitfall: Eq. (1) at 0 maps every sigmoid output to +1
    s = torch.sigmoid(torch.linspace(-4, 4, 9))
    assert (sign(s) == 1).all()
    assert quantize(s, "sigmoid").tolist() == [-1.0] * 5 + [1.0] * 4


@settings(max_examples=60, deadline=None)
@given(values=finite64)
def test_quantize_tanh_is_sign_of_tanh(values):
    x = torch.tensor(values, dtype=torch.float64)
    assert torch.equal(quantize(x, "tanh"), sign(torch.tanh(x)))
    # thresholding the output at 0 is thresholding the pre-activation at 0
    assert torch.equal(quantize(torch.tanh(x), "tanh"), sign(x))
    assert torch.equal(quantize(torch.nn.functional.hardtanh(x), "hardtanh"), sign(x))


@settings(max_examples=60, deadline=None)
@given(values=finite64)
def test_quantize_sigmoid_output_is_sign_of_preactivation(values):
    x = torch.tensor(values, dtype=torch.float64)
    x = x[x.abs() > 1e-12]  # closer to 0, sigmoid(x) rounds to 0.5 in float64
    assert torch.equal(quantize(torch.sigmoid(x), "sigmoid"), sign(x))
    assert torch.equal(quantize(torch.nn.functional.hardsigmoid(x), "hardsigmoid"), sign(x))


def test_dsh_regulariser_is_a_mean():
    x = torch.tensor([[1.0, -1.0, 0.0, 2.0]], dtype=torch.float64, requires_grad=True)
    r = dsh_regulariser(x)
    assert DSH_WEIGHT == 0.01
    torch.testing.assert_close(r, torch.tensor(0.01 * (0 + 0 + 1 + 1) / 4, dtype=torch.float64))
    torch.testing.assert_close(dsh_regulariser(x.detach().repeat(3, 2)), r.detach())  # mean: size-free
    torch.testing.assert_close(dsh_regulariser(x, weight=1.0), r / 0.01)
    assert dsh_regulariser(torch.tensor([1.0, -1.0, 1.0])).item() == 0.0  # zero on codes
    r.backward()  # d/dx of | |x| - 1 |: pulls 2 down to 1 and 0 (subgradient 0 at x = 0) stays
    torch.testing.assert_close(x.grad, torch.tensor([[0.0, 0.0, 0.0, 0.01 / 4]], dtype=torch.float64))
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        dsh_regulariser(x, weight=-1.0)


def test_hash_head_has_no_relu_and_outputs_negatives():
    torch.manual_seed(0)
    feat = torch.rand(8, 16)  # non-negative, as pooled post-ReLU features are
    head = HashHead(16, 32)
    assert head.relaxation == "ssr" and head.threshold == 0.0
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6)) for m in head.modules())
    out = head(feat)
    assert out.shape == (8, 32)
    assert (out < 0).any() and (out > 0).any()
    torch.testing.assert_close(out, head.reduction(feat))  # SSR: no activation at all
    codes = head.codes(feat)
    assert not codes.requires_grad
    assert torch.equal(codes, quantize(out.detach(), "ssr")) and set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_hash_head_bn_option():
    plain, with_bn = HashHead(16, 32, bn=False), HashHead(16, 32, bn=True)
    assert plain.bn is None and plain.reduction.bias is not None
    assert isinstance(with_bn.bn, torch.nn.BatchNorm1d) and with_bn.bn.num_features == 32
    assert with_bn.reduction.bias is None  # BN's mean subtraction cancels a bias
    assert not with_bn.bn.bias.requires_grad and (with_bn.bn.bias == 0).all()  # no shift, as BNNeck
    feat = torch.rand(64, 16, generator=torch.Generator().manual_seed(1)) + 2  # far from zero-mean inputs
    out = with_bn.train()(feat)
    # BN before the activation: each bit is centred at 0, the threshold of Eq. (1); without BN it is not
    torch.testing.assert_close(out.mean(0), torch.zeros(32), rtol=0, atol=1e-5)
    assert plain(feat).mean(0).abs().max() > 0.1
    sig = HashHead(16, 32, relaxation="sigmoid", bn=True).train()
    s = sig(feat)
    assert (s > 0).all() and (s < 1).all()
    torch.testing.assert_close(s, torch.sigmoid(sig.bn(sig.reduction(feat))))
    sig.eval()
    z = sig.bn(sig.reduction(feat))
    assert torch.equal(sig.codes(feat), sign(z))  # codes at 0.5 on the output = Eq. (1) on the pre-activation


def test_hash_head_every_relaxation():
    feat = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    for name, (activation, threshold) in RELAXATIONS.items():
        head = HashHead(6, 5, relaxation=name).eval()
        torch.testing.assert_close(head(feat), activation(head.reduction(feat)))
        assert torch.equal(head.codes(feat), quantize(head(feat), name)) and head.threshold == threshold


def test_errors_are_reported():
    with pytest.raises(ValueError, match=r"relaxation must be one of \['dsh', 'hardsigmoid', 'hardtanh', 'none', 'sigmoid', "
                                         r"'ssr', 'tanh'\], got 'relu'"):
        HashHead(16, 8, relaxation="relu")
    with pytest.raises(ValueError, match="quantize: relaxation must be one of"):
        quantize(torch.zeros(3), "Sigmoid")
    with pytest.raises(ValueError, match="HashHead: bits must be an integer >= 1, got bits=0"):
        HashHead(16, 0)
    with pytest.raises(ValueError, match="in_dim must be an integer >= 1"):
        HashHead(True, 8)
    with pytest.raises(ValueError, match=r"HashHead: expected pooled features of shape \(B, 16\), got shape \(2, 8\)"):
        HashHead(16, 8)(torch.rand(2, 8))
    with pytest.raises(ValueError, match=r"quantize: x must hold finite values, got 1 NaN/inf of 3"):
        quantize(torch.tensor([0.2, float("nan"), 0.7]), "sigmoid")
    with pytest.raises(ValueError, match="sign: x must hold finite values"):
        sign(torch.tensor([float("inf"), 1.0]))
    feat = torch.rand(2, 4)
    feat[0, 1] = float("nan")
    with pytest.raises(ValueError, match="quantize: x must hold finite values"):
        HashHead(4, 8).codes(feat)
    with pytest.raises(TypeError, match="dtype"):
        sign(torch.tensor([True, False]))
