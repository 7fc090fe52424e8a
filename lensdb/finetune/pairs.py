"""Pairs and captions files: reading, validation, a split by image, mismatches.

A **pairs** CSV has `image_path,text,label` (1 match, 0 mismatch); a **captions** CSV has
`image_path,text` (every row a match; several rows per image allowed). Image paths are
absolute or relative to the image root (default: the CSV's folder).

    pf = read_pairs("pairs.csv")                      # PairsFile; one-line error if malformed
    report = validate_pairs("pairs.csv")              # every problem, balance, caption counts
    split_pairs("pairs.csv", "splits/", val=0.2, test=0.1, seed=0)    # no image on two sides
    make_mismatches("captions.csv", "pairs.csv", per_match=1)
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lensdb.errors import LensDBError, ParameterError
from lensdb.runs import atomic_write_text

REQUIRED = ("image_path", "text")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
BALANCE_WARN = 5.0  # warn when matches:mismatches (or the reverse) is past 5:1


@dataclass(frozen=True)
class Pair:
    """One row of a pairs or captions file."""

    image: Path  # the image, resolved against the image root (absolute)
    text: str  # the caption
    label: int  # 1 match, 0 mismatch (captions files: always 1)
    line: int  # line number in the file (the header is line 1)


@dataclass
class PairsFile:
    """A parsed file. `problems` holds what `validate_pairs` reports (read_pairs raises)."""

    path: Path  # the CSV
    image_root: Path  # what relative image paths are relative to
    has_labels: bool  # a `label` column was there
    pairs: list[Pair] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def images(self) -> list[Path]:
        """Distinct images, in order of first appearance."""
        return list(dict.fromkeys(p.image for p in self.pairs))

    def matches(self) -> list[Pair]:
        return [p for p in self.pairs if p.label == 1]


def read_pairs(path: str | Path, image_root: str | Path | None = None,
               collect: bool = False) -> PairsFile:
    """Parse a pairs/captions CSV. Missing columns always raise; bad rows (empty values,
    labels other than 0/1) raise with their line unless `collect` (then they are listed in
    `problems` and left out)."""
    path = Path(path)
    if path.is_dir():
        raise LensDBError(f"{path} is a folder; give the pairs CSV file")
    if not path.is_file():
        raise LensDBError(f"no such pairs file: {path}")
    root = Path(image_root) if image_root else path.resolve().parent
    if image_root and not root.is_dir():
        raise ParameterError("image_root", f"{root} is not a folder")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise LensDBError(f"{path} cannot be read as UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise LensDBError(f"{path.name}: missing column(s) {', '.join(missing)}; a pairs file "
                          "has image_path,text,label (label left out: captions, all matches)")
    reader.fieldnames = header
    pf = PairsFile(path, root.resolve(), "label" in header)
    for line, row in enumerate(reader, start=2):
        problem = _row_problem(row, pf.has_labels)
        if problem:
            if not collect:
                raise LensDBError(f"{path.name} line {line}: {problem}")
            pf.problems.append(f"line {line}: {problem}")
            continue
        image = Path(os.path.expanduser(row["image_path"].strip()))
        label = int(row["label"].strip()) if pf.has_labels else 1
        pf.pairs.append(Pair((pf.image_root / image).resolve() if not image.is_absolute()
                             else image, row["text"].strip(), label, line))
    if not pf.pairs and not collect:
        raise LensDBError(f"{path.name} has no rows")
    return pf


def _row_problem(row: dict[str, Any], has_labels: bool) -> str | None:
    if None in row:
        return "more values than columns"
    for col in REQUIRED + (("label",) if has_labels else ()):
        if not (row.get(col) or "").strip():
            return f"empty {col}"
    if has_labels and row["label"].strip() not in ("0", "1"):
        return f"label must be 0 or 1, not '{row['label'].strip()[:20]}'"
    return None


def image_problem(path: Path) -> str | None:
    """Why an image cannot be used (missing, wrong type, does not decode), or None."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return "not a jpg/jpeg/png/webp file"
    if not path.is_file():
        return "missing"
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.convert("RGB").load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means unusable
        return f"does not decode ({type(exc).__name__})"
    return None


