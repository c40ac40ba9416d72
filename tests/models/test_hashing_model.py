"""The hashing network (``build_model("ssr_hashing", ...)``): the bit budgets, the training output's branches and
their entries, the eval codes (±1, quantized at the relaxation's threshold), no gradient from SSR into the
teacher, the teacher and student starting equal, and the Euclidean ranking of codes being the Hamming ranking."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reidlib.losses import build_criterion
from reidlib.models import build_model
from reidlib.models.hashing import BIT_SPLITS, HashingConfig, bit_split
from reidlib.retrieval import HammingIndex, pack_codes

SMALL = dict(backbone="resnet18", pretrained=False)


def _model(**config):
    torch.manual_seed(0)
    return build_model("ssr_hashing", 5, **SMALL, **config)


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randn(4, 3, 96, 32)


def test_bit_splits_are_six_stripes_and_a_global_vector_twice_as_long():
    for total, (local, global_) in BIT_SPLITS.items():
        assert 6 * local + global_ == total and global_ == 2 * local
    assert bit_split(1024, 6) == (128, 256) and bit_split(80, 8) == (8, 16)
    with pytest.raises(ValueError, match="multiple of stripes \\+ 2 = 8"):
        bit_split(100)
    with pytest.raises(ValueError, match="relaxation must be one of"):
        HashingConfig(relaxation="relu")


def test_training_output_has_fourteen_vectors_with_their_entries(images):
    model = _model(bits=128)
    out = model(images)["branches"]
    assert list(out) == [f"{p}_{v}" for p in "ts" for v in ("l1", "l2", "l3", "l4", "l5", "l6", "g")]
    assert [out[f"s_l{j}"]["feat"].shape[1] for j in range(1, 7)] == [16] * 6 and out["s_g"]["feat"].shape == (4, 32)
    assert out["s_g"]["code"] is out["s_g"]["feat"] and out["s_g"]["teacher_code"] is out["t_g"]["feat"]
    assert "teacher_code" not in out["t_l1"] and out["t_g"]["attribute_logits"].shape == (4, 30)
    assert "attribute_logits" not in out["s_l3"] and out["t_l2"]["logits"].shape == (4, 5)


def test_a_relaxation_network_is_the_student_alone_and_quantizes_at_its_threshold(images):
    model = _model(bits=128, relaxation="sigmoid", bn=False, attributes=0)
    assert list(model.branches) == ["student"] and "teacher" not in model.stages
    out = model(images)["branches"]
    assert list(out) == [f"s_{v}" for v in ("l1", "l2", "l3", "l4", "l5", "l6", "g")]
    assert all(0 <= float(b["feat"].detach().min()) and float(b["feat"].detach().max()) <= 1 for b in out.values())
    model.eval()
    with torch.no_grad():
        enc = model.encode(images)
    assert torch.equal(enc["code"], torch.where(enc["float"] > 0.5, 1.0, -1.0))
    with pytest.raises(ValueError, match="has no teacher"):
        model.eval_output = "teacher"
    with pytest.raises(ValueError, match="no attribute heads"):
        model.eval_output = "attributes"


def test_eval_returns_the_students_code_or_the_chosen_view(images):
    model = _model(bits=128).eval()
    with torch.no_grad():
        code = model(images)
        enc = model.encode(images)
        model.eval_output = "teacher"
        teacher = model(images)
        model.eval_output = "attributes"
        attributes = model(images)
    assert code.shape == (4, 128) and set(code.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(code, torch.where(enc["float"] > 0, 1.0, -1.0)) and torch.equal(teacher, enc["teacher_code"])
    assert attributes.shape == (4, 30)
    with pytest.raises(ValueError, match="eval_output must be one of"):
        model.eval_output = "both"


def test_teacher_and_student_start_equal_and_the_trunk_is_shared():
    model = _model(bits=128)
    t, s = model.stages["teacher"].state_dict(), model.stages["student"].state_dict()
    assert t.keys() == s.keys() and all(torch.equal(t[k], s[k]) for k in t)
    assert model.stages["teacher"].layer3 is not model.stages["student"].layer3
    assert not hasattr(model.stages["teacher"], "layer2") and hasattr(model.trunk, "layer2")


def test_ssr_sends_no_gradient_into_the_teacher(images):
    model = _model(bits=128)
    crit = build_criterion("reid", 5, id_weight=0, triplet_weight=0, extra_terms={"ssr": {}},
                           branch_terms={b: ["ssr"] for b in model.config.branch_names})
    crit.total(model(images), torch.tensor([0, 0, 1, 1])).backward()
    teacher = [p.grad for p in model.stages["teacher"].parameters()] + [p.grad for p in model.branches["teacher"].parameters()]
    assert all(g is None or not g.any() for g in teacher)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.stages["student"].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.trunk.parameters())


def test_euclidean_distances_of_codes_are_four_hamming_distances_and_rank_alike():
    rng = np.random.default_rng(0)
    q, g = (np.where(rng.random((n, 64)) > 0.5, 1.0, -1.0).astype(np.float32) for n in (5, 40))
    d2 = ((q[:, None] - g[None]) ** 2).sum(-1)
    hamming = (q[:, None] != g[None]).sum(-1)
    assert np.array_equal(d2, 4 * hamming)
    _, order = HammingIndex(pack_codes(g)).search(pack_codes(q), 40)
    assert np.array_equal(order, np.argsort(d2, axis=1, kind="stable"))


def test_stripes_need_a_map_height_divisible_by_six(images):
    model = _model(bits=128)
    with pytest.raises(ValueError, match="not divisible by parts=6"):
        model(torch.randn(2, 3, 128, 64))


def test_the_retrieval_code_runs_without_the_teacher(images):
    from reidlib.eval import efficiency

    model = _model(bits=128).eval()
    ran = []
    model.stages["teacher"].register_forward_hook(lambda *a: ran.append("teacher"))
    with torch.no_grad():
        model(images)
        assert ran == [], "the student's code needs no teacher"
        model.encode(images)
        assert ran == ["teacher"], "encode (all views) runs it"
    e = efficiency(model, 96, 32, batch=2, iters=1, warmup=0, device="cpu")
    teacher = sum(p.numel() for m in (model.stages["teacher"], model.branches["teacher"]) for p in m.parameters())
    assert e["feature_dim"] == 128 and e["test_params"] <= e["params"] - teacher
