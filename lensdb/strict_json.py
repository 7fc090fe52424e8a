"""Values as strict JSON: the one place NaN, infinities and numpy values are made plain for
every JSON LensDB writes (CLI --json, query results, the HTTP API, benchmark results)."""

from __future__ import annotations

import math
from typing import Any


def strict(value: Any) -> Any:
    """`value` with NaN and infinities as None (JSON has no NaN), numpy arrays and scalars
    as lists and numbers, tuples as lists, and anything else unknown as its text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return strict(value.tolist())
    return str(value)
