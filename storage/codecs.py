"""Vector codecs: FAISS index_factory strings, registered by name with a description.

Every codec works in L2 space on unit vectors, where L2 order equals cosine order
(cosine = 1 - d^2/2), so the binary and PQ codes behave like the float ones.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from lensdb.errors import StoreError, first_line


@dataclass(frozen=True)
class CodecInfo:
    """A named codec."""

    factory: str  # the FAISS index_factory string
    description: str  # one line for `lensdb codecs`


_CODECS: dict[str, CodecInfo] = {}


def register_codec(name: str, factory: str, description: str) -> None:
    _CODECS[name] = CodecInfo(factory, description)


for _name, _factory, _desc in [
    ("Flat", "Flat", "float32, exact (4 bytes per dimension)"),
    ("fp16", "SQfp16", "float16 (2 bytes per dimension)"),
    ("SQ8", "SQ8", "8-bit scalar quantiser (1 byte per dimension); the default"),
    ("SQ4", "SQ4", "4-bit scalar quantiser (half a byte per dimension)"),
    ("PCA256,SQ8", "PCA256,SQ8", "PCA to 256 dims, then 8-bit (256 bytes)"),
    ("PCA128,SQ8", "PCA128,SQ8", "PCA to 128 dims, then 8-bit (128 bytes)"),
    ("PCA64,SQ8", "PCA64,SQ8", "PCA to 64 dims, then 8-bit (64 bytes)"),
    # "np": no polysemous training, which only renumbers codes and costs minutes
    ("PQ64", "PQ64np", "product quantiser, 64 bytes"),
    ("PQ32", "PQ32np", "product quantiser, 32 bytes"),
    ("PQ16", "PQ16np", "product quantiser, 16 bytes"),
    ("OPQ16,PQ16", "OPQ16,PQ16np", "rotation then product quantiser, 16 bytes"),
    ("OPQ64_256,PQ64", "OPQ64_256,PQ64np", "rotation to 256 dims, product quantiser, 64 bytes"),
    ("RR512,LSH", "RR512,LSHt", "binary code, 512 bits (64 bytes)"),
    ("RaBitQ", "RaBitQ", "RaBitQ binary code, 1 bit per dimension (+8 bytes)"),
    # inverted lists: a search scans --nprobe of the n lists, not every vector
    ("IVF256,Flat", "IVF256,Flat", "256 inverted lists of float32 vectors (trains on 256+)"),
    ("IVF1024,SQ8", "IVF1024,SQ8", "1024 inverted lists, 8-bit codes (trains on 1024+)"),
    ("IVF1024,PQ64", "IVF1024,PQ64np", "1024 inverted lists, PQ 64 bytes (trains on 1024+)"),
    ("IVF4096,PQ64", "IVF4096,PQ64np", "4096 inverted lists, PQ 64 bytes (trains on 4096+)"),
    ("IVF1024,RaBitQ", "IVF1024,RaBitQ", "1024 inverted lists, RaBitQ (trains on 1024+)"),
]:
    register_codec(_name, _factory, _desc)

DEFAULT_CODEC = "SQ8"


def list_codecs() -> dict[str, CodecInfo]:
    return dict(_CODECS)


def resolve_factory(name_or_factory: str) -> str:
    """A registered name, or any FAISS index_factory string (validated by FAISS). An IVF
    codec's PQ gets `np` (`IVF2048,PQ32` -> `IVF2048,PQ32np`): FAISS's factory would
    otherwise add polysemous training, minutes of work that only renumbers codes."""
    info = _CODECS.get(name_or_factory)
    factory = info.factory if info else name_or_factory
    if ivf_lists(factory) is not None:
        factory = re.sub(r"(?<![A-Za-z])PQ(\d+(?:x\d+)?)(?=,|$)", r"PQ\1np", factory)
    return factory


def normalise_factory(name_or_factory: str) -> str:
    """The one spelling of a codec: registered names resolved (`PQ16` -> `PQ16np`, what
    the store records), spaces dropped. Compare codecs by this, never by the text typed."""
    return resolve_factory(re.sub(r"\s+", "", str(name_or_factory)))


def ivf_lists(factory: str) -> int | None:
    """The number of inverted lists of an IVF codec (`IVF1024,PQ64` -> 1024), else None."""
    m = re.search(r"(?:^|,)IVF(\d+)", factory)
    return int(m.group(1)) if m else None


def min_training_points(factory: str) -> int:
    """How many vectors a codec wants before it can be trained (0: none needed): the one
    rule the ingest writer buffers by. An IVF codec needs one vector per list at least
    (FAISS refuses fewer), and what its codes need besides (PQ: 256)."""
    if factory in ("Flat", "SQfp16") or factory.startswith("IDMap"):
        return 0
    need = 2
    if re.search(r"PQ\d+", factory):
        nbits = re.search(r"PQ\d+x(\d+)", factory)
        need = 2 ** int(nbits.group(1)) if nbits else 256
    else:
        m = re.match(r"PCAR?(\d+)", factory)
        if m:
            need = int(m.group(1))
    return max(need, ivf_lists(factory) or 0)


IVF_POINTS_PER_LIST = 32  # FAISS warns below 39 a list; k-means is fine from ~30
IVF_GATHER_CAP = 65_536  # most vectors an IVF codec waits for (its first commit waits too)


def training_points(factory: str, wanted: int) -> int:
    """How many vectors to gather before training `factory`: `wanted` (the ingest's
    codec_train_size), at least 4x the minimum (and 256), and for IVF codecs about
    IVF_POINTS_PER_LIST per list (capped at IVF_GATHER_CAP), never below the minimum."""
    need = min_training_points(factory)
    if need == 0:
        return 1
    size = min(wanted, max(4 * need, 256))
    lists = ivf_lists(factory)
    if lists:
        size = max(size, min(IVF_POINTS_PER_LIST * lists, IVF_GATHER_CAP))
    return max(size, need)


@contextmanager
def _quiet_stderr():
    # FAISS k-means prints a warning per sub-quantiser from C++; keep the terminal readable.
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


SYNTAX_DIM = 7680  # a dimension every embedder's divides (512, 768, 1280, 1024, 1536...)


def check_factory(factory: str) -> None:
    """Refuse a factory string FAISS cannot parse or the store cannot merge, before any
    model loads or store is made (tried at SYNTAX_DIM; the real dimension is checked again
    when the store is bound)."""
    make_codec(factory, SYNTAX_DIM, dims="")


def make_codec(factory: str, dim: int, dims: str | None = None):
    """An empty FAISS index for the factory string; a one-line error when FAISS refuses.
    `dims`: how the message names the dimension (default: 'for {dim} dims')."""
    import faiss

    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
    except RuntimeError as exc:
        reason = re.sub(r"^Error in .*? at \S+:\d+: ", "", first_line(exc, 400, last=True))
        where = f" for {dim} dims" if dims is None else dims
        raise StoreError(f"codec '{factory}' is not a valid FAISS factory{where}: "
                         f"{reason} (e.g. SQ8, PQ64, OPQ64_256,PQ64, IVF1024,PQ64)") from None
    try:  # the store merges segment files: a codec FAISS cannot merge cannot be stored
        index.check_compatible_for_merge(index)
    except RuntimeError as exc:
        if "not implemented" in str(exc):
            raise StoreError(
                f"codec '{factory}' cannot be stored: FAISS cannot merge its segments "
                "(refine ',RFlat' and HNSW indexes); use e.g. IVF1024,PQ64 or IVF256,Flat"
            ) from None
    return index


def train_codec(index, factory: str, sample: np.ndarray):
    """The codec trained on a sample of vectors (returned: OPQ trains in a child process);
    a clear error when the sample is too small or FAISS fails."""
    if index.is_trained:
        return index
    need = min_training_points(factory)
    if len(sample) < need:
        lists = ivf_lists(factory)
        why = f" (one per inverted list of {lists})" if lists and lists >= need else ""
        raise StoreError(
            f"the codec needs at least {need} vectors to train{why}, only {len(sample)} were "
            "available; ingest more frames first or choose --codec SQ8"
        )
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if "OPQ" in factory:
        # FAISS 1.15 segfaults in OPQ training at some dimensions (1280 here): train in a
        # child process, so a crash is an error message instead of a dead ingest.
        return _train_in_child(factory, index.d, sample)
    try:
        with _quiet_stderr():
            index.train(sample)
    except RuntimeError as exc:
        raise StoreError(f"training the codec failed: {first_line(exc, last=True)}")
    return index


def _train_in_child(factory: str, dim: int, sample: np.ndarray):
    """Train in a child process (`train_child.py`) that dies with this one; sample in on
    its stdin, trained index out on its stdout."""
    import io
    import subprocess
    import sys
    from pathlib import Path

    import faiss

    buf = io.BytesIO()
    np.save(buf, sample, allow_pickle=False)
    script = Path(__file__).with_name("train_child.py")
    proc = subprocess.Popen(
        # -P: the script's folder (this package, with a `codecs.py`) stays off sys.path
        [sys.executable, "-P", str(script), factory, str(dim), str(os.getpid())],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        data, _ = proc.communicate(buf.getvalue())
    finally:
        if proc.poll() is None:  # interrupted here: the child goes too
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or not data:
        raise StoreError(
            f"FAISS failed training codec '{factory}' on {dim}-d vectors (exit code "
            f"{proc.returncode}); choose another codec, e.g. OPQ64_256,PQ64 or PCA128,SQ8"
        )
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
