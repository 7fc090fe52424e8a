"""User-facing errors: each one prints as a single line, the CLI exits non-zero on it."""

from __future__ import annotations


class LensDBError(Exception):
    """Any error a user can cause or fix. The message is one line and says what to do."""

    exit_code = 2


class ModelUnavailableError(LensDBError):
    """Weights for a model cannot be had (no network to the hub, missing file, ...)."""


class StoreError(LensDBError):
    """The store cannot be opened, is of another version, or refuses an operation."""


class EmbedderMismatchError(StoreError):
    """An operation would mix two vector spaces."""


class VideoError(LensDBError):
    """A source cannot be opened or decoded."""


class QueryError(LensDBError):
    """A query does not parse or names something the store does not know."""

    def __init__(self, message: str, query: str | None = None, position: int | None = None):
        super().__init__(message)
        self.query = query
        self.position = position

    def caret(self) -> str | None:
        """The query with a caret under the offending position, or None."""
        if self.query is None or self.position is None:
            return None
        return f"{self.query}\n{' ' * self.position}^"
