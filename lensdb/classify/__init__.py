"""Conditions of detected objects: a second stage after the detector ("car" -> "parked").

Front doors (each imports its model libraries lazily):

    from lensdb.classify.conditions import add_condition_set, get_condition_set
    from lensdb.classify.run import classify_store, ClassifyConfig      # zero-shot or trained
    from lensdb.classify.train import train_classifier, TrainConfig     # linear probe
    from lensdb.classify.evaluate import evaluate_classifiers, EvalConfig

Results are detection attributes in the catalog; per frame, the count of each value is a
count of class `object[value]` (e.g. `car[parked]`), so queries count by condition.
"""
