"""Settings of the semantic text encoder (SPEC §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class TextSettings:
    encoder: str = "minilm"  # minilm | mpnet | fake | st:PATH | hf:PATH | npy:FILE
    fields: list[str] = field(default_factory=lambda: ["text"])  # item fields joined, in order
    separator: str = " "  # between fields
    normalize: bool = False  # L2-normalise each embedding
    pooling: Literal["mean", "last", "cls"] = "mean"  # for hf: encoders
    batch_size: int = 64
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # model precision for hf: on GPU
    fake_dim: int = 32  # dimension of the deterministic fake encoder (tests)
