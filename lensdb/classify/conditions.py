"""Condition sets (named lists of values of one object class), prompt templates and the
prompt-ensemble text embeddings that zero-shot classification scores crops against.

    add_condition_set(store, "parking", "car", ["parked", "moving"])
    cs = get_condition_set(store, "parking")
    heads = text_heads(embedder, cs, spatial=False)   # {position: (n_values, dim)}

A template holds `{condition}` and optionally `{object}` and `{position}` ("a photo of a
{object} that is {condition}"). Per value, every template is filled in, each text embedding
is normalised, the embeddings are averaged and the mean normalised again (CLIP's prompt
ensemble). With `spatial`, templates that use `{position}` are filled with the box's place
in the frame (top/middle/bottom and left/centre/right of its normalised centre); templates
without it are used otherwise.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensdb.errors import LensDBError
from lensdb.storage.catalog import ensure_schema
from lensdb.storage.store import Store

DEFAULT_TEMPLATES = (
    "a photo of a {object} that is {condition}.",
    "a photo of a {condition} {object}.",
    "a {object} that is {condition}.",
    "a cropped photo of a {condition} {object}.",
    "a photo of a {object} that is {condition}, at the {position} of the image.",
    "a {condition} {object} at the {position} of the image.",
)
SPATIAL_SUFFIX = " at the {position} of the image"
FIELDS = {"object", "condition", "position"}
ROWS, COLS = ("top", "middle", "bottom"), ("left", "centre", "right")
_VALUE = re.compile(r"^[a-z0-9][a-z0-9 _\-]*$")


@dataclass(frozen=True)
class ConditionSet:
    """A named set of condition values of one detected object class."""

    name: str  # what users type after --conditions
    object: str  # the detector class it applies to, lowercase
    values: tuple[str, ...]  # the condition values, lowercase, at least two
    templates: tuple[str, ...]  # prompt templates with {condition} [{object}] [{position}]

    def class_name(self, value: str) -> str:
        """The count class of a value, as queries name it: `car[parked]`."""
        return condition_class(self.object, value)

    def check_value(self, value: str) -> str:
        v = value.strip().lower()
        if v not in self.values:
            raise LensDBError(f"unknown condition value '{value}' of set '{self.name}'; known "
                              f"values: {', '.join(self.values)}")
        return v

    def to_dict(self) -> dict:
        return {"name": self.name, "object": self.object, "values": list(self.values),
                "templates": list(self.templates)}


def condition_class(obj: str, value: str) -> str:
    return f"{obj}[{value}]"


def read_templates(path: str | Path) -> tuple[str, ...]:
    """Templates from a text file, one a line (blank lines and `#` comments skipped)."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LensDBError(f"cannot read the prompts file {path}: {exc}") from None
    return check_templates([t.strip() for t in lines if t.strip() and not t.startswith("#")])


