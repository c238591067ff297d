"""The errors of the model: every one names the field it is about.

::

    ModelError                 the caller's mistake (4xx), with code, message and field
     ├── InvalidError          400  a value is malformed or out of range
     ├── NotFoundError         404  a referenced or addressed object does not exist
     └── ConflictError         409  uniqueness, dependencies, concurrent change
"""

from __future__ import annotations

__all__ = ["ConflictError", "InvalidError", "ModelError", "NotFoundError"]


class ModelError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def prefixed(self, prefix: str) -> ModelError:
        """The same error with ``prefix`` before the field (``items[3].`` in a bulk request)."""
        field = f"{prefix}{self.field}" if self.field else prefix.rstrip(".")
        return type(self)(self.message, field)


class InvalidError(ModelError):
    status = 400
    code = "invalid"


class NotFoundError(ModelError):
    status = 404
    code = "not_found"


class ConflictError(ModelError):
    status = 409
    code = "conflict"
