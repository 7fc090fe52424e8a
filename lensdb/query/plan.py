"""The typed plan a query parses into: frozen dataclasses, no SQL, no store.

A query is either a `Selection` (a predicate, answered with moments or frames, with an
optional `LIMIT n [GAP d]`) or an `Aggregate` (avg/min/max/sum of a class count, or the
number of frames, optionally filtered by `WHERE` and grouped `BY video` or by time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMPARE_OPS = ("=", "!=", "<", "<=", ">", ">=")
AGG_FUNCS = ("avg", "min", "max", "sum", "frames")


@dataclass(frozen=True)
class CountRef:
    """`count(CLASS)`: the count of one class in a frame, as the source gives it."""

    cls: str
    pos: int = field(default=0, compare=False)  # where the class name starts, for errors


@dataclass(frozen=True)
class Compare:
    """`count(CLASS) OP N`, true when round(count) OP N (round = nearest integer)."""

    count: CountRef
    op: str
    value: float


@dataclass(frozen=True)
class VideoMatch:
    """`video = 'name'`, `video != 'name'`, `video LIKE 'pat%'`, `video NOT LIKE ...`."""

    op: str  # "=", "!=", "LIKE", "NOT LIKE"
    pattern: str


@dataclass(frozen=True)
class TimeRange:
    """`time BETWEEN a AND b` (inclusive), in seconds from the start of each video."""

    low: float
    high: float


@dataclass(frozen=True)
class TimeCompare:
    """`time OP d`, in seconds from the start of each video."""

    op: str
    seconds: float


@dataclass(frozen=True)
class And:
    items: tuple[Predicate, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Predicate, ...]


@dataclass(frozen=True)
class Not:
    item: Predicate


Predicate = Compare | VideoMatch | TimeRange | TimeCompare | And | Or | Not


@dataclass(frozen=True)
class Agg:
    """One aggregate: `avg(count(c))`, `min(...)`, `max(...)`, `sum(...)` or `frames`."""

    func: str
    count: CountRef | None = None  # None for `frames`

    @property
    def name(self) -> str:
        return "frames" if self.count is None else f"{self.func}(count({self.count.cls}))"


@dataclass(frozen=True)
class GroupBy:
    """`BY video`, or time buckets of `seconds` within each video (`BY minute`, `BY 10s`)."""

    kind: str  # "video" | "time"
    seconds: float | None = None


@dataclass(frozen=True)
class Selection:
    where: Predicate
    limit: int | None = None
    gap: float | None = None  # LIMIT n GAP d: n frames at least d seconds apart


@dataclass(frozen=True)
class Aggregate:
    aggs: tuple[Agg, ...]
    where: Predicate | None = None
    by: GroupBy | None = None


Query = Selection | Aggregate


def count_refs(node: object) -> list[CountRef]:
    """Every `count(CLASS)` in a plan or predicate, in the order written."""
    if isinstance(node, Compare):
        return [node.count]
    if isinstance(node, And | Or):
        return [r for item in node.items for r in count_refs(item)]
    if isinstance(node, Not):
        return count_refs(node.item)
    if isinstance(node, Selection):
        return count_refs(node.where)
    if isinstance(node, Aggregate):
        refs = [a.count for a in node.aggs if a.count is not None]
        return refs + (count_refs(node.where) if node.where is not None else [])
    return []


def video_matches(node: object) -> list[VideoMatch]:
    """Every `video ...` condition in a predicate, in the order written."""
    if isinstance(node, VideoMatch):
        return [node]
    if isinstance(node, And | Or):
        return [m for item in node.items for m in video_matches(item)]
    if isinstance(node, Not):
        return video_matches(node.item)
    return []


def uses_frames(node: object) -> bool:
    """Whether a predicate reads a frame's video or time (not only its counts)."""
    return _mentions(node, (VideoMatch, TimeRange, TimeCompare))


def uses_time(node: object) -> bool:
    """Whether a predicate reads a frame's time."""
    return _mentions(node, (TimeRange, TimeCompare))


def _mentions(node: object, kinds: tuple[type, ...]) -> bool:
    if isinstance(node, kinds):
        return True
    if isinstance(node, And | Or):
        return any(_mentions(item, kinds) for item in node.items)
    if isinstance(node, Not):
        return _mentions(node.item, kinds)
    return False


def classes(node: object) -> list[str]:
    """The distinct classes a plan mentions, in the order first written."""
    return list(dict.fromkeys(r.cls for r in count_refs(node)))


def predicate_classes(pred: Predicate | None) -> list[str]:
    return [] if pred is None else classes(pred)
