"""What every paper's ``train(**parameters)`` shares: its notebook parameters, validated.

A recipe declares its parameters once (:class:`Recipe`: the names and defaults of its training
notebook's ``parameters`` cell); ``train(**parameters)`` merges what it is given over those
defaults, refuses an unknown name (listing the known ones), parses the booleans papermill may
pass as text, and maps them onto a :class:`~reidlib.engine.config.TrainConfig`. A test keeps each
notebook's ``parameters`` cell equal to its recipe's defaults.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Recipe", "parse_bool"]


def parse_bool(name: str, value: Any) -> bool:
    """``True``/``False``, or the text ``"true"``/``"false"`` (any case) that ``papermill -r`` or a
    quoted YAML value gives; anything else is a ``ValueError`` naming the parameter (a non-empty
    string such as ``"False"`` must not be truthy)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"parameter {name!r} must be True or False (or the text 'true'/'false'), got {value!r}")


def _parse_list(name: str, value: Any) -> list[int]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip()) if value.strip().startswith(("[", "(")) else \
                [int(v) for v in value.split(",") if v.strip()]
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"parameter {name!r} must be a list of integers such as [40, 70], got {value!r}") from e
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name!r} must be a list of integers such as [40, 70], got {value!r}") from None


@dataclass(frozen=True)
class Recipe:
    """A training notebook's parameters: ``chapter``, ``notebook`` (relative to the project root) and
    ``defaults`` (name -> default, the order of the ``parameters`` cell)."""

    chapter: str
    notebook: str
    defaults: Mapping[str, Any]
    booleans: tuple[str, ...] = field(default=())
    int_lists: tuple[str, ...] = field(default=("milestones",))

    def parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``defaults`` updated with ``given``; unknown names and malformed booleans/lists raise."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {self.notebook}; known: {list(self.defaults)}")
        values = {**self.defaults, **given}
        for name in self.booleans:
            values[name] = parse_bool(name, values[name])
        for name in self.int_lists:
            if name in values and values[name] is not None:
                values[name] = _parse_list(name, values[name])
        return values

    def notebook_parameters(self, namespace: Mapping[str, Any]) -> dict[str, Any]:
        """The recipe's parameters as a notebook holds them (its ``globals()``, papermill's injected
        values included): one entry per known name present in ``namespace``."""
        return {k: namespace[k] for k in self.defaults if k in namespace}
