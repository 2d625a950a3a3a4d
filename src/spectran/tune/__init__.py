"""``spectran tune``: the same Optuna search budget for every method.

:mod:`~spectran.tune.space` reads and validates a search space file (the base run settings plus
ranges of dotted settings) against the typed settings before any trial runs;
:mod:`~spectran.tune.study` runs trials of one Optuna study (TPE, pruning on the per-epoch
validation metric) as ordinary run folders; :mod:`~spectran.tune.results` writes ``best.yaml``,
retests it over seeds and summarises the study in ``tune.json`` (read by ``spectran report``
without Optuna). Optuna is the optional extra ``tune``.
"""