def check_images(pf: PairsFile) -> dict[Path, str]:
    """Each unusable image and why."""
    bad = {}
    for image in pf.images():
        why = image_problem(image)
        if why:
            bad[image] = why
    return bad


def usable_pairs(pf: PairsFile, strict: bool = False) -> tuple[list[Pair], dict[Path, str]]:
    """The pairs whose image decodes, and the skipped images; `strict` refuses any."""
    bad = check_images(pf)
    if bad and strict:
        first, why = next(iter(bad.items()))
        raise LensDBError(f"{pf.path.name}: {len(bad)} unreadable image(s), e.g. {first.name}: "
                          f"{why} (--strict refuses them; leave it off to skip them)")
    return [p for p in pf.pairs if p.image not in bad], bad


@dataclass
class ValidationReport:
    """What `lensdb pairs validate` prints."""

    file: str
    rows: int
    images: int
    has_labels: bool
    matches: int
    mismatches: int
    errors: list[str]  # bad rows, unusable images, conflicting labels: the file is not OK
    warnings: list[str]  # duplicates, imbalance
    duplicates: int  # rows repeating an earlier (image, text, label)
    captions_per_image: dict[str, int]  # min, median, max matches per image
    caption_histogram: dict[int, int]  # number of matching captions -> images

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def validate_pairs(path: str | Path, image_root: str | Path | None = None) -> ValidationReport:
    """Check a file through and through; every problem is listed, none raises (but a file
    without the required columns is refused outright)."""
    pf = read_pairs(path, image_root, collect=True)
    errors, warnings = list(pf.problems), []
    for image, why in check_images(pf).items():
        errors.append(f"image {image}: {why}")
    seen: dict[tuple[Path, str], int] = {}
    dups = 0
    for p in pf.pairs:
        key = (p.image, p.text)
        if key in seen:
            if seen[key] != p.label:
                errors.append(f"line {p.line}: the same image and text are labelled both 0 and 1")
            else:
                dups += 1
        seen.setdefault(key, p.label)
    if dups:
        warnings.append(f"{dups} duplicate row(s)")
    n1 = sum(p.label == 1 for p in pf.pairs)
    n0 = len(pf.pairs) - n1
    if pf.has_labels and n1 and n0 and max(n1 / n0, n0 / n1) > BALANCE_WARN:
        warnings.append(f"matches:mismatches is {n1}:{n0}, past 5:1")
    elif pf.has_labels and pf.pairs and (n1 == 0 or n0 == 0):
        warnings.append(f"only {'matches' if n0 == 0 else 'mismatches'}: "
                        "`lensdb pairs mismatches` makes the other kind")
    per_image = Counter({img: 0 for img in pf.images()})
    per_image.update(p.image for p in pf.pairs if p.label == 1)
    counts = sorted(per_image.values())
    stats = ({"min": counts[0], "median": counts[len(counts) // 2], "max": counts[-1]}
             if counts else {"min": 0, "median": 0, "max": 0})
    return ValidationReport(str(pf.path), len(pf.pairs), len(per_image), pf.has_labels, n1, n0,
                            errors, warnings, dups, stats, dict(sorted(Counter(counts).items())))


def write_pairs(path: Path, pairs: list[Pair], labels: bool, base: Path) -> None:
    """Write rows atomically, image paths relative to `base` (the new file's folder)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image_path", "text", "label"] if labels else ["image_path", "text"])
    for p in pairs:
        rel = os.path.relpath(p.image, base.resolve())
        writer.writerow([rel, p.text, p.label] if labels else [rel, p.text])
    atomic_write_text(path, buf.getvalue())


def split_pairs(path: str | Path, out_dir: str | Path, val: float = 0.2, test: float = 0.0,
                seed: int = 0, image_root: str | Path | None = None) -> dict[str, Any]:
    """train.csv, val.csv (and test.csv) in `out_dir`, split by image: every row of an
    image goes to the same side. Returns the rows and images per split."""
    for name, frac in (("val", val), ("test", test)):
        if not 0 <= frac < 1:
            raise ParameterError(name, f"must be a fraction in [0, 1), not {frac}")
    if val + test >= 1:
        raise ParameterError("val", "plus --test must leave images for training")
    pf = read_pairs(path, image_root)
    images = sorted(pf.images())
    random.Random(seed).shuffle(images)
    n_val, n_test = round(len(images) * val), round(len(images) * test)
    if len(images) - n_val - n_test < 1 or (val > 0 and n_val == 0):
        raise LensDBError(f"{len(images)} image(s) are too few to split {val}/{test}")
    side = {img: "val" for img in images[:n_val]}
    side.update({img: "test" for img in images[n_val:n_val + n_test]})
    out = Path(out_dir)
    names = ["train", "val"] + (["test"] if n_test else [])
    groups: dict[str, list[Pair]] = defaultdict(list)
    for p in pf.pairs:
        groups[side.get(p.image, "train")].append(p)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in names:
        write_pairs(out / f"{name}.csv", groups[name], pf.has_labels, out)
        summary[name] = {"file": str(out / f"{name}.csv"), "rows": len(groups[name]),
                         "images": len({p.image for p in groups[name]})}
    return {"source": str(pf.path), "seed": seed, "splits": summary}


def check_disjoint(a_name: str, a_images, b_name: str, b_images) -> None:
    """Refuse two files that share an image (the held-out side would not be held out)."""
    shared = set(a_images) & set(b_images)
    if shared:
        example = sorted(shared)[0]
        raise LensDBError(f"{len(shared)} image(s) are in both {a_name} and {b_name} "
                          f"(e.g. {example.name}); split by image with `lensdb pairs split`")


def mismatch_pairs(pairs: list[Pair], per_match: int = 1, seed: int = 0) -> list[Pair]:
    """For each match, `per_match` mismatches: the image with a text of another image that
    is none of this image's own captions."""
    if per_match < 1:
        raise ParameterError("per_match", "must be at least 1")
    matches = [p for p in pairs if p.label == 1]
    own: dict[Path, set[str]] = defaultdict(set)
    for p in matches:
        own[p.image].add(p.text)
    texts = sorted({p.text for p in matches})
    rng = random.Random(seed)
    out, made = [], set()
    for p in matches:
        choices = [t for t in texts if t not in own[p.image] and (p.image, t) not in made]
        if not choices and not any(t not in own[p.image] for t in texts):
            raise LensDBError("every text belongs to every image: no mismatch can be made")
        for t in rng.sample(choices, min(per_match, len(choices))):
            made.add((p.image, t))
            out.append(Pair(p.image, t, 0, 0))
    return out


def make_mismatches(path: str | Path, out: str | Path | None = None, per_match: int = 1,
                    seed: int = 0, image_root: str | Path | None = None) -> dict[str, Any]:
    """A pairs file with the rows of `path` plus mismatches made from its matches (written
    beside it as NAME-pairs.csv unless `out`); the input is never overwritten."""
    pf = read_pairs(path, image_root)
    target = Path(out) if out else pf.path.with_name(f"{pf.path.stem}-pairs.csv")
    if target.resolve() == pf.path.resolve():
        raise ParameterError("out", "must not be the input file")
    made = mismatch_pairs(pf.pairs, per_match, seed)
    write_pairs(target, pf.pairs + made, True, target.resolve().parent)
    return {"file": str(target), "matches": len(pf.matches()), "made": len(made),
            "mismatches": len(pf.pairs) - len(pf.matches()) + len(made)}
