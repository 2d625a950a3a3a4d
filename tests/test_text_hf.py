"""``hf:PATH`` encoders: pooling by mask for either padding side, and tiny saved models end to end.

The models are tiny, randomly initialised BERT and LLaMA configs saved with ``save_pretrained``,
with a WordPiece tokenizer built offline from a vocabulary file. On a machine with CUDA the
same tests also run the model in bf16/fp16 on the GPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from spectran.data.prepare import prepare
from spectran.errors import ConfigError, SpectranError
from spectran.settings import DataSettings
from spectran.text import api
from spectran.text.encoders import describe, load_encoder
from spectran.text.hf import pool, resolve_dtype
from spectran.text.settings import TextSettings

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "blue", "green", "lamp", "pen", "desk", "mug",
         "the", "a", "of", "and", "with", "black"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_pool_right_and_left_padding_agree():
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 3)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    # the same first row, left-padded: its tokens moved two positions to the right
    left_hidden = hidden.clone()
    left_hidden[0, 2:] = hidden[0, :3]
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    for how, expect in [("last", hidden[0, 2]), ("cls", hidden[0, 0]), ("mean", hidden[0, :3].mean(0))]:
        a, b = pool(hidden, right, how), pool(left_hidden, left, how)
        torch.testing.assert_close(a[0], expect)
        torch.testing.assert_close(b[0], expect)
        torch.testing.assert_close(a[1], b[1])
    torch.testing.assert_close(pool(hidden, right, "last")[1], hidden[1, 4])


def test_pool_refuses_empty_rows_and_unknown_modes():
    with pytest.raises(SpectranError, match="zero tokens"):
        pool(torch.randn(1, 3, 2), torch.zeros(1, 3), "mean")
    with pytest.raises(ConfigError, match="expected mean, last or cls"):
        pool(torch.randn(1, 3, 2), torch.ones(1, 3), "max")


def test_dtype_resolution():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        resolve_dtype("fp16", "cpu")


def _tokenizer(folder, **kw):
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), **kw)
    tok.save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-bert")
    _tokenizer(folder)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama")
    _tokenizer(folder, pad_token=None, eos_token="[SEP]")  # LLaMA-like: no pad token, pads with EOS
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=64)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


TEXTS = ["red lamp", "the black desk with a blue mug and a green pen of red", "pen"]


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_llama"])
@pytest.mark.parametrize("pooling", ["mean", "last", "cls"])
@pytest.mark.parametrize("device", DEVICES)
def test_padding_does_not_change_a_text_vector(request, model, pooling, device):
    folder = request.getfixturevalue(model)
    s = TextSettings(encoder=f"hf:{folder}", pooling=pooling, device=device, batch_size=8)
    if model == "tiny_llama" and pooling == "cls":
        with pytest.raises(ConfigError, match="pooling=cls on a causal LM"):
            load_encoder(s)
        return
    enc = load_encoder(s)
    batched = enc.encode(TEXTS)  # the short texts are padded to the long one
    alone = np.stack([enc.encode([t])[0] for t in TEXTS])
    assert batched.shape == (3, 16) and batched.dtype == np.float32 and np.isfinite(batched).all()
    tol = 1e-5 if enc.dtype == torch.float32 else 3e-2  # bf16/fp16 on a GPU
    np.testing.assert_allclose(batched, alone, atol=tol, rtol=tol)
    assert not np.allclose(batched[0], batched[2], atol=1e-3)  # different texts, different vectors
    if device == "cuda":
        assert enc.dtype in (torch.bfloat16, torch.float16)


def test_pooling_modes_differ_and_are_recorded(tiny_bert):
    vecs = {p: load_encoder(TextSettings(encoder=f"hf:{tiny_bert}", pooling=p, device="cpu")).encode(TEXTS)
            for p in ("mean", "last", "cls")}
    assert not np.allclose(vecs["mean"], vecs["last"]) and not np.allclose(vecs["last"], vecs["cls"])
    info = describe(TextSettings(encoder=f"hf:{tiny_bert}", pooling="last"))
    assert info.pooling == "last" and info.max_length == 512 and info.version.startswith("folder:")


def test_hf_encoder_through_the_cache(tiny_llama, tmp_path):
    folder = tmp_path / "words"
    folder.mkdir()
    (folder / "sequences.txt").write_text("1 1 2 3\n2 2 3 1\n")
    (folder / "items.jsonl").write_text("".join(json.dumps({"item": i + 1, "text": t}) + "\n"
                                                for i, t in enumerate(TEXTS)))
    ds = prepare(DataSettings(dataset=str(folder)))
    s = TextSettings(encoder=f"hf:{tiny_llama}", pooling="last", device="cpu")
    E = api.load_or_encode(ds, s, progress=False)
    assert E.shape == (3, 16)
    np.testing.assert_array_equal(api.load_or_encode(ds, s, progress=False), E)
    assert "hf-tiny-llama" in api.embedding_path(ds, s).name
    assert api.embedding_path(ds, s) != api.embedding_path(ds, TextSettings(encoder=f"hf:{tiny_llama}"))


def test_missing_model_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a directory"):
        describe(TextSettings(encoder=f"hf:{tmp_path / 'absent'}"))
    with pytest.raises(ConfigError, match=r"has no config\.json"):
        describe(TextSettings(encoder=f"hf:{tmp_path}"))


def test_st_path_loads_a_plain_model_folder_offline(tiny_bert):
    """sentence-transformers wraps a plain Hugging Face folder with mean pooling."""
    s = TextSettings(encoder=f"st:{tiny_bert}", device="cpu")
    enc = load_encoder(s)
    got = enc.encode(TEXTS)
    assert got.shape == (3, 16) and describe(s).name == f"st:{tiny_bert}"
    mean = load_encoder(TextSettings(encoder=f"hf:{tiny_bert}", pooling="mean", device="cpu")).encode(TEXTS)
    np.testing.assert_allclose(got, mean, atol=1e-5)


def test_the_cache_identity_holds_the_precision_that_runs(tiny_bert):
    def dtype(**settings) -> str:
        return describe(TextSettings(encoder=f"hf:{tiny_bert}", **settings)).dtype

    assert dtype(dtype="auto", device="cpu") == dtype(dtype="fp32", device="cpu") == "fp32"
    assert dtype(dtype="bf16", device="cpu") == "bf16"
    if torch.cuda.is_available():  # auto on a GPU encodes in half precision: never the CPU's cache
        assert dtype(dtype="auto", device="cuda") in ("bf16", "fp16")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        dtype(dtype="fp16", device="cpu")
