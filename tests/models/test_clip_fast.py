"""CLIP's batched array preprocessing against open_clip's own, and the checked int8 path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lensdb.errors import LensDBError
from lensdb.models import clip_int8
from lensdb.models.clip_preprocess import ArrayPreprocess, as_rgb
from lensdb.models.registry import get_embedder
from lensdb.models.resolve import named_file, resolve_embedder

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Real photos of many shapes (scikit-image's), a portrait crop and a small one that
    224 upsamples."""
    data = pytest.importorskip("skimage.data")
    images = [np.asarray(getattr(data, n)())[..., :3] for n in
              ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")]
    return images + [images[0][:301, :203].copy(), images[1][100:244, 200:376].copy()]


@pytest.fixture
def quick_check(monkeypatch):
    """The int8 check on 4 synthetic scenes (the real sample decodes videos: slow tests)."""
    monkeypatch.setattr(clip_int8, "sample_images",
                        lambda n=4: (clip_int8.synthetic_images(4), "4 synthetic scenes"))


def open_clip_reference(size: int, images: list[np.ndarray]) -> torch.Tensor:
    from open_clip.transform import image_transform
    from PIL import Image

    pre = image_transform(size, is_train=False, mean=MEAN, std=STD)
    return torch.stack([pre(Image.fromarray(img)) for img in images])


@pytest.mark.parametrize("size", [224, 32])
@pytest.mark.parametrize("uint8_resize", [True, False])  # False: the CUDA/MPS path
def test_batched_preprocess_matches_open_clip(photos, size, uint8_resize):
    ref = open_clip_reference(size, photos)
    got = ArrayPreprocess(size, MEAN, STD)(photos, uint8_resize=uint8_resize)
    diff = (got - ref).abs()
    assert got.shape == ref.shape == (len(photos), 3, size, size)
    assert float(diff.max()) < 0.05  # measured 0.030: two uint8 levels at most
    assert float(diff.mean()) < 1e-3


@pytest.mark.slow
def test_batched_preprocess_matches_open_clip_on_video_frames():
    images, what = clip_int8.sample_images(12)  # photos + bikes and carphone frames
    if "synthetic" in what:
        pytest.skip("needs scikit-image and the sample videos (the dev extra)")
    ref = open_clip_reference(224, images)
    for uint8_resize in (True, False):
        got = ArrayPreprocess(224, MEAN, STD)(images, uint8_resize=uint8_resize)
        assert float((got - ref).abs().max()) < 0.05


def test_greys_alpha_and_order_of_mixed_shapes():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (50, 70, 3), np.uint8), rng.integers(0, 256, (40, 40), np.uint8),
            rng.integers(0, 256, (50, 70, 4), np.uint8)]
    batch = ArrayPreprocess(32, MEAN, STD)(imgs)
    for i, img in enumerate(imgs):
        alone = ArrayPreprocess(32, MEAN, STD)([img])[0]
        assert torch.equal(batch[i], alone)
    assert np.array_equal(as_rgb(imgs[2]), imgs[2][..., :3])
    with pytest.raises(ValueError):
        as_rgb(np.zeros((4, 4, 3), np.float32))


def test_configs_it_cannot_reproduce_keep_open_clips_transform():
    class Visual:
        preprocess_cfg = {"size": 224, "resize_mode": "squash", "mean": MEAN, "std": STD}

    class Model:
        visual = Visual()

    assert ArrayPreprocess.for_model(Model()) is None
    Visual.preprocess_cfg = {"size": (224, 224), "mean": MEAN, "std": STD}
    assert ArrayPreprocess.for_model(Model()) == ArrayPreprocess(224, MEAN, STD)


def test_tiny_embedder_uses_the_batched_path_and_agrees_with_pil(photos):
    from PIL import Image

    emb = get_embedder("clip:lensdb-tiny")
    assert emb.batch_preprocess is not None
    with torch.no_grad():
        ref = emb.model.encode_image(torch.stack([emb.preprocess(Image.fromarray(i))
                                                  for i in photos])).numpy()
    cos = clip_int8.cosines(ref, emb.embed_images(photos))
    assert cos.min() >= 0.999


