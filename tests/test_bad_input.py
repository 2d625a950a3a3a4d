"""Every bad input is one `error:` line naming the file/row, exit code 2, nothing written.

Each case runs the real CLI (``spectran.cli.main``) on a small dataset folder broken in one way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from spectran.cli import main

SEQS = "1 1 2 3 4\n2 2 3 4 5\n3 3 4 5 1\n4 4 5 1 2\n"
ITEMS = [{"item": i, "text": f"item number {i}"} for i in range(1, 6)]


def _dataset(root: Path, seqs: str = SEQS, items: list | str | None = None) -> Path:
    folder = root / "shop"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sequences.txt").write_text(seqs)
    text = items if isinstance(items, str) else "".join(json.dumps(r) + "\n" for r in (items or ITEMS))
    (folder / "items.jsonl").write_text(text)
    return folder


def _fails(capsys, args: list[str], out: Path, *expected: str) -> str:
    code = main(args + ["--out", str(out)] if args[0] == "train" else args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    for part in expected:
        assert part in err[0], (part, err[0])
    assert not out.exists(), "a run folder was created for a failed run"
    return err[0]


def _train(folder: Path | str, *extra: str) -> list[str]:
    return ["train", "--dataset", str(folder), "--encoder", "fake", "--epochs", "1", "--no-progress",
            "--set", "model.dim=8", *extra]


def test_malformed_sequence_line(tmp_path, capsys):
    folder = _dataset(tmp_path, SEQS + "5 5 x 1\n")
    _fails(capsys, _train(folder), tmp_path / "run", f"{folder / 'sequences.txt'}:5", "integer item ids")


def test_empty_sequence_line(tmp_path, capsys):
    folder = _dataset(tmp_path, "1 1 2 3\n\n2 2 3 4\n")
    _fails(capsys, _train(folder), tmp_path / "run", f"{folder / 'sequences.txt'}:2")


def test_item_id_out_of_range(tmp_path, capsys):
    folder = _dataset(tmp_path, SEQS + "5 1 2 9\n")
    _fails(capsys, _train(folder), tmp_path / "run", f"{folder / 'sequences.txt'}:5", "out of range 1..5")


def test_item_without_text(tmp_path, capsys):
    folder = _dataset(tmp_path, items=ITEMS[:2] + [{"item": 3, "text": ""}] + ITEMS[3:])
    _fails(capsys, _train(folder), tmp_path / "run", f"{folder / 'items.jsonl'}:3", "item 3 has no text")


def test_invalid_json_item_line(tmp_path, capsys):
    lines = "".join(json.dumps(r) + "\n" for r in ITEMS[:4]) + "{not json\n"
    folder = _dataset(tmp_path, items=lines)
    _fails(capsys, _train(folder), tmp_path / "run", f"{folder / 'items.jsonl'}:5", "invalid JSON")


def test_empty_item_line(tmp_path, capsys):
    lines = "".join(json.dumps(r) + "\n" for r in ITEMS[:2]) + "\n" + "".join(json.dumps(r) + "\n" for r in ITEMS[2:])
    folder = _dataset(tmp_path, items=lines)
    _fails(capsys, _train(folder), tmp_path / "run", f"{folder / 'items.jsonl'}:3", "empty line")


@pytest.mark.parametrize("bad", ["shape", "nan", "inf"])
def test_embedding_matrix_wrong_shape_or_not_finite(tmp_path, capsys, bad):
    folder = _dataset(tmp_path)
    E = np.ones((4 if bad == "shape" else 5, 6), dtype=np.float32)
    if bad != "shape":
        E[2, 1] = np.nan if bad == "nan" else np.inf
    npy = tmp_path / "E.npy"
    np.save(npy, E)
    msg = _fails(capsys, _train(folder, "--method", "mlp", "--encoder", f"npy:{npy}"), tmp_path / "run", str(npy))
    assert ("shape (4, 6)" in msg) if bad == "shape" else ("row 2" in msg and "finite" in msg)


def test_prepared_cache_that_does_not_match_the_data(tmp_path, capsys):
    folder = _dataset(tmp_path)
    assert main(["prepare", "--dataset", str(folder)]) == 0
    capsys.readouterr()
    npz = next(Path(p) for p in Path(os.environ["SPECTRAN_CACHE"]).glob("shop-*/prepared.npz"))
    with np.load(npz) as z:
        offsets, items = z["offsets"], z["items"].copy()
    items[0] = 5  # tampered arrays: the checksum no longer matches the metadata
    with open(npz, "wb") as fh:
        np.savez(fh, offsets=offsets, items=items)
    _fails(capsys, _train(folder), tmp_path / "run", str(npz.parent), "checksum mismatch")


def test_embedding_cache_that_does_not_match_its_sidecar(tmp_path, capsys):
    folder = _dataset(tmp_path)
    assert main(["encode", "--dataset", str(folder), "--encoder", "fake"]) == 0
    capsys.readouterr()
    npy = next(Path(p) for p in Path(os.environ["SPECTRAN_CACHE"]).glob("shop-*/embeddings/*.npy"))
    np.save(npy, np.zeros((5, 3), dtype=np.float32))  # replaced behind the sidecar's back
    _fails(capsys, _train(folder, "--method", "mlp"), tmp_path / "run", str(npy), "checksum")


def test_unknown_setting(tmp_path, capsys):
    _fails(capsys, _train("synthetic", "--set", "train.learning_rate=0.1"), tmp_path / "run",
           "train: unknown setting 'learning_rate'")


def test_unknown_method(tmp_path, capsys):
    _fails(capsys, _train("synthetic", "--method", "magic"), tmp_path / "run", "unknown method 'magic'")


def test_missing_data_folder(tmp_path, capsys):
    _fails(capsys, _train("nosuchset", "--data-dir", str(tmp_path / "data")), tmp_path / "run",
           str(tmp_path / "data" / "nosuchset"), "not found")


def test_corrupt_best_checkpoint_is_refused_by_evaluate_and_recommend(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train("synthetic") + ["--out", str(run)]) == 0
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(b"PK\x03\x04 not really a zip")
    capsys.readouterr()
    for args in (["evaluate", str(run)], ["recommend", str(run), "--history", "1 2"]):
        _fails(capsys, args, tmp_path / "nothing", str(best), "truncated or corrupt")
