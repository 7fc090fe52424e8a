"""FAISS vectors on disk: a trained codec plus immutable segment files.

Each committed batch adds one segment (an IndexIDMap2 whose ids are frame ids). A segment
file is written and fsynced before the catalog transaction that lists it, so a crash
leaves at most an unlisted file, which the next writer removes. Readers load only the
segments the catalog lists. A merge (`Store.maybe_compact`) writes a new segment file and
deletes the ones it replaces once the catalog lists the new one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from lensdb.errors import StoreError, first_line


def _faiss():
    import faiss

    return faiss


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_index(index, path: Path) -> None:
    """Write through Python's file object: a short write (a full disk) raises OSError here.
    `faiss.write_index(index, filename)` only prints its close error and leaves a torn
    file that a commit would then list."""
    faiss = _faiss()
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    fsync_dir(path.parent)


class VectorFiles:
    """The codec and segment files of one store."""

    def __init__(self, root: Path):
        self.dir = Path(root) / "vectors"
        self.codec_path = self.dir / "codec.faiss"

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def has_codec(self) -> bool:
        return self.codec_path.exists()

    def read_codec(self):
        if not self.codec_path.exists():
            from lensdb.storage import held

            waiting = held.frames(self.dir.parent)
            if waiting:  # ingested, but fewer frames than the codec trains on
                raise StoreError(f"the store's codec is not trained yet: {waiting} frames are "
                                 "held until there are enough to train it (`lensdb info`); "
                                 "ingest more video, or a codec that trains on fewer")
            raise StoreError("the store has no trained codec yet; ingest a video first")
        return read_index_file(self.codec_path)

    def save_codec(self, index) -> None:
        self.ensure()
        atomic_write_index(index, self.codec_path)

    def write_segment(self, codec, vectors: np.ndarray, ids: np.ndarray) -> str:
        """Encode vectors into a new segment file; returns its file name."""
        faiss = _faiss()
        seg = faiss.IndexIDMap2(faiss.clone_index(codec))
        seg.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )
        name = f"seg-{int(ids[0]):012d}-{uuid.uuid4().hex[:8]}.faiss"
        atomic_write_index(seg, self.dir / name)
        return name

    def read_segment(self, name: str, mmap: bool = False):
        """One segment file, ready for `reconstruct(frame id)`; `mmap`: memory-mapped and
        read-only (see `read_index_file`)."""
        path = self.dir / name
        if not path.exists():
            raise StoreError(f"vector segment {name} listed in the catalog is missing")
        return ready_to_reconstruct(read_index_file(path, mmap))

    def load(self, names: list[str]):
        """All listed segments merged into one in-memory IndexIDMap2."""
        faiss = _faiss()
        merged = faiss.IndexIDMap2(faiss.clone_index(self.read_codec()))
        for name in names:
            merge_segment(merged, self.read_segment(name))
        return merged

    def merge_to_file(self, names: list[str]) -> tuple[str, int]:
        """Write the union of segments as one new segment file; returns (name, vectors)."""
        merged = self.load(names)
        ids = _faiss().vector_to_array(merged.id_map)
        first = int(ids.min()) if len(ids) else 0
        name = f"seg-{first:012d}-{uuid.uuid4().hex[:8]}.faiss"
        atomic_write_index(merged, self.dir / name)
        return name, int(merged.ntotal)

    def remove(self, name: str) -> None:
        """Delete one segment file (one no catalog row lists any more, or ever did)."""
        (self.dir / name).unlink(missing_ok=True)

    def file_size(self, name: str) -> int:
        return (self.dir / name).stat().st_size

    def remove_unlisted(self, listed: set[str]) -> int:
        """Delete segment files (and temp files) that no committed catalog row lists."""
        if not self.dir.exists():
            return 0
        removed = 0
        for path in self.dir.iterdir():
            orphan_seg = path.name.startswith("seg-") and path.name not in listed
            if orphan_seg or path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def size_on_disk(self) -> int:
        if not self.dir.exists():
            return 0
        return sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())


def read_index_file(path: Path, mmap: bool = False):
    """A FAISS index file, read into RAM or (`mmap`) memory-mapped and read-only.

    Tried in FAISS 1.15: `IO_FLAG_MMAP | IO_FLAG_READ_ONLY` maps only IVF lists (turned into
    read-only OnDiskInvertedLists) and still reads flat codes (Flat, SQ, PQ, RaBitQ) into
    RAM; `IO_FLAG_MMAP_IFC | IO_FLAG_READ_ONLY` maps both, so it is the one used. Search
    results are the same either way. An index read so must never be added to. A file
    FAISS cannot map is read normally."""
    faiss = _faiss()
    if mmap:
        try:
            return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            pass
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:  # FAISS's C++ message: its first line names the damage
        raise StoreError(f"the vector file {path.name} of the store is damaged "
                         f"({first_line(exc, 120)}); "
                         "restore it from a backup, or ingest its videos into a new "
                         "store") from None


def find_ivf(index):
    """The IndexIVF inside an IndexIDMap2 (or a pre-transform), else None."""
    faiss = _faiss()
    inner = getattr(index, "index", index)
    return faiss.try_extract_index_ivf(inner)


def merge_segment(dst, src) -> None:
    """Append segment `src` to IndexIDMap2 `dst` (same codec; both are changed: an IVF's
    direct maps are dropped, `ready_to_reconstruct` builds them again).

    `IndexIDMap2.merge_from` merges the inner indexes with no id offset, which is right for
    flat codes (internal id = position) but gives an IVF's second segment the internal ids
    0.. again, so its hits would map to the wrong frames. For IVF the inner ids continue
    from `dst.ntotal` and the id map is extended here."""
    faiss = _faiss()
    if find_ivf(dst) is None:
        dst.merge_from(src, 0)
        return
    for index in (dst, src):  # FAISS merges IVF lists only without direct maps
        find_ivf(index).set_direct_map_type(faiss.DirectMap.NoMap)
    n0 = int(dst.ntotal)
    dst.index.merge_from(src.index, n0)
    ids = np.concatenate([faiss.vector_to_array(dst.id_map),
                          faiss.vector_to_array(src.id_map)]).astype(np.int64)
    faiss.copy_array_to_vector(ids, dst.id_map)
    dst.ntotal = n0 + int(src.ntotal)
    dst.construct_rev_map()


def ready_to_reconstruct(index):
    """An IVF index answers `reconstruct(id)` only with a direct map: build it (an
    n-entry id array, kept in RAM even for a mapped file). Returns the index."""
    ivf = find_ivf(index)
    if ivf is not None and ivf.direct_map.no():
        ivf.make_direct_map()
    return index


def pca_mean_correction(codec) -> np.ndarray | None:
    """What FAISS's PCA reverse transform leaves out: the mean's part outside the subspace.

    FAISS reconstructs A^T A x instead of m + A^T A (x - m); adding m - A^T A m fixes it.
    """
    faiss = _faiss()
    codec = faiss.downcast_index(codec)
    if not isinstance(codec, faiss.IndexPreTransform) or codec.chain.size() != 1:
        return None
    vt = faiss.downcast_VectorTransform(codec.chain.at(0))
    if not isinstance(vt, faiss.PCAMatrix) or not vt.is_trained:
        return None
    mean = faiss.vector_to_array(vt.mean).astype(np.float64)
    a = faiss.vector_to_array(vt.A).reshape(-1, vt.d_in)[: vt.d_out].astype(np.float64)
    return (mean - a.T @ (a @ mean)).astype(np.float32)


def roundtrip(codec, vectors: np.ndarray) -> np.ndarray:
    """Vectors as the store gives them back after encoding with `codec`."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    out = codec.sa_decode(codec.sa_encode(x))
    corr = pca_mean_correction(codec)
    return out + corr if corr is not None else out


def decode_all(index) -> tuple[np.ndarray, np.ndarray]:
    """(frame ids, decoded float32 vectors) of a merged IndexIDMap2, sorted by id."""
    faiss = _faiss()
    parts = getattr(index, "parts", None)  # a SegmentedIndex (index_cache): each part
    if parts is not None:
        decoded = [decode_all(p) for p in parts]
        ids = np.concatenate([i for i, _ in decoded]) if decoded else np.zeros(0, np.int64)
        if not decoded:
            return ids, np.zeros((0, index.d), np.float32)
        vecs = np.concatenate([v for _, v in decoded])
        order = np.argsort(ids, kind="stable")
        return ids[order], vecs[order]
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    if index.ntotal == 0:
        return ids, np.zeros((0, index.d), np.float32)
    vecs = index.index.reconstruct_n(0, index.ntotal)
    corr = pca_mean_correction(index.index)
    if corr is not None:
        vecs = vecs + corr
    order = np.argsort(ids, kind="stable")
    return ids[order], vecs[order]
