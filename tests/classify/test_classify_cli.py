"""The CLI end to end: conditions add/list, classify train/eval/run, and a query by
condition, each with --json."""

from __future__ import annotations

import json

from classify_data import frame_fills, write_csv
from typer.testing import CliRunner

from lensdb.cli.app import app


def _json(store, *args: str):
    result = CliRunner().invoke(app, [*args, "--store", str(store.root), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_flow(tiny_clip, square_store, tmp_path):
    store = square_store
    added = _json(store, "conditions", "add", "fill", "--object", "Square", "--values",
                  "filled, hollow")
    assert added["object"] == "square" and added["values"] == ["filled", "hollow"]
    assert [s["name"] for s in _json(store, "conditions")] == ["fill"]
    zs = _json(store, "classify", "--conditions", "fill", "--embedder", tiny_clip,
               "--method", "zero-shot", "--limit", "5")
    assert zs["classified"] == 5 and zs["remaining"] == 31
    trained = _json(store, "classify", "train", "--conditions", "fill", "--data",
                    str(write_csv(tmp_path / "tr", 120, seed=4)), "--embedder", tiny_clip,
                    "--class-weights", "auto", "--context", "crop+margin")
    assert trained["remedies"] == ["class-weights"] and trained["context"] == "crop+margin"
    done = _json(store, "classify", "--conditions", "fill", "--redo")
    assert done["method"] == "linear-probe" and done["classified"] == 36
    ev = _json(store, "classify", "eval", "--conditions", "fill", "--data",
               str(write_csv(tmp_path / "te", 60, seed=5)), "--embedder", tiny_clip,
               "--contexts", "crop,full+box", "--png", str(tmp_path / "cm.png"))
    assert [r["name"] for r in ev["rows"]] == ["zero-shot", "zero-shot spatial"] * 2 + [
        "classifier 1"]
    assert ev["rows"][-1]["accuracy"] >= 0.85 and ev["png"]
    assert set(ev["rows"][0]["per_class"]["hollow"]) == {"precision", "recall", "f1",
                                                          "support"}
    out = _json(store, "query", "count(square[hollow]) = 0 AND count(square) = 3",
                "--source", "detected", "--frames")
    want = {i for i in range(12) if all(frame_fills(i))}
    assert {r["frame_index"] for r in out["rows"]} == want
    table = CliRunner().invoke(app, ["classify", "eval", "--conditions", "fill", "--data",
                                     str(tmp_path / "te" / "data.csv"), "--no-zero-shot",
                                     "--store", str(store.root)])
    assert table.exit_code == 0 and "confusion" in table.output and "classifier 1" in \
        table.output