@pytest.mark.slow
def test_vit_b_32_embeddings_of_both_preprocessings_agree(photos):
    from PIL import Image

    emb = get_embedder("clip:ViT-B-32")  # random weights: no CLIP weights offline
    with torch.no_grad():
        ref = emb.model.encode_image(torch.stack([emb.preprocess(Image.fromarray(i))
                                                  for i in photos])).numpy()
    assert clip_int8.cosines(ref, emb.embed_images(photos)).min() >= 0.999


def test_int8_suffix_resolves_and_keeps_the_policy_file():
    r = resolve_embedder("clip-vit-b-32+int8")
    assert (r.source, r.name, r.spec, r.quantize) == ("registry", "clip-vit-b-32",
                                                      "clip-vit-b-32+int8", "int8")
    r = resolve_embedder("clip:lensdb-tiny+int8")
    assert (r.source, r.spec, r.quantize) == ("random", "clip:lensdb-tiny+int8", "int8")
    assert resolve_embedder("clip:lensdb-tiny").quantize is None
    assert str(named_file("embedder", "clip:lensdb-tiny:/tmp/w.pt+int8")) == "/tmp/w.pt"
    with pytest.raises(LensDBError):
        resolve_embedder("+int8")


def test_int8_errors():
    with pytest.raises(LensDBError, match="no \\+int8 path"):
        get_embedder("mobilenet-v2+int8")
    with pytest.raises(LensDBError, match="not quantised"):
        clip_int8.check_embedder("clip:lensdb-tiny")


def test_int8_wants_the_cpu(monkeypatch, quick_check):
    import lensdb.device as d

    monkeypatch.setattr(d, "resolve_device", lambda spec: "cpu" if spec == "cpu" else "cuda")
    with pytest.raises(LensDBError, match="runs on cpu only"):
        get_embedder("clip:lensdb-tiny+int8", device="cuda")
    assert get_embedder("clip:lensdb-tiny+int8", device="auto").device == "cpu"


def test_int8_below_the_threshold_is_a_space_of_its_own(monkeypatch, quick_check):
    monkeypatch.setattr(clip_int8, "SAME_SPACE_COSINE", 1.5)  # nothing can pass
    emb = get_embedder("clip:lensdb-tiny+int8")
    assert emb.model_id.endswith("+int8") and emb.space_check["same_space"] is False


@pytest.mark.slow
def test_int8_vit_b_32_is_checked_and_close_to_fp32(photos):
    emb = get_embedder("clip:ViT-B-32+int8")  # random weights, checked against their fp32
    c = emb.space_check
    assert c["layers"] == 48 and c["n"] == clip_int8.SAMPLE_IMAGES  # MLPs and attention
    assert c["same_space"] and c["cosine_min"] >= 0.99 and not emb.model_id.endswith("+int8")
    assert "quantized" in type(emb.model.visual.transformer.resblocks[0].mlp.c_fc).__module__
    assert emb.embed_images(photos).shape == (len(photos), 512)


def test_swapped_attention_computes_what_torchs_does():
    from open_clip.transformer import ResidualAttentionBlock

    torch.manual_seed(0)
    for batch_first in (True, False):
        block = ResidualAttentionBlock(64, 4, batch_first=batch_first).eval()
        x = torch.randn(3, 10, 64) if batch_first else torch.randn(10, 3, 64)
        with torch.no_grad():
            before = block(x)
            clip_int8._swap_attention(block)
            assert not isinstance(block.attn, torch.nn.MultiheadAttention)
            assert torch.allclose(block(x), before, atol=1e-5)


def test_named_weights_remember_their_verdict(tmp_path, monkeypatch, quick_check):
    monkeypatch.setenv("LENSDB_CACHE", str(tmp_path))
    ckpt = tmp_path / "tiny.pt"
    torch.save(get_embedder("clip:lensdb-tiny").model.state_dict(), ckpt)
    first = get_embedder(f"clip:lensdb-tiny:{ckpt}+int8")
    assert clip_int8.cached_check(first.model_id) == first.space_check
    monkeypatch.setattr(clip_int8, "sample_images", lambda *a: pytest.fail("checked again"))
    again = get_embedder(f"clip:lensdb-tiny:{ckpt}+int8")
    assert again.model_id == first.model_id and again.space_check == first.space_check
