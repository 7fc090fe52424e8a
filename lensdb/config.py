"""Ingest configuration: a frozen dataclass, one comment per field."""

from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_DETECTOR = "yolo11n"  # a new store's detector when none is named
DEFAULT_EMBEDDER = "clip-vit-b-32"  # a new store's embedder when none is named


@dataclass(frozen=True)
class IngestConfig:
    """How `ingest` samples, labels, embeds and stores frames."""

    detector: str | None = None  # registry name, ultralytics model name, or .pt/.onnx path;
    # None: the one that labelled the store's latest video, else DEFAULT_DETECTOR
    embedder: str | None = None  # registry name or clip:ARCH[:CHECKPOINT]; None: the one
    # that made the store's vectors, else DEFAULT_EMBEDDER
    conf: float | None = None  # detector confidence threshold for a box to count; None:
    # the store's latest video's when the detector is its too, else the detector's own
    # default (registry ModelSpec.default_conf); the one used is recorded
    stride: int = 1  # keep every stride-th decoded frame (1 when fps is set: one or the other)
    fps: float | None = None  # sample by time: at most this many frames per second
    detect_every: int = 5  # run the detector on every K-th kept frame (1: all)
    detect_budget: float | None = None  # instead of detect_every: label about this share of
    # kept frames, placed by scene change (lensdb.counting.scene_change.SceneChangePlacer)
    codec: str | None = None  # FAISS index_factory string; None: the store's, else SQ8
    # frames per model batch and per committed transaction; 0: by the models' device
    # (DEVICE_BATCH: 32 on the CPU, 128 on a GPU, where bigger batches keep it busy)
    batch_size: int = 0
    codec_train_size: int = 1024  # most vectors gathered to train a codec (SQ8 takes 256,
    # PQ 1024); nothing is committed to a new store before then (or the end of the input)
    queue_size: int = 32  # decoded frames buffered between the decoder thread and models
    images: bool = False  # accept still images (PNG, JPEG, ...) as one-frame videos
    engine: str = "local"  # who runs the models: local (this process) | ray (lensdb.engine)
    address: str | None = None  # Ray cluster: None starts a local Ray; auto | HOST:PORT |
    # ray://HOST:PORT joins one (engine ray only)
    workers: int = 2  # Ray actors decoding, detecting and embedding (engine ray)
    gpus_per_worker: float = 0.0  # GPUs each Ray actor reserves (engine ray; 0: CPU only)
    chunk_seconds: float = 60.0  # engine ray: long videos are cut into chunks this long
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps: where torch models run (auto:
    # a GPU when torch sees one; LiteRT models stay on the CPU); fp16 on CUDA
    threads: int | None = None  # torch threads for the models (None: every core)

    @property
    def detector_spec(self) -> str:
        """The detector to load (after lensdb.ingest.store_models, the store's)."""
        return self.detector or DEFAULT_DETECTOR

    @property
    def embedder_spec(self) -> str:
        """The embedder to load (after lensdb.ingest.store_models, the store's)."""
        return self.embedder or DEFAULT_EMBEDDER

    def sampling(self) -> dict:
        """The part that decides which frames are kept and labelled, stored per video."""
        return {"stride": self.stride, "fps": self.fps, "detect_every": self.detect_every,
                "detect_budget": self.detect_budget, "detector": self.detector_spec,
                "conf": self.conf}  # detector + conf: what `lensdb label` runs again

    def validate(self) -> None:
        from lensdb.errors import ParameterError

        if not 1 <= self.stride <= 1_000_000:
            raise ParameterError("stride", "must be between 1 and 1,000,000")
        if self.fps is not None and not (0 < self.fps < 10_000):
            raise ParameterError("fps", "must be a positive number of frames per second")
        if self.fps is not None and self.stride != 1:
            raise ParameterError("stride", "cannot be combined with fps (stride keeps every "
                                 "n-th frame, fps samples by time: give one)")
        if not 1 <= self.detect_every <= 1_000_000:
            raise ParameterError("detect_every", "must be between 1 and 1,000,000")
        if self.detect_budget is not None and not 0 < self.detect_budget <= 1:
            raise ParameterError("detect_budget", "must be a share of frames in (0, 1]")
        if not 0 <= self.batch_size <= 1024:
            raise ParameterError("batch_size", "must be between 1 and 1024 (0: by device)")
        if not 1 <= self.queue_size <= 1024:
            raise ParameterError("queue_size", "must be between 1 and 1024")
        if not 1 <= self.codec_train_size <= 1_000_000:
            raise ParameterError("codec_train_size", "must be between 1 and 1,000,000")
        if self.conf is not None and not 0.0 <= self.conf <= 1.0:
            raise ParameterError("conf", "must be between 0 and 1")
        if self.codec:  # before a store is made for it
            from lensdb.storage.codecs import check_factory

            check_factory(self.codec)
        from lensdb.engine import validate_engine

        validate_engine(self)
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise ParameterError("threads", "must be between 1 and 1024")
        from lensdb.device import resolve_device

        resolve_device(self.device)  # an unknown or absent device fails before any work

    def to_dict(self) -> dict:
        return asdict(self)


DEVICE_BATCH = {"cpu": 32, "cuda": 128, "mps": 64}  # frames per batch by device kind


def batch_for(config: IngestConfig, device: str) -> IngestConfig:
    """`config` with its batch size fixed for the models' device (when it is 0)."""
    if config.batch_size:
        return config
    from dataclasses import replace

    return replace(config, batch_size=DEVICE_BATCH.get(device.split(":")[0], 32))

