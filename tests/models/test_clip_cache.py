"""`clip-vit-b-32` is present only when its own weights are in the cache, not any weights."""

from __future__ import annotations

import pytest

from lensdb.models import registry


def _weights(cache, repo: str) -> None:
    folder = cache / "open_clip" / ("models--" + repo.replace("/", "--")) / "snapshots" / "abc"
    folder.mkdir(parents=True)
    (folder / "open_clip_model.safetensors").write_bytes(b"weights")


def test_present_means_the_default_weights_not_any_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LENSDB_CACHE", str(tmp_path))
    spec = registry.find_spec("clip-vit-b-32")
    assert not spec.is_present()
    _weights(tmp_path, "timm/vit_base_patch32_clip_224.openai")  # other weights of ViT-B-32
    assert not spec.is_present()
    _weights(tmp_path, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert spec.is_present()


@pytest.mark.slow  # imports open_clip
def test_tag_cached_looks_up_the_tags_own_repo(tmp_path, monkeypatch):
    from lensdb.models import clip

    monkeypatch.setenv("LENSDB_CACHE", str(tmp_path))
    _weights(tmp_path, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert clip._tag_cached("ViT-B-32", "laion2b_s34b_b79k")
    assert not clip._tag_cached("ViT-B-32", "openai")
    assert not clip._tag_cached("ViT-B-32", "no-such-tag")