def check_templates(templates: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if not templates:
        raise LensDBError("no prompt templates given; one a line, e.g. "
                          "'a photo of a {object} that is {condition}'")
    for t in templates:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
        except ValueError as exc:
            raise LensDBError(f"prompt template '{t}' does not parse: {exc}") from None
        if names - FIELDS:
            raise LensDBError(f"prompt template '{t}' uses {{{sorted(names - FIELDS)[0]}}}; "
                              "templates know {object}, {condition} and {position}")
        if "condition" not in names:
            raise LensDBError(f"prompt template '{t}' has no {{condition}}")
    return tuple(templates)


def _parse_values(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    if len(out) < 2:
        raise LensDBError("a condition set needs at least two values, e.g. --values "
                          "parked,moving")
    bad = [v for v in out if not _VALUE.match(v)]
    if bad:
        raise LensDBError(f"condition value '{bad[0]}' must be letters, digits, spaces, '-' "
                          "or '_'")
    return out


def add_condition_set(store: Store, name: str, obj: str, values: list[str] | tuple[str, ...],
                      templates: list[str] | tuple[str, ...] | None = None) -> ConditionSet:
    """Store a new condition set of a class the store has detected (writer lock held here)."""
    name, obj = name.strip(), obj.strip().lower()
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$", name):
        raise LensDBError(f"condition set name '{name}' must be letters, digits, '-', '_', '.'")
    cs = ConditionSet(name, obj, _parse_values(values),
                      check_templates(templates) if templates else DEFAULT_TEMPLATES)
    with store.writer(), store.catalog.connect(write=True) as con:
        ensure_schema(con)
        known = [r[0] for r in con.execute(
            "SELECT DISTINCT class FROM detections ORDER BY 1").fetchall()]
        if obj not in known:
            raise LensDBError(f"the store never detected '{obj}'; detected classes: "
                              f"{', '.join(known) or 'none (ingest videos first)'}")
        rows = con.execute("SELECT name, condition_values FROM condition_sets WHERE name = ? OR "
                           "object = ?", [name, obj]).fetchall()
        for other, vals in rows:
            if other == name:
                raise LensDBError(f"a condition set '{name}' exists already")
            clash = set(json.loads(vals)) & set(cs.values)
            if clash:
                raise LensDBError(f"value '{sorted(clash)[0]}' of {obj} is in the set '{other}' "
                                  "already; queries could not tell them apart")
        con.execute("INSERT INTO condition_sets VALUES (?, ?, ?, ?, now())",
                    [name, obj, json.dumps(list(cs.values)), json.dumps(list(cs.templates))])
    return cs


def _has_table(con, table: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                       [table]).fetchone()[0] > 0


def list_condition_sets(store: Store) -> list[ConditionSet]:
    with store.catalog.connect() as con:
        if not _has_table(con, "condition_sets"):
            return []
        rows = con.execute("SELECT name, object, condition_values, prompts FROM condition_sets "
                           "ORDER BY name").fetchall()
    return [ConditionSet(n, o, tuple(json.loads(v)), tuple(json.loads(p))) for n, o, v, p in rows]


def get_condition_set(store: Store, name: str) -> ConditionSet:
    sets = {cs.name: cs for cs in list_condition_sets(store)}
    if name not in sets:
        raise LensDBError(f"unknown condition set '{name}'; known sets: "
                          f"{', '.join(sets) or 'none (add one with `lensdb conditions add`)'}")
    return sets[name]


def position_of(box: tuple[float, ...] | np.ndarray, width: int, height: int) -> str:
    """'top left', 'bottom centre', 'centre', ... from the box's normalised centre."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx = min(max((x1 + x2) / 2 / max(width, 1), 0.0), 0.999)
    cy = min(max((y1 + y2) / 2 / max(height, 1), 0.0), 0.999)
    row, col = ROWS[int(cy * 3)], COLS[int(cx * 3)]
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"


def all_positions() -> list[str]:
    return list(dict.fromkeys(position_of(((c + 0.5) / 3, (r + 0.5) / 3) * 2, 1, 1)
                              for r in range(3) for c in range(3)))


def spatial_templates(cs: ConditionSet, spatial: bool) -> tuple[str, ...]:
    """The templates one mode uses: those with {position} when spatial, else those without."""
    with_pos = tuple(t for t in cs.templates if "{position}" in t)
    without = tuple(t for t in cs.templates if "{position}" not in t)
    if spatial:
        return with_pos or tuple(t.rstrip(". ") + SPATIAL_SUFFIX + "." for t in without)
    if not without:
        raise LensDBError(f"every prompt of set '{cs.name}' uses {{position}}; add --spatial")
    return without


def prompts_for(cs: ConditionSet, value: str, position: str = "centre",
                spatial: bool = False) -> list[str]:
    return [t.format(object=cs.object, condition=value, position=position)
            for t in spatial_templates(cs, spatial)]


def text_heads(embedder, cs: ConditionSet, spatial: bool = False) -> dict[str, np.ndarray]:
    """{position: (n_values, dim) unit rows}: the prompt ensemble of every value; one entry
    "" without `spatial`, one per position with it."""
    if not getattr(embedder, "has_text", False):
        raise LensDBError(f"the embedder '{embedder.name}' has no text side, so it cannot "
                          "classify zero-shot; use a CLIP embedder (--embedder clip-...) or "
                          "train a linear probe with `lensdb classify train`")
    heads = {}
    for pos in (all_positions() if spatial else [""]):
        rows = []
        for value in cs.values:
            emb = np.asarray(embedder.embed_text(prompts_for(cs, value, pos, spatial)),
                             np.float32)
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            mean = emb.mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        heads[pos] = np.stack(rows).astype(np.float32)
    return heads


def check_condition_refs(con, refs, text: str) -> list[str]:
    """For a query: the count classes `object[value]` of its refs that condition sets
    define; raises (naming the known values) for an unknown value or a set never run."""
    from lensdb.query.lexer import fail

    sets: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    if _has_table(con, "condition_sets"):
        for name, obj, vals in con.execute(
                "SELECT name, object, condition_values FROM condition_sets").fetchall():
            sets.setdefault(obj, []).append((name, tuple(json.loads(vals))))
    out = []
    for ref in refs:
        m = re.match(r"^(.*)\[(.*)\]$", ref.cls)
        if not m:
            continue
        obj, value = m.group(1).strip(), m.group(2).strip()
        if obj not in sets:
            with_sets = ", ".join(sorted(sets)) or "none (add one with `lensdb conditions add`)"
            raise fail(f"no condition set of '{obj}'; objects with condition sets: {with_sets}",
                       text, ref.pos)
        match = [name for name, vals in sets[obj] if value in vals]
        if not match:
            known = ", ".join(v for _, vals in sets[obj] for v in vals)
            raise fail(f"unknown condition value '{value}' of {obj}; known values: {known}",
                       text, ref.pos)
        done = con.execute("SELECT count(*) FROM detection_attributes WHERE set_name = ?",
                           [match[0]]).fetchone()[0]
        if not done:
            raise fail(f"condition set '{match[0]}' has classified no detection yet; run "
                       f"`lensdb classify --conditions {match[0]}`", text, ref.pos)
        out.append(ref.cls)
    return out
