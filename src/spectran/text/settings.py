"""Settings of the semantic text encoder.

The settings that change the vectors (encoder, fields, separator, prompt, normalize, and per
encoder pooling, layer, dtype, fake_dim, max_length) are part of the embedding cache's identity, so different
values never share a cache file; ``batch_size`` and ``chunk_size`` change speed only, so they do
not distinguish runs either; ``device`` may change the vectors through ``dtype: auto`` (bf16/fp16
on CUDA), so it does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from spectran.errors import expect

DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"  # the device names a setting accepts
PROMPT_EOL = 'This sentence : "{text}" means in one word:"'  # PromptEOL (Jiang et al., 2023)


@dataclass
class TextSettings:
    encoder: str = "minilm"  # minilm | mpnet | gemma3-270m | fake | st:PATH | hf:PATH | gguf:FILE | npy:FILE
    fields: list[str] = field(default_factory=lambda: ["text"])  # item fields joined, in order
    separator: str = " "  # between fields
    # E before any method sees it: false = as the encoder gives it; true = each row L2-normalised
    # (MiniLM/MPNet already end in a Normalize layer); "standard" = each dimension centred and
    # scaled to unit variance over the catalog. Either is derived from the cached raw matrix.
    normalize: bool | Literal["standard"] = False
    pooling: Literal["mean", "last", "cls"] = "mean"  # for hf:, gguf: and gemma3-270m
    # the layer whose token states are pooled (hf:, gguf:, gemma3-270m): -1 = the last, after the
    # final norm; k >= 1 = the output of block k (intermediate layers are often better embeddings)
    layer: int = -1
    # the item text inside an instruction: a template with {text}, or "eol" for PromptEOL's
    # 'This sentence : "{text}" means in one word:"' (use with pooling=last); "" = the text alone
    prompt: str = ""
    batch_size: int = field(default=64, metadata={"distinguishes": False})  # texts per forward pass
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # hf: precision; auto = bf16/fp16 on CUDA, fp32 on CPU
    fake_dim: int = 32  # dimension of the deterministic fake encoder (tests)
    max_length: int = 0  # token limit per text; 0 = the model's own (st models) or 512 (hf:)
    chunk_size: int = field(default=2048, metadata={"distinguishes": False})  # items per resumable chunk
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N

    def template(self) -> str:
        """The prompt template (``{text}`` stands for the item's text)."""
        return PROMPT_EOL if self.prompt == "eol" else self.prompt or "{text}"

    def validate(self) -> None:
        expect(bool(self.encoder.strip()), "text.encoder",
               "minilm, mpnet, gemma3-270m, fake, st:PATH, hf:PATH, gguf:FILE or npy:FILE", self.encoder)
        expect(bool(self.fields) and all(f.strip() for f in self.fields), "text.fields",
               "a non-empty list of item field names", self.fields)
        expect(self.batch_size >= 1, "text.batch_size", "an integer >= 1", self.batch_size)
        expect(self.fake_dim >= 1, "text.fake_dim", "an integer >= 1", self.fake_dim)
        expect(self.max_length >= 0, "text.max_length", "an integer >= 0 (0 = the model's own)", self.max_length)
        expect(self.layer == -1 or self.layer >= 1, "text.layer", "-1 (the last layer) or a block number >= 1",
               self.layer)
        expect(self.prompt in ("", "eol") or "{text}" in self.prompt, "text.prompt",
               "empty, 'eol', or a template containing {text}", self.prompt)
        expect(self.chunk_size >= 1, "text.chunk_size", "an integer >= 1", self.chunk_size)
        expect(re.fullmatch(DEVICE_PATTERN, self.device) is not None, "text.device", "auto, cpu, cuda or cuda:N",
               self.device)
