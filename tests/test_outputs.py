"""Where commands may write: never into the store or over a folder holding it, with plain
errors for folders that are files and files whose folder is missing."""

from __future__ import annotations

import pytest

from lensdb.errors import LensDBError
from lensdb.outputs import output_dir, output_file


@pytest.fixture
def store_root(tmp_path):
    root = tmp_path / "lake" / "store"
    (root / "models").mkdir(parents=True)
    (root / "catalog.duckdb").write_bytes(b"x")
    return root


@pytest.mark.parametrize("check, where, says", [
    (output_file, "lake/store/catalog.duckdb", "is inside the store"),
    (output_file, "lake/store/models/x.csv", "is inside the store"),
    (output_file, "lake/store", "is a folder"),
    (output_file, "lake", "is a folder"),
    (output_file, "nope/x.csv", "the folder nope does not exist"),
    (output_dir, "lake/store", "is the store itself"),
    (output_dir, "lake", "holds the store"),
    (output_dir, ".", "holds the store"),
    (output_dir, "lake/store/models", "is inside the store"),
    (output_dir, "lake/store/catalog.duckdb", "is inside the store"),
    (output_dir, "", "is empty"),
])
def test_refusals(tmp_path, store_root, monkeypatch, check, where, says):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LensDBError, match=says):
        check(where, "--out", store_root)
    assert (store_root / "catalog.duckdb").read_bytes() == b"x"


def test_allowed_outputs(tmp_path, store_root):
    assert output_file(tmp_path / "rows.csv", "--out", store_root) == tmp_path / "rows.csv"
    assert output_dir(tmp_path / "shots", "--out", store_root) == tmp_path / "shots"
    (tmp_path / "afile").write_text("")
    with pytest.raises(LensDBError, match="is a file"):
        output_dir(tmp_path / "afile", "--out")
    # a sibling whose name starts like the store's is not inside it
    assert output_dir(tmp_path / "lake" / "store-shots", "--out", store_root)
