"""SSR distillation (hashing paper Eq. (1)-(2)): Eq. (1)'s 0 -> -1, the mean-L1 value, the analytic gradient
sign(S^s - sign(S^t)) / numel, no gradient into the teacher, float64 gradcheck away from the kink, the
criterion's "ssr" term and its output contract, bad input."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from reidlib.losses import LOSS_TERMS, SSRTerm, binarize, build_criterion, ssr_distillation


def _away_from_kink(shape, seed=0):
    """A teacher away from 0 and a student at least 0.1 from the teacher's ±1 target (no L1 kink, no flip)."""
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(*shape, generator=g, dtype=torch.float64)
    teacher = teacher + 0.2 * torch.where(teacher > 0, 1.0, -1.0).double()
    offset = (0.1 + torch.rand(*shape, generator=g, dtype=torch.float64)) * torch.where(
        torch.rand(*shape, generator=g) > 0.5, 1.0, -1.0).double()
    return binarize(teacher) + offset, teacher


def test_binarize_is_eq1_with_zero_to_minus_one_and_no_gradient():
    x = torch.tensor([[-2.0, -0.0, 0.0, 1e-30, 3.0]], requires_grad=True)
    b = binarize(x)
    assert b.tolist() == [[-1.0, -1.0, -1.0, 1.0, 1.0]]
    assert b.dtype == x.dtype and b.shape == x.shape and not b.requires_grad
    assert binarize(torch.tensor([0, 2, -1])).tolist() == [-1, 1, -1]
    with pytest.raises(TypeError, match="binarize: expected a torch.Tensor"):
        binarize([1.0, -1.0])


def test_value_is_the_mean_l1_to_the_binarised_teacher():
    student, teacher = torch.randn(4, 6), torch.randn(4, 6)
    expected = (torch.where(teacher > 0, 1.0, -1.0) - student).abs().mean()
    torch.testing.assert_close(ssr_distillation(student, teacher), expected)
    # a teacher already at ±1 and a student equal to it: no loss
    codes = binarize(teacher)
    assert ssr_distillation(codes.clone(), codes).item() == 0.0


def test_student_gradient_is_sign_of_the_gap_over_numel():
    student, teacher = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    student[0, :3] = binarize(teacher)[0, :3]  # three entries exactly at the kink
    student.requires_grad_()
    ssr_distillation(student, teacher).backward()
    target = torch.where(teacher > 0, 1.0, -1.0).double()
    expected = torch.sign(student.detach() - target) / student.numel()
    off_kink = student.detach() != target
    assert off_kink.sum() == student.numel() - 3
    torch.testing.assert_close(student.grad[off_kink], expected[off_kink], rtol=0, atol=0)
    assert (student.grad[~off_kink] == 0).all()  # torch's subgradient at the kink


def test_teacher_gets_exactly_no_gradient():
    student = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    (g_teacher,) = torch.autograd.grad(ssr_distillation(student, teacher), teacher, allow_unused=True)
    assert g_teacher is None
    # through a teacher network: its weights receive nothing from the distillation loss
    torch.manual_seed(0)
    trunk, teacher_head, student_head = nn.Linear(5, 5), nn.Linear(5, 4), nn.Linear(5, 4)
    x = torch.randn(3, 5)
    shared = trunk(x)
    ssr_distillation(student_head(shared), teacher_head(shared)).backward()
    assert teacher_head.weight.grad is None and teacher_head.bias.grad is None
    assert student_head.weight.grad is not None and trunk.weight.grad is not None


