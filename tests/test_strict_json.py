import json
import math
from pathlib import Path

import numpy as np

from lensdb.strict_json import strict


def test_nan_infinities_and_numpy_become_strict_json() -> None:
    value = {"a": math.nan, "b": [1.5, -math.inf, (np.int64(3), np.float32(0.5))],
             "c": np.array([[1, 2], [3, 4]]), "d": np.float64("nan"), "p": Path("x/y"),
             "ok": True, "none": None}
    out = strict(value)
    text = json.dumps(out, allow_nan=False)  # raises on any NaN left
    assert json.loads(text) == {"a": None, "b": [1.5, None, [3, 0.5]], "c": [[1, 2], [3, 4]],
                                "d": None, "p": "x/y", "ok": True, "none": None}
