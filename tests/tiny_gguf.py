"""Tiny GGUF decoder LLMs written with the ``gguf`` package's writer, for tests that must not
need the 240 MB packaged model: a LLaMA-architecture model with a SentencePiece-style vocabulary
of lowercase letters and a few words (what transformers' GGUF loader needs to rebuild both)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

LETTERS = list("abcdefghijklmnopqrstuvwxyz")
TOKENS = ["<unk>", "<s>", "</s>", "▁"] + ["▁" + c for c in LETTERS] + LETTERS + ["▁the", "▁pen", "▁paper", "▁ink"]


def write_tiny_llama(path: Path, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                     ff: int = 64, seed: int = 0, arch: str = "llama") -> Path:
    types = [2, 3, 3] + [1] * (len(TOKENS) - 3)  # unknown, control (bos, eos), normal
    scores = [0.0, 0.0, 0.0] + [-float(i) for i in range(len(TOKENS) - 3)]
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny-test-model")
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hidden // heads)
    w.add_vocab_size(len(TOKENS))
    w.add_tokenizer_model("llama")
    w.add_token_list(TOKENS)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    hd = hidden // heads
    w.add_tensor("token_embd.weight", weight(len(TOKENS), hidden))
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", weight(heads * hd, hidden))
        w.add_tensor(f"blk.{i}.attn_k.weight", weight(kv_heads * hd, hidden))
        w.add_tensor(f"blk.{i}.attn_v.weight", weight(kv_heads * hd, hidden))
        w.add_tensor(f"blk.{i}.attn_output.weight", weight(hidden, heads * hd))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", weight(ff, hidden))
        w.add_tensor(f"blk.{i}.ffn_up.weight", weight(ff, hidden))
        w.add_tensor(f"blk.{i}.ffn_down.weight", weight(hidden, ff))
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
