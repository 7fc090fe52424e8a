"""`lensdb bench storage --quick`: the figures it prints are the ones it measured, and the
size-tiered compaction and the kept index beat their baselines in the same run."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # a few hundred real commits (~30 s here); no models


def test_storage_bench_quick(tmp_path):
    from lensdb.bench import storage

    result = storage.main(["--quick", "--dim", "64", "--out", str(tmp_path)])  # 192 commits
    for suffix in ("csv", "json", "png"):
        assert (tmp_path / f"storage.{suffix}").stat().st_size > 0
    saved = json.loads((tmp_path / "storage.json").read_text())
    assert saved["benchmark"] == "storage" and saved["compaction"][-1]["commits"] == 192
    last = result["compaction"][-1]
    assert last["rewritten_tiers"] < last["rewritten_before"]  # merge-all: 4096 + 6144 vectors
    assert last["bytes_stored"] > 192 * 32 * 64  # SQ8: a byte per dimension, plus the ids
    modes = {r["mode"]: r for r in result["search"] if r["operation"].startswith("index")}
    assert modes["kept"]["median_ms"] < modes["cold"]["median_ms"]
    assert {g["verdict"] for g in result["goals"]} <= {"PASS", "MISS"}
