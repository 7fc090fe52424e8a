"""`lensdb export-catalog --parquet DIR`: the catalog as Parquet partitioned by video, read
back with the README's DuckDB and pandas one-liners; bad input is one error line."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from lensdb import export_catalog as ec
from lensdb.export_catalog import MANIFEST, export_catalog
from lensdb.storage.store import Store

README = Path(__file__).parents[1] / "README.md"
VIDEOS = [(0, "a.mp4", 12), (1, "b'q.mp4", 8), (2, "c.mp4", 5)]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store.open(tmp_path_factory.mktemp("cat") / "s", create=True)
    with store.catalog.connect(write=True) as con:
        con.execute("BEGIN")
        fid = 0
        for v, name, n in VIDEOS:
            con.execute("INSERT INTO videos (video_id, name, path, status) VALUES "
                        "(?, ?, ?, 'complete')", [v, name, f"/videos/{name}"])
            for i in range(n):
                labelled = i % 2 == 0
                con.execute("INSERT INTO frames VALUES (?, ?, ?, ?, ?, 0)",
                            [fid, v, i, i / 25, labelled])
                if labelled:
                    con.execute("INSERT INTO counts VALUES (?, 'person', ?)", [fid, 1 + i % 3])
                    con.execute("INSERT INTO detections VALUES (?, 'person', 0.9, 1, 2, 3, 4)",
                                [fid])
                con.execute("INSERT INTO predictions VALUES (?, 'person', 1, ?, false)",
                            [fid, 0.5 * v + i / 10])
                fid += 1
        con.execute("COMMIT")
    return store


def _rows(store: Store, sql: str) -> list:
    with store.catalog.connect() as con:
        return con.execute(sql).fetchall()


def _one_liners(lake: Path) -> tuple[str, str]:
    """The README's DuckDB SQL and pandas expression, pointed at `lake`."""
    text = README.read_text()
    sql = shlex.split(re.search(r'^duckdb -c (".*")$', text, re.M).group(1))[0]
    expr = re.search(r"^python -c \"(.*)\"$", text, re.M).group(1)
    return sql.replace("lake/", f"{lake}/"), expr.replace("lake/", f"{lake}/")


