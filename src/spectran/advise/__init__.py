"""``spectran advise``: which method and preprocessing to use for a dataset and its item embeddings E,
before any training.

:func:`advise` reads the prepared dataset and E (from the embedding cache, encoding once when it
is missing, or ``npy:FILE``), measures it (:mod:`spectran.advise.measure`) and applies the decision
rule of the measured tables (:mod:`spectran.advise.rule`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from spectran.advise.measure import Measurements, measure
from spectran.advise.rule import Verdict, decide
from spectran.settings import DataSettings
from spectran.text.settings import TextSettings

__all__ = ["Advice", "advise"]


@dataclass
class Advice:
    measurements: Measurements
    verdict: Verdict
    seconds: float  # reading the data and E (encoding it when not cached) and measuring


def advise(data: DataSettings, text: TextSettings, d: int, progress: bool | None = None) -> Advice:
    """Measure the dataset ``data`` with the embeddings ``text`` describes, for SR dimension ``d``."""
    from spectran.data.prepare import prepare
    from spectran.text.api import load_or_encode

    start = time.perf_counter()
    ds = prepare(data)
    E = load_or_encode(ds, text, progress=progress)
    m = measure(ds, E, d, text.encoder)
    return Advice(m, decide(m), time.perf_counter() - start)
