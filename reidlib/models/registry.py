"""The model registry: ``build_model(name, num_classes, **options)`` returns exactly one model.

Every registered builder takes ``num_classes`` (training identities), the backbone arguments
shared by the house (``backbone``, ``last_stride``, ``pretrained``, ``weights_path``) and its own
options. The model it returns exposes ``options``: the *resolved* options (every field, defaults
included, as plain data), so that ``build_model(name, num_classes, backbone=..., **model.options)``
rebuilds the same architecture -- this is what a run record stores under
``config["model_options"]``. A model that needs the batch's labels in its training forward
(ES-Net's BESM, hashing's teacher, HENet's OIM queue) sets the class attribute
``needs_targets = True``; the trainer then calls ``model(images, targets=pids)``.

Models of the core are registered in their modules (``baseline``, ``esnet``); a paper's recipe in
``reidlib.papers`` may register more.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from reidlib.registry import Registry

__all__ = ["MODELS", "build_model", "register_model", "model_options"]

MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "model", hint="the papers' recipes in reidlib.papers register theirs when imported")


def register_model(name: str, *aliases: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: ``@register_model("baseline")`` on ``fn(num_classes, **options) -> nn.Module``."""
    return MODELS.register(name, *aliases)


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """The model ``name`` for ``num_classes`` training identities.

    ``options``: the backbone arguments (``backbone``, ``last_stride``, ``pretrained``,
    ``weights_path``) and the model's own (``pooling`` for ``baseline``; every ``ESNetConfig`` field for
    ``esnet``). An unknown name lists the registered ones; an unknown option names itself.
    """
    builder = MODELS.get(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"build_model({name!r}): num_classes (training identities) must be an integer >= 1, "
                         f"got {num_classes!r}")
    try:
        model = builder(num_classes, **options)
    except TypeError as e:  # an unknown keyword: say which model and which options exist
        if "unexpected keyword" not in str(e):
            raise
        import inspect

        known = [p for p in inspect.signature(builder).parameters if p != "num_classes"]
        raise ValueError(f"build_model({name!r}): {e}; the options of {name!r} are {known}") from None
    if not isinstance(model, nn.Module):
        raise TypeError(f"the builder of model {name!r} returned {type(model).__name__}, not one nn.Module")
    return model


def model_options(model: nn.Module) -> dict[str, Any]:
    """The resolved options of a built model (``model.options``; ``{}`` for a model without them)."""
    return dict(getattr(model, "options", {}) or {})
