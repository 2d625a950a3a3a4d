"""Any Hugging Face encoder or causal LM folder as a text encoder (``text.encoder=hf:PATH``).

Follows the paper's use of a LLaMA-style LM (LLaMA3-8B, 4096-d): the item text goes through the
model and the last layer's token states are pooled into one vector, by

- ``last``: the state of the last real token (the usual choice for causal LMs),
- ``mean``: the mean over real tokens,
- ``cls``: the first real token (BERT-style encoders; refused for causal LMs, where the first
  token sees nothing else).

Pooling reads the attention mask, so it is correct for left or right padding alike; the
tokenizer pads on the right (a causal model's real tokens never see right padding, and a
bidirectional encoder masks it). Models without a pad token (LLaMA) pad with their EOS token.
The model runs on CUDA when present, in bf16 (or fp16 where bf16 is unsupported) under
``text.dtype=auto``; pooling is done in float32. Loading is local only (``local_files_only``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from spectran.errors import ConfigError, SpectranError
from spectran.text.base import EncoderInfo, offline, quiet_transformers, resolve_device

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Pool token states (B, L, H) with attention mask (B, L) into (B, H) float32.

    Works for any padding side: ``last`` takes the highest position whose mask is 1, ``cls`` the
    lowest, ``mean`` the average over positions whose mask is 1.
    """
    hidden = hidden.float()  # (B, L, H)
    mask = mask.to(hidden.device).bool()  # (B, L)
    if not bool(mask.any(dim=1).all()):
        raise SpectranError("hf pooling: a text tokenised to zero tokens (empty text?)")
    positions = torch.arange(mask.shape[1], device=hidden.device).expand_as(mask)  # (B, L)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    if how == "last":
        return hidden[rows, torch.where(mask, positions, -1).max(dim=1).values]
    if how == "cls":
        return hidden[rows, torch.where(mask, positions, mask.shape[1]).min(dim=1).values]
    if how == "mean":
        weights = mask.unsqueeze(-1).float()  # (B, L, 1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    raise ConfigError(f"text.pooling: expected mean, last or cls, got {how!r}")


def resolve_dtype(name: str, device: str) -> torch.dtype:
    on_cuda = device.startswith("cuda")
    if name == "auto":
        if not on_cuda:
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name == "fp16" and not on_cuda:
        raise ConfigError("text.dtype=fp16 needs a CUDA device (use fp32 or bf16 on CPU)")
    return _DTYPES[name]


def dtype_name(name: str, device: str) -> str:
    """``text.dtype`` as it will run on ``text.device`` (``auto`` resolved: fp32 on CPU, bf16 or
    fp16 on CUDA), the name the embedding cache's identity stores, so that a matrix encoded in one
    precision is never reused for another."""
    resolved = resolve_dtype(name, resolve_device(device))
    return next(key for key, value in _DTYPES.items() if value == resolved)


class HFEncoder:
    """AutoTokenizer + AutoModel from a local folder, pooled by :func:`pool`."""

    def __init__(self, info: EncoderInfo, batch_size: int, device: str, layer: int = -1,
                 causal: bool | None = None) -> None:
        """``layer``: -1 pools the last hidden state, k >= 1 the output of block k. ``causal``: the
        model is a decoder LLM (None: read from its config)."""
        offline()
        import transformers
        from transformers import AutoModel, AutoTokenizer

        quiet_transformers()
        if info.path is None:
            raise SpectranError(f"text encoder {info.name}: no model folder")
        self.info, self.batch_size = info, batch_size
        self.pooling = info.pooling.split("@")[0]  # the identity's "mean@layer9" pools by "mean"
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(info.dtype, self.device)
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(info.path), local_files_only=True)
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise SpectranError(f"{info.path}: tokenizer has neither a pad nor an eos token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # transformers >= 4.56 names the argument dtype (torch_dtype before)
        major_minor = tuple(int(x) for x in transformers.__version__.split(".")[:2])
        key = "dtype" if major_minor >= (4, 56) else "torch_dtype"
        self.model: Any = AutoModel.from_pretrained(str(info.path), local_files_only=True, **{key: self.dtype})
        self.model.to(self.device).eval()
        config = self.model.config
        if causal is None:
            causal = bool(getattr(config, "is_decoder", False)) or any(
                "CausalLM" in a for a in (getattr(config, "architectures", None) or []))
        blocks = int(getattr(config, "num_hidden_layers", 0) or 0)
        if layer != -1 and not 1 <= layer < blocks:
            raise ConfigError(f"text.layer={layer}: {info.path} has {blocks} blocks; use -1 (the last, after the "
                              f"final norm) or 1..{blocks - 1}")
        self.layer = layer
        if causal and self.pooling == "cls":
            raise ConfigError(f"{info.path}: text.pooling=cls on a causal LM gives every text the same vector "
                              "(its first token sees nothing after it); use last or mean")
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        # batches of similar length waste little compute on padding; rows return in input order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [texts[i] for i in order[start:start + self.batch_size]]
            batch = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.info.max_length,
                                   return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            if self.layer == -1:
                hidden = self.model(**batch).last_hidden_state  # (B, L, H)
            else:  # hidden_states[0] is the token embeddings, [k] the output of block k
                hidden = self.model(**batch, output_hidden_states=True).hidden_states[self.layer]
            out.append(pool(hidden, batch["attention_mask"], self.pooling).cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        rows = np.concatenate(out).astype(np.float32)
        result = np.empty_like(rows)
        result[order] = rows
        return result
