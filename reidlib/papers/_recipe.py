"""What every paper's ``train(**parameters)`` shares: its notebook parameters, validated.

A recipe declares its parameters once (:class:`Recipe`: the names and defaults of its training
notebook's ``parameters`` cell, and the type of those whose default is ``None``);
``train(**parameters)`` merges what it is given over those defaults, refuses an unknown name
(listing the known ones), converts what papermill passes as text (``-r erasing_ratio 0.2``,
``-p dataset_options '{"split": "detected"}'``, ``-r resume false``) to the parameter's type or
refuses it naming the parameter, and maps them onto a :class:`~reidlib.engine.config.TrainConfig`.
A test keeps each notebook's ``parameters`` cell equal to its recipe's defaults.
"""
from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reidlib.engine.config import parse_bool, parse_int_list

__all__ = ["Demo", "Recipe", "convert", "imagenet_start", "named_variant", "parse_bool"]


def _parse_list(name: str, value: Any) -> list[int]:
    if isinstance(value, str):
        try:
            value = parse_int_list(name, value)  # the config's parser of papermill's text
        except ValueError as e:
            raise ValueError(f"parameter {name!r} must be a list of integers such as [40, 70], got {value!r}") from e
    try:
        items = list(value)
    except TypeError:
        raise ValueError(f"parameter {name!r} must be a list of integers such as [40, 70], got {value!r}") from None
    # 12.5 or True is not silently read as 12 or 1; 40.0 is 40
    if not all(isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer() for v in items):
        raise ValueError(f"parameter {name!r} must be a list of integers such as [40, 70], got {value!r}")
    return [int(v) for v in items]


@dataclass
class Demo:
    """A chapter's demo model for its method pages: ``model`` (eval mode), the ``dataset`` it was trained on,
    the test ``transform``, where the weights came from (``source``), and the ``variant``."""

    model: Any
    dataset: Any
    transform: Any
    source: str
    variant: str

    def images(self, records: Any) -> Any:
        """Normalised test-time images ``(N, 3, H, W)`` of some records, at the transform's size."""
        import torch

        from reidlib.data import ImageDataset

        ds = ImageDataset(list(records), self.transform)
        return torch.stack([ds[i][0] for i in range(len(ds))])


def trained_once(model: Any, cached: Any, train: Any) -> Any:
    """``model`` with the weights cached at ``cached`` (a path), or trained by ``train()`` and cached there
    first. The demo models of the method pages train on one thread, so that they train alike on every
    machine and leave the other core to a parallel build; the caller's thread count is restored even when
    training fails, and the checkpoint is written atomically (:func:`~reidlib.engine.checkpoint.save_checkpoint`),
    so an interrupted first build leaves no half-written cache."""
    from pathlib import Path

    import torch

    from reidlib.engine.checkpoint import load_checkpoint, load_model_state, save_checkpoint

    cached = Path(cached)
    if cached.is_file():
        load_model_state(model, load_checkpoint(cached)["model"], source=cached)
        return model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train()
    finally:
        torch.set_num_threads(threads)
    save_checkpoint({"model": model.state_dict()}, cached)
    return model


def percent_list(name: str, value: Any, what: str) -> list[int]:
    """A recipe parameter listing distinct percentages in (0, 100) (``[10, 25]``), or a ``ValueError`` naming
    the parameter and ``what`` they are percentages of."""
    amounts = list(value or [])
    bad = [a for a in amounts if isinstance(a, bool) or not isinstance(a, int) or not 0 < a < 100]
    if bad or len(set(amounts)) != len(amounts):
        raise ValueError(f"parameter {name!r} must list distinct percentages of {what} in (0, 100), got {value!r}")
    return amounts


def evaluation_with_transform(cfg: Any, transform: Any, *, queries_only: bool = False) -> Any:
    """A :class:`~reidlib.engine.probes.FinalEvaluations` entry: the run's own test set evaluated with another
    test ``transform`` (misaligned or occluded boxes), for the queries alone with ``queries_only`` (against the
    clean gallery) or for query and gallery."""
    from reidlib.engine.run import make_evaluator

    def build(ds: Any, test_tf: Any, device: Any) -> Any:
        if queries_only:
            return make_evaluator(ds.query, ds.gallery, test_tf, cfg, device, hard_pids=ds.hard_pids,
                                  query_transform=transform)
        return make_evaluator(ds.query, ds.gallery, transform, cfg, device, hard_pids=ds.hard_pids)
    return build


def named_variant(variants: Mapping[str, Any], variant: str, overrides: Mapping[str, Any], paper: str) -> Any:
    """The config dataclass of the named row ``variant`` of ``variants`` with ``overrides`` applied (the config
    validates their values); an unknown variant or field is a ``ValueError`` listing the known ones."""
    from dataclasses import fields, replace

    if variant not in variants:
        raise ValueError(f"unknown {paper} variant {variant!r} (parameter 'variant'); expected one of {list(variants)}")
    cls = type(variants[variant])
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {known}")
    return replace(variants[variant], **overrides)