def test_gradcheck_float64_away_from_the_kink():
    student, teacher = _away_from_kink((4, 6))
    student.requires_grad_()
    teacher.requires_grad_()
    assert torch.autograd.gradcheck(ssr_distillation, (student, teacher), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize(("student", "teacher", "match"), [
    ((4, 8), (4, 6), r"same shape, got student \(4, 8\) and teacher \(4, 6\)"),
    ((4, 8), (2, 8), r"same shape, got student \(4, 8\) and teacher \(2, 8\)"),
    ((8,), (8,), r"ssr_distillation: expected the student descriptor of shape \(B, D\), got shape \(8,\)"),
    ((4, 8), (4, 8, 1), r"expected the teacher descriptor of shape \(B, D\), got shape \(4, 8, 1\)"),
])
def test_bad_shapes_are_named(student, teacher, match):
    with pytest.raises(ValueError, match=match):
        ssr_distillation(torch.randn(*student), torch.randn(*teacher))


# --- the criterion's "ssr" term -----------------------------------------------------------------------------
PIDS = torch.tensor([0, 0, 1, 1, 2, 2])


def _outputs(seed=0, bits=6, classes=3):
    """A two-branch-pair training output: students carry "code" and "teacher_code", teachers only "code"."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    branches = {}
    for part in ("g", "l1"):
        teacher = {"logits": rand(6, classes), "feat": rand(6, bits)}
        teacher["code"] = teacher["feat"]
        student = {"logits": rand(6, classes), "feat": rand(6, bits)}
        student["code"], student["teacher_code"] = student["feat"], teacher["code"]
        branches[f"t_{part}"], branches[f"s_{part}"] = teacher, student
    return {"branches": branches}


def test_term_through_the_criterion_distils_each_student_branch():
    outputs = _outputs()
    crit = build_criterion("reid", 3, extra_terms={"ssr": {"weight": 0.3}})
    losses = crit(outputs, PIDS)
    for part in ("g", "l1"):
        s = outputs["branches"][f"s_{part}"]
        torch.testing.assert_close(losses[f"s_{part}/ssr"], 0.3 * ssr_distillation(s["code"], s["teacher_code"]))
        assert losses[f"t_{part}/ssr"].item() == 0.0 and losses[f"t_{part}/ssr"].dim() == 0
    assert crit.options["extra_terms"] == {"ssr": {"weight": 0.3}}
    crit.total(outputs, PIDS)  # the zeros sum with the rest


def test_branch_terms_keep_the_term_off_the_teacher_branches():
    crit = build_criterion("reid", 3, extra_terms={"ssr": {"weight": 0.3}},
                           branch_terms={"t_g": ["id", "triplet"], "t_l1": ["id", "triplet"]})
    keys = set(crit(_outputs(), PIDS))
    assert {"s_g/ssr", "s_l1/ssr"} <= keys and not {"t_g/ssr", "t_l1/ssr"} & keys


def test_term_key_names_are_options():
    outputs = _outputs()
    for b in outputs["branches"].values():
        b["real"] = b.pop("code")
        if "teacher_code" in b:
            b["target_vec"] = b.pop("teacher_code")
    crit = build_criterion("reid", 3, extra_terms={"ssr": {"weight": 1.0, "student": "real", "teacher": "target_vec"}})
    s = outputs["branches"]["s_g"]
    torch.testing.assert_close(crit(outputs, PIDS)["s_g/ssr"], ssr_distillation(s["real"], s["target_vec"]))
    assert repr(LOSS_TERMS.build("ssr", 3)) == "SSRTerm(student='code', teacher='teacher_code')"


def test_criterion_gives_the_teacher_network_no_gradient_through_ssr():
    torch.manual_seed(0)
    trunk, teacher_head, student_head = nn.Linear(5, 5), nn.Linear(5, 4), nn.Linear(5, 4)
    shared = trunk(torch.randn(6, 5))
    t_code, s_code = teacher_head(shared), student_head(shared)
    outputs = {"branches": {"s_g": {"logits": torch.zeros(6, 3), "feat": s_code, "code": s_code, "teacher_code": t_code}}}
    crit = build_criterion("reid", 3, id_weight=0, triplet_weight=0, extra_terms={"ssr": {"weight": 0.3}})
    crit.total(outputs, PIDS).backward()
    assert teacher_head.weight.grad is None and teacher_head.bias.grad is None
    target = torch.where(t_code.detach() > 0, 1.0, -1.0)
    torch.testing.assert_close(student_head.bias.grad, 0.3 * (torch.sign(s_code.detach() - target) / s_code.numel()).sum(0))


def test_contract_errors_are_named():
    outputs = _outputs()
    for b in outputs["branches"].values():
        b.pop("teacher_code", None)
    crit = build_criterion("reid", 3, extra_terms={"ssr": {"weight": 0.3}})
    with pytest.raises(KeyError, match="no branch of the training output holds 'teacher_code'"):
        crit(outputs, PIDS)
    outputs = _outputs()
    del outputs["branches"]["s_g"]["code"]
    with pytest.raises(KeyError, match="holds 'teacher_code' but not the student's 'code'"):
        crit(outputs, PIDS)
    with pytest.raises(ValueError, match="ssr term: teacher must name a branch output entry"):
        SSRTerm(teacher="")
