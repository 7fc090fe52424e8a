"""The CLI side of issue 10 (items 8, 9, 15, 17): one `error:` line, documented exit codes,
flags named in messages, `query --json`. Runs the real CLI in a subprocess with the fakes."""

from __future__ import annotations

import json
import subprocess

from fake_cli import FAKE, RUNNER, only_error_line, run


def test_a_bad_input_is_one_stderr_line(store, tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("hello\n" * 1000)
    proc = run("ingest", str(bogus), "--store", str(store), *FAKE)
    assert proc.returncode == 2
    assert "cannot open" in only_error_line(proc)


def test_still_image_refused_with_the_flag_named(store, tmp_path):
    import cv2
    import numpy as np

    png = tmp_path / "photo.png"
    cv2.imwrite(str(png), np.full((48, 64, 3), 200, np.uint8))
    proc = run("ingest", str(png), "--store", str(store), *FAKE, "--json")
    assert proc.returncode == 2 and "still image" in only_error_line(proc)
    proc = run("ingest", str(png), "--store", str(store), *FAKE, "--images", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["videos"][0]["status"] == "complete"


def test_flags_in_cli_messages_library_names_in_python(store, make_video):
    proc = run("ingest", str(make_video()), "--store", str(store), *FAKE, "--stride", "0")
    assert proc.returncode == 2
    assert only_error_line(proc) == "error: --stride must be between 1 and 1,000,000"
    proc = run("query", "count(square) > 0", "--store", str(store), "--gap", "-1")
    assert proc.returncode == 2 and "error: --gap must" in only_error_line(proc)
    for gap in ("2s", "1m30s", "250ms", "1.5"):  # durations as the query language writes them
        proc = run("query", "count(square) > 0", "--store", str(store), "--gap", gap,
                   "--source", "detected", "--json")
        assert proc.returncode == 0, proc.stderr


def test_a_complete_video_asked_with_other_sampling_says_it_kept_its_own(tmp_path,
                                                                         make_video):
    video, root = make_video("done.mkv", n_frames=12), tmp_path / "store"
    assert run("ingest", str(video), "--store", str(root), *FAKE, "--json").returncode == 0
    proc = run("ingest", str(video), "--store", str(root), *FAKE, "--stride", "3", "--json")
    (again,) = json.loads(proc.stdout)["videos"]
    assert proc.returncode == 0 and again["status"] == "skipped"
    assert "stride=1" in again["message"] and "not applied" in again["message"]
    proc = run("ingest", str(video), "--store", str(root), *FAKE, "--json")
    assert json.loads(proc.stdout)["videos"][0]["message"] == "already ingested (complete)"


def test_changed_sampling_on_resume_names_the_flags_it_was_ingested_with(tmp_path,
                                                                        make_video):
    import lensdb

    video = make_video("long.mkv", n_frames=40)
    root = tmp_path / "store"
    assert run("ingest", str(video), "--store", str(root), *FAKE, "--stride", "2",
               "--json").returncode == 0
    db = lensdb.open(str(root))
    with db.store.catalog.connect(write=True) as con:  # as if killed half-way
        con.execute("UPDATE videos SET status = 'ingesting'")
    proc = run("ingest", str(video), "--store", str(root), *FAKE, "--detect-every", "2")
    assert proc.returncode == 2
    line = only_error_line(proc)
    assert "--stride 2" in line and "--detect-every 5" in line and "--conf 0.3" in line


def test_query_has_json(store):
    proc = run("query", "count(square) >= 0", "--store", str(store), "--json", "--source",
               "detected")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["kind"] == "moments" and data["rows"][0]["video_id"] == 0
    proc = run("query", "frames", "--store", str(store), "--json", "--format", "csv")
    assert proc.returncode == 2 and "contradict" in only_error_line(proc)


def test_info_shows_the_conf_each_video_was_labelled_with(store):
    proc = run("info", "--store", str(store))
    assert proc.returncode == 0 and "conf" in proc.stdout and "0.3" in proc.stdout
    info = json.loads(run("info", "--store", str(store), "--json").stdout)
    assert info["videos"][0]["conf"] == 0.3


def test_stdin_interrupted_is_stopped_and_a_rerun_is_a_new_video(tmp_path, make_video):
    """A live source cannot be rewound: a run that dies mid-stream leaves a `stopped`
    video with what it holds (found by the next run), and the re-run is a new video."""
    import os
    import signal
    import time

    import lensdb

    video = make_video("live.mkv", n_frames=400, fps=25, size=(320, 240))
    data = video.read_bytes()
    root = tmp_path / "store"
    proc = subprocess.Popen([*RUNNER, "ingest", "-", "--store", str(root), *FAKE,
                             "--codec", "Flat", "--batch-size", "8", "--json"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    # a live source that has sent half its stream so far: the kill lands while the stream
    # is still open, so the run cannot have finished however fast or slow this machine is
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    frames, deadline = 0, time.monotonic() + 120
    while frames < 16 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            frames = lensdb.open(str(root)).info()["frames"]
        except Exception:  # noqa: BLE001 - the store is being created
            continue
    assert frames >= 16, "no frames committed in time"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    with open(video, "rb") as f:
        again = run("ingest", "-", "--store", str(root), *FAKE, "--json", stdin=f)
    assert again.returncode == 0, again.stderr
    videos = lensdb.open(str(root)).info()["videos"]
    assert [v["status"] for v in videos] == ["stopped", "complete"]
    assert videos[0]["frames"] >= 16 and "new video" in videos[0]["message"]
    assert videos[1]["frames"] == 400 and {v["name"] for v in videos} == {"stdin #0",
                                                                           "stdin #1"}
