"""A small built-in dataset with learnable structure and matching item texts.

Used when no data folder is found (so the README's first command always runs) and in tests.
Items belong to clusters; users walk mostly within a cluster along a fixed item order, so the
next item is predictable from the previous ones; item texts name the cluster, so a text
encoder carries real signal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spectran.data.source import RawDataset

_WORDS = ["red", "blue", "green", "gold", "silver", "black", "white", "pink", "amber", "teal",
          "ivory", "coral", "olive", "plum", "navy", "rose"]
_KINDS = ["lamp", "pen", "desk", "mug", "brush", "cream", "bag", "book", "toy", "shirt", "shoe",
          "watch"]


def make_synthetic(num_users: int = 300, num_items: int = 120, num_clusters: int = 8,
                   min_len: int = 5, max_len: int = 20, seed: int = 0) -> RawDataset:
    rng = np.random.default_rng(seed)
    cluster = np.arange(num_items) % num_clusters  # item i+1 belongs to cluster[i]
    members = [np.flatnonzero(cluster == c) + 1 for c in range(num_clusters)]
    sequences = []
    for _ in range(num_users):
        length = int(rng.integers(min_len, max_len + 1))
        c = int(rng.integers(num_clusters))
        pos = int(rng.integers(len(members[c])))
        seq = []
        for _ in range(length):
            if rng.random() < 0.15:  # jump to another cluster now and then
                c = int(rng.integers(num_clusters))
                pos = int(rng.integers(len(members[c])))
            seq.append(int(members[c][pos % len(members[c])]))
            pos += 1 if rng.random() < 0.8 else 2
        sequences.append(np.array(seq, dtype=np.int64))
    items = []
    for i in range(num_items):
        c = int(cluster[i])
        text = f"{_WORDS[c % len(_WORDS)]} {_KINDS[(i // num_clusters) % len(_KINDS)]} collection {c}"
        items.append({"item": i + 1, "text": text})
    return RawDataset("synthetic", sequences, items, source_files=[Path("<synthetic>")])
