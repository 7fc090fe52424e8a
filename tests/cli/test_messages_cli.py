"""Messages that point the right way: a file given for a folder (and back), an empty path,
a checkpoint that is not there (real CLI in a subprocess, with the fakes)."""

from __future__ import annotations

import pytest
from fake_cli import only_error_line, run


@pytest.mark.parametrize("args, says", [
    (("info", "--store", "{plain}"), "is a file, not a store"),
    (("ingest", "", "--store", "{tmp}/new"), "an empty path"),
    (("detector", "audit", "{tmp}"), "is a folder; give its data.yaml"),
    (("pairs", "validate", "{tmp}"), "is a folder; give the pairs CSV file"),
    (("ingest", "{plain}", "--store", ""), "--store is empty"),  # not the current folder
    (("export", "video = 'x'", "--out="), "--out is empty"),
    (("samples", ""), "unknown sample ''"),
    (("ingest", "{plain}", "--store", "{tmp}/new", "--stride", "99999999999"),
     "--stride must be between 1 and 1,000,000"),
    # the parser's own errors: one line too, with where to read more
    (("query", "count(car) > 1", "--recall", "abc"),
     "Invalid value for '--recall'"),
    (("info", "--bogus"), "No such option: --bogus (see `"),
    (("bogus",), "No such command 'bogus'"),
    (("match", "{plain}"), "Missing argument 'texts'"),
])
def test_message_points_the_right_way(tmp_path, args, says):
    (tmp_path / "plain").write_text("")
    filled = [a.format(plain=tmp_path / "plain", tmp=tmp_path) for a in args]
    proc = run(*filled)
    assert proc.returncode == 2 and says in only_error_line(proc), proc.stderr
    assert not (tmp_path / "new").exists()


def test_a_missing_checkpoint_is_named_as_one(store):
    proc = run("reembed", "--store", str(store), "--embedder", "/nope/best.pt")
    assert proc.returncode == 2
    assert "no such checkpoint file: /nope/best.pt" in only_error_line(proc)
