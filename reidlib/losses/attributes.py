"""Binary attribute learning of the hashing paper (Jin et al. 2021, Sec. 5.1, Eq. (3)-(5) and the ``beta`` term
of Eq. (14)).

Each of the ``A`` binary attributes (30 on Market-1501, 23 on DukeMTMC-reID) is a two-way classification.
Eq. (3) writes a softmax over two logits ``z = [z_0, z_1]`` (0 = no, 1 = yes) and Eq. (4) the cross-entropy
averaged over the attributes,

    p(j | x) = exp(z_j) / (exp(z_0) + exp(z_1)),     L_attr = -(1/A) sum_v sum_j q_v(j) log p_v(j).   (3)-(4)

A two-way softmax depends only on the difference of its logits: ``p(1 | x) = sigmoid(z_1 - z_0)``. So one
logit per attribute, ``z = z_1 - z_0``, with the binary cross-entropy on ``sigmoid(z)`` is Eq. (3)-(4)
exactly (the paper's text says "a fully-connected layer followed by a Sigmoid function, and the BCE loss");
:func:`attribute_loss` is that form, averaged over the attributes and the batch.

**Unknown labels.** A label may be unknown (DukeMTMC-attribute's ``top`` code 0 for two identities, read as
unknown by :mod:`reidlib.data.attributes`). An unknown entry -- ``NaN`` in the targets, or ``False`` in the
optional ``mask`` -- contributes nothing to the loss and does not count in its denominator: the loss is the
mean over the *known* (sample, attribute) entries, the same value as the loss on those entries alone. A
batch with no known entry gives 0.

**Test-time code**, Eq. (5): the paper maps ``z_v0 > z_v1`` ("no" more probable) to ``+1``.
:func:`attribute_code` uses the opposite, readable convention by default, ``+1`` = attribute present
(``z > 0``, i.e. ``p(yes) > 0.5``), ``-1`` otherwise; ``convention="paper"`` gives Eq. (5) as printed. The
two differ by a flip of every bit (except at an exact tie ``z = 0``, which both map to ``-1``), and a
consistent flip of every code leaves all Hamming distances unchanged, so retrieval is the same.

**The criterion's ``"attributes"`` term** (``extra_terms={"attributes": {"weight": w}}``). Contract:

* a branch with an attribute head holds ``"attribute_logits"`` ``(B, A)`` (one logit per attribute; the
  hashing paper: the global vectors of the teacher and of the student);
* the targets are ``"attribute_targets"`` ``(B, A)``, floats 1 (yes), 0 (no) and ``NaN`` (unknown), per
  sample of the batch, at the **top level** of the training output (``outputs["attribute_targets"]``; a
  branch may carry its own under the same key, which then takes precedence). The criterion hands its terms
  the ids only, not the batch, so whoever has the labels puts them into the output: a trainer hook's
  ``on_forward`` (``outputs["attribute_targets"] = table[batch.indices]``, with ``table`` the per-record
  ``(N, A)`` frame of :meth:`reidlib.data.datasets.ReIDDataset.attribute_targets` for ``"train"`` as a
  float tensor, ``<NA>`` as ``NaN``, and ``batch.indices`` the samples' positions in the training set), or a
  model that takes the targets.

Both key names are options (``logits=``, ``targets=``). A branch without ``"attribute_logits"`` gives a
constant 0 (restrict the term to the branches with heads through the criterion's ``branch_terms`` to keep
those zero curves out of the record); an output in which no branch holds ``"attribute_logits"``, or with no
targets for a branch that does, raises :class:`KeyError`. See :mod:`reidlib.losses.distillation` for the
weights that make the criterion's sum Eq. (14) (``attributes`` weight ``beta/2`` next to ``id_weight = 1/14``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from reidlib.nn import check_shape

from .criterion import branches_of, register_term
from .distillation import _zero_like_branch

__all__ = ["AttributeTerm", "attribute_code", "attribute_loss"]


def attribute_loss(logits: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """Eq. (3)-(4) in the single-logit form: binary cross-entropy with logits, mean over the known entries.

    Args:
        logits: ``(B, A)``, one logit ``z = z_1 - z_0`` per attribute (``p(yes) = sigmoid(z)``); no ``NaN``.
        targets: ``(B, A)``, 1 (yes) or 0 (no); ``NaN`` marks an unknown label. Any real or bool dtype
            (computed in ``logits``' dtype).
        mask: optional ``(B, A)`` bool, ``True`` where the label is known. An entry is used where it is
            known by both ``mask`` and ``targets`` (not ``NaN``); the value of a masked-out target is
            not read (it may be any placeholder).

    Returns:
        A 0-d tensor: ``sum_known BCE(z, t) / #known`` (0 when nothing is known). Without unknowns it is
        ``F.binary_cross_entropy_with_logits(logits, targets)``, i.e. Eq. (4)'s ``1/A`` mean, then the
        batch mean.

    Raises:
        ValueError: a shape that is not ``(B, A)`` or differs from ``logits``', a non-bool ``mask``,
            ``NaN`` in ``logits``, or a known target other than 0 and 1 -- naming the argument.
    """
    check_shape(logits, "B A", who="attribute_loss", what="logits (one per attribute)")
    if not logits.is_floating_point():
        raise ValueError(f"attribute_loss: logits must be floating point, got dtype {logits.dtype}")
    for name, x in (("targets", targets), ("mask", mask)):
        if x is None:
            continue
        check_shape(x, "B A", who="attribute_loss", what=name)
        if x.shape != logits.shape:
            raise ValueError(f"attribute_loss: {name} must have logits' shape {tuple(logits.shape)}, "
                             f"got {tuple(x.shape)}")
    if mask is not None and mask.dtype != torch.bool:
        raise ValueError(f"attribute_loss: mask must be a bool tensor (True = label known), got dtype {mask.dtype}")
    targets = targets.to(device=logits.device, dtype=logits.dtype)
    known = ~torch.isnan(targets)
    if mask is not None:
        known = known & mask.to(logits.device)
    # one host sync for both checks
    nan_logits, bad_targets = torch.stack([
        torch.isnan(logits).any(), (known & (targets != 0) & (targets != 1)).any()]).tolist()
    if nan_logits:
        raise ValueError(f"attribute_loss: logits must be finite numbers, got NaN at {_first(torch.isnan(logits))}")
    if bad_targets:
        where = known & (targets != 0) & (targets != 1)
        at = _first(where)
        raise ValueError(f"attribute_loss: targets must be 0 (no), 1 (yes) or NaN (unknown), got "
                         f"{targets[at].item()!r} at {at}")
    filled = torch.where(known, targets, torch.zeros((), dtype=targets.dtype, device=targets.device))
    per_entry = F.binary_cross_entropy_with_logits(logits, filled, reduction="none")
    zero = torch.zeros((), dtype=per_entry.dtype, device=per_entry.device)
    return torch.where(known, per_entry, zero).sum() / known.sum().clamp(min=1)


def _first(where: Tensor) -> tuple[int, ...]:
    """The (sample, attribute) index of the first True entry of ``where``."""
    return tuple(int(i) for i in where.nonzero()[0])


def attribute_code(logits: Tensor, *, convention: Literal["present", "paper"] = "present") -> Tensor:
    """Eq. (5): the ``±1`` attribute code of each sample, ``(B, A) -> (B, A)`` in ``logits``' dtype, no gradient.

    ``convention="present"`` (default): ``+1`` where ``z > 0`` (the attribute is more probably present),
    ``-1`` where ``z <= 0``. ``convention="paper"``: Eq. (5) as printed, ``+1`` where ``z_0 > z_1`` ("no" more
    probable, ``z < 0``), ``-1`` where ``z >= 0``. Apart from exact ties (``z = 0``: ``-1`` under both) one is
    the other with every bit flipped, which leaves every Hamming distance unchanged.
    """
    check_shape(logits, "B A", who="attribute_code", what="logits (one per attribute)")
    z = logits.detach()
    one = torch.ones((), dtype=z.dtype, device=z.device)
    if convention == "present":
        return torch.where(z > 0, one, -one)
    if convention == "paper":
        return torch.where(z < 0, one, -one)
    raise ValueError(f"attribute_code: convention must be 'present' or 'paper', got {convention!r}")


class AttributeTerm:
    """The criterion's ``"attributes"`` term: :func:`attribute_loss` of a branch's ``logits`` entry (default
    ``"attribute_logits"``) against the ``targets`` entry (default ``"attribute_targets"``; the branch's own,
    else the output's top-level one; ``NaN`` = unknown). See the module docstring for the contract."""

    def __init__(self, *, logits: str = "attribute_logits", targets: str = "attribute_targets") -> None:
        for name, key in (("logits", logits), ("targets", targets)):
            if not isinstance(key, str) or not key:
                raise ValueError(f"attributes term: {name} must name an output entry (a non-empty str), got {key!r}")
        self.logits, self.targets = logits, targets

    def __call__(self, out: Mapping[str, Any], pids: Tensor, outputs: Mapping[str, Any]) -> Tensor:
        if self.logits not in out:
            if not any(self.logits in b for b in branches_of(outputs).values()):
                raise KeyError(f"attributes term: no branch of the training output holds {self.logits!r} "
                               f"(the attribute head's (B, A) logits); this branch's keys: {sorted(out)}")
            return _zero_like_branch(out)
        targets = out.get(self.targets, outputs.get(self.targets) if isinstance(outputs, Mapping) else None)
        if targets is None:
            raise KeyError(f"attributes term: a branch holds {self.logits!r} but the training output has no "
                           f"{self.targets!r} (B, A) targets, at the top level or in the branch; put the batch's "
                           f"labels there (1 / 0 / NaN for unknown), e.g. in a trainer hook's on_forward")
        return attribute_loss(out[self.logits], targets)

    def __repr__(self) -> str:
        return f"AttributeTerm(logits={self.logits!r}, targets={self.targets!r})"


@register_term("attributes")
def attributes_term(num_classes: int, *, logits: str = "attribute_logits",
                    targets: str = "attribute_targets") -> AttributeTerm:
    """``extra_terms={"attributes": {"weight": beta / 2, "logits": "attribute_logits", "targets": "attribute_targets"}}``."""
    return AttributeTerm(logits=logits, targets=targets)
