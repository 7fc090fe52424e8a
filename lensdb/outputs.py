"""Where a command may write what it makes (a query's rows, exported JPEGs, a Parquet lake,
a plot): never into the store, never over a folder that holds it, and with a plain error
for a path that cannot be written instead of the OS error it would end in."""

from __future__ import annotations

from pathlib import Path

from lensdb.errors import LensDBError


def _overlaps_store(path: Path, store_root: Path) -> str | None:
    """How `path` (resolved) touches the store: None when it does not."""
    store = store_root.resolve()
    if path == store:
        return "is the store itself"
    if path.is_relative_to(store):
        return "is inside the store"
    if store.is_relative_to(path):
        return "holds the store"
    return None


def output_file(path: str | Path, what: str, store_root: Path | None = None) -> Path:
    """A file to write (created or replaced): refused when it is a folder, its folder is
    missing, or it is (or is inside) the store. `what`: the flag, for the message."""
    text = str(path)
    if not text.strip():
        raise LensDBError(f"{what} is empty; give a file to write")
    out = Path(text).expanduser()
    full = out.resolve()
    if full.is_dir():
        raise LensDBError(f"{what} {out} is a folder; give a file path")
    if store_root is not None:
        clash = _overlaps_store(full, store_root)
        if clash:
            raise LensDBError(f"{what} {out} {clash}; write it elsewhere")
    if not full.parent.is_dir():
        raise LensDBError(f"{what} {out}: the folder {out.parent} does not exist")
    return out


def output_dir(path: str | Path, what: str, store_root: Path | None = None) -> Path:
    """A folder to write into (created if missing): refused when it is a file, or when it
    is, holds or sits inside the store."""
    text = str(path)
    if not text.strip():
        raise LensDBError(f"{what} is empty; give a folder to write into")
    out = Path(text).expanduser()
    full = out.resolve()
    if store_root is not None:
        clash = _overlaps_store(full, store_root)
        if clash:
            raise LensDBError(f"{what} {out} {clash}; write it elsewhere")
    if full.exists() and not full.is_dir():
        raise LensDBError(f"{what} {out} is a file; give a folder")
    return out


def fresh_dir(path: str | Path, what: str, marker: str, overwrite: bool,
              store_root: Path | None = None) -> Path:
    """`output_dir` that must also be new or empty, or, with `overwrite`, an earlier export
    of the same kind (a folder holding `marker`): a user's own files are never replaced."""
    out = output_dir(path, what, store_root)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise LensDBError(f"{out} is not empty; give an empty or new folder, or "
                              "--overwrite to replace an earlier export")
        if not (out / marker).is_file():
            raise LensDBError(f"{out} holds files that are not a LensDB export (no {marker}); "
                              "--overwrite replaces only an earlier export")
    return out


__all__ = ["output_file", "output_dir", "fresh_dir"]
