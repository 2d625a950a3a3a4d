"""The embedding cache: round trip, every kind of mismatch refused, corruption refused, no collisions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spectran.data.prepare import prepare
from spectran.errors import CacheError, DataError
from spectran.settings import DataSettings
from spectran.text import api, cache, encoders
from spectran.text.settings import TextSettings


@pytest.fixture
def ds():
    return prepare(DataSettings(dataset="synthetic"))


def fake(**kw) -> TextSettings:
    return TextSettings(**{"encoder": "fake", "fake_dim": 16, **kw})


def _count_loads(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = api.load_encoder

    def counting(s):
        calls.append(1)
        return real(s)

    monkeypatch.setattr(api, "load_encoder", counting)
    return calls


def test_round_trip_reuses_the_cache_without_loading_the_encoder(ds, monkeypatch):
    calls = _count_loads(monkeypatch)
    first = api.load_or_encode(ds, fake(), progress=False)
    second = api.load_or_encode(ds, fake(), progress=False)
    assert calls == [1]  # the second call read the cache
    assert first.shape == (ds.num_items, 16) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    npy = api.embedding_path(ds, fake())
    assert npy.is_file() and cache.sidecar_path(npy).is_file()
    meta = json.loads(cache.sidecar_path(npy).read_text())
    assert meta["identity"]["encoder"] == "fake" and meta["dim"] == 16 and meta["rows"] == ds.num_items
    assert meta["identity"]["texts_sha256"] == cache.texts_checksum(api.render_texts(ds, fake()))
    assert not cache.partial_dir(npy).exists()  # chunks are cleaned up once the cache is complete


def test_refresh_re_encodes(ds, monkeypatch):
    calls = _count_loads(monkeypatch)
    api.load_or_encode(ds, fake(), progress=False)
    api.load_or_encode(ds, fake(), progress=False, refresh=True)
    assert calls == [1, 1]


def test_normalize_gives_unit_rows_and_its_own_file(ds):
    raw = api.load_or_encode(ds, fake(normalize=False), progress=False)
    unit = api.load_or_encode(ds, fake(normalize=True), progress=False)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5)
    assert api.embedding_path(ds, fake(normalize=True)) != api.embedding_path(ds, fake())


def test_standard_centres_and_scales_every_dimension_from_the_raw_cache(ds, monkeypatch):
    calls = _count_loads(monkeypatch)
    raw = api.load_or_encode(ds, fake(), progress=False)
    std = api.load_or_encode(ds, fake(normalize="standard"), progress=False)
    unit = api.load_or_encode(ds, fake(normalize=True), progress=False)
    assert calls == [1]  # both derived matrices came from the cached raw one, not a second encoding
    np.testing.assert_allclose(std.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(std.std(axis=0), 1.0, rtol=1e-4)
    np.testing.assert_allclose(std, (raw - raw.mean(axis=0)) / raw.std(axis=0), rtol=1e-4, atol=1e-5)
    paths = {api.embedding_path(ds, fake(normalize=v)) for v in (False, True, "standard")}
    assert len(paths) == 3 and "-std-" in api.embedding_path(ds, fake(normalize="standard")).name
    assert not np.allclose(std, unit)
    raw_npy = api.embedding_path(ds, fake())
    cache.remove(raw_npy)
    np.testing.assert_array_equal(api.load_or_encode(ds, fake(normalize="standard"), progress=False), std)
    assert calls == [1] and not raw_npy.exists()  # a cached derived matrix is read alone


def test_standard_leaves_a_constant_dimension_at_zero():
    E = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]], dtype=np.float32)
    out = api.normalized(E, "standard")
    np.testing.assert_allclose(out[:, 1], 0.0)
    np.testing.assert_allclose(out[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert api.normalized(E, False) is E


@pytest.mark.parametrize("change", [
    {"fields": ["text", "text"]}, {"separator": " | ", "fields": ["text", "text"]}, {"normalize": True},
    {"fake_dim": 8}, {"encoder": "minilm"}, {"encoder": "minilm", "max_length": 64},
])
def test_different_settings_never_share_a_file(ds, change):
    base = fake(fields=["text", "text"]) if "separator" in change else fake()
    assert api.embedding_path(ds, fake(**change)) != api.embedding_path(ds, base)


def test_speed_only_settings_share_the_file(ds):
    assert api.embedding_path(ds, fake(batch_size=7, chunk_size=5, device="cpu")) == api.embedding_path(ds, fake())


def test_changed_encoder_version_is_refused(ds, monkeypatch):
    api.load_or_encode(ds, fake(), progress=False)
    monkeypatch.setattr(encoders, "FAKE_VERSION", "hashed-ngrams-v2")
    with pytest.raises(CacheError, match="encoder_version=hashed-ngrams-v1, now encoder_version=hashed-ngrams-v2"):
        api.load_or_encode(ds, fake(), progress=False)


def test_changed_item_texts_are_refused(ds):
    api.load_or_encode(ds, fake(), progress=False)
    ds.item_records[5] = {**ds.item_records[5], "text": "something else entirely"}
    with pytest.raises(CacheError, match="texts_sha256"):
        api.load_or_encode(ds, fake(), progress=False)


def test_reordered_items_are_refused(ds):
    api.load_or_encode(ds, fake(), progress=False)
    ds.item_records[0], ds.item_records[1] = ds.item_records[1], ds.item_records[0]
    with pytest.raises(CacheError, match="texts_sha256"):
        api.load_or_encode(ds, fake(), progress=False)


def _identity(ds):
    api.load_or_encode(ds, fake(), progress=False)
    npy = api.embedding_path(ds, fake())
    return npy, json.loads(cache.sidecar_path(npy).read_text())["identity"]


@pytest.mark.parametrize("key, value", [
    ("encoder", "st:/elsewhere"), ("encoder_version", "other"), ("dim", 17),
    ("template", {"fields": ["title"], "separator": " "}), ("pooling", "mean"), ("normalize", True),
    ("dtype", "bf16"), ("max_length", 128), ("items", 121), ("texts_sha256", "0" * 64),
])
def test_each_identity_field_mismatch_is_refused(ds, key, value):
    npy, identity = _identity(ds)
    assert cache.read(npy, identity).shape == (ds.num_items, 16)
    with pytest.raises(CacheError, match=f"made with {key}="):
        cache.read(npy, {**identity, key: value})


def test_corrupted_matrix_is_refused(ds):
    npy, _ = _identity(ds)
    blob = bytearray(npy.read_bytes())
    blob[-5] ^= 0xFF
    npy.write_bytes(bytes(blob))
    with pytest.raises(CacheError, match="checksum does not match"):
        api.load_or_encode(ds, fake(), progress=False)


def test_truncated_matrix_is_refused(ds):
    npy, identity = _identity(ds)
    npy.write_bytes(npy.read_bytes()[:200])
    with pytest.raises(CacheError, match="checksum does not match"):
        cache.read(npy, identity)


def test_matrix_missing_beside_sidecar_is_refused(ds):
    npy, identity = _identity(ds)
    npy.unlink()
    with pytest.raises(CacheError, match="missing beside its sidecar"):
        cache.read(npy, identity)


def test_sidecar_dimension_and_format_are_checked(ds):
    npy, identity = _identity(ds)
    side = cache.sidecar_path(npy)
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "dim": 8}))
    with pytest.raises(CacheError, match=r"shape \(120, 16\)"):
        cache.read(npy, identity)
    side.write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(CacheError, match="sidecar format 99"):
        cache.read(npy, identity)
    side.write_text("{not json")
    with pytest.raises(CacheError, match="unreadable embedding sidecar"):
        cache.read(npy, identity)


def test_matrix_without_sidecar_is_not_a_cache_and_gets_re_encoded(ds, monkeypatch):
    npy = api.embedding_path(ds, fake())
    npy.parent.mkdir(parents=True)
    np.save(npy, np.zeros((ds.num_items, 16), np.float32))  # what a kill between the two writes leaves
    assert not cache.is_present(npy)
    E = api.load_or_encode(ds, fake(), progress=False)
    assert np.abs(E).sum() > 0 and cache.is_present(npy)


def test_missing_field_names_the_item(ds):
    with pytest.raises(DataError, match=r"item 1 has no 'brand'.*non-empty 'brand' for every item"):
        api.load_or_encode(ds, fake(fields=["text", "brand"]), progress=False)
    ds.item_records[6] = {**ds.item_records[6], "text": "   "}
    with pytest.raises(DataError, match="item 7 has no 'text'"):
        api.render_texts(ds, fake())


def test_template_joins_fields_in_order(ds):
    ds.item_records[:] = [{**r, "brand": "Acme", "tags": ["a", "b"]} for r in ds.item_records]
    texts = api.render_texts(ds, fake(fields=["brand", "text", "tags"], separator=" | "))
    assert texts[0] == f"Acme | {ds.item_records[0]['text']} | a, b"
