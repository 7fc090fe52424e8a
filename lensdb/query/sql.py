"""Parameterised SQL pieces: the `Sql` builder and predicates compiled to conditions.

User text never reaches the SQL text: class names, video names, patterns, numbers and
durations are all bound `?` parameters; operators come from a fixed table; columns of a
class are named `c0, c1, ...` in the SQL and renamed in Python afterwards. Predicates
compare the rounded count, floor(value + 0.5), with N.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lensdb.query import plan as p

SOURCES = ("best", "predicted", "detected")
SQL_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass
class Sql:
    """A SQL text and its parameters, built left to right so the `?` stay in order."""

    parts: list[str] = field(default_factory=list)
    params: list = field(default_factory=list)

    def add(self, text: str, *params) -> Sql:
        self.parts.append(text)
        self.params.extend(params)
        return self

    def extend(self, other: Sql) -> Sql:
        self.parts.extend(other.parts)
        self.params.extend(other.params)
        return self

    @property
    def text(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True)
class Atom:
    """A `video ...` condition resolved against the videos table: the ids of the videos
    where it holds, and of those where it is NULL (a video without a name)."""

    true: tuple[int, ...]
    null: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return len(self.true) + len(self.null)


Atoms = dict[p.VideoMatch, Atom]


def _in(ids: tuple[int, ...]) -> Sql:
    if not ids:
        return Sql().add("false")
    return Sql().add(f"video_id IN ({', '.join('?' * len(ids))})", *ids)


def predicate_sql(pred: p.Predicate, cols: dict[str, str], atoms: Atoms | None = None) -> Sql:
    """SQL for a predicate; `cols` maps each class to the column holding its count. With
    `atoms`, video conditions test `video_id` (aligned plan); else the `video` name."""
    if isinstance(pred, p.Compare):
        return Sql().add(f"(floor({cols[pred.count.cls]} + 0.5) {SQL_OPS[pred.op]} ?)",
                         float(pred.value))
    if isinstance(pred, p.VideoMatch):
        if atoms is not None:
            atom = atoms[pred]
            if not atom.null:
                return Sql().add("(").extend(_in(atom.true)).add(")")
            return (Sql().add("(CASE WHEN ").extend(_in(atom.null)).add(" THEN NULL ELSE ")
                    .extend(_in(atom.true)).add(" END)"))
        op = {"=": "=", "!=": "<>", "LIKE": "LIKE", "NOT LIKE": "NOT LIKE"}[pred.op]
        return Sql().add(f"(video {op} ?)", pred.pattern)
    if isinstance(pred, p.TimeRange):
        return Sql().add("(ts BETWEEN ? AND ?)", float(pred.low), float(pred.high))
    if isinstance(pred, p.TimeCompare):
        return Sql().add(f"(ts {SQL_OPS[pred.op]} ?)", float(pred.seconds))
    if isinstance(pred, p.Not):
        return Sql().add("(NOT ").extend(predicate_sql(pred.item, cols, atoms)).add(")")
    if isinstance(pred, p.And | p.Or):
        return _balanced(list(pred.items), "AND" if isinstance(pred, p.And) else "OR", cols,
                         atoms)
    raise TypeError(f"not a predicate: {pred!r}")


def _balanced(items: list[p.Predicate], word: str, cols: dict[str, str],
              atoms: Atoms | None) -> Sql:
    """A AND B AND C ... as a balanced tree, so long chains do not nest deeply."""
    if len(items) == 1:
        return predicate_sql(items[0], cols, atoms)
    mid = len(items) // 2
    left = _balanced(items[:mid], word, cols, atoms)
    right = _balanced(items[mid:], word, cols, atoms)
    return Sql().add("(").extend(left).add(f" {word} ").extend(right).add(")")


def video_atom_sql(atom: p.VideoMatch) -> Sql:
    """The ids of the videos where a `video ...` condition is true, and where it is NULL."""
    op = {"=": "=", "!=": "<>", "LIKE": "LIKE", "NOT LIKE": "NOT LIKE"}[atom.op]
    return Sql().add(f"SELECT list(video_id ORDER BY video_id) FILTER (WHERE name {op} ?), "
                     "list(video_id ORDER BY video_id) FILTER (WHERE name IS NULL) FROM videos",
                     atom.pattern)


def columns(classes: list[str], prefix: str = "c") -> dict[str, str]:
    return {cls: f"{prefix}{i}" for i, cls in enumerate(classes)}
