"""Count predictors per class: interpolation in time between labels, kNN label propagation
and MLPs on the stored embeddings, and a learned combination; picked by fill-in
(out-of-fold) error, refitted on every label (fit.py has the protocol).

    from lensdb.counting import TrainConfig, train_counters, ActivePredictors
    report = train_counters(store, TrainConfig(classes=("person", "car")))
    predictors = ActivePredictors.load(store)       # once per ingest
    predictors.predict(decoded_batch_vectors)       # {class: (model_id, counts)} per batch

torch is imported only when an MLP is trained or loaded.
"""

from lensdb.counting.config import FINETUNE, PRETRAIN, StageConfig, TrainConfig
from lensdb.counting.pipeline import ClassReport, TrainReport, train_counters
from lensdb.counting.predict import ActivePredictors, predict_for_new_frames
from lensdb.counting.registry import list_count_models

__all__ = [
    "FINETUNE",
    "PRETRAIN",
    "ActivePredictors",
    "ClassReport",
    "StageConfig",
    "TrainConfig",
    "TrainReport",
    "list_count_models",
    "predict_for_new_frames",
    "train_counters",
]
