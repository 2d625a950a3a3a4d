"""``npy:FILE`` imports, the ``encode`` command, and encoding on demand from the run pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spectran.assemble import item_context
from spectran.cli import main
from spectran.data.prepare import prepare
from spectran.errors import DataError
from spectran.settings import DataSettings
from spectran.text import api, cache
from spectran.text.encoders import FakeEncoder
from spectran.text.settings import TextSettings


@pytest.fixture
def ds():
    return prepare(DataSettings(dataset="synthetic"))


def test_npy_import_round_trip_and_normalize(ds, tmp_path):
    E = np.random.default_rng(0).standard_normal((ds.num_items, 12))
    path = tmp_path / "mine.npy"
    np.save(path, E)
    got = api.load_or_encode(ds, TextSettings(encoder=f"npy:{path}"), progress=False)
    np.testing.assert_allclose(got, E.astype(np.float32))
    assert got.dtype == np.float32
    unit = api.load_or_encode(ds, TextSettings(encoder=f"npy:{path}", normalize=True), progress=False)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    meta = json.loads(cache.sidecar_path(api.embedding_path(ds, TextSettings(encoder=f"npy:{path}"))).read_text())
    assert meta["identity"]["encoder"] == f"npy:{path.resolve()}" and meta["dim"] == 12


def test_changed_npy_file_is_imported_again(ds, tmp_path):
    path = tmp_path / "mine.npy"
    np.save(path, np.ones((ds.num_items, 4)))
    s = TextSettings(encoder=f"npy:{path}")
    assert api.load_or_encode(ds, s, progress=False).sum() == ds.num_items * 4
    np.save(path, np.full((ds.num_items, 4), 2.0))
    assert api.load_or_encode(ds, s, progress=False).sum() == ds.num_items * 8


@pytest.mark.parametrize("matrix, message", [
    (lambda n: np.ones((n - 1, 8)), r"shape \(119, 8\); expected a float matrix of shape \(120, D\)"),
    (lambda n: np.ones((n, 8, 1)), r"shape \(120, 8, 1\)"),
    (np.ones, r"shape \(120,\)"),
    (lambda n: np.ones((n, 0)), r"shape \(120, 0\)"),
    (lambda n: np.where(np.arange(n * 4).reshape(n, 4) == 13, np.nan, 1.0),
     r"row 3 \(item 4\), column 1 is nan; expected finite numbers only"),
    (lambda n: np.where(np.arange(n * 4).reshape(n, 4) == 401, np.inf, 1.0), r"row 100 \(item 101\), column 1 is inf"),
    (lambda n: np.array([["a"] * 4] * n), r"dtype <U1"),
])
def test_bad_npy_is_refused_with_a_clear_message(ds, tmp_path, matrix, message):
    path = tmp_path / "bad.npy"
    np.save(path, matrix(ds.num_items))
    with pytest.raises(DataError, match=message):
        api.load_or_encode(ds, TextSettings(encoder=f"npy:{path}"), progress=False)
    assert not cache.is_present(api.embedding_path(ds, TextSettings(encoder=f"npy:{path}")))


def test_unreadable_or_missing_npy_is_refused(ds, tmp_path):
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}] * ds.num_items, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"not a readable \.npy file"):
        api.load_or_encode(ds, TextSettings(encoder=f"npy:{pickled}"), progress=False)
    with pytest.raises(DataError, match="embedding file not found"):
        api.load_or_encode(ds, TextSettings(encoder=f"npy:{tmp_path / 'nope.npy'}"), progress=False)


def test_encode_command_prints_path_shape_and_time(capsys):
    assert main(["encode", "--dataset", "synthetic", "--encoder", "fake", "--no-progress"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["shape"] == [120, 32] and first["path"].endswith(".npy") and first["seconds"] >= 0
    assert main(["encode", "--dataset", "synthetic", "--encoder", "fake", "--no-progress",
                 "--set", "text.normalize=true", "--set", "text.fake_dim=8"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["shape"] == [120, 8] and second["path"] != first["path"]
    assert np.allclose(np.linalg.norm(np.load(second["path"]), axis=1), 1.0, rtol=1e-5)


def test_encode_command_bad_input_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((120, 3), np.nan))
    assert main(["encode", "--dataset", "synthetic", "--encoder", f"npy:{bad}", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: row 0 (item 1)")
    assert main(["encode", "--dataset", "synthetic", "--encoder", "bogus"]) == 2
    assert "unknown encoder 'bogus'" in capsys.readouterr().err


def test_run_pipeline_encodes_on_demand_then_reuses(ds, tiny, monkeypatch):
    calls: list[int] = []
    real = FakeEncoder.encode
    monkeypatch.setattr(FakeEncoder, "encode", lambda self, texts: (calls.append(len(texts)), real(self, texts))[1])
    s = tiny()
    first = item_context(s, ds, needs_text=True, needs_basis=False)
    assert sum(calls) == ds.num_items and first.semantic.shape == (ds.num_items, s.text.fake_dim)
    second = item_context(s, ds, needs_text=True, needs_basis=False)
    assert sum(calls) == ds.num_items  # the cache was reused
    assert np.array_equal(first.semantic.numpy(), second.semantic.numpy())


def test_fake_encoder_is_deterministic_and_shares_words(ds):
    s = TextSettings(encoder="fake", fake_dim=64)
    E = api.load_or_encode(ds, s, progress=False)
    again = FakeEncoder(api.describe(s)).encode(api.render_texts(ds, s))
    np.testing.assert_array_equal(E, again)
    # synthetic texts name the item's cluster (item i+1 is in cluster i % 8): same cluster => closer
    sims = E @ E.T
    cluster = np.arange(ds.num_items) % 8
    same = cluster[:, None] == cluster[None, :]
    off_diag = ~np.eye(ds.num_items, dtype=bool)
    assert sims[same & off_diag].mean() > sims[~same].mean() + 0.2
