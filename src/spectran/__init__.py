"""spectran: LLM-enhanced sequential recommendation with spectral adapters.

The package is layered so that each folder names one part of the architecture:

- ``data/``        reading datasets, the leave-one-out split, prepared-array caches, batches
- ``text/``        semantic item embeddings E (text encoders and their cache)
- ``spectral/``    the SVD of E (computed once, cached, streamed for large catalogs)
- ``encoders/``    the methods: item encoders E -> item table (id, spectran, baselines)
- ``backbones/``   sequence encoders (SASRec, BERT4Rec, HSTU, GRU4Rec)
- ``model.py``     composition: item encoder x backbone x tied dot-product head
- ``assemble.py``  settings -> one run (data, E, SVD, model, objective, device)
- ``train/``       losses, the training loop, checkpoints
- ``runfolder.py`` the run folder: its file names, states and typed records
- ``eval/``        full-ranking metrics and evaluation
- ``diagnostics/`` spectra and effective rank
- ``experiments/`` sweeps and reports
- ``tune/``        tuning with Optuna (studies shared by several workers)
- ``serve/``       recommendations from a trained run
- ``advise/``      before training: which method and preprocessing for a dataset and its E
"""

__version__ = "0.1.0"
