"""`lensdb bench codecs_scale` on a tiny store: the files it writes, exact Flat, and an
IVF,Flat that reaches the exact answer once nprobe covers every list."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # ~10 s: matplotlib, torch (machine info), two stores


def test_codecs_scale_tiny(tmp_path):
    from lensdb.bench import codecs_scale

    result = codecs_scale.main(["--sizes", "2000", "--dim", "32", "--codecs", "Flat",
                                "IVF16,Flat", "IVF4096,PQ64", "--queries", "20", "--train",
                                "500", "--out", str(tmp_path)])
    for suffix in ("csv", "json", "png"):
        assert (tmp_path / f"codecs_scale.{suffix}").stat().st_size > 0
    saved = json.loads((tmp_path / "codecs_scale.json").read_text())
    assert saved["benchmark"] == "codecs_scale"
    rows = {(r["codec"], r["nprobe"]): r for r in result["rows"]}
    assert set(rows) == {("Flat", None), ("IVF16,Flat", 1), ("IVF16,Flat", 8),
                         ("IVF16,Flat", 16)}  # nprobe 32 capped at 16; IVF4096 skipped
    assert rows[("Flat", None)]["recall_at_10"] == 1.0
    assert rows[("IVF16,Flat", 16)]["recall_at_10"] == 1.0  # every list: exhaustive
    assert rows[("IVF16,Flat", 1)]["recall_at_10"] < 1.0
    assert rows[("Flat", None)]["bytes_per_vector"] >= 32 * 4