def test_every_table_by_video_and_the_readme_one_liners(store, tmp_path):
    lake = tmp_path / "lake"
    report = export_catalog(store, lake)
    want = {t: _rows(store, f"SELECT count(*) FROM {t}")[0][0] for t in ec.TABLES}
    assert {t: r["rows"] for t, r in report.tables.items()} == want
    assert all(report.tables[t]["files"] == 3 for t in ("frames", "predictions", "videos"))
    assert report.bytes == sum(p.stat().st_size for p in lake.rglob("*.parquet")) > 0
    assert sorted(p.name for p in (lake / "predictions").iterdir()) == [
        "video_id=0", "video_id=1", "video_id=2"]
    assert json.loads((lake / MANIFEST).read_text())["tables"] == report.tables
    assert not list(tmp_path.glob(".lake*"))  # nothing left beside it
    sql, expr = _one_liners(lake)
    by_duckdb = duckdb.sql(sql).fetchall()
    truth = _rows(store, "SELECT f.video_id, count(*), avg(value) FROM predictions p JOIN "
                  "frames f USING (frame_id) GROUP BY ALL ORDER BY 1")
    assert [r[:2] for r in by_duckdb] == [r[:2] for r in truth]
    assert [r[2] for r in by_duckdb] == pytest.approx([r[2] for r in truth])
    if shutil.which("duckdb"):  # the DuckDB CLI itself, where it is installed
        out = subprocess.run(["duckdb", "-csv", "-c", sql], capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.count("\n") == 4
    out = subprocess.run([sys.executable, "-c", expr], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    means = eval(expr.split("print(", 1)[1][:-1], {"pd": pd})  # the same expression
    assert list(means.index) == [0, 1, 2]
    assert list(means.values) == pytest.approx([r[2] for r in truth])
    frames = pd.read_parquet(lake / "frames")
    assert len(frames) == 25 and set(frames.columns) >= {"frame_id", "video_id", "ts"}


def test_some_videos_only(store, tmp_path):
    report = export_catalog(store, tmp_path / "lake", videos=["b'q.mp4", "/videos/c.mp4"])
    assert report.videos == 2 and report.tables["frames"]["rows"] == 13
    df = pd.read_parquet(tmp_path / "lake" / "counts")
    assert sorted(df["video_id"].astype(int).unique()) == [1, 2]


def test_refuses_a_full_folder_unless_overwrite_and_a_failure_leaves_nothing(
        store, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "keep.txt").write_text("mine")
    with pytest.raises(ec.LensDBError, match="not empty"):
        export_catalog(store, lake)
    with pytest.raises(ec.LensDBError, match="not a LensDB export"):
        export_catalog(store, lake, overwrite=True)  # only an earlier export is replaced
    assert [p.name for p in lake.iterdir()] == ["keep.txt"]
    (lake / "keep.txt").unlink()
    export_catalog(store, lake)
    (lake / "old.txt").write_text("of the earlier export")
    real = ec._copy

    def failing(con, table, *a):
        if table == "predictions":
            raise ec.LensDBError("disk full")
        return real(con, table, *a)

    monkeypatch.setattr(ec, "_copy", failing)
    with pytest.raises(ec.LensDBError, match="disk full"):
        export_catalog(store, lake, overwrite=True)
    assert (lake / "old.txt").exists() and (lake / MANIFEST).exists()  # the old one untouched
    assert [p.name for p in tmp_path.iterdir()] == ["lake"]  # no half export beside it
    monkeypatch.setattr(ec, "_copy", real)
    export_catalog(store, lake, overwrite=True)
    assert not (lake / "old.txt").exists() and (lake / MANIFEST).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["lake"]


def test_never_writes_over_or_into_the_store(store):
    from lensdb.db import store_info

    before = store_info(store)
    for target, says in ((store.root, "is the store itself"),
                         (store.root.parent, "holds the store"),
                         (store.root / "models", "is inside the store")):
        with pytest.raises(ec.LensDBError, match=says):
            export_catalog(store, target, overwrite=True)
    assert (store.root / "catalog.duckdb").is_file() and (store.root / "models").is_dir()
    assert store_info(store) == before


def _cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """`lensdb export-catalog ARGS` in this process: (exit code, stdout, stderr)."""
    from lensdb.cli import app

    monkeypatch.setattr(sys, "argv", ["lensdb", "export-catalog", *args])
    code = 0
    try:
        app.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def _error(result: tuple[int, str, str]) -> str:
    code, _, err = result
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_cli_summary_json_and_bad_input(store, tmp_path, capsys, monkeypatch):
    def cli(*args: str) -> tuple[int, str, str]:
        return _cli(capsys, monkeypatch, *args)

    s = str(store.root)
    code, out, err = cli("--parquet", str(tmp_path / "lake"), "--store", s, "--json")
    assert code == 0, err
    assert json.loads(out)["tables"]["predictions"]["rows"] == 25
    code, out, _ = cli("--parquet", str(tmp_path / "lake2"), "--store", s, "--videos", "a.mp4")
    assert code == 0 and "predictions" in out and "12" in out
    (tmp_path / "file").write_text("x")
    assert "is a file" in _error(cli("--parquet", str(tmp_path / "file"), "--store", s))
    assert "not empty" in _error(cli("--parquet", str(tmp_path / "lake"), "--store", s))
    assert "no LensDB store" in _error(cli("--parquet", str(tmp_path / "n"), "--store",
                                           str(tmp_path / "missing")))
    assert "no video named 'z.mp4'" in _error(cli("--parquet", str(tmp_path / "n"), "--store",
                                                 s, "--videos", "z.mp4"))
    assert not (tmp_path / "n").exists() and not list(tmp_path.glob(".n.*"))
