"""`lensdb pairs`, `lensdb finetune-embedder`, `lensdb match` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lensdb.cli.app import app
from lensdb.errors import LensDBError, ParameterError

runner = CliRunner()
TINY = ["--embedder", "clip:lensdb-tiny", "--lr", "2e-3", "--warmup", "0.5", "--device", "cpu"]


def one_line_error(result, text: str) -> None:
    """A LensDBError whose message (as `lensdb` prints it: one `error:` line) says `text`."""
    exc = result.exception
    assert isinstance(exc, LensDBError), result.output
    shown = exc.cli_message() if isinstance(exc, ParameterError) else str(exc)
    assert "\n" not in shown and text in shown, shown


def test_pairs_commands(tiny_small, tmp_path):
    r = runner.invoke(app, ["pairs", "validate", str(tiny_small["train"]), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["ok"] and report["images"] == 48 and report["captions_per_image"]["min"] == 2
    r = runner.invoke(app, ["pairs", "mismatches", str(tiny_small["train"]), "--out",
                            str(tmp_path / "p.csv"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["mismatches"] == 96
    r = runner.invoke(app, ["pairs", "split", str(tmp_path / "p.csv"), "--out",
                            str(tmp_path / "s"), "--val", "0.25", "--seed", "1", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["splits"]["val"]["images"] == 12
    r = runner.invoke(app, ["pairs", "validate", str(tmp_path / "s" / "val.csv")])
    assert r.exit_code == 0 and "ok" in r.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("image_path,text,label\nx.png,a,2\n")
    r = runner.invoke(app, ["pairs", "validate", str(bad)])
    assert r.exit_code == 1 and "label must be 0 or 1" in r.stdout
    bad.write_text("image,text\nx.png,a\n")
    one_line_error(runner.invoke(app, ["pairs", "validate", str(bad)]), "missing column")


@pytest.mark.slow
def test_finetune_compare_eval_and_match(tiny_small, tmp_path):
    out = tmp_path / "cmp"
    r = runner.invoke(app, ["finetune-embedder", "--train", str(tiny_small["train"]), "--val",
                            str(tiny_small["val"]), *TINY, "--epochs", "1", "--out", str(out),
                            "--compare", "infonce,sanw-bandpass", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert set(result["metrics"]) == {"pretrained", "infonce", "sanw-bandpass"}
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "compare.json").read_text())["split"] == "val"
    best = str(out / "infonce" / "best.pt")
    r = runner.invoke(app, ["finetune-embedder", "eval", best, "--data", str(tiny_small["val"]),
                            "--baseline", "clip:lensdb-tiny"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    assert "text to image R@1" in r.stdout and "pretrained" in r.stdout
    assert "fine-tuned" in r.stdout
    img = next(tiny_small["val"].parent.glob("*.png"))
    r = runner.invoke(app, ["match", str(img), "one red circle", "two blue squares",
                            "--embedder", result["runs"]["infonce"], "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["results"]
    assert len(rows) == 2 and all(-1 <= x["similarity"] <= 1 for x in rows)
    assert all(x["threshold"] is not None and x["probability"] is not None for x in rows)


def test_cli_errors_are_one_line(tiny_small, tmp_path):
    base = ["finetune-embedder", "--train", str(tiny_small["train"]), "--val",
            str(tiny_small["val"]), "--out", str(tmp_path / "o")]
    one_line_error(runner.invoke(app, [*base, "--embedder", "mobilenet-v2"]), "no text side")
    one_line_error(runner.invoke(app, [*base, *TINY, "--objective", "nope"]), "--objective")
    one_line_error(runner.invoke(app, [*base, *TINY, "--compare", "infonce"]), "--compare")
    one_line_error(runner.invoke(app, [*base[:3], "--val", str(tiny_small["train"]), *TINY]),
                   "in both")
    assert not (tmp_path / "o").exists()
    img = next(tiny_small["val"].parent.glob("*.png"))
    one_line_error(runner.invoke(app, ["match", str(img), "a", "--embedder", "mobilenet-v2"]),
                   "no text side")
    one_line_error(runner.invoke(app, ["match", str(tmp_path / "none.png"), "a"]), "missing")
    one_line_error(runner.invoke(app, ["finetune-embedder", "eval", str(img), "--data",
                                       str(tiny_small["val"])]), "not a LensDB checkpoint")


def test_the_real_command_prints_one_line(tiny_small, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    lensdb = Path(sys.executable).with_name("lensdb")
    r = subprocess.run([str(lensdb), "finetune-embedder", "--train", str(tiny_small["train"]),
                        "--val", str(tiny_small["val"]), "--embedder", "mobilenet-v2",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: embedder")
