"""The logical model: resource types, field parsing, the catalog and its rules. Pure code."""

from tether.model.catalog import Catalog, Change
from tether.model.errors import ConflictError, InvalidError, ModelError, NotFoundError
from tether.model.resources import KINDS, Resource
from tether.model.rules import IdSource, Rules

__all__ = [
    "KINDS",
    "Catalog",
    "Change",
    "ConflictError",
    "IdSource",
    "InvalidError",
    "ModelError",
    "NotFoundError",
    "Resource",
    "Rules",
]
