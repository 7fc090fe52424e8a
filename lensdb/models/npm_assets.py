"""The SSD-MobileNetV2 (Open Images v4) weights, taken out of an npm package.

`@mediapipe/objectron` ships the model inside `objectron_solution_packed_assets.data`;
the loader JS beside it gives the byte ranges. The npm registry is reachable where model
hubs are not, so this is LensDB's real pretrained model for offline machines.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from lensdb.errors import ModelUnavailableError
from lensdb.models.base import cache_dir, file_digest

NAME = "ssd-mobilenet-v2"
PACKAGE = "@mediapipe/objectron"
VERSION = "0.4.1675468480"
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/objectron-{VERSION}.tgz"
TARBALL_SHA256 = "fc3e37b326b05e8f596099c90b3e0931b05a56cd3160b9ac450b621794bac94c"
TARBALL_ENV = "LENSDB_SSD_TARBALL"  # path to an already downloaded copy of the tarball
PACKED_MEMBER = "package/objectron_solution_packed_assets.data"
LABELS_RANGE = (0, 184)
TFLITE_RANGE = (184, 9_987_912)
TFLITE_SHA256 = "d0a5255bf8c4f5a0bc4240741a76c41d5e939f7655078f945f50ab53a9375da6"
TFLITE_NAME = "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"
LABELS_NAME = "object_detection_oidv4_labelmap.txt"
DOWNLOAD_TIMEOUT_S = 60.0


def _fail(reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"{NAME}: weights cannot be had ({reason}); run `lensdb models fetch {NAME}` where "
        f"registry.npmjs.org is reachable, or set {TARBALL_ENV} to a downloaded "
        f"{TARBALL_URL.rsplit('/', 1)[-1]}"
    )


def ssd_paths() -> tuple[Path, Path]:
    """(tflite path, label map path) in the cache, whether or not they exist yet."""
    folder = cache_dir() / NAME
    return folder / TFLITE_NAME, folder / LABELS_NAME


def ssd_present() -> bool:
    """Both files are in the cache. Writes are atomic, so a present file is complete."""
    tflite, labels = ssd_paths()
    return (
        tflite.is_file()
        and tflite.stat().st_size == TFLITE_RANGE[1] - TFLITE_RANGE[0]
        and labels.is_file()
    )


def _sha256_file(path: Path) -> str:
    return file_digest(path, None)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is shared like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download(dest_dir: Path) -> Path:
    """The tarball into a temporary file in dest_dir; the caller deletes it."""
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix="objectron.", suffix=".tgz.tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(TARBALL_URL, headers={"User-Agent": "lensdb"})
            with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise _fail(f"cannot download {TARBALL_URL}: {reason}") from exc
    return Path(tmp)


def _extract(tarball: Path) -> None:
    digest = _sha256_file(tarball)
    if digest != TARBALL_SHA256:
        raise _fail(f"{tarball.name} has sha256 {digest[:12]}..., not {TARBALL_SHA256[:12]}...")
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            member = tar.extractfile(PACKED_MEMBER)
            if member is None:
                raise _fail(f"{PACKED_MEMBER} is not a file in the tarball")
            packed = member.read(TFLITE_RANGE[1])
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise _fail(f"cannot read {PACKED_MEMBER} from the tarball: {exc}") from exc
    tflite_bytes = packed[TFLITE_RANGE[0] : TFLITE_RANGE[1]]
    if hashlib.sha256(tflite_bytes).hexdigest() != TFLITE_SHA256:
        raise _fail(f"{TFLITE_NAME} in the tarball has an unexpected sha256")
    tflite_path, labels_path = ssd_paths()
    # Labels last: ssd_present() needs both, and a present tflite was hash-checked.
    _atomic_write(tflite_path, tflite_bytes)
    _atomic_write(labels_path, packed[LABELS_RANGE[0] : LABELS_RANGE[1]])


def fetch_ssd() -> Path:
    """Puts the tflite and its label map into the cache (no-op if there); the tflite path.

    Uses the tarball named by $LENSDB_SSD_TARBALL when set, else downloads it from the npm
    registry. The tarball is not kept. Raises ModelUnavailableError on any failure.
    """
    tflite_path, _ = ssd_paths()
    if ssd_present():
        return tflite_path
    local = os.environ.get(TARBALL_ENV)
    if local:
        if not Path(local).is_file():
            raise _fail(f"{TARBALL_ENV}={local} is not a file")
        _extract(Path(local))
        return tflite_path
    tflite_path.parent.mkdir(parents=True, exist_ok=True)
    tarball = _download(tflite_path.parent)
    try:
        _extract(tarball)
    finally:
        tarball.unlink(missing_ok=True)
    return tflite_path


def read_labels(path: Path) -> list[str]:
    """The label map, one lowercase name per class id; id 0 is the background."""
    return [line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines()]
