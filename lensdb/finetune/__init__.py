"""Fine-tuning the embedder on image-text pairs: pairs files, objectives, the training
loop, retrieval and match metrics. Front doors (each imports its dependencies lazily):

    from lensdb.finetune.pairs import validate_pairs, split_pairs, make_mismatches
    from lensdb.finetune.train import finetune, FinetuneConfig
    from lensdb.finetune.evaluate import evaluate_checkpoint
    from lensdb.finetune.match import match
    from lensdb.finetune.reembed import reembed
"""