def imagenet_start(settings: Mapping[str, Any]) -> bool:
    """Whether a run's ``settings`` (its parameters or its record's ``config``) start from ImageNet
    weights: ``pretrained`` or a ``weights_path``. Run names mark it ``-imagenet``."""
    return bool(settings.get("pretrained", False) or settings.get("weights_path"))


_KINDS = {bool: "True or False", int: "an integer", float: "a number", str: "a text", dict: "a dict",
          list: "a list"}


def convert(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (bool, int, float, str, dict or list), converting the text papermill gives
    (``"0.2"``, ``"3"``, ``"true"``, a JSON/Python dict or list); ``None`` (or the text ``"None"``/``"null"``)
    stays ``None``. Anything else is a ``ValueError`` naming the parameter and the expected type."""
    if value is None or (isinstance(value, str) and value.strip() in ("None", "null") and kind is not str):
        return None
    if kind is bool:
        return parse_bool(name, value)
    if kind is list:
        return _parse_list(name, value)
    if isinstance(value, str) and kind in (dict, int, float):
        text = value.strip()
        try:
            parsed = json.loads(text) if kind is dict else kind(text)
        except (ValueError, TypeError):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ValueError(f"parameter {name!r} must be {_KINDS[kind]}, got {value!r}") from None
        value = parsed
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise ValueError(f"parameter {name!r} must be {_KINDS[kind]}, got {value!r} ({type(value).__name__})")
    return value


@dataclass(frozen=True)
class Recipe:
    """A training notebook's parameters: ``chapter``, ``notebook`` (relative to the project root) and
    ``defaults`` (name -> default, the order of the ``parameters`` cell); ``types`` gives the type of a
    parameter whose default is ``None`` (the others take their default's type); ``choices`` the values
    a parameter may take, where they are few."""

    chapter: str
    notebook: str
    defaults: Mapping[str, Any]
    types: Mapping[str, type] = field(default_factory=dict)
    choices: Mapping[str, tuple] = field(default_factory=dict)

    def kind(self, name: str) -> type | None:
        if name in self.types:
            return self.types[name]
        default = self.defaults[name]
        return None if default is None else type(default)

    def parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``defaults`` updated with ``given``, each converted to its parameter's type (see :func:`convert`);
        unknown names, values of the wrong type and values outside ``choices`` raise a ``ValueError`` naming
        the parameter."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {self.notebook}; known: {list(self.defaults)}")
        values = {**self.defaults, **given}
        for name, value in values.items():
            kind = self.kind(name)
            if kind is not None:
                values[name] = convert(name, value, kind)
            if name in self.choices and values[name] not in self.choices[name]:
                raise ValueError(f"parameter {name!r} must be one of {list(self.choices[name])}, got {value!r}")
        return values

    def check_notebook(self, path: Any = None) -> list[Any]:
        """The training notebook's cells (``path``, default :attr:`notebook` under the project root), after
        checking that its first code cell is tagged ``parameters`` and defines exactly :attr:`defaults`, in
        their order and with their values, and that the next code cell calls ``<module>.train(``; a
        ``ValueError`` says what differs."""
        from pathlib import Path

        import nbformat

        from reidlib.paths import project_root

        path = Path(path) if path is not None else Path(project_root() or ".") / self.notebook
        cells = nbformat.read(path, as_version=4).cells
        code = [c for c in cells if c.cell_type == "code"]
        if not code or "parameters" not in code[0].metadata.get("tags", []):
            raise ValueError(f"{path}: the first code cell must be tagged 'parameters'")
        namespace: dict[str, Any] = {}
        exec(code[0].source, namespace)  # the notebook's own cell: plain assignments
        values = {k: v for k, v in namespace.items() if not k.startswith("__")}
        if list(values) != list(self.defaults) or values != dict(self.defaults):
            differ = [k for k in dict.fromkeys([*values, *self.defaults]) if values.get(k, ...) != self.defaults.get(k, ...)]
            raise ValueError(f"{path}: the parameters cell differs from the recipe's defaults in {differ or 'order'}")
        module = self.notebook.split("/")[-2]
        if len(code) < 2 or f"{module}.train(" not in code[1].source:
            raise ValueError(f"{path}: the cell after the parameters must call {module}.train(...)")
        return cells

    def notebook_parameters(self, namespace: Mapping[str, Any]) -> dict[str, Any]:
        """The recipe's parameters as a notebook holds them (its ``globals()``, papermill's injected
        values included): one entry per known name present in ``namespace``."""
        return {k: namespace[k] for k in self.defaults if k in namespace}
