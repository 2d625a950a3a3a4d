"""Data pipeline: split, no leakage, table input, cache invalidation, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spectran.data.batches import eval_sequences, training_sequences
from spectran.data.prepare import prepare
from spectran.errors import DataError
from spectran.settings import DataSettings


def write_canonical(folder, sequences, texts):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sequences.txt").write_text(
        "".join(f"{u + 1} {' '.join(map(str, s))}\n" for u, s in enumerate(sequences)))
    (folder / "items.jsonl").write_text(
        "".join(json.dumps({"item": i + 1, "text": t}) + "\n" for i, t in enumerate(texts)))
    return folder


@pytest.fixture
def small(tmp_path):
    seqs = [[1, 2, 3, 4, 5], [2, 3], [5, 4, 3], [1, 1, 2, 6, 6, 3]]
    return write_canonical(tmp_path / "small", seqs, [f"item {i}" for i in range(1, 7)])


def test_leave_one_out_split_and_user_filter(small):
    ds = prepare(DataSettings(dataset=str(small)))
    assert ds.meta["users_dropped"] == 1  # the user with 2 items
    assert ds.num_users == 3
    assert ds.targets("test").tolist() == [5, 3, 3]
    assert ds.targets("valid").tolist() == [4, 4, 6]
    assert ds.train_part(2).tolist() == [1, 1, 2, 6]


def test_validation_and_test_items_never_training_targets(small):
    ds = prepare(DataSettings(dataset=str(small)))
    arrays = training_sequences(ds, width=10)
    for row, u in enumerate(arrays.users):
        n = int(arrays.lengths[row])
        seq = ds.sequence(int(u))
        targets = arrays.seqs[row, 1:n]  # the causal targets of this row
        # every target is at a training position: the last two positions are never used
        assert targets.tolist() == seq[1:-2].tolist()
    # user 1 (5 4 3) has a 1-item training part: no training pair at all
    assert 1 not in arrays.users.tolist()


def test_eval_inputs_use_only_the_past(small):
    ds = prepare(DataSettings(dataset=str(small)))
    valid, test = eval_sequences(ds, "valid", 10), eval_sequences(ds, "test", 10)
    assert valid.seqs[0, :valid.lengths[0]].tolist() == [1, 2, 3]
    assert test.seqs[0, :test.lengths[0]].tolist() == [1, 2, 3, 4]
    short = eval_sequences(ds, "test", 2)  # most recent items kept
    assert short.seqs[0].tolist() == [3, 4]


def test_table_layout_maps_ids_and_sorts_by_time(tmp_path):
    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "items.csv").write_text("item,text\nA,apple\nB,banana\nC,cherry\n")
    (folder / "interactions.csv").write_text(
        "user,item,timestamp\nu1,B,3\nu1,A,1\nu1,C,2\nu2,C,1\nu2,A,2\nu2,B,3\n")
    ds = prepare(DataSettings(dataset=str(folder)))
    assert ds.item_ids == ["A", "B", "C"]
    assert ds.sequence(0).tolist() == [1, 3, 2]
    assert ds.sequence(1).tolist() == [3, 1, 2]


def test_changed_source_invalidates_cache(small):
    first = prepare(DataSettings(dataset=str(small)))
    with open(small / "sequences.txt", "a") as fh:
        fh.write("9 6 5 4 3\n")
    second = prepare(DataSettings(dataset=str(small)))
    assert second.num_users == first.num_users + 1
    assert second.cache_dir != first.cache_dir


@pytest.mark.parametrize("lines, message", [
    ("1 2 x 3\n", r"sequences.txt:1: expected integer item ids"),
    ("1 2 3\n\n", r"sequences.txt:2: expected 'user item item"),
    ("1 2 3 99\n", r"sequences.txt:1: item id 99 out of range 1..6"),
    ("1 0 2 3\n", r"sequences.txt:1: item id 0 out of range"),
])
def test_malformed_sequences_are_refused(tmp_path, lines, message):
    folder = write_canonical(tmp_path / "bad", [[1, 2, 3]], [f"t{i}" for i in range(6)])
    (folder / "sequences.txt").write_text(lines)
    with pytest.raises(DataError, match=message):
        prepare(DataSettings(dataset=str(folder)))


def test_item_without_text_is_refused(tmp_path):
    folder = write_canonical(tmp_path / "notext", [[1, 2, 3]], ["a", "b", "c"])
    (folder / "items.jsonl").write_text('{"item": 1, "text": "a"}\n{"item": 2, "text": ""}\n')
    with pytest.raises(DataError, match=r"items.jsonl:2: item 2 has no text"):
        prepare(DataSettings(dataset=str(folder)))


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        prepare(DataSettings(dataset="nope", data_dir=str(tmp_path)))


def test_prepared_cache_round_trip(small):
    a = prepare(DataSettings(dataset=str(small)))
    b = prepare(DataSettings(dataset=str(small)))  # from cache
    assert np.array_equal(a.items, b.items) and np.array_equal(a.offsets, b.offsets)
    assert a.item_records == b.item_records


def test_train_item_counts_use_only_training_parts(small):
    ds = prepare(DataSettings(dataset=str(small)))
    expected = np.zeros(ds.num_items, dtype=np.int64)
    for u in range(ds.num_users):
        for item in ds.train_part(u):
            expected[item - 1] += 1
    assert ds.train_item_counts().tolist() == expected.tolist()
    assert ds.train_item_counts()[3] == 0  # item 4 only ever appears as a validation target
