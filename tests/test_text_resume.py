"""Interrupted encodes leave no valid-looking cache and resume from finished chunks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from spectran.data.prepare import prepare
from spectran.errors import CacheError
from spectran.settings import DataSettings
from spectran.text import api, cache
from spectran.text.encoders import FakeEncoder
from spectran.text.settings import TextSettings

SETTINGS = {"encoder": "fake", "fake_dim": 16, "chunk_size": 16, "batch_size": 8}


@pytest.fixture
def ds():
    return prepare(DataSettings(dataset="synthetic"))


def _reference(ds, tmp_path) -> np.ndarray:
    """The same matrix encoded in one go, in a cache of its own."""
    other = prepare(DataSettings(dataset="synthetic", cache_dir=str(tmp_path / "reference")))
    return api.load_or_encode(other, TextSettings(**SETTINGS), progress=False)


def test_failure_mid_encode_leaves_no_cache_and_resume_encodes_only_the_rest(ds, tmp_path, monkeypatch):
    s = TextSettings(**SETTINGS)
    encoded: list[int] = []
    real = FakeEncoder.encode

    def failing(self, texts):
        if sum(encoded) >= 80:  # 5 of the 8 chunks of 16 items are finished, then the process "dies"
            raise KeyboardInterrupt
        encoded.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(FakeEncoder, "encode", failing)
    with pytest.raises(KeyboardInterrupt):
        api.load_or_encode(ds, s, progress=False)
    npy = api.embedding_path(ds, s)
    assert not cache.is_present(npy) and not npy.exists()
    assert len(list(cache.partial_dir(npy).glob("chunk-*.npy"))) == 5

    encoded.clear()
    monkeypatch.setattr(FakeEncoder, "encode", lambda self, texts: (encoded.append(len(texts)), real(self, texts))[1])
    E = api.load_or_encode(ds, s, progress=False)
    assert sum(encoded) == ds.num_items - 5 * 16  # finished chunks were reused
    np.testing.assert_array_equal(E, _reference(ds, tmp_path))
    assert cache.is_present(npy) and not cache.partial_dir(npy).exists()


def test_chunks_of_other_settings_are_never_reused(ds):
    s = TextSettings(**SETTINGS)
    npy = api.embedding_path(ds, s)
    identity = api._identity(ds, s, cache.texts_checksum(api.render_texts(ds, s)))
    stale = cache.ChunkStore(npy, {**identity, "texts_sha256": "0" * 64}, s.chunk_size)
    stale.put(0, np.full((16, 16), 7.0, np.float32))
    E = api.load_or_encode(ds, s, progress=False)
    assert not np.any(E[:16] == 7.0)


def test_damaged_chunk_is_encoded_again(ds, tmp_path):
    s = TextSettings(**SETTINGS)
    npy = api.embedding_path(ds, s)
    identity = api._identity(ds, s, cache.texts_checksum(api.render_texts(ds, s)))
    store = cache.ChunkStore(npy, identity, s.chunk_size)
    store.put(0, np.full((16, 16), np.nan, np.float32))  # unusable: not finite
    store.put(1, np.ones((3, 16), np.float32))  # unusable: wrong number of rows
    np.testing.assert_array_equal(api.load_or_encode(ds, s, progress=False), _reference(ds, tmp_path))


_SLOW_ENCODE = textwrap.dedent("""
    import time, sys
    from spectran.data.prepare import prepare
    from spectran.settings import DataSettings
    from spectran.text import api
    from spectran.text.encoders import FakeEncoder
    from spectran.text.settings import TextSettings
    real = FakeEncoder.encode
    def slow(self, texts):
        time.sleep(0.15)
        return real(self, texts)
    FakeEncoder.encode = slow
    print("started", flush=True)
    api.load_or_encode(prepare(DataSettings(dataset="synthetic")), TextSettings(**{settings}), progress=False)
    print("finished", flush=True)
""")


def test_killed_encode_leaves_no_valid_looking_cache(ds, tmp_path):
    s = TextSettings(**SETTINGS)
    npy = api.embedding_path(ds, s)
    env = {**os.environ, "PYTHONPATH": str(Path(api.__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_ENCODE.format(settings=SETTINGS)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list(cache.partial_dir(npy).glob("chunk-*.npy"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the encode never wrote a chunk"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL and "finished" not in out
    assert not cache.is_present(npy)
    with pytest.raises(CacheError):  # whatever was left is not a loadable cache
        cache.read(npy, api._identity(ds, s, cache.texts_checksum(api.render_texts(ds, s))))
    np.testing.assert_array_equal(api.load_or_encode(ds, s, progress=False), _reference(ds, tmp_path))
