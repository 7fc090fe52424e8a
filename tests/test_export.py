"""`lensdb.export`: JPEGs decoded again from the source, boxes, clips, the contact sheet."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import lensdb
from lensdb.errors import LensDBError
from lensdb.export import Moment, export, render_frame
from lensdb.query import run_query
from lensdb.search import search

pytestmark = pytest.mark.slow  # the real sample video and the real offline models


@pytest.fixture(scope="module")
def store(tmp_path_factory, bikes, offline_pair):
    root = tmp_path_factory.mktemp("export")
    db = lensdb.open(str(root / "store"), create=True)
    db.ingest([str(bikes)], **offline_pair, stride=5, detect_every=1, batch_size=25,
              conf=0.25,  # the queries below count cars at the low threshold
              codec_train_size=25)
    return db.store


def _decode_all(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def _read(path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path))
    assert img is not None, path
    return img[..., ::-1]


def test_frames_are_decoded_again_exactly(store, bikes):
    """Seeking by timestamp lands on the very frame that was ingested (keyframes or not)."""
    frames = _decode_all(bikes)
    with store.catalog.connect() as con:
        rows = con.execute("SELECT frame_id, frame_index FROM frames "
                           "WHERE frame_index IN (0, 5, 65, 130, 245)").fetchall()
    assert len(rows) == 5
    for fid, index in rows:
        assert np.array_equal(render_frame(store, fid, boxes=False), frames[index])


def test_boxes_are_drawn_on_labelled_frames(store):
    with store.catalog.connect() as con:
        fid = con.execute("SELECT frame_id FROM detections GROUP BY 1 ORDER BY count(*) DESC "
                          "LIMIT 1").fetchone()[0]
    plain, boxed = render_frame(store, fid, boxes=False), render_frame(store, fid)
    assert plain.shape == boxed.shape == (272, 640, 3)
    assert (np.abs(plain.astype(int) - boxed).sum(axis=2) > 0).mean() > 0.01


def test_export_query_moments_with_clips(store, tmp_path):
    result = run_query(store, "count(car) >= 6", source="detected")
    assert len(result) >= 2
    report = export(store, result, tmp_path / "shots", clips=True)
    assert len(report.items) == len(result)
    page = (tmp_path / "shots" / "index.html").read_text()
    listed = json.loads((tmp_path / "shots" / "index.json").read_text())
    assert len(listed["items"]) == len(result)
    for item in report.items:
        assert item["note"] is None
        assert item["start"] <= item["frame_ts"] <= item["stop"]
        assert _read(tmp_path / "shots" / item["jpeg"]).shape == (272, 640, 3)
        clip = _decode_all(tmp_path / "shots" / item["clip"])
        span = item["stop"] - item["start"]
        assert len(clip) >= int(span * 25)  # at least the moment itself, at 25 fps
        assert clip[0].shape == (272, 640, 3)
        assert f'src="{item["jpeg"]}"' in page and f'href="{item["clip"]}"' in page


def test_export_search_hits_and_frames(store, tmp_path):
    hits = search(store, like=10, k=4)
    report = export(store, hits, tmp_path / "hits")
    assert [it["frame_id"] for it in report.items] == [h.frame_id for h in hits]
    assert all((tmp_path / "hits" / it["jpeg"]).exists() for it in report.items)
    frames = run_query(store, "count(car) >= 6", source="detected", frames=True)
    report = export(store, frames, tmp_path / "frames")
    assert len(report.items) == len(frames) and all(it["jpeg"] for it in report.items)
    assert "count(car)" in report.items[0]["caption"]


def test_aggregates_cannot_be_exported(store, tmp_path):
    with pytest.raises(LensDBError, match="aggregate"):
        export(store, run_query(store, "avg(count(car))", source="detected"), tmp_path)


def test_a_missing_source_is_a_note_not_a_crash(tmp_path, make_video, offline_pair):
    video = make_video("gone.mkv", n_frames=20)
    db = lensdb.open(str(tmp_path / "store"), create=True)
    db.ingest([str(video)], **offline_pair, batch_size=20, codec_train_size=20)
    shutil.move(video, tmp_path / "moved.mkv")
    report = export(db.store, [Moment("gone.mkv", 0.5, 1.0)], tmp_path / "out", clips=True)
    assert report.items[0]["jpeg"] is None and "no longer there" in report.items[0]["note"]
    assert "no image" in (tmp_path / "out" / "index.html").read_text()


def test_a_replaced_source_is_not_drawn_under_the_old_boxes(tmp_path, make_video,
                                                             offline_pair):
    from lensdb.cli.app import app

    video = make_video("swap.mkv", n_frames=20)
    db = lensdb.open(str(tmp_path / "store"), create=True)
    db.ingest([str(video)], **offline_pair, batch_size=20, codec_train_size=20)
    other = make_video("other.mkv", n_frames=20, size=(128, 96))
    shutil.copy(other, video)  # same path, other pictures
    report = export(db.store, [Moment("swap.mkv", 0.5, 1.0)], tmp_path / "out")
    assert report.items[0]["jpeg"] is None and "changed since it was ingested" in \
        report.items[0]["note"]
    result = CliRunner().invoke(app, ["export", "video = 'swap.mkv'", "--out",
                                      str(tmp_path / "cli"), "--store", str(tmp_path / "store")])
    assert result.exit_code == 3, result.output  # nothing could be drawn
    assert "warning:" in result.stderr and "changed since it was ingested" in result.stderr


def test_cli_export(store, tmp_path):
    from lensdb.cli.app import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["export", "count(car) >= 6", "--source", "detected",
                                      "--out", str(out), "--store", str(store.root), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["items"] and all((out / it["jpeg"]).exists() for it in data["items"])
    result = CliRunner().invoke(app, ["export", "--search", "x", "--image", "y", "--out",
                                      str(out), "--store", str(store.root)])
    assert result.exit_code != 0


def test_a_folder_with_other_files_is_never_written_into(store, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my notes")
    moments = run_query(store, "count(car) >= 6 LIMIT 2", source="detected")
    for overwrite in (False, True):
        with pytest.raises(LensDBError, match="not empty|not a LensDB export"):
            export(store, moments, mine, overwrite=overwrite)
    assert [p.name for p in mine.iterdir()] == ["index.html"]
    assert (mine / "index.html").read_text() == "my notes"


def test_overwrite_replaces_an_earlier_export_and_nothing_else(store, tmp_path):
    out = tmp_path / "shots"
    first = export(store, run_query(store, "count(car) >= 6 LIMIT 3", source="detected"), out)
    (out / "keep.txt").write_text("mine")
    again = run_query(store, "count(car) >= 6 LIMIT 1", source="detected")
    with pytest.raises(LensDBError, match="not empty"):
        export(store, again, out)
    report = export(store, again, out, overwrite=True)
    names = {p.name for p in out.iterdir()}
    assert names == {"keep.txt", "index.html", "index.json", report.items[0]["jpeg"]}
    assert len(first.items) == 3 and len(report.items) == 1
