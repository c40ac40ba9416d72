"""The errors a dataset parser raises, in a module of their own so that every parser
(:mod:`reidlib.data.datasets`, :mod:`reidlib.data.attributes`) imports them without importing
another parser (which made ``attributes`` <-> ``datasets`` a cycle).

Both name the path and say what layout was expected there.
"""
from __future__ import annotations

__all__ = ["AttributeFileMismatchError", "DatasetLayoutError", "DatasetNotFoundError", "UnknownOptionError"]


class DatasetLayoutError(ValueError):
    """The files on disk do not have the layout, names or counts the parser expects."""


class DatasetNotFoundError(DatasetLayoutError, FileNotFoundError):
    """A folder or file the layout requires does not exist."""


class AttributeFileMismatchError(DatasetLayoutError):
    """An attribute file whose identities are not the dataset's (e.g. another dataset's file)."""


class UnknownOptionError(TypeError, ValueError):
    """An option (keyword argument) an entry point does not know. A ``TypeError`` like Python's own
    "unexpected keyword argument", and a ``ValueError`` like every other bad parameter here; the
    message names the option and lists the known ones."""
