"""User-facing errors: each one prints as a single line, the CLI exits non-zero on it."""

from __future__ import annotations


class LensDBError(Exception):
    """Any error a user can cause or fix. The message is one line and says what to do."""

    exit_code = 2


class ParameterError(LensDBError):
    """A bad value for a named parameter. The message names it as the Python API spells it
    (`stride must be at least 1`); the CLI shows the flag instead (`cli_message`)."""

    def __init__(self, param: str, problem: str):
        super().__init__(f"{param} {problem}")
        self.param, self.problem = param, problem

    def cli_message(self) -> str:
        return f"--{self.param.replace('_', '-')} {self.problem}"


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


def first_line(exc: BaseException | str, limit: int = 160, last: bool = False) -> str:
    """One line of an exception's message for a one-line error: the first (or, for libraries
    that put the reason at the end, the last) non-empty line, at most `limit` characters;
    the exception's type name when the message is empty."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    line = lines[-1] if last else lines[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."
