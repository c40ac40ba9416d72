"""One small registry for everything the house selects by name: datasets, models, criteria,
schedules, erasers.

    MODELS = Registry("model")

    @MODELS.register("baseline")
    def baseline(num_classes, **options): ...

    MODELS.build("baseline", 751, pooling="gem")

A paper *adds* entries (``reidlib/papers/<paper>.py`` registers its model, criterion, schedule);
it never edits the core. An unknown name is a ``ValueError`` that lists the known ones, so a
typo in a notebook parameter says what was meant. Names are case-insensitive; aliases are
allowed (``"market"`` for ``"market1501"``).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "keyword_options"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories (or objects) of one ``kind``.

    ``register(name, *aliases)`` is a decorator; ``get(name)`` returns the entry; ``build(name,
    *args, **kwargs)`` calls it. Iterating, ``len`` and ``in`` see the canonical names only.
    """

    def __init__(self, kind: str, *, hint: str = "", normalize: Callable[[str], str] = str.lower) -> None:
        self.kind = kind
        self.hint = hint  # appended to the unknown-name error, e.g. where more entries come from
        self._norm = normalize  # how a name is compared: case (and, for datasets, "-"/"_") ignored
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    # -- registration ------------------------------------------------------------------------
    def register(self, name: str, *aliases: str, override: bool = False) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (and ``aliases``); a name already taken by
        another entry is a ``ValueError`` unless ``override``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty str, got {name!r}")

        def decorator(obj: T) -> T:
            self.add(name, obj, *aliases, override=override)
            return obj

        return decorator

    def add(self, name: str, obj: T, *aliases: str, override: bool = False) -> T:
        """Register ``obj`` (not as a decorator)."""
        key = name
        for k in (self._norm(key), *(self._norm(a) for a in aliases)):
            taken = self._aliases.get(k)
            if taken is not None and not override and self._entries.get(taken) is not obj:
                raise ValueError(f"{self.kind} name {k!r} is already registered (as {taken!r}); "
                                 f"pass override=True to replace it")
        self._entries[key] = obj
        self._aliases[self._norm(key)] = key
        for a in aliases:
            self._aliases[self._norm(a)] = key
        return obj

    # -- lookup -------------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The registered name of ``name`` (an alias or another case allowed)."""
        if isinstance(name, str) and self._norm(name) in self._aliases:
            return self._aliases[self._norm(name)]
        hint = f" ({self.hint})" if self.hint else ""
        raise ValueError(f"unknown {self.kind} {name!r}; expected one of {self.names()}{hint}")

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``get(name)(*args, **kwargs)``."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        return sorted(self._entries)

    # -- mapping-like views --------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._norm(name) in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def keys(self) -> list[str]:
        return self.names()

    def items(self) -> list[tuple[str, T]]:
        return [(k, self._entries[k]) for k in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def keyword_options(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    """The options an entry takes by keyword after its first argument (a dataset's root, a model's number
    of classes), in signature order: what a config may pass it. ``None`` where it takes ``**kwargs``
    (those are checked when the entry is called)."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params
                 if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD))
