"""Self-distilling smooth relaxation (SSR) of the hashing paper (Jin et al. 2021, "Hashing person re-ID with
self-distilling smooth relaxation", Sec. 4.2, Eq. (1)-(2) and the ``alpha`` term of Eq. (14)).

The teacher's real-valued descriptor ``S^t`` is quantized element-wise by Eq. (1),

    s' = +1 if s > 0,  -1 if s <= 0                                                         (1)

(:func:`binarize`; ``0 -> -1``, unlike :func:`torch.sign`), and the real-valued student descriptor ``S^s``
is pulled towards those codes by an L1 loss,

    L_d = || sign(S^t) - S^s ||_1                                                          (2)

(:func:`ssr_distillation`). Eq. (1) is piecewise constant, so no gradient reaches the teacher through
``L_d`` -- the paper uses **no** straight-through estimator; the teacher learns only from its own ID,
triplet and attribute losses.

**Normalisation (a CHOICE).** The paper does not say how the L1 norm is normalised. Here it is the mean
over elements and batch (``F.l1_loss``'s default): Eq. (14) averages the 7 per-vector terms, and a sum
over a 2048-bit vector would make ``alpha = 0.3`` outweigh the cross-entropy terms by orders of magnitude.

**The criterion's ``"ssr"`` term** (``extra_terms={"ssr": {"weight": w}}``). Output contract: a student
branch's training output holds

* ``"code"``: its real-valued reduced vector ``S^s`` ``(B, bits)`` (before any quantization), and
* ``"teacher_code"``: the teacher's matching vector ``S^t`` ``(B, bits)``, as the teacher computed it
  (it need not be detached: :func:`ssr_distillation` detaches it).

Both names are options (``student=``, ``teacher=``). Which branches take the term is the criterion's own
choice, ``branch_terms={"s_g": ["id", "triplet", "ssr", ...], "t_g": ["id", "triplet", ...], ...}``; without
``branch_terms`` every branch takes it, and a branch that holds no ``"teacher_code"`` (a teacher branch)
gives a constant 0 (so its ``"<branch>/ssr"`` curve reads 0). An output in which *no* branch holds
``"teacher_code"`` is a broken contract (a misnamed key would otherwise train silently without
distillation) and raises :class:`KeyError`.

**Weights of Eq. (14).** The criterion *sums* each term over the branches that take it, while Eq. (14)
averages: ``(1/14) sum L_Tri + (1/14) sum L_ID + (alpha/7) sum L_d + (beta/2) sum L_attr``. Eq. (14) is
therefore ``id_weight = triplet_weight = 1/14``, ``ssr`` weight ``alpha/7`` and ``attributes`` weight
``beta/2``, or any common multiple of these (e.g. 1, 1, ``2 alpha``, ``7 beta``), which changes only the
learning rate's scale.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from reidlib.nn import check_shape

from .criterion import branches_of, register_term

__all__ = ["SSRTerm", "binarize", "ssr_distillation"]


def binarize(x: Tensor) -> Tensor:
    """Eq. (1): ``+1`` where ``x > 0``, ``-1`` elsewhere (``0 -> -1``), in ``x``'s dtype and shape.

    Computed on ``x.detach()``: the result carries no gradient (Eq. (1) is piecewise constant, and the
    paper uses no straight-through estimator). The loss's own small operator; the test-time codes of a
    model are made by its own ``sign``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"binarize: expected a torch.Tensor, got {type(x).__name__}")
    x = x.detach()
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x > 0, one, -one)


def ssr_distillation(student: Tensor, teacher: Tensor) -> Tensor:
    """Eq. (2) as a mean: ``mean |binarize(teacher) - student|`` over the batch and the elements.

    Args:
        student: the real-valued student descriptor ``S^s`` ``(B, D)``.
        teacher: the teacher's real-valued descriptor ``S^t`` ``(B, D)`` (the same shape); it is detached
            and quantized by :func:`binarize`.

    Returns:
        A 0-d tensor. Its gradient is ``dL/dS^s = sign(S^s - sign(S^t)) / (B * D)`` (with
        :func:`torch.sign`, so 0 where ``S^s`` equals its target exactly, the L1 kink), and exactly none
        into the teacher.

    Raises:
        ValueError: ``student`` or ``teacher`` is not ``(B, D)``, or their shapes differ (naming both).
    """
    check_shape(student, "B D", who="ssr_distillation", what="the student descriptor")
    check_shape(teacher, "B D", who="ssr_distillation", what="the teacher descriptor")
    if student.shape != teacher.shape:
        raise ValueError(f"ssr_distillation: the student and teacher descriptors must have the same shape, got "
                         f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)}")
    return F.l1_loss(student, binarize(teacher.detach()).to(student.dtype))


def _zero_like_branch(out: Mapping[str, Any]) -> Tensor:
    """A constant 0-d zero on the device (and floating dtype) of the branch's first tensor."""
    for value in out.values():
        if isinstance(value, Tensor):
            dtype = value.dtype if value.is_floating_point() else torch.get_default_dtype()
            return torch.zeros((), dtype=dtype, device=value.device)
    return torch.zeros(())


class SSRTerm:
    """The criterion's ``"ssr"`` term: :func:`ssr_distillation` of a branch's ``student`` entry (default
    ``"code"``) towards its ``teacher`` entry (default ``"teacher_code"``); 0 for a branch without the
    teacher entry, :class:`KeyError` when no branch of the output has one (see the module docstring)."""

    def __init__(self, *, student: str = "code", teacher: str = "teacher_code") -> None:
        for name, key in (("student", student), ("teacher", teacher)):
            if not isinstance(key, str) or not key:
                raise ValueError(f"ssr term: {name} must name a branch output entry (a non-empty str), got {key!r}")
        self.student, self.teacher = student, teacher

    def __call__(self, out: Mapping[str, Any], pids: Tensor, outputs: Mapping[str, Any]) -> Tensor:
        if self.teacher not in out:
            if not any(self.teacher in b for b in branches_of(outputs).values()):
                raise KeyError(f"ssr term: no branch of the training output holds {self.teacher!r} (the teacher's "
                               f"vector each student branch must carry; this branch's keys: {sorted(out)})")
            return _zero_like_branch(out)
        if self.student not in out:
            raise KeyError(f"ssr term: a branch holds {self.teacher!r} but not the student's {self.student!r} "
                           f"(keys: {sorted(out)})")
        return ssr_distillation(out[self.student], out[self.teacher])

    def __repr__(self) -> str:
        return f"SSRTerm(student={self.student!r}, teacher={self.teacher!r})"


@register_term("ssr")
def ssr_term(num_classes: int, *, student: str = "code", teacher: str = "teacher_code") -> SSRTerm:
    """``extra_terms={"ssr": {"weight": alpha / 7, "student": "code", "teacher": "teacher_code"}}``."""
    return SSRTerm(student=student, teacher=teacher)
