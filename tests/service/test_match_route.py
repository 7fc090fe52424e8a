"""POST /match: multipart image + texts through the same call as `lensdb match`; the
embedder a request names goes through the path policy like any model spec."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from lensdb.service.app import create_app


@pytest.fixture
def api(tmp_path):
    (tmp_path / "videos").mkdir()
    return TestClient(create_app(tmp_path / "store", allow=[tmp_path / "videos"]),
                      raise_server_exceptions=False)


def _png() -> bytes:
    img = np.zeros((40, 40, 3), np.uint8)
    cv2.rectangle(img, (5, 5), (30, 30), (0, 0, 255), -1)
    return cv2.imencode(".png", img)[1].tobytes()


def test_match_scores_every_text(api):
    r = api.post("/match", files={"image": ("a.png", _png(), "image/png")},
                 data={"text": ["a red square", "a blue circle"], "embedder": "clip:lensdb-tiny",
                       "threshold": "0.1"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["text"] for x in results] == ["a red square", "a blue circle"]
    assert all(-1 <= x["similarity"] <= 1 and x["match"] == (x["similarity"] >= 0.1)
               for x in results)


def test_match_refuses_files_and_non_images(api, tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"x")
    r = api.post("/match", files={"image": ("a.png", _png(), "image/png")},
                 data={"text": ["x"], "embedder": f"clip:lensdb-tiny:{evil}"})
    assert r.status_code == 403 and "outside" in r.json()["error"]
    r = api.post("/match", files={"image": ("a.png", b"not an image", "image/png")},
                 data={"text": ["x"], "embedder": "clip:lensdb-tiny"})
    assert r.status_code == 400 and "not an image" in r.json()["error"]
    r = api.post("/match", files={"image": ("a.png", _png(), "image/png")},
                 data={"embedder": "clip:lensdb-tiny"})
    assert r.status_code == 422
