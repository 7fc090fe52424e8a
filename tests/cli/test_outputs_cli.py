"""Commands that write files refuse the store's own paths and check what they write before
they work: the store stays as it was (real CLI in a subprocess, with the fakes)."""

from __future__ import annotations

import json

from fake_cli import only_error_line, run


def _models(store) -> list:
    out = run("info", "--store", str(store), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["count_models"]


def test_query_out_never_writes_into_the_store(store, tmp_path):
    catalog = (store / "catalog.duckdb").read_bytes()
    for target, says in ((store / "catalog.duckdb", "is inside the store"),
                         (tmp_path, "is a folder"),
                         (tmp_path / "nope" / "rows.csv", "does not exist")):
        proc = run("query", "count(square) >= 0", "--store", str(store), "--source", "detected",
                   "--out", str(target),
                   "--format", "csv")
        assert proc.returncode == 2 and says in only_error_line(proc)
    assert (store / "catalog.duckdb").read_bytes() == catalog
    ok = run("query", "count(square) >= 0", "--store", str(store), "--source", "detected", "--out",
             str(tmp_path / "rows.csv"))
    assert ok.returncode == 0, ok.stderr and (tmp_path / "rows.csv").exists()


def test_train_counter_checks_its_plot_before_training(store, tmp_path):
    before = _models(store)
    for plot, says in ((tmp_path / "counts.txt", "give a file ending in .png"),
                       (tmp_path / "nope" / "c.png", "does not exist"),
                       (store / "c.png", "is inside the store")):
        proc = run("train-counter", "--store", str(store), "--plot", str(plot))
        assert proc.returncode == 2 and says in only_error_line(proc)
    for flag, value in (("--seed", "-1"), ("--classes", ",,")):
        proc = run("train-counter", "--store", str(store), flag, value)
        assert proc.returncode == 2 and flag in only_error_line(proc)
    assert _models(store) == before  # nothing trained, nothing switched
    assert not (store / "c.png").exists()


def test_export_refuses_the_store_and_a_limit_below_one(store, tmp_path):
    listing = sorted(p.name for p in store.iterdir())
    for args, says in ((("--out", str(store)), "is the store itself"),
                       (("--out", str(tmp_path / "shots"), "--limit", "0"), "--limit"),
                       (("--out", str(tmp_path / "shots"), "--pad", "-1", "--clips"), "pad")):
        proc = run("export", "count(square) >= 0", "--store", str(store), "--source", "detected",
                   *args)
        assert proc.returncode == 2 and says in only_error_line(proc)
    assert sorted(p.name for p in store.iterdir()) == listing
    assert not (tmp_path / "shots").exists()


def test_bad_values_are_refused_before_any_work(store, tmp_path):
    (tmp_path / "plain").write_text("")
    data = tmp_path / "ds" / "data.yaml"
    (tmp_path / "ds" / "images").mkdir(parents=True)
    data.write_text("path: .\ntrain: images\nnames: [a]\n")
    cases = [
        (("pairs", "from-store", "--store", str(store), "--out", str(tmp_path / "p"),
          "--template", "{nope} {counts}"), "--template takes {counts}"),
        (("pairs", "from-store", "--store", str(store), "--out", str(tmp_path / "plain")),
         "is a file"),
        (("reembed", "--store", str(store), "--embedder", "fake-embedder", "--batch-size",
          "0"), "--batch-size must be at least 1"),
        (("ingest", str(tmp_path / "x.mp4"), "--store", str(store), "--detect-every", "auto",
          "--detect-budget", "0"), "--detect-budget"),
        (("detector", "audit", str(data), "--json", str(tmp_path)), "--json"),
        (("detector", "sweep", str(data), "--conf-thres", "5"), "--conf-thres"),
    ]
    listing = sorted(p.name for p in store.iterdir())
    for args, says in cases:
        proc = run(*args)
        assert proc.returncode == 2 and says in only_error_line(proc), (args, proc.stderr)
    assert sorted(p.name for p in store.iterdir()) == listing
    assert not (tmp_path / "p").exists()
