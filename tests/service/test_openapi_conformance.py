"""Schemathesis against a live server: every answer is declared in /openapi.json (status,
content type, headers, schema) and none is a server error.

`positive_data_acceptance` is left out: a schema-valid query string can still be a query
that does not parse, and LensDB answers that with a declared 400.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,"
          "negative_data_rejection,allow_header_conformance,use_after_free,"
          "ensure_resource_availability,ignored_auth")


def test_the_api_conforms_to_its_openapi_document(small_server, tmp_path):
    cli = Path(sys.executable).with_name("schemathesis")
    if not cli.exists() and shutil.which("schemathesis") is None:
        pytest.fail("schemathesis is a dev dependency: pip install -e '.[dev]'")
    r = subprocess.run(
        [str(cli if cli.exists() else "schemathesis"), "run", f"{small_server.url}/openapi.json",
         "--checks", CHECKS, "--max-examples", "12", "--seed", "1", "--no-color",
         "--exclude-path-regex", "^/ingest$"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_ingest_conforms_without_starting_a_job(small_server, tmp_path):
    """POST /ingest with generated bodies: nothing generated names an allowed file, so
    every case is refused (4xx) and declared; no job is left queued."""
    cli = Path(sys.executable).with_name("schemathesis")
    r = subprocess.run(
        [str(cli), "run", f"{small_server.url}/openapi.json", "--checks", CHECKS,
         "--max-examples", "12", "--seed", "2", "--no-color", "--include-path", "/ingest"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
