"""Type-check LensDB under its installed module names: `python tests/typecheck.py [mypy args]`.

The source tree is not laid out like the installed package: pyproject's
[tool.setuptools.package-dir] maps `lensdb.storage` to storage/, `lensdb.cli` to cli/ and
`lensdb.bench` to benchmarks/. mypy has no such mapping (nor can it see through setuptools'
editable-install import hook): run on the directories, it names storage/catalog.py
`storage.catalog` and, with ignore_missing_imports, types every `lensdb.storage.*` import as Any.
This script lays the package out as Python imports it, as symlinks in build/typecheck/ (the
`mypy_path` of [tool.mypy]; rebuilt on every run, so new modules are picked up), runs mypy with
the [tool.mypy] config (`packages = ["lensdb"]`: each file once, under its real module name) and
prints each path as the real file's. After one run a bare `mypy` works too (paths in the tree).
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"  # must match mypy_path in [tool.mypy]


def package_dirs() -> dict[str, str]:
    """Package name -> source directory (relative to ROOT), from pyproject's package-dir."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return mapping


def build_tree(mapping: dict[str, str]) -> dict[str, str]:
    """Symlink the sources into TREE as the installed layout; returns tree prefix -> real prefix."""
    shutil.rmtree(TREE, ignore_errors=True)
    prefixes: dict[str, str] = {}
    # parents before children: a child package links into its parent's (real) tree directory
    for name in sorted(mapping, key=lambda n: n.count(".")):
        source = ROOT / mapping[name]
        target = TREE.joinpath(*name.split("."))
        target.mkdir(parents=True)
        children = {n.split(".")[-1] for n in mapping if n.rpartition(".")[0] == name}
        for entry in source.iterdir():
            if entry.name in children or entry.name == "__pycache__":
                continue
            (target / entry.name).symlink_to(entry)
        prefixes[f"{target.relative_to(ROOT)}/"] = f"{Path(mapping[name])}/"
    return prefixes


def main(argv: list[str]) -> int:
    prefixes = build_tree(package_dirs())
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), *argv])
    # longest prefix first, so lensdb/storage/ wins over lensdb/
    order = sorted(prefixes, key=len, reverse=True)
    for line in stdout.splitlines():
        for prefix in order:
            if line.startswith(prefix):
                line = prefixes[prefix] + line[len(prefix) :]
                break
        print(line)
    sys.stderr.write(stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
