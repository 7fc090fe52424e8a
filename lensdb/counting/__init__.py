"""Count predictors on stored embeddings: MLPs and kNN label propagation, per class.

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
