"""What every text encoder shares: its identity (:class:`EncoderInfo`), the :class:`Encoder`
type, the Hugging Face offline switches and the device choice.

Used by :mod:`spectran.text.encoders` (names -> encoders, sentence-transformers, fake) and
:mod:`spectran.text.hf` (any Hugging Face folder); the model libraries (sentence-transformers,
transformers) are imported by the encoder that loads a model, not here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from spectran.errors import ConfigError


@dataclass(frozen=True)
class EncoderInfo:
    name: str  # canonical id: minilm, mpnet, fake, st:/abs/path, hf:/abs/path
    version: str  # package version or model-folder fingerprint: which weights made the vectors
    dim: int | None  # known without loading (None: read from the model after loading)
    pooling: str  # how token states become one vector ("model": the folder's own pooling)
    dtype: str  # compute precision setting ("fp32" except for hf:)
    max_length: int  # token limit (0 = the model's own)
    path: Path | None = None  # model folder


class Encoder(Protocol):
    info: EncoderInfo
    dim: int
    device: str  # where the model runs

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32."""
        ...


def offline() -> None:
    """Forbid Hugging Face hub access for this process (set before importing its libraries)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"


def quiet_transformers() -> None:
    """No weight-loading bar or load report from transformers: encoding shows its own progress.

    A causal LM loaded as its base model drops ``lm_head``; transformers reports that as
    unexpected keys, which is expected here.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def resolve_device(name: str) -> str:
    """``auto`` -> cuda when available, else cpu; a CUDA device that is not there is a ConfigError."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"text.device={name}: CUDA is not available on this machine")
    return name
