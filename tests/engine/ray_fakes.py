"""The Ray workers' setup hook in these tests (LENSDB_RAY_SETUP=ray_fakes:install): the
fakes of tests/ingest_fakes.py, plus `slow-embedder` (the fake, 50 ms a batch) so that a
worker can be killed while it is in the middle of a chunk."""

from __future__ import annotations

import time

import ingest_fakes

from lensdb.models import registry

SLOW = "slow-embedder"


class SlowEmbedder(ingest_fakes.FakeEmbedder):
    def embed_images(self, images):
        time.sleep(0.05)
        return super().embed_images(images)


def install() -> dict:
    fakes = ingest_fakes.install()
    registry.register(ingest_fakes._spec(SLOW, "embedder", lambda **_: SlowEmbedder()))
    return fakes
